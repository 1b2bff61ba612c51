/* SPDX-License-Identifier: MIT */
/*
 * The commit stage's parent directories: engine/path's directory-fd cache
 * (path.h), with the opens, fsyncs and closes made through the pump.
 *
 * Every name from the peer is checked (berth_path_check) and split into a
 * parent path and a base name.  The parent is opened with one openat2()
 * beneath the root fd, BERTH_PLAT_RESOLVE (RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): no component may be a
 * symlink, so a parent replaced by a symlink to the outside fails with
 * ELOOP instead of being followed.  The base name is then used only with
 * *at() calls relative to that fd, and never followed (O_EXCL creation,
 * rename, unlink, NOFOLLOW).
 *
 * At most opts.dir_cache unreferenced parent fds are kept.  In batch
 * durability a directory is marked dirty when an entry in it changes and
 * fsynced at the next flush, or before its fd is closed on eviction.
 *
 * All cache functions run on the commit thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/commit/commit_int.h"

int berth_commit_path_check(const char *relpath)
{
	return berth_path_check(relpath);
}

static struct commit_dir *dir_of(struct berth_dirent *e)
{
	return commit_container_of(e, struct commit_dir, e);
}

static void dir_closed(struct berth_commit *c, struct commit_io *io)
{
	struct commit_dir *d = commit_container_of(io, struct commit_dir, io);

	if (io->res == -ECANCELED)
		close(d->e.fd); /* a pump shutdown caught the close unrun */
	berth_dircache_ent_free(&c->dcache, &d->e);
}

static void dir_submit_close(struct berth_commit *c, struct commit_dir *d)
{
	berth_prep_close(&d->io.req, d->e.fd);
	berth__commit_submit(c, &d->io, dir_closed, c->o.tag_base);
}

static void dirsync_result(struct berth_commit *c, struct commit_dir *d,
			   ssize_t res)
{
	c->dirsyncs--;
	pthread_mutex_lock(&c->lock);
	c->st.dir_fsyncs++;
	pthread_mutex_unlock(&c->lock);
	if (res < 0) {
		struct berth_commit_event ev = {
			.kind = BERTH_COMMIT_EV_DIRSYNC,
			.err = (int)res,
			.path = d->e.len ? d->e.path : ".",
			.step = BERTH_COMMIT_STEP_FSYNC};

		berth__commit_event(c, &ev);
	}
}

static void dir_close_synced(struct berth_commit *c, struct commit_io *io)
{
	struct commit_dir *d = commit_container_of(io, struct commit_dir, io);

	dirsync_result(c, d, io->res);
	dir_submit_close(c, d);
}

/* The cache's evict callback: an unreferenced entry out of the hash
 * (state CLOSING); fsync if dirty, then close and free. */
static void dir_evict(struct berth_dircache *dc, struct berth_dirent *e)
{
	struct berth_commit *c = dc->arg;
	struct commit_dir *d = dir_of(e);

#ifdef _WIN32
	/* Windows: closed at once, on this thread, so that a directory
	 * about to be deleted is not held open (commit_ops.c).  Its entries
	 * are kept by the file system's journal (berth_plat_fsync() of a
	 * directory does nothing there): a dirty one counts as synced. */
	if (d->dirty) {
		d->dirty = 0;
		c->dirsyncs++;
		dirsync_result(c, d, 0);
	}
	close(d->e.fd);
	berth_dircache_ent_free(dc, e);
	return;
#endif
	if (d->dirty) {
		d->dirty = 0;
		c->dirsyncs++;
		berth_prep_fsync(&d->io.req, d->e.fd, 0);
		berth__commit_submit(c, &d->io, dir_close_synced,
				     c->o.tag_base);
		return;
	}
	dir_submit_close(c, d);
}

void berth__commit_dirs_init(struct berth_commit *c)
{
	berth_dircache_init(&c->dcache, c->o.dir_cache,
			    sizeof(struct commit_dir), dir_evict, c);
}

