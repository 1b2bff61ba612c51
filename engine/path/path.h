/* SPDX-License-Identifier: MIT */
/*
 * Safe paths beneath a destination: the checks every name from the peer
 * passes, the one directory-fd cache, and the --backup-dir root.
 *
 * Opening itself is the platform's (berth_plat_open_beneath(),
 * engine/platform/platform.h): how a name is resolved without leaving a
 * root or following a symlink is what differs between systems.  What is
 * here is the same on every system: which names are acceptable, which
 * parent fds are kept open and for how long, how a backup root is found.
 */
#ifndef BERTH_PATH_H
#define BERTH_PATH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------- names */

/*
 * Is @relpath acceptable as a name beneath a root?  Relative, not empty,
 * shorter than BERTH_PATH_MAX (PATH_MAX; 4096 on Windows too), no empty,
 * "." or ".." component, none longer than NAME_MAX.  Returns 0 or
 * -BERTH_EPATH.  Pure; any thread.
 */
int berth_path_check(const char *relpath);

/*
 * Check and split @relpath: *dirlen is the length of its parent part (0
 * for a name in the root), *base points at its last component.  Returns 0
 * or -BERTH_EPATH.
 */
int berth_path_split(const char *relpath, size_t *dirlen, const char **base);

/* True when the first @alen bytes of @a and the first @blen of @b name
 * the same path or one is an ancestor of the other ("" is everything's). */
int berth_path_overlap(const char *a, size_t alen, const char *b, size_t blen);

/* -------------------------------------------------------- backup root */

/*
 * Open the --backup-dir root @dir as an O_PATH directory fd, creating
 * what is missing of it (mode 0777 less the umask), as rsync does.
 *
 * A relative @dir is resolved beneath @root_fd (the destination) one
 * component at a time with berth_plat_open_beneath(): no component may be
 * a symlink (-ELOOP) or "..", so it cannot lead out of the destination.
 * An absolute @dir is the user's own choice and is opened as given
 * (symlinks in it followed): open it once, at the start of the session,
 * not again for every file.
 *
 * Returns the fd (the caller closes it) or -errno (-ENAMETOOLONG for a
 * component longer than NAME_MAX).
 */
int berth_path_backup_root(int root_fd, const char *dir);

/*
 * What exists of the absolute directory @dir, opened as open(2) would
 * (symlinks followed): an O_PATH fd of its deepest existing directory,
 * and in *@rest the part of @dir below it (relative; "" when all of it
 * exists), for berth_path_backup_root(fd, *rest) to make on first use.
 * Returns the fd or -errno (a component that exists but cannot be
 * opened as a directory).
 */
int berth_path_open_prefix(const char *dir, const char **rest);

/* ----------------------------------------------------- directory fds */

/*
 * The directory-fd cache: open directory fds kept by (root, relative
 * path), a hash plus an LRU list of the unreferenced ones; at most `max`
 * entries are kept once unreferenced.  An entry is referenced while
 * someone uses its fd (berth_dircache_hold/put), and is closed only when
 * unreferenced.
 *
 * Threads: none of its own and no lock.  A cache belongs to one thread
 * (the commit thread, the generator thread), which alone calls into it.
 *
 * Two ways to use it:
 *  - synchronous (the generator): berth_dircache_get_fd() opens with
 *    berth_plat_open_beneath() on a miss; eviction closes the fd.
 *  - asynchronous (the commit stage, which opens through the pump): look
 *    up with berth_dircache_find(); on a miss berth_dircache_add() an
 *    OPENING entry, open it, and set e->fd and e->state = READY (or
 *    berth_dircache_forget() + berth_dircache_ent_free() it on failure).
 *    Eviction calls the owner's evict callback, which closes the fd when it
 *    likes and then berth_dircache_ent_free()s the entry.
 *
 * Owners extend an entry by embedding struct berth_dirent first in their
 * own struct and passing its size to berth_dircache_init().
 */
enum berth_dirent_state {
	BERTH_DIRENT_OPENING, /* added, fd not there yet */
	BERTH_DIRENT_READY,
	BERTH_DIRENT_CLOSING, /* out of the cache, evict callback has it */
};

struct berth_dirent {
	struct berth_dirent *hnext; /* hash chain */
	struct berth_dirent *lru_prev, *lru_next; /* unreferenced, ready */
	char *path; /* NUL-terminated; "." for the root itself */
	size_t len; /* of the relative path: 0 for the root */
	uint32_t hash;
	int root; /* which root it is beneath (the owner's numbering) */
	int fd; /* -1 until opened */
	int state; /* enum berth_dirent_state */
	int in_hash; /* 0 once evicted, invalidated or forgotten */
	int in_lru;
	unsigned refs;
};

struct berth_dircache;

