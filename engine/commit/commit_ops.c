/* SPDX-License-Identifier: MIT */
/*
 * Tree operations: mkdir, symlink, hard link, mknod, delete, directory
 * metadata and extended attributes.  Each is a short chain of pump
 * requests on the commit thread.
 *
 * Symlinks, hard links and nodes are created under a temp name beside the
 * final one and renamed over it, so an existing entry is replaced
 * atomically and a failure leaves it untouched.  Names are only used
 * relative to a parent fd from the directory cache, and never followed
 * (AT_SYMLINK_NOFOLLOW; linkat without AT_SYMLINK_FOLLOW).
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/commit/commit_int.h"

enum op_state {
	S_START,
	S_MKDIR,
	S_MKDIR_STAT, /* mkdir said EEXIST: is it a directory? */
	S_CREATE, /* symlinkat / linkat / mknodat at the temp name */
	S_CHOWN,
	S_XA_OPEN, /* an O_PATH fd of the item for its xattrs */
	S_XA_STAT, /* not root: may it be written? */
	S_XA_WPERM, /* not root: u+w for the change (rsync's set_xattr) */
	S_XATTR, /* commit_xattr.c: list, set, remove */
	S_XA_RESTORE, /* the mode without the added u+w */
	S_XA_CLOSE,
	S_CHMOD,
	S_TIMES,
	S_RENAME,
	S_UNLINK_TMP, /* hard link: same inode left the temp; or cleanup */
	S_DELETE,
	S_BACKUP, /* rename: keep the replaced entry as its backup */
	S_MOVE, /* rename: path2 onto path */
	S_DONE,
};

/* op_queue(): the op works beneath the backup root (or'ed into the kind). */
#define OP_BAK 0x100

/* The steps of each kind, in order (optional ones are skipped). */
static const unsigned char op_steps[][12] = {
	[OP_MKDIR] = {S_MKDIR, S_DONE},
	[OP_SYMLINK] = {S_CREATE, S_CHOWN, S_XA_OPEN, S_XATTR, S_XA_CLOSE,
			S_CHMOD, S_TIMES, S_BACKUP, S_RENAME, S_DONE},
	[OP_HARDLINK] = {S_CREATE, S_RENAME, S_UNLINK_TMP, S_DONE},
	[OP_MKNOD] = {S_CREATE, S_CHOWN, S_XA_OPEN, S_XATTR, S_XA_CLOSE,
		      S_CHMOD, S_TIMES, S_BACKUP, S_RENAME, S_DONE},
	[OP_DELETE] = {S_DELETE, S_DONE},
	[OP_DIR_META] = {S_CHOWN, S_CHMOD, S_TIMES, S_DONE},
	[OP_META] = {S_CHOWN, S_CHMOD, S_TIMES, S_DONE},
	[OP_RENAME] = {S_BACKUP, S_MOVE, S_DONE},
	[OP_XATTR] = {S_XA_OPEN, S_XA_STAT, S_XA_WPERM, S_XATTR, S_XA_RESTORE,
		      S_XA_CLOSE, S_DONE},
};

/* OP_XATTR of the root: its directory fd serves, nothing to open. */
static int xattr_of_root(const struct commit_op *op)
{
	return op->kind == OP_XATTR && !op->path[0];
}

void berth__commit_op_free(struct commit_op *op)
{
	if (!op)
		return;
	if (op->ext_fd >= 0)
		close(op->ext_fd);
	if (op->xfd >= 0)
		close(op->xfd);
	berth__commit_xattr_release(&op->xj);
	free(op->meta.xattrs);
	free(op->path);
	free(op->path2);
	free(op);
}

