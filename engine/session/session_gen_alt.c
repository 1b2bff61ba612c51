/* SPDX-License-Identifier: MIT */
/*
 * The generator's alt-dest and -c work: --link-dest/--compare-dest/
 * --copy-dest lookups in the old snapshots (never through symlinks),
 * whole-file checksums for -c, and copies from an alt dir.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_sys.h"
#include "engine/session/session_xattr.h"
#include "engine/session/session_gen_int.h"

/* The first alt-dest dir holding a directory at @f's name: its index, or
 * -1. */
int berth__gen_alt_dir_stat(struct berth_session *s, const struct berth_file *f,
			    struct stat *st)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	bool found = false;
	int j, fd;

	for (j = 0; j < s->dest.nalt; j++) {
		if (s->dest.alt_fd[j] < 0)
			continue;
		if (strcmp(fname, ".") == 0)
			fd = fcntl(s->dest.alt_fd[j], F_DUPFD_CLOEXEC, 0);
		else
			fd = berth__sys_open(s, s->dest.alt_fd[j], fname,
					     O_PATH | O_NOFOLLOW);
		if (fd < 0)
			continue;
		found = fstat(fd, st) == 0 && S_ISDIR(st->st_mode);
		close(fd);
		if (found)
			return j;
	}
	return -1;
}

/*
 * -c: the destination's unseeded whole-file digest (the --checksum type)
 * equals the one in the file list.  A file that cannot be read differs.
 */
bool berth__gen_checksum_matches(struct berth_session *s, int dirfd,
				 const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];
	struct berth_csum_ctx ctx;
	unsigned len = berth_csum_digest_len(s->neg.hs.file_csum);
	size_t bufsize = 256 * 1024;
	uint8_t *buf;
	bool ok = false;
	ssize_t n;
	off_t off = 0;
	int fd;

	if (!f->ext->sum || !len)
		return false;
	fd = berth__sys_open_read(s, dirfd, fname);
	if (fd < 0)
		return false;
	buf = malloc(bufsize);
	if (buf && berth_csum_ctx_init(&ctx, s->neg.hs.file_csum) == 0) {
		while ((n = berth__sys_pread(s, fd, buf, bufsize,
					     (uint64_t)off)) > 0) {
			berth_csum_ctx_update(&ctx, buf, (size_t)n);
			off += n;
		}
		if (n == 0 && berth_csum_ctx_final(&ctx, sum) == len)
			ok = memcmp(sum, f->ext->sum, len) == 0;
		berth_csum_ctx_destroy(&ctx);
	}
	free(buf);
	close(fd);
	return ok;
}

/* @name in alt dir @j, not followed if a symlink (O_PATH); -1 if none. */
static int alt_open(struct berth_session *s, int j, const char *name)
{
	if (s->dest.alt_fd[j] < 0)
		return -1;
	return berth__sys_open(s, s->dest.alt_fd[j], name, O_PATH | O_NOFOLLOW);
}

/*
 * How well the file in alt-dest dir @j matches @f, as rsync grades it:
 * 0 none, 1 a regular file (a basis), 2 the same content by the quick
 * check, 3 also the same attributes.  Lookups never follow symlinks.
 */
static int alt_match(struct berth_session *s, int j, const struct berth_file *f,
		     struct stat *st)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	int fd, level = 0;

	fd = alt_open(s, j, fname);
	if (fd < 0)
		return 0;
	if (fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
		level = 1;
		if (st->st_size == f->size &&
		    (s->opts.checksum ? berth__gen_checksum_matches(
						s, s->dest.alt_fd[j], f)
		     : s->opts.size_only
			     ? true
			     : !s->opts.ignore_times &&
				       !berth__gen_mtime_differs(s, f, st)))
			level = 2;
		if (level == 2 &&
		    !(berth__gen_itemize(s, f, st, 0) &
		      (BERTH_ITEM_REPORT_TIME | BERTH_ITEM_REPORT_PERMS |
		       BERTH_ITEM_REPORT_OWNER | BERTH_ITEM_REPORT_GROUP)) &&
		    berth__xa_gen_same(s, f, s->dest.alt_fd[j], fname))
			level = 3;
	}
	close(fd);
	return level;
}

/*
 * The same content in alt dir @j (--copy-dest, or any alt type when the
 * attributes differ) is copied here instead of transferred; reported as a
 * local change, compared with that copy (-X: its xattrs come along).
 */
