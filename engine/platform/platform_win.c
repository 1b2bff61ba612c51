/* SPDX-License-Identifier: MIT */
/*
 * The platform seam on Windows (platform.h), built with mingw-w64: event
 * wakers, and names opened beneath a directory handle.
 *
 * Beneath: every path is walked one component at a time with NtCreateFile
 * relative to the previous directory's handle (OBJECT_ATTRIBUTES'
 * RootDirectory), never as a joined string; each component is opened with
 * FILE_OPEN_REPARSE_POINT and refused (-ELOOP) when it is a reparse point
 * (symlink, junction, mount point), so nothing is followed; ".." and
 * absolute names leave the root (-EXDEV); a name Windows cannot hold is
 * refused (-BERTH_EPATH) before Windows gets to alias it.  That is Linux's
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), done by hand.
 *
 * Handles berth opens are asynchronous (no FILE_SYNCHRONOUS_IO_*), for the
 * IOCP backend; each is wrapped in a C runtime fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <windows.h>
#include <winternl.h>

#include "berth.h"
#include "engine/platform/platform.h"
#include "engine/platform/platform_win.h"

/* ------------------------------------------------------------- wakers */

int berth_waker_init(struct berth_waker *w, unsigned flags)
{
	w->flags = flags;
	w->ev = CreateEventW(NULL, FALSE, FALSE, NULL);
	return w->ev ? 0 : berth_plat_err(GetLastError());
}

void berth_waker_destroy(struct berth_waker *w)
{
	if (w->ev)
		CloseHandle(w->ev);
	w->ev = NULL;
}

int berth_waker_signal(struct berth_waker *w)
{
	return SetEvent(w->ev) ? 0 : berth_plat_err(GetLastError());
}

void berth_waker_drain(struct berth_waker *w)
{
	/* An auto-reset event: a satisfied wait lowers it.  A zero timeout
	 * lowers a raised waker and returns at once otherwise; a blocking
	 * drain (the pool backend's pump thread) waits for the next
	 * signal, as the Linux eventfd read does. */
	WaitForSingleObject(w->ev,
			    w->flags & BERTH_WAKER_NONBLOCK ? 0 : INFINITE);
}

/* ------------------------------------------------------------- errors */

ssize_t berth_plat_io_result(int ok, unsigned long n)
{
	DWORD e;

	if (ok)
		return (ssize_t)n;
	e = GetLastError();
	if (e == ERROR_HANDLE_EOF || e == ERROR_BROKEN_PIPE)
		return 0;
	return berth_plat_err(e);
}

int berth_plat_err(unsigned long e)
{
	switch (e) {
	case ERROR_SUCCESS:
		return 0;
	case ERROR_FILE_NOT_FOUND:
	case ERROR_PATH_NOT_FOUND:
	case ERROR_INVALID_DRIVE:
	case ERROR_BAD_NETPATH:
		return -ENOENT;
	case ERROR_ACCESS_DENIED:
	case ERROR_WRITE_PROTECT:
		return -EACCES;
	case ERROR_FILE_EXISTS:
	case ERROR_ALREADY_EXISTS:
		return -EEXIST;
	case ERROR_INVALID_HANDLE:
		return -EBADF;
	case ERROR_NOT_ENOUGH_MEMORY:
	case ERROR_OUTOFMEMORY:
		return -ENOMEM;
	case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL:
		return -ENOSPC;
	case ERROR_DIR_NOT_EMPTY:
		return -ENOTEMPTY;
	case ERROR_OPERATION_ABORTED:
		return -ECANCELED;
	case ERROR_BROKEN_PIPE:
	case ERROR_NO_DATA:
		return -EPIPE;
	case ERROR_SHARING_VIOLATION:
	case ERROR_LOCK_VIOLATION:
	case ERROR_BUSY:
		return -EBUSY;
	case ERROR_DIRECTORY:
		return -ENOTDIR;
	case ERROR_NOT_SAME_DEVICE:
		return -EXDEV;
	case ERROR_CANT_RESOLVE_FILENAME:
		return -ELOOP;
	case ERROR_FILENAME_EXCED_RANGE:
	case ERROR_BUFFER_OVERFLOW:
		return -ENAMETOOLONG;
	case ERROR_NOT_SUPPORTED:
	case ERROR_INVALID_FUNCTION:
	case ERROR_CALL_NOT_IMPLEMENTED:
		return -EOPNOTSUPP;
	case ERROR_INVALID_PARAMETER:
	case ERROR_INVALID_NAME:
	case ERROR_BAD_PATHNAME:
	case ERROR_NEGATIVE_SEEK:
		return -EINVAL;
	case ERROR_TOO_MANY_OPEN_FILES:
		return -EMFILE;
	default:
		return -EIO;
	}
}

