/* SPDX-License-Identifier: MIT */
/*
 * A list's names, link targets, sums and ext records: carved one after the
 * other out of blocks that never move, so an entry's pointers are final
 * the moment it is decoded (no offsets to turn into pointers at the end,
 * no copying when a pool grows).  Blocks start small (a short incremental
 * sub-list stays small) and double up to BLK_MAX; the whole chain goes in
 * berth_flist_free().
 *
 * An entry keeps only its base name; its directory part is kept once per
 * directory of the list, in a record of its own that the entries without
 * other ext fields share (the others copy its pointer): found again through
 * a small open-addressed table, or at once when, as usual, the entry
 * before was in the same directory.
 */
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "protocol/proto_int.h"

#define DIRTAB_MIN 64u

#define BLK_MIN (4u << 10)
#define BLK_MAX (256u << 10)

struct berth_flist_blk {
	struct berth_flist_blk *next;
	size_t used, cap;
	alignas(max_align_t) char data[];
};

const struct berth_file_ext berth_file_ext_none = {
	.dir = "",
	.xattr_set = -1,
	.acl = {-1, -1},
};

void *berth__flist_alloc(struct berth_flist *fl, size_t len, bool align)
{
	struct berth_flist_blk *b = fl->blks;
	size_t at = 0;

	if (b) {
		at = align ? (b->used + 7) & ~(size_t)7 : b->used;
		if (at <= b->cap && len <= b->cap - at) {
			b->used = at + len;
			return b->data + at;
		}
	}
	{
		size_t cap = b ? b->cap * 2 : BLK_MIN;
		struct berth_flist_blk *n;

		if (cap > BLK_MAX)
			cap = BLK_MAX;
		if (cap < len)
			cap = len;
		n = malloc(offsetof(struct berth_flist_blk, data) + cap);
		if (!n)
			return NULL;
		n->cap = cap;
		n->used = len;
		n->next = b;
		fl->blks = n;
		return n->data;
	}
}

const char *berth_file_path(const struct berth_file *f, char *buf)
{
	size_t dl = f->ext->dir_len;

	if (dl == 0)
		return f->base;
	memcpy(buf, f->ext->dir, dl);
	memcpy(buf + dl, f->base, strlen(f->base) + 1);
	return buf;
}

uint32_t berth_file_path_len(const struct berth_file *f)
{
	return f->ext->dir_len + (uint32_t)strlen(f->base);
}

void berth__flist_free_blks(struct berth_flist_blk *b)
{
	while (b) {
		struct berth_flist_blk *next = b->next;

		free(b);
		b = next;
	}
}

void berth__flist_dirs_reset(struct berth_flist_dec *d)
{
	d->dir_last = NULL;
	d->dirtab_used = 0;
	if (d->dirtab_mask + 1 > DIRTAB_MIN) {
		/* A large list's table does not follow into the (usually
		 * small) sub-lists after it. */
		free(d->dirtab);
		d->dirtab = NULL;
		d->dirtab_mask = 0;
	} else if (d->dirtab) {
		memset(d->dirtab, 0, sizeof(*d->dirtab) * (d->dirtab_mask + 1));
	}
}

static bool dir_is(const struct berth_file_ext *x, const char *dir,
		   uint32_t len)
{
	return x->dir_len == len && memcmp(x->dir, dir, len) == 0;
}

static uint32_t dir_hash(const char *dir, uint32_t len)
{
	return (uint32_t)XXH3_64bits(dir, len);
}

/* Twice the slots when half are used (the first time: DIRTAB_MIN). */
static int dirtab_grow(struct berth_flist_dec *d)
{
	uint32_t n = d->dirtab ? (d->dirtab_mask + 1) * 2 : DIRTAB_MIN;
	const struct berth_file_ext **t = calloc(n, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; d->dirtab && i <= d->dirtab_mask; i++) {
		const struct berth_file_ext *x = d->dirtab[i];
		uint32_t h;

		if (!x)
			continue;
		h = dir_hash(x->dir, x->dir_len) & (n - 1);
		while (t[h])
			h = (h + 1) & (n - 1);
		t[h] = x;
	}
	free(d->dirtab);
	d->dirtab = t;
	d->dirtab_mask = n - 1;
	return 0;
}

int berth__flist_dir(struct berth_flist_dec *d, const char *dir, uint32_t len,
		     const struct berth_file_ext **out)
{
	struct berth_file_ext *x;
	char *copy;
	uint32_t h;

	if (len == 0) {
		*out = &berth_file_ext_none;
		return 0;
	}
	if (d->dir_last && dir_is(d->dir_last, dir, len)) {
		*out = d->dir_last;
		return 0;
	}
	if ((d->dirtab_used + 1) * 2 > d->dirtab_mask + 1) {
		int r = dirtab_grow(d);

		if (r < 0)
			return r;
	}
	h = dir_hash(dir, len) & d->dirtab_mask;
	for (; d->dirtab[h]; h = (h + 1) & d->dirtab_mask) {
		if (dir_is(d->dirtab[h], dir, len)) {
			*out = d->dir_last = d->dirtab[h];
			return 0;
		}
	}
	/* Counted against the list's limit as a name is. */
	if (d->list_bytes + len + 1 > d->cfg.max_list_bytes)
		return -BERTH_ELIMIT;
	x = berth__flist_alloc(d->cur, sizeof(*x), true);
	copy = x ? berth__flist_alloc(d->cur, len + 1, false) : NULL;
	if (!copy)
		return -ENOMEM;
	memcpy(copy, dir, len);
	copy[len] = '\0';
	*x = berth_file_ext_none;
	x->dir = copy;
	x->dir_len = len;
	d->list_bytes += len + 1;
	d->dirtab[h] = x;
	d->dirtab_used++;
	*out = d->dir_last = x;
	return 0;
}
