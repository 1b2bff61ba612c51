/* SPDX-License-Identifier: MIT */
/*
 * A file's steps on the commit thread: CMD_BEGIN, CMD_WRITE and CMD_END
 * (berth__commit_file_cmd()), and the chain parent dir -> open temp
 * (O_CREAT|O_EXCL beneath the parent) -> writes (one vectored write at a
 * time) -> [ftruncate] -> [fchown] -> [xattrs] -> fchmod -> utimens ->
 * [fsync] -> close -> [backup] -> rename, or for a small file one
 * blocking call on this thread (commit_small.c).  The open, the short
 * steps (step_is_short()) and the writes run on this thread too; the rest
 * through the pump.  (Extended attributes after the owner, as rsync
 * sets them: a chown drops security.capability.)  A failure anywhere (or
 * an abort) waits for the writes in flight, closes the fd, unlinks the
 * temp file and reports the error; the final name is never touched until
 * the rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/commit/commit_int.h"

static void file_advance(struct berth_commit *c, struct berth_commit_file *f);
static void gsync_start(struct berth_commit *c);
static void alloc_done(struct berth_commit *c, struct commit_io *io);

/* @f at its fsync step waits on c->serial_head (last). */
static void serial_push(struct berth_commit *c, struct berth_commit_file *f)
{
	f->serial_next = NULL;
	*c->serial_tail = f;
	c->serial_tail = &f->serial_next;
	f->serial_wait = 1;
}

/* All the files waiting on c->serial_head, taken off it (serial_wait
 * cleared), chained by serial_next. */
static struct berth_commit_file *serial_take(struct berth_commit *c)
{
	struct berth_commit_file *all = c->serial_head, *f;

	c->serial_head = NULL;
	c->serial_tail = &c->serial_head;
	for (f = all; f; f = f->serial_next)
		f->serial_wait = 0;
	return all;
}

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

/* The step a file's state stands for, in an event. */
static int file_step_of(int state)
{
	switch (state) {
	case F_RESOLVE:
	case F_MKSUB:
	case F_SUBDIR:
	case F_BAKDIR:
		return BERTH_COMMIT_STEP_DIR;
	case F_OPEN:
		return BERTH_COMMIT_STEP_OPEN;
	case F_ALLOC:
	case F_WRITE:
	case F_TRUNC:
		return BERTH_COMMIT_STEP_WRITE;
	case F_CHOWN:
		return BERTH_COMMIT_STEP_CHOWN;
	case F_XATTR:
		return BERTH_COMMIT_STEP_XATTR;
	case F_CHMOD:
		return BERTH_COMMIT_STEP_CHMOD;
	case F_TIMES:
		return BERTH_COMMIT_STEP_TIMES;
	case F_FSYNC:
		return BERTH_COMMIT_STEP_FSYNC;
	case F_CLOSE:
		return BERTH_COMMIT_STEP_CLOSE;
	case F_BACKUP:
		return BERTH_COMMIT_STEP_BACKUP;
	case F_RENAME:
		return BERTH_COMMIT_STEP_RENAME;
	default:
		return BERTH_COMMIT_STEP_NONE;
	}
}