#ifndef STATUS_CANCELLED
#define STATUS_CANCELLED ((NTSTATUS)0xC0000120L)
#endif
#define ST_OBJECT_NAME_COLLISION ((NTSTATUS)0xC0000035L)
#define ST_OBJECT_NAME_NOT_FOUND ((NTSTATUS)0xC0000034L)
#define ST_OBJECT_PATH_NOT_FOUND ((NTSTATUS)0xC000003AL)
#define ST_NOT_A_DIRECTORY ((NTSTATUS)0xC0000103L)
#define ST_FILE_IS_A_DIRECTORY ((NTSTATUS)0xC00000BAL)
#define ST_DIRECTORY_NOT_EMPTY ((NTSTATUS)0xC0000101L)
#define ST_NOT_SAME_DEVICE ((NTSTATUS)0xC00000D4L)
#define ST_OBJECT_NAME_INVALID ((NTSTATUS)0xC0000033L)

int berth_plat_nterr(long status)
{
	switch ((NTSTATUS)status) {
	case 0:
		return 0;
	case STATUS_CANCELLED:
		return -ECANCELED;
	case ST_OBJECT_NAME_COLLISION:
		return -EEXIST;
	case ST_OBJECT_NAME_NOT_FOUND:
	case ST_OBJECT_PATH_NOT_FOUND:
		return -ENOENT;
	case ST_NOT_A_DIRECTORY:
		return -ENOTDIR;
	case ST_FILE_IS_A_DIRECTORY:
		return -EISDIR;
	case ST_DIRECTORY_NOT_EMPTY:
		return -ENOTEMPTY;
	case ST_NOT_SAME_DEVICE:
		return -EXDEV;
	case ST_OBJECT_NAME_INVALID:
		return -BERTH_EPATH;
	default:
		return berth_plat_err(RtlNtStatusToDosError((NTSTATUS)status));
	}
}

/* -------------------------------------------------------------- names */

static bool reserved_device(const char *name)
{
	static const char *const dev[] = {"CON", "PRN",	   "AUX",
					  "NUL", "CONIN$", "CONOUT$"};
	size_t n = strcspn(name, ".");
	size_t i;

	/* "COM1".."COM9", "LPT1".."LPT9" (also with superscript digits,
	 * which are not ASCII and so not matched here: refused below as
	 * non-ASCII would be too broad). */
	if (n == 4 &&
	    (!_strnicmp(name, "COM", 3) || !_strnicmp(name, "LPT", 3)) &&
	    name[3] >= '1' && name[3] <= '9')
		return true;
	for (i = 0; i < sizeof(dev) / sizeof(dev[0]); i++)
		if (n == strlen(dev[i]) && !_strnicmp(name, dev[i], n))
			return true;
	return false;
}

int berth_plat_name_ok(const char *name)
{
	size_t len = strlen(name);
	const unsigned char *c;

	if (len == 0)
		return -BERTH_EPATH;
	for (c = (const unsigned char *)name; *c; c++)
		if (*c < 32 || strchr("<>:\"\\|?*", *c))
			return -BERTH_EPATH;
	/* Win32 drops a trailing dot or space: "a." would be "a". */
	if (name[len - 1] == '.' || name[len - 1] == ' ') {
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			return 0;
		return -BERTH_EPATH;
	}
	return reserved_device(name) ? -BERTH_EPATH : 0;
}

