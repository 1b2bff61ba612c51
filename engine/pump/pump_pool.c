/* SPDX-License-Identifier: MIT */
/*
 * The worker pool: threads that run pump operations with blocking syscalls
 * and post each result back to the pump thread.  It is the whole of the
 * `pool` backend, and the per-op fallback of the `uring` backend.
 *
 * A stream read or write (offset BERTH_OFF_STREAM: a pipe or socket) first
 * polls the fd together with the worker's cancel eventfd, so a request that
 * would block forever can still be cancelled; syscalls on regular files are
 * never interrupted and finish on their own.
 *
 * Each idle worker sleeps on its own condition variable and a submit wakes
 * one of them by name, rather than all sharing one condvar woken with
 * pthread_cond_signal(): glibc (2.36 here) can lose such a signal when
 * several threads wait (sourceware BZ 25847), which left a request queued
 * with every worker asleep (seen under load in bench_pump, pool, depth 1).
 * With one waiter per condvar there is nothing to steal.
 *
 * Lock order: pool->lock is taken alone, except that berth__pool_cancel()
 * runs on the pump thread with no pump lock held.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "pump_int.h"

struct berth_worker {
	struct berth_pool *pool;
	pthread_t thread;
	struct berth_waker cancel; /* nonblocking */
	pthread_cond_t cond; /* this worker's wake-up, under pool->lock */
	struct berth_worker *next_idle; /* under pool->lock */
	bool idle; /* on pool->idle; under pool->lock */
	struct berth_req *running; /* under pool->lock */
	bool cancel_posted; /* cancel signalled; under pool->lock */
};

struct berth_pool {
	struct berth_pump *pump;
	pthread_mutex_t lock;
	struct berth_worker *idle; /* sleeping workers, a stack */
	struct berth_req *head, *tail;
	bool stopping;
	unsigned nworkers;
	struct berth_worker workers[];
};

static ssize_t wait_ready(int fd, short events, int cancel_fd)
{
	struct pollfd pfd[2] = {
		{.fd = fd, .events = events},
		{.fd = cancel_fd, .events = POLLIN},
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[1].revents)
			return -ECANCELED;
		/* POLLERR/POLLHUP: let the syscall report it. */
		return 0;
	}
}

static ssize_t run_rw(struct berth_req *req, int cancel_fd)
{
	ssize_t ret;
	bool rd = req->op == BERTH_OP_READ;

	if (req->cur_off == BERTH_OFF_STREAM) {
		ret = wait_ready(req->fd, rd ? POLLIN : POLLOUT, cancel_fd);
		if (ret < 0)
			return ret;
		do {
			ret = rd ? readv(req->fd, req->cur_iov, req->cur_iovcnt)
				 : writev(req->fd, req->cur_iov,
					  req->cur_iovcnt);
		} while (ret < 0 && errno == EINTR);
	} else {
		do {
			ret = rd ? preadv(req->fd, req->cur_iov,
					  req->cur_iovcnt, (off_t)req->cur_off)
				 : pwritev(req->fd, req->cur_iov,
					   req->cur_iovcnt,
					   (off_t)req->cur_off);
		} while (ret < 0 && errno == EINTR);
	}
	return ret < 0 ? -errno : ret;
}

static int fd_or_path(int ret)
{
	return ret < 0 ? -errno : ret;
}

/*
 * f*xattr() on an O_PATH fd fails with EBADF (Linux up to at least 6.18);
 * the fd's path from berth_plat_fd_path() (its /proc/self/fd link) then
 * reaches the same object: a magic link is a jump to what the fd refers
 * to, never followed further, so a symlink's own attributes are the ones
 * used.
 */
static ssize_t run_xattr(struct berth_req *req)
{
	char proc[32];
	ssize_t ret = -1;

	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			berth_plat_fd_path(req->fd, proc, sizeof(proc));
		switch (req->op) {
		case BERTH_OP_FSETXATTR:
			ret = pass ? setxattr(proc, req->path, req->arg,
					      (size_t)req->len, (int)req->flags)
				   : fsetxattr(req->fd, req->path, req->arg,
					       (size_t)req->len,
					       (int)req->flags);
			break;
		case BERTH_OP_FREMOVEXATTR:
			ret = pass ? removexattr(proc, req->path)
				   : fremovexattr(req->fd, req->path);
			break;
		default:
			ret = pass ? listxattr(proc, req->arg, (size_t)req->len)
				   : flistxattr(req->fd, req->arg,
						(size_t)req->len);
			break;
		}
		if (ret >= 0 || errno != EBADF || req->fd < 0)
			break;
	}
	if (ret < 0 && errno == ENOENT)
		return -EBADF; /* no such fd after all */
	return ret < 0 ? -errno : ret;
}

