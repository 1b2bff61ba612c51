/* SPDX-License-Identifier: MIT */
/*
 * Deletion (session_delete.c): --delete in all its modes, protect rules
 * from the client's filter list, --max-delete, --force.  Generator thread.
 */
#ifndef BERTH_SESSION_DELETE_H
#define BERTH_SESSION_DELETE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "engine/session/session_filter.h"
#include "protocol/protocol.h"

struct berth_session;
struct del_pending;

struct sess_del {
	struct berth_filters *filt; /* session_filter.c; NULL: no rules */
	struct berth_del_stats stats;
	int deleted; /* for --max-delete */
	unsigned skipped; /* refused by --max-delete */
	/* Deletions queued to the commit stage, oldest first, reported in
	 * this order once done (session_delete.c; under sync.lock). */
	struct del_pending *pend_head, *pend_tail;
	bool io_warned;
};

int berth__delete_extraneous(struct berth_session *s, int32_t dir_ndx);
/* Incremental: the extraneous items of directory @dname (its entry's
 * @flags), whose children are the entries of list @fl. */
int berth__delete_in_list(struct berth_session *s, const char *dname,
			  uint32_t flags, const struct berth_flist *fl);
int berth__delete_pass(struct berth_session *s);
/*
 * -m: directories of the complete list @fl with no non-directory beneath
 * them (and not kept by a rule that excludes or protects them) become
 * inactive, as rsync's receiver prunes its list before generating.  Before
 * the generator starts.  0 or -ENOMEM.
 */
int berth__prune_empty_dirs(struct berth_session *s, struct berth_flist *fl);
/* Delete directory @name and what is in it; what a rule protects stays,
 * and so does the directory (then 1, "cannot delete non-empty directory"
 * logged).  @report_self: the directory's own deletion is reported. */
int berth__delete_tree(struct berth_session *s, const char *name,
		       bool report_self);
bool berth__dir_has_entries(struct berth_session *s, const char *name);
void berth__delete_finish(struct berth_session *s);
/* meta.user of a deletion: is @user one?  Then berth__delete_done() is
 * told its outcome (0 or -errno; commit thread), and reports it. */
bool berth__delete_token(const void *user);
void berth__delete_done(struct berth_session *s, const char *path, int err);
void berth__del_free(struct sess_del *d);

#endif /* BERTH_SESSION_DELETE_H */
