/* SPDX-License-Identifier: MIT */
/*
 * Disk-commit stage: many small files and large files in each durability
 * mode, fault injection through the pump (ENOSPC mid-write, EIO on fsync,
 * failing rename, failing directory fsync), symlink attacks, tree
 * operations, extended attributes, abort and cancel with hundreds of
 * writes in flight.  Runs on
 * the backend chosen by BERTH_PUMP (registered once per backend).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/commit/commit.h"
#include "engine/pump/pump.h"

#define TAG_BASE 1000

struct ev_rec {
	char path[128];
	int err;
	int kind;
};

struct env {
	int nfds; /* open fds before the stage: none may leak */
	struct berth_pump *pump;
	struct berth_commit *c;
	char root[64];
	char out[64]; /* "outside" the destination */
	int rootfd;
	pthread_mutex_t lock;
	struct ev_rec ev[4096];
	unsigned nev;
};

static void on_event(void *arg, const struct berth_commit_event *e)
{
	struct env *v = arg;

	pthread_mutex_lock(&v->lock);
	if (v->nev < 4096) {
		snprintf(v->ev[v->nev].path, sizeof(v->ev[0].path), "%s",
			 e->path);
		v->ev[v->nev].err = e->err;
		v->ev[v->nev].kind = e->kind;
		v->nev++;
	}
	pthread_mutex_unlock(&v->lock);
}

/* The last event's error for @path; 1 when there was none. */
static int ev_err(struct env *v, const char *path)
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

static void rm_rf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", path);
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

static int env_start(struct env *v, const struct berth_commit_opts *o)
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

static void env_stop(struct env *v)
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
static int count_temps(const char *dir)
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

static void fill(unsigned char *p, size_t n, unsigned seed)
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

static void write_plain(struct env *v, const char *rel, const char *data)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", v->root, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static void expect_content(const char *dir, const char *rel, const void *data,
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

static int commit_one(struct env *v, const char *rel, const void *data,
		      size_t len, const struct berth_commit_meta *m)
{
	struct berth_commit_file *f;
	int r = berth_commit_file_begin(v->c, rel, m, 0, &f);

	if (r)
		return r;
	berth_commit_file_write(f, data, len);
	return berth_commit_file_finish(f);
}

static int exists(const char *dir, const char *rel)
{
	char p[512];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return lstat(p, &st) == 0;
}

/* ---- tests ---- */

static void test_path_check(void **state)
{
	static const char *const bad[] = {
		"",   "/etc/passwd", "..",  "../x",  "a/../../x", "a//b",
		"a/", ".",	     "./a", "a/./b", "a/..",	  "/",
	};
	char longc[NAME_MAX + 2];
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(berth_commit_path_check(bad[i]), -BERTH_EPATH);
	memset(longc, 'x', sizeof(longc) - 1);
	longc[sizeof(longc) - 1] = '\0';
	assert_int_equal(berth_commit_path_check(longc), -BERTH_EPATH);
	longc[NAME_MAX] = '\0';
	assert_int_equal(berth_commit_path_check(longc), 0);
	assert_int_equal(berth_commit_path_check("a"), 0);
	assert_int_equal(berth_commit_path_check("a/b/c.txt"), 0);
	assert_int_equal(berth_commit_path_check("..a/b.."), 0);
	assert_int_equal(berth_commit_path_check(".hidden"), 0);
}

struct producer {
	struct env *v;
	int id;
	int nfiles;
	unsigned char *data;
};

#define SMALL_MAX (16 * 1024)

