/* SPDX-License-Identifier: MIT */
/* Demultiplexer and frame encoder (§5) against every capture. */
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

/*
 * Demultiplex @raw from @start feeding chunks of the given size pattern;
 * returns the data bytes and the message count; re-encodes every frame (when
 * fed whole) and checks the encoder reproduces the raw bytes.
 */
static uint8_t *run(const uint8_t *raw, size_t len, size_t start, int dir,
		    size_t chunk, size_t *dlen, int *nmsg, bool reencode)
{
	struct berth_demux d;
	struct berth_demux_event ev;
	uint8_t *data = malloc(len + 1);
	uint8_t *re = malloc(len + 16);
	struct berth_proto_out out = {re, len + 16, 0};
	size_t pos = start, n = 0;
	uint32_t x = (uint32_t)chunk;
	int r;

	*nmsg = 0;
	assert_int_equal(berth_demux_init(&d, dir, 1 << 16), 0);
	while (pos < len) {
		size_t c = chunk ? chunk
				 : 1 + (x = x * 1103515245u + 12345u) % 97;
		struct berth_proto_in in = {raw, pos + c < len ? pos + c : len,
					    pos};

		while ((r = berth_demux_poll(&d, &in, &ev)) > 0) {
			if (r == BERTH_DEMUX_DATA) {
				assert_true(ev.len > 0);
				memcpy(data + n, ev.ptr, ev.len);
				n += ev.len;
				if (reencode) {
					assert_int_equal(
						berth_mux_put_msg(&out, 0,
								  ev.ptr,
								  ev.len),
						0);
				}
			} else {
				(*nmsg)++;
				if (reencode)
					assert_int_equal(
						berth_mux_put_msg(&out, ev.code,
								  ev.ptr,
								  ev.len),
						0);
			}
		}
		assert_int_equal(r, 0);
		assert_int_equal(in.pos, in.size);
		pos = in.size;
	}
	assert_true(berth_demux_idle(&d));
	if (reencode && chunk == len) {
		/* Keep-alive frames produce no event; captures have none. */
		assert_int_equal(out.pos, len - start);
		assert_memory_equal(re, raw + start, len - start);
	}
	berth_demux_destroy(&d);
	free(re);
	*dlen = n;
	return data;
}

static void test_captures(void **state)
{
	int ncase;
	char **cases = pt_cases(&ncase);

	(void)state;
	if (!cases)
		skip();
	for (int i = 0; i < ncase; i++) {
		size_t s2c_at, c2s_at;
		size_t len[2];
		uint8_t *raw[2];

		assert_true(pt_mux_start(cases[i], &s2c_at, &c2s_at));
		raw[0] = pt_load(cases[i], "client_to_server.bin", &len[0]);
		raw[1] = pt_load(cases[i], "server_to_client.bin", &len[1]);
		assert_non_null(raw[0]);
		assert_non_null(raw[1]);
		for (int dir = 0; dir < 2; dir++) {
			size_t at = dir ? s2c_at : c2s_at;
			size_t n0, n1, n2;
			int m0, m1, m2;
			uint8_t *a = run(raw[dir], len[dir], at, dir, len[dir],
					 &n0, &m0, true);
			uint8_t *b = run(raw[dir], len[dir], at, dir, 1, &n1,
					 &m1, false);
			uint8_t *c = run(raw[dir], len[dir], at, dir, 0, &n2,
					 &m2, false);

			assert_int_equal(n0, n1);
			assert_int_equal(n0, n2);
			assert_int_equal(m0, m1);
			assert_int_equal(m0, m2);
			assert_memory_equal(a, b, n0);
			assert_memory_equal(a, c, n0);
			free(a);
			free(b);
			free(c);
		}
		free(raw[0]);
		free(raw[1]);
	}
	pt_free_list(cases, ncase);
}

