/* SPDX-License-Identifier: MIT */
/*
 * The platform seam: the few things that differ between Linux and Windows,
 * behind one small internal interface.  platform_linux.c implements it on
 * Linux, platform_win.c on Windows (mingw-w64; engine/platform/CMakeLists.txt
 * picks one).  platform_types.h gives the system types a pump request
 * carries the same names on both.
 *
 * Threads, locks and atomics are NOT wrapped: POSIX threads (pthread_t,
 * pthread_mutex_t, pthread_cond_t, pthread_create/join) and C11
 * <stdatomic.h> are the interface, on Windows too, where mingw-w64 provides
 * them (winpthreads).  A wrapper would rename every lock in the tree for
 * nothing; if a Windows toolchain without winpthreads is ever wanted, the
 * wrapper goes here and the rename is mechanical.
 *
 * What stays Linux-shaped outside the seam, on purpose: the pump's request
 * vocabulary (berth_prep_openat2() with struct open_how, berth_prep_statx()
 * with struct statx, the xattr ops).  Those are pump operations: a Windows
 * backend implements the same operations with its own calls, as
 * pump_pool.c and pump_uring.c do now.  BERTH_PLAT_RESOLVE below is the
 * resolve policy those requests use, kept here so that it is said once.
 *
 * Every function here may be called from any thread and keeps no state
 * besides what its object holds.
 */
#ifndef BERTH_PLATFORM_H
#define BERTH_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "engine/platform/platform_types.h"

#if defined(__linux__) || defined(_WIN32)
/*
 * How every name beneath a root is resolved: never above the root, no
 * symlink in any component (a parent replaced by a symlink fails with
 * ELOOP instead of being followed), no /proc magic links.  For pump
 * requests built with berth_prep_openat2(); berth_plat_open_beneath()
 * applies the same.
 */
