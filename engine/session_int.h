/* SPDX-License-Identifier: MIT */
/*
 * The receive session: one rsync push into one destination directory.
 *
 * Threads (DESIGN.md §3):
 *  - net-in (the caller's thread, berth_session_run): handshake, filter
 *    list, file list, then the receiver loop — token decoding, delta apply,
 *    hand-off to the commit stage;
 *  - generator (session_gen.c): quick check, item records, basis
 *    signatures, directories/symlinks/devices, phases and the end
 *    handshake;
 *  - net-out (session_io.c): frames and writes everything the other two
 *    queue; nobody else writes the output fd;
 *  - the commit stage's thread and the pump's thread.
 *
 * The wait-for graph has no cycle: net-in waits on input and on the commit
 * stage; the generator waits on net-out's buffer space, the pump, and on
 * net-in's progress (phase counters); net-out waits only on the output fd;
 * commit waits only on the pump.
 *
 * Lock order: s->lock, then s->names_lock; s->lock, then out->lock
 * (berth_out functions take out->lock and are never called with it held).
 */
#ifndef BERTH_SESSION_INT_H
#define BERTH_SESSION_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "berth.h"
#include "engine/basis/basis.h"
#include "engine/commit/commit.h"
#include "engine/pump/pump.h"
#include "protocol/protocol.h"

/* rsync exit codes (rsync-protocol.md §10.4). */
enum {
	RERR_OK = 0,
	RERR_SYNTAX = 1,
	RERR_PROTOCOL = 2,
	RERR_FILESELECT = 3,
	RERR_UNSUPPORTED = 4,
	RERR_SOCKETIO = 10,
	RERR_FILEIO = 11,
	RERR_STREAMIO = 12,
	RERR_SIGNAL = 20,
	RERR_MALLOC = 22,
	RERR_PARTIAL = 23,
	RERR_VANISHED = 24,
	RERR_DEL_LIMIT = 25,
	RERR_TIMEOUT = 30,
};

/* Item flags: BERTH_ITEM_* in protocol/protocol.h. */

/* ------------------------------------------------------------ net-in */

/*
 * The input side: reads the input fd, and once multiplexing has started,
 * de-multiplexes it into a contiguous buffer of data bytes; out-of-band
 * messages go to berth__session_on_msg().  Used by the net-in thread only.
 */
struct berth_in {
	struct berth_session *s;
	int fd;
	int stop_fd; /* eventfd: readable = stop reading */
	bool muxed;
	struct berth_demux demux;
	uint8_t *raw; /* bytes read, not yet de-multiplexed */
	size_t raw_len, raw_pos, raw_cap;
	uint8_t *data; /* de-multiplexed data bytes */
	size_t data_len, data_pos, data_cap;
	struct berth_ndx_state ndx;
	uint64_t total_read;
};

int berth__in_init(struct berth_in *in, struct berth_session *s, int fd,
		   int stop_fd);
/* Read and drop input until EOF, the stop fd, or @ms milliseconds. */
void berth__in_discard(struct berth_in *in, int ms);
void berth__in_destroy(struct berth_in *in);
/* Switch to de-multiplexing (right after the handshake). */
int berth__in_start_mux(struct berth_in *in);
/* Make at least @n data bytes available at in->data + in->data_pos. */
int berth__in_need(struct berth_in *in, size_t n);
/* Make at least one more byte available (after a decoder said MORE). */
int berth__in_more(struct berth_in *in);
/* The available bytes as a protocol input; consume with in_consumed(). */
static inline struct berth_proto_in berth__in_view(struct berth_in *in)
{
	struct berth_proto_in v = {in->data + in->data_pos,
				   in->data_len - in->data_pos, 0};
	return v;
}
static inline void berth__in_consumed(struct berth_in *in, size_t n)
{
	in->data_pos += n;
}
int berth__in_int32(struct berth_in *in, int32_t *v);
int berth__in_u8(struct berth_in *in, uint8_t *v);
int berth__in_shortint(struct berth_in *in, uint16_t *v);
int berth__in_ndx(struct berth_in *in, int32_t *v);
int berth__in_vstring(struct berth_in *in, char *buf, size_t cap, size_t *len);
int berth__in_bytes(struct berth_in *in, void *buf, size_t n);

/* ------------------------------------------------------------ net-out */

/*
 * The output side: callers append framed bytes to a bounded buffer under
 * out->lock; the net-out thread writes them.  Before multiplexing starts,
 * berth__out_raw() writes directly.
 */
