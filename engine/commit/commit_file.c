/* SPDX-License-Identifier: MIT */
/*
 * One file's life in the commit stage.
 *
 * Producer side (any one thread per handle): begin, write (copy into a
 * stage buffer, queue it when full), skip, finish/abort.  CMD_END is always
 * queued, also after cancel, so the handle stays valid until the commit
 * thread has seen every command that names it.
 *
 * Commit thread: parent dir -> open temp (O_CREAT|O_EXCL beneath the
 * parent) -> writes, many in flight -> [ftruncate] -> [fchown] -> [xattrs]
 * -> fchmod -> utimens -> [fsync] -> close -> rename.  (Extended attributes
 * after the owner, as rsync sets them: a chown drops security.capability.)  A failure anywhere (or an abort)
 * waits for the writes in flight, closes the fd, unlinks the temp file and
 * reports the error; the final name is never touched until the rename.
 *
 * A file struct has two references: the producer's (dropped when CMD_END is
 * processed) and the stage's (dropped when the stage is done with it).
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/commit/commit_int.h"

static int file_inplace(const struct berth_commit_file *f)
{
	return !!(f->flags & (BERTH_COMMIT_INPLACE | BERTH_COMMIT_APPEND));
}

void berth__commit_file_unref(struct berth_commit *c,
			      struct berth_commit_file *f)
{
	int last;

	pthread_mutex_lock(&c->lock);
	last = --f->refs == 0;
	if (last) {
		if (f->all_prev)
			f->all_prev->all_next = f->all_next;
		else
			c->all = f->all_next;
		if (f->all_next)
			f->all_next->all_prev = f->all_prev;
	}
	pthread_mutex_unlock(&c->lock);
	if (last) {
		free(f->sub);
		berth__commit_xattr_release(&f->xj);
		free(f->meta.xattrs);
		free(f->path);
		free(f);
	}
}

int berth_commit_file_begin(struct berth_commit *c, const char *relpath,
			    const struct berth_commit_meta *meta,
			    unsigned flags, struct berth_commit_file **out)
{
	struct berth_commit_file *f;
	const char *base;
	size_t dirlen;
	uint64_t tag;
	int r;

	r = berth_path_split(relpath, &dirlen, &base);
	f = r ? NULL : calloc(1, sizeof(*f));
	if (f)
		f->path = strdup(relpath);
	if (!r && (!f || !f->path))
		r = -ENOMEM;
	/* --backup: the old file's new name, which must fit one component. */
	if (!r && c->o.backup_suffix)
		r = berth__commit_bakname(c, base, f->bak);
	if (r) {
		if (meta)
			free(meta->xattrs); /* taken, also on error */
		if (f)
			free(f->path);
		free(f);
		return r;
	}
	f->c = c;
	f->base = f->path + (base - relpath);
	f->dirlen = dirlen;
	if (meta)
		f->meta = *meta;
	else
		f->meta = (struct berth_commit_meta){.mode = 0600,
						     .mtime_nsec = UTIME_OMIT,
						     .uid = (uint32_t)-1,
						     .gid = (uint32_t)-1};
	f->flags = flags;
	f->deferred = !(flags &
			(BERTH_COMMIT_INPLACE | BERTH_COMMIT_APPEND |
			 BERTH_COMMIT_PREALLOCATE | BERTH_COMMIT_SPARSE)) &&
		      c->o.durability == BERTH_DURABLE_NONE &&
		      !c->o.use_backup_dir && !f->meta.xattrs &&
		      f->meta.size_hint <= c->o.buf_size;
	f->fd = -1;
	f->pendt = &f->pend;
	f->heldt = &f->held;
	f->refs = 2;
	f->state = F_RESOLVE;
	f->cmd_begin.kind = CMD_BEGIN;
	f->cmd_end.kind = CMD_END;

	tag = berth__commit_slot_get(c, 1);
	if (!tag) {
		free(f->meta.xattrs);
		free(f->path);
		free(f);
		return -BERTH_ECANCELLED;
	}
	f->tag = tag;
	/* Listed and queued atomically with the cancel check, so a cancel
	 * either sees the file queued or the file never gets queued. */
	pthread_mutex_lock(&c->lock);
	if (c->cancelled) {
		r = -BERTH_ECANCELLED;
	} else {
		f->all_next = c->all;
		if (c->all)
			c->all->all_prev = f;
		c->all = f;
		if (!f->deferred)
			berth__commit_queue_begin_locked(c, f);
	}
	pthread_mutex_unlock(&c->lock);
	if (r) {
		berth__commit_slot_put(c, 1);
		free(f->meta.xattrs);
		free(f->path);
		free(f);
		return r;
	}
	*out = f;
	return 0;
}

