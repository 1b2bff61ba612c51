/* SPDX-License-Identifier: MIT */
/*
 * What berth's daemon imposes on a session from rsyncd.conf
 * (session_daemon.c): the module's "incoming chmod", its filter rules
 * ("exclude", "include", "filter" and their "from" files: rsync's daemon
 * filter list, which both refuses what a client sends and keeps
 * deletions away), "munge symlinks" and "numeric ids".  The daemon builds
 * a struct berth_dpolicy per connection and hands it to the session
 * through berth_opts.dpolicy (never set from a client's arguments).
 */
#ifndef BERTH_SESSION_DAEMON_H
#define BERTH_SESSION_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct berth_session;
struct berth_file;
struct berth_flist;
struct berth_chmod;
struct berth_dfilter;

/* Borrowed by the session until it ends. */
struct berth_dpolicy {
	const struct berth_chmod *chmod; /* incoming chmod, or NULL */
	const struct berth_dfilter *filter; /* the daemon's rules, or NULL */
	const char *dest_rel; /* DEST relative to the module, "" its top */
	const char *dest_shown; /* DEST as messages name it */
	/* The module's name and whether it "chroots" (rsync's messages name
	 * an item from the module's top: "/dir/name" (in NAME)). */
	const char *module;
	bool chroot;
	bool munge_links; /* targets stored as "/rsyncd-munged/" + target */
	bool numeric_ids; /* no names mapped (the name lists still come) */
};

#define BERTH_MUNGE_PREFIX "/rsyncd-munged/"

/* ---------------------------------------------- the daemon's rule list */

/* Where a text of rules comes from: the rsyncd.conf parameter. */
enum {
	BERTH_DF_FILTER = 0, /* "filter": rules, split at white space */
	BERTH_DF_INCLUDE, /* "include": patterns, split at white space */
	BERTH_DF_EXCLUDE, /* "exclude" */
	BERTH_DF_INCLUDE_FILE, /* the text of an "include from" file */
	BERTH_DF_EXCLUDE_FILE, /* the text of an "exclude from" file */
};

/*
 * Add the rules of @text (of kind @kind) to *@f (created on the first
 * call), after those already there, as rsync's daemon reads them: a
 * pattern with a "/" is matched against the path from the module's top,
 * an exclude ending in "/" covers the directory and all beneath it,
 * rules for the sending side alone are dropped.  Returns 0, -ENOMEM,
 * or -EINVAL with @why (a syntax error, or a merge, per-directory merge
 * or xattr rule, which berth's daemon does not take).  Pure.
 */
int berth__dfilter_add(struct berth_dfilter **f, int kind, const char *text,
		       char *why, size_t why_len);

/*
 * Is @name (relative to DEST, whose path in the module is @dest_rel, ""
 * for its top) excluded by the daemon's rules?  Pure; any thread.
 */
bool berth__dfilter_hides(const struct berth_dfilter *f, const char *dest_rel,
			  const char *name, bool is_dir);
void berth__dfilter_free(struct berth_dfilter *f);

/* ------------------------------------------------- the session's hooks */

/* Per-session buffers of the list decoder's hook (net-in thread). */
struct sess_dmn {
	char *name, *link;
	size_t name_cap, link_cap;
};

/* Does the policy change symlink targets (the decoder's hook needed)? */
bool berth__dmn_converts(const struct berth_session *s);

/*
 * The list decoder's hook for an entry's name (@link false) or symlink
 * target: @in as the caller has it (converted by --iconv already when
 * on), out as the session stores it: a munged target, or the same bytes.
 * 0, or -ENOMEM.  Net-in thread.
 */
int berth__dmn_conv(struct berth_session *s, bool link, const char *in,
		    size_t len, const char **out, size_t *out_len);

/* A list just read: incoming chmod on every mode but a symlink's, as
 * rsync's receiver changes the modes it reads. */
void berth__dmn_list(struct berth_session *s, struct berth_flist *fl);

/* The permission bits @perm of an item of type @type as it is to be
 * left: with incoming chmod applied. */
uint32_t berth__dmn_mode(const struct berth_session *s, uint32_t type,
			 uint32_t perm);

/* Would incoming chmod change an existing non-directory @f whose mode
 * is @cur (which stays otherwise)? */
bool berth__dmn_mode_due(const struct berth_session *s,
			 const struct berth_file *f, uint32_t cur);

/* Is @name (relative to DEST) hidden by the daemon's rules?  Hidden
 * items are neither received nor deleted. */
bool berth__dmn_hidden(const struct berth_session *s, const char *name,
		       bool is_dir);

/*
 * Entry @f is hidden by the daemon's rules: tell the client as rsync's
 * daemon tells it (a transfer error, exit 23); the caller skips it (and
 * a directory's contents).
 */
void berth__dmn_refused(struct berth_session *s, const struct berth_file *f);

/* DEST itself excluded?  Then a fatal error (exit 3), as rsync's daemon
 * refuses it, and -EPERM. */
int berth__dmn_check_dest(struct berth_session *s);

/* Names not mapped to local ids (the module's "numeric ids"). */
bool berth__dmn_numeric_ids(const struct berth_session *s);

void berth__dmn_free(struct sess_dmn *d);

#endif /* BERTH_SESSION_DAEMON_H */
