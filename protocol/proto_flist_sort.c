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

/* How sort_ndx() orders entry numbers. */
enum { BY_LIST, BY_LIST_PRE29, BY_NAME };

/*
 * The order of files[a] and files[b]: list order (§7.7; below protocol 29
 * whole names byte by byte), or plain name order for the cleaning and the
 * directory lookups; then the entry number, so equal names keep their
 * arrival order.
 */
static int cmp_ndx(const struct berth_file *files, int how, uint32_t a,
		   uint32_t b)
{
	const struct berth_file *x = &files[a], *y = &files[b];
	char xbuf[BERTH_PATH_BUF], ybuf[BERTH_PATH_BUF];
	const char *xn = x->base, *yn = y->base;
	int d;

	/* In one directory (one record of it: proto_flist_arena.c) the
	 * bases alone give the order of the paths, in all three orders. */
	if (x->ext->dir != y->ext->dir) {
		xn = berth_file_path(x, xbuf);
		yn = berth_file_path(y, ybuf);
	}
	d = how == BY_LIST ? berth_flist_cmp(xn, S_ISDIR(x->mode), yn,
					     S_ISDIR(y->mode))
			   : strcmp(xn, yn);
	if (d)
		return d;
	return (a > b) - (a < b);
}

/* Whether two entries have the same path. */
static bool same_path(const struct berth_file *x, const struct berth_file *y)
{
	return x->ext->dir_len == y->ext->dir_len &&
	       !memcmp(x->ext->dir, y->ext->dir, x->ext->dir_len) &&
	       !strcmp(x->base, y->base);
}

/*
 * Sort @n entry numbers (4 bytes each, where sorting the 56-byte entries
 * themselves took a buffer of 16 bytes an entry): bottom-up merge sort
 * through @tmp (n numbers).
 */
