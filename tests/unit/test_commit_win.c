/* SPDX-License-Identifier: MIT */
/*
 * Disk-commit tests, Windows only (under Wine: scripts/test-windows.sh), in
 * place of the groups whose features Windows lacks (test_commit_tree.c:
 * symlinks, hard links, device nodes, owners; test_commit_xattr.c).  A name
 * Windows cannot hold is refused on its own (-BERTH_EPATH) while the rest
 * of the batch commits; what has no Windows counterpart (symlinks, hard
 * links, nodes, xattrs, ACLs, --fake-super) fails that one item with
 * -EOPNOTSUPP; an owner cannot be given (counted, as EPERM on Linux);
 * directories, deletes, renames and times work.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_commit_util.h"

static const struct berth_commit_meta win_meta = {.mode = 0644,
						  .mtime_sec = 1500000000,
						  .mtime_nsec = 700,
						  .uid = (uint32_t)-1,
						  .gid = (uint32_t)-1};

static void test_win_names(void **state)
{
	static const char *const bad[] = {"CON",  "nul.txt", "COM1",
					  "a.",	  "a ",	     "a:b",
					  "a\\b", "x?",	     "d/LPT1"};
	struct env v;
	char good[32];
	unsigned i;
	int r;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	assert_int_equal(berth_commit_mkdir(v.c, "d", NULL), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = commit_one(&v, bad[i], "bad", 3, &win_meta);
		assert_true(r == 0 || r == -BERTH_EPATH);
		/* the good files around it commit */
		snprintf(good, sizeof(good), "%sgood%u", i % 2 ? "" : "d/", i);
		assert_int_equal(commit_one(&v, good, "ok", 2, &win_meta), 0);
	}
	assert_int_equal(berth_commit_mkdir(v.c, "dir.", NULL), 0);
	assert_true(berth_commit_flush(v.c) < 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ev_err(&v, bad[i]) != -BERTH_EPATH)
			fail_msg("'%s': %d", bad[i], ev_err(&v, bad[i]));
	assert_int_equal(ev_err(&v, "dir."), -BERTH_EPATH);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(good, sizeof(good), "%sgood%u", i % 2 ? "" : "d/", i);
		assert_int_equal(ev_err(&v, good), 0);
		expect_content(v.root, good, "ok", 2);
	}
	assert_false(exists(v.root, "dir"));
	assert_false(exists(v.root, "a"));
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

/* Whether @path got an EV_XATTR event with -EOPNOTSUPP. */
static bool xattr_refused(struct env *v, const char *path)
{
	bool r = false;
	unsigned i;

	pthread_mutex_lock(&v->lock);
	for (i = 0; i < v->nev; i++)
		if (!strcmp(v->ev[i].path, path) &&
		    v->ev[i].kind == BERTH_COMMIT_EV_XATTR &&
		    v->ev[i].err == -EOPNOTSUPP)
			r = true;
	pthread_mutex_unlock(&v->lock);
	return r;
}

