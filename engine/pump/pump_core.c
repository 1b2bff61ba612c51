/* SPDX-License-Identifier: MIT */
/*
 * A request's life on the pump thread: dispatch off the submission queue
 * (fault check, backend or pool), the in-flight list, each attempt's raw
 * result (short transfer continuation, the ring's refusals retried on the
 * pool), cancelling one request, and completion with its callback.  The
 * backends report results here (berth__pump_result()); pump_api.c's loop and
 * API feed requests and cancels in.  Calls only the pool, fault
 * injection and the backend's ops table.
 *
 * Lock order: see pump_int.h.
 */
#include <errno.h>

#include "pump_int.h"

static void inflight_add(struct berth_pump *p, struct berth_req *req)
{
	req->inflight_next = &p->inflight;
	req->inflight_prev = p->inflight.inflight_prev;
	p->inflight.inflight_prev->inflight_next = req;
	p->inflight.inflight_prev = req;
	p->inflight_count++;
}

static void inflight_del(struct berth_pump *p, struct berth_req *req)
{
	req->inflight_prev->inflight_next = req->inflight_next;
	req->inflight_next->inflight_prev = req->inflight_prev;
	req->inflight_next = req->inflight_prev = NULL;
	p->inflight_count--;
}

/* Pump thread: the request is finished; run its callback. */
static void complete(struct berth_pump *p, struct berth_req *req, ssize_t res)
{
	struct berth_req **pp;
	int prev;

	inflight_del(p, req);
	req->where = REQ_AT_NONE;

	/* A cancel still queued for this request must not outlive it: the
	 * callback may reuse or free it at once. */
	prev = atomic_exchange_explicit(&req->cancel_state, REQ_CANCEL_DONE,
					memory_order_acq_rel);
	if (prev == REQ_CANCEL_QUEUED) {
		pthread_mutex_lock(&p->lock);
		for (pp = &p->cancel_head; *pp; pp = &(*pp)->cancel_next) {
			if (*pp == req) {
				*pp = req->cancel_next;
				break;
			}
		}
		pthread_mutex_unlock(&p->lock);
	} else if (prev == REQ_CANCEL_TAKEN) {
		/* Taken by drain_queues() and not yet issued (results are
		 * delivered before cancels): pump thread only, no lock. */
		for (pp = &p->cancel_taken; *pp; pp = &(*pp)->cancel_next) {
			if (*pp == req) {
				*pp = req->cancel_next;
				break;
			}
		}
	}
	counter_bump(&p->n_completed);
	req->cb(req, res);
}

/* Cap the next attempt at req->fault_short bytes by trimming the iovecs. */
void berth__req_trim_short(struct berth_req *req)
{
	size_t left = req->fault_short;
	int i;

	req->fault_short = 0;
	for (i = 0; i < req->cur_iovcnt; i++) {
		if (req->cur_iov[i].iov_len >= left) {
			req->trim_idx = i;
			req->trim_saved = req->cur_iov[i].iov_len;
			req->cur_iov[i].iov_len = left;
			req->cur_iovcnt = i + 1;
			return;
		}
		left -= req->cur_iov[i].iov_len;
	}
}

void berth__req_untrim(struct berth_req *req, int full_cnt)
{
	if (req->trim_idx < 0)
		return;
	req->cur_iov[req->trim_idx].iov_len = req->trim_saved;
	req->cur_iovcnt = full_cnt;
	req->trim_idx = -1;
}

static void start_attempt(struct berth_pump *p, struct berth_req *req)
{
	if (req->fault_short && req_is_rw(req))
		berth__req_trim_short(req);
	if (!req->via_pool && !req->ring_retry &&
	    !(p->ring_refused & BERTH_OP_BIT(req->op)) &&
	    p->ops->supports(p, req)) {
		req->where = REQ_AT_BACKEND;
		p->ops->submit(p, req);
	} else {
		if (!req->via_pool && p->ops->id != BERTH_PUMP_POOL)
			counter_bump(&p->n_fallback);
		req->via_pool = 1;
		req->where = REQ_AT_POOL;
		berth__pool_submit(p->pool, req);
	}
}

