/* SPDX-License-Identifier: MIT */
/*
 * One pump operation with Windows' blocking calls, for the worker pool
 * (pump_pool.c: the whole `pool` backend, and the operations with no
 * overlapped form under `iocp`) and berth_req_run_sync().
 *
 * Reads and writes are issued overlapped with the offset in the
 * OVERLAPPED (there is no pread) and waited for on a private event whose
 * low bit keeps the completion off any port; a wait that would block is
 * also woken by the worker's cancel waker, which cancels the transfer
 * (CancelIoEx) and waits for it to end.  Path operations go through
 * platform_win.c, beneath their directory handle.  What Windows has no
 * counterpart for (symlinks, hard links, device nodes, xattrs) fails with
 * -EOPNOTSUPP, so the caller reports that one item; a change of owner is
 * -EPERM, as for a non-root user on Linux.
 */
#include <errno.h>
#include <io.h>

#include <windows.h>

#include "engine/platform/platform_win.h"
#include "pump_int.h"

static ssize_t run_rw(struct berth_req *req, struct berth_waker *cancel)
{
	HANDLE h = berth_plat_handle(req->fd), ev;
	HANDLE waits[2];
	OVERLAPPED ov = {0};
	bool rd = req->op == BERTH_OP_READ;
	uint64_t off = req->cur_off == BERTH_OFF_STREAM ? 0 : req->cur_off;
	size_t len = req->cur_iov[0].iov_len;
	DWORD n = 0, want = len > 0x40000000 ? 0x40000000 : (DWORD)len;
	ssize_t ret;
	BOOL ok;

	if (!h)
		return -EBADF;
	if (rd && (req->flags & BERTH_READ_NOWAIT))
		return -EAGAIN; /* no such read here: the caller submits */
	/* Beyond what off_t holds: refused, as Linux does (the top values
	 * are Windows' "append" and "at the file pointer"). */
	if (off > INT64_MAX)
		return -EINVAL;
	ev = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!ev)
		return berth_plat_err(GetLastError());
	ov.Offset = (DWORD)off;
	ov.OffsetHigh = (DWORD)(off >> 32);
	ov.hEvent = (HANDLE)((uintptr_t)ev | 1);
	/* One buffer per attempt: the pump continues a vector as a short
	 * transfer. */
	ok = rd ? ReadFile(h, req->cur_iov[0].iov_base, want, &n, &ov)
		: WriteFile(h, req->cur_iov[0].iov_base, want, &n, &ov);
	if (!ok && GetLastError() == ERROR_IO_PENDING) {
		DWORD w;

		waits[0] = ev;
		waits[1] = cancel ? berth_waker_handle(cancel) : NULL;
		w = WaitForMultipleObjects(cancel ? 2 : 1, waits, FALSE,
					   INFINITE);
		if (w == WAIT_OBJECT_0 + 1)
			CancelIoEx(h, &ov);
		ok = GetOverlappedResult(h, &ov, &n, TRUE);
	}
	ret = berth_plat_io_result(ok, n);
	CloseHandle(ev);
	return ret;
}

/* The handle of @fd, or of @path beneath it (fd-or-path operations). */
static ssize_t with_handle(struct berth_req *req, uint32_t access,
			   ssize_t (*fn)(struct berth_req *, HANDLE))
{
	void *h;
	ssize_t ret;

	if (!req->path) {
		h = berth_plat_handle(req->fd);
		return h ? fn(req, h) : -EBADF;
	}
	ret = berth__plat_open_handle(
		req->fd, req->path,
		O_PATH | (req->flags & AT_SYMLINK_NOFOLLOW ? O_NOFOLLOW : 0), 0,
		access, &h);
	if (ret < 0)
		return ret;
	ret = fn(req, h);
	CloseHandle(h);
	return ret;
}

static ssize_t set_times(struct berth_req *req, HANDLE h)
{
	return berth__plat_futimens(h, req->arg);
}

/* Windows keeps one permission bit: FILE_ATTRIBUTE_READONLY. */
static ssize_t set_mode(struct berth_req *req, HANDLE h)
{
	return berth__plat_fchmod_handle(h, (mode_t)req->mode);
}

static ssize_t truncate_to(HANDLE h, uint64_t len)
{
	FILE_END_OF_FILE_INFO eof;

	eof.EndOfFile.QuadPart = (LONGLONG)len;
	return SetFileInformationByHandle(h, FileEndOfFileInfo, &eof,
					  sizeof(eof))
		       ? 0
		       : berth_plat_err(GetLastError());
}

static ssize_t run_open(struct berth_req *req)
{
	const struct open_how *how = req->arg;

	return berth_plat_open_beneath_mode(req->fd, req->path, (int)how->flags,
					    (mode_t)how->mode);
}

ssize_t berth__pool_run(struct berth_req *req, struct berth_waker *cancel)
{
	HANDLE h;

	switch (req->op) {
	case BERTH_OP_NOP:
		return 0;
	case BERTH_OP_READ:
	case BERTH_OP_WRITE:
		return run_rw(req, cancel);
	case BERTH_OP_FSYNC:
		return berth_plat_fsync(req->fd);
	case BERTH_OP_OPENAT2:
		return run_open(req);
	case BERTH_OP_CLOSE:
		return _close(req->fd) == 0 ? 0 : -EBADF;
	case BERTH_OP_STATX:
		return berth__plat_statx(req->fd, req->path, (int)req->flags,
					 req->arg);
	case BERTH_OP_RENAMEAT2:
		return berth__plat_renameat(req->fd, req->path, req->fd2,
					    req->path2, req->flags);
	case BERTH_OP_UNLINKAT:
		return berth__plat_unlinkat(req->fd, req->path,
					    (int)req->flags);
	case BERTH_OP_MKDIRAT:
		return berth__plat_mkdirat(req->fd, req->path,
					   (mode_t)req->mode);
	case BERTH_OP_FCHMODAT:
		return with_handle(req, FILE_WRITE_ATTRIBUTES, set_mode);
	case BERTH_OP_UTIMENSAT:
		return with_handle(req, FILE_WRITE_ATTRIBUTES, set_times);
	case BERTH_OP_FTRUNCATE:
		h = berth_plat_handle(req->fd);
		return h ? truncate_to(h, req->len) : -EBADF;
	case BERTH_OP_FCHOWNAT:
		/* No uid or gid to give: refused as Linux refuses a
		 * non-root user (berth_plat_fchown()). */
		return -EPERM;
	case BERTH_OP_FALLOCATE:
		/* Space is reserved as the writes come. */
		return 0;
	case BERTH_OP_CALL:
		return req->fn ? req->fn(req->arg) : -EINVAL;
	case BERTH_OP_SYMLINKAT:
	case BERTH_OP_LINKAT:
	case BERTH_OP_MKNODAT:
	case BERTH_OP_FSETXATTR:
	case BERTH_OP_FREMOVEXATTR:
	case BERTH_OP_FLISTXATTR:
		return -EOPNOTSUPP;
	default:
		return -EINVAL;
	}
}
