// The public header as C++ (built with -std=c++11 -pedantic -Werror).
#include <berth.h>

int berth_header_cxx_check();
int berth_header_cxx_check()
{
	berth_session_opts o = {};
	berth_pump_opts p = {};

	return o.argc + static_cast<int>(p.backend) + BERTH_DURABLE_BATCH;
}
