/* SPDX-License-Identifier: MIT */
/*
 * The directory-fd cache (path.h): a hash of entries keyed by (root,
 * relative path) and an LRU list of the unreferenced ready ones, trimmed
 * to `max`.  One owner thread, no lock.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/path/path.h"
#include "engine/platform/platform.h"

static uint32_t path_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

static void lru_remove(struct berth_dircache *dc, struct berth_dirent *e)
{
	if (!e->in_lru)
		return;
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		dc->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		dc->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
	e->in_lru = 0;
}

static void lru_append(struct berth_dircache *dc, struct berth_dirent *e)
{
	e->lru_next = NULL;
	e->lru_prev = dc->lru_tail;
	if (dc->lru_tail)
		dc->lru_tail->lru_next = e;
	else
		dc->lru_head = e;
	dc->lru_tail = e;
	e->in_lru = 1;
}

static void hash_remove(struct berth_dircache *dc, struct berth_dirent *e)
{
	struct berth_dirent **pp =
		&dc->buckets[e->hash % BERTH_DIRCACHE_BUCKETS];

	if (!e->in_hash)
		return;
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	e->hnext = NULL;
	e->in_hash = 0;
	dc->ncached--;
}

/* An unreferenced entry already out of the hash: to the owner. */
static void evict(struct berth_dircache *dc, struct berth_dirent *e)
{
	lru_remove(dc, e);
	e->state = BERTH_DIRENT_CLOSING;
	if (dc->evict) {
		dc->evict(dc, e);
		return;
	}
	if (e->fd >= 0)
		close(e->fd);
	berth_dircache_ent_free(dc, e);
}

void berth_dircache_init(struct berth_dircache *dc, unsigned max,
			 size_t entsize, berth_dircache_evict_cb evict_cb,
			 void *arg)
{
	assert(entsize >= sizeof(struct berth_dirent));
	memset(dc, 0, sizeof(*dc));
	dc->max = max;
	dc->entsize = entsize;
	dc->evict = evict_cb;
	dc->arg = arg;
}

void berth_dircache_destroy(struct berth_dircache *dc)
{
	struct berth_dirent *e;
	unsigned i;

	for (i = 0; i < BERTH_DIRCACHE_BUCKETS; i++) {
		while ((e = dc->buckets[i])) {
			dc->buckets[i] = e->hnext;
			if (e->fd >= 0)
				close(e->fd);
			free(e->path);
			free(e);
		}
	}
	dc->lru_head = dc->lru_tail = NULL;
	dc->ncached = 0;
}

static uint32_t key_hash(int root, const char *path, size_t len)
{
	return path_hash(path, len) ^ (uint32_t)root;
}

struct berth_dirent *berth_dircache_find(struct berth_dircache *dc, int root,
					 const char *path, size_t len)
{
	uint32_t h = key_hash(root, path, len);
	struct berth_dirent *e;

	for (e = dc->buckets[h % BERTH_DIRCACHE_BUCKETS]; e; e = e->hnext) {
		if (e->len == len && e->root == root &&
		    !memcmp(e->path, path, len))
			return e;
	}
	return NULL;
}

struct berth_dirent *berth_dircache_add(struct berth_dircache *dc, int root,
					const char *path, size_t len)
{
	uint32_t h = key_hash(root, path, len);
	struct berth_dirent *e = calloc(1, dc->entsize);

	if (e)
		e->path = malloc(len + 2);
	if (!e || !e->path) {
		free(e);
		return NULL;
	}
	/* The root is opened as "." beneath itself (a real fd to fsync). */
	if (len)
		memcpy(e->path, path, len);
	else
		e->path[0] = '.';
	e->path[len ? len : 1] = '\0';
	e->len = len;
	e->hash = h;
	e->root = root;
	e->fd = -1;
	e->state = BERTH_DIRENT_OPENING;
	e->in_hash = 1;
	e->hnext = dc->buckets[h % BERTH_DIRCACHE_BUCKETS];
	dc->buckets[h % BERTH_DIRCACHE_BUCKETS] = e;
	dc->ncached++;
	dc->nalive++;
	return e;
}

