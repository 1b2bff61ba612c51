/* SPDX-License-Identifier: MIT */
/*
 * The basis reader's ring: overlapped positioned reads of a basis file
 * through the pump, delivered in the order they were queued, interleaved
 * with bytes the caller queues (basis_int.h has the contract).
 *
 * Threads: the caller thread runs everything but read_done(), which the
 * pump thread runs: it marks a slot done under b->lock and signals b->cond.
 * Lock order: b->lock is a leaf.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/basis/basis_int.h"
#include "engine/platform/platform.h"
#include "engine/pump/pump.h"

enum { SLOT_READ = 1, SLOT_BYTES };

struct basis_slot {
	struct berth_req req;
	struct berth_basis *b;
	uint8_t *buf;
	int fd; /* of a read */
	uint64_t off; /* basis offset of a read */
	size_t len; /* bytes requested / bytes held */
	ssize_t res; /* read result, valid when done */
	uint64_t user;
	int kind;
	int submitted;
	int done; /* under b->lock */
};

struct berth_basis {
	struct berth_basis_opts opts;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct basis_slot *slots;
	unsigned head, used; /* ring of used slots, in delivery order */
	int err; /* sticky, until cancel */
};

static struct basis_slot *ring_at(struct berth_basis *b, unsigned i)
{
	return &b->slots[(b->head + i) % b->opts.nslots];
}

static struct basis_slot *ring_tail(struct berth_basis *b)
{
	return b->used ? ring_at(b, b->used - 1) : NULL;
}

int berth_basis_create(const struct berth_basis_opts *opts,
		       struct berth_basis **out)
{
	struct berth_basis *b;
	unsigned i;

	if (!opts->deliver || !opts->nslots || !opts->slot_size)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->opts = *opts;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->slots = calloc(b->opts.nslots, sizeof(*b->slots));
	if (!b->slots)
		goto fail;
	for (i = 0; i < b->opts.nslots; i++)
		b->slots[i].b = b;
	*out = b;
	return 0;
fail:
	berth_basis_free(b);
	return -ENOMEM;
}

