/* SPDX-License-Identifier: MIT */
/*
 * The public session API (include/berth.h): create, run (blocking or on a
 * thread of its own), cancel from any thread, stats, free; and
 * berth_server_run() for the CLI.
 *
 * Lock order: s->sync.lock, then out->lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/common/abi.h"
#include "engine/session/session.h"
#include "engine/session/session_xattr.h"

#define OUT_LIMIT (256 * 1024)

int berth_session_create(struct berth_pump *pump,
			 const struct berth_session_opts *opts,
			 struct berth_session **out)
{
	struct berth_session *s;
	int ret;

	*out = NULL;
	if (!pump || !opts || (opts->argc > 0 && !opts->argv))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	ret = berth__abi_copy_in(&s->cfg.sopts, sizeof(s->cfg.sopts), opts,
				 opts->size, BERTH__V0_SESSION_OPTS);
	if (ret < 0) {
		free(s);
		return ret;
	}
	s->cfg.pump = pump;
	s->neg.argc = opts->argc;
	s->neg.argv = opts->argv;
	s->cfg.log_fn = opts->log;
	s->cfg.log_arg = opts->log_arg;
	s->cfg.durability = opts->durability;
	/* Tags unique to this session while it lives: its address. */
	s->cfg.tag = (uint64_t)(uintptr_t)s << 16;
	s->dest.root_fd = -1;
	s->dest.temp_dirfd = -1;
	s->dest.backup_dirfd = -1;
	s->dest.backup_base_fd = -1;
	s->cfg.in_fd = s->cfg.out_fd = -1;
	s->dest.am_root = geteuid() == 0;
	s->ids.nmine = -1; /* the process's groups: looked up when needed */
	s->dest.umask = berth_plat_umask();
	pthread_mutex_init(&s->sync.lock, NULL);
	pthread_mutex_init(&s->lst.names_lock, NULL);
	pthread_cond_init(&s->sync.cond, NULL);
	berth_waker_clear(&s->stg.stop_in);
	berth_waker_clear(&s->stg.stop_out);
	ret = berth_waker_init(&s->stg.stop_in, BERTH_WAKER_NONBLOCK);
	if (ret == 0)
		ret = berth_waker_init(&s->stg.stop_out, BERTH_WAKER_NONBLOCK);
	if (ret < 0) {
		berth_session_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

int berth_session_run(struct berth_session *s, int in_fd, int out_fd)
{
	int ret;

	if (atomic_exchange(&s->cfg.running, 1))
		return -EBUSY;
	clock_gettime(CLOCK_MONOTONIC, &s->cfg.t_start);
	s->cfg.in_fd = in_fd;
	s->cfg.out_fd = out_fd;
	ret = berth__in_init(&s->in, s, in_fd, berth_waker_fd(&s->stg.stop_in));
	if (ret == 0)
		ret = berth__out_init(&s->out, out_fd,
				      berth_waker_fd(&s->stg.stop_out),
				      OUT_LIMIT);
	if (ret < 0)
		return berth__set_fatal(s, RERR_MALLOC);
	if (atomic_load(&s->cfg.cancelled)) {
		berth__set_fatal(s, RERR_SIGNAL);
		return -BERTH_ECANCELLED;
	}
	ret = berth__session_run(s);
	/* The caller may close out_fd once run returns: no writer after it. */
	berth__out_stop(&s->out);
	/* Nothing of this session stays on the shared pump. */
	berth_pump_cancel_tag(s->cfg.pump, s->cfg.tag + 1);
	berth_pump_cancel_tag(s->cfg.pump, s->cfg.tag + 2);
	return atomic_load(&s->cfg.cancelled) ? -BERTH_ECANCELLED : ret;
}

static void *run_thread(void *arg)
{
	struct berth_session *s = arg;
	void (*done)(void *, int) = s->cfg.done;
	void *done_arg = s->cfg.done_arg;
	int ret = berth_session_run(s, s->cfg.start_in, s->cfg.start_out);

	/* @done may free the session: touch nothing after it. */
	if (done)
		done(done_arg, ret);
	return NULL;
}

int berth_session_start(struct berth_session *s, int in_fd, int out_fd,
			void (*done)(void *arg, int result), void *arg)
{
	pthread_attr_t attr;
	int ret;

	s->cfg.start_in = in_fd;
	s->cfg.start_out = out_fd;
	s->cfg.done = done;
	s->cfg.done_arg = arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&s->cfg.run_thread, &attr, run_thread, s);
	pthread_attr_destroy(&attr);
	return ret;
}

