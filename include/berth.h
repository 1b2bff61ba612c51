/* SPDX-License-Identifier: MIT */
/*
 * berth — a receiver engine for rsync-style file sync.
 *
 * This is the one public header of libberth.  Functions return >= 0 on
 * success and a negative error on failure: -errno for system errors, or one
 * of the BERTH_E* codes below for conditions that have no errno.
 * berth_strerror() names both.
 */
#ifndef BERTH_H
#define BERTH_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BERTH_API __attribute__((visibility("default")))
#else
#define BERTH_API
#endif

#define BERTH_VERSION_STRING "0.1.0"

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
	BERTH_E_END
};

/* Pump backends. */
enum {
	BERTH_PUMP_AUTO = 0,
	BERTH_PUMP_URING = 1,
	BERTH_PUMP_POOL = 2,
};

/* Durability of committed files. */
enum berth_durability {
	BERTH_DURABLE_NONE = 0, /* no fsync (like rsync) */
	BERTH_DURABLE_FILE, /* fsync each file before its rename, one
				 * file at a time (like rsync --fsync) */
	BERTH_DURABLE_BATCH, /* many files' fsyncs in flight, each rename
				 * after its fsync, one fsync per touched
				 * directory at the end */
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

struct berth_pump;

/* One `berth --server ...` run over a pair of fds. */
struct berth_server_config {
	int argc;
	char **argv; /* the server argv, as rsync's client builds it */
	int in_fd; /* from the client (stdin) */
	int out_fd; /* to the client (stdout) */
	struct berth_pump *pump; /* shared pump, or NULL for a private one */
	int durability; /* enum berth_durability */
	berth_log_fn log; /* errors/warnings meant for stderr */
	void *log_arg;
};

/*
 * Run one receive session to its end: handshake, file list, transfer,
 * end handshake.  Returns the exit code rsync's server would exit with
 * (0 success, 23 partial transfer, ...).  Blocks the calling thread.
 * Thread-safe: sessions are independent.
 */
BERTH_API int berth_server_run(const struct berth_server_config *cfg);

/*
 * A static, human-readable description of @err (negative errno or a BERTH_E*
 * code, with either sign).  Never NULL.  Thread-safe.
 */
BERTH_API const char *berth_strerror(int err);

/* "uring" or "pool" for a BERTH_PUMP_* value; "auto" for 0.  Thread-safe. */
BERTH_API const char *berth_pump_backend_name(int backend);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_H */
