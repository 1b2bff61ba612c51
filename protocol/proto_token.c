/* SPDX-License-Identifier: MIT */
/*
 * The receiver's token decoder (§9.2, §9.3): the sum head echo, the
 * tokens, the whole-file checksum.  This file holds the API, the plain
 * int32 tokens and the choice of compressor; the compressed format's flag
 * bytes are in proto_token_frame.c, the compressors in
 * proto_token_{zlib,lz4,zstd}.c.
 */
#include <errno.h>
#include <stdlib.h>

#include "protocol/proto_int.h"

int berth_tok_dec_create(struct berth_tok_dec **dp,
			 const struct berth_tok_config *cfg)
{
	struct berth_tok_dec *d;
	int r = 0;

	*dp = NULL;
	if (cfg->digest_len < 1 || cfg->digest_len > 64)
		return -EINVAL;
	if (cfg->compress < BERTH_COMPRESS_NONE ||
	    cfg->compress > BERTH_COMPRESS_ZSTD)
		return -BERTH_EUNSUPPORTED;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = *cfg;
	if (!d->cfg.protocol)
		d->cfg.protocol = BERTH_PROTO_MAX;
	switch (cfg->compress) {
	case BERTH_COMPRESS_ZLIB:
	case BERTH_COMPRESS_ZLIBX:
		r = berth__tok_zlib_init(d);
		break;
	case BERTH_COMPRESS_LZ4:
		r = berth__tok_lz4_init(d);
		break;
	case BERTH_COMPRESS_ZSTD:
		r = berth__tok_zstd_init(d);
		break;
	}
	if (r) {
		berth_tok_dec_free(d);
		return r;
	}
	d->state = TOK_IDLE;
	*dp = d;
	return 0;
}

void berth_tok_dec_free(struct berth_tok_dec *d)
{
	if (!d)
		return;
	switch (d->cfg.compress) {
	case BERTH_COMPRESS_ZLIB:
	case BERTH_COMPRESS_ZLIBX:
		berth__tok_zlib_free(d);
		break;
	case BERTH_COMPRESS_LZ4:
		berth__tok_lz4_free(d);
		break;
	case BERTH_COMPRESS_ZSTD:
		berth__tok_zstd_free(d);
		break;
	}
	free(d);
}

int berth_tok_dec_begin(struct berth_tok_dec *d)
{
	if (d->state != TOK_IDLE)
		return -EINVAL;
	d->state = TOK_HEAD;
	d->small_len = 0;
	d->last = 0;
	d->data_seen = false;
	d->see_left = 0;
	d->zin_len = 0;
	/* zlib and zlibx: every file is its own deflate stream. */
	if (d->cfg.compress == BERTH_COMPRESS_ZLIB ||
	    d->cfg.compress == BERTH_COMPRESS_ZLIBX)
		return berth__tok_zlib_reset(d);
	return 0;
}

bool berth_tok_dec_needs_basis(const struct berth_tok_dec *d)
{
	return d->cfg.compress == BERTH_COMPRESS_ZLIB;
}

int berth_tok_dec_see(struct berth_tok_dec *d, const void *ptr, size_t len)
{
	int r;

	if (!d->see_left ||
	    len != berth_sum_head_block_len(&d->head, (uint32_t)d->see_block))
		return -EINVAL;
	r = berth__tok_zlib_see(d, ptr, len);
	if (r < 0)
		return r;
	d->see_block++;
	d->see_left--;
	return 0;
}

static int plain_step(struct berth_tok_dec *d, struct berth_proto_in *in,
		      struct berth_tok_event *ev)
{
	int32_t t;
	size_t n;

	switch (d->state) {
	case TOK_TOKEN:
		if (!tok_collect(d, in, 4))
			return BERTH_PROTO_MORE;
		d->small_len = 0;
		t = (int32_t)get_le32(d->small);
		if (t == 0) {
			d->state = TOK_SUM;
			return BERTH__TOK_AGAIN;
		}
		if (t > 0) {
			d->left = t;
			d->state = TOK_LIT;
			return BERTH__TOK_AGAIN;
		}
		/* Block -(t+1); t = INT32_MIN gives INT32_MAX, >= count. */
		t = (int32_t)(-((int64_t)t + 1));
		if (t >= d->head.count)
			return -BERTH_EPROTO;
		ev->block = t;
		ev->nblocks = 1;
		return BERTH_TOK_BLOCKS;
	case TOK_LIT:
		if (!in_avail(in))
			return BERTH_PROTO_MORE;
		n = in_avail(in);
		if ((int64_t)n > d->left)
			n = (size_t)d->left;
		ev->ptr = in->ptr + in->pos;
		ev->len = n;
		in->pos += n;
		d->left -= (int64_t)n;
		if (!d->left)
			d->state = TOK_TOKEN;
		return BERTH_TOK_LITERAL;
	}
	return -EINVAL;
}

int berth_tok_decode(struct berth_tok_dec *d, struct berth_proto_in *in,
		     struct berth_tok_event *ev)
{
	int r;

	memset(ev, 0, sizeof(*ev));
	if (d->see_left)
		return -EINVAL; /* the caller owes matched blocks */
	for (;;) {
		switch (d->state) {
		case TOK_IDLE:
			return -EINVAL;
		case TOK_HEAD:
			if (!tok_collect(d, in, 16))
				return BERTH_PROTO_MORE;
			d->small_len = 0;
			d->head.count = (int32_t)get_le32(d->small);
			d->head.blength = (int32_t)get_le32(d->small + 4);
			d->head.s2length = (int32_t)get_le32(d->small + 8);
			d->head.remainder = (int32_t)get_le32(d->small + 12);
			TRY(berth_sum_head_check(&d->head, d->cfg.csum_type,
						 UINT64_MAX));
			d->state = TOK_TOKEN;
			ev->head = &d->head;
			return BERTH_TOK_HEAD;
		case TOK_SUM:
			if (!tok_collect(d, in, (unsigned)d->cfg.digest_len))
				return BERTH_PROTO_MORE;
			d->small_len = 0;
			d->state = TOK_IDLE;
			ev->sum = d->small;
			return BERTH_TOK_END;
		default:
			if (d->cfg.compress == BERTH_COMPRESS_NONE)
				r = plain_step(d, in, ev);
			else
				r = berth__tok_frame_step(d, in, ev);
			if (r == BERTH_TOK_BLOCKS &&
			    berth_tok_dec_needs_basis(d)) {
				d->see_block = ev->block;
				d->see_left = ev->nblocks;
			}
			if (r != BERTH__TOK_AGAIN)
				return r;
		}
	}
}
