/* SPDX-License-Identifier: MIT */
/*
 * One filter rule: rsync's matching of a name against its pattern, and
 * the text of a rule in a merge file (long names, modifiers, a merge
 * file's defaults).  Pure functions over the caller's strings.
 *
 * A pattern matches the last component of a name unless it holds a "/"
 * or "**"; an anchored one matches from the root; one with an inner "/"
 * matches the name's last components; "**" may match "/", "*" and "?" may
 * not; a trailing "/" + "***" also matches the directory itself.
 */
#include <ctype.h>
#include <limits.h>
#include <string.h>

#include "engine/session/session_filter_int.h"

/* ------------------------------------------------------------ matching */

enum { WM_NO = 0, WM_YES = 1, WM_ABORT_ALL = 2, WM_ABORT_SLASH = 3 };

/* One bracket expression at @p ("[" already passed) against @c; *end set
 * past its "]".  -1: unterminated. */
static int wm_class(const unsigned char *p, unsigned char c,
		    const unsigned char **end)
{
	bool neg = false, hit = false;
	unsigned char prev = 0;

	if (*p == '!' || *p == '^') {
		neg = true;
		p++;
	}
	do {
		unsigned char ch = *p;

		if (!ch)
			return -1;
		if (ch == '\\') {
			ch = *++p;
			if (!ch)
				return -1;
			hit |= c == ch;
		} else if (ch == '-' && prev && p[1] && p[1] != ']') {
			unsigned char hi = *++p;

			if (hi == '\\' && !(hi = *++p))
				return -1;
			hit |= c >= prev && c <= hi;
			ch = 0;
		} else if (ch == '[' && p[1] == ':') {
			const unsigned char *nm = p + 2, *q = nm;
			size_t n;

			while (*q && !(q[0] == ':' && q[1] == ']'))
				q++;
			if (!*q) {
				hit |= c == '[';
			} else {
				n = (size_t)(q - nm);
#define CLS(name, fn) (n == sizeof(name) - 1 && !memcmp(nm, name, n) && fn(c))
				hit |= CLS("alnum", isalnum) ||
				       CLS("alpha", isalpha) ||
				       CLS("blank", isblank) ||
				       CLS("cntrl", iscntrl) ||
				       CLS("digit", isdigit) ||
				       CLS("graph", isgraph) ||
				       CLS("lower", islower) ||
				       CLS("print", isprint) ||
				       CLS("punct", ispunct) ||
				       CLS("space", isspace) ||
				       CLS("upper", isupper) ||
				       CLS("xdigit", isxdigit);
#undef CLS
				p = q + 1;
				ch = 0;
			}
		} else {
			hit |= c == ch;
		}
		prev = ch;
	} while (*++p != ']');
	*end = p;
	return hit != neg;
}

/* @p against the whole of @t: "*" stops at "/", "**" does not. */
static int wm(const unsigned char *p, const unsigned char *t)
{
	for (; *p; p++, t++) {
		if (!*t && *p != '*')
			return WM_ABORT_ALL;
		switch (*p) {
		case '?':
			if (*t == '/')
				return WM_NO;
			break;
		case '[': {
			const unsigned char *end;
			int r = wm_class(p + 1, *t, &end);

			if (r < 0)
				return WM_ABORT_ALL;
			if (!r)
				return WM_NO;
			p = end;
			break;
		}
		case '*': {
			bool deep = p[1] == '*';

			while (*p == '*')
				p++;
			if (!*p)
				return deep || !strchr((const char *)t, '/')
					       ? WM_YES
					       : WM_NO;
			for (;; t++) {
				int r = wm(p, t);

				if (r != WM_NO) {
					if (!deep || r != WM_ABORT_SLASH)
						return r;
				} else if (!deep && *t == '/') {
					return WM_ABORT_SLASH;
				}
				if (!*t)
					return WM_ABORT_ALL;
			}
		}
		case '\\':
			if (p[1])
				p++;
			/* fall through */
		default:
			if (*t != *p)
				return WM_NO;
			break;
		}
	}
	return *t ? WM_NO : WM_YES;
}

/* @r's pattern against @text, where: 0 from the start, > 0 the last N
 * components, < 0 from the start or after any "/". */
