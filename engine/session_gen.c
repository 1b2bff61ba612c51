/* SPDX-License-Identifier: MIT */
/*
 * The generator: walks the sorted file list, compares each entry with the
 * destination, makes directories, symlinks and nodes through the commit
 * stage, and asks the sender for files that need data (an item record, then
 * the sum head and block sums of the basis).  Then the phases: redo
 * requests, the NDX_DONE sequence of rsync-protocol.md §8.6 / §10.1, and
 * the final directory attributes.
 *
 * Destination lookups never follow symlinks: a parent directory is opened
 * beneath the root with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and
 * the entry is looked at with fstatat(AT_SYMLINK_NOFOLLOW) relative to it.
 * A directory the generator itself created is known to be empty, so its
 * contents are not looked up at all.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/openat2.h>

#include "engine/session_int.h"
#include "engine/session_xattr.h"

#define DIR_CACHE 8
#define REC_MAX 64 /* ndx + iflags + basis type: fits easily */

struct dir_slot {
	char *path;
	int fd;
	unsigned use;
};

/* The chain of directories the walk is inside (sorted order is depth
 * first, so a stack follows it). */
struct dir_frame {
	const char *name; /* the directory's name (in the file list) */
	size_t len;
	bool is_new; /* created by us: its contents cannot exist yet */
};

/* A directory whose attributes are set again at the end. */
struct dir_fix {
	int32_t ndx;
	struct berth_commit_meta meta;
};

struct gen {
	struct berth_session *s;
	const char *skip_dir; /* --existing: a missing directory's subtree */
	size_t skip_len;
	int32_t *hl_leader; /* -H: per ndx, its group's leader, or -1 */
	bool any_hlinks;
	struct dir_slot cache[DIR_CACHE];
	unsigned tick;
	struct dir_frame *stack;
	size_t depth;
	struct dir_fix *dirs; /* every directory, for the final attributes */
	size_t ndirs;
	/* Incremental recursion: the list being generated, its directory
	 * (NULL for an initial list without "."), whether the directory is
	 * new (its entries then cannot exist), and the oldest list whose
	 * NDX_DONE is not sent yet. */
	struct sess_list *list;
	struct sess_dir *sdir;
	bool list_parent_new;
	uint32_t list_dirs; /* directories of the list seen so far */
	struct sess_list *oldest;
};

/* An O_PATH fd of directory @path (len bytes of it) beneath the root. */
static int dir_fd(struct gen *g, const char *path, size_t len)
{
	struct dir_slot *victim = &g->cache[0];
	char *copy;
	int fd, i;

	if (len == 0)
		return g->s->root_fd;
	for (i = 0; i < DIR_CACHE; i++) {
		struct dir_slot *d = &g->cache[i];

		if (d->path && strlen(d->path) == len &&
		    memcmp(d->path, path, len) == 0) {
			d->use = ++g->tick;
			return d->fd;
		}
		if (d->use < victim->use)
			victim = d;
	}
	copy = strndup(path, len);
	if (!copy)
		return -ENOMEM;
	fd = berth__open_beneath(g->s->root_fd, copy, O_PATH | O_DIRECTORY);
	if (fd < 0) {
		free(copy);
		return fd;
	}
	if (victim->path) {
		free(victim->path);
		close(victim->fd);
	}
	victim->path = copy;
	victim->fd = fd;
	victim->use = ++g->tick;
	return fd;
}

static void dir_cache_drop(struct gen *g)
{
	for (int i = 0; i < DIR_CACHE; i++) {
		if (g->cache[i].path) {
			free(g->cache[i].path);
			close(g->cache[i].fd);
			g->cache[i].path = NULL;
		}
	}
}

static const char *base_name(const char *name)
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
	if (g->s->inc)
		return g->list_parent_new;

	while (g->depth > 0) {
		struct dir_frame *f = &g->stack[g->depth - 1];

		if (f->len <= plen && memcmp(f->name, name, f->len) == 0 &&
		    (f->len == plen || name[f->len] == '/'))
			return f->len == plen ? f->is_new : false;
		g->depth--;
	}
	/* The root: new if DEST was created. */
	return plen == 0 && g->s->dest_created;
}

static void push_dir(struct gen *g, const char *name, bool is_new)
{
	g->stack[g->depth].name = name;
	g->stack[g->depth].len = strlen(name);
	g->stack[g->depth].is_new = is_new;
	g->depth++;
}

