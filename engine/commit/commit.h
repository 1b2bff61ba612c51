/* SPDX-License-Identifier: MIT */
/*
 * The disk-commit stage: the one thread that writes file data and changes
 * the destination tree.  Internal API (not in include/berth.h).
 *
 * Callers (the session's net-in and generator threads) hand it files as
 * begin / write* / finish-or-abort, and tree operations (mkdir, symlink,
 * hard link, mknod, delete, directory metadata).  The stage's own thread
 * turns them into pump requests: every destination change goes through the
 * shared pump, every name is resolved beneath one destination directory fd
 * with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS).
 *
 * A file is written to a temp file beside its final name (".NAME.XXXXXX"),
 * gets its metadata, is fsynced per the durability mode and renamed into
 * place: the final name holds the old content or the complete new content,
 * never a partial file.  On any error the temp file is removed and the error
 * is reported through the event callback with the path.
 *
 * Ordering: commands are started in the order they were queued (one queue
 * for all caller threads).  A command whose path overlaps (equal, ancestor or
 * descendant) that of an operation still in flight waits for it, so
 * "mkdir a" then "begin a/x" works, as does "delete x" then "begin x".  An
 * operation also waits for finished (finish/abort called) files with an
 * overlapping path, so "finish a/f" then "hardlink b -> a/f" or "delete
 * a/f" works; it does not wait for files still being written.  Files
 * complete in any order; berth_commit_flush() is the barrier.
 *
 * Parent directories are opened with RESOLVE_NO_SYMLINKS: a destination
 * whose subdirectories are symlinks (rsync --keep-dirlinks) is refused.
 *
 * Memory is bounded: file_write() copies into the stage's recycled buffers
 * and blocks while all are in use; begin and the tree operations block while
 * the configured number of files / operations are in flight.
 */
#ifndef BERTH_COMMIT_H
#define BERTH_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "berth.h"

struct berth_pump;
struct berth_commit;
struct berth_commit_file;

/* enum berth_durability: see include/berth.h */

/*
 * The durability a session's commit stage runs with: @configured (the
 * embedder's berth_session_opts.durability, BERTH_DURABILITY for the
 * program) when it is not BERTH_DURABLE_NONE, else BERTH_DURABLE_BATCH if
 * the client sent --fsync (@client_fsync), else none.  Batch keeps what
 * rsync's --fsync promises (each file's data on disk before its rename)
 * and adds the directories' fsyncs before the session reports success;
 * BERTH_DURABLE_FILE, one fsync at a time, only when configured.  Pure;
 * any thread.
 */
int berth_commit_durability(int configured, bool client_fsync);

struct berth_commit_opts {
	int durability; /* enum berth_durability */
	int preserve_owner; /* chown files to meta uid/gid (EPERM ignored) */
	size_t buf_size; /* bytes per write buffer, default 64 KiB */
	size_t mem_budget; /* bytes of write buffers, default 16 MiB */
	unsigned max_files; /* files begun and not yet done, default 256 */
	unsigned max_ops; /* tree operations in flight, default 256 */
	unsigned dir_cache; /* cached parent-directory fds, default 64 */
	/* Pump tags: the n-th file or operation begun (1-based, one counter
	 * for both) gets tag_base + n; directory requests (open, fsync,
	 * close) get tag_base itself. */
	uint64_t tag_base;
	/* --backup: a replaced or deleted non-directory is renamed to its
	 * name + this suffix (NULL: no backups).  Borrowed. */
	const char *backup_suffix;
	/* --temp-dir: temp files live in this directory (borrowed fd, valid
	 * while the stage lives) and are renamed across into place; it must
	 * be on the destination's filesystem (else the file fails, EXDEV). */
	bool use_temp_dir;
	int temp_dirfd;
	/* --backup-dir: backups go to the same relative directory beneath
	 * the backup root (berth_commit_set_backup_dir()), which the caller
	 * has created (berth_commit_backup_mkdir()) before anything that
	 * backs up a file there is queued. */
	bool use_backup_dir;
	/* --fake-super: no chown; ownership, the type of a device or
	 * special (made as a plain file), special mode bits and ACLs are
	 * kept in user.rsync.%stat / %aacl / %dacl (commit_fake.c). */
	bool fake_super;
};

