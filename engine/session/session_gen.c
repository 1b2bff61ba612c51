/* SPDX-License-Identifier: MIT */
/*
 * The generator thread: walks the sorted file list (or, with incremental
 * recursion, each list as it arrives), dispatches each entry to the
 * per-type code, then the phases: redo requests, the NDX_DONE sequence of
 * rsync-protocol.md §8.6 / §10.1, and the final directory attributes.
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

/* Directory number @k of the directory list (it may grow meanwhile). */
static struct sess_dir *sdir_at(struct berth_session *s, uint32_t k)
{
	struct sess_dir *d = NULL;

	pthread_mutex_lock(&s->sync.lock);
	if (k < s->lst.ndirs)
		d = s->lst.dirs[k];
	pthread_mutex_unlock(&s->sync.lock);
	return d;
}

/* A directory of an incremental list that the daemon's rules hide. */
static int dir_refused_early(struct gen *g, const struct berth_file *f,
			     struct sess_dir *d, uint32_t k)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_commit_meta m = {.mode = S_IFDIR | 0700,
				      .mtime_nsec = UTIME_OMIT,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	int ret = berth__gen_dir_ensure(g, f, d, k);

	if (ret == 0 && d->made && !g->s->opts.dry_run)
		ret = berth_commit_dir_meta(g->s->stg.commit, fname, &m);
	return ret;
}

static int gen_entry(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	mode_t type = f->mode & S_IFMT;
	struct sess_dir *d = NULL;
	uint32_t k = 0;

	/* Incremental: a directory entry (not the list's own directory). */
	if (g->s->lst.inc && S_ISDIR(type) && ndx != g->list->start - 1) {
		k = g->list->dir_base + g->list_dirs++;
		d = sdir_at(g->s, k);
	}
	if (g->list_skip) {
		/* Beneath a directory that could not be made. */
		if (d)
			d->missing = 1;
		return 0;
	}
	if (f->flags & BERTH_FILE_INACTIVE)
		return 0;
	/* Beneath a directory that failed or was refused: nothing, not its
	 * -R parents, not a hard-link follower (rsync's missing_below). */
	if (g->skip_len) {
		if (!strncmp(fname, g->skip_dir, g->skip_len) &&
		    fname[g->skip_len] == '/')
			return 0;
		g->skip_len = 0;
	}
	if (berth__gen_is_follower(g, ndx))
		return 0;
	if (g->s->opts.relative && g->s->opts.no_implied_dirs) {
		int ret = berth__gen_rel_parents(g, f);

		if (ret < 0)
			return ret;
		/* An implied directory (a path part of a -R source) is left
		 * as it is, whatever it is (rsync-protocol.md §7.2). */
		if (S_ISDIR(type) &&
		    (f->flags &
		     (BERTH_FILE_TOP_DIR | BERTH_FILE_NO_CONTENT_DIR)) ==
			    (BERTH_FILE_TOP_DIR | BERTH_FILE_NO_CONTENT_DIR) &&
		    g->s->neg.proto >= 30)
			return 0;
	}
	/* The daemon's rules: refused, and a directory's contents skipped.
	 * Incremental: as rsync, the directory is made from its parent's
	 * list (0700, no times: its attributes would come with its own
	 * list) and refused when that list comes. */
	if (g->s->opts.dpolicy && strcmp(fname, ".") &&
	    berth__dmn_hidden(g->s, fname, S_ISDIR(type))) {
		if (d)
			return dir_refused_early(g, f, d, k);
		berth__dmn_refused(g->s, f);
		if (S_ISDIR(type))
			berth__gen_skip_below(g, f);
		return 0;
	}
	if (S_ISDIR(type))
		return d ? berth__gen_dir_ensure(g, f, d, k)
			 : berth__gen_dir(g, ndx, f);
	/* Keep the directory chain in step for non-directories too. */
	if (S_ISREG(type))
		return berth__gen_file(g, ndx, f);
	if (S_ISLNK(type)) {
		if (!g->s->opts.links) {
			berth__session_log(g->s, BERTH_LOG_INFO,
					   "skipping non-regular file \"%s\"\n",
					   fname);
			return 0;
		}
		return berth__gen_symlink(g, ndx, f);
	}
	return berth__gen_node(g, ndx, f);
}

