/* SPDX-License-Identifier: MIT */
/*
 * The daemon's policy inside a session (session_daemon.h): incoming
 * chmod on the modes read and the modes left, the daemon's filter list
 * (what a client may not send, and deletion may not touch), munged
 * symlink targets, numeric ids.  A session without berth_opts.dpolicy
 * (every agent, berth --server) sees none of it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/session/session.h"
#include "engine/session/session_daemon.h"
#include "engine/session/session_filter_int.h"

#define DFILTER_MAX_RULES 10000u

struct berth_dfilter {
	struct sf_rule *v;
	uint32_t n, cap;
};

/* ------------------------------------------------------------ rules */

static void rules_clear(struct berth_dfilter *f)
{
	for (uint32_t i = 0; i < f->n; i++)
		free(f->v[i].pat);
	f->n = 0;
}

/* One rule as rsync's daemon holds it: a "/" anywhere makes it match the
 * path from the module's top; an exclude of "DIR/" becomes "DIR/" "***"
 * (the directory and everything beneath it). */
static int rule_add(struct berth_dfilter *f, const char *pat, size_t len,
		    uint32_t flags, char *why, size_t why_len)
{
	struct sf_rule *r;
	bool slash = memchr(pat, '/', len) != NULL;
	size_t extra = 0;
	char *p;

	if (flags & SF_CLEAR) {
		rules_clear(f);
		return 0;
	}
	if ((flags & (SF_MERGE | SF_DIRMERGE | SF_CVS | SF_XATTR))) {
		snprintf(why, why_len,
			 "berth's daemon takes no merge, dir-merge, -C or "
			 "xattr rules in its filter (\"%.*s\")",
			 (int)(len > 64 ? 64 : len), pat);
		return -EINVAL;
	}
	if ((flags & SF_SIDES) == SF_SENDER)
		return 0; /* the sending side's: not a receiver's concern */
	if (len >= PATH_MAX) {
		snprintf(why, why_len, "a filter pattern over %d bytes",
			 PATH_MAX);
		return -EINVAL;
	}
	if (f->n >= DFILTER_MAX_RULES) {
		snprintf(why, why_len, "more than %u filter rules",
			 DFILTER_MAX_RULES);
		return -EINVAL;
	}
	if (len > 1 && pat[len - 1] == '/') {
		if (flags & SF_INCLUDE) {
			len--;
			flags |= SF_DIR;
		} else {
			extra = 3;
		}
	}
	if (f->n == f->cap) {
		uint32_t cap = f->cap ? 2 * f->cap : 8;

		r = realloc(f->v, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		f->v = r;
		f->cap = cap;
	}
	if (len && pat[0] == '/') {
		flags |= SF_ANCHORED;
		pat++;
		len--;
	}
	p = malloc(len + extra + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, pat, len);
	memcpy(p + len, "***", extra);
	p[len + extra] = '\0';
	r = &f->v[f->n];
	memset(r, 0, sizeof(*r));
	r->pat = p;
	flags = berth__sf_classify(r, flags);
	/* SF_ABS here: matched against the path from the module's top. */
	r->flags = (flags & ~SF_ABS) | (slash ? SF_ABS : 0);
	f->n++;
	return 0;
}

/* "include"/"exclude" words and the lines of their files: a pattern,
 * after an optional "+ " or "- "; "!" alone clears the list. */
static int add_plain(struct berth_dfilter *f, const char *s, size_t len,
		     uint32_t dflt, char *why, size_t why_len)
{
	uint32_t flags = dflt;

	if (len >= 2 && (s[0] == '+' || s[0] == '-') && s[1] == ' ') {
		flags = s[0] == '+' ? SF_INCLUDE : 0;
		s += 2;
		len -= 2;
	} else if (len == 1 && s[0] == '!') {
		flags |= SF_CLEAR;
	}
	if (!len) {
		snprintf(why, why_len, "unexpected end of filter rule");
		return -EINVAL;
	}
	return rule_add(f, s, len, flags, why, why_len);
}

int berth__dfilter_add(struct berth_dfilter **fp, int kind, const char *text,
		       char *why, size_t why_len)
{
	uint32_t dflt = kind == BERTH_DF_INCLUDE ||
					kind == BERTH_DF_INCLUDE_FILE
				? SF_INCLUDE
				: 0;
	const char *p = text;
	int ret = 0;

	if (!*fp && !(*fp = calloc(1, sizeof(**fp))))
		return -ENOMEM;
	while (ret == 0 && *p) {
		const char *e, *pat, *w;
		uint32_t fl;
		size_t len;
		int r;

		switch (kind) {
		case BERTH_DF_FILTER:
			r = berth__sf_parse_rule(&p, SF_WORDS, &fl, &pat, &len,
						 &w);
			if (r < 0) {
				snprintf(why, why_len, "%s: %.64s", w, p);
				return -EINVAL;
			}
			if (r == 0)
				return 0;
			ret = rule_add(*fp, pat, len, fl, why, why_len);
			break;
		case BERTH_DF_INCLUDE:
		case BERTH_DF_EXCLUDE:
			while (isspace((unsigned char)*p))
				p++;
			if (!*p)
				return 0;
			e = p;
			/* An old prefix "+ " / "- " belongs to the word. */
			if ((e[0] == '+' || e[0] == '-') && e[1] == ' ')
				e += 2;
			while (*e && !isspace((unsigned char)*e))
				e++;
			ret = add_plain(*fp, p, (size_t)(e - p), dflt, why,
					why_len);
			p = e;
			break;
		default: /* a file's lines */
			e = p + strcspn(p, "\r\n");
			if (e > p && *p != ';' && *p != '#')
				ret = add_plain(*fp, p, (size_t)(e - p), dflt,
						why, why_len);
			p = *e ? e + 1 : e;
			break;
		}
	}
	return ret;
}

bool berth__dfilter_hides(const struct berth_dfilter *f, const char *dest_rel,
			  const char *name, bool is_dir)
{
	char full[PATH_MAX * 2];
	const char *mod = name;

	if (!f)
		return false;
	if (dest_rel && *dest_rel) {
		if (!strcmp(name, "."))
			mod = dest_rel;
		else if ((size_t)snprintf(full, sizeof(full), "%s/%s", dest_rel,
					  name) < sizeof(full))
			mod = full;
		else
			return true; /* too long to judge: not ours */
	}
	for (uint32_t i = 0; i < f->n; i++) {
		const struct sf_rule *r = &f->v[i];

		if (berth__sf_rule_hit(r, (r->flags & SF_ABS) ? mod : name,
				       is_dir, false))
			return !(r->flags & SF_INCLUDE);
	}
	return false;
}

void berth__dfilter_free(struct berth_dfilter *f)
{
	if (!f)
		return;
	rules_clear(f);
	free(f->v);
	free(f);
}

/* ------------------------------------------------------------ hooks */

static const struct berth_dpolicy *pol(const struct berth_session *s)
{
	return s->opts.dpolicy;
}

bool berth__dmn_converts(const struct berth_session *s)
{
	return pol(s) && pol(s)->munge_links;
}

static int grow(char **buf, size_t *cap, size_t need)
{
	char *p;

	if (need <= *cap)
		return 0;
	p = realloc(*buf, need);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = need;
	return 0;
}

int berth__dmn_conv(struct berth_session *s, bool link, const char *in,
		    size_t len, const char **out, size_t *out_len)
{
	struct sess_dmn *d = &s->dmn;
	size_t pre = link && berth__dmn_converts(s)
			     ? sizeof(BERTH_MUNGE_PREFIX) - 1
			     : 0;
	char **buf = link ? &d->link : &d->name;
	size_t *cap = link ? &d->link_cap : &d->name_cap;

	if (grow(buf, cap, pre + len + 1) < 0)
		return -ENOMEM;
	memcpy(*buf, BERTH_MUNGE_PREFIX, pre);
	memmove(*buf + pre, in, len);
	(*buf)[pre + len] = '\0';
	*out = *buf;
	*out_len = pre + len;
	return 0;
}

void berth__dmn_list(struct berth_session *s, struct berth_flist *fl)
{
	const struct berth_chmod *c = pol(s) ? pol(s)->chmod : NULL;

	if (!c)
		return;
	for (uint32_t i = 0; i < fl->count; i++) {
		struct berth_file *f = &fl->files[i];

		if (!S_ISLNK(f->mode) && f->mode)
			f->mode = berth_chmod_apply(c, f->mode);
	}
}

uint32_t berth__dmn_mode(const struct berth_session *s, uint32_t type,
			 uint32_t perm)
{
	if (!pol(s) || !pol(s)->chmod || S_ISLNK(type))
		return perm;
	return berth_chmod_apply(pol(s)->chmod, (type & S_IFMT) | perm) & 07777;
}

bool berth__dmn_mode_due(const struct berth_session *s,
			 const struct berth_file *f, uint32_t cur)
{
	uint32_t want;

	if (!pol(s) || !pol(s)->chmod || S_ISLNK(f->mode))
		return false;
	/* What berth__session_meta() leaves an existing item. */
	want = s->opts.perms ? f->mode & 07777 : cur & 07777;
	if (!s->opts.perms && s->opts.executability) {
		if (f->mode & 0111)
			want |= (want & 0444) >> 2;
		else
			want &= ~0111u;
	}
	return berth__dmn_mode(s, f->mode & S_IFMT, want) != (cur & 07777);
}

bool berth__dmn_hidden(const struct berth_session *s, const char *name,
		       bool is_dir)
{
	const struct berth_dpolicy *p = pol(s);

	return p && p->filter &&
	       berth__dfilter_hides(p->filter, p->dest_rel, name, is_dir);
}

void berth__dmn_refused(struct berth_session *s, const struct berth_file *f)
{
	bool dir = S_ISDIR(f->mode);
	char path[BERTH_PATH_BUF];

	berth__session_file_error(s,
				  "ERROR: daemon refused to receive %s "
				  "\"%s\"\n",
				  dir ? "directory" : "file",
				  berth_file_path(f, path));
	if (dir)
		berth__session_log(s, BERTH_LOG_ERROR,
				   "*** Skipping any contents from this "
				   "failed directory ***\n");
}

int berth__dmn_check_dest(struct berth_session *s)
{
	const struct berth_dpolicy *p = pol(s);
	const char *d = p ? p->dest_rel : NULL;

	if (!p || !p->filter || !d || !*d)
		return 0;
	if (!berth__dfilter_hides(p->filter, "", d, false) &&
	    !berth__dfilter_hides(p->filter, "", d, true))
		return 0;
	berth__session_fatal(s, RERR_FILESELECT,
			     "ERROR: daemon has excluded destination \"%s\"\n",
			     p->dest_shown ? p->dest_shown : d);
	return -EPERM;
}

bool berth__dmn_numeric_ids(const struct berth_session *s)
{
	return pol(s) && pol(s)->numeric_ids;
}

void berth__dmn_free(struct sess_dmn *d)
{
	free(d->name);
	free(d->link);
	memset(d, 0, sizeof(*d));
}
