/* SPDX-License-Identifier: MIT */
/*
 * The receive session: one rsync push into one destination directory.
 *
 * Threads (docs/ARCHITECTURE.md):
 *  - net-in (the caller's thread, berth_session_run): handshake, filter
 *    list, file list, then the receiver loop — token decoding, delta apply,
 *    hand-off to the commit stage (session_recv.c);
 *  - generator (session_gen*.c): quick check, item records, basis
 *    signatures, directories/symlinks/devices, phases and the end
 *    handshake;
 *  - net-out (session_net_out.c): frames and writes everything the other
 *    two queue; nobody else writes the output fd;
 *  - the commit stage's thread and the pump's thread.
 *
 * The wait-for graph has no cycle: net-in waits on input and on the commit
 * stage; the generator waits on net-out's buffer space, the pump, and on
 * net-in's progress (phase counters); net-out waits only on the output fd;
 * commit waits only on the pump.
 *
 * The session is made of parts, each defined in the header of the one
 * file that owns it (sets it up, frees it, and holds its rules); other
 * files read a part, and write it only through the owner's functions or
 * under the rules its header states:
 *
 *   cfg      session_api.c        what the caller gave; run state
 *   opts     session_handshake.c  the client's options (parsed argv)
 *   neg      session_handshake.c  what was negotiated
 *   dest     session_dest.c       DEST, temp/partial/backup/alt dirs
 *   stg      session_run.c        the stages and the stop/abort fds
 *   in, out  session_net_in.c, session_net_out.c
 *   lst      session_lists.c      the file lists and per-entry notes
 *   ids      session_ids.c        mapped owner ids
 *   del      session_delete.c     deletion rules and counts
 *   xa       session_xattr.c      -X
 *   sync     session_run.c        the generator <-> receiver hand-off
 *   rep      session_report.c     the outcome
 *   ic       session_iconv.c      --iconv: converters, the index map
 *   dmn      session_daemon.c     berth --daemon: the decoder hook's buffers
 *
 * Lock order: sync.lock, then lst.names_lock; sync.lock, then out->lock
 * (berth_out functions take out->lock and are never called with it held).
 */
#ifndef BERTH_SESSION_H
#define BERTH_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "berth.h"
#include "engine/commit/commit.h"
#include "engine/session/session_acl.h"
#include "engine/session/session_daemon.h"
#include "engine/basis/basis.h"
#include "engine/platform/platform.h"
#include "engine/pump/pump.h"
#include "engine/session/session_delete.h"
#include "engine/session/session_dest.h"
#include "engine/session/session_events.h"
#include "engine/session/session_flist.h"
#include "engine/session/session_gen.h"
#include "engine/session/session_handshake.h"
#include "engine/session/session_iconv.h"
#include "engine/session/session_ids.h"
#include "engine/session/session_lists.h"
#include "engine/session/session_net_in.h"
#include "engine/session/session_net_out.h"
#include "engine/session/session_partial.h"
#include "engine/session/session_recv.h"
#include "engine/session/session_report.h"
#include "protocol/protocol.h"

/* What the caller gave, and the run state (session_api.c). */
struct sess_cfg {
	struct berth_session_opts sopts; /* as the caller gave them */
	uint64_t tag; /* pump tags of this session: tag .. tag + 2^16 */
	atomic_int cancelled;
	atomic_int running;
	struct timespec t_start;
	pthread_t run_thread; /* berth_session_start() */
	void (*done)(void *arg, int result);
	void *done_arg;
	int start_in, start_out;
	int in_fd, out_fd;
	struct berth_pump *pump;
	berth_log_fn log_fn;
	void *log_arg;
	int durability; /* asked; from start_stages() on, the one in force */
};

/* The stages and the end (session_run.c). */
struct sess_stages {
	struct berth_commit *commit;
	struct berth_delta_apply *apply;
	struct berth_sig *sig;
	struct berth_tok_dec *tok; /* session-long token decoder */
	void *apply_out; /* the file delta apply writes to (net-in only) */
	struct berth_waker stop_in; /* net-in stops reading */
	struct berth_waker stop_out; /* net-out stops writing */
	double t_flist, t_total; /* under sync.lock */
	int exit_code; /* under sync.lock, once run ended */
};

/*
 * Generator <-> receiver (session_run.c starts both; the rules are here),
 * under lock unless said.
 */
struct sess_sync {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int sender_dones; /* NDX_DONEs read from the sender */
	/* Entries before gen_pos have been generated (stored after their
	 * state); gen_waiter: the receiver sleeps on cond for it (set under
	 * lock; both seq_cst so that one side always sees the other's
	 * store).  Atomic so that neither side takes the lock per entry. */
	atomic_int gen_pos;
	atomic_bool gen_waiter;
	/* Threads waiting on cond for an entry to become FST_DONE (the
	 * hard-link pass): only then, or when a list is finished, does a
	 * finished file broadcast. */
	int done_waiters;
	int32_t *redo; /* ndx queue for the redo pass */
	size_t nredo, redo_cap;
	bool recv_finished; /* the receiver loop has ended */
	/* The generator's mkdir it waits for at once (not an incremental
	 * list's early one: those are in struct sess_dir), its outcome, and
	 * whether the generator sleeps on cond for an outcome. */
	uint8_t mk_state; /* enum berth_gen_mk */
	int mk_err;
	bool mk_waiting;
	bool gen_started;
	pthread_t gen_thread;
};

struct berth_session {
	struct sess_cfg cfg;
	struct berth_opts opts;
	struct sess_neg neg;
	struct sess_dest dest;
	struct sess_stages stg;
	struct berth_in in;
	struct berth_out out;
	struct sess_lists lst;
	struct sess_ids ids;
	struct sess_del del;
	struct berth_xa *xa; /* -X (session_xattr.h), or NULL */
	struct berth_acls *acl; /* -A (session_acl.h), or NULL */
	struct sess_sync sync;
	struct sess_report rep;
	struct sess_iconv ic;
	struct sess_dmn dmn;
};

/* meta.user of commit work whose outcome nobody needs (tidying). */
#define SESSION_QUIET ((void *)(intptr_t)-1)

/* The whole session on the calling thread: returns the exit code. */
int berth__session_run(struct berth_session *s);

/* Number of NDX_DONEs the sender writes in a whole session (§10.1). */
static inline int berth__sender_dones_total(const struct berth_session *s)
{
	return berth_end_done_count(s->neg.proto);
}

#endif /* BERTH_SESSION_H */
