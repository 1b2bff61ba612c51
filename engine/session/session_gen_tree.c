/* SPDX-License-Identifier: MIT */
/*
 * The generator's non-regular items: directories (made, re-timed, type
 * clashes), symlinks (--safe-links, backups of replaced ones) and device and
 * special nodes, each through the commit stage.
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

/* meta.user of the generator's mkdirs: the one it waits for at once, and
 * (below it) an incremental list directory's early one, by its number. */
#define MK_ONE ((intptr_t)-2)

static void *mk_token_dir(uint32_t k)
{
	return (void *)(MK_ONE - 1 - (intptr_t)k);
}

bool berth__gen_mkdir_token(const void *user)
{
	return (intptr_t)user <= MK_ONE;
}

void berth__gen_mkdir_done(struct berth_session *s, void *user, int err)
{
	intptr_t t = (intptr_t)user;
	uintptr_t k = (uintptr_t)(MK_ONE - 1 - t);

	pthread_mutex_lock(&s->sync.lock);
	if (t == MK_ONE) {
		s->sync.mk_err = err;
		s->sync.mk_state = BERTH_GEN_MK_DONE;
	} else if (k < s->lst.ndirs) {
		s->lst.dirs[k]->mk_err = err;
		s->lst.dirs[k]->mk_state = BERTH_GEN_MK_DONE;
	}
	if (s->sync.mk_waiting)
		pthread_cond_broadcast(&s->sync.cond);
	pthread_mutex_unlock(&s->sync.lock);
}

/*
 * Wait for the outcome of a queued mkdir (*@state, *@err: under
 * sync.lock) and forget it: 0, -errno, or -BERTH_ECANCELLED when the
 * session ends first.
 */
int berth__gen_mk_wait(struct berth_session *s, uint8_t *state, int *err)
{
	int ret = 0;

	pthread_mutex_lock(&s->sync.lock);
	while (*state == BERTH_GEN_MK_PENDING && !s->rep.fatal) {
		s->sync.mk_waiting = true;
		pthread_cond_wait(&s->sync.cond, &s->sync.lock);
	}
	s->sync.mk_waiting = false;
	if (*state == BERTH_GEN_MK_DONE)
		ret = *err;
	else if (*state == BERTH_GEN_MK_PENDING)
		ret = -BERTH_ECANCELLED;
	*state = BERTH_GEN_MK_NONE;
	pthread_mutex_unlock(&s->sync.lock);
	return ret;
}

/*
 * The mkdir itself on the generator's thread, beneath its parent from the
 * generator's directory cache (as the commit stage's would: never through
 * a symlink; an existing directory is success): a system call, where a
 * trip through the commit stage and back costs the walk a round of
 * wake-ups per directory.  0 or -errno.
 */
static int mkdir_direct(struct gen *g, const char *name, mode_t mode)
{
	struct berth_session *s = g->s;
	const char *slash = strrchr(name, '/');
	const char *base = slash ? slash + 1 : name;
	struct stat st;
	int dfd, ret;

	dfd = berth__gen_dir_fd(g, name, slash ? (size_t)(slash - name) : 0);
	if (dfd < 0)
		return dfd;
	ret = berth__sys_mkdirat(s, dfd, base, mode & 07777);
	if (ret == -EEXIST && berth__sys_lstatat(s, dfd, base, &st) == 0 &&
	    S_ISDIR(st.st_mode))
		ret = 0;
	return ret;
}

/*
 * rsync's directory tweaking: a receiver that is not root gives a
 * directory whose source mode lacks read, write or search for its owner
 * those bits while it fills it (it could not, else); the end sets the
 * directory's mode (fix_dirs(): its attributes differ from the source's
 * by then).
 */
static bool dir_tweaked(const struct berth_session *s,
			const struct berth_file *f)
{
	return !s->dest.am_root && !s->opts.dry_run &&
	       (f->mode & S_IRWXU) != S_IRWXU;
}

