/* SPDX-License-Identifier: MIT */
/*
 * Reporting: the session's log lines (to the client as MSG_INFO/MSG_ERROR
 * or to stderr, as rsync's receiver sends them), per-file errors, the first
 * fatal error, and the map from error codes to rsync's exit codes
 * (rsync-protocol.md §5.5, §10.4).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session/session.h"

/*
 * With --iconv the text is in the local charset and goes to the client in
 * UTF-8; @utf8: it is in UTF-8 already (a name as received), and goes to
 * the local log in the local charset instead (as rsync's FERROR_UTF8).
 */
static void vlog(struct berth_session *s, int level, bool utf8, const char *fmt,
		 va_list ap) __attribute__((format(printf, 4, 0)));
static void vlog(struct berth_session *s, int level, bool utf8, const char *fmt,
		 va_list ap)
{
	char msg[2048], *conv;
	size_t clen = 0;
	int n, code, ret;
	bool to_socket;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	/* §5.5: info through the socket, errors and warnings to stderr,
	 * unless --msgs2stderr / --no-msgs2stderr say otherwise. */
	if (level == BERTH_LOG_INFO)
		to_socket = s->opts.msgs2stderr != 1;
	else
		to_socket = s->opts.msgs2stderr == 0;
	if (to_socket && s->out.started) {
		/* Before protocol 30 a warning travels as info. */
		code = level == BERTH_LOG_INFO ? BERTH_MSG_INFO
		       : level == BERTH_LOG_WARNING
			       ? (s->neg.proto >= 30 ? BERTH_MSG_WARNING
						     : BERTH_MSG_INFO)
			       : BERTH_MSG_ERROR_XFER;
		conv = utf8 ? NULL
			    : berth__iconv_msg(s, false, msg, (size_t)n, &clen);
		ret = berth__out_msg(&s->out, code, conv ? conv : msg,
				     conv ? clen : (size_t)n);
		free(conv);
		if (ret == 0)
			return;
	}
	if (s->cfg.log_fn) {
		conv = utf8 ? berth__iconv_msg(s, true, msg, (size_t)n, &clen)
			    : NULL;
		s->cfg.log_fn(s->cfg.log_arg, level, conv ? conv : msg);
		free(conv);
	}
}

void berth__session_log(struct berth_session *s, int level, const char *fmt,
			...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(s, level, false, fmt, ap);
	va_end(ap);
}

void berth__session_file_error(struct berth_session *s, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&s->rep.file_errors, 1);
	va_start(ap, fmt);
	vlog(s, BERTH_LOG_ERROR, false, fmt, ap);
	va_end(ap);
}

void berth__session_file_error_utf8(struct berth_session *s, const char *fmt,
				    ...)
{
	va_list ap;

	atomic_fetch_add(&s->rep.file_errors, 1);
	va_start(ap, fmt);
	vlog(s, BERTH_LOG_ERROR, true, fmt, ap);
	va_end(ap);
}

