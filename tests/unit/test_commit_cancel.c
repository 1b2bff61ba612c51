/* SPDX-License-Identifier: MIT */
/*
 * Disk-commit tests: abort, cancel and free with files unfinished and with
 * hundreds of writes in flight, and cancel from another thread while the
 * producer waits on the budget.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_commit_util.h"

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

const struct CMUnitTest commit_cancel_tests[] = {
	cmocka_unit_test(test_small_cancel_unended),
	cmocka_unit_test(test_free_unfinished),
	cmocka_unit_test(test_abort),
	cmocka_unit_test(test_cancel_inflight),
	cmocka_unit_test(test_cancel_concurrent),
};
const size_t commit_cancel_count = sizeof(commit_cancel_tests) /
				   sizeof(commit_cancel_tests[0]);