static int step_applies(struct berth_commit *c, struct commit_op *op, int s)
{
	if (s == S_CHOWN)
		return c->o.preserve_owner && !c->o.fake_super &&
		       (op->meta.uid != (uint32_t)-1 ||
			op->meta.gid != (uint32_t)-1);
	if (s == S_CHMOD && op->kind == OP_SYMLINK)
		return c->o.fake_super; /* its %stat (a link has no mode) */
	if (s == S_CHMOD && op->meta.mode_kept)
		return berth__commit_mode_special(c, &op->meta);
	if (s == S_TIMES)
		return op->meta.mtime_nsec != UTIME_OMIT || op->meta.atime_set;
	if (s == S_BACKUP)
		return c->o.backup_suffix != NULL &&
		       (op->kind == OP_RENAME || op->meta.backup);
	if (s == S_XA_OPEN || s == S_XA_CLOSE)
		return op->meta.xattrs && !xattr_of_root(op);
	if (s == S_XA_STAT)
		return berth_plat_euid() != 0; /* root may write anything */
	if (s == S_XA_WPERM || s == S_XA_RESTORE)
		return op->xa_wperm;
	if (s == S_XATTR)
		return op->meta.xattrs != NULL;
	return 1;
}

/* The step after @s for this op. */
static int op_next(struct berth_commit *c, struct commit_op *op, int s)
{
	const unsigned char *st = op_steps[op->kind];
	int i = 0;

	if (s != S_START) {
		while (st[i] != s)
			i++;
		i++;
	}
	while (st[i] != S_DONE && !step_applies(c, op, st[i]))
		i++;
	return st[i];
}

/* The step an op's state stands for, in an event. */
static int op_step_of(int state)
{
	switch (state) {
	case S_MKDIR:
	case S_MKDIR_STAT:
		return BERTH_COMMIT_STEP_MKDIR;
	case S_CREATE:
		return BERTH_COMMIT_STEP_CREATE;
	case S_CHOWN:
		return BERTH_COMMIT_STEP_CHOWN;
	case S_CHMOD:
		return BERTH_COMMIT_STEP_CHMOD;
	case S_TIMES:
		return BERTH_COMMIT_STEP_TIMES;
	case S_RENAME:
	case S_MOVE:
		return BERTH_COMMIT_STEP_RENAME;
	case S_DELETE:
		return BERTH_COMMIT_STEP_DELETE;
	case S_BACKUP:
		return BERTH_COMMIT_STEP_BACKUP;
	case S_XA_OPEN:
	case S_XA_STAT:
	case S_XA_WPERM:
	case S_XATTR:
	case S_XA_RESTORE:
	case S_XA_CLOSE:
		return BERTH_COMMIT_STEP_XATTR;
	default:
		return BERTH_COMMIT_STEP_NONE;
	}
}

static void op_done(struct berth_commit *c, struct commit_op *op, int err)
{
	struct berth_commit_event ev = {.kind = BERTH_COMMIT_EV_OP, .err = err};

	if (op->prev)
		op->prev->next = op->next;
	else if (c->ops == op)
		c->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	berth__commit_track_del(&op->track);
	if (op->dir)
		berth__commit_dir_put(c, op->dir);
	if (op->dir2)
		berth__commit_dir_put(c, op->dir2);
	ev.path = op->path[0] ? op->path : ".";
	ev.user = op->meta.user;
	ev.op = op->kind;
	ev.step = op->fail_step;
	ev.tmp = op->tmp[0] ? op->tmp : NULL;
	ev.target = op->path2;
	ev.is_dir = op->is_dir;
	berth__commit_event(c, &ev);
	berth__commit_slot_put(c, 0);
	berth__commit_op_free(op);
}

static void op_step(struct berth_commit *c, struct commit_op *op);

/*
 * --fake-super: a symlink is a plain file (mode 0600) holding its target,
 * its type kept in %stat, as rsync's do_symlink() makes it where links
 * take no user xattrs.  Made at the temp name; a failure leaves nothing.
 * A pool worker (BERTH_OP_CALL).
 */
