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
