/* SPDX-License-Identifier: MIT */
/*
 * Whole-session walks of every capture: the client stream through the item
 * echo and token decoders (plain and zstd), compared with the README's
 * literal/matched byte counts and checksums; the server stream decoded and
 * re-encoded with berth's generator encoders, compared byte for byte.
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

#include "protocol/protocol.h"
#include "proto_testutil.h"

struct expect {
	long long lit[64], matched[64];
	char sum[64][80];
	int nfiles, nsums;
	int dones;
};

static void load_expect(const char *cs, struct expect *e)
{
	size_t len;
	char *t = (char *)pt_load(cs, "README.md", &len), *save = NULL, *l;
	char *c2s = strstr(t, "== client -> server");
	char *stop = strstr(t, "== server -> client");

	memset(e, 0, sizeof(*e));
	e->dones = -1;
	if (stop)
		*stop = '\0';
	for (l = strtok_r(c2s, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *p;

		if ((p = strstr(l, "=> ")) && strstr(l, "literal bytes")) {
			assert_true(e->nfiles < 64);
			sscanf(p, "=> %lld literal bytes, %lld matched",
			       &e->lit[e->nfiles], &e->matched[e->nfiles]);
			e->nfiles++;
		} else if ((p = strstr(l, "whole-file checksum ("))) {
			p = strstr(p, " = ");
			assert_true(e->nsums < 64);
			snprintf(e->sum[e->nsums++], 80, "%s", p + 3);
		} else if ((p = strstr(l, "end of client stream; "))) {
			sscanf(p, "end of client stream; %d NDX_DONE",
			       &e->dones);
		}
	}
	free(t);
}

/* Chunks of 1..23 bytes (proto_testutil.h). */
#define CHUNKED(in, call) PT_CHUNKED(in, call, seed, 23)

static uint8_t zeros[BERTH_MAX_BLOCK_SIZE];

static void walk_c2s(const char *cs)
{
	struct pt_session s;
	struct expect e;
	struct berth_flist_config fcfg;
	struct berth_flist_dec *fd;
	struct berth_item_dec idec;
	struct berth_item_dec_config icfg = {0};
	struct berth_tok_dec *td;
	struct berth_tok_config tcfg = {0};
	struct berth_proto_in in;
	static struct berth_item it;
	uint32_t seed = 1;
	int files = 0, dones = 0, r;

	assert_int_equal(pt_session_open(&s, cs), 0);
	load_expect(cs, &e);
	tcfg.compress = s.hs.compress;
	tcfg.protocol = s.hs.protocol;
	tcfg.csum_type = s.hs.xfer_csum;
	tcfg.digest_len = (int)berth_csum_digest_len(s.hs.xfer_csum);
	r = berth_tok_dec_create(&td, &tcfg);
	assert_int_equal(r, 0);
	in = (struct berth_proto_in){s.data, s.data_len, 0};
	if (berth_opts_want_filters(&s.o)) {
		struct berth_filter_dec flt;
		struct berth_filter_rule rule;

		berth_filter_dec_init(&flt, 4096, 100);
		while ((r = berth_filter_decode(&flt, &in, &rule)) ==
		       BERTH_FILTER_RULE)
			;
		assert_int_equal(r, 1);
		berth_filter_dec_destroy(&flt);
	}
	berth_flist_config_init(&fcfg, &s.o, &s.hs);
	assert_int_equal(berth_flist_dec_create(&fd, &fcfg), 0);
	assert_int_equal(berth_flist_dec_begin(fd, -1), 0);
	assert_int_equal(CHUNKED(in, berth_flist_decode(fd, &in)), 1);
	berth_flist_free(berth_flist_dec_take(fd));
	icfg.xattrs = s.o.xattrs && !s.o.dry_run;
	icfg.xattr_optim = s.hs.protocol >= 31 &&
			   !(s.hs.compat & BERTH_CF_AVOID_XATTR_OPTIM);
	icfg.values = true;
	assert_int_equal(berth_item_dec_init(&idec, &icfg), 0);
	while (in.pos < in.size) {
		assert_int_equal(
			CHUNKED(in, berth_item_decode(&idec, &in, &it)), 1);
		if (it.ndx == BERTH_NDX_DONE) {
			dones++;
			continue;
		}
		if (it.ndx == BERTH_NDX_FLIST_EOF)
			continue;
		if (it.ndx <= BERTH_NDX_FLIST_OFFSET) {
			assert_int_equal(
				berth_flist_dec_begin(
					fd, BERTH_NDX_FLIST_OFFSET - it.ndx),
				0);
			assert_int_equal(
				CHUNKED(in, berth_flist_decode(fd, &in)), 1);
			berth_flist_free(berth_flist_dec_take(fd));
			continue;
		}
		assert_true(it.ndx >= 0);
		if (!(it.iflags & BERTH_ITEM_TRANSFER) || s.o.dry_run)
			continue;
		/* One transferred file. */
		struct berth_tok_event ev;
		struct berth_sum_head head = {0};
		long long lit = 0, matched = 0;
		char hex[80];

		assert_int_equal(berth_tok_dec_begin(td), 0);
		for (;;) {
			r = CHUNKED(in, berth_tok_decode(td, &in, &ev));
			assert_true(r > 0);
			if (r == BERTH_TOK_HEAD) {
				head = *ev.head;
			} else if (r == BERTH_TOK_LITERAL) {
				assert_true(ev.len > 0);
				lit += (long long)ev.len;
			} else if (r == BERTH_TOK_BLOCKS) {
				for (int32_t b = 0; b < ev.nblocks; b++) {
					uint32_t bl = berth_sum_head_block_len(
						&head,
						(uint32_t)(ev.block + b));

					matched += bl;
					/* zlib: the basis is not here; zeros
					 * of the right length keep the
					 * inflate stream in step (the counts
					 * come out right, not the bytes). */
					if (berth_tok_dec_needs_basis(td))
						assert_int_equal(
							berth_tok_dec_see(
								td, zeros, bl),
							0);
				}
			} else {
				break;
			}
		}
		for (int i = 0; i < tcfg.digest_len; i++)
			snprintf(hex + 2 * i, 3, "%02x", ev.sum[i]);
		assert_true(files < e.nfiles);
		if (lit != e.lit[files] || matched != e.matched[files])
			fail_msg(
				"%s file %d: %lld/%lld literal/matched, want %lld/%lld",
				cs, files, lit, matched, e.lit[files],
				e.matched[files]);
		assert_string_equal(hex, e.sum[files]);
		files++;
	}
	assert_int_equal(files, e.nfiles);
	assert_int_equal(dones, e.dones);
	if (getenv("PT_VERBOSE"))
		fprintf(stderr, "%s: %d files, %d NDX_DONE\n", cs, files,
			dones);
	berth_item_dec_destroy(&idec);
	berth_tok_dec_free(td);
	berth_flist_dec_free(fd);
	pt_session_close(&s);
}

