/* SPDX-License-Identifier: MIT */
/* Fuzz the --server argv parser and the secluded-argument reader (§2). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[4096];
	char *argv[66];
	struct berth_secluded s;
	struct berth_proto_in in = {data, size, 0};
	struct berth_opts o;
	struct berth_hs_config cfg = {0};

	berth_secluded_init(&s, buf, sizeof(buf), argv + 2, 64);
	if (berth_secluded_decode(&s, &in) != BERTH_PROTO_DONE)
		return 0;
	argv[0] = "rsync";
	argv[1] = "--server";
	if (berth_opts_parse(&o, s.argc + 2, argv) == 0) {
		berth_opts_hs_config(&o, &cfg);
		berth_opts_want_filters(&o);
	}
	if (s.argc > 0)
		berth_opts_parse_more(&o, s.argc, argv + 2);
	return 0;
}
