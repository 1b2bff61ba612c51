/* SPDX-License-Identifier: MIT */
/*
 * The generator's destination lookup and itemizing: the parent directory
 * opened beneath the root (a small cache of O_PATH fds), the entry looked at
 * with fstatat(AT_SYMLINK_NOFOLLOW) (never through a symlink); directories
 * the generator made are known empty and not looked into; the
 * --existing/--ignore-existing gates; the item flags of rsync-protocol.md
 * §8.4.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/common/tmpname.h"
#include "engine/session/session.h"
#include "engine/session/session_sys.h"
#include "engine/session/session_gen_int.h"

/*
 * Temp files of a berth that died (SIGKILL, a power cut) in the directory
 * @path (@dfd: an O_PATH fd of it): names with berth's mark
 * (engine/common/tmpname.h) naming a process that no longer runs, never
 * this one (a session beside us in this process writes under the same
 * id).  They go through the commit stage as deletions do.  Best effort:
 * a directory that cannot be read stays as it is.
 */
static void sweep_dead_temps(struct berth_session *s, int dfd, const char *path)
{
	char rel[PATH_MAX];
	struct dirent *de;
	long pid;
	DIR *d;
	int fd;

	if (s->opts.dry_run)
		return;
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] != '.' || de->d_type == DT_DIR)
			continue;
		pid = berth_tmpname_owner(de->d_name);
		if (!pid || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 ||
		    errno != ESRCH)
			continue;
		if (snprintf(rel, sizeof(rel), "%s%s%s", path, *path ? "/" : "",
			     de->d_name) >= (int)sizeof(rel))
			continue;
		(void)berth_commit_delete(s->stg.commit, rel, 0, NULL);
	}
	closedir(d);
}

/* The cache's opens go through the session's inline calls (faults); a
 * directory opened is swept of dead sessions' temp files. */
static int open_dir(void *arg, int root_fd, const char *path, int flags)
{
	int fd = berth__sys_open(arg, root_fd, path, flags);

	if (fd >= 0)
		sweep_dead_temps(arg, fd, path);
	return fd;
}

void berth__gen_dir_cache_init(struct gen *g)
{
	berth_dircache_init(&g->dcache, DIR_CACHE, sizeof(struct berth_dirent),
			    NULL, NULL);
	berth_dircache_set_open(&g->dcache, open_dir, g->s);
}

/* An O_PATH fd of directory @path (@len bytes of it) beneath the root,
 * from the generator's directory-fd cache (engine/path). */
int berth__gen_dir_fd(struct gen *g, const char *path, size_t len)
{
	if (len == 0) {
		if (!g->root_swept)
			sweep_dead_temps(g->s, g->s->dest.root_fd, "");
		g->root_swept = true;
		return g->s->dest.root_fd;
	}
	return berth_dircache_get_fd(&g->dcache, g->s->dest.root_fd, 0, path,
				     len, O_PATH);
}

int berth__gen_parent_fd(struct gen *g, const struct berth_file *f)
{
	uint32_t dl = f->ext->dir_len;

	return berth__gen_dir_fd(g, f->ext->dir, dl ? dl - 1 : 0);
}

const char *berth__gen_base_name(const char *name)
{
	const char *b = strrchr(name, '/');

	return b ? b + 1 : name;
}

/* Is the parent of @name a directory we created in this session? */
static bool parent_is_new(struct gen *g, const char *name)
{
	const char *slash = strrchr(name, '/');
	size_t plen = slash ? (size_t)(slash - name) : 0;

	/* Incremental: every entry is a child of the list's directory; the
	 * directory itself is looked up unless we made it. */
	if (g->s->lst.inc)
		return g->list_parent_new;

	while (g->depth > 0) {
		struct dir_frame *f = &g->stack[g->depth - 1];
		char fpath[BERTH_PATH_BUF];

		if (f->len <= plen &&
		    memcmp(berth_file_path(f->dir, fpath), name, f->len) == 0 &&
		    (f->len == plen || name[f->len] == '/'))
			return f->len == plen ? f->is_new : false;
		g->depth--;
	}
	/* The root: new if DEST was created. */
	return plen == 0 && g->s->dest.dest_created;
}