/* Per-entry errors are reported and counted; the walk goes on. */
static int gen_entry_checked(struct gen *g, int32_t ndx,
			     const struct berth_file *f)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	int ret = gen_entry(g, ndx, f);

	if (ret == -BERTH_ECANCELLED || ret == -EPIPE || ret == -ECONNRESET ||
	    ret == -ENOMEM)
		return ret;
	if (ret < 0 && g->s->out.err)
		return g->s->out.err;
	if (ret < 0) {
		char full[PATH_MAX + 8];

		berth__session_xfer_error(
			g->s, "generator", ret, "recv_generator: %s",
			berth__full_name(g->s, fname, full, sizeof(full)));
	}
	return 0;
}

/*
 * Entries before @pos are done: a receiver waiting for them may go on.
 * The lock only when it sleeps: the store and the load here and the
 * receiver's store of gen_waiter and load of gen_pos are sequentially
 * consistent, so one of the two sides sees the other (wait_generated()).
 */
static void advance(struct berth_session *s, int32_t pos)
{
	atomic_store(&s->sync.gen_pos, pos);
	if (atomic_load(&s->sync.gen_waiter)) {
		pthread_mutex_lock(&s->sync.lock);
		pthread_cond_broadcast(&s->sync.cond);
		pthread_mutex_unlock(&s->sync.lock);
	}
}

/* The session is ending (fatal error or cancel): stop generating. */
static bool stopping(struct berth_session *s)
{
	bool stop;

	pthread_mutex_lock(&s->sync.lock);
	stop = s->rep.fatal != 0;
	pthread_mutex_unlock(&s->sync.lock);
	return stop;
}

/* Wait until the receiver has read @n sender NDX_DONEs (or gave up). */
static int wait_sender_dones(struct berth_session *s, int n)
{
	int ret = 0;

	berth__out_flush(&s->out);
	pthread_mutex_lock(&s->sync.lock);
	while (s->sync.sender_dones < n && !s->sync.recv_finished &&
	       !s->rep.fatal)
		pthread_cond_wait(&s->sync.cond, &s->sync.lock);
	if (s->sync.sender_dones < n)
		ret = -BERTH_ECANCELLED;
	pthread_mutex_unlock(&s->sync.lock);
	return ret;
}

/* Send redo records for everything queued so far. */
static uint32_t redo_iflags(struct berth_session *s, int32_t ndx,
			    uint32_t iflags, bool *exists)
{
	const struct berth_file *f = berth__file(s, ndx);
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct stat st;
	int fd = berth__sys_open(s, s->dest.root_fd, fname,
				 O_PATH | O_NOFOLLOW);

	*exists = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	if (fd >= 0)
		close(fd);
	if (!*exists)
		return BERTH_ITEM_TRANSFER | BERTH_ITEM_IS_NEW |
		       berth__xa_gen_itemize(s, f, -1, NULL);
	return berth__gen_itemize(s, f, &st, BERTH_ITEM_TRANSFER) |
	       berth__xa_gen_itemize(s, f, s->dest.root_fd, fname) |
	       (iflags & BERTH_ITEM_REPORT_CHANGE);
}

