/* SPDX-License-Identifier: MIT */
/*
 * Reading a file list from the stream into the session: the initial one,
 * and with incremental recursion each directory's list as its NDX_FLIST
 * index arrives (rsync-protocol.md §7).  With --iconv the decoder gets
 * the names converted (session_iconv.c), checks and sorts those.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session/session.h"

/*
 * The decoder's conversion hook (--iconv; a daemon's munged symlinks).
 * An entry whose name or link target does not convert is reported as
 * rsync's receiver reports it (the name as received, in UTF-8; the target
 * with the converted name), counts as a general I/O error (exit 23, no
 * deletions) and is dropped.
 */
static int conv_entry(void *arg, int what, const char *name, const char *in,
		      size_t len, const char **out, size_t *out_len)
{
	struct berth_session *s = arg;
	bool link = what == BERTH_FLIST_CONV_LINK;
	int ret = s->ic.on ? berth__iconv_name(s, link, in, len, out, out_len)
			   : 0;

	if (ret == 0 && (!s->ic.on || (link && berth__dmn_converts(s))))
		ret = berth__dmn_conv(s, link, s->ic.on ? *out : in,
				      s->ic.on ? *out_len : len, out, out_len);
	if (ret != -EILSEQ && ret != -EINVAL && ret != -E2BIG)
		return ret;
	atomic_fetch_or(&s->rep.io_error, 1);
	if (link)
		berth__session_file_error(s,
					  "[Receiver] cannot convert symlink "
					  "data for: \"%s\" (%s)\n",
					  name, berth_strerror(ret));
	else
		berth__session_file_error_utf8(s,
					       "[Receiver] cannot convert "
					       "filename: %.*s (%s)\n",
					       (int)len, in,
					       berth_strerror(ret));
	return 1;
}

int berth__read_flist(struct berth_session *s, int32_t dir_k)
{
	struct berth_flist *fl;
	int ret;

	ret = berth_flist_dec_begin(s->lst.fdec, dir_k);
	/* Under names_lock: the decoder's id names grow with the lists
	 * while other threads map ids (map_id); reading input is outside
	 * it. */
	while (ret == 0) {
		struct berth_proto_in v = berth__in_view(&s->in);

		pthread_mutex_lock(&s->lst.names_lock);
		ret = berth_flist_decode(s->lst.fdec, &v);
		pthread_mutex_unlock(&s->lst.names_lock);
		berth__in_consumed(&s->in, v.pos);
		if (ret == BERTH_PROTO_MORE)
			ret = berth__in_more(&s->in);
		else if (ret == BERTH_PROTO_DONE)
			break;
	}
	if (ret < 0)
		return ret;
	fl = berth_flist_dec_take(s->lst.fdec);
	if (!fl)
		return -ENOMEM;
	ret = berth__iconv_map_list(s, fl);
	berth__dmn_list(s, fl);
	if (ret < 0) {
		berth_flist_free(fl);
		return ret;
	}
	if (s->cfg.sopts.max_file_size) {
		for (uint32_t i = 0; i < fl->count; i++)
			if (S_ISREG(fl->files[i].mode) &&
			    (uint64_t)fl->files[i].size >
				    s->cfg.sopts.max_file_size) {
				berth_flist_free(fl);
				return -BERTH_ELIMIT;
			}
	}
	return berth__lists_add(s, fl);
}

int berth__read_initial_flist(struct berth_session *s)
{
	struct berth_flist_config cfg;
	int ret;

	s->lst.inc = s->neg.hs.compat & BERTH_CF_INC_RECURSE;
	berth_flist_config_init(&cfg, &s->opts, &s->neg.hs);
	if (s->cfg.sopts.max_files)
		cfg.max_files = s->cfg.sopts.max_files;
	if (s->ic.on || berth__dmn_converts(s)) {
		cfg.conv = conv_entry;
		cfg.conv_arg = s;
	}
	ret = berth_flist_dec_create(&s->lst.fdec, &cfg);
	if (ret == 0)
		ret = berth__read_flist(s, -1);
	if (ret == 0 && !s->lst.inc)
		berth__lists_eof(s);
	if (ret == 0 && s->opts.prune_empty_dirs && !s->lst.inc)
		ret = berth__prune_empty_dirs(s, berth__first_list(s));
	return ret;
}

/* The initial list (before the generator starts). */
struct berth_flist *berth__first_list(struct berth_session *s)
{
	return s->lst.lists[s->lst.lists_first]->fl;
}