#define BERTH_PLAT_RESOLVE \
	(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
#endif

/* ------------------------------------------------------------- wakers */

/*
 * A waker: a flag one thread raises (berth_waker_signal) and another
 * waits for by polling an fd (POLLIN while raised) and then lowers
 * (berth_waker_drain).  Signals before a drain merge into one.  The
 * pump's wake-up, the pool workers' cancel signal and the session's
 * stop/abort signals are wakers.
 *
 * Linux: an eventfd, so io_uring can also read it or register it
 * (io_uring_register_eventfd); berth_waker_fd() gives the fd for that.
 * Windows: an auto-reset event (berth_waker_handle()); there is no fd to
 * poll, and the IOCP backend wakes its port with posted packets instead.
 */
struct berth_waker {
#ifdef _WIN32
	void *ev; /* HANDLE of an auto-reset event, or NULL */
	unsigned flags;
#else
	int fd;
#endif
};

/* berth_waker_init() flags */
#define BERTH_WAKER_NONBLOCK 0x1 /* drain never waits */

/*
 * Make @w (caller's storage), lowered.  Without BERTH_WAKER_NONBLOCK a
 * drain of a lowered waker waits for the next signal.  Returns 0 or
 * -errno; on failure berth_waker_destroy(@w) is still safe.
 */
int berth_waker_init(struct berth_waker *w, unsigned flags);

/* Close @w.  Safe on a waker whose init failed or that was zeroed with
 * berth_waker_clear(). */
void berth_waker_destroy(struct berth_waker *w);

/* Mark @w as not made yet, so that berth_waker_destroy() is a no-op. */
static inline void berth_waker_clear(struct berth_waker *w)
{
#ifdef _WIN32
	w->ev = NULL;
#else
	w->fd = -1;
#endif
}

/*
 * Raise @w: its fd polls readable until drained.  Any thread; safe
 * concurrently with a drain (the signal is then seen by this drain or the
 * next poll).  Returns 0 or -errno (a waker raised "too often" still
 * counts as raised: 0).
 */
int berth_waker_signal(struct berth_waker *w);

/* Lower @w (one read of the counter: every signal so far is consumed). */
void berth_waker_drain(struct berth_waker *w);

#ifndef _WIN32
/* The fd to poll for POLLIN (Linux: the eventfd itself). */
static inline int berth_waker_fd(const struct berth_waker *w)
{
	return w->fd;
}
#else
/* The event HANDLE to wait on (signalled while raised). */
static inline void *berth_waker_handle(const struct berth_waker *w)
{
	return w->ev;
}
#endif

/* ---------------------------------------------------------- safe open */

/*
 * Open @path relative to the directory @dirfd, never resolving above it
 * and following no symlink in any component (BERTH_PLAT_RESOLVE): one
 * openat2() on Linux.  @flags are open(2) flags (O_CLOEXEC is added; add
 * O_NOFOLLOW to refuse a symlink as the last component too, O_PATH /
 * O_DIRECTORY as needed).  There is no fallback: a kernel without openat2
 * (before 5.6) gets -ENOSYS.  Returns the fd or -errno (-ELOOP for a
 * symlink in the way, -EXDEV for a path that leaves @dirfd).
 */
int berth_plat_open_beneath(int dirfd, const char *path, int flags);

/* As berth_plat_open_beneath(), with a mode for O_CREAT. */
int berth_plat_open_beneath_mode(int dirfd, const char *path, int flags,
				 mode_t mode);

/* -------------------------------------------------- fds and processes */

/*
 * A path naming the object @fd refers to, for calls that take no fd
 * (f*xattr() refuse O_PATH fds): on Linux "/proc/self/fd/N", a magic link
 * that is a jump to the fd's object, never followed further (a symlink's
 * own attributes are reached).  Writes at most @len bytes of @buf.
 * Returns 0, or -ENAMETOOLONG.
 */
int berth_plat_fd_path(int fd, char *buf, size_t len);

/*
 * The process umask, read without changing it (umask(2) would change it,
 * for a moment, for every thread of the embedding process).  Linux: from
 * /proc/self/status; 022 when that cannot be read.
 */
mode_t berth_plat_umask(void);

/*
 * TCP's delayed ACK against a client's Nagle: a client that writes a
 * length and then the bytes it announces in two small segments holds the
 * second until the first is ACKed, and a receiver that has nothing to say
 * until both came delays that ACK (40 ms on Linux).  berth_plat_is_tcp():
 * is @fd a TCP socket.  berth_plat_quickack(): send the ACK of what @fd
 * has received now (TCP_QUICKACK; nothing where the system has no such
 * switch).  Meant for a reader that got a short read and waits for more.
 */
bool berth_plat_is_tcp(int fd);
void berth_plat_quickack(int fd);

/* ------------------------------------------- calls on fds and beneath */

/*
 * The blocking file calls the commit stage makes outside the pump (its
 * small-file pool call, cleanup after a pump shutdown, the --backup-dir
 * walk), with one meaning on every system.  Each returns 0 (or a count)
 * or -errno and leaves errno alone.  Linux: the system call of the same
 * name, nothing added.  Windows: platform_win.c, every path beneath its
 * directory handle with no reparse point followed and names Windows
 * cannot hold refused (-BERTH_EPATH); what has no Windows counterpart
 * (owners) is -EOPNOTSUPP.
 */

/* renameat2(): @flags 0 or RENAME_NOREPLACE (Windows: POSIX-semantics
 * rename where the file system has it). */
int berth_plat_renameat(int olddirfd, const char *oldpath, int newdirfd,
			const char *newpath, unsigned flags);

/* unlinkat(): @flags 0 or AT_REMOVEDIR. */
int berth_plat_unlinkat(int dirfd, const char *path, int flags);

/* mkdirat(). */
int berth_plat_mkdirat(int dirfd, const char *path, mode_t mode);

/*
 * A directory fd for @path relative to @dirfd (AT_FDCWD: the working
 * directory), as open(2) with O_PATH | O_DIRECTORY finds it: symlinks on
 * the way ARE followed (a --backup-dir the user named).  Windows: only
 * beneath @dirfd (an absolute path is -EOPNOTSUPP).
 */
int berth_plat_open_dir(int dirfd, const char *path);

/* A second fd for @fd's object, close-on-exec (F_DUPFD_CLOEXEC). */
int berth_plat_dupfd(int fd);

/* fsync(), fchmod() (Windows keeps u+w only, as the read-only bit),
 * fchown() (Windows: -EOPNOTSUPP), futimens() ([0] atime, [1] mtime). */
int berth_plat_fsync(int fd);
int berth_plat_fchmod(int fd, mode_t mode);
int berth_plat_fchown(int fd, uid_t uid, gid_t gid);
int berth_plat_futimens(int fd, const struct timespec times[2]);

/*
 * Batch durability's group sync (the commit stage: one call for the files
 * at their fsync step).  berth_plat_syncfs() makes all of @fd's file system
 * durable, data and metadata (syncfs()), where that file system is known
 * to keep the promise (ext2/3/4, XFS, Btrfs, tmpfs; else -EOPNOTSUPP), and
 * gives its device in *@dev.  berth_plat_sync_check() then tells of a
 * file of the group whether that covered it: 0 (yes, and no writeback
 * error since it was opened: sync_file_range() reads its own error
 * state), -errno (its writeback error), 1 (another file system or
 * subvolume: it needs its own fsync).  Windows: both -EOPNOTSUPP.
 */
int berth_plat_syncfs(int fd, uint64_t *dev);
int berth_plat_sync_check(int fd, uint64_t dev);

/* pwrite(): bytes written or -errno (-EINTR is the caller's to retry). */
ssize_t berth_plat_pwrite(int fd, const void *buf, size_t len, uint64_t off);

/*
 * Memory straight from the system, whole pages: for the large I/O buffers
 * a stage gives back while it idles, so that what it frees leaves the
 * process instead of staying in a malloc arena (mmap/munmap;
 * VirtualAlloc/VirtualFree).  @len is rounded up to whole pages; free
 * with the same @len.  NULL when there is no memory; free(NULL) is a no-op.
 */
void *berth_plat_pages_alloc(size_t len);
void berth_plat_pages_free(void *p, size_t len);

/*
 * The effective user id, for "may root write it anyway" decisions.
 * Windows has no uid: (uint32_t)-1, an id that owns nothing and is not
 * root.
 */
uint32_t berth_plat_euid(void);

#ifdef _WIN32
/* ----------------------------------------------------- Windows only */

/*
 * berth's fds are C runtime fds on Windows too: each wraps a HANDLE
 * (_open_osfhandle), so close() and the request's int fd work unchanged.
 * Files and directories berth opens are opened for overlapped I/O, so the
 * IOCP backend can take their reads and writes.
 */

/* The HANDLE behind @fd, or NULL (INVALID_HANDLE_VALUE becomes NULL). */
void *berth_plat_handle(int fd);

/* A Win32 error code (GetLastError()) as a negative errno. */
int berth_plat_err(unsigned long winerr);

/*
 * The result of a finished ReadFile/WriteFile: @n bytes when @ok, 0 at
 * end of file or a broken pipe, else the error (GetLastError()).
 */
ssize_t berth_plat_io_result(int ok, unsigned long n);

/* An NTSTATUS as a negative errno. */
int berth_plat_nterr(long status);

/*
 * Whether @name (one path component, UTF-8) can be a Windows file name:
 * not a reserved device name (CON, NUL, COM1, ...), no trailing dot or
 * space, none of < > : " \ | ? * or control characters.  0, or
 * -BERTH_EPATH: the caller refuses that one file with a clear error
 * rather than letting Windows alias it to another name.
 */
int berth_plat_name_ok(const char *name);

/*
 * A pipe for tests and stream users: @fds[0] reads (overlapped, so the
 * IOCP backend can wait on it and cancel), @fds[1] writes (synchronous).
 * 0 or -errno.
 */
int berth_plat_pipe(int fds[2]);

/* pread for fds berth opened (overlapped or not); berth_plat_pwrite()
 * above writes to them.  Bytes or -errno. */
ssize_t berth_plat_pread(int fd, void *buf, size_t len, uint64_t off);
#endif

#endif /* BERTH_PLATFORM_H */
