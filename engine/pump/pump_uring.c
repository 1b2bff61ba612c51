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
 *
 * Reads of cached data complete inside io_uring_enter(), so one pump
 * thread copies on one CPU.  With more than one CPU to run on the pump
 * also owns a helper ring with IORING_SETUP_SQPOLL, whose kernel thread
 * issues what is put there on another CPU: queues of positioned reads at
 * least HELPER_DEPTH deep are split between the two rings (to_helper()),
 * or every queue deeper than one with BERTH_PUMP_HELPER_ON.  The helper
 * can't share the DEFER_TASKRUN ring, and its thread polls for
 * HELPER_IDLE_MS after each request, then sleeps: it costs nothing while
 * the queues are shallow, and the pump parks it when it does not pay
 * (helper_check()).
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "pump_int.h"

#define UD_WAKE 1ull
#define UD_CANCEL 2ull
#define CQE_BATCH 128

/*
 * By default the helper takes reads only while this many positioned reads
 * are in the kernel (the one being started included).  A queue that deep
 * keeps the pump thread copying without a pause, so a second CPU doubles
 * what gets copied; the receiver's own queues (at most a dozen basis
 * reads) gain nothing from it but its cost: measured, a 1 GiB delta push
 * took 40% more CPU with the helper on every read and no less time.
 */
#define HELPER_DEPTH 16
/* How long the SQPOLL thread keeps polling after its last request. */
#define HELPER_IDLE_MS 5
/* How long the pump looks for helper completions before it sleeps. */
#define HELPER_SPIN_NS 50000
/*
 * Every HELPER_WINDOW turns the pump checks that the helper earns its CPU:
 * it must have taken at least 1/HELPER_MIN_SHARE of the reads it could
 * take (helper_eligible()).  If not it is parked (gets nothing, so its
 * thread goes to sleep) for HELPER_PARK_MIN_MS, doubling up to
 * HELPER_PARK_MAX_MS while it keeps failing.
 */
#define HELPER_WINDOW 1024
#define HELPER_MIN_SHARE 4
#define HELPER_PARK_MIN_MS 50
#define HELPER_PARK_MAX_MS 3200

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() atomic_signal_fence(memory_order_seq_cst)
#endif

/* One ring and what the pump keeps about it. */
struct uring_side {
	struct io_uring ring;
	unsigned limit; /* requests allowed in the kernel at once */
	unsigned in_kernel; /* requests (not wake/cancel) in the kernel */
	bool up;
};

struct uring_be {
	struct uring_side own; /* the pump thread issues here, inline */
	struct uring_side helper; /* SQPOLL: the kernel's thread issues */
	unsigned batch; /* requests put on own since its last submit */
	unsigned reads_in; /* positioned reads in the kernel, both rings */
	unsigned helper_depth; /* reads_in at which the helper takes reads */
	/* Helper bookkeeping (helper_check()). */
	unsigned win_turns, win_own, win_helper;
	bool parked;
	unsigned park_ms;
	struct timespec park_until;
	atomic_uint barrier; /* see sleep_with_helper() */
	struct io_uring_probe *probe;
	bool op_ok[BERTH_OP__COUNT];
	bool plain_rw; /* IORING_OP_READ/WRITE: no iovec to import */
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
	[BERTH_OP_CALL] = -1,
	[BERTH_OP_FSETXATTR] = -1,
	[BERTH_OP_FREMOVEXATTR] = -1,
	[BERTH_OP_FLISTXATTR] = -1,
};

static struct uring_be *be_of(struct berth_pump *p)
{
	return p->be;
}

/*
 * Blocking work on regular files (ext4's buffered writes, every fsync) runs
 * in io-wq's bounded workers, by default at most 4 per CPU per task: 8 on
 * two cores, for every session on the pump.  Durable pushes keep many
 * files' fsyncs queued (up to a commit stage's 256 files each), and more
 * of them in flight at once share the journal's commits.  W5 (10,000
 * files, --fsync): 1.2-2.8 s with 64 where 8 took 4.0-6.4 s, receiver CPU
 * 1.0-1.3 s against 1.5-1.8 s (256: as 64).  8 concurrent durable pushes
 * of 2,000 files: 2.3-2.8 s with 256, 3.2-5.7 s with 64 (1,000 files:
 * 1.8-5.4 s with 64, 5.2-7.1 s with 8).  Without fsync no change.  Workers
 * are made on demand, only while others block, and leave when idle.
 * 5.15+; older kernels keep their default.  The unbounded limit stays.
 */
