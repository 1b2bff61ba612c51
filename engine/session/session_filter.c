/* SPDX-License-Identifier: MIT */
/*
 * The receiver's filter rules: the client's list, per-directory merge
 * files, and rsync's way of matching a name against a rule (§6; rsync's
 * filter rules as its manual describes them).  Generator thread; net-in
 * adds the client's rules before the generator starts.
 *
 * A rule's pattern matches the last component of a name unless it holds a
 * "/" or "**"; an anchored one ("/x", or "/x" in a merge file, then
 * relative to that file's directory) matches from the root; one with an
 * inner "/" matches the name's last components; "**" may match "/", "*"
 * and "?" may not; a trailing "/" + "***" also matches the directory itself.
 */
#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_filter_int.h"
#include "engine/session/session_sys.h"

/* Bounds on what the destination's merge files may make us hold. */
#define MERGE_FILE_MAX (1u << 20) /* bytes of one file */
#define MERGE_LINE_MAX 5120 /* longer lines are dropped, as rsync does */
#define RULES_MAX 100000u /* rules held at once, all lists */
#define MERGES_MAX 64u /* active dir-merge rules */
#define MERGE_NEST_MAX 16 /* "merge" inside merge files */
#define DEPTH_MAX 4096u

struct sf_list {
	struct sf_rule *v;
	uint32_t n, cap;
};

struct sf_merge {
	uint32_t flags; /* the dir-merge rule's */
	char *fname; /* the file read in each directory (a base name) */
};

struct sf_frame {
	char *dir; /* "." for the root */
	uint32_t merges_before; /* merges active before this frame */
	struct sf_list *lists; /* per merge: this directory's rules */
	bool *stop; /* per merge: nothing inherited from above */
	uint32_t nlists;
};

struct berth_filters {
	struct sf_list global;
	struct sf_merge *merges;
	uint32_t nmerges, merges_cap;
	struct sf_frame *frames;
	uint32_t depth, frames_cap;
	uint32_t nrules;
	bool xattr_rules;
	bool cvs_loaded;
};

/* ------------------------------------------------------------ lists */

