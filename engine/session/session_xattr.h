/* SPDX-License-Identifier: MIT */
/*
 * -X / --xattrs in the session (session_xattr.c): the receiver's view of
 * the sender's xattr sets, the generator's comparison with the destination
 * and its requests for abbreviated values, the receiver's reading of the
 * values the sender echoes, and the complete set each item gets through
 * the commit stage (rsync-protocol.md §7.8, §8.3, §8.4, §9.1).
 *
 * Threads: the generator calls the berth__xa_gen_* functions, the net-in
 * thread the berth__xa_recv_* ones.  Values known in full (echoed by the
 * sender, or read from a destination item whose value matched) are cached
 * per set item under xa->lock, a leaf lock: a later item sharing the set
 * is then not asked for again, exactly as rsync's generator does not ask.
 */
#ifndef BERTH_SESSION_XATTR_H
#define BERTH_SESSION_XATTR_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/commit/commit.h"
#include "protocol/protocol.h"

struct berth_session;
struct berth_xa;

/*
 * After the file list: filter every received set the way rsync's receiver
 * does (non-root: only user.*; root: all but system.*; user.rsync.%* only
 * with -XX).  Every set is known by then (berth declines incremental
 * recursion).  s->xa stays NULL without -X.  0 or -ENOMEM.
 */
int berth__xa_create(struct berth_session *s);
void berth__xa_free(struct berth_xa *xa);

/*
 * Generator: rsync's itemize() for xattrs.  Compares @f's set with the
 * attributes of the item @name beneath @dirfd (@dirfd < 0: nothing to
 * compare with, as for a new item) and returns BERTH_ITEM_REPORT_XATTR
 * when they differ (a new item: when the set is not empty), else 0.
 * Abbreviated values the destination lacks are marked for the request.
 * With -A also BERTH_ITEM_REPORT_ACL from berth__acl_gen_itemize() (the
 * ACLs are extended attributes too, and are compared where they are).
 * 0 without -X and -A.
 */
uint32_t berth__xa_gen_itemize(struct berth_session *s,
			       const struct berth_file *f, int dirfd,
			       const char *name);

/* Generator: rsync's unchanged_attrs() part: the same xattrs and (-A)
 * ACLs?  (true without -X and -A). */
bool berth__xa_gen_same(struct berth_session *s, const struct berth_file *f,
			int dirfd, const char *name);

/*
 * Generator: after the record of @ndx with @iflags went out, the xattr
 * request that follows it (§8.3), if the record carries one.  0 or the
 * output's error.
 */
int berth__xa_gen_request(struct berth_session *s, int32_t ndx,
			  uint32_t iflags);

/*
 * Generator: the attributes the item @name beneath @dirfd has now, as a
 * complete set for a new item that replaces or copies it (*out NULL
 * without -X or when it has none).  0 or -ENOMEM.
 */
int berth__xa_gen_copy(struct berth_session *s, int dirfd, const char *name,
		       struct berth_commit_xattrs **out);

/*
 * Net-in: right after an echo's header (ndx, iflags, basis, xname): read
 * the values that follow it, if any, and say what the item must get: for
 * a transfer the set for its new file (*out, to go with the file to the
 * commit stage), for another record whose echo asks for it the set to
 * apply to the item in place; *out NULL when nothing is to be done.
 * @basis_dirfd: where the basis (rsync's fnamecmp) lies, for values
 * neither sent nor known.  Per-item problems are reported (exit 23);
 * returns 0, or -BERTH_EPROTO / -BERTH_ELIMIT / a stream error.
 */
int berth__xa_recv(struct berth_session *s, int32_t ndx, uint32_t iflags,
		   int basis_dirfd, struct berth_commit_xattrs **out);

#endif /* BERTH_SESSION_XATTR_H */