/* Record the first error; stop queued work of a file still writing. */
static void file_fail(struct berth_commit *c, struct berth_commit_file *f,
		      int err)
{
	if (f->failed)
		return;
	f->failed = 1;
	f->fail_err = err;
	f->fail_step = f->state == F_SMALL ? f->small_step
					   : file_step_of(f->state);
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
	struct berth_commit_event ev = {.kind = BERTH_COMMIT_EV_FILE};
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
	ev.err = err;
	ev.path = f->path;
	ev.user = f->meta.user;
	ev.step = f->fail_step;
	ev.tmp = f->tmp[0] && !commit_file_inplace(f) ? f->tmp : NULL;
	ev.tmp_in_temp_dir = c->o.use_temp_dir;
	ev.inplace = commit_file_inplace(f);
	berth__commit_event(c, &ev);
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
			if (commit_file_inplace(f) ||
			    (f->flags &
			     (BERTH_COMMIT_PREALLOCATE | BERTH_COMMIT_SPARSE)))
				return s;
			break;
		case F_CHOWN:
			if (c->o.preserve_owner && !c->o.fake_super &&
			    (f->meta.uid != (uint32_t)-1 ||
			     f->meta.gid != (uint32_t)-1))
				return s;
			break;
		case F_XATTR:
			if (f->meta.xattrs)
				return s;
			break;
		case F_TIMES:
			if (f->meta.mtime_nsec != UTIME_OMIT ||
			    f->meta.atime_set)
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
			    !commit_file_inplace(f) && !f->sub)
				return s;
			break;
		case F_BACKUP:
			if (c->o.backup_suffix && !commit_file_inplace(f) &&
			    !f->sub)
				return s;
			break;
		case F_RENAME:
			if (!commit_file_inplace(f))
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
			berth_plat_unlinkat(f->dir->e.fd, f->tmp,
					    0); /* likewise */
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

/*
 * The steps run on the commit thread itself (berth__commit_run_here()):
 * calls that change an inode or a directory entry and return without
 * waiting for the disk.  Not an fsync, a truncate or an -A/fake-super mode
 * job (these may wait, or run long); the cleanup steps, rare, keep their
 * way through the pump.  The open of a file runs here too (file_open()).
 */
static bool step_is_short(const struct berth_commit *c,
			  const struct berth_commit_file *f)
{
	switch (f->state) {
	case F_CHOWN:
	case F_TIMES:
	case F_CLOSE:
	case F_BACKUP:
	case F_MKSUB:
	case F_RENAME:
		return true;
	case F_CHMOD:
		return !berth__commit_mode_special(c, &f->meta);
	default:
		return false;
	}
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
		if (berth__commit_mode_special(c, &f->meta)) {
			/* -A, --fake-super: commit_acl.c */
			f->mj = (struct commit_mode_job){.c = c,
							 .m = &f->meta,
							 .fd = f->fd,
							 .dirfd = -1};
			berth_prep_call(req, berth__commit_mode_run, &f->mj);
			break;
		}
		berth_prep_fchmodat(req, f->fd, NULL, f->meta.mode & 07777, 0);
		break;
	case F_TIMES:
		berth__commit_times(&f->meta, f->ts);
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
		berth_prep_renameat2(req, commit_tmp_dirfd(c, f), f->tmp,
				     (f->tdir ? f->tdir : f->dir)->e.fd,
				     f->base, 0);
		break;
	case F_CLEAN_UNLINK:
		berth_prep_unlinkat(req, commit_tmp_dirfd(c, f), f->tmp, 0);
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
	if (step_is_short(c, f))
		berth__commit_run_here(c, &f->io, step_done, tag);
	else
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
 * to COMMIT_WRITE_IOV, as one request, here on the commit thread: a
 * buffered write copies into the page cache and returns, and through the
 * pump each was a round of wake-ups (pump, io-wq worker, pump, commit
 * thread).  Large files went through the pump until 2026-12-08, for the
 * copy to overlap the commit thread's taking of the next buffers; once a
 * file held at most half the pool and basis reads no longer went through
 * the pump, writing here took 18-29% less CPU and 10-15% less wall on
 * 1 GiB files (W2, W3, W6, alternating runs).  A producer that runs ahead
 * gets its buffers written many per request.
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
	berth__commit_run_here(c, &b->io, write_done, f->tag);
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
	berth_prep_call(&f->io.req, berth__commit_small_run, f);
	/* A handful of short syscalls (no fsync: small files have
	 * durability none). */
	berth__commit_run_here(c, &f->io, small_done, f->tag);
}