void berth_basis_free(struct berth_basis *b)
{
	if (!b)
		return;
	if (b->slots) {
		berth_basis_cancel(b);
		berth_basis_trim(b);
	}
	free(b->slots);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

void berth_basis_trim(struct berth_basis *b)
{
	if (b->used)
		return;
	for (unsigned i = 0; i < b->opts.nslots; i++) {
		berth_plat_pages_free(b->slots[i].buf, b->opts.slot_size);
		b->slots[i].buf = NULL;
	}
}

unsigned berth_basis_pending(const struct berth_basis *b)
{
	return b->used;
}

/* Pump thread: record the result, wake the caller.  Keep it short. */
static void read_done(struct berth_req *req, ssize_t res)
{
	struct basis_slot *sl = req->data;
	struct berth_basis *b = sl->b;

	pthread_mutex_lock(&b->lock);
	sl->res = res;
	sl->done = 1;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* opts.cached_inline: the read made here if the page cache holds it all
 * (or an error other than -EAGAIN, an injected one included); else false,
 * and the pump makes it. */
static bool read_cached(struct berth_basis *b, struct basis_slot *sl)
{
	ssize_t n;

	berth_prep_read(&sl->req, sl->fd, sl->buf, sl->len, sl->off);
	sl->req.flags = BERTH_READ_NOWAIT;
	berth_req_set_cb(&sl->req, read_done, sl, b->opts.tag);
	n = berth_pump_run_inline(b->opts.pump, &sl->req);
	if (n == -EAGAIN || (n >= 0 && (size_t)n < sl->len))
		return false;
	sl->res = n;
	sl->done = 1;
	return true;
}

static void submit_slot(struct berth_basis *b, struct basis_slot *sl)
{
	int ret;

	sl->done = 0;
	sl->res = 0;
	if (b->opts.cached_inline && read_cached(b, sl)) {
		sl->submitted = 1;
		return;
	}
	berth_prep_read(&sl->req, sl->fd, sl->buf, sl->len, sl->off);
	berth_req_set_cb(&sl->req, read_done, sl, b->opts.tag);
	ret = berth_pump_submit(b->opts.pump, &sl->req);
	if (ret < 0) {
		/* No callback will come: complete the slot ourselves. */
		sl->res = ret;
		sl->done = 1;
		if (!b->err)
			b->err = ret;
	}
	sl->submitted = 1;
}

void berth_basis_submit(struct berth_basis *b)
{
	struct basis_slot *t = ring_tail(b);

	if (t && t->kind == SLOT_READ && !t->submitted)
		submit_slot(b, t);
}

static void wait_done(struct berth_basis *b, struct basis_slot *sl)
{
	pthread_mutex_lock(&b->lock);
	while (!sl->done)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

int berth_basis_poll(struct berth_basis *b, int how)
{
	while (b->used) {
		struct basis_slot *sl = ring_at(b, 0);
		struct berth_basis_chunk c = {.buf = sl->buf,
					      .len = sl->len,
					      .user = sl->user,
					      .is_read = sl->kind == SLOT_READ};

		if (sl->kind == SLOT_READ) {
			if (!sl->submitted) {
				if (how == BERTH_BASIS_POLL_READY)
					break;
				submit_slot(b, sl);
			}
			pthread_mutex_lock(&b->lock);
			if (!sl->done && how == BERTH_BASIS_POLL_READY) {
				pthread_mutex_unlock(&b->lock);
				break;
			}
			while (!sl->done)
				pthread_cond_wait(&b->cond, &b->lock);
			pthread_mutex_unlock(&b->lock);
			if (!b->err && sl->res < 0)
				b->err = (int)sl->res;
			if (!b->err && (size_t)sl->res < sl->len) {
				/* The basis shrank since it was measured: the
				 * rest reads as zeros (as rsync does). */
				memset(sl->buf + sl->res, 0,
				       sl->len - (size_t)sl->res);
				c.short_read = 1;
			}
		}
		if (!b->err) {
			int ret = b->opts.deliver(b->opts.arg, &c);

			if (ret < 0)
				b->err = ret;
		}
		sl->kind = 0;
		sl->submitted = 0;
		b->head = (b->head + 1) % b->opts.nslots;
		b->used--;
		if (how == BERTH_BASIS_POLL_ONE)
			break; /* its slot is free: refill it before hashing
				* the next, so reads stay in flight meanwhile */
	}
	return b->err;
}

/* A fresh slot at the tail, or NULL on the sticky error; may wait for the
 * head to complete. */
static struct basis_slot *new_slot(struct berth_basis *b, int kind)
{
	struct basis_slot *sl;

	if (b->used == b->opts.nslots) {
		berth_basis_submit(b);
		berth_basis_poll(b, BERTH_BASIS_POLL_ONE);
	}
	if (b->err)
		return NULL;
	sl = ring_at(b, b->used);
	if (!sl->buf) {
		sl->buf = berth_plat_pages_alloc(b->opts.slot_size);
		if (!sl->buf) {
			b->err = -ENOMEM;
			return NULL;
		}
	}
	b->used++;
	sl->kind = kind;
	sl->len = 0;
	sl->submitted = 0;
	sl->done = 0;
	return sl;
}

int berth_basis_prep_read(struct berth_basis *b, int fd, uint64_t off,
			  size_t len, uint64_t user, unsigned flags)
{
	struct basis_slot *t = ring_tail(b);

	if (b->err)
		return b->err;
	if (len > b->opts.slot_size)
		return -EINVAL;
	if (!(flags & BERTH_BASIS_OPEN) || !t || t->kind != SLOT_READ ||
	    t->submitted || t->fd != fd || t->user != user ||
	    t->off + t->len != off || t->len + len > b->opts.slot_size) {
		berth_basis_submit(b);
		t = new_slot(b, SLOT_READ);
		if (!t)
			return b->err;
		t->fd = fd;
		t->off = off;
		t->user = user;
	}
	t->len += len;
	if (!(flags & BERTH_BASIS_OPEN) || t->len + len > b->opts.slot_size)
		submit_slot(b, t); /* full for reads of this size */
	return b->err;
}

int berth_basis_prep_bytes(struct berth_basis *b, const void *buf, size_t len,
			   uint64_t user)
{
	const uint8_t *p = buf;

	if (b->err)
		return b->err;
	berth_basis_submit(b);
	while (len) {
		struct basis_slot *t = ring_tail(b);
		size_t n;

		if (!t || t->kind != SLOT_BYTES || t->user != user ||
		    t->len == b->opts.slot_size) {
			t = new_slot(b, SLOT_BYTES);
			if (!t)
				break;
			t->user = user;
		}
		n = b->opts.slot_size - t->len;
		if (n > len)
			n = len;
		memcpy(t->buf + t->len, p, n);
		t->len += n;
		p += n;
		len -= n;
	}
	return b->err;
}

void berth_basis_cancel(struct berth_basis *b)
{
	for (unsigned i = 0; i < b->used; i++) {
		struct basis_slot *sl = ring_at(b, i);

		if (sl->kind == SLOT_READ && sl->submitted)
			wait_done(b, sl);
	}
	for (unsigned i = 0; i < b->opts.nslots; i++) {
		b->slots[i].kind = 0;
		b->slots[i].submitted = 0;
	}
	b->head = 0;
	b->used = 0;
	b->err = 0;
}