static ssize_t fake_symlink_run(void *arg)
{
#ifdef _WIN32
	(void)arg;
	return -EOPNOTSUPP; /* no --fake-super on Windows (commit_meta_win.c) */
#else
	const struct commit_op *op = arg;
	size_t len = strlen(op->path2), done = 0;
	int fd, ret = 0;

	fd = openat(op->dir->e.fd, op->tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (!ret && done < len) {
		ssize_t n = write(fd, op->path2 + done, len - done);

		if (n < 0 && errno != EINTR)
			ret = -errno;
		else if (n > 0)
			done += (size_t)n;
	}
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (ret)
		unlinkat(op->dir->e.fd, op->tmp, 0);
	return ret;
#endif
}

static void op_io_done(struct berth_commit *c, struct commit_io *io)
{
	struct commit_op *op = commit_container_of(io, struct commit_op, io);
	int res = (int)io->res;

	switch (op->state) {
	case S_MKDIR:
		if (res == -EEXIST) {
			op->state = S_MKDIR_STAT;
			op_step(c, op);
			return;
		}
		break;
	case S_MKDIR_STAT:
		if (res >= 0 && !S_ISDIR(op->stx.stx_mode))
			res = -EEXIST;
		break;
	case S_CREATE:
		if (res == -EEXIST && ++op->retries < 16) {
			op_step(c, op); /* temp name taken: draw another */
			return;
		}
		if (res >= 0)
			op->tmp_made = 1;
		break;
	case S_CHOWN:
		res = berth__commit_chown_result(c, res);
		break;
	case S_XA_OPEN:
		if (res >= 0)
			op->xfd = res;
		break;
	case S_XA_STAT:
		/* Linux wants write permission for user.* attributes: an
		 * item of ours without u+w gets it for the change, as rsync
		 * does (symlinks take no user.* anyway). */
		op->xa_wperm = res >= 0 && !S_ISLNK(op->stx.stx_mode) &&
			       op->stx.stx_uid == berth_plat_euid() &&
			       !(op->stx.stx_mode & S_IWUSR);
		res = 0;
		break;
	case S_XA_WPERM:
		if (res < 0) {
			op->xa_wperm = 0; /* try anyway */
			res = 0;
		}
		break;
	case S_XA_RESTORE:
		op->xa_wperm = 0;
		break;
	case S_XA_CLOSE:
		if (res == -ECANCELED)
			close(op->xfd); /* a shutdown caught it unrun */
		op->xfd = -1;
		res = 0; /* closed either way */
		break;
	case S_RENAME:
		if (res >= 0 && op->kind != OP_HARDLINK)
			op->tmp_made = 0;
		break;
	case S_UNLINK_TMP:
		/* Cancelled by a pump shutdown: the unlink did not run. */
		if (res == -ECANCELED)
			res = berth_plat_unlinkat(op->io.req.fd, op->tmp, 0);
		op->tmp_made = 0;
		if (res == -ENOENT)
			res = 0;
		if (op->err) { /* cleanup after a failure */
			op_done(c, op, op->err);
			return;
		}
		break;
	case S_BACKUP:
		if (res == -ENOENT)
			res = 0; /* nothing there to keep */
		break;
	case S_DELETE:
		if (res >= 0 && op->is_dir)
			berth__commit_dir_invalidate(c, op->path,
						     strlen(op->path));
		break;
	}
	if (res < 0) {
		op->err = res;
		op->fail_step = op_step_of(op->state);
		if (op->tmp_made) {
			op->state = S_UNLINK_TMP;
			op_step(c, op);
			return;
		}
		op_done(c, op, res);
		return;
	}
	if (op->state == S_MKDIR_STAT)
		op->state = S_MKDIR;
	op->state = op_next(c, op, op->state);
	if (op->state == S_DONE) {
		if (c->o.durability == BERTH_DURABLE_BATCH &&
		    op->kind != OP_DIR_META && op->kind != OP_META &&
		    op->kind != OP_XATTR)
			op->dir->dirty = 1;
		op_done(c, op, 0);
		return;
	}
	op_step(c, op);
}

/* The extended attributes are set (or reported): on to the next step. */
static void op_xattr_done(struct berth_commit *c, struct commit_xattr_job *j)
{
	struct commit_op *op = commit_container_of(j, struct commit_op, xj);

	op->state = op_next(c, op, S_XATTR);
	if (op->state == S_DONE) {
		op_done(c, op, 0);
		return;
	}
	op_step(c, op);
}

static void op_step(struct berth_commit *c, struct commit_op *op)
{
	struct berth_req *req = &op->io.req;
	int fd = op->dir->e.fd;
	/* dir_meta works on the directory's own fd, meta and xattr on the
	 * entry by name (never followed), the others on their temp name. */
	const char *name = op->kind == OP_DIR_META ? NULL
			   : op->kind == OP_META || op->kind == OP_XATTR
				   ? op->base
				   : op->tmp;
	int nofollow = name ? AT_SYMLINK_NOFOLLOW : 0;

	switch (op->state) {
	case S_XA_OPEN:
		memset(&op->how, 0, sizeof(op->how));
		op->how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
		op->how.resolve = COMMIT_RESOLVE;
		berth_prep_openat2(req, fd, name, &op->how);
		break;
	case S_XA_STAT:
		berth_prep_statx(req, xattr_of_root(op) ? fd : op->xfd, "",
				 AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW,
				 STATX_TYPE | STATX_MODE | STATX_UID, &op->stx);
		break;
	case S_XA_WPERM:
	case S_XA_RESTORE:
		berth_prep_fchmodat(
			req, fd, xattr_of_root(op) ? NULL : name,
			(op->stx.stx_mode & 07777) |
				(op->state == S_XA_WPERM ? S_IWUSR : 0),
			xattr_of_root(op) ? 0 : AT_SYMLINK_NOFOLLOW);
		break;
	case S_XATTR:
		op->xj.want = op->meta.xattrs;
		op->xj.path = op->path;
		op->xj.user = op->meta.user;
		op->xj.tag = op->tag;
		berth__commit_xattr_run(c, &op->xj,
					xattr_of_root(op) ? fd : op->xfd,
					op_xattr_done);
		return;
	case S_XA_CLOSE:
		berth_prep_close(req, op->xfd);
		break;
	case S_MKDIR:
		berth_prep_mkdirat(req, fd, op->base, op->meta.mode & 07777);
		break;
	case S_MKDIR_STAT:
		berth_prep_statx(req, fd, op->base, AT_SYMLINK_NOFOLLOW,
				 STATX_TYPE, &op->stx);
		break;
	case S_CREATE:
		berth__commit_tmpname(c, op->base, op->tmp);
		if (op->kind == OP_SYMLINK && c->o.fake_super)
			berth_prep_call(req, fake_symlink_run, op);
		else if (op->kind == OP_SYMLINK)
			berth_prep_symlinkat(req, op->path2, fd, op->tmp);
		else if (op->kind == OP_HARDLINK)
			berth_prep_linkat(req,
					  op->ext_fd >= 0 ? op->ext_fd
							  : op->dir2->e.fd,
					  op->base2, fd, op->tmp, 0);
		else if (c->o.fake_super)
			/* A plain file: its type goes into %stat. */
			berth_prep_mknodat(req, fd, op->tmp, S_IFREG | 0600, 0);
		else
			berth_prep_mknodat(req, fd, op->tmp, op->meta.mode,
					   op->dev);
		break;
	case S_CHOWN:
		berth_prep_fchownat(req, fd, name, op->meta.uid, op->meta.gid,
				    nofollow);
		break;
	case S_CHMOD:
		if (berth__commit_mode_special(c, &op->meta)) {
			/* -A, --fake-super (commit_acl.c) */
			op->mj = (struct commit_mode_job){.c = c,
							  .m = &op->meta,
							  .fd = -1,
							  .dirfd = fd,
							  .name = name};
			berth_prep_call(req, berth__commit_mode_run, &op->mj);
			break;
		}
		/* The temp node is ours and not a symlink: no flag needed;
		 * an existing entry is never followed. */
		berth_prep_fchmodat(req, fd, name, op->meta.mode & 07777,
				    op->kind == OP_META ? AT_SYMLINK_NOFOLLOW
							: 0);
		break;
	case S_TIMES:
		berth__commit_times(&op->meta, op->ts);
		berth_prep_utimensat(req, fd, name, op->ts, nofollow);
		break;
	case S_RENAME:
		berth_prep_renameat2(req, fd, op->tmp, fd, op->base, 0);
		break;
	case S_UNLINK_TMP:
		berth_prep_unlinkat(req, fd, op->tmp, 0);
		break;
	case S_DELETE:
		/* --backup: a deleted file is kept as NAME + suffix. */
		if (c->o.backup_suffix && !op->is_dir &&
		    berth__commit_bakname(c, op->base, op->tmp) == 0)
			berth_prep_renameat2(req, fd, op->base,
					     op->dir2 ? op->dir2->e.fd : fd,
					     op->tmp, 0);
		else {
#ifdef _WIN32
			/* Windows: this stage's handles of the directory and
			 * below are closed first (at once there, see
			 * commit_path.c): without POSIX-semantics delete an
			 * open directory keeps its name. */
			if (op->is_dir)
				berth__commit_dir_invalidate(c, op->path,
							     strlen(op->path));
#endif
			berth_prep_unlinkat(req, fd, op->base,
					    op->is_dir ? AT_REMOVEDIR : 0);
		}
		break;
	case S_BACKUP:
		if (berth__commit_bakname(c, op->base, op->bakname) < 0) {
			op->io.res = -ENAMETOOLONG;
			op_io_done(c, &op->io);
			return;
		}
		/* A replaced symlink or node goes to the --backup-dir
		 * (dir2) when there is one; OP_RENAME's dir2 is its
		 * source. */
		berth_prep_renameat2(
			req, fd, op->base,
			op->kind != OP_RENAME && op->dir2 ? op->dir2->e.fd : fd,
			op->bakname, 0);
		break;
	case S_MOVE:
		berth_prep_renameat2(req, op->dir2->e.fd, op->base2, fd,
				     op->base, 0);
		break;
	default:
		abort(); /* own invariant */
	}
	berth__commit_submit(c, &op->io, op_io_done, op->tag);
}

static void op_dirs_ready(struct berth_commit *c, struct commit_op *op)
{
	if (--op->waiting)
		return;
	if (op->err) {
		op->fail_step = BERTH_COMMIT_STEP_DIR;
		op_done(c, op, op->err);
		return;
	}
	op->state = op_next(c, op, S_START);
	if (op->state == S_DONE) {
		op_done(c, op, 0);
		return;
	}
	op_step(c, op);
}

static void op_dir_ready(struct berth_commit *c, struct commit_waiter *w,
			 struct commit_dir *d, int err)
{
	struct commit_op *op = commit_container_of(w, struct commit_op, wait);

	op->dir = d;
	if (err && !op->err)
		op->err = err;
	op_dirs_ready(c, op);
}

static void op_dir2_ready(struct berth_commit *c, struct commit_waiter *w,
			  struct commit_dir *d, int err)
{
	struct commit_op *op = commit_container_of(w, struct commit_op, wait2);

	op->dir2 = d;
	if (err && !op->err)
		op->err = err;
	op_dirs_ready(c, op);
}

/* Handle CMD_OP on the commit thread. */
void berth__commit_op_start(struct berth_commit *c, struct commit_op *op)
{
	int two, bakdel;

	op->prev = NULL;
	op->next = c->ops;
	if (c->ops)
		c->ops->prev = op;
	c->ops = op;
	berth__commit_track_add(c, &op->track);
	if (c->cancelling) {
		op_done(c, op, -BERTH_ECANCELLED);
		return;
	}
	/* A second directory: a link's or rename's source, or the backup
	 * directory a deleted file or replaced symlink or node moves to
	 * (--backup-dir). */
	bakdel = ((op->kind == OP_DELETE && !op->is_dir) ||
		  ((op->kind == OP_SYMLINK || op->kind == OP_MKNOD) &&
		   op->meta.backup)) &&
		 c->o.use_backup_dir && c->o.backup_suffix;
	two = ((op->kind == OP_HARDLINK || op->kind == OP_RENAME) &&
	       op->ext_fd < 0) ||
	      bakdel;
	op->waiting = two ? 2 : 1;
	op->wait.ready = op_dir_ready;
	op->wait2.ready = op_dir2_ready;
	if (op->kind == OP_DIR_META || xattr_of_root(op))
		berth__commit_dir_get(c, op->path, strlen(op->path), op->bak,
				      &op->wait);
	else
		berth__commit_dir_get(c, op->path, op->dirlen, op->bak,
				      &op->wait);
	if (bakdel)
		berth__commit_dir_get(c, op->path, op->dirlen, 1, &op->wait2);
	else if (two)
		berth__commit_dir_get(c, op->path2, op->dirlen2, 0, &op->wait2);
}

/* The kinds that apply (and own) meta.xattrs. */
static int takes_xattrs(int kind)
{
	return kind == OP_SYMLINK || kind == OP_MKNOD || kind == OP_XATTR;
}

/* Allocate, check and queue an operation.  Producer threads. */
static int op_queue(struct berth_commit *c, int kind, const char *relpath,
		    const char *path2, const struct berth_commit_meta *meta,
		    dev_t dev, int is_dir, int ext_fd)
{
	struct commit_op *op;
	const char *base;
	int r;

	op = calloc(1, sizeof(*op));
	if (!op) {
		if (ext_fd >= 0)
			close(ext_fd);
		if (meta && takes_xattrs(kind))
			free(meta->xattrs); /* taken, also on error */
		return -ENOMEM;
	}
	op->bak = !!(kind & OP_BAK);
	kind &= ~OP_BAK;
	op->kind = kind;
	op->ext_fd = ext_fd; /* ours now: closed with the op */
	op->xfd = -1;
	op->cmd.kind = CMD_OP;
	op->dev = dev;
	op->is_dir = is_dir;
	if (meta)
		op->meta = *meta;
	if (meta && !takes_xattrs(kind))
		op->meta.xattrs = NULL; /* not for these: not taken */
	if (!meta)
		op->meta = (struct berth_commit_meta){.mode = 0755,
						      .mtime_nsec = UTIME_OMIT,
						      .uid = (uint32_t)-1,
						      .gid = (uint32_t)-1};
	if ((kind == OP_DIR_META || kind == OP_XATTR) && !strcmp(relpath, "."))
		relpath = ""; /* the root directory itself */
	r = -ENOMEM;
	op->path = strdup(relpath);
	if (!op->path)
		goto fail;
	if (relpath[0] || (kind != OP_DIR_META && kind != OP_XATTR)) {
		r = berth_path_split(op->path, &op->dirlen, &base);
		if (r)
			goto fail;
		op->base = base;
	}
	if (path2) {
		r = -ENOMEM;
		op->path2 = strdup(path2);
		if (!op->path2)
			goto fail;
		if (kind == OP_HARDLINK || kind == OP_RENAME) {
			r = berth_path_split(op->path2, &op->dirlen2, &base);
			if (r)
				goto fail;
			op->base2 = base;
		}
	}
	op->tag = berth__commit_slot_get(c, 0);
	if (!op->tag) {
		r = -BERTH_ECANCELLED;
		goto fail;
	}
	r = berth__commit_enqueue(c, &op->cmd);
	if (r) {
		berth__commit_slot_put(c, 0);
		goto fail;
	}
	return 0;
fail:
	berth__commit_op_free(op);
	return r;
}

int berth_commit_mkdir(struct berth_commit *c, const char *relpath,
		       const struct berth_commit_meta *meta)
{
	return op_queue(c, OP_MKDIR, relpath, NULL, meta, 0, 1, -1);
}

int berth_commit_backup_mkdir(struct berth_commit *c, const char *relpath,
			      const struct berth_commit_meta *meta)
{
	int r;

	if (!meta)
		return -EINVAL;
	r = op_queue(c, OP_MKDIR | OP_BAK, relpath, NULL, meta, 0, 1, -1);
	if (r == 0)
		r = op_queue(c, OP_DIR_META | OP_BAK, relpath, NULL, meta, 0, 1,
			     -1);
	return r;
}

int berth_commit_symlink(struct berth_commit *c, const char *relpath,
			 const char *target,
			 const struct berth_commit_meta *meta)
{
	if (!target || !target[0] || strlen(target) >= PATH_MAX) {
		if (meta)
			free(meta->xattrs);
		return -BERTH_EPATH;
	}
	return op_queue(c, OP_SYMLINK, relpath, target, meta, 0, 0, -1);
}

int berth_commit_hardlink(struct berth_commit *c, const char *relpath,
			  const char *existing, void *user)
{
	struct berth_commit_meta meta = {.mtime_nsec = UTIME_OMIT,
					 .uid = (uint32_t)-1,
					 .gid = (uint32_t)-1,
					 .user = user};

	if (!existing)
		return -BERTH_EPATH;
	return op_queue(c, OP_HARDLINK, relpath, existing, &meta, 0, 0, -1);
}

int berth_commit_hardlink_at(struct berth_commit *c, const char *relpath,
			     int src_dirfd, const char *src_name, void *user)
{
	struct berth_commit_meta meta = {.mtime_nsec = UTIME_OMIT,
					 .uid = (uint32_t)-1,
					 .gid = (uint32_t)-1,
					 .user = user};
	int fd;

	if (!src_name || !*src_name || strchr(src_name, '/') ||
	    !strcmp(src_name, ".") || !strcmp(src_name, ".."))
		return -BERTH_EPATH;
	fd = berth_plat_dupfd(src_dirfd);
	if (fd < 0)
		return fd;
	return op_queue(c, OP_HARDLINK, relpath, src_name, &meta, 0, 0, fd);
}

int berth_commit_mknod(struct berth_commit *c, const char *relpath,
		       const struct berth_commit_meta *meta, dev_t dev)
{
	if (!meta)
		return -EINVAL;
	if (!S_ISFIFO(meta->mode) && !S_ISCHR(meta->mode) &&
	    !S_ISBLK(meta->mode) && !S_ISSOCK(meta->mode)) {
		free(meta->xattrs);
		return -EINVAL;
	}
	return op_queue(c, OP_MKNOD, relpath, NULL, meta, dev, 0, -1);
}

int berth_commit_delete(struct berth_commit *c, const char *relpath, int is_dir,
			void *user)
{
	struct berth_commit_meta meta = {.mtime_nsec = UTIME_OMIT,
					 .user = user};

	return op_queue(c, OP_DELETE, relpath, NULL, &meta, 0, !!is_dir, -1);
}

int berth_commit_rename(struct berth_commit *c, const char *from,
			const char *to, void *user)
{
	struct berth_commit_meta meta = {.mtime_nsec = UTIME_OMIT,
					 .uid = (uint32_t)-1,
					 .gid = (uint32_t)-1,
					 .user = user};

	if (!from)
		return -BERTH_EPATH;
	return op_queue(c, OP_RENAME, to, from, &meta, 0, 0, -1);
}

int berth_commit_dir_meta(struct berth_commit *c, const char *relpath,
			  const struct berth_commit_meta *meta)
{
	if (!meta)
		return -EINVAL;
	return op_queue(c, OP_DIR_META, relpath, NULL, meta, 0, 1, -1);
}

int berth_commit_set_meta(struct berth_commit *c, const char *relpath,
			  const struct berth_commit_meta *meta)
{
	if (!meta)
		return -EINVAL;
	return op_queue(c, OP_META, relpath, NULL, meta, 0, 0, -1);
}

int berth_commit_set_xattrs(struct berth_commit *c, const char *relpath,
			    struct berth_commit_xattrs *xattrs, void *user)
{
	struct berth_commit_meta meta = {.mtime_nsec = UTIME_OMIT,
					 .uid = (uint32_t)-1,
					 .gid = (uint32_t)-1,
					 .user = user,
					 .xattrs = xattrs};

	if (!xattrs)
		return -EINVAL;
	return op_queue(c, OP_XATTR, relpath, NULL, &meta, 0, 0, -1);
}
