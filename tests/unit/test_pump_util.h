/* SPDX-License-Identifier: MIT */
/* Shared fixtures of the pump tests (test_pump_*.c). */
#ifndef BERTH_TEST_PUMP_UTIL_H
#define BERTH_TEST_PUMP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <sys/types.h>
#include <cmocka.h>

#include "engine/pump/pump.h"

/* Counts callbacks; the test thread waits for a number of them. */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned long done;
};

struct tracked {
	struct berth_req req;
	struct waiter *w;
	atomic_int calls;
	ssize_t res;
	int on_pump_thread;
	struct berth_pump *pump;
};

void waiter_init(struct waiter *w);
void waiter_wait(struct waiter *w, unsigned long n);
unsigned long waiter_count(struct waiter *w);

/* Arm @t's request to count its callback in @w, with @tag. */
void track(struct tracked *t, struct berth_pump *pump, struct waiter *w,
	   uint64_t tag);

/* Submit @t's prepared request with @tag (run1: tag 0), wait for its one
 * callback and return its result. */
ssize_t run1_tag(struct berth_pump *pump, struct waiter *w, struct tracked *t,
		 uint64_t tag);
ssize_t run1(struct berth_pump *pump, struct waiter *w, struct tracked *t);

/* The backend BERTH_PUMP asks for (BERTH_PUMP_AUTO when unset). */
int expected_backend(void);

/* A default pump, of the backend the environment asked for. */
struct berth_pump *pump_new(void);

/* Shut down and check that every accepted request completed once. */
void pump_done(struct berth_pump *pump);

/* An unlinked temp file holding @len bytes of @content; returns its fd. */
int tmp_file(const char *content, size_t len);

/* Whether the pump set up its SQPOLL helper ring. */
bool helper_up(struct berth_pump *pump);

/* The helper ring takes a share of every queue deeper than one read. */
bool helper_on_every_queue(struct berth_pump *pump);

/* Test groups, one per source file, in the order main() runs them. */
extern const struct CMUnitTest pump_io_tests[];
extern const size_t pump_io_count;
extern const struct CMUnitTest pump_ops_tests[];
extern const size_t pump_ops_count;
extern const struct CMUnitTest pump_cancel_tests[];
extern const size_t pump_cancel_count;
extern const struct CMUnitTest pump_shutdown_tests[];
extern const size_t pump_shutdown_count;
extern const struct CMUnitTest pump_fault_tests[];
extern const size_t pump_fault_count;
extern const struct CMUnitTest pump_deep_tests[];
extern const size_t pump_deep_count;

#endif