struct berth_out {
	int fd;
	int abort_fd; /* eventfd: readable = give up writing */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* to the writer: bytes queued or closing */
	pthread_cond_t space; /* to producers: room, or drained */
	uint8_t *buf, *spare; /* data frames; the writer swaps them */
	size_t len, cap, spare_cap, limit;
	uint8_t *mbuf, *mspare; /* message frames (written first) */
	size_t mlen, mbuf_cap, mspare_cap;
	bool flush; /* write held data now */
	uint64_t bwlimit; /* --bwlimit: bytes per second written, 0: off */
	int keepalive_ms; /* --timeout: an empty data frame after this
			   * much silence (0: never) */
	struct timespec last_write;
	size_t frame_hdr; /* offset of the open MSG_DATA header, or SIZE_MAX */
	bool writing; /* the writer holds a batch */
	bool closing;
	int err; /* first write error (-errno) */
	bool started;
	pthread_t thread;
	struct berth_ndx_state ndx; /* S2C ndx state (generator only) */
	uint64_t total_written;
};

int berth__out_init(struct berth_out *o, int fd, int abort_fd, size_t limit);
int berth__out_start(struct berth_out *o);
/* Write unframed bytes now (handshake only). */
int berth__out_raw(struct berth_out *o, const void *p, size_t len);
/*
 * Append MSG_DATA bytes (may block for space).  0 or the writer's error.
 * Small amounts are held until berth__out_flush() or 32 KiB, as rsync's
 * writer does, so that messages queued meanwhile reach the client first.
 */
int berth__out_data(struct berth_out *o, const void *p, size_t len);
/* Append one message frame (never blocks for space: messages are few). */
int berth__out_msg(struct berth_out *o, int code, const void *p, size_t len);
/* Write the data held so far (the caller is about to wait for the peer). */
void berth__out_flush(struct berth_out *o);
/* The same within @ms milliseconds: -ETIMEDOUT if not. */
int berth__out_drain_timed(struct berth_out *o, int ms);
/* Wait until everything queued so far is written.  0 or error. */
int berth__out_drain(struct berth_out *o);
/* Write what is queued (bounded by the abort fd), stop and join the
 * writer; after it nothing touches the output fd. */
void berth__out_stop(struct berth_out *o);
/* Drain, stop and join the writer, free buffers.  Returns the error. */
int berth__out_close(struct berth_out *o);

/* ------------------------------------------------------------ session */

/* Per file-list entry state. */
enum {
	FST_NONE = 0,
	FST_REQUESTED, /* a transfer record was sent */
	FST_DONE, /* received (or failed for good) */
};

struct file_state {
	uint8_t state;
	uint8_t attempts; /* transfers asked for: 1, 2 after a redo */
	uint8_t had_basis; /* the generator sent sums of the destination */
	uint8_t exists; /* the destination existed (regular file) */
	uint32_t cur_mode; /* its mode then */
	uint16_t iflags; /* of the transfer record, repeated by a redo */
	uint8_t sum[16]; /* the verified whole-file checksum (events) */
	int8_t basis_type; /* -1: the destination; j: alt-dest dir j;
			    * BASIS_PARTIAL */
	uint8_t appended; /* --append: only a tail comes */
	uint8_t delayed; /* --delay-updates: finished into the partial dir */
	uint8_t ok; /* the commit stage reported the file written */
	uint64_t append_from; /* the length kept in place */
};

/*
 * One received file list (rsync-protocol.md §7.7-§7.9).  Without
 * incremental recursion there is one, starting at ndx 0; with it, one per
 * directory, in arrival order, each numbered after the previous one with
 * a gap: ndx start - 1 names the list's directory.  The session keeps the
 * lists between their arrival (net-in) and their release: once the
 * generator has sent the list's NDX_DONE, the sender has answered it (its
 * echoes of our records come before that answer), and nothing refers to
 * it any more (refs: the receiver handling one of its entries, commit
 * work that will
 * report an event for one of them), entries and names are freed; the
 * record itself goes when it is the oldest.  Fields under s->lock except
 * fl's contents, which never change once the list is added.
 */
struct sess_list {
	struct berth_flist *fl; /* NULL once freed */
	struct file_state *fst; /* per entry; [count] is the slot start - 1 */
	struct sess_list *next; /* the next list in arrival order */
	int32_t start;
	uint32_t count;
	int32_t dir_k; /* -1: the initial list */
	uint32_t dir_base; /* directory number of its first directory */
	uint32_t pending; /* entries in FST_REQUESTED */
	uint32_t refs;
	bool finished; /* the generator sent its NDX_DONE */
	bool released; /* the sender answered it (its echoes are all in) */
};