void berth_dircache_hold(struct berth_dircache *dc, struct berth_dirent *e)
{
	lru_remove(dc, e);
	e->refs++;
}

void berth_dircache_trim(struct berth_dircache *dc)
{
	struct berth_dirent *e;

	while (dc->ncached > dc->max && (e = dc->lru_head)) {
		hash_remove(dc, e);
		evict(dc, e);
	}
}

void berth_dircache_put(struct berth_dircache *dc, struct berth_dirent *e)
{
	assert(e->refs > 0);
	if (--e->refs)
		return;
	if (!e->in_hash) {
		evict(dc, e);
		return;
	}
	lru_append(dc, e);
	berth_dircache_trim(dc);
}

void berth_dircache_forget(struct berth_dircache *dc, struct berth_dirent *e)
{
	lru_remove(dc, e);
	hash_remove(dc, e);
}

void berth_dircache_ent_free(struct berth_dircache *dc, struct berth_dirent *e)
{
	dc->nalive--;
	free(e->path);
	free(e);
}

void berth_dircache_set_open(struct berth_dircache *dc,
			     berth_dircache_open_fn fn, void *arg)
{
	dc->open = fn;
	dc->open_arg = arg;
}

int berth_dircache_get_fd(struct berth_dircache *dc, int root_fd, int root,
			  const char *path, size_t len, int flags)
{
	struct berth_dirent *e = berth_dircache_find(dc, root, path, len);
	int fd;

	/* One thread, opening synchronously: nothing is ever OPENING. */
	assert(!e || e->state == BERTH_DIRENT_READY);
	if (e) {
		berth_dircache_hold(dc, e);
	} else {
		e = berth_dircache_add(dc, root, path, len);
		if (!e)
			return -ENOMEM;
		fd = dc->open ? dc->open(dc->open_arg, root_fd, e->path,
					 flags | O_DIRECTORY)
			      : berth_plat_open_beneath(root_fd, e->path,
							flags | O_DIRECTORY);
		if (fd < 0) {
			berth_dircache_forget(dc, e);
			berth_dircache_ent_free(dc, e);
			return fd;
		}
		e->fd = fd;
		e->state = BERTH_DIRENT_READY;
		e->refs = 1;
	}
	fd = e->fd;
	/* Unreferenced, it is the newest in the LRU list: the trim in put
	 * closes older ones, so @fd stays open until the next call. */
	berth_dircache_put(dc, e);
	return fd;
}

void berth_dircache_invalidate(struct berth_dircache *dc, const char *path,
			       size_t len)
{
	struct berth_dirent *e, *next;
	unsigned i;

	for (i = 0; i < BERTH_DIRCACHE_BUCKETS; i++) {
		for (e = dc->buckets[i]; e; e = next) {
			next = e->hnext;
			if (e->len < len || memcmp(e->path, path, len) ||
			    (e->len > len && e->path[len] != '/'))
				continue;
			if (e->state != BERTH_DIRENT_READY)
				continue; /* opening: its waiters hold it */
			hash_remove(dc, e);
			if (!e->refs)
				evict(dc, e);
		}
	}
}

void berth_dircache_evict_all(struct berth_dircache *dc)
{
	struct berth_dirent *e, *next;
	unsigned i;

	for (i = 0; i < BERTH_DIRCACHE_BUCKETS; i++) {
		for (e = dc->buckets[i]; e; e = next) {
			next = e->hnext;
			if (e->state != BERTH_DIRENT_READY || e->refs)
				continue;
			hash_remove(dc, e);
			evict(dc, e);
		}
	}
}

struct berth_dirent *berth_dircache_next(struct berth_dircache *dc,
					 struct berth_dirent *e)
{
	unsigned i = 0;

	if (e) {
		if (e->hnext)
			return e->hnext;
		i = e->hash % BERTH_DIRCACHE_BUCKETS + 1;
	}
	for (; i < BERTH_DIRCACHE_BUCKETS; i++)
		if (dc->buckets[i])
			return dc->buckets[i];
	return NULL;
}