/* A deferred (small) file that turns out not to be: begin it now. */
static void file_undefer(struct berth_commit_file *f)
{
	if (!f->deferred)
		return;
	f->deferred = 0;
	pthread_mutex_lock(&f->c->lock);
	berth__commit_queue_begin_locked(f->c, f);
	pthread_mutex_unlock(&f->c->lock);
}

static void buf_put_chain(struct berth_commit *c, struct commit_buf *b)
{
	struct commit_buf *next;

	for (; b; b = next) {
		next = b->next;
		berth__commit_buf_put(c, b);
	}
}

/* Queue the held buffers as one command (one chain). */
static int file_send(struct berth_commit_file *f)
{
	struct commit_buf *b = f->held;
	int r;

	if (!b)
		return 0;
	f->held = NULL;
	f->heldt = &f->held;
	f->nheld = 0;
	r = berth__commit_enqueue(f->c, &b->cmd);
	if (r)
		buf_put_chain(f->c, b);
	return r;
}

/* The current buffer is full (or the file ends): hold it. */
static int file_hold(struct berth_commit_file *f)
{
	struct commit_buf *b = f->cur;

	if (!b)
		return 0;
	file_undefer(f);
	f->cur = NULL;
	if (!b->len) {
		berth__commit_buf_put(f->c, b);
		return 0;
	}
	b->next = NULL;
	*f->heldt = b;
	f->heldt = &b->next;
	if (++f->nheld < COMMIT_WRITE_HOLD)
		return 0;
	return file_send(f);
}

/* Queue the producer's current buffer, if any, and what it holds. */
static int file_push(struct berth_commit_file *f)
{
	int r = file_hold(f);

	return r ? r : file_send(f);
}

/* A free buffer; the held ones are queued before any wait for one (they
 * may be what the budget lacks).  NULL: none (@nowait) or cancelled. */
static struct commit_buf *file_buf_get(struct berth_commit_file *f, int nowait,
				       int *err)
{
	struct commit_buf *b;

	if (f->held) {
		b = berth__commit_buf_get(f->c, 1);
		if (b)
			return b;
		*err = file_send(f);
		if (*err)
			return NULL;
	}
	return berth__commit_buf_get(f->c, nowait);
}

/* Copy up to @len bytes; wait for buffers unless @nowait.  Returns the
 * bytes taken, or a negative error when none were. */
static ssize_t file_copy(struct berth_commit_file *f, const void *buf,
			 size_t len, int nowait)
{
	struct berth_commit *c = f->c;
	const char *p = buf;
	struct commit_buf *b;
	size_t n, done = 0;
	int r;

	r = atomic_load_explicit(&f->err, memory_order_relaxed);
	if (r)
		return r;
	while (done < len) {
		if (!f->cur) {
			r = 0;
			b = file_buf_get(f, nowait, &r);
			if (!b) {
				if (!r)
					r = nowait ? -EAGAIN
						   : -BERTH_ECANCELLED;
				break;
			}
			b->file = f;
			b->off = f->pos;
			b->len = 0;
			f->cur = b;
		}
		b = f->cur;
		n = c->o.buf_size - b->len;
		if (n > len - done)
			n = len - done;
		memcpy(b->data + b->len, p + done, n);
		b->len += n;
		f->pos += n;
		done += n;
		if (b->len == c->o.buf_size) {
			r = file_hold(f);
			if (r)
				return r;
		}
	}
	return done ? (ssize_t)done : r;
}

int berth_commit_file_write(struct berth_commit_file *f, const void *buf,
			    size_t len)
{
	ssize_t n = file_copy(f, buf, len, 0);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -BERTH_ECANCELLED;
}

ssize_t berth_commit_file_try_write(struct berth_commit_file *f,
				    const void *buf, size_t len)
{
	return file_copy(f, buf, len, 1);
}