/*
 * A directory of the incremental directory list (§7.9), in its numbering:
 * what the generator needs when the directory's own list comes (the entry
 * itself lives in an earlier list, perhaps freed by then), and what the
 * final attribute pass needs.  Kept for the whole session (compact).
 */
struct sess_dir {
	int64_t mtime;
	uint32_t nsec, mode, uid, gid, xflags, flags;
	uint8_t made; /* created by the generator (an entry of its parent) */
	uint8_t fix; /* meta holds the final attributes */
	uint8_t is_new; /* did not exist before this session */
	struct berth_commit_meta meta;
	char name[]; /* NUL-terminated */
};

/* file_state.basis_type of a partial file (--partial-dir; wire 0x81). */
#define BASIS_PARTIAL (-2)

/* meta.user of commit work whose outcome nobody needs (tidying). */
#define SESSION_QUIET ((void *)(intptr_t)-1)

/* A filter rule received from the client (deletion protection). */
struct session_rule {
	int type; /* BERTH_FILTER_EXCLUDE or _INCLUDE */
	unsigned mods; /* BERTH_FM_* */
	bool dir_only;
	char *pattern; /* without a leading "/" (then BERTH_FM_ABS) */
};

/* An id mapping cache entry (sender id -> local id). */
struct id_map {
	uint32_t from, to;
};

struct berth_session {
	/* Configuration. */
	struct berth_session_opts sopts; /* as the caller gave them */
	uint64_t tag; /* pump tags of this session: tag .. tag + 2^16 */
	atomic_int cancelled;
	atomic_int running;
	struct timespec t_start;
	double t_flist, t_total; /* under lock */
	int exit_code; /* under lock, once run ended */
	pthread_t run_thread; /* berth_session_start() */
	void (*done)(void *arg, int result);
	void *done_arg;
	int start_in, start_out;
	struct berth_opts opts;
	int argc;
	char **argv;
	char **secluded; /* -s: argv of the secluded arguments */
	char *secluded_buf; /* their bytes */
	int in_fd, out_fd;
	struct berth_pump *pump;
	berth_log_fn log_fn;
	void *log_arg;
	int durability;

	/* Destination. */
	int root_fd;
	int temp_dirfd; /* --temp-dir, or -1 */
	/* --partial-dir (--delay-updates: ".~tmp~"): the directory name,
	 * beside each file, for partial and delayed files; NULL if none. */
	const char *pdir;
	int backup_dirfd; /* --backup-dir, once created; or -1 */
	char *bak_last; /* the backup directory prepared last (generator) */
	bool dest_created;
	char *local_name; /* "local name" mode: the one item's new name */
	bool am_root;
	mode_t umask;

	/* Negotiated. */
	struct berth_hs_result hs;
	int proto;
	struct berth_csum_params cp;
	unsigned digest_len;

	/* Stages. */
	struct berth_commit *commit;
	struct berth_delta_apply *apply;
	struct berth_sig *sig;
	struct berth_tok_dec *tok; /* session-long token decoder */
	void *apply_out; /* the file delta apply writes to (net-in only) */
	struct berth_in in;
	struct berth_out out;
	int alt_fd[BERTH_MAX_ALT_DEST]; /* --link-dest etc., or -1 */
	int nalt;
	int stop_fd; /* net-in stops reading */
	int abort_fd; /* net-out stops writing */

	/* Deletion (generator thread only). */
	struct session_rule *rules;
	size_t nrules;
	struct berth_del_stats del;
	int deleted; /* for --max-delete */
	unsigned del_skipped; /* refused by --max-delete */
	bool del_io_warned;

	/* File lists (session_lists.c), under lock. */
	struct berth_flist_dec *fdec;
	bool inc; /* incremental recursion granted */
	struct sess_list **lists; /* by ndx; [lists_first..nlists) live */
	size_t nlists, lists_first, lists_cap;
	struct sess_list *lists_tail; /* the newest */
	struct sess_list *release_next; /* the oldest the sender holds */
	uint32_t lists_total; /* lists received */
	uint64_t files_total; /* entries received */
	bool flist_eof; /* NDX_FLIST_EOF read (or not incremental) */
	struct sess_dir **dirs; /* incremental: the directory list */
	uint32_t ndirs, dirs_cap;
	int sender_releases; /* sender's NDX_DONEs that released a list */
	/* Directories (numbers) whose list was freed: the generator sets
	 * their attributes now, as rsync does when a list is done (and again
	 * at the end). */
	uint32_t *dirfix;
	size_t ndirfix, dirfix_cap;
	/* Without incremental recursion: the one list and its states (for
	 * the features only granted then: -H, -X, partial dirs...); NULL
	 * with it. */
	struct berth_flist *fl;
	struct file_state *fst;
	struct id_map *uids, *gids;
	size_t nuids, ngids;
	struct berth_xa *xa; /* -X (session_xattr.h), or NULL */

