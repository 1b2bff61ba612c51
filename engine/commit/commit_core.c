/* SPDX-License-Identifier: MIT */
/*
 * What every part of the commit stage uses, below the commit thread's
 * loop: the hand-off of pump completions (a lock-free stack) and
 * berth__commit_submit(), event reporting and counting, the write-buffer
 * pool, the command queue (enqueue), file and operation slots, the flush
 * ordering (track), the chown verdict, and temp and backup names.  Calls
 * nothing else of engine/commit.
 *
 * Locking: c->lock is a leaf (see commit_int.h).  It is never held while
 * calling into the pump, and pump callbacks take only c->lock.
 */
#include <errno.h>
#include <string.h>

#include "engine/common/tmpname.h"
#include "engine/commit/commit_int.h"

/*
 * Hand a completion to the commit thread: push it, and wake the thread only
 * if it sleeps.  The push and the load of c->sleeping here, and the
 * thread's store of c->sleeping and load of c->comp before it waits, are
 * sequentially consistent: one side sees the other.  Any thread.
 */
static void comp_push(struct berth_commit *c, struct commit_io *io)
{
	struct commit_io *head;

	/* Once @io is in, the stage may finish and be freed: the free
	 * waits until no thread is here any more. */
	atomic_fetch_add(&c->pushers, 1);
	head = atomic_load(&c->comp);
	do
		io->next = head;
	while (!atomic_compare_exchange_weak(&c->comp, &head, io));
	if (atomic_load(&c->sleeping)) {
		pthread_mutex_lock(&c->lock);
		pthread_cond_signal(&c->wake);
		pthread_mutex_unlock(&c->lock);
	}
	atomic_fetch_sub(&c->pushers, 1);
}

/* Take every completion, oldest first.  Commit thread. */
struct commit_io *berth__commit_comp_take(struct berth_commit *c)
{
	struct commit_io *io = atomic_exchange(&c->comp, NULL), *fifo = NULL;
	struct commit_io *next;

	for (; io; io = next) {
		next = io->next;
		io->next = fifo;
		fifo = io;
	}
	return fifo;
}

/* Pump thread: hand the completion to the commit thread. */
static void commit_pump_cb(struct berth_req *req, ssize_t res)
{
	struct commit_io *io = commit_container_of(req, struct commit_io, req);

	io->res = res;
	comp_push(req->data, io);
}

/* Queue @io's completion with result @res (as the pump would).  Returns 0,
 * so the caller does not queue it again. */
static int complete_now(struct berth_commit *c, struct commit_io *io, int res)
{
	io->res = res;
	comp_push(c, io);
	return 0;
}

/*
 * Submit @io (prepared by the caller) with completion handler @done, run
 * later on the commit thread.  A submit refused by the pump completes the
 * same way with its error.  Commit thread only.
 */
void berth__commit_submit(struct berth_commit *c, struct commit_io *io,
			  void (*done)(struct berth_commit *,
				       struct commit_io *),
			  uint64_t tag)
{
	int r;

	io->done = done;
	berth_req_set_cb(&io->req, commit_pump_cb, c, tag);
	c->inflight++;
	r = berth_pump_submit(c->pump, &io->req);
	/* With the pump gone, our own cleanup still happens: close fds and
	 * remove temp files directly (nothing else may run without it). */
	if (r == -ESHUTDOWN &&
	    (io->req.op == BERTH_OP_CLOSE || io->req.op == BERTH_OP_UNLINKAT))
		r = complete_now(c, io, (int)berth_req_run_sync(&io->req));
	if (r < 0)
		complete_now(c, io, r);
}

/*
 * Run @io's request now, on the commit thread, as a blocking call, and
 * hand its result to @done: for short calls that never wait on the disk,
 * where the round trip through the pump (and, for the calls io_uring does
 * not run, a pool worker) costs more than the call itself.  Through the
 * pump's fault checks, as a submitted request.  Once the pump is shut down
 * it is submitted, and refused, as any other.  Commit thread only.
 */
void berth__commit_run_here(struct berth_commit *c, struct commit_io *io,
			    void (*done)(struct berth_commit *,
					 struct commit_io *),
			    uint64_t tag)
{
	if (berth_pump_stopped(c->pump)) {
		berth__commit_submit(c, io, done, tag);
		return;
	}
	io->done = done;
	berth_req_set_cb(&io->req, NULL, c, tag);
	io->res = berth_pump_run_inline(c->pump, &io->req);
	done(c, io);
}

