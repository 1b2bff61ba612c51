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
#include <direct.h>
#include <io.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* read(2) at the file position, as berth_test_write() writes. */
static inline ssize_t berth_test_read(int fd, void *buf, size_t n)
{
	HANDLE h = (HANDLE)_get_osfhandle(fd);
	long long pos;
	ssize_t r;

	if (h == INVALID_HANDLE_VALUE || GetFileType(h) != FILE_TYPE_DISK)
		return _read(fd, buf, (unsigned)n);
	pos = _lseeki64(fd, 0, SEEK_CUR);
	if (pos < 0)
		return -1;
	r = berth_test_ret(berth_plat_pread(fd, buf, n, (uint64_t)pos));
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

/* Whether this runs under Wine (its ntdll exports wine_get_version). */
static inline bool berth_test_wine(void)
{
	HMODULE nt = GetModuleHandleA("ntdll.dll");

	return nt && GetProcAddress(nt, "wine_get_version");
}

/* mkdtemp(3): the Xs replaced until a new directory is made. */
static inline char *berth_test_mkdtemp(char *tmpl)
{
	size_t n = strlen(tmpl);
	unsigned v = (unsigned)GetTickCount() ^ (unsigned)GetCurrentThreadId();

	if (n < 6)
		return errno = EINVAL, NULL;
	for (int tries = 0; tries < 100; tries++) {
		v = v * 1103515245u + 12345u + (unsigned)tries;
		for (size_t i = 0; i < 6; i++)
			tmpl[n - 6 + i] = "abcdefghijklmnopqrstuvwxyz0123456789"
				[(v >> (i * 5)) % 36];
		if (CreateDirectoryA(tmpl, NULL))
			return tmpl;
		if (GetLastError() != ERROR_ALREADY_EXISTS)
			break;
	}
	errno = EEXIST;
	return NULL;
}

/* symlink(2) as a Windows symbolic link (a reparse point), a directory
 * link when @target is a directory; -1 with EPERM where links cannot be
 * made (no privilege): the caller skips. */
static inline int berth_test_symlink(const char *target, const char *path)
{
	DWORD a = GetFileAttributesA(target);
	DWORD fl = a != INVALID_FILE_ATTRIBUTES &&
				   (a & FILE_ATTRIBUTE_DIRECTORY)
			   ? SYMBOLIC_LINK_FLAG_DIRECTORY
			   : 0;

	/* Wine's CreateSymbolicLink may be a stub that answers TRUE and
	 * makes nothing: the link must be there. */
	if (CreateSymbolicLinkA(path, target, fl) &&
	    GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES)
		return 0;
	errno = EPERM;
	return -1;
}

/* Remove @path and everything below it (no link is followed: a reparse
 * point is removed as itself). */
static inline int berth_test_rm_rf(const char *path)
{
	char sub[MAX_PATH * 2];
	WIN32_FIND_DATAA fd;
	DWORD a = GetFileAttributesA(path);
	HANDLE h;
	int r = 0;

	if (a == INVALID_FILE_ATTRIBUTES)
		return 0;
	if (!(a & FILE_ATTRIBUTE_DIRECTORY)) {
		SetFileAttributesA(path, FILE_ATTRIBUTE_NORMAL);
		return DeleteFileA(path) ? 0 : -1;
	}
	if (!(a & FILE_ATTRIBUTE_REPARSE_POINT)) {
		snprintf(sub, sizeof(sub), "%s\\*", path);
		h = FindFirstFileA(sub, &fd);
		if (h != INVALID_HANDLE_VALUE) {
			do {
				if (!strcmp(fd.cFileName, ".") ||
				    !strcmp(fd.cFileName, ".."))
					continue;
				snprintf(sub, sizeof(sub), "%s\\%s", path,
					 fd.cFileName);
				r |= berth_test_rm_rf(sub);
			} while (FindNextFileA(h, &fd));
			FindClose(h);
		}
	}
	if (!RemoveDirectoryA(path)) {
		fprintf(stderr, "rm_rf %s: error %lu\n", path, GetLastError());
		return -1;
	}
	return r;
}

/* system(3) for the one command the tests run: "rm -rf 'PATH'". */
static inline int berth_test_system(const char *cmd)
{
	char path[MAX_PATH * 2];
	size_t n;

	if (strncmp(cmd, "rm -rf '", 8))
		return system(cmd);
	n = strlen(cmd + 8);
	if (n < 1 || n >= sizeof(path) || cmd[8 + n - 1] != '\'')
		return -1;
	memcpy(path, cmd + 8, n - 1);
	path[n - 1] = '\0';
	return berth_test_rm_rf(path);
}

#define pread berth_test_pread
#define pwrite berth_test_pwrite
#define pipe berth_test_pipe
#define write berth_test_write
#define read berth_test_read
#define open berth_test_open
#define mkstemp berth_test_mkstemp
#define setenv berth_test_setenv
#define unsetenv berth_test_unsetenv
#define sysconf berth_test_sysconf
#define getline berth_test_getline
#define posix_memalign berth_test_memalign
#define posix_fallocate berth_test_fallocate
#define O_DIRECT 0
#define mkdtemp berth_test_mkdtemp
#define mkdir(path, mode) ((void)(mode), _mkdir(path)) /* no modes */
#define ffs __builtin_ffs
#define symlink berth_test_symlink
#define system berth_test_system
#define lstat stat /* no symlinks to see through in the tests' own stats */

#endif /* BERTH_WIN_COMPAT_H */
