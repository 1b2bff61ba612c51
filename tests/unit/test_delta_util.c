/* SPDX-License-Identifier: MIT */
/* Delta tests: helpers and main(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_delta.h"

int sink_cb(void *arg, const void *buf, size_t len)
{
	struct sink *s = arg;

	s->calls++;
	if (s->fail_at_call && s->calls == s->fail_at_call)
		return s->fail_err;
	assert_true(len > 0);
	if (s->len + len > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;

		while (cap < s->len + len)
			cap *= 2;
		s->buf = realloc(s->buf, cap);
		assert_non_null(s->buf);
		s->cap = cap;
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

void sink_free(struct sink *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

static struct berth_pump *the_pump;

struct berth_pump *test_pump(void)
{
	return the_pump;
}

int test_pump_setup(void **state)
{
	struct berth_pump_opts o = {0};

	(void)state;
	return berth_pump_create(&o, &the_pump) < 0 ? -1 : 0;
}

int test_pump_teardown(void **state)
{
	(void)state;
	berth_pump_free(the_pump);
	the_pump = NULL;
	return 0;
}

int temp_file(const uint8_t *data, size_t len)
{
	char path[] = "/tmp/berth-delta-XXXXXX";
	int fd = mkstemp(path);
	size_t off = 0;

	assert_true(fd >= 0);
	unlink(path);
	while (off < len) {
		ssize_t n = write(fd, data + off, len - off);

		assert_true(n > 0);
		off += (size_t)n;
	}
	return fd;
}

void sig_of(const struct berth_csum_params *p, const struct berth_sum_head *h,
	    int fd, struct sink *sig)
{
	struct berth_sig_opts o = {.pump = test_pump(), .read_size = 64 << 10};
	struct berth_sig *s;

	assert_int_equal(berth_sig_create(&o, &s), 0);
	assert_int_equal(berth_sig_file(s, fd, h, p, sink_cb, sig), 0);
	berth_sig_free(s);
	assert_int_equal(sig->len, BERTH_SUM_HEAD_WIRE + berth_sig_wire_len(h));
}

int apply_tokens(struct berth_delta_apply *a, int fd, uint64_t basis_len,
		 const struct berth_sum_head *h, int type,
		 const struct ds_tokens *t, const uint8_t *sum,
		 struct sink *out)
{
	struct berth_delta_file f = {.basis_fd = fd,
				     .basis_size = basis_len,
				     .head = *h,
				     .csum_type = type};
	uint64_t total = 0;
	int ret;

	(void)out;
	ret = berth_delta_apply_begin(a, &f);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < t->n; i++) {
		const struct ds_token *k = &t->v[i];

		if (k->is_lit)
			ret = berth_delta_apply_literal(a, k->lit, k->len);
		else
			ret = berth_delta_apply_blocks(a, k->first, k->n);
		if (ret < 0) {
			berth_delta_apply_abort(a);
			return ret;
		}
	}
	ret = berth_delta_apply_finish(a, sum, berth_csum_digest_len(type),
				       &total);
	if (ret == 0)
		assert_int_equal(total, out->len);
	return ret;
}

uint64_t rand_u64(uint64_t *seed)
{
	uint64_t x = *seed;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*seed = x;
	return x * 0x2545f4914f6cdd1dull;
}

void rand_bytes(uint64_t *seed, uint8_t *out, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint64_t v = rand_u64(seed);

		for (int k = 0; k < 8 && i < n; k++, v >>= 8)
			out[i++] = (uint8_t)v;
	}
}

int main(void)
{
	int fails = 0;

	fails += _cmocka_run_group_tests("delta_pure", delta_pure_tests,
					 delta_pure_count, NULL, NULL);
	fails += _cmocka_run_group_tests("delta_kat", delta_kat_tests,
					 delta_kat_count, test_pump_setup,
					 test_pump_teardown);
	fails += _cmocka_run_group_tests("delta_roundtrip", delta_rt_tests,
					 delta_rt_count, test_pump_setup,
					 test_pump_teardown);
	return fails ? 1 : 0;
}
