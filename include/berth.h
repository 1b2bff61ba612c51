/* SPDX-License-Identifier: MIT */
/*
 * berth — a receiver engine for rsync-style file sync.
 *
 * This is the one public header of libberth.  Functions return >= 0 on
 * success and a negative error on failure: -errno for system errors, or one
 * of the BERTH_E* codes below for conditions that have no errno.
 * berth_strerror() names both.
 *
 * ABI: the shared library is libberth.so.0; its symbols carry the version
 * node BERTH_0 (a symbol version script).  Option structs begin with a
 * `size` member and grow only at their end, so a program built against an
 * older header keeps working with a newer library:
 *
 *   - set .size = sizeof(the struct) to use members added after 0.1; a size
 *     of 0 means the layout of 0.1 (this header's), so zero-initialised
 *     structs stay valid;
 *   - a caller's struct larger than the library knows (a newer header on an
 *     older library) is accepted only while the members the library does not
 *     know are zero, else the call fails with -E2BIG: a newer option is
 *     never silently ignored;
 *   - structs the library fills (struct berth_stats) are written up to the
 *     caller's size; structs the library hands to callbacks (events,
 *     progress) only grow at their end and callers read what they know.
 */
#ifndef BERTH_H
#define BERTH_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && !defined(_WIN32)
#define BERTH_API __attribute__((visibility("default")))
#else
#define BERTH_API
#endif

#include <stddef.h>
#include <stdint.h>

/* The version of this header; berth_version() gives the library's. */
#define BERTH_VERSION_MAJOR 0
#define BERTH_VERSION_MINOR 1
#define BERTH_VERSION_PATCH 0
#define BERTH_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for comparisons. */
#define BERTH_VERSION_NUMBER                                       \
	(BERTH_VERSION_MAJOR * 10000 + BERTH_VERSION_MINOR * 100 + \
	 BERTH_VERSION_PATCH)

/*
 * The version of the library actually loaded, "0.1.0" (static text), and
 * the same as a number comparable with BERTH_VERSION_NUMBER.  A program
 * may refuse a library older than the header it was built with.  Any
 * thread.
 */
BERTH_API const char *berth_version(void);
BERTH_API unsigned berth_version_number(void);

/*
 * berth's own error codes, returned negated like -errno.  They live above
 * any errno value Linux uses (< 4096).
 */
enum {
	BERTH_E_BASE = 20000,
	BERTH_EPROTO = BERTH_E_BASE, /* the peer broke the protocol */
	BERTH_ECHECKSUM, /* whole-file checksum mismatch */
	BERTH_ECANCELLED, /* the session was cancelled by the user */
	BERTH_EUNSUPPORTED, /* an option berth does not support */
	BERTH_ELIMIT, /* a configured limit was exceeded */
	BERTH_EPATH, /* an unsafe or invalid path name */
	BERTH_ECODEC, /* the peer's compressed data did not decode */
	BERTH_E_END
};

/* Pump backends. */
enum {
	BERTH_PUMP_AUTO = 0,
	BERTH_PUMP_URING = 1,
	BERTH_PUMP_POOL = 2,
	BERTH_PUMP_IOCP = 3, /* Windows: I/O completion port */
};

/* Durability of committed files. */
enum berth_durability {
	BERTH_DURABLE_NONE = 0, /* no fsync (like rsync), unless the client
				 * sends --fsync: then BATCH */
	BERTH_DURABLE_FILE, /* strict: fsync each file before its rename,
				 * one file at a time (rsync --fsync's order),
				 * for every push */
	BERTH_DURABLE_BATCH, /* each rename after its data is on disk:
				 * many files to one syncfs() where the file
				 * system keeps its promise (ext4, XFS,
				 * Btrfs), else a fsync each, many in flight;
				 * one fsync per touched
				 * directory before the session reports
				 * success; for every push */
};

