/* SPDX-License-Identifier: MIT */
/*
 * Block signatures: the pure per-buffer block sums, and the reader that
 * streams a basis file's signature with several pump reads in flight.
 *
 * Lock order: sig->lock is a leaf; the pump callback takes only it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "engine/delta/delta.h"
#include "engine/pump/pump.h"

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

struct sig_slot {
	struct berth_req req;
	struct berth_sig *sig;
	uint8_t *buf;
	uint32_t first, n; /* blocks in this read */
	size_t len;
	ssize_t res;
	int done;
};

struct berth_sig {
	struct berth_sig_opts opts;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t slot_cap;
	struct sig_slot *slots;
	uint8_t *out; /* wire sums of one slot */
	size_t outcap;
};

int berth_sig_create(const struct berth_sig_opts *opts, struct berth_sig **out)
{
	struct berth_sig *s;
	unsigned i;

	if (!opts->pump)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->opts = *opts;
	if (!s->opts.read_size)
		s->opts.read_size = 1u << 20;
	if (!s->opts.nreads)
		s->opts.nreads = 4;
	s->slot_cap = s->opts.read_size < BERTH_MAX_BLOCK_SIZE
			      ? BERTH_MAX_BLOCK_SIZE
			      : s->opts.read_size;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->slots = calloc(s->opts.nreads, sizeof(*s->slots));
	if (!s->slots)
		goto fail;
	for (i = 0; i < s->opts.nreads; i++) {
		s->slots[i].sig = s;
		s->slots[i].buf = malloc(s->slot_cap);
		if (!s->slots[i].buf)
			goto fail;
	}
	*out = s;
	return 0;
fail:
	berth_sig_free(s);
	return -ENOMEM;
}

void berth_sig_free(struct berth_sig *s)
{
	if (!s)
		return;
	if (s->slots) {
		for (unsigned i = 0; i < s->opts.nreads; i++)
			free(s->slots[i].buf);
	}
	free(s->slots);
	free(s->out);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Pump thread: record the result and wake the reader. */
static void sig_read_done(struct berth_req *req, ssize_t res)
{
	struct sig_slot *sl = req->data;
	struct berth_sig *s = sl->sig;

	pthread_mutex_lock(&s->lock);
	sl->res = res;
	sl->done = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Submit the read of up to slot_cap bytes of blocks from *next on. */
static int sig_submit(struct berth_sig *s, struct sig_slot *sl, int fd,
		      const struct berth_sum_head *h, uint32_t *next)
{
	uint32_t per = (uint32_t)(s->slot_cap / (uint32_t)h->blength);
	uint32_t left = (uint32_t)h->count - *next;
	int ret;

	sl->first = *next;
	sl->n = per < left ? per : left;
	sl->len = (size_t)(sl->n - 1) * (uint32_t)h->blength +
		  berth_sum_head_block_len(h, sl->first + sl->n - 1);
	sl->done = 0;
	sl->res = 0;
	berth_prep_read(&sl->req, fd, sl->buf, sl->len,
			(uint64_t)sl->first * (uint32_t)h->blength);
	berth_req_set_cb(&sl->req, sig_read_done, sl, s->opts.tag);
	ret = berth_pump_submit(s->opts.pump, &sl->req);
	if (ret < 0)
		return ret;
	*next += sl->n;
	return 0;
}

int berth_sig_file(struct berth_sig *s, int fd, const struct berth_sum_head *h,
		   const struct berth_csum_params *p, berth_delta_out_cb emit,
		   void *arg)
{
	uint8_t hw[BERTH_SUM_HEAD_WIRE];
	unsigned nslots = s->opts.nreads, head = 0, inflight = 0, i;
	uint32_t next = 0;
	int ret, err = 0;

	if (h->count < 0 || h->s2length < 0 ||
	    h->s2length > BERTH_CSUM_MAX_S2 ||
	    (h->count > 0 &&
	     (h->blength <= 0 || h->blength > BERTH_MAX_BLOCK_SIZE)))
		return -EINVAL;
	if (h->count > 0) {
		/* The sums of one slot; grows for tiny (-B) block sizes. */
		size_t need = s->slot_cap / (uint32_t)h->blength *
			      (4 + BERTH_CSUM_MAX_S2);

		if (need > s->outcap) {
			uint8_t *o = realloc(s->out, need);

			if (!o)
				return -ENOMEM;
			s->out = o;
			s->outcap = need;
		}
	}
	berth_sum_head_encode(h, hw);
	ret = emit(arg, hw, sizeof(hw));
	if (ret < 0)
		return ret;

	/* Prime the pipeline. */
	for (i = 0; i < nslots && next < (uint32_t)h->count; i++) {
		err = sig_submit(s, &s->slots[i], fd, h, &next);
		if (err)
			break;
		inflight++;
	}

	/* Slots complete in any order but are hashed in file order. */
	while (inflight) {
		struct sig_slot *sl = &s->slots[head];
		size_t n;

		pthread_mutex_lock(&s->lock);
		while (!sl->done)
			pthread_cond_wait(&s->cond, &s->lock);
		pthread_mutex_unlock(&s->lock);
		inflight--;
		head = (head + 1) % nslots;

		if (err)
			continue; /* draining after an error */
		if (sl->res < 0) {
			err = (int)sl->res;
			continue;
		}
		if ((size_t)sl->res < sl->len) /* basis shrank: zeros */
			memset(sl->buf + sl->res, 0, sl->len - (size_t)sl->res);
		n = berth_sig_blocks(p, h, sl->first, sl->n, sl->buf, s->out);
		ret = emit(arg, s->out, n);
		if (ret < 0) {
			err = ret;
			continue;
		}
		if (next < (uint32_t)h->count) {
			ret = sig_submit(s, sl, fd, h, &next);
			if (ret < 0)
				err = ret;
			else
				inflight++;
		}
	}
	return err;
}