/* The mode the end gives a tweaked directory: as rsync, its source mode
 * only where that lacks the owner's write bit; else it keeps rwx. */
static void dir_untweak_mode(const struct berth_session *s,
			     const struct berth_file *f,
			     struct berth_commit_meta *m)
{
	if (dir_tweaked(s, f) && (f->mode & S_IWUSR))
		m->mode |= S_IRWXU;
}

/* An existing directory of @f, mode @cur, made owner-rwx for now. */
static void dir_tweak(struct gen *g, const struct berth_file *f, mode_t cur)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	char full[PATH_MAX + 8];
	int dfd, fd;

	if (!dir_tweaked(s, f) || (cur & S_IRWXU) == S_IRWXU)
		return;
	if (strcmp(fname, ".") == 0) {
		fd = berth__sys_open(s, s->dest.root_fd, ".",
				     O_RDONLY | O_DIRECTORY);
	} else {
		dfd = berth__gen_parent_fd(g, f);
		fd = dfd < 0 ? dfd
			     : berth__sys_open(s, dfd, f->base,
					       O_RDONLY | O_DIRECTORY |
						       O_NOFOLLOW);
	}
	if (fd >= 0) {
		int err = berth_plat_fchmod(fd, (f->mode | S_IRWXU) & 07777);

		close(fd);
		if (!err)
			return;
		fd = err;
	}
	berth__session_xfer_error(
		s, "generator", fd, "failed to modify permissions on %s",
		berth__full_name(s, fname, full, sizeof(full)));
}

/*
 * Make directory @name (@m) and know the outcome: 0 or -errno.  Directly
 * (mkdir_direct()) when nothing the commit stage holds can come before it:
 * @queued says something at that name was queued there (a file in the
 * way, deleted), and in batch durability the stage's mkdir marks the
 * parent for its fsync.  Else through the commit stage, after whatever
 * was queued before it, waiting for its event; only what lies beneath the
 * directory waits, the stage's other work goes on.
 */
static int mkdir_now(struct gen *g, const char *name,
		     struct berth_commit_meta *m, bool queued)
{
	struct berth_session *s = g->s;
	int ret;

	if (!queued && s->cfg.durability != BERTH_DURABLE_BATCH)
		return mkdir_direct(g, name, m->mode);

	pthread_mutex_lock(&s->sync.lock);
	s->sync.mk_state = BERTH_GEN_MK_PENDING;
	pthread_mutex_unlock(&s->sync.lock);
	m->user = (void *)MK_ONE;
	ret = berth_commit_mkdir(s->stg.commit, name, m);
	if (ret < 0) {
		pthread_mutex_lock(&s->sync.lock);
		s->sync.mk_state = BERTH_GEN_MK_NONE;
		pthread_mutex_unlock(&s->sync.lock);
		return ret;
	}
	return berth__gen_mk_wait(s, &s->sync.mk_state, &s->sync.mk_err);
}

/* rsync's words for a directory that could not be made (@name, or the
 * part of it @len long). */
static void mkdir_failed(struct berth_session *s, const char *name, size_t len,
			 int err)
{
	char full[PATH_MAX + 8], part[PATH_MAX];

	snprintf(part, sizeof(part), "%.*s", (int)len, name);
	berth__session_xfer_error(
		s, "generator", err, "recv_generator: mkdir %s failed",
		berth__full_name(s, part, full, sizeof(full)));
}

