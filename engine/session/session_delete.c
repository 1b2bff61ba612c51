/* SPDX-License-Identifier: MIT */
/*
 * Deletion on the generator thread (rsync-protocol.md §8.7, §10.2): the
 * destination entries of each content directory that the file list does
 * not name, unless a filter rule protects them (session_filter.c: the
 * client's list and the merge files of the directories looked into); reverse sorted
 * order, contents before their directory; each reported to the client
 * (MSG_DELETED) and counted for NDX_DEL_STATS; --max-delete; nothing is
 * deleted after a sender I/O error (unless --ignore-errors); a dry run
 * reports and counts without deleting.  Listing never follows symlinks:
 * every directory is opened beneath the root with RESOLVE_NO_SYMLINKS.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_sys.h"

struct del_item {
	char *path;
	unsigned char type; /* DT_* */
};

struct del_list {
	struct del_item *v;
	size_t n, cap;
};

static int del_push(struct del_list *l, char *path, unsigned char type)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		struct del_item *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].path = path;
	l->v[l->n].type = type;
	l->n++;
	return 0;
}

static void del_free(struct del_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static int del_cmp(const void *a, const void *b)
{
	const struct del_item *x = a, *y = b;

	return berth_flist_cmp(x->path, x->type == DT_DIR, y->path,
			       y->type == DT_DIR);
}

/* Below protocol 29 the list order is the whole names' (§7.7). */
static int del_cmp_pre29(const void *a, const void *b)
{
	const struct del_item *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* In the file list's order, which is the order rsync deletes in. */
static void del_sort(struct berth_session *s, struct del_list *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v),
		      s->neg.proto < 29 ? del_cmp_pre29 : del_cmp);
}

struct list_arg {
	const char *name;
	DIR *d;
	struct del_list *l;
};

/* One directory's entries into the list (a call the faults can reach). */
static ssize_t list_dir(void *arg)
{
	struct list_arg *a = arg;
	struct dirent *de;
	struct stat st;
	char *path;
	int ret = 0;

	errno = 0;
	while (ret == 0 && (de = readdir(a->d))) {
		unsigned char type = de->d_type;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (type == DT_UNKNOWN)
			type = fstatat(dirfd(a->d), de->d_name, &st,
				       AT_SYMLINK_NOFOLLOW) == 0 &&
					       S_ISDIR(st.st_mode)
				       ? DT_DIR
				       : DT_REG;
		if (strcmp(a->name, ".") == 0)
			path = strdup(de->d_name);
		else if (asprintf(&path, "%s/%s", a->name, de->d_name) < 0)
			path = NULL;
		if (!path)
			return -ENOMEM;
		ret = del_push(a->l, path, type);
		if (ret < 0)
			free(path);
		errno = 0;
	}
	return ret < 0 ? ret : errno ? -errno : 0;
}

/* The entries of directory @name; with @recurse, everything below it
 * (unsorted). */
static int del_collect(struct berth_session *s, const char *name,
		       struct del_list *l, bool recurse, unsigned depth)
{
	struct list_arg a = {name, NULL, l};
	size_t first = l->n, end;
	int fd, ret;

