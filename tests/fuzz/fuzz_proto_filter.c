/* SPDX-License-Identifier: MIT */
/* Fuzz the filter-rule list decoder (§6). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_filter_dec d;
	struct berth_filter_rule rule;
	struct fz_chunker c;
	volatile size_t sink = 0;
	int r = 0;

	if (size < 1 || berth_filter_dec_init(&d, 1 + data[0] * 4, 50))
		return 0;
	fz_init(&c, data + 1, size - 1, data[0]);
	while (r >= 0 && r != BERTH_PROTO_DONE && fz_more(&c))
		while ((r = berth_filter_decode(&d, &c.in, &rule)) ==
		       BERTH_FILTER_RULE)
			sink += rule.pattern_len ? (size_t)rule.pattern[0] : 0;
	(void)sink;
	berth_filter_dec_destroy(&d);
	return 0;
}
