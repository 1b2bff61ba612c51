/* SPDX-License-Identifier: MIT */
/*
 * Token apply: literal runs and block references in, the new file out, in
 * order, through the output callback.
 *
 * Output order is kept by the basis reader's ring (basis_reader.c): each
 * entry is either a basis read (one or more adjacent matched blocks
 * coalesced into one pump read: the ring's open read) or a copy of literal
 * bytes that arrived while reads were still pending.  Entries leave the
 * ring from its head only, when complete, so the output is in token order
 * while up to nslots reads are in flight.  A literal that finds the ring
 * empty goes straight to the callback without a copy.
 *
 * Threads: one caller thread (net-in) runs every API function and the
 * output callback; the pump thread only completes the ring's reads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/basis/basis_int.h"

/* Ring entry user word: the --append-verify prefix, hashed, not emitted. */
#define HASH_ONLY 1u

struct berth_delta_apply {
	struct berth_delta_apply_opts opts;
	struct berth_basis *ring;

	/* The current file. */
	int active;
	struct berth_delta_file f;
	struct berth_csum_ctx ctx;
	int err; /* first error, sticky until finish/abort */
	int short_basis; /* a read returned less than asked */
	uint64_t total; /* bytes emitted */
};

static int deliver(void *arg, const struct berth_basis_chunk *c);

int berth_delta_apply_create(const struct berth_delta_apply_opts *opts,
			     struct berth_delta_apply **out)
{
	struct berth_basis_opts bo = {0};
	struct berth_delta_apply *a;
	unsigned nslots;
	int ret;

	if (!opts->out)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->opts = *opts;
	if (!a->opts.slot_size)
		a->opts.slot_size = 256u << 10;
	if (a->opts.slot_size < BERTH_MAX_BLOCK_SIZE)
		a->opts.slot_size = BERTH_MAX_BLOCK_SIZE;
	if (!a->opts.mem_limit)
		a->opts.mem_limit = 8u << 20;
	nslots = (unsigned)(a->opts.mem_limit / a->opts.slot_size);
	if (nslots < 2)
		nslots = 2;
	bo.pump = a->opts.pump;
	bo.nslots = nslots;
	bo.slot_size = a->opts.slot_size;
	bo.tag = a->opts.tag;
	bo.cached_inline = a->opts.cached_inline;
	bo.deliver = deliver;
	bo.arg = a;
	ret = berth_basis_create(&bo, &a->ring);
	if (ret < 0) {
		berth_delta_apply_free(a);
		return ret;
	}
	*out = a;
	return 0;
}

void berth_delta_apply_free(struct berth_delta_apply *a)
{
	if (!a)
		return;
	if (a->ring)
		berth_delta_apply_abort(a);
	berth_basis_free(a->ring);
	berth_csum_ctx_destroy(&a->ctx);
	free(a);
}

int berth_delta_apply_begin(struct berth_delta_apply *a,
			    const struct berth_delta_file *f)
{
	uint64_t avail = f->basis_fd < 0 ? 0 : f->basis_size;
	int ret;

	if (a->active)
		return -EBUSY;
	if (!berth_csum_digest_len(f->csum_type))
		return -EINVAL;
	ret = berth_sum_head_check(&f->head, f->csum_type, avail);
	if (ret < 0)
		return ret;
	if (f->hash_prefix > avail ||
	    ((f->head.count > 0 || f->hash_prefix) && !a->opts.pump))
		return -EINVAL;
	if (a->ctx.type != f->csum_type || !a->ctx.state) {
		berth_csum_ctx_destroy(&a->ctx);
		ret = berth_csum_ctx_init(&a->ctx, f->csum_type);
		if (ret < 0)
			return ret;
	} else {
		berth_csum_ctx_reset(&a->ctx);
	}
	if (f->seed_first) {
		uint8_t sb[4] = {(uint8_t)f->seed, (uint8_t)(f->seed >> 8),
				 (uint8_t)(f->seed >> 16),
				 (uint8_t)(f->seed >> 24)};

		berth_csum_ctx_update(&a->ctx, sb, sizeof(sb));
	}
	a->f = *f;
	a->active = 1;
	a->err = 0;
	a->short_basis = 0;
	a->total = 0;

	/* --append-verify: the kept prefix counts in the checksum.  Its
	 * reads go first in the ring, marked hash-only; their errors surface
	 * from the next call. */
	for (uint64_t off = 0; off < f->hash_prefix && !a->err;) {
		uint64_t left = f->hash_prefix - off;
		size_t len = left < a->opts.slot_size ? (size_t)left
						      : a->opts.slot_size;

		a->err = berth_basis_prep_read(a->ring, f->basis_fd, off, len,
					       HASH_ONLY, 0);
		off += len;
	}
	return 0;
}