/*
 * -A: one POSIX ACL as rsync keeps it (its acls.c rsync_acl): the four
 * object entries (0-7, or BERTH_COMMIT_ACL_NONE when absent: left to the
 * mode) and the named entries, each an id and its access bits (rwx, with
 * BERTH_COMMIT_ACL_USER for a user).
 */
#define BERTH_COMMIT_ACL_NONE 0x80u
#define BERTH_COMMIT_ACL_USER (1u << 31)

struct berth_commit_acl_ida {
	uint32_t id;
	uint32_t access;
};

struct berth_commit_racl {
	uint8_t user_obj, group_obj, mask_obj, other_obj;
	uint32_t count;
	struct berth_commit_acl_ida *idas;
};

/* One extended attribute an item must have. */
struct berth_commit_xattr {
	const char *name; /* NUL-terminated */
	const void *value; /* NULL: keep what the item has (neither set nor
			    * removed) */
	uint32_t len;
};

/*
 * The complete set of extended attributes an item must end up with: each
 * listed attribute with a value is set, and each attribute the item has
 * that is not listed is removed -- within the namespaces in reach: only
 * "user." with @user_only, else all but "system." (the ACLs' business, as
 * rsync has it).  One allocation, released with free(); a function that
 * takes one owns it from the call on, also when it fails.
 */
struct berth_commit_xattrs {
	uint32_t count;
	bool user_only;
	/* When set, in place of the namespaces: is @name in reach?
	 * (xattr filter rules; called on the commit thread, @reach_arg
	 * valid while the stage lives.) */
	bool (*reach)(const void *reach_arg, const char *name);
	const void *reach_arg;
	struct berth_commit_xattr items[];
};

/* What a file or node should look like once committed. */
struct berth_commit_meta {
	uint32_t mode; /* permission bits (07777) applied with fchmod;
			       * for mkdir/mknod also the type bits */
	int64_t mtime_sec; /* modification time; atime is set to it too,
			    * unless @atime_set */
	uint32_t mtime_nsec; /* UTIME_OMIT leaves the mtime alone (and the
			      * atime, unless @atime_set) */
	/* -U: the access time to set (whole seconds, as rsync sends it),
	 * also when the mtime is left alone. */
	bool atime_set;
	int64_t atime_sec;
	uint32_t uid, gid; /* with opts.preserve_owner; -1 leaves one */
	/* dir_meta, set_meta: the mode is right already, no chmod (as rsync
	 * changes only what differs; ACLs and --fake-super still go). */
	bool mode_kept;
	uint64_t size_hint; /* expected size (0: unknown); informational */
	void *user; /* returned in the events for this item */
	/* file_begin, symlink, mknod: the new item's extended attributes,
	 * set after the owner and before the mode, before the item takes
	 * its name (temp file or node).  Taken by the stage; NULL: none.
	 * The other operations ignore it (and do not take it). */
	struct berth_commit_xattrs *xattrs;
	/* symlink, mknod: a non-directory stands at the name (the caller
	 * checked); with opts.backup_suffix it is kept as NAME + suffix (in
	 * the --backup-dir when set) before the new item takes its name. */
	int backup;
	/* -A: the access ACL (non-symlinks) and default ACL (directories)
	 * the item gets with its mode, set where they differ (rsync's
	 * set_acl); borrowed, valid while the stage lives; NULL: left as
	 * they are.  Applied by file_begin, mknod, dir_meta and set_meta. */
	const struct berth_commit_racl *acl[2];
	/* --fake-super: the source's file type and device numbers, for
	 * user.rsync.%stat. */
	uint32_t ftype;
	uint32_t rdev_major, rdev_minor;
};

/* Flags for berth_commit_file_begin(). */
#define BERTH_COMMIT_INPLACE \
	1u /* write the final name directly
				 * (--inplace): no temp, no atomicity */
/* Preallocate the expected size (meta.size_hint) before writing; the file
 * is truncated to what was written at the end (--preallocate). */
