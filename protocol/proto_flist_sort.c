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

struct by_name {
	const char *name;
	uint32_t i;
};

static int cmp_by_name(const void *x, const void *y)
{
	const struct by_name *a = x, *b = y;
	int d = strcmp(a->name, b->name);

	if (d)
		return d;
	return (a->i > b->i) - (a->i < b->i);
}

static int cmp_dir_key(const void *key, const void *y)
{
	const struct by_name *k = key, *b = y;

	return strcmp(k->name, b->name);
}

int berth__flist_finish(struct berth_flist *fl, const char *parent,
			int protocol, bool strip_root)
{
	int (*cmp)(const void *, const void *) = protocol < 29
							 ? cmp_sorted_pre29
							 : cmp_sorted;
	uint32_t n = fl->count, i, j, ndirs = 0;
	struct by_name *names = NULL, *dirs = NULL;
	int32_t *pos_of_tx = NULL;
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
	dirs = malloc(sizeof(*dirs) * n);
	pos_of_tx = malloc(sizeof(*pos_of_tx) * n);
	if (!names || !dirs || !pos_of_tx) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		names[i].name = fl->files[i].name;
		names[i].i = i;
		pos_of_tx[fl->files[i].tx_pos] = (int32_t)i;
		if (S_ISDIR(fl->files[i].mode))
			dirs[ndirs++] = names[i];
	}
	/* Cleaning: equal names keep one entry, a directory if any. */
	qsort(names, n, sizeof(*names), cmp_by_name);
	for (i = 0; i < n; i = j) {
		uint32_t keep = names[i].i;

		for (j = i + 1; j < n && !strcmp(names[j].name, names[i].name);
		     j++)
			;
		if (j == i + 1)
			continue;
		for (uint32_t k = i; k < j; k++)
			if (S_ISDIR(fl->files[names[k].i].mode)) {
				keep = names[k].i;
				break;
			}
		for (uint32_t k = i; k < j; k++)
			if (names[k].i != keep)
				fl->files[names[k].i].flags |=
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
		for (i = ndirs = 0; i < n; i++)
			if (S_ISDIR(fl->files[i].mode)) {
				dirs[ndirs].name = fl->files[i].name;
				dirs[ndirs++].i = i;
			}
	}
	/* Directory parts. */
	qsort(dirs, ndirs, sizeof(*dirs), cmp_by_name);
	for (i = 0; i < n; i++) {
		const char *name = fl->files[i].name;
		const char *slash = strrchr(name, '/');
		char tmp[4096];
		struct by_name key;
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
		key.name = tmp;
		if (!bsearch(&key, dirs, ndirs, sizeof(*dirs), cmp_dir_key)) {
			r = -BERTH_EPROTO;
			goto out;
		}
	}
	/* Same-list hard-link references: transmission -> sorted ndx. */
	for (i = 0; i < n; i++) {
		struct berth_file *f = &fl->files[i];

		if (!(f->xflags & BERTH_XMIT_HLINKED) || f->hlink_ndx < 0)
			continue;
		if (f->xflags & BERTH_XMIT_HLINK_FIRST)
			f->hlink_ndx = fl->ndx_start + (int32_t)i;
		else if (f->hlink_ndx >= fl->ndx_start)
			f->hlink_ndx = fl->ndx_start +
				       pos_of_tx[f->hlink_ndx - fl->ndx_start];
	}
out:
	free(names);
	free(dirs);
	free(pos_of_tx);
	return r;
}
