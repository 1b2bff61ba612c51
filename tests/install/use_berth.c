/* Built against an installed libberth via pkg-config: create a pump and a
 * session, cancel it before it runs, free everything. */
#include <stdio.h>

#include <berth.h>

int main(void)
{
	char *argv[] = {"rsync", "--server",	  "-logDtpre.iLsfxCIvu",
			".",	 "/nonexistent/", NULL};
	struct berth_session_opts so = {0};
	struct berth_session *s;
	struct berth_pump *pump;
	int ret;

	if (berth_pump_create(NULL, &pump) < 0)
		return 1;
	so.argc = 5;
	so.argv = argv;
	so.dest_dirfd = -1;
	if (berth_session_create(pump, &so, &s) < 0)
		return 1;
	berth_session_cancel(s);
	ret = berth_session_run(s, 0, 1);
	berth_session_free(s);
	printf("berth %s, pump %s, cancelled run: %s\n", BERTH_VERSION_STRING,
	       berth_pump_backend_name(berth_pump_backend(pump)),
	       berth_strerror(ret));
	berth_pump_free(pump);
	return ret == -BERTH_ECANCELLED ? 0 : 1;
}
