/* SPDX-License-Identifier: MIT */
/*
 * Compressed token streams made here with the libraries, as rsync's sender
 * makes them (tok_encoder.c), decoded by berth_tok_decode() in small
 * random chunks: zlib (matched blocks fed back with berth_tok_dec_see(),
 * blocks over 0xffff bytes at protocols 30 and 31), zlibx, lz4, zstd and
 * plain tokens, two files per session, runs and absolute block numbers.
 * The rebuilt files must equal the sources; a decoder that feeds the
 * history by the other protocol's rule must not.  Then bad streams.
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
#include <lz4.h>
#include <zlib.h>

#include "protocol/protocol.h"
#include "tok_encoder.h"

#define SUM_LEN 16

static uint32_t lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* Compressible text: words drawn from a small list. */
static void text(uint32_t seed, uint8_t *out, size_t n)
{
	static const char *const words[] = {"alpha ", "beta ",	"gamma ",
					    "delta ", "rsync ", "block ",
					    "token ", "\n"};
	size_t at = 0;

	while (at < n) {
		const char *w = words[lcg(&seed) % 8];
		size_t k = strlen(w);

		if (k > n - at)
			k = n - at;
		memcpy(out + at, w, k);
		at += k;
	}
}

struct plan {
	uint8_t *basis, *want; /* the old file, the new one */
	size_t basis_len, want_len;
	struct berth_sum_head head;
};

static uint32_t blen(const struct plan *p, int32_t i)
{
	return berth_sum_head_block_len(&p->head, (uint32_t)i);
}

static const uint8_t *bdata(const struct plan *p, int32_t i)
{
	return p->basis + (size_t)i * (size_t)p->head.blength;
}

static void want(struct plan *p, const void *d, size_t n)
{
	memcpy(p->want + p->want_len, d, n);
	p->want_len += n;
}

/*
 * Encode one file into @t and record the file it makes: runs of matched
 * blocks; every third block replaced by literal text that repeats the tail
 * of the block before it (so zlib refers back into the history); once a
 * block from far back (an absolute block number).
 */
static void one_file(struct tok_enc *t, struct plan *p, uint32_t seed,
		     int32_t blength)
{
	uint8_t lit[6000];
	uint32_t lens[4];
	int32_t i, n;

	p->basis_len = 600000 + seed % 1000;
	p->basis = malloc(p->basis_len);
	p->want = malloc(p->basis_len * 2);
	p->want_len = 0;
	text(seed, p->basis, p->basis_len);
	p->head.blength = blength;
	p->head.count = (int32_t)((p->basis_len + (size_t)blength - 1) /
				  (size_t)blength);
	p->head.remainder = (int32_t)(p->basis_len % (size_t)blength);
	p->head.s2length = 2;
	te_file(t, &p->head);
	for (i = 0; i < p->head.count; i += n) {
		n = 1;
		if (i % 3 == 2) {
			/* The previous block's tail, then new text. */
			size_t end = (size_t)i * (size_t)blength, k = 3000;

			if (k > end)
				k = end;
			memcpy(lit, p->basis + end - k, 2000);
			text(seed + (uint32_t)i, lit + 2000,
			     sizeof(lit) - 2000);
			te_literal(t, lit, sizeof(lit));
			want(p, lit, sizeof(lit));
			continue;
		}
		if (i % 3 == 0 && i + 1 < p->head.count)
			n = 2; /* a run */
		for (int32_t k = 0; k < n; k++) {
			lens[k] = blen(p, i + k);
			want(p, bdata(p, i + k), lens[k]);
		}
		te_blocks(t, i, n, bdata(p, i), lens);
		if (i == 3 * (p->head.count / 6)) {
			/* Back to block 1: TOKEN_LONG. */
			lens[0] = blen(p, 1);
			want(p, bdata(p, 1), lens[0]);
			te_blocks(t, 1, 1, bdata(p, 1), lens);
		}
	}
	te_literal(t, "the end\n", 8);
	want(p, "the end\n", 8);
}

/*
 * Decode @wire as a session of @nfiles files; true when every file came
 * out as planned.  @see: feed matched blocks when the decoder asks.
 */