	if (depth > 256)
		return -ELOOP;
	fd = berth__sys_open(s, s->dest.root_fd, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fd;
	a.d = fdopendir(fd);
	if (!a.d) {
		close(fd);
		return -errno;
	}
	ret = (int)berth__sys_call(s, list_dir, &a);
	closedir(a.d);
	end = l->n;
	for (size_t i = first; recurse && ret == 0 && i < end; i++)
		if (l->v[i].type == DT_DIR)
			ret = del_collect(s, l->v[i].path, l, true, depth + 1);
	return ret;
}

/*
 * Before protocol 29 the server words a deletion itself, in the client's
 * --log-format (%i is "*deleting", %n the name; other escapes are empty,
 * as rsync's server leaves them) or "deleting NAME".
 */
static void log_deleted_pre29(struct berth_session *s, const char *path,
			      bool is_dir)
{
	const char *f = s->opts.log_format ? s->opts.log_format : "deleting %n";
	char line[PATH_MAX + 64];
	size_t n = 0;

	for (; *f && n < sizeof(line) - 2; f++) {
		const char *add = NULL;

		if (*f != '%' || !f[1]) {
			line[n++] = *f;
			continue;
		}
		f++;
		while (*f == '-' || (*f >= '0' && *f <= '9') || *f == '\'')
			f++;
		if (*f == 'i')
			add = "*deleting  ";
		else if (*f == 'n' || *f == 'f')
			add = path;
		else if (*f == '%')
			add = "%";
		for (; add && *add && n < sizeof(line) - 3; add++)
			line[n++] = *add;
		if ((*f == 'n' || *f == 'f') && is_dir)
			line[n++] = '/';
	}
	line[n++] = '\n';
	line[n] = '\0';
	berth__session_log(s, BERTH_LOG_INFO, "%s", line);
}

/* Report one deletion (MSG_DELETED; a directory's name ends in a NUL),
 * count it by type, and tell the embedder. */
static void report_deleted(struct berth_session *s, const char *path,
			   unsigned char type)
{
	bool is_dir = type == DT_DIR;
	size_t len = strlen(path);

	if ((s->opts.verbose || s->opts.log_format) && s->neg.proto >= 29) {
		/* --iconv: the name goes back in UTF-8. */
		char *conv = berth__iconv_msg(s, false, path, len, &len);

		berth__out_msg(&s->out, BERTH_MSG_DELETED, conv ? conv : path,
			       len + (is_dir ? 1 : 0));
		free(conv);
	} else if (s->opts.verbose || s->opts.log_format) {
		log_deleted_pre29(s, path, is_dir);
	}
	switch (type) {
	case DT_DIR:
		s->del.stats.dirs++;
		break;
	case DT_LNK:
		s->del.stats.symlinks++;
		break;
	case DT_CHR:
	case DT_BLK:
		s->del.stats.devices++;
		break;
	case DT_FIFO:
	case DT_SOCK:
		s->del.stats.specials++;
		break;
	default:
		s->del.stats.files++;
		break;
	}
	berth__session_deleted(s, path, is_dir);
}

/*
 * A deletion queued to the commit stage.  It is reported (MSG_DELETED,
 * counted, the embedder told) once it is done, as rsync reports only what
 * it deleted, and in the order the deletions were queued: an entry waits
 * until every one before it is done.  The list is under sync.lock; only the
 * commit thread's event takes entries off it, so the reports keep their
 * order outside the lock.
 */
struct del_pending {
	struct del_pending *next;
	unsigned char type; /* DT_* */
	signed char state; /* 0 queued, 1 deleted, -1 failed */
	char path[];
};

/* meta.user of every such deletion (its address; never written). */
static char del_mark;

bool berth__delete_token(const void *user)
{
	return user == &del_mark;
}

void berth__delete_done(struct berth_session *s, const char *path, int err)
{
	struct del_pending *p, *ready = NULL, **rt = &ready;

	pthread_mutex_lock(&s->sync.lock);
	for (p = s->del.pend_head; p; p = p->next)
		if (p->state == 0 && strcmp(p->path, path) == 0) {
			p->state = err ? -1 : 1;
			break;
		}
	while ((p = s->del.pend_head) && p->state != 0) {
		s->del.pend_head = p->next;
		if (!p->next)
			s->del.pend_tail = NULL;
		p->next = NULL;
		*rt = p;
		rt = &p->next;
	}
	pthread_mutex_unlock(&s->sync.lock);
	while ((p = ready)) {
		ready = p->next;
		if (p->state > 0)
			report_deleted(s, p->path, p->type);
		free(p);
	}
}

/* Queue the deletion of @path (@type) to the commit stage. */
static int delete_queued(struct berth_session *s, const char *path,
			 unsigned char type)
{
	size_t len = strlen(path);
	struct del_pending *p = malloc(sizeof(*p) + len + 1);
	int ret;

	if (!p)
		return -ENOMEM;
	p->next = NULL;
	p->type = type;
	p->state = 0;
	memcpy(p->path, path, len + 1);
	pthread_mutex_lock(&s->sync.lock);
	if (s->del.pend_tail)
		s->del.pend_tail->next = p;
	else
		s->del.pend_head = p;
	s->del.pend_tail = p;
	pthread_mutex_unlock(&s->sync.lock);
	ret = berth_commit_delete(s->stg.commit, path, type == DT_DIR,
				  &del_mark);
	if (ret < 0) {
		/* Never queued: no event will come for it. */
		pthread_mutex_lock(&s->sync.lock);
		p->state = -1;
		pthread_mutex_unlock(&s->sync.lock);
	}
	return ret;
}

/* One more deletion allowed by --max-delete?  Counts what it refuses. */
static bool may_delete(struct berth_session *s)
{
	if (s->opts.max_delete < 0 || s->del.deleted < s->opts.max_delete) {
		s->del.deleted++;
		return true;
	}
	s->del.skipped++;
	return false;
}

/* Delete (or, in a dry run, only report) one entry that has no contents. */
static int delete_one(struct berth_session *s, const char *path,
		      unsigned char type)
{
	int ret = 0;

	/* --backup keeps every deleted file (renamed): its directory stays,
	 * unreported, as rsync leaves it.  With a --backup-dir the files
	 * moved out and the directory goes too. */
	if (type == DT_DIR && s->opts.backup && !s->opts.backup_dir)
		return 0;

	if (!may_delete(s))
		return 0;
	if (type != DT_DIR && s->opts.backup_dir) {
		ret = berth__backup_prepare(s, path);
		if (ret < 0)
			return ret;
	}
	if (!s->opts.dry_run)
		ret = delete_queued(s, path, type);
	else
		report_deleted(s, path, type);
	return ret;
}

/*
 * The contents of directory @name, as rsync's delete_dir_contents(): its
 * merge files read, each entry in reverse list order, a subdirectory's
 * contents before it; what a (not perishable) rule excludes stays, and so
 * does every directory above it.  *@kept: something stayed.
 */
static int delete_contents(struct berth_session *s, const char *name,
			   unsigned depth, bool *kept)
{
	struct del_list l = {0};
	size_t i;
	int ret;

	if (depth > 256)
		return -ELOOP;
	ret = berth__filter_enter(s, name);
	if (ret == 0)
		ret = del_collect(s, name, &l, false, 0);
	if (ret == 0)
		del_sort(s, &l);
	for (i = l.n; ret == 0 && i-- > 0;) {
		bool is_dir = l.v[i].type == DT_DIR, sub_kept = false;

		if (berth__filter_protects(s, l.v[i].path, is_dir, true)) {
			*kept = true;
			continue;
		}
		if (is_dir) {
			ret = delete_contents(s, l.v[i].path, depth + 1,
					      &sub_kept);
			if (ret == 0) /* back here for the next entry */
				ret = berth__filter_enter(s, name);
			if (ret < 0)
				break;
			if (sub_kept) {
				*kept = true;
				continue;
			}
		}
		ret = delete_one(s, l.v[i].path, l.v[i].type);
	}
	del_free(&l);
	if (ret == 0 && *kept)
		berth__session_log(s, BERTH_LOG_INFO,
				   "cannot delete non-empty directory: %s\n",
				   name);
	return ret;
}

int berth__delete_tree(struct berth_session *s, const char *name,
		       bool report_self)
{
	bool kept = false;
	int ret;

	ret = delete_contents(s, name, 0, &kept);
	if (ret < 0)
		return ret;
	if (kept)
		return 1;
	if (report_self)
		return delete_one(s, name, DT_DIR);
	return s->opts.dry_run
		       ? 0
		       : berth_commit_delete(s->stg.commit, name, 1, NULL);
}

/* Does the open directory have an entry? (A call the faults can reach.) */
static ssize_t any_entry(void *arg)
{
	struct dirent *de;

	errno = 0;
	while ((de = readdir(arg)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			return 1;
	return errno ? -errno : 0;
}

bool berth__dir_has_entries(struct berth_session *s, const char *name)
{
	ssize_t any;
	DIR *d;
	int fd;

	fd = berth__sys_open(s, s->dest.root_fd, name, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return false;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return false;
	}
	any = berth__sys_call(s, any_entry, d);
	closedir(d);
	return any != 0; /* not listed: not known to be empty */
}

/* ------------------------------------------------------------ filters */

/* Is @dir (a list name) @name's directory or one above it? */
static bool is_above(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	return (n == 1 && dir[0] == '.') ||
	       (strncmp(name, dir, n) == 0 && name[n] == '/');
}

int berth__prune_empty_dirs(struct berth_session *s, struct berth_flist *fl)
{
	uint32_t *open, nopen = 0, i;

	/* The directories above the last entry that nothing keeps yet. */
	open = malloc(sizeof(*open) * (fl->count + 1));
	if (!open)
		return -ENOMEM;
	for (i = 0; i < fl->count; i++) {
		struct berth_file *f = &fl->files[i];
		bool dir = S_ISDIR(f->mode);
		char fpath[BERTH_PATH_BUF], opath[BERTH_PATH_BUF];
		const char *fname = berth_file_path(f, fpath);

		if (f->flags & BERTH_FILE_INACTIVE)
			continue;
		if (dir && !strcmp(fname, "."))
			continue; /* the top is never pruned */
		while (nopen &&
		       !is_above(berth_file_path(&fl->files[open[nopen - 1]],
						 opath),
				 fname))
			fl->files[open[--nopen]].flags |= BERTH_FILE_INACTIVE;
		if (!dir || berth__filter_protects(s, fname, true, false))
			nopen = 0; /* it keeps every directory above it */
		else
			open[nopen++] = i;
	}
	while (nopen)
		fl->files[open[--nopen]].flags |= BERTH_FILE_INACTIVE;
	free(open);
	return 0;
}

/* ------------------------------------------------------------ the pass */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* May deletions happen at all?  (Reported once if not.) */
static bool deletions_allowed(struct berth_session *s)
{
	if (atomic_load(&s->rep.io_error) && !s->opts.ignore_errors) {
		if (!s->del.io_warned) {
			berth__session_log(s, BERTH_LOG_INFO,
					   "IO error encountered -- skipping "
					   "file deletion\n");
			s->del.io_warned = true;
		}
		return false;
	}
	return true;
}

/* Delete what is in directory @dname but not among @names (its sorted
 * children's base names). */
static int delete_in(struct berth_session *s, const char *dname,
		     const char **names, size_t n)
{
	bool root = strcmp(dname, ".") == 0;
	size_t plen = root ? 0 : strlen(dname) + 1;
	struct del_list l = {0};
	size_t i;
	int ret;

	ret = berth__filter_enter(s, dname);
	if (ret == 0)
		ret = del_collect(s, dname, &l, false, 0);
	if (ret == -ENOENT || ret == -ENOTDIR || ret == -ELOOP)
		ret = 0; /* nothing there (or not ours to look into) */
	if (ret == 0)
		del_sort(s, &l);
	for (i = l.n; ret == 0 && i-- > 0;) {
		const char *nm = l.v[i].path + plen;
		bool is_dir = l.v[i].type == DT_DIR;

		if (bsearch(&nm, names, n, sizeof(*names), name_cmp))
			continue; /* in the list (whatever its type) */
		if (berth__filter_protects(s, l.v[i].path, is_dir, false))
			continue;
		if (is_dir) {
			ret = berth__delete_tree(s, l.v[i].path, true);
			ret = ret > 0 ? 0 : ret; /* something kept */
			/* Back in this directory for its next entry. */
			if (ret == 0)
				ret = berth__filter_enter(s, dname);
		} else {
			ret = delete_one(s, l.v[i].path, l.v[i].type);
		}
	}
	del_free(&l);
	return ret;
}

int berth__delete_extraneous(struct berth_session *s, int32_t dir_ndx)
{
	const struct berth_file *dir = &s->lst.fl->files[dir_ndx];
	char dpath[BERTH_PATH_BUF];
	const char *dname = berth_file_path(dir, dpath);
	bool root = strcmp(dname, ".") == 0;
	size_t plen = root ? 0 : strlen(dname) + 1;
	const char **names;
	size_t n = 0;
	int32_t k;
	int ret;

	if (!deletions_allowed(s) || (dir->flags & BERTH_FILE_NO_CONTENT_DIR))
		return 0;
	/* The directory's children in the list: its subtree follows it. */
	names = malloc((s->lst.fl->count + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (k = dir_ndx + 1; k < (int32_t)s->lst.fl->count; k++) {
		const struct berth_file *f = &s->lst.fl->files[k];
		const struct berth_file_ext *x = f->ext;

		/* In its subtree: a directory part that starts DIR/. */
		if (!root && (x->dir_len < plen ||
			      memcmp(x->dir, dname, plen - 1) != 0 ||
			      x->dir[plen - 1] != '/'))
			break;
		if (x->dir_len == plen && !(f->flags & BERTH_FILE_INACTIVE))
			names[n++] = f->base;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	ret = delete_in(s, dname, names, n);
	free(names);
	return ret;
}

int berth__delete_in_list(struct berth_session *s, const char *dname,
			  uint32_t flags, const struct berth_flist *fl)
{
	bool root = strcmp(dname, ".") == 0;
	size_t plen = root ? 0 : strlen(dname) + 1;
	const char **names;
	size_t n = 0;
	uint32_t k;
	int ret;

	if (!deletions_allowed(s) || (flags & BERTH_FILE_NO_CONTENT_DIR))
		return 0;
	/* Every entry of the list is a child of the directory (checked by
	 * the decoder); the initial list also holds "." itself. */
	names = malloc(((size_t)fl->count + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	for (k = 0; k < fl->count; k++) {
		const struct berth_file *f = &fl->files[k];

		if (f->ext->dir_len == plen && f->base[0] &&
		    !(f->flags & BERTH_FILE_INACTIVE))
			names[n++] = f->base;
	}
	qsort(names, n, sizeof(*names), name_cmp);
	ret = delete_in(s, dname, names, n);
	free(names);
	return ret;
}

int berth__delete_pass(struct berth_session *s)
{
	int32_t k;
	int ret = 0;

	/* Nothing of ours may be in flight in the tree (temp names). */
	if (!s->opts.dry_run)
		berth_commit_flush(s->stg.commit);
	for (k = 0; ret == 0 && k < (int32_t)s->lst.fl->count; k++)
		if (S_ISDIR(s->lst.fl->files[k].mode) &&
		    !(s->lst.fl->files[k].flags & BERTH_FILE_INACTIVE))
			ret = berth__delete_extraneous(s, k);
	/* Done before anything is looked at, as rsync's are: a directory
	 * that lost entries is then itemized with its new time. */
	if (!s->opts.dry_run)
		berth_commit_flush(s->stg.commit);
	return ret;
}

void berth__delete_finish(struct berth_session *s)
{
	if (s->del.skipped) {
		berth__session_log(s, BERTH_LOG_WARNING,
				   "Deletions stopped due to --max-delete "
				   "limit (%u skipped)\n",
				   s->del.skipped);
		atomic_fetch_or(&s->rep.io_error, 4);
	}
}

void berth__del_free(struct sess_del *d)
{
	struct del_pending *p;

	berth__filter_free(d->filt);
	d->filt = NULL;
	while ((p = d->pend_head)) {
		d->pend_head = p->next;
		free(p);
	}
	d->pend_tail = NULL;
}