/* Called with an unreferenced entry that has left the cache (state
 * CLOSING): close e->fd, then berth_dircache_ent_free(). */
typedef void (*berth_dircache_evict_cb)(struct berth_dircache *dc,
					struct berth_dirent *e);

/* How berth_dircache_get_fd() opens a directory on a miss: an fd or
 * -errno (default: berth_plat_open_beneath()). */
typedef int (*berth_dircache_open_fn)(void *arg, int root_fd, const char *path,
				      int flags);

#define BERTH_DIRCACHE_BUCKETS 256

struct berth_dircache {
	struct berth_dirent *buckets[BERTH_DIRCACHE_BUCKETS];
	struct berth_dirent *lru_head, *lru_tail;
	unsigned max; /* unreferenced entries kept */
	unsigned ncached; /* entries in the hash */
	unsigned nalive; /* entries not freed yet (cached or closing) */
	size_t entsize;
	berth_dircache_evict_cb evict;
	void *arg; /* the owner's, for its callback */
	berth_dircache_open_fn open; /* NULL: the platform's open beneath */
	void *open_arg;
};

/*
 * Set up @dc (caller's storage).  @entsize: the size of the owner's entry
 * struct (struct berth_dirent first in it), at least sizeof(struct
 * berth_dirent).  @evict NULL means: close the fd and free right away.
 */
void berth_dircache_init(struct berth_dircache *dc, unsigned max,
			 size_t entsize, berth_dircache_evict_cb evict,
			 void *arg);

/* Open directories on a miss of berth_dircache_get_fd() with @fn (for an
 * owner whose opens must meet its own fault injection). */
void berth_dircache_set_open(struct berth_dircache *dc,
			     berth_dircache_open_fn fn, void *arg);

/* Free every entry left, closing the fds that are open, without calling
 * the evict callback (for after the owner's I/O has stopped). */
void berth_dircache_destroy(struct berth_dircache *dc);

/*
 * Synchronous lookup: an fd of directory @path (@len bytes of it, not
 * NUL-terminated; 0 is the root itself, opened as ".") beneath @root_fd,
 * opened with berth_plat_open_beneath(root_fd, path, @flags | O_DIRECTORY)
 * on a miss (O_PATH for lookups only).  @root tells roots apart in one
 * cache (0 when there is one).  The fd is borrowed: valid until the next
 * call on @dc that may evict (get_fd, put, trim, invalidate).  Returns
 * the fd or -errno.
 */
int berth_dircache_get_fd(struct berth_dircache *dc, int root_fd, int root,
			  const char *path, size_t len, int flags);

/* The entry of (@root, @path) in the cache, OPENING or READY, or NULL.
 * Takes no reference. */
struct berth_dirent *berth_dircache_find(struct berth_dircache *dc, int root,
					 const char *path, size_t len);

/*
 * A new OPENING entry for (@root, @path), in the hash, unreferenced, fd
 * -1; NULL when out of memory.  Does not trim: call berth_dircache_trim()
 * once the open is under way.
 */
struct berth_dirent *berth_dircache_add(struct berth_dircache *dc, int root,
					const char *path, size_t len);

/* Take a reference on a READY entry (it leaves the LRU list). */
void berth_dircache_hold(struct berth_dircache *dc, struct berth_dirent *e);

/* Drop a reference: unreferenced, the entry goes to the LRU list, or to
 * the evict callback if it has left the cache meanwhile. */
void berth_dircache_put(struct berth_dircache *dc, struct berth_dirent *e);

/* Evict unreferenced entries, oldest first, down to `max`. */
void berth_dircache_trim(struct berth_dircache *dc);

/* Take @e out of the hash (its open failed); berth_dircache_ent_free()
 * it when its waiters are done with it. */
void berth_dircache_forget(struct berth_dircache *dc, struct berth_dirent *e);

/* Free an entry out of the cache (its fd closed or never opened). */
void berth_dircache_ent_free(struct berth_dircache *dc, struct berth_dirent *e);

/*
 * A directory at @path (@len bytes) was removed or renamed: READY entries
 * at or below it, under any root, leave the cache (evicted now if
 * unreferenced, when put otherwise).  OPENING ones stay: their waiters
 * hold them.
 */
void berth_dircache_invalidate(struct berth_dircache *dc, const char *path,
			       size_t len);

/* Evict every unreferenced READY entry (shutdown). */
void berth_dircache_evict_all(struct berth_dircache *dc);

/* Iterate over the entries in the hash: pass NULL first, then the last
 * entry returned.  The callee may hold/put entries but not remove them. */
struct berth_dirent *berth_dircache_next(struct berth_dircache *dc,
					 struct berth_dirent *e);

#endif /* BERTH_PATH_H */
