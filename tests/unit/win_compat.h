/* SPDX-License-Identifier: MIT */
/*
 * The POSIX calls the pump, delta and basis tests (and bench_pump) use
 * that mingw-w64 lacks, for the Windows build only: CMake includes this
 * header first in every such file (-include), so the tests themselves
 * stay as they are.  Files the tests open or create are opened for
 * overlapped I/O, as berth opens its own (platform_win.c), so the iocp
 * backend really runs their reads and writes; pipes read overlapped too.
 */
#ifndef BERTH_WIN_COMPAT_H
#define BERTH_WIN_COMPAT_H

#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <windows.h>

#include "engine/platform/platform.h"

static inline ssize_t berth_test_ret(ssize_t r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static inline ssize_t berth_test_pread(int fd, void *buf, size_t n, off_t off)
{
	return berth_test_ret(berth_plat_pread(fd, buf, n, (uint64_t)off));
}

static inline ssize_t berth_test_pwrite(int fd, const void *buf, size_t n,
					off_t off)
{
	return berth_test_ret(berth_plat_pwrite(fd, buf, n, (uint64_t)off));
}

/* write(2) at the file position: an overlapped file handle has none the
 * system keeps, so the C runtime's is read and moved by hand. */
static inline ssize_t berth_test_write(int fd, const void *buf, size_t n)
{
	HANDLE h = (HANDLE)_get_osfhandle(fd);
	long long pos;
	ssize_t r;

	if (h == INVALID_HANDLE_VALUE || GetFileType(h) != FILE_TYPE_DISK)
		return _write(fd, buf, (unsigned)n);
	pos = _lseeki64(fd, 0, SEEK_CUR);
	if (pos < 0)
		return -1;
	r = berth_test_ret(berth_plat_pwrite(fd, buf, n, (uint64_t)pos));
	if (r > 0)
		_lseeki64(fd, pos + r, SEEK_SET);
	return r;
}

static inline int berth_test_pipe(int fds[2])
{
	return (int)berth_test_ret(berth_plat_pipe(fds));
}

/* open(2) for overlapped I/O, with POSIX sharing (delete while open). */
static inline int berth_test_open(const char *path, int flags, ...)
{
	DWORD acc = GENERIC_READ, disp = OPEN_EXISTING;
	HANDLE h;
	int fd;

	if ((flags & 3) == O_WRONLY)
		acc = GENERIC_WRITE;
	else if ((flags & 3) == O_RDWR)
		acc = GENERIC_READ | GENERIC_WRITE;
	if ((flags & O_CREAT) && (flags & O_EXCL))
		disp = CREATE_NEW;
	else if ((flags & O_CREAT) && (flags & O_TRUNC))
		disp = CREATE_ALWAYS;
	else if (flags & O_CREAT)
		disp = OPEN_ALWAYS;
	else if (flags & O_TRUNC)
		disp = TRUNCATE_EXISTING;
	h = CreateFileA(
		path, acc,
		FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
		disp, FILE_FLAG_OVERLAPPED | FILE_FLAG_BACKUP_SEMANTICS, NULL);
	if (h == INVALID_HANDLE_VALUE) {
		errno = -berth_plat_err(GetLastError());
		return -1;
	}
	fd = _open_osfhandle((intptr_t)h, (flags & 3) | _O_BINARY);
	if (fd < 0)
		CloseHandle(h);
	return fd;
}

static inline int berth_test_mkstemp(char *tmpl)
{
	size_t n = strlen(tmpl);
	unsigned v = (unsigned)GetTickCount() ^ (unsigned)GetCurrentThreadId();

	if (n < 6)
		return errno = EINVAL, -1;
	for (int tries = 0; tries < 100; tries++) {
		int fd;

		v = v * 1103515245u + 12345u + (unsigned)tries;
		for (size_t i = 0; i < 6; i++)
			tmpl[n - 6 + i] = "abcdefghijklmnopqrstuvwxyz0123456789"
				[(v >> (i * 5)) % 36];
		fd = berth_test_open(tmpl, O_RDWR | O_CREAT | O_EXCL);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

static inline int berth_test_setenv(const char *k, const char *v, int over)
{
	if (!over && getenv(k))
		return 0;
	return _putenv_s(k, v) ? -1 : 0;
}

static inline int berth_test_unsetenv(const char *k)
{
	return _putenv_s(k, "") ? -1 : 0;
}

#define _SC_NPROCESSORS_ONLN 84
static inline long berth_test_sysconf(int name)
{
	SYSTEM_INFO si;

	(void)name;
	GetSystemInfo(&si);
	return (long)si.dwNumberOfProcessors;
}

static inline ssize_t berth_test_getline(char **line, size_t *cap, FILE *f)
{
	size_t len = 0;
	int c;

	if (!*line || !*cap) {
		*cap = 256;
		*line = malloc(*cap);
		if (!*line)
			return -1;
	}
	while ((c = fgetc(f)) != EOF) {
		if (len + 2 > *cap) {
			char *p = realloc(*line, *cap * 2);

			if (!p)
				return -1;
			*line = p;
			*cap *= 2;
		}
		(*line)[len++] = (char)c;
		if (c == '\n')
			break;
	}
	(*line)[len] = '\0';
	return len ? (ssize_t)len : -1;
}

/* Buffers for positioned I/O; no O_DIRECT here, so no alignment needed
 * beyond malloc's. */
static inline int berth_test_memalign(void **p, size_t align, size_t size)
{
	(void)align;
	*p = malloc(size);
	return *p ? 0 : ENOMEM;
}

static inline int berth_test_fallocate(int fd, off_t off, off_t len)
{
	return _chsize_s(fd, (long long)(off + len)) ? EIO : 0;
}

#define pread berth_test_pread
#define pwrite berth_test_pwrite
#define pipe berth_test_pipe
#define write berth_test_write
#define open berth_test_open
#define mkstemp berth_test_mkstemp
#define setenv berth_test_setenv
#define unsetenv berth_test_unsetenv
#define sysconf berth_test_sysconf
#define getline berth_test_getline
#define posix_memalign berth_test_memalign
#define posix_fallocate berth_test_fallocate
#define O_DIRECT 0

#endif /* BERTH_WIN_COMPAT_H */