/* Log levels of berth_log_fn. */
enum {
	BERTH_LOG_ERROR = 0,
	BERTH_LOG_WARNING,
	BERTH_LOG_INFO,
	BERTH_LOG_DEBUG,
};

/*
 * Where the library's messages go (it never prints): @msg is one line,
 * usually ending in a newline, valid during the call.  Called from any
 * session thread; must be thread-safe.
 */
typedef void (*berth_log_fn)(void *arg, int level, const char *msg);

/* ------------------------------------------------------------ the pump */

/*
 * The completion pump: one per process (or per group of sessions), shared
 * by every session; it owns the io_uring ring or the worker pool.
 */
struct berth_pump;

/* Options for berth_pump_create(); zero-initialised means defaults. */
struct berth_pump_opts {
	uint32_t size; /* sizeof(struct berth_pump_opts), or 0 (above) */
	int backend; /* BERTH_PUMP_AUTO probes; the BERTH_PUMP
				* environment variable ("uring"/"pool") may
				* force it then */
	unsigned queue_depth; /* ring entries, default 256 */
	unsigned pool_threads; /* pool workers, default 8 */
	int helper; /* uring: BERTH_PUMP_HELPER_* (SQPOLL helper ring) */
};

/*
 * The uring backend's helper ring: a second ring polled by a kernel thread
 * that copies positioned reads on another CPU while the pump thread copies
 * its own.  It speeds up deep queues of cached reads when a CPU is idle,
 * and costs that CPU while it works (the kernel thread polls a few ms after
 * each burst, then sleeps; the pump parks it while it takes under a quarter
 * of the reads it could take).  DEFAULT: set up when the process may run
 * on two CPUs or more, given reads only from queues of at least 16
 * positioned reads (BERTH_PUMP_SQPOLL=1 or 0 in the environment means ON
 * or OFF instead).  ON: a share of every queue deeper than one read.  OFF:
 * one ring.  Never with one CPU; the backend reason says whether it runs.
 */
#define BERTH_PUMP_HELPER_DEFAULT 0
#define BERTH_PUMP_HELPER_OFF 1
#define BERTH_PUMP_HELPER_ON 2

/*
 * Create a pump and start its thread.  Returns 0 and the pump in *out, or
 * a negative error (-EINVAL for a bad option, -E2BIG for options newer
 * than the library, -errno from the system).
 * With BERTH_PUMP_URING and io_uring unavailable it fails (-EOPNOTSUPP in
 * a build without io_uring, -DBERTH_URING=OFF); with AUTO it falls back to
 * the pool and says why (berth_pump_backend_reason()).
 * Any thread.
 */
BERTH_API int berth_pump_create(const struct berth_pump_opts *opts,
				struct berth_pump **out);

/*
 * Stop the pump: cancel what is in flight, wait for every callback, join
 * its thread.  Sessions still running on it end with an error.  Idempotent.
 * Returns 0, or -EDEADLK from the pump's own thread.  Any other thread.
 */
BERTH_API int berth_pump_shutdown(struct berth_pump *pump);

/* Shut down (if not yet) and free.  NULL is a no-op.  After every session
 * using it has been freed.  Any thread but the pump's. */
BERTH_API void berth_pump_free(struct berth_pump *pump);

/* BERTH_PUMP_URING, BERTH_PUMP_IOCP or BERTH_PUMP_POOL, and a static text
 * saying why it was chosen.  Thread-safe. */
BERTH_API int berth_pump_backend(const struct berth_pump *pump);
BERTH_API const char *berth_pump_backend_reason(const struct berth_pump *pump);

/* ------------------------------------------------------------ sessions */

/*
 * A receive session: one rsync push (client = sender) into one destination
 * directory, over an input and an output fd.
 */
struct berth_session;

