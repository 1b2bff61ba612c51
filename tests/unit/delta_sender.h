/* SPDX-License-Identifier: MIT */
/*
 * Test-only sender: rsync's block matching (rolling search of a new file
 * against a block signature), producing the token stream a real sender
 * would send, so round-trip tests exercise real streams.  Not in the
 * library.
 */
#ifndef BERTH_TEST_DELTA_SENDER_H
#define BERTH_TEST_DELTA_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "engine/delta/delta.h"

/* One token: a literal run (points into the new file) or a block run. */
struct ds_token {
	int is_lit;
	const uint8_t *lit; /* literal bytes */
	size_t len; /* literal length */
	uint32_t first, n; /* blocks first .. first + n - 1 */
};

struct ds_tokens {
	struct ds_token *v;
	size_t n, cap;
	uint64_t lit_bytes, match_bytes;
};

/*
 * Match @newf (@len bytes) against the signature @sig (@siglen bytes: the
 * 16-byte sum head and the block sums, as berth_sig_file() emits them).
 * Literals are cut at @max_lit bytes (32768 like stock rsync, or anything
 * else); adjacent matched blocks become runs when @runs is set.  Returns 0,
 * or -EINVAL/-ENOMEM.  Free with ds_tokens_free().
 */
int ds_match(const struct berth_csum_params *p, const uint8_t *sig,
	     size_t siglen, const uint8_t *newf, size_t len, size_t max_lit,
	     int runs, struct ds_tokens *out);
void ds_tokens_free(struct ds_tokens *t);

#endif
