/* SPDX-License-Identifier: MIT */
/*
 * The delta engine: rsync's block checksums (rolling and strong, seeded
 * per session), the whole-file digests, and the block sums of a signature.
 * Internal API (not in include/berth.h); see shared/docs/rsync-protocol.md
 * §8.5 and §9.2-9.4 for the wire rules.
 *
 * Pure functions over caller buffers: no I/O, no files, no threads; any
 * thread.  The checksum types' names and the sum head rules are
 * engine/common/sums.h (shared with protocol/); reading a basis to make its
 * signature or to apply a token stream to it is engine/basis/basis.h.
 *
 * Protocol versions below 27 are not supported.
 */
#ifndef BERTH_DELTA_H
#define BERTH_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "berth.h"
#include "engine/common/sums.h"

/* ------------------------------------------------------------ checksums */

/* Checksum types, their names and digest lengths: engine/common/sums.h. */

/* Largest digest of any type (sha1). */
#define BERTH_CSUM_MAX_DIGEST 20
/* Compat flag bit "CHKSUM_SEED_FIX": md5 hashes the seed first. */
#define BERTH_CF_CHKSUM_SEED_FIX (1u << 5)

/* How block sums are seeded for one session. */
struct berth_csum_params {
	int type; /* enum berth_csum_type */
	uint32_t seed; /* the session's checksum seed */
	int seed_first; /* md4/md5/sha1: hash the seed before the block */
};

/*
 * Fill @p for the negotiated @type, the session @seed, the protocol version
 * and the compat flags (§8.5.3: md5 seeds first iff CHKSUM_SEED_FIX, md4
 * seeds last, sha1 first; xxhash uses the seed as its seed).  Protocols
 * 27..29 use md4 the same way (rsync's "MD4_OLD": the seed after the
 * block); their whole-file sum hashes the seed first (the caller's
 * business, see basis.h).  Returns 0, -BERTH_EUNSUPPORTED for proto < 27,
 * -EINVAL for a bad type.
 */
int berth_csum_params_init(struct berth_csum_params *p, int type, uint32_t seed,
			   int proto, uint32_t compat_flags);

/*
 * rsync's rolling checksum ("checksum1") of @len bytes taken as signed
 * chars: (s1 & 0xffff) | (s2 << 16).
 */
uint32_t berth_rolling(const void *buf, size_t len);

/* Split form, for a rolling search: s1 and s2 of a window. */
struct berth_rolling_state {
	uint32_t s1, s2;
};
void berth_rolling_init(struct berth_rolling_state *r, const void *buf,
			size_t len);
static inline uint32_t berth_rolling_value(const struct berth_rolling_state *r)
{
	return (r->s1 & 0xffff) | (r->s2 << 16);
}
/* Slide a window of @len bytes by one: drop @out, append @in. */
static inline void berth_rolling_roll(struct berth_rolling_state *r,
				      uint8_t out, uint8_t in, size_t len)
{
	int32_t o = (int8_t)out, i = (int8_t)in;

	r->s1 += (uint32_t)(i - o);
	r->s2 += r->s1 - (uint32_t)len * (uint32_t)o;
}
/* Shrink a window of @len bytes from the front (end of file): drop @out. */
static inline void berth_rolling_drop(struct berth_rolling_state *r,
				      uint8_t out, size_t len)
{
	int32_t o = (int8_t)out;

	r->s1 -= (uint32_t)o;
	r->s2 -= (uint32_t)len * (uint32_t)o;
}

/*
 * Strong block sum of @len bytes, seeded per @p (§8.5.3), full digest into
 * @out (berth_csum_digest_len(p->type) bytes; the caller keeps the first
 * s2length).  Pure; any thread.
 */
void berth_csum_block(const struct berth_csum_params *p, const void *buf,
		      size_t len, uint8_t out[BERTH_CSUM_MAX_DIGEST]);

/* One-shot unseeded digest (whole-file / --checksum sum).  Returns length. */
unsigned berth_csum_whole(int type, const void *buf, size_t len,
			  uint8_t out[BERTH_CSUM_MAX_DIGEST]);

/*
 * Streaming unseeded digest for the whole-file checksum.  init allocates
 * (xxhash state) and may return -ENOMEM or -EINVAL; reset restarts with the
 * same type; final writes the digest and returns its length (the context
 * may then be reset); destroy frees (safe on a zeroed or destroyed ctx).
 */
struct berth_csum_ctx {
	int type;
	void *state; /* md4/md5/sha1 ctx or XXH*_state_t */
};
int berth_csum_ctx_init(struct berth_csum_ctx *c, int type);
void berth_csum_ctx_reset(struct berth_csum_ctx *c);
void berth_csum_ctx_update(struct berth_csum_ctx *c, const void *buf,
			   size_t len);
unsigned berth_csum_ctx_final(struct berth_csum_ctx *c,
			      uint8_t out[BERTH_CSUM_MAX_DIGEST]);
void berth_csum_ctx_destroy(struct berth_csum_ctx *c);

/* The sum head (struct berth_sum_head) and its rules: engine/common/sums.h. */

/* ------------------------------------------------------------ signature */

/* Bytes of per-block sums for @h on the wire: count * (4 + s2length). */
uint64_t berth_sig_wire_len(const struct berth_sum_head *h);

/*
 * Pure: wire sums (int32 LE rolling sum, then s2length strong bytes) of the
 * @n blocks starting at block @first, whose bytes lie back to back in @buf
 * (block lengths per @h).  Writes n * (4 + s2length) bytes to @out and
 * returns that count.  Any thread.
 */
size_t berth_sig_blocks(const struct berth_csum_params *p,
			const struct berth_sum_head *h, uint32_t first,
			uint32_t n, const uint8_t *buf, uint8_t *out);

#endif /* BERTH_DELTA_H */
