/* SPDX-License-Identifier: MIT */
/*
 * Mode changes in rsync's --chmod syntax, as a daemon module's
 * "incoming chmod" gives them: a comma-separated list of items, each an
 * optional "D" (directories only) or "F" (everything else), then either
 * an octal mode or a symbolic one ([ugoa]* then "+", "-" or "=" then
 * [rwxXst]*).  Parsed once into AND/OR masks; applied in order.
 * Pure functions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/commit/commit.h"

/* The mode bits as rsync's --chmod names them (the wire's values, also
 * where the system has no such bits: Windows). */
#ifndef S_ISUID
#define S_ISUID 04000
#endif
#ifndef S_ISGID
#define S_ISGID 02000
#endif
#ifndef S_ISVTX
#define S_ISVTX 01000
#endif

#define PERM_BITS 07777u
#define CHMOD_MAX_ITEMS 64

enum { ONLY_DIRS = 1, ONLY_FILES = 2, KEEP_NOX = 4 };

struct chmod_item {
	uint32_t and_mask, or_mask;
	uint8_t flags;
};

struct berth_chmod {
	size_t n;
	struct chmod_item item[];
};

/* One item of @s (up to @end) into @it; -EINVAL if it is not one. */
static int parse_item(const char *s, const char *end, uint32_t umask_bits,
		      struct chmod_item *it)
{
	uint32_t who = 0, high_who = 0, perm = 0, high = 0, octal = 0;
	char op = 0;

	memset(it, 0, sizeof(*it));
	for (; s < end && !op; s++) {
		switch (*s) {
		case 'D':
		case 'F':
			it->flags |= *s == 'D' ? ONLY_DIRS : ONLY_FILES;
			if ((it->flags & ONLY_DIRS) && (it->flags & ONLY_FILES))
				return -EINVAL;
			break;
		case 'u':
			who |= 0100;
			high_who |= S_ISUID;
			break;
		case 'g':
			who |= 0010;
			high_who |= S_ISGID;
			break;
		case 'o':
			who |= 0001;
			break;
		case 'a':
			who |= 0111;
			break;
		case '+':
		case '-':
		case '=':
			op = *s;
			break;
		default:
			/* An octal mode, after D or F at most. */
			if (*s < '0' || *s > '7' || who)
				return -EINVAL;
			for (; s < end; s++) {
				if (*s < '0' || *s > '7')
					return -EINVAL;
				octal = octal * 8 + (uint32_t)(*s - '0');
				if (octal > PERM_BITS)
					return -EINVAL;
			}
			it->and_mask = 0;
			it->or_mask = octal;
			return 0;
		}
	}
	if (!op)
		return -EINVAL;
	for (; s < end; s++) {
		switch (*s) {
		case 'r':
			perm |= 4;
			break;
		case 'w':
			perm |= 2;
			break;
		case 'X':
			it->flags |= KEEP_NOX;
			perm |= 1;
			break;
		case 'x':
			perm |= 1;
			break;
		case 's':
			high |= high_who ? high_who : S_ISUID;
			break;
		case 't':
			high |= S_ISVTX;
			break;
		default:
			return -EINVAL;
		}
	}
	/* No "who": everyone, less what the umask withholds (as chmod). */
	if (!who) {
		who = 0111;
		perm = (who * perm) & ~umask_bits;
	} else {
		perm = who * perm;
	}
	switch (op) {
	case '+':
		it->and_mask = PERM_BITS;
		it->or_mask = perm | high;
		break;
	case '-':
		it->and_mask = PERM_BITS & ~(perm | high);
		it->or_mask = 0;
		break;
	default: /* '=': the named classes' bits replaced */
		it->and_mask = PERM_BITS & ~(who * 7) & ~(high ? high_who : 0);
		it->or_mask = perm | high;
		break;
	}
	return 0;
}

int berth_chmod_parse(const char *spec, uint32_t umask_bits,
		      struct berth_chmod **out)
{
	struct berth_chmod *c;
	const char *p = spec, *e;
	size_t n = 1;
	int ret;

	*out = NULL;
	for (const char *q = spec; *q; q++)
		n += *q == ',';
	if (n > CHMOD_MAX_ITEMS)
		return -EINVAL;
	c = calloc(1, sizeof(*c) + n * sizeof(c->item[0]));
	if (!c)
		return -ENOMEM;
	for (;;) {
		e = p + strcspn(p, ",");
		ret = parse_item(p, e, umask_bits & 0777, &c->item[c->n]);
		if (ret < 0) {
			free(c);
			return ret;
		}
		c->n++;
		if (!*e)
			break;
		p = e + 1;
	}
	*out = c;
	return 0;
}

uint32_t berth_chmod_apply(const struct berth_chmod *c, uint32_t mode)
{
	uint32_t type = mode & ~PERM_BITS;
	bool had_x = mode & 0111, dir = S_ISDIR(type);

	for (size_t i = 0; c && i < c->n; i++) {
		const struct chmod_item *it = &c->item[i];

		if (((it->flags & ONLY_DIRS) && !dir) ||
		    ((it->flags & ONLY_FILES) && dir))
			continue;
		mode &= it->and_mask;
		/* "X": execute only where some execute bit was set before
		 * (or on a directory). */
		if ((it->flags & KEEP_NOX) && !had_x && !dir)
			mode |= it->or_mask & ~0111u;
		else
			mode |= it->or_mask;
	}
	return (mode & PERM_BITS) | type;
}

void berth_chmod_free(struct berth_chmod *c)
{
	free(c);
}