int berth_commit_file_skip(struct berth_commit_file *f, uint64_t len)
{
	int r;

	if (!file_inplace(f) && !(f->flags & BERTH_COMMIT_SPARSE))
		return -EINVAL;
	r = file_push(f);
	if (r)
		return r;
	f->pos += len;
	return 0;
}

uint64_t berth_commit_file_tag(const struct berth_commit_file *f)
{
	return f->tag;
}

static int file_end(struct berth_commit_file *f, int abort)
{
	struct berth_commit *c = f->c;
	struct commit_buf *drop = NULL;
	int r = 0;

	if (abort) {
		drop = f->cur;
		f->cur = NULL;
		buf_put_chain(c, f->held);
		f->held = NULL;
		f->heldt = &f->held;
		f->nheld = 0;
	} else if (!f->deferred) {
		r = file_push(f);
	}
	f->abort_req = abort;
	f->size = f->pos;
	if (!r)
		r = atomic_load_explicit(&f->err, memory_order_relaxed);
	/* Always queued, even after cancel: see the top of this file.  A
	 * small file is begun here, its data attached (or it was already
	 * cancelled: abort_files() marked it begun). */
	pthread_mutex_lock(&c->lock);
	if (f->deferred) {
		if (!f->begin_queued && !abort) {
			f->small = 1;
			f->sbuf = f->cur;
		} else if (!abort) {
			drop = f->cur;
		}
		f->cur = NULL;
		f->pre_abort = abort;
		berth__commit_queue_begin_locked(c, f);
	}
	berth__commit_enqueue_locked(c, &f->cmd_end);
	pthread_mutex_unlock(&c->lock);
	if (drop)
		berth__commit_buf_put(c, drop);
	return r;
}

int berth_commit_file_finish(struct berth_commit_file *f)
{
	return file_end(f, 0);
}

int berth_commit_file_finish_flags(struct berth_commit_file *f, unsigned flags,
				   void *user)
{
	/* Read by the commit thread only once the end is queued. */
	if (flags & BERTH_COMMIT_NO_TIMES) {
		f->meta.mtime_nsec = UTIME_OMIT;
	} else if (flags & BERTH_COMMIT_ZERO_TIME) {
		f->meta.mtime_sec = 0;
		f->meta.mtime_nsec = 0;
	}
	f->meta.user = user;
	return file_end(f, 0);
}

void berth_commit_file_abort(struct berth_commit_file *f)
{
	file_end(f, 1);
}

int berth_commit_file_finish_sub(struct berth_commit_file *f, const char *sub,
				 unsigned flags, void *user)
{
	size_t n = f->dirlen;
	int r = -EINVAL;

	if (!file_inplace(f) && sub && !strchr(sub, '/'))
		r = berth_path_check(sub);
	if (!r) {
		f->sub = malloc(n + 1 + strlen(sub) + 1);
		if (!f->sub)
			r = -ENOMEM;
	}
	if (r) {
		file_end(f, 1);
		return r;
	}
	if (n) {
		memcpy(f->sub, f->path, n);
		f->sub[n++] = '/';
	}
	strcpy(f->sub + n, sub);
	f->sub_base = f->sub + n;
	file_undefer(f); /* the steps of the sub-directory are not small */
	return berth_commit_file_finish_flags(f, flags, user);
}

/* ---- commit thread ---- */

static void file_advance(struct berth_commit *c, struct berth_commit_file *f);

/* Where this file's temp lives: beside it, or in the --temp-dir. */
static int tmp_dirfd(const struct berth_commit *c,
		     const struct berth_commit_file *f)
{
	return c->o.use_temp_dir ? c->o.temp_dirfd : f->dir->e.fd;
}
static void alloc_done(struct berth_commit *c, struct commit_io *io);

static void serial_remove(struct berth_commit *c, struct berth_commit_file *f)
{
	struct berth_commit_file **pp = &c->serial_head;

	while (*pp && *pp != f)
		pp = &(*pp)->serial_next;
	if (*pp) {
		*pp = f->serial_next;
		if (!*pp)
			c->serial_tail = pp;
	}
	f->serial_wait = 0;
}

/* Record the first error; stop queued work of a file still writing. */
static void file_fail(struct berth_commit *c, struct berth_commit_file *f,
		      int err)
{
	if (f->failed)
		return;
	f->failed = 1;
	f->fail_err = err;
	atomic_store_explicit(&f->err, err, memory_order_relaxed);
	if (f->serial_wait)
		serial_remove(c, f);
	if (f->state <= F_WRITE && (f->io_busy || f->writes))
		/* Best effort: the requests complete either way. */
		(void)berth_pump_cancel_tag(c->pump, f->tag);
}

