/* SPDX-License-Identifier: MIT */
/*
 * Disk-commit tests: tree operations (directories, symlinks, hard links,
 * devices, deletes, metadata of existing entries) and ownership.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "test_commit_util.h"

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

const struct CMUnitTest commit_tree_tests[] = {
	cmocka_unit_test(test_ops),
	cmocka_unit_test(test_owner_and_devices),
	cmocka_unit_test(test_set_meta),
};
const size_t commit_tree_count = sizeof(commit_tree_tests) /
				 sizeof(commit_tree_tests[0]);