static void *produce_small(void *arg)
{
	struct producer *p = arg;
	struct berth_commit_meta m = {.mode = 0640,
				      .mtime_sec = 1600000000,
				      .mtime_nsec = 123456789,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	char rel[64];
	int i;

	for (i = 0; i < 4; i++) {
		snprintf(rel, sizeof(rel), "p%d_d%d", p->id, i);
		if (berth_commit_mkdir(p->v->c, rel, &m))
			return (void *)1;
	}
	for (i = 0; i < p->nfiles; i++) {
		size_t len = 1 + (size_t)(i * 7919) % SMALL_MAX;

		snprintf(rel, sizeof(rel), "p%d_d%d/f%d", p->id, i % 4, i);
		if (commit_one(p->v, rel, p->data + (i % 64), len, &m))
			return (void *)1;
	}
	return NULL;
}

static void small_files(int durability)
{
	struct berth_commit_opts o = {.durability = durability,
				      .tag_base = TAG_BASE,
				      .dir_cache = 3, /* force evictions */
				      /* small budgets: producers must wait */
				      .max_files = durability ? 8 : 0,
				      .max_ops = durability ? 2 : 0};
	struct berth_commit_stats st;
	struct producer pr[2];
	pthread_t th[2];
	unsigned char *data = malloc(SMALL_MAX + 64);
	struct env v;
	char rel[64], p[512];
	struct stat sb;
	void *ret;
	int i, t;

	fill(data, SMALL_MAX + 64, 7);
	if (env_start(&v, &o))
		skip();
	for (t = 0; t < 2; t++) {
		pr[t] = (struct producer){
			.v = &v, .id = t, .nfiles = 150, .data = data};
		assert_int_equal(
			pthread_create(&th[t], NULL, produce_small, &pr[t]), 0);
	}
	for (t = 0; t < 2; t++) {
		pthread_join(th[t], &ret);
		assert_null(ret);
	}
	assert_int_equal(berth_commit_flush(v.c), 0);
	berth_commit_stats(v.c, &st);
	assert_int_equal(st.files_done, 300);
	assert_int_equal(st.files_failed, 0);
	assert_int_equal(st.ops_done, 8);
	if (durability == BERTH_DURABLE_BATCH)
		assert_true(st.dir_fsyncs >= 8);
	else
		assert_int_equal(st.dir_fsyncs, 0);
	for (t = 0; t < 2; t++) {
		for (i = 0; i < 150; i++) {
			size_t len = 1 + (size_t)(i * 7919) % SMALL_MAX;

			snprintf(rel, sizeof(rel), "p%d_d%d/f%d", t, i % 4, i);
			expect_content(v.root, rel, data + (i % 64), len);
			snprintf(p, sizeof(p), "%s/%s", v.root, rel);
			assert_int_equal(stat(p, &sb), 0);
			assert_int_equal(sb.st_mode & 07777, 0640);
			assert_int_equal(sb.st_mtim.tv_sec, 1600000000);
			assert_int_equal(sb.st_mtim.tv_nsec, 123456789);
		}
	}
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
	free(data);
}

static void test_small_none(void **state)
{
	(void)state;
	small_files(BERTH_DURABLE_NONE);
}

static void test_small_file(void **state)
{
	(void)state;
	small_files(BERTH_DURABLE_FILE);
}

static void test_small_batch(void **state)
{
	(void)state;
	small_files(BERTH_DURABLE_BATCH);
}

static void large_file(int durability)
{
	/* 1 MiB budget of 64 KiB buffers: the producer must block. */
	struct berth_commit_opts o = {.durability = durability,
				      .tag_base = TAG_BASE,
				      .mem_budget = 1 << 20};
	struct berth_commit_meta m = {.mode = 0600,
				      .mtime_nsec = UTIME_OMIT,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	size_t len = 6 * 1024 * 1024 + 12345, off, n;
	unsigned char *data = malloc(len);
	struct berth_commit_file *f;
	struct env v;

	fill(data, len, 42);
	if (env_start(&v, &o))
		skip();
	assert_int_equal(berth_commit_file_begin(v.c, "big", &m, 0, &f), 0);
	/* Odd-sized pieces, as delta apply would hand them over. */
	for (off = 0; off < len; off += n) {
		n = len - off < 7777 ? len - off : 7777;
		assert_int_equal(berth_commit_file_write(f, data + off, n), 0);
	}
	assert_int_equal(berth_commit_file_finish(f), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	assert_int_equal(ev_err(&v, "big"), 0);
	expect_content(v.root, "big", data, len);
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
	free(data);
}

static void test_large_none(void **state)
{
	(void)state;
	large_file(BERTH_DURABLE_NONE);
}

static void test_large_file(void **state)
{
	(void)state;
	large_file(BERTH_DURABLE_FILE);
}

static void test_large_batch(void **state)
{
	(void)state;
	large_file(BERTH_DURABLE_BATCH);
}

/*
 * Commit "before", then "victim" (pre-existing with old content) with a
 * fault armed on its tag for @ops, then "after".  The victim keeps its old
 * content, no temp file remains, the others are committed.
 */
static void fault_case(int durability, uint32_t ops, uint64_t nth, int error)
{
	struct berth_commit_opts o = {.durability = durability,
				      .tag_base = TAG_BASE,
				      .buf_size = 16 * 1024};
	struct berth_commit_meta m = {.mode = 0644,
				      .mtime_nsec = UTIME_OMIT,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	/* 256 buffers: at least 16 write requests, however many buffers
	 * each vectored write takes (COMMIT_WRITE_IOV). */
	size_t len = 4096 * 1024;
	unsigned char *data = malloc(len);
	struct berth_commit_file *f;
	struct berth_fault fault = {0};
	struct berth_pump_stats ps;
	struct env v;

	fill(data, len, 3);
	if (env_start(&v, &o))
		skip();
	write_plain(&v, "victim", "old content");
	assert_int_equal(commit_one(&v, "before", data, 1000, &m), 0);
	/* Armed before begin (the open may be submitted at once): the
	 * victim is the stage's second item, so its tag is tag_base + 2. */
	fault.ops = ops;
	fault.tag = TAG_BASE + 2;
	fault.nth = nth;
	fault.error = error;
	assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
	assert_int_equal(berth_commit_file_begin(v.c, "victim", &m, 0, &f), 0);
	assert_int_equal(berth_commit_file_tag(f), TAG_BASE + 2);
	berth_commit_file_write(f, data, len); /* may see the error early */
	berth_commit_file_finish(f);
	assert_int_equal(commit_one(&v, "after", data, 2000, &m), 0);
	assert_int_equal(berth_commit_flush(v.c), -error);
	assert_int_equal(ev_err(&v, "victim"), -error);
	assert_int_equal(ev_err(&v, "before"), 0);
	assert_int_equal(ev_err(&v, "after"), 0);
	expect_content(v.root, "victim", "old content", 11);
	expect_content(v.root, "before", data, 1000);
	expect_content(v.root, "after", data, 2000);
	assert_int_equal(count_temps(v.root), 0);
	berth_pump_stats(v.pump, &ps);
	assert_true(ps.faults >= 1);
	env_stop(&v);
	free(data);
}

/*
 * Small files (one buffer) are one pool call: a fault on it fails the file
 * like any step, the old file stays and no temp file is left; files around
 * it are unaffected.
 */
static void test_small_call_fault(void **state)
{
	struct berth_commit_meta m = {.mode = 0600,
				      .mtime_sec = 1500000000,
				      .mtime_nsec = 5,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1,
				      .size_hint = 100};
	struct berth_fault fault = {.ops = BERTH_OP_BIT(BERTH_OP_CALL),
				    .tag = TAG_BASE + 2,
				    .nth = 1,
				    .error = ENOSPC};
	unsigned char data[100];
	struct stat st;
	char p[160];
	struct env v;

	(void)state;
	fill(data, sizeof(data), 9);
	if (env_start(&v, NULL))
		skip();
	write_plain(&v, "victim", "old content");
	assert_int_equal(commit_one(&v, "before", data, 100, &m), 0);
	assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
	assert_int_equal(commit_one(&v, "victim", data, 100, &m), 0);
	assert_int_equal(commit_one(&v, "after", data, 50, &m), 0);
	assert_int_equal(berth_commit_flush(v.c), -ENOSPC);
	assert_int_equal(ev_err(&v, "victim"), -ENOSPC);
	assert_int_equal(ev_err(&v, "after"), 0);
	expect_content(v.root, "victim", "old content", 11);
	expect_content(v.root, "before", data, 100);
	expect_content(v.root, "after", data, 50);
	snprintf(p, sizeof(p), "%s/after", v.root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_mtim.tv_sec, 1500000000);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

/* Small files begun and not ended hold nothing up: cancel completes
 * without their producer, whose later calls see the cancel. */
static void test_small_cancel_unended(void **state)
{
	struct berth_commit_file *f[3];
	struct env v;
	int i;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	for (i = 0; i < 3; i++) {
		assert_int_equal(berth_commit_file_begin(v.c, i ? "u" : "w",
							 NULL, 0, &f[i]),
				 0);
		assert_int_equal(berth_commit_file_write(f[i], "abc", 3), 0);
	}
	assert_int_equal(berth_commit_cancel(v.c), 0);
	assert_int_equal(berth_commit_file_write(f[0], "d", 1),
			 -BERTH_ECANCELLED);
	assert_int_equal(berth_commit_file_finish(f[0]), -BERTH_ECANCELLED);
	berth_commit_file_abort(f[1]);
	berth_commit_file_finish(f[2]);
	assert_int_equal(ev_err(&v, "u"), -BERTH_ECANCELLED);
	assert_int_equal(ev_err(&v, "w"), -BERTH_ECANCELLED);
	assert_int_equal(count_temps(v.root), 0);
	assert_false(exists(v.root, "u") || exists(v.root, "w"));
	env_stop(&v);
}

static void test_fault_enospc_write(void **state)
{
	(void)state;
	fault_case(BERTH_DURABLE_NONE, BERTH_OP_BIT(BERTH_OP_WRITE), 3, ENOSPC);
}

static void test_fault_eio_fsync(void **state)
{
	(void)state;
	fault_case(BERTH_DURABLE_FILE, BERTH_OP_BIT(BERTH_OP_FSYNC), 1, EIO);
	fault_case(BERTH_DURABLE_BATCH, BERTH_OP_BIT(BERTH_OP_FSYNC), 1, EIO);
}

static void test_fault_rename(void **state)
{
	(void)state;
	fault_case(BERTH_DURABLE_NONE, BERTH_OP_BIT(BERTH_OP_RENAMEAT2), 1,
		   EACCES);
	fault_case(BERTH_DURABLE_BATCH, BERTH_OP_BIT(BERTH_OP_RENAMEAT2), 1,
		   EDQUOT);
}

static void test_fault_open_and_meta(void **state)
{
	(void)state;
	fault_case(BERTH_DURABLE_NONE, BERTH_OP_BIT(BERTH_OP_OPENAT2), 1,
		   EACCES);
	fault_case(BERTH_DURABLE_NONE, BERTH_OP_BIT(BERTH_OP_FCHMODAT), 1, EIO);
}

static void test_fault_dirsync(void **state)
{
	struct berth_commit_opts o = {.durability = BERTH_DURABLE_BATCH,
				      .tag_base = TAG_BASE};
	struct berth_fault fault = {.ops = BERTH_OP_BIT(BERTH_OP_FSYNC),
				    .tag = TAG_BASE, /* the stage's own */
				    .nth = 1,
				    .error = EIO};
	struct env v;

	(void)state;
	if (env_start(&v, &o))
		skip();
	assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
	assert_int_equal(commit_one(&v, "x", "data", 4, NULL), 0);
	assert_int_equal(berth_commit_flush(v.c), -EIO);
	assert_int_equal(ev_err(&v, "x"), 0);
	assert_int_equal(ev_err(&v, "."), -EIO);
	/* The next flush has nothing dirty left. */
	assert_int_equal(berth_commit_flush(v.c), 0);
	env_stop(&v);
}

static void test_symlink_attacks(void **state)
{
	static const char *const bad[] = {
		"../escape", "/tmp/escape", "a/../../escape", "a//b", "", "a/"};
	struct berth_commit_file *f;
	struct env v;
	char p[512], q[512];
	unsigned i;
	int r;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(
			berth_commit_file_begin(v.c, bad[i], NULL, 0, &f),
			-BERTH_EPATH);
		assert_int_equal(berth_commit_mkdir(v.c, bad[i], NULL),
				 -BERTH_EPATH);
		assert_int_equal(berth_commit_delete(v.c, bad[i], 0, NULL),
				 -BERTH_EPATH);
		assert_int_equal(berth_commit_hardlink(v.c, "ok", bad[i], NULL),
				 -BERTH_EPATH);
	}

	/* A parent that is a symlink to the outside is never followed. */
	snprintf(p, sizeof(p), "%s/evil", v.root);
	assert_int_equal(symlink(v.out, p), 0);
	snprintf(q, sizeof(q), "%s/victim", v.out);
	write_plain(&v, "evil/victim", "outside"); /* through the link */
	/* finish may already know the error, or it comes by event only */
	r = commit_one(&v, "evil/x", "bad", 3, NULL);
	assert_true(r == 0 || r == -ELOOP);
	r = commit_one(&v, "evil/victim", "bad", 3, NULL);
	assert_true(r == 0 || r == -ELOOP);
	assert_int_equal(berth_commit_mkdir(v.c, "evil/sub", NULL), 0);
	assert_int_equal(berth_commit_symlink(v.c, "evil/l", "/", NULL), 0);
	assert_int_equal(berth_commit_delete(v.c, "evil/victim", 0, NULL), 0);
	assert_int_equal(berth_commit_hardlink(v.c, "h", "evil/victim", NULL),
			 0);
	assert_true(berth_commit_flush(v.c) < 0);
	assert_int_equal(ev_err(&v, "evil/x"), -ELOOP);
	assert_int_equal(ev_err(&v, "evil/victim"), -ELOOP);
	assert_int_equal(ev_err(&v, "evil/sub"), -ELOOP);
	assert_int_equal(ev_err(&v, "evil/l"), -ELOOP);
	assert_int_equal(ev_err(&v, "h"), -ELOOP);
	expect_content(v.out, "victim", "outside", 7);
	assert_false(exists(v.out, "x"));
	assert_false(exists(v.out, "sub"));
	assert_false(exists(v.out, "l"));
	assert_false(exists(v.root, "h"));
	assert_int_equal(count_temps(v.out), 0);

	/* A final name that is a symlink is replaced, not followed. */
	snprintf(p, sizeof(p), "%s/link", v.root);
	assert_int_equal(symlink(q, p), 0);
	assert_int_equal(commit_one(&v, "link", "new", 3, NULL), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	expect_content(v.out, "victim", "outside", 7);
	expect_content(v.root, "link", "new", 3);

	/* A cached parent swapped for a symlink afterwards: the write lands
	 * in the directory we opened, never outside. */
	assert_int_equal(berth_commit_mkdir(v.c, "d", NULL), 0);
	assert_int_equal(commit_one(&v, "d/a", "1", 1, NULL), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	snprintf(p, sizeof(p), "%s/d", v.root);
	snprintf(q, sizeof(q), "%s/d.old", v.root);
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(symlink(v.out, p), 0);
	assert_int_equal(commit_one(&v, "d/b", "2", 1, NULL), 0);
	berth_commit_flush(v.c);
	assert_false(exists(v.out, "b"));
	assert_int_equal(count_temps(v.out), 0);
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

static void test_ops(void **state)
{
	struct berth_commit_meta dm = {.mode = S_IFDIR | 0750,
				       .mtime_sec = 1500000000,
				       .mtime_nsec = 5,
				       .uid = (uint32_t)-1,
				       .gid = (uint32_t)-1};
	struct berth_commit_meta lm = {.mtime_sec = 1400000000,
				       .mtime_nsec = 7,
				       .uid = (uint32_t)-1,
				       .gid = (uint32_t)-1};
	struct berth_commit_meta fm = {.mode = S_IFIFO | 0604,
				       .mtime_nsec = UTIME_OMIT,
				       .uid = (uint32_t)-1,
				       .gid = (uint32_t)-1};
	struct env v;
	char p[512], buf[64];
	struct stat st;
	ssize_t n;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	assert_int_equal(berth_commit_mkdir(v.c, "a", &dm), 0);
	assert_int_equal(berth_commit_mkdir(v.c, "a", &dm), 0); /* exists */
	assert_int_equal(berth_commit_mkdir(v.c, "a/b", &dm), 0);
	assert_int_equal(commit_one(&v, "a/b/file", "hello", 5, NULL), 0);
	assert_int_equal(berth_commit_symlink(v.c, "a/sl", "b/file", &lm), 0);
	assert_int_equal(berth_commit_symlink(v.c, "a/sl", "b/other", &lm),
			 0); /* replaces */
	assert_int_equal(berth_commit_hardlink(v.c, "a/hl", "a/b/file", NULL),
			 0);
	assert_int_equal(berth_commit_hardlink(v.c, "a/hl", "a/b/file", NULL),
			 0); /* same inode again: no temp left */
	assert_int_equal(berth_commit_mknod(v.c, "a/fifo", &fm, 0), 0);
	assert_int_equal(berth_commit_mkdir(v.c, "gone", &dm), 0);
	assert_int_equal(commit_one(&v, "gone/f", "x", 1, NULL), 0);
	assert_int_equal(berth_commit_delete(v.c, "gone/f", 0, NULL), 0);
	assert_int_equal(berth_commit_delete(v.c, "gone", 1, NULL), 0);
	assert_int_equal(berth_commit_dir_meta(v.c, "a", &dm), 0);
	assert_int_equal(berth_commit_dir_meta(v.c, ".", &dm), 0); /* root */
	assert_int_equal(berth_commit_flush(v.c), 0);
	assert_int_equal(stat(v.root, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 1500000000);

	snprintf(p, sizeof(p), "%s/a", v.root);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_mtim.tv_sec, 1500000000);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
	snprintf(p, sizeof(p), "%s/a/sl", v.root);
	n = readlink(p, buf, sizeof(buf));
	assert_int_equal(n, 7);
	assert_memory_equal(buf, "b/other", 7);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mtim.tv_sec, 1400000000);
	expect_content(v.root, "a/hl", "hello", 5);
	snprintf(p, sizeof(p), "%s/a/hl", v.root);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_nlink, 2);
	snprintf(p, sizeof(p), "%s/a/fifo", v.root);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0604);
	assert_false(exists(v.root, "gone"));
	assert_int_equal(count_temps(v.root), 0);

	/* A NAME_MAX name: the temp name is shortened to fit. */
	memset(p, 'n', NAME_MAX);
	p[NAME_MAX] = '\0';
	assert_int_equal(commit_one(&v, p, "long", 4, NULL), 0);
	assert_int_equal(berth_commit_symlink(v.c, "a/b/x", p, &lm), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	expect_content(v.root, p, "long", 4);
	assert_int_equal(count_temps(v.root), 0);

	/* Failing operations report and leave nothing behind. */
	assert_int_equal(berth_commit_delete(v.c, "a", 1, NULL), 0);
	assert_int_equal(berth_commit_hardlink(v.c, "x", "nope", NULL), 0);
	assert_true(berth_commit_flush(v.c) < 0);
	assert_int_equal(ev_err(&v, "a"), -ENOTEMPTY);
	assert_int_equal(ev_err(&v, "x"), -ENOENT);
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

static void test_owner_and_devices(void **state)
{
	struct berth_commit_opts o = {.tag_base = TAG_BASE,
				      .preserve_owner = 1};
	struct berth_commit_meta m = {.mode = 0640,
				      .mtime_nsec = UTIME_OMIT,
				      .uid = 1234,
				      .gid = 4321};
	struct berth_commit_meta dev = {.mode = S_IFCHR | 0600,
					.mtime_nsec = UTIME_OMIT,
					.uid = 1234,
					.gid = 4321};
	struct berth_commit_stats st;
	struct env v;
	char p[512];
	struct stat sb;
	int root = geteuid() == 0;

	(void)state;
	if (env_start(&v, &o))
		skip();
	assert_int_equal(commit_one(&v, "owned", "x", 1, &m), 0);
	assert_int_equal(berth_commit_symlink(v.c, "lnk", "owned", &m), 0);
	assert_int_equal(berth_commit_mknod(v.c, "null", &dev, makedev(1, 3)),
			 0);
	assert_int_equal(berth_commit_mknod(v.c, "bad", &m, 0), -EINVAL);
	berth_commit_flush(v.c);
	berth_commit_stats(v.c, &st);
	snprintf(p, sizeof(p), "%s/owned", v.root);
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);
	if (root) {
		assert_int_equal(ev_err(&v, "null"), 0);
		assert_int_equal(sb.st_uid, 1234);
		assert_int_equal(sb.st_gid, 4321);
		snprintf(p, sizeof(p), "%s/lnk", v.root);
		assert_int_equal(lstat(p, &sb), 0);
		assert_int_equal(sb.st_uid, 1234);
		snprintf(p, sizeof(p), "%s/null", v.root);
		assert_int_equal(lstat(p, &sb), 0);
		assert_true(S_ISCHR(sb.st_mode));
		assert_int_equal(sb.st_rdev, makedev(1, 3));
		assert_int_equal(sb.st_uid, 1234);
	} else {
		/* Not permitted: ignored for files, counted. */
		assert_int_equal(ev_err(&v, "owned"), 0);
		assert_true(st.chown_ignored >= 1);
	}
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

/* set_meta on an existing entry: applied to files, never through links. */
static void test_set_meta(void **state)
{
	struct berth_commit_meta m = {.mode = 0604,
				      .mtime_sec = 1300000000,
				      .mtime_nsec = 11,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	struct env v;
	char p[512];
	struct stat sb;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	write_plain(&v, "plain", "x");
	snprintf(p, sizeof(p), "%s/target", v.out);
	assert_int_equal(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	snprintf(p, sizeof(p), "%s/lnk", v.root);
	snprintf(p + 256, 256, "%s/target", v.out);
	assert_int_equal(symlink(p + 256, p), 0);
	assert_int_equal(berth_commit_set_meta(v.c, "plain", &m), 0);
	assert_int_equal(berth_commit_set_meta(v.c, "lnk", &m), 0);
	assert_true(berth_commit_flush(v.c) < 0);
	assert_int_equal(ev_err(&v, "plain"), 0);
	assert_true(ev_err(&v, "lnk") < 0);
	snprintf(p, sizeof(p), "%s/plain", v.root);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0604);
	assert_int_equal(sb.st_mtim.tv_nsec, 11);
	snprintf(p, sizeof(p), "%s/target", v.out);
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600); /* not followed */
	assert_true(sb.st_mtim.tv_sec != 1300000000);
	env_stop(&v);
}

/* A cached directory that is deleted and re-created is not reused. */
static void test_dir_recreate(void **state)
{
	struct env v;
	char p[512];
	int r;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	assert_int_equal(berth_commit_mkdir(v.c, "x", NULL), 0);
	assert_int_equal(berth_commit_mkdir(v.c, "x/y", NULL), 0);
	assert_int_equal(commit_one(&v, "x/y/f1", "1", 1, NULL), 0);
	assert_int_equal(berth_commit_delete(v.c, "x/y/f1", 0, NULL), 0);
	assert_int_equal(berth_commit_delete(v.c, "x/y", 1, NULL), 0);
	assert_int_equal(berth_commit_delete(v.c, "x", 1, NULL), 0);
	assert_int_equal(berth_commit_mkdir(v.c, "x", NULL), 0);
	assert_int_equal(berth_commit_mkdir(v.c, "x/y", NULL), 0);
	assert_int_equal(commit_one(&v, "x/y/f2", "2", 1, NULL), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	expect_content(v.root, "x/y/f2", "2", 1);
	assert_false(exists(v.root, "x/y/f1"));
	/* Removed behind the stage's back: the error is reported, nothing
	 * is written into the unlinked directory silently. */
	snprintf(p, sizeof(p), "rm -rf '%s/x'", v.root);
	assert_int_equal(system(p), 0);
	r = commit_one(&v, "x/y/f3", "3", 1, NULL);
	assert_true(r == 0 || r == -ENOENT); /* may know it already */
	assert_true(berth_commit_flush(v.c) < 0);
	assert_int_equal(ev_err(&v, "x/y/f3"), -ENOENT);
	env_stop(&v);
}

/* A wanted-xattrs blob: @n names and values (NULL: keep). */
static struct berth_commit_xattrs *xa_new(bool user_only, int n,
					  const char *const *names,
					  const char *const *values)
{
	size_t sz = sizeof(struct berth_commit_xattrs) +
		    (size_t)n * sizeof(struct berth_commit_xattr);
	struct berth_commit_xattrs *x = calloc(1, sz);

	assert_non_null(x);
	x->count = (uint32_t)n;
	x->user_only = user_only;
	for (int i = 0; i < n; i++) {
		x->items[i].name = names[i];
		x->items[i].value = values[i];
		x->items[i].len = values[i] ? (uint32_t)strlen(values[i]) : 0;
	}
	return x;
}

static int xa_get(const char *dir, const char *rel, const char *name, char *buf,
		  size_t cap)
{
	char p[512];
	ssize_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	n = lgetxattr(p, name, buf, cap - 1);
	if (n >= 0)
		buf[n] = '\0';
	return (int)n;
}

static int xattr_events(struct env *v, const char *path)
{
	int n = 0;

	pthread_mutex_lock(&v->lock);
	for (unsigned i = 0; i < v->nev; i++)
		n += v->ev[i].kind == BERTH_COMMIT_EV_XATTR &&
		     !strcmp(v->ev[i].path, path);
	pthread_mutex_unlock(&v->lock);
	return n;
}

/* Extended attributes on temp files, nodes and existing items (-X). */
static void test_xattrs(void **state)
{
	static char big[201];
	const char *n1[] = {"user.a", "user.long"};
	const char *v1[] = {"1", big};
	const char *n2[] = {"user.a", "user.keep"};
	const char *v2[] = {"2", NULL};
	const char *n3[] = {"user.x"};
	const char *v3[] = {"x"};
	const char *n4[] = {"trusted.t"};
	const char *v4[] = {"t"};
	struct berth_commit_meta m = {.mode = 0444,
				      .mtime_nsec = UTIME_OMIT,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	struct env v;
	char p[512], buf[256];

	(void)state;
	if (env_start(&v, NULL))
		skip();
	snprintf(p, sizeof(p), "%s", v.root);
	if (setxattr(p, "user.probe", "1", 1, 0) < 0) {
		env_stop(&v);
		skip(); /* no user xattrs on /tmp */
	}
	removexattr(p, "user.probe");
	memset(big, 'L', 200);

	/* A new file: set on the temp file, before its read-only mode. */
	m.xattrs = xa_new(true, 2, n1, v1);
	assert_int_equal(commit_one(&v, "f", "data", 4, &m), 0);
	/* An existing one: one set, one kept, the rest removed. */
	write_plain(&v, "ex", "x");
	snprintf(p, sizeof(p), "%s/ex", v.root);
	assert_int_equal(setxattr(p, "user.old", "o", 1, 0), 0);
	assert_int_equal(setxattr(p, "user.keep", "k", 1, 0), 0);
	assert_int_equal(setxattr(p, "user.a", "0", 1, 0), 0);
	assert_int_equal(berth_commit_set_xattrs(v.c, "ex",
						 xa_new(true, 2, n2, v2), NULL),
			 0);
	/* The root, and an item that is not there. */
	assert_int_equal(berth_commit_set_xattrs(v.c, ".",
						 xa_new(true, 1, n3, v3), NULL),
			 0);
	assert_int_equal(berth_commit_set_xattrs(v.c, "missing",
						 xa_new(true, 1, n3, v3), NULL),
			 0);
	/* A symlink: Linux refuses user.* there (reported, link made). */
	m.mode = 0777;
	m.xattrs = xa_new(true, 1, n3, v3);
	assert_int_equal(berth_commit_symlink(v.c, "l", "f", &m), 0);
	if (geteuid() == 0) {
		m.xattrs = xa_new(false, 1, n4, v4);
		assert_int_equal(berth_commit_symlink(v.c, "lt", "f", &m), 0);
	}
	assert_true(berth_commit_flush(v.c) < 0); /* "missing" */

	assert_int_equal(ev_err(&v, "f"), 0);
	expect_content(v.root, "f", "data", 4);
	assert_int_equal(xa_get(v.root, "f", "user.a", buf, sizeof(buf)), 1);
	assert_int_equal(xa_get(v.root, "f", "user.long", buf, sizeof(buf)),
			 200);
	assert_memory_equal(buf, big, 200);
	snprintf(p, sizeof(p), "%s/f", v.root);
	assert_int_equal(listxattr(p, buf, sizeof(buf)), 17);
	assert_int_equal(xa_get(v.root, "ex", "user.a", buf, sizeof(buf)), 1);
	assert_string_equal(buf, "2");
	assert_int_equal(xa_get(v.root, "ex", "user.keep", buf, sizeof(buf)),
			 1);
	assert_string_equal(buf, "k");
	assert_int_equal(xa_get(v.root, "ex", "user.old", buf, sizeof(buf)),
			 -1);
	assert_int_equal(xa_get(v.root, ".", "user.x", buf, sizeof(buf)), 1);
	assert_true(ev_err(&v, "missing") < 0);
	assert_int_equal(ev_err(&v, "l"), 0);
	assert_int_equal(xattr_events(&v, "l"), 1);
	assert_int_equal(xattr_events(&v, "f"), 0);
	if (geteuid() == 0) {
		assert_int_equal(ev_err(&v, "lt"), 0);
		assert_int_equal(
			xa_get(v.root, "lt", "trusted.t", buf, sizeof(buf)), 1);
		/* not the target's */
		assert_int_equal(getxattr(p, "trusted.t", buf, sizeof(buf)),
				 -1);
	}
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

static void test_inplace(void **state)
{
	struct berth_commit_file *f;
	struct env v;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	write_plain(&v, "ip", "AAAAAAAAAA");
	assert_int_equal(berth_commit_file_begin(v.c, "ip", NULL,
						 BERTH_COMMIT_INPLACE, &f),
			 0);
	assert_int_equal(berth_commit_file_skip(f, 4), 0);
	assert_int_equal(berth_commit_file_write(f, "BB", 2), 0);
	assert_int_equal(berth_commit_file_finish(f), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	expect_content(v.root, "ip", "AAAABB", 6);
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

/* The finish tests' session: backups as NAME~; their files' attributes. */
static const struct berth_commit_opts finish_opts = {.tag_base = TAG_BASE,
						     .backup_suffix = "~"};
static const struct berth_commit_meta finish_meta = {.mode = 0640,
						     .mtime_sec = 1000000000,
						     .mtime_nsec = 0,
						     .uid = (uint32_t)-1,
						     .gid = (uint32_t)-1};

/*
 * finish_flags (--partial keeping a file that failed verification or was
 * cut short): NO_TIMES leaves the mtime as the writes made it, ZERO_TIME
 * sets the epoch; the mode and the backup of the old file are as for a
 * plain finish.  Small files (one pool call) and large ones (the request
 * chain) alike.
 */
static void test_finish_flags(void **state)
{
	struct berth_commit_opts o = finish_opts;
	struct berth_commit_meta m = finish_meta;
	static const char *const names[2] = {"small", "large"};
	const size_t lens[2] = {3, 300000};
	struct berth_commit_file *f;
	struct stat st;
	char p[160], bak[64];
	unsigned char *data = malloc(lens[1]);
	struct env v;
	int i;

	(void)state;
	if (env_start(&v, &o)) {
		free(data);
		skip();
	}
	memset(data, 'k', lens[1]);
	for (i = 0; i < 4; i++) {
		const char *name = names[i % 2];

		write_plain(&v, name, "old");
		m.size_hint = lens[i % 2];
		assert_int_equal(berth_commit_file_begin(v.c, name, &m, 0, &f),
				 0);
		assert_int_equal(berth_commit_file_write(f, data, lens[i % 2]),
				 0);
		assert_int_equal(berth_commit_file_finish_flags(
					 f,
					 i < 2 ? BERTH_COMMIT_NO_TIMES
					       : BERTH_COMMIT_ZERO_TIME,
					 NULL),
				 0);
		assert_int_equal(berth_commit_flush(v.c), 0);
		expect_content(v.root, name, data, lens[i % 2]);
		snprintf(bak, sizeof(bak), "%s~", name);
		expect_content(v.root, bak, "old", 3);
		snprintf(p, sizeof(p), "%s/%s", v.root, name);
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_mode & 07777, 0640);
		if (i < 2)
			assert_true(st.st_mtime > 1000000000);
		else
			assert_int_equal(st.st_mtime, 0);
	}
	free(data);
	env_stop(&v);
}

/*
 * finish_sub into a partial dir (created 0700; no mtime with NO_TIMES; an
 * existing file there replaced), then rename into place with a backup of
 * the old file (--partial-dir, --delay-updates).
 */
static void test_finish_sub_rename(void **state)
{
	struct berth_commit_opts o = finish_opts;
	struct berth_commit_meta m = finish_meta;
	struct berth_commit_file *f;
	struct stat st;
	char p[160];
	struct env v;

	(void)state;
	if (env_start(&v, &o))
		skip();
	assert_int_equal(berth_commit_mkdir(v.c, "d", NULL), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	write_plain(&v, "d/x", "old");
	/* Kept as partial: no times, final name untouched. */
	assert_int_equal(berth_commit_file_begin(v.c, "d/x", &m, 0, &f), 0);
	assert_int_equal(berth_commit_file_write(f, "par", 3), 0);
	assert_int_equal(berth_commit_file_finish_sub(
				 f, ".part", BERTH_COMMIT_NO_TIMES, NULL),
			 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	expect_content(v.root, "d/x", "old", 3);
	expect_content(v.root, "d/.part/x", "par", 3);
	snprintf(p, sizeof(p), "%s/d/.part", v.root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(p, sizeof(p), "%s/d/.part/x", v.root);
	assert_int_equal(stat(p, &st), 0);
	assert_int_not_equal(st.st_mtime, 1000000000);
	/* Delayed: replaces the partial, with times; then into place. */
	assert_int_equal(berth_commit_file_begin(v.c, "d/x", &m, 0, &f), 0);
	assert_int_equal(berth_commit_file_write(f, "newer", 5), 0);
	assert_int_equal(berth_commit_file_finish_sub(f, ".part", 0, NULL), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mtime, 1000000000);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(berth_commit_rename(v.c, "d/.part/x", "d/x", NULL), 0);
	assert_int_equal(berth_commit_delete(v.c, "d/.part", 1, NULL), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	expect_content(v.root, "d/x", "newer", 5);
	expect_content(v.root, "d/x~", "old", 3);
	assert_int_not_equal(access(p, F_OK), 0);
	/* Bad sub names are refused and release the handle. */
	assert_int_equal(berth_commit_file_begin(v.c, "y", &m, 0, &f), 0);
	assert_int_equal(berth_commit_file_finish_sub(f, "a/b", 0, NULL),
			 -EINVAL);
	assert_int_equal(berth_commit_file_begin(v.c, "y", &m, 0, &f), 0);
	assert_int_equal(berth_commit_file_finish_sub(f, "..", 0, NULL),
			 -BERTH_EPATH);
	/* Released as by abort: their events say cancelled. */
	assert_int_equal(berth_commit_flush(v.c), -BERTH_ECANCELLED);
	assert_int_equal(ev_err(&v, "y"), -BERTH_ECANCELLED);
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

static void test_try_write(void **state)
{
	/* Two 4 KiB buffers: the third must not fit without waiting. */
	struct berth_commit_opts o = {
		.tag_base = TAG_BASE, .buf_size = 4096, .mem_budget = 8192};
	struct berth_commit_file *f, *g, *h;
	unsigned char *data = calloc(1, 3 * 4096);
	struct env v;
	ssize_t n;

	(void)state;
	if (env_start(&v, &o))
		skip();
	/* Both buffers held as partial buffers by f and g: nothing left
	 * for h, deterministically. */
	assert_int_equal(berth_commit_file_begin(v.c, "f", NULL, 0, &f), 0);
	assert_int_equal(berth_commit_file_begin(v.c, "g", NULL, 0, &g), 0);
	assert_int_equal(berth_commit_file_begin(v.c, "h", NULL, 0, &h), 0);
	assert_int_equal(berth_commit_file_try_write(f, data, 100), 100);
	assert_int_equal(berth_commit_file_try_write(g, data, 100), 100);
	assert_int_equal(berth_commit_file_try_write(h, data, 100), -EAGAIN);
	/* f's buffer still has room for 3996 bytes. */
	n = berth_commit_file_try_write(f, data, 3 * 4096);
	assert_true(n >= 3996 && n <= 3 * 4096);
	assert_int_equal(berth_commit_file_finish(g), 0);
	assert_int_equal(berth_commit_file_write(h, data, 4096), 0);
	assert_int_equal(berth_commit_file_finish(h), 0);
	assert_int_equal(berth_commit_file_finish(f), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	expect_content(v.root, "h", data, 4096);
	assert_int_equal(ev_err(&v, "f"), 0);
	env_stop(&v);
	free(data);
}

/* Free with handles never finished: their temp files are removed. */
static void test_free_unfinished(void **state)
{
	struct berth_commit_file *f;
	struct env v;
	int i;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	for (i = 0; i < 3; i++) {
		assert_int_equal(berth_commit_file_begin(v.c, i ? "u" : "done",
							 NULL, 0, &f),
				 0);
		assert_int_equal(berth_commit_file_write(f, "abc", 3), 0);
		if (!i)
			assert_int_equal(berth_commit_file_finish(f), 0);
	}
	berth_commit_free(v.c);
	v.c = NULL;
	assert_int_equal(ev_err(&v, "u"), -BERTH_ECANCELLED);
	expect_content(v.root, "done", "abc", 3);
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v); /* berth_commit_free(NULL) is a no-op */
}

static void test_abort(void **state)
{
	struct berth_commit_file *f;
	struct env v;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	write_plain(&v, "keep", "old");
	assert_int_equal(berth_commit_file_begin(v.c, "keep", NULL, 0, &f), 0);
	assert_int_equal(berth_commit_file_write(f, "newer", 5), 0);
	berth_commit_file_abort(f);
	assert_int_equal(berth_commit_file_begin(v.c, "fresh", NULL, 0, &f), 0);
	berth_commit_file_abort(f);
	assert_int_equal(berth_commit_flush(v.c), -BERTH_ECANCELLED);
	assert_int_equal(ev_err(&v, "keep"), -BERTH_ECANCELLED);
	expect_content(v.root, "keep", "old", 3);
	assert_false(exists(v.root, "fresh"));
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

static void test_cancel_inflight(void **state)
{
	/* 4096 buffers of 4 KiB: hundreds of writes in flight. */
	struct berth_commit_opts o = {
		.tag_base = TAG_BASE, .buf_size = 4096, .mem_budget = 16 << 20};
	struct berth_commit_file *f[8];
	struct berth_commit_stats st;
	struct berth_pump_stats ps;
	size_t len = 1 << 20;
	unsigned char *data = malloc(len);
	struct env v;
	char rel[32];
	int i, j;

	(void)state;
	fill(data, len, 9);
	if (env_start(&v, &o))
		skip();
	assert_int_equal(berth_commit_mkdir(v.c, "sub", NULL), 0);
	for (i = 0; i < 8; i++) {
		snprintf(rel, sizeof(rel), "sub/c%d", i);
		assert_int_equal(
			berth_commit_file_begin(v.c, rel, NULL, 0, &f[i]), 0);
	}
	for (j = 0; j < 4; j++)
		for (i = 0; i < 8; i++)
			assert_int_equal(
				berth_commit_file_write(
					f[i], data + j * (len / 4), len / 4),
				0);
	/* Some finished, some not, when the cancel comes. */
	for (i = 0; i < 4; i++)
		assert_int_equal(berth_commit_file_finish(f[i]), 0);
	berth_pump_stats(v.pump, &ps);
	assert_int_equal(berth_commit_cancel(v.c), 0);
	print_message("cancel: %llu pump requests in flight at cancel\n",
		      (unsigned long long)ps.in_flight);
	assert_int_equal(count_temps(v.root), 0);
	for (i = 0; i < 8; i++) {
		snprintf(rel, sizeof(rel), "sub/c%d", i);
		assert_false(exists(v.root, rel) && ev_err(&v, rel) != 0);
	}
	/* After cancel: calls fail, handles are still released. */
	assert_int_equal(berth_commit_file_write(f[5], data, 10),
			 -BERTH_ECANCELLED);
	assert_int_equal(berth_commit_file_finish(f[4]), -BERTH_ECANCELLED);
	for (i = 5; i < 8; i++)
		berth_commit_file_abort(f[i]);
	assert_int_equal(berth_commit_mkdir(v.c, "late", NULL),
			 -BERTH_ECANCELLED);
	assert_int_equal(berth_commit_file_begin(v.c, "late", NULL, 0, &f[0]),
			 -BERTH_ECANCELLED);
	assert_int_equal(berth_commit_cancel(v.c), 0); /* idempotent */
	berth_commit_stats(v.c, &st);
	assert_int_equal(st.files_done + st.files_failed, 8);
	env_stop(&v);
	free(data);
}

struct cancel_prod {
	struct env *v;
	unsigned char *data;
	int last_err;
};

/* Writes 1 MiB files until the stage refuses. */
static void *produce_until_cancel(void *arg)
{
	struct cancel_prod *p = arg;
	struct berth_commit_file *f;
	char rel[32];
	int i, j, r = 0;

	for (i = 0; !r && i < 100000; i++) {
		snprintf(rel, sizeof(rel), "k%d", i % 16);
		r = berth_commit_file_begin(p->v->c, rel, NULL, 0, &f);
		if (r)
			break;
		for (j = 0; !r && j < 256; j++)
			r = berth_commit_file_write(f, p->data, 4096);
		if (r)
			berth_commit_file_abort(f);
		else
			r = berth_commit_file_finish(f);
	}
	p->last_err = r;
	return NULL;
}

/* Cancel from another thread while the producer is blocked on the budget. */
static void test_cancel_concurrent(void **state)
{
	struct berth_commit_opts o = {.tag_base = TAG_BASE,
				      .buf_size = 4096,
				      .mem_budget = 2 << 20,
				      .durability = BERTH_DURABLE_BATCH};
	struct berth_commit_stats st;
	struct berth_pump_stats ps;
	struct cancel_prod p;
	struct env v;
	pthread_t th;

	(void)state;
	if (env_start(&v, &o))
		skip();
	p.v = &v;
	p.data = calloc(1, 4096);
	p.last_err = 0;
	assert_int_equal(pthread_create(&th, NULL, produce_until_cancel, &p),
			 0);
	do { /* wait for some progress (not a timed assertion) */
		usleep(1000);
		berth_commit_stats(v.c, &st);
	} while (st.bytes < (8u << 20));
	berth_pump_stats(v.pump, &ps);
	assert_int_equal(berth_commit_cancel(v.c), 0);
	pthread_join(th, NULL);
	print_message("cancel: %llu pump requests in flight at cancel\n",
		      (unsigned long long)ps.in_flight);
	assert_int_equal(p.last_err, -BERTH_ECANCELLED);
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
	free(p.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_check),
		cmocka_unit_test(test_small_none),
		cmocka_unit_test(test_small_file),
		cmocka_unit_test(test_small_batch),
		cmocka_unit_test(test_large_none),
		cmocka_unit_test(test_large_file),
		cmocka_unit_test(test_large_batch),
		cmocka_unit_test(test_small_call_fault),
		cmocka_unit_test(test_small_cancel_unended),
		cmocka_unit_test(test_fault_enospc_write),
		cmocka_unit_test(test_fault_eio_fsync),
		cmocka_unit_test(test_fault_rename),
		cmocka_unit_test(test_fault_open_and_meta),
		cmocka_unit_test(test_fault_dirsync),
		cmocka_unit_test(test_symlink_attacks),
		cmocka_unit_test(test_ops),
		cmocka_unit_test(test_owner_and_devices),
		cmocka_unit_test(test_set_meta),
		cmocka_unit_test(test_dir_recreate),
		cmocka_unit_test(test_inplace),
		cmocka_unit_test(test_finish_flags),
		cmocka_unit_test(test_finish_sub_rename),
		cmocka_unit_test(test_xattrs),
		cmocka_unit_test(test_try_write),
		cmocka_unit_test(test_free_unfinished),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_cancel_inflight),
		cmocka_unit_test(test_cancel_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
