/* SPDX-License-Identifier: MIT */
/*
 * berth-stress helpers: seeded random numbers, clocks, violations, fd and
 * heap accounting, small file-system helpers.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#ifndef _WIN32
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"
#include "engine/platform/platform.h"
#include "stress.h"

const char *const stress_disruption_names[SD__COUNT] = {
	[SD_NONE] = "none",
	[SD_CANCEL_REQ] = "cancel-request",
	[SD_CANCEL_TAG] = "cancel-tag",
	[SD_CANCEL_API] = "cancel-api",
	[SD_ABORT_FILE] = "abort-file",
	[SD_PUMP_SHUTDOWN] = "pump-shutdown",
	[SD_KILL_CLIENT] = "sigkill-client",
	[SD_CUT_PIPE] = "cut-pipe",
	[SD_SIGTERM] = "sigterm-berth",
	[SD_SIGINT] = "sigint-berth",
	[SD_KILL_BERTH] = "sigkill-berth",
	[SD_FAULT] = "faults",
};

const char *const stress_fault_names[SF__COUNT] = {
	[SF_ENOSPC_WRITE] = "enospc-write", [SF_EIO_WRITE] = "eio-write",
	[SF_EIO_READ] = "eio-read",	    [SF_EIO_FSYNC] = "eio-fsync",
	[SF_SHORT_WRITE] = "short-write",   [SF_SHORT_READ] = "short-read",
	[SF_RENAME] = "rename-fail",
};

const char *const stress_violation_names[SV__COUNT] = {
	[SV_CONTENT] = "content",
	[SV_TEMP] = "temp",
	[SV_FD] = "fd",
	[SV_MEM] = "mem",
	[SV_ONCE] = "once",
	[SV_COUNT] = "count",
	[SV_UNDISTURBED] = "undisturbed",
	[SV_RESULT] = "result",
	[SV_SIGNAL] = "signal",
	[SV_TEMP_SIGNAL] = "temp-signal",
	[SV_ISOLATION] = "isolation",
	[SV_SANITIZER] = "sanitizer",
	[SV_TEMP_KILLED] = "temp-killed",
};

uint64_t stress_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t stress_next(struct stress_rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return stress_mix(r->s);
}

uint64_t stress_range(struct stress_rng *r, uint64_t lo, uint64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + stress_next(r) % (hi - lo + 1);
}

int stress_chance(struct stress_rng *r, unsigned pct)
{
	return stress_next(r) % 100 < pct;
}

int stress_backend(struct stress_rng *r)
{
	int uring = stress_chance(r, 50);

	/* The kernel-queue half: io_uring on Linux, the completion port
	 * on Windows. */
	if (uring && BERTH_HAVE_URING)
		return BERTH_PUMP_URING;
	if (uring && BERTH_HAVE_IOCP)
		return BERTH_PUMP_IOCP;
	return BERTH_PUMP_POOL;
}

