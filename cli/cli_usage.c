/* SPDX-License-Identifier: MIT */
/*
 * berth's own command line: --help, --version, and the usage errors of a
 * command line that is neither a server nor a daemon one.  A server
 * command line (--server anywhere) is the session's to read, and its
 * refusals reach the client after the handshake; a daemon one is
 * daemon/'s.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "berth.h"
#include "cli/cli_int.h"
#include "protocol/protocol.h"

void berth__cli_help(FILE *f)
{
	fprintf(f,
		"berth %s, a receiver for rsync protocols %d-%d\n"
		"\n"
		"berth takes pushes from a stock rsync client in the place of "
		"rsync on the\n"
		"receiving side: the client runs it as its server over a "
		"remote shell, or\n"
		"reaches it as an rsync daemon.  berth only receives (no pulls).\n"
		"\n"
		"Usage: berth --server [RSYNC SERVER OPTIONS] . DEST   "
		"(run by the client)\n"
		"  or   berth --daemon [DAEMON OPTIONS]                "
		"(rsync:// modules)\n"
		"  or   berth --restrict=DIR                           "
		"(an sshd forced command)\n"
		"  or   berth --version | --help\n"
		"\n"
		"How a client pushes into it:\n"
		"  rsync -a --rsync-path=berth SRC/ HOST:DEST/\n"
		"  rsync -a SRC/ rsync://HOST/MODULE/          "
		"(berth --daemon on HOST)\n"
		"  rsync -a -e ssh --rsync-path=berth SRC/ HOST::MODULE/\n"
		"\n"
		"Options\n"
		" --server           the receiving side of a push; the client "
		"builds the rest\n"
		"                    of this command line (rsync's server "
		"options, \".\", DEST)\n"
		" --fake-super       (before --server) keep privileged "
		"attributes in xattrs\n"
		" --daemon           an rsync daemon: rsyncd.conf modules "
		"(berth --daemon --help)\n"
		" --restrict=DIR     for sshd's authorized_keys command=: run "
		"the push the client\n"
		"                    asked for (SSH_ORIGINAL_COMMAND), only "
		"beneath DIR, only\n"
		"                    with safe options; pulls refused\n"
		" --version, -V      print the version, protocols, checksums, "
		"compressions and\n"
		"                    the completion pump backend\n"
		" --help, -h         show this help\n"
		"\n"
		"Environment\n"
		" BERTH_PUMP=uring|pool            force the completion pump "
		"backend\n"
		" BERTH_PUMP_SQPOLL=0|1            io_uring helper ring off "
		"or on\n"
		" BERTH_DURABILITY=none|file|batch when to fsync (--fsync "
		"from the client: batch;\n"
		"                                  file: one fsync at a time)"
		"\n"
		" SSH_ORIGINAL_COMMAND             the client's command, read "
		"by --restrict\n"
		" LISTEN_FDS, LISTEN_PID           systemd's sockets, taken by "
		"--daemon\n"
		"\n"
		"Exit codes (rsync's)\n"
		"  0 success                       12 error in the protocol "
		"data stream\n"
		"  1 syntax or usage error         20 cancelled by a signal\n"
		"  2 protocol incompatibility      22 cannot allocate memory\n"
		"  3 bad destination directory     23 partial transfer due to "
		"error\n"
		"  4 option not supported/allowed  25 --max-delete stopped "
		"deletions\n"
		"  5 daemon protocol start-up      30 timeout in data "
		"send/receive\n"
		" 10 socket I/O error\n"
		" 11 file I/O error\n"
		"\n"
		"See berth(1), berthd.conf(5) and libberth(3).\n",
		berth_version(), BERTH_PROTO_MIN, BERTH_PROTO_MAX);
}

void berth__cli_daemon_help(FILE *f)
{
	fprintf(f,
		"berth %s: the rsync daemon (rsync:// modules)\n"
		"\n"
		"Usage: berth --daemon [OPTION]...\n"
		" --config=FILE        the configuration, rsyncd.conf syntax "
		"(default\n"
		"                      /etc/rsyncd.conf; see berthd.conf(5))\n"
		" --port=PORT          listen on PORT (default: the "
		"configuration's, or 873)\n"
		" --address=ADDR       listen on ADDR only\n"
		" --no-detach          stay in the foreground\n"
		" --log-file=FILE      log to FILE instead of the "
		"configuration's\n"
		" --bwlimit=KBPS       limit each session's I/O\n"
		" --dparam=NAME=VALUE, -M NAME=VALUE\n"
		"                      set a global parameter, as if in the "
		"configuration\n"
		" -4, -6               accepted for rsync's command line; the "
		"address decides\n"
		" --help, -h           show this help\n"
		"\n"
		"Started by inetd (stdin is the socket) or by systemd "
		"(LISTEN_FDS) it serves\n"
		"those sockets.  SIGHUP loads the configuration again; SIGTERM "
		"ends every\n"
		"session cleanly and exits.\n",
		berth_version());
}

/* Why berth_pump_create() failed, beyond its error: a forced uring
 * backend (BERTH_PUMP=uring) in a build without it. */
