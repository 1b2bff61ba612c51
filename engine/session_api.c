/* SPDX-License-Identifier: MIT */
/*
 * The public session API (include/berth.h): create, run (blocking or on a
 * thread of its own), cancel from any thread, stats, events, free.
 *
 * Lock order: s->lock, then out->lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine/session_int.h"
#include "engine/session_xattr.h"

#define OUT_LIMIT (256 * 1024)

/*
 * The process umask, read without changing it (umask(2) would, for a
 * moment, for every thread of the embedding process).
 */
static mode_t read_umask(void)
{
	char line[256];
	unsigned m = 022;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 022;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %o", &m) == 1)
			break;
	fclose(f);
	return (mode_t)m;
}

int berth_session_create(struct berth_pump *pump,
			 const struct berth_session_opts *opts,
			 struct berth_session **out)
{
	struct berth_session *s;

	*out = NULL;
	if (!pump || !opts || (opts->argc > 0 && !opts->argv))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->sopts = *opts;
	s->pump = pump;
	s->argc = opts->argc;
	s->argv = opts->argv;
	s->log_fn = opts->log;
	s->log_arg = opts->log_arg;
	s->durability = opts->durability;
	/* Tags unique to this session while it lives: its address. */
	s->tag = (uint64_t)(uintptr_t)s << 16;
	s->root_fd = -1;
	s->temp_dirfd = -1;
	s->backup_dirfd = -1;
	s->in_fd = s->out_fd = -1;
	s->am_root = geteuid() == 0;
	s->umask = read_umask();
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->names_lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->abort_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0 || s->abort_fd < 0) {
		int err = -errno;

		berth_session_free(s);
		return err;
	}
	*out = s;
	return 0;
}

int berth_session_run(struct berth_session *s, int in_fd, int out_fd)
{
	int ret;

	if (atomic_exchange(&s->running, 1))
		return -EBUSY;
	clock_gettime(CLOCK_MONOTONIC, &s->t_start);
	s->in_fd = in_fd;
	s->out_fd = out_fd;
	ret = berth__in_init(&s->in, s, in_fd, s->stop_fd);
	if (ret == 0)
		ret = berth__out_init(&s->out, out_fd, s->abort_fd, OUT_LIMIT);
	if (ret < 0)
		return berth__set_fatal(s, RERR_MALLOC);
	if (atomic_load(&s->cancelled)) {
		berth__set_fatal(s, RERR_SIGNAL);
		return -BERTH_ECANCELLED;
	}
	ret = berth__session_run(s);
	/* The caller may close out_fd once run returns: no writer after it. */
	berth__out_stop(&s->out);
	/* Nothing of this session stays on the shared pump. */
	berth_pump_cancel_tag(s->pump, s->tag + 1);
	berth_pump_cancel_tag(s->pump, s->tag + 2);
	return atomic_load(&s->cancelled) ? -BERTH_ECANCELLED : ret;
}

static void *run_thread(void *arg)
{
	struct berth_session *s = arg;
	void (*done)(void *, int) = s->done;
	void *done_arg = s->done_arg;
	int ret = berth_session_run(s, s->start_in, s->start_out);

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

	s->start_in = in_fd;
	s->start_out = out_fd;
	s->done = done;
	s->done_arg = arg;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&s->run_thread, &attr, run_thread, s);
	pthread_attr_destroy(&attr);
	return ret;
}

void berth_session_cancel(struct berth_session *s)
{
	uint64_t one = 1;

	if (atomic_exchange(&s->cancelled, 1))
		return;
	pthread_mutex_lock(&s->lock);
	berth__set_fatal(s, RERR_SIGNAL);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	berth__session_log(s, BERTH_LOG_ERROR, "berth: session cancelled\n");
	/* The reader stops; the end path tells the client and stops the
	 * writer within a bounded time; its in-flight reads are cancelled. */
	if (write(s->stop_fd, &one, sizeof(one)) < 0) {
		/* saturated: already signalled */
	}
	berth_pump_cancel_tag(s->pump, s->tag + 1);
	berth_pump_cancel_tag(s->pump, s->tag + 2);
}

