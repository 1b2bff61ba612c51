/* SPDX-License-Identifier: MIT */
/*
 * Pump internals shared by pump_api.c (API and loop), pump_core.c (a request's
 * life on the pump thread), pump_handoff.c (wake-ups and posted results),
 * the backends and the worker pool.
 *
 * Threads: the pump thread owns the backend (the ring), the in-flight list
 * and every callback.  Other threads touch only the queues under pump->lock
 * (submissions, cancels, posted pool results) and wake the pump through
 * pump->wake (a waker, engine/platform/platform.h).
 *
 * Lock order: pool->lock may be held while taking pump->lock (a worker
 * posting a result does not, but keep the order one way); pump->lock and
 * pump->fault_lock are leaves.  No callback runs under any lock.
 */
#ifndef BERTH_PUMP_INT_H
#define BERTH_PUMP_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "engine/platform/platform.h"
#include "pump.h"

/* req->where: which part of the pump holds the request (pump thread). */
enum {
	REQ_AT_NONE = 0, /* not submitted, or completed */
	REQ_AT_QUEUE, /* accepted, not yet dispatched */
	REQ_AT_BACKEND, /* handed to the backend (io_uring, IOCP) */
	REQ_AT_POOL, /* handed to the worker pool */
};

/* req->cancel_state, shared between berth_pump_cancel() and completion. */
enum {
	REQ_CANCEL_NONE = 0,
	REQ_CANCEL_QUEUED, /* on pump->cancel_head */
	REQ_CANCEL_TAKEN, /* the pump thread took it off the queue */
	REQ_CANCEL_DONE, /* completed: no more cancels */
};

/* A backend: a const ops table with private state in pump->be. */
struct berth_pump_backend {
	const char *name;
	int id; /* BERTH_PUMP_* */
	/* Pump thread, once.  0, or -errno with a reason written. */
	int (*init)(struct berth_pump *p, char *reason, size_t reason_len);
	/* Pump thread, after everything completed. */
	void (*destroy)(struct berth_pump *p);
	/* Whether this backend runs @req itself (else the pool runs it):
	 * by its op, and for iocp also by its handle (overlapped or not). */
	bool (*supports)(struct berth_pump *p, struct berth_req *req);
	/* Pump thread: start (or queue for batch start) one attempt. */
	void (*submit)(struct berth_pump *p, struct berth_req *req);
	/* Pump thread: ask the kernel to cancel @req (it stays in flight). */
	void (*cancel)(struct berth_pump *p, struct berth_req *req);
	/*
	 * Pump thread: push queued work to the kernel, then, if @block, sleep
	 * until at least one completion or a wake-up; deliver the completions
	 * there are through berth__pump_result().
	 */
	void (*wait)(struct berth_pump *p, bool block);
	/*
	 * Any thread: wake a pump thread sleeping in wait().  NULL: signal
	 * pump->wake (the uring backend reads it in its ring, the pool
	 * drains it); iocp posts a packet to its port instead.
	 */
	void (*wake)(struct berth_pump *p);
	/* berth_pump_free(), after the pump thread is gone: what must
	 * outlive it (iocp: the port, for late wakes).  May be NULL. */
	void (*release)(struct berth_pump *p);
};

extern const struct berth_pump_backend berth__pump_uring;
extern const struct berth_pump_backend berth__pump_pool;
extern const struct berth_pump_backend berth__pump_iocp;

struct berth_pool;

struct berth_fault_slot {
	struct berth_fault f;
	uint64_t seen;
	uint64_t fired;
};

struct berth_pump {
	const struct berth_pump_backend *ops;
	void *be; /* backend state */
	struct berth_pool *pool;
	unsigned queue_depth;
	unsigned pool_threads;
	int helper; /* uring: BERTH_PUMP_HELPER_*, DEFAULT meaning deep queues */
	char reason[160];

	pthread_t thread;
	pthread_t self; /* set by the pump thread itself */
	struct berth_waker wake;

	/* Start-up hand-shake with berth_pump_create(). */
	pthread_mutex_t start_lock;
	pthread_cond_t start_cond;
	int start_backend; /* BERTH_PUMP_* asked for */
	int start_state; /* 0 starting, 1 running, < 0 failed */

	pthread_mutex_t shutdown_lock; /* serialises shutdown callers */
	_Atomic bool joined;

	/* Under lock. */
	pthread_mutex_t lock;
	struct berth_req *sub_head, *sub_tail;
	struct berth_req *done_head, *done_tail;
	struct berth_req *cancel_head;
	uint64_t *cancel_tags;
	size_t ncancel_tags, cancel_tags_cap;
	bool wake_pending;
	bool stopping;
	/*
	 * Set under lock with anything above (queues, tags, stopping),
	 * cleared by the pump thread under lock when it takes them: a
	 * lock-free "anything for me?" for the pump loop.  wake_pending
	 * implies it, so a pump that sees it clear and sleeps is woken.
	 */
	atomic_bool has_work;

