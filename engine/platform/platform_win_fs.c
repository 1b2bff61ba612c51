/* SPDX-License-Identifier: MIT */
/*
 * The commit stage's blocking file calls on Windows (platform.h, "calls on
 * fds and beneath"): the path operations are platform_win.c's, beneath a
 * directory handle with no reparse point followed; the fd calls act on the
 * HANDLE behind the C runtime fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <windows.h>

#include "engine/platform/platform.h"
#include "engine/platform/platform_win.h"

int berth_plat_renameat(int olddirfd, const char *oldpath, int newdirfd,
			const char *newpath, unsigned flags)
{
	return berth__plat_renameat(olddirfd, oldpath, newdirfd, newpath,
				    flags);
}

int berth_plat_unlinkat(int dirfd, const char *path, int flags)
{
	return berth__plat_unlinkat(dirfd, path, flags);
}

int berth_plat_mkdirat(int dirfd, const char *path, mode_t mode)
{
	return berth__plat_mkdirat(dirfd, path, mode);
}

int berth_plat_open_dir(int dirfd, const char *path)
{
	void *root;
	bool own;
	int ret;

	/* Only beneath: a --backup-dir outside the destination is not
	 * followed there (no symlinks to follow on the way either). */
	if (path[0] == '/' || path[0] == '\\' || (path[0] && path[1] == ':'))
		return -EOPNOTSUPP;
	if (strcmp(path, "."))
		return berth_plat_open_beneath(dirfd, path,
					       O_PATH | O_DIRECTORY);
	/* "." itself: @dirfd again, or the working directory. */
	if (dirfd != AT_FDCWD)
		return berth_plat_dupfd(dirfd);
	ret = berth__plat_root(dirfd, &root, &own);
	if (ret < 0)
		return ret;
	return berth__plat_fd_of(root, O_RDONLY);
}

int berth_plat_dupfd(int fd)
{
	/* A new HANDLE for the same file object (DuplicateHandle):
	 * overlapped as the first is.  C runtime fds are not inherited by
	 * the processes berth starts (it starts none). */
	int r = _dup(fd);

	return r < 0 ? -errno : r;
}

int berth_plat_fsync(int fd)
{
	HANDLE h = berth_plat_handle(fd);

	if (!h)
		return -EBADF;
	/* A directory's entries are durable with the file system's own
	 * journal; FlushFileBuffers refuses directory handles. */
	if (FlushFileBuffers(h))
		return 0;
	return GetLastError() == ERROR_ACCESS_DENIED
		       ? 0
		       : berth_plat_err(GetLastError());
}

/* No group sync: each file keeps its own FlushFileBuffers(). */
int berth_plat_syncfs(int fd, uint64_t *dev)
{
	(void)fd;
	(void)dev;
	return -EOPNOTSUPP;
}

int berth_plat_sync_check(int fd, uint64_t dev)
{
	(void)fd;
	(void)dev;
	return -EOPNOTSUPP;
}

int berth__plat_fchmod_handle(void *h, mode_t mode)
{
	FILE_BASIC_INFO bi;

	if (!GetFileInformationByHandleEx(h, FileBasicInfo, &bi, sizeof(bi)))
		return berth_plat_err(GetLastError());
	if (mode & 0200)
		bi.FileAttributes &= ~(DWORD)FILE_ATTRIBUTE_READONLY;
	else
		bi.FileAttributes |= FILE_ATTRIBUTE_READONLY;
	if (!bi.FileAttributes)
		bi.FileAttributes = FILE_ATTRIBUTE_NORMAL;
	return SetFileInformationByHandle(h, FileBasicInfo, &bi, sizeof(bi))
		       ? 0
		       : berth_plat_err(GetLastError());
}

int berth_plat_fchmod(int fd, mode_t mode)
{
	HANDLE h = berth_plat_handle(fd);

	return h ? berth__plat_fchmod_handle(h, mode) : -EBADF;
}

int berth_plat_fchown(int fd, uid_t uid, gid_t gid)
{
	/* No uid or gid to give a file: as a non-root user on Linux is
	 * refused, so the caller counts it as not done rather than failing
	 * the file. */
	(void)fd;
	(void)uid;
	(void)gid;
	return -EPERM;
}

int berth_plat_futimens(int fd, const struct timespec times[2])
{
	HANDLE h = berth_plat_handle(fd);

	return h ? berth__plat_futimens(h, times) : -EBADF;
}

void *berth_plat_pages_alloc(size_t len)
{
	return VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT,
			    PAGE_READWRITE);
}

void berth_plat_pages_free(void *p, size_t len)
{
	(void)len;
	if (p)
		(void)VirtualFree(p, 0, MEM_RELEASE);
}

uint32_t berth_plat_euid(void)
{
	return (uint32_t)-1;
}
