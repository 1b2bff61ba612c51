/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend: one ring, created and used only by the pump thread.
 * Other threads wake it through the pump's eventfd, on which a read is kept
 * armed in the ring.  Requests are batched: SQEs are prepared as requests
 * arrive and pushed to the kernel with one io_uring_enter() per loop turn.
 *
 * user_data is the request pointer; two small values (never valid request
 * addresses) mark the wake-up read and cancel SQEs.  No more requests are
 * put in the kernel than the completion ring holds; the rest wait in a
 * backlog, so the CQ never overflows.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liburing.h>

#include "pump_int.h"

#define UD_WAKE 1ull
#define UD_CANCEL 2ull
#define CQE_BATCH 128

struct uring_be {
	struct io_uring ring;
	struct io_uring_probe *probe;
	bool op_ok[BERTH_OP__COUNT];
	bool plain_rw; /* IORING_OP_READ/WRITE: no iovec to import */
	unsigned limit; /* requests allowed in the kernel at once */
	unsigned in_kernel; /* requests (not wake/cancel) in the kernel */
	unsigned pending; /* SQEs prepared since the last submit */
	bool wake_armed;
	uint64_t wake_buf;
	struct berth_req *backlog_head, *backlog_tail;
};

static const int opcode_of[BERTH_OP__COUNT] = {
	[BERTH_OP_NOP] = IORING_OP_NOP,
	[BERTH_OP_READ] = IORING_OP_READV,
	[BERTH_OP_WRITE] = IORING_OP_WRITEV,
	[BERTH_OP_FSYNC] = IORING_OP_FSYNC,
	[BERTH_OP_OPENAT2] = IORING_OP_OPENAT2,
	[BERTH_OP_CLOSE] = IORING_OP_CLOSE,
	[BERTH_OP_STATX] = IORING_OP_STATX,
	[BERTH_OP_RENAMEAT2] = IORING_OP_RENAMEAT,
	[BERTH_OP_UNLINKAT] = IORING_OP_UNLINKAT,
	[BERTH_OP_MKDIRAT] = IORING_OP_MKDIRAT,
	[BERTH_OP_SYMLINKAT] = IORING_OP_SYMLINKAT,
	[BERTH_OP_LINKAT] = IORING_OP_LINKAT,
	/* The rest has no opcode: -1 sends it to the pool. */
	[BERTH_OP_FCHMODAT] = -1,
	[BERTH_OP_FCHOWNAT] = -1,
	[BERTH_OP_UTIMENSAT] = -1,
	[BERTH_OP_MKNODAT] = -1,
	[BERTH_OP_FTRUNCATE] = -1,
	[BERTH_OP_FALLOCATE] = -1,
};

static struct uring_be *be_of(struct berth_pump *p)
{
	return p->be;
}

static int ring_setup(struct uring_be *be, unsigned depth)
{
	struct io_uring_params params;
	int ret;

	/* The pump thread alone submits: let the kernel skip the locking and
	 * run completion work when we wait (6.1+), else plain (5.6+). */
	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		       IORING_SETUP_CQSIZE;
	params.cq_entries = depth * 2;
	ret = io_uring_queue_init_params(depth, &be->ring, &params);
	if (ret == -EINVAL) {
		memset(&params, 0, sizeof(params));
		params.flags = IORING_SETUP_CQSIZE;
		params.cq_entries = depth * 2;
		ret = io_uring_queue_init_params(depth, &be->ring, &params);
	}
	if (ret < 0)
		return ret;
	/* Leave room in the CQ for the wake-up read and cancels. */
	be->limit = params.cq_entries / 2;
	return 0;
}

