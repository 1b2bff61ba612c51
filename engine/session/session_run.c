/* SPDX-License-Identifier: MIT */
/*
 * A receive session from start to exit code: handshake, destination,
 * filter and file lists, the stages (commit, delta apply, signatures), then
 * the generator thread beside the receiver loop, and the end
 * (rsync-protocol.md §2, §4, §6, §7, §10).
 *
 * Lock order: s->sync.lock, then out->lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_xattr.h"

/*
 * Memory a session's stages keep for data in flight.  Measured on bench
 * W1-W6 (2026-11-21 16:00 UTC, 2 pairs each, against the earlier 4 MiB
 * commit / 8 MiB apply / 4 x 1 MiB signature reads): W3 peak RSS 18.8 ->
 * 6.6 MiB, W6 21.3 -> 9.0, W2 7.0 -> 3.7, and wall ratios against rsync
 * no worse (W3 1.06 -> 1.05, W6 0.97 -> 0.96, W1 1.12 -> 0.78; at load
 * 1-4, so within the noise).  A few reads in flight keep the pump busy;
 * more only hold memory.  Then (2026-12-07, W3 pushed 4 times per variant
 * into a 1 GiB basis, alternating): 2 -> 1 MiB apply and 4 x 256 -> 4 x
 * 128 KiB signature reads took W3's peak RSS 7.4 -> 6.0 MiB (rsync's
 * receiver 6.4-6.6), W6's 9.9 -> 8.4, wall 1.58 -> 1.51 s, CPU 0.93 ->
 * 0.90 s; 2 signature reads instead of 4 cost 6-8% wall and CPU.
 * Then (2026-12-07 15:00-15:27, each variant against the others in
 * A B B A order on a journaled loop filesystem): 1 MiB -> 512 KiB for
 * the apply budget and for the commit budget took peak RSS W2 4.0 ->
 * 3.3-3.5 MiB, W3 5.3 -> 4.6, W6 7.9 -> 6.9 (its zstd window is 2.1 MiB
 * of that; the apply budget alone: 7.3), and W1's wall 0.57 -> 0.60 s
 * (10 pushes each, three variants; 0.59 -> 0.62 in another 10): fewer
 * small files in flight.  With the apply budget alone halved W1 took
 * 0.56 s; W3 with both halved no more CPU or wall (W2 and the daemon
 * push do not use the apply stage).  So the apply stage has 512 KiB,
 * the commit stage keeps 1 MiB.  (Net-in's read buffer at 128 KiB
 * instead of 256 saved 0.15 MiB more but took more reads, user CPU
 * 0.55 -> 0.63 s on 8 pushes of 1 GiB: it stays at 256 KiB.)
 */
#define SESSION_COMMIT_BUDGET (1u << 20)
#define SESSION_APPLY_BUDGET (512u << 10)
#define SESSION_SIG_READ (128u << 10)
#define SESSION_SIG_NREADS 4