void berth_session_stats(struct berth_session *s, struct berth_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->lock);
	st->exit_code = s->fatal;
	st->protocol = s->proto;
	st->files_total = s->files_total;
	st->seconds_flist = s->t_flist;
	pthread_mutex_unlock(&s->lock);
	st->cancelled = atomic_load(&s->cancelled);
	st->files_transferred = atomic_load(&s->files_written);
	st->files_failed = (uint64_t)atomic_load(&s->file_errors);
	st->bytes_literal = atomic_load(&s->literal_bytes);
	st->bytes_matched = atomic_load(&s->matched_bytes);
	st->bytes_read = s->in.total_read;
	st->bytes_written = s->out.total_written;
	st->exit_code = s->exit_code;
	st->seconds_total = s->t_total;
}

void berth_session_free(struct berth_session *s)
{
	if (!s)
		return;
	berth_tok_dec_free(s->tok);
	berth_sig_free(s->sig);
	berth_delta_apply_free(s->apply);
	berth_commit_free(s->commit);
	berth__xa_free(s->xa);
	berth__out_close(&s->out);
	berth__in_destroy(&s->in);
	berth__lists_free(s);
	berth_flist_dec_free(s->fdec);
	free(s->redo);
	free(s->uids);
	free(s->gids);
	free(s->secluded);
	free(s->secluded_buf);
	free(s->local_name);
	for (size_t i = 0; i < s->nrules; i++)
		free(s->rules[i].pattern);
	free(s->rules);
	if (s->root_fd >= 0)
		close(s->root_fd);
	if (s->temp_dirfd >= 0)
		close(s->temp_dirfd);
	if (s->backup_dirfd >= 0)
		close(s->backup_dirfd);
	free(s->bak_last);
	for (int j = 0; j < s->nalt; j++)
		if (s->alt_fd[j] >= 0)
			close(s->alt_fd[j]);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->abort_fd >= 0)
		close(s->abort_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->names_lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

/* ------------------------------------------------------------ events */

void berth__session_committed(struct berth_session *s, int32_t ndx)
{
	const struct berth_session_events *ev = s->sopts.events;
	const struct berth_file *f;
	struct berth_file_event fe;
	struct berth_commit_meta m;
	struct file_state st;

	if (!ev || !ev->file_committed)
		return;
	/* The commit work holds a reference on the list. */
	f = berth__file(s, ndx);
	if (!f)
		return;
	st = berth__fst_get(s, ndx);
	berth__session_meta(s, f, st.exists, st.cur_mode, &m);
	memset(&fe, 0, sizeof(fe));
	fe.path = f->name;
	fe.size = (uint64_t)f->size;
	fe.mode = (m.mode & 07777) | S_IFREG;
	fe.mtime_sec = f->mtime;
	fe.mtime_nsec = f->nsec;
	fe.checksum_type = s->cp.type;
	fe.checksum_name = berth_csum_name(s->cp.type);
	fe.checksum = st.sum;
	fe.checksum_len = s->digest_len;
	ev->file_committed(s->sopts.event_arg, &fe);
}

void berth__session_file_failed(struct berth_session *s, const char *path,
				int err)
{
	const struct berth_session_events *ev = s->sopts.events;

	if (ev && ev->file_error)
		ev->file_error(s->sopts.event_arg, path, err);
}

void berth__session_deleted(struct berth_session *s, const char *path,
			    bool is_dir)
{
	const struct berth_session_events *ev = s->sopts.events;

	if (ev && ev->file_deleted)
		ev->file_deleted(s->sopts.event_arg, path, is_dir);
}

void berth__session_success(struct berth_session *s, int32_t ndx)
{
	uint8_t p[4] = {(uint8_t)ndx, (uint8_t)(ndx >> 8), (uint8_t)(ndx >> 16),
			(uint8_t)(ndx >> 24)};

	if (s->opts.remove_source_files)
		berth__out_msg(&s->out, BERTH_MSG_SUCCESS, p, sizeof(p));
}

void berth__session_progress(struct berth_session *s)
{
	const struct berth_session_events *ev = s->sopts.events;
	struct berth_progress p;

	if (!ev || !ev->progress)
		return;
	pthread_mutex_lock(&s->lock);
	p.files_total = s->files_total;
	pthread_mutex_unlock(&s->lock);
	p.files_done = atomic_load(&s->files_written);
	p.bytes_literal = atomic_load(&s->literal_bytes);
	p.bytes_matched = atomic_load(&s->matched_bytes);
	ev->progress(s->sopts.event_arg, &p);
}

/* ------------------------------------------------------------ CLI helper */

int berth_server_run(const struct berth_server_config *cfg)
{
	struct berth_session_opts so = {0};
	struct berth_pump *pump = cfg->pump;
	struct berth_session *s;
	int ret;

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