#define BERTH_COMMIT_PREALLOCATE 4u
/* Allow berth_commit_file_skip() on a temp file too: skipped ranges stay
 * holes, and the file gets its final size at the end (--sparse). */
#define BERTH_COMMIT_SPARSE 8u
#define BERTH_COMMIT_APPEND \
	2u /* like INPLACE, writes start at
				 * berth_commit_file_skip() offset and the file
				 * is not truncated before writing (--append) */

enum berth_commit_event_kind {
	BERTH_COMMIT_EV_FILE, /* a file was committed, aborted or failed */
	BERTH_COMMIT_EV_OP, /* a tree operation finished or failed */
	BERTH_COMMIT_EV_DIRSYNC, /* a directory fsync failed (batch mode) */
	BERTH_COMMIT_EV_XATTR, /* one extended attribute could not be
				* listed, set or removed; the item goes on */
};

/* EV_XATTR: which call failed. */
enum berth_commit_xattr_op {
	BERTH_COMMIT_XATTR_LIST,
	BERTH_COMMIT_XATTR_SET,
	BERTH_COMMIT_XATTR_REMOVE,
};

/* EV_OP: which operation (berth_commit_mkdir() ... ). */
enum berth_commit_op_kind {
	BERTH_COMMIT_OP_MKDIR,
	BERTH_COMMIT_OP_SYMLINK,
	BERTH_COMMIT_OP_HARDLINK,
	BERTH_COMMIT_OP_MKNOD,
	BERTH_COMMIT_OP_DELETE,
	BERTH_COMMIT_OP_DIR_META,
	BERTH_COMMIT_OP_META,
	BERTH_COMMIT_OP_RENAME,
	BERTH_COMMIT_OP_XATTR,
};

/* A failed file or operation: the step that failed, so that the caller
 * can word it (rsync names the call: mkstemp, rename, chmod...). */
enum berth_commit_step {
	BERTH_COMMIT_STEP_NONE, /* success, a cancel, or not known */
	BERTH_COMMIT_STEP_DIR, /* its parent directory could not be opened */
	BERTH_COMMIT_STEP_OPEN, /* the temp file (in place: the file) */
	BERTH_COMMIT_STEP_WRITE, /* write, truncate, preallocate */
	BERTH_COMMIT_STEP_FSYNC,
	BERTH_COMMIT_STEP_CLOSE,
	BERTH_COMMIT_STEP_CHOWN,
	BERTH_COMMIT_STEP_CHMOD,
	BERTH_COMMIT_STEP_TIMES,
	BERTH_COMMIT_STEP_BACKUP, /* the old entry kept as its backup */
	BERTH_COMMIT_STEP_RENAME, /* the temp name onto the final one */
	BERTH_COMMIT_STEP_MKDIR,
	BERTH_COMMIT_STEP_CREATE, /* symlink, hard link or node */
	BERTH_COMMIT_STEP_DELETE,
	BERTH_COMMIT_STEP_XATTR,
};

struct berth_commit_event {
	int kind; /* enum berth_commit_event_kind */
	int err; /* 0, -errno, or -BERTH_ECANCELLED for aborts */
	const char *path; /* relative path; valid during the callback only */
	void *user; /* meta.user of the item (NULL for DIRSYNC) */
	const char *xattr; /* EV_XATTR: the attribute (NULL when listing) */
	int xattr_op; /* EV_XATTR: enum berth_commit_xattr_op */
	int op; /* EV_OP: enum berth_commit_op_kind */
	int step; /* on failure: enum berth_commit_step */
	/* On failure, valid during the callback only: the temp name (its
	 * last component) where one was made or tried, else NULL; whether
	 * it lies in the --temp-dir; EV_OP: a symlink's target or a hard
	 * link's source (relative path), else NULL; DELETE: a directory. */
	const char *tmp;
	int tmp_in_temp_dir;
	int inplace; /* EV_FILE: written in place (no temp file) */
	const char *target;
	int is_dir;
};

/*
 * Called on the commit thread for every file and operation when it is done.
 * It must be short and must not call blocking functions of this stage.
 */
typedef void (*berth_commit_event_cb)(void *arg,
				      const struct berth_commit_event *ev);