#define URING_IOWQ_BOUNDED 256

static void set_iowq_workers(struct uring_side *s)
{
	unsigned w[2] = {URING_IOWQ_BOUNDED, 0};

	if (io_uring_register_iowq_max_workers(&s->ring, w) < 0) {
		/* Older kernel: its default. */
	}
}

static int ring_setup(struct uring_side *s, unsigned depth)
{
	struct io_uring_params params;
	int ret;

	/* The pump thread alone submits: let the kernel skip the locking and
	 * run completion work when we wait (6.1+), else plain (5.6+). */
	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		       IORING_SETUP_CQSIZE;
	params.cq_entries = depth * 2;
	ret = io_uring_queue_init_params(depth, &s->ring, &params);
	if (ret == -EINVAL) {
		memset(&params, 0, sizeof(params));
		params.flags = IORING_SETUP_CQSIZE;
		params.cq_entries = depth * 2;
		ret = io_uring_queue_init_params(depth, &s->ring, &params);
	}
	if (ret < 0)
		return ret;
	/* Leave room in the CQ for the wake-up read and cancels. */
	s->limit = params.cq_entries / 2;
	s->up = true;
	/* io_uring_enter() without an fd lookup (5.18+); optional. */
	if (io_uring_register_ring_fd(&s->ring) < 0) {
		/* Older kernel: enter through the fd as before. */
	}
	set_iowq_workers(s);
	return 0;
}

/* The CPUs this thread may run on (the SQPOLL thread inherits them). */
static int cpus_allowed(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return (int)sysconf(_SC_NPROCESSORS_ONLN);
	return CPU_COUNT(&set);
}

/*
 * The helper ring: a second ring whose SQ the kernel's SQPOLL thread
 * drains, so reads put there are copied on another CPU while the pump
 * thread issues its own ring's inline.  Its CQEs signal the pump's wake
 * eventfd, but only while the pump is about to sleep.  Returns 0 or -errno
 * (the pump then runs without it); -ENXIO with one CPU, where it would
 * only compete.
 */