static int send_redos(struct gen *g)
{
	struct berth_session *s = g->s;
	char ppath[PATH_MAX];
	struct file_state *st;
	uint32_t iflags;
	bool exists;
	int32_t ndx;
	int ret, bt;

	for (;;) {
		pthread_mutex_lock(&s->sync.lock);
		if (s->sync.nredo == 0) {
			pthread_mutex_unlock(&s->sync.lock);
			return 0;
		}
		ndx = s->sync.redo[--s->sync.nredo];
		st = berth__fst_of(s, ndx);
		exists = st->exists;
		iflags = st->iflags;
		bt = st->basis_type;
		pthread_mutex_unlock(&s->sync.lock);
		/* As rsync, the redo looks at the destination again (an
		 * in-place --append may have grown it) and at the partial
		 * dir, once what the failed attempt wrote or kept (in place,
		 * as the file, in the partial dir) is on disk; an alt-dest
		 * basis (bt >= 0) keeps its record. */
		if (bt < 0) {
			if (!s->opts.dry_run)
				berth_commit_flush(s->stg.commit);
			iflags = redo_iflags(s, ndx, iflags, &exists);
			bt = berth__gen_partial_basis(s, berth__file(s, ndx),
						      ppath, sizeof(ppath))
				     ? BASIS_PARTIAL
				     : -1;
		}
		if (bt == BASIS_PARTIAL)
			ret = berth__gen_request_file_at(g, ndx, iflags,
							 s->dest.root_fd, ppath,
							 bt, true);
		else
			ret = berth__gen_request_file(
				g, ndx, iflags,
				bt >= 0	 ? s->dest.alt_fd[bt]
				: exists ? s->dest.root_fd
					 : -1,
				bt >= 0 ? bt : -1, true);
		if (ret < 0)
			return ret;
	}
}

static bool dir_time_matches(const struct berth_session *s,
			     const struct stat *st,
			     const struct berth_commit_meta *m)
{
	int64_t d = (int64_t)st->st_mtim.tv_sec - m->mtime_sec;
	int64_t w = s->opts.have_modify_window ? s->opts.modify_window : 0;

	if (w < 0)
		return d == 0 && (uint32_t)st->st_mtim.tv_nsec == m->mtime_nsec;
	return d <= w && d >= -w;
}

/*
 * Does directory @st already have what @m would set?  Its time as rsync
 * compares it before re-touching a directory: whole seconds within
 * --modify-window (nanoseconds only with a negative window), so a
 * directory whose time differs in the nanoseconds alone is left alone.
 */
static bool dir_meta_matches(const struct berth_session *s,
			     const struct stat *st,
			     const struct berth_commit_meta *m)
{
	if ((st->st_mode & 07777) != (m->mode & 07777))
		return false;
	if (m->uid != (uint32_t)-1 && st->st_uid != m->uid)
		return false;
	if (m->gid != (uint32_t)-1 && st->st_gid != m->gid)
		return false;
	return m->mtime_nsec == UTIME_OMIT || dir_time_matches(s, st, m);
}

/* What is left to set on directory @st: @m, without what matches already
 * (rsync changes only what differs, so a directory that is not ours whose
 * mode is right fails on its times alone, and says so). */
static const struct berth_commit_meta *dir_meta_todo(
	const struct berth_session *s, const struct stat *st,
	const struct berth_commit_meta *m, struct berth_commit_meta *tmp)
{
	*tmp = *m;
	if (m->mtime_nsec != UTIME_OMIT && dir_time_matches(s, st, m))
		tmp->mtime_nsec = UTIME_OMIT;
	if ((st->st_mode & 07777) == (m->mode & 07777))
		tmp->mode_kept = true;
	if (m->uid == st->st_uid)
		tmp->uid = (uint32_t)-1;
	if (m->gid == st->st_gid)
		tmp->gid = (uint32_t)-1;
	return tmp;
}

/*
 * Final attributes of every directory, deepest first (rsync re-touches
 * them after their contents changed).  A directory that already has them
 * is left alone, so a sync that changes nothing changes no ctime.
 */