/*
 * Batch durability's group sync.  A file at its fsync step waits on
 * c->serial_head; one call at a time, on a pool thread, takes every file
 * waiting: one syncfs() of their file system makes them all durable, then
 * each file's own writeback error is read (berth_plat_sync_check()).  A
 * fsync each was an io-wq worker's sleep and wake-up per file, most of a
 * durable push's cost beyond the floor.  Files arriving meanwhile wait for
 * the next call, so the groups grow with the load.  A file the call did
 * not cover takes its own fsync: on another file system, or when syncfs()
 * failed (its error may belong to any file, so each file's own fsync
 * tells) or is not trusted there (then gsync_off: the rest too).
 */
static ssize_t gsync_run(void *arg)
{
	struct berth_commit *c = arg;
	struct berth_commit_file *f = c->gsync_files;
	uint64_t dev = 0;
	int r = berth_plat_syncfs(f->fd, &dev);

	if (r < 0)
		return r;
	for (; f; f = f->serial_next)
		f->gsync_res = berth_plat_sync_check(f->fd, dev);
	return 0;
}

static void gsync_done(struct berth_commit *c, struct commit_io *io)
{
	struct berth_commit_file *f = c->gsync_files, *next;
	int r = (int)io->res;
	uint64_t covered = 0;
	int res;

	c->gsync_files = NULL;
	if (r == -EOPNOTSUPP)
		c->gsync_off = 1;
	for (; f; f = next) {
		next = f->serial_next;
		f->gsync = 0;
		res = r < 0 ? r : f->gsync_res;
		if (res == -ECANCELED) {
			file_fail(c, f, res); /* a shutdown: it did not run */
		} else if (r < 0 || res == 1) {
			f->own_fsync = 1;
		} else if (res < 0) {
			file_fail(c, f, res);
		} else {
			covered++;
			f->state = next_state(c, f, F_FSYNC);
		}
		file_advance(c, f);
	}
	if (r >= 0) {
		pthread_mutex_lock(&c->lock);
		c->st.group_syncs++;
		c->st.group_synced += covered;
		pthread_mutex_unlock(&c->lock);
	}
	if (c->gsync_off) {
		/* Those that came meanwhile take their own fsync too. */
		for (f = serial_take(c); f; f = next) {
			next = f->serial_next;
			file_advance(c, f);
		}
	} else if (c->serial_head && !c->gsync_files) {
		gsync_start(c);
	}
}

static void gsync_start(struct berth_commit *c)
{
	struct berth_commit_file *f;

	c->gsync_files = serial_take(c);
	for (f = c->gsync_files; f; f = f->serial_next)
		f->gsync = 1;
	berth_prep_call(&c->gsync_io.req, gsync_run, c);
	berth__commit_submit(c, &c->gsync_io, gsync_done, c->o.tag_base);
}

static void file_advance(struct berth_commit *c, struct berth_commit_file *f)
{
	struct commit_buf *b;

	if (!f->begun || f->stage_done || f->io_busy || f->serial_wait ||
	    f->gsync || f->state == F_RESOLVE)
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
		if (f->pend && !f->writes) {
			/* Its completion (here, or later from the pump)
			 * advances @f, which may be gone on return. */
			write_submit(c, f);
			return;
		}
		if (!f->finishing || f->writes)
			return;
		f->state = next_state(c, f, F_WRITE);
	}
	if (f->state == F_DONE) {
		file_done(c, f, 0);
		return;
	}
	if (f->state == F_FSYNC && c->o.durability == BERTH_DURABLE_FILE) {
		if (c->serial_busy) {
			serial_push(c, f);
			return;
		}
		c->serial_busy = 1;
	}
	if (f->state == F_FSYNC && c->o.durability == BERTH_DURABLE_BATCH &&
	    !f->own_fsync && !c->gsync_off) {
		serial_push(c, f);
		if (!c->gsync_files)
			gsync_start(c);
		return;
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
	if (res == -EEXIST && !commit_file_inplace(f) && !f->failed &&
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
	if (commit_file_inplace(f)) {
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
			   commit_file_inplace(f) ? f->dir->e.fd
						  : commit_tmp_dirfd(c, f),
			   name, &f->how);
	berth__commit_run_here(c, &f->io, open_done, f->tag);
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
			berth__commit_buf_put_chain(c, b);
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