/* ---------------------------------------------------------- fds, handles */

void *berth_plat_handle(int fd)
{
	intptr_t h = _get_osfhandle(fd);

	return h == -1 || h == -2 ? NULL : (void *)h;
}

int berth__plat_fd_of(void *h, int flags)
{
	int fd = _open_osfhandle((intptr_t)h, flags | _O_BINARY | _O_NOINHERIT);

	if (fd < 0) {
		CloseHandle(h);
		return -EMFILE;
	}
	return fd;
}

/* ----------------------------------------------------------- beneath */

#ifndef FILE_OPEN_REPARSE_POINT
#define FILE_OPEN_REPARSE_POINT 0x00200000
#endif
#ifndef FILE_OPEN_FOR_BACKUP_INTENT
#define FILE_OPEN_FOR_BACKUP_INTENT 0x00004000
#endif
#define NT_FILE_DIRECTORY_FILE 0x00000001
#define NT_FILE_NON_DIRECTORY_FILE 0x00000040
#define NT_FILE_SYNCHRONOUS_IO_NONALERT 0x00000020
#define NT_FILE_SUPERSEDE 0
#define NT_FILE_OPEN 1
#define NT_FILE_CREATE 2
#define NT_FILE_OPEN_IF 3
#define NT_FILE_OVERWRITE 4
#define NT_FILE_OVERWRITE_IF 5
#define NT_FILE_ATTRIBUTE_TAG_INFO 35

struct attr_tag {
	ULONG attributes;
	ULONG reparse_tag;
};

/* One component of UTF-8 as UTF-16, in @buf (@cap WCHARs).  Length or
 * -errno. */
static int widen(const char *s, size_t len, WCHAR *buf, int cap)
{
	int n;

	if (len == 0)
		return 0;
	n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, (int)len, buf,
				cap);
	return n > 0 ? n : -BERTH_EPATH;
}

static int nt_open(void *root, const char *name, size_t len, uint32_t access,
		   uint32_t disp, uint32_t options, uint32_t attrs, void **out)
{
	WCHAR wname[512];
	UNICODE_STRING us;
	OBJECT_ATTRIBUTES oa;
	IO_STATUS_BLOCK io;
	HANDLE h = NULL;
	NTSTATUS st;
	int n = widen(name, len, wname, 512);

	if (n < 0)
		return n;
	us.Buffer = wname;
	us.Length = us.MaximumLength = (USHORT)(n * sizeof(WCHAR));
	InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, root, NULL);
	st = NtCreateFile(&h, access | SYNCHRONIZE | FILE_READ_ATTRIBUTES, &oa,
			  &io, NULL, attrs ? attrs : FILE_ATTRIBUTE_NORMAL,
			  FILE_SHARE_READ | FILE_SHARE_WRITE |
				  FILE_SHARE_DELETE,
			  disp, options | FILE_OPEN_REPARSE_POINT, NULL, 0);
	if (st < 0)
		return berth_plat_nterr(st);
	*out = h;
	return 0;
}

/* The FILE_ATTRIBUTE_* of @h in *@attrs; 0 or -errno. */
static int attrs_of(void *h, unsigned long *attrs)
{
	struct attr_tag tag;
	IO_STATUS_BLOCK io;
	NTSTATUS st;

	st = NtQueryInformationFile(
		h, &io, &tag, sizeof(tag),
		(FILE_INFORMATION_CLASS)NT_FILE_ATTRIBUTE_TAG_INFO);
	if (st < 0) {
		BY_HANDLE_FILE_INFORMATION bi;

		/* Older Wine: the plain attributes say as much. */
		if (!GetFileInformationByHandle(h, &bi))
			return berth_plat_err(GetLastError());
		*attrs = bi.dwFileAttributes;
		return 0;
	}
	*attrs = tag.attributes;
	return 0;
}

/* Whether @h is a reparse point (a symlink, junction or mount point). */
int berth__plat_is_reparse(void *h)
{
	unsigned long a = 0;
	int ret = attrs_of(h, &a);

	return ret < 0 ? ret : !!(a & FILE_ATTRIBUTE_REPARSE_POINT);
}