static void list_free(struct sf_list *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		free(l->v[i].pat);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static struct berth_filters *filters_of(struct berth_session *s)
{
	if (!s->del.filt)
		s->del.filt = calloc(1, sizeof(*s->del.filt));
	return s->del.filt;
}

/* Forward: a merge file's rules into @l. */
static int read_merge(struct berth_session *s, struct sf_list *l,
		      const char *dir, const char *fname, uint32_t tmpl,
		      int nest);

/*
 * Add the rule @pat (@len bytes, not terminated) with @flags to @l.  @dir:
 * where the rule was read (NULL: the client's list), for anchoring.
 */
static int add_rule(struct berth_session *s, struct sf_list *l, const char *dir,
		    const char *pat, size_t len, uint32_t flags)
{
	struct berth_filters *f = s->del.filt;
	struct sf_rule *r;
	const char *base;
	size_t plen = 0;
	char *p;

	if (f->nrules >= RULES_MAX) {
		berth__session_fatal(s, RERR_FILEIO,
				     "berth: more than %u filter rules\n",
				     RULES_MAX);
		return -BERTH_ELIMIT;
	}
	if (len > 1 && pat[len - 1] == '/') {
		len--;
		flags |= SF_DIR;
	}
	if ((flags & SF_DIRMERGE)) {
		/* The file read in each directory: the name's last part
		 * (the scan of the directories above a name with a "/" is
		 * not made: they lie outside the destination). */
		for (base = pat + len; base > pat && base[-1] != '/'; base--)
			;
		len -= (size_t)(base - pat);
		pat = base;
		for (uint32_t i = 0; i < f->nmerges; i++)
			if (strlen(f->merges[i].fname) == len &&
			    !memcmp(f->merges[i].fname, pat, len))
				return 0; /* already active */
		if (f->nmerges >= MERGES_MAX) {
			berth__session_fatal(s, RERR_FILEIO,
					     "berth: more than %u dir-merge "
					     "rules\n",
					     MERGES_MAX);
			return -BERTH_ELIMIT;
		}
	} else if (len && pat[0] == '/') {
		flags |= SF_ANCHORED;
		pat++;
		len--;
		if (dir && strcmp(dir, "."))
			plen = strlen(dir) + 1;
	}
	if (l->n == l->cap) {
		uint32_t cap = l->cap ? 2 * l->cap : 8;

		r = realloc(l->v, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		l->v = r;
		l->cap = cap;
	}
	p = malloc(plen + len + 1);
	if (!p)
		return -ENOMEM;
	if (plen) {
		memcpy(p, dir, plen - 1);
		p[plen - 1] = '/';
	}
	memcpy(p + plen, pat, len);
	p[plen + len] = '\0';
	r = &l->v[l->n];
	memset(r, 0, sizeof(*r));
	r->pat = p;
	flags = berth__sf_classify(r, flags);
	if (flags & SF_DIRMERGE) {
		struct sf_merge *m = f->merges;

		if (f->nmerges == f->merges_cap) {
			uint32_t cap = f->merges_cap ? 2 * f->merges_cap : 4;

			m = realloc(f->merges, cap * sizeof(*m));
			if (!m) {
				free(p);
				return -ENOMEM;
			}
			f->merges = m;
			f->merges_cap = cap;
		}
		m[f->nmerges].flags = flags;
		m[f->nmerges].fname = strdup(p);
		if (!m[f->nmerges].fname) {
			free(p);
			return -ENOMEM;
		}
		r->merge = f->nmerges++;
	}
	if (flags & SF_XATTR)
		f->xattr_rules = true;
	r->flags = flags;
	l->n++;
	f->nrules++;
	return 0;
}

/* rsync's list of names CVS ignores ("-C"). */
static const char cvs_default[] =
	"RCS SCCS CVS CVS.adm RCSLOG cvslog.* tags TAGS .make.state "
	".nse_depinfo *~ #* .#* ,* _$* *$ *.old *.bak *.BAK *.orig *.rej "
	".del-* *.a *.olb *.o *.obj *.so *.exe *.Z *.elc *.ln core .svn/ "
	".git/ .hg/ .bzr/";

/* Words of @text as excludes with @flags into @l. */
static int add_words(struct berth_session *s, struct sf_list *l,
		     const char *text, uint32_t flags)
{
	while (*text) {
		const char *w = text;
		int ret;

		while (*text && !isspace((unsigned char)*text))
			text++;
		if (text > w) {
			ret = add_rule(s, l, NULL, w, (size_t)(text - w),
				       flags);
			if (ret < 0)
				return ret;
		}
		while (isspace((unsigned char)*text))
			text++;
	}
	return 0;
}

/*
 * A rule of kind @flags (its pattern @pat, @len) goes into @l: clear, the
 * exclude-self rule, a merge read at once, a CVS list, or the rule.
 */
static int place_rule(struct berth_session *s, struct sf_list *l, bool *stop,
		      const char *dir, const char *pat, size_t len,
		      uint32_t flags, int nest)
{
	int ret;

	if (flags & SF_CLEAR) {
		struct berth_filters *f = s->del.filt;

		f->nrules -= l->n < f->nrules ? l->n : f->nrules;
		list_free(l);
		if (stop)
			*stop = true;
		return 0;
	}
	/* Rules for the sender alone have no meaning here (rsync drops
	 * them from merge files; the client never sends them). */
	if ((flags & SF_SIDES) == SF_SENDER)
		return 0;
	if (flags & (SF_MERGE | SF_DIRMERGE)) {
		if (!len) {
			pat = ".cvsignore";
			len = 10;
		}
		if (flags & SF_EXCL_SELF) {
			const char *b = pat + len;

			while (b > pat && b[-1] != '/')
				b--;
			ret = add_rule(s, l, NULL, b, (size_t)(pat + len - b),
				       0);
			if (ret < 0)
				return ret;
			flags &= ~SF_EXCL_SELF;
		}
		if (flags & SF_MERGE) {
			char name[PATH_MAX];

			if (len >= sizeof(name))
				return 0;
			memcpy(name, pat, len);
			name[len] = '\0';
			/* rsync opens a bare name in its working directory
			 * (the root), a name with a "/" in @dir. */
			return read_merge(s, l, strchr(name, '/') ? dir : ".",
					  name, flags, nest + 1);
		}
		return add_rule(s, l, dir, pat, len, flags);
	}
	if ((flags & SF_CVS) && !len) {
		/* "-C": the default CVS names (perishable). */
		return add_words(s, l, cvs_default,
				 SF_PERISH | (flags & SF_SIDES));
	}
	return add_rule(s, l, dir, pat, len, flags);
}

int berth__filter_add_wire(struct berth_session *s,
			   const struct berth_filter_rule *rule)
{
	static const struct {
		unsigned fm;
		uint32_t sf;
	} map[] = {
		{BERTH_FM_ABS, SF_ABS},
		{BERTH_FM_NEGATE, SF_NEGATE},
		{BERTH_FM_CVS,
		 SF_CVS | SF_NO_PREFIX | SF_WORDS | SF_NO_INHERIT},
		{BERTH_FM_NO_INHERIT, SF_NO_INHERIT},
		{BERTH_FM_WORDS, SF_WORDS},
		{BERTH_FM_DEF_INCL, SF_NO_PREFIX | SF_INCLUDE},
		{BERTH_FM_DEF_EXCL, SF_NO_PREFIX},
		{BERTH_FM_EXCL_SELF, SF_EXCL_SELF},
		{BERTH_FM_XATTR, SF_XATTR},
		{BERTH_FM_SENDER, SF_SENDER},
		{BERTH_FM_RECEIVER, SF_RECEIVER},
		{BERTH_FM_PERISHABLE, SF_PERISH},
	};
	struct berth_filters *f = filters_of(s);
	uint32_t flags = 0;
	char pat[PATH_MAX + 2];
	size_t len = rule->pattern_len;

	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (rule->mods & map[i].fm)
			flags |= map[i].sf;
	switch (rule->type) {
	case BERTH_FILTER_CLEAR:
		return place_rule(s, &f->global, NULL, NULL, "", 0, SF_CLEAR,
				  0);
	case BERTH_FILTER_INCLUDE:
		flags |= SF_INCLUDE;
		break;
	case BERTH_FILTER_MERGE:
		/* A client reads its merge files itself and sends their
		 * rules; one it names for us would be read before DEST is
		 * open. */
		berth__session_log(s, BERTH_LOG_ERROR,
				   "berth: a merge-file rule for the receiving "
				   "side is not supported (\"%.*s\")\n",
				   (int)rule->pattern_len, rule->pattern);
		return -BERTH_EUNSUPPORTED;
	case BERTH_FILTER_DIRMERGE:
		flags |= SF_DIRMERGE;
		break;
	default:
		break;
	}
	if (len + 2 > sizeof(pat))
		return -BERTH_ELIMIT;
	memcpy(pat, rule->pattern, len);
	/* The decoder took a trailing "/" off; add_rule() wants it. */
	if (rule->dir_only)
		pat[len++] = '/';
	pat[len] = '\0';
	return place_rule(s, &f->global, NULL, ".", pat, len, flags, 0);
}

/* The rules of one line (or word list) of a merge file. */
static int parse_line(struct berth_session *s, struct sf_list *l, bool *stop,
		      const char *dir, const char *line, uint32_t tmpl,
		      int nest, const char *path)
{
	const char *p = line, *pat, *why = NULL;
	uint32_t fl;
	size_t len;
	int r, ret;

	while ((r = berth__sf_parse_rule(&p, tmpl, &fl, &pat, &len, &why)) >
	       0) {
		/* --delete-excluded: a rule without a side is the sender's
		 * (and so has no say here). */
		if (s->opts.delete_excluded &&
		    !(fl & (SF_SIDES | SF_MERGE | SF_DIRMERGE)))
			fl |= SF_SENDER;
		ret = place_rule(s, l, stop, dir, pat, len, fl, nest);
		if (ret < 0)
			return ret;
		if (!(tmpl & SF_WORDS))
			break;
	}
	if (r < 0) {
		berth__session_fatal(s, RERR_SYNTAX, "%s: %s (in %s)\n", why,
				     line, path);
		return -BERTH_EPROTO;
	}
	return 0;
}

struct read_arg {
	int fd;
	char *buf;
	size_t len;
};

/* The whole merge file (a call the faults can reach). */
static ssize_t read_all(void *arg)
{
	struct read_arg *a = arg;
	struct stat st;
	ssize_t n;

	if (fstat(a->fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size > MERGE_FILE_MAX)
		return -EFBIG;
	a->buf = malloc((size_t)st.st_size + 1);
	if (!a->buf)
		return -ENOMEM;
	while (a->len <= (size_t)st.st_size) {
		n = read(a->fd, a->buf + a->len,
			 (size_t)st.st_size + 1 - a->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		a->len += (size_t)n;
	}
	if (a->len > (size_t)st.st_size)
		return -EFBIG; /* grew meanwhile */
	a->buf[a->len] = '\0';
	return 0;
}

static int read_merge(struct berth_session *s, struct sf_list *l,
		      const char *dir, const char *fname, uint32_t tmpl,
		      int nest)
{
	bool root = !strcmp(dir, ".");
	struct read_arg a = {-1, NULL, 0};
	char path[PATH_MAX];
	bool *stop = NULL;
	int ret;

	if (nest > MERGE_NEST_MAX) {
		berth__session_fatal(s, RERR_FILEIO,
				     "berth: merge files nested more than %d "
				     "deep (%s)\n",
				     MERGE_NEST_MAX, fname);
		return -BERTH_ELIMIT;
	}
	if (fname[0] == '/' ||
	    (size_t)snprintf(path, sizeof(path), "%s%s%s", root ? "" : dir,
			     root ? "" : "/", fname) >= sizeof(path))
		return 0; /* never outside the destination */
	a.fd = berth__sys_open(s, s->dest.root_fd, path, O_RDONLY);
	if (a.fd < 0)
		return 0; /* none (or not ours to read): no rules */
	ret = (int)berth__sys_call(s, read_all, &a);
	close(a.fd);
	if (ret == -EFBIG || ret == -EINVAL) {
		/* Its rules unknown: deleting beside it would be a guess. */
		berth__session_log(s, BERTH_LOG_ERROR,
				   "berth: filter file %s is %s: ignored, no "
				   "deletions\n",
				   path,
				   ret == -EFBIG ? "over 1 MiB"
						 : "not a regular file");
		atomic_fetch_or(&s->rep.io_error, 1);
		free(a.buf);
		return 0;
	}
	if (ret < 0) {
		free(a.buf);
		return ret == -ENOMEM ? ret : 0;
	}
	/* A "!" in a directory's merge file also ends what that directory
	 * inherits for the merge. */
	if (s->del.filt->depth) {
		struct sf_frame *fr =
			&s->del.filt->frames[s->del.filt->depth - 1];

		if (l >= fr->lists && l < fr->lists + fr->nlists)
			stop = &fr->stop[l - fr->lists];
	}
	for (char *p = a.buf, *end = a.buf + a.len; p < end && ret == 0;) {
		char *nl = p;

		if (tmpl & SF_WORDS)
			while (nl < end && *nl && !isspace((unsigned char)*nl))
				nl++;
		else
			while (nl < end && *nl != '\n' && *nl != '\r')
				nl++;
		*nl = '\0';
		if ((size_t)(nl - p) >= MERGE_LINE_MAX)
			berth__session_log(s, BERTH_LOG_ERROR,
					   "discarding over-long filter: "
					   "%.40s...\n",
					   p);
		else if (*p && ((tmpl & SF_WORDS) || (*p != ';' && *p != '#')))
			ret = parse_line(s, l, stop, dir, p, tmpl, nest, path);
		p = nl + 1;
	}
	free(a.buf);
	return ret;
}

/* ------------------------------------------------------------ frames */

static void frame_pop(struct berth_filters *f)
{
	struct sf_frame *fr = &f->frames[--f->depth];

	for (uint32_t i = 0; i < fr->nlists; i++) {
		f->nrules -= fr->lists[i].n < f->nrules ? fr->lists[i].n
							: f->nrules;
		list_free(&fr->lists[i]);
	}
	free(fr->lists);
	free(fr->stop);
	free(fr->dir);
	while (f->nmerges > fr->merges_before)
		free(f->merges[--f->nmerges].fname);
	memset(fr, 0, sizeof(*fr));
}

/* Room in @fr for the lists of every merge active now. */
static int frame_grow(struct berth_filters *f, struct sf_frame *fr)
{
	struct sf_list *l;
	bool *st;

	if (fr->nlists >= f->nmerges)
		return 0;
	l = realloc(fr->lists, f->nmerges * sizeof(*l));
	if (!l)
		return -ENOMEM;
	fr->lists = l;
	st = realloc(fr->stop, f->nmerges * sizeof(*st));
	if (!st)
		return -ENOMEM;
	fr->stop = st;
	for (uint32_t i = fr->nlists; i < f->nmerges; i++) {
		memset(&l[i], 0, sizeof(l[i]));
		st[i] = false;
	}
	fr->nlists = f->nmerges;
	return 0;
}

static int frame_push(struct berth_session *s, const char *dir, size_t len)
{
	struct berth_filters *f = s->del.filt;
	struct sf_frame *fr;
	int ret = 0;

	if (f->depth >= DEPTH_MAX)
		return -ELOOP;
	if (f->depth == f->frames_cap) {
		uint32_t cap = f->frames_cap ? 2 * f->frames_cap : 16;

		fr = realloc(f->frames, cap * sizeof(*fr));
		if (!fr)
			return -ENOMEM;
		f->frames = fr;
		f->frames_cap = cap;
	}
	fr = &f->frames[f->depth];
	memset(fr, 0, sizeof(*fr));
	fr->dir = strndup(dir, len);
	if (!fr->dir)
		return -ENOMEM;
	fr->merges_before = f->nmerges;
	f->depth++;
	/* Merge files may name more dir-merge files: those are read here
	 * too (the loop sees the count grow). */
	for (uint32_t i = 0; ret == 0 && i < f->nmerges; i++) {
		uint32_t mflags = f->merges[i].flags;
		char *fname;

		ret = frame_grow(f, fr);
		if (ret < 0)
			break;
		fr->stop[i] = mflags & SF_NO_INHERIT;
		fname = strdup(f->merges[i].fname);
		if (!fname)
			return -ENOMEM;
		ret = read_merge(s, &fr->lists[i], fr->dir, fname, mflags, 0);
		free(fname);
		/* frame_grow() may have moved the lists; fr is stable. */
	}
	return ret < 0 ? ret : frame_grow(f, fr);
}

/* Is frame directory @fd @dir itself or one above it? */
static bool frame_above(const char *fd, const char *dir)
{
	size_t n = strlen(fd);

	if (!strcmp(fd, "."))
		return true;
	return !strncmp(dir, fd, n) && (dir[n] == '\0' || dir[n] == '/');
}

int berth__filter_enter(struct berth_session *s, const char *dir)
{
	struct berth_filters *f = s->del.filt;
	const char *p;
	int ret;

	if (!f || !f->nmerges)
		return 0;
	while (f->depth && !frame_above(f->frames[f->depth - 1].dir, dir))
		frame_pop(f);
	if (!f->depth) {
		ret = frame_push(s, ".", 1);
		if (ret < 0)
			return ret;
	}
	if (!strcmp(dir, "."))
		return 0;
	/* Every directory from the deepest frame down to @dir. */
	p = dir;
	if (strcmp(f->frames[f->depth - 1].dir, "."))
		p = dir + strlen(f->frames[f->depth - 1].dir);
	while (*p) {
		const char *end;

		if (*p == '/')
			p++;
		end = strchr(p, '/');
		if (!end)
			end = p + strlen(p);
		ret = frame_push(s, dir, (size_t)(end - dir));
		if (ret < 0)
			return ret;
		p = end;
	}
	return 0;
}

/* ------------------------------------------------------------ checks */

static int check_list(const struct berth_filters *f, const struct sf_list *l,
		      const char *name, bool is_dir, bool is_xattr,
		      bool no_perish, int nest);

/* The rules of merge @m, this directory's first, then what it inherits. */
static int check_merge(const struct berth_filters *f, uint32_t m,
		       const char *name, bool is_dir, bool is_xattr,
		       bool no_perish, int nest)
{
	for (uint32_t d = f->depth; d-- > 0;) {
		const struct sf_frame *fr = &f->frames[d];
		int r;

		if (m >= fr->nlists)
			break;
		r = check_list(f, &fr->lists[m], name, is_dir, is_xattr,
			       no_perish, nest + 1);
		if (r)
			return r;
		if (fr->stop[m])
			break;
	}
	return 0;
}

/* 1: included, -1: excluded, 0: no rule matched. */
static int check_list(const struct berth_filters *f, const struct sf_list *l,
		      const char *name, bool is_dir, bool is_xattr,
		      bool no_perish, int nest)
{
	if (nest > (int)MERGES_MAX + 1)
		return 0;
	for (uint32_t i = 0; i < l->n; i++) {
		const struct sf_rule *r = &l->v[i];

		if (no_perish && (r->flags & SF_PERISH))
			continue;
		if (r->flags & SF_DIRMERGE) {
			int m = check_merge(f, r->merge, name, is_dir, is_xattr,
					    no_perish, nest);

			if (m)
				return m;
			continue;
		}
		if (berth__sf_rule_hit(r, name, is_dir, is_xattr))
			return r->flags & SF_INCLUDE ? 1 : -1;
	}
	return 0;
}

bool berth__filter_protects(struct berth_session *s, const char *path,
			    bool is_dir, bool ignore_perishable)
{
	const struct berth_filters *f = s->del.filt;

	/* What the daemon's rules hide, nothing deletes. */
	if (berth__dmn_hidden(s, path, is_dir))
		return true;
	return f && check_list(f, &f->global, path, is_dir, false,
			       ignore_perishable, 0) < 0;
}

bool berth__filter_has_xattr_rules(const struct berth_session *s)
{
	return s->del.filt && s->del.filt->xattr_rules;
}

bool berth__filter_xattr_excluded(const struct berth_session *s,
				  const char *name)
{
	const struct berth_filters *f = s->del.filt;

	if (!f || !f->xattr_rules)
		return false;
	/* The client's own rules only: the merge files' frames belong to
	 * the generator, and this runs on the commit thread too. */
	for (uint32_t i = 0; i < f->global.n; i++) {
		const struct sf_rule *r = &f->global.v[i];

		if (!(r->flags & SF_DIRMERGE) &&
		    berth__sf_rule_hit(r, name, false, true))
			return !(r->flags & SF_INCLUDE);
	}
	return false;
}

void berth__filter_free(struct berth_filters *f)
{
	if (!f)
		return;
	while (f->depth)
		frame_pop(f);
	list_free(&f->global);
	while (f->nmerges)
		free(f->merges[--f->nmerges].fname);
	free(f->merges);
	free(f->frames);
	free(f);
}
