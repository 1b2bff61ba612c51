/* SPDX-License-Identifier: MIT */
/*
 * The completion pump's API and loop: create (backend probe and start-up),
 * submit, cancel, shutdown and free, statistics, and the pump thread's
 * loop that drains what other threads hand over and waits on the backend.
 * A request's life from dispatch to callback is pump_core.c's; the wake-up
 * and result hand-over, pump_handoff.c's.  Backends (pump_uring.c, and the
 * pool in pump_pool.c) only start attempts and report raw results.
 *
 * Lock order: see pump_int.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/common/abi.h"
#include "pump_int.h"

#define DEFAULT_QUEUE_DEPTH 256
#define DEFAULT_POOL_THREADS 8
#define FALLBACK_POOL_THREADS 4

static void cancel_tag(struct berth_pump *p, uint64_t tag)
{
	struct berth_req *req, *next;

	for (req = p->inflight.inflight_next; req != &p->inflight; req = next) {
		/* berth__pump_cancel_one() may complete @req and unlink it. */
		next = req->inflight_next;
		if (req->tag == tag)
			berth__pump_cancel_one(p, req);
	}
}

/*
 * Pump thread: take everything other threads (or callbacks) handed over, and
 * act on it.  Returns true when more arrived meanwhile, so the caller must
 * not sleep.
 */
static bool drain_queues(struct berth_pump *p)
{
	struct berth_req *subs, *dones, *cancels, *req;
	uint64_t tags[16];
	size_t ntags, i;
	bool more_tags;

	/* Nothing handed over since the last drain: skip the lock. */
	if (!atomic_load_explicit(&p->has_work, memory_order_acquire))
		return false;
	do {
		pthread_mutex_lock(&p->lock);
		subs = p->sub_head;
		dones = p->done_head;
		cancels = p->cancel_head;
		p->sub_head = p->sub_tail = NULL;
		p->done_head = p->done_tail = NULL;
		p->cancel_head = NULL;
		for (req = cancels; req; req = req->cancel_next)
			atomic_store_explicit(&req->cancel_state,
					      REQ_CANCEL_TAKEN,
					      memory_order_release);
		p->cancel_taken = cancels;
		ntags = p->ncancel_tags < 16 ? p->ncancel_tags : 16;
		if (ntags)
			memcpy(tags, p->cancel_tags + p->ncancel_tags - ntags,
			       ntags * sizeof(*tags));
		p->ncancel_tags -= ntags;
		more_tags = p->ncancel_tags > 0;
		p->wake_pending = false;
		p->stop_seen = p->stopping;
		atomic_store_explicit(&p->has_work, more_tags,
				      memory_order_relaxed);
		pthread_mutex_unlock(&p->lock);

		/* Results first: they may free room in the backend. */
		while (dones) {
			req = dones;
			dones = req->next;
			berth__pump_result(p, req, req->res_raw);
		}
		while (subs) {
			req = subs;
			subs = req->next;
			berth__pump_dispatch(p, req);
		}
		/* A request completed above (its callback may have reused
		 * or freed it) was unlinked from cancel_taken on completion. */
		while ((req = p->cancel_taken)) {
			p->cancel_taken = req->cancel_next;
			berth__pump_cancel_one(p, req);
		}
		for (i = 0; i < ntags; i++)
			cancel_tag(p, tags[i]);
	} while (more_tags);

	if (p->stop_seen && !p->cancelled_all) {
		struct berth_req *next;

		p->cancelled_all = true;
		for (req = p->inflight.inflight_next; req != &p->inflight;
		     req = next) {
			next = req->inflight_next;
			berth__pump_cancel_one(p, req);
		}
	}

	/* Callbacks run above may have queued work without a wake-up. */
	return atomic_load_explicit(&p->has_work, memory_order_acquire);
}