void berth__gen_push_dir(struct gen *g, const struct berth_file *dir,
			 bool is_new)
{
	g->stack[g->depth].dir = dir;
	g->stack[g->depth].len = berth_file_path_len(dir);
	g->stack[g->depth].is_new = is_new;
	g->depth++;
}

/* lstat of the destination for @name: 0, -ENOENT, or another error. */
int berth__gen_dest_stat(struct gen *g, const struct berth_file *f,
			 struct stat *st)
{
	char fpath[BERTH_PATH_BUF];
	const char *name = berth_file_path(f, fpath);
	int dfd, ret;

	if (strcmp(name, ".") == 0) {
		if (fstat(g->s->dest.root_fd, st) < 0)
			return -errno;
		berth__acl_fake_stat(g->s, g->s->dest.root_fd, ".", st);
		return 0;
	}
	if (parent_is_new(g, name))
		return -ENOENT;
	dfd = berth__gen_parent_fd(g, f);
	if (dfd < 0)
		/* A parent that is missing or not a directory (or a symlink,
		 * which we never follow): the entry does not exist for us. */
		return dfd == -ENOENT || dfd == -ENOTDIR || dfd == -ELOOP
			       ? -ENOENT
			       : dfd;
	ret = berth__sys_lstatat(g->s, dfd, f->base, st);
	if (ret == 0) /* --fake-super: the item as its %stat says */
		berth__acl_fake_stat(g->s, dfd, f->base, st);
	return ret;
}

/* What the receiver needs to know of the destination (under s->sync.lock). */
void berth__gen_set_exists(struct berth_session *s, int32_t ndx, bool exists,
			   mode_t mode)
{
	struct file_state *st;

	pthread_mutex_lock(&s->sync.lock);
	st = berth__fst_of(s, ndx);
	if (st) {
		st->exists = exists;
		st->cur_mode = (uint16_t)mode; /* S_IFMT and 07777 */
	}
	pthread_mutex_unlock(&s->sync.lock);
}

/*
 * A directory stands where @what must go.  An empty one is removed; a
 * non-empty one only with --force (or a delete mode), else rsync's two
 * messages, and the item is skipped (exit 23).  Returns 0 when the way is
 * made (or queued), 1 when the item is to be skipped, or an error.
 */
int berth__gen_clear_dir_for(struct gen *g, const struct berth_file *f,
			     const char *what)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	int ret;

	if (!s->opts.force && s->opts.delete_mode == BERTH_DELETE_NONE &&
	    berth__dir_has_entries(s, fname)) {
		berth__session_log(s, BERTH_LOG_INFO,
				   "cannot delete non-empty directory: %s\n",
				   fname);
		berth__session_file_error(
			s, "could not make way for new %s: %s\n", what, fname);
		return 1;
	}
	/* (A dry run reports what would go.) */
	ret = berth__delete_tree(s, fname, false);
	if (ret == 1) /* a filter rule kept something in it */
		berth__session_file_error(
			s, "could not make way for new %s: %s\n", what, fname);
	return ret;
}

void berth__gen_skip_below(struct gen *g, const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	size_t len = strlen(fname);

	/* At most 4095 (the decoder's max_name); cut short, it would only
	 * skip more, never less. */
	if (len >= sizeof(g->skip_dir))
		len = sizeof(g->skip_dir) - 1;
	memcpy(g->skip_dir, fname, len);
	g->skip_len = len;
}

/* --existing / --ignore-existing (rsync's gates right after the lookup,
 * for every type).  True: skip the item. */
