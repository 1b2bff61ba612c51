/* SPDX-License-Identifier: MIT */
/*
 * The receiver, on the net-in thread: reads the sender's answer to each
 * item record (rsync-protocol.md §9.1), decodes the token stream (§9.2),
 * rebuilds the file through delta apply (basis reads on the pump), streams
 * it into the commit stage, verifies the whole-file checksum (§9.4) and
 * commits or discards it; a first mismatch is queued for the redo pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "engine/session_int.h"

struct recv_file {
	struct berth_session *s;
	struct berth_commit_file *cf;
	int32_t ndx;
	int werr; /* first commit write error */
};

static int to_commit(void *arg, const void *buf, size_t len)
{
	struct recv_file *r = arg;
	int ret;

	if (!r->cf || r->werr)
		return 0; /* dry run, or already failed: drain the tokens */
	ret = berth_commit_file_write(r->cf, buf, len);
	if (ret < 0)
		r->werr = ret;
	return 0;
}

static int open_basis(struct berth_session *s, const char *name,
		      uint64_t *size)
{
	struct open_how how = {
		.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	struct stat st;
	long fd;

	fd = syscall(SYS_openat2, s->root_fd, name, &how, sizeof(how));
	if (fd < 0)
		return -errno;
	if (fstat((int)fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close((int)fd);
		return -ENOENT;
	}
	*size = (uint64_t)st.st_size;
	return (int)fd;
}

/* Queue @ndx for the redo pass and wake the generator. */
static int queue_redo(struct berth_session *s, int32_t ndx)
{
	int32_t *p;
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->nredo == s->redo_cap) {
		size_t cap = s->redo_cap ? 2 * s->redo_cap : 16;

		p = realloc(s->redo, cap * sizeof(*p));
		if (!p) {
			ret = -ENOMEM;
			goto out;
		}
		s->redo = p;
		s->redo_cap = cap;
	}
	s->redo[s->nredo++] = ndx;
	pthread_cond_broadcast(&s->cond);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* The plain token stream (§9.2), into delta apply. */
static int read_tokens(struct berth_session *s, struct berth_delta_apply *a)
{
	uint32_t run_first = 0, run_n = 0;
	int32_t t;
	size_t avail, n;
	int ret;

	for (;;) {
		ret = berth__in_int32(&s->in, &t);
		if (ret < 0)
			return ret;
		if (t < 0) {
			uint32_t blk = (uint32_t)(-(t + 1));

			/* Coalesce a run of consecutive blocks. */
			if (run_n && blk == run_first + run_n) {
				run_n++;
				continue;
			}
			if (run_n) {
				ret = berth_delta_apply_blocks(a, run_first,
							       run_n);
				if (ret < 0)
					return ret;
			}
			run_first = blk;
			run_n = 1;
			continue;
		}
		if (run_n) {
			ret = berth_delta_apply_blocks(a, run_first, run_n);
			if (ret < 0)
				return ret;
			run_n = 0;
		}
		if (t == 0)
			return 0;
		while (t > 0) {
			ret = berth__in_need(&s->in, 1);
			if (ret < 0)
				return ret;
			avail = s->in.data_len - s->in.data_pos;
			n = avail < (size_t)t ? avail : (size_t)t;
			ret = berth_delta_apply_literal(
				a, s->in.data + s->in.data_pos, n);
			if (ret < 0)
				return ret;
			berth__in_consumed(&s->in, n);
			atomic_fetch_add_explicit(&s->literal_bytes, n,
						  memory_order_relaxed);
			t -= (int32_t)n;
		}
	}
}

/* One file's data: sum head echo, tokens, checksum. */
static int receive_file(struct berth_session *s, int32_t ndx)
{
	const struct berth_file *f = &s->fl->files[ndx];
	struct berth_delta_file df = {.basis_fd = -1};
	struct recv_file r = {.s = s, .ndx = ndx};
	struct berth_commit_meta meta;
	uint8_t head[BERTH_SUM_HEAD_WIRE];
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];
	uint64_t total = 0, lit;
	int ret, vret;

	ret = berth__in_bytes(&s->in, head, sizeof(head));
	if (ret < 0)
		return ret;
	berth_sum_head_decode(&df.head, head);
	df.csum_type = s->cp.type;
	if (df.head.count > 0) {
		if (!s->fst[ndx].had_basis)
			return -BERTH_EPROTO; /* blocks of a basis never offered */
		ret = open_basis(s, f->name, &df.basis_size);
		if (ret < 0)
			return -BERTH_EPROTO;
		df.basis_fd = ret;
	}
	if (!s->opts.dry_run) {
		berth__session_meta(s, f, s->fst[ndx].exists,
				    s->fst[ndx].cur_mode, &meta);
		meta.user = (void *)(intptr_t)ndx;
		meta.size_hint = (uint64_t)f->size;
		ret = berth_commit_file_begin(s->commit, f->name, &meta, 0,
					      &r.cf);
		if (ret < 0) {
			berth__session_file_error(s, "%s: %s\n", f->name,
						  berth_strerror(ret));
			r.cf = NULL; /* drain the data, commit nothing */
		}
	}
	lit = atomic_load_explicit(&s->literal_bytes, memory_order_relaxed);
	s->apply_out = &r;
	ret = berth_delta_apply_begin(s->apply, &df);
	if (ret == 0)
		ret = read_tokens(s, s->apply);
	if (ret == 0)
		ret = berth__in_bytes(&s->in, sum, s->digest_len);
	vret = ret == 0 ? berth_delta_apply_finish(s->apply, sum,
						     s->digest_len, &total)
			: ret;
	if (ret < 0)
		berth_delta_apply_abort(s->apply);
	s->apply_out = NULL;
	if (df.basis_fd >= 0)
		close(df.basis_fd);
	if (ret < 0) {
		/* A stream or protocol error: the session ends. */
		if (r.cf)
			berth_commit_file_abort(r.cf);
		return ret;
	}
	lit = atomic_load_explicit(&s->literal_bytes, memory_order_relaxed) -
	      lit;
	if (total > lit)
		atomic_fetch_add_explicit(&s->matched_bytes, total - lit,
					  memory_order_relaxed);

	if (vret == -BERTH_ECHECKSUM) {
		if (r.cf)
			berth_commit_file_abort(r.cf);
		if (s->fst[ndx].attempts < 2) {
			berth__session_log(
				s, BERTH_LOG_WARNING,
				"WARNING: %s failed verification -- update "
				"discarded (will try again).\n",
				f->name);
			return queue_redo(s, ndx);
		}
		berth__session_file_error(
			s, "ERROR: %s failed verification -- update discarded.\n",
			f->name);
		s->fst[ndx].state = FST_DONE;
		return 0;
	}
	s->fst[ndx].state = FST_DONE;
	if (vret < 0 || r.werr) {
		if (r.cf)
			berth_commit_file_abort(r.cf);
		berth__session_file_error(s, "%s: %s\n", f->name,
					  berth_strerror(vret < 0 ? vret
								  : r.werr));
		return 0;
	}
	if (r.cf) {
		ret = berth_commit_file_finish(r.cf);
		if (ret < 0)
			return 0; /* reported by the commit event */
	}
	atomic_fetch_add_explicit(&s->files_written, 1, memory_order_relaxed);
	return 0;
}

int berth__recv_loop(struct berth_session *s)
{
	char xname[4096];
	size_t xlen;
	int32_t ndx;
	uint16_t iflags;
	uint8_t btype;
	int ret, dones;

	for (;;) {
		ret = berth__in_ndx(&s->in, &ndx);
		if (ret < 0)
			return ret;
		if (ndx == BERTH_NDX_DONE) {
			pthread_mutex_lock(&s->lock);
			dones = ++s->sender_dones;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
			if (dones == berth__sender_dones_total(s))
				return 0;
			continue;
		}
		if (ndx < 0 || ndx >= (int32_t)s->fl->count)
			return -BERTH_EPROTO;
		ret = berth__in_shortint(&s->in, &iflags);
		if (ret < 0)
			return ret;
		if (iflags & ITEM_BASIS_TYPE_FOLLOWS) {
			ret = berth__in_u8(&s->in, &btype);
			if (ret < 0)
				return ret;
		}
		if (iflags & ITEM_XNAME_FOLLOWS) {
			ret = berth__in_vstring(&s->in, xname, sizeof(xname),
						&xlen);
			if (ret < 0)
				return ret;
		}
		if (!(iflags & ITEM_TRANSFER))
			continue; /* an echo: nothing to do */
		/* Data only for what we asked, and only in phases 0 and 1. */
		if (s->fst[ndx].state != FST_REQUESTED ||
		    !S_ISREG(s->fl->files[ndx].mode) || s->sender_dones >= 2)
			return -BERTH_EPROTO;
		if (s->opts.dry_run) {
			s->fst[ndx].state = FST_DONE;
			continue;
		}
		ret = receive_file(s, ndx);
		if (ret < 0)
			return ret;
	}
}

/* Delta apply's output callback: into the current file's commit handle. */
int berth__recv_apply_out(void *arg, const void *buf, size_t len)
{
	struct berth_session *s = arg;

	return s->apply_out ? to_commit(s->apply_out, buf, len) : 0;
}
