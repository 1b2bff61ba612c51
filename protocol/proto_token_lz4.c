/* SPDX-License-Identifier: MIT */
/*
 * lz4 payloads of the compressed token format (§9.3): every DEFLATED_DATA
 * payload is one independent lz4 block, no state from one to the next and
 * no history of matched blocks.  A block may hold as much as rsync's
 * receiver takes: the bound of a 32 KiB chunk (its CHUNK_SIZE).
 */
#include <errno.h>
#include <stdlib.h>
#include <lz4.h>

#include "protocol/proto_int.h"

/* The longest payload (14-bit length) and the largest block. */
#define LZ4_PAYLOAD_MAX 16383
#define LZ4_CHUNK 32768

int berth__tok_lz4_init(struct berth_tok_dec *d)
{
	size_t cap = (size_t)LZ4_compressBound(LZ4_CHUNK);

	d->zout_cap = cap > LZ4_PAYLOAD_MAX + 2 ? cap : LZ4_PAYLOAD_MAX + 2;
	d->zout = malloc(d->zout_cap);
	d->zin = malloc(LZ4_PAYLOAD_MAX);
	return d->zout && d->zin ? 0 : -ENOMEM;
}

void berth__tok_lz4_free(struct berth_tok_dec *d)
{
	free(d->zout);
	free(d->zin);
	d->zout = NULL;
	d->zin = NULL;
}

int berth__tok_lz4_data(struct berth_tok_dec *d, const uint8_t *p, size_t n,
			bool end, size_t *used, struct berth_tok_event *ev)
{
	const uint8_t *src = p;
	size_t len = n;
	int out;

	*used = n;
	if (!end || d->zin_len) {
		/* A payload split across input chunks: gather it. */
		if (n > LZ4_PAYLOAD_MAX - d->zin_len)
			return -BERTH_EPROTO;
		memcpy(d->zin + d->zin_len, p, n);
		d->zin_len += n;
		if (!end)
			return BERTH__TOK_AGAIN;
		src = d->zin;
		len = d->zin_len;
		d->zin_len = 0;
	}
	if (!len)
		return -BERTH_EPROTO; /* an empty payload is no lz4 block */
	out = LZ4_decompress_safe((const char *)src, (char *)d->zout, (int)len,
				  (int)d->zout_cap);
	if (out < 0)
		return -BERTH_ECODEC;
	if (!out)
		return BERTH__TOK_AGAIN;
	ev->ptr = d->zout;
	ev->len = (size_t)out;
	return BERTH_TOK_LITERAL;
}
