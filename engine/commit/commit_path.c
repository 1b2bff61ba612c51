/* SPDX-License-Identifier: MIT */
/*
 * Safe names and the parent-directory cache.
 *
 * Every name from the peer is checked (berth_commit_path_check) and split
 * into a parent path and a base name.  The parent is opened with one
 * openat2() beneath the root fd, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS: no component may be a symlink, so a parent
 * replaced by a symlink to the outside fails with ELOOP instead of being
 * followed.  The base name is then used only with *at() calls relative to
 * that fd, and never followed (O_EXCL creation, rename, unlink, NOFOLLOW).
 *
 * Open parent fds are cached by relative path (hash + LRU of unreferenced
 * entries, at most opts.dir_cache of them kept).  In batch durability a
 * directory is marked dirty when an entry in it changes and fsynced at the
 * next flush, or before its fd is closed on eviction.
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
	const char *p = relpath, *e;
	size_t n;

	if (!p || !*p || *p == '/' || strlen(p) >= PATH_MAX)
		return -BERTH_EPATH;
	for (;;) {
		e = strchr(p, '/');
		n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0 || n > NAME_MAX)
			return -BERTH_EPATH;
		if (p[0] == '.' && (n == 1 || (n == 2 && p[1] == '.')))
			return -BERTH_EPATH;
		if (!e)
			return 0;
		p = e + 1;
	}
}

/*
 * Split a checked @relpath: *dirlen is the length of the parent part (0 for
 * a name in the root), *base points at the last component.  Returns 0 or
 * -BERTH_EPATH.
 */
int berth__commit_split(const char *relpath, size_t *dirlen, const char **base)
{
	const char *slash;
	int r = berth_commit_path_check(relpath);

	if (r)
		return r;
	slash = strrchr(relpath, '/');
	*dirlen = slash ? (size_t)(slash - relpath) : 0;
	*base = slash ? slash + 1 : relpath;
	return 0;
}

/* True when one path equals the other or is one of its ancestors. */
int berth__commit_paths_overlap(const char *a, size_t alen, const char *b,
				size_t blen)
{
	const char *t;
	size_t tn;

	if (alen > blen) {
		t = a;
		a = b;
		b = t;
		tn = alen;
		alen = blen;
		blen = tn;
	}
	if (alen == 0)
		return 1;
	if (memcmp(a, b, alen))
		return 0;
	return alen == blen || b[alen] == '/';
}

static uint32_t path_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static void lru_remove(struct berth_commit *c, struct commit_dir *d)
{
	if (!d->in_lru)
		return;
	if (d->lru_prev)
		d->lru_prev->lru_next = d->lru_next;
	else
		c->lru_head = d->lru_next;
	if (d->lru_next)
		d->lru_next->lru_prev = d->lru_prev;
	else
		c->lru_tail = d->lru_prev;
	d->lru_prev = d->lru_next = NULL;
	d->in_lru = 0;
}

static void lru_append(struct berth_commit *c, struct commit_dir *d)
{
	d->lru_next = NULL;
	d->lru_prev = c->lru_tail;
	if (c->lru_tail)
		c->lru_tail->lru_next = d;
	else
		c->lru_head = d;
	c->lru_tail = d;
	d->in_lru = 1;
}

static void hash_remove(struct berth_commit *c, struct commit_dir *d)
{
	struct commit_dir **pp = &c->dirs[d->hash % COMMIT_DIR_BUCKETS];

	if (!d->in_hash)
		return;
	while (*pp != d)
		pp = &(*pp)->hnext;
	*pp = d->hnext;
	d->hnext = NULL;
	d->in_hash = 0;
	c->ncached--;
}

static void dir_free(struct berth_commit *c, struct commit_dir *d)
{
	c->ndirs--;
	free(d->path);
	free(d);
}

static void dir_closed(struct berth_commit *c, struct commit_io *io)
{
	struct commit_dir *d = commit_container_of(io, struct commit_dir, io);

	if (io->res == -ECANCELED)
		close(d->fd); /* a pump shutdown caught the close unrun */
	dir_free(c, d);
}

static void dir_submit_close(struct berth_commit *c, struct commit_dir *d)
{
	berth_prep_close(&d->io.req, d->fd);
	berth__commit_submit(c, &d->io, dir_closed, c->o.tag_base);
}

static void dirsync_result(struct berth_commit *c, struct commit_dir *d,
			   ssize_t res)
{
	c->dirsyncs--;
	pthread_mutex_lock(&c->lock);
	c->st.dir_fsyncs++;
	pthread_mutex_unlock(&c->lock);
	if (res < 0)
		berth__commit_event(c, BERTH_COMMIT_EV_DIRSYNC, (int)res,
				    d->len ? d->path : ".", NULL);
}

static void dir_close_synced(struct berth_commit *c, struct commit_io *io)
{
	struct commit_dir *d = commit_container_of(io, struct commit_dir, io);

	dirsync_result(c, d, io->res);
	dir_submit_close(c, d);
}

