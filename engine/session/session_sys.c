/* SPDX-License-Identifier: MIT */
/*
 * The session's own blocking file-system calls, run inline through the
 * pump's fault injection (session_sys.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <linux/openat2.h>

#include "engine/session/session.h"
#include "engine/session/session_sys.h"

static ssize_t run(struct berth_session *s, struct berth_req *req)
{
	req->tag = s->cfg.tag;
	return berth_pump_run_inline(s->cfg.pump, req);
}

static void stat_of_statx(struct stat *st, const struct statx *x)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = makedev(x->stx_dev_major, x->stx_dev_minor);
	st->st_ino = x->stx_ino;
	st->st_mode = x->stx_mode;
	st->st_nlink = x->stx_nlink;
	st->st_uid = x->stx_uid;
	st->st_gid = x->stx_gid;
	st->st_rdev = makedev(x->stx_rdev_major, x->stx_rdev_minor);
	st->st_size = (off_t)x->stx_size;
	st->st_blksize = (blksize_t)x->stx_blksize;
	st->st_blocks = (blkcnt_t)x->stx_blocks;
	st->st_atim.tv_sec = x->stx_atime.tv_sec;
	st->st_atim.tv_nsec = x->stx_atime.tv_nsec;
	st->st_mtim.tv_sec = x->stx_mtime.tv_sec;
	st->st_mtim.tv_nsec = x->stx_mtime.tv_nsec;
	st->st_ctim.tv_sec = x->stx_ctime.tv_sec;
	st->st_ctim.tv_nsec = x->stx_ctime.tv_nsec;
}

int berth__sys_mkdirat(struct berth_session *s, int dirfd, const char *name,
		       mode_t mode)
{
	struct berth_req req;

	berth_prep_mkdirat(&req, dirfd, name, mode);
	return (int)run(s, &req);
}

int berth__sys_lstatat(struct berth_session *s, int dirfd, const char *name,
		       struct stat *st)
{
	struct berth_req req;
	struct statx x;
	ssize_t ret;

	berth_prep_statx(&req, dirfd, name, AT_SYMLINK_NOFOLLOW,
			 STATX_BASIC_STATS, &x);
	ret = run(s, &req);
	if (ret < 0)
		return (int)ret;
	stat_of_statx(st, &x);
	return 0;
}

ssize_t berth__sys_pread(struct berth_session *s, int fd, void *buf, size_t len,
			 uint64_t off)
{
	struct berth_req req;

	berth_prep_read(&req, fd, buf, len, off);
	return run(s, &req);
}

int berth__sys_open(struct berth_session *s, int dirfd, const char *path,
		    int flags)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.resolve = BERTH_PLAT_RESOLVE,
	};
	struct berth_req req;
	ssize_t ret;

	do {
		berth_prep_openat2(&req, dirfd, path, &how);
		ret = run(s, &req);
	} while (ret == -EAGAIN);
	return (int)ret;
}

int berth__sys_open_read(struct berth_session *s, int dirfd, const char *path)
{
	int fd;

	if (s->opts.open_noatime) {
		/* O_NOATIME is the owner's (or CAP_FOWNER's) to ask: where
		 * it is refused the file is read as without it. */
		fd = berth__sys_open(s, dirfd, path,
				     O_RDONLY | O_NOFOLLOW | O_NOATIME);
		if (fd != -EPERM)
			return fd;
	}
	return berth__sys_open(s, dirfd, path, O_RDONLY | O_NOFOLLOW);
}

ssize_t berth__sys_call(struct berth_session *s, berth_req_fn fn, void *arg)
{
	struct berth_req req;

	berth_prep_call(&req, fn, arg);
	return run(s, &req);
}