int berth__gen_dir(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	struct berth_commit_meta m;
	struct berth_commit_xattrs *x = NULL;
	struct stat st = {0};
	uint32_t iflags;
	bool is_new = false, quiet, in_way = false;
	int ret, alt, mk_err = 0;

	if (strcmp(fname, ".") == 0 && s->dest.dest_created)
		ret = -ENOENT; /* we just made it: it is new */
	else if (s->lst.inc && g->sdir && g->sdir->made)
		ret = -ENOENT; /* made as an entry of its parent: new */
	else
		ret = berth__gen_dest_stat(g, f, &st);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (berth__gen_existence_gate(g, f, ret, &st))
		return 0;
	if (ret == 0 && !S_ISDIR(st.st_mode)) {
		/* Something else is in the way: a file/symlink goes. */
		if (!s->opts.dry_run) {
			ret = berth_commit_delete(s->stg.commit, fname, 0,
						  NULL);
			if (ret < 0)
				return ret;
		}
		in_way = true;
		ret = -ENOENT;
	}
	if (ret == -ENOENT) {
		is_new = true;
		/* As rsync: a copy in an alt-dest dir is what it is
		 * compared with (not new, if it is there), and -X copies
		 * its xattrs to the new directory. */
		alt = berth__gen_alt_dir_stat(s, f, &st);
		if (alt < 0) {
			iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_IS_NEW |
				 berth__xa_gen_itemize(s, f, -1, NULL);
		} else {
			iflags = berth__gen_itemize(s, f, &st,
						    BERTH_ITEM_LOCAL_CHANGE) |
				 berth__xa_gen_itemize(
					 s, f, s->dest.alt_fd[alt], fname);
			if (!s->opts.dry_run) {
				ret = berth__xa_gen_copy(s, s->dest.alt_fd[alt],
							 fname, &x);
				if (ret < 0)
					return ret;
			}
		}
		if (!s->opts.dry_run && strcmp(fname, ".") != 0 &&
		    !(s->lst.inc && g->sdir->made)) {
			berth__session_meta(s, f, false, 0, &m);
			m.mode = (m.mode & 07777) | S_IFDIR |
				 (dir_tweaked(s, f) ? S_IRWXU : 0);
			/* Its outcome decides what happens beneath it. */
			mk_err = mkdir_now(g, fname, &m, in_way);
			if (mk_err == -BERTH_ECANCELLED || mk_err == -ENOMEM) {
				free(x);
				return mk_err;
			}
			if (mk_err < 0) {
				free(x);
				x = NULL;
			}
		}
		if (x) {
			ret = berth_commit_set_xattrs(s->stg.commit, fname, x,
						      NULL);
			if (ret < 0)
				return ret;
		}
	} else {
		iflags = berth__gen_itemize(s, f, &st, 0) |
			 berth__xa_gen_itemize(s, f, s->dest.root_fd, fname);
		dir_tweak(g, f, st.st_mode);
	}
	berth__gen_set_exists(s, ndx, !is_new, is_new ? 0 : st.st_mode);
	if (berth__gen_record_wanted(s, iflags)) {
		ret = berth__gen_put_record(s, ndx, iflags);
		if (ret < 0)
			return ret;
	}
	if (mk_err < 0) {
		/* As rsync: itemized, one line for it, and nothing beneath
		 * it is generated (incremental: its list, and the lists of
		 * the directories in it). */
		mkdir_failed(s, fname, strlen(fname), mk_err);
		berth__session_log(
			s, BERTH_LOG_ERROR,
			"*** Skipping any contents from this failed directory "
			"***\n");
		if (s->lst.inc) {
			g->list_skip = true;
		} else {
			berth__gen_skip_below(g, f);
		}
		return 0;
	}
	/* --delete-during: this directory's extraneous entries go now. */
	if (!is_new && s->opts.delete_mode == BERTH_DELETE_DURING) {
		ret = s->lst.inc ? berth__delete_in_list(s, fname, f->flags,
							 g->list->fl)
				 : berth__delete_extraneous(s, ndx);
		if (ret < 0)
			return ret;
	}
	/* Its attributes are set at the end (and again once the list is
	 * done).  As rsync: a failure is reported where the directory
	 * differed from the source now; where it did not, setting them
	 * again after its contents changed it is a quiet re-touch. */
	quiet = !is_new &&
		!(iflags & (BERTH_ITEM_REPORT_TIME | BERTH_ITEM_REPORT_PERMS |
			    BERTH_ITEM_REPORT_OWNER | BERTH_ITEM_REPORT_GROUP));
	if (s->lst.inc) {
		/* The list's directory: its entries follow. */
		g->list_parent_new = is_new;
		berth__gen_dir_meta(s, f, is_new, st.st_mode, quiet,
				    &g->sdir->meta);
		g->sdir->fix = 1;
		g->sdir->is_new = is_new;
		return 0;
	}
	berth__gen_push_dir(g, f, is_new);
	g->dirs[g->ndirs].ndx = ndx;
	g->dirs[g->ndirs].cur_mode = is_new ? 0 : (uint32_t)st.st_mode;
	g->dirs[g->ndirs].is_new = is_new;
	g->dirs[g->ndirs].quiet = quiet;
	g->ndirs++;
	return 0;
}

