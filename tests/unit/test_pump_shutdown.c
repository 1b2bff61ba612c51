/* SPDX-License-Identifier: MIT */
/*
 * Pump tests: shutdown with requests in flight, and from a callback.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "test_pump_util.h"

/* ---- shutdown ---- */

static void test_shutdown_in_flight(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct tracked t[200];
	static char bufs[200][64];
	struct tracked late;
	struct waiter w;
	char data[64] = "data";
	int pfd[2], fd, i;

	(void)state;
	waiter_init(&w);
	assert_int_equal(pipe(pfd), 0);
	fd = tmp_file(data, sizeof(data));
	for (i = 0; i < 200; i++) {
		if (i % 2)
			berth_prep_read(&t[i].req, pfd[0], bufs[i], 64,
					BERTH_OFF_STREAM);
		else
			berth_prep_read(&t[i].req, fd, bufs[i], 64, 0);
		track(&t[i], pump, &w, (uint64_t)i);
		assert_int_equal(berth_pump_submit(pump, &t[i].req), 0);
	}
	assert_int_equal(berth_pump_shutdown(pump), 0);
	/* After shutdown returns, every callback has run exactly once. */
	assert_int_equal(waiter_count(&w), 200);
	for (i = 0; i < 200; i++) {
		assert_int_equal(atomic_load(&t[i].calls), 1);
		if (i % 2)
			assert_int_equal(t[i].res, -ECANCELED);
		else
			assert_true(t[i].res == 64 || t[i].res == -ECANCELED);
	}
	/* Submitting now fails at once, with no callback. */
	berth_prep_nop(&late.req);
	track(&late, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &late.req), -ESHUTDOWN);
	assert_int_equal(berth_pump_shutdown(pump), 0); /* idempotent */
	assert_int_equal(atomic_load(&late.calls), 0);
	close(fd);
	close(pfd[0]);
	close(pfd[1]);
	pump_done(pump);
}

/* A callback chains the next request and tries to shut the pump down. */
struct chain {
	struct berth_req req;
	struct berth_pump *pump;
	struct waiter w;
	int left;
	int shutdown_ret;
};

static void chain_cb(struct berth_req *req, ssize_t res)
{
	struct chain *c = req->data;

	assert_int_equal(res, 0);
	c->shutdown_ret = berth_pump_shutdown(c->pump);
	if (--c->left > 0) {
		berth_prep_nop(&c->req);
		assert_int_equal(berth_pump_submit(c->pump, &c->req), 0);
		return;
	}
	pthread_mutex_lock(&c->w.lock);
	c->w.done = 1;
	pthread_cond_broadcast(&c->w.cond);
	pthread_mutex_unlock(&c->w.lock);
}

static void test_submit_from_callback(void **state)
{
	struct chain c = {.left = 1000};

	(void)state;
	c.pump = pump_new();
	waiter_init(&c.w);
	berth_prep_nop(&c.req);
	berth_req_set_cb(&c.req, chain_cb, &c, 0);
	assert_int_equal(berth_pump_submit(c.pump, &c.req), 0);
	waiter_wait(&c.w, 1);
	assert_int_equal(c.left, 0);
	assert_int_equal(c.shutdown_ret, -EDEADLK);
	pump_done(c.pump);
}

const struct CMUnitTest pump_shutdown_tests[] = {
	cmocka_unit_test(test_shutdown_in_flight),
	cmocka_unit_test(test_submit_from_callback),
};
const size_t pump_shutdown_count = sizeof(pump_shutdown_tests) /
				   sizeof(pump_shutdown_tests[0]);