static int fix_dirs(struct gen *g)
{
	struct berth_session *s = g->s;
	struct berth_commit_meta tmp, fm;
	const char *slash;
	struct stat st;
	size_t i;
	int ret, dfd;

	if (s->opts.dry_run)
		return 0;
	ret = berth_commit_flush(s->stg.commit);
	(void)ret; /* per-file errors were reported by event */
	/* Incremental: the directory list, whose numbers grow with depth
	 * (a directory is numbered before anything inside it). */
	for (i = s->lst.inc ? s->lst.ndirs : g->ndirs; i-- > 0;) {
		char path[BERTH_PATH_BUF];
		const char *name;
		const struct berth_commit_meta *m;

		if (s->lst.inc) {
			if (!s->lst.dirs[i]->fix)
				continue;
			name = s->lst.dirs[i]->name;
			m = &s->lst.dirs[i]->meta;
		} else {
			const struct dir_fix *d = &g->dirs[i];
			const struct berth_file *f = &s->lst.fl->files[d->ndx];

			name = berth_file_path(f, path);
			berth__gen_dir_meta(s, f, d->is_new, d->cur_mode,
					    d->quiet, &fm);
			m = &fm;
		}
		if (strcmp(name, ".") == 0) {
			ret = fstat(s->dest.root_fd, &st);
		} else {
			slash = strrchr(name, '/');
			dfd = berth__gen_dir_fd(
				g, name, slash ? (size_t)(slash - name) : 0);
			ret = dfd < 0 ? dfd
				      : berth__sys_lstatat(
						s, dfd,
						berth__gen_base_name(name),
						&st);
		}
		/* -A, --fake-super: what rsync sees, ACLs included. */
		if (ret == 0 && (s->acl || s->opts.fake_super))
			ret = berth__acl_dir_check(s, name, &st, m);
		if (ret == 0 && S_ISDIR(st.st_mode) &&
		    dir_meta_matches(s, &st, m))
			continue;
		if (ret == 0 && S_ISDIR(st.st_mode))
			m = dir_meta_todo(s, &st, m, &tmp);
		ret = berth_commit_dir_meta(s->stg.commit, name, m);
		if (ret < 0) {
			char full[PATH_MAX + 8];

			berth__session_xfer_error(
				s, "generator", ret,
				"failed to set times on %s",
				berth__full_name(s, name, full, sizeof(full)));
		}
	}
	return berth_commit_flush(s->stg.commit);
}

/*
 * Incremental recursion: send the NDX_DONE of every finished list, oldest
 * first, up to (not including) @cur: a list is finished when none of its
 * files waits for data or a redo (§8.1, §8.6).
 */
static int finish_lists(struct gen *g, struct sess_list *cur)
{
	struct berth_session *s = g->s;
	struct sess_list *l, *next;
	int ret;

	for (;;) {
		pthread_mutex_lock(&s->sync.lock);
		l = g->oldest;
		if (!l || l == cur || l->pending) {
			pthread_mutex_unlock(&s->sync.lock);
			return 0;
		}
		next = l->next;
		g->oldest = next;
		berth__list_finish(s, l);
		pthread_mutex_unlock(&s->sync.lock);
		ret = berth__gen_put_ndx(s, BERTH_NDX_DONE);
		if (ret < 0)
			return ret;
	}
}

/* Between entries: redo requests and finished lists go out promptly. */
/*
 * The directories whose lists are done and freed (every item of theirs
 * committed): their attributes now, as rsync touches a directory when its
 * list is done; the final pass (fix_dirs) checks them all again.
 */
static void early_dir_fix(struct gen *g)
{
	struct berth_session *s = g->s;
	struct berth_commit_meta tmp;
	struct sess_dir *d;
	struct stat st;
	const char *slash;
	uint32_t k;
	int ret, dfd;

	for (;;) {
		pthread_mutex_lock(&s->sync.lock);
		if (!s->lst.ndirfix) {
			pthread_mutex_unlock(&s->sync.lock);
			return;
		}
		k = s->lst.dirfix[--s->lst.ndirfix];
		d = k < s->lst.ndirs ? s->lst.dirs[k] : NULL;
		pthread_mutex_unlock(&s->sync.lock);
		if (!d || !d->fix || s->opts.dry_run)
			continue;
		if (strcmp(d->name, ".") == 0) {
			ret = fstat(s->dest.root_fd, &st);
		} else {
			slash = strrchr(d->name, '/');
			dfd = berth__gen_dir_fd(
				g, d->name,
				slash ? (size_t)(slash - d->name) : 0);
			ret = dfd < 0 ? dfd
				      : berth__sys_lstatat(
						s, dfd,
						berth__gen_base_name(d->name),
						&st);
		}
		if (ret == 0 && S_ISDIR(st.st_mode) &&
		    !dir_meta_matches(s, &st, &d->meta))
			(void)berth_commit_dir_meta(
				s->stg.commit, d->name,
				dir_meta_todo(s, &st, &d->meta, &tmp));
	}
}

