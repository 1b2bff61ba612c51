/* SPDX-License-Identifier: MIT */
/* Delta engine internals shared with its tests (not for other modules). */
#ifndef BERTH_DELTA_INT_H
#define BERTH_DELTA_INT_H

#include "engine/delta/delta.h"

/* Rolling checksum kernels. */
enum {
	BERTH__ROLL_AUTO = 0, /* what berth_rolling_init() picks */
	BERTH__ROLL_C,
	BERTH__ROLL_SSE2,
	BERTH__ROLL_AVX2,
};

/*
 * berth_rolling_init() with a chosen kernel (the scalar code still does the
 * tail).  Returns 0, or -ENOTSUP if this CPU or build lacks the kernel.
 * For tests, so every kernel is checked on every machine that has it.
 */
int berth__rolling_with(int kernel, struct berth_rolling_state *r,
			const void *buf, size_t len);

#endif /* BERTH_DELTA_INT_H */
