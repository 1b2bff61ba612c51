/* SPDX-License-Identifier: MIT */
/* Fuzz the server handshake: client version and name lists (§4). */
#include <string.h>

#include "fuzz_common.h"

static const char *const caps[] = {NULL, ".iLsfxCIvu", ".iLsfx",
				   ".V", "31.0vfx",    ".v"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_hs hs;
	struct berth_hs_config cfg = {0};
	uint8_t ob[256];
	struct berth_proto_out out = {ob, sizeof(ob), 0};
	struct fz_chunker c;
	int r = 0;

	if (size < 2)
		return 0;
	cfg.client_caps = caps[data[0] % 6];
	cfg.compress = data[0] & 0x40;
	cfg.checksum_choice = (data[1] & 3) == 1 ? "xxh3,md5" : NULL;
	cfg.compress_choice = (data[1] & 12) == 4 ? "zstd" : NULL;
	cfg.max_protocol = 30 + (data[1] >> 4) % 3;
	if (berth_hs_init(&hs, &cfg) || berth_hs_put_version(&hs, &out))
		return 0;
	fz_init(&c, data + 2, size - 2, data[1]);
	while (fz_more(&c) && (r = berth_hs_get_version(&hs, &c.in)) == 0)
		;
	if (r != 1 || berth_hs_put_setup(&hs, &out))
		return 0;
	while ((r = berth_hs_get_lists(&hs, &c.in)) == 0 && fz_more(&c))
		;
	if (r == 1)
		berth_hs_put_seed(&hs, &out);
	return 0;
}
