/* SPDX-License-Identifier: MIT */
/*
 * Internals of the disk-commit stage, shared by commit_core.c (completion
 * hand-off, submit, events, queue, buffers, slots, names: used by all the
 * others, calling none of them), commit_thread.c (the thread's loop,
 * create, flush, cancel, free), commit_path.c (the parent-directory cache
 * over engine/path's, opened and closed through the pump), commit_file.c
 * (a file handle, producer side), commit_steps.c (a file's steps on the
 * commit thread), commit_small.c (the small-file call), commit_xattr.c
 * (extended attributes) and commit_ops.c (tree operations).
 *
 * Threads: producer threads touch only the fields marked "producer" and,
 * under c->lock, those marked "lock".  Everything else belongs to the commit
 * thread.  Pump callbacks (pump thread) only push onto c->comp (lock-free)
 * and wake the commit thread, under c->lock, when c->sleeping says so.
 *
 * Locking: c->lock is a leaf, never held while calling into the pump or
 * an event callback.
 */
#ifndef BERTH_COMMIT_INT_H
#define BERTH_COMMIT_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "engine/commit/commit.h"
#include "engine/path/path.h"
#include "engine/platform/platform.h"
#include "engine/pump/pump.h"

#define commit_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* openat2 resolve flags for every name beneath the root. */
#define COMMIT_RESOLVE BERTH_PLAT_RESOLVE

struct berth_commit;

/* One pump request plus its completion hand-off to the commit thread. */
struct commit_io {
	struct berth_req req;
	ssize_t res;
	struct commit_io *next; /* c->comp list */
	void (*done)(struct berth_commit *c, struct commit_io *io);
};

enum commit_cmd_kind {
	CMD_BEGIN,
	CMD_WRITE,
	CMD_END, /* finish or abort (file->abort_req) */
	CMD_OP,
	CMD_FLUSH,
};

/* A queued command; embedded in the buffer, file, op or flush record. */
struct commit_cmd {
	struct commit_cmd *next;
	int kind;
};

/* Position in the flush ordering: items started and not yet done. */
struct commit_track {
	struct commit_track *prev, *next;
	uint64_t seq;
};

/* A write buffer: recycled through c->free_bufs. */
/* Buffers per vectored write (one write in flight per file). */
#define COMMIT_WRITE_IOV 16
/* Full buffers the producer gathers before it queues them as one command
 * (and so one write): a quarter of the commit thread's wake-ups and of the
 * pump's and io-wq's for a file streamed in. */
#define COMMIT_WRITE_HOLD 4

struct commit_buf {
	struct commit_cmd cmd; /* CMD_WRITE */
	struct commit_io io;
	struct berth_commit_file *file;
	struct commit_buf *next; /* free list / file pending list */
	uint64_t off;
	size_t len;
	char *data;
};

struct commit_dir;

/*
 * Giving one item its extended attributes (commit_xattr.c): list what it
 * has, set what it must have, remove the rest.  A chain of pump requests
 * on one fd; a failing attribute is reported (EV_XATTR) and the chain goes
 * on; @done runs on the commit thread when it is over.
 */
struct commit_xattr_job {
	struct commit_io io;
	const struct berth_commit_xattrs *want; /* borrowed */
	const char *path; /* for events; borrowed */
	void *user;
	uint64_t tag;
	int fd;
	int step;
	int tries;
	uint32_t i; /* next wanted attribute to set */
	size_t off; /* next name of the list to look at */
	char *names; /* the item's attribute names, NUL-separated */
	size_t names_len, names_cap;
	void (*done)(struct berth_commit *c, struct commit_xattr_job *j);
};

/*
 * The mode step of an item when it carries more than its mode bits (-A
 * ACLs, --fake-super): one pool call (berth__commit_mode_run()) on the
 * item @fd, or on @name (one component, never followed) beneath @dirfd,
 * or on @dirfd itself when @name is NULL.
 */
struct commit_mode_job {
	const struct berth_commit *c;
	const struct berth_commit_meta *m;
	int fd, dirfd;
	const char *name;
};

