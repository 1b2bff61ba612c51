/* SPDX-License-Identifier: MIT */
/*
 * The signature reader: a basis file's sum head and block sums, streamed
 * to a callback.  The basis is read through the ring (basis_reader.c), a
 * whole number of blocks per read, nreads in flight; each read is hashed
 * on the calling thread, in file order, by the pure berth_sig_blocks().
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/basis/basis_int.h"

struct berth_sig {
	struct berth_sig_opts opts;
	size_t slot_cap;
	struct berth_basis *ring;
	uint8_t *out; /* wire sums of one slot */
	size_t outcap;

	/* The file being read, for deliver(). */
	const struct berth_sum_head *h;
	const struct berth_csum_params *p;
	berth_delta_out_cb emit;
	void *arg;
};

static int deliver(void *arg, const struct berth_basis_chunk *c);

int berth_sig_create(const struct berth_sig_opts *opts, struct berth_sig **out)
{
	struct berth_basis_opts bo = {0};
	struct berth_sig *s;
	int ret;

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
	bo.pump = s->opts.pump;
	bo.nslots = s->opts.nreads;
	bo.slot_size = s->slot_cap;
	bo.tag = s->opts.tag;
	bo.cached_inline = s->opts.cached_inline;
	bo.deliver = deliver;
	bo.arg = s;
	ret = berth_basis_create(&bo, &s->ring);
	if (ret < 0) {
		berth_sig_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void berth_sig_free(struct berth_sig *s)
{
	if (!s)
		return;
	berth_basis_free(s->ring);
	free(s->out);
	free(s);
}

void berth_sig_trim(struct berth_sig *s)
{
	berth_basis_trim(s->ring);
	free(s->out);
	s->out = NULL;
	s->outcap = 0;
}

/* One read's blocks, in file order: hash them and emit their sums.  The
 * read's user word is its first block << 32 | its block count. */
static int deliver(void *arg, const struct berth_basis_chunk *c)
{
	struct berth_sig *s = arg;
	uint32_t first = (uint32_t)(c->user >> 32), n = (uint32_t)c->user;
	size_t len;

	len = berth_sig_blocks(s->p, s->h, first, n, c->buf, s->out);
	return s->emit(s->arg, s->out, len);
}

int berth_sig_file(struct berth_sig *s, int fd, const struct berth_sum_head *h,
		   const struct berth_csum_params *p, berth_delta_out_cb emit,
		   void *arg)
{
	uint8_t hw[BERTH_SUM_HEAD_WIRE];
	uint32_t next = 0, per = 0;
	int ret, err = 0;

	if (h->count < 0 || h->s2length < 0 ||
	    h->s2length > BERTH_CSUM_MAX_S2 ||
	    (h->count > 0 &&
	     (h->blength <= 0 || h->blength > BERTH_MAX_BLOCK_SIZE)))
		return -EINVAL;
	if (h->count > 0) {
		/* The sums of one slot; grows for tiny (-B) block sizes. */
		size_t need;

		per = (uint32_t)(s->slot_cap / (uint32_t)h->blength);
		need = per * (size_t)(4 + BERTH_CSUM_MAX_S2);
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

	s->h = h;
	s->p = p;
	s->emit = emit;
	s->arg = arg;
	/* Up to nreads reads in flight; each new read past that waits for
	 * the oldest to be hashed and emitted. */
	while (next < (uint32_t)h->count && !err) {
		uint32_t left = (uint32_t)h->count - next;
		uint32_t n = per < left ? per : left;
		size_t len = (size_t)(n - 1) * (uint32_t)h->blength +
			     berth_sum_head_block_len(h, next + n - 1);

		err = berth_basis_prep_read(
			s->ring, fd, (uint64_t)next * (uint32_t)h->blength, len,
			(uint64_t)next << 32 | n, 0);
		next += n;
	}
	if (!err)
		err = berth_basis_poll(s->ring, BERTH_BASIS_POLL_ALL);
	berth_basis_cancel(s->ring); /* after an error: wait, drop the rest */
	s->h = NULL;
	s->p = NULL;
	s->emit = NULL;
	s->arg = NULL;
	return err;
}
