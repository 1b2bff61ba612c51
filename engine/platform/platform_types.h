/* SPDX-License-Identifier: MIT */
/*
 * The system types a pump request carries, on every system: struct iovec,
 * struct open_how with its RESOLVE_* policy, struct statx, the open(2) and
 * *at(2) flags the engine passes, and the backend's private per-request
 * storage (struct berth_plat_ov).
 *
 * On Linux they are the system's own (this header only includes them).  On
 * Windows (mingw-w64) there is no <sys/uio.h>, <linux/openat2.h> or statx:
 * the definitions below give the same names and fields, so that the pump's
 * request vocabulary (berth_prep_openat2(), berth_prep_statx(), iovecs) and
 * the code above it compile unchanged, and the Windows backend
 * (pump_iocp.c, pump_run_win.c, platform_win.c) implements the operations
 * with Win32 and NT calls.  The flag values are berth's own there: they
 * are never handed to a Windows API as they are.
 */
#ifndef BERTH_PLATFORM_TYPES_H
#define BERTH_PLATFORM_TYPES_H

#include <stdint.h>
#include <sys/types.h>

#ifndef _WIN32
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <linux/openat2.h>

/* The longest relative path berth takes from the peer, NUL included. */
#define BERTH_PATH_MAX PATH_MAX

/* No per-request backend storage on Linux: io_uring keys completions by
 * the request pointer itself. */
struct berth_plat_ov {
	char unused;
};
#else /* _WIN32 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>

/*
 * The OVERLAPPED of the IOCP backend, embedded in each request and
 * recovered from a completion with container_of (pump_iocp.c checks that
 * an OVERLAPPED fits).  Opaque here, so that no engine header includes
 * <windows.h>.
 */
struct berth_plat_ov {
	uintptr_t words[4];
};

typedef uint32_t uid_t;
typedef uint32_t gid_t;

struct iovec {
	void *iov_base;
	size_t iov_len;
};
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

struct open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};
#define RESOLVE_NO_XDEV 0x01
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_NO_SYMLINKS 0x04
#define RESOLVE_BENEATH 0x08
#define RESOLVE_IN_ROOT 0x10

/* Open flags mingw's <fcntl.h> lacks, in bits its own flags leave free. */
#define O_DIRECTORY 0x00100000
#define O_NOFOLLOW 0x00200000
#define O_PATH 0x00400000
#define O_CLOEXEC 0x00800000
#define O_NONBLOCK 0x01000000

#define AT_FDCWD (-100)
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_EMPTY_PATH 0x1000
#define RENAME_NOREPLACE 1u
#define RENAME_EXCHANGE 2u

struct statx_timestamp {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t reserved;
};

/* The fields berth reads; the Windows backend fills them. */
struct statx {
	uint32_t stx_mask;
	uint32_t stx_blksize;
	uint64_t stx_attributes;
	uint32_t stx_nlink;
	uint32_t stx_uid;
	uint32_t stx_gid;
	uint16_t stx_mode;
	uint64_t stx_ino;
	uint64_t stx_size;
	uint64_t stx_blocks;
	struct statx_timestamp stx_atime;
	struct statx_timestamp stx_btime;
	struct statx_timestamp stx_ctime;
	struct statx_timestamp stx_mtime;
	uint32_t stx_rdev_major, stx_rdev_minor;
	uint32_t stx_dev_major, stx_dev_minor;
};
#define STATX_TYPE 0x0001u
#define STATX_MODE 0x0002u
#define STATX_NLINK 0x0004u
#define STATX_UID 0x0008u
#define STATX_GID 0x0010u
#define STATX_ATIME 0x0020u
#define STATX_MTIME 0x0040u
#define STATX_CTIME 0x0080u
#define STATX_INO 0x0100u
#define STATX_SIZE 0x0200u
#define STATX_BLOCKS 0x0400u
#define STATX_BASIC_STATS 0x07ffu
#define STATX_BTIME 0x0800u

#ifndef S_IFLNK
#define S_IFLNK 0120000
#endif
#ifndef S_ISLNK
#define S_ISLNK(m) (((m)&S_IFMT) == S_IFLNK)
#endif

#ifndef S_IFSOCK
#define S_IFSOCK 0140000
#endif
#ifndef S_ISSOCK
#define S_ISSOCK(m) (((m)&S_IFMT) == S_IFSOCK)
#endif
/* The longest relative path berth takes from the peer, NUL included:
 * Linux's PATH_MAX, not mingw's 260 (MAX_PATH, a limit of Win32's path
 * calls; berth opens one component at a time beneath a handle, where NT
 * takes 32767 UTF-16 units). */
#define BERTH_PATH_MAX 4096

/* One component's longest name, in bytes: NTFS holds 255 UTF-16 units;
 * berth's own bound on the UTF-8 name, as on Linux. */
#ifndef NAME_MAX
#define NAME_MAX 255
#endif

#ifndef UTIME_NOW
#define UTIME_NOW ((1l << 30) - 1l)
#define UTIME_OMIT ((1l << 30) - 2l)
#endif

/* errno values mingw-w64's <errno.h> does not define. */
#ifndef ESHUTDOWN
#define ESHUTDOWN 1108
#endif
#ifndef EDQUOT
#define EDQUOT 1122
#endif
#endif /* _WIN32 */

#endif /* BERTH_PLATFORM_TYPES_H */