ssize_t berth__pool_run(struct berth_req *req, int cancel_fd)
{
	switch (req->op) {
	case BERTH_OP_NOP:
		return 0;
	case BERTH_OP_READ:
	case BERTH_OP_WRITE:
		return run_rw(req, cancel_fd);
	case BERTH_OP_FSYNC:
		return fd_or_path(req->flags & BERTH_FSYNC_DATASYNC
					  ? fdatasync(req->fd)
					  : fsync(req->fd));
	case BERTH_OP_OPENAT2:
		return fd_or_path((int)syscall(SYS_openat2, req->fd, req->path,
					       req->arg,
					       sizeof(struct open_how)));
	case BERTH_OP_CLOSE:
		/* Linux frees the fd even when close() fails. */
		return fd_or_path(close(req->fd));
	case BERTH_OP_STATX:
		return fd_or_path(statx(req->fd, req->path, (int)req->flags,
					req->mode, req->arg));
	case BERTH_OP_RENAMEAT2:
		return fd_or_path(renameat2(req->fd, req->path, req->fd2,
					    req->path2, req->flags));
	case BERTH_OP_UNLINKAT:
		return fd_or_path(
			unlinkat(req->fd, req->path, (int)req->flags));
	case BERTH_OP_MKDIRAT:
		return fd_or_path(mkdirat(req->fd, req->path, req->mode));
	case BERTH_OP_SYMLINKAT:
		return fd_or_path(symlinkat(req->path, req->fd2, req->path2));
	case BERTH_OP_LINKAT:
		return fd_or_path(linkat(req->fd, req->path, req->fd2,
					 req->path2, (int)req->flags));
	case BERTH_OP_FCHMODAT:
		return fd_or_path(req->path
					  ? fchmodat(req->fd, req->path,
						     req->mode, (int)req->flags)
					  : fchmod(req->fd, req->mode));
	case BERTH_OP_FCHOWNAT:
		return fd_or_path(
			req->path ? fchownat(req->fd, req->path, req->uid,
					     req->gid, (int)req->flags)
				  : fchown(req->fd, req->uid, req->gid));
	case BERTH_OP_UTIMENSAT:
		return fd_or_path(req->path
					  ? utimensat(req->fd, req->path,
						      req->arg, (int)req->flags)
					  : futimens(req->fd, req->arg));
	case BERTH_OP_MKNODAT:
		return fd_or_path(mknodat(req->fd, req->path, req->mode,
					  (dev_t)req->len));
	case BERTH_OP_FTRUNCATE:
		return fd_or_path(ftruncate(req->fd, (off_t)req->len));
	case BERTH_OP_FALLOCATE:
		return fd_or_path(fallocate(req->fd, (int)req->mode,
					    (off_t)req->cur_off,
					    (off_t)req->len));
	case BERTH_OP_CALL:
		return req->fn ? req->fn(req->arg) : -EINVAL;
	case BERTH_OP_FSETXATTR:
	case BERTH_OP_FREMOVEXATTR:
	case BERTH_OP_FLISTXATTR:
		return run_xattr(req);
	default:
		return -EINVAL;
	}
}

ssize_t berth_req_run_sync(struct berth_req *req)
{
	req->cur_off = req->off;
	req->cur_iov = req->iov;
	req->cur_iovcnt = req->iovcnt;
	return berth__pool_run(req, -1);
}

/* Under pool->lock: take @w off the idle list (a spurious wake-up). */
static void idle_remove(struct berth_pool *pool, struct berth_worker *w)
{
	struct berth_worker **pp;

	for (pp = &pool->idle; *pp; pp = &(*pp)->next_idle) {
		if (*pp == w) {
			*pp = w->next_idle;
			break;
		}
	}
	w->idle = false;
}

