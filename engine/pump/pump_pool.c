/* SPDX-License-Identifier: MIT */
/*
 * The worker pool: threads that run pump operations with blocking syscalls
 * and post each result back to the pump thread.  It is the whole of the
 * `pool` backend, and the per-op fallback of the `uring` and `iocp`
 * backends.  One operation's blocking calls are the system's:
 * pump_run_linux.c or pump_run_win.c (berth__pool_run()).
 *
 * A stream read or write (offset BERTH_OFF_STREAM: a pipe or socket) waits
 * together with the worker's cancel waker, so a request that would block
 * forever can still be cancelled; calls on regular files are never
 * interrupted and finish on their own.
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
#include <stdlib.h>

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

		res = berth__pool_run(req, &w->cancel);

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

static bool pool_supports(struct berth_pump *p, struct berth_req *req)
{
	(void)p;
	(void)req;
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