/*
 * Open the directory that holds the last component of @path, beneath
 * @root, refusing reparse points, "..", absolute names and names Windows
 * cannot hold.  *@dir is a new handle (close it), or NULL when the parent
 * is @root itself; *@last points into @path at the last component.
 */
static int walk(void *root, const char *path, void **dir, const char **last)
{
	const char *p, *slash;
	void *cur = NULL, *next;
	int ret;

	*dir = NULL;
	/* Absolute: "/x", "\\x", "C:/x", "C:".  ("a:b" is a stream name,
	 * refused as a name below.) */
	if (path[0] == '/' || path[0] == '\\' ||
	    (path[0] && path[1] == ':' &&
	     (!path[2] || path[2] == '/' || path[2] == '\\')))
		return -EXDEV;
	/* Every component is checked before anything is looked up: a ".."
	 * leaves (or may leave) the root; a name Windows cannot hold is
	 * refused whether or not its parents exist. */
	for (p = path; *p; p += strcspn(p, "/"), p += *p == '/') {
		char comp[256];
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.'))
			continue;
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -EXDEV;
		if (n >= sizeof(comp))
			return -ENAMETOOLONG;
		memcpy(comp, p, n);
		comp[n] = '\0';
		ret = berth_plat_name_ok(comp);
		if (ret < 0)
			return ret;
	}
	p = path;
	for (;;) {
		while (*p == '/')
			p++;
		slash = strchr(p, '/');
		if (!slash || slash[strspn(slash, "/")] == '\0')
			break;
		if (slash - p == 1 && p[0] == '.') {
			p = slash;
			continue;
		}
		/* Opened as whatever it is (no FILE_DIRECTORY_FILE), so
		 * that a link in the way is seen as one: -ELOOP, as
		 * RESOLVE_NO_SYMLINKS says, not a lookup error. */
		ret = nt_open(cur ? cur : root, p, (size_t)(slash - p),
			      FILE_TRAVERSE, NT_FILE_OPEN,
			      NT_FILE_SYNCHRONOUS_IO_NONALERT, 0, &next);
		if (ret < 0)
			goto fail;
		if (cur)
			CloseHandle(cur);
		cur = next;
		{
			unsigned long a = 0;

			ret = attrs_of(cur, &a);
			if (ret == 0 && (a & FILE_ATTRIBUTE_REPARSE_POINT))
				ret = -ELOOP;
			else if (ret == 0 && !(a & FILE_ATTRIBUTE_DIRECTORY))
				ret = -ENOTDIR;
			if (ret < 0)
				goto fail;
		}
		p = slash;
	}
	*dir = cur;
	*last = p;
	return 0;
fail:
	if (cur)
		CloseHandle(cur);
	return ret;
}

/* The root handle for @dirfd: its HANDLE, or a new one for the current
 * directory (AT_FDCWD; *@own set). */
int berth__plat_root(int dirfd, void **root, bool *own)
{
	*own = false;
	if (dirfd == AT_FDCWD) {
		HANDLE h = CreateFileW(
			L".", FILE_TRAVERSE | SYNCHRONIZE,
			FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
			NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);

		if (h == INVALID_HANDLE_VALUE)
			return berth_plat_err(GetLastError());
		*root = h;
		*own = true;
		return 0;
	}
	*root = berth_plat_handle(dirfd);
	return *root ? 0 : -EBADF;
}

