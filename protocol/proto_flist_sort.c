/* SPDX-License-Identifier: MIT */
/*
 * File-list order, cleaning and name validation (§7.5, §7.7): receiver and
 * sender must number entries identically, so this follows the stock order
 * exactly.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "protocol/proto_int.h"

int berth_flist_check_name(const char *name, size_t len, size_t max)
{
	size_t i = 0, c;

	if (len == 0 || len > max || memchr(name, '\0', len))
		return -BERTH_EPATH;
	if (len == 1 && name[0] == '.')
		return 0;
	while (i < len) {
		c = i;
		while (i < len && name[i] != '/')
			i++;
		/* Empty (leading '/', "//", trailing '/'), "." or "..". */
		if (i == c)
			return -BERTH_EPATH;
		if (name[c] == '.' &&
		    (i - c == 1 || (i - c == 2 && name[c + 1] == '.')))
			return -BERTH_EPATH;
		if (i < len && ++i == len)
			return -BERTH_EPATH;
	}
	return 0;
}

int berth_flist_cmp(const char *a, bool a_dir, const char *b, bool b_dir)
{
	bool a_root = a[0] == '.' && !a[1], b_root = b[0] == '.' && !b[1];

	if (a_root || b_root)
		return b_root - a_root;
	for (;;) {
		const char *ae = a + strcspn(a, "/");
		const char *be = b + strcspn(b, "/");
		/* A component is a directory unless it is the last one of a
		 * non-directory entry. */
		int at = *ae || a_dir, bt = *be || b_dir;
		size_t al = (size_t)(ae - a), bl = (size_t)(be - b);
		size_t n = al < bl ? al : bl;
		int d;

		if (at != bt)
			return at - bt;
		d = memcmp(a, b, n);
		if (d)
			return d;
		if (al != bl) {
			/* Directories compare with a trailing '/'. */
			int ca = al > n ? (uint8_t)a[n] : (at ? '/' : 0);
			int cb = bl > n ? (uint8_t)b[n] : (bt ? '/' : 0);

			return ca - cb;
		}
		if (!*ae || !*be)
			return (*ae != 0) - (*be != 0);
		a = ae + 1;
		b = be + 1;
	}
}

static int cmp_sorted(const void *x, const void *y)
{
	const struct berth_file *a = x, *b = y;
	int d = berth_flist_cmp(a->name, S_ISDIR(a->mode), b->name,
				S_ISDIR(b->mode));

	if (d)
		return d;
	/* Stable: identical names keep their arrival order. */
	return (a->tx_pos > b->tx_pos) - (a->tx_pos < b->tx_pos);
}

/* Protocols < 29: whole names byte by byte, then arrival order. */
static int cmp_sorted_pre29(const void *x, const void *y)
{
	const struct berth_file *a = x, *b = y;
	int d = strcmp(a->name, b->name);

	if (d)
		return d;
	return (a->tx_pos > b->tx_pos) - (a->tx_pos < b->tx_pos);
}

/*
 * Name order of files[a] and files[b] (strcmp, then position): the order
 * the cleaning and the directory lookups use.  The lists of entry numbers
 * they sort take 4 bytes an entry, not a pointer and a number.
 */
static int cmp_ndx(const struct berth_file *files, uint32_t a, uint32_t b)
{
	int d = strcmp(files[a].name, files[b].name);

	if (d)
		return d;
	return (a > b) - (a < b);
}

static void sift_down(const struct berth_file *files, uint32_t *v, uint32_t at,
		      uint32_t n)
{
	for (;;) {
		uint32_t c = 2 * at + 1;
		uint32_t t;

		if (c >= n)
			return;
		if (c + 1 < n && cmp_ndx(files, v[c + 1], v[c]) > 0)
			c++;
		if (cmp_ndx(files, v[c], v[at]) <= 0)
			return;
		t = v[c];
		v[c] = v[at];
		v[at] = t;
		at = c;
	}
}

/* Heapsort of entry numbers by cmp_ndx (no context argument in qsort). */
static void sort_ndx(const struct berth_file *files, uint32_t *v, uint32_t n)
{
	uint32_t i, t;

	for (i = n / 2; i-- > 0;)
		sift_down(files, v, i, n);
	for (i = n; i-- > 1;) {
		t = v[0];
		v[0] = v[i];
		v[i] = t;
		sift_down(files, v, 0, i);
	}
}

