/* SPDX-License-Identifier: MIT */
/* The berth program.  For now: --version and a pump self-check. */
#include <stdio.h>
#include <string.h>

#include "berth.h"
#include "engine/pump/pump.h"

static int print_version(void)
{
	struct berth_pump *pump;
	int ret;

	printf("berth %s\n", BERTH_VERSION_STRING);
	ret = berth_pump_create(NULL, &pump);
	if (ret < 0) {
		printf("pump: unavailable (%s)\n", berth_strerror(ret));
		return 1;
	}
	printf("pump backend: %s (%s)\n",
	       berth_pump_backend_name(berth_pump_backend(pump)),
	       berth_pump_backend_reason(pump));
	berth_pump_free(pump);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--version") == 0)
		return print_version();
	fprintf(stderr, "berth: usage: berth --version\n");
	return 1;
}