int berth__plat_open_handle(int dirfd, const char *path, int flags, mode_t mode,
			    uint32_t extra_access, void **out)
{
	void *root, *dir = NULL, *h = NULL;
	const char *last;
	uint32_t access = extra_access, disp, options = 0;
	size_t len;
	bool own;
	int ret, acc = flags & (O_RDONLY | O_WRONLY | O_RDWR);

	ret = berth__plat_root(dirfd, &root, &own);
	if (ret < 0)
		return ret;
	ret = walk(root, path, &dir, &last);
	if (ret < 0)
		goto out;
	len = strcspn(last, "/");
	if (len == 0 || (len == 1 && last[0] == '.')) {
		/* The directory itself ("." or "dir/"). */
		last = ".";
		len = 0;
	} else if (len == 2 && last[0] == '.' && last[1] == '.') {
		ret = -EXDEV;
		goto out;
	} else {
		char comp[256];

		if (len >= sizeof(comp)) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		memcpy(comp, last, len);
		comp[len] = '\0';
		ret = berth_plat_name_ok(comp);
		if (ret < 0)
			goto out;
	}
	if (flags & O_PATH)
		access |= FILE_READ_ATTRIBUTES;
	else if (acc == O_WRONLY)
		access |= GENERIC_WRITE;
	else if (acc == O_RDWR)
		access |= GENERIC_READ | GENERIC_WRITE;
	else
		access |= GENERIC_READ;
	if ((flags & O_CREAT) && (flags & O_EXCL))
		disp = NT_FILE_CREATE;
	else if ((flags & O_CREAT) && (flags & O_TRUNC))
		disp = NT_FILE_OVERWRITE_IF;
	else if (flags & O_CREAT)
		disp = NT_FILE_OPEN_IF;
	else if (flags & O_TRUNC)
		disp = NT_FILE_OVERWRITE;
	else
		disp = NT_FILE_OPEN;
	if (flags & O_DIRECTORY)
		options |= NT_FILE_DIRECTORY_FILE;
	else if (flags & O_CREAT)
		options |= NT_FILE_NON_DIRECTORY_FILE;
	if (len == 0) {
		/* Reopen the parent (or root) itself: an empty name relative
		 * to a handle is that handle's object. */
		ret = nt_open(dir ? dir : root, "", 0, access, NT_FILE_OPEN,
			      options, 0, &h);
	} else {
		ret = nt_open(dir ? dir : root, last, len, access, disp,
			      options,
			      (mode & 0200) ? 0 : FILE_ATTRIBUTE_READONLY, &h);
	}
	if (ret < 0)
		goto out;
	/* A reparse point as the last component: refused unless asked for
	 * as such (O_PATH | O_NOFOLLOW, as Linux opens a symlink itself). */
	ret = berth__plat_is_reparse(h);
	if (ret > 0 && (flags & (O_PATH | O_NOFOLLOW)) != (O_PATH | O_NOFOLLOW))
		ret = -ELOOP;
	if (ret < 0) {
		CloseHandle(h);
		goto out;
	}
	*out = h;
	ret = 0;
out:
	if (dir)
		CloseHandle(dir);
	if (own)
		CloseHandle(root);
	return ret;
}

int berth_plat_open_beneath_mode(int dirfd, const char *path, int flags,
				 mode_t mode)
{
	void *h;
	int ret = berth__plat_open_handle(dirfd, path, flags, mode, 0, &h);
	int acc = flags & (O_RDONLY | O_WRONLY | O_RDWR);

	if (ret < 0)
		return ret;
	return berth__plat_fd_of(h, (flags & O_PATH) ? O_RDONLY : acc);
}

int berth_plat_open_beneath(int dirfd, const char *path, int flags)
{
	return berth_plat_open_beneath_mode(dirfd, path, flags, 0);
}

int berth_plat_fd_path(int fd, char *buf, size_t len)
{
	/* No /proc: the callers (xattrs of O_PATH fds) have no Windows
	 * counterpart; they get -EOPNOTSUPP from the backend first. */
	(void)fd;
	if (len)
		buf[0] = '\0';
	return -EOPNOTSUPP;
}

mode_t berth_plat_umask(void)
{
	/* Windows has no umask; berth's modes are advisory there. */
	return 022;
}

bool berth_plat_is_tcp(int fd)
{
	(void)fd; /* berth's fds on Windows are files and pipes */
	return false;
}

void berth_plat_quickack(int fd)
{
	(void)fd;
}

/* ------------------------------------------------ pipes, pread, pwrite */