static void on_commit_event(void *arg, const struct berth_commit_event *ev)
{
	struct berth_session *s = arg;
	static const char *const xop[] = {"get_xattr_names: llistxattr",
					  "rsync_xal_set: lsetxattr",
					  "rsync_xal_set: lremovexattr"};
	char full[PATH_MAX + 8];

	if (ev->user == SESSION_QUIET)
		return; /* tidying: an emptied partial dir, a used partial */
	if (berth__delete_token(ev->user)) {
		/* A deletion: said once it is done, or its failure. */
		berth__delete_done(s, ev->path, ev->err);
		if (ev->err && ev->err != -BERTH_ECANCELLED) {
			berth__report_commit_error(s, ev);
			berth__session_file_failed(s, ev->path, ev->err);
		}
		return;
	}
	if (berth__gen_mkdir_token(ev->user)) {
		/* The generator's own mkdir: it waits for the outcome and
		 * words a failure itself. */
		berth__gen_mkdir_done(s, ev->user, ev->err);
		return;
	}
	if (ev->kind == BERTH_COMMIT_EV_XATTR) {
		/* rsync's wording (rsync_xal_set), one per attribute. */
		berth__full_name(s, ev->path, full, sizeof(full));
		if (ev->xattr)
			berth__session_xfer_error(
				s, "receiver", ev->err, "%s(%s,\"%s\") failed",
				xop[ev->xattr_op % 3], full, ev->xattr);
		else
			berth__session_xfer_error(s, "receiver", ev->err,
						  "%s(%s) failed",
						  xop[ev->xattr_op % 3], full);
		return;
	}
	if (ev->err < 0 && ev->err != -BERTH_ECANCELLED) {
		berth__report_commit_error(s, ev);
		berth__session_file_failed(s, ev->path ? ev->path : "",
					   ev->err);
	} else if (ev->err == 0 && ev->user) {
		/* meta.user is ndx + 1 for transferred files and for the
		 * nodes and links the generator creates. */
		int32_t ndx = (int32_t)(intptr_t)ev->user - 1;
		struct file_state *st;
		bool delayed = false;

		pthread_mutex_lock(&s->sync.lock);
		st = berth__fst_of(s, ndx);
		if (st) {
			delayed = st->delayed;
			if (ev->kind == BERTH_COMMIT_EV_FILE)
				st->ok = 1;
		}
		pthread_mutex_unlock(&s->sync.lock);
		/* A delayed file is committed when it is renamed into
		 * place (an operation), not when it reached PDIR. */
		if (st && !(delayed && ev->kind == BERTH_COMMIT_EV_FILE)) {
			if (ev->kind == BERTH_COMMIT_EV_FILE || delayed)
				berth__session_committed(s, ndx);
			berth__session_success(s, ndx);
		}
	}
	berth__commit_user_done(s, ev->user);
}

