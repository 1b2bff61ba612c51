/* SPDX-License-Identifier: MIT */
/*
 * zlib and zlibx payloads of the compressed token format (§9.3): raw
 * deflate (32 KiB window), one stream per file.  The sender ends each
 * literal run before a token with a sync flush whose last four bytes
 * (00 00 ff ff, the empty stored block's lengths) it leaves out; they are
 * put back here.  zlib (not zlibx) also adds every matched block to its
 * compressor's history, so the receiver adds the same bytes to the
 * inflate history, as stored blocks of at most 0xffff bytes whose output
 * is thrown away.  Below protocol 31 each piece of a block longer than
 * 0xffff starts again at the block's first byte (the sender has the same
 * bug, so the histories agree).
 */
#include <errno.h>
#include <stdlib.h>

#define ZLIB_CONST
#include <zlib.h>

#include "protocol/proto_int.h"

/* Output buffer default: literal chunks, and stored blocks thrown away. */
#define ZLIB_OUT (128 * 1024)
/* A stored block holds at most this many bytes. */
#define STORED_MAX 0xffff

static int zerr(int r)
{
	return r == Z_MEM_ERROR ? -ENOMEM : -BERTH_ECODEC;
}

int berth__tok_zlib_init(struct berth_tok_dec *d)
{
	z_stream *z = calloc(1, sizeof(*z));

	if (!z)
		return -ENOMEM;
	if (inflateInit2(z, -15) != Z_OK) {
		free(z);
		return -ENOMEM;
	}
	d->codec = z;
	d->zout_cap = d->cfg.out_size ? d->cfg.out_size : ZLIB_OUT;
	d->zout = malloc(d->zout_cap);
	return d->zout ? 0 : -ENOMEM;
}

void berth__tok_zlib_free(struct berth_tok_dec *d)
{
	if (d->codec) {
		inflateEnd(d->codec);
		free(d->codec);
		d->codec = NULL;
	}
	free(d->zout);
	d->zout = NULL;
}

int berth__tok_zlib_reset(struct berth_tok_dec *d)
{
	return inflateReset(d->codec) == Z_OK ? 0 : -EINVAL;
}

/* Point the output at the whole buffer; bytes produced so far. */
static void out_reset(struct berth_tok_dec *d, z_stream *z)
{
	z->next_out = d->zout;
	z->avail_out = (uInt)d->zout_cap;
}

static size_t out_len(const struct berth_tok_dec *d, const z_stream *z)
{
	return d->zout_cap - z->avail_out;
}

int berth__tok_zlib_data(struct berth_tok_dec *d, const uint8_t *p, size_t n,
			 bool end, size_t *used, struct berth_tok_event *ev)
{
	z_stream *z = d->codec;
	int r;

	*used = 0;
	if (!n) /* an empty payload: rsync's inflate fails on it too */
		return end ? -BERTH_EPROTO : BERTH__TOK_AGAIN;
	z->next_in = p;
	z->avail_in = (uInt)n;
	out_reset(d, z);
	r = inflate(z, Z_NO_FLUSH);
	*used = n - z->avail_in;
	/* The sender never ends the stream: Z_STREAM_END is an error too. */
	if (r != Z_OK)
		return zerr(r);
	if (!out_len(d, z))
		return BERTH__TOK_AGAIN;
	ev->ptr = d->zout;
	ev->len = out_len(d, z);
	return BERTH_TOK_LITERAL;
}

/* Feed @n bytes at @p and throw the output away. */
static int feed_discard(struct berth_tok_dec *d, const uint8_t *p, size_t n)
{
	z_stream *z = d->codec;
	uInt before;
	int r;

	z->next_in = p;
	z->avail_in = (uInt)n;
	do {
		before = z->avail_in;
		out_reset(d, z);
		r = inflate(z, Z_SYNC_FLUSH);
		if (r != Z_OK && r != Z_BUF_ERROR)
			return zerr(r);
		if (z->avail_in == before && !out_len(d, z) && before)
			return -BERTH_EPROTO; /* stuck: not a block boundary */
	} while (z->avail_in || !z->avail_out);
	return 0;
}

int berth__tok_zlib_pending(struct berth_tok_dec *d, struct berth_tok_event *ev)
{
	static const uint8_t trailer[4] = {0, 0, 0xff, 0xff};
	z_stream *z = d->codec;
	int r;

	z->next_in = NULL;
	z->avail_in = 0;
	out_reset(d, z);
	r = inflate(z, Z_SYNC_FLUSH);
	if (r != Z_OK && r != Z_BUF_ERROR)
		return zerr(r);
	if (out_len(d, z)) {
		ev->ptr = d->zout;
		ev->len = out_len(d, z);
		return BERTH_TOK_LITERAL;
	}
	/* The stream must stop just before the stripped lengths. */
	if (!inflateSyncPoint(z))
		return -BERTH_EPROTO;
	TRY(feed_discard(d, trailer, sizeof(trailer)));
	return BERTH__TOK_AGAIN;
}

int berth__tok_zlib_see(struct berth_tok_dec *d, const uint8_t *p, size_t len)
{
	uint8_t hdr[5];
	size_t n, off = 0;

	while (len) {
		n = len < STORED_MAX ? len : STORED_MAX;
		/* A stored block, not the last: BFINAL 0, BTYPE 00, then
		 * LEN and its complement, little endian. */
		hdr[0] = 0;
		hdr[1] = (uint8_t)n;
		hdr[2] = (uint8_t)(n >> 8);
		hdr[3] = (uint8_t)~hdr[1];
		hdr[4] = (uint8_t)~hdr[2];
		TRY(feed_discard(d, hdr, sizeof(hdr)));
		TRY(feed_discard(d, p + off, n));
		if (d->cfg.protocol >= 31)
			off += n;
		len -= n;
	}
	return 0;
}
