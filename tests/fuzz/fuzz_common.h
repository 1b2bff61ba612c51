/* SPDX-License-Identifier: MIT */
/* Shared helpers for the protocol/ libFuzzer targets. */
#ifndef BERTH_FUZZ_COMMON_H
#define BERTH_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Split input into chunks whose sizes come from a tiny PRNG seeded by
   @seed, so the decoders' split-unit paths are exercised. */
struct fz_chunker {
	struct berth_proto_in in;
	size_t end;
	uint32_t x;
};

static inline void fz_init(struct fz_chunker *c, const uint8_t *p, size_t n,
			   uint32_t seed)
{
	c->in.ptr = p;
	c->in.pos = 0;
	c->in.size = 0;
	c->end = n;
	c->x = seed | 1;
}

/* Extend the visible input by the next chunk; 0 when all was shown. */
static inline int fz_more(struct fz_chunker *c)
{
	size_t k;

	if (c->in.size >= c->end)
		return 0;
	c->x = c->x * 1103515245u + 12345u;
	k = (c->x >> 16) % 64 == 0 ? c->end : 1 + (c->x >> 16) % 17;
	c->in.size = c->in.size + k < c->end ? c->in.size + k : c->end;
	return 1;
}

#endif
