/* SPDX-License-Identifier: MIT */
/*
 * The completion pump: berth's one proactor, shared by basis reads, delta
 * apply and disk commit.  Internal API (not in include/berth.h).
 *
 * A request (struct berth_req) is allocated by the caller, usually embedded
 * in a larger struct, prepared with one of the berth_prep_*() helpers and
 * handed to berth_pump_submit().  The pump performs the operation on its
 * backend (io_uring or a thread pool) and calls req->cb exactly once, on the
 * pump thread, with the result: >= 0 on success (bytes for read/write, an fd
 * for openat2, 0 otherwise), or -errno.  That holds also for requests that are
 * cancelled (-ECANCELED) or caught by berth_pump_shutdown() (-ECANCELED).
 *
 * The request, its iovec array, its path strings and the buffers and structs
 * they point to belong to the pump from submit until the callback starts;
 * the caller must not touch or free them in between.  The pump may modify
 * the iovec elements in place to continue a short transfer (the fields the
 * berth_prep_*() helpers set are left as they were).  Inside the
 * callback the request is the caller's again and may be reused at once.
 *
 * Short reads and writes with an explicit offset (regular files) are
 * continued until everything is transferred, end of file or an error; the
 * callback then gets the total.  A read at BERTH_OFF_STREAM (pipes, sockets)
 * completes with whatever one read returned.  If a continuation fails after
 * some bytes were moved, the callback gets -errno (the partial count is in
 * req->done).
 *
 * Lock order (pump_int.h): pump->lock is a leaf: nothing else is taken while it
 * is held, and callbacks never run under it.
 */
#ifndef BERTH_PUMP_H
#define BERTH_PUMP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "berth.h"
#include "engine/platform/platform_types.h"

struct berth_req;
struct berth_pump;
struct open_how;
struct statx;
struct timespec;

/* Offset meaning "the fd's current position" (pipes, sockets). */
#define BERTH_OFF_STREAM ((uint64_t)-1)

enum berth_op {
	BERTH_OP_NOP = 0,
	BERTH_OP_READ,
	BERTH_OP_WRITE,
	BERTH_OP_FSYNC,
	BERTH_OP_OPENAT2,
	BERTH_OP_CLOSE,
	BERTH_OP_STATX,
	BERTH_OP_RENAMEAT2,
	BERTH_OP_UNLINKAT,
	BERTH_OP_MKDIRAT,
	BERTH_OP_SYMLINKAT,
	BERTH_OP_LINKAT,
	/* No io_uring opcode: always run on the pool (also in the uring
	 * backend, as a per-op fallback). */
	BERTH_OP_FCHMODAT,
	BERTH_OP_FCHOWNAT,
	BERTH_OP_UTIMENSAT,
	BERTH_OP_MKNODAT,
	BERTH_OP_FTRUNCATE,
	BERTH_OP_FALLOCATE,
	/* Extended attributes of an fd, which may be an O_PATH fd (then
	 * reached through /proc/self/fd, never followed further): works for
	 * symlinks and special files too. */
	BERTH_OP_FSETXATTR,
	BERTH_OP_FREMOVEXATTR,
	BERTH_OP_FLISTXATTR,
	/* Run a function on a pool thread (several syscalls in one hop). */
	BERTH_OP_CALL,
	BERTH_OP__COUNT
};

/* Bit for berth_fault.ops and friends. */
#define BERTH_OP_BIT(op) (1u << (op))

/* Flag for BERTH_OP_FSYNC: fdatasync instead of fsync. */
#define BERTH_FSYNC_DATASYNC 1u
/*
 * Flag for a positioned BERTH_OP_READ run by berth_pump_run_inline(): take
 * only what the page cache holds, -EAGAIN when the read would wait
 * (Linux: RWF_NOWAIT; may also be short).  Where that cannot be asked,
 * always -EAGAIN.  Not for submitted requests.
 */