/* Hash and hand out bytes of the new file, in order. */
static int emit(struct berth_delta_apply *a, const void *buf, size_t len)
{
	int ret;

	if (!len)
		return 0;
	berth_csum_ctx_update(&a->ctx, buf, len);
	a->total += len;
	ret = a->opts.out(a->opts.out_arg, buf, len);
	return ret < 0 ? ret : 0;
}

/* A ring entry reaches the head, complete: the next bytes of the file. */
static int deliver(void *arg, const struct berth_basis_chunk *c)
{
	struct berth_delta_apply *a = arg;

	if (c->short_read) /* the basis shrank since the signature */
		a->short_basis = 1;
	if (c->user == HASH_ONLY) {
		berth_csum_ctx_update(&a->ctx, c->buf, c->len);
		return 0;
	}
	return emit(a, c->buf, c->len);
}

int berth_delta_apply_literal(struct berth_delta_apply *a, const void *buf,
			      size_t len)
{
	if (!a->active)
		return -EINVAL;
	if (a->err)
		return a->err;
	a->err = berth_basis_poll(a->ring, BERTH_BASIS_POLL_READY);
	if (a->err)
		return a->err;
	if (!berth_basis_pending(a->ring)) {
		a->err = emit(a, buf, len);
		return a->err;
	}
	a->err = berth_basis_prep_bytes(a->ring, buf, len, 0);
	return a->err;
}

int berth_delta_apply_blocks(struct berth_delta_apply *a, uint32_t first,
			     uint32_t n)
{
	const struct berth_sum_head *h = &a->f.head;
	uint32_t i;

	if (!a->active)
		return -EINVAL;
	if (a->err)
		return a->err;
	/* Checked against the head, which berth_delta_apply_begin() checked
	 * against the basis size: every read below lies within the basis. */
	if (first >= (uint32_t)h->count || n > (uint32_t)h->count - first) {
		a->err = -BERTH_EPROTO;
		return a->err;
	}
	for (i = first; i < first + n; i++) {
		uint64_t off = (uint64_t)i * (uint32_t)h->blength;
		uint32_t len = berth_sum_head_block_len(h, i);

		a->err = berth_basis_prep_read(a->ring, a->f.basis_fd, off, len,
					       0, BERTH_BASIS_OPEN);
		if (a->err)
			return a->err;
	}
	a->err = berth_basis_poll(a->ring, BERTH_BASIS_POLL_READY);
	return a->err;
}

int berth_delta_apply_finish(struct berth_delta_apply *a, const uint8_t *sum,
			     size_t sum_len, uint64_t *total)
{
	uint8_t want[BERTH_CSUM_MAX_DIGEST];
	unsigned dlen;
	int ret;

	if (!a->active)
		return -EINVAL;
	if (!a->err)
		a->err = berth_basis_poll(a->ring, BERTH_BASIS_POLL_ALL);
	ret = a->err;
	berth_basis_cancel(a->ring); /* after an error: wait, drop the rest */
	if (total)
		*total = a->total;
	a->active = 0;
	if (ret < 0)
		return ret;
	dlen = berth_csum_ctx_final(&a->ctx, want);
	if (sum_len != dlen)
		return -EINVAL;
	if (a->short_basis)
		return -BERTH_ECHECKSUM;
	if (a->f.csum_type != BERTH_CSUM_NONE && memcmp(want, sum, dlen))
		return -BERTH_ECHECKSUM;
	return 0;
}

void berth_delta_apply_abort(struct berth_delta_apply *a)
{
	if (!a->active)
		return;
	berth_basis_cancel(a->ring);
	a->active = 0;
}
