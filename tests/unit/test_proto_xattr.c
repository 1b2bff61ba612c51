/* SPDX-License-Identifier: MIT */
/*
 * The xattr exchange of item records (§8.3, §9.1): request encoder and
 * value decoder against the case10 capture (byte for byte, fed in random
 * chunks), and their limits and errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/delta/delta.h"
#include "protocol/protocol.h"
#include "proto_testutil.h"

static uint32_t seed = 7;

/* Chunks of 1..7 bytes (proto_testutil.h). */
#define CHUNKED(in, call) PT_CHUNKED(in, call, seed, 7)

/*
 * case10: x.txt carries a literal set {user.long (40 bytes, abbreviated),
 * user.short}; y.txt reuses it.  The generator asks for #1 on x.txt's
 * record and for nothing on y.txt's; the sender answers with the 40 bytes.
 */
static void test_case10(void **state)
{
	struct pt_session s;
	struct berth_flist_config fcfg;
	struct berth_flist_dec *fd;
	struct berth_flist *fl;
	struct berth_item_dec idec;
	struct berth_item_dec_config icfg = {0};
	struct berth_xattr_val_dec vd;
	struct berth_xattr_val ev;
	struct berth_proto_in in;
	static struct berth_item it;
	const struct berth_xattr_set *set;
	uint8_t md5[BERTH_CSUM_MAX_DIGEST], out[64];
	struct berth_proto_out po = {out, sizeof(out), 0};
	const uint32_t req[] = {1};
	int values = 0, r;

	(void)state;
	if (pt_session_open(&s, "case10_xattrs") < 0)
		skip();
	in = (struct berth_proto_in){s.data, s.data_len, 0};
	berth_flist_config_init(&fcfg, &s.o, &s.hs);
	assert_int_equal(berth_flist_dec_create(&fd, &fcfg), 0);
	assert_int_equal(berth_flist_dec_begin(fd, -1), 0);
	assert_int_equal(CHUNKED(in, berth_flist_decode(fd, &in)), 1);
	fl = berth_flist_dec_take(fd);
	assert_int_equal(fl->count, 3);
	assert_int_equal(fl->files[1].ext->xattr_set, 1);
	assert_int_equal(fl->files[2].ext->xattr_set, 1);
	set = berth_flist_dec_xattrs(fd, 1);
	assert_non_null(set);
	assert_int_equal(set->count, 2);
	assert_string_equal(set->items[0].name, "user.long");
	assert_int_equal(set->items[0].datum_len, 40);

	/* The echo headers without their values, then the values. */
	icfg.xattrs = false;
	assert_int_equal(berth_item_dec_init(&idec, &icfg), 0);
	assert_int_equal(berth_xattr_val_dec_init(&vd, 1 << 16, 1 << 20), 0);
	for (;;) {
		assert_int_equal(
			CHUNKED(in, berth_item_decode(&idec, &in, &it)), 1);
		if (it.ndx == BERTH_NDX_FLIST_EOF)
			continue;
		assert_true(it.ndx >= 0);
		if (it.ndx == 0)
			continue; /* "." */
		assert_true(it.iflags & BERTH_ITEM_REPORT_XATTR);
		berth_xattr_val_dec_begin(&vd);
		while ((r = CHUNKED(in,
				    berth_xattr_val_decode(&vd, &in, &ev))) ==
		       BERTH_XATTR_VAL) {
			assert_int_equal(it.ndx, 2);
			assert_int_equal(ev.num, 1);
			assert_int_equal(ev.len, 40);
			assert_int_equal(berth_csum_whole(BERTH_CSUM_MD5,
							  ev.ptr, ev.len, md5),
					 16);
			assert_memory_equal(md5, set->items[0].value, 16);
			values++;
		}
		assert_int_equal(r, BERTH_PROTO_DONE);
		if (it.ndx == 3)
			break;
		/* Skip x.txt's data: head (16), literal 11 (4 + 11), end (4),
		 * checksum (16). */
		in.pos += 16 + 4 + 11 + 4 + 16;
	}
	assert_int_equal(values, 1);

	/* The request as the stock generator wrote it: "01 00". */
	assert_int_equal(berth_xattr_req_put(&po, req, 1), 0);
	assert_int_equal(po.pos, 2);
	assert_true(s.sdata_len > 0);
	assert_non_null(memmem(s.sdata, s.sdata_len, "\x02\x00\xa1\x01\x00",
			       5)); /* ndx 2, iflags 0xa100, request */
	assert_memory_equal(out, "\x01\x00", 2);

	berth_xattr_val_dec_destroy(&vd);
	berth_item_dec_destroy(&idec);
	berth_flist_free(fl);
	berth_flist_dec_free(fd);
	pt_session_close(&s);
}