/*
 * Create a commit stage on @pump writing beneath @root_dirfd (borrowed: the
 * caller keeps it open until berth_commit_free() returns) and start its
 * thread.  @opts may be NULL for defaults.  @cb may be NULL.  Returns 0 and
 * the stage in *out, or -errno.  Any thread.
 */
int berth_commit_create(struct berth_pump *pump, int root_dirfd,
			const struct berth_commit_opts *opts,
			berth_commit_event_cb cb, void *cb_arg,
			struct berth_commit **out);

/*
 * Wait for every item queued so far to complete (files that were finished
 * or aborted, and operations), then, in batch mode, fsync every directory
 * touched since the last flush.  Files begun but not yet finished are not
 * waited for.  Returns 0 or the first error of an item completed since the
 * previous flush (also reported by event).  Any caller thread, not the
 * commit thread (-EDEADLK).
 */
int berth_commit_flush(struct berth_commit *c);

/*
 * Abort everything: queued and in-flight files are aborted (temp files
 * removed, events with -BERTH_ECANCELLED), queued operations are dropped,
 * and every pump request the stage issued has completed before this
 * returns.  Later calls return -BERTH_ECANCELLED, except finish/abort which
 * still release their handle.  Idempotent.  Returns 0, or -EDEADLK from
 * the commit thread.
 */
int berth_commit_cancel(struct berth_commit *c);

/*
 * Drain (as flush), abort files never finished, close cached directories,
 * stop the thread and free.  Handles still held become invalid.  NULL is a
 * no-op.  Not from the commit thread.
 */
void berth_commit_free(struct berth_commit *c);

/*
 * Begin a file at @relpath (copied).  @meta is copied.  Returns 0 and a
 * handle in *out that the caller owns until it passes it to
 * berth_commit_file_finish() or _abort(); -BERTH_EPATH for an unsafe name
 * (absolute, "..", ".", empty or over-long component), -BERTH_ECANCELLED
 * after cancel, -ENOMEM.  Blocks while opts.max_files files are in flight.
 * One thread at a time per handle.
 */
int berth_commit_file_begin(struct berth_commit *c, const char *relpath,
			    const struct berth_commit_meta *meta,
			    unsigned flags, struct berth_commit_file **out);

/*
 * Append @len bytes at the file's current position.  The data is copied;
 * @buf is free again on return.  Blocks while the memory budget is full.
 * Returns 0, or the file's error if it already failed (its remaining data
 * may be dropped; the handle must still be finished or aborted), or
 * -BERTH_ECANCELLED.
 */
int berth_commit_file_write(struct berth_commit_file *f, const void *buf,
			    size_t len);

/*
 * Like berth_commit_file_write() but never blocks: copies what fits in
 * free buffers.  Returns the bytes taken (> 0; fewer than @len when the
 * budget filled up), -EAGAIN when none fit, or an error as _write().
 */
ssize_t berth_commit_file_try_write(struct berth_commit_file *f,
				    const void *buf, size_t len);

/*
 * Advance the position by @len without writing (in-place/append files:
 * data already there).  Returns 0, or -EINVAL for a temp-file write.
 */
int berth_commit_file_skip(struct berth_commit_file *f, uint64_t len);

/* The pump tag of this file's requests (for fault injection). */
uint64_t berth_commit_file_tag(const struct berth_commit_file *f);

/*
 * Commit the file: the size is the final position.  The handle is released
 * (do not use it again).  Returns 0 when queued, or the file's error known
 * so far; the outcome comes by event.
 */
int berth_commit_file_finish(struct berth_commit_file *f);

/*
 * berth_commit_file_finish_flags() and _finish_sub() flags.  NO_TIMES
 * leaves the mtime alone: the data is not the sender's file (a partial
 * file, or one that failed verification).  ZERO_TIME sets it to the epoch
 * instead: a cut-short file kept under its final name stands out and is
 * not taken for a newer one (--update).
 */
#define BERTH_COMMIT_NO_TIMES 1u
#define BERTH_COMMIT_ZERO_TIME 2u

