/* SPDX-License-Identifier: MIT */
/*
 * --iconv (session_iconv.c): the client names a charset for this side; the
 * file list's names and symlink targets arrive in UTF-8 and are converted
 * into it, messages that carry names (log lines, MSG_DELETED) go back in
 * UTF-8, and the peer numbers the entries in the order it sent them, not
 * sorted (rsync does so whenever --iconv is given: converted names may
 * sort differently on the two sides).
 */
#ifndef BERTH_SESSION_ICONV_H
#define BERTH_SESSION_ICONV_H

#include <iconv.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct berth_session;
struct berth_flist;

/*
 * Set up by berth__iconv_open() before any other thread exists, read-only
 * after that except what the lock guards.  The index maps are written by
 * net-in before the generator starts (one list: --iconv turns incremental
 * recursion off, berth_opts_inc_recurse()).
 */
struct sess_iconv {
	bool on; /* --iconv given, both converters open */
	char charset[64]; /* this side's charset, as given or the locale's */
	pthread_mutex_t lock; /* leaf: the converters keep shift state */
	iconv_t to_local; /* UTF-8 -> charset */
	iconv_t to_wire; /* charset -> UTF-8 */
	char name[4096]; /* the last converted name (rsync's MAXPATHLEN) */
	char *link; /* the last converted symlink target */
	size_t link_cap;
	uint32_t dropped; /* entries whose name or target did not convert */
	uint32_t n; /* entries of the list */
	uint32_t *sorted_of_tx; /* wire ndx -> sorted ndx */
	uint32_t *tx_of_sorted; /* sorted ndx -> wire ndx */
};

/*
 * Open the converters for s->opts.iconv (before the handshake, as rsync
 * does).  0 when --iconv is absent or all is open; -BERTH_EUNSUPPORTED
 * with rsync's message in @why (exit 4) when a charset is unknown.
 */
int berth__iconv_open(struct berth_session *s, char *why, size_t cap);
/* Free what berth__iconv_open() and the list map made (any time). */
void berth__iconv_close(struct berth_session *s);

/*
 * A received name (@link false) or symlink target from the wire's UTF-8
 * into the local charset, strictly (net-in thread).  0 with *@out
 * (NUL-terminated, valid until the next call of the same kind) and
 * *@out_len; -EILSEQ, -EINVAL (incomplete) or -E2BIG for this entry (as
 * rsync: a name over 4095 bytes, a target over twice its wire length);
 * -ENOMEM.  Targets are passed through unless the peer converts them.
 */
int berth__iconv_name(struct berth_session *s, bool link, const char *in,
		      size_t len, const char **out, size_t *out_len);

/*
 * A message's text for the peer (local charset -> UTF-8; bytes that do
 * not convert are copied as they are), or for the local log with
 * @to_local (UTF-8 -> local; those bytes become "\#ooo").  Returns a
 * malloc'd buffer (NUL-terminated, *@out_len bytes), or NULL when there
 * is nothing to convert (--iconv off) or no memory: send @in as it is.
 * Any thread.
 */
char *berth__iconv_msg(struct berth_session *s, bool to_local, const char *in,
		       size_t len, size_t *out_len);

/*
 * The list has arrived (net-in, before the generator starts): keep the
 * map between the order it was sent in and its sorted order.  0, -ENOMEM,
 * or -BERTH_EPROTO for a second list (incremental recursion is off).
 */
int berth__iconv_map_list(struct berth_session *s,
			  const struct berth_flist *fl);
/* An index the peer sent (>= 0) as the session's (sorted) index. */
int32_t berth__ndx_from_wire(const struct berth_session *s, int32_t ndx);
/* The session's index of an entry as the peer numbers it. */
int32_t berth__ndx_to_wire(const struct berth_session *s, int32_t ndx);

#endif /* BERTH_SESSION_ICONV_H */
