/* SPDX-License-Identifier: MIT */
/*
 * A list's names, link targets, sums and ext records: carved one after the
 * other out of blocks that never move, so an entry's pointers are final
 * the moment it is decoded (no offsets to turn into pointers at the end,
 * no copying when a pool grows).  Blocks start small (a short incremental
 * sub-list stays small) and double up to BLK_MAX; the whole chain goes in
 * berth_flist_free().
 */
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>

#include "protocol/proto_int.h"

#define BLK_MIN (4u << 10)
#define BLK_MAX (256u << 10)

struct berth_flist_blk {
	struct berth_flist_blk *next;
	size_t used, cap;
	alignas(max_align_t) char data[];
};

const struct berth_file_ext berth_file_ext_none = {
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

void berth__flist_free_blks(struct berth_flist_blk *b)
{
	while (b) {
		struct berth_flist_blk *next = b->next;

		free(b);
		b = next;
	}
}