static int helper_setup(struct berth_pump *p, struct uring_side *s,
			unsigned depth)
{
	struct io_uring_params params;
	int ret;

	if (cpus_allowed() < 2)
		return -ENXIO;
	memset(&params, 0, sizeof(params));
	params.flags = IORING_SETUP_SQPOLL | IORING_SETUP_CQSIZE;
	params.cq_entries = depth * 2;
	params.sq_thread_idle = HELPER_IDLE_MS;
	ret = io_uring_queue_init_params(depth, &s->ring, &params);
	if (ret < 0)
		return ret;
	ret = io_uring_register_eventfd(&s->ring, berth_waker_fd(&p->wake));
	if (ret == 0)
		ret = io_uring_cq_eventfd_toggle(&s->ring, false);
	if (ret < 0) {
		io_uring_queue_exit(&s->ring);
		return ret;
	}
	s->limit = params.cq_entries / 2;
	s->up = true;
	if (io_uring_register_ring_fd(&s->ring) < 0) {
		/* Older kernel: enter through the fd as before. */
	}
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
	ret = ring_setup(&be->own, p->queue_depth);
	if (ret < 0) {
		snprintf(reason, len, "io_uring_setup: %s%s", strerror(-ret),
			 ret == -EPERM	  ? " (disabled by sysctl or seccomp)"
			 : ret == -ENOMEM ? " (RLIMIT_MEMLOCK?)"
					  : "");
		free(be);
		return ret;
	}
	be->probe = io_uring_get_probe_ring(&be->own.ring);
	for (i = 0; i < BERTH_OP__COUNT; i++)
		be->op_ok[i] = opcode_of[i] >= 0 &&
			       (!be->probe || io_uring_opcode_supported(
						      be->probe, opcode_of[i]));
	/* READV/WRITEV/NOP/FSYNC are the minimum we rely on. */
	if (!be->op_ok[BERTH_OP_READ] || !be->op_ok[BERTH_OP_WRITE]) {
		snprintf(reason, len, "kernel io_uring lacks readv/writev");
		if (be->probe)
			io_uring_free_probe(be->probe);
		io_uring_queue_exit(&be->own.ring);
		free(be);
		return -EOPNOTSUPP;
	}
	/* One-buffer reads and writes skip the iovec copy (5.6+).  The
	 * length field is 32 bits: longer single buffers stay vectored. */
	be->plain_rw = be->probe &&
		       io_uring_opcode_supported(be->probe, IORING_OP_READ) &&
		       io_uring_opcode_supported(be->probe, IORING_OP_WRITE);
	ret = p->helper != BERTH_PUMP_HELPER_OFF
		      ? helper_setup(p, &be->helper, p->queue_depth)
		      : 1;
	be->helper_depth = p->helper == BERTH_PUMP_HELPER_ON ? 0 : HELPER_DEPTH;
	be->park_ms = HELPER_PARK_MIN_MS;
	snprintf(reason, len, "io_uring probe succeeded%s%s",
		 ret > 0   ? ""
		 : ret < 0 ? ", no SQPOLL helper: "
		 : p->helper == BERTH_PUMP_HELPER_ON
			 ? ", SQPOLL helper ring"
			 : ", SQPOLL helper ring for deep read queues",
		 ret == -ENXIO ? "one CPU"
		 : ret < 0     ? strerror(-ret)
			       : "");
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
	io_uring_queue_exit(&be->own.ring);
	if (be->helper.up)
		io_uring_queue_exit(&be->helper.ring);
	free(be);
	p->be = NULL;
}

static bool uring_supports(struct berth_pump *p, struct berth_req *req)
{
	return be_of(p)->op_ok[req->op];
}

/* An SQE on @s; when its SQ is full, push that to the kernel first. */
static struct io_uring_sqe *get_sqe(struct uring_be *be, struct uring_side *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

	if (!sqe) {
		io_uring_submit(&s->ring);
		if (s == &be->own)
			be->batch = 0;
		sqe = io_uring_get_sqe(&s->ring);
	}
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
	if (req->fault_refuse &&
	    (req->op == BERTH_OP_READ || req->op == BERTH_OP_WRITE)) {
		/* An RWF_ bit no kernel defines: the ring says -EOPNOTSUPP. */
		sqe->rw_flags = (int)(1u << 30);
		req->fault_refuse = 0;
	}
	io_uring_sqe_set_data(sqe, req);
}

static bool positioned_read(const struct berth_req *req)
{
	return req->op == BERTH_OP_READ && req->cur_off != BERTH_OFF_STREAM;
}

/*
 * Whether @req may go to the helper.  Only positioned reads: nothing there
 * needs ordering against anything else, and a cached read is a copy the
 * other CPU can do.  (Buffered writes mostly go to io-wq, where a second
 * ring only adds a second set of workers contending for the inode lock:
 * measured slower.)  And only in a queue of at least helper_depth reads.
 */
static bool helper_eligible(const struct uring_be *be,
			    const struct berth_req *req)
{
	return be->helper.up && positioned_read(req) &&
	       be->reads_in + 1 >= be->helper_depth;
}

/*
 * Whether an eligible request goes to the helper: only while the helper's
 * backlog is below what this turn has put on the pump's own ring.  One
 * request at a time stays inline (no hand-off), a deep queue is shared
 * between the two CPUs, and a helper that falls behind gets less.
 */
static bool to_helper(const struct uring_be *be)
{
	return !be->parked && be->helper.in_kernel < be->batch &&
	       be->helper.in_kernel < be->helper.limit;
}

