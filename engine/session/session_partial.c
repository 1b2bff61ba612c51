/* SPDX-License-Identifier: MIT */
/*
 * Partial, delayed and backed-up files: --partial-dir, --delay-updates
 * and the directories of --backup-dir.
 *
 * Both use one directory name (PDIR) beside each file: "DIR/PDIR/BASE"
 * holds the partial or delayed copy of "DIR/BASE".  A partial file is kept
 * there when a transfer is cut short and is the basis of the next attempt
 * (basis type 0x81); a delayed file is written there and renamed into place
 * in one sweep once every file is in (just before the generator's third
 * NDX_DONE, §10.1), so the tree changes all at once at the end.
 *
 * Everything that changes the tree goes through the commit stage; the
 * tidying (removing a used partial file, an emptied PDIR) is quiet: a
 * PDIR still holding other partial files simply stays.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/path/path.h"
#include "engine/session/session.h"

int berth__partial_path(const struct berth_session *s, const char *name,
			char *buf, size_t cap)
{
	const char *slash = strrchr(name, '/');
	int dirlen = slash ? (int)(slash - name) + 1 : 0;
	int n;

	n = snprintf(buf, cap, "%.*s%s/%s", dirlen, name, s->dest.pdir,
		     slash ? slash + 1 : name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Is there a regular file at @ppath (never followed)? */
bool berth__partial_exists(struct berth_session *s, const char *ppath)
{
	struct stat st;
	int fd = berth_plat_open_beneath(s->dest.root_fd, ppath,
					 O_PATH | O_NOFOLLOW);
	bool ok;

	if (fd < 0)
		return false;
	ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	close(fd);
	return ok;
}

/* The PDIR part of @ppath ("DIR/PDIR") into @buf. */
static void pdir_of(const char *ppath, char *buf, size_t cap)
{
	const char *slash = strrchr(ppath, '/');
	size_t n = slash ? (size_t)(slash - ppath) : 0;

	if (n >= cap)
		n = cap - 1;
	memcpy(buf, ppath, n);
	buf[n] = '\0';
}

void berth__drop_partial(struct berth_session *s, const char *ppath)
{
	char dir[PATH_MAX];

	pdir_of(ppath, dir, sizeof(dir));
	if (berth_commit_delete(s->stg.commit, ppath, 0, SESSION_QUIET) == 0 &&
	    dir[0])
		(void)berth_commit_delete(s->stg.commit, dir, 1, SESSION_QUIET);
}

int berth__delayed_renames(struct berth_session *s)
{
	char ppath[PATH_MAX], dir[PATH_MAX], last[PATH_MAX] = "";
	char fpath[BERTH_PATH_BUF];
	struct file_state st;
	int32_t i;
	int ret;

	if (s->opts.dry_run)
		return 0;
	(void)berth_commit_flush(s->stg.commit); /* errors came by event */
	for (i = 0; i < (int32_t)s->lst.fl->count; i++) {
		const struct berth_file *f = &s->lst.fl->files[i];
		const char *fname;

		st = berth__fst_get(s, i);
		if (!st.delayed || !st.ok)
			continue;
		fname = berth_file_path(f, fpath);
		if (berth__partial_path(s, fname, ppath, sizeof(ppath)))
			continue; /* it could not have been written either */
		ret = berth_commit_rename(s->stg.commit, ppath, fname,
					  (void *)(intptr_t)(i + 1));
		if (ret < 0) {
			berth__session_file_error(
				s, "rename failed for %s (from %s): %s\n",
				fname, ppath, berth_strerror(ret));
			if (ret == -BERTH_ECANCELLED)
				return ret;
		}
	}
	(void)berth_commit_flush(s->stg.commit);
	/* The emptied PDIRs (files of one directory are adjacent). */
	for (i = 0; i < (int32_t)s->lst.fl->count; i++) {
		st = berth__fst_get(s, i);
		if (!st.delayed ||
		    berth__partial_path(
			    s, berth_file_path(&s->lst.fl->files[i], fpath),
			    ppath, sizeof(ppath)))
			continue;
		pdir_of(ppath, dir, sizeof(dir));
		if (strcmp(dir, last) == 0)
			continue;
		memcpy(last, dir, sizeof(last));
		(void)berth_commit_delete(s->stg.commit, dir, 1, SESSION_QUIET);
	}
	/* Per-file outcomes came by event; only a cancel stops here. */
	ret = berth_commit_flush(s->stg.commit);
	return ret == -BERTH_ECANCELLED ? ret : 0;
}