int berth_plat_pipe(int fds[2])
{
	WCHAR name[96];
	LARGE_INTEGER t;
	HANDLE r, w;
	int rfd, wfd;

	for (int attempt = 0;; attempt++) {
		QueryPerformanceCounter(&t);
		_snwprintf(name, 96, L"\\\\.\\pipe\\berth-%lu-%lu-%llx-%d",
			   GetCurrentProcessId(), GetCurrentThreadId(),
			   (unsigned long long)t.QuadPart, attempt);
		r = CreateNamedPipeW(
			name,
			PIPE_ACCESS_INBOUND | FILE_FLAG_OVERLAPPED |
				FILE_FLAG_FIRST_PIPE_INSTANCE,
			PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1,
			65536, 65536, 0, NULL);
		if (r != INVALID_HANDLE_VALUE)
			break;
		if (GetLastError() != ERROR_ACCESS_DENIED || attempt > 8)
			return berth_plat_err(GetLastError());
	}
	w = CreateFileW(name, GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
	if (w == INVALID_HANDLE_VALUE) {
		int e = berth_plat_err(GetLastError());

		CloseHandle(r);
		return e;
	}
	rfd = berth__plat_fd_of(r, O_RDONLY);
	if (rfd < 0) {
		CloseHandle(w);
		return rfd;
	}
	wfd = berth__plat_fd_of(w, O_WRONLY);
	if (wfd < 0) {
		_close(rfd);
		return wfd;
	}
	fds[0] = rfd;
	fds[1] = wfd;
	return 0;
}

static ssize_t plat_rw(int fd, void *buf, size_t len, uint64_t off, bool rd)
{
	HANDLE h = berth_plat_handle(fd);
	OVERLAPPED ov = {0};
	DWORD n = 0, want = len > 0x40000000 ? 0x40000000 : (DWORD)len;
	BOOL ok;
	ssize_t ret;

	if (!h)
		return -EBADF;
	ov.Offset = (DWORD)off;
	ov.OffsetHigh = (DWORD)(off >> 32);
	/* The low bit keeps the completion off any port the handle is
	 * associated with: this is a private, waited-for transfer. */
	ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
	if (!ov.hEvent)
		return berth_plat_err(GetLastError());
	ov.hEvent = (HANDLE)((uintptr_t)ov.hEvent | 1);
	ok = rd ? ReadFile(h, buf, want, &n, &ov)
		: WriteFile(h, buf, want, &n, &ov);
	if (!ok && GetLastError() == ERROR_IO_PENDING)
		ok = GetOverlappedResult(h, &ov, &n, TRUE);
	ret = berth_plat_io_result(ok, n);
	CloseHandle((HANDLE)((uintptr_t)ov.hEvent & ~(uintptr_t)1));
	return ret;
}

ssize_t berth_plat_pread(int fd, void *buf, size_t len, uint64_t off)
{
	return plat_rw(fd, buf, len, off, true);
}

ssize_t berth_plat_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	return plat_rw(fd, (void *)(uintptr_t)buf, len, off, false);
}

/* ------------------------------------------- path operations beneath */

#define NT_FILE_RENAME_INFO 10
#define NT_FILE_DISPOSITION_INFO 13
#define NT_FILE_DISPOSITION_INFO_EX 64
#define NT_FILE_RENAME_INFO_EX 65
#define NT_RENAME_REPLACE_IF_EXISTS 0x1
#define NT_RENAME_POSIX_SEMANTICS 0x2
#define NT_DISPOSITION_DELETE 0x1
#define NT_DISPOSITION_POSIX_SEMANTICS 0x2

struct nt_rename_info {
	union {
		BOOLEAN replace; /* FileRenameInformation */
		ULONG flags; /* FileRenameInformationEx */
	} u;
	HANDLE root;
	ULONG name_len;
	WCHAR name[256];
};