static bool decode(const uint8_t *wire, size_t len, struct plan *plans,
		   int nfiles, int compress, int protocol)
{
	struct berth_tok_config cfg = {.compress = compress,
				       .protocol = protocol,
				       .csum_type = BERTH_CSUM_XXH128,
				       .digest_len = SUM_LEN,
				       .out_size = 1000};
	struct berth_tok_dec *d;
	struct berth_tok_event ev;
	struct berth_proto_in in = {wire, 0, 0};
	uint32_t seed = 7;
	bool ok = true;
	int r;

	assert_int_equal(berth_tok_dec_create(&d, &cfg), 0);
	for (int f = 0; f < nfiles && ok; f++) {
		struct plan *p = &plans[f];
		uint8_t *got = malloc(p->want_len + 1);
		size_t got_len = 0;

		assert_int_equal(berth_tok_dec_begin(d), 0);
		for (;;) {
			r = berth_tok_decode(d, &in, &ev);
			if (r == BERTH_PROTO_MORE) {
				size_t k = 1 + lcg(&seed) % 300;

				if (in.size == len)
					break;
				in.size = in.size + k > len ? len : in.size + k;
				continue;
			}
			if (r < 0 || r == BERTH_TOK_END)
				break;
			if (r == BERTH_TOK_LITERAL) {
				if (got_len + ev.len > p->want_len) {
					r = -ERANGE;
					break;
				}
				memcpy(got + got_len, ev.ptr, ev.len);
				got_len += ev.len;
			} else if (r == BERTH_TOK_BLOCKS) {
				for (int32_t b = 0; b < ev.nblocks; b++) {
					int32_t i = ev.block + b;

					if (got_len + blen(p, i) >
					    p->want_len) {
						r = -ERANGE;
						break;
					}
					if (berth_tok_dec_needs_basis(d))
						assert_int_equal(
							berth_tok_dec_see(
								d, bdata(p, i),
								blen(p, i)),
							0);
					memcpy(got + got_len, bdata(p, i),
					       blen(p, i));
					got_len += blen(p, i);
				}
				if (r < 0)
					break;
			}
		}
		ok = r == BERTH_TOK_END && got_len == p->want_len &&
		     !memcmp(got, p->want, got_len) && ev.sum[0] == 0xa0 + f;
		free(got);
	}
	berth_tok_dec_free(d);
	return ok;
}

/* Encode two files, decode them; the result of decode(). */
static bool round_trip(int compress, int enc_proto, int dec_proto,
		       int32_t blength)
{
	struct tok_enc t;
	struct plan p[2];
	uint8_t sum[SUM_LEN] = {0};
	bool ok;

	assert_int_equal(te_init(&t, compress, enc_proto, 0), 0);
	for (int f = 0; f < 2; f++) {
		one_file(&t, &p[f], 100u + (uint32_t)f, blength);
		sum[0] = (uint8_t)(0xa0 + f);
		te_end(&t, sum, SUM_LEN);
	}
	ok = decode(t.buf, t.len, p, 2, compress, dec_proto);
	for (int f = 0; f < 2; f++) {
		free(p[f].basis);
		free(p[f].want);
	}
	te_destroy(&t);
	return ok;
}

static void test_round_trips(void **state)
{
	static const int all[] = {BERTH_COMPRESS_NONE, BERTH_COMPRESS_ZLIB,
				  BERTH_COMPRESS_ZLIBX, BERTH_COMPRESS_LZ4,
				  BERTH_COMPRESS_ZSTD};

	(void)state;
	for (size_t c = 0; c < sizeof(all) / sizeof(all[0]); c++) {
		for (int proto = 30; proto <= 32; proto++) {
			if (!round_trip(all[c], proto, proto, 2048) ||
			    !round_trip(all[c], proto, proto, 131072))
				fail_msg("%s at protocol %d",
					 berth_compress_name(all[c]), proto);
		}
	}
}

/*
 * zlib's rule for blocks over 0xffff bytes differs below protocol 31: a
 * decoder that follows the other protocol's rule rebuilds other bytes.
 * Blocks up to 0xffff bytes are the same under both.
 */
static void test_zlib_protocol_rule(void **state)
{
	(void)state;
	assert_false(round_trip(BERTH_COMPRESS_ZLIB, 30, 31, 131072));
	assert_false(round_trip(BERTH_COMPRESS_ZLIB, 31, 30, 131072));
	assert_true(round_trip(BERTH_COMPRESS_ZLIB, 30, 31, 65535));
	/* zlibx keeps no history of matched data: no difference. */
	assert_true(round_trip(BERTH_COMPRESS_ZLIBX, 30, 31, 131072));
}

/* A head: 4 blocks of 10 bytes. */
static const uint8_t head4[16] = {4, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0};

static int run(int compress, const uint8_t *b, size_t n, bool see)
{
	struct berth_tok_config cfg = {.compress = compress,
				       .csum_type = BERTH_CSUM_XXH128,
				       .digest_len = 1};
	struct berth_tok_dec *d;
	struct berth_tok_event ev;
	struct berth_proto_in in = {b, n, 0};
	static const uint8_t zeros[10];
	int r;

	assert_int_equal(berth_tok_dec_create(&d, &cfg), 0);
	berth_tok_dec_begin(d);
	while ((r = berth_tok_decode(d, &in, &ev)) > 0 && r != BERTH_TOK_END)
		if (r == BERTH_TOK_BLOCKS && see)
			for (int i = 0; i < ev.nblocks; i++)
				assert_int_equal(
					berth_tok_dec_see(d, zeros, 10), 0);
	berth_tok_dec_free(d);
	return r;
}

