/* SPDX-License-Identifier: MIT */
/* Known-answer tests for the primitive encodings (§3). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/protocol.h"
#include "proto_testutil.h"

struct kat {
	int64_t v;
	int min; /* 0 = varint */
	const char *hex;
};

/* From §3.2 / §3.3 and the captures. */
static const struct kat kats[] = {
	{0, 0, "00"},
	{1, 0, "01"},
	{0x18, 0, "18"},
	{0x1ff, 0, "81ff"},
	{0x0c01, 0, "8c01"},
	{0x2c00, 0, "ac00"},
	{500000000, 0, "f00065cd1d"},
	{0x7f, 0, "7f"},
	{0x80, 0, "8080"},
	{0x3fff, 0, "bfff"},
	{0x4000, 0, "c00040"},
	{-1, 0, "f0ffffffff"},
	{4096, 3, "000010"},
	{12, 3, "000c00"},
	{300000, 3, "04e093"},
	{1700000003, 4, "6503f153"},
	{0x80000000LL, 4, "8000000080"},
	{0, 3, "000000"},
	{50331648, 3, "83000000"},
	{INT64_MAX, 3, "fcffffffffffffff7f"},
};

static size_t unhex(const char *h, uint8_t *b)
{
	size_t n = 0;

	while (h[0] && h[1]) {
		unsigned x;

		sscanf(h, "%2x", &x);
		b[n++] = (uint8_t)x;
		h += 2;
	}
	return n;
}

static void test_varint_kat(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
		uint8_t want[16], got[16];
		size_t wn = unhex(kats[i].hex, want);
		struct berth_proto_out out = {got, sizeof(got), 0};
		struct berth_proto_in in = {want, wn, 0};
		int64_t v = 0;
		int32_t v32 = 0;

		if (kats[i].min == 0) {
			assert_int_equal(berth_proto_put_varint(
						 &out, (int32_t)kats[i].v),
					 0);
			assert_int_equal(berth_proto_get_varint(&in, &v32), 1);
			v = v32;
		} else {
			assert_int_equal(berth_proto_put_varlong(
						 &out, kats[i].v, kats[i].min),
					 0);
			assert_int_equal(
				berth_proto_get_varlong(&in, kats[i].min, &v),
				1);
		}
		assert_int_equal(out.pos, wn);
		assert_memory_equal(got, want, wn);
		assert_int_equal(in.pos, wn);
		assert_true(v == kats[i].v);
		/* Every proper prefix asks for more and consumes nothing. */
		for (size_t k = 0; k < wn; k++) {
			struct berth_proto_in p = {want, k, 0};

			if (kats[i].min == 0)
				assert_int_equal(
					berth_proto_get_varint(&p, &v32), 0);
			else
				assert_int_equal(berth_proto_get_varlong(
							 &p, kats[i].min, &v),
						 0);
			assert_int_equal(p.pos, 0);
		}
		/* Output too small: nothing written. */
		out.size = wn - 1;
		out.pos = 0;
		if (kats[i].min == 0)
			assert_int_equal(berth_proto_put_varint(
						 &out, (int32_t)kats[i].v),
					 -ENOBUFS);
		else
			assert_int_equal(berth_proto_put_varlong(
						 &out, kats[i].v, kats[i].min),
					 -ENOBUFS);
		assert_int_equal(out.pos, 0);
	}
}

static void test_varint_roundtrip(void **state)
{
	uint32_t x = 12345;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		uint8_t b[16];
		struct berth_proto_out out = {b, sizeof(b), 0};
		int32_t v = (int32_t)(x >> (x % 31)), r32;
		int64_t w = (int64_t)(((uint64_t)x << 32 |
				       (uint32_t)(x * 2654435761u)) >>
				      (x % 60 + 1)),
			r64;
		int min = 3 + (int)(x & 1);

		x = x * 1103515245u + 12345u;
		assert_int_equal(berth_proto_put_varint(&out, v), 0);
		struct berth_proto_in in = {b, out.pos, 0};
		assert_int_equal(berth_proto_get_varint(&in, &r32), 1);
		assert_int_equal(r32, v);
		assert_int_equal(in.pos, out.pos);
		if (w < 0)
			w = -w;
		out.pos = 0;
		assert_int_equal(berth_proto_put_varlong(&out, w, min), 0);
		in = (struct berth_proto_in){b, out.pos, 0};
		assert_int_equal(berth_proto_get_varlong(&in, min, &r64), 1);
		assert_true(r64 == w);
		assert_int_equal(in.pos, out.pos);
	}
}

