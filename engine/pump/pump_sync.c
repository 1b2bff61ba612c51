/* SPDX-License-Identifier: MIT */
/*
 * Requests run inline on the caller's thread, for callers whose blocking
 * call is short and sits on their own critical path (the generator's
 * lookups, -c reads, directory listings), where a hop to the pump thread
 * would cost more than the call.  They meet the same fault injection as
 * submitted requests, so tests reach them with berth_pump_inject().
 */
#include <errno.h>

#include "pump_int.h"

/* The same on every system: the pool's runner, from the first byte. */
ssize_t berth_req_run_sync(struct berth_req *req)
{
	req->cur_off = req->off;
	req->cur_iov = req->iov;
	req->cur_iovcnt = req->iovcnt;
	return berth__pool_run(req, NULL);
}

ssize_t berth_pump_run_inline(struct berth_pump *p, struct berth_req *req)
{
	if (p && atomic_load_explicit(&p->nfaults, memory_order_relaxed)) {
		int ret = berth__pump_fault_check(p, req);

		if (ret < 0)
			return ret;
		/* A short fault caps a one-buffer read or write. */
		if (req->fault_short && req->iovcnt == 1 &&
		    req->iov[0].iov_len > req->fault_short)
			req->iov[0].iov_len = req->fault_short;
		req->fault_short = 0;
		req->fault_refuse = 0;
	}
	return berth_req_run_sync(req);
}
