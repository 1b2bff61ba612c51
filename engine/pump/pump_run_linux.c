/* SPDX-License-Identifier: MIT */
/*
 * One pump operation with Linux's blocking system calls, for the worker
 * pool (pump_pool.c) and berth_req_run_sync(): positioned and stream
 * reads and writes (a stream op first polls beside the worker's cancel
 * waker), openat2, statx, the *at() calls, xattrs (an O_PATH fd reached
 * through its /proc path), BERTH_OP_CALL.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "pump_int.h"

static ssize_t wait_ready(int fd, short events, int cancel_fd)
{
	struct pollfd pfd[2] = {
		{.fd = fd, .events = events},
		{.fd = cancel_fd, .events = POLLIN},
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[1].revents)
			return -ECANCELED;
		/* POLLERR/POLLHUP: let the syscall report it. */
		return 0;
	}
}

static ssize_t run_rw(struct berth_req *req, int cancel_fd)
{
	ssize_t ret;
	bool rd = req->op == BERTH_OP_READ;

	if (req->cur_off == BERTH_OFF_STREAM) {
		ret = wait_ready(req->fd, rd ? POLLIN : POLLOUT, cancel_fd);
		if (ret < 0)
			return ret;
		do {
			ret = rd ? readv(req->fd, req->cur_iov, req->cur_iovcnt)
				 : writev(req->fd, req->cur_iov,
					  req->cur_iovcnt);
		} while (ret < 0 && errno == EINTR);
	} else {
		int rwf = rd && (req->flags & BERTH_READ_NOWAIT) ? RWF_NOWAIT
								 : 0;

		do {
			ret = rd ? preadv2(req->fd, req->cur_iov,
					   req->cur_iovcnt, (off_t)req->cur_off,
					   rwf)
				 : pwritev(req->fd, req->cur_iov,
					   req->cur_iovcnt,
					   (off_t)req->cur_off);
		} while (ret < 0 && errno == EINTR);
		/* EOPNOTSUPP: a file system without RWF_NOWAIT. */
		if (rwf && ret < 0 && errno == EOPNOTSUPP)
			errno = EAGAIN;
	}
	return ret < 0 ? -errno : ret;
}

static int fd_or_path(int ret)
{
	return ret < 0 ? -errno : ret;
}

/*
 * f*xattr() on an O_PATH fd fails with EBADF (Linux up to at least 6.18);
 * the fd's path from berth_plat_fd_path() (its /proc/self/fd link) then
 * reaches the same object: a magic link is a jump to what the fd refers
 * to, never followed further, so a symlink's own attributes are the ones
 * used.
 */
static ssize_t run_xattr(struct berth_req *req)
{
	char proc[32];
	ssize_t ret = -1;

	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			berth_plat_fd_path(req->fd, proc, sizeof(proc));
		switch (req->op) {
		case BERTH_OP_FSETXATTR:
			ret = pass ? setxattr(proc, req->path, req->arg,
					      (size_t)req->len, (int)req->flags)
				   : fsetxattr(req->fd, req->path, req->arg,
					       (size_t)req->len,
					       (int)req->flags);
			break;
		case BERTH_OP_FREMOVEXATTR:
			ret = pass ? removexattr(proc, req->path)
				   : fremovexattr(req->fd, req->path);
			break;
		default:
			ret = pass ? listxattr(proc, req->arg, (size_t)req->len)
				   : flistxattr(req->fd, req->arg,
						(size_t)req->len);
			break;
		}
		if (ret >= 0 || errno != EBADF || req->fd < 0)
			break;
	}
	if (ret < 0 && errno == ENOENT)
		return -EBADF; /* no such fd after all */
	return ret < 0 ? -errno : ret;
}

ssize_t berth__pool_run(struct berth_req *req, struct berth_waker *cancel)
{
	int cancel_fd = cancel ? berth_waker_fd(cancel) : -1;

	switch (req->op) {
	case BERTH_OP_NOP:
		return 0;
	case BERTH_OP_READ:
	case BERTH_OP_WRITE:
		return run_rw(req, cancel_fd);
	case BERTH_OP_FSYNC:
		return fd_or_path(req->flags & BERTH_FSYNC_DATASYNC
					  ? fdatasync(req->fd)
					  : fsync(req->fd));
	case BERTH_OP_OPENAT2:
		return fd_or_path((int)syscall(SYS_openat2, req->fd, req->path,
					       req->arg,
					       sizeof(struct open_how)));
	case BERTH_OP_CLOSE:
		/* Linux frees the fd even when close() fails. */
		return fd_or_path(close(req->fd));
	case BERTH_OP_STATX:
		return fd_or_path(statx(req->fd, req->path, (int)req->flags,
					req->mode, req->arg));
	case BERTH_OP_RENAMEAT2:
		return fd_or_path(renameat2(req->fd, req->path, req->fd2,
					    req->path2, req->flags));
	case BERTH_OP_UNLINKAT:
		return fd_or_path(
			unlinkat(req->fd, req->path, (int)req->flags));
	case BERTH_OP_MKDIRAT:
		return fd_or_path(mkdirat(req->fd, req->path, req->mode));
	case BERTH_OP_SYMLINKAT:
		return fd_or_path(symlinkat(req->path, req->fd2, req->path2));
	case BERTH_OP_LINKAT:
		return fd_or_path(linkat(req->fd, req->path, req->fd2,
					 req->path2, (int)req->flags));
	case BERTH_OP_FCHMODAT:
		return fd_or_path(req->path
					  ? fchmodat(req->fd, req->path,
						     req->mode, (int)req->flags)
					  : fchmod(req->fd, req->mode));
	case BERTH_OP_FCHOWNAT:
		return fd_or_path(
			req->path ? fchownat(req->fd, req->path, req->uid,
					     req->gid, (int)req->flags)
				  : fchown(req->fd, req->uid, req->gid));
	case BERTH_OP_UTIMENSAT:
		return fd_or_path(req->path
					  ? utimensat(req->fd, req->path,
						      req->arg, (int)req->flags)
					  : futimens(req->fd, req->arg));
	case BERTH_OP_MKNODAT:
		return fd_or_path(mknodat(req->fd, req->path, req->mode,
					  (dev_t)req->len));
	case BERTH_OP_FTRUNCATE:
		return fd_or_path(ftruncate(req->fd, (off_t)req->len));
	case BERTH_OP_FALLOCATE:
		return fd_or_path(fallocate(req->fd, (int)req->mode,
					    (off_t)req->cur_off,
					    (off_t)req->len));
	case BERTH_OP_CALL:
		return req->fn ? req->fn(req->arg) : -EINVAL;
	case BERTH_OP_FSETXATTR:
	case BERTH_OP_FREMOVEXATTR:
	case BERTH_OP_FLISTXATTR:
		return run_xattr(req);
	default:
		return -EINVAL;
	}
}