/* Someone waiting for a parent directory fd. */
struct commit_waiter {
	struct commit_waiter *next;
	void (*ready)(struct berth_commit *c, struct commit_waiter *w,
		      struct commit_dir *d, int err);
};

/*
 * A cached directory fd, keyed by its relative path ("" is the root): an
 * entry of c->dcache (e.root: 1 beneath the --backup-dir root, 0 beneath
 * the destination), opened and closed through the pump.
 */
struct commit_dir {
	struct berth_dirent e; /* first: the cache allocates commit_dirs */
	int dirty; /* batch: entries changed since its last fsync */
	struct open_how how;
	struct commit_io io;
	struct commit_waiter *waiters;
};

enum commit_file_state {
	F_RESOLVE, /* waiting for the parent directory */
	F_OPEN,
	F_ALLOC, /* --preallocate: fallocate to the expected size */
	F_WRITE,
	F_TRUNC,
	F_CHOWN,
	F_XATTR, /* extended attributes (meta.xattrs) */
	F_CHMOD,
	F_TIMES,
	F_FSYNC,
	F_CLOSE,
	F_MKSUB, /* finish_sub: mkdir the subdirectory (EEXIST is fine) */
	F_SUBDIR, /* finish_sub: its fd from the directory cache */
	F_BAKDIR, /* --backup-dir: the backup directory's fd */
	F_BACKUP, /* the old file becomes NAME + suffix (--backup) */
	F_RENAME,
	F_DONE,
	F_CLEAN_CLOSE,
	F_CLEAN_UNLINK,
	F_SMALL, /* small file: waiting for its end, or the pool call runs */
};

struct berth_commit_file {
	struct berth_commit *c;
	/* producer */
	struct commit_buf *cur;
	struct commit_buf *held, **heldt; /* full, not yet queued */
	unsigned nheld;
	uint64_t pos;
	/* shared */
	unsigned nbuf; /* lock: pool buffers taken and not yet back */
	bool cap_wait; /* lock: its producer waits for them (file_cap) */
	atomic_int err;
	int refs; /* lock: producer + stage */
	int abort_req; /* set by producer before CMD_END is queued */
	struct berth_commit_file *all_prev, *all_next; /* lock */
	/*
	 * Small files: a file expected to fit one buffer is not begun on the
	 * commit thread until it ends; then one blocking call on the commit
	 * thread creates, writes, sets up and renames it
	 * (berth__commit_small_run(), commit_small.c), instead of a request
	 * per step.  deferred: producer; begin_queued: lock; small, sbuf,
	 * pre_abort: set by the producer before CMD_BEGIN is queued.
	 */
	int deferred;
	int begin_queued;
	int small;
	int pre_abort;
	struct commit_buf *sbuf;
	/* commit thread */
	struct commit_cmd cmd_begin, cmd_end;
	struct commit_track track;
	struct commit_waiter wait;
	struct commit_io io;
	struct berth_commit_meta meta;
	struct commit_xattr_job xj;
	struct commit_mode_job mj;
	struct open_how how;
	struct timespec ts[2];
	struct commit_dir *dir;
	struct commit_dir *tdir; /* finish_sub: the rename's target dir */
	struct commit_dir *bdir; /* --backup-dir: where the old file goes */
	int bak_err; /* its open failed: fine only if there is no old file */
	struct statx bak_stx;
	char *sub; /* finish_sub: the subdirectory's relative path */
	const char *sub_base; /* its last component */
	struct commit_buf *pend, **pendt; /* chunks before the open */
	struct berth_commit_file *serial_next;
	struct berth_commit_file *cancel_next;
	char *path;
	const char *base;
	size_t dirlen;
	uint64_t tag;
	uint64_t size;
	unsigned flags;
	unsigned writes; /* write requests in flight: 0 or 1 */
	/* The buffers of the write in flight (chained by next) and its
	 * iovecs: one vectored write of the file's next pending buffers. */
	struct commit_buf *wbufs;
	struct iovec wiov[COMMIT_WRITE_IOV];
	int state;
	int fd;
	int tmp_made;
	int io_busy;
	int finishing;
	int failed;
	int fail_err;
	int fail_step; /* enum berth_commit_step of the first failure */
	int small_step; /* the small-file call: the step it is at */
	int serial_wait;
	/* Batch: in the group sync in flight (its call reads fd and sets
	 * gsync_res, a pool thread's field until the call is done); not
	 * covered by one, so its own fsync. */
	int gsync;
	int gsync_res;
	int own_fsync;
	int stage_done;
	int begun;
	int retries;
	char tmp[NAME_MAX + 1];
	char bak[NAME_MAX + 1]; /* --backup: the old file's new name */
};