void berth__partial_sweep(struct berth_session *s)
{
	char ppath[PATH_MAX], fpath[BERTH_PATH_BUF];
	struct file_state st;
	int32_t i;

	if (!s->dest.pdir || s->opts.delay_updates || s->opts.dry_run)
		return;
	(void)berth_commit_flush(s->stg.commit); /* every outcome is known */
	for (i = 0; i < (int32_t)s->lst.fl->count; i++) {
		st = berth__fst_get(s, i);
		if (st.basis_type != BASIS_PARTIAL || !st.ok ||
		    berth__partial_path(
			    s, berth_file_path(&s->lst.fl->files[i], fpath),
			    ppath, sizeof(ppath)))
			continue;
		berth__drop_partial(s, ppath);
	}
}

/* Open the --backup-dir root, making what is missing of it beneath what
 * exists (berth__open_backup_base()), as rsync does on first use. */
static int backup_root(struct berth_session *s)
{
	int fd;

	if (s->dest.backup_err < 0)
		return s->dest.backup_err;
	fd = berth_path_backup_root(s->dest.backup_base_fd >= 0
					    ? s->dest.backup_base_fd
					    : s->dest.root_fd,
				    s->dest.backup_rest);
	if (fd < 0)
		return fd;
	s->dest.backup_dirfd = fd;
	berth_commit_set_backup_dir(s->stg.commit, fd);
	return 0;
}

int berth__backup_prepare(struct berth_session *s, const char *relpath)
{
	const char *slash = strrchr(relpath, '/');
	size_t dlen = slash ? (size_t)(slash - relpath) : 0, i;
	struct berth_commit_meta m;
	char dir[PATH_MAX];
	struct stat st;
	bool made = false;
	int ret, fd;

	if (!s->opts.backup_dir || s->opts.dry_run || dlen >= sizeof(dir))
		return 0;
	if (s->dest.backup_dirfd >= 0 && s->dest.bak_last &&
	    strlen(s->dest.bak_last) == dlen &&
	    !memcmp(s->dest.bak_last, relpath, dlen))
		return 0;
	if (s->dest.backup_dirfd < 0) {
		ret = backup_root(s);
		if (ret < 0) {
			berth__session_file_error(s, "backup dir %s: %s\n",
						  s->opts.backup_dir,
						  berth_strerror(ret));
			return 0; /* the backups fail, each reported */
		}
	}
	memcpy(dir, relpath, dlen);
	dir[dlen] = '\0';
	/* Each missing level gets the mode, owner and times of the
	 * destination directory it mirrors. */
	for (i = 1; i <= dlen; i++) {
		if (i < dlen && dir[i] != '/')
			continue;
		dir[i] = '\0';
		fd = berth_plat_open_beneath(s->dest.backup_dirfd, dir,
					     O_PATH | O_DIRECTORY);
		if (fd >= 0) {
			close(fd);
		} else if (fd == -ENOENT && fstatat(s->dest.root_fd, dir, &st,
						    AT_SYMLINK_NOFOLLOW) == 0) {
			m = (struct berth_commit_meta){
				.mode = st.st_mode & 07777,
				.mtime_sec = st.st_mtim.tv_sec,
				.mtime_nsec = (uint32_t)st.st_mtim.tv_nsec,
				.uid = s->opts.owner ? st.st_uid : (uint32_t)-1,
				.gid = s->opts.group ? st.st_gid : (uint32_t)-1,
				.user = SESSION_QUIET};
			ret = berth_commit_backup_mkdir(s->stg.commit, dir, &m);
			if (ret == -BERTH_ECANCELLED)
				return ret;
			made = true;
		}
		if (i < dlen)
			dir[i] = '/';
	}
	if (made)
		(void)berth_commit_flush(
			s->stg.commit); /* before the backups */
	free(s->dest.bak_last);
	s->dest.bak_last = strndup(relpath, dlen);
	return 0;
}
