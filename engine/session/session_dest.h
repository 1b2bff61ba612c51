/* SPDX-License-Identifier: MIT */
/*
 * The destination and the alt-dest dirs (session_dest.c), and the safe open
 * every path of a session goes through.
 */
#ifndef BERTH_SESSION_DEST_H
#define BERTH_SESSION_DEST_H

#include <stdbool.h>
#include <sys/types.h>
#include "berth.h"

struct berth_session;

struct sess_dest {
	int root_fd;
	int temp_dirfd; /* --temp-dir, or -1 */
	/* --partial-dir (--delay-updates: ".~tmp~"): the directory name,
	 * beside each file, for partial and delayed files; NULL if none. */
	const char *pdir;
	int backup_dirfd; /* --backup-dir, once created; or -1 */
	/* --backup-dir before its first use: what of it exists is opened at
	 * start (an absolute one) or is the destination (a relative one);
	 * the rest (a relative path) is made beneath it on first use. */
	int backup_base_fd; /* -1: the destination */
	const char *backup_rest;
	int backup_err; /* opening the base failed: -errno */
	char *bak_last; /* the backup directory prepared last (generator) */
	bool dest_created;
	char *local_name; /* "local name" mode: the one item's new name */
	/* The root's full path as rsync's messages name it (its working
	 * directory there: absolute, cleaned, symlinks kept), or NULL (a
	 * directory fd given by the embedder). */
	char *full;
	bool am_root;
	mode_t umask;
	int alt_fd[BERTH_MAX_ALT_DEST]; /* --link-dest etc., or -1 */
	int nalt;
};

/* Open (or make) DEST and the alt-dest dirs, after the file list. */
int berth__open_dest(struct berth_session *s);
/* --backup-dir: open what exists of an absolute one (at start). */
int berth__open_backup_base(struct berth_session *s);
/* Close everything opened. */
void berth__dest_close(struct sess_dest *d);

#endif /* BERTH_SESSION_DEST_H */