void berth__session_xfer_error(struct berth_session *s, const char *who,
			       int err, const char *fmt, ...)
{
	char text[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (err < 0)
		err = -err;
	if (err >= BERTH_E_BASE)
		berth__session_file_error(s, "berth: [%s] %s: %s\n", who, text,
					  berth_strerror(err));
	else
		berth__session_file_error(s, "berth: [%s] %s: %s (%d)\n", who,
					  text, berth_strerror(err), err);
}

const char *berth__full_name(const struct berth_session *s, const char *rel,
			     char *buf, size_t cap)
{
	const struct berth_dpolicy *p = s->opts.dpolicy;
	const char *root = s->dest.full;
	int n;

	if (!rel || !*rel)
		rel = ".";
	if (p && p->module) {
		/* A daemon's module: from its top, as rsync shows it with
		 * its working directory beneath the module (its top itself:
		 * "/" with use chroot, else nothing). */
		const char *d = p->dest_rel ? p->dest_rel : "";

		n = snprintf(buf, cap, "\"%s%s%s%s\" (in %s)",
			     *d || p->chroot ? "/" : "", d, *d ? "/" : "", rel,
			     p->module);
	} else if (!root)
		n = snprintf(buf, cap, "\"%s\"", rel);
	else
		n = snprintf(buf, cap, "\"%s%s%s\"", root,
			     strcmp(root, "/") ? "/" : "", rel);
	if (n < 0 || (size_t)n >= cap) /* too long: shown cut */
		buf[cap - 1] = '\0';
	return buf;
}

/* The temp file of @ev as rsync names it: beside the item, or in the
 * --temp-dir. */
static const char *full_tmp(const struct berth_session *s,
			    const struct berth_commit_event *ev, char *buf,
			    size_t cap)
{
	const char *slash = strrchr(ev->path, '/');
	char rel[PATH_MAX];

	if (ev->tmp_in_temp_dir && s->opts.temp_dir) {
		if (s->opts.temp_dir[0] == '/')
			snprintf(buf, cap, "\"%s/%s\"", s->opts.temp_dir,
				 ev->tmp);
		else
			berth__full_name(s,
					 (snprintf(rel, sizeof(rel), "%s/%s",
						   s->opts.temp_dir, ev->tmp),
					  rel),
					 buf, cap);
		return buf;
	}
	snprintf(rel, sizeof(rel), "%.*s%s%s",
		 slash ? (int)(slash - ev->path) : 0, ev->path,
		 slash ? "/" : "", ev->tmp);
	return berth__full_name(s, rel, buf, cap);
}

/* rsync's words around the path for the steps that fail the same way
 * whoever (receiver or generator) asked: before, after. */
static const char *const step_words[][2] = {
	[BERTH_COMMIT_STEP_FSYNC] = {"fsync failed on ", ""},
	[BERTH_COMMIT_STEP_CLOSE] = {"close failed on ", ""},
	[BERTH_COMMIT_STEP_CHOWN] = {"chown ", " failed"},
	[BERTH_COMMIT_STEP_CHMOD] = {"failed to set permissions on ", ""},
	[BERTH_COMMIT_STEP_TIMES] = {"failed to set times on ", ""},
	[BERTH_COMMIT_STEP_BACKUP] = {"backup failed for ", ""},
};

/* The error of @step as step_words says it: false if it has no words. */
static bool step_error(struct berth_session *s, const char *who, int err,
		       int step, const char *path)
{
	if (step < 0 ||
	    (size_t)step >= sizeof(step_words) / sizeof(step_words[0]) ||
	    !step_words[step][0])
		return false;
	berth__session_xfer_error(s, who, err, "%s%s%s", step_words[step][0],
				  path, step_words[step][1]);
	return true;
}

/* A file the receiver wrote (rsync's receiver and finish_transfer()). */
static void file_error(struct berth_session *s,
		       const struct berth_commit_event *ev)
{
	const char *r = "receiver";
	char full[PATH_MAX + 8], tmp[PATH_MAX + 8];

	berth__full_name(s, ev->path, full, sizeof(full));
	if (ev->tmp)
		full_tmp(s, ev, tmp, sizeof(tmp));
	else if (!ev->inplace) {
		/* No temp name drawn yet (its directory is missing): rsync's
		 * template stands for it. */
		char base[NAME_MAX + 16];
		const char *slash = strrchr(ev->path, '/');
		struct berth_commit_event t = *ev;

		snprintf(base, sizeof(base), ".%.*s.XXXXXX", NAME_MAX,
			 slash ? slash + 1 : ev->path);
		t.tmp = base;
		full_tmp(s, &t, tmp, sizeof(tmp));
	} else
		strcpy(tmp, full);
	/* The steps on the temp file name it; a backup names the file. */
	if (step_error(s, r, ev->err, ev->step,
		       ev->step == BERTH_COMMIT_STEP_BACKUP ? full : tmp))
		return;
	switch (ev->step) {
	case BERTH_COMMIT_STEP_DIR:
	case BERTH_COMMIT_STEP_OPEN:
		berth__session_xfer_error(s, r, ev->err, "%s %s failed",
					  ev->inplace ? "open" : "mkstemp",
					  ev->inplace ? full : tmp);
		break;
	case BERTH_COMMIT_STEP_RENAME:
		berth__session_xfer_error(s, r, ev->err, "rename %s -> \"%s\"",
					  tmp, ev->path);
		break;
	default: /* the writes, or not known */
		berth__session_xfer_error(s, r, ev->err, "write failed on %s",
					  full);
		break;
	}
}

/* An item the generator made, changed or deleted (rsync's generator). */
static void op_error(struct berth_session *s,
		     const struct berth_commit_event *ev)
{
	const char *g = "generator";
	char full[PATH_MAX + 8], tmp[PATH_MAX + 8];
	int step = ev->step;

	berth__full_name(s, ev->path, full, sizeof(full));
	if (step == BERTH_COMMIT_STEP_DIR || step == BERTH_COMMIT_STEP_NONE)
		/* No parent: the call itself would have failed so. */
		step = ev->op == BERTH_COMMIT_OP_MKDIR ? BERTH_COMMIT_STEP_MKDIR
		       : ev->op == BERTH_COMMIT_OP_DELETE
			       ? BERTH_COMMIT_STEP_DELETE
		       : ev->op == BERTH_COMMIT_OP_SYMLINK ||
				       ev->op == BERTH_COMMIT_OP_HARDLINK ||
				       ev->op == BERTH_COMMIT_OP_MKNOD
			       ? BERTH_COMMIT_STEP_CREATE
		       : ev->op == BERTH_COMMIT_OP_RENAME
			       ? BERTH_COMMIT_STEP_RENAME
			       : BERTH_COMMIT_STEP_TIMES;
	if (step_error(s, g, ev->err, step, full))
		return;
	switch (step) {
	case BERTH_COMMIT_STEP_MKDIR:
		berth__session_xfer_error(
			s, g, ev->err, "recv_generator: mkdir %s failed", full);
		break;
	case BERTH_COMMIT_STEP_CREATE:
		if (ev->op == BERTH_COMMIT_OP_SYMLINK)
			berth__session_xfer_error(
				s, g, ev->err, "symlink %s -> \"%s\" failed",
				full, ev->target ? ev->target : "");
		else if (ev->op == BERTH_COMMIT_OP_HARDLINK)
			berth__session_xfer_error(s, g, ev->err,
						  "link %s => %s failed", full,
						  ev->target ? ev->target : "");
		else
			berth__session_xfer_error(s, g, ev->err,
						  "mknod %s failed", full);
		break;
	case BERTH_COMMIT_STEP_DELETE:
		berth__session_xfer_error(
			s, g, ev->err, "delete_file: %s(%s) failed",
			ev->is_dir ? "rmdir" : "unlink", ev->path);
		break;
	case BERTH_COMMIT_STEP_RENAME:
		if (ev->tmp)
			berth__session_xfer_error(
				s, g, ev->err, "rename %s -> \"%s\"",
				full_tmp(s, ev, tmp, sizeof(tmp)), ev->path);
		else
			berth__session_xfer_error(s, g, ev->err,
						  "rename %s failed", full);
		break;
	default: /* not known: the times, as a generator's last step */
		step_error(s, g, ev->err, BERTH_COMMIT_STEP_TIMES, full);
		break;
	}
}

void berth__report_commit_error(struct berth_session *s,
				const struct berth_commit_event *ev)
{
	char full[PATH_MAX + 8];

	if (ev->kind == BERTH_COMMIT_EV_FILE)
		file_error(s, ev);
	else if (ev->kind == BERTH_COMMIT_EV_DIRSYNC)
		berth__session_xfer_error(
			s, "receiver", ev->err, "fsync failed on %s",
			berth__full_name(s, ev->path, full, sizeof(full)));
	else
		op_error(s, ev);
}

void berth__session_fatal_at(struct berth_session *s, int code,
			     const char *file, int line, const char *fmt, ...)
{
	bool conn_lost = code == RERR_STREAMIO;
	va_list ap;
	bool first;

	if (code == RERR_STREAMIO_DATA)
		code = RERR_STREAMIO;
	pthread_mutex_lock(&s->sync.lock);
	first = atomic_load(&s->rep.fatal) == 0 &&
		berth__set_fatal(s, code) == code;
	if (first) {
		s->rep.fatal_file = file;
		s->rep.fatal_line = line;
		s->rep.fatal_thread = pthread_self();
		s->rep.fatal_thread_set = true;
	}
	pthread_cond_broadcast(&s->sync.cond);
	pthread_mutex_unlock(&s->sync.lock);
	if (!first)
		return;
	if (conn_lost) {
		/* The client went (end of input, or a write to a closed
		 * pipe): said as rsync says it, whichever thread saw it. */
		char msg[128];

		snprintf(msg, sizeof(msg),
			 "berth: connection unexpectedly closed (%llu bytes "
			 "received so far) [receiver]\n",
			 (unsigned long long)atomic_load(&s->in.total_read));
		if (s->cfg.log_fn) /* not through the closed connection */
			s->cfg.log_fn(s->cfg.log_arg, BERTH_LOG_ERROR, msg);
	} else {
		va_start(ap, fmt);
		vlog(s, BERTH_LOG_ERROR, false, fmt, ap);
		va_end(ap);
	}
	/* Stop the net-in thread if it waits for input. */
	(void)berth_waker_signal(&s->stg.stop_in); /* -EAGAIN: it was */
}

int berth__exit_code_of(int err)
{
	if (err >= 0)
		return RERR_OK;
	switch (-err) {
	case BERTH_EPROTO:
	case BERTH_EPATH:
		return RERR_PROTOCOL;
	case BERTH_ECODEC: /* as rsync's receiver: a stream error */
		return RERR_STREAMIO_DATA;
	case BERTH_EUNSUPPORTED:
		return RERR_UNSUPPORTED;
	case BERTH_ELIMIT:
		return RERR_PROTOCOL;
	case ENOMEM:
		return RERR_MALLOC;
	case EPIPE:
	case ECONNRESET:
		return RERR_STREAMIO;
	case BERTH_ECANCELLED:
		return RERR_SIGNAL;
	default:
		return RERR_FILEIO;
	}
}

/* rsync's words for its exit codes (what its client and log show). */
static const char *rerr_name(int code)
{
	switch (code) {
	case RERR_SYNTAX:
		return "syntax or usage error";
	case RERR_PROTOCOL:
		return "protocol incompatibility";
	case RERR_FILESELECT:
		return "errors selecting input/output files, dirs";
	case RERR_UNSUPPORTED:
		return "requested action not supported";
	case RERR_STARTCLIENT:
		return "error starting client-server protocol";
	case RERR_SOCKETIO:
		return "error in socket IO";
	case RERR_FILEIO:
		return "error in file IO";
	case RERR_STREAMIO:
		return "error in rsync protocol data stream";
	case RERR_SIGNAL:
		return "received SIGINT, SIGTERM, or SIGHUP";
	case RERR_MALLOC:
		return "error allocating core memory buffers";
	case RERR_PARTIAL:
		return "some files/attrs were not transferred (see previous "
		       "errors)";
	case RERR_VANISHED:
		return "some files vanished before they could be transferred";
	case RERR_DEL_LIMIT:
		return "the --max-delete limit stopped deletions";
	case RERR_TIMEOUT:
		return "timeout in data send/receive";
	default:
		return "unexplained error";
	}
}

void berth__session_exit_line(struct berth_session *s)
{
	int code = atomic_load(&s->rep.fatal);
	const char *file, *who, *base;
	int line;

	pthread_mutex_lock(&s->sync.lock);
	file = s->rep.fatal_file;
	line = s->rep.fatal_line;
	if (!s->rep.transfer_begun)
		who = "server";
	else if (s->rep.fatal_thread_set && s->sync.gen_started &&
		 pthread_equal(s->rep.fatal_thread, s->sync.gen_thread))
		who = "generator";
	else if (s->sync.gen_started)
		who = "receiver";
	else
		who = "Receiver";
	pthread_mutex_unlock(&s->sync.lock);
	if (!file) { /* set without a message: a cancel, the client's code */
		file = __FILE__;
		line = __LINE__;
	}
	base = strrchr(file, '/');
	berth__session_log(s, BERTH_LOG_ERROR,
			   "berth %s: %s (code %d) at %s(%d) [%s=berth %s]\n",
			   code == RERR_VANISHED ? "warning" : "error",
			   rerr_name(code), code, base ? base + 1 : file, line,
			   who, berth_version());
}

bool berth__session_pump_lost(struct berth_session *s)
{
	if (atomic_load(&s->rep.fatal) || !berth_pump_stopped(s->cfg.pump))
		return false;
	berth__session_fatal(s, RERR_SIGNAL, "berth: the pump was shut down\n");
	return true;
}

int berth__set_fatal(struct berth_session *s, int code)
{
	int none = 0;

	atomic_compare_exchange_strong(&s->rep.fatal, &none, code);
	return atomic_load(&s->rep.fatal);
}