/* Whether @dir (NUL-terminated) names a directory of @dirs (sorted). */
static bool dir_listed(const struct berth_file *files, const uint32_t *dirs,
		       uint32_t ndirs, const char *dir)
{
	uint32_t lo = 0, hi = ndirs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int d = strcmp(dir, files[dirs[mid]].name);

		if (d == 0)
			return true;
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

int berth__flist_finish(struct berth_flist *fl, const char *parent,
			int protocol, bool strip_root)
{
	int (*cmp)(const void *, const void *) = protocol < 29
							 ? cmp_sorted_pre29
							 : cmp_sorted;
	uint32_t n = fl->count, i, j, ndirs = 0;
	uint32_t *names = NULL; /* entry numbers */
	int r = 0;

	if (n == 0)
		return 0;
	if (parent) {
		/* A sub-list (§7.9): every name is PARENT/BASE.  Checked
		 * first; then sorting the bases alone is the same order
		 * (one component each) without walking the parent's. */
		size_t pl = strlen(parent);

		for (i = 0; i < n; i++) {
			const char *name = fl->files[i].name;

			if (fl->files[i].name_len <= pl + 1 ||
			    memcmp(name, parent, pl) != 0 || name[pl] != '/' ||
			    memchr(name + pl + 1, '/',
				   fl->files[i].name_len - pl - 1))
				return -BERTH_EPROTO;
			fl->files[i].name += pl + 1;
		}
		qsort(fl->files, n, sizeof(fl->files[0]), cmp);
		for (i = 0; i < n; i++)
			fl->files[i].name -= pl + 1;
	} else {
		qsort(fl->files, n, sizeof(fl->files[0]), cmp);
	}
	names = malloc(sizeof(*names) * n);
	if (!names) {
		r = -ENOMEM;
		goto out;
	}
	/* Cleaning: equal names keep one entry, a directory if any. */
	for (i = 0; i < n; i++)
		names[i] = i;
	sort_ndx(fl->files, names, n);
	for (i = 0; i < n; i = j) {
		uint32_t keep = names[i];

		for (j = i + 1; j < n && !strcmp(fl->files[names[j]].name,
						 fl->files[names[i]].name);
		     j++)
			;
		if (j == i + 1)
			continue;
		for (uint32_t k = i; k < j; k++)
			if (S_ISDIR(fl->files[names[k]].mode)) {
				keep = names[k];
				break;
			}
		for (uint32_t k = i; k < j; k++)
			if (names[k] != keep)
				fl->files[names[k]].flags |=
					BERTH_FILE_INACTIVE;
	}
	/* -R: sorted (and cleaned) with the leading '/' of an absolute
	 * source, as the sender sorted them; then relative to DEST. */
	if (strip_root) {
		for (i = 0; i < n; i++) {
			struct berth_file *f = &fl->files[i];

			while (f->name[0] == '/') {
				f->name++;
				f->name_len--;
			}
		}
	}
	/* Directory parts: the directories, in name order, reuse the
	 * front of names[]. */
	for (i = 0; i < n; i++)
		if (S_ISDIR(fl->files[i].mode))
			names[ndirs++] = i;
	sort_ndx(fl->files, names, ndirs);
	for (i = 0; i < n; i++) {
		const char *name = fl->files[i].name;
		const char *slash = strrchr(name, '/');
		char tmp[4096];
		size_t dl;

		if (parent) {
			dl = slash ? (size_t)(slash - name) : 0;
			if (strlen(parent) != dl || memcmp(parent, name, dl)) {
				r = -BERTH_EPROTO;
				goto out;
			}
			continue;
		}
		if (!slash)
			continue;
		dl = (size_t)(slash - name);
		if (dl >= sizeof(tmp)) {
			r = -BERTH_EPATH;
			goto out;
		}
		memcpy(tmp, name, dl);
		tmp[dl] = '\0';
		if (!dir_listed(fl->files, names, ndirs, tmp)) {
			r = -BERTH_EPROTO;
			goto out;
		}
	}
	/* Same-list hard-link references: transmission -> sorted ndx
	 * (names[] now maps a transmission position to its entry). */
	for (i = 0; i < n; i++)
		if (fl->files[i].xflags & BERTH_XMIT_HLINKED)
			break;
	if (i == n)
		goto out;
	for (i = 0; i < n; i++)
		names[fl->files[i].tx_pos] = i;
	for (i = 0; i < n; i++) {
		struct berth_file *f = &fl->files[i];

		if (!(f->xflags & BERTH_XMIT_HLINKED) || f->hlink_ndx < 0)
			continue;
		if (f->xflags & BERTH_XMIT_HLINK_FIRST)
			f->hlink_ndx = fl->ndx_start + (int32_t)i;
		else if (f->hlink_ndx >= fl->ndx_start)
			f->hlink_ndx =
				fl->ndx_start +
				(int32_t)names[f->hlink_ndx - fl->ndx_start];
	}
out:
	free(names);
	return r;
}