void berth__gen_dir_meta(struct berth_session *s, const struct berth_file *f,
			 bool is_new, mode_t cur_mode, bool quiet,
			 struct berth_commit_meta *m)
{
	berth__session_meta(s, f, !is_new, is_new ? 0 : cur_mode, m);
	dir_untweak_mode(s, f, m);
	m->user = quiet ? SESSION_QUIET : NULL;
}

/*
 * -R --no-implied-dirs: the parts of a source's path are not in the list
 * (or are to be left alone), so a missing parent of an entry is made, with
 * the default permissions (0777 less the umask), the way rsync's receiver
 * makes a path.  What is in the way stays: the entry's own commit then
 * fails on it.  Checked once per run of entries with the same parent.
 */
int berth__gen_rel_parents(struct gen *g, const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	const char *slash = strrchr(fname, '/');
	struct berth_commit_meta m = {0};
	size_t plen = slash ? (size_t)(slash - fname) : 0;
	int ret;

	if (!plen ||
	    (g->rel_parent_len == plen && !memcmp(g->rel_parent, fname, plen)))
		return 0;
	if (plen >= sizeof(g->rel_parent))
		return -ENAMETOOLONG; /* not from the decoder (max_name) */
	memcpy(g->rel_parent, fname, plen);
	g->rel_parent_len = plen;
	/* A directory of the list, made (or looked at) already. */
	for (size_t k = g->depth; k-- > 0;) {
		char dpath[BERTH_PATH_BUF];

		if (g->stack[k].len == plen &&
		    !memcmp(berth_file_path(g->stack[k].dir, dpath), fname,
			    plen))
			return 0;
	}
	ret = berth__gen_dir_fd(g, fname, plen);
	if (ret >= 0 || ret != -ENOENT || s->opts.dry_run)
		return 0;
	m.mode = S_IFDIR | 0777;
	m.mtime_nsec = UTIME_OMIT;
	m.uid = m.gid = (uint32_t)-1;
	for (size_t i = 1; i <= plen; i++) {
		char part[PATH_MAX];

		if (i < plen && fname[i] != '/')
			continue;
		if (i >= sizeof(part))
			return -ENAMETOOLONG;
		memcpy(part, fname, i);
		part[i] = '\0';
		ret = mkdir_now(g, part, &m, false);
		if (ret == -BERTH_ECANCELLED || ret == -ENOMEM)
			return ret;
		if (ret < 0) {
			/* As rsync: the parent named, the entry goes on
			 * (and fails on its own). */
			mkdir_failed(s, fname, plen, ret);
			return 0;
		}
	}
	return 0;
}

/*
 * Incremental recursion: a directory entry is only made to exist now (as
 * rsync does, so the parent's times can be fixed early); its record,
 * attributes and deletions come with its own list (§8.1).
 */
