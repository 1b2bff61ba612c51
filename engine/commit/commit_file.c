/* SPDX-License-Identifier: MIT */
/*
 * A file handle, producer side (any one thread per handle): begin, write
 * (copy into a stage buffer, hold it when full, queue the held ones as one
 * command), skip, finish/abort, and the handle's references.  CMD_END is
 * always queued, also after cancel, so the handle stays valid until the
 * commit thread has seen every command that names it.  What the commit
 * thread does with the commands is commit_steps.c's.
 *
 * A file struct has two references: the producer's (dropped when CMD_END is
 * processed) and the stage's (dropped when the stage is done with it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/commit/commit_int.h"

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
		berth__commit_buf_put_chain(f->c, b);
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
		b = berth__commit_buf_get(f->c, f, 1);
		if (b)
			return b;
		*err = file_send(f);
		if (*err)
			return NULL;
	}
	return berth__commit_buf_get(f->c, f, nowait);
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

	if (!commit_file_inplace(f) && !(f->flags & BERTH_COMMIT_SPARSE))
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
		berth__commit_buf_put_chain(c, f->held);
		f->held = NULL;
		f->heldt = &f->held;
		f->nheld = 0;
	} else {
		/* A sparse file's zero tail stays a hole (the truncate to
		 * the size makes it), as rsync leaves it: the receiver skips
		 * whole zero blocks only, so a last partial block of zeros
		 * would take a block of its own. */
		if ((f->flags & BERTH_COMMIT_SPARSE) && f->cur)
			while (f->cur->len && !f->cur->data[f->cur->len - 1])
				f->cur->len--;
		if (!f->deferred)
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
	/* Once its end is queued @f may be gone before @drop is put back:
	 * its count drops here. */
	if (drop) {
		drop->file = NULL;
		f->nbuf--;
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
		f->meta.atime_set = false; /* rsync skips both */
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

	if (!commit_file_inplace(f) && sub && !strchr(sub, '/'))
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
