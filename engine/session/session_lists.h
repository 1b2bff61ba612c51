/* SPDX-License-Identifier: MIT */
/*
 * The file lists of a session (session_lists.c): each list between its
 * arrival (net-in) and its release, the per-entry notes the generator and
 * the receiver share, the incremental directory list.
 */
#ifndef BERTH_SESSION_LISTS_H
#define BERTH_SESSION_LISTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/commit/commit.h"
#include "protocol/protocol.h"

struct berth_session;

/* Per file-list entry state. */
enum {
	FST_NONE = 0,
	FST_REQUESTED, /* a transfer record was sent */
	FST_DONE, /* received (or failed for good) */
};

struct file_state { /* 6 bytes: a list can hold millions */
	uint16_t cur_mode; /* its mode then (type and permission bits) */
	uint16_t iflags; /* of the transfer record, repeated by a redo */
	/* -1: the destination; j: alt-dest dir j; BASIS_PARTIAL */
	int16_t basis_type : 6;
	uint16_t attempts : 2; /* transfers asked for: 1, 2 after a redo */
	uint16_t state : 2; /* FST_* */
	uint16_t had_basis : 1; /* the generator sent sums of the destination */
	uint16_t exists : 1; /* the destination existed (regular file) */
	uint16_t appended : 1; /* --append: only a tail comes */
	uint16_t delayed : 1; /* --delay-updates: finished into the partial
				 dir */
	uint16_t ok : 1; /* the commit stage reported the file written */
};

/* What few entries need beside their file_state: made on first use. */
struct file_side {
	uint8_t sum[16]; /* the verified whole-file checksum (events) */
	uint64_t wire_bytes; /* its data as read, head to checksum (events) */
	uint64_t append_from; /* --append: the length kept in place */
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
 * record itself goes when it is the oldest.  Fields under s->sync.lock except
 * fl's contents, which never change once the list is added.
 */
struct sess_list {
	struct berth_flist *fl; /* NULL once freed */
	struct file_state *fst; /* per entry; [count] is the slot start - 1 */
	struct file_side *side; /* like fst, or NULL until one is needed */
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
/* A generator mkdir whose outcome it needs (session_gen_tree.c). */
enum berth_gen_mk {
	BERTH_GEN_MK_NONE, /* none asked for */
	BERTH_GEN_MK_PENDING, /* queued to the commit stage */
	BERTH_GEN_MK_DONE, /* its outcome is in mk_err */
};

struct sess_dir {
	int64_t mtime;
	uint32_t nsec, mode, uid, gid, flags; /* flags: BERTH_FILE_* */
	uint8_t made; /* created by the generator (an entry of its parent) */
	uint8_t fix; /* meta holds the final attributes */
	uint8_t is_new; /* did not exist before this session */
	/* The generator's mkdir of it (made): queued, its outcome known
	 * (mk_state, mk_err: under sync.lock); its contents skipped
	 * (missing: it, or a directory above it, could not be made;
	 * generator only). */
	uint8_t mk_state; /* enum berth_gen_mk */
	uint8_t missing;
	int mk_err;
	struct berth_commit_meta meta;
	char name[]; /* NUL-terminated */
};

/* file_state.basis_type of a partial file (--partial-dir; wire 0x81). */
#define BASIS_PARTIAL (-2)

/* The file lists (session_lists.c); fields under sync.lock unless said. */
struct sess_lists {
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
	/* The decoder's id names, which grow with incremental lists while
	 * other threads map ids.  Lock order: sync.lock, then names_lock. */
	pthread_mutex_t names_lock;
};

/*
 * Add a received list (net-in thread): it becomes visible to the
 * generator, and its directories join the directory list.  Takes @fl.
 */
int berth__lists_add(struct berth_session *s, struct berth_flist *fl);
/* NDX_FLIST_EOF was read (or there is one list only). */
void berth__lists_eof(struct berth_session *s);
/* The list holding @ndx, or whose directory slot (start - 1) it is; NULL
 * if none or freed.  *i: the entry's index, or -1 for the slot.  Under
 * s->sync.lock. */
struct sess_list *berth__list_of(struct berth_session *s, int32_t ndx,
				 int32_t *i);
/* The notes on @ndx (under s->sync.lock), NULL if no live list has it. */
struct file_state *berth__fst_of(struct berth_session *s, int32_t ndx);
/*
 * The side fields of @ndx's entry (under s->sync.lock), the list's array
 * made when @make and there is none yet; NULL when the list is gone, or
 * there is no array (!@make) or no memory for it.
 */
struct file_side *berth__fst_side(struct berth_session *s, int32_t ndx,
				  bool make);
/* Entry @ndx of a live list (NULL if none); the caller knows it cannot
 * be freed meanwhile (it holds a reference, or the list is unfinished). */
const struct berth_file *berth__file(struct berth_session *s, int32_t ndx);
/* Take / drop a reference on @ndx's list so it is not freed (the list
 * must be live to take one; returns it or NULL).  Under s->sync.lock. */
struct sess_list *berth__list_ref(struct berth_session *s, int32_t ndx);
void berth__list_unref(struct berth_session *s, struct sess_list *l);
/* The generator sent @l's NDX_DONE: free it when nothing refers to it.
 * Under s->sync.lock. */
void berth__list_finish(struct berth_session *s, struct sess_list *l);
/* The sender answered the oldest finished list's NDX_DONE: after that it
 * sends nothing more for it.  Under s->sync.lock. */
void berth__list_release(struct berth_session *s);
/* State changes that keep the pending counts (under s->sync.lock). */
void berth__fst_requested(struct berth_session *s, int32_t ndx);
bool berth__fst_done(struct berth_session *s, int32_t ndx);
/* meta.user for commit work on entry @ndx whose event will come: keeps
 * the list alive until berth__commit_user_done() (the event, or the
 * submission failed). */
void *berth__commit_user(struct berth_session *s, int32_t ndx);
void berth__commit_user_done(struct berth_session *s, void *user);
/* Everything at the end of the session. */
void berth__lists_free(struct berth_session *s);

/* A consistent copy of the notes on entry @ndx (takes sync.lock). */
struct file_state berth__fst_get(struct berth_session *s, int32_t ndx);

#endif /* BERTH_SESSION_LISTS_H */