int berth__gen_dir_ensure(struct gen *g, const struct berth_file *f,
			  struct sess_dir *d, uint32_t k)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	struct berth_commit_meta m;
	struct stat st;
	bool in_way;
	int ret;

	if (strcmp(fname, ".") == 0)
		return 0; /* the initial list's directory: done already */
	ret = g->list_parent_new ? -ENOENT : berth__gen_dest_stat(g, f, &st);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0 && S_ISDIR(st.st_mode))
		return 0;
	in_way = ret == 0;
	if (in_way) {
		/* Something else is in the way: a file/symlink goes. */
		if (!s->opts.dry_run) {
			ret = berth_commit_delete(s->stg.commit, fname, 0,
						  NULL);
			if (ret < 0)
				return ret;
		}
	}
	if (!s->opts.dry_run) {
		/* Its list asks for the outcome, which is not reported here
		 * (rsync tries again there).  Made directly, as mkdir_now()
		 * decides, or queued and not waited for here. */
		berth__session_meta(s, f, false, 0, &m);
		m.mode = (m.mode & 07777) | S_IFDIR |
			 (dir_tweaked(s, f) ? S_IRWXU : 0);
		if (!in_way && s->cfg.durability != BERTH_DURABLE_BATCH) {
			ret = mkdir_direct(g, fname, m.mode);
			pthread_mutex_lock(&s->sync.lock);
			d->mk_err = ret;
			d->mk_state = BERTH_GEN_MK_DONE;
			pthread_mutex_unlock(&s->sync.lock);
			d->made = 1;
			return 0;
		}
		m.user = mk_token_dir(k);
		pthread_mutex_lock(&s->sync.lock);
		d->mk_state = BERTH_GEN_MK_PENDING;
		pthread_mutex_unlock(&s->sync.lock);
		ret = berth_commit_mkdir(s->stg.commit, fname, &m);
		if (ret < 0) {
			pthread_mutex_lock(&s->sync.lock);
			d->mk_state = BERTH_GEN_MK_NONE;
			pthread_mutex_unlock(&s->sync.lock);
			return ret;
		}
	}
	d->made = 1;
	return 0;
}

/*
 * --safe-links: a target that is absolute, empty, or climbs with ".." above
 * the transfer root from where the link sits, is unsafe (rsync's rule).
 */
static bool unsafe_link(const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	const char *t = f->ext->link, *end = f->ext->link + f->ext->link_len,
		   *c;
	int depth = 0;

	if (f->ext->link_len == 0 || t[0] == '/')
		return true;
	for (c = fname; *c; c++)
		depth += *c == '/';
	while (t < end) {
		const char *slash = memchr(t, '/', (size_t)(end - t));
		size_t n = slash ? (size_t)(slash - t) : (size_t)(end - t);

		if (n == 2 && t[0] == '.' && t[1] == '.') {
			if (--depth < 0)
				return true;
		} else if (n && !(n == 1 && t[0] == '.')) {
			depth++;
		}
		t += n + (slash ? 1 : 0);
	}
	return false;
}

/*
 * -b / --backup-dir: a symlink or node about to replace the non-directory
 * @st (NULL: nothing there) keeps it as its backup, as rsync's
 * make_backup() does; with a --backup-dir its directory is made first.
 * A directory in the way was cleared, not kept.
 */
static int replaced_backup(struct berth_session *s, const struct berth_file *f,
			   const struct stat *st, struct berth_commit_meta *m)
{
	char fpath[BERTH_PATH_BUF];

	if (!st || S_ISDIR(st->st_mode) ||
	    !(s->opts.backup || s->opts.backup_dir))
		return 0;
	m->backup = 1;
	return berth__backup_prepare(s, berth_file_path(f, fpath));
}

/*
 * A symlink or node missing here, with alt-dest dirs (rsync's lookup for
 * them): done (1) when linked or left out; else *@iflags compare it with
 * the alt dir's item (a local change, not new), or are 0 for a
 * --copy-dest match (made, not reported).
 */
