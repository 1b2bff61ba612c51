/* SPDX-License-Identifier: MIT */
/*
 * Pump tests: every operation through the pump, its xattr operations, and
 * errors that come back as -errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "test_pump_util.h"

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

const struct CMUnitTest pump_ops_tests[] = {
	cmocka_unit_test(test_errors),
	cmocka_unit_test(test_all_ops),
	cmocka_unit_test(test_xattr_ops),
};
const size_t pump_ops_count = sizeof(pump_ops_tests) /
			      sizeof(pump_ops_tests[0]);
