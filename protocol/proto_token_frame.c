/* SPDX-License-Identifier: MIT */
/*
 * The compressed token format (§9.3), shared by zlib, zlibx, lz4 and
 * zstd: flag bytes for block numbers and runs, and DEFLATED_DATA payloads
 * handed to the compressor's file.  Before any flag byte that is not a
 * payload, the compressor gives out what it still holds of the literal
 * data (zlib also takes back the sync-flush trailer the sender stripped).
 */
#include <errno.h>

#include "protocol/proto_int.h"

#define END_FLAG 0x00
#define TOKEN_LONG 0x20
#define TOKENRUN_LONG 0x21
#define DEFLATED_DATA 0x40
#define TOKEN_REL 0x80
#define TOKENRUN_REL 0xc0

/* Bytes that follow a flag byte. */
static unsigned flag_extra(uint8_t f)
{
	if ((f & 0xc0) == DEFLATED_DATA)
		return 1;
	if ((f & 0xc0) == TOKENRUN_REL)
		return 2;
	if ((f & 0xc0) == TOKEN_REL)
		return 0;
	if (f == TOKEN_LONG)
		return 4;
	return 6; /* TOKENRUN_LONG */
}

/* Blocks first .. first + extra, all < count. */
static int blocks(struct berth_tok_dec *d, int64_t first, int64_t extra,
		  struct berth_tok_event *ev)
{
	if (first < 0 || first + extra >= d->head.count)
		return -BERTH_EPROTO;
	d->last = (int32_t)(first + extra);
	ev->block = (int32_t)first;
	ev->nblocks = (int32_t)extra + 1;
	d->state = TOK_TOKEN;
	return BERTH_TOK_BLOCKS;
}

static int data(struct berth_tok_dec *d, const uint8_t *p, size_t n, bool end,
		size_t *used, struct berth_tok_event *ev)
{
	switch (d->cfg.compress) {
	case BERTH_COMPRESS_ZLIB:
	case BERTH_COMPRESS_ZLIBX:
		return berth__tok_zlib_data(d, p, n, end, used, ev);
	case BERTH_COMPRESS_LZ4:
		return berth__tok_lz4_data(d, p, n, end, used, ev);
	default:
		return berth__tok_zstd_data(d, p, n, end, used, ev);
	}
}

static int pending(struct berth_tok_dec *d, struct berth_tok_event *ev)
{
	switch (d->cfg.compress) {
	case BERTH_COMPRESS_ZLIB:
	case BERTH_COMPRESS_ZLIBX:
		return berth__tok_zlib_pending(d, ev);
	case BERTH_COMPRESS_LZ4:
		return BERTH__TOK_AGAIN; /* one whole block per payload */
	default:
		return berth__tok_zstd_pending(d, ev);
	}
}

int berth__tok_frame_step(struct berth_tok_dec *d, struct berth_proto_in *in,
			  struct berth_tok_event *ev)
{
	const uint8_t *s = d->small;
	size_t n, used;
	uint8_t f;
	int r;

	switch (d->state) {
	case TOK_TOKEN:
		if (!in_avail(in))
			return BERTH_PROTO_MORE;
		f = in->ptr[in->pos];
		if ((f & 0xc0) != DEFLATED_DATA && d->data_seen) {
			/* All literal bytes come out before the next token. */
			r = pending(d, ev);
			if (r == BERTH__TOK_AGAIN)
				d->data_seen = false;
			return r;
		}
		in->pos++;
		if (f == END_FLAG) {
			d->state = TOK_SUM;
			return BERTH__TOK_AGAIN;
		}
		if (f < TOKEN_REL && (f & 0xc0) != DEFLATED_DATA &&
		    f != TOKEN_LONG && f != TOKENRUN_LONG)
			return -BERTH_EPROTO;
		d->flag = f;
		d->small_len = 0;
		d->state = TOK_FLAG2;
		return BERTH__TOK_AGAIN;
	case TOK_FLAG2:
		f = d->flag;
		if (!tok_collect(d, in, flag_extra(f)))
			return BERTH_PROTO_MORE;
		d->small_len = 0;
		if ((f & 0xc0) == DEFLATED_DATA) {
			d->left = (f & 0x3f) << 8 | s[0];
			d->data_seen = true;
			if (d->left) {
				d->state = TOK_ZDATA;
				return BERTH__TOK_AGAIN;
			}
			/* An empty payload: the compressor says if legal. */
			d->state = TOK_TOKEN;
			return data(d, NULL, 0, true, &used, ev);
		}
		if ((f & 0xc0) == TOKEN_REL)
			return blocks(d, (int64_t)d->last + (f & 0x3f), 0, ev);
		if ((f & 0xc0) == TOKENRUN_REL)
			return blocks(d, (int64_t)d->last + (f & 0x3f),
				      s[0] | s[1] << 8, ev);
		if (f == TOKEN_LONG)
			return blocks(d, (int32_t)get_le32(s), 0, ev);
		return blocks(d, (int32_t)get_le32(s), s[4] | s[5] << 8, ev);
	case TOK_ZDATA:
		if (!in_avail(in))
			return BERTH_PROTO_MORE;
		n = in_avail(in);
		if ((int64_t)n > d->left)
			n = (size_t)d->left;
		used = 0;
		r = data(d, in->ptr + in->pos, n, (int64_t)n == d->left, &used,
			 ev);
		in->pos += used; /* also on an error: callers advance by it */
		d->left -= (int64_t)used;
		if (!d->left)
			d->state = TOK_TOKEN;
		if (r == BERTH__TOK_AGAIN && !used)
			return -BERTH_EPROTO; /* no progress: never loop */
		return r;
	}
	return -EINVAL;
}
