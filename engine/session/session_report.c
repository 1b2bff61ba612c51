/* SPDX-License-Identifier: MIT */
/*
 * Reporting: the session's log lines (to the client as MSG_INFO/MSG_ERROR
 * or to stderr, as rsync's receiver sends them), per-file errors, the first
 * fatal error, and the map from error codes to rsync's exit codes
 * (rsync-protocol.md §5.5, §10.4).
 */
#include <errno.h>
#include <fcntl.h>
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

void berth__session_fatal(struct berth_session *s, int code, const char *fmt,
			  ...)
{
	bool conn_lost = code == RERR_STREAMIO;
	va_list ap;
	bool first;

	if (code == RERR_STREAMIO_DATA)
		code = RERR_STREAMIO;
	pthread_mutex_lock(&s->sync.lock);
	first = atomic_load(&s->rep.fatal) == 0 &&
		berth__set_fatal(s, code) == code;
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
