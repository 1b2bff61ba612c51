/* SPDX-License-Identifier: MIT */
/*
 * The receiver's filter rules (session_filter.c): the client's list, the
 * per-directory merge files (`dir-merge`, `:`, `-F`) read in the
 * destination directories deletion looks into, rsync's matching of names
 * and xattr names against them.  Generator thread (and net-in while the
 * list is read, before the generator starts).
 *
 * Per-directory state is a stack of frames, one per directory between the
 * root and the directory deletion is in (berth__filter_enter()): each
 * frame holds what the merge files of its directory said, per active
 * merge rule; a rule of a deeper frame is checked before those it
 * inherits, as rsync's receiver checks them.  Merge files are opened
 * beneath the destination's fd, never through a symlink, and bounded in
 * size, rules and nesting.
 */
#ifndef BERTH_SESSION_FILTER_H
#define BERTH_SESSION_FILTER_H

#include <stdbool.h>

#include "protocol/protocol.h"

struct berth_session;
struct berth_filters;

/*
 * Add one rule of the client's list (in order).  A dir-merge rule becomes
 * active for every directory entered later; a merge rule (".") reads its
 * file beneath the root at once.  0, -ENOMEM, or an error already
 * reported (the session's fatal code set).
 */
int berth__filter_add_wire(struct berth_session *s,
			   const struct berth_filter_rule *rule);

/*
 * Deletion is about to look into directory @dir (a list name, "." the
 * root): leave the frames of directories that are not above it, enter
 * (read the merge files of) each directory down to it.  0, or an error
 * already reported (fatal: a syntax error in a merge file, exit 1).
 */
int berth__filter_enter(struct berth_session *s, const char *dir);

/*
 * Does a rule exclude or protect @path (relative to the root) from
 * deletion?  The first rule that matches decides; an include lets it go.
 * @ignore_perishable: inside a directory being deleted, perishable rules
 * do not count (rsync's delete_dir_contents).
 */
bool berth__filter_protects(struct berth_session *s, const char *path,
			    bool is_dir, bool ignore_perishable);

/* Did the client send xattr-name rules ("-x", "+x")?  Then they replace
 * the namespace checks (rsync's saw_xattr_filter). */
bool berth__filter_has_xattr_rules(const struct berth_session *s);

/* Is the xattr @name excluded by the client's xattr rules? */
bool berth__filter_xattr_excluded(const struct berth_session *s,
				  const char *name);

void berth__filter_free(struct berth_filters *f);

#endif /* BERTH_SESSION_FILTER_H */
