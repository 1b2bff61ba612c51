/* SPDX-License-Identifier: MIT */
/*
 * The destination and the alt-dest directories: DEST opened (and made, with
 * --mkpath or as rsync makes a missing last component), the "local name"
 * mode of a single file pushed to a new name, --link-dest/--compare-dest/
 * --copy-dest opened beneath or by absolute path.  Every path of a session
 * is opened beneath a directory it holds (berth_plat_open_beneath(), or
 * berth__sys_open() for the generator), never through a symlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/path/path.h"
#include "engine/session/session.h"

/* Make -p style path components for --mkpath (DEST's parents). */
static int mkpath(const char *dest)
{
	char *p = strdup(dest), *q;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	for (q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, 0777) < 0 && errno != EEXIST) {
			ret = -errno;
			break;
		}
		*q = '/';
	}
	free(p);
	return ret;
}

/*
 * --link-dest / --compare-dest dirs, relative to the destination unless
 * absolute.  They are chosen by whoever runs the server (as with rsync);
 * lookups inside them never follow symlinks.  A missing one is skipped.
 */
static int open_alt_dirs(struct berth_session *s)
{
	int j;

	for (j = 0; j < BERTH_MAX_ALT_DEST; j++)
		s->dest.alt_fd[j] = -1;
	s->dest.nalt = s->opts.n_alt_dest;
	for (j = 0; j < s->dest.nalt; j++) {
		s->dest.alt_fd[j] = openat(s->dest.root_fd, s->opts.alt_dest[j],
					   O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (s->dest.alt_fd[j] < 0)
			berth__session_log(s, BERTH_LOG_WARNING,
					   "%s arg does not exist: %s\n",
					   s->opts.alt_dest_type ==
							   BERTH_ALT_LINK
						   ? "--link-dest"
						   : "--compare-dest",
					   s->opts.alt_dest[j]);
	}
	return 0;
}

/*
 * The full path of directory @dir as rsync's receiver holds its working
 * directory after changing into it: absolute (from the current directory),
 * with empty and "." parts dropped and ".." taken lexically.  NULL when
 * out of memory or when the current directory is unknown.
 */
static char *full_path(const char *dir)
{
	char cwd[4096], *out, *w;
	const char *p = dir;
	size_t cap;

	if (dir[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return NULL;
	cap = (dir[0] == '/' ? 0 : strlen(cwd)) + strlen(dir) + 2;
	out = malloc(cap);
	if (!out)
		return NULL;
	strcpy(out, dir[0] == '/' ? "" : cwd);
	w = out + strlen(out);
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (w > out && *--w != '/')
				;
			*w = '\0';
		} else if (n && !(n == 1 && p[0] == '.')) {
			*w++ = '/';
			memcpy(w, p, n);
			w += n;
			*w = '\0';
		}
		p = *e ? e + 1 : e;
	}
	if (w == out)
		strcpy(out, "/");
	return out;
}

/*
 * A failure of @call on DEST that ends the session, worded as rsync's
 * receiver words it before it forks (its rsyserr() on full_fname(): the
 * path as given, after the current directory unless absolute): @err is
 * an errno.  Returns -@err.
 */
static int dest_fatal(struct berth_session *s, int code, const char *call,
		      const char *dest, int err)
{
	char cwd[4096] = "";

	if (dest[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		cwd[0] = '\0';
	berth__session_fatal(
		s, code, "berth: [Receiver] %s \"%s%s%s\" failed: %s (%d)\n",
		call, cwd, *cwd ? "/" : "", dest, strerror(err), err);
	return -err;
}

/*
 * rsync's "local name" mode: one non-directory item whose DEST is a file
 * or a new name: DEST's directory is the root, the item takes its name.
 */
static int open_local_name(struct berth_session *s, const char *dest)
{
	const char *slash = strrchr(dest, '/');
	char *dir;
	int err;

	s->dest.local_name = strdup(slash ? slash + 1 : dest);
	dir = slash ? strndup(dest, (size_t)(slash - dest)) : strdup(".");
	if (!s->dest.local_name || !dir) {
		free(dir);
		return -ENOMEM;
	}
	s->dest.root_fd = open(*dir ? dir : "/",
			       O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	err = errno;
	if (s->dest.root_fd >= 0)
		s->dest.full = full_path(*dir ? dir : "/");
	free(dir);
	if (s->dest.root_fd < 0)
		return dest_fatal(s, RERR_FILESELECT, "change_dir#3", dest,
				  err);
	/* The list's one entry, at the top (its directory part is ""). */
	berth__first_list(s)->files[0].base = s->dest.local_name;
	return open_alt_dirs(s);
}

/* §2.1 DEST semantics (an agent may impose the directory instead). */
int berth__open_dest(struct berth_session *s)
{
	const char *dest = s->cfg.sopts.dest_path ? s->cfg.sopts.dest_path
						  : s->opts.dest;
	size_t len = strlen(dest);
	struct stat st;
	char shown[4096];
	int ret;

	if (s->cfg.sopts.dest_dirfd >= 0) {
		s->dest.root_fd = fcntl(s->cfg.sopts.dest_dirfd,
					F_DUPFD_CLOEXEC, 0);
		return s->dest.root_fd < 0 ? -errno : open_alt_dirs(s);
	}
	if (s->opts.mkpath && (ret = mkpath(dest)) < 0) {
		dest_fatal(s, RERR_FILEIO, "mkdir", dest, -ret);
		return -EIO;
	}
	if (stat(dest, &st) == 0 && !S_ISDIR(st.st_mode)) {
		if (berth__first_list(s)->count > 1 ||
		    S_ISDIR(berth__first_list(s)->files[0].mode)) {
			berth__session_fatal(
				s, RERR_FILESELECT,
				"ERROR: destination must be a directory when "
				"copying more than 1 file\n");
			return -ENOTDIR;
		}
		return open_local_name(s, dest);
	}
	if (stat(dest, &st) < 0) {
		if (errno != ENOENT)
			return dest_fatal(s, RERR_FILESELECT, "change_dir#3",
					  dest, errno);
		if (berth__first_list(s)->count == 1 &&
		    !S_ISDIR(berth__first_list(s)->files[0].mode) &&
		    dest[len - 1] != '/')
			return open_local_name(s, dest);
		snprintf(shown, sizeof(shown), "%.*s", (int)len, dest);
		while (len > 1 && shown[len - 1] == '/')
			shown[--len] = '\0';
		if (!s->opts.dry_run && mkdir(dest, 0777) < 0) {
			dest_fatal(s, RERR_FILEIO, "mkdir", shown, errno);
			return -EIO;
		}
		/* As rsync, where an entry --iconv dropped sorts first and
		 * hides the root from this check. */
		s->dest.dest_created = !s->ic.dropped;
		if (s->opts.verbose || s->opts.log_format)
			berth__session_log(s, BERTH_LOG_INFO,
					   "created directory %s\n", shown);
		if (s->opts.dry_run) {
			/* DEST does not exist: everything is new, nothing is
			 * looked up beneath it; any directory fd will do. */
			s->dest.root_fd = open("/", O_PATH | O_DIRECTORY |
							    O_CLOEXEC);
			return s->dest.root_fd < 0 ? -errno : 0;
		}
	}
	s->dest.root_fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dest.root_fd < 0)
		return dest_fatal(s, RERR_FILESELECT, "change_dir#3", dest,
				  errno);
	s->dest.full = full_path(dest);
	return open_alt_dirs(s);
}

void berth__dest_close(struct sess_dest *d)
{
	if (d->root_fd >= 0)
		close(d->root_fd);
	if (d->temp_dirfd >= 0)
		close(d->temp_dirfd);
	if (d->backup_dirfd >= 0)
		close(d->backup_dirfd);
	if (d->backup_base_fd >= 0)
		close(d->backup_base_fd);
	for (int j = 0; j < d->nalt; j++)
		if (d->alt_fd[j] >= 0)
			close(d->alt_fd[j]);
	free(d->local_name);
	free(d->bak_last);
	free(d->full);
	d->full = NULL;
	d->root_fd = d->temp_dirfd = d->backup_dirfd = d->backup_base_fd = -1;
	d->nalt = 0;
	d->local_name = d->bak_last = NULL;
}

/*
 * An absolute --backup-dir is resolved once, at start, as open(2) would
 * (the user's own path, symlinks and all), as far as it exists; what is
 * missing is made beneath that on first use, like a relative one beneath
 * the destination, never through a symlink (berth_path_backup_root()).
 */
int berth__open_backup_base(struct berth_session *s)
{
	const char *dir = s->opts.backup_dir;
	int fd;

	s->dest.backup_rest = dir;
	if (!dir || *dir != '/' || s->opts.dry_run)
		return 0;
	fd = berth_path_open_prefix(dir, &s->dest.backup_rest);
	if (fd < 0)
		s->dest.backup_err = fd; /* each backup fails, reported */
	else
		s->dest.backup_base_fd = fd;
	return 0;
}