#define BERTH_READ_NOWAIT 1u

typedef void (*berth_req_cb)(struct berth_req *req, ssize_t res);
/* BERTH_OP_CALL: the work; returns the result (>= 0 or -errno). */
typedef ssize_t (*berth_req_fn)(void *arg);

struct berth_req {
	/* Set by berth_prep_*(); read-only to the pump. */
	uint8_t op;
	int fd; /* fd, or dirfd for path operations */
	int fd2; /* newdirfd (rename, link, symlink) */
	const char *path; /* path; oldpath; symlink target */
	const char *path2; /* newpath; symlink linkpath */
	struct iovec *iov; /* read/write buffers (may be advanced in place) */
	int iovcnt;
	uint64_t off; /* file offset, or BERTH_OFF_STREAM */
	uint64_t len; /* fallocate length; ftruncate length; mknod dev;
		       * xattr value or list buffer size */
	uint32_t flags; /* op flags: fsync, statx, rename, unlink, link, at */
	uint32_t mode; /* mkdirat/fchmodat/mknodat mode; statx mask;
			 * fallocate mode */
	uint32_t uid, gid; /* fchownat (-1 leaves one unchanged) */
	void *arg; /* struct open_how *, struct statx *, struct timespec[2],
		    * xattr value or list buffer; the argument of fn */
	berth_req_fn fn; /* BERTH_OP_CALL */

	/* Set by the caller (berth_req_set_cb() or directly). */
	berth_req_cb cb;
	void *data; /* user pointer, untouched by the pump */
	uint64_t tag; /* owner / group, for berth_pump_cancel_tag() */

	/* One-buffer read/write keeps its iovec here. */
	struct iovec iov1;

	/* Private to the pump. */
	uint64_t done; /* bytes moved so far */
	uint64_t want; /* bytes asked for (read/write) */
	uint64_t cur_off; /* offset of the next attempt */
	struct iovec *cur_iov; /* what is left to transfer */
	int cur_iovcnt;
	int trim_idx; /* short-fault trim: element, or -1 */
	size_t trim_saved; /* its original length */
	ssize_t res_raw; /* pool result, posted to the pump thread */
	struct berth_req *next; /* submit / pool / done queue link */
	struct berth_req *cancel_next; /* cancel queue link */
	struct berth_req *inflight_prev; /* pump-thread in-flight list */
	struct berth_req *inflight_next;
	atomic_int cancel_state; /* REQ_CANCEL_* (pump_int.h) */
	uint8_t cancelled; /* pump thread: cancel was issued */
	uint8_t where; /* pump thread: REQ_AT_* (pump_int.h) */
	uint8_t via_pool; /* pump thread: runs on the pool */
	uint8_t ring_retry; /* pump thread: the ring refused it; pool rerun */
	uint8_t fault_refuse; /* ring attempt gets a flag it must refuse */
	uint8_t be_ring; /* pump thread: the backend's (uring: which ring) */
	uint32_t fault_short; /* > 0: cap the next attempt */
	/* The backend's per-request storage: iocp's OVERLAPPED, from which
	 * a completion finds its request (container_of). */
	struct berth_plat_ov plat;
};

/*
 * berth_pump_create(), _shutdown(), _free(), _backend() and
 * _backend_reason() and struct berth_pump_opts are public: include/berth.h.
 */

/*
 * Hand a prepared request to the pump.  Returns 0 (the callback will run
 * exactly once, later, on the pump thread — never inside this call), or a
 * negative error with no callback: -ESHUTDOWN after shutdown began, -EINVAL
 * for a malformed request.  Any thread, including callbacks.
 */
int berth_pump_submit(struct berth_pump *pump, struct berth_req *req);

/*
 * Ask that one in-flight request be cancelled.  The callback still runs
 * exactly once: with -ECANCELED if the cancel won, or with the operation's
 * result if it had finished or could not be interrupted (a syscall already
 * running on a regular file).  Valid only between submit and the start of the
 * callback.  Any thread.
 */