static void dir_opened(struct berth_commit *c, struct commit_io *io)
{
	struct commit_dir *d = commit_container_of(io, struct commit_dir, io);
	struct commit_waiter *w, *list = NULL;
	int err = io->res < 0 ? (int)io->res : 0;

	/* Waiters were pushed LIFO; serve them in arrival order. */
	while ((w = d->waiters)) {
		d->waiters = w->next;
		w->next = list;
		list = w;
	}
	if (err) {
		berth_dircache_forget(&c->dcache, &d->e);
		berth_dircache_ent_free(&c->dcache, &d->e);
	} else {
		d->e.fd = (int)io->res;
		d->e.state = BERTH_DIRENT_READY;
		/* hold it while the waiters run */
		berth_dircache_hold(&c->dcache, &d->e);
	}
	while ((w = list)) {
		list = w->next;
		if (!err)
			berth_dircache_hold(&c->dcache, &d->e);
		w->ready(c, w, err ? NULL : d, err);
	}
	if (!err)
		berth__commit_dir_put(c, d);
}

/*
 * Get the directory @path (@len bytes, not NUL-terminated; 0 is the root)
 * for @w: w->ready() is called with a referenced entry or an error, either
 * right away or when the open completes.  Release with
 * berth__commit_dir_put().  Returns 0.
 */
int berth__commit_dir_get(struct berth_commit *c, const char *path, size_t len,
			  int bak, struct commit_waiter *w)
{
	struct berth_dirent *e = berth_dircache_find(&c->dcache, bak, path,
						     len);
	struct commit_dir *d;

	if (e && e->state == BERTH_DIRENT_READY) {
		berth_dircache_hold(&c->dcache, e);
		w->ready(c, w, dir_of(e), 0);
		return 0;
	}
	if (e) { /* opening: wait for it */
		d = dir_of(e);
		w->next = d->waiters;
		d->waiters = w;
		return 0;
	}
	e = berth_dircache_add(&c->dcache, bak, path, len);
	if (!e) {
		w->ready(c, w, NULL, -ENOMEM);
		return 0;
	}
	d = dir_of(e);
	w->next = NULL;
	d->waiters = w;
	d->how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
	d->how.resolve = COMMIT_RESOLVE;
	berth_prep_openat2(&d->io.req,
			   bak ? atomic_load(&c->bak_root) : c->root, e->path,
			   &d->how);
	berth__commit_submit(c, &d->io, dir_opened, c->o.tag_base);
	berth_dircache_trim(&c->dcache);
	return 0;
}

/* Drop a reference taken by berth__commit_dir_get(). */
void berth__commit_dir_put(struct berth_commit *c, struct commit_dir *d)
{
	berth_dircache_put(&c->dcache, &d->e);
}

/* Forget cached entries at or below @path (a directory was removed). */
void berth__commit_dir_invalidate(struct berth_commit *c, const char *path,
				  size_t len)
{
	berth_dircache_invalidate(&c->dcache, path, len);
}

static void dir_synced(struct berth_commit *c, struct commit_io *io)
{
	struct commit_dir *d = commit_container_of(io, struct commit_dir, io);

	dirsync_result(c, d, io->res);
	berth__commit_dir_put(c, d);
}

/* Batch flush: fsync every cached dirty directory (evicted ones were
 * fsynced on eviction).  Progress is c->dirsyncs. */
void berth__commit_dir_sync_all(struct berth_commit *c)
{
	struct berth_dirent *e = NULL;
	struct commit_dir *d;

	while ((e = berth_dircache_next(&c->dcache, e))) {
		d = dir_of(e);
		if (!d->dirty || e->state != BERTH_DIRENT_READY)
			continue;
		d->dirty = 0;
		berth_dircache_hold(&c->dcache, e);
		c->dirsyncs++;
		berth_prep_fsync(&d->io.req, e->fd, 0);
		berth__commit_submit(c, &d->io, dir_synced, c->o.tag_base);
	}
}

/* Shutdown: close every unreferenced cached directory. */
void berth__commit_dir_evict_all(struct berth_commit *c)
{
	berth_dircache_evict_all(&c->dcache);
}

/* After the thread exited: free whatever is left (nothing, normally). */
void berth__commit_dirs_free(struct berth_commit *c)
{
	berth_dircache_destroy(&c->dcache);
}