/* Put @req into the kernel if there is room; false to keep it waiting. */
static bool try_start(struct berth_pump *p, struct uring_be *be,
		      struct berth_req *req)
{
	struct uring_side *s = &be->helper;
	struct io_uring_sqe *sqe = NULL;
	bool eligible = helper_eligible(be, req);

	if (eligible && to_helper(be))
		sqe = io_uring_get_sqe(&s->ring);
	if (!sqe) {
		s = &be->own;
		if (s->in_kernel >= s->limit)
			return false;
		sqe = get_sqe(be, s);
		if (!sqe)
			return false;
		be->batch++;
	}
	prep_sqe(sqe, req, be->plain_rw);
	req->be_ring = s == &be->helper;
	if (req->be_ring) {
		counter_bump(&p->n_helper);
		be->win_helper++;
	} else if (eligible) {
		be->win_own++;
	}
	s->in_kernel++;
	if (positioned_read(req))
		be->reads_in++;
	return true;
}

static void uring_submit(struct berth_pump *p, struct berth_req *req)
{
	struct uring_be *be = be_of(p);

	/* Keep order: nothing overtakes the backlog. */
	if (!be->backlog_head && try_start(p, be, req))
		return;
	req->next = NULL;
	if (be->backlog_tail)
		be->backlog_tail->next = req;
	else
		be->backlog_head = req;
	be->backlog_tail = req;
}

static void backlog_run(struct berth_pump *p, struct uring_be *be)
{
	struct berth_req *req;

	while ((req = be->backlog_head) && try_start(p, be, req)) {
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
	/* On the ring that has it. */
	sqe = get_sqe(be, req->be_ring ? &be->helper : &be->own);
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
	sqe = get_sqe(be, &be->own);
	if (!sqe)
		return; /* retried next turn */
	io_uring_prep_read(sqe, berth_waker_fd(&p->wake), &be->wake_buf,
			   sizeof(be->wake_buf), 0);
	io_uring_sqe_set_data64(sqe, UD_WAKE);
	be->wake_armed = true;
}

/* Deliver what @s has completed.  Returns the number of CQEs seen. */
static unsigned reap(struct berth_pump *p, struct uring_be *be,
		     struct uring_side *s)
{
	struct io_uring_cqe *cqe;
	struct berth_req *req;
	struct {
		uint64_t ud;
		int res;
	} got[CQE_BATCH];
	unsigned head, n, i, total = 0;

	do {
		/* Copy the CQEs out first: handling them may submit. */
		n = 0;
		io_uring_for_each_cqe(&s->ring, head, cqe)
		{
			if (n == CQE_BATCH)
				break;
			got[n].ud = cqe->user_data;
			got[n].res = cqe->res;
			n++;
		}
		io_uring_cq_advance(&s->ring, n);
		total += n;
		for (i = 0; i < n; i++) {
			if (got[i].ud == UD_WAKE) {
				be->wake_armed = false;
			} else if (got[i].ud == UD_CANCEL) {
				/* -ENOENT/-EALREADY: the request ends by
				 * itself; nothing to do either way. */
			} else {
				req = (struct berth_req *)(uintptr_t)got[i].ud;
				s->in_kernel--;
				if (positioned_read(req))
					be->reads_in--;
				berth__pump_result(p, req, got[i].res);
			}
		}
	} while (n == CQE_BATCH);
	return total;
}

/*
 * The helper has requests in flight and the pump nothing else to do: for
 * cached data their CQEs are microseconds away, so look for them (and for
 * work from other threads) a little before paying for a sleep and a
 * wake-up.  True when something turned up.
 */
static bool helper_spin(struct berth_pump *p, struct uring_be *be)
{
	struct timespec t0, t;
	unsigned i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 1;; i++) {
		if (io_uring_cq_ready(&be->helper.ring) ||
		    atomic_load_explicit(&p->has_work, memory_order_relaxed))
			return true;
		if (i % 64 == 0) {
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec -
				    t0.tv_nsec >
			    HELPER_SPIN_NS)
				return false;
		}
		cpu_relax();
	}
}

