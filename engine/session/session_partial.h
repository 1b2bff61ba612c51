/* SPDX-License-Identifier: MIT */
/*
 * --partial, --partial-dir, --delay-updates and --backup-dir
 * (session_partial.c).
 */
#ifndef BERTH_SESSION_PARTIAL_H
#define BERTH_SESSION_PARTIAL_H

#include <stdbool.h>
#include <stddef.h>

struct berth_session;

/* "DIR/PDIR/BASE" for file "DIR/BASE" into @buf: 0 or -ENAMETOOLONG. */
int berth__partial_path(const struct berth_session *s, const char *name,
			char *buf, size_t cap);
/* Remove a partial file and, if then empty, its partial dir (quietly). */
void berth__drop_partial(struct berth_session *s, const char *ppath);
/* --backup-dir: make sure the backup directory for @relpath's parent
 * exists before anything there is backed up.  Generator thread. */
int berth__backup_prepare(struct berth_session *s, const char *relpath);
/* Is there a regular file (a partial file) at @ppath? */
bool berth__partial_exists(struct berth_session *s, const char *ppath);
/* --delay-updates: rename every delayed file into place, then remove the
 * emptied partial dirs.  Generator thread, once all data is in. */
int berth__delayed_renames(struct berth_session *s);
/* --partial-dir: remove the partial files used as bases of files now
 * written.  Generator thread, at the end. */
void berth__partial_sweep(struct berth_session *s);

#endif /* BERTH_SESSION_PARTIAL_H */
