/* SPDX-License-Identifier: MIT */
/*
 * berth --restrict=DIR: the command of an sshd forced command
 * (authorized_keys: command="berth --restrict=/srv/backup/host1",restrict)
 * in the spirit of rsync's rrsync.  sshd runs it whatever the client
 * asked for and puts the client's command in SSH_ORIGINAL_COMMAND; berth
 * runs that command only if it is a push ("rsync --server ... . DEST"),
 * with DEST and every path option beneath DIR:
 *
 *   - the words are split as a shell splits one simple command (blanks,
 *     backslashes, quotes: what rsync's client escapes for the remote
 *     shell); anything that would be shell syntax (; & | < > $ ` ( ) #)
 *     is refused;
 *   - pulls (--sender), a daemon over ssh (--daemon), secluded arguments
 *     (-s: the real arguments would come later, unchecked), a
 *     --files-from file on this host and filter options on the command
 *     line are refused;
 *   - DEST is taken beneath DIR (a leading "/" means DIR); --link-dest,
 *     --compare-dest, --copy-dest, --backup-dir and --temp-dir are taken
 *     relative to DEST (absolute: to DIR), as rsync takes them, and
 *     rewritten as absolute paths beneath DIR; none may climb out of DIR
 *     with "..", nor pass through a symlink (openat2 RESOLVE_BENEATH |
 *     RESOLVE_NO_SYMLINKS); --partial-dir must be one name;
 *   - DEST is opened (made if missing: its last component, or every one
 *     with --mkpath) and handed to the session as its directory fd, so
 *     the session never resolves DEST itself.
 *
 * What is vetted is what the session's own parser reads (the same
 * berth_opts_parse() runs here), so a trick that splits or shifts the
 * words differently is caught on the parsed options.  Every other option
 * goes to the session, which refuses what berth does not support after
 * the handshake, as always.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli/cli_int.h"
#include "protocol/proto_opts.h"

#define REFUSED CLI_RERR_UNSUPPORTED

static int refuse(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int refuse(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* sshd carries stderr to the client's terminal. */
	fprintf(stderr, "berth --restrict: %s\n", msg);
	return code;
}

/* -------------------------------------------------------- words */

/*
 * Split @cmd into r->argv as a POSIX shell splits a simple command with
 * nothing to expand.  Returns 0, or -1 with @why set.
 */
static int split_words(struct restricted *r, const char *cmd, const char **why)
{
	char *o = r->buf, *end = r->buf + sizeof(r->buf) - 1;
	const char *p = cmd;
	bool in_word = false;

#define PUT(ch)                                           \
	do {                                              \
		if (o >= end) {                           \
			*why = "the command is too long"; \
			return -1;                        \
		}                                         \
		*o++ = (ch);                              \
	} while (0)

	r->argc = 0;
	for (;;) {
		char ch = *p;

		if (ch == '\0' || ch == ' ' || ch == '\t') {
			if (in_word)
				PUT('\0');
			in_word = false;
			if (!ch)
				break;
			p++;
			continue;
		}
		if (!in_word) {
			if (ch == '#') {
				*why = "shell syntax (#) is not allowed";
				return -1;
			}
			if (r->argc == RESTRICT_MAX_ARGS) {
				*why = "too many arguments";
				return -1;
			}
			r->argv[r->argc++] = o;
			in_word = true;
		}
		if (ch == '\\') {
			if (!p[1]) {
				*why = "a trailing backslash";
				return -1;
			}
			if (p[1] != '\n')
				PUT(p[1]);
			p += 2;
		} else if (ch == '\'') {
			for (p++; *p && *p != '\''; p++)
				PUT(*p);
			if (!*p) {
				*why = "an unterminated quote";
				return -1;
			}
			p++;
		} else if (ch == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '$' || *p == '`') {
					*why = "shell expansion is not allowed";
					return -1;
				}
				if (*p == '\\' && p[1] &&
				    strchr("\\\"$`", p[1]))
					p++;
				PUT(*p);
			}
			if (!*p) {
				*why = "an unterminated quote";
				return -1;
			}
			p++;
		} else if (strchr(";&|<>()$`\n\r", ch)) {
			*why = "shell syntax is not allowed";
			return -1;
		} else {
			PUT(ch);
			p++;
		}
	}
	r->argv[r->argc] = NULL;
	return 0;
