/* SPDX-License-Identifier: MIT */
/*
 * Requests run inline on the caller's thread, for callers whose blocking
 * call is short and sits on their own critical path (the generator's
 * lookups, -c reads, directory listings), where a hop to the pump thread
 * would cost more than the call.  They meet the same fault injection as
 * submitted requests, so tests reach them with berth_pump_inject(), and
 * a write at a file offset is continued past a short transfer as a
 * submitted one is (the commit stage's writes).
 */
#include <errno.h>

#include "pump_int.h"

/* The transfer starts from its first byte. */
static void from_start(struct berth_req *req)
{
	req->cur_off = req->off;
	req->cur_iov = req->iov;
	req->cur_iovcnt = req->iovcnt;
	req->trim_idx = -1;
}

/* The same on every system: the pool's runner, from the first byte. */
ssize_t berth_req_run_sync(struct berth_req *req)
{
	from_start(req);
	return berth__pool_run(req, NULL);
}

/*
 * A write at a file offset, in attempts as the pump makes them for a
 * submitted one: a short transfer is continued where it stopped; an error
 * after part of it is the result.  @cap (a short fault): the first attempt
 * moves no more than that, trimmed as the pump trims it.
 */
static ssize_t write_whole(struct berth_req *req, size_t cap)
{
	uint64_t want = 0, done = 0;
	ssize_t res;
	int i;

	for (i = 0; i < req->iovcnt; i++)
		want += req->iov[i].iov_len;
	from_start(req);
	while (done < want) {
		req->fault_short = (uint32_t)cap;
		cap = 0;
		if (req->fault_short)
			berth__req_trim_short(req);
		res = berth__pool_run(req, NULL);
		berth__req_untrim(req,
				  req->iovcnt - (int)(req->cur_iov - req->iov));
		if (res <= 0)
			return res < 0 ? res : (ssize_t)done;
		done += (uint64_t)res;
		berth__req_iov_advance(req, (size_t)res);
		req->cur_off += (uint64_t)res;
	}
	return (ssize_t)done;
}

ssize_t berth_pump_run_inline(struct berth_pump *p, struct berth_req *req)
{
	size_t cap = 0;

	if (p && atomic_load_explicit(&p->nfaults, memory_order_relaxed)) {
		int ret = berth__pump_fault_check(p, req);

		if (ret < 0)
			return ret;
		cap = req->fault_short;
		req->fault_short = 0;
		req->fault_refuse = 0;
	}
	if (req->op == BERTH_OP_WRITE && req->off != BERTH_OFF_STREAM)
		return write_whole(req, cap);
	/* A short fault caps a one-buffer read. */
	if (cap && req->iovcnt == 1 && req->iov[0].iov_len > cap)
		req->iov[0].iov_len = cap;
	return berth_req_run_sync(req);
}
