/* SPDX-License-Identifier: MIT */
/*
 * Test helper: a sender's side of the compressed token format (§9.3),
 * written with the libraries the way rsync's sender uses them, for round
 * trips through berth's decoder: zlib/zlibx (raw deflate per file, a sync
 * flush before every token with its last 4 bytes left out, zlib adding
 * each matched block to the history; below protocol 31 every 0xffff-byte
 * piece of a block starts again at the block's first byte), lz4 (one
 * block per payload), zstd (one stream for the session).  Also plain
 * tokens.  The wire bytes gather in te->buf.
 */
#ifndef BERTH_TEST_TOK_ENCODER_H
#define BERTH_TEST_TOK_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/protocol.h"

struct tok_enc {
	int compress; /* enum berth_compress */
	int protocol;
	uint8_t *buf; /* the wire bytes so far */
	size_t len, cap;
	void *zs; /* z_stream */
	void *zc; /* ZSTD_CCtx */
	uint8_t *lit; /* literal bytes not yet sent (until a token) */
	size_t lit_len, lit_cap;
	int32_t last; /* last block of the previous token */
	int first; /* no token yet in this file */
};

/* 0, or -1 when a library fails. */
int te_init(struct tok_enc *t, int compress, int protocol, int level);
void te_destroy(struct tok_enc *t);
/* A file: its sum head on the wire; zlib/zlibx start a new stream. */
void te_file(struct tok_enc *t, const struct berth_sum_head *h);
/* Literal bytes (sent before the next token or the end). */
void te_literal(struct tok_enc *t, const void *p, size_t n);
/*
 * Blocks @first .. @first + @n - 1 (a run when @n > 1), @data their
 * basis bytes, @len[i] each block's length.
 */
void te_blocks(struct tok_enc *t, int32_t first, int32_t n, const uint8_t *data,
	       const uint32_t *len);
/* End of the file's tokens and its checksum. */
void te_end(struct tok_enc *t, const uint8_t *sum, size_t sum_len);

#endif
