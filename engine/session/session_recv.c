/* SPDX-License-Identifier: MIT */
/*
 * The receiver, on the net-in thread: reads the sender's answer to each
 * item record (rsync-protocol.md §9.1), decodes the token stream (§9.2),
 * rebuilds the file through delta apply (basis reads on the pump), streams
 * it into the commit stage, verifies the whole-file checksum (§9.4) and
 * commits or discards it; a first mismatch is queued for the redo pass.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_sys.h"
#include "engine/session/session_xattr.h"

struct recv_file {
	struct berth_session *s;
	struct berth_commit_file *cf;
	int32_t ndx;
	int werr; /* first commit write error */
	bool sparse; /* --sparse: zero blocks become holes */
	bool inplace; /* written in place (--inplace, --append) */
	void *user; /* the begin's meta.user: holds a list reference */
	uint64_t pos; /* output position (for --sparse alignment) */
	size_t zpend; /* --sparse: zeros held from the block's start */
};

#define SPARSE_BLOCK 4096

static bool all_zero(const uint8_t *p, size_t n)
{
	return n && p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/*
 * --sparse: write the data, skip whole zero blocks (they stay holes).  The
 * data comes in pieces cut wherever a token, a frame or a matched block
 * ends, so zeros from a block's start are held (r->zpend) until the block
 * is seen whole: all zero, it is skipped; otherwise they are written
 * before the rest of it.
 */
static int write_sparse(struct recv_file *r, const uint8_t *p, size_t len)
{
	static const uint8_t zeros[SPARSE_BLOCK];
	size_t n, off;
	int ret = 0;

	while (ret == 0 && len > 0) {
		off = (size_t)(r->pos % SPARSE_BLOCK);
		n = SPARSE_BLOCK - off;
		if (n > len)
			n = len;
		if (off == r->zpend && all_zero(p, n)) {
			r->zpend += n; /* zeros from the block's start */
			if (r->zpend == SPARSE_BLOCK) {
				r->zpend = 0;
				ret = berth_commit_file_skip(r->cf,
							     SPARSE_BLOCK);
			}
		} else {
			if (r->zpend)
				ret = berth_commit_file_write(r->cf, zeros,
							      r->zpend);
			r->zpend = 0;
			if (ret == 0)
				ret = berth_commit_file_write(r->cf, p, n);
		}
		r->pos += n;
		p += n;
		len -= n;
	}
	return ret;
}

/* --sparse: the file's last zeros, held in an unfinished block, stay a
 * hole (the size set at the end covers them). */
static void sparse_end(struct recv_file *r)
{
	int ret;

	if (!r->cf || r->werr || !r->zpend)
		return;
	ret = berth_commit_file_skip(r->cf, r->zpend);
	r->zpend = 0;
	if (ret < 0)
		r->werr = ret;
}

static int to_commit(void *arg, const void *buf, size_t len)
{
	struct recv_file *r = arg;
	int ret;

	if (!r->cf || r->werr)
		return 0; /* dry run, or already failed: drain the tokens */
	ret = r->sparse ? write_sparse(r, buf, len)
			: berth_commit_file_write(r->cf, buf, len);
	if (ret < 0)
		r->werr = ret;
	return 0;
}

static int open_basis(int dirfd, const char *name, bool noatime, uint64_t *size)
{
	struct stat st;
	int fd = -EPERM;

	/* --open-noatime: where O_NOATIME is refused (not the owner), the
	 * basis is read as without it, as rsync does. */
	if (noatime)
		fd = berth_plat_open_beneath(dirfd, name,
					     O_RDONLY | O_NOFOLLOW | O_NOATIME);
	if (fd == -EPERM)
		fd = berth_plat_open_beneath(dirfd, name,
					     O_RDONLY | O_NOFOLLOW);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -ENOENT;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* Queue @ndx for the redo pass and wake the generator. */
static int queue_redo(struct berth_session *s, int32_t ndx)
{
	int32_t *p;
	int ret = 0;

	pthread_mutex_lock(&s->sync.lock);
	if (s->sync.nredo == s->sync.redo_cap) {
		size_t cap = s->sync.redo_cap ? 2 * s->sync.redo_cap : 16;

		p = realloc(s->sync.redo, cap * sizeof(*p));
		if (!p) {
			ret = -ENOMEM;
			goto out;
		}
		s->sync.redo = p;
		s->sync.redo_cap = cap;
	}
	s->sync.redo[s->sync.nredo++] = ndx;
	pthread_cond_broadcast(&s->sync.cond);
out:
	pthread_mutex_unlock(&s->sync.lock);
	return ret;
}

/* Next token event of the current file. */
static int next_token(struct berth_session *s, struct berth_tok_event *ev)
{
	struct berth_proto_in v;
	int ret;

	for (;;) {
		v = berth__in_view(&s->in);
		ret = berth_tok_decode(s->stg.tok, &v, ev);
		berth__in_consumed(&s->in, v.pos);
		if (ret != BERTH_PROTO_MORE)
			return ret;
		ret = berth__in_more(&s->in);
		if (ret < 0)
			return ret;
	}
}

/* zlib's matched blocks are read in pieces of about this size. */
#define SEE_CHUNK (256 * 1024)

/*
 * zlib's literal data may refer back to matched data: each matched block
 * of @ev goes to the decoder's history before decoding on.  The blocks
 * are read here, a piece of the run at a time, and the same bytes then
 * go to the apply stage (as data: one read of the basis, not two).  A
 * piece that cannot be read whole (the basis shrank, a read error) gives
 * the decoder zeros in what is missing, as rsync's receiver does, and is
 * left to the apply stage to read and report.
 */
static int zlib_blocks(struct berth_session *s,
		       const struct berth_delta_file *df,
		       const struct berth_tok_event *ev, uint8_t **buf)
{
	const struct berth_sum_head *h = &df->head;
	uint32_t blen = (uint32_t)h->blength, per = SEE_CHUNK / blen;
	uint32_t first = (uint32_t)ev->block, left = (uint32_t)ev->nblocks;
	uint32_t k, last, len;
	size_t want, got;
	ssize_t n;
	int ret;

	if (!per)
		per = 1;
	if (!*buf) {
		*buf = malloc((size_t)per * blen);
		if (!*buf)
			return -ENOMEM;
	}
	for (; left; first += k, left -= k) {
		k = left < per ? left : per;
		last = berth_sum_head_block_len(h, first + k - 1);
		want = (size_t)(k - 1) * blen + last;
		for (got = 0; got < want; got += (size_t)n) {
			n = berth__sys_pread(s, df->basis_fd, *buf + got,
					     want - got,
					     (uint64_t)first * blen + got);
			if (n <= 0)
				break;
		}
		memset(*buf + got, 0, want - got);
		for (uint32_t i = 0; i < k; i++) {
			len = i == k - 1 ? last : blen;
			ret = berth_tok_dec_see(s->stg.tok,
						*buf + (size_t)i * blen, len);
			if (ret < 0)
				return ret;
		}
		ret = got == want ? berth_delta_apply_literal(s->stg.apply,
							      *buf, want)
				  : berth_delta_apply_blocks(s->stg.apply,
							     first, k);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The verified whole-file checksum and the bytes its data took on the
 * wire, for the committed-file event. */
static void keep_sum(struct berth_session *s, int32_t ndx, const uint8_t *sum,
		     uint64_t wire_bytes)
{
	const struct berth_session_events *ev = s->cfg.sopts.events;
	struct file_side *side;
	size_t n = s->neg.digest_len < sizeof(side->sum) ? s->neg.digest_len
							 : sizeof(side->sum);

	if (!ev || !ev->file_committed)
		return; /* nobody asks for it */
	pthread_mutex_lock(&s->sync.lock);
	side = berth__fst_side(s, ndx, true);
	if (side) { /* else the event comes without it (no memory) */
		memcpy(side->sum, sum, n);
		side->wire_bytes = wire_bytes;
	}
	pthread_mutex_unlock(&s->sync.lock);
}

/* --append: the length the generator kept in place for @ndx. */
static uint64_t append_from_of(struct berth_session *s, int32_t ndx)
{
	struct file_side *side;
	uint64_t v = 0;

	pthread_mutex_lock(&s->sync.lock);
	side = berth__fst_side(s, ndx, false);
	if (side)
		v = side->append_from;
	pthread_mutex_unlock(&s->sync.lock);
	return v;
}

/* The file needs nothing more; the generator may wait for that (-H). */
static void set_done(struct berth_session *s, int32_t ndx)
{
	pthread_mutex_lock(&s->sync.lock);
	/* Wake the generator only when it may wait for this: a list just
	 * finished (incremental mode), or the hard-link pass waits. */
	if (berth__fst_done(s, ndx) || s->sync.done_waiters)
		pthread_cond_broadcast(&s->sync.cond);
	pthread_mutex_unlock(&s->sync.lock);
}

/*
 * What rsync's receiver keeps of a file that failed verification, or was
 * cut short (@cut: the stream ended in it; kept only when literal data
 * came, @got_literal): with --partial-dir (or --delay-updates) it goes to
 * DIR/NAME without the sender's mtime; with --partial it becomes the file,
 * its mtime untouched after a failed verification and the epoch when cut
 * short; the next attempt (the redo, or the next run) uses it as its
 * basis.  Otherwise it is discarded, or, written in place, stays where it
 * is.  The event is quiet: this is not the sender's file, nothing is
 * reported committed.  Returns the word rsync's message uses.
 */
static const char *keep_partial(struct berth_session *s, struct recv_file *r,
				bool cut, bool got_literal)
{
	if (!r->cf)
		return "discarded";
	if (r->inplace || (!s->dest.pdir && !s->opts.partial) ||
	    (cut && !got_literal)) {
		berth_commit_file_abort(r->cf);
		return r->inplace ? "retained" : "discarded";
	}
	/* The event is quiet: release the reference it would have. */
	berth__commit_user_done(s, r->user);
	if (s->dest.pdir) {
		berth_commit_file_finish_sub(r->cf, s->dest.pdir,
					     BERTH_COMMIT_NO_TIMES,
					     SESSION_QUIET);
		return "put into partial-dir";
	}
	berth_commit_file_finish_flags(
		r->cf, cut ? BERTH_COMMIT_ZERO_TIME : BERTH_COMMIT_NO_TIMES,
		SESSION_QUIET);
	return "retained";
}

/* After the checksum: commit, or keep or discard (and redo on a first
 * mismatch). */
static int finish_file(struct berth_session *s, int32_t ndx,
		       const struct berth_file *f, struct recv_file *r,
		       int vret, uint64_t total)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	const char *kept;

	if (vret == -BERTH_ECHECKSUM) {
		kept = keep_partial(s, r, false, false);
		if (berth__fst_get(s, ndx).attempts < 2) {
			berth__session_log(s, BERTH_LOG_WARNING,
					   "WARNING: %s failed verification -- "
					   "update %s (will try again).\n",
					   fname, kept);
			return queue_redo(s, ndx);
		}
		berth__session_file_error(
			s, "ERROR: %s failed verification -- update %s.\n",
			fname, kept);
		set_done(s, ndx);
		return 0;
	}
	if (vret < 0 || r->werr) {
		if (r->cf)
			berth_commit_file_abort(r->cf);
		berth__session_file_error(
			s, "%s: %s\n", fname,
			berth_strerror(vret < 0 ? vret : r->werr));
		berth__session_file_failed(s, fname, vret < 0 ? vret : r->werr);
		set_done(s, ndx);
		return 0;
	}
	if (total != (uint64_t)f->size)
		berth__session_log(s, BERTH_LOG_DEBUG,
				   "%s: %llu bytes, the list said %lld\n",
				   fname, (unsigned long long)total,
				   (long long)f->size);
	/* Done only once the commit stage has it: a flush then waits for it
	 * (hard-link followers are linked after a flush).  Errors come by
	 * event.  --delay-updates: into the partial dir for now. */
	if (r->cf && s->opts.delay_updates) {
		pthread_mutex_lock(&s->sync.lock);
		berth__fst_of(s, ndx)->delayed = 1;
		pthread_mutex_unlock(&s->sync.lock);
		berth_commit_file_finish_sub(r->cf, s->dest.pdir, 0,
					     (void *)(intptr_t)(ndx + 1));
	} else if (r->cf) {
		berth_commit_file_finish(r->cf);
	}
	atomic_fetch_add_explicit(&s->rep.files_written, 1,
				  memory_order_relaxed);
	set_done(s, ndx);
	berth__session_progress(s);
	return 0;
}

/*
 * One file's data: the sum head echo, the tokens into delta apply (matched
 * blocks read from the basis through the pump), the whole-file checksum.
 * Returns 0 when the session can go on (the file itself may have failed,
 * and is then reported or queued for redo), or a stream error.
 */
static int receive_file(struct berth_session *s, int32_t ndx,
			const struct berth_file *f, int btype,
			struct berth_commit_xattrs *xattrs)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_delta_file df = {.basis_fd = -1};
	struct recv_file r = {.s = s, .ndx = ndx};
	struct berth_commit_meta meta;
	struct berth_tok_event ev;
	struct file_state st = berth__fst_get(s, ndx);
	uint64_t append_from = st.appended ? append_from_of(s, ndx) : 0;
	uint64_t total = 0, lit, data_start;
	uint8_t *seen = NULL; /* zlib: a matched block for the decoder */
	int ret, vret = 0;

	/* rsync's %b: the file's data from its sum head to its checksum. */
	data_start = s->in.data_done;
	ret = berth_tok_dec_begin(s->stg.tok);
	if (ret == 0)
		ret = next_token(s, &ev);
	if (ret < 0)
		goto early;
	if (ret != BERTH_TOK_HEAD) {
		ret = -BERTH_EPROTO;
		goto early;
	}
	df.head = *ev.head;
	df.csum_type = s->neg.cp.type;
	df.seed_first = s->neg.sum_seed_first;
	df.seed = s->neg.cp.seed;
	/* The sender echoes the basis we named, or there is no echo. */
	if (btype != st.basis_type) {
		ret = -BERTH_EPROTO;
		goto early;
	}
	/* ... and the head we sent, field for field: its strong-sum length
	 * too, and blocks whenever a basis was offered (--append: a prefix,
	 * possibly empty). */
	if (berth_sum_head_echo_check(&df.head, s->neg.proto, s->neg.cp.type,
				      (uint32_t)s->opts.block_size,
				      !st.appended && st.attempts > 1) < 0 ||
	    (st.had_basis && !st.appended && df.head.count == 0)) {
		berth__session_fatal(s, RERR_PROTOCOL,
				     "%s: the sender echoed a sum head that "
				     "was not sent (count %d, block length "
				     "%d, checksum length %d)\n",
				     fname, (int)df.head.count,
				     (int)df.head.blength,
				     (int)df.head.s2length);
		ret = -BERTH_ECANCELLED;
		goto early;
	}
	if (st.appended) {
		/* The head describes the kept prefix: nothing else may be
		 * referenced, and only --append-verify hashes the prefix. */
		if (berth_sum_head_len(&df.head) != append_from) {
			ret = -BERTH_EPROTO;
			goto early;
		}
		if (s->opts.append == 2)
			df.hash_prefix = append_from;
	}
	if (df.head.count > 0) {
		/* Blocks of a basis never offered, or one that is gone. */
		char ppath[PATH_MAX];

		ret = st.had_basis ? 0 : -EINVAL;
		if (ret == 0 && btype == BASIS_PARTIAL) {
			ret = berth__partial_path(s, fname, ppath,
						  sizeof(ppath));
			if (ret == 0)
				ret = open_basis(s->dest.root_fd, ppath,
						 s->opts.open_noatime,
						 &df.basis_size);
		} else if (ret == 0) {
			ret = open_basis(btype >= 0 ? s->dest.alt_fd[btype]
						    : s->dest.root_fd,
					 fname, s->opts.open_noatime,
					 &df.basis_size);
		}
		if (ret < 0) {
			ret = -BERTH_EPROTO;
			goto early;
		}
		df.basis_fd = ret;
	}
	berth__session_meta(s, f, st.exists, st.cur_mode, &meta);
	meta.user = berth__commit_user(s, ndx); /* events: ndx + 1 */
	r.user = meta.user;
	meta.xattrs = xattrs; /* -X: taken by the commit stage */
	xattrs = NULL;
	meta.size_hint = (uint64_t)f->size;
	r.sparse = s->opts.sparse && !st.appended && !s->opts.inplace;
	r.inplace = st.appended || s->opts.inplace;
	ret = berth_commit_file_begin(
		s->stg.commit, fname, &meta,
		(st.appended	   ? BERTH_COMMIT_APPEND
		 : s->opts.inplace ? BERTH_COMMIT_INPLACE
				   : 0) |
			(s->opts.preallocate ? BERTH_COMMIT_PREALLOCATE : 0) |
			(s->opts.sparse && !st.appended && !s->opts.inplace
				 ? BERTH_COMMIT_SPARSE
				 : 0),
		&r.cf);
	if (ret == 0 && st.appended)
		ret = berth_commit_file_skip(r.cf, append_from);
	if (ret < 0) {
		if (!r.cf)
			berth__commit_user_done(s, meta.user);
		berth__session_file_error(s, "%s: %s\n", fname,
					  berth_strerror(ret));
		r.cf = NULL; /* drain the data, commit nothing */
	}
	lit = 0;
	s->stg.apply_out = &r;
	ret = berth_delta_apply_begin(s->stg.apply, &df);
	while (ret == 0) {
		ret = next_token(s, &ev);
		if (ret == BERTH_TOK_LITERAL) {
			lit += ev.len;
			ret = berth_delta_apply_literal(s->stg.apply, ev.ptr,
							ev.len);
		} else if (ret == BERTH_TOK_BLOCKS) {
			ret = berth_tok_dec_needs_basis(s->stg.tok)
				      ? zlib_blocks(s, &df, &ev, &seen)
				      : berth_delta_apply_blocks(
						s->stg.apply,
						(uint32_t)ev.block,
						(uint32_t)ev.nblocks);
		} else if (ret == BERTH_TOK_END) {
			vret = berth_delta_apply_finish(s->stg.apply, ev.sum,
							s->neg.digest_len,
							&total);
			if (vret == 0)
				keep_sum(s, ndx, ev.sum,
					 s->in.data_done - data_start);
			break;
		} else if (ret >= 0) {
			ret = -BERTH_EPROTO;
		}
	}
	free(seen);
	if (ret < 0)
		berth_delta_apply_abort(s->stg.apply);
	sparse_end(&r);
	s->stg.apply_out = NULL;
	if (df.basis_fd >= 0)
		close(df.basis_fd);
	if (ret < 0) {
		/* A stream or protocol error (or a cancel): the session ends,
		 * with what came so far kept as --partial asks. */
		keep_partial(s, &r, true, lit > 0);
		return ret;
	}
	atomic_fetch_add_explicit(&s->rep.literal_bytes, lit,
				  memory_order_relaxed);
	if (total > lit)
		atomic_fetch_add_explicit(&s->rep.matched_bytes, total - lit,
					  memory_order_relaxed);
	return finish_file(s, ndx, f, &r, vret, total);
early:
	free(xattrs);
	return ret;
}

/*
 * Wait until the generator has handled entry @ndx: only then is its state
 * meaningful.  (A client answers only what it was asked, but nothing
 * forces a peer to be a well-behaved client.)
 */
static void wait_generated(struct berth_session *s, int32_t ndx)
{
	if (atomic_load(&s->sync.gen_pos) > ndx)
		return; /* the usual case: asked for, so generated */
	pthread_mutex_lock(&s->sync.lock);
	atomic_store(&s->sync.gen_waiter, true);
	while (atomic_load(&s->sync.gen_pos) <= ndx && !s->rep.fatal)
		pthread_cond_wait(&s->sync.cond, &s->sync.lock);
	atomic_store(&s->sync.gen_waiter, false);
	pthread_mutex_unlock(&s->sync.lock);
}

static int dones_seen(struct berth_session *s)
{
	int n;

	pthread_mutex_lock(&s->sync.lock);
	n = s->sync.sender_dones;
	pthread_mutex_unlock(&s->sync.lock);
	return n;
}

/*
 * A sender's NDX_DONE.  With incremental recursion the first ones only
 * release lists the generator finished (§10.1): all but the last list's
 * answer; the answer to the last list's NDX_DONE is the phase's S1.
 * Returns the phase NDX_DONEs so far, or a protocol error.
 */
static int sender_done(struct berth_session *s)
{
	int dones;

	pthread_mutex_lock(&s->sync.lock);
	if (s->lst.inc &&
	    !(s->lst.flist_eof &&
	      s->lst.sender_releases + 1 >= (int)s->lst.lists_total)) {
		/* A release of a list not received is a lie.  (One the
		 * generator has not finished yet only comes from a replayed
		 * or hostile stream: the list is freed once both are true.) */
		if (!s->lst.release_next) {
			pthread_mutex_unlock(&s->sync.lock);
			berth__session_log(s, BERTH_LOG_ERROR,
					   "berth: NDX_DONE with no file list "
					   "to release\n");
			return -BERTH_EPROTO;
		}
		s->lst.sender_releases++;
		berth__list_release(s);
		dones = s->sync.sender_dones;
	} else {
		/* S1 of an incremental session also answers the last list. */
		if (s->lst.inc && s->sync.sender_dones == 0)
			berth__list_release(s);
		dones = ++s->sync.sender_dones;
	}
	pthread_cond_broadcast(&s->sync.cond);
	pthread_mutex_unlock(&s->sync.lock);
	return dones;
}

/* An incremental list or its end (§7.9), where an ndx was expected. */
static int flist_ndx(struct berth_session *s, int32_t ndx)
{
	bool eof;
	int ret;

	pthread_mutex_lock(&s->sync.lock);
	eof = s->lst.flist_eof;
	pthread_mutex_unlock(&s->sync.lock);
	if (!s->lst.inc || eof) {
		berth__session_log(s, BERTH_LOG_ERROR,
				   "berth: file list index %d %s\n", (int)ndx,
				   s->lst.inc
					   ? "after the end of the file lists"
					   : "without incremental recursion");
		return -BERTH_EPROTO;
	}
	if (ndx == BERTH_NDX_FLIST_EOF) {
		berth__lists_eof(s);
		return 0;
	}
	ret = berth__read_flist(s, BERTH_NDX_FLIST_OFFSET - ndx);
	if (ret < 0)
		berth__session_log(s, BERTH_LOG_ERROR,
				   "berth: file list for directory #%d: %s\n",
				   (int)(BERTH_NDX_FLIST_OFFSET - ndx),
				   berth_strerror(ret));
	return ret;
}

/* One item record from the sender (the list of @ndx is referenced). */
static int recv_item(struct berth_session *s, int32_t ndx,
		     const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	/* NULL: an item of a list's directory (ndx start - 1) */
	const char *fname = f ? berth_file_path(f, fpath) : NULL;
	struct berth_commit_xattrs *x;
	char xname[4096];
	size_t xlen;
	uint16_t iflags;
	uint8_t btype = 0;
	int ret, basis;

	/* Before protocol 29 every item the sender sends is a transfer. */
	iflags = BERTH_ITEM_TRANSFER;
	ret = s->neg.proto >= 29 ? berth__in_shortint(&s->in, &iflags) : 0;
	if (ret < 0)
		return ret;
	if (iflags & BERTH_ITEM_BASIS_TYPE_FOLLOWS) {
		ret = berth__in_u8(&s->in, &btype);
		if (ret < 0)
			return ret;
	}
	if (iflags & BERTH_ITEM_XNAME_FOLLOWS) {
		ret = berth__in_vstring(&s->in, xname, sizeof(xname), &xlen);
		if (ret < 0)
			return ret;
	}
	/* -X: the values that follow the header, and what the item
	 * gets (rsync's fnamecmp holds the values not sent). */
	basis = !(iflags & BERTH_ITEM_BASIS_TYPE_FOLLOWS) ? s->dest.root_fd
		: btype < s->dest.nalt ? s->dest.alt_fd[btype]
				       : -1;
	ret = berth__xa_recv(s, ndx, iflags, basis, &x);
	if (ret < 0)
		return ret;
	if (!f && (iflags & BERTH_ITEM_TRANSFER)) {
		free(x);
		return -BERTH_EPROTO; /* data for a list's directory */
	}
	if (!(iflags & BERTH_ITEM_TRANSFER)) {
		/* An echo: nothing to do, unless its xattrs differ. */
		if (x)
			ret = berth_commit_set_xattrs(s->stg.commit, fname, x,
						      NULL);
		if (ret < 0 && ret != -BERTH_ECANCELLED)
			berth__session_file_error(s, "%s: %s\n", fname,
						  berth_strerror(ret));
		return 0;
	}
	wait_generated(s, ndx);
	/* Data only for what we asked, and only in phases 0 and 1. */
	if (berth__fst_get(s, ndx).state != FST_REQUESTED ||
	    !S_ISREG(f->mode) || dones_seen(s) >= 2) {
		free(x);
		return -BERTH_EPROTO;
	}
	if (s->opts.dry_run) {
		free(x);
		set_done(s, ndx);
		return 0;
	}
	/* Before 29 the basis is not named on the wire: the receiver uses
	 * the one the generator chose (rsync's receiver finds the same one
	 * again: the file, its partial file, or the one alternate dir). */
	if (s->neg.proto < 29)
		return receive_file(s, ndx, f,
				    berth__fst_get(s, ndx).basis_type, x);
	return receive_file(s, ndx, f,
			    !(iflags & BERTH_ITEM_BASIS_TYPE_FOLLOWS) ? -1
			    : btype == BERTH_FNAMECMP_PARTIAL_DIR
				    ? BASIS_PARTIAL
				    : btype,
			    x);
}

/*
 * Protocol 29's keep-alive: the index one past the list with item flags
 * IS_NEW and nothing else.  0 if it was one (consumed), else an error.
 */
static int keepalive_29(struct berth_session *s, int32_t ndx)
{
	uint16_t iflags;

	if (s->neg.proto != 29 || ndx != (int32_t)s->lst.files_total)
		return -BERTH_EPROTO;
	if (berth__in_shortint(&s->in, &iflags) < 0 ||
	    iflags != BERTH_ITEM_IS_NEW)
		return -BERTH_EPROTO;
	return 0;
}

int berth__recv_loop(struct berth_session *s)
{
	const struct berth_file *f = NULL;
	struct sess_list *l;
	int32_t ndx, i = -1;
	int ret;

	for (;;) {
		ret = berth__in_ndx(&s->in, &ndx);
		if (ret < 0)
			return ret;
		if (ndx == BERTH_NDX_DONE) {
			ret = sender_done(s);
			if (ret < 0)
				return ret;
			if (ret == berth__sender_dones_total(s))
				return 0;
			continue;
		}
		if (ndx == BERTH_NDX_FLIST_EOF ||
		    ndx <= BERTH_NDX_FLIST_OFFSET) {
			ret = flist_ndx(s, ndx);
			if (ret < 0)
				return ret;
			continue;
		}
		/* An entry of a list not yet released, or its directory
		 * slot (echoes only); the reference keeps the list while we
		 * work on it. */
		pthread_mutex_lock(&s->sync.lock);
		l = ndx >= 0 ? berth__list_of(s, ndx, &i) : NULL;
		if (l) {
			l->refs++;
			f = i >= 0 ? &l->fl->files[i] : NULL;
		}
		pthread_mutex_unlock(&s->sync.lock);
		if (!l && keepalive_29(s, ndx) == 0)
			continue;
		if (!l) {
			berth__session_log(s, BERTH_LOG_ERROR,
					   "berth: invalid file index %d\n",
					   (int)ndx);
			return -BERTH_EPROTO;
		}
		ret = recv_item(s, ndx, f);
		pthread_mutex_lock(&s->sync.lock);
		berth__list_unref(s, l);
		pthread_mutex_unlock(&s->sync.lock);
		if (ret < 0)
			return ret;
	}
}

/* Delta apply's output callback: into the current file's commit handle. */
int berth__recv_apply_out(void *arg, const void *buf, size_t len)
{
	struct berth_session *s = arg;

	return s->stg.apply_out ? to_commit(s->stg.apply_out, buf, len) : 0;
}