static void test_request_encoder(void **state)
{
	uint8_t b[32];
	struct berth_proto_out o = {b, sizeof(b), 0};
	const uint32_t nums[] = {1, 3, 200};
	const uint32_t bad[] = {3, 3};

	(void)state;
	assert_int_equal(berth_xattr_req_put(&o, nums, 3), 0);
	/* 1, +2, +197 (varint: 0x80 0xc5 ... stock form), 0 */
	assert_int_equal(o.pos, 5);
	assert_memory_equal(b, "\x01\x02\x80\xc5\x00", 5);
	o.pos = 0;
	assert_int_equal(berth_xattr_req_put(&o, NULL, 0), 0);
	assert_int_equal(o.pos, 1);
	o.pos = 0;
	assert_int_equal(berth_xattr_req_put(&o, bad, 2), -EINVAL);
	assert_int_equal(o.pos, 0);
	o.size = 2;
	assert_int_equal(berth_xattr_req_put(&o, nums, 3), -ENOBUFS);
	assert_int_equal(o.pos, 0);
}

static int decode_all(const uint8_t *b, size_t n, size_t max_value,
		      size_t max_total, int *vals)
{
	struct berth_xattr_val_dec d;
	struct berth_xattr_val ev;
	struct berth_proto_in in = {b, n, 0};
	int r;

	assert_int_equal(berth_xattr_val_dec_init(&d, max_value, max_total), 0);
	berth_xattr_val_dec_begin(&d);
	*vals = 0;
	while ((r = CHUNKED(in, berth_xattr_val_decode(&d, &in, &ev))) ==
	       BERTH_XATTR_VAL)
		(*vals)++;
	berth_xattr_val_dec_destroy(&d);
	return r;
}

static void test_value_errors(void **state)
{
	int vals;

	(void)state;
	/* #1 "ab", #3 "" , end */
	assert_int_equal(decode_all((const uint8_t *)"\x01\x02"
						     "ab\x02\x00\x00",
				    7, 16, 0, &vals),
			 BERTH_PROTO_DONE);
	assert_int_equal(vals, 2);
	/* A negative difference (varint 0xff... = -1). */
	assert_int_equal(decode_all((const uint8_t *)"\x02\x00\xf0\xff\xff"
						     "\xff\xff",
				    7, 16, 0, &vals),
			 -BERTH_EPROTO);
	/* A negative length. */
	assert_int_equal(decode_all((const uint8_t *)"\x01\xf0\xff\xff\xff"
						     "\xff",
				    6, 16, 0, &vals),
			 -BERTH_EPROTO);
	/* One value over the limit, before its bytes are needed. */
	assert_int_equal(
		decode_all((const uint8_t *)"\x01\x11", 2, 16, 0, &vals),
		-BERTH_ELIMIT);
	/* Two values over the list's limit. */
	assert_int_equal(decode_all((const uint8_t *)"\x01\x03xyz\x01\x03xyz",
				    10, 16, 5, &vals),
			 -BERTH_ELIMIT);
	assert_int_equal(vals, 1);
	/* Cut short: needs more. */
	assert_int_equal(
		decode_all((const uint8_t *)"\x01\x05xy", 4, 16, 0, &vals),
		BERTH_PROTO_MORE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_case10),
		cmocka_unit_test(test_request_encoder),
		cmocka_unit_test(test_value_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
