/* SPDX-License-Identifier: MIT */
/* Built against an installed libberth (pkg-config or find_package): the
 * library's version, the option structs' growth rules, then a pump and a
 * session, cancelled before it runs, everything freed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <berth.h>

/* A caller built against a newer header: one more member at the end. */
struct newer_pump_opts {
	struct berth_pump_opts old;
	int option_from_the_future;
};

static int check_abi(void)
{
	struct newer_pump_opts n;
	struct berth_pump_opts small = {0};
	struct berth_pump *pump;

	if (strcmp(berth_version(), BERTH_VERSION_STRING) != 0 ||
	    berth_version_number() != BERTH_VERSION_NUMBER) {
		fprintf(stderr, "library %s, header %s\n", berth_version(),
			BERTH_VERSION_STRING);
		return 1;
	}
	/* Unknown members zero: accepted; set: refused, not ignored. */
	memset(&n, 0, sizeof(n));
	n.old.size = sizeof(n);
	if (berth_pump_create(&n.old, &pump) < 0)
		return 1;
	berth_pump_free(pump);
	n.option_from_the_future = 1;
	if (berth_pump_create(&n.old, &pump) != -E2BIG)
		return 1;
	/* Smaller than the first layout: refused. */
	small.size = 1;
	if (berth_pump_create(&small, &pump) != -EINVAL)
		return 1;
	return 0;
}

int main(void)
{
	char *argv[] = {"rsync", "--server",	  "-logDtpre.iLsfxCIvu",
			".",	 "/nonexistent/", NULL};
	struct berth_session_opts so = {.size = sizeof(so)};
	struct berth_stats st = {.size = sizeof(st)};
	struct berth_session *s;
	struct berth_pump *pump;
	int ret;

	if (check_abi() != 0) {
		fprintf(stderr, "use_berth: version or option sizes wrong\n");
		return 1;
	}
	if (berth_pump_create(NULL, &pump) < 0)
		return 1;
	so.argc = 5;
	so.argv = argv;
	so.dest_dirfd = -1;
	if (berth_session_create(pump, &so, &s) < 0)
		return 1;
	berth_session_cancel(s);
	ret = berth_session_run(s, 0, 1);
	berth_session_stats(s, &st);
	berth_session_free(s);
	printf("berth %s (library %s), pump %s, cancelled run: %s%s\n",
	       BERTH_VERSION_STRING, berth_version(),
	       berth_pump_backend_name(berth_pump_backend(pump)),
	       berth_strerror(ret), st.cancelled ? " (stats agree)" : "");
	berth_pump_free(pump);
	return ret == -BERTH_ECANCELLED && st.cancelled && st.size == sizeof(st)
		       ? 0
		       : 1;
}