void berth__commit_file_cancel(struct berth_commit *c,
			       struct berth_commit_file *f)
{
	file_fail(c, f, -BERTH_ECANCELLED);
	file_advance(c, f);
}

static void file_done(struct berth_commit *c, struct berth_commit_file *f,
		      int err)
{
	struct commit_buf *b;

	f->stage_done = 1;
	f->state = F_DONE;
	while ((b = f->pend)) {
		f->pend = b->next;
		berth__commit_buf_put(c, b);
	}
	if (f->dir)
		berth__commit_dir_put(c, f->dir);
	f->dir = NULL;
	if (f->tdir)
		berth__commit_dir_put(c, f->tdir);
	f->tdir = NULL;
	if (f->bdir)
		berth__commit_dir_put(c, f->bdir);
	f->bdir = NULL;
	berth__commit_track_del(&f->track);
	berth__commit_event(c, BERTH_COMMIT_EV_FILE, err, f->path,
			    f->meta.user);
	berth__commit_slot_put(c, 1);
	berth__commit_file_unref(c, f);
}

/* The next step after @s that applies to this file. */
static int next_state(struct berth_commit *c, struct berth_commit_file *f,
		      int s)
{
	for (;;) {
		switch (++s) {
		case F_TRUNC:
			if (file_inplace(f) ||
			    (f->flags &
			     (BERTH_COMMIT_PREALLOCATE | BERTH_COMMIT_SPARSE)))
				return s;
			break;
		case F_CHOWN:
			if (c->o.preserve_owner &&
			    (f->meta.uid != (uint32_t)-1 ||
			     f->meta.gid != (uint32_t)-1))
				return s;
			break;
		case F_XATTR:
			if (f->meta.xattrs)
				return s;
			break;
		case F_TIMES:
			if (f->meta.mtime_nsec != UTIME_OMIT)
				return s;
			break;
		case F_MKSUB:
		case F_SUBDIR:
			if (f->sub)
				return s;
			break;
		case F_FSYNC:
			if (c->o.durability != BERTH_DURABLE_NONE)
				return s;
			break;
		case F_BAKDIR:
			if (c->o.use_backup_dir && c->o.backup_suffix &&
			    !file_inplace(f) && !f->sub)
				return s;
			break;
		case F_BACKUP:
			if (c->o.backup_suffix && !file_inplace(f) && !f->sub)
				return s;
			break;
		case F_RENAME:
			if (!file_inplace(f))
				return s;
			break;
		default: /* F_CHMOD, F_CLOSE, F_DONE */
			return s;
		}
	}
}

static void step_done(struct berth_commit *c, struct commit_io *io)
{
	struct berth_commit_file *f = commit_container_of(
		io, struct berth_commit_file, io);
	struct berth_commit_file *next;
	int res = (int)io->res;

	f->io_busy = 0;
	switch (f->state) {
	case F_CLEAN_CLOSE:
		/* -ECANCELED: a pump shutdown caught the close before it
		 * ran (the pump's -ECANCELED means "not performed"). */
		if (res == -ECANCELED)
			close(f->fd);
		f->fd = -1;
		goto advance;
	case F_CLEAN_UNLINK:
		if (res == -ECANCELED)
			unlinkat(f->dir->e.fd, f->tmp, 0); /* likewise */
		f->tmp_made = 0;
		goto advance;
	case F_FSYNC:
		if (c->o.durability == BERTH_DURABLE_FILE) {
			/* Pass the one-fsync-at-a-time token on. */
			c->serial_busy = 0;
			if ((next = c->serial_head)) {
				c->serial_head = next->serial_next;
				if (!c->serial_head)
					c->serial_tail = &c->serial_head;
				next->serial_wait = 0;
				file_advance(c, next);
			}
		}
		break;
	case F_CLOSE:
		if (res == -ECANCELED)
			close(f->fd); /* a shutdown caught it unrun */
		f->fd = -1; /* closed even when close reports an error */
		break;
	case F_CHOWN:
		res = berth__commit_chown_result(c, res);
		break;
	case F_BACKUP:
		if (res == -ENOENT)
			res = 0; /* nothing to keep: the file is new */
		else if (f->bak_err && res >= 0)
			res = f->bak_err; /* an old file, and nowhere to keep it */
		break;
	case F_MKSUB:
		if (res == -EEXIST)
			res = 0; /* not a directory: opening it fails */
		else if (res >= 0 && c->o.durability == BERTH_DURABLE_BATCH)
			f->dir->dirty = 1;
		break;
	case F_RENAME:
		if (res >= 0) {
			/* In place now, whatever was asked meanwhile. */
			f->tmp_made = 0;
			f->failed = 0;
			if (c->o.durability == BERTH_DURABLE_BATCH)
				(f->tdir ? f->tdir : f->dir)->dirty = 1;
		}
		break;
	}
	if (res < 0)
		file_fail(c, f, res);
	else
		f->state = next_state(c, f, f->state);
advance:
	file_advance(c, f);
}