static int from_alt(struct gen *g, int32_t ndx, const struct berth_file *f,
		    uint32_t *iflags)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	struct stat st;
	bool quiet;
	int j, ret = berth__gen_nonreg_alt(g, ndx, f, &st, &j, &quiet);

	if (ret != 0)
		return ret;
	if (quiet)
		*iflags = 0;
	else if (j >= 0)
		*iflags = berth__gen_itemize(s, f, &st,
					     BERTH_ITEM_LOCAL_CHANGE |
						     BERTH_ITEM_REPORT_CHANGE) |
			  berth__xa_gen_itemize(s, f, s->dest.alt_fd[j], fname);
	return 0;
}

/*
 * The target of the link @base beneath @dfd: readlink, or under
 * --fake-super the content of the plain file that stands for it (rsync's
 * do_readlink; a real symlink there reads as empty, so it is made anew as
 * a fake one).  The length, or < 0.
 */
static ssize_t link_target(struct berth_session *s, int dfd, const char *base,
			   char *buf, size_t cap)
{
	ssize_t n;
	int fd;

	if (!s->opts.fake_super)
		return readlinkat(dfd, base, buf, cap);
	fd = berth__sys_open(s, dfd, base, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return fd == -ELOOP ? 0 : fd;
	n = berth__sys_pread(s, fd, buf, cap, 0);
	close(fd);
	return n;
}

int berth__gen_symlink(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	struct berth_commit_meta m;
	char target[4096];
	struct stat st;
	uint32_t iflags;
	ssize_t n = -1;
	int ret, dfd;

	if (s->opts.safe_links && unsafe_link(f)) {
		berth__session_log(s, BERTH_LOG_DEBUG,
				   "ignoring unsafe symlink \"%s\"\n", fname);
		return 0;
	}
	ret = berth__gen_lookup(g, f, &st);
	if (ret == BERTH_GEN_SKIP)
		return 0;
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0 && S_ISLNK(st.st_mode)) {
		dfd = berth__gen_parent_fd(g, f);
		if (dfd >= 0)
			n = link_target(s, dfd, f->base, target,
					sizeof(target));
		if (n == (ssize_t)f->ext->link_len &&
		    memcmp(target, f->ext->link, (size_t)n) == 0) {
			/* Already the right link (--remove-source-files). */
			berth__session_success(s, ndx);
			iflags = berth__gen_itemize(s, f, &st, 0) |
				 berth__xa_gen_itemize(s, f, s->dest.root_fd,
						       fname);
			/* -U: rsync sets a link's atime too (without an
			 * 'u'), as its lstat before the readlink saw it. */
			berth__session_meta(s, f, false, 0, &m);
			if ((iflags &
			     (BERTH_ITEM_REPORT_TIME | BERTH_ITEM_REPORT_OWNER |
			      BERTH_ITEM_REPORT_GROUP)) ||
			    (m.atime_set &&
			     berth__gen_atime_differs(s, f, &st))) {
				/* Re-create to fix attributes: symlink times
				 * and owners are set on the new link, which
				 * keeps the old one's xattrs (-X) and, when
				 * only its atime is set, its mtime. */
				if (m.mtime_nsec == UTIME_OMIT) {
					m.mtime_sec = st.st_mtim.tv_sec;
					m.mtime_nsec =
						(uint32_t)st.st_mtim.tv_nsec;
				}
				if (!s->opts.dry_run) {
					ret = berth__xa_gen_copy(
						s, s->dest.root_fd, fname,
						&m.xattrs);
					if (ret == 0)
						ret = berth_commit_symlink(
							s->stg.commit, fname,
							f->ext->link, &m);
					if (ret < 0)
						return ret;
				}
			}
			return berth__gen_record_wanted(s, iflags)
				       ? berth__gen_put_record(s, ndx, iflags)
				       : 0;
		}
		/* rsync compares the xattrs with the new link: none. */
		iflags = berth__gen_itemize(s, f, &st,
					    BERTH_ITEM_LOCAL_CHANGE |
						    BERTH_ITEM_REPORT_CHANGE) |
			 berth__xa_gen_itemize(s, f, -1, NULL);
	} else if (ret == 0 && S_ISDIR(st.st_mode)) {
		/* A directory in the way. */
		iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_REPORT_CHANGE |
			 BERTH_ITEM_IS_NEW |
			 berth__xa_gen_itemize(s, f, -1, NULL);
		ret = berth__gen_clear_dir_for(g, f, "symlink");
		if (ret != 0)
			return ret < 0 ? ret : 0;
	} else {
		iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_REPORT_CHANGE |
			 BERTH_ITEM_IS_NEW |
			 berth__xa_gen_itemize(s, f, -1, NULL);
		if (ret == -ENOENT && s->dest.nalt) {
			ret = from_alt(g, ndx, f, &iflags);
			if (ret != 0)
				return ret < 0 ? ret : 0;
			ret = -ENOENT;
		}
	}
	if (!s->opts.dry_run) {
		berth__session_meta(s, f, false, 0, &m);
		m.user = berth__commit_user(s, ndx); /* events */
		ret = replaced_backup(s, f, ret == 0 ? &st : NULL, &m);
		if (ret == 0)
			ret = berth_commit_symlink(s->stg.commit, fname,
						   f->ext->link, &m);
		if (ret < 0) {
			berth__commit_user_done(s, m.user);
			return ret;
		}
	}
	return iflags ? berth__gen_put_record(s, ndx, iflags) : 0;
}

