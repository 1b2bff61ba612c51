/* SPDX-License-Identifier: MIT */
/*
 * -A / --acls in the session (session_acl.c): the sender's ACLs as the
 * receiver keeps them (rsync's recv_rsync_acl: a missing mask made up,
 * named ids mapped as owners are), what each item must get (borrowed by
 * the commit stage through its meta), and the generator's comparison
 * with a destination item for itemize 'a' and the quick check
 * (rsync-protocol.md §7.8; rsync's acls.c).
 *
 * Built once after the file list (berth declines incremental recursion
 * with -A, so every ACL is known by then), read-only afterwards: any
 * thread may use it without a lock.
 */
#ifndef BERTH_SESSION_ACL_H
#define BERTH_SESSION_ACL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "engine/commit/commit.h"
#include "protocol/protocol.h"

struct berth_session;
struct berth_acls;

/* After the file list: s->acl, or NULL without -A.  0 or -ENOMEM. */
int berth__acl_create(struct berth_session *s);
void berth__acl_free(struct berth_acls *a);

/* The ACLs entry @f must get, into @m->acl (NULL without -A and for a
 * symlink). */
void berth__acl_meta(struct berth_session *s, const struct berth_file *f,
		     struct berth_commit_meta *m);

/*
 * Generator: rsync's itemize() for ACLs: BERTH_ITEM_REPORT_ACL when the
 * existing item @name beneath @dirfd would have its ACLs changed to be
 * @f's, else 0 (also without -A, for a symlink, and for @dirfd < 0: a
 * new item).  An item whose ACLs cannot be read is reported (exit 23)
 * and compares as different.
 */
uint32_t berth__acl_gen_itemize(struct berth_session *s,
				const struct berth_file *f, int dirfd,
				const char *name);

/*
 * Generator, a directory's final attributes: @st (its lstat) as rsync
 * sees it (--fake-super), then 0 when its ACLs are those of @m, 1 when
 * they differ (or cannot be read).
 */
int berth__acl_dir_check(struct berth_session *s, const char *name,
			 struct stat *st, const struct berth_commit_meta *m);

/* --fake-super: the item's user.rsync.%stat over @st (mode, device,
 * owner), as rsync's lookups see it; nothing without one. */
void berth__acl_fake_stat(struct berth_session *s, int dirfd, const char *name,
			  struct stat *st);

#endif /* BERTH_SESSION_ACL_H */
