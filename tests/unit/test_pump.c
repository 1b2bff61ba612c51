/* SPDX-License-Identifier: MIT */
/*
 * Pump tests.  CTest runs this file once per backend (BERTH_PUMP=uring and
 * BERTH_PUMP=pool); each test checks that the backend it got is the one the
 * environment asked for.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <cmocka.h>

#include "engine/pump/pump.h"

/* Counts callbacks; the test thread waits for a number of them. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long done;
};

struct tracked {
	struct berth_req req;
	struct waiter *w;
	atomic_int calls;
	ssize_t res;
	int on_pump_thread;
	struct berth_pump *pump;
};

static void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->done = 0;
}

static void waiter_wait(struct waiter *w, unsigned long n)
{
	pthread_mutex_lock(&w->lock);
	while (w->done < n)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

static unsigned long waiter_count(struct waiter *w)
{
	unsigned long n;

	pthread_mutex_lock(&w->lock);
	n = w->done;
	pthread_mutex_unlock(&w->lock);
	return n;
}

static void tracked_cb(struct berth_req *req, ssize_t res)
{
	struct tracked *t = (struct tracked *)req->data;

	t->res = res;
	t->on_pump_thread = berth_pump_on_thread(t->pump);
	atomic_fetch_add(&t->calls, 1);
	pthread_mutex_lock(&t->w->lock);
	t->w->done++;
	pthread_cond_broadcast(&t->w->cond);
	pthread_mutex_unlock(&t->w->lock);
}

static void track(struct tracked *t, struct berth_pump *pump, struct waiter *w,
		  uint64_t tag)
{
	t->w = w;
	t->pump = pump;
	t->res = 0x7fff;
	atomic_store(&t->calls, 0);
	berth_req_set_cb(&t->req, tracked_cb, t, tag);
}

static int expected_backend(void)
{
	const char *env = getenv("BERTH_PUMP");

	if (env && !strcmp(env, "pool"))
		return BERTH_PUMP_POOL;
	if (env && !strcmp(env, "uring"))
		return BERTH_PUMP_URING;
	return BERTH_PUMP_AUTO;
}

static struct berth_pump *pump_new(void)
{
	struct berth_pump *pump = NULL;
	int want = expected_backend();

	assert_int_equal(berth_pump_create(NULL, &pump), 0);
	if (want)
		assert_int_equal(berth_pump_backend(pump), want);
	assert_non_null(berth_pump_backend_reason(pump));
	return pump;
}

/* Shut down and check that every accepted request completed once. */
static void pump_done(struct berth_pump *pump)
{
	struct berth_pump_stats st;

	assert_int_equal(berth_pump_shutdown(pump), 0);
	berth_pump_stats(pump, &st);
	assert_int_equal(st.submitted, st.completed);
	assert_int_equal(st.in_flight, 0);
	berth_pump_free(pump);
}

static int tmp_file(const char *content, size_t len)
{
	char name[] = "/tmp/berth-pump-XXXXXX";
	int fd = mkstemp(name);

	assert_true(fd >= 0);
	unlink(name);
	if (len)
		assert_int_equal(pwrite(fd, content, len, 0), (ssize_t)len);
	return fd;
}

/* ---- dispatch and batching ---- */

#define MT_THREADS 4
#define MT_PER_THREAD 2500

struct mt_arg {
	struct berth_pump *pump;
	struct waiter *w;
	struct tracked *t;
	char (*bufs)[8];
	int fd;
};

/* Half no-ops, half 8-byte reads, all submitted from one thread. */
static void *mt_submitter(void *arg)
{
	struct mt_arg *a = arg;
	int i;

	for (i = 0; i < MT_PER_THREAD; i++) {
		struct tracked *t = &a->t[i];

		if (i % 2)
			berth_prep_read(&t->req, a->fd, a->bufs[i], 8,
					(uint64_t)(i % 64) * 8);
		else
			berth_prep_nop(&t->req);
		track(t, a->pump, a->w, 1);
		if (berth_pump_submit(a->pump, &t->req) != 0)
			abort();
	}
	return NULL;
}

static void test_many_from_threads(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct tracked t[MT_THREADS][MT_PER_THREAD];
	static char bufs[MT_THREADS][MT_PER_THREAD][8];
	struct mt_arg args[MT_THREADS];
	pthread_t th[MT_THREADS];
	struct waiter w;
	char data[512];
	int fd, i, j;

	(void)state;
	memset(data, 'x', sizeof(data));
	fd = tmp_file(data, sizeof(data));
	waiter_init(&w);
	for (i = 0; i < MT_THREADS; i++) {
		args[i] = (struct mt_arg){pump, &w, t[i], bufs[i], fd};
		assert_int_equal(
			pthread_create(&th[i], NULL, mt_submitter, &args[i]),
			0);
	}
	for (i = 0; i < MT_THREADS; i++)
		pthread_join(th[i], NULL);
	waiter_wait(&w, MT_THREADS * MT_PER_THREAD);
	for (i = 0; i < MT_THREADS; i++) {
		for (j = 0; j < MT_PER_THREAD; j++) {
			assert_int_equal(atomic_load(&t[i][j].calls), 1);
			assert_true(t[i][j].on_pump_thread);
			assert_int_equal(t[i][j].res, j % 2 ? 8 : 0);
			if (j % 2)
				assert_memory_equal(bufs[i][j], "xxxxxxxx", 8);
		}
	}
	close(fd);
	pump_done(pump);
}