static int copy_from_alt(struct berth_session *s, int32_t ndx,
			 const struct berth_file *f, int j,
			 const struct stat *st)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	uint32_t iflags = berth__gen_itemize(s, f, st,
					     BERTH_ITEM_LOCAL_CHANGE) |
			  berth__xa_gen_itemize(s, f, s->dest.alt_fd[j], fname);
	struct berth_commit_file *cf = NULL;
	struct berth_commit_meta m;
	size_t bufsize = 256 * 1024;
	uint8_t *buf = NULL;
	off_t off = 0;
	ssize_t n = 0;
	int fd, ret;

	if (!s->opts.dry_run) {
		fd = berth__sys_open_read(s, s->dest.alt_fd[j], fname);
		if (fd < 0)
			return fd;
		berth__session_meta(s, f, false, 0, &m);
		m.user = (void *)(intptr_t)(ndx + 1); /* events */
		m.size_hint = (uint64_t)f->size;
		/* rsync's copy takes the alt file's xattrs along. */
		ret = berth__xa_gen_copy(s, s->dest.alt_fd[j], fname,
					 &m.xattrs);
		if (ret < 0) {
			close(fd);
			return ret;
		}
		buf = malloc(bufsize);
		if (!buf)
			free(m.xattrs);
		ret = buf ? berth_commit_file_begin(s->stg.commit, fname, &m, 0,
						    &cf)
			  : -ENOMEM;
		while (ret == 0 && (n = berth__sys_pread(s, fd, buf, bufsize,
							 (uint64_t)off)) > 0) {
			ret = berth_commit_file_write(cf, buf, (size_t)n);
			off += n;
		}
		if (ret == 0 && n < 0)
			ret = (int)n;
		if (cf && ret == 0)
			ret = berth_commit_file_finish(cf);
		else if (cf)
			berth_commit_file_abort(cf);
		free(buf);
		close(fd);
		if (ret < 0)
			return ret;
	}
	return berth__gen_record_wanted(s, iflags)
		       ? berth__gen_put_record(s, ndx, iflags)
		       : 0;
}

/* --link-dest: @f's name becomes a hard link to its match in alt dir @j. */
static int link_from_alt(struct berth_session *s, int32_t ndx,
			 const struct berth_file *f, int j)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	const char *slash = strrchr(fname, '/');
	char *parent;
	int dfd, ret;

	parent = slash ? strndup(fname, (size_t)(slash - fname)) : strdup(".");
	if (!parent)
		return -ENOMEM;
	dfd = berth__sys_open(s, s->dest.alt_fd[j], parent,
			      O_PATH | O_DIRECTORY);
	free(parent);
	if (dfd < 0)
		return dfd;
	ret = berth_commit_hardlink_at(
		s->stg.commit, fname, dfd, berth__gen_base_name(fname),
		(void *)(intptr_t)(ndx + 1)); /* events */
	close(dfd);
	return ret;
}

/*
 * How well the symlink, device or special in alt dir @j matches @f, as
 * rsync grades it: 0 none, 1 the same kind (any device for a device, a
 * fifo or socket for a special), 2 the same target or device number, 3
 * also the same attributes.  Never followed.
 */
static int alt_match_nonreg(struct berth_session *s, int j,
			    const struct berth_file *f, struct stat *st)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	mode_t type = f->mode & S_IFMT, t;
	char target[4096];
	int fd, level = 0;
	ssize_t n;

	fd = alt_open(s, j, fname);
	if (fd < 0)
		return 0;
	if (fstat(fd, st) < 0)
		goto out;
	t = st->st_mode & S_IFMT;
	if (S_ISLNK(type)) {
		if (!S_ISLNK(t))
			goto out;
		level = 1;
		n = readlinkat(fd, "", target, sizeof(target));
		if (n != (ssize_t)f->ext->link_len ||
		    memcmp(target, f->ext->link, (size_t)n) != 0)
			goto out;
	} else if (S_ISCHR(type) || S_ISBLK(type)) {
		if (!S_ISCHR(t) && !S_ISBLK(t))
			goto out;
		level = 1;
		if (st->st_rdev !=
		    makedev(f->ext->rdev_major, f->ext->rdev_minor))
			goto out;
	} else {
		if (!S_ISFIFO(t) && !S_ISSOCK(t))
			goto out;
		level = 1;
	}
	level = 2;
	if (!(berth__gen_itemize(s, f, st, 0) &
	      (BERTH_ITEM_REPORT_TIME | BERTH_ITEM_REPORT_PERMS |
	       BERTH_ITEM_REPORT_OWNER | BERTH_ITEM_REPORT_GROUP)) &&
	    berth__xa_gen_same(s, f, s->dest.alt_fd[j], fname))
		level = 3;
out:
	close(fd);
	return level;
}

