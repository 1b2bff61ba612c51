/* SPDX-License-Identifier: MIT */
/*
 * Token apply: literal runs and block references in, the new file out, in
 * order, through the output callback.
 *
 * Output order is kept by a ring of slots.  Each slot is either a basis read
 * (one or more adjacent matched blocks coalesced into one pump read) or a
 * copy of literal bytes that arrived while reads were still pending.  Slots
 * leave the ring from its head only, when complete, so the output is in
 * token order while up to nslots reads are in flight.  A literal that finds
 * the ring empty goes straight to the callback without a copy.  The slot at
 * the tail that is a read not yet submitted is "open": the next block
 * reference may extend it when it is adjacent in the basis.  It is submitted
 * as soon as anything else arrives, it is full, or a wait would need it.
 *
 * Threads: one caller thread (net-in) runs every API function and the
 * output callback; the pump thread only runs apply_read_done(), which marks
 * a slot done under a->lock and signals a->cond.
 * Lock order: a->lock is a leaf.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/delta/delta.h"
#include "engine/pump/pump.h"

enum { SLOT_READ = 1, SLOT_LIT };

struct apply_slot {
	struct berth_req req;
	struct berth_delta_apply *a;
	uint8_t *buf;
	uint64_t off; /* basis offset of a read */
	size_t len; /* bytes requested / literal bytes held */
	ssize_t res; /* read result, valid when done */
	int kind;
	int hash_only; /* --append-verify prefix: hashed, not emitted */
	int submitted;
	int done; /* under a->lock */
};

struct berth_delta_apply {
	struct berth_delta_apply_opts opts;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct apply_slot *slots;
	unsigned nslots;
	unsigned head, used; /* ring of used slots, in output order */

	/* The current file. */
	int active;
	struct berth_delta_file f;
	struct berth_csum_ctx ctx;
	int err; /* first error, sticky until finish/abort */
	int short_basis; /* a read returned less than asked */
	uint64_t total; /* bytes emitted */
};

static struct apply_slot *new_slot(struct berth_delta_apply *a, int kind);
static void submit_slot(struct berth_delta_apply *a, struct apply_slot *sl);

static struct apply_slot *ring_at(struct berth_delta_apply *a, unsigned i)
{
	return &a->slots[(a->head + i) % a->nslots];
}

static struct apply_slot *ring_tail(struct berth_delta_apply *a)
{
	return a->used ? ring_at(a, a->used - 1) : NULL;
}

int berth_delta_apply_create(const struct berth_delta_apply_opts *opts,
			     struct berth_delta_apply **out)
{
	struct berth_delta_apply *a;
	unsigned i;

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
	a->nslots = (unsigned)(a->opts.mem_limit / a->opts.slot_size);
	if (a->nslots < 2)
		a->nslots = 2;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	a->slots = calloc(a->nslots, sizeof(*a->slots));
	if (!a->slots)
		goto fail;
	for (i = 0; i < a->nslots; i++) {
		a->slots[i].a = a;
		a->slots[i].buf = malloc(a->opts.slot_size);
		if (!a->slots[i].buf)
			goto fail;
	}
	*out = a;
	return 0;
fail:
	berth_delta_apply_free(a);
	return -ENOMEM;
}

