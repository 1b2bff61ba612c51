/* SPDX-License-Identifier: MIT */
/* Request preparation helpers: fill the operation, clear the rest. */
#include <string.h>

#include "pump.h"

static void prep(struct berth_req *req, int op, int fd)
{
	/* Keep the caller's cb/data/tag; reset the operation fields. */
	berth_req_cb cb = req->cb;
	void *data = req->data;
	uint64_t tag = req->tag;

	memset(req, 0, sizeof(*req));
	req->cb = cb;
	req->data = data;
	req->tag = tag;
	req->op = (uint8_t)op;
	req->fd = fd;
	req->fd2 = -1;
}

void berth_prep_nop(struct berth_req *req)
{
	prep(req, BERTH_OP_NOP, -1);
}

void berth_prep_readv(struct berth_req *req, int fd, struct iovec *iov,
		      int iovcnt, uint64_t off)
{
	prep(req, BERTH_OP_READ, fd);
	req->iov = iov;
	req->iovcnt = iovcnt;
	req->off = off;
}

void berth_prep_read(struct berth_req *req, int fd, void *buf, size_t len,
		     uint64_t off)
{
	berth_prep_readv(req, fd, &req->iov1, 1, off);
	req->iov1.iov_base = buf;
	req->iov1.iov_len = len;
}

void berth_prep_writev(struct berth_req *req, int fd, struct iovec *iov,
		       int iovcnt, uint64_t off)
{
	prep(req, BERTH_OP_WRITE, fd);
	req->iov = iov;
	req->iovcnt = iovcnt;
	req->off = off;
}

void berth_prep_write(struct berth_req *req, int fd, const void *buf,
		      size_t len, uint64_t off)
{
	berth_prep_writev(req, fd, &req->iov1, 1, off);
	/* The pump never writes through a write request's buffers. */
	req->iov1.iov_base = (void *)(uintptr_t)buf;
	req->iov1.iov_len = len;
}

void berth_prep_fsync(struct berth_req *req, int fd, uint32_t flags)
{
	prep(req, BERTH_OP_FSYNC, fd);
	req->flags = flags;
}

void berth_prep_openat2(struct berth_req *req, int dirfd, const char *path,
			struct open_how *how)
{
	prep(req, BERTH_OP_OPENAT2, dirfd);
	req->path = path;
	req->arg = how;
}

void berth_prep_close(struct berth_req *req, int fd)
{
	prep(req, BERTH_OP_CLOSE, fd);
}

void berth_prep_statx(struct berth_req *req, int dirfd, const char *path,
		      int flags, unsigned mask, struct statx *stx)
{
	prep(req, BERTH_OP_STATX, dirfd);
	req->path = path;
	req->flags = (uint32_t)flags;
	req->mode = mask;
	req->arg = stx;
}

void berth_prep_renameat2(struct berth_req *req, int olddirfd,
			  const char *oldpath, int newdirfd,
			  const char *newpath, unsigned flags)
{
	prep(req, BERTH_OP_RENAMEAT2, olddirfd);
	req->path = oldpath;
	req->fd2 = newdirfd;
	req->path2 = newpath;
	req->flags = flags;
}

void berth_prep_unlinkat(struct berth_req *req, int dirfd, const char *path,
			 int flags)
{
	prep(req, BERTH_OP_UNLINKAT, dirfd);
	req->path = path;
	req->flags = (uint32_t)flags;
}

void berth_prep_mkdirat(struct berth_req *req, int dirfd, const char *path,
			mode_t mode)
{
	prep(req, BERTH_OP_MKDIRAT, dirfd);
	req->path = path;
	req->mode = mode;
}

void berth_prep_symlinkat(struct berth_req *req, const char *target,
			  int newdirfd, const char *linkpath)
{
	prep(req, BERTH_OP_SYMLINKAT, -1);
	req->path = target;
	req->fd2 = newdirfd;
	req->path2 = linkpath;
}

void berth_prep_linkat(struct berth_req *req, int olddirfd, const char *oldpath,
		       int newdirfd, const char *newpath, int flags)
{
	prep(req, BERTH_OP_LINKAT, olddirfd);
	req->path = oldpath;
	req->fd2 = newdirfd;
	req->path2 = newpath;
	req->flags = (uint32_t)flags;
}

void berth_prep_fchmodat(struct berth_req *req, int dirfd, const char *path,
			 mode_t mode, int flags)
{
	prep(req, BERTH_OP_FCHMODAT, dirfd);
	req->path = path;
	req->mode = mode;
	req->flags = (uint32_t)flags;
}

void berth_prep_fchownat(struct berth_req *req, int dirfd, const char *path,
			 uid_t uid, gid_t gid, int flags)
{
	prep(req, BERTH_OP_FCHOWNAT, dirfd);
	req->path = path;
	req->uid = uid;
	req->gid = gid;
	req->flags = (uint32_t)flags;
}

void berth_prep_utimensat(struct berth_req *req, int dirfd, const char *path,
			  const struct timespec *times, int flags)
{
	prep(req, BERTH_OP_UTIMENSAT, dirfd);
	req->path = path;
	/* Read-only to the pump. */
	req->arg = (void *)(uintptr_t)times;
	req->flags = (uint32_t)flags;
}

void berth_prep_mknodat(struct berth_req *req, int dirfd, const char *path,
			mode_t mode, dev_t dev)
{
	prep(req, BERTH_OP_MKNODAT, dirfd);
	req->path = path;
	req->mode = mode;
	req->len = dev;
}

void berth_prep_ftruncate(struct berth_req *req, int fd, uint64_t length)
{
	prep(req, BERTH_OP_FTRUNCATE, fd);
	req->len = length;
}

void berth_prep_fallocate(struct berth_req *req, int fd, int mode, uint64_t off,
			  uint64_t len)
{
	prep(req, BERTH_OP_FALLOCATE, fd);
	req->mode = (uint32_t)mode;
	req->off = off;
	req->len = len;
}

void berth_prep_call(struct berth_req *req, berth_req_fn fn, void *arg)
{
	prep(req, BERTH_OP_CALL, -1);
	req->fn = fn;
	req->arg = arg;
}

void berth_prep_fsetxattr(struct berth_req *req, int fd, const char *name,
			  const void *value, size_t size, int flags)
{
	prep(req, BERTH_OP_FSETXATTR, fd);
	req->path = name;
	/* Read-only to the pump. */
	req->arg = (void *)(uintptr_t)value;
	req->len = size;
	req->flags = (uint32_t)flags;
}

void berth_prep_fremovexattr(struct berth_req *req, int fd, const char *name)
{
	prep(req, BERTH_OP_FREMOVEXATTR, fd);
	req->path = name;
}

void berth_prep_flistxattr(struct berth_req *req, int fd, char *buf,
			   size_t size)
{
	prep(req, BERTH_OP_FLISTXATTR, fd);
	req->arg = buf;
	req->len = size;
}
