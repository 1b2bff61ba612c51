/* SPDX-License-Identifier: MIT */
/*
 * rsyncd.conf syntax: a [global] part, then [module] sections of
 * "name = value" lines; '#' and ';' start comment lines, a trailing '\'
 * continues a line; names are case-insensitive and their spaces and
 * underscores do not count.  "&include PATH" reads a file (or a
 * directory's *.conf files) whose leading parameters are defaults for its
 * own modules only; "&merge PATH" reads a file (or a directory's *.inc
 * files) as if its lines stood in place.
 *
 * Pure: text in, sections out; files are read through the caller's
 * callbacks, so the parser can be fuzzed.  Nothing here knows what a
 * parameter means (daemon_params.c does).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/daemon_int.h"

#define MAX_DEPTH 8
#define MAX_LINE 8192
#define MAX_SECTIONS 4096
#define MAX_PARAMS 65536

static int fail(struct berth_dconf *c, const char *file, int line,
		const char *what)
{
	snprintf(c->err, sizeof(c->err), "%s line %d: %s", file, line, what);
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* The canonical name: lower case, no spaces or underscores. */
static void canon(char *dst, size_t cap, const char *src)
{
	size_t n = 0;

	for (; *src && n + 1 < cap; src++) {
		if (*src == ' ' || *src == '\t' || *src == '_')
			continue;
		dst[n++] = (char)(*src >= 'A' && *src <= 'Z' ? *src + 32
							     : *src);
	}
	dst[n] = '\0';
}

static int add_section(struct berth_dconf *c, const char *name)
{
	struct berth_dconf_sect *s;

	if (c->n >= MAX_SECTIONS)
		return -BERTH_ELIMIT;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		void *p = realloc(c->sect, cap * sizeof(*c->sect));

		if (!p)
			return -ENOMEM;
		c->sect = p;
		c->cap = cap;
	}
	s = &c->sect[c->n];
	memset(s, 0, sizeof(*s));
	s->name = strdup(name);
	if (!s->name)
		return -ENOMEM;
	c->n++;
	return 0;
}

static int add_param(struct berth_dconf *c, struct berth_dconf_sect *s,
		     const char *key, const char *val, const char *where)
{
	struct berth_dconf_param *p;

	if (c->n_params >= MAX_PARAMS)
		return -BERTH_ELIMIT;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		void *np = realloc(s->p, cap * sizeof(*s->p));

		if (!np)
			return -ENOMEM;
		s->p = np;
		s->cap = cap;
	}
	p = &s->p[s->n];
	canon(p->key, sizeof(p->key), key);
	p->val = strdup(val);
	p->where = strdup(where);
	if (!p->val || !p->where) {
		free(p->val);
		free(p->where);
		return -ENOMEM;
	}
	s->n++;
	c->n_params++;
	return 0;
}

struct scope {
	const char *file;
	int depth;
	/* &include: the section its leading parameters went to (defaults
	 * for its own modules); -1 when they are global (the main file or
	 * an &merge in it). */
	size_t defaults;
	bool has_defaults;
	/* The section parameters go to: where the text starts, and where
	 * it ended (an &merge goes on in the section it stood in, and the
	 * file around it in the section the merged text ended in, as
	 * rsync's parser keeps one current section). */
	size_t cur;
};

static int parse_text(struct berth_dconf *c, const struct berth_dconf_io *io,
		      struct scope *sc, const char *text, size_t len);

