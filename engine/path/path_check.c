/* SPDX-License-Identifier: MIT */
/*
 * Name checks for every path from the peer (path.h).  A name that passes
 * has no "." or ".." component and is relative, so used beneath a root fd
 * with berth_plat_open_beneath() or *at() calls it names something inside
 * that root.
 */
#include <limits.h>
#include <string.h>

#include "berth.h"
#include "engine/path/path.h"
#include "engine/platform/platform_types.h" /* BERTH_PATH_MAX */

int berth_path_check(const char *relpath)
{
	const char *p = relpath, *e;
	size_t n;

	if (!p || !*p || *p == '/' || strlen(p) >= BERTH_PATH_MAX)
		return -BERTH_EPATH;
	for (;;) {
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || n > NAME_MAX)
			return -BERTH_EPATH;
		if (p[0] == '.' && (n == 1 || (n == 2 && p[1] == '.')))
			return -BERTH_EPATH;
		if (!e)
			return 0;
		p = e + 1;
	}
}

int berth_path_split(const char *relpath, size_t *dirlen, const char **base)
{
	const char *slash;
	int r = berth_path_check(relpath);

	if (r)
		return r;
	slash = strrchr(relpath, '/');
	*dirlen = slash ? (size_t)(slash - relpath) : 0;
	*base = slash ? slash + 1 : relpath;
	return 0;
}

int berth_path_overlap(const char *a, size_t alen, const char *b, size_t blen)
{
	const char *t;
	size_t tn;

	if (alen > blen) {
		t = a;
		a = b;
		b = t;
		tn = alen;
		alen = blen;
		blen = tn;
	}
	if (alen == 0)
		return 1;
	if (memcmp(a, b, alen))
		return 0;
	return alen == blen || b[alen] == '/';
}
