/* SPDX-License-Identifier: MIT */
/*
 * What platform_win.c gives the Windows pump backend (pump_iocp.c,
 * pump_run_win.c) and the Windows parts of the commit stage, beyond the
 * seam every system has (platform.h).  Windows only; HANDLEs are void *
 * here so that including this header does not pull in <windows.h>.
 */
#ifndef BERTH_PLATFORM_WIN_H
#define BERTH_PLATFORM_WIN_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/platform/platform.h"

/* Wrap @h in a C runtime fd (@flags: O_RDONLY/O_WRONLY/O_RDWR).  On
 * failure @h is closed.  The fd, or -EMFILE. */
int berth__plat_fd_of(void *h, int flags);

/* The handle @dirfd stands for; AT_FDCWD opens "." (*@own: close it). */
int berth__plat_root(int dirfd, void **root, bool *own);

/*
 * Open @path beneath @dirfd as berth_plat_open_beneath_mode() does, with
 * @extra_access (e.g. DELETE) added, and return the HANDLE in *@out.
 */
int berth__plat_open_handle(int dirfd, const char *path, int flags, mode_t mode,
			    uint32_t extra_access, void **out);

/* Whether @h is a reparse point: 1, 0 or -errno. */
int berth__plat_is_reparse(void *h);

/* Path operations beneath a directory fd, with the Linux calls' meaning
 * (renameat2 with RENAME_NOREPLACE or 0, unlinkat with AT_REMOVEDIR,
 * mkdirat, statx); no reparse point followed.  0 or -errno. */
int berth__plat_renameat(int olddirfd, const char *oldpath, int newdirfd,
			 const char *newpath, unsigned flags);
int berth__plat_unlinkat(int dirfd, const char *path, int flags);
int berth__plat_mkdirat(int dirfd, const char *path, mode_t mode);
int berth__plat_statx(int dirfd, const char *path, int flags,
		      struct statx *stx);
int berth__plat_fstatx(void *h, struct statx *stx);

/* fchmod() on a HANDLE: Windows keeps u+w only, as the read-only bit. */
int berth__plat_fchmod_handle(void *h, mode_t mode);

/* futimens(): [0] atime, [1] mtime (NULL: now; UTIME_NOW, UTIME_OMIT). */
struct timespec;
int berth__plat_futimens(void *h, const struct timespec *times);

#endif /* BERTH_PLATFORM_WIN_H */
