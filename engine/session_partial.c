/* SPDX-License-Identifier: MIT */
/*
 * Partial and delayed files: --partial-dir and --delay-updates.
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
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session_int.h"

int berth__partial_path(const struct berth_session *s, const char *name,
			char *buf, size_t cap)
{
	const char *slash = strrchr(name, '/');
	int dirlen = slash ? (int)(slash - name) + 1 : 0;
	int n;

	n = snprintf(buf, cap, "%.*s%s/%s", dirlen, name, s->pdir,
		     slash ? slash + 1 : name);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Is there a regular file at @ppath (never followed)? */
bool berth__partial_exists(struct berth_session *s, const char *ppath)
{
	struct stat st;
	int fd = berth__open_beneath(s->root_fd, ppath, O_PATH | O_NOFOLLOW);
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
	if (berth_commit_delete(s->commit, ppath, 0, SESSION_QUIET) == 0 &&
	    dir[0])
		(void)berth_commit_delete(s->commit, dir, 1, SESSION_QUIET);
}

/* Entry @ndx's state flags, read under the lock. */
static struct file_state fst_of(struct berth_session *s, int32_t ndx)
{
	struct file_state st;

	pthread_mutex_lock(&s->lock);
	st = s->fst[ndx];
	pthread_mutex_unlock(&s->lock);
	return st;
}

int berth__delayed_renames(struct berth_session *s)
{
	char ppath[PATH_MAX], dir[PATH_MAX], last[PATH_MAX] = "";
	struct file_state st;
	int32_t i;
	int ret;

	if (s->opts.dry_run)
		return 0;
	(void)berth_commit_flush(s->commit); /* errors came by event */
	for (i = 0; i < (int32_t)s->fl->count; i++) {
		const struct berth_file *f = &s->fl->files[i];

		st = fst_of(s, i);
		if (!st.delayed || !st.ok)
			continue;
		if (berth__partial_path(s, f->name, ppath, sizeof(ppath)))
			continue; /* it could not have been written either */
		ret = berth_commit_rename(s->commit, ppath, f->name,
					  (void *)(intptr_t)(i + 1));
		if (ret < 0) {
			berth__session_file_error(
				s, "rename failed for %s (from %s): %s\n",
				f->name, ppath, berth_strerror(ret));
			if (ret == -BERTH_ECANCELLED)
				return ret;
		}
	}
	(void)berth_commit_flush(s->commit);
	/* The emptied PDIRs (files of one directory are adjacent). */
	for (i = 0; i < (int32_t)s->fl->count; i++) {
		st = fst_of(s, i);
		if (!st.delayed ||
		    berth__partial_path(s, s->fl->files[i].name, ppath,
					sizeof(ppath)))
			continue;
		pdir_of(ppath, dir, sizeof(dir));
		if (strcmp(dir, last) == 0)
			continue;
		memcpy(last, dir, sizeof(last));
		(void)berth_commit_delete(s->commit, dir, 1, SESSION_QUIET);
	}
	/* Per-file outcomes came by event; only a cancel stops here. */
	ret = berth_commit_flush(s->commit);
	return ret == -BERTH_ECANCELLED ? ret : 0;
}

void berth__partial_sweep(struct berth_session *s)
{
	char ppath[PATH_MAX];
	struct file_state st;
	int32_t i;

	if (!s->pdir || s->opts.delay_updates || s->opts.dry_run)
		return;
	(void)berth_commit_flush(s->commit); /* every outcome is known */
	for (i = 0; i < (int32_t)s->fl->count; i++) {
		st = fst_of(s, i);
		if (st.basis_type != BASIS_PARTIAL || !st.ok ||
		    berth__partial_path(s, s->fl->files[i].name, ppath,
					sizeof(ppath)))
			continue;
		berth__drop_partial(s, ppath);
	}
}