static bool match_text(const struct sf_rule *r, const char *text, int where)
{
	const unsigned char *p = (const unsigned char *)r->pat;
	const char *t = text;
	int m;

	if (where > 0) {
		int n = where;

		t = text + strlen(text);
		while (t > text && !(t[-1] == '/' && --n == 0))
			t--;
	}
	if (!(r->flags & SF_WILD))
		return strcmp(r->pat, t) == 0;
	m = wm(p, (const unsigned char *)t);
	if (m == WM_YES)
		return true;
	if (where >= 0 || m == WM_ABORT_ALL)
		return false;
	for (; *t; t++) {
		if (*t != '/')
			continue;
		m = wm(p, (const unsigned char *)t + 1);
		if (m == WM_YES)
			return true;
		if (m == WM_ABORT_ALL)
			return false;
	}
	return false;
}

uint32_t berth__sf_classify(struct sf_rule *r, uint32_t flags)
{
	const char *p = r->pat, *w;
	size_t len = strlen(p);

	r->slash_cnt = 0;
	for (const char *c = p; *c; c++)
		r->slash_cnt += *c == '/';
	if (flags & SF_ANCHORED)
		r->slash_cnt++;
	if (!strpbrk(p, "*[?"))
		return flags;
	flags |= SF_WILD;
	w = strstr(p, "**");
	if (w) {
		flags |= SF_WILD2;
		if (w == p && !(flags & SF_ANCHORED))
			flags |= SF_WILD2_PREFIX;
		if (len >= 3 && !strcmp(p + len - 3, "***"))
			flags |= SF_WILD3_SUFFIX;
	}
	return flags;
}

/* Does @r match @name (relative to the root, or an xattr name)? */
bool berth__sf_rule_hit(const struct sf_rule *r, const char *name, bool is_dir,
			bool is_xattr)
{
	bool yes = !(r->flags & SF_NEGATE);
	char buf[PATH_MAX + 4];
	const char *text = name;
	size_t len;
	int where;

	if (!*name || !is_xattr != !(r->flags & SF_XATTR))
		return false;
	if (!r->slash_cnt && !(r->flags & SF_WILD2)) {
		const char *b = strrchr(name, '/');

		text = b ? b + 1 : name;
	}
	len = strlen(text);
	if (len + 3 > sizeof(buf))
		return !yes;
	buf[0] = '/';
	memcpy(buf + 1, text, len + 1);
	/* "**" first: "**" + "/" may match at the start. */
	if (!(r->flags & SF_ANCHORED) && (r->flags & SF_WILD2_PREFIX) &&
	    text == name)
		text = buf;
	else
		text = buf + 1;
	if (is_dir) {
		/* A trailing "/" + "***" matches the directory itself. */
		if (r->flags & SF_WILD3_SUFFIX)
			memcpy(buf + 1 + len, "/", 2);
	} else if (r->flags & SF_DIR) {
		return !yes;
	}
	if (r->flags & SF_ANCHORED)
		where = 0;
	else if (r->slash_cnt && !(r->flags & SF_WILD2))
		where = (int)r->slash_cnt + 1;
	else if ((r->flags & SF_WILD2) && !(r->flags & SF_WILD2_PREFIX))
		where = -1;
	else
		where = 0;
	return match_text(r, text, where) ? yes : !yes;
}

/* ------------------------------------------------------------ parsing */

static const struct {
	const char *word;
	char ch;
} long_names[] = {
	{"clear", '!'},	  {"dir-merge", ':'}, {"exclude", '-'},
	{"hide", 'H'},	  {"include", '+'},   {"merge", '.'},
	{"protect", 'P'}, {"risk", 'R'},      {"show", 'S'},
};

/*
 * One rule of a merge file at *@sp (advanced past it), with the defaults
 * of @tmpl (the naming rule's flags): *@flags, the pattern (@pat, @len).
 * 1: a rule; 0: nothing left; -1: a syntax error (*@why says which).
 */
