/* SPDX-License-Identifier: MIT */
/*
 * Pump tests, Windows: every operation the Windows build runs, through the
 * pump (in place of test_pump_ops.c, whose xattrs, O_PATH and symlinks are
 * Linux's), and confinement beneath a directory handle: "..", absolute
 * names, reparse points and names Windows cannot hold are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine/platform/platform_win.h"
#include "test_pump_util.h"

static ssize_t call_fn(void *arg)
{
	int *ran = arg;

	*ran = 1;
	return 42;
}

static ssize_t open_at(struct berth_pump *pump, struct waiter *w, int dfd,
		       const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)flags,
			       .mode = 0600,
			       .resolve = BERTH_PLAT_RESOLVE};
	struct tracked t;

	berth_prep_openat2(&t.req, dfd, path, &how);
	return run1(pump, w, &t);
}

/* A fresh directory under %TEMP%, opened as berth opens directories. */
static int temp_dir(char *path, size_t len)
{
	char base[MAX_PATH];
	DWORD n = GetTempPathA(sizeof(base), base);

	assert_true(n > 0 && n < sizeof(base));
	snprintf(path, len, "%sberth-ops-%lu-%lu", base, GetCurrentProcessId(),
		 (unsigned long)GetTickCount());
	assert_true(CreateDirectoryA(path, NULL));
	return open(path, O_RDONLY);
}

static void test_errors(void **state)
{
	struct berth_pump *pump = pump_new();
	struct tracked t;
	struct waiter w;
	char buf[16];

	(void)state;
	waiter_init(&w);
	berth_prep_read(&t.req, 999, buf, sizeof(buf), 0);
	assert_int_equal(run1(pump, &w, &t), -EBADF);
	/* Beneath refuses an absolute path before looking. */
	assert_int_equal(
		open_at(pump, &w, AT_FDCWD, "/nonexistent/berth", O_RDONLY),
		-EXDEV);
	berth_prep_readv(&t.req, 0, NULL, 0, 0);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), -EINVAL);
	pump_done(pump);
}