/* The extended attributes are set: on to the next step. */
static void xattr_done(struct berth_commit *c, struct commit_xattr_job *j)
{
	struct berth_commit_file *f = commit_container_of(
		j, struct berth_commit_file, xj);

	f->io_busy = 0;
	f->state = next_state(c, f, F_XATTR);
	file_advance(c, f);
}

static void step_submit(struct berth_commit *c, struct berth_commit_file *f)
{
	struct berth_req *req = &f->io.req;
	uint64_t tag = f->tag;

	switch (f->state) {
	case F_XATTR:
		f->xj.want = f->meta.xattrs;
		f->xj.path = f->path;
		f->xj.user = f->meta.user;
		f->xj.tag = f->tag;
		f->io_busy = 1;
		berth__commit_xattr_run(c, &f->xj, f->fd, xattr_done);
		return;
	case F_TRUNC:
		berth_prep_ftruncate(req, f->fd, f->size);
		break;
	case F_CHOWN:
		berth_prep_fchownat(req, f->fd, NULL, f->meta.uid, f->meta.gid,
				    0);
		break;
	case F_CHMOD:
		berth_prep_fchmodat(req, f->fd, NULL, f->meta.mode & 07777, 0);
		break;
	case F_TIMES:
		f->ts[0].tv_sec = f->meta.mtime_sec;
		f->ts[0].tv_nsec = f->meta.mtime_nsec;
		f->ts[1] = f->ts[0];
		berth_prep_utimensat(req, f->fd, NULL, f->ts, 0);
		break;
	case F_FSYNC:
		berth_prep_fsync(req, f->fd, 0);
		break;
	case F_CLOSE:
	case F_CLEAN_CLOSE:
		berth_prep_close(req, f->fd);
		break;
	case F_BACKUP:
		if (f->bak_err) {
			berth_prep_statx(req, f->dir->e.fd, f->base,
					 AT_SYMLINK_NOFOLLOW, STATX_TYPE,
					 &f->bak_stx);
			break;
		}
		/* f->bak: named at begin. */
		berth_prep_renameat2(req, f->dir->e.fd, f->base,
				     (f->bdir ? f->bdir : f->dir)->e.fd, f->bak,
				     0);
		break;
	case F_MKSUB:
		berth_prep_mkdirat(req, f->dir->e.fd, f->sub_base, 0700);
		break;
	case F_RENAME:
		berth_prep_renameat2(req, tmp_dirfd(c, f), f->tmp,
				     (f->tdir ? f->tdir : f->dir)->e.fd,
				     f->base, 0);
		break;
	case F_CLEAN_UNLINK:
		berth_prep_unlinkat(req, tmp_dirfd(c, f), f->tmp, 0);
		break;
	default:
		abort(); /* own invariant: no other state submits */
	}
	/*
	 * Cleanup runs under the stage's own tag: a berth_pump_cancel_tag()
	 * of this file's tag may still be pending in the pump, and a
	 * cancelled close or unlink would leak the fd or the temp file.
	 */
	if (f->state == F_CLEAN_CLOSE || f->state == F_CLEAN_UNLINK)
		tag = c->o.tag_base;
	f->io_busy = 1;
	berth__commit_submit(c, &f->io, step_done, tag);
}

