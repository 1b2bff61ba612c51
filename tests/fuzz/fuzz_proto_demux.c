/* SPDX-License-Identifier: MIT */
/* Fuzz the demultiplexer (§5) in both directions with random chunking. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_demux d;
	struct berth_demux_event ev;
	struct fz_chunker c;
	volatile uint8_t sink = 0;
	int r = 0;

	if (size < 1)
		return 0;
	if (berth_demux_init(&d, data[0] & 1, 64 + (data[0] >> 1) * 16))
		return 0;
	fz_init(&c, data + 1, size - 1, data[0]);
	while (r >= 0 && fz_more(&c)) {
		while ((r = berth_demux_poll(&d, &c.in, &ev)) > 0)
			if (ev.len)
				sink ^= ev.ptr[ev.len - 1];
	}
	(void)sink;
	berth_demux_destroy(&d);
	return 0;
}