static int gen_tick(struct gen *g, struct sess_list *cur)
{
	int ret = send_redos(g);

	if (ret == 0)
		ret = finish_lists(g, cur);
	if (ret == 0)
		early_dir_fix(g);
	return ret;
}

/*
 * One list: its directory at ndx start - 1 (a full directory step: record,
 * attributes, deletions), then its entries, sub-directories only made to
 * exist (§8.1).  The initial list's directory is "." when it holds it.
 */
static int gen_list(struct gen *g, struct sess_list *l)
{
	struct berth_session *s = g->s;
	const struct berth_flist *fl = l->fl;
	struct berth_file pf;
	struct berth_file_ext px = berth_file_ext_none;
	struct sess_dir *d = NULL;
	uint32_t i;
	int ret;

	g->list = l;
	g->list_dirs = 0;
	g->list_skip = false;
	g->sdir = NULL;
	if (l->dir_k >= 0)
		d = sdir_at(s, (uint32_t)l->dir_k);
	else if (fl->count && strcmp(fl->files[0].base, ".") == 0)
		d = sdir_at(s, 0);
	/* Entries of an initial list without "." sit in the root. */
	g->list_parent_new = !d && s->dest.dest_created;
	if (d && d->missing) {
		/* Beneath a directory that could not be made: skipped, as
		 * are the lists of its own directories. */
		g->list_skip = true;
	} else if (d) {
		/* Its early mkdir (made from its parent's list): if that
		 * failed, it is looked at and made again now, and a second
		 * failure is reported (rsync). */
		if (d->made) {
			ret = berth__gen_mk_wait(s, &d->mk_state, &d->mk_err);
			if (ret == -BERTH_ECANCELLED)
				return ret;
			if (ret < 0)
				d->made = 0;
		}
		/* Split as a decoded entry is: its directory part in px. */
		memset(&pf, 0, sizeof(pf));
		pf.base = berth__gen_base_name(d->name);
		px.dir = d->name;
		px.dir_len = (uint32_t)(pf.base - d->name);
		pf.mtime = d->mtime;
		pf.nsec = d->nsec;
		pf.mode = d->mode;
		pf.uid = d->uid;
		pf.gid = d->gid;
		pf.flags = d->flags & ~BERTH_FILE_INACTIVE;
		pf.ext = &px;
		g->sdir = d;
		ret = gen_entry_checked(g, l->start - 1, &pf);
		if (ret < 0)
			return ret;
		/* A directory that could not be made: nothing inside it
		 * exists, its entries will fail on their own. */
		if (!d->fix)
			g->list_parent_new = d->made;
	}
	advance(s, l->start);
	for (i = 0; i < fl->count; i++) {
		ret = gen_entry_checked(g, l->start + (int32_t)i,
					&fl->files[i]);
		if (ret < 0)
			return ret;
		advance(s, l->start + (int32_t)i + 1);
		if ((i & 63) == 0) {
			if (stopping(s))
				return -BERTH_ECANCELLED;
			ret = gen_tick(g, l);
			if (ret < 0)
				return ret;
		}
	}
	return 0;
}

/*
 * Before the generator waits for the sender: what it has queued goes out,
 * and the signature reader's buffers go back to the system until the next
 * basis is signed (one large file's delta, which may come long before the
 * list's end, then runs without them).
 */
static void gen_idle(struct berth_session *s)
{
	berth__out_flush(&s->out);
	if (s->stg.sig)
		berth_sig_trim(s->stg.sig);
}

/*
 * Incremental recursion (§8.1): the lists in arrival order, each as soon
 * as it has come, while net-in goes on reading; every list's NDX_DONE is
 * sent once it is finished and the generator has moved past it.  The last
 * one, after NDX_FLIST_EOF, ends phase 0.
 */
