/* SPDX-License-Identifier: MIT */
/*
 * Handing work to the pump thread: which thread is the pump's, the wake
 * waker (signal, drain, and whether a queuer should signal it) and the
 * posting of a worker's result onto the done queue.  Any thread; the pump
 * thread drains what arrives (pump_api.c).  Used by pump_api.c and the worker
 * pool; calls nothing else of the pump.
 *
 * Lock order: see pump_int.h.
 */
#include "pump_int.h"

int berth_pump_on_thread(const struct berth_pump *p)
{
	return pthread_equal(pthread_self(), p->self);
}

void berth__pump_wake(struct berth_pump *p)
{
	if (p->ops && p->ops->wake) {
		p->ops->wake(p);
		return;
	}
	/* A saturated counter is still raised: the pump wakes anyway. */
	(void)berth_waker_signal(&p->wake);
}

void berth__pump_wake_drain(struct berth_pump *p)
{
	berth_waker_drain(&p->wake);
}

/*
 * Under p->lock, after queueing something for the pump thread: should the
 * caller signal the wake waker (once unlocked)?  Not from the pump thread
 * itself (it looks at its queues before sleeping), not twice.
 */
bool berth__pump_want_wake(struct berth_pump *p)
{
	atomic_store_explicit(&p->has_work, true, memory_order_relaxed);
	if (p->wake_pending || berth_pump_on_thread(p))
		return false;
	p->wake_pending = true;
	return true;
}

void berth__pump_post(struct berth_pump *p, struct berth_req *req, ssize_t res)
{
	bool need_wake;

	req->res_raw = res;
	req->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->done_tail)
		p->done_tail->next = req;
	else
		p->done_head = req;
	p->done_tail = req;
	need_wake = !p->wake_pending;
	p->wake_pending = true;
	atomic_store_explicit(&p->has_work, true, memory_order_relaxed);
	pthread_mutex_unlock(&p->lock);
	if (need_wake)
		berth__pump_wake(p);
}
