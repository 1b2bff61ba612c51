/* SPDX-License-Identifier: MIT */
/* The daemon's text lines from a client: the greeting (with its digest
 * list), the answer to a challenge; and the path sanitizer and host
 * rules over the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon_int.h"
#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[8192], out[4096], *user, *resp;
	struct berth_dgreet g;

	if (size >= sizeof(line))
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';
	if (berth_dgreet_parse(line, &g) == 0) {
		int p = berth_dgreet_protocol(BERTH_PROTO_MAX, &g);

		(void)berth_dauth_choose(&g, p);
	}
	(void)berth_dpath_sanitize(line, size % 4, out, sizeof(out));
	if (strstr(out, "/../") || !strncmp(out, "../", 3))
		if (size % 4 == 0)
			abort(); /* depth 0 never keeps a ".." */
	(void)berth_daccess_allowed(line, "127.0.0.0/8 ::1/128", "127.0.0.1",
				    "localhost");
	(void)berth_dauth_split(line, &user, &resp);
	return 0;
}