static int gen_lists(struct gen *g)
{
	struct berth_session *s = g->s;
	struct sess_list *l, *next;
	bool eof, stop;
	int ret;

	pthread_mutex_lock(&s->sync.lock);
	l = s->lst.lists[s->lst.lists_first];
	g->oldest = l;
	pthread_mutex_unlock(&s->sync.lock);
	for (;;) {
		ret = gen_list(g, l);
		if (ret < 0)
			return ret;
		for (;;) {
			ret = gen_tick(g, l);
			if (ret < 0)
				return ret;
			pthread_mutex_lock(&s->sync.lock);
			next = l->next;
			eof = s->lst.flist_eof;
			stop = s->rep.fatal || s->sync.recv_finished;
			if (!next && !eof && !stop && s->sync.nredo == 0) {
				pthread_mutex_unlock(&s->sync.lock);
				gen_idle(s);
				pthread_mutex_lock(&s->sync.lock);
				if (!l->next && !s->lst.flist_eof &&
				    !s->rep.fatal && !s->sync.recv_finished &&
				    s->sync.nredo == 0 &&
				    (g->oldest == l || g->oldest->pending))
					pthread_cond_wait(&s->sync.cond,
							  &s->sync.lock);
				pthread_mutex_unlock(&s->sync.lock);
				continue;
			}
			pthread_mutex_unlock(&s->sync.lock);
			if (stop)
				return -BERTH_ECANCELLED;
			if (next || eof)
				break;
		}
		if (!next)
			break;
		l = next;
	}
	g->list = NULL;
	/* All generated: wait for the rest to finish (redo included). */
	for (;;) {
		ret = gen_tick(g, NULL);
		if (ret < 0)
			return ret;
		pthread_mutex_lock(&s->sync.lock);
		if (!g->oldest) {
			pthread_mutex_unlock(&s->sync.lock);
			return 0;
		}
		stop = s->rep.fatal || s->sync.recv_finished;
		pthread_mutex_unlock(&s->sync.lock);
		if (stop)
			return -BERTH_ECANCELLED;
		gen_idle(s);
		pthread_mutex_lock(&s->sync.lock);
		if (g->oldest && g->oldest->pending && s->sync.nredo == 0 &&
		    !s->rep.fatal && !s->sync.recv_finished)
			pthread_cond_wait(&s->sync.cond, &s->sync.lock);
		pthread_mutex_unlock(&s->sync.lock);
	}
}