/* &include or &merge of @path: a file, or a directory's files. */
static int directive(struct berth_dconf *c, const struct berth_dconf_io *io,
		     struct scope *sc, size_t *cur, bool include,
		     const char *path, int line)
{
	char **names = NULL;
	size_t n = 0, i;
	int ret;

	if (sc->depth >= MAX_DEPTH)
		return fail(c, sc->file, line,
			    "&include/&merge nested too deep");
	if (!io || !io->list || !io->read)
		return fail(c, sc->file, line, "&include/&merge unavailable");
	ret = io->list(io->arg, path, include ? ".conf" : ".inc", &names, &n);
	if (ret < 0)
		return fail(c, sc->file, line,
			    "cannot read the &include/"
			    "&merge path");
	for (i = 0; i < n && ret >= 0; i++) {
		char *text = NULL;
		size_t tlen = 0;
		struct scope sub = {names[i], sc->depth + 1, sc->defaults,
				    sc->has_defaults, *cur};

		ret = io->read(io->arg, names[i], &text, &tlen);
		if (ret < 0) {
			ret = fail(c, sc->file, line,
				   "cannot read an &include/&merge file");
			break;
		}
		if (include) {
			/* Its leading parameters: defaults of its modules,
			 * kept in a hidden section. */
			ret = add_section(c, "");
			sub.defaults = c->n - 1;
			sub.has_defaults = true;
			sub.cur = sub.defaults;
			c->sect[sub.defaults].hidden = true;
		}
		if (ret >= 0)
			ret = parse_text(c, io, &sub, text, tlen);
		if (!include)
			*cur = sub.cur;
		free(text);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return ret;
}

/* Copy the defaults of an &include into its new module. */
static int copy_defaults(struct berth_dconf *c, const struct scope *sc)
{
	size_t i, d = sc->defaults;

	if (!sc->has_defaults)
		return 0;
	for (i = 0; i < c->sect[d].n; i++) {
		int ret = add_param(c, &c->sect[c->n - 1], c->sect[d].p[i].key,
				    c->sect[d].p[i].val, c->sect[d].p[i].where);

		if (ret < 0)
			return ret;
	}
	return 0;
}

static int parse_line(struct berth_dconf *c, const struct berth_dconf_io *io,
		      struct scope *sc, size_t *cur, char *l, int line)
{
	char *eq, *key, *val;
	int ret;

	l = trim(l);
	if (!*l || *l == '#' || *l == ';')
		return 0;
	if (*l == '&') {
		bool include = !strncmp(l, "&include", 8);

		if (!include && strncmp(l, "&merge", 6))
			return fail(c, sc->file, line, "unknown & directive");
		val = trim(l + (include ? 8 : 6));
		if (!*val)
			return fail(c, sc->file, line,
				    "no path after the "
				    "directive");
		ret = directive(c, io, sc, cur, include, val, line);
		/* Back in this file: its own section goes on. */
		return ret;
	}
	if (*l == '[') {
		char *end = strchr(l, ']');

		if (!end || trim(end + 1)[0])
			return fail(c, sc->file, line, "bad section header");
		*end = '\0';
		key = trim(l + 1);
		if (!*key)
			return fail(c, sc->file, line, "empty module name");
		if (!strcasecmp(key, "global")) {
			*cur = sc->has_defaults ? sc->defaults : 0;
			return 0;
		}
		ret = add_section(c, key);
		if (ret == 0)
			ret = copy_defaults(c, sc);
		*cur = c->n - 1;
		return ret;
	}
	eq = strchr(l, '=');
	if (!eq)
		return fail(c, sc->file, line, "no '=' in a parameter line");
	*eq = '\0';
	key = trim(l);
	val = trim(eq + 1);
	if (!*key)
		return fail(c, sc->file, line, "no parameter name");
	{
		char where[512];

		snprintf(where, sizeof(where), "%s line %d", sc->file, line);
		return add_param(c, &c->sect[*cur], key, val, where);
	}
}

static int parse_text(struct berth_dconf *c, const struct berth_dconf_io *io,
		      struct scope *sc, const char *text, size_t len)
{
	char *buf = malloc(MAX_LINE + 1);
	size_t pos = 0, n = 0;
	size_t cur = sc->cur;
	int line = 0, first = 0, ret = 0;

	if (!buf)
		return -ENOMEM;
	while (pos <= len && ret >= 0) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;

		line++;
		if (!n)
			first = line;
		if (memchr(text + pos, '\0', l)) {
			ret = fail(c, sc->file, line, "a NUL byte");
			break;
		}
		if (n + l > MAX_LINE) {
			ret = fail(c, sc->file, line, "line too long");
			break;
		}
		memcpy(buf + n, text + pos, l);
		n += l;
		buf[n] = '\0';
		pos += l + 1;
		/* A trailing backslash joins the next line. */
		while (n && (buf[n - 1] == '\r' || buf[n - 1] == ' '))
			buf[--n] = '\0';
		if (n && buf[n - 1] == '\\' && nl) {
			buf[--n] = '\0';
			continue;
		}
		ret = parse_line(c, io, sc, &cur, buf, first);
		n = 0;
		if (!nl)
			break;
	}
	free(buf);
	sc->cur = cur;
	return ret;
}

int berth_dconf_parse(struct berth_dconf *c, const char *file, const char *text,
		      size_t len, const struct berth_dconf_io *io)
{
	struct scope sc = {file, 0, 0, false, 0};
	int ret;

	memset(c, 0, sizeof(*c));
	ret = add_section(c, "global");
	if (ret == 0)
		ret = parse_text(c, io, &sc, text, len);
	if (ret < 0 && !c->err[0])
		snprintf(c->err, sizeof(c->err), "%s: %s", file,
			 berth_strerror(ret));
	return ret;
}

void berth_dconf_free(struct berth_dconf *c)
{
	size_t i, j;

	if (!c)
		return;
	for (i = 0; i < c->n; i++) {
		for (j = 0; j < c->sect[i].n; j++) {
			free(c->sect[i].p[j].val);
			free(c->sect[i].p[j].where);
		}
		free(c->sect[i].p);
		free(c->sect[i].name);
	}
	free(c->sect);
	memset(c, 0, sizeof(*c));
}

const struct berth_dconf_param *berth_dconf_find(
	const struct berth_dconf_sect *s, const char *key)
{
	size_t i;

	/* The last one given wins. */
	for (i = s->n; i-- > 0;)
		if (!strcmp(s->p[i].key, key))
			return &s->p[i];
	return NULL;
}