/* ---- reads, writes, short transfers, EOF ---- */

static void test_read_eof_and_vectors(void **state)
{
	struct berth_pump *pump = pump_new();
	struct tracked t;
	struct waiter w;
	char data[10000], a[4096], b[8192];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	int fd, i;

	(void)state;
	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (char)(i * 7);
	fd = tmp_file(data, sizeof(data));
	waiter_init(&w);

	/* A vectored read across EOF gets exactly what the file holds. */
	berth_prep_readv(&t.req, fd, iov, 2, 0);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 1);
	assert_int_equal(t.res, 10000);
	assert_memory_equal(a, data, sizeof(a));
	assert_memory_equal(b, data + sizeof(a), 10000 - sizeof(a));

	/* At EOF: 0. */
	berth_prep_read(&t.req, fd, a, sizeof(a), 20000);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 2);
	assert_int_equal(t.res, 0);
	close(fd);
	pump_done(pump);
}

static void test_short_io_is_continued(void **state)
{
	struct berth_pump *pump = pump_new();
	struct berth_fault f = {0};
	struct berth_pump_stats st;
	struct tracked t;
	struct waiter w;
	static char src[3 * 65536 + 17], back[sizeof(src)];
	struct iovec iov[3] = {
		{src, 65536},
		{src + 65536, 65536 + 17},
		{src + 2 * 65536 + 17, 65536},
	};
	int fd, i;

	(void)state;
	for (i = 0; i < (int)sizeof(src); i++)
		src[i] = (char)(i ^ (i >> 9));
	fd = tmp_file(NULL, 0);
	waiter_init(&w);

	/* Every write attempt moves at most 1000 bytes. */
	f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
	f.nth = 1;
	f.count = 1;
	f.short_bytes = 1000;
	assert_int_equal(berth_pump_inject(pump, &f), 0);
	berth_prep_writev(&t.req, fd, iov, 3, 4096);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 1);
	assert_int_equal(t.res, (ssize_t)sizeof(src));
	assert_int_equal(pread(fd, back, sizeof(back), 4096),
			 (ssize_t)sizeof(back));
	assert_memory_equal(back, src, sizeof(src));

	/* Short reads: the 1st read attempt is cut to 3 bytes. */
	berth_pump_clear_faults(pump);
	f.ops = BERTH_OP_BIT(BERTH_OP_READ);
	f.short_bytes = 3;
	assert_int_equal(berth_pump_inject(pump, &f), 0);
	memset(back, 0, sizeof(back));
	berth_prep_read(&t.req, fd, back, sizeof(back), 4096);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 2);
	assert_int_equal(t.res, (ssize_t)sizeof(src));
	assert_memory_equal(back, src, sizeof(src));

	berth_pump_stats(pump, &st);
	assert_true(st.resubmits >= 2);
	assert_int_equal(st.faults, 2);
	close(fd);
	pump_done(pump);
}

/* ---- errors come back as -errno ---- */

static void test_errors(void **state)
{
	struct berth_pump *pump = pump_new();
	struct open_how how = {.flags = O_RDONLY, .resolve = RESOLVE_BENEATH};
	struct tracked t;
	struct waiter w;
	char buf[16];

	(void)state;
	waiter_init(&w);
	berth_prep_read(&t.req, 999, buf, sizeof(buf), 0);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 1);
	assert_int_equal(t.res, -EBADF);

	berth_prep_openat2(&t.req, AT_FDCWD, "/nonexistent/berth", &how);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 2);
	/* RESOLVE_BENEATH refuses an absolute path before looking. */
	assert_int_equal(t.res, -EXDEV);

	/* A malformed request is refused without a callback. */
	berth_prep_readv(&t.req, 0, NULL, 0, 0);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), -EINVAL);
	pump_done(pump);
	assert_int_equal(atomic_load(&t.calls), 0);
}

/* ---- every operation, through the pump ---- */

static ssize_t run1_tag(struct berth_pump *pump, struct waiter *w,
			struct tracked *t, uint64_t tag)
{
	unsigned long before = waiter_count(w);

	track(t, pump, w, tag);
	assert_int_equal(berth_pump_submit(pump, &t->req), 0);
	waiter_wait(w, before + 1);
	assert_int_equal(atomic_load(&t->calls), 1);
	return t->res;
}

static ssize_t run1(struct berth_pump *pump, struct waiter *w,
		    struct tracked *t)
{
	return run1_tag(pump, w, t, 0);
}

/* BERTH_OP_CALL: runs on a pool thread; its result is the callback's. */
static ssize_t call_fn(void *arg)
{
	int *ran = arg;

	if (!ran)
		return -ENOENT;
	*ran = 1;
	return 42;
}