	/* Generator <-> receiver, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int sender_dones; /* NDX_DONEs read from the sender */
	/* Entries before gen_pos have been generated (stored after their
	 * state); gen_waiter: the receiver sleeps on s->cond for it (set
	 * under lock; both seq_cst so that one side always sees the other's
	 * store).  Atomic so that neither side takes s->lock per entry. */
	atomic_int gen_pos;
	atomic_bool gen_waiter;
	/* Threads waiting on s->cond for an entry to become FST_DONE (the
	 * hard-link pass): only then, or when a list is finished, does a
	 * finished file broadcast. */
	int done_waiters;
	/* The decoder's id names, which grow with incremental lists while
	 * other threads map ids.  Lock order: s->lock, then names_lock. */
	pthread_mutex_t names_lock;
	int32_t *redo; /* ndx queue for the redo pass */
	size_t nredo, redo_cap;
	bool recv_finished; /* the receiver loop has ended */
	atomic_int fatal; /* first fatal rsync exit code, 0 if none */
	bool gen_started;
	pthread_t gen_thread;

	/* Outcome (atomics: several threads add). */
	atomic_int file_errors; /* per-file failures: exit 23 */
	atomic_int io_error; /* sender's io_error bits */
	atomic_uint_fast64_t literal_bytes, matched_bytes, files_written;
};

void berth__session_log(struct berth_session *s, int level, const char *fmt,
			...) __attribute__((format(printf, 3, 4)));
