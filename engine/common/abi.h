/* SPDX-License-Identifier: MIT */
/*
 * The public option structs' growth rules (berth.h, "ABI"): copying a
 * caller's struct of its own size into the library's, and back.
 */
#ifndef BERTH_COMMON_ABI_H
#define BERTH_COMMON_ABI_H

#include <stddef.h>

#include "berth.h"

/*
 * The sizes of the first (0.1) layouts, what a size of 0 means.  Frozen:
 * when a struct grows, its value here becomes offsetof() its first new
 * member.
 */
#define BERTH__V0_PUMP_OPTS sizeof(struct berth_pump_opts)
#define BERTH__V0_SESSION_OPTS sizeof(struct berth_session_opts)
#define BERTH__V0_SERVER_CONFIG sizeof(struct berth_server_config)
#define BERTH__V0_STATS sizeof(struct berth_stats)

/*
 * Copy the caller's struct @src, @usize bytes by its own account (0: the
 * first layout, @v0 bytes), into the library's @dst of @ksize bytes: what
 * the caller's lacks is zeroed, and what it has beyond the library's must
 * be zero.  Returns 0, -EINVAL (a size below the first layout) or -E2BIG.
 */
int berth__abi_copy_in(void *dst, size_t ksize, const void *src, size_t usize,
		       size_t v0);

/* Copy the library's @src (@ksize bytes) into the caller's @dst of @usize
 * bytes (0: @v0), as much as both have. */
void berth__abi_copy_out(void *dst, size_t usize, const void *src, size_t ksize,
			 size_t v0);

#endif