static int start_stages(struct berth_session *s)
{
	struct berth_commit_opts co = {0};
	struct berth_delta_apply_opts ao = {0};
	struct berth_sig_opts so = {0};
	struct berth_tok_config to = {0};
	int ret;

	co.durability = berth_commit_durability(s->cfg.durability,
						s->opts.fsync);
	/* The one in force from here on (the client's --fsync included):
	 * the generator's new directories ask it too. */
	s->cfg.durability = co.durability;
	co.preserve_owner = s->opts.owner || s->opts.group;
	co.fake_super = s->opts.fake_super;
	if (s->opts.temp_dir) {
		/* Relative to the destination unless absolute (rsync). */
		s->dest.temp_dirfd = openat(s->dest.root_fd, s->opts.temp_dir,
					    O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (s->dest.temp_dirfd < 0) {
			berth__session_fatal(s, RERR_FILESELECT,
					     "temp-dir %s: %s\n",
					     s->opts.temp_dir, strerror(errno));
			return -errno;
		}
		co.use_temp_dir = true;
		co.temp_dirfd = s->dest.temp_dirfd;
	}
	/* As rsync: the suffix is "~", or nothing with a --backup-dir. */
	if (s->opts.backup || s->opts.backup_dir)
		co.backup_suffix = s->opts.suffix	? s->opts.suffix
				   : s->opts.backup_dir ? ""
							: "~";
	co.use_backup_dir = s->opts.backup_dir != NULL;
	co.tag_base = s->cfg.tag + 16;
	co.mem_budget = s->cfg.sopts.max_memory ? s->cfg.sopts.max_memory
						: SESSION_COMMIT_BUDGET;
	ret = berth_commit_create(s->cfg.pump, s->dest.root_fd, &co,
				  on_commit_event, s, &s->stg.commit);
	if (ret < 0)
		return ret;
	ao.pump = s->cfg.pump;
	ao.out = berth__recv_apply_out;
	ao.out_arg = s;
	ao.tag = s->cfg.tag + 1;
	ao.mem_limit = SESSION_APPLY_BUDGET;
	ao.cached_inline = true;
	ret = berth_delta_apply_create(&ao, &s->stg.apply);
	if (ret < 0)
		return ret;
	so.pump = s->cfg.pump;
	so.tag = s->cfg.tag + 2;
	so.read_size = SESSION_SIG_READ;
	so.nreads = SESSION_SIG_NREADS;
	so.cached_inline = true;
	ret = berth_sig_create(&so, &s->stg.sig);
	if (ret < 0)
		return ret;
	to.compress = s->neg.hs.compress;
	to.protocol = s->neg.proto;
	to.csum_type = s->neg.cp.type;
	to.digest_len = (int)s->neg.digest_len;
	return berth_tok_dec_create(&s->stg.tok, &to);
}

/*
 * After a fatal error or a cancel: tell the client (MSG_ERROR_EXIT at
 * proto >= 31), give the writer a bounded time to get it out, then stop
 * it; after a fatal error at proto >= 31 also read and drop the client's
 * input until it closes (§10.5), so it sees our message and code.  Nothing here can hang:
 * the writer gives up when s->stg.abort_fd is signalled, and the reads are
 * bounded in time.
 */
static void fatal_exit(struct berth_session *s)
{
	int32_t code = s->rep.fatal;
	uint8_t p[4] = {(uint8_t)code, (uint8_t)(code >> 8),
			(uint8_t)(code >> 16), (uint8_t)(code >> 24)};
	bool cancelled = atomic_load(&s->cfg.cancelled);

	berth__session_exit_line(s);
	if (s->out.started && s->neg.proto >= 31)
		berth__out_msg(&s->out, BERTH_MSG_ERROR_EXIT, p, 4);
	if (s->out.started &&
	    berth__out_drain_timed(&s->out, cancelled ? 1000 : 10000) < 0)
		(void)berth_waker_signal(&s->stg.stop_out);
	/* From 31 the client answers our code: read until it does.  Below
	 * there is no code to wait for: read only what the client is still
	 * writing (until it pauses), so it finds the stream closed (12)
	 * rather than a broken pipe, then close. */
	if (!cancelled && s->out.started)
		berth__in_discard(&s->in, s->neg.proto >= 31 ? 10000 : 2000,
				  s->neg.proto >= 31 ? 0 : 200);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int exit_code(struct berth_session *s)
{
	int io = atomic_load(&s->rep.io_error);

	if (s->rep.fatal)
		return s->rep.fatal;
	if (atomic_load(&s->rep.file_errors) || (io & 1))
		return RERR_PARTIAL;
	if (io & 2)
		return RERR_VANISHED;
	if (io & 4)
		return RERR_DEL_LIMIT;
	return RERR_OK;
}

static int session_run(struct berth_session *s);

/* Run, and record the outcome for berth_session_stats(). */
int berth__session_run(struct berth_session *s)
{
	int code = session_run(s);

	pthread_mutex_lock(&s->sync.lock);
	s->stg.exit_code = code;
	s->stg.t_total = seconds_since(&s->cfg.t_start);
	pthread_mutex_unlock(&s->sync.lock);
	return code;
}

static int session_run(struct berth_session *s)
{
	const char *bad;
	int ret;

	if (berth__read_args(s)) {
		berth__session_exit_line(s);
		return s->rep.fatal; /* refused, the client told */
	}
	/* --super / --fake-super: act as root (rsync's am_root). */
	if (s->opts.super || s->opts.fake_super)
		s->dest.am_root = true;
	/* --iconv: a charset iconv does not know is refused after the
	 * handshake (as every option is: the client then reads why). */
	if (berth__iconv_open(s, s->neg.why, sizeof(s->neg.why)) < 0 &&
	    !s->opts.bad_err) {
		s->neg.why[strcspn(s->neg.why, "\n")] = '\0';
		s->opts.bad_err = -BERTH_EUNSUPPORTED;
		s->opts.bad = NULL;
		s->opts.why = s->neg.why;
	}
	if (berth__handshake(s)) {
		berth__session_exit_line(s);
		return s->rep.fatal; /* refused, the client told */
	}
	/* Before protocol 30 the client's stream is not multiplexed. */
	ret = s->neg.proto >= 30 ? berth__in_start_mux(&s->in) : 0;
	if (s->opts.bwlimit > 0)
		s->out.bwlimit = (uint64_t)s->opts.bwlimit * 1024; /* KiB/s */
	if (s->opts.timeout > 0) {
		s->out.keepalive_ms = s->opts.timeout * 500;
		clock_gettime(CLOCK_MONOTONIC, &s->out.last_write);
	}
	if (ret == 0)
		ret = berth__out_start(&s->out);
	if (ret < 0) {
		return berth__set_fatal(s, RERR_MALLOC);
	}
	/* As rsync: backups in place change directory times, so
	 * --backup without --backup-dir implies --omit-dir-times. */
	if (s->opts.backup_dir)
		s->opts.backup = true; /* --backup-dir implies --backup */
	if (s->opts.backup && !s->opts.backup_dir)
		s->opts.omit_dir_times = true;
	/* As rsync: --delay-updates uses ".~tmp~" unless a --partial-dir is
	 * given, and either one keeps partial files. */
	s->dest.pdir = s->opts.partial_dir     ? s->opts.partial_dir
		       : s->opts.delay_updates ? ".~tmp~"
					       : NULL;
	if (s->dest.pdir)
		s->opts.partial = true;
	if (s->opts.bad_err) {
		berth__refuse_options(s);
		fatal_exit(s);
		return s->rep.fatal;
	}
	bad = berth__unsupported_option(s);
	if (bad) {
		berth__session_fatal(s, RERR_UNSUPPORTED,
				     "berth: %s is not supported by this "
				     "version of berth\n",
				     bad);
		fatal_exit(s);
		return s->rep.fatal;
	}
	pthread_mutex_lock(&s->sync.lock);
	s->rep.transfer_begun = true; /* rsync's am_starting_up ends */
	pthread_mutex_unlock(&s->sync.lock);
	if (berth_opts_want_filters_at(&s->opts, s->neg.proto))
		ret = berth__read_filters(s);
	if (ret == 0)
		ret = berth__read_initial_flist(s);
	if (ret == 0)
		ret = berth__xa_create(s);
	if (ret == 0)
		ret = berth__acl_create(s);
	if (ret < 0) {
		berth__session_fatal(s, berth__exit_code_of(ret),
				     "berth: receiving the file list: %s\n",
				     berth_strerror(ret));
		fatal_exit(s);
		return s->rep.fatal;
	}
	pthread_mutex_lock(&s->sync.lock);
	s->stg.t_flist = seconds_since(&s->cfg.t_start);
	pthread_mutex_unlock(&s->sync.lock);
	ret = berth__dmn_check_dest(s);
	if (ret == 0)
		ret = berth__open_dest(s);
	if (ret == 0)
		ret = berth__open_backup_base(s);
	if (ret == 0)
		ret = start_stages(s);
	if (ret < 0) {
		if (!s->rep.fatal)
			berth__session_fatal(s, berth__exit_code_of(ret),
					     "berth: %s\n",
					     berth_strerror(ret));
		fatal_exit(s);
		return s->rep.fatal;
	}

	ret = -pthread_create(&s->sync.gen_thread, NULL, berth__gen_main, s);
	if (ret < 0) {
		berth__session_fatal(s, RERR_MALLOC, "berth: no thread\n");
		fatal_exit(s);
		return s->rep.fatal;
	}
	s->sync.gen_started = true;
	ret = berth__recv_loop(s);
	if (ret == -BERTH_ECANCELLED)
		(void)berth__session_pump_lost(s); /* or a cancel of ours */
	else if (ret < 0)
		berth__session_fatal(s, berth__exit_code_of(ret),
				     "berth: receiver: %s\n",
				     berth_strerror(ret));
	pthread_mutex_lock(&s->sync.lock);
	s->sync.recv_finished = true;
	pthread_cond_broadcast(&s->sync.cond);
	pthread_mutex_unlock(&s->sync.lock);

	if (s->rep.fatal) {
		/* Remove temp files, complete our commit I/O, then tell the
		 * client; the writer is bounded, so the generator cannot stay
		 * blocked on a full output when it is joined. */
		if (s->opts.partial && !s->opts.dry_run)
			berth_commit_flush(
				s->stg.commit); /* keep partial files */
		berth_commit_cancel(s->stg.commit);
		fatal_exit(s);
	}
	pthread_join(s->sync.gen_thread, NULL);
	s->sync.gen_started = false;
	return exit_code(s);
}