int berth__gen_node(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_session *s = g->s;
	mode_t type = f->mode & S_IFMT;
	bool dev = S_ISCHR(type) || S_ISBLK(type);
	dev_t rdev = makedev(f->ext->rdev_major, f->ext->rdev_minor);
	struct berth_commit_meta m;
	struct stat st;
	uint32_t iflags;
	bool missing;
	int ret;

	if ((dev && !(s->opts.devices && s->dest.am_root)) ||
	    (!dev && !s->opts.specials)) {
		berth__session_log(s, BERTH_LOG_INFO,
				   "skipping non-regular file \"%s\"\n", fname);
		return 0;
	}
	ret = berth__gen_lookup(g, f, &st);
	if (ret == BERTH_GEN_SKIP)
		return 0;
	if (ret < 0 && ret != -ENOENT)
		return ret;
	missing = ret == -ENOENT;
	if (ret == 0 && S_ISDIR(st.st_mode)) {
		ret = berth__gen_clear_dir_for(g, f,
					       dev ? "device" : "special file");
		if (ret != 0)
			return ret < 0 ? ret : 0;
		ret = -ENOENT;
	}
	if (ret == 0 && (st.st_mode & S_IFMT) == type &&
	    (!dev || st.st_rdev == rdev)) {
		return berth__gen_keep_item(
			s, ndx, f, &st,
			berth__gen_itemize(s, f, &st, 0) |
				berth__xa_gen_itemize(s, f, s->dest.root_fd,
						      fname));
	}
	/* A new node: compared with nothing, as rsync compares with the
	 * node it has just made. */
	iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_REPORT_CHANGE |
		 berth__xa_gen_itemize(s, f, -1, NULL);
	if (ret == 0 && (st.st_mode & S_IFMT) == type)
		iflags = berth__gen_itemize(s, f, &st, iflags);
	else
		iflags |= BERTH_ITEM_IS_NEW;
	if (missing && s->dest.nalt) {
		ret = from_alt(g, ndx, f, &iflags);
		if (ret != 0)
			return ret < 0 ? ret : 0;
		ret = -ENOENT;
	}
	if (!s->opts.dry_run) {
		berth__session_meta(s, f, false, 0, &m);
		m.mode = (m.mode & 07777) | type;
		m.user = berth__commit_user(s, ndx); /* events */
		ret = replaced_backup(s, f, ret == 0 ? &st : NULL, &m);
		if (ret == 0)
			ret = berth_commit_mknod(s->stg.commit, fname, &m,
						 rdev);
		if (ret < 0) {
			berth__commit_user_done(s, m.user);
			return ret;
		}
	}
	return iflags ? berth__gen_put_record(s, ndx, iflags) : 0;
}