static void sort_ndx(const struct berth_file *files, int how, uint32_t *v,
		     uint32_t *tmp, uint32_t n)
{
	uint32_t *src = v, *dst = tmp, *t;

	for (uint32_t w = 1; w < n; w *= 2) {
		for (uint32_t lo = 0; lo < n; lo += 2 * w) {
			uint32_t mid = lo + w < n ? lo + w : n;
			uint32_t hi = mid + w < n ? mid + w : n;
			uint32_t i = lo, j = mid, k = lo;

			while (i < mid && j < hi)
				dst[k++] = cmp_ndx(files, how, src[j], src[i]) <
							   0
						   ? src[j++]
						   : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, sizeof(*v) * n);
}

/* files[k] = the old files[ord[k]] for all k, in place (ord unchanged);
 * the same for @hl when not NULL. */
static int permute(struct berth_file *files, int32_t *hl, const uint32_t *ord,
		   uint32_t n)
{
	uint8_t *done = calloc(n / 8 + 1, 1);

	if (!done)
		return -ENOMEM;
	for (uint32_t k = 0; k < n; k++) {
		struct berth_file first;
		int32_t first_hl;
		uint32_t j = k;

		if (done[k / 8] & (1u << (k % 8)))
			continue;
		first = files[k];
		first_hl = hl ? hl[k] : -1;
		for (;;) {
			uint32_t from = ord[j];

			done[j / 8] |= (uint8_t)(1u << (j % 8));
			if (from == k) {
				files[j] = first;
				if (hl)
					hl[j] = first_hl;
				break;
			}
			files[j] = files[from];
			if (hl)
				hl[j] = hl[from];
			j = from;
		}
	}
	free(done);
	return 0;
}

/* Whether @dir (NUL-terminated) names a directory of @dirs (sorted). */
static bool dir_listed(const struct berth_file *files, const uint32_t *dirs,
		       uint32_t ndirs, const char *dir)
{
	uint32_t lo = 0, hi = ndirs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		char buf[BERTH_PATH_BUF];
		int d = strcmp(dir, berth_file_path(&files[dirs[mid]], buf));

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
			int protocol, bool strip_root, bool keep_tx)
{
	int how = protocol < 29 ? BY_LIST_PRE29 : BY_LIST;
	uint32_t n = fl->count, i, j, ndirs = 0;
	uint32_t *ord = NULL; /* sorted position -> transmission position */
	uint32_t *names = NULL, *tmp = NULL; /* entry numbers */
	bool hlinks;
	int r = 0;

	if (n == 0)
		return 0;
	ord = malloc(sizeof(*ord) * n);
	tmp = malloc(sizeof(*tmp) * n);
	if (!ord || !tmp) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		ord[i] = i;
	if (parent) {
		/* A sub-list (§7.9): every name is PARENT/BASE, so one
		 * directory part, and the sort compares bases alone. */
		size_t pl = strlen(parent);

		for (i = 0; i < n; i++) {
			const struct berth_file_ext *x = fl->files[i].ext;

			if (x->dir_len != pl + 1 || !fl->files[i].base[0] ||
			    memcmp(x->dir, parent, pl) != 0 ||
			    x->dir[pl] != '/') {
				r = -BERTH_EPROTO;
				goto out;
			}
		}
	}
	sort_ndx(fl->files, how, ord, tmp, n);
	r = permute(fl->files, fl->hlink, ord, n);
	if (r < 0)
		goto out;
	names = tmp;
	for (i = 0; i < n; i++)
		names[i] = i;
	/* The transmission order is needed again only for hard links and
	 * tx_of; else its array is the next sorts' buffer (a large list's
	 * peak is here). */
	hlinks = fl->hlink != NULL;
	if (hlinks || keep_tx) {
		tmp = malloc(sizeof(*tmp) * n);
		if (!tmp) {
			r = -ENOMEM;
			goto out;
		}
	} else {
		tmp = ord;
		ord = NULL;
	}
	/* Cleaning: equal names keep one entry, a directory if any. */
	sort_ndx(fl->files, BY_NAME, names, tmp, n);
	for (i = 0; i < n; i = j) {
		uint32_t keep = names[i];

		for (j = i + 1; j < n && same_path(&fl->files[names[j]],
						   &fl->files[names[i]]);
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
	 * source, as the sender sorted them; then relative to DEST.  The
	 * '/'s are in the directory parts (a base has none), whose records
	 * are shared: stripping one twice strips nothing more. */
	for (i = 0; strip_root && i < n; i++) {
		/* In the list's blocks, so writable (the shared
		 * berth_file_ext_none's "" is never written). */
		struct berth_file_ext *x =
			(struct berth_file_ext *)(uintptr_t)fl->files[i].ext;

		while (x->dir[0] == '/') {
			x->dir++;
			x->dir_len--;
		}
	}
	/* Directory parts (all PARENT/ in a sub-list, checked above): each
	 * a listed directory.  The directories, in name order, reuse the
	 * front of names[]. */
	for (i = 0; i < n && !parent; i++)
		if (S_ISDIR(fl->files[i].mode))
			names[ndirs++] = i;
	sort_ndx(fl->files, BY_NAME, names, tmp, ndirs);
	for (i = 0; i < n && !parent; i++) {
		const struct berth_file_ext *x = fl->files[i].ext;
		char dir[BERTH_PATH_BUF];

		if (x->dir_len == 0 ||
		    (i > 0 && fl->files[i - 1].ext->dir == x->dir))
			continue;
		memcpy(dir, x->dir, x->dir_len - 1);
		dir[x->dir_len - 1] = '\0';
		if (!dir_listed(fl->files, names, ndirs, dir)) {
			r = -BERTH_EPROTO;
			goto out;
		}
	}
	/* Same-list hard-link references: transmission -> sorted ndx
	 * (names[] now maps a transmission position to its entry). */
	if (!hlinks)
		goto out;
	for (i = 0; i < n; i++)
		names[ord[i]] = i;
	for (i = 0; i < n; i++) {
		int32_t *h = &fl->hlink[i];

		if (!(fl->files[i].flags & BERTH_FILE_HLINKED) || *h < 0)
			continue;
		if (fl->files[i].flags & BERTH_FILE_HLINK_FIRST)
			*h = fl->ndx_start + (int32_t)i;
		else if (*h >= fl->ndx_start)
			*h = fl->ndx_start + (int32_t)names[*h - fl->ndx_start];
	}
out:
	if (r == 0 && keep_tx) {
		fl->tx_of = ord;
		ord = NULL;
	}
	free(ord);
	free(names);
	free(tmp);
	return r;
}
