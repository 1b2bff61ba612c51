/* SPDX-License-Identifier: MIT */
/*
 * The platform seam on Linux (platform.h): eventfd wakers, openat2()
 * beneath a directory, /proc for what has no system call, and the file
 * calls of the commit stage (the system calls themselves, errno turned
 * into a return value).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/platform/platform.h"

int berth_waker_init(struct berth_waker *w, unsigned flags)
{
	w->fd = eventfd(
		0, EFD_CLOEXEC |
			   (flags & BERTH_WAKER_NONBLOCK ? EFD_NONBLOCK : 0));
	return w->fd < 0 ? -errno : 0;
}

void berth_waker_destroy(struct berth_waker *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

int berth_waker_signal(struct berth_waker *w)
{
	uint64_t one = 1;
	ssize_t ret;

	do {
		ret = write(w->fd, &one, sizeof(one));
	} while (ret < 0 && errno == EINTR);
	/* EAGAIN means the counter is saturated: it is raised anyway. */
	return ret < 0 && errno != EAGAIN ? -errno : 0;
}

void berth_waker_drain(struct berth_waker *w)
{
	uint64_t v;
	ssize_t ret;

	/* One read resets an eventfd's counter to 0, whatever it was. */
	do {
		ret = read(w->fd, &v, sizeof(v));
	} while (ret < 0 && errno == EINTR);
}

int berth_plat_open_beneath_mode(int dirfd, const char *path, int flags,
				 mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
		.resolve = BERTH_PLAT_RESOLVE,
	};
	long fd;

	/* EAGAIN: a rename raced the lookup (RESOLVE_BENEATH refuses to
	 * guess); the kernel asks for a retry. */
	do {
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	} while (fd < 0 && errno == EAGAIN);
	return fd < 0 ? -errno : (int)fd;
}

int berth_plat_open_beneath(int dirfd, const char *path, int flags)
{
	return berth_plat_open_beneath_mode(dirfd, path, flags, 0);
}

int berth_plat_fd_path(int fd, char *buf, size_t len)
{
	int n = snprintf(buf, len, "/proc/self/fd/%d", fd);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

mode_t berth_plat_umask(void)
{
	char line[256];
	unsigned m = 022;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 022;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &m) == 1)
			break;
	fclose(f);
	return (mode_t)m;
}

bool berth_plat_is_tcp(int fd)
{
	int proto = 0;
	socklen_t len = sizeof(proto);

	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 &&
	       proto == IPPROTO_TCP;
}

void berth_plat_quickack(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

int berth_plat_renameat(int olddirfd, const char *oldpath, int newdirfd,
			const char *newpath, unsigned flags)
{
	return renameat2(olddirfd, oldpath, newdirfd, newpath, flags) < 0
		       ? -errno
		       : 0;
}

int berth_plat_unlinkat(int dirfd, const char *path, int flags)
{
	return unlinkat(dirfd, path, flags) < 0 ? -errno : 0;
}

int berth_plat_mkdirat(int dirfd, const char *path, mode_t mode)
{
	return mkdirat(dirfd, path, mode) < 0 ? -errno : 0;
}

int berth_plat_open_dir(int dirfd, const char *path)
{
	int fd = openat(dirfd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int berth_plat_dupfd(int fd)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	return r < 0 ? -errno : r;
}

int berth_plat_fsync(int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

/* File systems whose syncfs() writes every dirty inode's data and
 * metadata and commits it past the device's cache (a FUSE or network file
 * system may not: their files keep their own fsync). */
static bool syncfs_trusted(unsigned long type)
{
	switch (type) {
	case 0xEF53: /* ext2, ext3, ext4 */
	case 0x58465342: /* XFS */
	case 0x9123683E: /* Btrfs */
	case 0x01021994: /* tmpfs: nothing to make durable */
		return true;
	default:
		return false;
	}
}

int berth_plat_syncfs(int fd, uint64_t *dev)
{
	struct statfs sf;
	struct stat st;

	if (fstatfs(fd, &sf) < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (!syncfs_trusted((unsigned long)sf.f_type))
		return -EOPNOTSUPP;
	*dev = (uint64_t)st.st_dev;
	return syncfs(fd) < 0 ? -errno : 0;
}

int berth_plat_sync_check(int fd, uint64_t dev)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_dev != dev)
		return 1;
	/* Clean after the syncfs(): waits for nothing, and reports (and
	 * clears) a writeback error this fd has not seen. */
	if (sync_file_range(fd, 0, 0,
			    SYNC_FILE_RANGE_WAIT_BEFORE |
				    SYNC_FILE_RANGE_WRITE |
				    SYNC_FILE_RANGE_WAIT_AFTER) < 0)
		return -errno;
	return 0;
}

int berth_plat_fchmod(int fd, mode_t mode)
{
	return fchmod(fd, mode) < 0 ? -errno : 0;
}

int berth_plat_fchown(int fd, uid_t uid, gid_t gid)
{
	return fchown(fd, uid, gid) < 0 ? -errno : 0;
}

int berth_plat_futimens(int fd, const struct timespec times[2])
{
	return futimens(fd, times) < 0 ? -errno : 0;
}

ssize_t berth_plat_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	ssize_t n = pwrite(fd, buf, len, (off_t)off);

	return n < 0 ? -errno : n;
}

void *berth_plat_pages_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void berth_plat_pages_free(void *p, size_t len)
{
	if (p)
		(void)munmap(p, len);
}

uint32_t berth_plat_euid(void)
{
	return (uint32_t)geteuid();
}