/* --inplace or --append: written where it is, no temp file. */
static inline int commit_file_inplace(const struct berth_commit_file *f)
{
	return !!(f->flags & (BERTH_COMMIT_INPLACE | BERTH_COMMIT_APPEND));
}

enum commit_op_kind {
	OP_MKDIR = BERTH_COMMIT_OP_MKDIR,
	OP_SYMLINK = BERTH_COMMIT_OP_SYMLINK,
	OP_HARDLINK = BERTH_COMMIT_OP_HARDLINK,
	OP_MKNOD = BERTH_COMMIT_OP_MKNOD,
	OP_DELETE = BERTH_COMMIT_OP_DELETE,
	OP_DIR_META = BERTH_COMMIT_OP_DIR_META,
	/* owner/mode/times of a non-directory, by parent + name */
	OP_META = BERTH_COMMIT_OP_META,
	/* path2 replaces path (after a backup of path) */
	OP_RENAME = BERTH_COMMIT_OP_RENAME,
	/* extended attributes of an item, by parent + name */
	OP_XATTR = BERTH_COMMIT_OP_XATTR,
};

struct commit_op {
	struct commit_cmd cmd;
	struct commit_track track;
	struct commit_waiter wait, wait2;
	struct commit_io io;
	struct commit_op *prev, *next; /* c->ops: in flight */
	struct berth_commit_meta meta;
	struct commit_xattr_job xj;
	struct commit_mode_job mj;
	struct open_how how;
	int xfd; /* the item (O_PATH) for its extended attributes, or -1 */
	int xa_wperm; /* OP_XATTR: u+w added for the change (not root) */
	struct timespec ts[2];
	struct statx stx;
	struct commit_dir *dir, *dir2;
	char *path; /* relative path */
	const char *base;
	size_t dirlen;
	char *path2; /* symlink target, or hardlink source */
	int ext_fd; /* hardlink_at: the source's directory, or -1 */
	int bak; /* mkdir / dir_meta beneath the --backup-dir root */
	const char *base2;
	size_t dirlen2;
	uint64_t tag;
	dev_t dev;
	int kind;
	int is_dir;
	int state;
	int waiting;
	int err;
	int fail_step; /* enum berth_commit_step of op->err */
	int tmp_made;
	int retries;
	char tmp[NAME_MAX + 1];
	char bakname[NAME_MAX + 1]; /* S_BACKUP: the kept entry's name */
};

/* A flush or shutdown request; lives on the caller's stack. */
struct commit_flush {
	struct commit_cmd cmd;
	struct commit_flush *next;
	uint64_t target;
	int phase;
	int shutdown;
	int done; /* lock */
	int err;
};

struct berth_commit {
	struct berth_pump *pump;
	int root;
	struct berth_commit_opts o;
	berth_commit_event_cb cb;
	void *cb_arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* commit thread */
	pthread_cond_t space; /* producers waiting for budget */
	pthread_cond_t idle; /* flush / cancel waiters */