static void test_all_ops(void **state)
{
	struct berth_pump *pump = pump_new();
	struct timespec ts[2] = {{5, 6}, {1700000000, 123456700}};
	char dir[MAX_PATH + 64], back[6] = {0};
	struct statx stx;
	struct tracked t;
	struct waiter w;
	int dfd, fd, ran = 0;

	(void)state;
	waiter_init(&w);
	dfd = temp_dir(dir, sizeof(dir));
	assert_true(dfd >= 0);

	berth_prep_call(&t.req, call_fn, &ran);
	assert_int_equal(run1(pump, &w, &t), 42);
	assert_int_equal(ran, 1);
	berth_prep_nop(&t.req);
	assert_int_equal(run1(pump, &w, &t), 0);

	berth_prep_mkdirat(&t.req, dfd, "sub", 0755);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_mkdirat(&t.req, dfd, "sub", 0755);
	assert_int_equal(run1(pump, &w, &t), -EEXIST);
	fd = (int)open_at(pump, &w, dfd, "sub/f", O_RDWR | O_CREAT | O_EXCL);
	assert_true(fd >= 0);
	assert_int_equal(
		open_at(pump, &w, dfd, "sub/f", O_RDWR | O_CREAT | O_EXCL),
		-EEXIST);

	/* Overlapped writes and reads of what berth opened. */
	berth_prep_write(&t.req, fd, "hello", 5, 0);
	assert_int_equal(run1(pump, &w, &t), 5);
	berth_prep_read(&t.req, fd, back, 5, 0);
	assert_int_equal(run1(pump, &w, &t), 5);
	assert_memory_equal(back, "hello", 5);
	berth_prep_fsync(&t.req, fd, 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_ftruncate(&t.req, fd, 3);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_utimensat(&t.req, fd, NULL, ts, 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_close(&t.req, fd);
	assert_int_equal(run1(pump, &w, &t), 0);

	berth_prep_statx(&t.req, dfd, "sub/f", AT_SYMLINK_NOFOLLOW,
			 STATX_BASIC_STATS, &stx);
	assert_int_equal(run1(pump, &w, &t), 0);
	assert_true(S_ISREG(stx.stx_mode));
	assert_int_equal(stx.stx_size, 3);
	assert_int_equal(stx.stx_mtime.tv_sec, 1700000000);
	assert_int_equal(stx.stx_mtime.tv_nsec, 123456700);

	/* Rename over an existing name (POSIX semantics where there). */
	fd = (int)open_at(pump, &w, dfd, "g", O_RDWR | O_CREAT | O_EXCL);
	assert_true(fd >= 0);
	close(fd);
	berth_prep_renameat2(&t.req, dfd, "sub/f", dfd, "g", 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_statx(&t.req, dfd, "g", AT_SYMLINK_NOFOLLOW,
			 STATX_BASIC_STATS, &stx);
	assert_int_equal(run1(pump, &w, &t), 0);
	assert_int_equal(stx.stx_size, 3);
	berth_prep_renameat2(&t.req, dfd, "g", dfd, "sub/h", RENAME_NOREPLACE);
	assert_int_equal(run1(pump, &w, &t), 0);
	fd = (int)open_at(pump, &w, dfd, "g", O_RDWR | O_CREAT | O_EXCL);
	assert_true(fd >= 0);
	close(fd);
	berth_prep_renameat2(&t.req, dfd, "g", dfd, "sub/h", RENAME_NOREPLACE);
	assert_int_equal(run1(pump, &w, &t), -EEXIST);

	/* Unlink, and rmdir of what is left. */
	berth_prep_unlinkat(&t.req, dfd, "sub", 0);
	assert_int_equal(run1(pump, &w, &t), -EISDIR);
	berth_prep_unlinkat(&t.req, dfd, "sub/h", 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_unlinkat(&t.req, dfd, "g", 0);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_unlinkat(&t.req, dfd, "sub", AT_REMOVEDIR);
	assert_int_equal(run1(pump, &w, &t), 0);
	berth_prep_statx(&t.req, dfd, "sub", AT_SYMLINK_NOFOLLOW,
			 STATX_BASIC_STATS, &stx);
	assert_int_equal(run1(pump, &w, &t), -ENOENT);

	/* What Windows has no counterpart for is refused per item. */
	berth_prep_symlinkat(&t.req, "x", dfd, "l");
	assert_int_equal(run1(pump, &w, &t), -EOPNOTSUPP);
	close(dfd);
	assert_true(RemoveDirectoryA(dir));
	pump_done(pump);
}

static void test_confinement(void **state)
{
	static const char *const bad_names[] = {
		"CON",	"nul.txt", "COM1", "lpt9.x", "a.",  "a ",   "a:b",
		"a\\b", "x/a?b",   "a*",   "a|b",    "a<b", "a\"b",
	};
	struct berth_pump *pump = pump_new();
	char dir[MAX_PATH + 64], link[MAX_PATH + 80], target[MAX_PATH + 80];
	struct waiter w;
	size_t i;
	int dfd, fd;

	(void)state;
	waiter_init(&w);
	dfd = temp_dir(dir, sizeof(dir));
	assert_true(dfd >= 0);
	assert_int_equal(open_at(pump, &w, dfd, "../x", O_RDONLY), -EXDEV);
	assert_int_equal(open_at(pump, &w, dfd, "a/../../x", O_RDONLY), -EXDEV);
	assert_int_equal(open_at(pump, &w, dfd, "C:/x", O_RDONLY), -EXDEV);
	assert_int_equal(open_at(pump, &w, dfd, "\\x", O_RDONLY), -EXDEV);
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		ssize_t r = open_at(pump, &w, dfd, bad_names[i],
				    O_RDWR | O_CREAT | O_EXCL);

		if (r >= 0)
			fail_msg("'%s' was created", bad_names[i]);
		assert_int_equal(r, -BERTH_EPATH);
		assert_int_equal(berth_plat_name_ok(bad_names[i]),
				 -BERTH_EPATH);
	}
	assert_int_equal(berth_plat_name_ok("ok name.txt"), 0);
	assert_int_equal(berth_plat_name_ok("CONSOLE"), 0);

	/* A directory symlink (a reparse point) is never followed, as a
	 * parent or as the last component.  Skipped where it cannot be
	 * made (no privilege, or no support). */
	snprintf(target, sizeof(target), "%s\\real", dir);
	snprintf(link, sizeof(link), "%s\\lnk", dir);
	assert_true(CreateDirectoryA(target, NULL));
	if (CreateSymbolicLinkA(link, target, SYMBOLIC_LINK_FLAG_DIRECTORY)) {
		ssize_t r1 = open_at(pump, &w, dfd, "lnk/f",
				     O_RDWR | O_CREAT | O_EXCL);
		ssize_t r2 = open_at(pump, &w, dfd, "lnk",
				     O_RDONLY | O_DIRECTORY);

		/* Windows: -ELOOP (a reparse point in the way).  Wine 8
		 * keeps such a link as a Unix symlink that an open of the
		 * link itself does not find: -ENOENT.  Refused either way;
		 * "real/f" made below proves nothing was made through it. */
		assert_true(r1 == -ELOOP || r1 == -ENOENT);
		assert_true(r2 == -ELOOP || r2 == -ENOENT);
		RemoveDirectoryA(link);
	} else {
		print_message("no symlink here (error %lu): reparse check "
			      "not exercised\n",
			      GetLastError());
	}
	fd = (int)open_at(pump, &w, dfd, "real/f", O_RDWR | O_CREAT | O_EXCL);
	assert_true(fd >= 0);
	close(fd);
	assert_true(DeleteFileA(strcat(target, "\\f")));
	target[strlen(target) - 2] = '\0';
	assert_true(RemoveDirectoryA(target));
	close(dfd);
	assert_true(RemoveDirectoryA(dir));
	pump_done(pump);
}

const struct CMUnitTest pump_ops_tests[] = {
	cmocka_unit_test(test_errors),
	cmocka_unit_test(test_all_ops),
	cmocka_unit_test(test_confinement),
};
const size_t pump_ops_count = sizeof(pump_ops_tests) /
			      sizeof(pump_ops_tests[0]);