/* Report one item's outcome and count it.  Commit thread only. */
void berth__commit_event(struct berth_commit *c, struct berth_commit_event *ev)
{
	int kind = ev->kind, err = ev->err;

	if (!err)
		ev->step = BERTH_COMMIT_STEP_NONE;
	pthread_mutex_lock(&c->lock);
	if (kind == BERTH_COMMIT_EV_FILE) {
		if (err)
			c->st.files_failed++;
		else
			c->st.files_done++;
	} else if (kind == BERTH_COMMIT_EV_OP) {
		if (err)
			c->st.ops_failed++;
		else
			c->st.ops_done++;
	}
	pthread_mutex_unlock(&c->lock);
	if (err && !c->err_since_flush)
		c->err_since_flush = err;
	if (c->cb)
		c->cb(c->cb_arg, ev);
}

/*
 * Return a write buffer to the pool and wake the blocked producers.  A
 * broadcast: c->space also has producers waiting for a file or operation
 * slot, and a signal could wake one of those instead of the one waiting
 * for this buffer, which would then sleep on beside a free buffer.
 */
void berth__commit_buf_put(struct berth_commit *c, struct commit_buf *b)
{
	struct berth_commit_file *f = b->file;
	int wake;

	pthread_mutex_lock(&c->lock);
	b->next = c->free_bufs;
	c->free_bufs = b;
	c->nfree++;
	b->file = NULL;
	wake = berth__commit_space_due(c);
	/* A producer at its file's cap: woken once half of it is back, so
	 * that it fills a batch per wake-up, not one buffer. */
	if (f && --f->nbuf <= c->file_cap / 2 && f->cap_wait) {
		f->cap_wait = false;
		wake = 1;
	}
	/* A producer giving back a slot after the cancel (its begin was
	 * refused): the commit thread may be asleep, waiting for the count
	 * to reach 0 to finish the cancel. */
	if (c->cancelled)
		pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	if (wake)
		pthread_cond_broadcast(&c->space);
}

/* At least a quarter of @max is free. */
static int batch_free(unsigned used, unsigned max)
{
	return used + (max + 3) / 4 <= max;
}

int berth__commit_space_due(struct berth_commit *c)
{
	if (!c->wait_buf && !c->wait_file && !c->wait_op)
		return 0;
	if (pthread_equal(pthread_self(), c->thread) &&
	    !(c->wait_buf && batch_free(c->nbufs - c->nfree, c->nbufs)) &&
	    !(c->wait_file && batch_free(c->nfiles, c->o.max_files)) &&
	    !(c->wait_op && batch_free(c->nops, c->o.max_ops))) {
		c->space_owed = 1;
		return 0;
	}
	c->space_owed = 0;
	return 1;
}

void berth__commit_buf_put_chain(struct berth_commit *c, struct commit_buf *b)
{
	struct commit_buf *next;

	for (; b; b = next) {
		next = b->next;
		berth__commit_buf_put(c, b);
	}
}

/*
 * The per-file cap keeps one large file streamed in to half the pool, and
 * the free list is LIFO, so such a file cycles through the same half: the
 * other half's pages are never touched unless several files need them.
 */
struct commit_buf *berth__commit_buf_get(struct berth_commit *c,
					 struct berth_commit_file *f,
					 int nowait)
{
	struct commit_buf *b;
	bool capped;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		capped = f->nbuf >= c->file_cap;
		if ((c->free_bufs && !capped) || c->cancelled || nowait)
			break;
		if (capped)
			f->cap_wait = true;
		else
			c->wait_buf++;
		pthread_cond_wait(&c->space, &c->lock);
		if (!capped)
			c->wait_buf--;
	}
	b = c->cancelled || capped ? NULL : c->free_bufs;
	if (b) {
		c->free_bufs = b->next;
		c->nfree--;
		b->file = f;
		f->nbuf++;
	}
	pthread_mutex_unlock(&c->lock);
	return b;
}

/* Queue a command; the caller holds c->lock. */
void berth__commit_enqueue_locked(struct berth_commit *c,
				  struct commit_cmd *cmd)
{
	cmd->next = NULL;
	*c->qtail = cmd;
	c->qtail = &cmd->next;
	pthread_cond_signal(&c->wake);
}

void berth__commit_queue_begin_locked(struct berth_commit *c,
				      struct berth_commit_file *f)
{
	if (f->begin_queued)
		return;
	f->begin_queued = 1;
	berth__commit_enqueue_locked(c, &f->cmd_begin);
}