int berth__sf_parse_rule(const char **sp, uint32_t tmpl, uint32_t *flags,
			 const char **pat, size_t *len, const char **why)
{
	const char *s = *sp, *e;
	uint32_t fl = tmpl & SF_FROM_CONTAINER & ~SF_SIDES;
	bool side_prefix = false;
	char ch = 0;

	if (tmpl & SF_WORDS)
		while (isspace((unsigned char)*s))
			s++;
	if (!*s) {
		*sp = s;
		return 0;
	}
	if (tmpl & SF_NO_PREFIX) {
		if (*s == '!' && (tmpl & SF_CVS))
			fl |= SF_CLEAR;
	} else {
		for (size_t i = 0; i < sizeof(long_names) / sizeof(*long_names);
		     i++) {
			size_t n = strlen(long_names[i].word);

			if (strncmp(s, long_names[i].word, n))
				continue;
			if (s[n] == ',' || s[n] == ' ' || s[n] == '_' ||
			    !s[n] || isspace((unsigned char)s[n])) {
				ch = long_names[i].ch;
				s += n - 1;
				if (s[1] == ',')
					s++;
				break;
			}
		}
		if (!ch) {
			ch = *s;
			if (s[1] == ',')
				s++;
		}
		switch (ch) {
		case ':':
			fl |= SF_DIRMERGE;
			break;
		case '.':
			fl |= SF_MERGE;
			break;
		case '+':
			fl |= SF_INCLUDE;
			break;
		case '-':
			fl &= ~SF_INCLUDE;
			break;
		case 'S':
			fl |= SF_INCLUDE;
			/* fall through */
		case 'H':
			fl |= SF_SENDER;
			side_prefix = true;
			break;
		case 'R':
			fl |= SF_INCLUDE;
			/* fall through */
		case 'P':
			fl |= SF_RECEIVER;
			side_prefix = true;
			break;
		case '!':
			fl |= SF_CLEAR;
			break;
		default:
			*why = "Unknown filter rule";
			return -1;
		}
		if (ch == '+' || ch == '-')
			fl = (fl & ~SF_INCLUDE) | (ch == '+' ? SF_INCLUDE : 0);
		while (ch != '!' && *++s && *s != ' ' && *s != '_') {
			bool merge = fl & (SF_MERGE | SF_DIRMERGE);

			if ((tmpl & SF_WORDS) && isspace((unsigned char)*s)) {
				s--;
				break;
			}
			switch (*s) {
			case '-':
			case '+':
				if (!merge || (fl & SF_NO_PREFIX))
					goto invalid;
				fl |= SF_NO_PREFIX |
				      (*s == '+' ? SF_INCLUDE : 0);
				break;
			case '/':
				fl |= SF_ABS;
				break;
			case '!':
				if (merge)
					goto invalid;
				fl |= SF_NEGATE;
				break;
			case 'C':
				if ((fl & SF_NO_PREFIX) || side_prefix)
					goto invalid;
				fl |= SF_NO_PREFIX | SF_WORDS | SF_NO_INHERIT |
				      SF_CVS;
				break;
			case 'e':
			case 'n':
			case 'w':
				if (!merge)
					goto invalid;
				fl |= *s == 'e'	  ? SF_EXCL_SELF
				      : *s == 'n' ? SF_NO_INHERIT
						  : SF_WORDS;
				break;
			case 'p':
				fl |= SF_PERISH;
				break;
			case 'r':
			case 's':
				if (side_prefix)
					goto invalid;
				fl |= *s == 'r' ? SF_RECEIVER : SF_SENDER;
				break;
			case 'x':
				fl |= SF_XATTR;
				break;
			default:
				goto invalid;
			}
		}
		if (*s)
			s++;
	}
	if (tmpl & SF_SIDES) {
		if (fl & SF_SIDES) {
			*why = "specified-side merge file contains "
			       "specified-side filter";
			return -1;
		}
		fl |= tmpl & SF_SIDES;
	}
	e = s;
	if (tmpl & SF_WORDS)
		while (*e && !isspace((unsigned char)*e))
			e++;
	else
		e += strlen(e);
	*len = (size_t)(e - s);
	if (fl & SF_CLEAR) {
		if (!(fl & SF_NO_PREFIX) && *len) {
			*why = "'!' rule has trailing characters";
			return -1;
		}
		if (*len > 1)
			fl &= ~SF_CLEAR;
	} else if (!*len && !(fl & SF_CVS)) {
		*why = "unexpected end of filter rule";
		return -1;
	}
	*pat = s;
	*flags = fl;
	*sp = e;
	return 1;
invalid:
	*why = "invalid modifier in filter rule";
	return -1;
}