/* A per-file error: logged (stderr by default, as rsync does) and counted. */
void berth__session_file_error(struct berth_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Set the fatal exit code if none is set yet; returns the one in force. */
static inline int berth__set_fatal(struct berth_session *s, int code)
{
	int none = 0;

	atomic_compare_exchange_strong(&s->fatal, &none, code);
	return atomic_load(&s->fatal);
}

/* Record the first fatal error (exit code) and wake everyone. */
void berth__session_fatal(struct berth_session *s, int code, const char *fmt,
			  ...) __attribute__((format(printf, 3, 4)));
int berth__session_on_msg(struct berth_session *s,
			  const struct berth_demux_event *ev);

/* The whole session on the calling thread: returns the exit code. */
int berth__session_run(struct berth_session *s);
/* A file reached its final name / failed / was deleted: events. */
void berth__session_committed(struct berth_session *s, int32_t ndx);
void berth__session_file_failed(struct berth_session *s, const char *path,
				int err);
void berth__session_deleted(struct berth_session *s, const char *path,
			    bool is_dir);
void berth__session_progress(struct berth_session *s);
/* --remove-source-files: @ndx is safely on the receiver (MSG_SUCCESS). */
void berth__session_success(struct berth_session *s, int32_t ndx);

/* "DIR/PDIR/BASE" for file "DIR/BASE" into @buf: 0 or -ENAMETOOLONG. */
int berth__partial_path(const struct berth_session *s, const char *name,
			char *buf, size_t cap);
/* Remove a partial file and, if then empty, its partial dir (quietly). */
void berth__drop_partial(struct berth_session *s, const char *ppath);
/* --backup-dir: make sure the backup directory for @relpath's parent
 * exists before anything there is backed up.  Generator thread. */
int berth__backup_prepare(struct berth_session *s, const char *relpath);
/* Is there a regular file (a partial file) at @ppath? */
bool berth__partial_exists(struct berth_session *s, const char *ppath);
/* --delay-updates: rename every delayed file into place, then remove the
 * emptied partial dirs.  Generator thread, once all data is in. */
int berth__delayed_renames(struct berth_session *s);
/* --partial-dir: remove the partial files used as bases of files now
 * written.  Generator thread, at the end. */
void berth__partial_sweep(struct berth_session *s);

/* openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) of @path below @dirfd,
 * O_CLOEXEC added; -errno on failure. */
int berth__open_beneath(int dirfd, const char *path, int flags);

/* Deletion (session_delete.c), generator thread. */
int berth__session_add_rule(struct berth_session *s,
			    const struct berth_filter_rule *rule);
int berth__delete_extraneous(struct berth_session *s, int32_t dir_ndx);
/* Incremental: the extraneous items of directory @dname, whose children
 * are the entries of list @fl. */
int berth__delete_in_list(struct berth_session *s, const char *dname,
			  uint32_t xflags, const struct berth_flist *fl);
int berth__delete_pass(struct berth_session *s);
int berth__delete_tree(struct berth_session *s, const char *name,
		       bool report_self);
bool berth__dir_has_entries(struct berth_session *s, const char *name);
void berth__delete_finish(struct berth_session *s);

/* Generator thread body (session_gen.c). */
void *berth__gen_main(void *arg);
/* Receiver loop on the net-in thread (session_recv.c). */
int berth__recv_loop(struct berth_session *s);
/* Delta apply's output callback (arg: the session). */
int berth__recv_apply_out(void *arg, const void *buf, size_t len);

/* Map error codes to rsync exit codes. */
int berth__exit_code_of(int err);

/* Number of NDX_DONEs the sender writes in a whole session (§10.1). */
static inline int berth__sender_dones_total(const struct berth_session *s)
{
	return s->proto >= 31 ? 4 : 3;
}

/* ------------------------------------------------------------ lists */

/*
 * Add a received list (net-in thread): it becomes visible to the
 * generator, and its directories join the directory list.  Takes @fl.
 */
int berth__lists_add(struct berth_session *s, struct berth_flist *fl);
/* NDX_FLIST_EOF was read (or there is one list only). */
void berth__lists_eof(struct berth_session *s);
/* The list holding @ndx, or whose directory slot (start - 1) it is; NULL
 * if none or freed.  *i: the entry's index, or -1 for the slot.  Under
 * s->lock. */
struct sess_list *berth__list_of(struct berth_session *s, int32_t ndx,
				 int32_t *i);
/* The notes on @ndx (under s->lock), NULL if no live list has it. */
struct file_state *berth__fst_of(struct berth_session *s, int32_t ndx);
/* Entry @ndx of a live list (NULL if none); the caller knows it cannot
 * be freed meanwhile (it holds a reference, or the list is unfinished). */
const struct berth_file *berth__file(struct berth_session *s, int32_t ndx);
/* Take / drop a reference on @ndx's list so it is not freed (the list
 * must be live to take one; returns it or NULL).  Under s->lock. */
struct sess_list *berth__list_ref(struct berth_session *s, int32_t ndx);
void berth__list_unref(struct berth_session *s, struct sess_list *l);
/* The generator sent @l's NDX_DONE: free it when nothing refers to it.
 * Under s->lock. */
void berth__list_finish(struct berth_session *s, struct sess_list *l);
/* The sender answered the oldest finished list's NDX_DONE: after that it
 * sends nothing more for it.  Under s->lock. */
void berth__list_release(struct berth_session *s);
/* State changes that keep the pending counts (under s->lock). */
void berth__fst_requested(struct berth_session *s, int32_t ndx);
bool berth__fst_done(struct berth_session *s, int32_t ndx);
/* meta.user for commit work on entry @ndx whose event will come: keeps
 * the list alive until berth__commit_user_done() (the event, or the
 * submission failed). */
void *berth__commit_user(struct berth_session *s, int32_t ndx);
void berth__commit_user_done(struct berth_session *s, void *user);
/* Read one list (@dir_k -1: the initial one) into the session. */
int berth__read_flist(struct berth_session *s, int32_t dir_k);
/* Everything at the end of the session. */
void berth__lists_free(struct berth_session *s);

/* A consistent copy of the notes on entry @ndx (taken under s->lock). */
static inline struct file_state berth__fst_get(struct berth_session *s,
					       int32_t ndx)
{
	struct file_state st = {0}, *p;

	pthread_mutex_lock(&s->lock);
	p = berth__fst_of(s, ndx);
	if (p)
		st = *p;
	pthread_mutex_unlock(&s->lock);
	return st;
}

/* Commit metadata for entry @f (permissions, times, owner) per options. */
void berth__session_meta(struct berth_session *s, const struct berth_file *f,
			 bool exists, mode_t cur_mode,
			 struct berth_commit_meta *m);
uint32_t berth__map_uid(struct berth_session *s, uint32_t uid);
uint32_t berth__map_gid(struct berth_session *s, uint32_t gid);

#endif /* BERTH_SESSION_INT_H */