/* berth_commit_file_finish() with BERTH_COMMIT_* flags; the event reports
 * @user instead of the one given at begin. */
int berth_commit_file_finish_flags(struct berth_commit_file *f, unsigned flags,
				   void *user);

/* Abort the file: its temp file is removed.  Releases the handle. */
void berth_commit_file_abort(struct berth_commit_file *f);

/*
 * Like berth_commit_file_finish_flags(), but the file is renamed to the same base
 * name in @sub, a subdirectory of its own directory (one path component,
 * created with mode 0700 when missing), not to its final name; no backup
 * is made (--partial-dir, --delay-updates).  The event reports the file's
 * own path with @user.  Not for in-place files (-EINVAL, the handle is
 * released as by abort).
 */
int berth_commit_file_finish_sub(struct berth_commit_file *f, const char *sub,
				 unsigned flags, void *user);

/*
 * Tree operations.  Each copies its arguments, returns 0 when queued (the
 * outcome comes as an EV_OP event with meta->user), -BERTH_EPATH for an
 * unsafe name, -BERTH_ECANCELLED after cancel; blocks while opts.max_ops
 * operations are in flight.  Existing non-directory entries at @relpath are
 * replaced atomically (created under a temp name, then renamed).
 *
 * mkdir: an existing directory is success (its mode is left alone); the
 *   new one gets meta->mode (0755 with a NULL @meta) less the umask.
 * symlink: @target is stored verbatim (it is never followed by berth).
 * hardlink: @relpath becomes a link to @existing (both beneath root).
 * mknod: fifo, socket, char or block device per meta->mode; @dev for
 *   devices (needs CAP_MKNOD).
 * delete: removes a non-directory, or an empty directory when @is_dir.
 * dir_meta: sets mode, owner (opts.preserve_owner) and mtime of an
 *   existing directory (rsync does it after the directory's contents).
 */
int berth_commit_mkdir(struct berth_commit *c, const char *relpath,
		       const struct berth_commit_meta *meta);
int berth_commit_symlink(struct berth_commit *c, const char *relpath,
			 const char *target,
			 const struct berth_commit_meta *meta);
int berth_commit_hardlink(struct berth_commit *c, const char *relpath,
			  const char *existing, void *user);
/*
 * hardlink_at: @relpath becomes a link to @src_name (one path component,
 * never followed) in the directory @src_dirfd, which may lie outside the
 * root (--link-dest); the fd is duplicated, the caller keeps its own.
 */
int berth_commit_hardlink_at(struct berth_commit *c, const char *relpath,
			     int src_dirfd, const char *src_name, void *user);
int berth_commit_mknod(struct berth_commit *c, const char *relpath,
		       const struct berth_commit_meta *meta, dev_t dev);
int berth_commit_delete(struct berth_commit *c, const char *relpath, int is_dir,
			void *user);
int berth_commit_dir_meta(struct berth_commit *c, const char *relpath,
			  const struct berth_commit_meta *meta);
/*
 * --backup-dir: the backup root (borrowed fd, valid while the stage lives);
 * set once, before any backup is queued.  Any producer thread.
 */
void berth_commit_set_backup_dir(struct berth_commit *c, int dirfd);
/*
 * mkdir beneath the backup root; an existing directory is success.  @meta
 * (mode, owner, mtime) is then applied exactly, as rsync gives a new
 * backup directory the attributes of the directory it mirrors.
 */
int berth_commit_backup_mkdir(struct berth_commit *c, const char *relpath,
			      const struct berth_commit_meta *meta);
/*
 * rename: @from (a non-directory) replaces @to, both beneath the root;
 * with opts.backup_suffix an existing @to is kept as its backup first
 * (--delay-updates).
 */
int berth_commit_rename(struct berth_commit *c, const char *from,
			const char *to, void *user);

/*
 * Set owner (opts.preserve_owner), mode and mtime of an existing
 * non-directory at @relpath, found by name in its parent and never followed
 * if it is a symlink (whose mode cannot be set: -EOPNOTSUPP).  Queued like
 * the tree operations; the outcome comes as an EV_OP event.
 */
int berth_commit_set_meta(struct berth_commit *c, const char *relpath,
			  const struct berth_commit_meta *meta);