static int backend_start(struct berth_pump *p, int want)
{
	char why[120];
#if BERTH_HAVE_URING || BERTH_HAVE_IOCP
	/* The system's kernel queue: io_uring on Linux, a completion port
	 * on Windows; the pool when it is refused or unavailable. */
#if BERTH_HAVE_URING
	const struct berth_pump_backend *kq = &berth__pump_uring;
#else
	const struct berth_pump_backend *kq = &berth__pump_iocp;
#endif
	int ret;

	if (want != BERTH_PUMP_POOL) {
		if (want != BERTH_PUMP_AUTO && want != kq->id)
			return -EOPNOTSUPP;
		p->ops = kq;
		why[0] = '\0';
		ret = p->ops->init(p, why, sizeof(why));
		if (ret == 0) {
			snprintf(p->reason, sizeof(p->reason), "%s%s",
				 want == kq->id ? "forced; " : "", why);
			return 0;
		}
		if (want == kq->id)
			return ret;
		snprintf(p->reason, sizeof(p->reason), "%s unavailable: %s",
			 BERTH_HAVE_URING ? "io_uring" : "IOCP", why);
	} else {
		snprintf(p->reason, sizeof(p->reason), "forced");
	}
#else
	/* -DBERTH_URING=OFF: pump_uring.c is not compiled in. */
	snprintf(p->reason, sizeof(p->reason), "%s",
		 want == BERTH_PUMP_POOL ? "forced" : "built without io_uring");
	if (want == BERTH_PUMP_URING || want == BERTH_PUMP_IOCP)
		return -EOPNOTSUPP;
#endif
	p->ops = &berth__pump_pool;
	return p->ops->init(p, why, sizeof(why));
}

static void *pump_main(void *arg)
{
	struct berth_pump *p = arg;
	int ret, want = p->start_backend;
	unsigned nthreads;

	p->self = pthread_self();
	ret = backend_start(p, want);
	if (ret == 0) {
		nthreads = p->ops->id == BERTH_PUMP_POOL
				   ? p->pool_threads
				   : (p->pool_threads < FALLBACK_POOL_THREADS
					      ? p->pool_threads
					      : FALLBACK_POOL_THREADS);
		ret = berth__pool_create(p, nthreads, &p->pool);
		if (ret < 0)
			p->ops->destroy(p);
	}
	pthread_mutex_lock(&p->start_lock);
	p->start_state = ret < 0 ? ret : 1;
	pthread_cond_signal(&p->start_cond);
	pthread_mutex_unlock(&p->start_lock);
	if (ret < 0)
		return NULL;

	for (;;) {
		bool busy = drain_queues(p);

		/* Once stop_seen, submit refuses new work, and every pool
		 * result belongs to an in-flight request. */
		if (p->stop_seen && p->inflight_count == 0)
			break;
		p->ops->wait(p, !busy);
	}
	berth__pool_free(p->pool);
	p->pool = NULL;
	p->ops->destroy(p);
	return NULL;
}

struct env_word {
	const char *word;
	int value;
};

/* BERTH_PUMP: which backend, when the options leave it to the probe. */
static const struct env_word backend_words[] = {
	{"auto", BERTH_PUMP_AUTO},
	{"uring", BERTH_PUMP_URING},
	{"pool", BERTH_PUMP_POOL},
	{"iocp", BERTH_PUMP_IOCP},
	{NULL, 0},
};

/* BERTH_PUMP_SQPOLL: the helper ring never, or for every read queue. */
static const struct env_word helper_words[] = {
	{"0", BERTH_PUMP_HELPER_OFF},
	{"1", BERTH_PUMP_HELPER_ON},
	{NULL, 0},
};

/* *@out from $@name when it is set: one of @words, or -EINVAL. */
static int parse_env(const char *name, const struct env_word *words, int *out)
{
	const char *env = getenv(name);

	if (!env || !*env)
		return 0;
	for (; words->word; words++) {
		if (!strcmp(env, words->word)) {
			*out = words->value;
			return 0;
		}
	}
	return -EINVAL;
}

/* What create set up, once the pump thread is gone (or never ran). */
static void pump_release(struct berth_pump *p)
{
	if (p->ops && p->ops->release)
		p->ops->release(p);
	berth_waker_destroy(&p->wake);
	free(p->cancel_tags);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->fault_lock);
	pthread_mutex_destroy(&p->start_lock);
	pthread_mutex_destroy(&p->shutdown_lock);
	pthread_cond_destroy(&p->start_cond);
	free(p);
}