#undef PUT
}

/* -------------------------------------------------------- paths */

/*
 * Join @base (relative to DIR, may be empty) and @rel lexically, "." and
 * ".." resolved, into @out (relative to DIR, "" for DIR itself).  Returns
 * 0, or -1 when ".." would climb above DIR or the result is too long.
 */
static int join_beneath(char *out, size_t cap, const char *base,
			const char *rel)
{
	char tmp[PATH_MAX * 2];
	size_t len = 0;
	char *save = NULL, *part;

	if (snprintf(tmp, sizeof(tmp), "%s/%s", base, rel) >= (int)sizeof(tmp))
		return -1;
	out[0] = '\0';
	for (part = strtok_r(tmp, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		if (!strcmp(part, "."))
			continue;
		if (!strcmp(part, "..")) {
			char *slash;

			if (len == 0)
				return -1;
			slash = strrchr(out, '/');
			len = slash ? (size_t)(slash - out) : 0;
			out[len] = '\0';
			continue;
		}
		if (len + strlen(part) + 2 > cap)
			return -1;
		if (len)
			out[len++] = '/';
		strcpy(out + len, part);
		len += strlen(part);
	}
	return 0;
}

static int open_beneath(int dirfd, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
			   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	long fd;

	fd = syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* A path that exists in part or not at all is fine; one that passes
 * through a symlink (or another filesystem) is not. */
static int check_beneath(int dirfd, const char *rel)
{
	int fd = open_beneath(dirfd, rel, O_PATH);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return fd == -ENOENT || fd == -ENOTDIR ? 0 : fd;
}

/* Open DEST (relative to DIR) as a directory, making what is missing: the
 * last component, or every one with --mkpath. */
static int open_dest(int dirfd, const char *rel, bool mkpath, int *out)
{
	char path[PATH_MAX], *slash;
	int fd, pfd, ret;

	fd = open_beneath(dirfd, rel, O_RDONLY | O_DIRECTORY);
	if (fd != -ENOENT) {
		*out = fd;
		return fd < 0 ? fd : 0;
	}
	snprintf(path, sizeof(path), "%s", rel);
	slash = strrchr(path, '/');
	if (slash) {
		*slash = '\0';
		pfd = open_beneath(dirfd, path, O_RDONLY | O_DIRECTORY);
		if (pfd == -ENOENT && mkpath) {
			ret = open_dest(dirfd, path, true, &pfd);
			if (ret < 0)
				return ret;
		}
		if (pfd < 0)
			return pfd;
	} else {
		pfd = dup(dirfd);
		if (pfd < 0)
			return -errno;
	}
	ret = mkdirat(pfd, slash ? slash + 1 : path, 0777);
	ret = ret < 0 && errno != EEXIST ? -errno : 0;
	if (ret == 0) {
		fd = open_beneath(pfd, slash ? slash + 1 : path,
				  O_RDONLY | O_DIRECTORY);
		ret = fd < 0 ? fd : 0;
		*out = fd;
	}
	close(pfd);
	return ret;
}

/* ------------------------------------------------------ options */

/* Long options whose value may be the next word (berth's parser reads
 * them so); only to keep the rewriting in step with it. */
static const char *const valued[] = {
	"--log-format",
	"--out-format",
	"--max-delete",
	"--min-size",
	"--max-size",
	"--partial-dir",
	"--backup-dir",
	"--suffix",
	"--compare-dest",
	"--copy-dest",
	"--link-dest",
	"--temp-dir",
	"--checksum-seed",
	"--checksum-choice",
	"--cc",
	"--compress-choice",
	"--zc",
	"--compress-level",
	"--zl",
	"--usermap",
	"--groupmap",
	"--timeout",
	"--bwlimit",
	"--modify-window",
	"--info",
	"--debug",
	"--max-alloc",
	"--block-size",
	"--iconv",
	"--files-from",
	"--only-write-batch",
	"--write-batch",
	"--read-batch",
	"--stop-at",
	"--stop-after",
	"--time-limit",
	NULL,
};

/* Path options rewritten beneath DIR. */
static const char *const path_opts[] = {
	"--link-dest",	"--compare-dest", "--copy-dest",
	"--backup-dir", "--temp-dir",	  NULL,
};

/* Refused on the command line whatever their value. */
static const char *const refused_opts[] = {
	"--sender",	  "--daemon",	"--secluded-args",   "--protect-args",
	"--filter",	  "--include",	"--exclude",	     "--include-from",
	"--exclude-from", "--log-file", "--log-file-format", NULL,
};

static bool opt_is(const char *word, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncmp(word, name, n) != 0)
		return false;
	if (word[n] == '=') {
		*val = word + n + 1;
		return true;
	}
	if (word[n] == '\0') {
		*val = NULL;
		return true;
	}
	return false;
}

struct vet {
	struct restricted *r;
	const char *dir; /* DIR, absolute */
	int dirfd;
	char dest[PATH_MAX]; /* DEST relative to DIR */
};

/* Rewrite one path option's value: beneath DIR, absolute. */
static int rewrite_path(struct vet *v, const char *opt, const char *val,
			char **word, bool joined)
{
	struct restricted *r = v->r;
	char rel[PATH_MAX];
	char *out;
	int ret;

	if (!*val)
		return refuse(REFUSED, "%s: an empty path", opt);
	if (r->npaths == (int)(sizeof(r->paths) / sizeof(r->paths[0])))
		return refuse(REFUSED, "too many path options");
	if (join_beneath(rel, sizeof(rel), val[0] == '/' ? "" : v->dest, val) <
	    0)
		return refuse(REFUSED, "%s=%s: outside the allowed directory",
			      opt, val);
	ret = check_beneath(v->dirfd, rel);
	if (ret < 0)
		return refuse(REFUSED, "%s=%s: %s", opt, val,
			      ret == -ELOOP || ret == -EXDEV
				      ? "through a symlink or a mount"
				      : strerror(-ret));
	out = r->paths[r->npaths++];
	if (joined)
		ret = snprintf(out, sizeof(r->paths[0]), "%s=%s%s%s", opt,
			       v->dir, *rel ? "/" : "", rel);
	else
		ret = snprintf(out, sizeof(r->paths[0]), "%s%s%s", v->dir,
			       *rel ? "/" : "", rel);
	if (ret >= (int)sizeof(r->paths[0]))
		return refuse(REFUSED, "%s: path too long", opt);
	*word = out;
	return 0;
}

/* Does @p point at a value this file wrote? */
static bool rewritten(const struct restricted *r, const char *p)
{
	for (int k = 0; k < r->npaths; k++) {
		const char *w = r->paths[k];
		const char *eq = strchr(w, '=');

		if (p == w || (w[0] == '-' && eq && p == eq + 1))
			return true;
	}
	return false;
}

/* The words after "--server": refused options, path options rewritten. */
static int vet_words(struct vet *v)
{
	struct restricted *r = v->r;
	const char *val;
	int i, k, ret;

	for (i = 2; i < r->argc; i++) {
		char *a = r->argv[i];

		if (a[0] != '-' || !a[1])
			continue; /* "." and DEST: read by the parser below */
		if (a[1] != '-') {
			/* A letter cluster: -s before 'e' (after 'e' come the
			 * client's capabilities). */
			for (const char *c = a + 1; *c && *c != 'e'; c++)
				if (*c == 's')
					return refuse(REFUSED,
						      "-s (secluded arguments) "
						      "is not allowed: its "
						      "arguments could not be "
						      "checked");
			continue;
		}
		for (k = 0; refused_opts[k]; k++)
			if (opt_is(a, refused_opts[k], &val))
				return refuse(
					REFUSED, "%s is not allowed%s",
					refused_opts[k],
					!strcmp(refused_opts[k], "--sender")
						? ": pushes only (berth "
						  "receives)"
						: "");
		if (opt_is(a, "--files-from", &val)) {
			if (!val && i + 1 < r->argc)
				val = r->argv[i + 1];
			if (!val || strcmp(val, "-") != 0)
				return refuse(REFUSED,
					      "--files-from: only a list the "
					      "client sends is allowed");
		}
		for (k = 0; path_opts[k]; k++) {
			if (!opt_is(a, path_opts[k], &val))
				continue;
			if (val)
				ret = rewrite_path(v, path_opts[k], val,
						   &r->argv[i], true);
			else if (i + 1 < r->argc)
				ret = rewrite_path(v, path_opts[k],
						   r->argv[i + 1],
						   &r->argv[i + 1], false);
			else
				ret = 0; /* the session says it is missing */
			if (ret)
				return ret;
			break;
		}
		for (k = 0; valued[k]; k++)
			if (!strcmp(a, valued[k])) {
				i++; /* its value is the next word */
				break;
			}
	}
	return 0;
}

/* The options as the session will read them: every path in them must be
 * one this file vetted. */
static int vet_parsed(struct vet *v, const struct berth_opts *o)
{
	struct restricted *r = v->r;
	const char *p;

	if (o->daemon)
		return refuse(REFUSED, "--daemon is not allowed");
	if (o->secluded)
		return refuse(REFUSED, "-s (secluded arguments) is not "
				       "allowed");
	if (o->files_from && strcmp(o->files_from, "-") != 0)
		return refuse(REFUSED, "--files-from: only a list the client "
				       "sends is allowed");
	for (int j = 0; j < o->n_alt_dest && j < BERTH_MAX_ALT_DEST; j++)
		if (!rewritten(r, o->alt_dest[j]))
			return refuse(REFUSED, "%s: not allowed",
				      o->alt_dest[j]);
	if ((o->backup_dir && !rewritten(r, o->backup_dir)) ||
	    (o->temp_dir && !rewritten(r, o->temp_dir)))
		return refuse(REFUSED, "a path option not allowed");
	p = o->partial_dir;
	if (p && (strchr(p, '/') || !strcmp(p, "..") || !strcmp(p, ".")))
		return refuse(REFUSED,
			      "--partial-dir=%s: only a name is "
			      "allowed (e.g. .rsync-partial)",
			      p);
	return 0;
}

int berth__restrict_prep(struct restricted *r, const char *dir, const char *cmd)
{
	struct berth_opts o;
	struct vet v = {.r = r, .dirfd = -1};
	char absdir[PATH_MAX];
	const char *why = NULL;
	int ret;

	r->dest_fd = -1;
	r->npaths = 0;
	if (!cmd || !*cmd)
		return refuse(CLI_RERR_SYNTAX,
			      "SSH_ORIGINAL_COMMAND is not set: berth "
			      "--restrict=DIR is an sshd forced command "
			      "(authorized_keys: command=\"berth "
			      "--restrict=DIR\")");
	if (split_words(r, cmd, &why) < 0)
		return refuse(CLI_RERR_SYNTAX, "%s: %s", why, cmd);
	if (r->argc < 2 || strcmp(r->argv[1], "--server") != 0)
		return refuse(REFUSED,
			      "only an rsync push is allowed here (rsync "
			      "--server ...), not: %s",
			      cmd);
	if (!realpath(dir, absdir))
		return refuse(CLI_RERR_FILESELECT, "%s: %s", dir,
			      strerror(errno));
	v.dir = absdir;
	v.dirfd = open(absdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v.dirfd < 0)
		return refuse(CLI_RERR_FILESELECT, "%s: %s", absdir,
			      strerror(errno));

	/* DEST first: relative path options are relative to it. */
	berth_opts_parse(&o, r->argc, r->argv);
	if (o.dest && join_beneath(v.dest, sizeof(v.dest), "", o.dest) < 0) {
		ret = refuse(REFUSED, "%s: outside the allowed directory",
			     o.dest);
		goto out;
	}
	ret = vet_words(&v);
	if (ret)
		goto out;
	berth_opts_parse(&o, r->argc, r->argv);
	ret = vet_parsed(&v, &o);
	if (ret)
		goto out;
	if (!o.dest)
		goto out; /* the session refuses it after the handshake */
	ret = open_dest(v.dirfd, v.dest, o.mkpath, &r->dest_fd);
	if (ret < 0)
		ret = refuse(ret == -ELOOP || ret == -EXDEV
				     ? REFUSED
				     : CLI_RERR_FILESELECT,
			     "%s: %s", o.dest,
			     ret == -ELOOP || ret == -EXDEV
				     ? "through a symlink or a mount"
				     : strerror(-ret));
out:
	close(v.dirfd);
	return ret;
}

void berth__restrict_destroy(struct restricted *r)
{
	if (r->dest_fd >= 0)
		close(r->dest_fd);
	r->dest_fd = -1;
}