void berth_session_cancel(struct berth_session *s)
{
	if (atomic_exchange(&s->cfg.cancelled, 1))
		return;
	pthread_mutex_lock(&s->sync.lock);
	berth__set_fatal(s, RERR_SIGNAL);
	pthread_cond_broadcast(&s->sync.cond);
	pthread_mutex_unlock(&s->sync.lock);
	berth__session_log(s, BERTH_LOG_ERROR, "berth: session cancelled\n");
	/* The reader stops; the end path tells the client and stops the
	 * writer within a bounded time; its in-flight reads are cancelled. */
	(void)berth_waker_signal(&s->stg.stop_in); /* -EAGAIN: it was */
	berth_pump_cancel_tag(s->cfg.pump, s->cfg.tag + 1);
	berth_pump_cancel_tag(s->cfg.pump, s->cfg.tag + 2);
}

void berth_session_stats(struct berth_session *s, struct berth_stats *out)
{
	struct berth_stats mine, *st = &mine;

	memset(st, 0, sizeof(*st));
	st->size = out->size; /* the caller's layout (berth.h, "ABI") */
	pthread_mutex_lock(&s->sync.lock);
	st->exit_code = s->rep.fatal;
	st->protocol = s->neg.proto;
	st->files_total = s->lst.files_total;
	st->seconds_flist = s->stg.t_flist;
	pthread_mutex_unlock(&s->sync.lock);
	st->cancelled = atomic_load(&s->cfg.cancelled);
	st->files_transferred = atomic_load(&s->rep.files_written);
	st->files_failed = (uint64_t)atomic_load(&s->rep.file_errors);
	st->bytes_literal = atomic_load(&s->rep.literal_bytes);
	st->bytes_matched = atomic_load(&s->rep.matched_bytes);
	st->bytes_read = s->in.total_read;
	st->bytes_written = s->out.total_written;
	st->exit_code = s->stg.exit_code;
	st->seconds_total = s->stg.t_total;
	berth__abi_copy_out(out, out->size, st, sizeof(*st), BERTH__V0_STATS);
}

void berth_session_free(struct berth_session *s)
{
	if (!s)
		return;
	berth_tok_dec_free(s->stg.tok);
	berth_sig_free(s->stg.sig);
	berth_delta_apply_free(s->stg.apply);
	berth_commit_free(s->stg.commit);
	berth__xa_free(s->xa);
	berth__acl_free(s->acl);
	berth__out_close(&s->out);
	berth__iconv_close(s);
	berth__dmn_free(&s->dmn);
	berth__in_destroy(&s->in);
	berth__lists_free(s);
	berth_flist_dec_free(s->lst.fdec);
	free(s->sync.redo);
	berth__ids_free(&s->ids);
	berth__neg_free(&s->neg);
	berth__del_free(&s->del);
	berth__dest_close(&s->dest);
	berth_waker_destroy(&s->stg.stop_in);
	berth_waker_destroy(&s->stg.stop_out);
	pthread_mutex_destroy(&s->sync.lock);
	pthread_mutex_destroy(&s->lst.names_lock);
	pthread_cond_destroy(&s->sync.cond);
	free(s);
}

int berth_server_run(const struct berth_server_config *cfg)
{
	struct berth_session_opts so = {0};
	struct berth_server_config c;
	struct berth_pump *pump;
	struct berth_session *s;
	int ret;

	if (berth__abi_copy_in(&c, sizeof(c), cfg, cfg->size,
			       BERTH__V0_SERVER_CONFIG) < 0)
		return RERR_SYNTAX;
	cfg = &c;
	pump = cfg->pump;
	if (!pump && berth_pump_create(NULL, &pump) < 0)
		return RERR_MALLOC;
	so.argc = cfg->argc;
	so.argv = cfg->argv;
	so.dest_dirfd = -1;
	so.durability = cfg->durability;
	so.log = cfg->log;
	so.log_arg = cfg->log_arg;
	ret = berth_session_create(pump, &so, &s);
	if (ret == 0) {
		ret = berth_session_run(s, cfg->in_fd, cfg->out_fd);
		berth_session_free(s);
	} else {
		ret = RERR_MALLOC;
	}
	if (!cfg->pump)
		berth_pump_free(pump);
	return ret == -BERTH_ECANCELLED ? RERR_SIGNAL : ret;
}
