/* SPDX-License-Identifier: MIT */
/* Test helper: the sender's side of the token formats (tok_encoder.h). */
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <lz4.h>
#include <zlib.h>
#include <zstd.h>

#include "tok_encoder.h"

#define MAX_PAYLOAD 16383

static void put(struct tok_enc *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2 + 4096;
		t->buf = realloc(t->buf, t->cap);
		if (!t->buf)
			abort();
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

static void put8(struct tok_enc *t, unsigned v)
{
	uint8_t b = (uint8_t)v;

	put(t, &b, 1);
}

static void put32(struct tok_enc *t, int32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
			(uint8_t)((uint32_t)v >> 24)};

	put(t, b, 4);
}

/* DEFLATED_DATA payloads of at most MAX_PAYLOAD bytes. */
static void payloads(struct tok_enc *t, const uint8_t *p, size_t n)
{
	while (n) {
		size_t k = n < MAX_PAYLOAD ? n : MAX_PAYLOAD;

		put8(t, 0x40 | (unsigned)(k >> 8));
		put8(t, (unsigned)k & 0xff);
		put(t, p, k);
		p += k;
		n -= k;
	}
}

int te_init(struct tok_enc *t, int compress, int protocol, int level)
{
	memset(t, 0, sizeof(*t));
	t->compress = compress;
	t->protocol = protocol;
	if (compress == BERTH_COMPRESS_ZLIB ||
	    compress == BERTH_COMPRESS_ZLIBX) {
		z_stream *z = calloc(1, sizeof(*z));

		t->zs = z;
		if (!z || deflateInit2(z, level ? level : 6, Z_DEFLATED, -15, 8,
				       Z_DEFAULT_STRATEGY) != Z_OK)
			return -1;
	} else if (compress == BERTH_COMPRESS_ZSTD) {
		t->zc = ZSTD_createCCtx();
		if (!t->zc)
			return -1;
		ZSTD_CCtx_setParameter(t->zc, ZSTD_c_compressionLevel,
				       level ? level : 3);
	}
	return 0;
}

void te_destroy(struct tok_enc *t)
{
	if (t->zs) {
		deflateEnd(t->zs);
		free(t->zs);
	}
	ZSTD_freeCCtx(t->zc);
	free(t->buf);
	free(t->lit);
	memset(t, 0, sizeof(*t));
}

void te_file(struct tok_enc *t, const struct berth_sum_head *h)
{
	put32(t, h->count);
	put32(t, h->blength);
	put32(t, h->s2length);
	put32(t, h->remainder);
	t->last = 0;
	t->first = 1;
	if (t->zs)
		deflateReset(t->zs);
}

void te_literal(struct tok_enc *t, const void *p, size_t n)
{
	if (!n)
		return;
	if (t->lit_len + n > t->lit_cap) {
		t->lit_cap = (t->lit_len + n) * 2;
		t->lit = realloc(t->lit, t->lit_cap);
		if (!t->lit)
			abort();
	}
	memcpy(t->lit + t->lit_len, p, n);
	t->lit_len += n;
}

static void flush_zlib(struct tok_enc *t)
{
	z_stream *z = t->zs;
	size_t cap = t->lit_len + t->lit_len / 100 + 4096, n;
	uint8_t *out = malloc(cap);

	z->next_in = t->lit;
	z->avail_in = (uInt)t->lit_len;
	z->next_out = out;
	z->avail_out = (uInt)cap;
	if (!out || deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in ||
	    !z->avail_out)
		abort();
	n = cap - z->avail_out;
	/* The flush ends in 00 00 ff ff: the sender leaves them out. */
	if (n < 4 || memcmp(out + n - 4, "\0\0\xff\xff", 4))
		abort();
	payloads(t, out, n - 4);
	free(out);
}

static void flush_zstd(struct tok_enc *t)
{
	size_t cap = ZSTD_compressBound(t->lit_len) + 4096, r;
	uint8_t *out = malloc(cap);
	ZSTD_inBuffer in = {t->lit, t->lit_len, 0};
	ZSTD_outBuffer o = {out, cap, 0};

	do {
		r = ZSTD_compressStream2(t->zc, &o, &in, ZSTD_e_flush);
		if (ZSTD_isError(r))
			abort();
	} while (r);
	payloads(t, out, o.pos);
	free(out);
}

static void flush_lz4(struct tok_enc *t)
{
	static char out[LZ4_COMPRESSBOUND(MAX_PAYLOAD)];
	size_t off = 0, in;
	int n;

	while (off < t->lit_len) {
		in = t->lit_len - off < MAX_PAYLOAD ? t->lit_len - off
						    : MAX_PAYLOAD;
		/* As rsync: halve the input until the block fits. */
		for (;;) {
			n = LZ4_compress_default((const char *)t->lit + off,
						 out, (int)in, sizeof(out));
			if (n > 0 && n <= MAX_PAYLOAD)
				break;
			in /= 2;
		}
		payloads(t, (const uint8_t *)out, (size_t)n);
		off += in;
	}
}

/* The literal data before a token or the end. */
static void flush(struct tok_enc *t)
{
	size_t off;
	int32_t k;

	if (!t->lit_len)
		return;
	switch (t->compress) {
	case BERTH_COMPRESS_NONE:
		for (off = 0; off < t->lit_len; off += (size_t)k) {
			k = t->lit_len - off > 32768
				    ? 32768
				    : (int32_t)(t->lit_len - off);
			put32(t, k);
			put(t, t->lit + off, (size_t)k);
		}
		break;
	case BERTH_COMPRESS_ZLIB:
	case BERTH_COMPRESS_ZLIBX:
		flush_zlib(t);
		break;
	case BERTH_COMPRESS_ZSTD:
		flush_zstd(t);
		break;
	default:
		flush_lz4(t);
		break;
	}
	t->lit_len = 0;
}

/* zlib: one block into the history, in rsync's pieces. */
static void history(struct tok_enc *t, const uint8_t *p, uint32_t len)
{
	uint32_t off = 0, n;

	while (len) {
		n = len > 0xffff ? 0xffff : len;
		if (deflateSetDictionary(t->zs, p + off, n) != Z_OK)
			abort();
		if (t->protocol >= 31)
			off += n;
		len -= n;
	}
}

void te_blocks(struct tok_enc *t, int32_t first, int32_t n, const uint8_t *data,
	       const uint32_t *len)
{
	int32_t rel = first - t->last;

	flush(t);
	if (t->compress == BERTH_COMPRESS_NONE) {
		for (int32_t i = 0; i < n; i++)
			put32(t, -(first + i + 1));
	} else {
		if (rel >= 0 && rel <= 63) {
			put8(t, (n > 1 ? 0xc0u : 0x80u) | (unsigned)rel);
		} else {
			put8(t, n > 1 ? 0x21 : 0x20);
			put32(t, first);
		}
		if (n > 1) {
			put8(t, (unsigned)(n - 1) & 0xff);
			put8(t, (unsigned)(n - 1) >> 8);
		}
	}
	t->last = first + n - 1;
	t->first = 0;
	for (int32_t i = 0; i < n; i++) {
		if (t->compress == BERTH_COMPRESS_ZLIB)
			history(t, data, len[i]);
		data += len[i];
	}
}

void te_end(struct tok_enc *t, const uint8_t *sum, size_t sum_len)
{
	flush(t);
	if (t->compress == BERTH_COMPRESS_NONE)
		put32(t, 0);
	else
		put8(t, 0);
	put(t, sum, sum_len);
}