static int uring_init(struct berth_pump *p, char *reason, size_t len)
{
	struct uring_be *be;
	int ret, i;

	be = calloc(1, sizeof(*be));
	if (!be) {
		snprintf(reason, len, "out of memory");
		return -ENOMEM;
	}
	ret = ring_setup(be, p->queue_depth);
	if (ret < 0) {
		snprintf(reason, len, "io_uring_setup: %s%s", strerror(-ret),
			 ret == -EPERM	  ? " (disabled by sysctl or seccomp)"
			 : ret == -ENOMEM ? " (RLIMIT_MEMLOCK?)"
					  : "");
		free(be);
		return ret;
	}
	be->probe = io_uring_get_probe_ring(&be->ring);
	for (i = 0; i < BERTH_OP__COUNT; i++)
		be->op_ok[i] = opcode_of[i] >= 0 &&
			       (!be->probe || io_uring_opcode_supported(
						      be->probe, opcode_of[i]));
	/* READV/WRITEV/NOP/FSYNC are the minimum we rely on. */
	if (!be->op_ok[BERTH_OP_READ] || !be->op_ok[BERTH_OP_WRITE]) {
		snprintf(reason, len, "kernel io_uring lacks readv/writev");
		if (be->probe)
			io_uring_free_probe(be->probe);
		io_uring_queue_exit(&be->ring);
		free(be);
		return -EOPNOTSUPP;
	}
	/* One-buffer reads and writes skip the iovec copy (5.6+).  The
	 * length field is 32 bits: longer single buffers stay vectored. */
	be->plain_rw = be->probe &&
		       io_uring_opcode_supported(be->probe, IORING_OP_READ) &&
		       io_uring_opcode_supported(be->probe, IORING_OP_WRITE);
	/* io_uring_enter() without an fd lookup (5.18+); optional. */
	if (io_uring_register_ring_fd(&be->ring) < 0) {
		/* Older kernel: enter through the fd as before. */
	}
	snprintf(reason, len, "io_uring probe succeeded");
	p->be = be;
	return 0;
}

static void uring_destroy(struct berth_pump *p)
{
	struct uring_be *be = be_of(p);

	if (!be)
		return;
	if (be->probe)
		io_uring_free_probe(be->probe);
	/* Cancels the armed wake-up read; its buffer is ours. */
	io_uring_queue_exit(&be->ring);
	free(be);
	p->be = NULL;
}

static bool uring_supports(struct berth_pump *p, int op)
{
	return be_of(p)->op_ok[op];
}

static struct io_uring_sqe *get_sqe(struct uring_be *be)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&be->ring);

	if (!sqe) {
		/* SQ full: push it to the kernel and try again. */
		io_uring_submit(&be->ring);
		be->pending = 0;
		sqe = io_uring_get_sqe(&be->ring);
	}
	if (sqe)
		be->pending++;
	return sqe;
}

/* One buffer whose length fits the SQE's 32-bit len without wrapping. */
static bool one_buf(const struct berth_req *req)
{
	return req->cur_iovcnt == 1 && req->cur_iov->iov_len <= INT_MAX;
}

static void prep_sqe(struct io_uring_sqe *sqe, struct berth_req *req,
		     bool plain_rw)
{
	switch (req->op) {
	case BERTH_OP_NOP:
		io_uring_prep_nop(sqe);
		break;
	case BERTH_OP_READ:
		if (plain_rw && one_buf(req))
			io_uring_prep_read(sqe, req->fd, req->cur_iov->iov_base,
					   (unsigned)req->cur_iov->iov_len,
					   req->cur_off);
		else
			io_uring_prep_readv(sqe, req->fd, req->cur_iov,
					    (unsigned)req->cur_iovcnt,
					    req->cur_off);
		break;
	case BERTH_OP_WRITE:
		if (plain_rw && one_buf(req))
			io_uring_prep_write(
				sqe, req->fd, req->cur_iov->iov_base,
				(unsigned)req->cur_iov->iov_len, req->cur_off);
		else
			io_uring_prep_writev(sqe, req->fd, req->cur_iov,
					     (unsigned)req->cur_iovcnt,
					     req->cur_off);
		break;
	case BERTH_OP_FSYNC:
		io_uring_prep_fsync(sqe, req->fd,
				    req->flags & BERTH_FSYNC_DATASYNC
					    ? IORING_FSYNC_DATASYNC
					    : 0);
		break;
	case BERTH_OP_OPENAT2:
		io_uring_prep_openat2(sqe, req->fd, req->path, req->arg);
		break;
	case BERTH_OP_CLOSE:
		io_uring_prep_close(sqe, req->fd);
		break;
	case BERTH_OP_STATX:
		io_uring_prep_statx(sqe, req->fd, req->path, (int)req->flags,
				    req->mode, req->arg);
		break;
	case BERTH_OP_RENAMEAT2:
		io_uring_prep_renameat(sqe, req->fd, req->path, req->fd2,
				       req->path2, req->flags);
		break;
	case BERTH_OP_UNLINKAT:
		io_uring_prep_unlinkat(sqe, req->fd, req->path,
				       (int)req->flags);
		break;
	case BERTH_OP_MKDIRAT:
		io_uring_prep_mkdirat(sqe, req->fd, req->path, req->mode);
		break;
	case BERTH_OP_SYMLINKAT:
		io_uring_prep_symlinkat(sqe, req->path, req->fd2, req->path2);
		break;
	case BERTH_OP_LINKAT:
		io_uring_prep_linkat(sqe, req->fd, req->path, req->fd2,
				     req->path2, (int)req->flags);
		break;
	}
	io_uring_sqe_set_data(sqe, req);
}