int berth__gen_nonreg_alt(struct gen *g, int32_t ndx,
			  const struct berth_file *f, struct stat *st, int *jp,
			  bool *quiet)
{
	struct berth_session *s = g->s;
	int j, lv, best = -1, level = 0, ret;
	struct stat cur;

	*jp = -1;
	*quiet = false;
	for (j = 0; j < s->dest.nalt; j++) {
		lv = alt_match_nonreg(s, j, f, &cur);
		if (lv > level) {
			level = lv;
			best = j;
			*st = cur;
		}
		if (lv == 3)
			break;
	}
	if (level < 3) {
		*jp = best;
		return 0;
	}
	if (s->opts.alt_dest_type == BERTH_ALT_COPY) {
		/* Made here like a copy, and not reported. */
		*jp = best;
		*quiet = true;
		return 0;
	}
	if (s->opts.alt_dest_type == BERTH_ALT_LINK && !s->opts.dry_run) {
		ret = link_from_alt(s, ndx, f, best);
		if (ret < 0)
			return ret;
	}
	/* Reported only at -ii. */
	if (s->opts.verbose >= 2 ||
	    (s->opts.log_format && strstr(s->opts.log_format, "%i%I"))) {
		ret = s->opts.alt_dest_type == BERTH_ALT_LINK
			      ? berth__gen_put_link_record(s, ndx, NULL)
			      : berth__gen_put_record(s, ndx, 0);
		if (ret < 0)
			return ret;
	}
	return 1;
}

struct alt_atime {
	int fd;
	int64_t atime;
};

static ssize_t alt_atime_run(void *arg)
{
	const struct alt_atime *a = arg;
	struct timespec ts[2] = {{a->atime, 0}, {0, UTIME_OMIT}};
	char path[32];

	if (berth_plat_fd_path(a->fd, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	return utimensat(AT_FDCWD, path, ts, 0) < 0 ? -errno : 0;
}

/*
 * -U --link-dest: rsync sets the sender's atime on the file it linked, so
 * on the old snapshot's inode; done here on that inode (the link is
 * queued), where the atime differs.  A failure is reported (exit 23).
 */
static void alt_link_atime(struct berth_session *s, int j,
			   const struct berth_file *f, const struct stat *st)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_commit_meta m;
	struct alt_atime a;
	int ret;

	berth__session_meta(s, f, true, st->st_mode, &m);
	if (!m.atime_set || !berth__gen_atime_differs(s, f, st))
		return;
	a.atime = m.atime_sec;
	a.fd = berth__sys_open(s, s->dest.alt_fd[j], fname,
			       O_PATH | O_NOFOLLOW);
	ret = a.fd < 0 ? a.fd : (int)berth__sys_call(s, alt_atime_run, &a);
	if (a.fd >= 0)
		close(a.fd);
	if (ret < 0)
		berth__session_file_error(s, "failed to set times on %s: %s\n",
					  fname, berth_strerror(ret));
}

/*
 * A file missing from the destination, with alt-dest dirs: a complete
 * match is hard-linked (--link-dest) or left out (--compare-dest); the
 * same content is copied; any other regular file there serves as the
 * delta basis (basis type j).
 */
int berth__gen_file_alt(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	struct stat st, best_st;
	int j, lv, best = -1, level = 0, ret;

	for (j = 0; j < s->dest.nalt; j++) {
		lv = alt_match(s, j, f, &st);
		if (lv > level) {
			level = lv;
			best = j;
			best_st = st;
		}
		if (lv == 3)
			break;
	}
	if (level == 3 && s->opts.alt_dest_type != BERTH_ALT_COPY) {
		if (s->opts.alt_dest_type == BERTH_ALT_LINK &&
		    !s->opts.dry_run) {
			ret = link_from_alt(s, ndx, f, best);
			if (ret < 0)
				return ret;
			alt_link_atime(s, best, f, &best_st);
		}
		/* -U --compare-dest: rsync itemizes the match with the
		 * item it compared, so a differing atime shows ('u'). */
		if (s->opts.alt_dest_type == BERTH_ALT_COMPARE &&
		    (berth__gen_itemize(s, f, &best_st, 0) &
		     BERTH_ITEM_REPORT_ATIME))
			return berth__gen_put_record(
				s, ndx, berth__gen_itemize(s, f, &best_st, 0));
		/* Reported only at -ii (an empty xname). */
		if (s->opts.verbose >= 2 ||
		    (s->opts.log_format && strstr(s->opts.log_format, "%i%I")))
			return berth__gen_put_link_record(s, ndx, NULL);
		return 0;
	}
	/* The same content with other attributes (or xattrs), or any full
	 * match with --copy-dest: rsync copies the file locally, for every
	 * alt-dest type (try_dests_reg), and fixes the attributes. */
	if (level >= 2)
		return copy_from_alt(s, ndx, f, best, &best_st);
	if (level >= 1)
		return berth__gen_request_file(
			g, ndx,
			berth__gen_itemize(s, f, &best_st,
					   BERTH_ITEM_TRANSFER) |
				berth__xa_gen_itemize(
					s, f, s->dest.alt_fd[best], fname),
			s->dest.alt_fd[best], best, false);
	return berth__gen_request_file(
		g, ndx,
		BERTH_ITEM_TRANSFER | BERTH_ITEM_IS_NEW |
			berth__xa_gen_itemize(s, f, -1, NULL),
		-1, -1, false);
}