	/* lock */
	struct commit_cmd *qhead, **qtail;
	/* Completions, newest first (a lock-free stack the commit thread
	 * takes whole); sleeping: the commit thread waits on c->wake. */
	_Atomic(struct commit_io *) comp;
	atomic_bool sleeping;
	atomic_int pushers; /* threads in comp_push(): free waits for 0 */
	struct commit_buf *free_bufs;
	unsigned nfree; /* buffers on free_bufs */
	/* Producers waiting on c->space for a buffer, a file slot or an
	 * operation slot, and a wake-up the commit thread owes them
	 * (berth__commit_space_due()). */
	unsigned wait_buf, wait_file, wait_op;
	int space_owed;
	struct berth_commit_file *all;
	unsigned nfiles, nops;
	int cancelled;
	int cancel_done;
	int exit;
	uint64_t next_tag;
	struct berth_commit_stats st;

	/* commit thread */
	int cancelling; /* cancel seen by the thread */
	int stalled; /* head command waits for an overlapping op */
	struct berth_dircache dcache; /* dcache.nalive: open, cached or
					 closing */
	struct commit_track track; /* list head */
	uint64_t seq;
	struct commit_op *ops;
	/* Files at their fsync step waiting: durability file's for the one
	 * token (serial_busy), batch's for the next group sync
	 * (commit_steps.c): the call in flight covers gsync_files (NULL:
	 * none in flight), chained by serial_next; gsync_off once the file
	 * system turned out to have no trusted syncfs(). */
	struct berth_commit_file *serial_head, **serial_tail;
	int serial_busy;
	struct commit_io gsync_io;
	struct berth_commit_file *gsync_files;
	int gsync_off;
	struct commit_flush *flush_head, **flush_tail;
	unsigned inflight;
	unsigned dirsyncs;
	int err_since_flush;
	uint64_t rng;
	atomic_int bak_root; /* berth_commit_set_backup_dir(), or -1 */
	char *bufmem;
	struct commit_buf *bufs;
	unsigned nbufs;
	unsigned file_cap; /* buffers one file may hold: half of them */
};

/*
 * Budget came back (a buffer or a slot): true when the producers waiting
 * on c->space are to be woken now (the caller broadcasts it after
 * unlocking, so they do not wake into a held lock).  On the commit thread
 * only once a batch is free (a quarter of the buffers, or of the slots a
 * producer waits for): one wake-up per batch instead of one per file; what
 * it holds back it owes, and pays before it sleeps (commit_main()).  Other
 * threads wake them at once.  c->lock held.
 */
int berth__commit_space_due(struct berth_commit *c);

/* Where @f's temp lives: beside it, or in the --temp-dir. */
static inline int commit_tmp_dirfd(const struct berth_commit *c,
				   const struct berth_commit_file *f)
{
	return c->o.use_temp_dir ? c->o.temp_dirfd : f->dir->e.fd;
}

/* commit_core.c */
/* Commit thread: every completion handed over so far, oldest first. */
struct commit_io *berth__commit_comp_take(struct berth_commit *c);
void berth__commit_submit(struct berth_commit *c, struct commit_io *io,
			  void (*done)(struct berth_commit *,
				       struct commit_io *),
			  uint64_t tag);
/* Run @io's request here as a blocking call, then @done (commit_core.c:
 * short calls only); submitted as above once the pump is shut down. */
void berth__commit_run_here(struct berth_commit *c, struct commit_io *io,
			    void (*done)(struct berth_commit *,
					 struct commit_io *),
			    uint64_t tag);
/* Report one item's outcome (@ev->kind, err, path, user and, on failure,
 * what failed) and count it. */
void berth__commit_event(struct berth_commit *c, struct berth_commit_event *ev);
void berth__commit_buf_put(struct berth_commit *c, struct commit_buf *b);
/* berth__commit_buf_put() each of a chain of buffers (linked by next). */
void berth__commit_buf_put_chain(struct berth_commit *c, struct commit_buf *b);
void berth__commit_track_add(struct berth_commit *c, struct commit_track *t);
void berth__commit_track_del(struct commit_track *t);
void berth__commit_tmpname(struct berth_commit *c, const char *base, char *out);
/* --backup: @base + suffix into @out (NAME_MAX + 1); -ENAMETOOLONG if longer. */
int berth__commit_bakname(const struct berth_commit *c, const char *base,
			  char *out);