static void walk_s2c(const char *cs)
{
	struct pt_session s;
	struct berth_item_dec idec;
	struct berth_item_dec_config icfg = {0};
	struct berth_ndx_state w;
	struct berth_proto_in in;
	struct berth_proto_out out;
	static struct berth_item it;
	uint8_t *re;
	uint32_t seed = 3;
	bool xreq;

	assert_int_equal(pt_session_open(&s, cs), 0);
	re = malloc(s.sdata_len + 64);
	out = (struct berth_proto_out){re, s.sdata_len + 64, 0};
	in = (struct berth_proto_in){s.sdata, s.sdata_len, 0};
	xreq = s.o.xattrs && !s.o.dry_run;
	icfg.xattrs = xreq;
	icfg.xattr_optim = s.hs.protocol >= 31 &&
			   !(s.hs.compat & BERTH_CF_AVOID_XATTR_OPTIM);
	assert_int_equal(berth_item_dec_init(&idec, &icfg), 0);
	berth_ndx_init(&w);
	while (in.pos < in.size) {
		assert_int_equal(
			CHUNKED(in, berth_item_decode(&idec, &in, &it)), 1);
		if (it.ndx == BERTH_NDX_DONE) {
			assert_int_equal(berth_done_put(&out, &w), 0);
			continue;
		}
		if (it.ndx == BERTH_NDX_DEL_STATS) {
			int32_t v[5];
			struct berth_del_stats ds;

			for (int i = 0; i < 5; i++)
				assert_int_equal(
					berth_proto_get_varint(&in, &v[i]), 1);
			ds = (struct berth_del_stats){v[0], v[1], v[2], v[3],
						      v[4]};
			assert_int_equal(berth_del_stats_put(
						 &out, &w, s.hs.protocol, &ds),
					 0);
			continue;
		}
		assert_true(it.ndx >= 0);
		bool with_req = xreq && (it.iflags & BERTH_ITEM_REPORT_XATTR) &&
				!(icfg.xattr_optim &&
				  (it.iflags & BERTH_ITEM_XNAME_FOLLOWS) &&
				  (it.iflags & BERTH_ITEM_LOCAL_CHANGE));
		assert_int_equal(berth_item_put(&out, &w, &it, with_req), 0);
		if (!(it.iflags & BERTH_ITEM_TRANSFER) || s.o.dry_run)
			continue;
		struct berth_sum_head h;

		assert_true(in.size - in.pos >= 16);
		memcpy(&h, in.ptr + in.pos, 16); /* LE host */
		in.pos += 16;
		assert_int_equal(
			berth_sum_head_check(&h, s.hs.xfer_csum, UINT64_MAX),
			0);
		uint8_t hb[BERTH_SUM_HEAD_WIRE];

		berth_sum_head_encode(&h, hb);
		assert_int_equal(berth_proto_put_bytes(&out, hb, sizeof(hb)),
				 0);
		if (s.o.append)
			continue;
		for (int32_t b = 0; b < h.count; b++) {
			uint32_t roll;

			assert_int_equal(berth_proto_get_uint32(&in, &roll), 1);
			assert_true(in.size - in.pos >= (size_t)h.s2length);
			assert_int_equal(berth_proto_put_uint32(&out, roll), 0);
			assert_int_equal(
				berth_proto_put_bytes(&out, in.ptr + in.pos,
						      (size_t)h.s2length),
				0);
			in.pos += (size_t)h.s2length;
		}
	}
	assert_int_equal(out.pos, s.sdata_len);
	assert_memory_equal(re, s.sdata, s.sdata_len);
	free(re);
	berth_item_dec_destroy(&idec);
	pt_session_close(&s);
}