static void write_done(struct berth_commit *c, struct commit_io *io)
{
	struct commit_buf *b = commit_container_of(io, struct commit_buf, io);
	struct berth_commit_file *f = b->file;
	ssize_t res = io->res;
	size_t total = 0;

	f->writes--;
	while ((b = f->wbufs)) {
		f->wbufs = b->next;
		total += b->len;
		berth__commit_buf_put(c, b);
	}
	if (res >= 0 && (size_t)res != total)
		res = -EIO;
	if (res >= 0) {
		pthread_mutex_lock(&c->lock);
		c->st.bytes += total;
		pthread_mutex_unlock(&c->lock);
	}
	if (res < 0)
		file_fail(c, f, (int)res);
	file_advance(c, f);
}

/*
 * Write the file's pending buffers that follow each other in the file, up
 * to COMMIT_WRITE_IOV, as one request.  One write in flight per file:
 * writes to one file run one at a time anyway (its inode lock; io_uring
 * gives them to one io-wq worker in turn), and each request is a round of
 * wake-ups (pump, worker, commit thread), so a producer that runs ahead
 * of the disk gets its buffers written many per round.
 */
static void write_submit(struct berth_commit *c, struct berth_commit_file *f)
{
	struct commit_buf *b = f->pend, *last = b;
	int n = 0;

	f->wbufs = b;
	do {
		f->wiov[n].iov_base = last->data;
		f->wiov[n].iov_len = last->len;
		n++;
		b = last->next;
		if (!b || n == COMMIT_WRITE_IOV ||
		    b->off != last->off + last->len)
			break;
		last = b;
	} while (1);
	f->pend = last->next;
	if (!f->pend)
		f->pendt = &f->pend;
	last->next = NULL;
	b = f->wbufs;
	f->writes++;
	if (n == 1)
		berth_prep_write(&b->io.req, f->fd, b->data, b->len, b->off);
	else
		berth_prep_writev(&b->io.req, f->fd, f->wiov, n, b->off);
	berth__commit_submit(c, &b->io, write_done, f->tag);
}

/* F_SUBDIR / F_BAKDIR: the second directory's fd arrived (or failed). */
static void dir2_ready(struct berth_commit *c, struct commit_waiter *w,
		       struct commit_dir *d, int err)
{
	struct berth_commit_file *f = commit_container_of(
		w, struct berth_commit_file, wait);

	f->io_busy = 0;
	if (f->state == F_SUBDIR)
		f->tdir = d;
	else
		f->bdir = d;
	if (err && f->state == F_BAKDIR) {
		/* No backup directory (none was prepared: no old file was
		 * expected); F_BACKUP checks that there is none. */
		f->bak_err = err;
		err = 0;
	}
	if (err)
		file_fail(c, f, err);
	else
		f->state = next_state(c, f, f->state);
	file_advance(c, f);
}

/*
 * A small file in one pool call (pool thread): the same steps as the
 * request chain, in the same order, and on failure the temp file is gone.
 * The commit thread does not touch the file while the call runs.
 */
