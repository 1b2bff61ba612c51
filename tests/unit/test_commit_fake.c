/* SPDX-License-Identifier: MIT */
/*
 * --fake-super's user.rsync.%stat text (commit_fake.c): the exact bytes
 * rsync writes ("%o %u,%u %u:%u"), what its sscanf accepts and rejects,
 * and a round trip through a real xattr (skipped without user xattrs).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/commit/commit.h"

static void test_format(void **state)
{
	struct berth_fake_stat st = {S_IFCHR | 0644, 1, 3, 0, 0};
	char buf[64];
	int n;

	(void)state;
	n = berth_fake_stat_format(buf, sizeof(buf), &st);
	assert_int_equal(n, 13);
	assert_memory_equal(buf, "20644 1,3 0:0", 13);
	st = (struct berth_fake_stat){S_IFREG | 04755, 0, 0, 123, 456};
	n = berth_fake_stat_format(buf, sizeof(buf), &st);
	assert_string_equal(buf, "104755 0,0 123:456");
	st = (struct berth_fake_stat){S_IFDIR | 01777, 0, 0, 4294967295u, 7};
	n = berth_fake_stat_format(buf, sizeof(buf), &st);
	assert_string_equal(buf, "41777 0,0 4294967295:7");
	/* Too small: nothing half-written is claimed. */
	assert_int_equal(berth_fake_stat_format(buf, 5, &st), -ENOSPC);
}

static void test_parse(void **state)
{
	struct berth_fake_stat st;

	(void)state;
	assert_int_equal(berth_fake_stat_parse("20644 1,3 0:0", 13, &st), 0);
	assert_int_equal(st.mode, S_IFCHR | 0644);
	assert_int_equal(st.rdev_major, 1);
	assert_int_equal(st.rdev_minor, 3);
	assert_int_equal(st.uid, 0);
	assert_int_equal(st.gid, 0);
	assert_int_equal(berth_fake_stat_parse("100600 0,0 65534:100", 20, &st),
			 0);
	assert_int_equal(st.mode, S_IFREG | 0600);
	assert_int_equal(st.uid, 65534);
	assert_int_equal(st.gid, 100);
	/* sscanf's leniency: blanks before numbers, trailing text. */
	assert_int_equal(berth_fake_stat_parse("10644  2, 3 4: 5\n", 17, &st),
			 0);
	assert_int_equal(st.rdev_minor, 3);
	assert_int_equal(st.gid, 5);
	/* Not the text: rsync calls it corrupt. */
	assert_int_equal(berth_fake_stat_parse("", 0, &st), -EINVAL);
	assert_int_equal(berth_fake_stat_parse("100644", 6, &st), -EINVAL);
	assert_int_equal(berth_fake_stat_parse("100644 0 0:0", 12, &st),
			 -EINVAL);
	/* The octal mode stops at an 8, as sscanf's "%o %d" does. */
	assert_int_equal(berth_fake_stat_parse("18 0,0 0:0", 10, &st), -EINVAL);
	assert_int_equal(berth_fake_stat_parse("18,3 0:0", 8, &st), 0);
	assert_int_equal(st.mode, 1);
	assert_int_equal(st.rdev_major, 8);
	assert_int_equal(berth_fake_stat_parse("9 0,0 0:0", 9, &st), -EINVAL);
	assert_int_equal(berth_fake_stat_parse("644 0;0 0:0", 11, &st),
			 -EINVAL);
	assert_int_equal(berth_fake_stat_parse("644 0,0 x:0", 11, &st),
			 -EINVAL);
	/* The length bounds the text: no reading past it. */
	assert_int_equal(berth_fake_stat_parse("644 0,0 0:0", 10, &st),
			 -EINVAL);
	assert_int_equal(
		berth_fake_stat_parse("644 0,0 99999999999:0", 21, &st),
		-EINVAL);
}

static void test_xattr_round_trip(void **state)
{
	char dir[] = "/dev/shm/berth-fake-XXXXXX", path[64];
	struct berth_fake_stat in = {S_IFBLK | 0600, 7, 200, 1, 2}, out;
	char buf[64];
	int fd, n;

	(void)state;
	if (!mkdtemp(dir))
		skip();
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	n = berth_fake_stat_format(buf, sizeof(buf), &in);
	if (fsetxattr(fd, "user.rsync.%stat", buf, (size_t)n, 0) < 0) {
		close(fd);
		unlink(path);
		rmdir(dir);
		skip(); /* no user xattrs here */
	}
	assert_int_equal(berth_fake_stat_read(fd, &out), 0);
	assert_memory_equal(&in, &out, sizeof(in));
	assert_int_equal(fremovexattr(fd, "user.rsync.%stat"), 0);
	assert_int_equal(berth_fake_stat_read(fd, &out), -ENODATA);
	assert_int_equal(fsetxattr(fd, "user.rsync.%stat", "junk", 4, 0), 0);
	assert_int_equal(berth_fake_stat_read(fd, &out), -EINVAL);
	close(fd);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_xattr_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
