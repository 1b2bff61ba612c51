/* SPDX-License-Identifier: MIT */
/*
 * Block signatures: the wire sums of blocks lying in a caller buffer.  The
 * reader that streams a basis file's signature is engine/basis/basis_sig.c.
 */
#include <string.h>

#include "engine/delta/delta.h"

uint64_t berth_sig_wire_len(const struct berth_sum_head *h)
{
	if (h->count <= 0)
		return 0;
	return (uint64_t)h->count * (4 + (uint32_t)h->s2length);
}

size_t berth_sig_blocks(const struct berth_csum_params *p,
			const struct berth_sum_head *h, uint32_t first,
			uint32_t n, const uint8_t *buf, uint8_t *out)
{
	size_t s2 = (size_t)h->s2length;
	uint8_t *o = out;
	uint8_t strong[BERTH_CSUM_MAX_DIGEST];

	for (uint32_t i = first; i < first + n; i++) {
		uint32_t len = berth_sum_head_block_len(h, i);
		uint32_t r = berth_rolling(buf, len);

		o[0] = (uint8_t)r;
		o[1] = (uint8_t)(r >> 8);
		o[2] = (uint8_t)(r >> 16);
		o[3] = (uint8_t)(r >> 24);
		berth_csum_block(p, buf, len, strong);
		memcpy(o + 4, strong, s2);
		o += 4 + s2;
		buf += len;
	}
	return (size_t)(o - out);
}