static const char *pump_hint(int err)
{
	(void)err;
#if !BERTH_HAVE_URING
	if (err == -EOPNOTSUPP)
		return "; built without io_uring";
#endif
	return "";
}

int berth__cli_version(void)
{
	struct berth_pump *pump;
	int ret;

	printf("berth %s, a receiver for rsync protocols %d-%d\n",
	       BERTH_VERSION_STRING, BERTH_PROTO_MIN, BERTH_PROTO_MAX);
	if (strcmp(berth_version(), BERTH_VERSION_STRING) != 0)
		printf("libberth: %s (the program was built with %s)\n",
		       berth_version(), BERTH_VERSION_STRING);
	printf("checksums: %s\n", BERTH_HS_CHECKSUM_LIST);
	printf("compression: %s\n", BERTH_HS_COMPRESS_LIST);
	ret = berth_pump_create(NULL, &pump);
	if (ret < 0) {
		printf("pump: unavailable (%s%s)\n", berth_strerror(ret),
		       pump_hint(ret));
		return 1;
	}
	printf("pump backend: %s (%s)\n",
	       berth_pump_backend_name(berth_pump_backend(pump)),
	       berth_pump_backend_reason(pump));
	berth_pump_free(pump);
	printf("\nCopyright (c) the berth authors.  MIT license: see the "
	       "LICENSE file or\n/usr/share/doc/berth/copyright.\n");
	return 0;
}

/* "berth: ARG: WHY", as rsync names a bad option. */
static int usage_error(const char *what, const char *why)
{
	fprintf(stderr, "berth: %s: %s\n", what, why);
	fprintf(stderr, "berth: see 'berth --help' (berth only receives: "
			"an rsync client runs it)\n");
	return CLI_RERR_SYNTAX;
}

int berth__cli_parse(int argc, char **argv, const char **restrict_dir,
		     int *exit_code)
{
	bool help = false, version = false;
	int i;

	*restrict_dir = NULL;
	if (argc < 2) {
		fprintf(stderr,
			"usage: berth --server ... . DEST   (run by an rsync "
			"client: rsync --rsync-path=berth)\n"
			"       berth --daemon [OPTION]...\n"
			"       berth --restrict=DIR\n"
			"       berth --version | --help\n");
		*exit_code = CLI_RERR_SYNTAX;
		return 0;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			help = true;
		} else if (!strcmp(a, "--version") || !strcmp(a, "-V")) {
			version = true;
		} else if (!strncmp(a, "--restrict=", 11)) {
			*restrict_dir = a + 11;
		} else if (!strcmp(a, "--restrict")) {
			if (i + 1 >= argc) {
				*exit_code = usage_error(
					a, "missing argument (DIR)");
				return 0;
			}
			*restrict_dir = argv[++i];
		} else if (a[0] == '-' && a[1]) {
			*exit_code = usage_error(a, "unknown option");
			return 0;
		} else {
			*exit_code = usage_error(a, "unexpected argument");
			return 0;
		}
	}
	if (*restrict_dir && !**restrict_dir) {
		*exit_code = usage_error("--restrict",
					 "missing argument (DIR)");
		return 0;
	}
	if (help) {
		berth__cli_help(stdout);
		*exit_code = 0;
		return 0;
	}
	if (version) {
		*exit_code = berth__cli_version();
		return 0;
	}
	return 1;
}