/*
 * Queue @cmd unless the stage was cancelled (-BERTH_ECANCELLED).  Producer
 * threads.
 */
int berth__commit_enqueue(struct berth_commit *c, struct commit_cmd *cmd)
{
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (c->cancelled)
		r = -BERTH_ECANCELLED;
	else
		berth__commit_enqueue_locked(c, cmd);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/*
 * Reserve a file or operation slot, waiting for one, and hand out a tag.
 * Returns the tag (> 0), or 0 after cancel.  Producer threads.
 */
uint64_t berth__commit_slot_get(struct berth_commit *c, int is_file)
{
	unsigned *n = is_file ? &c->nfiles : &c->nops;
	unsigned max = is_file ? c->o.max_files : c->o.max_ops;
	unsigned *w = is_file ? &c->wait_file : &c->wait_op;
	uint64_t tag = 0;

	pthread_mutex_lock(&c->lock);
	while (*n >= max && !c->cancelled) {
		(*w)++;
		pthread_cond_wait(&c->space, &c->lock);
		(*w)--;
	}
	if (!c->cancelled) {
		(*n)++;
		tag = c->o.tag_base + ++c->next_tag;
	}
	pthread_mutex_unlock(&c->lock);
	return tag;
}

/*
 * A chown refused for lack of privilege (or an id the filesystem cannot
 * store) is not a failure, as with rsync: count it and go on.
 */
int berth__commit_chown_result(struct berth_commit *c, int res)
{
	if (res != -EPERM && res != -EINVAL)
		return res;
	pthread_mutex_lock(&c->lock);
	c->st.chown_ignored++;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

bool berth__commit_times(const struct berth_commit_meta *m,
			 struct timespec ts[2])
{
	ts[1].tv_sec = m->mtime_sec;
	ts[1].tv_nsec = m->mtime_nsec;
	if (m->atime_set) {
		/* -U: rsync sets the sender's atime with no nanoseconds. */
		ts[0].tv_sec = m->atime_sec;
		ts[0].tv_nsec = 0;
	} else {
		ts[0] = ts[1];
	}
	return m->atime_set || m->mtime_nsec != UTIME_OMIT;
}

/* Release a slot taken by berth__commit_slot_get().  Commit thread. */
void berth__commit_slot_put(struct berth_commit *c, int is_file)
{
	int wake;

	pthread_mutex_lock(&c->lock);
	if (is_file)
		c->nfiles--;
	else
		c->nops--;
	wake = berth__commit_space_due(c);
	/* A producer giving back a slot after the cancel (its begin was
	 * refused): the commit thread may be asleep, waiting for the count
	 * to reach 0 to finish the cancel. */
	if (c->cancelled)
		pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	if (wake)
		pthread_cond_broadcast(&c->space);
}

void berth__commit_track_add(struct berth_commit *c, struct commit_track *t)
{
	t->seq = ++c->seq;
	t->next = &c->track;
	t->prev = c->track.prev;
	c->track.prev->next = t;
	c->track.prev = t;
}

void berth__commit_track_del(struct commit_track *t)
{
	if (!t->next)
		return;
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = t->prev = NULL;
}

/*
 * rsync's temp name ".NAME.XXXXXX" beside the final name, with berth's
 * mark after it (engine/common/tmpname.h: a later session removes it if
 * this process dies), NAME shortened so that the whole fits NAME_MAX.
 * Commit thread (uses c->rng).
 */
void berth__commit_tmpname(struct berth_commit *c, const char *base, char *out)
{
	static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t n = strlen(base);
	uint64_t x;
	int i;

	if (n > NAME_MAX - 8 - BERTH_TMPNAME_MARK_MAX)
		n = NAME_MAX - 8 - BERTH_TMPNAME_MARK_MAX;
	out[0] = '.';
	memcpy(out + 1, base, n);
	out[n + 1] = '.';
	for (i = 0; i < 6; i++) {
		/* xorshift64: uniqueness is enforced by O_EXCL anyway. */
		x = c->rng;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		c->rng = x;
		out[n + 2 + i] = chars[x % (sizeof(chars) - 1)];
	}
	berth_tmpname_mark(out, n + 8);
}

int berth__commit_bakname(const struct berth_commit *c, const char *base,
			  char *out)
{
	size_t n = strlen(base), k = strlen(c->o.backup_suffix);

	if (n + k > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(out, base, n);
	memcpy(out + n, c->o.backup_suffix, k + 1);
	return 0;
}
