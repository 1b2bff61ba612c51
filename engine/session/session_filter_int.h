/* SPDX-License-Identifier: MIT */
/*
 * Inside the receiver's filter rules: a rule as held, rsync's matching of
 * a name against it, and the text of one rule of a merge file
 * (session_filter_rule.c).  Pure functions; for session_filter.c only.
 */
#ifndef BERTH_SESSION_FILTER_INT_H
#define BERTH_SESSION_FILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	SF_INCLUDE = 1u << 0,
	SF_DIR = 1u << 1, /* trailing "/": directories only */
	SF_ANCHORED = 1u << 2, /* matched from the root */
	SF_ABS = 1u << 3, /* the "/" modifier */
	SF_NEGATE = 1u << 4,
	SF_XATTR = 1u << 5,
	SF_PERISH = 1u << 6,
	SF_SENDER = 1u << 7,
	SF_RECEIVER = 1u << 8,
	SF_MERGE = 1u << 9, /* ".": read now */
	SF_DIRMERGE = 1u << 10, /* ":": per directory */
	SF_NO_INHERIT = 1u << 11,
	SF_WORDS = 1u << 12,
	SF_NO_PREFIX = 1u << 13,
	SF_EXCL_SELF = 1u << 14,
	SF_CVS = 1u << 15,
	SF_CLEAR = 1u << 16,
	SF_WILD = 1u << 17,
	SF_WILD2 = 1u << 18, /* holds "**" */
	SF_WILD2_PREFIX = 1u << 19, /* starts with "**" */
	SF_WILD3_SUFFIX = 1u << 20, /* ends with "***" */
};

/* What a merge file's rules take from the rule that names the file. */
#define SF_FROM_CONTAINER                                                   \
	(SF_ABS | SF_INCLUDE | SF_DIR | SF_NEGATE | SF_PERISH | SF_SENDER | \
	 SF_RECEIVER)
#define SF_SIDES (SF_SENDER | SF_RECEIVER)

struct sf_rule {
	uint32_t flags;
	uint32_t slash_cnt;
	uint32_t merge; /* SF_DIRMERGE: index into merges */
	char *pat; /* anchored: without the leading "/" */
};

/*
 * Does @r match @name (a path relative to the root, or with @is_xattr an
 * xattr name)?  A negated rule matches what its pattern does not.
 */
bool berth__sf_rule_hit(const struct sf_rule *r, const char *name, bool is_dir,
			bool is_xattr);

/*
 * @r->pat (set, NUL-terminated) classified as rsync classifies a pattern:
 * r->slash_cnt (its slashes, one more when @flags has SF_ANCHORED) and the
 * wildcard bits (SF_WILD, SF_WILD2, SF_WILD2_PREFIX, SF_WILD3_SUFFIX)
 * added to @flags, which is returned.
 */
uint32_t berth__sf_classify(struct sf_rule *r, uint32_t flags);

/*
 * One rule of a merge file at *@sp (advanced past it), with the defaults
 * of @tmpl (the naming rule's flags): *@flags and the pattern (@pat,
 * @len bytes, not terminated).  1: a rule; 0: nothing left; -1: a syntax
 * error (*@why: rsync's words for it).
 */
int berth__sf_parse_rule(const char **sp, uint32_t tmpl, uint32_t *flags,
			 const char **pat, size_t *len, const char **why);

#endif /* BERTH_SESSION_FILTER_INT_H */