/* lstat of the destination for @name: 0, -ENOENT, or another error. */
static int dest_stat(struct gen *g, const struct berth_file *f, struct stat *st)
{
	const char *name = f->name;
	const char *slash;
	int dfd;

	if (strcmp(name, ".") == 0)
		return fstat(g->s->root_fd, st) < 0 ? -errno : 0;
	if (parent_is_new(g, name))
		return -ENOENT;
	slash = strrchr(name, '/');
	dfd = dir_fd(g, name, slash ? (size_t)(slash - name) : 0);
	if (dfd < 0)
		/* A parent that is missing or not a directory (or a symlink,
		 * which we never follow): the entry does not exist for us. */
		return dfd == -ENOENT || dfd == -ENOTDIR || dfd == -ELOOP
			       ? -ENOENT
			       : dfd;
	if (fstatat(dfd, base_name(name), st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* What the receiver needs to know of the destination (under s->lock). */
static void set_exists(struct berth_session *s, int32_t ndx, bool exists,
		       mode_t mode)
{
	struct file_state *st;

	pthread_mutex_lock(&s->lock);
	st = berth__fst_of(s, ndx);
	if (st) {
		st->exists = exists;
		st->cur_mode = mode;
	}
	pthread_mutex_unlock(&s->lock);
}

/*
 * A directory stands where @what must go.  An empty one is removed; a
 * non-empty one only with --force (or a delete mode), else rsync's two
 * messages, and the item is skipped (exit 23).  Returns 0 when the way is
 * made (or queued), 1 when the item is to be skipped, or an error.
 */
static int clear_dir_for(struct gen *g, const struct berth_file *f,
			 const char *what)
{
	struct berth_session *s = g->s;

	if (!s->opts.force && s->opts.delete_mode == BERTH_DELETE_NONE &&
	    berth__dir_has_entries(s, f->name)) {
		berth__session_log(s, BERTH_LOG_INFO,
				   "cannot delete non-empty directory: %s\n",
				   f->name);
		berth__session_file_error(s,
					  "could not make way for new %s: %s\n",
					  what, f->name);
		return 1;
	}
	/* (A dry run reports what would go.) */
	return berth__delete_tree(s, f->name, false);
}

/* --existing / --ignore-existing (rsync's gates right after the lookup,
 * for every type).  True: skip the item. */
static bool existence_gate(struct gen *g, const struct berth_file *f,
			   int stat_ret, const struct stat *st)
{
	struct berth_session *s = g->s;

	if (s->opts.existing && stat_ret == -ENOENT) {
		if (S_ISDIR(f->mode) && !g->skip_dir) {
			g->skip_dir = f->name;
			g->skip_len = strlen(f->name);
		}
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
	if (S_ISLNK(mode) && (s->opts.omit_link_times ||
			      !(s->hs.compat & BERTH_CF_SYMLINK_TIMES)))
		return false;
	return true;
}

static bool mtime_differs(struct berth_session *s, const struct berth_file *f,
			  const struct stat *st)
{
	int64_t d = (int64_t)st->st_mtim.tv_sec - f->mtime;

	if (s->opts.have_modify_window && s->opts.modify_window < 0)
		return d != 0 || (uint32_t)st->st_mtim.tv_nsec != f->nsec;
	if (s->opts.have_modify_window && s->opts.modify_window > 0)
		return d > s->opts.modify_window || d < -s->opts.modify_window;
	return d != 0;
}

/* §8.4 for an item that exists; @base: the flags decided so far. */
static uint32_t itemize(struct berth_session *s, const struct berth_file *f,
			const struct stat *st, uint32_t base)
{
	uint32_t fl = base;
	mode_t type = f->mode & S_IFMT;

	if (S_ISREG(type) && st->st_size != f->size)
		fl |= BERTH_ITEM_REPORT_SIZE;
	if (times_preserved(s, type)) {
		if (mtime_differs(s, f, st))
			fl |= BERTH_ITEM_REPORT_TIME;
	} else if (base & (BERTH_ITEM_TRANSFER | BERTH_ITEM_LOCAL_CHANGE)) {
		fl |= BERTH_ITEM_REPORT_TIME;
	}
	if (!S_ISLNK(type)) {
		if (s->opts.perms && ((st->st_mode ^ f->mode) & 07777))
			fl |= BERTH_ITEM_REPORT_PERMS;
		else if (!s->opts.perms && s->opts.executability &&
			 !!(st->st_mode & 0111) != !!(f->mode & 0111))
			fl |= BERTH_ITEM_REPORT_PERMS;
	}
	if (s->opts.owner && s->am_root &&
	    berth__map_uid(s, f->uid) != st->st_uid)
		fl |= BERTH_ITEM_REPORT_OWNER;
	if (s->opts.group && berth__map_gid(s, f->gid) != st->st_gid)
		fl |= BERTH_ITEM_REPORT_GROUP;
	return fl;
}

static bool record_wanted(struct berth_session *s, uint32_t iflags)
{
	if (iflags & ~(BERTH_ITEM_BASIS_TYPE_FOLLOWS |
		       BERTH_ITEM_XNAME_FOLLOWS | BERTH_ITEM_LOCAL_CHANGE))
		return true;
	if (s->opts.verbose >= 2)
		return true;
	return s->opts.log_format && strstr(s->opts.log_format, "%i%I");
}

/* ndx + iflags [+ basis type] (the caller adds a sum head for transfers). */
static int put_record_b(struct berth_session *s, int32_t ndx, uint32_t iflags,
			int btype)
{
	uint8_t buf[REC_MAX];
	struct berth_proto_out po = {buf, sizeof(buf), 0};
	int ret;

	ret = berth_proto_put_ndx(&po, &s->out.ndx, ndx);
	if (ret >= 0)
		ret = berth_proto_put_shortint(&po, (uint16_t)iflags);
	if (ret >= 0 && (iflags & BERTH_ITEM_BASIS_TYPE_FOLLOWS))
		ret = berth_proto_put_u8(&po, (uint8_t)btype);
	if (ret < 0)
		return ret;
	ret = berth__out_data(&s->out, buf, po.pos);
	return ret < 0 ? ret : berth__xa_gen_request(s, ndx, iflags);
}

static int put_record(struct berth_session *s, int32_t ndx, uint32_t iflags)
{
	return put_record_b(s, ndx, iflags, 0);
}

/*
 * A hard-link record ("hf"): LOCAL_CHANGE | XNAME_FOLLOWS, and IS_NEW with
 * the name of the entry it is linked to; @to NULL: an existing link that
 * was already right (an empty xname, shown at -ii).
 */
static int put_link_record(struct berth_session *s, int32_t ndx,
			   const struct berth_file *to)
{
	uint8_t buf[REC_MAX + 8192];
	struct berth_proto_out po = {buf, sizeof(buf), 0};
	uint32_t iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_XNAME_FOLLOWS;
	int ret;

	/* -X: a new link is new (a linked-to match has the same xattrs). */
	if (to)
		iflags |= BERTH_ITEM_IS_NEW |
			  berth__xa_gen_itemize(s, berth__file(s, ndx), -1,
						NULL);
	ret = berth_proto_put_ndx(&po, &s->out.ndx, ndx);
	if (ret >= 0)
		ret = berth_proto_put_shortint(&po, (uint16_t)iflags);
	if (ret >= 0)
		ret = berth_proto_put_vstring(&po, to ? to->name : "",
					      to ? to->name_len : 0);
	if (ret >= 0)
		ret = berth__out_data(&s->out, buf, po.pos);
	return ret < 0 ? ret : berth__xa_gen_request(s, ndx, iflags);
}

static int put_del_stats(struct berth_session *s)
{
	uint8_t buf[64];
	struct berth_proto_out po = {buf, sizeof(buf), 0};
	int ret = berth_del_stats_put(&po, &s->out.ndx, s->proto, &s->del);

	return ret < 0 ? ret : berth__out_data(&s->out, buf, po.pos);
}

static int put_ndx(struct berth_session *s, int32_t ndx)
{
	uint8_t buf[8];
	struct berth_proto_out po = {buf, sizeof(buf), 0};
	int ret = berth_proto_put_ndx(&po, &s->out.ndx, ndx);

	return ret < 0 ? ret : berth__out_data(&s->out, buf, po.pos);
}

static int emit_sums(void *arg, const void *buf, size_t len)
{
	struct berth_session *s = arg;

	return berth__out_data(&s->out, buf, len);
}

/*
 * Ask for file @ndx: record, then the sum head and block sums of the
 * destination as basis (or an empty head).
 */
static int request_file_at(struct gen *g, int32_t ndx, uint32_t iflags,
			   int basis_dir, const char *bname, int btype,
			   bool redo)
{
	struct berth_session *s = g->s;
	const struct berth_file *f = berth__file(s, ndx);
	struct berth_sum_head head;
	uint8_t zero[BERTH_SUM_HEAD_WIRE] = {0};
	struct file_state *st_;
	struct stat st;
	int ret, fd = -1;

	/* --backup-dir: the old file will move there when the new one is
	 * committed. */
	if (s->opts.backup_dir) {
		ret = berth__fst_get(s, ndx).exists;
		if (ret)
			ret = berth__backup_prepare(s, f->name);
		if (ret < 0)
			return ret;
	}
	/* Open the basis first: the receiver must know whether sums were
	 * sent before the sender can answer the record. */
	if (btype != -1)
		iflags |= BERTH_ITEM_BASIS_TYPE_FOLLOWS;
	if (basis_dir >= 0 && !s->opts.whole_file && !s->opts.dry_run) {
		fd = berth__open_beneath(basis_dir, bname ? bname : f->name,
					 O_RDONLY | O_NOFOLLOW);
		if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
				st.st_size == 0)) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0) {
		ret = berth_sum_head_init(&head, (uint64_t)st.st_size, s->proto,
					  s->cp.type,
					  (uint32_t)s->opts.block_size, redo);
		if (ret < 0) {
			close(fd);
			fd = -1;
			if (ret != -BERTH_ELIMIT)
				return ret;
		}
	}
	pthread_mutex_lock(&s->lock);
	berth__fst_requested(s, ndx);
	st_ = berth__fst_of(s, ndx);
	st_->attempts++;
	st_->had_basis = fd >= 0;
	st_->iflags = (uint16_t)iflags;
	st_->basis_type = (int8_t)btype;
	st_->appended = 0;
	pthread_mutex_unlock(&s->lock);
	ret = put_record_b(s, ndx, iflags,
			   btype == BASIS_PARTIAL ? BERTH_FNAMECMP_PARTIAL_DIR
						  : btype);
	if (ret < 0 || s->opts.dry_run) {
		if (fd >= 0)
			close(fd);
		return ret; /* §8.4: no sum head in a dry run */
	}

	if (fd < 0)
		return berth__out_data(&s->out, zero, sizeof(zero));
	ret = berth_sig_file(s->sig, fd, &head, &s->cp, emit_sums, s);
	close(fd);
	if (ret < 0) {
		/* The head is out, the sums are cut short: the stream cannot
		 * go on (the client would wait for the rest). */
		berth__session_fatal(s, RERR_FILEIO,
				     "%s: reading the basis failed: %s\n",
				     f->name, berth_strerror(ret));
		return -BERTH_ECANCELLED;
	}
	return 0;
}

static int request_file(struct gen *g, int32_t ndx, uint32_t iflags,
			int basis_dir, int btype, bool redo)
{
	return request_file_at(g, ndx, iflags, basis_dir, NULL, btype, redo);
}

/* The first alt-dest dir holding a directory at @f's name: its index, or
 * -1. */
static int alt_dir_stat(struct berth_session *s, const struct berth_file *f,
			struct stat *st)
{
	bool found = false;
	int j, fd;

	for (j = 0; j < s->nalt; j++) {
		if (s->alt_fd[j] < 0)
			continue;
		if (strcmp(f->name, ".") == 0)
			fd = fcntl(s->alt_fd[j], F_DUPFD_CLOEXEC, 0);
		else
			fd = berth__open_beneath(s->alt_fd[j], f->name,
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

static int gen_dir(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	struct berth_session *s = g->s;
	struct berth_commit_meta m;
	struct berth_commit_xattrs *x = NULL;
	struct stat st;
	uint32_t iflags;
	bool is_new = false;
	int ret, alt;

	if (strcmp(f->name, ".") == 0 && s->dest_created)
		ret = -ENOENT; /* we just made it: it is new */
	else if (s->inc && g->sdir && g->sdir->made)
		ret = -ENOENT; /* made as an entry of its parent: new */
	else
		ret = dest_stat(g, f, &st);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (existence_gate(g, f, ret, &st))
		return 0;
	if (ret == 0 && !S_ISDIR(st.st_mode)) {
		/* Something else is in the way: a file/symlink goes. */
		if (!s->opts.dry_run) {
			ret = berth_commit_delete(s->commit, f->name, 0, NULL);
			if (ret < 0)
				return ret;
		}
		ret = -ENOENT;
	}
	if (ret == -ENOENT) {
		is_new = true;
		/* As rsync: a copy in an alt-dest dir is what it is
		 * compared with (not new, if it is there), and -X copies
		 * its xattrs to the new directory. */
		alt = alt_dir_stat(s, f, &st);
		if (alt < 0) {
			iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_IS_NEW |
				 berth__xa_gen_itemize(s, f, -1, NULL);
		} else {
			iflags = itemize(s, f, &st, BERTH_ITEM_LOCAL_CHANGE) |
				 berth__xa_gen_itemize(s, f, s->alt_fd[alt],
						       f->name);
			if (!s->opts.dry_run) {
				ret = berth__xa_gen_copy(s, s->alt_fd[alt],
							 f->name, &x);
				if (ret < 0)
					return ret;
			}
		}
		if (!s->opts.dry_run && strcmp(f->name, ".") != 0 &&
		    !(s->inc && g->sdir->made)) {
			berth__session_meta(s, f, false, 0, &m);
			m.mode = (m.mode & 07777) | S_IFDIR;
			ret = berth_commit_mkdir(s->commit, f->name, &m);
			if (ret < 0) {
				free(x);
				return ret;
			}
		}
		if (x) {
			ret = berth_commit_set_xattrs(s->commit, f->name, x,
						      NULL);
			if (ret < 0)
				return ret;
		}
	} else {
		iflags = itemize(s, f, &st, 0) |
			 berth__xa_gen_itemize(s, f, s->root_fd, f->name);
	}
	set_exists(s, ndx, !is_new, is_new ? 0 : st.st_mode);
	if (record_wanted(s, iflags)) {
		ret = put_record(s, ndx, iflags);
		if (ret < 0)
			return ret;
	}
	/* --delete-during: this directory's extraneous entries go now. */
	if (!is_new && s->opts.delete_mode == BERTH_DELETE_DURING) {
		ret = s->inc ? berth__delete_in_list(s, f->name, f->xflags,
						     g->list->fl)
			     : berth__delete_extraneous(s, ndx);
		if (ret < 0)
			return ret;
	}
	if (s->inc) {
		/* The list's directory: its entries follow. */
		g->list_parent_new = is_new;
		berth__session_meta(s, f, !is_new, is_new ? 0 : st.st_mode,
				    &g->sdir->meta);
		g->sdir->fix = 1;
		g->sdir->is_new = is_new;
		return 0;
	}
	push_dir(g, f->name, is_new);
	g->dirs[g->ndirs].ndx = ndx;
	berth__session_meta(s, f, !is_new, is_new ? 0 : st.st_mode,
			    &g->dirs[g->ndirs].meta);
	g->ndirs++;
	return 0;
}

/*
 * Incremental recursion: a directory entry is only made to exist now (as
 * rsync does, so the parent's times can be fixed early); its record,
 * attributes and deletions come with its own list (§8.1).
 */
static int gen_dir_ensure(struct gen *g, const struct berth_file *f,
			  struct sess_dir *d)
{
	struct berth_session *s = g->s;
	struct berth_commit_meta m;
	struct stat st;
	int ret;

	if (strcmp(f->name, ".") == 0)
		return 0; /* the initial list's directory: done already */
	ret = g->list_parent_new ? -ENOENT : dest_stat(g, f, &st);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (ret == 0 && S_ISDIR(st.st_mode))
		return 0;
	if (ret == 0) {
		/* Something else is in the way: a file/symlink goes. */
		if (!s->opts.dry_run) {
			ret = berth_commit_delete(s->commit, f->name, 0, NULL);
			if (ret < 0)
				return ret;
		}
	}
	if (!s->opts.dry_run) {
		berth__session_meta(s, f, false, 0, &m);
		m.mode = (m.mode & 07777) | S_IFDIR;
		ret = berth_commit_mkdir(s->commit, f->name, &m);
		if (ret < 0)
			return ret;
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
	const char *t = f->link, *end = f->link + f->link_len, *c;
	int depth = 0;

	if (f->link_len == 0 || t[0] == '/')
		return true;
	for (c = f->name; *c; c++)
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
	if (!st || S_ISDIR(st->st_mode) ||
	    !(s->opts.backup || s->opts.backup_dir))
		return 0;
	m->backup = 1;
	return berth__backup_prepare(s, f->name);
}

static int gen_symlink(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	struct berth_session *s = g->s;
	struct berth_commit_meta m;
	char target[4096];
	struct stat st;
	uint32_t iflags;
	ssize_t n = -1;
	int ret, dfd;

	if (s->opts.safe_links && unsafe_link(f)) {
		berth__session_log(s, BERTH_LOG_DEBUG,
				   "ignoring unsafe symlink \"%s\"\n", f->name);
		return 0;
	}
	ret = dest_stat(g, f, &st);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (existence_gate(g, f, ret, &st))
		return 0;
	if (ret == 0 && S_ISLNK(st.st_mode)) {
		const char *slash = strrchr(f->name, '/');

		dfd = dir_fd(g, f->name, slash ? (size_t)(slash - f->name) : 0);
		if (dfd >= 0)
			n = readlinkat(dfd, base_name(f->name), target,
				       sizeof(target));
		if (n == (ssize_t)f->link_len &&
		    memcmp(target, f->link, (size_t)n) == 0) {
			/* Already the right link (--remove-source-files). */
			berth__session_success(s, ndx);
			iflags = itemize(s, f, &st, 0) |
				 berth__xa_gen_itemize(s, f, s->root_fd,
						       f->name);
			if (iflags &
			    (BERTH_ITEM_REPORT_TIME | BERTH_ITEM_REPORT_OWNER |
			     BERTH_ITEM_REPORT_GROUP)) {
				/* Re-create to fix attributes: symlink times
				 * and owners are set on the new link, which
				 * keeps the old one's xattrs (-X). */
				berth__session_meta(s, f, false, 0, &m);
				if (!s->opts.dry_run) {
					ret = berth__xa_gen_copy(s, s->root_fd,
								 f->name,
								 &m.xattrs);
					if (ret == 0)
						ret = berth_commit_symlink(
							s->commit, f->name,
							f->link, &m);
					if (ret < 0)
						return ret;
				}
			}
			return record_wanted(s, iflags)
				       ? put_record(s, ndx, iflags)
				       : 0;
		}
		/* rsync compares the xattrs with the new link: none. */
		iflags = itemize(s, f, &st,
				 BERTH_ITEM_LOCAL_CHANGE |
					 BERTH_ITEM_REPORT_CHANGE) |
			 berth__xa_gen_itemize(s, f, -1, NULL);
	} else if (ret == 0 && S_ISDIR(st.st_mode)) {
		/* A directory in the way. */
		iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_REPORT_CHANGE |
			 BERTH_ITEM_IS_NEW |
			 berth__xa_gen_itemize(s, f, -1, NULL);
		ret = clear_dir_for(g, f, "symlink");
		if (ret != 0)
			return ret < 0 ? ret : 0;
	} else {
		iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_REPORT_CHANGE |
			 BERTH_ITEM_IS_NEW |
			 berth__xa_gen_itemize(s, f, -1, NULL);
	}
	if (!s->opts.dry_run) {
		berth__session_meta(s, f, false, 0, &m);
		m.user = berth__commit_user(s, ndx); /* events */
		ret = replaced_backup(s, f, ret == 0 ? &st : NULL, &m);
		if (ret == 0)
			ret = berth_commit_symlink(s->commit, f->name, f->link,
						   &m);
		if (ret < 0) {
			berth__commit_user_done(s, m.user);
			return ret;
		}
	}
	return put_record(s, ndx, iflags);
}

/*
 * An existing non-directory that stays: fix what its attributes lack
 * (@iflags from itemize()), and say so when there is something to say.
 */
static int keep_item(struct berth_session *s, int32_t ndx,
		     const struct berth_file *f, const struct stat *st,
		     uint32_t iflags)
{
	struct berth_commit_meta m;
	int ret;

	/* Already what the sender has: safe for --remove-source-files. */
	berth__session_success(s, ndx);

	if ((iflags & (BERTH_ITEM_REPORT_TIME | BERTH_ITEM_REPORT_PERMS |
		       BERTH_ITEM_REPORT_OWNER | BERTH_ITEM_REPORT_GROUP)) &&
	    !s->opts.dry_run) {
		berth__session_meta(s, f, true, st->st_mode, &m);
		ret = berth_commit_set_meta(s->commit, f->name, &m);
		if (ret < 0)
			return ret;
	}
	return record_wanted(s, iflags) ? put_record(s, ndx, iflags) : 0;
}

static int gen_node(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	struct berth_session *s = g->s;
	mode_t type = f->mode & S_IFMT;
	bool dev = S_ISCHR(type) || S_ISBLK(type);
	dev_t rdev = makedev(f->rdev_major, f->rdev_minor);
	struct berth_commit_meta m;
	struct stat st;
	uint32_t iflags;
	int ret;

	if ((dev && !(s->opts.devices && s->am_root)) ||
	    (!dev && !s->opts.specials)) {
		berth__session_log(s, BERTH_LOG_INFO,
				   "skipping non-regular file \"%s\"\n",
				   f->name);
		return 0;
	}
	ret = dest_stat(g, f, &st);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (existence_gate(g, f, ret, &st))
		return 0;
	if (ret == 0 && S_ISDIR(st.st_mode)) {
		ret = clear_dir_for(g, f, dev ? "device" : "special file");
		if (ret != 0)
			return ret < 0 ? ret : 0;
		ret = -ENOENT;
	}
	if (ret == 0 && (st.st_mode & S_IFMT) == type &&
	    (!dev || st.st_rdev == rdev)) {
		return keep_item(s, ndx, f, &st,
				 itemize(s, f, &st, 0) |
					 berth__xa_gen_itemize(s, f, s->root_fd,
							       f->name));
	}
	/* A new node: compared with nothing, as rsync compares with the
	 * node it has just made. */
	iflags = BERTH_ITEM_LOCAL_CHANGE | BERTH_ITEM_REPORT_CHANGE |
		 berth__xa_gen_itemize(s, f, -1, NULL);
	if (ret == 0 && (st.st_mode & S_IFMT) == type)
		iflags = itemize(s, f, &st, iflags);
	else
		iflags |= BERTH_ITEM_IS_NEW;
	if (!s->opts.dry_run) {
		berth__session_meta(s, f, false, 0, &m);
		m.mode = (m.mode & 07777) | type;
		m.user = berth__commit_user(s, ndx); /* events */
		ret = replaced_backup(s, f, ret == 0 ? &st : NULL, &m);
		if (ret == 0)
			ret = berth_commit_mknod(s->commit, f->name, &m, rdev);
		if (ret < 0) {
			berth__commit_user_done(s, m.user);
			return ret;
		}
	}
	return put_record(s, ndx, iflags);
}

/*
 * -c: the destination's unseeded whole-file digest (the --checksum type)
 * equals the one in the file list.  A file that cannot be read differs.
 */
static bool checksum_matches(struct berth_session *s, int dirfd,
			     const struct berth_file *f)
{
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];
	struct berth_csum_ctx ctx;
	unsigned len = berth_csum_digest_len(s->hs.file_csum);
	size_t bufsize = 256 * 1024;
	uint8_t *buf;
	bool ok = false;
	ssize_t n;
	off_t off = 0;
	int fd;

	if (!f->sum || !len)
		return false;
	fd = berth__open_beneath(dirfd, f->name, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return false;
	buf = malloc(bufsize);
	if (buf && berth_csum_ctx_init(&ctx, s->hs.file_csum) == 0) {
		while ((n = pread(fd, buf, bufsize, off)) > 0) {
			berth_csum_ctx_update(&ctx, buf, (size_t)n);
			off += n;
		}
		if (n == 0 && berth_csum_ctx_final(&ctx, sum) == len)
			ok = memcmp(sum, f->sum, len) == 0;
		berth_csum_ctx_destroy(&ctx);
	}
	free(buf);
	close(fd);
	return ok;
}

/*
 * How well the file in alt-dest dir @j matches @f, as rsync grades it:
 * 0 none, 1 a regular file (a basis), 2 the same content by the quick
 * check, 3 also the same attributes.  Lookups never follow symlinks.
 */
static int alt_match(struct berth_session *s, int j, const struct berth_file *f,
		     struct stat *st)
{
	int fd, level = 0;

	if (s->alt_fd[j] < 0)
		return 0;
	fd = berth__open_beneath(s->alt_fd[j], f->name, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	if (fstat(fd, st) == 0 && S_ISREG(st->st_mode)) {
		level = 1;
		if (st->st_size == f->size &&
		    (s->opts.checksum	 ? checksum_matches(s, s->alt_fd[j], f)
		     : s->opts.size_only ? true
					 : !s->opts.ignore_times &&
						   !mtime_differs(s, f, st)))
			level = 2;
		if (level == 2 &&
		    !(itemize(s, f, st, 0) &
		      (BERTH_ITEM_REPORT_TIME | BERTH_ITEM_REPORT_PERMS |
		       BERTH_ITEM_REPORT_OWNER | BERTH_ITEM_REPORT_GROUP)) &&
		    berth__xa_gen_same(s, f, s->alt_fd[j], f->name))
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
	uint32_t iflags = itemize(s, f, st, BERTH_ITEM_LOCAL_CHANGE) |
			  berth__xa_gen_itemize(s, f, s->alt_fd[j], f->name);
	struct berth_commit_file *cf = NULL;
	struct berth_commit_meta m;
	size_t bufsize = 256 * 1024;
	uint8_t *buf = NULL;
	off_t off = 0;
	ssize_t n = 0;
	int fd, ret;

	if (!s->opts.dry_run) {
		fd = berth__open_beneath(s->alt_fd[j], f->name,
					 O_RDONLY | O_NOFOLLOW);
		if (fd < 0)
			return fd;
		berth__session_meta(s, f, false, 0, &m);
		m.user = (void *)(intptr_t)(ndx + 1); /* events */
		m.size_hint = (uint64_t)f->size;
		/* rsync's copy takes the alt file's xattrs along. */
		ret = berth__xa_gen_copy(s, s->alt_fd[j], f->name, &m.xattrs);
		if (ret < 0) {
			close(fd);
			return ret;
		}
		buf = malloc(bufsize);
		if (!buf)
			free(m.xattrs);
		ret = buf ? berth_commit_file_begin(s->commit, f->name, &m, 0,
						    &cf)
			  : -ENOMEM;
		while (ret == 0 && (n = pread(fd, buf, bufsize, off)) > 0) {
			ret = berth_commit_file_write(cf, buf, (size_t)n);
			off += n;
		}
		if (ret == 0 && n < 0)
			ret = -errno;
		if (cf && ret == 0)
			ret = berth_commit_file_finish(cf);
		else if (cf)
			berth_commit_file_abort(cf);
		free(buf);
		close(fd);
		if (ret < 0)
			return ret;
	}
	return record_wanted(s, iflags) ? put_record(s, ndx, iflags) : 0;
}

/*
 * A file missing from the destination, with alt-dest dirs: a complete
 * match is hard-linked (--link-dest) or left out (--compare-dest); the
 * same content is copied; any other regular file there serves as the
 * delta basis (basis type j).
 */
static int gen_file_alt(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	struct berth_session *s = g->s;
	struct stat st, best_st;
	int j, lv, best = -1, level = 0, ret, dfd;
	const char *slash;
	char *parent;

	for (j = 0; j < s->nalt; j++) {
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
			slash = strrchr(f->name, '/');
			parent = slash ? strndup(f->name,
						 (size_t)(slash - f->name))
				       : strdup(".");
			if (!parent)
				return -ENOMEM;
			dfd = berth__open_beneath(s->alt_fd[best], parent,
						  O_PATH | O_DIRECTORY);
			free(parent);
			if (dfd < 0)
				return dfd;
			ret = berth_commit_hardlink_at(
				s->commit, f->name, dfd, base_name(f->name),
				(void *)(intptr_t)(ndx + 1)); /* events */
			close(dfd);
			if (ret < 0)
				return ret;
		}
		/* Reported only at -ii (an empty xname). */
		if (s->opts.verbose >= 2 ||
		    (s->opts.log_format && strstr(s->opts.log_format, "%i%I")))
			return put_link_record(s, ndx, NULL);
		return 0;
	}
	/* The same content with other attributes (or xattrs), or any full
	 * match with --copy-dest: rsync copies the file locally, for every
	 * alt-dest type (try_dests_reg), and fixes the attributes. */
	if (level >= 2)
		return copy_from_alt(s, ndx, f, best, &best_st);
	if (level >= 1)
		return request_file(
			g, ndx,
			itemize(s, f, &best_st, BERTH_ITEM_TRANSFER) |
				berth__xa_gen_itemize(s, f, s->alt_fd[best],
						      f->name),
			s->alt_fd[best], best, false);
	return request_file(g, ndx,
			    BERTH_ITEM_TRANSFER | BERTH_ITEM_IS_NEW |
				    berth__xa_gen_itemize(s, f, -1, NULL),
			    -1, -1, false);
}

/*
 * --partial-dir: a partial file from an earlier attempt (cut short, or
 * kept after a failed verification) is the basis, not with alt-dest dirs
 * or --append.  Its path goes to @ppath.
 */
static bool partial_basis(struct berth_session *s, const struct berth_file *f,
			  char *ppath, size_t cap)
{
	return s->pdir && !s->nalt && !s->opts.append &&
	       berth__partial_path(s, f->name, ppath, cap) == 0 &&
	       berth__partial_exists(s, ppath);
}

/*
 * --append: the destination's @have bytes stay; the record carries the sum
 * head for them but no block sums, and only the tail will come (§8.5.1).
 */
static int request_append(struct berth_session *s, int32_t ndx, uint32_t iflags,
			  uint64_t have)
{
	uint8_t wire[BERTH_SUM_HEAD_WIRE];
	struct berth_sum_head head;
	int ret;

	ret = berth_sum_head_init(&head, have, s->proto, s->cp.type,
				  (uint32_t)s->opts.block_size, 0);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&s->lock);
	berth__fst_requested(s, ndx);
	s->fst[ndx].attempts++;
	s->fst[ndx].had_basis = 1;
	s->fst[ndx].iflags = (uint16_t)iflags;
	s->fst[ndx].basis_type = -1;
	s->fst[ndx].appended = 1;
	s->fst[ndx].append_from = have;
	pthread_mutex_unlock(&s->lock);
	ret = put_record(s, ndx, iflags);
	if (ret < 0 || s->opts.dry_run)
		return ret;
	berth_sum_head_encode(&head, wire);
	return berth__out_data(&s->out, wire, sizeof(wire));
}

static int gen_file(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	struct berth_session *s = g->s;
	char ppath[PATH_MAX];
	struct stat st;
	uint32_t iflags;
	bool same, have_partial;
	int ret;

	/* --max-size / --min-size: not transferred (rsync says so at -vv). */
	if ((s->opts.max_size >= 0 && f->size > s->opts.max_size) ||
	    (s->opts.min_size >= 0 && f->size < s->opts.min_size))
		return 0;

	ret = dest_stat(g, f, &st);
	if (ret < 0 && ret != -ENOENT)
		return ret;
	if (existence_gate(g, f, ret, &st))
		return 0;
	if (ret == 0 && S_ISDIR(st.st_mode)) {
		ret = clear_dir_for(g, f, "regular file");
		if (ret != 0)
			return ret < 0 ? ret : 0;
		ret = -ENOENT; /* replaced: it counts as new */
	} else if (ret == 0 && !S_ISREG(st.st_mode)) {
		ret = -ENOENT; /* the commit's rename replaces it */
	}
	have_partial = partial_basis(s, f, ppath, sizeof(ppath));
	if (ret == -ENOENT) {
		set_exists(s, ndx, false, 0);
		if (have_partial)
			return request_file_at(
				g, ndx, BERTH_ITEM_TRANSFER | BERTH_ITEM_IS_NEW,
				s->root_fd, ppath, BASIS_PARTIAL, false);
		if (s->nalt)
			return gen_file_alt(g, ndx, f);
		return request_file(
			g, ndx,
			BERTH_ITEM_TRANSFER | BERTH_ITEM_IS_NEW |
				berth__xa_gen_itemize(s, f, -1, NULL),
			-1, -1, false);
	}
	set_exists(s, ndx, true, st.st_mode);
	if (s->opts.update && st.st_mtim.tv_sec > f->mtime)
		return 0;

	/* Quick check (§8.2.1). */
	same = st.st_size == f->size;
	if (same && !s->opts.size_only) {
		if (s->opts.ignore_times)
			same = false;
		else if (!s->opts.checksum)
			same = !mtime_differs(s, f, &st);
	}
	if (same && s->opts.checksum)
		same = checksum_matches(s, s->root_fd, f);

	if (same) {
		if (have_partial && !s->opts.dry_run)
			berth__drop_partial(s, ppath); /* not needed now */
		return keep_item(s, ndx, f, &st,
				 itemize(s, f, &st, 0) |
					 berth__xa_gen_itemize(s, f, s->root_fd,
							       f->name));
	}
	iflags = itemize(s, f, &st, BERTH_ITEM_TRANSFER) |
		 berth__xa_gen_itemize(s, f, s->root_fd, f->name);
	if (s->opts.checksum)
		iflags |= BERTH_ITEM_REPORT_CHANGE;
	if (s->opts.append) {
		/* Only a destination shorter than the source grows. */
		if (st.st_size >= f->size)
			return 0;
		return request_append(s, ndx, iflags, (uint64_t)st.st_size);
	}
	if (have_partial)
		return request_file_at(g, ndx, iflags, s->root_fd, ppath,
				       BASIS_PARTIAL, false);
	return request_file(g, ndx, iflags, s->root_fd, -1, false);
}

/*
 * -H: every member of a hard-link group points at the group's leader, the
 * member transferred (the last in sorted order, as rsync picks it when
 * none exists yet); the others are linked to it once it is committed.
 */
static int hlink_groups(struct gen *g)
{
	const struct berth_flist *fl = g->s->fl;
	int32_t i, key;

	g->hl_leader = malloc(fl->count * sizeof(*g->hl_leader) + 1);
	if (!g->hl_leader)
		return -ENOMEM;
	/* Pass 1: leader[key] = last member of the group keyed by the
	 * first member's ndx.  Pass 2: every member learns it. */
	for (i = 0; i < (int32_t)fl->count; i++)
		g->hl_leader[i] = -1;
	for (i = 0; i < (int32_t)fl->count; i++) {
		const struct berth_file *f = &fl->files[i];

		if (!(f->xflags & BERTH_XMIT_HLINKED) || !S_ISREG(f->mode) ||
		    (f->flags & BERTH_FILE_INACTIVE))
			continue;
		key = f->hlink_ndx >= 0 ? f->hlink_ndx : i;
		if (key >= (int32_t)fl->count)
			return -BERTH_EPROTO;
		if (g->hl_leader[key] < i)
			g->hl_leader[key] = i;
		g->any_hlinks = true;
	}
	for (i = 0; i < (int32_t)fl->count; i++) {
		const struct berth_file *f = &fl->files[i];

		if (!(f->xflags & BERTH_XMIT_HLINKED) || !S_ISREG(f->mode) ||
		    (f->flags & BERTH_FILE_INACTIVE) || f->hlink_ndx < 0)
			continue;
		g->hl_leader[i] = g->hl_leader[f->hlink_ndx];
	}
	return 0;
}

/* A follower: linked later, by link_followers(). */
static bool is_follower(const struct gen *g, int32_t ndx)
{
	return g->hl_leader && g->hl_leader[ndx] >= 0 &&
	       g->hl_leader[ndx] != ndx;
}

/* Are @a and @b (beneath the root) the same file? */
static bool same_inode(struct berth_session *s, const char *a, const char *b)
{
	struct stat sa, sb;
	int fa, fb;
	bool same = false;

	fa = berth__open_beneath(s->root_fd, a, O_PATH | O_NOFOLLOW);
	fb = berth__open_beneath(s->root_fd, b, O_PATH | O_NOFOLLOW);
	if (fa >= 0 && fb >= 0 && fstat(fa, &sa) == 0 && fstat(fb, &sb) == 0)
		same = S_ISREG(sa.st_mode) && sa.st_dev == sb.st_dev &&
		       sa.st_ino == sb.st_ino;
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same;
}

/*
 * Link every follower whose leader is done, in descending order (the
 * order rsync reports them), with an "hf" record naming the leader.
 */
static int link_followers(struct gen *g)
{
	struct berth_session *s = g->s;
	const struct berth_flist *fl = s->fl;
	int32_t i, leader;
	int ret;

	if (!g->any_hlinks)
		return 0;
	/* The leaders must be on disk under their final names. */
	berth__out_flush(&s->out);
	pthread_mutex_lock(&s->lock);
	s->done_waiters++;
	for (i = 0; i < (int32_t)fl->count; i++) {
		leader = g->hl_leader[i];
		if (leader != i)
			continue;
		while (s->fst[i].state == FST_REQUESTED && !s->fatal &&
		       !s->recv_finished && s->nredo == 0)
			pthread_cond_wait(&s->cond, &s->lock);
	}
	s->done_waiters--;
	pthread_mutex_unlock(&s->lock);
	if (!s->opts.dry_run)
		berth_commit_flush(s->commit);
	for (i = (int32_t)fl->count - 1; i >= 0; i--) {
		if (!is_follower(g, i))
			continue;
		leader = g->hl_leader[i];
		if (same_inode(s, fl->files[i].name, fl->files[leader].name))
			continue; /* already the right link: nothing to say */
		if (!s->opts.dry_run) {
			ret = berth_commit_hardlink(
				s->commit, fl->files[i].name,
				fl->files[leader].name,
				(void *)(intptr_t)(i +
						   1)); /* events: ndx + 1 */
			if (ret < 0)
				berth__session_file_error(
					s, "link %s => %s: %s\n",
					fl->files[i].name,
					fl->files[leader].name,
					berth_strerror(ret));
		}
		ret = put_link_record(s, i, &fl->files[leader]);
		if (ret < 0)
			return ret;
	}
	g->any_hlinks = false;
	return 0;
}

/* Directory number @k of the directory list (it may grow meanwhile). */
static struct sess_dir *sdir_at(struct berth_session *s, uint32_t k)
{
	struct sess_dir *d = NULL;

	pthread_mutex_lock(&s->lock);
	if (k < s->ndirs)
		d = s->dirs[k];
	pthread_mutex_unlock(&s->lock);
	return d;
}

static int gen_entry(struct gen *g, int32_t ndx, const struct berth_file *f)
{
	mode_t type = f->mode & S_IFMT;
	struct sess_dir *d = NULL;

	/* Incremental: a directory entry (not the list's own directory). */
	if (g->s->inc && S_ISDIR(type) && ndx != g->list->start - 1)
		d = sdir_at(g->s, g->list->dir_base + g->list_dirs++);
	if (f->flags & BERTH_FILE_INACTIVE)
		return 0;
	if (is_follower(g, ndx))
		return 0;
	if (g->skip_dir) {
		if (!strncmp(f->name, g->skip_dir, g->skip_len) &&
		    f->name[g->skip_len] == '/')
			return 0;
		g->skip_dir = NULL;
	}
	if (S_ISDIR(type))
		return d ? gen_dir_ensure(g, f, d) : gen_dir(g, ndx, f);
	/* Keep the directory chain in step for non-directories too. */
	if (S_ISREG(type))
		return gen_file(g, ndx, f);
	if (S_ISLNK(type)) {
		if (!g->s->opts.links) {
			berth__session_log(g->s, BERTH_LOG_INFO,
					   "skipping non-regular file \"%s\"\n",
					   f->name);
			return 0;
		}
		return gen_symlink(g, ndx, f);
	}
	return gen_node(g, ndx, f);
}

/* Per-entry errors are reported and counted; the walk goes on. */
static int gen_entry_checked(struct gen *g, int32_t ndx,
			     const struct berth_file *f)
{
	int ret = gen_entry(g, ndx, f);

	if (ret == -BERTH_ECANCELLED || ret == -EPIPE || ret == -ECONNRESET ||
	    ret == -ENOMEM)
		return ret;
	if (ret < 0 && g->s->out.err)
		return g->s->out.err;
	if (ret < 0)
		berth__session_file_error(g->s, "%s: %s\n", f->name,
					  berth_strerror(ret));
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
	atomic_store(&s->gen_pos, pos);
	if (atomic_load(&s->gen_waiter)) {
		pthread_mutex_lock(&s->lock);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
}

/* The session is ending (fatal error or cancel): stop generating. */
static bool stopping(struct berth_session *s)
{
	bool stop;

	pthread_mutex_lock(&s->lock);
	stop = s->fatal != 0;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/* Wait until the receiver has read @n sender NDX_DONEs (or gave up). */
static int wait_sender_dones(struct berth_session *s, int n)
{
	int ret = 0;

	berth__out_flush(&s->out);
	pthread_mutex_lock(&s->lock);
	while (s->sender_dones < n && !s->recv_finished && !s->fatal)
		pthread_cond_wait(&s->cond, &s->lock);
	if (s->sender_dones < n)
		ret = -BERTH_ECANCELLED;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Send redo records for everything queued so far. */
static uint32_t redo_iflags(struct berth_session *s, int32_t ndx,
			    uint32_t iflags, bool *exists)
{
	const struct berth_file *f = berth__file(s, ndx);
	struct stat st;
	int fd = berth__open_beneath(s->root_fd, f->name, O_PATH | O_NOFOLLOW);

	*exists = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
	if (fd >= 0)
		close(fd);
	if (!*exists)
		return BERTH_ITEM_TRANSFER | BERTH_ITEM_IS_NEW |
		       berth__xa_gen_itemize(s, f, -1, NULL);
	return itemize(s, f, &st, BERTH_ITEM_TRANSFER) |
	       berth__xa_gen_itemize(s, f, s->root_fd, f->name) |
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
		pthread_mutex_lock(&s->lock);
		if (s->nredo == 0) {
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		ndx = s->redo[--s->nredo];
		st = berth__fst_of(s, ndx);
		exists = st->exists;
		iflags = st->iflags;
		bt = st->basis_type;
		pthread_mutex_unlock(&s->lock);
		/* As rsync, the redo looks at the destination again (an
		 * in-place --append may have grown it) and at the partial
		 * dir, once what the failed attempt wrote or kept (in place,
		 * as the file, in the partial dir) is on disk; an alt-dest
		 * basis (bt >= 0) keeps its record. */
		if (bt < 0) {
			if (!s->opts.dry_run)
				berth_commit_flush(s->commit);
			iflags = redo_iflags(s, ndx, iflags, &exists);
			bt = partial_basis(s, berth__file(s, ndx), ppath,
					   sizeof(ppath))
				     ? BASIS_PARTIAL
				     : -1;
		}
		if (bt == BASIS_PARTIAL)
			ret = request_file_at(g, ndx, iflags, s->root_fd, ppath,
					      bt, true);
		else
			ret = request_file(g, ndx, iflags,
					   bt >= 0  ? s->alt_fd[bt]
					   : exists ? s->root_fd
						    : -1,
					   bt >= 0 ? bt : -1, true);
		if (ret < 0)
			return ret;
	}
}

/* Does directory @st already have what @m would set? */
static bool dir_meta_matches(const struct stat *st,
			     const struct berth_commit_meta *m)
{
	if ((st->st_mode & 07777) != (m->mode & 07777))
		return false;
	if (m->uid != (uint32_t)-1 && st->st_uid != m->uid)
		return false;
	if (m->gid != (uint32_t)-1 && st->st_gid != m->gid)
		return false;
	return m->mtime_nsec == UTIME_OMIT ||
	       (st->st_mtim.tv_sec == m->mtime_sec &&
		(uint32_t)st->st_mtim.tv_nsec == m->mtime_nsec);
}

/*
 * Final attributes of every directory, deepest first (rsync re-touches
 * them after their contents changed).  A directory that already has them
 * is left alone, so a sync that changes nothing changes no ctime.
 */
static int fix_dirs(struct gen *g)
{
	struct berth_session *s = g->s;
	const char *slash;
	struct stat st;
	size_t i;
	int ret, dfd;

	if (s->opts.dry_run)
		return 0;
	ret = berth_commit_flush(s->commit);
	(void)ret; /* per-file errors were reported by event */
	/* Incremental: the directory list, whose numbers grow with depth
	 * (a directory is numbered before anything inside it). */
	for (i = s->inc ? s->ndirs : g->ndirs; i-- > 0;) {
		const char *name;
		const struct berth_commit_meta *m;

		if (s->inc) {
			if (!s->dirs[i]->fix)
				continue;
			name = s->dirs[i]->name;
			m = &s->dirs[i]->meta;
		} else {
			name = s->fl->files[g->dirs[i].ndx].name;
			m = &g->dirs[i].meta;
		}
		if (strcmp(name, ".") == 0) {
			ret = fstat(s->root_fd, &st);
		} else {
			slash = strrchr(name, '/');
			dfd = dir_fd(g, name,
				     slash ? (size_t)(slash - name) : 0);
			ret = dfd < 0 ? dfd
				      : fstatat(dfd, base_name(name), &st,
						AT_SYMLINK_NOFOLLOW);
		}
		if (ret == 0 && S_ISDIR(st.st_mode) && dir_meta_matches(&st, m))
			continue;
		ret = berth_commit_dir_meta(s->commit, name, m);
		if (ret < 0)
			berth__session_file_error(s, "%s: %s\n", name,
						  berth_strerror(ret));
	}
	return berth_commit_flush(s->commit);
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
		pthread_mutex_lock(&s->lock);
		l = g->oldest;
		if (!l || l == cur || l->pending) {
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		next = l->next;
		g->oldest = next;
		berth__list_finish(s, l);
		pthread_mutex_unlock(&s->lock);
		ret = put_ndx(s, BERTH_NDX_DONE);
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
	struct sess_dir *d;
	struct stat st;
	const char *slash;
	uint32_t k;
	int ret, dfd;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		if (!s->ndirfix) {
			pthread_mutex_unlock(&s->lock);
			return;
		}
		k = s->dirfix[--s->ndirfix];
		d = k < s->ndirs ? s->dirs[k] : NULL;
		pthread_mutex_unlock(&s->lock);
		if (!d || !d->fix || s->opts.dry_run)
			continue;
		if (strcmp(d->name, ".") == 0) {
			ret = fstat(s->root_fd, &st);
		} else {
			slash = strrchr(d->name, '/');
			dfd = dir_fd(g, d->name,
				     slash ? (size_t)(slash - d->name) : 0);
			ret = dfd < 0 ? dfd
				      : fstatat(dfd, base_name(d->name), &st,
						AT_SYMLINK_NOFOLLOW);
		}
		if (ret == 0 && S_ISDIR(st.st_mode) &&
		    !dir_meta_matches(&st, &d->meta))
			(void)berth_commit_dir_meta(s->commit, d->name,
						    &d->meta);
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
	struct sess_dir *d = NULL;
	uint32_t i;
	int ret;

	g->list = l;
	g->list_dirs = 0;
	g->sdir = NULL;
	if (l->dir_k >= 0)
		d = sdir_at(s, (uint32_t)l->dir_k);
	else if (fl->count && strcmp(fl->files[0].name, ".") == 0)
		d = sdir_at(s, 0);
	/* Entries of an initial list without "." sit in the root. */
	g->list_parent_new = !d && s->dest_created;
	if (d) {
		memset(&pf, 0, sizeof(pf));
		pf.name = d->name;
		pf.name_len = (uint32_t)strlen(d->name);
		pf.mtime = d->mtime;
		pf.nsec = d->nsec;
		pf.mode = d->mode;
		pf.uid = d->uid;
		pf.gid = d->gid;
		pf.xflags = d->xflags;
		pf.flags = d->flags & ~BERTH_FILE_INACTIVE;
		pf.hlink_ndx = -1;
		pf.xattr_set = -1;
		pf.acl[0] = pf.acl[1] = -1;
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

	pthread_mutex_lock(&s->lock);
	l = s->lists[s->lists_first];
	g->oldest = l;
	pthread_mutex_unlock(&s->lock);
	for (;;) {
		ret = gen_list(g, l);
		if (ret < 0)
			return ret;
		for (;;) {
			ret = gen_tick(g, l);
			if (ret < 0)
				return ret;
			pthread_mutex_lock(&s->lock);
			next = l->next;
			eof = s->flist_eof;
			stop = s->fatal || s->recv_finished;
			if (!next && !eof && !stop && s->nredo == 0) {
				pthread_mutex_unlock(&s->lock);
				berth__out_flush(&s->out);
				pthread_mutex_lock(&s->lock);
				if (!l->next && !s->flist_eof && !s->fatal &&
				    !s->recv_finished && s->nredo == 0 &&
				    (g->oldest == l || g->oldest->pending))
					pthread_cond_wait(&s->cond, &s->lock);
				pthread_mutex_unlock(&s->lock);
				continue;
			}
			pthread_mutex_unlock(&s->lock);
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
		pthread_mutex_lock(&s->lock);
		if (!g->oldest) {
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		stop = s->fatal || s->recv_finished;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			return -BERTH_ECANCELLED;
		berth__out_flush(&s->out);
		pthread_mutex_lock(&s->lock);
		if (g->oldest && g->oldest->pending && s->nredo == 0 &&
		    !s->fatal && !s->recv_finished)
			pthread_cond_wait(&s->cond, &s->lock);
		pthread_mutex_unlock(&s->lock);
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
		ret = hlink_groups(g);
		if (ret < 0)
			return ret;
	}
	if (s->opts.delete_mode == BERTH_DELETE_BEFORE) {
		ret = berth__delete_pass(s);
		if (ret < 0)
			return ret;
	}
	if (s->inc) {
		/* Every list, and its NDX_DONE (the last one is G1). */
		ret = gen_lists(g);
		if (ret < 0)
			return ret;
	} else {
		for (i = 0; i < (int32_t)s->fl->count; i++) {
			ret = gen_entry_checked(g, i, &s->fl->files[i]);
			if (ret < 0)
				return ret;
			advance(s, i + 1);
			if ((i & 63) == 0 && stopping(s))
				return -BERTH_ECANCELLED;
		}
		ret = link_followers(g);
		if (ret < 0)
			return ret;
		/* G1: end of phase 0. */
		ret = put_ndx(s, BERTH_NDX_DONE);
		if (ret < 0)
			return ret;
	}

	/* Phase 1: redo requests until the receiver has verified every
	 * phase-0 file (it has read the sender's first NDX_DONE). */
	for (;;) {
		ret = send_redos(g);
		if (ret < 0)
			return ret;
		berth__out_flush(&s->out);
		pthread_mutex_lock(&s->lock);
		while (s->nredo == 0 && s->sender_dones < 1 &&
		       !s->recv_finished && !s->fatal)
			pthread_cond_wait(&s->cond, &s->lock);
		bool phase_over = s->sender_dones >= 1 && s->nredo == 0;
		bool stop = s->recv_finished || s->fatal;
		pthread_mutex_unlock(&s->lock);
		if (phase_over)
			break;
		if (stop && s->nredo == 0)
			return -BERTH_ECANCELLED;
	}
	/* G2; with --delay-updates the delayed files are renamed into place
	 * once the sender's S2 says all redo data is in; then G3. */
	ret = put_ndx(s, BERTH_NDX_DONE);
	if (ret == 0 && s->opts.delay_updates) {
		ret = wait_sender_dones(s, 2);
		if (ret == 0)
			ret = berth__delayed_renames(s);
	}
	if (ret == 0)
		ret = put_ndx(s, BERTH_NDX_DONE);
	if (ret < 0)
		return ret;
	/* --delete-after/-delay: the pass runs once the sender's S2 and S3
	 * have come (every file is in), and G4 waits for it (§10.1). */
	if (late) {
		ret = wait_sender_dones(s, 3);
		if (ret == 0)
			ret = berth__delete_pass(s);
		if (ret < 0)
			return ret;
	}
	if (s->opts.delete_mode || s->opts.force)
		berth__delete_finish(s);
	/* At 31+: deletion statistics (when deleting), then G4. */
	if (s->proto >= 31 && (s->opts.delete_mode || s->opts.force)) {
		ret = put_del_stats(s);
		if (ret < 0)
			return ret;
	}
	if (s->proto >= 31) {
		ret = put_ndx(s, BERTH_NDX_DONE);
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
	/* G_final. */
	ret = put_ndx(s, BERTH_NDX_DONE);
	if (ret == 0)
		ret = berth__out_drain(&s->out);
	return ret;
}

void *berth__gen_main(void *arg)
{
	struct berth_session *s = arg;
	struct gen g = {.s = s};
	int ret;

	g.stack = calloc(s->fl ? s->fl->count + 1 : 1, sizeof(*g.stack));
	g.dirs = calloc(s->fl ? s->fl->count + 1 : 1, sizeof(*g.dirs));
	if (!g.stack || !g.dirs)
		ret = -ENOMEM;
	else
		ret = gen_run(&g);
	advance(s, INT32_MAX); /* nothing more will be generated */
	dir_cache_drop(&g);
	free(g.hl_leader);
	free(g.stack);
	free(g.dirs);
	if (ret < 0 && ret != -BERTH_ECANCELLED)
		berth__session_fatal(s, berth__exit_code_of(ret),
				     "generator: %s\n", berth_strerror(ret));
	return NULL;
}