static void *worker_main(void *arg)
{
	struct berth_worker *w = arg;
	struct berth_pool *pool = w->pool;
	struct berth_req *req;
	ssize_t res;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->head && !pool->stopping) {
			if (!w->idle) {
				w->idle = true;
				w->next_idle = pool->idle;
				pool->idle = w;
			}
			/* Stays listed across spurious wake-ups; whoever
			 * wakes it takes it off the list. */
			pthread_cond_wait(&w->cond, &pool->lock);
		}
		if (w->idle)
			idle_remove(pool, w);
		if (!pool->head)
			break;
		req = pool->head;
		pool->head = req->next;
		if (!pool->head)
			pool->tail = NULL;
		w->running = req;
		pthread_mutex_unlock(&pool->lock);

		res = berth__pool_run(req, berth_waker_fd(&w->cancel));

		pthread_mutex_lock(&pool->lock);
		w->running = NULL;
		/* A cancel for @req may have fired after the syscall: drop it
		 * so it cannot hit the next request.  No new one can come
		 * now that running is cleared. */
		if (w->cancel_posted) {
			berth_waker_drain(&w->cancel);
			w->cancel_posted = false;
		}
		pthread_mutex_unlock(&pool->lock);
		berth__pump_post(pool->pump, req, res);
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static void pool_stop(struct berth_pool *pool, unsigned started)
{
	unsigned i;

	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	for (i = 0; i < started; i++)
		pthread_cond_signal(&pool->workers[i].cond);
	pthread_mutex_unlock(&pool->lock);
	for (i = 0; i < started; i++)
		pthread_join(pool->workers[i].thread, NULL);
	for (i = 0; i < pool->nworkers; i++) {
		berth_waker_destroy(&pool->workers[i].cancel);
		pthread_cond_destroy(&pool->workers[i].cond);
	}
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

int berth__pool_create(struct berth_pump *p, unsigned nthreads,
		       struct berth_pool **out)
{
	struct berth_pool *pool;
	unsigned i;
	int ret = 0, r;

	if (nthreads == 0)
		nthreads = 1;
	pool = calloc(1, sizeof(*pool) + nthreads * sizeof(pool->workers[0]));
	if (!pool)
		return -ENOMEM;
	pool->pump = p;
	pool->nworkers = nthreads;
	pthread_mutex_init(&pool->lock, NULL);
	for (i = 0; i < nthreads; i++) {
		pool->workers[i].pool = pool;
		pthread_cond_init(&pool->workers[i].cond, NULL);
		r = berth_waker_init(&pool->workers[i].cancel,
				     BERTH_WAKER_NONBLOCK);
		if (r < 0 && ret == 0)
			ret = r;
	}
	for (i = 0; ret == 0 && i < nthreads; i++) {
		ret = -pthread_create(&pool->workers[i].thread, NULL,
				      worker_main, &pool->workers[i]);
		if (ret < 0)
			break;
	}
	if (ret < 0) {
		pool_stop(pool, i);
		return ret;
	}
	*out = pool;
	return 0;
}

void berth__pool_free(struct berth_pool *pool)
{
	if (pool)
		pool_stop(pool, pool->nworkers);
}

void berth__pool_submit(struct berth_pool *pool, struct berth_req *req)
{
	struct berth_worker *w;

	req->next = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->tail)
		pool->tail->next = req;
	else
		pool->head = req;
	pool->tail = req;
	w = pool->idle;
	if (w) {
		pool->idle = w->next_idle;
		w->idle = false;
		pthread_cond_signal(&w->cond);
	}
	pthread_mutex_unlock(&pool->lock);
}

bool berth__pool_cancel(struct berth_pool *pool, struct berth_req *req)
{
	struct berth_req **pp, *prev = NULL;
	unsigned i;

	pthread_mutex_lock(&pool->lock);
	for (pp = &pool->head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp == req) {
			*pp = req->next;
			if (pool->tail == req)
				pool->tail = prev;
			pthread_mutex_unlock(&pool->lock);
			return true;
		}
	}
	for (i = 0; i < pool->nworkers; i++) {
		if (pool->workers[i].running == req) {
			/* A saturated counter is already raised. */
			(void)berth_waker_signal(&pool->workers[i].cancel);
			pool->workers[i].cancel_posted = true;
			break;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return false;
}

/* The pool backend: nothing runs in the kernel's queue, the pool does all. */
static int pool_init(struct berth_pump *p, char *reason, size_t len)
{
	(void)p;
	(void)reason;
	(void)len;
	return 0;
}

static void pool_destroy(struct berth_pump *p)
{
	(void)p;
}

static bool pool_supports(struct berth_pump *p, int op)
{
	(void)p;
	(void)op;
	return false;
}

static void pool_never(struct berth_pump *p, struct berth_req *req)
{
	(void)p;
	(void)req;
}

static void pool_wait(struct berth_pump *p, bool block)
{
	/* Everything arrives through berth__pump_post(), which wakes us. */
	if (block)
		berth__pump_wake_drain(p);
}

const struct berth_pump_backend berth__pump_pool = {
	.name = "pool",
	.id = BERTH_PUMP_POOL,
	.init = pool_init,
	.destroy = pool_destroy,
	.supports = pool_supports,
	.submit = pool_never,
	.cancel = pool_never,
	.wait = pool_wait,
};