bool berth__gen_existence_gate(struct gen *g, const struct berth_file *f,
			       int stat_ret, const struct stat *st)
{
	struct berth_session *s = g->s;

	if (s->opts.existing && stat_ret == -ENOENT) {
		if (S_ISDIR(f->mode) && !g->skip_len)
			berth__gen_skip_below(g, f);
		return true;
	}
	return s->opts.ignore_existing && stat_ret == 0 &&
	       !(S_ISDIR(f->mode) && S_ISDIR(st->st_mode));
}

static bool times_preserved(struct berth_session *s, mode_t mode)
{
	if (!s->opts.times)
		return false;
	if (S_ISDIR(mode) && s->opts.omit_dir_times)
		return false;
	if (S_ISLNK(mode) && (s->opts.omit_link_times || !s->neg.symlink_times))
		return false;
	return true;
}

bool berth__gen_mtime_differs(struct berth_session *s,
			      const struct berth_file *f, const struct stat *st)
{
	int64_t d = (int64_t)st->st_mtim.tv_sec - f->mtime;

	if (s->opts.have_modify_window && s->opts.modify_window < 0)
		return d != 0 || (uint32_t)st->st_mtim.tv_nsec != f->nsec;
	if (s->opts.have_modify_window && s->opts.modify_window > 0)
		return d > s->opts.modify_window || d < -s->opts.modify_window;
	return d != 0;
}

/* -U: rsync compares atimes in whole seconds (within --modify-window). */
bool berth__gen_atime_differs(struct berth_session *s,
			      const struct berth_file *f, const struct stat *st)
{
	int64_t d = (int64_t)st->st_atim.tv_sec - f->ext->atime;

	if (s->opts.have_modify_window && s->opts.modify_window > 0)
		return d > s->opts.modify_window || d < -s->opts.modify_window;
	return d != 0;
}

/* §8.4 for an item that exists; @base: the flags decided so far. */
uint32_t berth__gen_itemize(struct berth_session *s, const struct berth_file *f,
			    const struct stat *st, uint32_t base)
{
	uint32_t fl = base, gid;
	mode_t type = f->mode & S_IFMT;

	if (S_ISREG(type) && st->st_size != f->size)
		fl |= BERTH_ITEM_REPORT_SIZE;
	if (times_preserved(s, type)) {
		if (berth__gen_mtime_differs(s, f, st))
			fl |= BERTH_ITEM_REPORT_TIME;
	} else if (base & (BERTH_ITEM_TRANSFER | BERTH_ITEM_LOCAL_CHANGE)) {
		fl |= BERTH_ITEM_REPORT_TIME;
	}
	/* -U: 'u' for all but directories and symlinks (whose atime is set
	 * all the same). */
	if (s->opts.atimes && (f->flags & BERTH_FILE_HAS_ATIME) &&
	    !S_ISDIR(type) && !S_ISLNK(type) &&
	    berth__gen_atime_differs(s, f, st))
		fl |= BERTH_ITEM_REPORT_ATIME;
	if (!S_ISLNK(type)) {
		if (s->opts.perms && ((st->st_mode ^ f->mode) & 07777))
			fl |= BERTH_ITEM_REPORT_PERMS;
		else if (!s->opts.perms && s->opts.executability &&
			 !!(st->st_mode & 0111) != !!(f->mode & 0111))
			fl |= BERTH_ITEM_REPORT_PERMS;
	}
	if (s->opts.owner && s->dest.am_root &&
	    berth__map_uid(s, f->uid) != st->st_uid)
		fl |= BERTH_ITEM_REPORT_OWNER;
	gid = berth__group_of(s, f);
	if (gid != (uint32_t)-1 && gid != st->st_gid)
		fl |= BERTH_ITEM_REPORT_GROUP;
	return fl;
}

int berth__gen_lookup(struct gen *g, const struct berth_file *f,
		      struct stat *st)
{
	int ret = berth__gen_dest_stat(g, f, st);

	if (ret < 0 && ret != -ENOENT)
		return ret;
	return berth__gen_existence_gate(g, f, ret, st) ? BERTH_GEN_SKIP : ret;
}
