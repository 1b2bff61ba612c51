/* SPDX-License-Identifier: MIT */
/*
 * Disk-commit tests: extended attributes on temp files, nodes and existing
 * items (-X).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "test_commit_util.h"

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

const struct CMUnitTest commit_xattr_tests[] = {
	cmocka_unit_test(test_xattrs),
};
const size_t commit_xattr_count = sizeof(commit_xattr_tests) /
				  sizeof(commit_xattr_tests[0]);