/* A file that reached its final name, complete and verified. */
struct berth_file_event {
	const char *path; /* relative to the destination */
	uint64_t size;
	uint32_t mode; /* st_mode as committed (type + bits) */
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	int checksum_type; /* the negotiated one: BERTH_CSUM_* */
	const char *checksum_name; /* "xxh128", "md5", ... */
	const uint8_t *checksum; /* the verified whole-file checksum */
	unsigned checksum_len;
	/* Bytes this file's data took on the connection, sum head to
	 * checksum, compressed as sent (rsync's %b); 0 when not known. */
	uint64_t wire_bytes;
};

struct berth_progress {
	uint64_t files_total; /* entries in the file list (incremental
			       * recursion: in the lists received so far) */
	uint64_t files_done; /* regular files received so far */
	uint64_t bytes_literal; /* file data that came over the wire */
	uint64_t bytes_matched; /* file data copied from a basis */
};

/*
 * Event callbacks; any may be NULL.  They run on the session's internal
 * threads (receiver, commit), one at a time per kind but possibly
 * concurrently across kinds and sessions: keep them short and thread-safe;
 * the only berth function they may call is berth_session_cancel().
 * Pointers in the events are valid during the call only.
 */
struct berth_session_events {
	uint32_t size; /* sizeof(struct berth_session_events), or 0 */
	void (*file_committed)(void *arg, const struct berth_file_event *ev);
	void (*file_deleted)(void *arg, const char *path, int is_dir);
	void (*file_error)(void *arg, const char *path, int err);
	void (*progress)(void *arg, const struct berth_progress *p);
};

/* The parsed rsync options (berth's protocol/proto_opts.h): opaque here. */
struct berth_opts;

/*
 * For berth's own rsync daemon (berth --daemon), which has spoken the
 * daemon's text greeting with the client before the session starts.
 * Agents leave berth_session_opts.daemon NULL.  Not for agents: this
 * struct follows berth's daemon and may change with it (no size member).
 */
struct berth_session_daemon {
	int protocol; /* agreed in the greeting: no binary version
		       * exchange follows */
	/*
	 * Called once, on the thread running the session, after the
	 * client's arguments (@argv, NULL-terminated, and the secluded ones
	 * of -s in @more, or NULL) are parsed and before the handshake.  It
	 * may amend @opts (new strings must outlive the session).  Returns
	 * 0, or the rsync exit code (1 or 4) of a refusal whose reason it
	 * wrote to @why: the client reads it after the handshake, as rsync's
	 * daemon refuses an option.
	 */
	int (*check)(void *arg, struct berth_opts *opts, char **argv,
		     char **more, char *why, size_t why_len);
	void *arg;
};

/* Options for berth_session_create(). */
struct berth_session_opts {
	uint32_t size; /* sizeof(struct berth_session_opts), or 0 (top) */
	/*
	 * The rsync options: the argv a stock client builds for its server
	 * ("rsync", "--server", "-logDtpre.iLsfxCIvu", ..., ".", "DEST"), as
	 * received over ssh or by other means.  Borrowed until _free.  With
	 * -s, the remaining arguments are read from the input stream.
	 */
	int argc;
	char **argv;
	/*
	 * Destination: an open directory fd (borrowed), else a path, else
	 * DEST from argv.  An agent sets one of the first two to confine the
	 * client to a directory of its choosing (DEST is then ignored).
	 */
	int dest_dirfd; /* -1: none */
	const char *dest_path;
	int durability; /* enum berth_durability; NONE: --fsync asks BATCH */
	/* Limits (0 = default): the session ends with an error when the
	 * client exceeds them. */
	uint32_t max_files; /* entries in the file list (default 4M) */
	uint64_t max_file_size; /* bytes of one file (default unlimited) */
	size_t max_memory; /* write buffers of the commit stage
				  * (default 1 MiB) */
	const struct berth_session_events *events;
	void *event_arg;
	berth_log_fn log; /* error/warning/info lines; NULL: dropped */
	void *log_arg;
	const struct berth_session_daemon *daemon; /* borrowed; NULL */
};