static void test_captures(void **state)
{
	int ncase;
	char **cases = pt_cases(&ncase);

	(void)state;
	if (!cases)
		skip();
	for (int i = 0; i < ncase; i++) {
		walk_c2s(cases[i]);
		walk_s2c(cases[i]);
	}
	pt_free_list(cases, ncase);
}

static int run_plain(const uint8_t *b, size_t n, int *events)
{
	struct berth_tok_dec *d;
	struct berth_tok_config cfg = {.compress = BERTH_COMPRESS_NONE,
				       .csum_type = BERTH_CSUM_XXH128,
				       .digest_len = 16};
	struct berth_tok_event ev;
	struct berth_proto_in in = {b, n, 0};
	int r;

	*events = 0;
	assert_int_equal(berth_tok_dec_create(&d, &cfg), 0);
	berth_tok_dec_begin(d);
	while ((r = berth_tok_decode(d, &in, &ev)) > 0 && r != BERTH_TOK_END)
		(*events)++;
	berth_tok_dec_free(d);
	return r;
}

static void test_bad_plain(void **state)
{
	uint8_t b[64] = {0};
	int ev;

	(void)state;
	/* count 2, blength 700, s2 2, rem 0; block -1 ok, block 2 bad */
	memcpy(b,
	       "\x02\0\0\0\xbc\x02\0\0\x02\0\0\0\0\0\0\0\xff\xff\xff\xff\xfd\xff\xff\xff",
	       24);
	assert_int_equal(run_plain(b, 24, &ev), -BERTH_EPROTO);
	assert_int_equal(ev, 2);
	/* INT32_MIN token */
	memcpy(b + 16, "\0\0\0\x80", 4);
	assert_int_equal(run_plain(b, 20, &ev), -BERTH_EPROTO);
	/* bad heads */
	memcpy(b, "\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
	       16); /* count>0, blength 0 */
	assert_int_equal(run_plain(b, 16, &ev), -BERTH_EPROTO);
	memcpy(b, "\x01\0\0\0\x01\0\x02\0\0\0\0\0\0\0\0\0",
	       16); /* blength > 2^17 */
	assert_int_equal(run_plain(b, 16, &ev), -BERTH_EPROTO);
	memcpy(b, "\x01\0\0\0\x10\0\0\0\x11\0\0\0\0\0\0\0",
	       16); /* s2length > 16 */
	assert_int_equal(run_plain(b, 16, &ev), -BERTH_EPROTO);
	memcpy(b, "\x01\0\0\0\x10\0\0\0\x02\0\0\0\x11\0\0\0",
	       16); /* remainder > blength */
	assert_int_equal(run_plain(b, 16, &ev), -BERTH_EPROTO);
	memcpy(b, "\xff\xff\xff\xff\x10\0\0\0\x02\0\0\0\0\0\0\0",
	       16); /* count < 0 */
	assert_int_equal(run_plain(b, 16, &ev), -BERTH_EPROTO);
	/* whole file: literal 3 bytes, end, 16-byte sum */
	memset(b, 0, sizeof(b));
	memcpy(b + 16, "\x03\0\0\0abc\0\0\0\0", 11);
	assert_int_equal(run_plain(b, 43, &ev), BERTH_TOK_END);
	assert_int_equal(ev, 2); /* head + literal */
	assert_int_equal(run_plain(b, 42, &ev), 0);
}

