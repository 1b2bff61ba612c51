/* SPDX-License-Identifier: MIT */
/*
 * The delta engine: rsync's block checksums, the sum head rules, block
 * signatures of a basis file, and token apply (basis + token stream -> new
 * file).  Internal API (not in include/berth.h); see
 * shared/docs/rsync-protocol.md §8.5 and §9.2-9.4 for the wire rules.
 *
 * Layers:
 *  - pure functions over buffers (checksums, sum head, per-block sums): no
 *    files, no threads, usable from protocol/ and tests as is;
 *  - berth_sig_file(): reads a basis through the pump and streams the sum head
 *    and the block sums to a callback;
 *  - struct berth_delta_apply: consumes the decoded token stream, reads the
 *    matched blocks through the pump (overlapped, coalesced) and hands the new
 *    file to an output callback in file order while hashing it.
 *
 * Threads: the pure functions may be called from any thread; the
 * signature reader and an apply engine from one thread at a time, never from
 * a pump callback (they wait for pump completions).
 *
 * Protocol versions below 30 are not supported.
 */
#ifndef BERTH_DELTA_H
#define BERTH_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "berth.h"
#include "engine/common/sums.h"

struct berth_pump;

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
 * seeds last, sha1 first; xxhash uses the seed as its seed).  Returns 0,
 * -BERTH_EUNSUPPORTED for proto < 30, -EINVAL for a bad type.
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

/*
 * Output callback of the signature reader and of token apply: consume or
 * copy @len bytes at @buf before returning (the buffer is recycled).
 * Return 0, or a negative error that aborts the operation and is returned
 * by it.
 */
typedef int (*berth_delta_out_cb)(void *arg, const void *buf, size_t len);

struct berth_sig_opts {
	struct berth_pump *pump;
	size_t read_size; /* bytes per read, default 1 MiB */
	unsigned nreads; /* reads in flight, default 4 */
	uint64_t tag; /* pump tag of the reads */
};

struct berth_sig;

/* Create a signature reader (buffers are allocated here).  Any thread. */
int berth_sig_create(const struct berth_sig_opts *opts, struct berth_sig **out);
/* Free; NULL is a no-op.  Never while berth_sig_file() runs. */
void berth_sig_free(struct berth_sig *s);

/*
 * Stream the signature of the basis @fd (@h describes its first
 * berth_sum_head_len(h) bytes, as computed by berth_sum_head_init()) to
 * @emit: the 16-byte sum head, then the block sums in order, in pieces.
 * Reads go through the pump, several in flight; hashing runs on the calling
 * thread, which blocks for completions.  A basis that turns out shorter than
 * @h says is read as zeros (as rsync does).  Returns 0, -EINVAL for a head
 * out of range, -ENOMEM, a pump -errno, or @emit's error; all reads have
 * completed when it returns.  Not from a pump callback.
 */
int berth_sig_file(struct berth_sig *s, int fd, const struct berth_sum_head *h,
		   const struct berth_csum_params *p, berth_delta_out_cb emit,
		   void *arg);

/* ------------------------------------------------------------ token apply */

struct berth_delta_apply_opts {
	struct berth_pump *pump;
	berth_delta_out_cb out; /* receives the new file, in order */
	void *out_arg;
	size_t mem_limit; /* buffer memory, default 8 MiB (at least 2 slots) */
	size_t slot_size; /* largest coalesced read, default 256 KiB,
			    * raised to BERTH_MAX_BLOCK_SIZE if smaller */
	uint64_t tag; /* pump tag of the basis reads */
};

/* One file to rebuild. */
struct berth_delta_file {
	int basis_fd; /* -1: no basis (all literal) */
	uint64_t basis_size; /* bytes available in the basis */
	struct berth_sum_head head; /* the head echoed by the sender */
	int csum_type; /* whole-file checksum type */
	/* --append-verify: the first hash_prefix bytes of the basis (the
	 * part kept in place) are read and hashed before the token data,
	 * not emitted.  0 otherwise (also for plain --append, whose sum
	 * covers the appended bytes only). */
	uint64_t hash_prefix;
};

struct berth_delta_apply;

/* Create an apply engine for one session; buffers are allocated here and
 * reused for every file.  Returns 0 or -errno.  Any thread. */
int berth_delta_apply_create(const struct berth_delta_apply_opts *opts,
			     struct berth_delta_apply **out);

/*
 * Start a file.  Checks @f->head against the basis (-BERTH_EPROTO) and
 * resets the whole-file checksum; -EINVAL if hash_prefix exceeds the basis.
 * May block (hash_prefix reads).  The previous file must have been
 * finished or aborted (-EBUSY otherwise).  Errors of the prefix reads
 * surface from the next call.
 */
int berth_delta_apply_begin(struct berth_delta_apply *a,
			    const struct berth_delta_file *f);

/*
 * Literal bytes, any amount (0 allowed).  May call the output callback and
 * may block for basis reads; @buf is copied or consumed before returning.
 */
int berth_delta_apply_literal(struct berth_delta_apply *a, const void *buf,
			      size_t len);

/*
 * Matched blocks @first .. @first + @n - 1 of the basis (a single token is
 * n = 1).  An index outside the head is -BERTH_EPROTO; nothing is read.
 */
int berth_delta_apply_blocks(struct berth_delta_apply *a, uint32_t first,
			     uint32_t n);

/*
 * End of the token stream: wait for every read, emit the rest, and compare
 * the whole-file checksum with the sender's @sum (@sum_len must be the
 * digest length).  Returns 0, -BERTH_ECHECKSUM on a mismatch (or when the
 * basis was shorter than the head said), or the first error met.  The next
 * file may begin afterwards, whatever the result.  *@total, if not NULL,
 * gets the number of bytes emitted.
 */
int berth_delta_apply_finish(struct berth_delta_apply *a, const uint8_t *sum,
			     size_t sum_len, uint64_t *total);

/*
 * Drop the current file: wait for its reads (they are not cancelled; basis
 * reads are short), emit nothing more.  Idempotent.
 */
void berth_delta_apply_abort(struct berth_delta_apply *a);

/* Abort and free; NULL is a no-op.  Not from a pump callback. */
void berth_delta_apply_free(struct berth_delta_apply *a);

/*
 * All of the above functions for one apply engine must be called from one
 * thread at a time (the session's net-in thread); the output callback runs
 * on that thread, inside them.
 */

#endif /* BERTH_DELTA_H */