/* Put @req into the kernel if there is room; false to keep it waiting. */
static bool try_start(struct uring_be *be, struct berth_req *req)
{
	struct io_uring_sqe *sqe;

	if (be->in_kernel >= be->limit)
		return false;
	sqe = get_sqe(be);
	if (!sqe)
		return false;
	prep_sqe(sqe, req, be->plain_rw);
	be->in_kernel++;
	return true;
}

static void uring_submit(struct berth_pump *p, struct berth_req *req)
{
	struct uring_be *be = be_of(p);

	/* Keep order: nothing overtakes the backlog. */
	if (!be->backlog_head && try_start(be, req))
		return;
	req->next = NULL;
	if (be->backlog_tail)
		be->backlog_tail->next = req;
	else
		be->backlog_head = req;
	be->backlog_tail = req;
}

static void backlog_run(struct uring_be *be)
{
	struct berth_req *req;

	while ((req = be->backlog_head) && try_start(be, req)) {
		be->backlog_head = req->next;
		if (!be->backlog_head)
			be->backlog_tail = NULL;
	}
}

static void uring_cancel(struct berth_pump *p, struct berth_req *req)
{
	struct uring_be *be = be_of(p);
	struct berth_req **pp, *prev = NULL;
	struct io_uring_sqe *sqe;

	for (pp = &be->backlog_head; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp == req) {
			*pp = req->next;
			if (be->backlog_tail == req)
				be->backlog_tail = prev;
			berth__pump_result(p, req, -ECANCELED);
			return;
		}
	}
	sqe = get_sqe(be);
	if (!sqe)
		return; /* SQ still full: it will complete on its own */
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)req, 0);
	io_uring_sqe_set_data64(sqe, UD_CANCEL);
}

static void arm_wake(struct berth_pump *p, struct uring_be *be)
{
	struct io_uring_sqe *sqe;

	if (be->wake_armed)
		return;
	sqe = get_sqe(be);
	if (!sqe)
		return; /* retried next turn */
	io_uring_prep_read(sqe, p->wake_fd, &be->wake_buf, sizeof(be->wake_buf),
			   0);
	io_uring_sqe_set_data64(sqe, UD_WAKE);
	be->wake_armed = true;
}

static void uring_wait(struct berth_pump *p, bool block)
{
	struct uring_be *be = be_of(p);
	struct io_uring_cqe *cqe;
	struct {
		uint64_t ud;
		int res;
	} got[CQE_BATCH];
	unsigned head, n, i;
	int ret;

	backlog_run(be);
	arm_wake(p, be);
	do {
		ret = io_uring_submit_and_wait(&be->ring, block ? 1 : 0);
	} while (ret == -EINTR);
	be->pending = 0;

	do {
		/* Copy the CQEs out first: handling them may submit. */
		n = 0;
		io_uring_for_each_cqe(&be->ring, head, cqe)
		{
			if (n == CQE_BATCH)
				break;
			got[n].ud = cqe->user_data;
			got[n].res = cqe->res;
			n++;
		}
		io_uring_cq_advance(&be->ring, n);
		for (i = 0; i < n; i++) {
			if (got[i].ud == UD_WAKE) {
				be->wake_armed = false;
			} else if (got[i].ud == UD_CANCEL) {
				/* -ENOENT/-EALREADY: the request ends by
				 * itself; nothing to do either way. */
			} else {
				be->in_kernel--;
				berth__pump_result(
					p,
					(struct berth_req *)(uintptr_t)got[i]
						.ud,
					got[i].res);
			}
		}
	} while (n == CQE_BATCH);
}

const struct berth_pump_backend berth__pump_uring = {
	.name = "uring",
	.id = BERTH_PUMP_URING,
	.init = uring_init,
	.destroy = uring_destroy,
	.supports = uring_supports,
	.submit = uring_submit,
	.cancel = uring_cancel,
	.wait = uring_wait,
};
