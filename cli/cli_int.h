/* SPDX-License-Identifier: MIT */
/*
 * The berth program's own parts: its command line (help, version, usage
 * errors) and the restricted mode for sshd's forced commands.  Nothing here
 * is part of libberth.
 */
#ifndef BERTH_CLI_INT_H
#define BERTH_CLI_INT_H

#include <stdio.h>

/* rsync's exit codes that the program itself gives. */
#define CLI_RERR_SYNTAX 1
#define CLI_RERR_FILESELECT 3
#define CLI_RERR_UNSUPPORTED 4
#define CLI_RERR_SIGNAL 20
#define CLI_RERR_MALLOC 22

/* ------------------------------------------------------ cli_usage.c */

/* berth --help (to @f). */
void berth__cli_help(FILE *f);

/* berth --daemon --help (to @f). */
void berth__cli_daemon_help(FILE *f);

/* berth --version on stdout; returns the program's exit code (1 when no
 * pump can be made). */
int berth__cli_version(void);

/*
 * Parse a command line that is neither a server nor a daemon one.  On
 * --help or --version it prints and sets *exit_code; on a usage error it
 * names the option or the argument on stderr and sets *exit_code to 1.  On
 * --restrict=DIR it sets *restrict_dir and returns 1.  Returns 0 when the
 * program is done (with *exit_code), 1 to run the restricted mode.
 */
int berth__cli_parse(int argc, char **argv, const char **restrict_dir,
		     int *exit_code);

/* --------------------------------------------------- cli_restrict.c */

#define RESTRICT_MAX_ARGS 512
#define RESTRICT_MAX_BYTES 65536

/*
 * berth --restrict=DIR: the command an rsync client asked sshd for
 * (SSH_ORIGINAL_COMMAND), vetted: a push ("rsync --server ... . DEST")
 * into DEST beneath DIR, with the options a push into DIR may use, path
 * options rewritten beneath DIR.  The argv points into @buf.
 */
struct restricted {
	int argc;
	char *argv[RESTRICT_MAX_ARGS + 1];
	char buf[RESTRICT_MAX_BYTES];
	char paths[8][4096]; /* rewritten path option values */
	int npaths;
	int dest_fd; /* DEST, opened beneath DIR (owned) */
};

/*
 * Fill @r from @dir and @cmd (SSH_ORIGINAL_COMMAND, may be NULL).
 * Returns 0, or the rsync exit code of a refusal whose reason went to
 * stderr (1: not a command berth can read; 3: DEST cannot be opened; 4: a
 * pull, a daemon, an option or a path not allowed).
 */
int berth__restrict_prep(struct restricted *r, const char *dir,
			 const char *cmd);

/* Close what berth__restrict_prep() opened. */
void berth__restrict_destroy(struct restricted *r);

#endif
