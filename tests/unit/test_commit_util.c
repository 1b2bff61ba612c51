/* SPDX-License-Identifier: MIT */
/* Disk-commit tests: the shared fixtures (test_commit_util.h). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_commit_util.h"

#ifndef S_ISLNK
#define S_ISLNK(m) 0 /* Windows: no symlinks in these trees */
#endif

static void on_event(void *arg, const struct berth_commit_event *e)
{
	struct env *v = arg;

	pthread_mutex_lock(&v->lock);
	if (v->nev < 4096) {
		snprintf(v->ev[v->nev].path, sizeof(v->ev[0].path), "%s",
			 e->path);
		v->ev[v->nev].err = e->err;
		v->ev[v->nev].kind = e->kind;
		v->ev[v->nev].step = e->step;
		v->ev[v->nev].op = e->op;
		v->ev[v->nev].has_tmp = e->tmp != NULL;
		v->ev[v->nev].has_target = e->target != NULL;
		v->nev++;
	}
	pthread_mutex_unlock(&v->lock);
}

/* The last event's error for @path; 1 when there was none. */
int ev_err(struct env *v, const char *path)
{
	int r = 1;
	unsigned i;

	pthread_mutex_lock(&v->lock);
	for (i = 0; i < v->nev; i++)
		if (!strcmp(v->ev[i].path, path))
			r = v->ev[i].err;
	pthread_mutex_unlock(&v->lock);
	return r;
}

struct ev_rec ev_last(struct env *v, const char *path)
{
	struct ev_rec r = {.err = 1};
	unsigned i;

	pthread_mutex_lock(&v->lock);
	for (i = 0; i < v->nev; i++)
		if (!strcmp(v->ev[i].path, path))
			r = v->ev[i];
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* Remove @path and everything below it, in C: under Wine there is no
 * shell to run `rm -rf`.  Read-only entries are made writable first
 * (Windows refuses to delete them). */
static void rm_rf(const char *path)
{
	char sub[1024];
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (lstat(path, &st) < 0)
		return;
	if (!S_ISLNK(st.st_mode)) /* never through a link */
		chmod(path, S_ISDIR(st.st_mode) ? 0700 : 0600);
	if (S_ISDIR(st.st_mode) && (d = opendir(path))) {
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") ||
			    !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rm_rf(sub);
		}
		closedir(d);
	}
	if ((S_ISDIR(st.st_mode) ? rmdir(path) : unlink(path)) < 0)
		fprintf(stderr, "cleanup of %s failed\n", path);
}

#ifdef _WIN32
/* Open handles: the Windows side of the fd-leak check (each fd berth
 * opens is a HANDLE; the stage's threads are joined before the count). */
static int count_fds(void)
{
	DWORD n = 0;

	return GetProcessHandleCount(GetCurrentProcess(), &n) ? (int)n : -1;
}

void expect_mode(const char *path, unsigned mode)
{
	DWORD a = GetFileAttributesA(path);

	assert_true(a != INVALID_FILE_ATTRIBUTES);
	assert_int_equal(!!(a & FILE_ATTRIBUTE_READONLY), !(mode & 0200));
}

void expect_mtime(const char *path, int64_t sec, long nsec)
{
	WIN32_FILE_ATTRIBUTE_DATA d;
	int64_t t;

	assert_true(GetFileAttributesExA(path, GetFileExInfoStandard, &d));
	t = (int64_t)(((uint64_t)d.ftLastWriteTime.dwHighDateTime << 32) |
		      d.ftLastWriteTime.dwLowDateTime) -
	    116444736000000000LL;
	assert_int_equal(t / 10000000, sec);
	assert_int_equal((t % 10000000) * 100, nsec / 100 * 100);
}
#else
void expect_mode(const char *path, unsigned mode)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, mode);
}

void expect_mtime(const char *path, int64_t sec, long nsec)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, sec);
	assert_int_equal(st.st_mtim.tv_nsec, nsec);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}
#endif

int env_start(struct env *v, const struct berth_commit_opts *o)
{
	struct berth_commit_opts def = {0};
	int r;

	memset(v, 0, sizeof(*v));
	v->nfds = count_fds();
	pthread_mutex_init(&v->lock, NULL);
	strcpy(v->root, "/tmp/berth-commit-XXXXXX");
	strcpy(v->out, "/tmp/berth-outside-XXXXXX");
	assert_non_null(mkdtemp(v->root));
	assert_non_null(mkdtemp(v->out));
	v->rootfd = open(v->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(v->rootfd >= 0);
	r = berth_pump_create(NULL, &v->pump);
	if (r < 0)
		return r;
	if (!o) {
		def.tag_base = TAG_BASE;
		o = &def;
	}
	r = berth_commit_create(v->pump, v->rootfd, o, on_event, v, &v->c);
	assert_int_equal(r, 0);
	return 0;
}

void env_stop(struct env *v)
{
	berth_commit_free(v->c);
	berth_pump_free(v->pump);
	close(v->rootfd);
	rm_rf(v->root);
	rm_rf(v->out);
	pthread_mutex_destroy(&v->lock);
	assert_int_equal(count_fds(), v->nfds);
}

/* Count entries whose name starts with '.' (temp files) below @dir. */
int count_temps(const char *dir)
{
	char sub[512];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_name[0] == '.')
			n++;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		if (!lstat(sub, &st) && S_ISDIR(st.st_mode))
			n += count_temps(sub);
	}
	closedir(d);
	return n;
}

void fill(unsigned char *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
}

void write_plain(struct env *v, const char *rel, const char *data)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", v->root, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

void expect_content(const char *dir, const char *rel, const void *data,
		    size_t len)
{
	char p[512];
	unsigned char *buf = malloc(len + 1);
	ssize_t n;
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, len + 1);
	close(fd);
	assert_int_equal(n, (ssize_t)len);
	assert_memory_equal(buf, data, len);
	free(buf);
}

void expect_committed(struct env *v, const char *rel, const void *data,
		      size_t len)
{
	assert_int_equal(berth_commit_flush(v->c), 0);
	assert_int_equal(ev_err(v, rel), 0);
	expect_content(v->root, rel, data, len);
	assert_int_equal(count_temps(v->root), 0);
}

int commit_one(struct env *v, const char *rel, const void *data, size_t len,
	       const struct berth_commit_meta *m)
{
	struct berth_commit_file *f;
	int r = berth_commit_file_begin(v->c, rel, m, 0, &f);

	if (r)
		return r;
	berth_commit_file_write(f, data, len);
	return berth_commit_file_finish(f);
}

int exists(const char *dir, const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}
