/* SPDX-License-Identifier: MIT */
/*
 * Names and rules shared by the wire protocol and the delta engine: the
 * transfer checksum types' wire names and digest lengths, and the sum head
 * (its generator rule, its checks, its wire form).  One definition for both
 * protocol/ and engine/delta/; this depends on nothing but include/berth.h.
 * Internal API (not in include/berth.h); see shared/docs/rsync-protocol.md
 * §8.5.1.
 *
 * Everything here is pure: no files, no threads, no allocation; any thread.
 */
#ifndef BERTH_SUMS_H
#define BERTH_SUMS_H

#include <stddef.h>
#include <stdint.h>

#include "berth.h"

/* ------------------------------------------------------------ checksums */

/* Transfer checksum types: enum berth_csum_type (BERTH_CSUM_*) in
 * include/berth.h (values are berth's own, not on the wire). */
#define BERTH_CSUM__COUNT (BERTH_CSUM_XXH128 + 1)

/* Largest strong sum sent per block (rsync's SUM_LENGTH). */
#define BERTH_CSUM_MAX_S2 16

/*
 * Type for a wire name ("xxh128", "xxh3", "xxh64" or its alias "xxhash",
 * "md5", "md4", "sha1", "none"; case-insensitive, @len bytes, no NUL
 * needed).  Returns the enum value, or -BERTH_EUNSUPPORTED.
 */
int berth_csum_from_name(const char *name, size_t len);
/* Wire name of @type ("xxh128", ...), or NULL for an invalid type. */
const char *berth_csum_name(int type);
/* Digest length in bytes (md4/md5 16, sha1 20, xxh64/xxh3 8, xxh128 16,
 * none 1), or 0 for an invalid type. */
unsigned berth_csum_digest_len(int type);

/* ------------------------------------------------------------ sum head */

/* rsync's MAX_BLOCK_SIZE for protocol >= 30. */
#define BERTH_MAX_BLOCK_SIZE (1 << 17)
/* Bytes of an encoded sum head. */
#define BERTH_SUM_HEAD_WIRE 16

struct berth_sum_head {
	int32_t count; /* number of blocks */
	int32_t blength; /* block length */
	int32_t s2length; /* strong-sum bytes per block */
	int32_t remainder; /* length of the last block, 0 if it is full */
};

/*
 * The generator's sum head for a basis of @len bytes (§8.5.1): @block_size
 * is the -B value or 0 for the square-root rule; @redo selects the redo
 * pass's full-length strong sums.  @len 0 gives the all-zero head.  The
 * block length is capped at 128 KiB for every protocol (rsync allows 512 MiB
 * below 30: only files over 16 GiB differ, and any head is legal).  Returns
 * 0, -EINVAL (bad type or block size, proto < 27), or -BERTH_ELIMIT when the
 * block count does not fit an int32.  Pure.
 */
int berth_sum_head_init(struct berth_sum_head *h, uint64_t len, int proto,
			int type, uint32_t block_size, int redo);

/*
 * Validate a sum head read from the wire (an echo from the sender):
 * count >= 0, 0 <= blength <= BERTH_MAX_BLOCK_SIZE, count > 0 implies
 * blength > 0, 0 <= s2length <= min(16, digest length), 0 <= remainder <=
 * blength, and the blocks it describes lie within @basis_size bytes.
 * Returns 0 or -BERTH_EPROTO.  Pure.
 */
int berth_sum_head_check(const struct berth_sum_head *h, int type,
			 uint64_t basis_size);

/*
 * Is @echo (already through berth_sum_head_check()) the head the generator
 * sent?  That head was berth_sum_head_init() of its basis length with the
 * same @proto, @type, @block_size and @redo, so an echo describing L bytes
 * must equal the head computed for L, field by field (s2length included);
 * a head of no blocks must be all zero.  Returns 0 or -BERTH_EPROTO.  Pure.
 */
int berth_sum_head_echo_check(const struct berth_sum_head *echo, int proto,
			      int type, uint32_t block_size, int redo);

/* Length of block @i (< count) of a valid head. */
static inline uint32_t berth_sum_head_block_len(const struct berth_sum_head *h,
						uint32_t i)
{
	if (h->remainder && i == (uint32_t)h->count - 1)
		return (uint32_t)h->remainder;
	return (uint32_t)h->blength;
}

/* Bytes of basis a valid head describes. */
uint64_t berth_sum_head_len(const struct berth_sum_head *h);

/* Wire form: four int32 little endian. */
void berth_sum_head_encode(const struct berth_sum_head *h,
			   uint8_t out[BERTH_SUM_HEAD_WIRE]);
void berth_sum_head_decode(struct berth_sum_head *h,
			   const uint8_t in[BERTH_SUM_HEAD_WIRE]);

#endif /* BERTH_SUMS_H */
