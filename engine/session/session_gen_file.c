/* SPDX-License-Identifier: MIT */
/*
 * The generator's decision for a regular file: the quick check (size and
 * mtime, -c, -I, --size-only, -u), --append, a partial file as basis, the
 * alt-dest dirs; then a request, a local change or nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_xattr.h"
#include "engine/session/session_gen_int.h"

/*
 * --partial-dir: a partial file from an earlier attempt (cut short, or
 * kept after a failed verification) is the basis, not with alt-dest dirs
 * or --append.  Its path goes to @ppath.
 */
bool berth__gen_partial_basis(struct berth_session *s,
			      const struct berth_file *f, char *ppath,
			      size_t cap)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);

	return s->dest.pdir && !s->dest.nalt && !s->opts.append &&
	       berth__partial_path(s, fname, ppath, cap) == 0 &&
	       berth__partial_exists(s, ppath);
}

/*
 * --append: the destination's @have bytes stay; the record carries the sum
 * head for them but no block sums, and only the tail will come (§8.5.1).
 */
static int request_append(struct berth_session *s, int32_t ndx, uint32_t iflags,
			  uint64_t have)
{
	uint8_t wire[BERTH_SUM_HEAD_WIRE];
	struct berth_sum_head head;
	struct file_side *side;
	int ret;

	ret = berth_sum_head_init(&head, have, s->neg.proto, s->neg.cp.type,
				  (uint32_t)s->opts.block_size, 0);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&s->sync.lock);
	side = berth__fst_side(s, ndx, true);
	if (!side) {
		pthread_mutex_unlock(&s->sync.lock);
		return -ENOMEM;
	}
	side->append_from = have;
	berth__fst_requested(s, ndx);
	s->lst.fst[ndx].attempts++;
	s->lst.fst[ndx].had_basis = 1;
	s->lst.fst[ndx].iflags = (uint16_t)iflags;
	s->lst.fst[ndx].basis_type = -1;
	s->lst.fst[ndx].appended = 1;
	pthread_mutex_unlock(&s->sync.lock);
	ret = berth__gen_put_record(s, ndx, iflags);
	if (ret < 0 || s->opts.dry_run)
		return ret;
	berth_sum_head_encode(&head, wire);
	return berth__out_data(&s->out, wire, sizeof(wire));
}

int berth__gen_file(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	char ppath[PATH_MAX];
	struct stat st;
	uint32_t iflags;
	bool same, have_partial;
	int ret;

	/* --max-size / --min-size: not transferred (rsync says so at -vv). */
	if ((s->opts.max_size >= 0 && f->size > s->opts.max_size) ||
	    (s->opts.min_size >= 0 && f->size < s->opts.min_size))
		return 0;

	ret = berth__gen_lookup(g, f, &st);
	if (ret == BERTH_GEN_SKIP)
		return 0;
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0 && S_ISDIR(st.st_mode)) {
		ret = berth__gen_clear_dir_for(g, f, "regular file");
		if (ret != 0)
			return ret < 0 ? ret : 0;
		ret = -ENOENT; /* replaced: it counts as new */
	} else if (ret == 0 && !S_ISREG(st.st_mode)) {
		ret = -ENOENT; /* the commit's rename replaces it */
	}
	have_partial = berth__gen_partial_basis(s, f, ppath, sizeof(ppath));
	if (ret == -ENOENT) {
		berth__gen_set_exists(s, ndx, false, 0);
		if (have_partial)
			return berth__gen_request_file_at(
				g, ndx, BERTH_ITEM_TRANSFER | BERTH_ITEM_IS_NEW,
				s->dest.root_fd, ppath, BASIS_PARTIAL, false);
		if (s->dest.nalt)
			return berth__gen_file_alt(g, ndx, f);
		return berth__gen_request_file(
			g, ndx,
			BERTH_ITEM_TRANSFER | BERTH_ITEM_IS_NEW |
				berth__xa_gen_itemize(s, f, -1, NULL),
			-1, -1, false);
	}
	berth__gen_set_exists(s, ndx, true, st.st_mode);
	if (s->opts.update && st.st_mtim.tv_sec > f->mtime)
		return 0;

	/* Quick check (§8.2.1). */
	same = st.st_size == f->size;
	if (same && !s->opts.size_only) {
		if (s->opts.ignore_times)
			same = false;
		else if (!s->opts.checksum)
			same = !berth__gen_mtime_differs(s, f, &st);
	}
	if (same && s->opts.checksum)
		same = berth__gen_checksum_matches(s, s->dest.root_fd, f);

	if (same) {
		if (have_partial && !s->opts.dry_run)
			berth__drop_partial(s, ppath); /* not needed now */
		return berth__gen_keep_item(
			s, ndx, f, &st,
			berth__gen_itemize(s, f, &st, 0) |
				berth__xa_gen_itemize(s, f, s->dest.root_fd,
						      fname));
	}
	iflags = berth__gen_itemize(s, f, &st, BERTH_ITEM_TRANSFER) |
		 berth__xa_gen_itemize(s, f, s->dest.root_fd, fname);
	if (s->opts.checksum)
		iflags |= BERTH_ITEM_REPORT_CHANGE;
	if (s->opts.append) {
		/* Only a destination shorter than the source grows. */
		if (st.st_size >= f->size)
			return 0;
		return request_append(s, ndx, iflags, (uint64_t)st.st_size);
	}
	if (have_partial)
		return berth__gen_request_file_at(g, ndx, iflags,
						  s->dest.root_fd, ppath,
						  BASIS_PARTIAL, false);
	return berth__gen_request_file(g, ndx, iflags, s->dest.root_fd, -1,
				       false);
}
