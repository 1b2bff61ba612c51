/* SPDX-License-Identifier: MIT */
/*
 * The module's policy over a client's options, applied as the session
 * parsed them: "refuse options", pulls and read-only modules refused as
 * rsync's daemon refuses them, the destination and every directory option
 * (--link-dest, --compare-dest, --copy-dest, --temp-dir, --backup-dir)
 * sanitized into the module as rsync's daemon sanitizes them, then checked
 * beneath the module (no symlink leads out), and the module's own
 * settings (fake super, max verbosity, timeout, bwlimit, temp dir).
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/daemon_int.h"
#include "protocol/protocol.h"

#define RERR_SYNTAX 1
#define RERR_UNSUPPORTED 4

/* The long names of the letters a client may send its server. */
static const struct {
	char letter;
	const char *name;
} letters[] = {
	{'v', "verbose"},
	{'q', "quiet"},
	{'c', "checksum"},
	{'r', "recursive"},
	{'R', "relative"},
	{'b', "backup"},
	{'u', "update"},
	{'l', "links"},
	{'L', "copy-links"},
	{'k', "copy-dirlinks"},
	{'K', "keep-dirlinks"},
	{'H', "hard-links"},
	{'p', "perms"},
	{'E', "executability"},
	{'A', "acls"},
	{'X', "xattrs"},
	{'o', "owner"},
	{'g', "group"},
	{'D', "devices"},
	{'t', "times"},
	{'U', "atimes"},
	{'N', "crtimes"},
	{'O', "omit-dir-times"},
	{'J', "omit-link-times"},
	{'S', "sparse"},
	{'n', "dry-run"},
	{'W', "whole-file"},
	{'x', "one-file-system"},
	{'B', "block-size"},
	{'C', "cvs-exclude"},
	{'z', "compress"},
	{'m', "prune-empty-dirs"},
	{'d', "dirs"},
	{'s', "secluded-args"},
	{'T', "temp-dir"},
	{'y', "fuzzy"},
	{'I', "ignore-times"},
	{'0', "from0"},
	{'i', "itemize-changes"},
};

static bool pattern_hit(const char *pats, const char *name, char letter)
{
	char tok[128], one[2] = {letter, 0};
	size_t n;

	while (*pats) {
		pats += strspn(pats, " \t,");
		n = strcspn(pats, " \t,");
		if (n && n < sizeof(tok)) {
			memcpy(tok, pats, n);
			tok[n] = '\0';
			if (name && !fnmatch(tok, name, 0))
				return true;
			/* "delete" refuses every --delete-WHEN too. */
			if (name && !strcmp(tok, "delete") &&
			    !strncmp(name, "delete-", 7))
				return true;
			if (letter && !fnmatch(tok, one, 0))
				return true;
		}
		pats += n;
	}
	return false;
}

/* The first refused option among @argv's options, as rsync names it. */
static bool refused(const char *pats, char **argv, char *why, size_t len)
{
	size_t i, k;

	for (i = 1; argv && argv[i]; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || !a[1])
			break; /* "." and the paths */
		if (a[1] == '-') {
			char name[128];
			size_t n = strcspn(a + 2, "=");

			if (n >= sizeof(name))
				continue;
			memcpy(name, a + 2, n);
			name[n] = '\0';
			if (strcmp(name, "server") &&
			    pattern_hit(pats, name, 0)) {
				snprintf(why, len,
					 "The server is configured to refuse "
					 "--%s",
					 name);
				return true;
			}
			continue;
		}
		for (const char *p = a + 1; *p && *p != 'e'; p++) {
			const char *name = NULL;

			for (k = 0; k < sizeof(letters) / sizeof(letters[0]);
			     k++)
				if (letters[k].letter == *p)
					name = letters[k].name;
			if (pattern_hit(pats, name, *p)) {
				if (name)
					snprintf(why, len,
						 "The server is configured to "
						 "refuse --%s (-%c)",
						 name, *p);
				else
					snprintf(why, len,
						 "The server is configured to "
						 "refuse -%c",
						 *p);
				return true;
			}
		}
	}
	return false;
}

static bool has_arg(char **argv, const char *opt)
{
	for (size_t i = 1; argv && argv[i]; i++)
		if (!strcmp(argv[i], opt))
			return true;
	return false;
}

/* @rel joined under the module, or "" (no part of it escapes). */
static int place(const struct berth_dconn *c, const char *dir_rel,
		 const char *val, char *out, size_t cap)
{
	char joined[PATH_MAX * 2], clean[PATH_MAX];
	int ret;

	if (val[0] == '/' || !dir_rel[0] || !strcmp(dir_rel, "."))
		snprintf(joined, sizeof(joined), "%s", val);
	else
		snprintf(joined, sizeof(joined), "%s/%s", dir_rel, val);
	ret = berth_dpath_sanitize(joined, 0, clean, sizeof(clean));
	if (ret < 0)
		return ret;
	if ((size_t)snprintf(out, cap, "%s/%s", c->mod->root, clean) >= cap)
		return -ENAMETOOLONG;
	return 0;
}