int berth_pump_create(const struct berth_pump_opts *opts,
		      struct berth_pump **out)
{
	struct berth_pump_opts o;
	struct berth_pump *p;
	int backend, helper, ret;

	*out = NULL;
	if (opts) { /* the caller's layout (berth.h, "ABI") */
		ret = berth__abi_copy_in(&o, sizeof(o), opts, opts->size,
					 BERTH__V0_PUMP_OPTS);
		if (ret < 0)
			return ret;
		opts = &o;
	}
	backend = opts ? opts->backend : BERTH_PUMP_AUTO;
	if (backend == BERTH_PUMP_AUTO) {
		ret = parse_env("BERTH_PUMP", backend_words, &backend);
		if (ret < 0)
			return ret;
	}
	if (backend < BERTH_PUMP_AUTO || backend > BERTH_PUMP_IOCP)
		return -EINVAL;
	helper = opts ? opts->helper : BERTH_PUMP_HELPER_DEFAULT;
	if (helper < BERTH_PUMP_HELPER_DEFAULT || helper > BERTH_PUMP_HELPER_ON)
		return -EINVAL;
	if (helper == BERTH_PUMP_HELPER_DEFAULT) {
		ret = parse_env("BERTH_PUMP_SQPOLL", helper_words, &helper);
		if (ret < 0)
			return ret;
	}

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->queue_depth = opts && opts->queue_depth ? opts->queue_depth
						   : DEFAULT_QUEUE_DEPTH;
	p->pool_threads = opts && opts->pool_threads ? opts->pool_threads
						     : DEFAULT_POOL_THREADS;
	p->helper = helper;
	p->inflight.inflight_next = p->inflight.inflight_prev = &p->inflight;
	/* Blocking: the uring backend keeps a read on its fd. */
	ret = berth_waker_init(&p->wake, 0);
	if (ret < 0) {
		free(p);
		return ret;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->fault_lock, NULL);
	pthread_mutex_init(&p->start_lock, NULL);
	pthread_mutex_init(&p->shutdown_lock, NULL);
	pthread_cond_init(&p->start_cond, NULL);

	/* The pump thread creates the backend itself, so the ring belongs to
	 * the thread that submits on it; start_state carries the result. */
	p->start_backend = backend;
	p->start_state = 0;
	ret = -pthread_create(&p->thread, NULL, pump_main, p);
	if (ret == 0) {
		pthread_mutex_lock(&p->start_lock);
		while (p->start_state == 0)
			pthread_cond_wait(&p->start_cond, &p->start_lock);
		if (p->start_state < 0)
			ret = p->start_state;
		pthread_mutex_unlock(&p->start_lock);
		if (ret < 0)
			pthread_join(p->thread, NULL);
	}
	if (ret < 0) {
		pump_release(p);
		return ret;
	}
	*out = p;
	return 0;
}

int berth_pump_shutdown(struct berth_pump *p)
{
	if (!p->joined && berth_pump_on_thread(p))
		return -EDEADLK;
	pthread_mutex_lock(&p->shutdown_lock);
	if (!p->joined) {
		pthread_mutex_lock(&p->lock);
		p->stopping = true;
		atomic_store_explicit(&p->has_work, true, memory_order_relaxed);
		pthread_mutex_unlock(&p->lock);
		berth__pump_wake(p);
		pthread_join(p->thread, NULL);
		p->joined = true;
	}
	pthread_mutex_unlock(&p->shutdown_lock);
	return 0;
}

bool berth_pump_stopped(struct berth_pump *p)
{
	bool stopped;

	pthread_mutex_lock(&p->lock);
	stopped = p->stopping;
	pthread_mutex_unlock(&p->lock);
	return stopped;
}

void berth_pump_free(struct berth_pump *p)
{
	if (!p)
		return;
	berth_pump_shutdown(p);
	pump_release(p);
}

static bool req_valid(const struct berth_req *req)
{
	if (!req->cb || req->op >= BERTH_OP__COUNT)
		return false;
	if (req_is_rw(req))
		return req->iov && req->iovcnt > 0 && req->iovcnt <= IOV_MAX;
	return true;
}