/* case12's MSG_ERROR_EXIT(3) and case1's MSG_INFO, checked by content. */
static void test_capture_messages(void **state)
{
	size_t len;
	uint8_t *s2c = pt_load("case12_fatal_error", "server_to_client.bin",
			       &len);
	struct berth_demux d;
	struct berth_demux_event ev;
	struct berth_proto_in in;
	int r, seen = 0;

	(void)state;
	if (!s2c)
		skip();
	in = (struct berth_proto_in){s2c, len, 0x2e};
	berth_demux_init(&d, BERTH_DEMUX_S2C, 4096);
	while ((r = berth_demux_poll(&d, &in, &ev)) > 0)
		if (r == BERTH_DEMUX_MSG && ev.code == BERTH_MSG_ERROR_EXIT) {
			assert_int_equal(ev.len, 4);
			assert_int_equal(ev.value, 3);
			seen++;
		}
	assert_int_equal(r, 0);
	assert_int_equal(seen, 1);
	berth_demux_destroy(&d);
	free(s2c);

	s2c = pt_load("case1_initial_a", "server_to_client.bin", &len);
	in = (struct berth_proto_in){s2c, len, 0x2e};
	berth_demux_init(&d, BERTH_DEMUX_S2C, 4096);
	assert_int_equal(berth_demux_poll(&d, &in, &ev), BERTH_DEMUX_MSG);
	assert_int_equal(ev.code, BERTH_MSG_INFO);
	assert_int_equal(ev.len, 56);
	assert_memory_equal(ev.ptr, "created directory ", 18);
	berth_demux_destroy(&d);
	free(s2c);
}

static int feed(const char *bytes, size_t n, int dir, size_t maxmsg,
		struct berth_demux_event *ev)
{
	struct berth_demux d;
	struct berth_proto_in in = {(const uint8_t *)bytes, n, 0};
	int r;

	berth_demux_init(&d, dir, maxmsg);
	while ((r = berth_demux_poll(&d, &in, ev)) > 0)
		;
	berth_demux_destroy(&d);
	return r;
}

static void test_bad_frames(void **state)
{
	struct berth_demux_event ev;

	(void)state;
	/* tag below MPLEX_BASE */
	assert_int_equal(feed("\x01\x00\x00\x06x", 5, 0, 100, &ev),
			 -BERTH_EPROTO);
	/* unknown code 50 */
	assert_int_equal(feed("\x00\x00\x00\x39", 4, 0, 100, &ev),
			 -BERTH_EPROTO);
	/* internal-only MSG_REDO */
	assert_int_equal(feed("\x04\x00\x00\x10\0\0\0\0", 8, 0, 100, &ev),
			 -BERTH_EPROTO);
	/* MSG_IO_ERROR with 3 bytes */
	assert_int_equal(feed("\x03\x00\x00\x1d\0\0\0", 7, 0, 100, &ev),
			 -BERTH_EPROTO);
	/* MSG_DELETED is server-only */
	assert_int_equal(feed("\x01\x00\x00\x6cx", 5, 0, 100, &ev),
			 -BERTH_EPROTO);
	assert_int_equal(feed("\x01\x00\x00\x6cx", 5, 1, 100, &ev), 0);
	/* text longer than the limit */
	assert_int_equal(feed("\x00\x10\x00\x09", 4, 0, 100, &ev),
			 -BERTH_ELIMIT);
	/* ERROR_EXIT of 2 bytes */
	assert_int_equal(feed("\x02\x00\x00\x5d\0\0", 6, 0, 100, &ev),
			 -BERTH_EPROTO);
	/* keep-alive and NOOP produce nothing; a big DATA frame header is fine */
	assert_int_equal(
		feed("\x00\x00\x00\x07\x00\x00\x00\x31\xff\xff\xff\x07", 12, 0,
		     100, &ev),
		0);
}

static void test_encode(void **state)
{
	uint8_t b[16];
	struct berth_proto_out out = {b, sizeof(b), 0};

	(void)state;
	assert_int_equal(berth_mux_put_int_msg(&out, BERTH_MSG_ERROR_EXIT, 3),
			 0);
	assert_memory_equal(b, "\x04\x00\x00\x5d\x03\x00\x00\x00", 8);
	assert_int_equal(berth_mux_put_header(&out, 0, 0x1000000), -EINVAL);
	assert_int_equal(berth_mux_put_msg(&out, 0, "123456789", 9), -ENOBUFS);
	assert_int_equal(out.pos, 8);
	assert_string_equal(berth_msg_name(101), "MSG_DELETED");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captures),
		cmocka_unit_test(test_capture_messages),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_encode),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	if (r == 0 && !pt_have_captures())
		return 77;
	return r;
}