	/* Pump thread only. */
	bool stop_seen; /* p->stopping as of the last queue drain */
	struct berth_req inflight; /* list sentinel */
	/* Cancels taken off cancel_head, not yet issued; complete() unlinks
	 * a request it finishes meanwhile (REQ_CANCEL_TAKEN). */
	struct berth_req *cancel_taken;
	uint64_t inflight_count;
	bool cancelled_all;
	/* BERTH_OP_BITs the ring refused at run time although its probe
	 * listed them (retry_refused()); they run on the pool from then on. */
	uint32_t ring_refused;

	/* Fault injection. */
	pthread_mutex_t fault_lock;
	atomic_uint nfaults;
	struct berth_fault_slot faults[BERTH_PUMP_MAX_FAULTS];

	/* Counters (relaxed atomics: statistics only). */
	atomic_uint_fast64_t n_submitted; /* any thread, under lock */
	atomic_uint_fast64_t n_submitted_direct; /* pump thread */
	atomic_uint_fast64_t n_completed; /* the rest: pump thread */
	atomic_uint_fast64_t n_fallback;
	atomic_uint_fast64_t n_resubmits;
	atomic_uint_fast64_t n_faults;
	atomic_uint_fast64_t n_helper;
};

/*
 * Bump a counter only the pump thread writes: a relaxed load and store, no
 * locked read-modify-write on the per-request path.  Readers see some
 * recent value.
 */
static inline void counter_bump(atomic_uint_fast64_t *c)
{
	atomic_store_explicit(c,
			      atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* A read or write: the ops with iovecs, transferred in attempts. */
static inline bool req_is_rw(const struct berth_req *req)
{
	return req->op == BERTH_OP_READ || req->op == BERTH_OP_WRITE;
}

/* Advance req->cur_iov past @n transferred bytes (elements changed in
 * place; empty ones skipped).  Whoever runs the request's attempts. */
void berth__req_iov_advance(struct berth_req *req, size_t n);
/* A short fault: cap the next attempt at req->fault_short bytes by
 * trimming the iovecs (and clear it); berth__req_untrim() restores them
 * after the attempt (@full_cnt: the elements left untrimmed). */
void berth__req_trim_short(struct berth_req *req);
void berth__req_untrim(struct berth_req *req, int full_cnt);

/* pump_core.c: a request's life on the pump thread. */
/* Pump thread: a request leaves the submission queue (or comes straight
 * from a callback's submit): linked in flight, then started. */
void berth__pump_dispatch(struct berth_pump *p, struct berth_req *req);
/* Pump thread: an attempt of @req finished with @res (bytes or -errno). */
void berth__pump_result(struct berth_pump *p, struct berth_req *req,
			ssize_t res);
/* Pump thread: issue a cancel for one in-flight request (once). */
void berth__pump_cancel_one(struct berth_pump *p, struct berth_req *req);

/* pump_handoff.c: other threads to the pump thread. */
/* Any thread: signal the wake waker. */
void berth__pump_wake(struct berth_pump *p);
/*
 * Under p->lock, after queueing something for the pump thread: whether the
 * caller signals the waker (berth__pump_wake(), once unlocked).
 */
bool berth__pump_want_wake(struct berth_pump *p);
/* Any thread: hand a pool result to the pump thread and wake it. */
void berth__pump_post(struct berth_pump *p, struct berth_req *req, ssize_t res);
/* Pump thread: drain the wake waker after a wake-up. */
void berth__pump_wake_drain(struct berth_pump *p);

/* Worker pool (pump_pool.c). */
int berth__pool_create(struct berth_pump *p, unsigned nthreads,
		       struct berth_pool **out);
void berth__pool_free(struct berth_pool *pool);
void berth__pool_submit(struct berth_pool *pool, struct berth_req *req);
/*
 * Pump thread: cancel @req on the pool.  Returns true when it was still
 * queued and has been removed (the caller completes it with -ECANCELED);
 * false when it is running (a blocked stream read or write is woken and
 * completes with -ECANCELED; anything else finishes on its own).
 */
bool berth__pool_cancel(struct berth_pool *pool, struct berth_req *req);
/*
 * Run one attempt of @req with blocking calls (pump_run_linux.c or
 * pump_run_win.c); a stream read or write returns -ECANCELED when
 * @cancel (NULL: none) is raised while it waits.
 */
ssize_t berth__pool_run(struct berth_req *req, struct berth_waker *cancel);

/*
 * Fault injection (pump_fault.c), pump thread, only when p->nfaults != 0:
 * returns 0 (no fault), -errno (fail the request without running it), or
 * leaves req->fault_short set for a short attempt.
 */
int berth__pump_fault_check(struct berth_pump *p, struct berth_req *req);

#endif /* BERTH_PUMP_INT_H */