void berth_delta_apply_free(struct berth_delta_apply *a)
{
	if (!a)
		return;
	if (a->slots) {
		berth_delta_apply_abort(a);
		for (unsigned i = 0; i < a->nslots; i++)
			free(a->slots[i].buf);
	}
	free(a->slots);
	berth_csum_ctx_destroy(&a->ctx);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
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
	a->f = *f;
	a->active = 1;
	a->err = 0;
	a->short_basis = 0;
	a->total = 0;

	/* --append-verify: the kept prefix counts in the checksum.  Its
	 * reads go first in the ring, marked hash-only. */
	for (uint64_t off = 0; off < f->hash_prefix && !a->err;) {
		struct apply_slot *sl = new_slot(a, SLOT_READ);
		uint64_t left = f->hash_prefix - off;

		sl->off = off;
		sl->len = left < a->opts.slot_size ? (size_t)left
						   : a->opts.slot_size;
		sl->hash_only = 1;
		submit_slot(a, sl);
		off += sl->len;
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

/* Pump thread: record the result, wake the apply thread.  Keep it short. */
static void apply_read_done(struct berth_req *req, ssize_t res)
{
	struct apply_slot *sl = req->data;
	struct berth_delta_apply *a = sl->a;

	pthread_mutex_lock(&a->lock);
	sl->res = res;
	sl->done = 1;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void submit_slot(struct berth_delta_apply *a, struct apply_slot *sl)
{
	int ret;

	sl->done = 0;
	sl->res = 0;
	berth_prep_read(&sl->req, a->f.basis_fd, sl->buf, sl->len, sl->off);
	berth_req_set_cb(&sl->req, apply_read_done, sl, a->opts.tag);
	ret = berth_pump_submit(a->opts.pump, &sl->req);
	if (ret < 0) {
		/* No callback will come: complete the slot ourselves. */
		sl->res = ret;
		sl->done = 1;
	}
	sl->submitted = 1;
}

/* Submit the open read at the tail, if any. */
static void close_tail(struct berth_delta_apply *a)
{
	struct apply_slot *t = ring_tail(a);

	if (t && t->kind == SLOT_READ && !t->submitted)
		submit_slot(a, t);
}

/*
 * Emit complete slots from the head.  With @wait_all, wait for every slot;
 * with @wait_one, wait until at least one slot is free.  Errors become
 * a->err; after an error slots are dropped unseen.
 */
static void drain(struct berth_delta_apply *a, int wait_all, int wait_one)
{
	while (a->used) {
		struct apply_slot *sl = ring_at(a, 0);

		if (sl->kind == SLOT_READ) {
			if (!sl->submitted) {
				if (!wait_all && !wait_one)
					break;
				submit_slot(a, sl);
			}
			pthread_mutex_lock(&a->lock);
			if (!sl->done && !wait_all && !wait_one) {
				pthread_mutex_unlock(&a->lock);
				break;
			}
			while (!sl->done)
				pthread_cond_wait(&a->cond, &a->lock);
			pthread_mutex_unlock(&a->lock);
			if (!a->err && sl->res < 0)
				a->err = (int)sl->res;
			if (!a->err && (size_t)sl->res < sl->len) {
				/* The basis shrank since the signature:
				 * rsync reads zeros; the file fails. */
				memset(sl->buf + sl->res, 0,
				       sl->len - (size_t)sl->res);
				a->short_basis = 1;
			}
		}
		if (!a->err && sl->hash_only)
			berth_csum_ctx_update(&a->ctx, sl->buf, sl->len);
		else if (!a->err)
			a->err = emit(a, sl->buf, sl->len);
		sl->kind = 0;
		sl->submitted = 0;
		a->head = (a->head + 1) % a->nslots;
		a->used--;
		wait_one = 0;
	}
}

/* A fresh slot at the tail; may wait for the head to complete. */
static struct apply_slot *new_slot(struct berth_delta_apply *a, int kind)
{
	struct apply_slot *sl;

	if (a->used == a->nslots) {
		close_tail(a);
		drain(a, 0, 1);
	}
	sl = ring_at(a, a->used);
	a->used++;
	sl->kind = kind;
	sl->hash_only = 0;
	sl->len = 0;
	sl->submitted = 0;
	sl->done = 0;
	return sl;
}

int berth_delta_apply_literal(struct berth_delta_apply *a, const void *buf,
			      size_t len)
{
	const uint8_t *p = buf;

	if (!a->active)
		return -EINVAL;
	if (a->err)
		return a->err;
	drain(a, 0, 0);
	if (!a->used) {
		a->err = emit(a, p, len);
		return a->err;
	}
	close_tail(a);
	while (len && !a->err) {
		struct apply_slot *t = ring_tail(a);
		size_t n;

		if (!t || t->kind != SLOT_LIT || t->len == a->opts.slot_size)
			t = new_slot(a, SLOT_LIT);
		if (a->err)
			break;
		n = a->opts.slot_size - t->len;
		if (n > len)
			n = len;
		memcpy(t->buf + t->len, p, n);
		t->len += n;
		p += n;
		len -= n;
	}
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
		struct apply_slot *t = ring_tail(a);

		if (!t || t->kind != SLOT_READ || t->submitted ||
		    t->off + t->len != off ||
		    t->len + len > a->opts.slot_size) {
			close_tail(a);
			t = new_slot(a, SLOT_READ);
			if (a->err)
				return a->err;
			t->off = off;
		}
		t->len += len;
		if (t->len + len > a->opts.slot_size)
			close_tail(a); /* full for blocks of this size */
	}
	drain(a, 0, 0);
	return a->err;
}

/* Wait for every submitted read and empty the ring. */
static void settle(struct berth_delta_apply *a)
{
	if (!a->err)
		a->err = -ECANCELED; /* drop, do not emit */
	for (unsigned i = 0; i < a->used; i++) {
		struct apply_slot *sl = ring_at(a, i);

		if (sl->kind != SLOT_READ || !sl->submitted)
			continue;
		pthread_mutex_lock(&a->lock);
		while (!sl->done)
			pthread_cond_wait(&a->cond, &a->lock);
		pthread_mutex_unlock(&a->lock);
	}
	for (unsigned i = 0; i < a->nslots; i++) {
		a->slots[i].kind = 0;
		a->slots[i].submitted = 0;
	}
	a->head = 0;
	a->used = 0;
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
		drain(a, 1, 0);
	ret = a->err;
	if (a->used)
		settle(a);
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
	settle(a);
	a->active = 0;
}
