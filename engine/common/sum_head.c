/* SPDX-License-Identifier: MIT */
/*
 * The sum head: block length and strong-sum length rules of the generator
 * (rsync-protocol.md §8.5.1), the checks on an echoed head, and its wire
 * form.
 */
#include <errno.h>

#include "engine/common/sums.h"

/* Block length for a basis of @len bytes: 700 up to 700², else ⌊√len⌋ rounded
 * down to a multiple of 8, found bit by bit as rsync does. */
static uint32_t auto_blength(uint64_t len)
{
	uint64_t c = 1, l = len >> 2, bl = 0;

	if (len <= 700 * 700)
		return 700;
	while (l) {
		c <<= 1;
		l >>= 2;
	}
	if (c >= BERTH_MAX_BLOCK_SIZE)
		return BERTH_MAX_BLOCK_SIZE;
	for (; c >= 8; c >>= 1) {
		bl |= c;
		if (len < bl * bl)
			bl &= ~c;
	}
	return bl < 700 ? 700 : (uint32_t)bl;
}

int berth_sum_head_init(struct berth_sum_head *h, uint64_t len, int proto,
			int type, uint32_t block_size, int redo)
{
	unsigned dlen = berth_csum_digest_len(type);
	int32_t max_s2 = (int32_t)(dlen < BERTH_CSUM_MAX_S2
					   ? dlen
					   : BERTH_CSUM_MAX_S2);
	uint32_t bl;
	uint64_t count, l, c;
	int32_t b;

	*h = (struct berth_sum_head){0};
	if (!dlen || proto < 27 || block_size > BERTH_MAX_BLOCK_SIZE)
		return -EINVAL;
	if (!len)
		return 0;
	bl = block_size ? block_size : auto_blength(len);
	count = len / bl + (len % bl != 0);
	if (count > INT32_MAX)
		return -BERTH_ELIMIT;

	if (redo) {
		h->s2length = max_s2;
	} else {
		/* b = 10 + 2 ⌊log2 len⌋ - ⌊log2 bl⌋, never below 0. */
		b = 10;
		for (l = len >> 1; l; l >>= 1)
			b += 2;
		for (c = bl >> 1; c && b; c >>= 1)
			b--;
		b = (b + 1 - 32 + 7) / 8; /* C division truncates to 0 */
		if (b < 2)
			b = 2;
		h->s2length = b < max_s2 ? b : max_s2;
	}
	h->count = (int32_t)count;
	h->blength = (int32_t)bl;
	h->remainder = (int32_t)(len % bl);
	return 0;
}

int berth_sum_head_check(const struct berth_sum_head *h, int type,
			 uint64_t basis_size)
{
	unsigned dlen = berth_csum_digest_len(type);
	int32_t max_s2 = (int32_t)(dlen < BERTH_CSUM_MAX_S2
					   ? dlen
					   : BERTH_CSUM_MAX_S2);

	if (h->count < 0 || h->blength < 0 ||
	    h->blength > BERTH_MAX_BLOCK_SIZE || h->s2length < 0 ||
	    h->s2length > max_s2 || h->remainder < 0 ||
	    h->remainder > h->blength)
		return -BERTH_EPROTO;
	if (h->count > 0 && h->blength == 0)
		return -BERTH_EPROTO;
	/* count < 2^31 and blength <= 2^17: no overflow in 64 bits. */
	if (berth_sum_head_len(h) > basis_size)
		return -BERTH_EPROTO;
	return 0;
}

int berth_sum_head_echo_check(const struct berth_sum_head *echo, int proto,
			      int type, uint32_t block_size, int redo)
{
	struct berth_sum_head want;

	if (echo->count <= 0)
		return echo->count == 0 && echo->blength == 0 &&
				       echo->s2length == 0 &&
				       echo->remainder == 0
			       ? 0
			       : -BERTH_EPROTO;
	if (berth_sum_head_init(&want, berth_sum_head_len(echo), proto, type,
				block_size, redo) < 0)
		return -BERTH_EPROTO;
	if (want.count != echo->count || want.blength != echo->blength ||
	    want.s2length != echo->s2length ||
	    want.remainder != echo->remainder)
		return -BERTH_EPROTO;
	return 0;
}

uint64_t berth_sum_head_len(const struct berth_sum_head *h)
{
	if (h->count <= 0)
		return 0;
	return (uint64_t)(h->count - 1) * (uint32_t)h->blength +
	       berth_sum_head_block_len(h, (uint32_t)h->count - 1);
}

static void put_le32(uint8_t *out, int32_t v)
{
	uint32_t u = (uint32_t)v;

	out[0] = (uint8_t)u;
	out[1] = (uint8_t)(u >> 8);
	out[2] = (uint8_t)(u >> 16);
	out[3] = (uint8_t)(u >> 24);
}

static int32_t get_le32(const uint8_t *in)
{
	return (int32_t)((uint32_t)in[0] | (uint32_t)in[1] << 8 |
			 (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24);
}

void berth_sum_head_encode(const struct berth_sum_head *h,
			   uint8_t out[BERTH_SUM_HEAD_WIRE])
{
	put_le32(out, h->count);
	put_le32(out + 4, h->blength);
	put_le32(out + 8, h->s2length);
	put_le32(out + 12, h->remainder);
}

void berth_sum_head_decode(struct berth_sum_head *h,
			   const uint8_t in[BERTH_SUM_HEAD_WIRE])
{
	h->count = get_le32(in);
	h->blength = get_le32(in + 4);
	h->s2length = get_le32(in + 8);
	h->remainder = get_le32(in + 12);
}
