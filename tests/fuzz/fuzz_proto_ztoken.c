/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the compressed token streams (§9.3) with zlib, zlibx, lz4 and zstd.
 * data[0]: bits 0-1 the compressor, bit 2 protocol 30 (else 31), bit 3
 * the mode.  Decode mode: the rest is the sender's stream (a sum head,
 * tokens, a 1-byte checksum; many files), read in random chunks, matched
 * blocks fed back as zeros when zlib asks.  Round-trip mode: the rest is
 * a script of literals and blocks that tok_encoder.c turns into a stream
 * as rsync's sender would; the decoder must rebuild exactly the file the
 * script describes (abort otherwise).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "tok_encoder.h"

static const int compressors[4] = {BERTH_COMPRESS_ZLIB, BERTH_COMPRESS_ZLIBX,
				   BERTH_COMPRESS_LZ4, BERTH_COMPRESS_ZSTD};

static uint8_t basis[8 * 70000]; /* the round trip's old file */
static uint8_t zeros[BERTH_MAX_BLOCK_SIZE];

/* The round trip's new file stops growing past this. */
#define WANT_MAX (2 * 1024 * 1024)

static void decode_mode(int compress, int proto, const uint8_t *data,
			size_t size)
{
	struct berth_tok_config cfg = {.compress = compress,
				       .protocol = proto,
				       .csum_type = BERTH_CSUM_XXH64,
				       .digest_len = 1,
				       .zstd_window_log = 20,
				       .out_size = 700};
	struct berth_tok_dec *d;
	struct berth_tok_event ev;
	struct berth_sum_head head = {0};
	struct fz_chunker c;
	volatile uint64_t sink = 0;
	int r = 0;

	if (size < 1 || berth_tok_dec_create(&d, &cfg))
		return;
	fz_init(&c, data + 1, size - 1, data[0]);
	for (int files = 0; files < 50; files++) {
		berth_tok_dec_begin(d);
		for (;;) {
			while ((r = berth_tok_decode(d, &c.in, &ev)) == 0 &&
			       fz_more(&c))
				;
			if (r <= 0 || r == BERTH_TOK_END)
				break;
			if (r == BERTH_TOK_HEAD)
				head = *ev.head;
			if (r == BERTH_TOK_LITERAL)
				sink += ev.ptr[ev.len - 1];
			if (r != BERTH_TOK_BLOCKS ||
			    !berth_tok_dec_needs_basis(d))
				continue;
			for (int32_t b = 0; b < ev.nblocks && r > 0; b++)
				if (berth_tok_dec_see(
					    d, zeros,
					    berth_sum_head_block_len(
						    &head,
						    (uint32_t)(ev.block + b))))
					r = -1;
			if (r < 0)
				break;
		}
		if (r != BERTH_TOK_END)
			break;
	}
	(void)sink;
	berth_tok_dec_free(d);
}

/* Script reader: the next byte, 0 past the end. */
struct script {
	const uint8_t *p;
	size_t n, at;
};

static unsigned next(struct script *s)
{
	return s->at < s->n ? s->p[s->at++] : 0;
}

static void round_trip(int compress, int proto, const uint8_t *data,
		       size_t size)
{
	struct script s = {data, size, 0};
	struct berth_sum_head h = {0};
	struct tok_enc t;
	struct berth_tok_config cfg = {.compress = compress,
				       .protocol = proto,
				       .csum_type = BERTH_CSUM_XXH64,
				       .digest_len = 1,
				       .out_size = 700};
	struct berth_tok_dec *d;
	struct berth_tok_event ev;
	struct fz_chunker c;
	uint8_t *want, *got;
	size_t want_len = 0, got_len = 0, cap;
	uint32_t lens[8];
	int r;

	/* The basis: text-like bytes, made once. */
	if (!basis[0])
		for (size_t i = 0; i < sizeof(basis); i++)
			basis[i] =
				(uint8_t)("abcdefgh \n"[(i * 7 + i / 13) % 11]);
	h.blength = (next(&s) & 1) ? 70000 : 1 + (int32_t)next(&s) * 40;
	h.count = 8;
	h.remainder = h.blength / 2 + 1;
	h.s2length = 2;
	cap = WANT_MAX + 4 * 70000 + 256 * 37;
	want = malloc(cap);
	got = malloc(cap);
	if (!want || !got || te_init(&t, compress, proto, 1 + next(&s) % 9))
		abort();
	te_file(&t, &h);
	for (int op = 0; op < 64 && s.at < s.n && want_len < WANT_MAX; op++) {
		unsigned k = next(&s), first = k % 8, n = 1 + (k >> 3) % 4;

		if (k & 0x80) {
			/* A literal: basis bytes from far or near, or
			 * script bytes. */
			size_t len = next(&s) * 37u, off = next(&s) * 2048u;

			if (k & 0x40) {
				len = len < s.n - s.at ? len : s.n - s.at;
				te_literal(&t, s.p + s.at, len);
				memcpy(want + want_len, s.p + s.at, len);
				s.at += len;
			} else {
				len = len < sizeof(basis) - off
					      ? len
					      : sizeof(basis) - off;
				te_literal(&t, basis + off, len);
				memcpy(want + want_len, basis + off, len);
			}
			want_len += len;
			continue;
		}
		if (first + n > 8)
			n = 8 - first;
		for (unsigned b = 0; b < n; b++) {
			lens[b] = berth_sum_head_block_len(&h, first + b);
			memcpy(want + want_len,
			       basis + (size_t)(first + b) * (size_t)h.blength,
			       lens[b]);
			want_len += lens[b];
		}
		te_blocks(&t, (int32_t)first, (int32_t)n,
			  basis + (size_t)first * (size_t)h.blength, lens);
	}
	te_end(&t, (const uint8_t *)"\x5a", 1);

	if (berth_tok_dec_create(&d, &cfg) || berth_tok_dec_begin(d))
		abort();
	fz_init(&c, t.buf, t.len, (uint32_t)size);
	for (;;) {
		while ((r = berth_tok_decode(d, &c.in, &ev)) == 0 &&
		       fz_more(&c))
			;
		if (r <= 0 || r == BERTH_TOK_END)
			break;
		if (r == BERTH_TOK_LITERAL) {
			if (got_len + ev.len > want_len)
				abort();
			memcpy(got + got_len, ev.ptr, ev.len);
			got_len += ev.len;
		} else if (r == BERTH_TOK_BLOCKS) {
			for (int32_t b = 0; b < ev.nblocks; b++) {
				uint32_t i = (uint32_t)(ev.block + b);
				uint32_t len = berth_sum_head_block_len(&h, i);
				const uint8_t *p = basis +
						   (size_t)i *
							   (size_t)h.blength;

				if (berth_tok_dec_needs_basis(d) &&
				    berth_tok_dec_see(d, p, len))
					abort();
				if (got_len + len > want_len)
					abort();
				memcpy(got + got_len, p, len);
				got_len += len;
			}
		}
	}
	if (r != BERTH_TOK_END || got_len != want_len ||
	    memcmp(got, want, want_len) || ev.sum[0] != 0x5a)
		abort();
	berth_tok_dec_free(d);
	te_destroy(&t);
	free(want);
	free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int compress, proto;

	if (size < 2)
		return 0;
	compress = compressors[data[0] & 3];
	proto = data[0] & 4 ? 30 : 31;
	if (data[0] & 8)
		round_trip(compress, proto, data + 1, size - 1);
	else
		decode_mode(compress, proto, data + 1, size - 1);
	return 0;
}