static ssize_t small_run(void *arg)
{
	struct berth_commit_file *f = arg;
	struct berth_commit *c = f->c;
	const struct commit_buf *b = f->sbuf;
	int dfd = f->dir->e.fd, tfd = tmp_dirfd(c, f), fd, r = 0;
	struct timespec ts[2];
	size_t done = 0;
	ssize_t n;

	fd = berth_plat_open_beneath_mode(tfd, f->tmp,
					  O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return fd;
	while (b && done < b->len && !r) {
		n = pwrite(fd, b->data + done, b->len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? -errno : -EIO;
		else
			done += (size_t)n;
	}
	if (!r && c->o.preserve_owner &&
	    (f->meta.uid != (uint32_t)-1 || f->meta.gid != (uint32_t)-1))
		r = berth__commit_chown_result(
			c,
			fchown(fd, f->meta.uid, f->meta.gid) < 0 ? -errno : 0);
	if (!r && fchmod(fd, f->meta.mode & 07777) < 0)
		r = -errno;
	if (!r && f->meta.mtime_nsec != UTIME_OMIT) {
		ts[0].tv_sec = f->meta.mtime_sec;
		ts[0].tv_nsec = f->meta.mtime_nsec;
		ts[1] = ts[0];
		r = futimens(fd, ts) < 0 ? -errno : 0;
	}
	if (!r && c->o.durability != BERTH_DURABLE_NONE && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && c->o.backup_suffix &&
	    renameat2(dfd, f->base, dfd, f->bak, 0) < 0 && errno != ENOENT)
		r = -errno;
	if (!r && renameat2(tfd, f->tmp, dfd, f->base, 0) < 0)
		r = -errno;
	if (r)
		unlinkat(tfd, f->tmp, 0);
	return r;
}

static void small_advance(struct berth_commit *c, struct berth_commit_file *f);

static void small_done(struct berth_commit *c, struct commit_io *io)
{
	struct berth_commit_file *f = commit_container_of(
		io, struct berth_commit_file, io);
	int res = (int)io->res;

	f->io_busy = 0;
	if (res == -EEXIST && !f->failed && ++f->retries < 16) {
		small_advance(c, f); /* temp name taken: draw another */
		return;
	}
	if (res == -ECANCELED) /* queued work cancelled: it did not run */
		res = -BERTH_ECANCELLED;
	if (res < 0) {
		file_fail(c, f, res);
	} else {
		/* In place now, whatever was asked meanwhile. */
		f->failed = 0;
		f->fail_err = 0;
		f->state = F_DONE;
		pthread_mutex_lock(&c->lock);
		c->st.bytes += f->size;
		pthread_mutex_unlock(&c->lock);
		if (c->o.durability == BERTH_DURABLE_BATCH)
			f->dir->dirty = 1;
	}
	file_advance(c, f);
}

static void small_advance(struct berth_commit *c, struct berth_commit_file *f)
{
	if (f->failed || f->state == F_DONE) {
		if (f->sbuf)
			berth__commit_buf_put(c, f->sbuf);
		f->sbuf = NULL;
		file_done(c, f, f->failed ? f->fail_err : 0);
		return;
	}
	if (!f->finishing)
		return; /* its end comes right after its begin */
	berth__commit_tmpname(c, f->base, f->tmp);
	f->io_busy = 1;
	berth_prep_call(&f->io.req, small_run, f);
	berth__commit_submit(c, &f->io, small_done, f->tag);
}

static void file_advance(struct berth_commit *c, struct berth_commit_file *f)
{
	struct commit_buf *b;

	if (!f->begun || f->stage_done || f->io_busy || f->serial_wait ||
	    f->state == F_RESOLVE)
		return;
	if (f->small) {
		small_advance(c, f);
		return;
	}
	if (f->failed) {
		while ((b = f->pend)) {
			f->pend = b->next;
			berth__commit_buf_put(c, b);
		}
		f->pendt = &f->pend;
		if (f->writes)
			return;
		if (f->fd >= 0) {
			f->state = F_CLEAN_CLOSE;
			step_submit(c, f);
		} else if (f->tmp_made && f->dir) {
			f->state = F_CLEAN_UNLINK;
			step_submit(c, f);
		} else {
			file_done(c, f, f->fail_err);
		}
		return;
	}
	if (f->state == F_WRITE) {
		if (f->pend && !f->writes)
			write_submit(c, f);
		if (!f->finishing || f->writes || f->pend)
			return;
		f->state = next_state(c, f, F_WRITE);
	}
	if (f->state == F_DONE) {
		file_done(c, f, 0);
		return;
	}
	if (f->state == F_FSYNC && c->o.durability == BERTH_DURABLE_FILE) {
		if (c->serial_busy) {
			f->serial_next = NULL;
			*c->serial_tail = f;
			c->serial_tail = &f->serial_next;
			f->serial_wait = 1;
			return;
		}
		c->serial_busy = 1;
	}
	if (f->state == F_SUBDIR || f->state == F_BAKDIR) {
		f->io_busy = 1;
		f->wait.ready = dir2_ready;
		if (f->state == F_SUBDIR)
			berth__commit_dir_get(c, f->sub, strlen(f->sub), 0,
					      &f->wait);
		else
			berth__commit_dir_get(c, f->path, f->dirlen, 1,
					      &f->wait);
		return;
	}
	step_submit(c, f);
}

static void file_open(struct berth_commit *c, struct berth_commit_file *f);

static void open_done(struct berth_commit *c, struct commit_io *io)
{
	struct berth_commit_file *f = commit_container_of(
		io, struct berth_commit_file, io);
	int res = (int)io->res;

	f->io_busy = 0;
	if (res == -EEXIST && !file_inplace(f) && !f->failed &&
	    ++f->retries < 16) {
		file_open(c, f); /* temp name taken: draw another */
		return;
	}
	if (res < 0) {
		/* A cancelled open may or may not have created the file;
		 * any other failure created nothing. */
		if (res != -ECANCELED)
			f->tmp_made = 0;
		file_fail(c, f, res);
	} else {
		f->fd = res;
		if ((f->flags & BERTH_COMMIT_PREALLOCATE) &&
		    f->meta.size_hint && !f->failed) {
			/* Writes queued meanwhile wait (io_busy). */
			f->state = F_ALLOC;
			f->io_busy = 1;
			berth_prep_fallocate(&f->io.req, f->fd, 0, 0,
					     f->meta.size_hint);
			berth__commit_submit(c, &f->io, alloc_done, f->tag);
			return;
		}
	}
	f->state = F_WRITE;
	file_advance(c, f);
}

/* Preallocation is advice: a filesystem without it (EOPNOTSUPP) or no
 * space for all of it at once still gets the writes. */
static void alloc_done(struct berth_commit *c, struct commit_io *io)
{
	struct berth_commit_file *f = commit_container_of(
		io, struct berth_commit_file, io);

	f->io_busy = 0;
	f->state = F_WRITE;
	file_advance(c, f);
}

static void file_open(struct berth_commit *c, struct berth_commit_file *f)
{
	const char *name = f->base;

	memset(&f->how, 0, sizeof(f->how));
	f->how.mode = 0600;
	f->how.resolve = COMMIT_RESOLVE;
	if (file_inplace(f)) {
		f->how.flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
	} else {
		berth__commit_tmpname(c, f->base, f->tmp);
		f->how.flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC;
		f->tmp_made = 1;
		name = f->tmp;
	}
	f->state = F_OPEN;
	f->io_busy = 1;
	berth_prep_openat2(&f->io.req,
			   file_inplace(f) ? f->dir->e.fd : tmp_dirfd(c, f),
			   name, &f->how);
	berth__commit_submit(c, &f->io, open_done, f->tag);
}

static void dir_ready(struct berth_commit *c, struct commit_waiter *w,
		      struct commit_dir *d, int err)
{
	struct berth_commit_file *f = commit_container_of(
		w, struct berth_commit_file, wait);

	f->dir = d;
	if (err) {
		file_fail(c, f, err);
		f->state = F_WRITE; /* nothing opened: straight to cleanup */
		file_advance(c, f);
		return;
	}
	if (f->failed) {
		f->state = F_WRITE;
		file_advance(c, f);
		return;
	}
	if (f->small) {
		f->state = F_SMALL;
		file_advance(c, f);
		return;
	}
	file_open(c, f);
}

/* Handle CMD_BEGIN, CMD_WRITE or CMD_END on the commit thread. */
void berth__commit_file_cmd(struct berth_commit *c, struct commit_cmd *cmd)
{
	struct berth_commit_file *f;
	struct commit_buf *b;

	switch (cmd->kind) {
	case CMD_BEGIN:
		f = commit_container_of(cmd, struct berth_commit_file,
					cmd_begin);
		f->begun = 1;
		if (c->cancelling || f->pre_abort)
			file_fail(c, f, -BERTH_ECANCELLED);
		if (f->failed) {
			f->state = F_WRITE;
			file_advance(c, f);
			return;
		}
		f->wait.ready = dir_ready;
		berth__commit_dir_get(c, f->path, f->dirlen, 0, &f->wait);
		return;
	case CMD_WRITE:
		b = commit_container_of(cmd, struct commit_buf, cmd);
		f = b->file;
		if (f->failed || f->stage_done) {
			buf_put_chain(c, b);
			return;
		}
		/* A chain of buffers (the producer's held ones). */
		*f->pendt = b;
		while (b->next)
			b = b->next;
		f->pendt = &b->next;
		file_advance(c, f);
		return;
	case CMD_END:
		f = commit_container_of(cmd, struct berth_commit_file, cmd_end);
		if (!f->stage_done) {
			f->finishing = 1;
			berth__commit_track_add(c, &f->track);
			if (f->abort_req || c->cancelling)
				file_fail(c, f, -BERTH_ECANCELLED);
			file_advance(c, f);
		}
		berth__commit_file_unref(c, f); /* the producer's reference */
		return;
	}
}