static void test_all_ops(void **state)
{
	int call_ran;
	struct berth_pump *pump = pump_new();
	char dir[] = "/tmp/berth-ops-XXXXXX";
	struct open_how how = {.flags = O_RDWR | O_CREAT | O_EXCL,
			       .mode = 0600,
			       .resolve = RESOLVE_BENEATH |
					  RESOLVE_NO_MAGICLINKS};
	struct timespec ts[2] = {{5, 6}, {1700000000, 123456789}};
	struct statx stx;
	struct stat st;
	struct tracked t;
	struct waiter w;
	char buf[64];
	int dfd, fd;
	ssize_t r;

	(void)state;
	waiter_init(&w);
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_DIRECTORY | O_RDONLY);
	assert_true(dfd >= 0);

	berth_prep_nop(&t.req);
	assert_int_equal(run1(pump, &w, &t), 0);
	call_ran = 0;
	berth_prep_call(&t.req, call_fn, &call_ran);
	assert_int_equal(run1(pump, &w, &t), 42);
	assert_int_equal(call_ran, 1);
	berth_prep_call(&t.req, call_fn, NULL);
	assert_int_equal(run1(pump, &w, &t), -ENOENT);
	berth_prep_mkdirat(&t.req, dfd, "sub", 0755);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_openat2(&t.req, dfd, "sub/f", &how);
	fd = (int)run1(pump, &w, &t);
	assert_true(fd >= 0);
	berth_prep_write(&t.req, fd, "hello, pump", 11, 0);
	assert_int_equal(run1(pump, &w, &t), 11);
	berth_prep_fsync(&t.req, fd, 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_fsync(&t.req, fd, BERTH_FSYNC_DATASYNC);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_fallocate(&t.req, fd, 0, 0, 4096);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_ftruncate(&t.req, fd, 5);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_fchmodat(&t.req, fd, NULL, 0640, 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_fchownat(&t.req, fd, NULL, (uid_t)-1, getgid(), 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_utimensat(&t.req, fd, NULL, ts, 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_statx(&t.req, dfd, "sub/f", AT_SYMLINK_NOFOLLOW,
			 STATX_BASIC_STATS, &stx);
	assert_int_equal(run1(pump, &w, &t), 0);
	assert_int_equal(stx.stx_size, 5);
	assert_int_equal(stx.stx_mode & 07777, 0640);
	assert_int_equal(stx.stx_mtime.tv_sec, 1700000000);
	assert_int_equal(stx.stx_mtime.tv_nsec, 123456789);
	berth_prep_read(&t.req, fd, buf, sizeof(buf), 0);
	assert_int_equal(run1(pump, &w, &t), 5);
	assert_memory_equal(buf, "hello", 5);
	berth_prep_close(&t.req, fd);
	assert_int_equal(run1(pump, &w, &t), 0);

	berth_prep_renameat2(&t.req, dfd, "sub/f", dfd, "sub/g",
			     RENAME_NOREPLACE);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_linkat(&t.req, dfd, "sub/g", dfd, "h", 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	assert_int_equal(fstatat(dfd, "h", &st, 0), 0);
	assert_int_equal(st.st_nlink, 2);
	berth_prep_symlinkat(&t.req, "sub/g", dfd, "l");
	assert_int_equal(run1(pump, &w, &t), 0);
	r = readlinkat(dfd, "l", buf, sizeof(buf));
	assert_int_equal(r, 5);
	berth_prep_utimensat(&t.req, dfd, "l", ts, AT_SYMLINK_NOFOLLOW);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_mknodat(&t.req, dfd, "fifo", S_IFIFO | 0600, 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	assert_int_equal(fstatat(dfd, "fifo", &st, 0), 0);
	assert_true(S_ISFIFO(st.st_mode));
	berth_prep_fchmodat(&t.req, dfd, "fifo", 0644, 0);
	assert_int_equal(run1(pump, &w, &t), 0);

	/* RESOLVE_BENEATH holds through the pump. */
	how.flags = O_RDONLY;
	how.mode = 0;
	berth_prep_openat2(&t.req, dfd, "../x", &how);
	assert_int_equal(run1(pump, &w, &t), -EXDEV);
	berth_prep_renameat2(&t.req, dfd, "h", dfd, "sub/g", RENAME_NOREPLACE);
	assert_int_equal(run1(pump, &w, &t), -EEXIST);

	const char *names[] = {"fifo", "l", "h", "sub/g"};
	for (size_t i = 0; i < 4; i++) {
		berth_prep_unlinkat(&t.req, dfd, names[i], 0);
		assert_int_equal(run1(pump, &w, &t), 0);
	}
	berth_prep_unlinkat(&t.req, dfd, "sub", AT_REMOVEDIR);
	assert_int_equal(run1(pump, &w, &t), 0);
	close(dfd);
	assert_int_equal(rmdir(dir), 0);
	pump_done(pump);
}

/* The xattr ops, on a regular fd and on O_PATH fds (also of a symlink). */
static void test_xattr_ops(void **state)
{
	struct berth_pump *pump = pump_new();
	char dir[] = "/tmp/berth-xattr-XXXXXX";
	struct tracked t;
	struct waiter w;
	char buf[256], path[64];
	int dfd, fd, pfd, lfd;
	ssize_t r;

	(void)state;
	waiter_init(&w);
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_DIRECTORY | O_RDONLY);
	assert_true(dfd >= 0);
	fd = openat(dfd, "f", O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(symlinkat("f", dfd, "l"), 0);

	berth_prep_fsetxattr(&t.req, fd, "user.a", "1", 1, 0);
	r = run1(pump, &w, &t);
	if (r == -EOPNOTSUPP) {
		/* No user xattrs on this filesystem: nothing to test. */
		close(fd);
		unlinkat(dfd, "l", 0);
		unlinkat(dfd, "f", 0);
		close(dfd);
		rmdir(dir);
		pump_done(pump);
		skip();
	}
	assert_int_equal(r, 0);
	pfd = openat(dfd, "f", O_PATH | O_NOFOLLOW);
	lfd = openat(dfd, "l", O_PATH | O_NOFOLLOW);
	assert_true(pfd >= 0 && lfd >= 0);
	berth_prep_fsetxattr(&t.req, pfd, "user.bb", "22", 2, XATTR_CREATE);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_fsetxattr(&t.req, pfd, "user.bb", "22", 2, XATTR_CREATE);
	assert_int_equal(run1(pump, &w, &t), -EEXIST);
	berth_prep_flistxattr(&t.req, pfd, NULL, 0);
	assert_int_equal(run1(pump, &w, &t), 15);
	berth_prep_flistxattr(&t.req, fd, buf, 4);
	assert_int_equal(run1(pump, &w, &t), -ERANGE);
	berth_prep_flistxattr(&t.req, fd, buf, sizeof(buf));
	assert_int_equal(run1(pump, &w, &t), 15);
	assert_int_equal(getxattr(dir, "user.a", buf, 0), -1);
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(getxattr(path, "user.bb", buf, sizeof(buf)), 2);
	/* A symlink's own attributes: user.* is refused by Linux. */
	berth_prep_fsetxattr(&t.req, lfd, "user.c", "3", 1, 0);
	assert_int_equal(run1(pump, &w, &t), -EPERM);
	berth_prep_flistxattr(&t.req, lfd, buf, sizeof(buf));
	assert_int_equal(run1(pump, &w, &t), 0);
	if (geteuid() == 0) {
		berth_prep_fsetxattr(&t.req, lfd, "trusted.c", "3", 1, 0);
		assert_int_equal(run1(pump, &w, &t), 0);
		snprintf(path, sizeof(path), "%s/l", dir);
		assert_int_equal(lgetxattr(path, "trusted.c", buf, 1), 1);
		snprintf(path, sizeof(path), "%s/f", dir);
		assert_int_equal(getxattr(path, "trusted.c", buf, 1), -1);
		berth_prep_fremovexattr(&t.req, lfd, "trusted.c");
		assert_int_equal(run1(pump, &w, &t), 0);
	}
	berth_prep_fremovexattr(&t.req, pfd, "user.a");
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_fremovexattr(&t.req, fd, "user.a");
	assert_int_equal(run1(pump, &w, &t), -ENODATA);
	berth_prep_flistxattr(&t.req, fd, buf, sizeof(buf));
	assert_int_equal(run1(pump, &w, &t), 8);
	assert_memory_equal(buf, "user.bb", 8);
	/* A closed fd stays an error, also through the /proc fallback. */
	close(pfd);
	berth_prep_fremovexattr(&t.req, pfd, "user.bb");
	assert_int_equal(run1(pump, &w, &t), -EBADF);

	close(lfd);
	close(fd);
	assert_int_equal(unlinkat(dfd, "l", 0), 0);
	assert_int_equal(unlinkat(dfd, "f", 0), 0);
	close(dfd);
	assert_int_equal(rmdir(dir), 0);
	pump_done(pump);
}

/* ---- cancellation ---- */

static void test_cancel_blocked_read(void **state)
{
	struct berth_pump *pump = pump_new();
	struct tracked t;
	struct waiter w;
	char buf[16];
	int pfd[2];

	(void)state;
	waiter_init(&w);
	assert_int_equal(pipe(pfd), 0);
	berth_prep_read(&t.req, pfd[0], buf, sizeof(buf), BERTH_OFF_STREAM);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	/* Give it time to really block in the kernel or a worker. */
	usleep(20000);
	assert_int_equal(waiter_count(&w), 0);
	berth_pump_cancel(pump, &t.req);
	waiter_wait(&w, 1);
	assert_int_equal(t.res, -ECANCELED);
	assert_int_equal(atomic_load(&t.calls), 1);

	/* The pipe still works afterwards: nothing was consumed. */
	assert_int_equal(write(pfd[1], "abc", 3), 3);
	berth_prep_read(&t.req, pfd[0], buf, sizeof(buf), BERTH_OFF_STREAM);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 2);
	assert_int_equal(t.res, 3);
	close(pfd[0]);
	close(pfd[1]);
	pump_done(pump);
}

#define NPIPES 32
#define PER_PIPE 10

static void test_cancel_tag(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct tracked t[NPIPES * PER_PIPE];
	static char bufs[NPIPES * PER_PIPE][8];
	struct tracked other;
	struct waiter w;
	char obuf[8];
	int pipes[NPIPES][2], opipe[2], i;

	(void)state;
	waiter_init(&w);
	for (i = 0; i < NPIPES; i++)
		assert_int_equal(pipe(pipes[i]), 0);
	assert_int_equal(pipe(opipe), 0);
	/* Hundreds of reads that can never complete, tag 7. */
	for (i = 0; i < NPIPES * PER_PIPE; i++) {
		berth_prep_read(&t[i].req, pipes[i % NPIPES][0], bufs[i], 8,
				BERTH_OFF_STREAM);
		track(&t[i], pump, &w, 7);
		assert_int_equal(berth_pump_submit(pump, &t[i].req), 0);
	}
	/* One of another owner, tag 8. */
	berth_prep_read(&other.req, opipe[0], obuf, sizeof(obuf),
			BERTH_OFF_STREAM);
	track(&other, pump, &w, 8);
	assert_int_equal(berth_pump_submit(pump, &other.req), 0);
	usleep(20000);

	assert_int_equal(berth_pump_cancel_tag(pump, 7), 0);
	waiter_wait(&w, NPIPES * PER_PIPE);
	for (i = 0; i < NPIPES * PER_PIPE; i++) {
		assert_int_equal(atomic_load(&t[i].calls), 1);
		assert_int_equal(t[i].res, -ECANCELED);
	}
	/* The other owner's request is untouched and still works. */
	assert_int_equal(atomic_load(&other.calls), 0);
	assert_int_equal(write(opipe[1], "ok", 2), 2);
	waiter_wait(&w, NPIPES * PER_PIPE + 1);
	assert_int_equal(other.res, 2);
	assert_memory_equal(obuf, "ok", 2);

	for (i = 0; i < NPIPES; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	close(opipe[0]);
	close(opipe[1]);
	pump_done(pump);
}

/* ---- shutdown ---- */

static void test_shutdown_in_flight(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct tracked t[200];
	static char bufs[200][64];
	struct tracked late;
	struct waiter w;
	char data[64] = "data";
	int pfd[2], fd, i;

	(void)state;
	waiter_init(&w);
	assert_int_equal(pipe(pfd), 0);
	fd = tmp_file(data, sizeof(data));
	for (i = 0; i < 200; i++) {
		if (i % 2)
			berth_prep_read(&t[i].req, pfd[0], bufs[i], 64,
					BERTH_OFF_STREAM);
		else
			berth_prep_read(&t[i].req, fd, bufs[i], 64, 0);
		track(&t[i], pump, &w, (uint64_t)i);
		assert_int_equal(berth_pump_submit(pump, &t[i].req), 0);
	}
	assert_int_equal(berth_pump_shutdown(pump), 0);
	/* After shutdown returns, every callback has run exactly once. */
	assert_int_equal(waiter_count(&w), 200);
	for (i = 0; i < 200; i++) {
		assert_int_equal(atomic_load(&t[i].calls), 1);
		if (i % 2)
			assert_int_equal(t[i].res, -ECANCELED);
		else
			assert_true(t[i].res == 64 || t[i].res == -ECANCELED);
	}
	/* Submitting now fails at once, with no callback. */
	berth_prep_nop(&late.req);
	track(&late, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &late.req), -ESHUTDOWN);
	assert_int_equal(berth_pump_shutdown(pump), 0); /* idempotent */
	assert_int_equal(atomic_load(&late.calls), 0);
	close(fd);
	close(pfd[0]);
	close(pfd[1]);
	pump_done(pump);
}

/* A callback chains the next request and tries to shut the pump down. */
struct chain {
	struct berth_req req;
	struct berth_pump *pump;
	struct waiter w;
	int left;
	int shutdown_ret;
};

static void chain_cb(struct berth_req *req, ssize_t res)
{
	struct chain *c = req->data;

	assert_int_equal(res, 0);
	c->shutdown_ret = berth_pump_shutdown(c->pump);
	if (--c->left > 0) {
		berth_prep_nop(&c->req);
		assert_int_equal(berth_pump_submit(c->pump, &c->req), 0);
		return;
	}
	pthread_mutex_lock(&c->w.lock);
	c->w.done = 1;
	pthread_cond_broadcast(&c->w.cond);
	pthread_mutex_unlock(&c->w.lock);
}

static void test_submit_from_callback(void **state)
{
	struct chain c = {.left = 1000};

	(void)state;
	c.pump = pump_new();
	waiter_init(&c.w);
	berth_prep_nop(&c.req);
	berth_req_set_cb(&c.req, chain_cb, &c, 0);
	assert_int_equal(berth_pump_submit(c.pump, &c.req), 0);
	waiter_wait(&c.w, 1);
	assert_int_equal(c.left, 0);
	assert_int_equal(c.shutdown_ret, -EDEADLK);
	pump_done(c.pump);
}

/* ---- fault injection ---- */

static void test_fault_injection(void **state)
{
	struct berth_pump *pump = pump_new();
	struct berth_fault f = {0};
	struct tracked t[6];
	struct waiter w;
	int fd, i;

	(void)state;
	waiter_init(&w);
	fd = tmp_file(NULL, 0);
	/* The 3rd write of tag 5 fails with ENOSPC; tag 6 is never hit. */
	f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
	f.tag = 5;
	f.nth = 3;
	f.error = ENOSPC;
	assert_int_equal(berth_pump_inject(pump, &f), 0);
	/* Every fsync fails with EIO (count large). */
	memset(&f, 0, sizeof(f));
	f.ops = BERTH_OP_BIT(BERTH_OP_FSYNC);
	f.count = 100;
	f.error = EIO;
	assert_int_equal(berth_pump_inject(pump, &f), 0);

	for (i = 0; i < 4; i++) {
		berth_prep_write(&t[i].req, fd, "abcd", 4, (uint64_t)i * 4);
		assert_int_equal(run1_tag(pump, &w, &t[i], i < 3 ? 5 : 6),
				 i == 2 ? -ENOSPC : 4);
	}
	berth_prep_fsync(&t[4].req, fd, 0);
	assert_int_equal(run1(pump, &w, &t[4]), -EIO);
	berth_pump_clear_faults(pump);
	berth_prep_fsync(&t[5].req, fd, 0);
	assert_int_equal(run1(pump, &w, &t[5]), 0);
	close(fd);
	pump_done(pump);
}

/*
 * The per-op fallback at run time: the ring refuses a read it was probed
 * for (a real -EOPNOTSUPP from the kernel, through BERTH_FAULT_RING_REFUSE);
 * the pump reruns it on the pool and keeps reads there.  A write the pool
 * refuses as well was bad in itself: writes stay on the ring.
 */
static void test_ring_refusal_falls_back(void **state)
{
	struct berth_pump *pump = pump_new();
	struct berth_fault f = {0};
	struct berth_pump_stats st;
	bool uring = berth_pump_backend(pump) == BERTH_PUMP_URING;
	struct tracked t;
	struct waiter w;
	char data[4096], buf[4096];
	int fd, i;

	(void)state;
	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (char)(i * 13);
	fd = tmp_file(data, sizeof(data));
	waiter_init(&w);
	f.ops = BERTH_OP_BIT(BERTH_OP_READ);
	f.flags = BERTH_FAULT_RING_REFUSE;
	assert_int_equal(berth_pump_inject(pump, &f), 0);

	/* Refused by the ring, done by the pool: the caller sees data. */
	memset(buf, 0, sizeof(buf));
	berth_prep_read(&t.req, fd, buf, sizeof(buf), 0);
	assert_int_equal(run1(pump, &w, &t), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, data, sizeof(data));
	berth_pump_stats(pump, &st);
	assert_int_equal(st.faults, 1);
	assert_int_equal(st.fallback, uring ? 1 : 0);

	/* The fault is spent; reads now go to the pool directly. */
	memset(buf, 0, sizeof(buf));
	berth_prep_read(&t.req, fd, buf, 100, 50);
	assert_int_equal(run1(pump, &w, &t), 100);
	assert_memory_equal(buf, data + 50, 100);
	berth_pump_stats(pump, &st);
	assert_int_equal(st.fallback, uring ? 2 : 0);

	/* A write both refuse (offset beyond what off_t holds): its error
	 * comes back, and it does not cost writes the ring. */
	berth_pump_clear_faults(pump);
	berth_prep_write(&t.req, fd, data, 10, (uint64_t)-2);
	assert_int_equal(run1(pump, &w, &t), -EINVAL);
	berth_pump_stats(pump, &st);
	assert_int_equal(st.fallback, uring ? 3 : 0);
	berth_prep_write(&t.req, fd, data, 10, 0);
	assert_int_equal(run1(pump, &w, &t), 10);
	berth_pump_stats(pump, &st);
	assert_int_equal(st.fallback, uring ? 3 : 0);
	close(fd);
	pump_done(pump);
}

/* ---- deep queues: chains of 4 KiB reads and writes from callbacks ---- */

#define DEEP_SLOTS 16
#define DEEP_BLOCKS 256 /* a 1 MiB file */
#define DEEP_BS 4096
#define DEEP_WRAP 64 /* write i of a slot goes to place i % DEEP_WRAP */

struct deep {
	struct berth_pump *pump;
	struct waiter w; /* counts finished slots */
	int fd;
	int wfd; /* write i of slot s: block (i % DEEP_WRAP) * 16 + s */
	int per_slot;
	atomic_int bad; /* wrong result or wrong bytes */
	atomic_int accepted; /* submits that returned 0 */
	atomic_int calls; /* callbacks run */
	atomic_int refused; /* submits refused with -ESHUTDOWN */
	atomic_int cancelled; /* callbacks with -ECANCELED */
	atomic_int stop_tag; /* chains of this tag stop issuing */
};

struct deep_slot {
	struct berth_req req;
	struct deep *d;
	unsigned idx;
	uint64_t rng;
	int issued;
	uint32_t block;
	bool writing;
	char buf[DEEP_BS];
};

static void deep_fill(char *buf, uint32_t block)
{
	int i;

	for (i = 0; i < DEEP_BS; i++)
		buf[i] = (char)(block * 31 + (uint32_t)i * 131);
}

static bool deep_check(const char *buf, uint32_t block)
{
	char want[DEEP_BS];

	deep_fill(want, block);
	return !memcmp(buf, want, DEEP_BS);
}

static void deep_finish(struct deep *d)
{
	pthread_mutex_lock(&d->w.lock);
	d->w.done++;
	pthread_cond_broadcast(&d->w.cond);
	pthread_mutex_unlock(&d->w.lock);
}

static void deep_cb(struct berth_req *req, ssize_t res);

/* Issue the slot's next request; false when the chain is over. */
static bool deep_issue(struct deep_slot *s)
{
	struct deep *d = s->d;
	uint64_t off;
	int ret;

	if (s->issued == d->per_slot ||
	    atomic_load(&d->stop_tag) == (int)(s->idx % 2 + 1))
		return false;
	if (s->writing) {
		s->block = (uint32_t)s->issued;
		off = ((uint64_t)(s->issued % DEEP_WRAP) * DEEP_SLOTS +
		       s->idx) *
		      DEEP_BS;
		deep_fill(s->buf, s->block * DEEP_SLOTS + s->idx);
		berth_prep_write(&s->req, d->wfd, s->buf, DEEP_BS, off);
	} else {
		s->rng = s->rng * 6364136223846793005ull +
			 1442695040888963407ull;
		s->block = (uint32_t)(s->rng >> 33) % DEEP_BLOCKS;
		memset(s->buf, 0, DEEP_BS);
		berth_prep_read(&s->req, d->fd, s->buf, DEEP_BS,
				(uint64_t)s->block * DEEP_BS);
	}
	berth_req_set_cb(&s->req, deep_cb, s, s->idx % 2 + 1);
	s->issued++;
	ret = berth_pump_submit(d->pump, &s->req);
	if (ret == 0) {
		atomic_fetch_add(&d->accepted, 1);
		return true;
	}
	if (ret == -ESHUTDOWN)
		atomic_fetch_add(&d->refused, 1);
	else
		atomic_store(&d->bad, 1);
	return false;
}

static void deep_cb(struct berth_req *req, ssize_t res)
{
	struct deep_slot *s = req->data;
	struct deep *d = s->d;

	atomic_fetch_add(&d->calls, 1);
	if (res == -ECANCELED)
		atomic_fetch_add(&d->cancelled, 1);
	else if (res != DEEP_BS ||
		 (!s->writing && !deep_check(s->buf, s->block)))
		atomic_store(&d->bad, 1);
	if (!deep_issue(s))
		deep_finish(d);
}

static int deep_file(void)
{
	char buf[DEEP_BS];
	int fd = tmp_file(NULL, 0);
	uint32_t b;

	for (b = 0; b < DEEP_BLOCKS; b++) {
		deep_fill(buf, b);
		assert_int_equal(pwrite(fd, buf, DEEP_BS, (off_t)b * DEEP_BS),
				 DEEP_BS);
	}
	return fd;
}

static bool helper_up(struct berth_pump *pump)
{
	return strstr(berth_pump_backend_reason(pump), "SQPOLL helper ring");
}

/* The helper ring takes a share of every queue deeper than one read. */
static bool helper_on_every_queue(struct berth_pump *pump)
{
	const char *env = getenv("BERTH_PUMP_SQPOLL");

	return berth_pump_backend(pump) == BERTH_PUMP_URING && env &&
	       !strcmp(env, "1");
}

/* Start @nslots chains (odd slots write when @writes), from this thread. */
static void deep_start(struct deep *d, struct deep_slot *slots, int nslots,
		       bool writes)
{
	int i;

	for (i = 0; i < nslots; i++) {
		slots[i] = (struct deep_slot){
			.d = d,
			.idx = (unsigned)i,
			.rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1),
			.writing = writes && i % 2,
		};
		if (!deep_issue(&slots[i]))
			deep_finish(d);
	}
}

static void deep_init(struct deep *d, struct berth_pump *pump, int per_slot)
{
	memset(d, 0, sizeof(*d));
	d->pump = pump;
	d->per_slot = per_slot;
	waiter_init(&d->w);
	d->fd = deep_file();
	d->wfd = tmp_file(NULL, 0);
}

/* Check that the helper took a share (@shared) or nothing; clean up. */
static void deep_done(struct berth_pump *pump, struct deep *d, bool shared)
{
	struct berth_pump_stats st;

	berth_pump_stats(pump, &st);
	if (shared)
		assert_true(st.helper > 0);
	else
		assert_int_equal(st.helper, 0);
	close(d->fd);
	close(d->wfd);
	pump_done(pump);
}

static void test_deep_queues(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct deep_slot slots[DEEP_SLOTS];
	struct deep d;
	char buf[DEEP_BS];
	int i, j, s;

	(void)state;
	if (helper_on_every_queue(pump) && !helper_up(pump)) {
		pump_done(pump);
		skip();
	}
	deep_init(&d, pump, 300);
	deep_start(&d, slots, DEEP_SLOTS, true);
	waiter_wait(&d.w, DEEP_SLOTS);
	assert_int_equal(atomic_load(&d.bad), 0);
	assert_int_equal(atomic_load(&d.calls), atomic_load(&d.accepted));
	assert_int_equal(atomic_load(&d.calls), DEEP_SLOTS * 300);
	/* Every place holds the last write meant for it. */
	for (s = 1; s < DEEP_SLOTS; s += 2) {
		for (j = 0; j < DEEP_WRAP; j++) {
			i = j + (300 - 1 - j) / DEEP_WRAP * DEEP_WRAP;
			assert_int_equal(
				pread(d.wfd, buf, DEEP_BS,
				      ((off_t)j * DEEP_SLOTS + s) * DEEP_BS),
				DEEP_BS);
			assert_true(deep_check(buf,
					       (uint32_t)(i * DEEP_SLOTS + s)));
		}
	}
	/*
	 * Eight reads at a time: shared with the helper only when it takes a
	 * share of every queue; by default a queue this shallow stays on the
	 * pump's own ring.
	 */
	deep_done(pump, &d, helper_on_every_queue(pump));
}

/*
 * Thirty-two reads at a time, every one checked: a queue this deep is
 * shared with the helper whenever the pump has one (by default on a
 * machine with two CPUs), and its results are as good as the own ring's.
 */
static void test_deep_reads(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct deep_slot slots[2 * DEEP_SLOTS];
	struct deep d;

	(void)state;
	deep_init(&d, pump, 300);
	deep_start(&d, slots, 2 * DEEP_SLOTS, false);
	waiter_wait(&d.w, 2 * DEEP_SLOTS);
	assert_int_equal(atomic_load(&d.bad), 0);
	assert_int_equal(atomic_load(&d.calls), 2 * DEEP_SLOTS * 300);
	deep_done(pump, &d, helper_up(pump));
}

/* With $@name set to @value, creating a default pump fails with -EINVAL. */
static void env_refused(const char *name, const char *value)
{
	const char *env = getenv(name);
	char *saved = env ? strdup(env) : NULL;
	struct berth_pump *pump = NULL;

	assert_int_equal(setenv(name, value, 1), 0);
	assert_int_equal(berth_pump_create(NULL, &pump), -EINVAL);
	assert_null(pump);
	if (saved)
		assert_int_equal(setenv(name, saved, 1), 0);
	else
		assert_int_equal(unsetenv(name), 0);
	free(saved);
}

/*
 * The helper option: ON asks for the helper ring whatever the environment
 * says (it may still be refused: one CPU, or SQPOLL not allowed), OFF
 * never sets it up, DEFAULT sets it up for deep read queues unless
 * BERTH_PUMP_SQPOLL says 0 or 1, and a value out of range is refused, in
 * the field or in the environment.
 */
static void test_helper_option(void **state)
{
	struct berth_pump_opts opts = {.backend = BERTH_PUMP_URING};
	struct berth_pump *pump = NULL;
	const char *env;
	int ret;

	(void)state;
	opts.helper = 7;
	assert_int_equal(berth_pump_create(&opts, &pump), -EINVAL);
	assert_null(pump);
	if (expected_backend() == BERTH_PUMP_POOL)
		skip();
	opts.helper = BERTH_PUMP_HELPER_OFF;
	ret = berth_pump_create(&opts, &pump);
	if (ret < 0)
		skip(); /* no io_uring here: the pool tests cover it */
	assert_false(helper_up(pump));
	assert_null(strstr(berth_pump_backend_reason(pump), "helper"));
	pump_done(pump);
	opts.helper = BERTH_PUMP_HELPER_ON;
	assert_int_equal(berth_pump_create(&opts, &pump), 0);
	/* Up, or a reason why not. */
	assert_non_null(strstr(berth_pump_backend_reason(pump), "helper"));
	if (sysconf(_SC_NPROCESSORS_ONLN) >= 2)
		assert_true(helper_up(pump) ||
			    strstr(berth_pump_backend_reason(pump),
				   "no SQPOLL helper"));
	else
		assert_false(helper_up(pump));
	pump_done(pump);
	opts.helper = BERTH_PUMP_HELPER_DEFAULT;
	assert_int_equal(berth_pump_create(&opts, &pump), 0);
	env = getenv("BERTH_PUMP_SQPOLL");
	if (env && !strcmp(env, "0"))
		assert_null(strstr(berth_pump_backend_reason(pump), "helper"));
	else if (helper_up(pump) && !helper_on_every_queue(pump))
		assert_non_null(strstr(berth_pump_backend_reason(pump),
				       "helper ring for deep read queues"));
	else if (!helper_up(pump))
		assert_non_null(strstr(berth_pump_backend_reason(pump),
				       "no SQPOLL helper"));
	pump_done(pump);
	env_refused("BERTH_PUMP_SQPOLL", "yes");
	env_refused("BERTH_PUMP", "epoll");
}

/* Cancel one tag's chains while both tags run deep. */
static void test_deep_cancel_tag(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct deep_slot slots[DEEP_SLOTS];
	struct deep d;
	int i, total;

	(void)state;
	deep_init(&d, pump, 2000);
	deep_start(&d, slots, DEEP_SLOTS, true);
	while (atomic_load(&d.calls) < DEEP_SLOTS * 50)
		usleep(100);
	atomic_store(&d.stop_tag, 1);
	assert_int_equal(berth_pump_cancel_tag(pump, 1), 0);
	waiter_wait(&d.w, DEEP_SLOTS);
	assert_int_equal(atomic_load(&d.bad), 0);
	assert_int_equal(atomic_load(&d.calls), atomic_load(&d.accepted));
	/* Tag 2 (odd slots) ran to the end. */
	total = 0;
	for (i = 0; i < DEEP_SLOTS; i++) {
		if (i % 2)
			assert_int_equal(slots[i].issued, 2000);
		total += slots[i].issued;
	}
	assert_int_equal(total, atomic_load(&d.accepted));
	close(d.fd);
	close(d.wfd);
	pump_done(pump);
}

/* Shut down while deep chains keep resubmitting from their callbacks. */
static void test_deep_shutdown(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct deep_slot slots[DEEP_SLOTS];
	struct deep d;

	(void)state;
	deep_init(&d, pump, 1000000);
	deep_start(&d, slots, DEEP_SLOTS, true);
	while (atomic_load(&d.calls) < DEEP_SLOTS * 50)
		usleep(100);
	assert_int_equal(berth_pump_shutdown(pump), 0);
	/* Every accepted request called back once; every chain then ended
	 * on a refused submit. */
	assert_int_equal(waiter_count(&d.w), DEEP_SLOTS);
	assert_int_equal(atomic_load(&d.bad), 0);
	assert_int_equal(atomic_load(&d.calls), atomic_load(&d.accepted));
	assert_int_equal(atomic_load(&d.refused), DEEP_SLOTS);
	close(d.fd);
	close(d.wfd);
	pump_done(pump);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_from_threads),
		cmocka_unit_test(test_read_eof_and_vectors),
		cmocka_unit_test(test_short_io_is_continued),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_all_ops),
		cmocka_unit_test(test_xattr_ops),
		cmocka_unit_test(test_cancel_blocked_read),
		cmocka_unit_test(test_cancel_tag),
		cmocka_unit_test(test_shutdown_in_flight),
		cmocka_unit_test(test_submit_from_callback),
		cmocka_unit_test(test_fault_injection),
		cmocka_unit_test(test_ring_refusal_falls_back),
		cmocka_unit_test(test_deep_queues),
		cmocka_unit_test(test_deep_reads),
		cmocka_unit_test(test_helper_option),
		cmocka_unit_test(test_deep_cancel_tag),
		cmocka_unit_test(test_deep_shutdown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
