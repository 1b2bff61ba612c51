/* SPDX-License-Identifier: MIT */
/*
 * The basis reader: reads of a basis file through the pump, many in flight
 * and coalesced, for the two stages that need the basis (DESIGN.md §2,
 * "basis reads"):
 *  - berth_sig_file(): streams the sum head and the block sums of a basis
 *    to a callback (the generator);
 *  - struct berth_delta_apply: consumes the decoded token stream, reads the
 *    matched blocks (overlapped, adjacent blocks coalesced) and hands the
 *    new file to an output callback in file order while hashing it (the
 *    receiver).
 * Both drive the pure delta engine (engine/delta/delta.h) over one ring of
 * in-flight reads (basis_int.h).  Internal API (not in include/berth.h).
 *
 * Threads: a signature reader and an apply engine are each used from one
 * thread at a time, never from a pump callback (they wait for pump
 * completions).
 */
#ifndef BERTH_BASIS_H
#define BERTH_BASIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth.h"
#include "engine/delta/delta.h"

struct berth_pump;

/* ------------------------------------------------------------ signature */

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
	bool cached_inline; /* reads of cached data on the calling thread */
};

struct berth_sig;

/* Create a signature reader (its buffers are taken at first use).  Any
 * thread. */
int berth_sig_create(const struct berth_sig_opts *opts, struct berth_sig **out);
/* Free; NULL is a no-op.  Never while berth_sig_file() runs. */
void berth_sig_free(struct berth_sig *s);
/* Give the buffers back to the system (the next berth_sig_file() takes
 * them again): for when no more signatures are due for a while.  Never
 * while berth_sig_file() runs. */
void berth_sig_trim(struct berth_sig *s);

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
	bool cached_inline; /* as berth_basis_opts.cached_inline */
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
	/* Protocols < 30 (rsync's "MD4_OLD"): the whole-file sum starts
	 * with the session's checksum seed, 4 bytes little endian. */
	bool seed_first;
	uint32_t seed;
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

#endif /* BERTH_BASIS_H */
