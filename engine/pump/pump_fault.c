/* SPDX-License-Identifier: MIT */
/*
 * Fault injection: fail or shorten the Nth matching request.  Checked on
 * the pump thread at dispatch, and only when a fault is armed, so the
 * production path pays one relaxed load.
 */
#include <errno.h>
#include <string.h>

#include "pump_int.h"

int berth_pump_inject(struct berth_pump *p, const struct berth_fault *f)
{
	unsigned i;
	int ret = -ENOSPC;

	if (!f->ops || f->error < 0 || (f->flags & ~BERTH_FAULT_RING_REFUSE) ||
	    (!f->error && !f->short_bytes && !f->flags))
		return -EINVAL;
	pthread_mutex_lock(&p->fault_lock);
	for (i = 0; i < BERTH_PUMP_MAX_FAULTS; i++) {
		if (!p->faults[i].f.ops) {
			p->faults[i].f = *f;
			if (!p->faults[i].f.count)
				p->faults[i].f.count = 1;
			if (!p->faults[i].f.nth)
				p->faults[i].f.nth = 1;
			p->faults[i].seen = 0;
			p->faults[i].fired = 0;
			atomic_fetch_add_explicit(&p->nfaults, 1,
						  memory_order_relaxed);
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&p->fault_lock);
	return ret;
}

void berth_pump_clear_faults(struct berth_pump *p)
{
	pthread_mutex_lock(&p->fault_lock);
	memset(p->faults, 0, sizeof(p->faults));
	atomic_store_explicit(&p->nfaults, 0, memory_order_relaxed);
	pthread_mutex_unlock(&p->fault_lock);
}

int berth__pump_fault_check(struct berth_pump *p, struct berth_req *req)
{
	struct berth_fault_slot *s;
	unsigned i;
	int ret = 0;

	pthread_mutex_lock(&p->fault_lock);
	for (i = 0; i < BERTH_PUMP_MAX_FAULTS; i++) {
		s = &p->faults[i];
		if (!(s->f.ops & BERTH_OP_BIT(req->op)))
			continue;
		if (s->f.tag && s->f.tag != req->tag)
			continue;
		if (++s->seen < s->f.nth || s->fired >= s->f.count)
			continue;
		s->fired++;
		atomic_fetch_add_explicit(&p->n_faults, 1,
					  memory_order_relaxed);
		if (s->f.error) {
			ret = -s->f.error;
		} else if (req->op == BERTH_OP_READ ||
			   req->op == BERTH_OP_WRITE) {
			req->fault_short = s->f.short_bytes;
			req->fault_refuse = !!(s->f.flags &
					       BERTH_FAULT_RING_REFUSE);
		}
		break;
	}
	pthread_mutex_unlock(&p->fault_lock);
	return ret;
}