int berth__commit_enqueue(struct berth_commit *c, struct commit_cmd *cmd);
void berth__commit_enqueue_locked(struct berth_commit *c,
				  struct commit_cmd *cmd);
/*
 * Take a write buffer for @f, waiting while none is free or @f holds
 * file_cap of them (unless @nowait).  NULL after cancel, or when @nowait
 * and none may be taken.  Producer threads.
 */
struct commit_buf *berth__commit_buf_get(struct berth_commit *c,
					 struct berth_commit_file *f,
					 int nowait);
uint64_t berth__commit_slot_get(struct berth_commit *c, int is_file);
void berth__commit_slot_put(struct berth_commit *c, int is_file);
int berth__commit_chown_result(struct berth_commit *c, int res);
/* The times @m asks for, as utimensat(2) takes them: false when both are
 * left alone (no call to make). */
bool berth__commit_times(const struct berth_commit_meta *m,
			 struct timespec ts[2]);
/* Queue @f's CMD_BEGIN once (c->lock held). */
void berth__commit_queue_begin_locked(struct berth_commit *c,
				      struct berth_commit_file *f);

/* commit_path.c */
void berth__commit_dirs_init(struct berth_commit *c);
int berth__commit_dir_get(struct berth_commit *c, const char *path, size_t len,
			  int bak, struct commit_waiter *w);
void berth__commit_dir_put(struct berth_commit *c, struct commit_dir *d);
void berth__commit_dir_invalidate(struct berth_commit *c, const char *path,
				  size_t len);
void berth__commit_dir_sync_all(struct berth_commit *c);
void berth__commit_dir_evict_all(struct berth_commit *c);
void berth__commit_dirs_free(struct berth_commit *c);

/* commit_file.c */
/* Drop one of @f's two references; the last frees it. */
void berth__commit_file_unref(struct berth_commit *c,
			      struct berth_commit_file *f);

/* commit_steps.c: commit thread */
/* Handle CMD_BEGIN, CMD_WRITE or CMD_END. */
void berth__commit_file_cmd(struct berth_commit *c, struct commit_cmd *cmd);
/* Fail @f with -BERTH_ECANCELLED and move it on to its cleanup. */
void berth__commit_file_cancel(struct berth_commit *c,
			       struct berth_commit_file *f);

/* commit_small.c */
/*
 * Pool thread (berth_prep_call()): create, write, set up and rename small
 * file @arg in one go.  0 or -errno; on failure the temp file is gone.
 */
ssize_t berth__commit_small_run(void *arg);

/* commit_xattr.c */
void berth__commit_xattr_run(struct berth_commit *c, struct commit_xattr_job *j,
			     int fd,
			     void (*done)(struct berth_commit *,
					  struct commit_xattr_job *));
void berth__commit_xattr_release(struct commit_xattr_job *j);

/* commit_acl.c */
/* Does @m need berth__commit_mode_run() rather than a plain chmod? */
bool berth__commit_mode_special(const struct berth_commit *c,
				const struct berth_commit_meta *m);
/* Pool thread (berth_prep_call()): the mode of job @arg with its ACLs,
 * or --fake-super's attributes.  0 or -errno. */
ssize_t berth__commit_mode_run(void *arg);
/* The same on item @fd (any kind of fd); any thread. */
int berth__commit_mode_fd(const struct berth_commit *c, int fd,
			  const struct berth_commit_meta *m);
/* The ACLs of @m on the item at @path (/proc/self/fd/N), and the mode. */
int berth__commit_acl_apply(const char *path, const struct berth_commit_meta *m,
			    uint32_t cur_mode, bool is_dir, bool fake_super);

/* commit_fake.c */
/* --fake-super: owner, type and special bits into user.rsync.%stat, the
 * real mode made usable by the owner (rsync's set_stat_xattr). */
int berth__commit_fake_stat(const char *path, const struct berth_commit_meta *m,
			    const struct stat *real);

/* commit_ops.c */
void berth__commit_op_start(struct berth_commit *c, struct commit_op *op);
void berth__commit_op_free(struct commit_op *op);

#endif /* BERTH_COMMIT_INT_H */