void berth_pump_cancel(struct berth_pump *pump, struct berth_req *req);

/*
 * Cancel every request in flight whose tag equals @tag, as
 * berth_pump_cancel() does for each.  Returns 0, or -ENOMEM if the request
 * could not be queued (nothing was cancelled).  Any thread.
 */
int berth_pump_cancel_tag(struct berth_pump *pump, uint64_t tag);

/* True when called on this pump's thread (i.e. from a callback). */
int berth_pump_on_thread(const struct berth_pump *pump);

/* True once berth_pump_shutdown() has begun: every request in flight or
 * submitted since ends -BERTH_ECANCELLED.  A session that sees a cancel it
 * did not ask for asks this to learn why.  Any thread. */
bool berth_pump_stopped(struct berth_pump *pump);

struct berth_pump_stats {
	uint64_t submitted; /* accepted by berth_pump_submit() */
	uint64_t completed; /* callbacks run */
	uint64_t in_flight; /* submitted - completed */
	uint64_t fallback; /* uring backend: requests run on the pool */
	uint64_t resubmits; /* continuations of short transfers */
	uint64_t faults; /* injected faults that fired */
	uint64_t helper; /* uring: attempts run on the SQPOLL helper ring */
};

/* Counters, consistent at the moment of the call.  Any thread. */
void berth_pump_stats(struct berth_pump *pump, struct berth_pump_stats *st);

/*
 * Fault injection for tests.  A fault matches requests whose op bit is in
 * @ops and, if @tag is non-zero, whose tag equals it.  The @nth matching
 * request (1-based, counted from arming) and the @count - 1 after it fail
 * with -@error without performing the operation, or, when @error is 0 and
 * @short_bytes > 0, transfer at most @short_bytes on their first attempt
 * (the pump then continues them as any short transfer), or, with
 * BERTH_FAULT_RING_REFUSE in @flags, are refused by the ring (below).  Up to
 * BERTH_PUMP_MAX_FAULTS are armed at once.  Costs one predicted branch per
 * request when none is armed.  Any thread.
 */
#define BERTH_PUMP_MAX_FAULTS 8
struct berth_fault {
	uint32_t ops;
	uint64_t tag;
	uint64_t nth;
	uint64_t count; /* 0 means 1 */
	int error;
	uint32_t short_bytes;
	uint32_t flags; /* BERTH_FAULT_* */
};

/*
 * Fault flag: the matching reads and writes are not failed by the pump;
 * the uring backend issues them with an rw flag no kernel defines, so the
 * ring itself refuses them (-EOPNOTSUPP), as a kernel whose probe
 * overstates would.  Tests the per-op fallback; the pool ignores it.
 */
#define BERTH_FAULT_RING_REFUSE 1u
int berth_pump_inject(struct berth_pump *pump, const struct berth_fault *f);
void berth_pump_clear_faults(struct berth_pump *pump);

/*
 * Run @req now on the calling thread with blocking syscalls, bypassing any
 * pump, and return its result (no callback).  For cleanup that must happen
 * even after the pump was shut down (closing fds, removing temp files).
 * Short transfers are not continued.  Any thread.
 */
ssize_t berth_req_run_sync(struct berth_req *req);

/*
 * Run @req now on the calling thread, as berth_req_run_sync() does, but
 * checked against @pump's injected faults first (by op and tag, like a
 * submitted request): for short blocking calls on a caller's own critical
 * path.  A write at a file offset is continued past a short transfer, as
 * a submitted one; other short transfers are returned as they are.
 * Returns the result (no callback).  Any thread.
 */
ssize_t berth_pump_run_inline(struct berth_pump *pump, struct berth_req *req);

/* Preparation helpers: fill the operation fields, clear the private ones. */
void berth_prep_nop(struct berth_req *req);
void berth_prep_read(struct berth_req *req, int fd, void *buf, size_t len,
		     uint64_t off);