static void test_varint_bad(void **state)
{
	static const uint8_t b1[] = {0xf8, 0, 0, 0, 0, 0};
	static const uint8_t b2[] = {0xf1, 0, 0, 0, 0};
	static const uint8_t b3[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	struct berth_proto_in in = {b1, sizeof(b1), 0};
	int32_t v;
	int64_t w;

	(void)state;
	assert_int_equal(berth_proto_get_varint(&in, &v), -BERTH_EPROTO);
	in = (struct berth_proto_in){b2, sizeof(b2), 0};
	assert_int_equal(berth_proto_get_varint(&in, &v), -BERTH_EPROTO);
	in = (struct berth_proto_in){b3, sizeof(b3), 0};
	assert_int_equal(berth_proto_get_varlong(&in, 3, &w), -BERTH_EPROTO);
	assert_int_equal(in.pos, 0);
}

static void test_fixed(void **state)
{
	uint8_t b[16];
	struct berth_proto_out out = {b, sizeof(b), 0};
	struct berth_proto_in in = {b, 0, 0};
	int32_t i;
	uint16_t s;

	(void)state;
	assert_int_equal(berth_proto_put_int32(&out, 32), 0);
	assert_int_equal(berth_proto_put_shortint(&out, 0xa000), 0);
	assert_int_equal(berth_proto_put_int32(&out, -2), 0);
	assert_memory_equal(b, "\x20\x00\x00\x00\x00\xa0\xfe\xff\xff\xff", 10);
	in.size = out.pos;
	assert_int_equal(berth_proto_get_int32(&in, &i), 1);
	assert_int_equal(i, 32);
	assert_int_equal(berth_proto_get_shortint(&in, &s), 1);
	assert_int_equal(s, 0xa000);
	assert_int_equal(berth_proto_get_int32(&in, &i), 1);
	assert_int_equal(i, -2);
	assert_int_equal(berth_proto_get_int32(&in, &i), 0);
}

static void test_vstring(void **state)
{
	char big[0x7fff], got[0x8000];
	static uint8_t b[0x8002];
	struct berth_proto_out out = {b, sizeof(b), 0};
	size_t n;

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(berth_proto_put_vstring(&out, "xxh128 xxh3", 11), 0);
	assert_int_equal(b[0], 11);
	out.pos = 0;
	assert_int_equal(berth_proto_put_vstring(&out, big, 0x123), 0);
	assert_int_equal(b[0], 0x81);
	assert_int_equal(b[1], 0x23);
	struct berth_proto_in in = {b, out.pos, 0};
	assert_int_equal(berth_proto_get_vstring(&in, got, 0x122, &n),
			 -BERTH_ELIMIT);
	assert_int_equal(berth_proto_get_vstring(&in, got, sizeof(got), &n), 1);
	assert_int_equal(n, 0x123);
	out.pos = 0;
	assert_int_equal(berth_proto_put_vstring(&out, big, 0x7fff), 0);
	assert_int_equal(out.pos, 0x8001);
	assert_int_equal(berth_proto_put_vstring(&out, big, 0x8000), -EINVAL);
}

/* §3.5 examples. */
static void test_ndx(void **state)
{
	static const int32_t seq[] = {0,  2,	3,     5, -102, -2,
				      -1, 1000, 40000, 7, -3};
	uint8_t b[128];
	struct berth_proto_out out = {b, sizeof(b), 0};
	struct berth_ndx_state w, r;
	size_t i;

	(void)state;
	berth_ndx_init(&w);
	berth_ndx_init(&r);
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
		assert_int_equal(berth_proto_put_ndx(&out, &w, seq[i]), 0);
	assert_memory_equal(
		b, "\x01\x02\x01\x02\xff\x65\xff\xfe\x80\x02\x00\x00\x00", 13);
	struct berth_proto_in in = {b, out.pos, 0};
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		int32_t v;
		size_t at = in.pos;

		/* All-or-nothing on every prefix. */
		for (size_t k = at; k < in.size; k++) {
			struct berth_proto_in p = {b, k, at};
			struct berth_ndx_state tmp = r;
			int rr = berth_proto_get_ndx(&p, &tmp, &v);

			if (rr == 0)
				assert_int_equal(p.pos, at);
			else
				break;
		}
		assert_int_equal(berth_proto_get_ndx(&in, &r, &v), 1);
		assert_int_equal(v, seq[i]);
	}
	assert_int_equal(in.pos, out.pos);
	/* NDX_DEL_STATS as the first negative: ff 02. */
	berth_ndx_init(&w);
	out.pos = 0;
	assert_int_equal(berth_proto_put_ndx(&out, &w, BERTH_NDX_DEL_STATS), 0);
	assert_memory_equal(b, "\xff\x02", 2);
}

