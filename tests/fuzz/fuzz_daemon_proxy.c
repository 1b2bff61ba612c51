/* SPDX-License-Identifier: MIT */
/* PROXY v1/v2 headers, fed as the daemon reads them: only as many bytes
 * as the parser asks for. */
#include <stdint.h>
#include <stdlib.h>

#include "daemon/daemon_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_proxy_hdr h;
	size_t len = 0, need = 0;
	int ret;

	for (;;) {
		ret = berth_proxy_parse(data, len, &need, &h);
		if (ret != 0)
			break;
		if (need == 0 || len + need > size)
			break;
		len += need;
	}
	if (ret > 0 && (size_t)ret > len)
		abort(); /* a header never ends past what was read */
	return 0;
}