/* @head4, a payload of @n bytes at @p, then @tail. */
static size_t stream(uint8_t *b, const void *p, size_t n, const char *tail,
		     size_t tail_len)
{
	memcpy(b, head4, 16);
	b[16] = (uint8_t)(0x40 | n >> 8);
	b[17] = (uint8_t)n;
	memcpy(b + 18, p, n);
	memcpy(b + 18 + n, tail, tail_len);
	return 18 + n + tail_len;
}

static size_t deflate_raw(const char *s, uint8_t *out, size_t cap, int flush)
{
	z_stream z = {0};
	size_t n;

	assert_int_equal(
		deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
		Z_OK);
	z.next_in = (Bytef *)(uintptr_t)s;
	z.avail_in = (uInt)strlen(s);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	deflate(&z, flush);
	n = cap - z.avail_out;
	deflateEnd(&z);
	return n;
}

static void test_bad_streams(void **state)
{
	static uint8_t big[40000];
	uint8_t b[20000], z[256];
	struct berth_tok_config cfg = {.compress = BERTH_COMPRESS_ZLIB,
				       .csum_type = BERTH_CSUM_XXH128,
				       .digest_len = 1};
	struct berth_tok_dec *d;
	struct berth_tok_event ev;
	struct berth_proto_in in;
	size_t n, zn;

	(void)state;
	/* well-formed: a flushed payload (trailer stripped), a block, end */
	zn = deflate_raw("hello hello hello", z, sizeof(z), Z_SYNC_FLUSH);
	n = stream(b, z, zn - 4, "\x81\x00\x07", 3);
	assert_int_equal(run(BERTH_COMPRESS_ZLIB, b, n, true), BERTH_TOK_END);
	assert_int_equal(run(BERTH_COMPRESS_ZLIBX, b, n, false), BERTH_TOK_END);
	/* zlib without the block fed back: the caller's error */
	assert_int_equal(run(BERTH_COMPRESS_ZLIB, b, n, false), -EINVAL);
	/* the trailer left in: the stream is past the sync point */
	n = stream(b, z, zn, "\x00\x07", 2);
	assert_int_equal(run(BERTH_COMPRESS_ZLIB, b, n, true), -BERTH_EPROTO);
	/* a last block (the sender never ends the stream) */
	zn = deflate_raw("hello hello hello", z, sizeof(z), Z_FINISH);
	n = stream(b, z, zn, "\x00\x07", 2);
	assert_int_equal(run(BERTH_COMPRESS_ZLIB, b, n, true), -BERTH_ECODEC);
	/* not deflate data; an empty payload */
	n = stream(b, "\xff\xff\xff\xff", 4, "\x00\x07", 2);
	assert_int_equal(run(BERTH_COMPRESS_ZLIB, b, n, true), -BERTH_ECODEC);
	assert_int_equal(run(BERTH_COMPRESS_LZ4, b, n, true), -BERTH_ECODEC);
	n = stream(b, "", 0, "\x00\x07", 2);
	assert_int_equal(run(BERTH_COMPRESS_ZLIB, b, n, true), -BERTH_EPROTO);
	assert_int_equal(run(BERTH_COMPRESS_LZ4, b, n, true), -BERTH_EPROTO);
	assert_int_equal(run(BERTH_COMPRESS_ZSTD, b, n, true), BERTH_TOK_END);
	/* lz4: a block larger than rsync's receiver takes, and one it does */
	zn = (size_t)LZ4_compress_default((const char *)big, (char *)b + 18,
					  sizeof(big), 16383);
	assert_true(zn > 0 && zn < 16383);
	n = stream(b, b + 18, zn, "\x00\x07", 2);
	assert_int_equal(run(BERTH_COMPRESS_LZ4, b, n, true), -BERTH_ECODEC);
	zn = (size_t)LZ4_compress_default((const char *)big, (char *)b + 18,
					  32000, 16383);
	n = stream(b, b + 18, zn, "\x00\x07", 2);
	assert_int_equal(run(BERTH_COMPRESS_LZ4, b, n, true), BERTH_TOK_END);
	/* berth_tok_dec_see: only when owed, only the block's length */
	assert_int_equal(berth_tok_dec_create(&d, &cfg), 0);
	berth_tok_dec_begin(d);
	assert_true(berth_tok_dec_needs_basis(d));
	assert_int_equal(berth_tok_dec_see(d, big, 10), -EINVAL);
	memcpy(b, head4, 16);
	memcpy(b + 16, "\xc3\x00\x00", 3); /* run of blocks 3..3 */
	in = (struct berth_proto_in){b, 19, 0};
	assert_int_equal(berth_tok_decode(d, &in, &ev), BERTH_TOK_HEAD);
	assert_int_equal(berth_tok_decode(d, &in, &ev), BERTH_TOK_BLOCKS);
	assert_int_equal(berth_tok_dec_see(d, big, 9), -EINVAL);
	assert_int_equal(berth_tok_dec_see(d, big, 10), 0);
	assert_int_equal(berth_tok_dec_see(d, big, 10), -EINVAL);
	berth_tok_dec_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_zlib_protocol_rule),
		cmocka_unit_test(test_bad_streams),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
