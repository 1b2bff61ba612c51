/* SPDX-License-Identifier: MIT */
/*
 * The berth program.  `berth --server ...` is what a stock rsync client
 * runs on the far side (--rsync-path=berth); `berth --version` names what
 * this build speaks.  The exit code is rsync's.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berth.h"
#include "engine/pump/pump.h"

static void log_stderr(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	/* One write per line, so concurrent threads do not interleave. */
	if (write(STDERR_FILENO, msg, strlen(msg)) < 0) {
		/* nowhere left to report it */
	}
}

static int print_version(void)
{
	struct berth_pump *pump;
	int ret;

	printf("berth %s, a receiver for rsync protocols 30-32\n",
	       BERTH_VERSION_STRING);
	printf("checksums: xxh128 xxh3 xxh64 md5 md4\n");
	printf("compression: zstd none\n");
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

static int durability_from_env(void)
{
	const char *d = getenv("BERTH_DURABILITY");

	if (!d || !strcmp(d, "none"))
		return BERTH_DURABLE_NONE;
	if (!strcmp(d, "file"))
		return BERTH_DURABLE_FILE;
	if (!strcmp(d, "batch"))
		return BERTH_DURABLE_BATCH;
	fprintf(stderr, "berth: BERTH_DURABILITY must be none, file or "
			"batch\n");
	exit(1);
}

int main(int argc, char **argv)
{
	struct berth_server_config cfg = {0};

	if (argc == 2 && strcmp(argv[1], "--version") == 0)
		return print_version();
	if (argc < 2 || strcmp(argv[1], "--server") != 0) {
		fprintf(stderr,
			"usage: berth --server <rsync server arguments>\n"
			"       (run by an rsync client: rsync "
			"--rsync-path=berth SRC/ HOST:DST/)\n"
			"       berth --version\n");
		return 1;
	}
	/* A client that goes away is an error code, not a signal death. */
	signal(SIGPIPE, SIG_IGN);
	cfg.argc = argc;
	cfg.argv = argv;
	cfg.in_fd = STDIN_FILENO;
	cfg.out_fd = STDOUT_FILENO;
	cfg.durability = durability_from_env();
	cfg.log = log_stderr;
	return berth_server_run(&cfg);
}
