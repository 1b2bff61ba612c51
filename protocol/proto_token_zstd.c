/* SPDX-License-Identifier: MIT */
/*
 * The compressed token format (§9.3) with zstd: one decompression context
 * for the whole session, fed every DEFLATED_DATA payload in order; matched
 * blocks are never fed to it.
 */
#include <errno.h>
#include <stdlib.h>
#include <zstd.h>

#include "protocol/proto_int.h"

#define END_FLAG 0x00
#define TOKEN_LONG 0x20
#define TOKENRUN_LONG 0x21
#define DEFLATED_DATA 0x40
#define TOKEN_REL 0x80
#define TOKENRUN_REL 0xc0

int berth__tok_zstd_init(struct berth_tok_dec *d)
{
	int wlog = d->cfg.zstd_window_log ? d->cfg.zstd_window_log : 27;

	if (wlog < 10 || wlog > 31)
		return -EINVAL;
	d->zd = ZSTD_createDCtx();
	d->zout_cap = d->cfg.zstd_out ? d->cfg.zstd_out : ZSTD_DStreamOutSize();
	d->zout = malloc(d->zout_cap);
	if (!d->zd || !d->zout)
		return -ENOMEM;
	if (ZSTD_isError(
		    ZSTD_DCtx_setParameter(d->zd, ZSTD_d_windowLogMax, wlog)))
		return -EINVAL;
	return 0;
}

void berth__tok_zstd_free(struct berth_tok_dec *d)
{
	ZSTD_freeDCtx(d->zd);
	d->zd = NULL;
	free(d->zout);
	d->zout = NULL;
}

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

/* Run zstd on @n bytes at @p (maybe 0: flush) into the output buffer. */
static int inflate(struct berth_tok_dec *d, const uint8_t *p, size_t n,
		   size_t *used, struct berth_tok_event *ev)
{
	ZSTD_inBuffer zin = {p, n, 0};
	ZSTD_outBuffer zout = {d->zout, d->zout_cap, 0};
	size_t r = ZSTD_decompressStream(d->zd, &zout, &zin);

	*used = zin.pos; /* also on an error: callers advance by it */
	if (ZSTD_isError(r))
		return -BERTH_EPROTO;
	d->zfull = zout.pos == zout.size;
	if (!zout.pos)
		return BERTH__TOK_AGAIN;
	ev->ptr = d->zout;
	ev->len = zout.pos;
	return BERTH_TOK_LITERAL;
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

int berth__tok_zstd_step(struct berth_tok_dec *d, struct berth_proto_in *in,
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
		if ((f & 0xc0) != DEFLATED_DATA && d->zfull) {
			/* All literal bytes come out before the next token. */
			r = inflate(d, NULL, 0, &used, ev);
			if (r == BERTH__TOK_AGAIN)
				d->zfull = false;
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
		if (!berth__tok_collect(d, in, flag_extra(f)))
			return BERTH_PROTO_MORE;
		d->small_len = 0;
		if ((f & 0xc0) == DEFLATED_DATA) {
			d->left = (f & 0x3f) << 8 | s[0];
			d->state = d->left ? TOK_ZDATA : TOK_TOKEN;
			return BERTH__TOK_AGAIN;
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
		r = inflate(d, in->ptr + in->pos, n, &used, ev);
		in->pos += used;
		d->left -= (int64_t)used;
		if (!d->left)
			d->state = TOK_TOKEN;
		return r;
	}
	return -EINVAL;
}
