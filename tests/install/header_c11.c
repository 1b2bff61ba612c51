/* The public header as strict C11 (built with -std=c11 -pedantic -Werror). */
#include <berth.h>

int berth_header_c11_check(void);
int berth_header_c11_check(void)
{
	struct berth_session_opts o = {0};
	struct berth_pump_opts p = {0};

	return o.argc + p.backend + BERTH_DURABLE_BATCH + BERTH_CSUM_XXH128;
}