void berth_prep_readv(struct berth_req *req, int fd, struct iovec *iov,
		      int iovcnt, uint64_t off);
void berth_prep_write(struct berth_req *req, int fd, const void *buf,
		      size_t len, uint64_t off);
void berth_prep_writev(struct berth_req *req, int fd, struct iovec *iov,
		       int iovcnt, uint64_t off);
void berth_prep_fsync(struct berth_req *req, int fd, uint32_t flags);
void berth_prep_openat2(struct berth_req *req, int dirfd, const char *path,
			struct open_how *how);
void berth_prep_close(struct berth_req *req, int fd);
void berth_prep_statx(struct berth_req *req, int dirfd, const char *path,
		      int flags, unsigned mask, struct statx *stx);
void berth_prep_renameat2(struct berth_req *req, int olddirfd,
			  const char *oldpath, int newdirfd,
			  const char *newpath, unsigned flags);
void berth_prep_unlinkat(struct berth_req *req, int dirfd, const char *path,
			 int flags);
void berth_prep_mkdirat(struct berth_req *req, int dirfd, const char *path,
			mode_t mode);
void berth_prep_symlinkat(struct berth_req *req, const char *target,
			  int newdirfd, const char *linkpath);
void berth_prep_linkat(struct berth_req *req, int olddirfd, const char *oldpath,
		       int newdirfd, const char *newpath, int flags);

/*
 * For the fd-or-path operations below, @path NULL means "the fd itself"
 * (fchmod, fchown, futimens); otherwise @path is resolved relative to @dirfd
 * with @flags (e.g. AT_SYMLINK_NOFOLLOW).
 */
void berth_prep_fchmodat(struct berth_req *req, int dirfd, const char *path,
			 mode_t mode, int flags);
void berth_prep_fchownat(struct berth_req *req, int dirfd, const char *path,
			 uid_t uid, gid_t gid, int flags);
/* @times: [0] atime, [1] mtime, as for utimensat(2); kept until callback. */
void berth_prep_utimensat(struct berth_req *req, int dirfd, const char *path,
			  const struct timespec *times, int flags);
void berth_prep_mknodat(struct berth_req *req, int dirfd, const char *path,
			mode_t mode, dev_t dev);
void berth_prep_ftruncate(struct berth_req *req, int fd, uint64_t length);
void berth_prep_fallocate(struct berth_req *req, int fd, int mode, uint64_t off,
			  uint64_t len);
/*
 * Run @fn(@arg) on a pool thread; the callback gets its result.  Queued
 * work is cancelled as any request (-ECANCELED: @fn did not run); once
 * running it is not interrupted.  @fn must not block on the pump.
 */
void berth_prep_call(struct berth_req *req, berth_req_fn fn, void *arg);

/*
 * Extended attributes of @fd (a regular fd or an O_PATH fd, also of a
 * symlink: the attribute is that of the object the fd refers to).  @name,
 * @value and @buf are kept until the callback.  fsetxattr completes with 0
 * (@flags: XATTR_CREATE / XATTR_REPLACE or 0), fremovexattr with 0,
 * flistxattr with the length of the NUL-separated name list written to
 * @buf (with @size 0: the length needed; -ERANGE if @size is too small).
 */
void berth_prep_fsetxattr(struct berth_req *req, int fd, const char *name,
			  const void *value, size_t size, int flags);
void berth_prep_fremovexattr(struct berth_req *req, int fd, const char *name);
void berth_prep_flistxattr(struct berth_req *req, int fd, char *buf,
			   size_t size);

static inline void berth_req_set_cb(struct berth_req *req, berth_req_cb cb,
				    void *data, uint64_t tag)
{
	req->cb = cb;
	req->data = data;
	req->tag = tag;
}

#endif /* BERTH_PUMP_H */