void stress_fill(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t x = stress_mix(seed);
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
	for (; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

double stress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void stress_sleep_us(uint64_t us)
{
	struct timespec ts = {.tv_sec = (time_t)(us / 1000000),
			      .tv_nsec = (long)(us % 1000000) * 1000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void stress_describe(struct stress_state *st, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&st->lock);
	va_start(ap, fmt);
	vsnprintf(st->iter_desc, sizeof(st->iter_desc), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&st->lock);
	if (st->o.verbose)
		fprintf(stderr, "[%llu] seed %016llx: %s\n",
			(unsigned long long)st->iter,
			(unsigned long long)st->iter_seed, st->iter_desc);
}

void stress_violation(struct stress_state *st, int kind, const char *fmt, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&st->lock);
	if (st->o.xfail & (1u << kind)) {
		if (!st->xfailed[kind]++) {
			st->xfail_first_seed[kind] = st->iter_seed;
			fprintf(stderr,
				"berth-stress: known issue (--xfail %s), "
				"first at seed %016llx: %s\n",
				stress_violation_names[kind],
				(unsigned long long)st->iter_seed, msg);
		}
	} else if (!st->violation) {
		st->violation = 1;
		snprintf(st->violation_msg, sizeof(st->violation_msg), "%s: %s",
			 stress_violation_names[kind], msg);
	}
	pthread_mutex_unlock(&st->lock);
}

void stress_log(struct stress_state *st, const char *fmt, ...)
{
	va_list ap;

	if (!st->o.verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

#ifdef _WIN32
/* Windows: open handles (each fd berth opens is one); no list of them. */
int stress_count_fds(void)
{
	DWORD n = 0;

	return GetProcessHandleCount(GetCurrentProcess(), &n) ? (int)n : -EIO;
}

void stress_fd_list(char *buf, size_t len)
{
	snprintf(buf, len, " (no fd list on Windows)");
}

size_t stress_heap_bytes(void)
{
	return 0; /* no mallinfo: the heap check is Linux's */
}
#else
int stress_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

void stress_fd_list(char *buf, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char p[320], t[256];
	size_t used = 0;
	ssize_t n;

	buf[0] = 0;
	if (!d)
		return;
	while ((de = readdir(d)) && used + 1 < len) {
		if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
			continue;
		snprintf(p, sizeof(p), "/proc/self/fd/%s", de->d_name);
		n = readlink(p, t, sizeof(t) - 1);
		t[n < 0 ? 0 : n] = 0;
		used += (size_t)snprintf(buf + used, len - used, " %s=%s",
					 de->d_name, t);
	}
	closedir(d);
}

size_t stress_heap_bytes(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return 0; /* the sanitizers own the heap; LSan checks leaks */
#else
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
#endif
}
#endif

int stress_rm_rf(const char *path)
{
	struct dirent *de;
	struct stat sb;
	char sub[4096];
	DIR *d;
	int r = 0;

	if (lstat(path, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(sb.st_mode))
		return unlink(path) < 0 ? -errno : 0;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (stress_rm_rf(sub) < 0)
			r = -EIO;
	}
	closedir(d);
	if (rmdir(path) < 0)
		r = -errno;
	return r;
}

int stress_mkdirs(const char *path, mode_t mode)
{
	char buf[4096];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int stress_write_file(const char *path, const void *data, size_t len,
		      mode_t mode, int64_t mtime)
{
	struct timespec ts[2];
	const char *p = data;
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			r = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	ts[0].tv_sec = mtime;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
	if (!r)
		r = berth_plat_fchmod(fd, mode);
	if (!r)
		r = berth_plat_futimens(fd, ts);
	close(fd);
	return r;
}

ssize_t stress_read_file(const char *path, unsigned char **out)
{
	struct stat sb;
	unsigned char *buf;
	size_t got = 0;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size + 1 - got);

		if (n < 0) {
			free(buf);
			close(fd);
			return -EIO;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == (size_t)sb.st_size + 1)
			break; /* grew while reading: report the longer size */
	}
	close(fd);
	*out = buf;
	return (ssize_t)got;
}

int stress_find_temps(const char *dir, void (*cb)(void *, const char *),
		      void *arg)
{
	struct dirent *de;
	struct stat sb;
	char sub[4096];
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (de->d_name[0] == '.') {
			n++;
			if (cb)
				cb(arg, sub);
		}
		if (!lstat(sub, &sb) && S_ISDIR(sb.st_mode))
			n += stress_find_temps(sub, cb, arg);
	}
	closedir(d);
	return n;
}

/* The disruptions each mode (index) can deliver. */
static const unsigned mode_disruptions[4] = {
	1u << SD_NONE | 1u << SD_CANCEL_REQ | 1u << SD_CANCEL_TAG |
		1u << SD_PUMP_SHUTDOWN | 1u << SD_FAULT,
	1u << SD_NONE | 1u << SD_CANCEL_API | 1u << SD_ABORT_FILE |
		1u << SD_PUMP_SHUTDOWN | 1u << SD_FAULT,
	1u << SD_NONE | 1u << SD_KILL_CLIENT | 1u << SD_CUT_PIPE |
		1u << SD_SIGTERM | 1u << SD_SIGINT,
	1u << SD_NONE | 1u << SD_KILL_CLIENT | 1u << SD_CUT_PIPE |
		1u << SD_CANCEL_API | 1u << SD_PUMP_SHUTDOWN | 1u << SD_FAULT,
};

int stress_filter(struct stress_state *st, int mode, int d)
{
	int f = st->o.force_disruption;

	if (f >= 0 && (mode_disruptions[mode] & (1u << f)))
		return f;
	return st->o.skip[mode] & (1u << d) ? SD_NONE : d;
}

int stress_workload(struct stress_state *st, int w)
{
	return st->o.force_workload >= 0 ? st->o.force_workload : w;
}

unsigned stress_sessions(struct stress_state *st, unsigned n)
{
	return st->o.force_sessions ? st->o.force_sessions : n;
}
