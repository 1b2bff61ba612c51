/* SPDX-License-Identifier: MIT */
/*
 * zstd payloads of the compressed token format (§9.3): one decompression
 * context for the whole session, fed every DEFLATED_DATA payload in
 * order; matched blocks are never fed to it.
 */
#include <errno.h>
#include <stdlib.h>
#include <zstd.h>

#include "protocol/proto_int.h"

int berth__tok_zstd_init(struct berth_tok_dec *d)
{
	int wlog = d->cfg.zstd_window_log ? d->cfg.zstd_window_log : 27;

	if (wlog < 10 || wlog > 31)
		return -EINVAL;
	d->codec = ZSTD_createDCtx();
	d->zout_cap = d->cfg.out_size ? d->cfg.out_size : ZSTD_DStreamOutSize();
	d->zout = malloc(d->zout_cap);
	if (!d->codec || !d->zout)
		return -ENOMEM;
	if (ZSTD_isError(ZSTD_DCtx_setParameter(d->codec, ZSTD_d_windowLogMax,
						wlog)))
		return -EINVAL;
	return 0;
}

void berth__tok_zstd_free(struct berth_tok_dec *d)
{
	ZSTD_freeDCtx(d->codec);
	d->codec = NULL;
	free(d->zout);
	d->zout = NULL;
}

/* Run zstd on @n bytes at @p (maybe 0: flush) into the output buffer. */
static int run(struct berth_tok_dec *d, const uint8_t *p, size_t n,
	       size_t *used, struct berth_tok_event *ev)
{
	ZSTD_inBuffer zin = {p, n, 0};
	ZSTD_outBuffer zout = {d->zout, d->zout_cap, 0};
	size_t r = ZSTD_decompressStream(d->codec, &zout, &zin);

	*used = zin.pos; /* also on an error: callers advance by it */
	if (ZSTD_isError(r))
		return -BERTH_ECODEC;
	d->zfull = zout.pos == zout.size;
	if (!zout.pos)
		return BERTH__TOK_AGAIN;
	ev->ptr = d->zout;
	ev->len = zout.pos;
	return BERTH_TOK_LITERAL;
}

int berth__tok_zstd_data(struct berth_tok_dec *d, const uint8_t *p, size_t n,
			 bool end, size_t *used, struct berth_tok_event *ev)
{
	(void)end;
	*used = 0;
	if (!n)
		return BERTH__TOK_AGAIN; /* an empty payload: nothing */
	return run(d, p, n, used, ev);
}

int berth__tok_zstd_pending(struct berth_tok_dec *d, struct berth_tok_event *ev)
{
	size_t used;

	/* Output only remains when the last call filled the buffer. */
	if (!d->zfull)
		return BERTH__TOK_AGAIN;
	return run(d, NULL, 0, &used, ev);
}