/*
 * Sleep on the own ring until a CQE, a wake-up or a helper CQE (through
 * the wake eventfd).  The kernel reads the helper's "eventfd disabled" flag
 * after posting a CQE without a full barrier, so a CQE posted just as the
 * flag is cleared may not signal: the first sleep is bounded, and after it
 * the flag has long been visible.
 */
static void sleep_with_helper(struct uring_be *be)
{
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 1000000};
	struct io_uring_cqe *cqe;
	int ret;

	io_uring_cq_eventfd_toggle(&be->helper.ring, true);
	/* A full barrier between that store and the load of the CQ tail (a
	 * seq_cst read-modify-write: TSan knows no bare fences). */
	atomic_fetch_add_explicit(&be->barrier, 0, memory_order_seq_cst);
	if (!io_uring_cq_ready(&be->helper.ring)) {
		do {
			ret = io_uring_submit_and_wait_timeout(
				&be->own.ring, &cqe, 1, &ts, NULL);
		} while (ret == -EINTR);
		if (ret == -ETIME && !io_uring_cq_ready(&be->helper.ring)) {
			do {
				ret = io_uring_submit_and_wait(&be->own.ring,
							       1);
			} while (ret == -EINTR);
		}
	} else {
		io_uring_submit_and_get_events(&be->own.ring);
	}
	io_uring_cq_eventfd_toggle(&be->helper.ring, false);
}

static bool time_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec != b->tv_sec ? a->tv_sec > b->tv_sec
				      : a->tv_nsec > b->tv_nsec;
}

/*
 * Once a window: does the helper earn its CPU?  A thread that polls for
 * work costs a CPU whether it gets any or not; on a busy machine it takes
 * that time from everyone (the pump included), and its share of the
 * requests drops as it falls behind.  Then, or when the queue is too
 * shallow to share, park it: no new requests, so it sleeps after
 * HELPER_IDLE_MS.  Probe again later.
 */
static void helper_check(struct uring_be *be)
{
	struct timespec now;
	unsigned total = be->win_own + be->win_helper;

	if (++be->win_turns < HELPER_WINDOW)
		return;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	if (be->parked) {
		if (time_after(&now, &be->park_until))
			be->parked = false;
	} else if (be->win_helper * HELPER_MIN_SHARE < total) {
		be->parked = true;
		be->park_until = now;
		be->park_until.tv_nsec += (long)be->park_ms * 1000000L;
		be->park_until.tv_sec += be->park_until.tv_nsec / 1000000000L;
		be->park_until.tv_nsec %= 1000000000L;
		if (be->park_ms < HELPER_PARK_MAX_MS)
			be->park_ms *= 2;
	} else {
		be->park_ms = HELPER_PARK_MIN_MS;
	}
	be->win_turns = be->win_own = be->win_helper = 0;
}

static void uring_wait(struct berth_pump *p, bool block)
{
	struct uring_be *be = be_of(p);
	int ret;

	backlog_run(p, be);
	arm_wake(p, be);
	/* Helper work first, so its CPU copies while ours does. */
	if (be->helper.up && io_uring_sq_ready(&be->helper.ring))
		io_uring_submit(&be->helper.ring);
	/*
	 * Errors from entering (-EINTR, -EAGAIN, -EBUSY) leave the SQEs
	 * queued and the CQEs where they are: the next turn retries.
	 * GETEVENTS even when not blocking, so a DEFER_TASKRUN ring posts
	 * what completed asynchronously.
	 */
	if (!block) {
		io_uring_submit_and_get_events(&be->own.ring);
	} else if (!be->helper.in_kernel) {
		do {
			ret = io_uring_submit_and_wait(&be->own.ring, 1);
		} while (ret == -EINTR);
	} else if (io_uring_sq_ready(&be->own.ring) || helper_spin(p, be)) {
		io_uring_submit_and_get_events(&be->own.ring);
	} else {
		sleep_with_helper(be);
	}
	be->batch = 0;
	if (be->helper.up)
		helper_check(be);

	reap(p, be, &be->own);
	if (be->helper.up)
		reap(p, be, &be->helper);
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