int berth__plat_renameat(int olddirfd, const char *oldpath, int newdirfd,
			 const char *newpath, unsigned flags)
{
	struct nt_rename_info ri;
	IO_STATUS_BLOCK io;
	void *h, *root, *dir = NULL;
	const char *last;
	bool own;
	size_t len;
	NTSTATUS st;
	int ret, n;

	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	/* The source itself (a symlink renamed is the link). */
	ret = berth__plat_open_handle(olddirfd, oldpath, O_PATH | O_NOFOLLOW, 0,
				      DELETE, &h);
	if (ret < 0)
		return ret;
	ret = berth__plat_root(newdirfd, &root, &own);
	if (ret < 0)
		goto out_h;
	ret = walk(root, newpath, &dir, &last);
	if (ret < 0)
		goto out_root;
	len = strcspn(last, "/");
	{
		char comp[256];

		if (len == 0 || len >= sizeof(comp)) {
			ret = len ? -ENAMETOOLONG : -EINVAL;
			goto out_dir;
		}
		memcpy(comp, last, len);
		comp[len] = '\0';
		ret = berth_plat_name_ok(comp);
		if (ret < 0 || !strcmp(comp, ".") || !strcmp(comp, "..")) {
			ret = ret < 0 ? ret : -EXDEV;
			goto out_dir;
		}
	}
	n = widen(last, len, ri.name, 256);
	if (n < 0) {
		ret = n;
		goto out_dir;
	}
	ri.root = dir ? dir : root;
	ri.name_len = (ULONG)(n * sizeof(WCHAR));
	/* POSIX semantics where the file system has them (the target may be
	 * open; its name goes at once); else the classic rename. */
	ri.u.flags = NT_RENAME_POSIX_SEMANTICS |
		     (flags & RENAME_NOREPLACE ? 0
					       : NT_RENAME_REPLACE_IF_EXISTS);
	st = NtSetInformationFile(
		h, &io, &ri, sizeof(ri),
		(FILE_INFORMATION_CLASS)NT_FILE_RENAME_INFO_EX);
	if (st < 0 && berth_plat_nterr(st) != -EEXIST &&
	    berth_plat_nterr(st) != -EACCES &&
	    berth_plat_nterr(st) != -ENOENT) {
		memset(&ri.u, 0, sizeof(ri.u));
		ri.u.replace = !(flags & RENAME_NOREPLACE);
		st = NtSetInformationFile(
			h, &io, &ri, sizeof(ri),
			(FILE_INFORMATION_CLASS)NT_FILE_RENAME_INFO);
	}
	ret = berth_plat_nterr(st);
out_dir:
	if (dir)
		CloseHandle(dir);
out_root:
	if (own)
		CloseHandle(root);
out_h:
	CloseHandle(h);
	return ret;
}

int berth__plat_unlinkat(int dirfd, const char *path, int flags)
{
	IO_STATUS_BLOCK io;
	ULONG ex = NT_DISPOSITION_DELETE | NT_DISPOSITION_POSIX_SEMANTICS;
	BOOLEAN del = TRUE;
	struct statx stx;
	void *h;
	NTSTATUS st;
	int ret;

	ret = berth__plat_open_handle(dirfd, path, O_PATH | O_NOFOLLOW, 0,
				      DELETE, &h);
	if (ret < 0)
		return ret;
	ret = berth__plat_fstatx(h, &stx);
	if (ret == 0 && S_ISDIR(stx.stx_mode) && !(flags & AT_REMOVEDIR))
		ret = -EISDIR;
	else if (ret == 0 && !S_ISDIR(stx.stx_mode) && (flags & AT_REMOVEDIR))
		ret = -ENOTDIR;
	if (ret == 0) {
		st = NtSetInformationFile(
			h, &io, &ex, sizeof(ex),
			(FILE_INFORMATION_CLASS)NT_FILE_DISPOSITION_INFO_EX);
		if (st < 0 && berth_plat_nterr(st) != -ENOTEMPTY)
			st = NtSetInformationFile(
				h, &io, &del, sizeof(del),
				(FILE_INFORMATION_CLASS)
					NT_FILE_DISPOSITION_INFO);
		ret = berth_plat_nterr(st);
	}
	CloseHandle(h);
	return ret;
}

int berth__plat_mkdirat(int dirfd, const char *path, mode_t mode)
{
	void *h;
	int ret = berth__plat_open_handle(
		dirfd, path, O_CREAT | O_EXCL | O_DIRECTORY | O_PATH,
		mode | 0200, 0, &h);

	if (ret == 0)
		CloseHandle(h);
	return ret;
}