/* Does the existing part of @rel (module-relative) stay beneath the
 * module, symlinks followed?  rsync's chroot gives that; berth checks. */
static bool beneath(const struct berth_dconn *c, const char *rel)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC,
			       .resolve = RESOLVE_BENEATH |
					  RESOLVE_NO_MAGICLINKS};
	char part[PATH_MAX];
	int root, fd;
	size_t n;

	root = open(c->mod->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return false;
	snprintf(part, sizeof(part), "%s", rel);
	for (;;) {
		fd = (int)syscall(SYS_openat2, root, part, &how, sizeof(how));
		if (fd >= 0) {
			close(fd);
			close(root);
			return true;
		}
		if (errno != ENOENT) {
			close(root);
			return errno != EXDEV && errno != ELOOP;
		}
		/* Missing: its parent decides. */
		n = strlen(part);
		while (n > 0 && part[n - 1] == '/')
			part[--n] = '\0';
		while (n > 0 && part[n - 1] != '/')
			part[--n] = '\0';
		if (n == 0) {
			close(root);
			return true;
		}
	}
}

static int confine(struct berth_dconn *c, struct berth_opts *o, char *why,
		   size_t len)
{
	const char *name = c->mod->name;
	size_t nl = strlen(name);
	const char *d = o->dest ? o->dest : ".";
	char dir_rel[PATH_MAX];
	int i;

	/* "MODULE/PATH" names a path in the module. */
	if (!strncmp(d, name, nl) && (d[nl] == '/' || d[nl] == '\0'))
		d += nl + (d[nl] == '/');
	snprintf(c->request, sizeof(c->request), "%s%s%s", name, *d ? "/" : "",
		 d);
	if (berth_dpath_sanitize(d, 0, c->rel, sizeof(c->rel)) < 0 ||
	    place(c, "", c->rel, c->dest, sizeof(c->dest)) < 0)
		goto toolong;
	o->dest = c->dest;
	/* The directory the others are relative to. */
	snprintf(dir_rel, sizeof(dir_rel), "%s", c->rel);
	for (i = 0; i < o->n_alt_dest; i++) {
		if (place(c, dir_rel, o->alt_dest[i], c->alt[i],
			  sizeof(c->alt[i])) < 0)
			goto toolong;
		o->alt_dest[i] = c->alt[i];
	}
	if (o->temp_dir) {
		char s[PATH_MAX];
		struct stat st;

		if (berth_dpath_sanitize(o->temp_dir, 0, s, sizeof(s)) < 0 ||
		    place(c, o->temp_dir[0] == '/' ? "" : dir_rel, s, c->tmp,
			  sizeof(c->tmp)) < 0)
			goto toolong;
		/* As rsync: checked before the transfer, a usage error. */
		if (stat(c->tmp, &st) < 0 || !S_ISDIR(st.st_mode)) {
			snprintf(why, len, "The temp-dir does not exist: %s",
				 o->temp_dir);
			return RERR_SYNTAX;
		}
		o->temp_dir = c->tmp;
	} else if (c->mod->temp_dir) {
		o->temp_dir = c->mod->temp_dir; /* the admin's, as given */
	}
	if (o->backup_dir) {
		char s[PATH_MAX];

		if (berth_dpath_sanitize(o->backup_dir, 0, s, sizeof(s)) < 0 ||
		    place(c, o->backup_dir[0] == '/' ? "" : dir_rel, s,
			  c->backup, sizeof(c->backup)) < 0)
			goto toolong;
		o->backup_dir = c->backup;
	}
	/* Symlinks inside the module must not lead out of it (in a
	 * worker chrooted into the module, the chroot sees to that). */
	if (c->mod->use_chroot && c->mod->root == c->mod->path) {
		const char *paths[24];
		int n = 0;

		paths[n++] = c->dest;
		for (i = 0; i < o->n_alt_dest; i++)
			paths[n++] = c->alt[i];
		if (o->temp_dir == c->tmp)
			paths[n++] = c->tmp;
		if (o->backup_dir)
			paths[n++] = c->backup;
		for (i = 0; i < n; i++) {
			const char *rel = paths[i] + strlen(c->mod->root) + 1;

			if (!beneath(c, rel)) {
				snprintf(why, len,
					 "ERROR: %s leads out of module %s "
					 "(a symlink?)",
					 rel, name);
				return RERR_UNSUPPORTED;
			}
		}
	}
	return 0;
toolong:
	snprintf(why, len, "ERROR: a path is too long");
	return RERR_SYNTAX;
}

