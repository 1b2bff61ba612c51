/* SPDX-License-Identifier: MIT */
/* Shared helpers of the delta engine tests (test_delta*.c). */
#ifndef BERTH_TEST_DELTA_H
#define BERTH_TEST_DELTA_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "engine/basis/basis.h"
#include "engine/delta/delta.h"
#include "engine/pump/pump.h"
#include "delta_sender.h"

/* A growable byte sink for the output callbacks. */
struct sink {
	uint8_t *buf;
	size_t len, cap;
	int fail_at_call; /* > 0: that call returns fail_err */
	int fail_err;
	int calls;
};
int sink_cb(void *arg, const void *buf, size_t len);
void sink_free(struct sink *s);

/* The pump shared by one test group (BERTH_PUMP picks the backend). */
struct berth_pump *test_pump(void);
int test_pump_setup(void **state);
int test_pump_teardown(void **state);

/* An unlinked temp file holding @len bytes of @data; returns its fd. */
int temp_file(const uint8_t *data, size_t len);

/* Signature of @basis (@len bytes) through berth_sig_file() on a temp file;
 * returns the wire bytes (head + sums) in @sig. */
void sig_of(const struct berth_csum_params *p, const struct berth_sum_head *h,
	    int fd, struct sink *sig);

/*
 * Apply @t to basis @fd (@basis_len bytes) with head @h, the output going
 * into @out (whose sink_cb the engine @a was created with) and return
 * finish()'s result; @sum is the sender's whole-file checksum.
 */
int apply_tokens(struct berth_delta_apply *a, int fd, uint64_t basis_len,
		 const struct berth_sum_head *h, int type,
		 const struct ds_tokens *t, const uint8_t *sum,
		 struct sink *out);

/* Deterministic test data: xorshift bytes from @seed. */
void rand_bytes(uint64_t *seed, uint8_t *out, size_t n);
uint64_t rand_u64(uint64_t *seed);

/* Test groups, one per source file. */
extern const struct CMUnitTest delta_pure_tests[];
extern const size_t delta_pure_count;
extern const struct CMUnitTest delta_kat_tests[];
extern const size_t delta_kat_count;
extern const struct CMUnitTest delta_rt_tests[];
extern const size_t delta_rt_count;

#endif
