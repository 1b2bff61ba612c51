/* SPDX-License-Identifier: MIT */
/*
 * Pump tests: cancelling one request and all requests of a tag.
 */
#include <errno.h>
#include <unistd.h>

#include "test_pump_util.h"

/* ---- cancellation ---- */

static void test_cancel_blocked_read(void **state)
{
	struct berth_pump *pump = pump_new();
	struct tracked t;
	struct waiter w;
	char buf[16];
	int pfd[2];

	(void)state;
	waiter_init(&w);
	assert_int_equal(pipe(pfd), 0);
	berth_prep_read(&t.req, pfd[0], buf, sizeof(buf), BERTH_OFF_STREAM);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	/* Give it time to really block in the kernel or a worker. */
	usleep(20000);
	assert_int_equal(waiter_count(&w), 0);
	berth_pump_cancel(pump, &t.req);
	waiter_wait(&w, 1);
	assert_int_equal(t.res, -ECANCELED);
	assert_int_equal(atomic_load(&t.calls), 1);

	/* The pipe still works afterwards: nothing was consumed. */
	assert_int_equal(write(pfd[1], "abc", 3), 3);
	berth_prep_read(&t.req, pfd[0], buf, sizeof(buf), BERTH_OFF_STREAM);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 2);
	assert_int_equal(t.res, 3);
	close(pfd[0]);
	close(pfd[1]);
	pump_done(pump);
}

#define NPIPES 32
#define PER_PIPE 10

static void test_cancel_tag(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct tracked t[NPIPES * PER_PIPE];
	static char bufs[NPIPES * PER_PIPE][8];
	struct tracked other;
	struct waiter w;
	char obuf[8];
	int pipes[NPIPES][2], opipe[2], i;

	(void)state;
	waiter_init(&w);
	for (i = 0; i < NPIPES; i++)
		assert_int_equal(pipe(pipes[i]), 0);
	assert_int_equal(pipe(opipe), 0);
	/* Hundreds of reads that can never complete, tag 7. */
	for (i = 0; i < NPIPES * PER_PIPE; i++) {
		berth_prep_read(&t[i].req, pipes[i % NPIPES][0], bufs[i], 8,
				BERTH_OFF_STREAM);
		track(&t[i], pump, &w, 7);
		assert_int_equal(berth_pump_submit(pump, &t[i].req), 0);
	}
	/* One of another owner, tag 8. */
	berth_prep_read(&other.req, opipe[0], obuf, sizeof(obuf),
			BERTH_OFF_STREAM);
	track(&other, pump, &w, 8);
	assert_int_equal(berth_pump_submit(pump, &other.req), 0);
	usleep(20000);

	assert_int_equal(berth_pump_cancel_tag(pump, 7), 0);
	waiter_wait(&w, NPIPES * PER_PIPE);
	for (i = 0; i < NPIPES * PER_PIPE; i++) {
		assert_int_equal(atomic_load(&t[i].calls), 1);
		assert_int_equal(t[i].res, -ECANCELED);
	}
	/* The other owner's request is untouched and still works. */
	assert_int_equal(atomic_load(&other.calls), 0);
	assert_int_equal(write(opipe[1], "ok", 2), 2);
	waiter_wait(&w, NPIPES * PER_PIPE + 1);
	assert_int_equal(other.res, 2);
	assert_memory_equal(obuf, "ok", 2);

	for (i = 0; i < NPIPES; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	close(opipe[0]);
	close(opipe[1]);
	pump_done(pump);
}

const struct CMUnitTest pump_cancel_tests[] = {
	cmocka_unit_test(test_cancel_blocked_read),
	cmocka_unit_test(test_cancel_tag),
};
const size_t pump_cancel_count = sizeof(pump_cancel_tests) /
				 sizeof(pump_cancel_tests[0]);
