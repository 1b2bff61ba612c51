/* SPDX-License-Identifier: MIT */
/*
 * Reporting (session_report.c): log lines, per-file errors, the first fatal
 * error and rsync's exit codes; the session's outcome counters.
 */
#ifndef BERTH_SESSION_REPORT_H
#define BERTH_SESSION_REPORT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct berth_session;

/* rsync exit codes (rsync-protocol.md §10.4). */
enum {
	RERR_OK = 0,
	RERR_SYNTAX = 1,
	RERR_PROTOCOL = 2,
	RERR_FILESELECT = 3,
	RERR_UNSUPPORTED = 4,
	RERR_STARTCLIENT = 5,
	RERR_SOCKETIO = 10,
	RERR_FILEIO = 11,
	RERR_STREAMIO = 12,
	RERR_SIGNAL = 20,
	RERR_MALLOC = 22,
	RERR_PARTIAL = 23,
	RERR_VANISHED = 24,
	RERR_DEL_LIMIT = 25,
	RERR_TIMEOUT = 30,
	/* Not an exit code: berth__session_fatal() takes it as
	 * RERR_STREAMIO with the message as given (the peer's compressed
	 * data did not decode; the connection itself is fine). */
	RERR_STREAMIO_DATA = 0x10c,
};

/* The outcome (atomics: every thread adds). */
struct sess_report {
	atomic_int fatal; /* first fatal rsync exit code, 0 if none */
	atomic_int file_errors; /* per-file failures: exit 23 */
	atomic_int io_error; /* sender's io_error bits */
	atomic_uint_fast64_t literal_bytes, matched_bytes, files_written;
	/* Where the first fatal error was raised (under sync.lock), for
	 * the exit line: source file and line, the thread, and whether the
	 * transfer had begun (see berth__session_exit_line()). */
	const char *fatal_file;
	int fatal_line;
	pthread_t fatal_thread;
	bool fatal_thread_set;
	bool transfer_begun; /* set by the run thread once options pass */
};

void berth__session_log(struct berth_session *s, int level, const char *fmt,
			...) __attribute__((format(printf, 3, 4)));
/* A per-file error: logged (stderr by default, as rsync does) and counted. */
void berth__session_file_error(struct berth_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same for a text that is UTF-8 as received (--iconv: a name that
 * could not be converted); the local log gets it converted. */
void berth__session_file_error_utf8(struct berth_session *s, const char *fmt,
				    ...) __attribute__((format(printf, 2, 3)));
/*
 * A per-file failure of a call, worded as rsync's receiver words it (its
 * rsyserr()): "berth: [@who] TEXT: strerror (errno)", @who "generator" or
 * "receiver", @err a -errno (a berth code: its text alone); counted.
 */
void berth__session_xfer_error(struct berth_session *s, const char *who,
			       int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/*
 * @rel (a name beneath the destination) as rsync's messages show it (its
 * full_fname()): quoted, with the destination's full path before it, in
 * @buf (@cap bytes, truncated to fit); returns @buf.
 */
const char *berth__full_name(const struct berth_session *s, const char *rel,
			     char *buf, size_t cap);
/* A failed file or operation of the commit stage, worded as rsync words
 * the call that failed (mkstemp, rename, symlink, delete_file...). */
struct berth_commit_event;
void berth__report_commit_error(struct berth_session *s,
				const struct berth_commit_event *ev);
/* Set the fatal exit code if none is set yet; returns the one in force. */
int berth__set_fatal(struct berth_session *s, int code);
/* Record the first fatal error (exit code) and wake everyone; the call's
 * place is kept for the exit line. */
#define berth__session_fatal(s, code, ...) \
	berth__session_fatal_at(s, code, __FILE__, __LINE__, __VA_ARGS__)
void berth__session_fatal_at(struct berth_session *s, int code,
			     const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/*
 * The last line rsync's server sends after a fatal error, in berth's
 * words: "berth error: NAME (code N) at FILE(LINE) [WHO=berth VERSION]"
 * (NAME as rsync names the code; WHO as rsync's who_am_i() would: "server"
 * while options are checked, "generator" or "receiver" for the thread that
 * failed once the transfer began, else "Receiver").  Run thread only, the
 * generator still running or joined.
 */
void berth__session_exit_line(struct berth_session *s);
/* A cancel the session did not ask for (no fatal code yet) while the
 * shared pump is shut down (berth.h: sessions on it end with an error):
 * record it as fatal, exit 20, and return true. */
bool berth__session_pump_lost(struct berth_session *s);
/* Map error codes to rsync exit codes. */
int berth__exit_code_of(int err);

#endif /* BERTH_SESSION_REPORT_H */