static void test_win_unsupported(void **state)
{
	struct berth_commit_meta fifo = win_meta, lm = win_meta, xm = win_meta,
				 am = win_meta;
	static const struct berth_commit_racl racl = {.user_obj = 7,
						      .group_obj = 5,
						      .mask_obj = 0xff,
						      .other_obj = 5};
	struct berth_commit_xattrs *xa;
	struct berth_commit_opts o = {.tag_base = TAG_BASE,
				      .preserve_owner = 1};
	struct berth_commit_stats st;
	struct env v;

	(void)state;
	if (env_start(&v, &o))
		skip();
	assert_int_equal(commit_one(&v, "file", "data", 4, &win_meta), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	fifo.mode = S_IFIFO | 0644;
	lm.mode = 0777;
	assert_int_equal(berth_commit_symlink(v.c, "sl", "file", &lm), 0);
	assert_int_equal(berth_commit_hardlink(v.c, "hl", "file", NULL), 0);
	assert_int_equal(berth_commit_mknod(v.c, "fifo", &fifo, 0), 0);
	xa = calloc(1, sizeof(*xa) + sizeof(xa->items[0]));
	assert_non_null(xa);
	xa->count = 1;
	xa->user_only = true;
	xa->items[0] = (struct berth_commit_xattr){
		.name = "user.x", .value = "v", .len = 1};
	xm.xattrs = xa;
	assert_int_equal(commit_one(&v, "withxattr", "x", 1, &xm), 0);
	am.acl[0] = &racl;
	assert_int_equal(commit_one(&v, "withacl", "a", 1, &am), 0);
	/* An owner to give: no uid on Windows, counted as not done. */
	xm = win_meta;
	xm.xattrs = NULL;
	xm.uid = 1000;
	xm.gid = 1000;
	assert_int_equal(commit_one(&v, "owned", "o", 1, &xm), 0);
	assert_true(berth_commit_flush(v.c) < 0);
	assert_int_equal(ev_err(&v, "sl"), -EOPNOTSUPP);
	assert_int_equal(ev_err(&v, "hl"), -EOPNOTSUPP);
	assert_int_equal(ev_err(&v, "fifo"), -EOPNOTSUPP);
	/* A failing attribute does not fail its file (as on Linux): it
	 * is reported on its own. */
	assert_int_equal(ev_err(&v, "withxattr"), 0);
	assert_true(xattr_refused(&v, "withxattr"));
	assert_int_equal(ev_err(&v, "withacl"), -EOPNOTSUPP);
	assert_int_equal(ev_err(&v, "owned"), 0);
	berth_commit_stats(v.c, &st);
	assert_true(st.chown_ignored >= 1);
	expect_content(v.root, "owned", "o", 1);
	expect_content(v.root, "file", "data", 4);
	assert_false(exists(v.root, "sl"));
	assert_false(exists(v.root, "hl"));
	assert_false(exists(v.root, "fifo"));
	expect_content(v.root, "withxattr", "x", 1);
	assert_false(exists(v.root, "withacl"));
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

static void test_win_tree(void **state)
{
	struct berth_commit_meta dm = win_meta, ro = win_meta;
	char p[512];
	struct env v;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	dm.mode = S_IFDIR | 0755;
	ro.mode = 0444;
	assert_int_equal(berth_commit_mkdir(v.c, "a", NULL), 0);
	assert_int_equal(berth_commit_mkdir(v.c, "a/b", NULL), 0);
	assert_int_equal(commit_one(&v, "a/b/f", "one", 3, &win_meta), 0);
	assert_int_equal(commit_one(&v, "a/ro", "r", 1, &ro), 0);
	assert_int_equal(commit_one(&v, "gone", "g", 1, &win_meta), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	/* replaced in place (POSIX-semantics rename over the old one) */
	assert_int_equal(commit_one(&v, "a/b/f", "two!", 4, &win_meta), 0);
	assert_int_equal(berth_commit_rename(v.c, "a/b/f", "a/f2", NULL), 0);
	assert_int_equal(berth_commit_delete(v.c, "gone", 0, NULL), 0);
	assert_int_equal(berth_commit_delete(v.c, "a/b", 1, NULL), 0);
	assert_int_equal(berth_commit_dir_meta(v.c, "a", &dm), 0);
	assert_int_equal(berth_commit_flush(v.c), 0);
	expect_content(v.root, "a/f2", "two!", 4);
	assert_false(exists(v.root, "a/b"));
	assert_false(exists(v.root, "gone"));
	snprintf(p, sizeof(p), "%s/a/f2", v.root);
	expect_mtime(p, 1500000000, 700);
	expect_mode(p, 0644);
	snprintf(p, sizeof(p), "%s/a/ro", v.root);
	expect_mode(p, 0444);
	snprintf(p, sizeof(p), "%s/a", v.root);
	expect_mtime(p, 1500000000, 700);
	/* Longer than Win32's MAX_PATH (260): opened a component at a time
	 * beneath the root, so it commits. */
	memset(p, 0, sizeof(p));
	for (int k = 0; k < 6; k++) {
		strcat(p, k ? "/" : "");
		memset(p + strlen(p), 'a' + k, 60);
		assert_int_equal(berth_commit_mkdir(v.c, p, NULL), 0);
	}
	strcat(p, "/f");
	assert_true(strlen(p) > 300);
	assert_int_equal(commit_one(&v, p, "deep", 4, &win_meta), 0);
	/* (the events keep 128 bytes of a path: the flush's result says
	 * that every item committed) */
	assert_int_equal(berth_commit_flush(v.c), 0);
	assert_int_equal(count_temps(v.root), 0);
	/* Removed the same way, deepest first: env_stop()'s removal goes
	 * through whole paths, which stop at MAX_PATH. */
	assert_int_equal(berth_commit_delete(v.c, p, 0, NULL), 0);
	for (int k = 5; k >= 0; k--) {
		p[60 * (k + 1) + k] = '\0';
		assert_int_equal(berth_commit_delete(v.c, p, 1, NULL), 0);
	}
	assert_int_equal(berth_commit_flush(v.c), 0);
	assert_false(exists(v.root, p)); /* the first component */
	env_stop(&v);
}

const struct CMUnitTest commit_win_tests[] = {
	cmocka_unit_test(test_win_names),
	cmocka_unit_test(test_win_unsupported),
	cmocka_unit_test(test_win_tree),
};
const size_t commit_win_count = sizeof(commit_win_tests) /
				sizeof(commit_win_tests[0]);