static int gen_run(struct gen *g)
{
	struct berth_session *s = g->s;
	bool late = s->opts.delete_mode == BERTH_DELETE_AFTER ||
		    s->opts.delete_mode == BERTH_DELETE_DELAY;
	int32_t i;
	int ret;

	if (s->opts.hard_links) {
		ret = berth__gen_hlink_groups(g);
		if (ret < 0)
			return ret;
	}
	if (s->opts.delete_mode == BERTH_DELETE_BEFORE) {
		ret = berth__delete_pass(s);
		if (ret < 0)
			return ret;
	}
	if (s->lst.inc) {
		/* Every list, and its NDX_DONE (the last one is G1). */
		ret = gen_lists(g);
		if (ret < 0)
			return ret;
	} else {
		for (i = 0; i < (int32_t)s->lst.fl->count; i++) {
			ret = gen_entry_checked(g, i, &s->lst.fl->files[i]);
			if (ret < 0)
				return ret;
			advance(s, i + 1);
			if ((i & 63) == 0 && stopping(s))
				return -BERTH_ECANCELLED;
		}
		ret = berth__gen_link_followers(g);
		if (ret < 0)
			return ret;
		/* G1: end of phase 0. */
		ret = berth__gen_put_ndx(s, BERTH_NDX_DONE);
		if (ret < 0)
			return ret;
	}

	/* Phase 1: redo requests until the receiver has verified every
	 * phase-0 file (it has read the sender's first NDX_DONE). */
	for (;;) {
		ret = send_redos(g);
		if (ret < 0)
			return ret;
		gen_idle(s);
		pthread_mutex_lock(&s->sync.lock);
		while (s->sync.nredo == 0 && s->sync.sender_dones < 1 &&
		       !s->sync.recv_finished && !s->rep.fatal)
			pthread_cond_wait(&s->sync.cond, &s->sync.lock);
		bool phase_over = s->sync.sender_dones >= 1 &&
				  s->sync.nredo == 0;
		bool stop = s->sync.recv_finished || s->rep.fatal;
		pthread_mutex_unlock(&s->sync.lock);
		if (phase_over)
			break;
		if (stop && s->sync.nredo == 0)
			return -BERTH_ECANCELLED;
	}
	/* G2; with --delay-updates the delayed files are renamed into place
	 * once the sender's S2 says all redo data is in; then G3. */
	ret = berth__gen_put_ndx(s, BERTH_NDX_DONE);
	if (ret == 0 && s->opts.delay_updates) {
		ret = wait_sender_dones(s, 2);
		if (ret == 0)
			ret = berth__delayed_renames(s);
	}
	if (ret == 0 && s->neg.proto >= 29) /* no G3 before 29 */
		ret = berth__gen_put_ndx(s, BERTH_NDX_DONE);
	if (ret < 0)
		return ret;
	/* --delete-after/-delay: the pass runs once the sender's S2 and S3
	 * have come (every file is in), and G4 waits for it (§10.1). */
	if (late) {
		/* (Before 29 there is no S3: S2 is the sender's last.) */
		ret = wait_sender_dones(s, s->neg.proto >= 29 ? 3 : 2);
		if (ret == 0)
			ret = berth__delete_pass(s);
		if (ret < 0)
			return ret;
	}
	if (s->opts.delete_mode || s->opts.force) {
		/* Deletions are counted once done. */
		if (!s->opts.dry_run)
			(void)berth_commit_flush(s->stg.commit);
		berth__delete_finish(s);
	}
	/* At 31+: deletion statistics (when deleting), then G4. */
	if (s->neg.proto >= 31 && (s->opts.delete_mode || s->opts.force)) {
		ret = berth__gen_put_del_stats(s);
		if (ret < 0)
			return ret;
	}
	if (s->neg.proto >= 31) {
		ret = berth__gen_put_ndx(s, BERTH_NDX_DONE);
		if (ret < 0)
			return ret;
	}

	/* The sender's S2, S3 (and S4): all redo data has arrived. */
	ret = wait_sender_dones(s, berth__sender_dones_total(s));
	if (ret < 0)
		return ret;
	berth__partial_sweep(s);
	ret = fix_dirs(g);
	(void)ret; /* errors were reported per item */
	/* Every outcome is in: a commit the pump's shutdown cancelled came
	 * by event as a cancel, which the session did not ask for. */
	if (berth__session_pump_lost(s))
		return -BERTH_ECANCELLED;
	/* G_final. */
	ret = berth__gen_put_ndx(s, BERTH_NDX_DONE);
	if (ret == 0)
		ret = berth__out_drain(&s->out);
	return ret;
}

void *berth__gen_main(void *arg)
{
	struct berth_session *s = arg;
	struct gen g = {.s = s};
	int ret;

	berth__gen_dir_cache_init(&g);
	g.stack = calloc(s->lst.fl ? s->lst.fl->count + 1 : 1,
			 sizeof(*g.stack));
	g.dirs = calloc(s->lst.fl ? s->lst.fl->count + 1 : 1, sizeof(*g.dirs));
	if (!g.stack || !g.dirs)
		ret = -ENOMEM;
	else
		ret = gen_run(&g);
	advance(s, INT32_MAX); /* nothing more will be generated */
	berth_dircache_destroy(&g.dcache);
	free(g.hl_leader);
	free(g.stack);
	free(g.dirs);
	if (ret == -BERTH_ECANCELLED)
		(void)berth__session_pump_lost(s); /* or a cancel of ours */
	else if (ret < 0)
		berth__session_fatal(s, berth__exit_code_of(ret),
				     "generator: %s\n", berth_strerror(ret));
	return NULL;
}