static int run_zstd(const uint8_t *b, size_t n)
{
	struct berth_tok_dec *d;
	struct berth_tok_config cfg = {.compress = BERTH_COMPRESS_ZSTD,
				       .csum_type = BERTH_CSUM_XXH128,
				       .digest_len = 1};
	struct berth_tok_event ev;
	struct berth_proto_in in = {b, n, 0};
	int r;

	assert_int_equal(berth_tok_dec_create(&d, &cfg), 0);
	berth_tok_dec_begin(d);
	while ((r = berth_tok_decode(d, &in, &ev)) > 0 && r != BERTH_TOK_END)
		;
	berth_tok_dec_free(d);
	return r;
}

static void test_bad_zstd(void **state)
{
	/* count 4 blength 10 */
	uint8_t b[64] = {4, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
	struct berth_tok_config cfg = {.compress = 99, .digest_len = 1};
	struct berth_tok_dec *d;

	(void)state;
	assert_int_equal(berth_tok_dec_create(&d, &cfg), -BERTH_EUNSUPPORTED);
	memcpy(b + 16, "\xc1\x02\x00\x00\x07", 5); /* run 1..3, end */
	assert_int_equal(run_zstd(b, 21), BERTH_TOK_END);
	memcpy(b + 16, "\xc1\x03\x00", 3); /* run 1..4: past the end */
	assert_int_equal(run_zstd(b, 19), -BERTH_EPROTO);
	memcpy(b + 16, "\x84", 1); /* block 4 */
	assert_int_equal(run_zstd(b, 17), -BERTH_EPROTO);
	memcpy(b + 16, "\x20\xff\xff\xff\xff", 5); /* TOKEN_LONG -1 */
	assert_int_equal(run_zstd(b, 21), -BERTH_EPROTO);
	memcpy(b + 16, "\x21\x02\0\0\0\xff\xff",
	       7); /* TOKENRUN_LONG 2 + 65535 */
	assert_int_equal(run_zstd(b, 23), -BERTH_EPROTO);
	memcpy(b + 16, "\x05", 1); /* invalid flag */
	assert_int_equal(run_zstd(b, 17), -BERTH_EPROTO);
	memcpy(b + 16, "\x40\x04garb", 6); /* not zstd data */
	assert_int_equal(run_zstd(b, 22), -BERTH_ECODEC);
}

static void test_encoders(void **state)
{
	uint8_t b[64];
	struct berth_proto_out out = {b, sizeof(b), 0};
	struct berth_ndx_state st;
	static struct berth_item it;
	struct berth_del_stats ds = {2, 1, 1, 0, 0};

	(void)state;
	berth_ndx_init(&st);
	it.ndx = 5;
	it.iflags = 0x7000;
	it.xname = "h2";
	it.xname_len = 2;
	/* §8.8's record: going back from 17 needs the 4-byte form */
	st.prev_pos = 17;
	assert_int_equal(berth_item_put(&out, &st, &it, false), 0);
	assert_memory_equal(b, "\xfe\x80\x05\x00\x00\x00\x70\x02h2", 10);
	out.pos = 0;
	berth_ndx_init(&st);
	assert_int_equal(berth_del_stats_put(&out, &st, 32, &ds), 0);
	assert_memory_equal(b, "\xff\x02\x02\x01\x01\x00\x00", 7);
	assert_int_equal(berth_del_stats_put(&out, &st, 30, &ds), -EINVAL);
	out.pos = 0;
	assert_int_equal(berth_deleted_put(&out, "olddir", 6, true), 0);
	assert_memory_equal(b, "\x07\x00\x00\x6colddir\0", 11);
	/* atomic on a short buffer: nothing written, state unchanged */
	out = (struct berth_proto_out){b, 4, 0};
	berth_ndx_init(&st);
	assert_int_equal(berth_item_put(&out, &st, &it, false), -ENOBUFS);
	assert_int_equal(out.pos, 0);
	assert_int_equal(st.prev_pos, -1);
	assert_int_equal(berth_end_done_count(30), 3);
	assert_int_equal(berth_end_done_count(32), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captures),
		cmocka_unit_test(test_bad_plain),
		cmocka_unit_test(test_bad_zstd),
		cmocka_unit_test(test_encoders),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	if (r == 0 && !pt_have_captures())
		return 77;
	return r;
}