/*
 * Give the existing item at @relpath (found by name in its parent, never
 * followed: a symlink's own attributes) exactly the extended attributes
 * of @xattrs (taken, see struct berth_commit_xattrs).  "." is the root.
 * Queued like the tree operations; the outcome comes as an EV_OP event
 * with @user, each attribute that fails as an EV_XATTR event.
 */
int berth_commit_set_xattrs(struct berth_commit *c, const char *relpath,
			    struct berth_commit_xattrs *xattrs, void *user);

/*
 * ACLs and --fake-super attributes of an existing item (commit_acl.c,
 * commit_fake.c), for the generator's comparisons.  @fd may be an O_PATH
 * fd (never a symlink: ACLs are not compared for those).  Any thread.
 *
 * berth_commit_acl_differs(): would the ACLs of @m (access; default with
 * @is_dir) be set on the item, whose mode (as rsync sees it: with
 * --fake-super from its %stat) is @cur_mode, to give it mode @m->mode?
 * 1, 0, or -errno when the item's ACLs cannot be read.
 */
int berth_commit_acl_differs(int fd, const struct berth_commit_meta *m,
			     uint32_t cur_mode, bool is_dir, bool fake_super);

/*
 * user.rsync.%stat (rsync's text "MODE MAJOR,MINOR UID:GID", the mode in
 * octal with its type bits).  _format() writes at most @cap bytes (no NUL
 * needed by the xattr; one is added when it fits) and returns the length,
 * or -ENOSPC.  _parse() reads @len bytes: 0, or -EINVAL when they are not
 * that text.  Pure.
 */
struct berth_fake_stat {
	uint32_t mode, rdev_major, rdev_minor, uid, gid;
};

int berth_fake_stat_format(char *buf, size_t cap,
			   const struct berth_fake_stat *st);
int berth_fake_stat_parse(const char *buf, size_t len,
			  struct berth_fake_stat *st);
/*
 * The item's user.rsync.%stat into *@st: 0, -ENODATA when it has none
 * (or the filesystem no xattrs), -EINVAL for a corrupt one, -errno.
 */
int berth_fake_stat_read(int fd, struct berth_fake_stat *st);

/*
 * Validate a relative path from the peer: non-empty, not absolute, no
 * empty, "." or ".." component, components <= NAME_MAX, total < PATH_MAX.
 * Returns 0 or -BERTH_EPATH.  Pure; any thread.
 */
int berth_commit_path_check(const char *relpath);

struct berth_commit_stats {
	uint64_t files_done; /* committed */
	uint64_t files_failed; /* failed or aborted */
	uint64_t ops_done, ops_failed;
	uint64_t bytes; /* file data written */
	uint64_t dir_fsyncs;
	/* Batch durability: group syncs (one syncfs() each) and the files
	 * they covered (the rest had their own fsync). */
	uint64_t group_syncs, group_synced;
	uint64_t chown_ignored; /* EPERM on chown, ignored */
};

/* Counters; consistent at the moment of the call.  Any thread. */
void berth_commit_stats(struct berth_commit *c, struct berth_commit_stats *st);

/* ------------------------------------------ mode changes (commit_chmod.c) */

/* A parsed list of mode changes in rsync's --chmod syntax (a daemon
 * module's "incoming chmod"). */
struct berth_chmod;

/*
 * Parse @spec ("D2775,F664", "u+rwX,go-w", ...); @umask_bits is what a
 * change without u/g/o/a leaves out, as chmod(1) does.  0 and *@out
 * (free with berth_chmod_free()), -EINVAL for a bad spec, -ENOMEM.
 * Pure; any thread.
 */
int berth_chmod_parse(const char *spec, uint32_t umask_bits,
		      struct berth_chmod **out);
/* @mode (type and permission bits) with the changes applied in order;
 * the type bits stay.  @c may be NULL (no change).  Pure; any thread. */
uint32_t berth_chmod_apply(const struct berth_chmod *c, uint32_t mode);
void berth_chmod_free(struct berth_chmod *c);

#endif /* BERTH_COMMIT_H */
