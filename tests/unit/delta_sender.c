/* SPDX-License-Identifier: MIT */
/* Test-only sender side of rsync's delta algorithm: see delta_sender.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "delta_sender.h"

static int push(struct ds_tokens *t, const struct ds_token *tok)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		struct ds_token *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = *tok;
	return 0;
}

static int push_lit(struct ds_tokens *t, const uint8_t *p, size_t len,
		    size_t max_lit)
{
	while (len) {
		size_t n = len < max_lit ? len : max_lit;
		struct ds_token tok = {.is_lit = 1, .lit = p, .len = n};

		if (push(t, &tok))
			return -ENOMEM;
		t->lit_bytes += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int push_block(struct ds_tokens *t, uint32_t blk, uint32_t blen,
		      int runs)
{
	struct ds_token tok = {.first = blk, .n = 1};

	t->match_bytes += blen;
	if (runs && t->n && !t->v[t->n - 1].is_lit &&
	    t->v[t->n - 1].first + t->v[t->n - 1].n == blk) {
		t->v[t->n - 1].n++;
		return 0;
	}
	return push(t, &tok);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int ds_match(const struct berth_csum_params *p, const uint8_t *sig,
	     size_t siglen, const uint8_t *newf, size_t len, size_t max_lit,
	     int runs, struct ds_tokens *out)
{
	struct berth_sum_head h;
	const uint8_t *sums;
	uint32_t *bucket = NULL, *next = NULL, nb = 1, i;
	size_t pos = 0, lit = 0, per;
	struct berth_rolling_state r;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (siglen < BERTH_SUM_HEAD_WIRE || !max_lit)
		return -EINVAL;
	berth_sum_head_decode(&h, sig);
	per = 4 + (size_t)h.s2length;
	sums = sig + BERTH_SUM_HEAD_WIRE;
	if (h.count < 0 ||
	    siglen != BERTH_SUM_HEAD_WIRE + (size_t)h.count * per)
		return -EINVAL;
	if (h.count == 0 || len == 0)
		return push_lit(out, newf, len, max_lit);

	/* Chained hash of the rolling sums, oldest block first in a chain. */
	while (nb < 2 * (uint32_t)h.count)
		nb <<= 1;
	bucket = malloc(nb * sizeof(*bucket));
	next = malloc((size_t)h.count * sizeof(*next));
	if (!bucket || !next)
		goto out;
	memset(bucket, 0xff, nb * sizeof(*bucket));
	for (i = (uint32_t)h.count; i-- > 0;) {
		uint32_t s = le32(sums + i * per);
		uint32_t b = (s * 2654435761u) >> 8 & (nb - 1);

		next[i] = bucket[b];
		bucket[b] = i;
	}

	size_t w = len < (size_t)h.blength ? len : (size_t)h.blength;
	berth_rolling_init(&r, newf, w);
	while (pos < len) {
		uint32_t v = berth_rolling_value(&r);
		uint32_t b = (v * 2654435761u) >> 8 & (nb - 1);
		uint8_t strong[BERTH_CSUM_MAX_DIGEST];
		int have_strong = 0;
		uint32_t hit = UINT32_MAX;

		for (i = bucket[b]; i != UINT32_MAX; i = next[i]) {
			if (le32(sums + i * per) != v ||
			    berth_sum_head_block_len(&h, i) != w)
				continue;
			if (!have_strong) {
				berth_csum_block(p, newf + pos, w, strong);
				have_strong = 1;
			}
			if (!memcmp(strong, sums + i * per + 4,
				    (size_t)h.s2length)) {
				hit = i;
				break;
			}
		}
		if (hit != UINT32_MAX) {
			if (push_lit(out, newf + lit, pos - lit, max_lit) ||
			    push_block(out, hit, (uint32_t)w, runs))
				goto out;
			pos += w;
			lit = pos;
			w = len - pos < (size_t)h.blength ? len - pos
							  : (size_t)h.blength;
			berth_rolling_init(&r, newf + pos, w);
			continue;
		}
		if (pos + w < len) {
			berth_rolling_roll(&r, newf[pos], newf[pos + w], w);
		} else {
			berth_rolling_drop(&r, newf[pos], w);
			w--;
		}
		pos++;
	}
	ret = push_lit(out, newf + lit, len - lit, max_lit);
out:
	free(bucket);
	free(next);
	if (ret)
		ds_tokens_free(out);
	return ret;
}

void ds_tokens_free(struct ds_tokens *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}
