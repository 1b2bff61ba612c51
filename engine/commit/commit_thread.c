/* SPDX-License-Identifier: MIT */
/*
 * The commit thread and the stage's life: create, the thread's loop (take
 * completions and commands, hold back a command whose path overlaps one in
 * flight, hand the rest to the file, operation and flush handlers), flush,
 * cancel and free.  The queue, buffers, slots and completion hand-off it
 * shares with the handlers are commit_core.c's.
 *
 * Locking: c->lock is a leaf.  It is never held while calling into the
 * pump (so pump->lock and c->lock are never nested), and pump callbacks
 * take only c->lock.  Event callbacks and the per-item state machines run
 * on the commit thread without c->lock.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/commit/commit_int.h"

#define DEF_BUF_SIZE (64u * 1024)
#define DEF_BUDGET (16u * 1024 * 1024)
#define DEF_MAX_FILES 256
#define DEF_MAX_OPS 256
#define DEF_DIR_CACHE 64

/*
 * True when a finishing file (its CMD_END seen, so it completes without
 * further commands) has a path overlapping @p1 or @p2.  Files still being
 * written are not waited for: their finish may be queued behind us.
 */
static int files_overlap(struct berth_commit *c, const char *p1, const char *p2)
{
	struct berth_commit_file *f;
	int hit = 0;

	pthread_mutex_lock(&c->lock);
	for (f = c->all; f && !hit; f = f->all_next) {
		if (!f->finishing || f->stage_done)
			continue;
		hit = berth_path_overlap(p1, strlen(p1), f->path,
					 strlen(f->path)) ||
		      (p2 && berth_path_overlap(p2, strlen(p2), f->path,
						strlen(f->path)));
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

/*
 * True when @cmd names a path overlapping an operation in flight (or, for
 * an operation, a finishing file).
 */
static int cmd_blocked(struct berth_commit *c, struct commit_cmd *cmd)
{
	const char *p1 = NULL, *p2 = NULL;
	struct commit_op *op, *o;

	if (c->cancelling)
		return 0;
	if (cmd->kind == CMD_BEGIN) {
		p1 = commit_container_of(cmd, struct berth_commit_file,
					 cmd_begin)
			     ->path;
	} else if (cmd->kind == CMD_OP) {
		o = commit_container_of(cmd, struct commit_op, cmd);
		p1 = o->path;
		if (o->kind == OP_HARDLINK || o->kind == OP_RENAME)
			p2 = o->path2;
	} else {
		return 0;
	}
	if (cmd->kind == CMD_OP && files_overlap(c, p1, p2))
		return 1;
	if (!c->ops)
		return 0;
	for (op = c->ops; op; op = op->next) {
		if (berth_path_overlap(p1, strlen(p1), op->path,
				       strlen(op->path)))
			return 1;
		if (p2 && berth_path_overlap(p2, strlen(p2), op->path,
					     strlen(op->path)))
			return 1;
		if ((op->kind == OP_HARDLINK || op->kind == OP_RENAME) &&
		    berth_path_overlap(p1, strlen(p1), op->path2,
				       strlen(op->path2)))
			return 1;
	}
	return 0;
}

static void flush_done(struct berth_commit *c, struct commit_flush *fl)
{
	c->flush_head = fl->next;
	if (!c->flush_head)
		c->flush_tail = &c->flush_head;
	if (!fl->err)
		fl->err = c->err_since_flush;
	c->err_since_flush = 0;
	pthread_mutex_lock(&c->lock);
	fl->done = 1;
	pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
}

/* Advance the oldest flush as far as the current state allows. */
static void flush_check(struct berth_commit *c)
{
	struct commit_flush *fl;
	unsigned busy;

	while ((fl = c->flush_head)) {
		if (fl->phase == 0) {
			if (c->track.next != &c->track &&
			    c->track.next->seq <= fl->target)
				return;
			if (fl->shutdown) {
				pthread_mutex_lock(&c->lock);
				busy = c->nfiles + c->nops;
				pthread_mutex_unlock(&c->lock);
				if (busy)
					return;
			}
			fl->phase = 1;
			if (!c->cancelling)
				berth__commit_dir_sync_all(c);
		}
		if (fl->phase == 1) {
			if (c->dirsyncs)
				return;
			if (!fl->shutdown) {
				flush_done(c, fl);
				continue;
			}
			fl->phase = 2;
			berth__commit_dir_evict_all(c);
		}
		if (c->inflight || c->dcache.nalive)
			return;
		flush_done(c, fl);
	}
}

/* Abort every file the stage still works on (cancel or shutdown). */
static void abort_files(struct berth_commit *c, int only_unfinished)
{
	struct berth_commit_file *f, *list = NULL;

	/* Collect under the lock with a ref each; cancel without it.  A
	 * small file not begun yet is begun here, so that it completes
	 * without its producer (whose finish or abort then finds it done). */
	pthread_mutex_lock(&c->lock);
	for (f = c->all; f; f = f->all_next) {
		if (f->stage_done || (only_unfinished && f->finishing))
			continue;
		if (!f->begin_queued) {
			f->begin_queued = 1;
			f->begun = 1;
			f->state = F_WRITE; /* nothing opened: to cleanup */
		}
		f->refs++;
		f->cancel_next = list;
		list = f;
	}
	pthread_mutex_unlock(&c->lock);
	while ((f = list)) {
		list = f->cancel_next;
		berth__commit_file_cancel(c, f);
		berth__commit_file_unref(c, f);
	}
}

static void process_cmd(struct berth_commit *c, struct commit_cmd *cmd)
{
	struct commit_flush *fl;

	switch (cmd->kind) {
	case CMD_BEGIN:
	case CMD_WRITE:
	case CMD_END:
		berth__commit_file_cmd(c, cmd);
		break;
	case CMD_OP:
		berth__commit_op_start(
			c, commit_container_of(cmd, struct commit_op, cmd));
		break;
	case CMD_FLUSH:
		fl = commit_container_of(cmd, struct commit_flush, cmd);
		fl->target = c->seq;
		fl->next = NULL;
		if (c->cancelling)
			fl->err = -BERTH_ECANCELLED;
		if (fl->shutdown && !c->cancelling)
			abort_files(c, 1);
		*c->flush_tail = fl;
		c->flush_tail = &fl->next;
		break;
	}
}

/* Cancelling, with nothing left in flight or held (@idle: no command
 * waits on this thread): tell berth_commit_cancel().  Under c->lock. */
static void cancel_settle(struct berth_commit *c, bool idle)
{
	if (c->cancelling && !c->cancel_done && idle && !c->qhead &&
	    !atomic_load(&c->comp) && !c->inflight && !c->nfiles && !c->nops &&
	    !c->dirsyncs && !c->flush_head) {
		c->cancel_done = 1;
		pthread_cond_broadcast(&c->idle);
	}
}

static void *commit_main(void *arg)
{
	struct berth_commit *c = arg;
	struct commit_cmd *lhead = NULL, **ltail = &lhead, *cmd;
	struct commit_io *comp, *io;
	int cancelled;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		atomic_store(&c->sleeping, true);
		while (!atomic_load(&c->comp) && !c->exit &&
		       !(c->cancelled && !c->cancelling) &&
		       (c->stalled || (!c->qhead && !lhead))) {
			if (c->space_owed) { /* berth__commit_space_due() */
				c->space_owed = 0;
				pthread_mutex_unlock(&c->lock);
				pthread_cond_broadcast(&c->space);
				pthread_mutex_lock(&c->lock);
				continue;
			}
			/* A producer's last slot may come back while we
			 * sleep (berth__commit_slot_put() wakes us). */
			cancel_settle(c, !lhead);
			pthread_cond_wait(&c->wake, &c->lock);
		}
		atomic_store(&c->sleeping, false);
		if (c->exit)
			break;
		comp = berth__commit_comp_take(c);
		if (c->qhead) {
			*ltail = c->qhead;
			ltail = c->qtail;
			c->qhead = NULL;
			c->qtail = &c->qhead;
		}
		cancelled = c->cancelled;
		pthread_mutex_unlock(&c->lock);

		while ((io = comp)) {
			comp = io->next;
			c->inflight--;
			io->done(c, io);
		}
		if (cancelled && !c->cancelling) {
			c->cancelling = 1;
			abort_files(c, 0);
		}
		while (lhead) {
			if (c->stalled)
				c->stalled = cmd_blocked(c, lhead);
			else if (cmd_blocked(c, lhead))
				c->stalled = 1;
			if (c->stalled)
				break;
			cmd = lhead;
			lhead = cmd->next;
			if (!lhead)
				ltail = &lhead;
			process_cmd(c, cmd);
		}
		flush_check(c);

		pthread_mutex_lock(&c->lock);
		cancel_settle(c, !lhead);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int berth_commit_create(struct berth_pump *pump, int root_dirfd,
			const struct berth_commit_opts *opts,
			berth_commit_event_cb cb, void *cb_arg,
			struct berth_commit **out)
{
	struct berth_commit *c;
	struct timespec now;
	unsigned i;
	int r;

	if (!pump || root_dirfd < 0 || !out)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (opts)
		c->o = *opts;
	if (c->o.durability < BERTH_DURABLE_NONE ||
	    c->o.durability > BERTH_DURABLE_BATCH) {
		free(c);
		return -EINVAL;
	}
	if (!c->o.buf_size)
		c->o.buf_size = DEF_BUF_SIZE;
	if (!c->o.mem_budget)
		c->o.mem_budget = DEF_BUDGET;
	if (!c->o.max_files)
		c->o.max_files = DEF_MAX_FILES;
	if (!c->o.max_ops)
		c->o.max_ops = DEF_MAX_OPS;
	if (!c->o.dir_cache)
		c->o.dir_cache = DEF_DIR_CACHE;
	c->nbufs = c->o.mem_budget / c->o.buf_size;
	if (c->nbufs < 2)
		c->nbufs = 2;
	c->file_cap = c->nbufs / 2;
	c->pump = pump;
	c->root = root_dirfd;
	atomic_init(&c->bak_root, -1);
	c->cb = cb;
	c->cb_arg = cb_arg;
	c->qtail = &c->qhead;
	c->flush_tail = &c->flush_head;
	c->serial_tail = &c->serial_head;
	c->track.next = c->track.prev = &c->track;
	berth__commit_dirs_init(c);
	clock_gettime(CLOCK_REALTIME, &now);
	c->rng = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)now.tv_sec ^
		 (uint64_t)(uintptr_t)c;
	if (!c->rng)
		c->rng = 1;

	c->bufs = calloc(c->nbufs, sizeof(*c->bufs));
	c->bufmem = malloc(c->nbufs * c->o.buf_size);
	if (!c->bufs || !c->bufmem) {
		r = -ENOMEM;
		goto fail_mem;
	}
	for (i = 0; i < c->nbufs; i++) {
		c->bufs[i].data = c->bufmem + (size_t)i * c->o.buf_size;
		c->bufs[i].cmd.kind = CMD_WRITE;
		c->bufs[i].next = c->free_bufs;
		c->free_bufs = &c->bufs[i];
	}
	c->nfree = c->nbufs;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	pthread_cond_init(&c->space, NULL);
	pthread_cond_init(&c->idle, NULL);
	r = -pthread_create(&c->thread, NULL, commit_main, c);
	if (r)
		goto fail_thread;
	*out = c;
	return 0;

fail_thread:
	pthread_cond_destroy(&c->idle);
	pthread_cond_destroy(&c->space);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
fail_mem:
	free(c->bufmem);
	free(c->bufs);
	free(c);
	return r;
}

static int on_commit_thread(struct berth_commit *c)
{
	return pthread_equal(pthread_self(), c->thread);
}

/* Queue a flush record and wait for it. */
static int run_flush(struct berth_commit *c, int shutdown)
{
	struct commit_flush fl;

	memset(&fl, 0, sizeof(fl));
	fl.cmd.kind = CMD_FLUSH;
	fl.shutdown = shutdown;
	pthread_mutex_lock(&c->lock);
	berth__commit_enqueue_locked(c, &fl.cmd);
	while (!fl.done)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	return fl.err;
}

int berth_commit_flush(struct berth_commit *c)
{
	if (on_commit_thread(c))
		return -EDEADLK;
	return run_flush(c, 0);
}

int berth_commit_cancel(struct berth_commit *c)
{
	if (on_commit_thread(c))
		return -EDEADLK;
	pthread_mutex_lock(&c->lock);
	c->cancelled = 1;
	pthread_cond_signal(&c->wake);
	pthread_cond_broadcast(&c->space);
	while (!c->cancel_done)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void berth_commit_free(struct berth_commit *c)
{
	struct berth_commit_file *f;

	if (!c)
		return;
	run_flush(c, 1);
	pthread_mutex_lock(&c->lock);
	c->exit = 1;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	berth__commit_dirs_free(c);
	/* Handles the caller never finished: their stage side is done. */
	while ((f = c->all)) {
		c->all = f->all_next;
		free(f->path);
		free(f);
	}
	while (atomic_load(&c->pushers))
		sched_yield(); /* a completion's pusher leaving comp_push() (commit_core.c) */
	pthread_cond_destroy(&c->idle);
	pthread_cond_destroy(&c->space);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c->bufmem);
	free(c->bufs);
	free(c);
}

int berth_commit_durability(int configured, bool client_fsync)
{
	if (configured != BERTH_DURABLE_NONE)
		return configured;
	return client_fsync ? BERTH_DURABLE_BATCH : BERTH_DURABLE_NONE;
}

void berth_commit_stats(struct berth_commit *c, struct berth_commit_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}

void berth_commit_set_backup_dir(struct berth_commit *c, int dirfd)
{
	/* Under the queue lock: ordered before every command queued after. */
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->bak_root, dirfd);
	pthread_mutex_unlock(&c->lock);
}
