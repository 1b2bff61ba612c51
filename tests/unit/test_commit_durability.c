/* SPDX-License-Identifier: MIT */
/*
 * Disk-commit tests: many small files from two threads and one large file,
 * in each durability mode (none, file, batch), with small budgets that make
 * the producers wait; the mode a client's --fsync selects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "engine/platform/platform.h"
#include "test_commit_util.h"

struct producer {
	struct env *v;
	int id;
	int nfiles;
	unsigned char *data;
};

#define SMALL_MAX (16 * 1024)

/* Whether the group sync applies beneath @dirfd (its file system's). */
static int group_sync_here(int dirfd)
{
	uint64_t dev;

	return berth_plat_syncfs(dirfd, &dev) == 0;
}

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
	/* Batch on a file system with a trusted syncfs(): every file
	 * covered by a group sync, many files to one. */
	if (durability == BERTH_DURABLE_BATCH && group_sync_here(v.rootfd)) {
		assert_int_equal(st.group_synced, 300);
		assert_true(st.group_syncs >= 1 && st.group_syncs < 300);
	} else {
		assert_int_equal(st.group_syncs, 0);
		assert_int_equal(st.group_synced, 0);
	}
	for (t = 0; t < 2; t++) {
		for (i = 0; i < 150; i++) {
			size_t len = 1 + (size_t)(i * 7919) % SMALL_MAX;

			snprintf(rel, sizeof(rel), "p%d_d%d/f%d", t, i % 4, i);
			expect_content(v.root, rel, data + (i % 64), len);
			snprintf(p, sizeof(p), "%s/%s", v.root, rel);
			assert_int_equal(stat(p, &sb), 0);
			expect_mode(p, 0640);
			expect_mtime(p, 1600000000, 123456789);
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
	expect_committed(&v, "big", data, len);
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

/* What a session runs with: the configured mode wins; with none
 * configured, the client's --fsync selects batch, never the strict
 * one-at-a-time mode. */
static void test_client_fsync_mode(void **state)
{
	(void)state;
	assert_int_equal(berth_commit_durability(BERTH_DURABLE_NONE, false),
			 BERTH_DURABLE_NONE);
	assert_int_equal(berth_commit_durability(BERTH_DURABLE_NONE, true),
			 BERTH_DURABLE_BATCH);
	assert_int_equal(berth_commit_durability(BERTH_DURABLE_FILE, false),
			 BERTH_DURABLE_FILE);
	assert_int_equal(berth_commit_durability(BERTH_DURABLE_FILE, true),
			 BERTH_DURABLE_FILE);
	assert_int_equal(berth_commit_durability(BERTH_DURABLE_BATCH, false),
			 BERTH_DURABLE_BATCH);
	assert_int_equal(berth_commit_durability(BERTH_DURABLE_BATCH, true),
			 BERTH_DURABLE_BATCH);
}

const struct CMUnitTest commit_durability_tests[] = {
	cmocka_unit_test(test_client_fsync_mode),
	cmocka_unit_test(test_small_none),
	cmocka_unit_test(test_small_file),
	cmocka_unit_test(test_small_batch),
	cmocka_unit_test(test_large_none),
	cmocka_unit_test(test_large_file),
	cmocka_unit_test(test_large_batch),
};
const size_t commit_durability_count = sizeof(commit_durability_tests) /
				       sizeof(commit_durability_tests[0]);