/* 100 ns ticks since 1601 to a Unix timestamp. */
static struct statx_timestamp ts_of(FILETIME ft)
{
	uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
	int64_t u = (int64_t)t - 116444736000000000LL;
	struct statx_timestamp ts;

	ts.tv_sec = u / 10000000;
	ts.tv_nsec = (uint32_t)((u % 10000000 + 10000000) % 10000000) * 100;
	if (u < 0 && u % 10000000)
		ts.tv_sec--;
	ts.reserved = 0;
	return ts;
}

static FILETIME filetime_of(const struct timespec *ts)
{
	uint64_t t = (uint64_t)((int64_t)ts->tv_sec * 10000000LL +
				ts->tv_nsec / 100 + 116444736000000000LL);
	FILETIME ft = {(DWORD)t, (DWORD)(t >> 32)};

	return ft;
}

int berth__plat_futimens(void *h, const struct timespec *times)
{
	FILETIME ft[2], now;
	FILETIME *p[2] = {NULL, NULL};
	int i;

	GetSystemTimeAsFileTime(&now);
	for (i = 0; i < 2; i++) {
		if (times && times[i].tv_nsec == UTIME_OMIT)
			continue;
		ft[i] = times && times[i].tv_nsec != UTIME_NOW
				? filetime_of(&times[i])
				: now;
		p[i] = &ft[i];
	}
	return SetFileTime(h, NULL, p[0], p[1])
		       ? 0
		       : berth_plat_err(GetLastError());
}

int berth__plat_fstatx(void *h, struct statx *stx)
{
	BY_HANDLE_FILE_INFORMATION bi;
	DWORD a;

	if (!GetFileInformationByHandle(h, &bi))
		return berth_plat_err(GetLastError());
	memset(stx, 0, sizeof(*stx));
	a = bi.dwFileAttributes;
	if (a & FILE_ATTRIBUTE_REPARSE_POINT)
		stx->stx_mode = S_IFLNK | 0777;
	else if (a & FILE_ATTRIBUTE_DIRECTORY)
		stx->stx_mode = S_IFDIR | 0755;
	else
		stx->stx_mode = S_IFREG |
				(a & FILE_ATTRIBUTE_READONLY ? 0444 : 0644);
	stx->stx_mask = STATX_BASIC_STATS | STATX_BTIME;
	stx->stx_blksize = 4096;
	stx->stx_nlink = bi.nNumberOfLinks;
	stx->stx_ino = ((uint64_t)bi.nFileIndexHigh << 32) | bi.nFileIndexLow;
	stx->stx_size = ((uint64_t)bi.nFileSizeHigh << 32) | bi.nFileSizeLow;
	stx->stx_blocks = (stx->stx_size + 511) / 512;
	stx->stx_atime = ts_of(bi.ftLastAccessTime);
	stx->stx_mtime = ts_of(bi.ftLastWriteTime);
	stx->stx_ctime = stx->stx_mtime;
	stx->stx_btime = ts_of(bi.ftCreationTime);
	stx->stx_dev_minor = bi.dwVolumeSerialNumber;
	return 0;
}

int berth__plat_statx(int dirfd, const char *path, int flags, struct statx *stx)
{
	void *h;
	int ret;

	if ((!path || !*path) && (flags & AT_EMPTY_PATH)) {
		h = berth_plat_handle(dirfd);
		return h ? berth__plat_fstatx(h, stx) : -EBADF;
	}
	/* Without AT_SYMLINK_NOFOLLOW a link would be followed: beneath a
	 * root berth follows none, so that is -ELOOP. */
	ret = berth__plat_open_handle(
		dirfd, path,
		O_PATH | (flags & AT_SYMLINK_NOFOLLOW ? O_NOFOLLOW : 0), 0, 0,
		&h);
	if (ret < 0)
		return ret;
	ret = berth__plat_fstatx(h, stx);
	CloseHandle(h);
	return ret;
}