/* A directory option the daemon's rules exclude (@full: beneath the
 * module, or NULL). */
static bool excluded_dir(const struct berth_dconn *c, const char *full)
{
	size_t ml = strlen(c->mod->root);

	if (!full || strncmp(full, c->mod->root, ml) || full[ml] != '/')
		return false;
	return berth__dfilter_hides(c->filter, "", full + ml + 1, true);
}

/* The session's part of the module's rules (rsync's daemon applies them
 * in its receiver): incoming chmod, filters, munged links, numeric ids;
 * directory options its rules exclude are refused, as rsync refuses
 * them. */
static int policy(struct berth_dconn *c, struct berth_opts *o, char *why,
		  size_t len)
{
	const struct berth_dmod *m = c->mod;
	bool rejected = false;
	int i;

	memset(&c->pol, 0, sizeof(c->pol));
	c->pol.chmod = m->chmod;
	c->pol.filter = c->filter;
	/* DEST as the rules see it (no trailing "/"), and as rsync's
	 * messages show it (from the chroot's "/" with one). */
	snprintf(c->pol_rel, sizeof(c->pol_rel), "%s",
		 strcmp(c->rel, ".") ? c->rel : "");
	for (size_t n = strlen(c->pol_rel); n && c->pol_rel[n - 1] == '/';)
		c->pol_rel[--n] = '\0';
	snprintf(c->pol_shown, sizeof(c->pol_shown), "%s%s",
		 m->use_chroot ? "/" : "", c->rel);
	c->pol.dest_rel = c->pol_rel;
	c->pol.dest_shown = c->pol_shown;
	c->pol.module = m->name;
	c->pol.chroot = m->use_chroot;
	c->pol.munge_links = m->munge_symlinks < 0 ? !m->use_chroot
						   : m->munge_symlinks;
	/* As rsync: numeric by default with use chroot (no names looked
	 * up), else only when asked. */
	c->pol.numeric_ids = m->use_chroot ? m->numeric_ids != 0
					   : m->numeric_ids == 1;
	o->dpolicy = &c->pol;
	if (!c->filter)
		return 0;
	if (o->temp_dir == c->tmp)
		rejected |= excluded_dir(c, c->tmp);
	if (o->backup_dir)
		rejected |= excluded_dir(c, c->backup);
	if (o->partial_dir && o->partial_dir[0] == '/')
		rejected |= berth__dfilter_hides(c->filter, "",
						 o->partial_dir + 1, true);
	if (rejected) {
		snprintf(why, len,
			 "Your options have been rejected by the server.");
		return RERR_UNSUPPORTED;
	}
	for (i = 0; i < o->n_alt_dest; i++)
		rejected |= excluded_dir(c, o->alt_dest[i]);
	if (rejected) {
		/* rsync's receiver checks these once DEST is made. */
		(void)mkdir(c->dest, 0777);
		snprintf(why, len,
			 "Your options have been rejected by the server.");
		return RERR_SYNTAX;
	}
	return 0;
}

int berth__dconn_check(void *arg, struct berth_opts *o, char **argv,
		       char **more, char *why, size_t len)
{
	struct berth_dconn *c = arg;
	const struct berth_dmod *m = c->mod;
	int ret;

	/* As rsync's daemon: the client reads every message (there is no
	 * stderr to carry them). */
	o->msgs2stderr = 0;
	if (has_arg(argv, "--sender") || has_arg(more, "--sender")) {
		if (m->write_only) {
			snprintf(why, len, "ERROR: module is write only");
			return RERR_SYNTAX;
		}
		snprintf(why, len,
			 "berth's daemon only receives: pulls from %s are not "
			 "supported",
			 m->name);
		return RERR_UNSUPPORTED;
	}
	if (m->refuse_options && (refused(m->refuse_options, argv, why, len) ||
				  refused(m->refuse_options, more, why, len)))
		return RERR_UNSUPPORTED;
	if (c->ro) {
		snprintf(why, len, "ERROR: module is read only");
		return RERR_SYNTAX;
	}
	ret = confine(c, o, why, len);
	if (ret == 0)
		ret = policy(c, o, why, len);
	if (ret)
		return ret;
	if (m->fake_super) {
		o->fake_super = true;
		o->super = false;
	} else if (o->fake_super) {
		/* As rsync's daemon: a client's --fake-super means --super. */
		o->fake_super = false;
		o->super = true;
	}
	if (o->verbose > m->max_verbosity)
		o->verbose = m->max_verbosity;
	if (m->timeout && (!o->timeout || m->timeout < o->timeout))
		o->timeout = m->timeout;
	if (c->d->bwlimit && (!o->bwlimit || o->bwlimit > c->d->bwlimit))
		o->bwlimit = c->d->bwlimit;
	if (m->ignore_errors)
		o->ignore_errors = true;
	return 0;
}