/* Close an unreferenced entry already out of the hash; fsync if dirty. */
static void dir_close(struct berth_commit *c, struct commit_dir *d)
{
	lru_remove(c, d);
	d->state = DIR_CLOSING;
	if (d->dirty) {
		d->dirty = 0;
		c->dirsyncs++;
		berth_prep_fsync(&d->io.req, d->fd, 0);
		berth__commit_submit(c, &d->io, dir_close_synced,
				     c->o.tag_base);
		return;
	}
	dir_submit_close(c, d);
}

static void dir_trim(struct berth_commit *c)
{
	struct commit_dir *d;

	while (c->ncached > c->o.dir_cache && (d = c->lru_head)) {
		hash_remove(c, d);
		dir_close(c, d);
	}
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
		hash_remove(c, d);
		dir_free(c, d);
	} else {
		d->fd = (int)io->res;
		d->state = DIR_READY;
		d->refs++; /* hold it while the waiters run */
	}
	while ((w = list)) {
		list = w->next;
		if (!err)
			d->refs++;
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
	uint32_t h = path_hash(path, len) ^ (uint32_t)bak;
	struct commit_dir *d;

	for (d = c->dirs[h % COMMIT_DIR_BUCKETS]; d; d = d->hnext) {
		if (d->len == len && d->bak == bak &&
		    !memcmp(d->path, path, len))
			break;
	}
	if (d && d->state == DIR_READY) {
		lru_remove(c, d);
		d->refs++;
		w->ready(c, w, d, 0);
		return 0;
	}
	if (d) { /* opening: wait for it */
		w->next = d->waiters;
		d->waiters = w;
		return 0;
	}
	d = calloc(1, sizeof(*d));
	if (d)
		d->path = malloc(len + 2);
	if (!d || !d->path) {
		free(d);
		w->ready(c, w, NULL, -ENOMEM);
		return 0;
	}
	/* The root is opened as "." beneath itself (a real fd to fsync). */
	if (len)
		memcpy(d->path, path, len);
	else
		d->path[0] = '.';
	d->path[len ? len : 1] = '\0';
	d->len = len;
	d->hash = h;
	d->bak = bak;
	d->fd = -1;
	d->state = DIR_OPENING;
	d->in_hash = 1;
	d->hnext = c->dirs[h % COMMIT_DIR_BUCKETS];
	c->dirs[h % COMMIT_DIR_BUCKETS] = d;
	c->ncached++;
	c->ndirs++;
	w->next = NULL;
	d->waiters = w;
	d->how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
	d->how.resolve = COMMIT_RESOLVE;
	berth_prep_openat2(&d->io.req,
			   bak ? atomic_load(&c->bak_root) : c->root, d->path,
			   &d->how);
	berth__commit_submit(c, &d->io, dir_opened, c->o.tag_base);
	dir_trim(c);
	return 0;
}

/* Drop a reference taken by berth__commit_dir_get(). */
void berth__commit_dir_put(struct berth_commit *c, struct commit_dir *d)
{
	if (--d->refs)
		return;
	if (!d->in_hash) {
		dir_close(c, d);
		return;
	}
	lru_append(c, d);
	dir_trim(c);
}

/* Forget cached entries at or below @path (a directory was removed). */
void berth__commit_dir_invalidate(struct berth_commit *c, const char *path,
				  size_t len)
{
	struct commit_dir *d, *next;
	unsigned i;

	for (i = 0; i < COMMIT_DIR_BUCKETS; i++) {
		for (d = c->dirs[i]; d; d = next) {
			next = d->hnext;
			if (d->len < len || memcmp(d->path, path, len) ||
			    (d->len > len && d->path[len] != '/'))
				continue;
			if (d->state != DIR_READY)
				continue; /* opening: its waiters hold it */
			hash_remove(c, d);
			if (!d->refs)
				dir_close(c, d);
		}
	}
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
	struct commit_dir *d;
	unsigned i;

	for (i = 0; i < COMMIT_DIR_BUCKETS; i++) {
		for (d = c->dirs[i]; d; d = d->hnext) {
			if (!d->dirty || d->state != DIR_READY)
				continue;
			d->dirty = 0;
			lru_remove(c, d);
			d->refs++;
			c->dirsyncs++;
			berth_prep_fsync(&d->io.req, d->fd, 0);
			berth__commit_submit(c, &d->io, dir_synced,
					     c->o.tag_base);
		}
	}
}

/* Shutdown: close every unreferenced cached directory. */
void berth__commit_dir_evict_all(struct berth_commit *c)
{
	struct commit_dir *d, *next;
	unsigned i;

	for (i = 0; i < COMMIT_DIR_BUCKETS; i++) {
		for (d = c->dirs[i]; d; d = next) {
			next = d->hnext;
			if (d->state != DIR_READY || d->refs)
				continue;
			hash_remove(c, d);
			dir_close(c, d);
		}
	}
}

/* After the thread exited: free whatever is left (nothing, normally). */
void berth__commit_dirs_free(struct berth_commit *c)
{
	struct commit_dir *d;
	unsigned i;

	for (i = 0; i < COMMIT_DIR_BUCKETS; i++) {
		while ((d = c->dirs[i])) {
			c->dirs[i] = d->hnext;
			if (d->fd >= 0)
				close(d->fd);
			free(d->path);
			free(d);
		}
	}
}