/* What a session did. */
struct berth_stats {
	uint32_t size; /* set by the caller: sizeof(struct berth_stats), or
			* 0; the library fills that much */
	int exit_code; /* what `rsync --server` would exit with */
	int cancelled; /* ended by berth_session_cancel() */
	int protocol; /* negotiated protocol version */
	uint64_t files_total; /* entries in the file list(s) */
	uint64_t files_transferred;
	uint64_t files_failed;
	uint64_t bytes_literal, bytes_matched;
	uint64_t bytes_read, bytes_written; /* on the fds */
	double seconds_total;
	double seconds_flist; /* handshake + file list */
};

/*
 * Create a session on @pump (shared; it must outlive the session).  Copies
 * @opts (argv and the other pointers are borrowed until free).  Nothing is
 * read or written yet.  Returns 0, -ENOMEM, -EINVAL, or -E2BIG for options
 * newer than the library (ABI, top).  Any thread.
 */
BERTH_API int berth_session_create(struct berth_pump *pump,
				   const struct berth_session_opts *opts,
				   struct berth_session **out);

/*
 * Run the session to its end over @in_fd (from the client) and @out_fd (to
 * the client); both stay open (the caller closes them).  Returns the rsync
 * exit code (>= 0: 0 success, 23 partial transfer, 2 protocol error, ...),
 * or -BERTH_ECANCELLED if berth_session_cancel() ended it.  Blocks the
 * calling thread.  Once per session.  Any thread.
 */
BERTH_API int berth_session_run(struct berth_session *s, int in_fd, int out_fd);

/*
 * Run the session on a thread of its own and return at once (0, or -errno
 * if the thread could not start); @done(arg, result) is called on that
 * thread at the end with what berth_session_run() would have returned.
 * Free the session only after @done ran (from @done itself is fine).
 */
BERTH_API int berth_session_start(struct berth_session *s, int in_fd,
				  int out_fd,
				  void (*done)(void *arg, int result),
				  void *arg);

/*
 * Cancel: the session stops reading, cancels its own I/O on the pump (other
 * sessions are untouched), removes its temp files, tells the client
 * (protocol >= 31) and its run returns -BERTH_ECANCELLED.  Any thread, any
 * moment, also before run and from an event callback; idempotent.
 */
BERTH_API void berth_session_cancel(struct berth_session *s);

/* Counters so far (final once run returned), written up to st->size
 * bytes (0: the 0.1 layout).  Any thread. */
BERTH_API void berth_session_stats(struct berth_session *s,
				   struct berth_stats *st);

/* Free a session that is not running (never started, or run returned).
 * NULL is a no-op.  Any thread. */
BERTH_API void berth_session_free(struct berth_session *s);

/* The berth program's server mode over one fd pair, on a private pump. */
struct berth_server_config {
	uint32_t size; /* sizeof(struct berth_server_config), or 0 */
	int argc;
	char **argv;
	int in_fd;
	int out_fd;
	struct berth_pump *pump; /* shared pump, or NULL for a private one */
	int durability;
	berth_log_fn log;
	void *log_arg;
};

/* Create, run and free a session: returns its rsync exit code (20 if it
 * was cancelled).  Kept for simple embedders.  Any thread. */
BERTH_API int berth_server_run(const struct berth_server_config *cfg);

/* Checksum types (berth_file_event.checksum_type). */
enum berth_csum_type {
	BERTH_CSUM_NONE = 0, /* "none": 1 dummy byte, forces whole-file */
	BERTH_CSUM_MD4,
	BERTH_CSUM_MD5,
	BERTH_CSUM_SHA1,
	BERTH_CSUM_XXH64,
	BERTH_CSUM_XXH3,
	BERTH_CSUM_XXH128,
};

/*
 * A static, human-readable description of @err (negative errno or a BERTH_E*
 * code, with either sign).  Never NULL.  Thread-safe.
 */
BERTH_API const char *berth_strerror(int err);

/* "uring", "iocp" or "pool" for a BERTH_PUMP_* value; "auto" for 0.
 * Thread-safe. */
BERTH_API const char *berth_pump_backend_name(int backend);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_H */
