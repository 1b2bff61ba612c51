/* SPDX-License-Identifier: MIT */
/*
 * Disk-commit tests: writing a file and finishing it: in place, with finish
 * flags (kept partial files), into a partial directory and renamed into
 * place with a backup, writes that must not wait (try_write), and the pool's
 * per-file cap.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/commit/commit_int.h"
#include "test_commit_util.h"

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
		expect_mode(p, 0640);
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
	expect_mode(p, 0700);
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
	expect_mode(p, 0640);
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

struct cap_taker {
	struct berth_commit *c;
	struct berth_commit_file *f;
	struct commit_buf *b;
	atomic_bool got;
};

static void *cap_take(void *arg)
{
	struct cap_taker *t = arg;

	t->b = berth__commit_buf_get(t->c, t->f, 0);
	atomic_store(&t->got, true);
	return NULL;
}

/*
 * One file holds at most half the pool (so one large file streamed in
 * cycles through the same half and leaves the rest untouched), another
 * file still gets the other half, and a producer waiting at its file's cap
 * is woken once half of what its file holds is back, not per buffer.  The
 * pool's own calls, on files that are only their counters.
 */
static void test_file_cap(void **state)
{
	/* Eight 4 KiB buffers: one file may hold four. */
	struct berth_commit_opts o = {
		.tag_base = TAG_BASE, .buf_size = 4096, .mem_budget = 8 * 4096};
	struct berth_commit_file f = {0}, g = {0};
	struct commit_buf *fb[4], *gb[4];
	struct cap_taker t = {.f = &f};
	pthread_t th;
	struct env v;

	(void)state;
	if (env_start(&v, &o))
		skip();
	for (int i = 0; i < 4; i++)
		assert_non_null(fb[i] = berth__commit_buf_get(v.c, &f, 1));
	assert_null(berth__commit_buf_get(v.c, &f, 1)); /* four still free */
	for (int i = 0; i < 4; i++)
		assert_non_null(gb[i] = berth__commit_buf_get(v.c, &g, 1));
	assert_null(berth__commit_buf_get(v.c, &g, 1));
	for (int i = 0; i < 4; i++)
		berth__commit_buf_put(v.c, gb[i]);
	assert_int_equal(g.nbuf, 0);

	t.c = v.c;
	atomic_init(&t.got, false);
	assert_int_equal(pthread_create(&th, NULL, cap_take, &t), 0);
	usleep(20 * 1000);
	berth__commit_buf_put(v.c, fb[0]); /* f holds 3: above half its cap */
	usleep(50 * 1000);
	assert_false(atomic_load(&t.got));
	berth__commit_buf_put(v.c, fb[1]); /* 2: half */
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_non_null(t.b);
	assert_int_equal(f.nbuf, 3);
	berth__commit_buf_put(v.c, t.b);
	berth__commit_buf_put(v.c, fb[2]);
	berth__commit_buf_put(v.c, fb[3]);
	assert_int_equal(f.nbuf, 0);
	env_stop(&v);
}

const struct CMUnitTest commit_finish_tests[] = {
	cmocka_unit_test(test_inplace),
	cmocka_unit_test(test_finish_flags),
	cmocka_unit_test(test_finish_sub_rename),
	cmocka_unit_test(test_try_write),
	cmocka_unit_test(test_file_cap),
};
const size_t commit_finish_count = sizeof(commit_finish_tests) /
				   sizeof(commit_finish_tests[0]);