int berth_pump_submit(struct berth_pump *p, struct berth_req *req)
{
	bool need_wake = false;

	if (!req_valid(req))
		return -EINVAL;
	atomic_store_explicit(&req->cancel_state, REQ_CANCEL_NONE,
			      memory_order_relaxed);
	req->next = NULL;
	/*
	 * From a callback (the pump thread), straight to the backend: no
	 * lock, no queue, no extra loop turn.  Only when dispatch cannot
	 * complete the request at once (no fault armed, not stopping), so no
	 * callback ever runs inside submit.
	 */
	if (berth_pump_on_thread(p) && !p->stop_seen && !p->joined &&
	    !atomic_load_explicit(&p->nfaults, memory_order_relaxed)) {
		counter_bump(&p->n_submitted_direct);
		berth__pump_dispatch(p, req);
		return 0;
	}
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return -ESHUTDOWN;
	}
	/* The in-flight list is the pump thread's; link it there on
	 * dispatch.  Until then the queue holds it. */
	req->where = REQ_AT_QUEUE;
	if (p->sub_tail)
		p->sub_tail->next = req;
	else
		p->sub_head = req;
	p->sub_tail = req;
	atomic_fetch_add_explicit(&p->n_submitted, 1, memory_order_relaxed);
	/* The pump thread looks at its queues before it sleeps again. */
	need_wake = berth__pump_want_wake(p);
	pthread_mutex_unlock(&p->lock);
	if (need_wake)
		berth__pump_wake(p);
	return 0;
}

void berth_pump_cancel(struct berth_pump *p, struct berth_req *req)
{
	int expected = REQ_CANCEL_NONE;
	bool need_wake = false;

	pthread_mutex_lock(&p->lock);
	if (atomic_compare_exchange_strong_explicit(
		    &req->cancel_state, &expected, REQ_CANCEL_QUEUED,
		    memory_order_acq_rel, memory_order_acquire)) {
		req->cancel_next = p->cancel_head;
		p->cancel_head = req;
		need_wake = berth__pump_want_wake(p);
	}
	pthread_mutex_unlock(&p->lock);
	if (need_wake)
		berth__pump_wake(p);
}

int berth_pump_cancel_tag(struct berth_pump *p, uint64_t tag)
{
	bool need_wake = false;
	uint64_t *tags;

	pthread_mutex_lock(&p->lock);
	if (p->ncancel_tags == p->cancel_tags_cap) {
		size_t cap = p->cancel_tags_cap ? 2 * p->cancel_tags_cap : 8;

		tags = realloc(p->cancel_tags, cap * sizeof(*tags));
		if (!tags) {
			pthread_mutex_unlock(&p->lock);
			return -ENOMEM;
		}
		p->cancel_tags = tags;
		p->cancel_tags_cap = cap;
	}
	p->cancel_tags[p->ncancel_tags++] = tag;
	need_wake = berth__pump_want_wake(p);
	pthread_mutex_unlock(&p->lock);
	if (need_wake)
		berth__pump_wake(p);
	return 0;
}

int berth_pump_backend(const struct berth_pump *p)
{
	return p->ops->id;
}

const char *berth_pump_backend_reason(const struct berth_pump *p)
{
	return p->reason;
}

void berth_pump_stats(struct berth_pump *p, struct berth_pump_stats *st)
{
	st->completed = atomic_load_explicit(&p->n_completed,
					     memory_order_relaxed);
	st->submitted = atomic_load_explicit(&p->n_submitted,
					     memory_order_relaxed) +
			atomic_load_explicit(&p->n_submitted_direct,
					     memory_order_relaxed);
	st->in_flight = st->submitted > st->completed
				? st->submitted - st->completed
				: 0;
	st->fallback = atomic_load_explicit(&p->n_fallback,
					    memory_order_relaxed);
	st->resubmits = atomic_load_explicit(&p->n_resubmits,
					     memory_order_relaxed);
	st->faults = atomic_load_explicit(&p->n_faults, memory_order_relaxed);
	st->helper = atomic_load_explicit(&p->n_helper, memory_order_relaxed);
}