static void test_ndx_bad(void **state)
{
	/* 0x7fffffff + 1 via delta overflow; negative "1" (-1 in long form). */
	static const uint8_t b1[] = {0xfe, 0xff, 0xff, 0xff,
				     0xff, 0xfe, 0x7f, 0xff};
	static const uint8_t b2[] = {0xff, 0xfe, 0x80, 0x01, 0x00, 0x00};
	struct berth_ndx_state st;
	struct berth_proto_in in = {b1, sizeof(b1), 0};
	int32_t v;

	(void)state;
	berth_ndx_init(&st);
	assert_int_equal(berth_proto_get_ndx(&in, &st, &v), 1);
	assert_int_equal(v, 0x7fffffff);
	assert_int_equal(berth_proto_get_ndx(&in, &st, &v), -BERTH_EPROTO);
	berth_ndx_init(&st);
	in = (struct berth_proto_in){b2, sizeof(b2), 0};
	assert_int_equal(berth_proto_get_ndx(&in, &st, &v), -BERTH_EPROTO);
}

/* Below protocol 30: an ndx is a plain int32; longint. */
static void test_old_ints(void **state)
{
	static const uint8_t nd[] = {5,	   0,	 0,    0,    0xff, 0xff,
				     0xff, 0xff, 0xfe, 0xff, 0xff, 0xff};
	static const uint8_t li[] = {
		7, 0, 0,    0,	  0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1, 0,
		0, 0, 0xff, 0xff, 0xff, 0xff, 0,    0,	  0, 0, 0, 0, 0, 0x80};
	struct berth_ndx_state st;
	struct berth_proto_in in = {nd, sizeof(nd), 0};
	uint8_t b[8];
	struct berth_proto_out out = {b, sizeof(b), 0};
	int32_t v;
	int64_t l;

	(void)state;
	berth_ndx_init(&st);
	berth_ndx_set_protocol(&st, 29);
	assert_int_equal(berth_proto_get_ndx(&in, &st, &v), 1);
	assert_int_equal(v, 5);
	assert_int_equal(berth_proto_get_ndx(&in, &st, &v), 1);
	assert_int_equal(v, BERTH_NDX_DONE);
	assert_int_equal(berth_proto_get_ndx(&in, &st, &v), -BERTH_EPROTO);
	assert_int_equal(berth_proto_put_ndx(&out, &st, 300), 0);
	assert_int_equal(berth_proto_put_ndx(&out, &st, BERTH_NDX_DONE), 0);
	assert_memory_equal(b, "\x2c\x01\0\0\xff\xff\xff\xff", 8);
	assert_int_equal(berth_proto_put_ndx(&out, &st, BERTH_NDX_FLIST_EOF),
			 -EINVAL);
	berth_ndx_set_protocol(&st, 30);
	assert_false(st.plain);

	in = (struct berth_proto_in){li, 3, 0};
	assert_int_equal(berth_proto_get_longint(&in, &l), BERTH_PROTO_MORE);
	in.size = sizeof(li);
	assert_int_equal(berth_proto_get_longint(&in, &l), 1);
	assert_int_equal(l, 7);
	assert_int_equal(berth_proto_get_longint(&in, &l), 1);
	assert_int_equal(l, 0x100000001ll);
	assert_int_equal(berth_proto_get_longint(&in, &l), -BERTH_EPROTO);
}

/* Values at known raw offsets of case1_initial_a (§7.3 worked example). */
static void test_capture_case1(void **state)
{
	size_t len;
	uint8_t *c2s = pt_load("case1_initial_a", "client_to_server.bin", &len);
	struct berth_proto_in in;
	struct berth_ndx_state st;
	int64_t v;
	int32_t i;

	(void)state;
	if (!c2s)
		skip();
	in = (struct berth_proto_in){c2s, len, 0};
	assert_int_equal(berth_proto_get_int32(&in, &i), 1);
	assert_int_equal(i, 32);
	in.pos = 0x27;
	assert_int_equal(berth_proto_get_varint(&in, &i), 1);
	assert_int_equal(i, 0x0c01);
	in.pos = 0x2b;
	assert_int_equal(berth_proto_get_varlong(&in, 3, &v), 1);
	assert_int_equal(v, 4096);
	assert_int_equal(berth_proto_get_varlong(&in, 4, &v), 1);
	assert_int_equal(v, 1700000003);
	assert_int_equal(berth_proto_get_int32(&in, &i), 1);
	assert_int_equal(i, 040755);
	berth_ndx_init(&st);
	in.pos = 0x81;
	assert_int_equal(berth_proto_get_ndx(&in, &st, &i), 1);
	assert_int_equal(i, -102);
	in.pos = 0xb1;
	assert_int_equal(berth_proto_get_ndx(&in, &st, &i), 1);
	assert_int_equal(i, BERTH_NDX_FLIST_EOF);
	free(c2s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_kat),
		cmocka_unit_test(test_varint_roundtrip),
		cmocka_unit_test(test_varint_bad),
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_vstring),
		cmocka_unit_test(test_ndx),
		cmocka_unit_test(test_ndx_bad),
		cmocka_unit_test(test_old_ints),
		cmocka_unit_test(test_capture_case1),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	if (r == 0 && !pt_have_captures())
		return 77;
	return r;
}