/* Pump thread: a request leaves the submission queue. */
void berth__pump_dispatch(struct berth_pump *p, struct berth_req *req)
{
	int i, ret;

	inflight_add(p, req);
	req->done = 0;
	req->want = 0;
	req->cur_off = req->off;
	req->cur_iov = req->iov;
	req->cur_iovcnt = req->iovcnt;
	req->trim_idx = -1;
	req->fault_short = 0;
	req->via_pool = 0;
	req->ring_retry = 0;
	req->fault_refuse = 0;
	req->cancelled = 0;
	if (req_is_rw(req))
		for (i = 0; i < req->iovcnt; i++)
			req->want += req->iov[i].iov_len;

	if (p->stop_seen) {
		complete(p, req, -ECANCELED);
		return;
	}
	if (atomic_load_explicit(&p->nfaults, memory_order_relaxed)) {
		ret = berth__pump_fault_check(p, req);
		if (ret < 0) {
			complete(p, req, ret);
			return;
		}
	}
	start_attempt(p, req);
}

/* Advance cur_iov past @n transferred bytes. */
void berth__req_iov_advance(struct berth_req *req, size_t n)
{
	while (n > 0 && req->cur_iovcnt > 0) {
		if (n >= req->cur_iov->iov_len) {
			n -= req->cur_iov->iov_len;
			req->cur_iov++;
			req->cur_iovcnt--;
		} else {
			req->cur_iov->iov_base =
				(char *)req->cur_iov->iov_base + n;
			req->cur_iov->iov_len -= n;
			n = 0;
		}
	}
	/* Skip empty elements so the next attempt never asks for 0 bytes. */
	while (req->cur_iovcnt > 0 && req->cur_iov->iov_len == 0) {
		req->cur_iov++;
		req->cur_iovcnt--;
	}
}

static bool refusal(ssize_t res)
{
	return res == -EINVAL || res == -EOPNOTSUPP;
}

/*
 * The ring refused a first attempt that the probe said it runs: a kernel
 * whose probe overstates, or a flag the opcode lacks there.  Run it once
 * more on the pool, which has the last word.  True when it was sent there.
 */
static bool retry_refused(struct berth_pump *p, struct berth_req *req,
			  ssize_t res)
{
	if (p->ops->id != BERTH_PUMP_URING || req->where != REQ_AT_BACKEND ||
	    !refusal(res) || req->done || req->cancelled || p->stop_seen)
		return false;
	req->ring_retry = 1;
	start_attempt(p, req);
	return true;
}

void berth__pump_result(struct berth_pump *p, struct berth_req *req,
			ssize_t res)
{
	if (req->cancelled && (res == -EINTR || res == -ECANCELED))
		res = -ECANCELED;
	/* Elements after a trimmed one were hidden: count them back. */
	if (req_is_rw(req))
		berth__req_untrim(req,
				  req->iovcnt - (int)(req->cur_iov - req->iov));
	if (retry_refused(p, req, res))
		return;
	if (req->ring_retry) {
		/* The pool took it where the ring would not: the ring lacks
		 * this op, so the pool runs it from now on.  The pool failing
		 * the same way means the request itself was bad. */
		req->ring_retry = 0;
		if (!refusal(res))
			p->ring_refused |= BERTH_OP_BIT(req->op);
	}
	if (!req_is_rw(req)) {
		complete(p, req, res);
		return;
	}
	if (res <= 0) {
		/* EOF, or an error (the partial count stays in req->done). */
		complete(p, req, res < 0 ? res : (ssize_t)req->done);
		return;
	}
	req->done += (uint64_t)res;
	if (req->done >= req->want ||
	    (req->op == BERTH_OP_READ && req->off == BERTH_OFF_STREAM)) {
		complete(p, req, (ssize_t)req->done);
		return;
	}
	/* A short transfer: continue where it stopped. */
	if (req->cancelled || p->stop_seen) {
		complete(p, req, -ECANCELED);
		return;
	}
	berth__req_iov_advance(req, (size_t)res);
	if (req->cur_off != BERTH_OFF_STREAM)
		req->cur_off += (uint64_t)res;
	counter_bump(&p->n_resubmits);
	start_attempt(p, req);
}

/* Pump thread: issue a cancel for one in-flight request. */
void berth__pump_cancel_one(struct berth_pump *p, struct berth_req *req)
{
	if (req->cancelled)
		return;
	req->cancelled = 1;
	switch (req->where) {
	case REQ_AT_BACKEND:
		p->ops->cancel(p, req);
		break;
	case REQ_AT_POOL:
		if (berth__pool_cancel(p->pool, req))
			complete(p, req, -ECANCELED);
		break;
	default:
		break;
	}
}
