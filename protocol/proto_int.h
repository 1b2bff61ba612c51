/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the protocol/ sources only.  Nothing here is part of
 * the module API (protocol/protocol.h).
 */
#ifndef BERTH_PROTO_INT_H
#define BERTH_PROTO_INT_H

#include <stdint.h>
#include <string.h>

#include "protocol/protocol.h"

/* Propagate a negative result; anything >= 0 falls through. */
#define TRY(expr)                      \
	do {                           \
		int try_r_ = (expr);   \
		if (try_r_ < 0)        \
			return try_r_; \
	} while (0)

/* Bytes still unread in @in. */
static inline size_t in_avail(const struct berth_proto_in *in)
{
	return in->size - in->pos;
}

/* Room left in @out. */
static inline size_t out_room(const struct berth_proto_out *out)
{
	return out->size - out->pos;
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/*
 * A parser run by berth__stash_run(): consumes one complete unit from @view
 * and returns BERTH_PROTO_DONE (or another positive event code), or returns
 * BERTH_PROTO_MORE without side effects when @view ends too early, or a
 * negative error.
 */
typedef int (*berth__unit_fn)(void *ctx, struct berth_proto_in *view);

/*
 * Run @fn over the stash's saved bytes followed by @in, so that a unit split
 * across input chunks is parsed as if contiguous.  Bytes of an incomplete
 * unit are moved into the stash (at most @st->cap bytes: a longer unit is
 * -BERTH_ELIMIT).  Returns what @fn returned.
 */
int berth__stash_run(struct berth_proto_stash *st, struct berth_proto_in *in,
		     berth__unit_fn fn, void *ctx);

/* Case-insensitive search of @name (length @len) in a space-separated list. */
int berth__name_in_list(const char *list, const char *name, size_t len);

/*
 * Sort (§7.7), clean duplicates and validate directory parts (§7.5) of a
 * list whose files[] are in transmission order.  With @parent (inc
 * recursion sub-list) every name's directory part must equal it; else
 * every directory part must be a directory of the list.  Also resolves
 * same-list hard-link references to sorted ndx.  0, -BERTH_EPROTO, -ENOMEM.
 */
int berth__flist_finish(struct berth_flist *fl, const char *parent);

#endif /* BERTH_PROTO_INT_H */
