/* SPDX-License-Identifier: MIT */
/*
 * Disk-commit tests: faults injected through the pump (ENOSPC mid-write,
 * EIO on fsync, failing open, chmod and rename, failing directory fsync):
 * the file hit keeps its old content, no temp file is left, the others are
 * committed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_commit_util.h"

/*
 * Commit "before", then "victim" (pre-existing with old content) with a
 * fault armed on its tag for @ops, then "after".  The victim keeps its old
 * content, no temp file remains, the others are committed; the victim's
 * event names the step that failed (@step) and its temp file.
 */
static void fault_case_stage(int durability, uint32_t ops, uint64_t nth,
			     int error, int step, uint32_t stage_ops);

static void fault_case(int durability, uint32_t ops, uint64_t nth, int error,
		       int step)
{
	fault_case_stage(durability, ops, nth, error, step, 0);
}

/* As fault_case(), and every request of @stage_ops under the stage's own
 * tag fails with EIO. */
static void fault_case_stage(int durability, uint32_t ops, uint64_t nth,
			     int error, int step, uint32_t stage_ops)
{
	struct berth_commit_opts o = {.durability = durability,
				      .tag_base = TAG_BASE,
				      .buf_size = 16 * 1024};
	struct berth_commit_meta m = {.mode = 0644,
				      .mtime_nsec = UTIME_OMIT,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	/* 256 buffers: at least 16 write requests, however many buffers
	 * each vectored write takes (COMMIT_WRITE_IOV). */
	size_t len = 4096 * 1024;
	unsigned char *data = malloc(len);
	struct berth_commit_file *f;
	struct berth_fault fault = {0};
	struct berth_pump_stats ps;
	struct env v;

	fill(data, len, 3);
	if (env_start(&v, &o))
		skip();
	if (stage_ops) {
		fault.ops = stage_ops;
		fault.tag = TAG_BASE;
		fault.count = 1u << 30;
		fault.error = EIO;
		assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
		fault.count = 0;
	}
	write_plain(&v, "victim", "old content");
	assert_int_equal(commit_one(&v, "before", data, 1000, &m), 0);
	/* Armed before begin (the open may be submitted at once): the
	 * victim is the stage's second item, so its tag is tag_base + 2. */
	fault.ops = ops;
	fault.tag = TAG_BASE + 2;
	fault.nth = nth;
	fault.error = error;
	assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
	assert_int_equal(berth_commit_file_begin(v.c, "victim", &m, 0, &f), 0);
	assert_int_equal(berth_commit_file_tag(f), TAG_BASE + 2);
	berth_commit_file_write(f, data, len); /* may see the error early */
	berth_commit_file_finish(f);
	assert_int_equal(commit_one(&v, "after", data, 2000, &m), 0);
	assert_int_equal(berth_commit_flush(v.c), -error);
	assert_int_equal(ev_err(&v, "victim"), -error);
	assert_int_equal(ev_last(&v, "victim").step, step);
	assert_true(ev_last(&v, "victim").has_tmp);
	assert_int_equal(ev_last(&v, "before").step, BERTH_COMMIT_STEP_NONE);
	assert_int_equal(ev_err(&v, "before"), 0);
	assert_int_equal(ev_err(&v, "after"), 0);
	expect_content(v.root, "victim", "old content", 11);
	expect_content(v.root, "before", data, 1000);
	expect_content(v.root, "after", data, 2000);
	assert_int_equal(count_temps(v.root), 0);
	berth_pump_stats(v.pump, &ps);
	assert_true(ps.faults >= 1);
	env_stop(&v);
	free(data);
}

/*
 * Small files (one buffer) are one call: a fault on it fails the file
 * like any step, the old file stays and no temp file is left; files around
 * it are unaffected.
 */
static void test_small_call_fault(void **state)
{
	struct berth_commit_meta m = {.mode = 0600,
				      .mtime_sec = 1500000000,
				      .mtime_nsec = 5,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1,
				      .size_hint = 100};
	struct berth_fault fault = {.ops = BERTH_OP_BIT(BERTH_OP_CALL),
				    .tag = TAG_BASE + 2,
				    .nth = 1,
				    .error = ENOSPC};
	unsigned char data[100];
	struct stat st;
	char p[160];
	struct env v;

	(void)state;
	fill(data, sizeof(data), 9);
	if (env_start(&v, NULL))
		skip();
	write_plain(&v, "victim", "old content");
	assert_int_equal(commit_one(&v, "before", data, 100, &m), 0);
	assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
	assert_int_equal(commit_one(&v, "victim", data, 100, &m), 0);
	assert_int_equal(commit_one(&v, "after", data, 50, &m), 0);
	assert_int_equal(berth_commit_flush(v.c), -ENOSPC);
	assert_int_equal(ev_err(&v, "victim"), -ENOSPC);
	assert_int_equal(ev_err(&v, "after"), 0);
	expect_content(v.root, "victim", "old content", 11);
	expect_content(v.root, "before", data, 100);
	expect_content(v.root, "after", data, 50);
	snprintf(p, sizeof(p), "%s/after", v.root);
	assert_int_equal(stat(p, &st), 0);
	expect_mode(p, 0600);
	expect_mtime(p, 1500000000, 5);
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

static void test_fault_enospc_write(void **state)
{
	(void)state;
	fault_case(BERTH_DURABLE_NONE, BERTH_OP_BIT(BERTH_OP_WRITE), 3, ENOSPC,
		   BERTH_COMMIT_STEP_WRITE);
}

static void test_fault_eio_fsync(void **state)
{
	(void)state;
	fault_case(BERTH_DURABLE_FILE, BERTH_OP_BIT(BERTH_OP_FSYNC), 1, EIO,
		   BERTH_COMMIT_STEP_FSYNC);
	/*
	 * Batch: the files' group syncs (pool calls under the stage's tag)
	 * fail too, so each file takes its own fsync (a failed syncfs()
	 * cannot say whose error it was), and the victim's fails.
	 */
	fault_case_stage(BERTH_DURABLE_BATCH, BERTH_OP_BIT(BERTH_OP_FSYNC), 1,
			 EIO, BERTH_COMMIT_STEP_FSYNC,
			 BERTH_OP_BIT(BERTH_OP_CALL));
}

static void test_fault_rename(void **state)
{
	(void)state;
	fault_case(BERTH_DURABLE_NONE, BERTH_OP_BIT(BERTH_OP_RENAMEAT2), 1,
		   EACCES, BERTH_COMMIT_STEP_RENAME);
	fault_case(BERTH_DURABLE_BATCH, BERTH_OP_BIT(BERTH_OP_RENAMEAT2), 1,
		   EDQUOT, BERTH_COMMIT_STEP_RENAME);
}

static void test_fault_open_and_meta(void **state)
{
	(void)state;
	fault_case(BERTH_DURABLE_NONE, BERTH_OP_BIT(BERTH_OP_OPENAT2), 1,
		   EACCES, BERTH_COMMIT_STEP_OPEN);
	fault_case(BERTH_DURABLE_NONE, BERTH_OP_BIT(BERTH_OP_FCHMODAT), 1, EIO,
		   BERTH_COMMIT_STEP_CHMOD);
}

/*
 * Batch durability where the group sync does not apply (a file system
 * whose syncfs() is not trusted, here said by a fault on the first group
 * call): that group's files take their own fsync, and no group sync is
 * tried again; every file is committed.
 */
static void test_group_sync_off(void **state)
{
	struct berth_commit_opts o = {.durability = BERTH_DURABLE_BATCH,
				      .tag_base = TAG_BASE};
	struct berth_fault fault = {.ops = BERTH_OP_BIT(BERTH_OP_CALL),
				    .tag = TAG_BASE,
				    .nth = 1,
				    .error = EOPNOTSUPP};
	struct berth_commit_stats st;
	struct berth_pump_stats ps;
	char rel[16];
	struct env v;
	int i;

	(void)state;
	if (env_start(&v, &o))
		skip();
	assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
	for (i = 0; i < 20; i++) {
		snprintf(rel, sizeof(rel), "f%d", i);
		assert_int_equal(commit_one(&v, rel, rel, strlen(rel), NULL),
				 0);
	}
	assert_int_equal(berth_commit_flush(v.c), 0);
	berth_commit_stats(v.c, &st);
	assert_int_equal(st.files_done, 20);
	assert_int_equal(st.files_failed, 0);
	assert_int_equal(st.group_syncs, 0);
	assert_int_equal(st.group_synced, 0);
	berth_pump_stats(v.pump, &ps);
	assert_int_equal(ps.faults, 1);
	for (i = 0; i < 20; i++) {
		snprintf(rel, sizeof(rel), "f%d", i);
		expect_content(v.root, rel, rel, strlen(rel));
	}
	assert_int_equal(count_temps(v.root), 0);
	env_stop(&v);
}

static void test_fault_dirsync(void **state)
{
	struct berth_commit_opts o = {.durability = BERTH_DURABLE_BATCH,
				      .tag_base = TAG_BASE};
	struct berth_fault fault = {.ops = BERTH_OP_BIT(BERTH_OP_FSYNC),
				    .tag = TAG_BASE, /* the stage's own */
				    .nth = 1,
				    .error = EIO};
	struct env v;

	(void)state;
	if (env_start(&v, &o))
		skip();
	assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
	assert_int_equal(commit_one(&v, "x", "data", 4, NULL), 0);
	assert_int_equal(berth_commit_flush(v.c), -EIO);
	assert_int_equal(ev_err(&v, "x"), 0);
	assert_int_equal(ev_err(&v, "."), -EIO);
	assert_int_equal(ev_last(&v, ".").step, BERTH_COMMIT_STEP_FSYNC);
	/* The next flush has nothing dirty left. */
	assert_int_equal(berth_commit_flush(v.c), 0);
	env_stop(&v);
}

/*
 * A tree operation that fails says which: the mkdir of "d" (its event an
 * OP, MKDIR), a symlink's creation (CREATE, its target named), its
 * neighbours done.
 */
static void test_fault_op_steps(void **state)
{
	struct berth_fault fault = {.ops = BERTH_OP_BIT(BERTH_OP_MKDIRAT),
				    .nth = 1,
				    .error = EACCES};
	struct berth_commit_meta m = {.mode = 0755,
				      .mtime_nsec = UTIME_OMIT,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	struct ev_rec e;
	struct env v;

	(void)state;
	if (env_start(&v, NULL))
		skip();
	/* Item 1 of the stage: tag_base + 1. */
	fault.tag = TAG_BASE + 1;
	assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
	assert_int_equal(berth_commit_mkdir(v.c, "d", &m), 0);
	assert_int_equal(berth_commit_mkdir(v.c, "ok", &m), 0);
	assert_int_equal(berth_commit_flush(v.c), -EACCES);
	e = ev_last(&v, "d");
	assert_int_equal(e.err, -EACCES);
	assert_int_equal(e.kind, BERTH_COMMIT_EV_OP);
	assert_int_equal(e.op, BERTH_COMMIT_OP_MKDIR);
	assert_int_equal(e.step, BERTH_COMMIT_STEP_MKDIR);
	assert_int_equal(ev_err(&v, "ok"), 0);
	assert_int_equal(exists(v.root, "d"), 0);
#ifndef _WIN32
	fault.ops = BERTH_OP_BIT(BERTH_OP_SYMLINKAT);
	fault.tag = TAG_BASE + 3;
	fault.error = ENOSPC;
	assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
	assert_int_equal(berth_commit_symlink(v.c, "ok/l", "target", &m), 0);
	assert_int_equal(berth_commit_flush(v.c), -ENOSPC);
	e = ev_last(&v, "ok/l");
	assert_int_equal(e.err, -ENOSPC);
	assert_int_equal(e.op, BERTH_COMMIT_OP_SYMLINK);
	assert_int_equal(e.step, BERTH_COMMIT_STEP_CREATE);
	assert_true(e.has_target);
	assert_int_equal(count_temps(v.root), 0);
#endif
	env_stop(&v);
}

/*
 * Every write of a file comes back short (the first attempt of each moves
 * at most 1000 bytes): the file is whole all the same, written on the
 * commit thread (a size hint within COMMIT_WRITE_HERE_MAX:
 * berth_pump_run_inline() continues it) or through the pump (no hint),
 * in each durability mode.
 */
static void test_fault_short_writes(void **state)
{
	static const int modes[] = {BERTH_DURABLE_NONE, BERTH_DURABLE_BATCH};
	size_t len = 1024 * 1024 - 777;
	unsigned char *data = malloc(len);
	struct berth_commit_meta m;
	struct berth_commit_opts o;
	struct berth_fault fault;
	struct env v;
	int i, hint;

	(void)state;
	assert_non_null(data);
	fill(data, len, 5);
	for (i = 0; i < 2; i++) {
		for (hint = 0; hint < 2; hint++) {
			o = (struct berth_commit_opts){.durability = modes[i],
						       .tag_base = TAG_BASE,
						       .buf_size = 16 * 1024};
			m = (struct berth_commit_meta){.mode = 0644,
						       .mtime_nsec = UTIME_OMIT,
						       .uid = (uint32_t)-1,
						       .gid = (uint32_t)-1,
						       .size_hint = hint ? len
									 : 0};
			if (env_start(&v, &o))
				skip();
			fault = (struct berth_fault){
				.ops = BERTH_OP_BIT(BERTH_OP_WRITE),
				.tag = TAG_BASE + 1,
				.nth = 1,
				.count = 1000000,
				.short_bytes = 1000};
			assert_int_equal(berth_pump_inject(v.pump, &fault), 0);
			assert_int_equal(commit_one(&v, "big", data, len, &m),
					 0);
			expect_committed(&v, "big", data, len);
			env_stop(&v);
		}
	}
	free(data);
}

const struct CMUnitTest commit_fault_tests[] = {
	cmocka_unit_test(test_fault_op_steps),
	cmocka_unit_test(test_small_call_fault),
	cmocka_unit_test(test_fault_enospc_write),
	cmocka_unit_test(test_fault_short_writes),
	cmocka_unit_test(test_fault_eio_fsync),
	cmocka_unit_test(test_fault_rename),
	cmocka_unit_test(test_fault_open_and_meta),
	cmocka_unit_test(test_group_sync_off),
	cmocka_unit_test(test_fault_dirsync),
};
const size_t commit_fault_count = sizeof(commit_fault_tests) /
				  sizeof(commit_fault_tests[0]);
