/* SPDX-License-Identifier: MIT */
/* Error names: errno values and berth's own codes. */
#include <errno.h>
#include <string.h>

#include "berth.h"
#ifdef _WIN32
#include "engine/platform/platform_types.h"
#endif

static const char *const berth_errors[BERTH_E_END - BERTH_E_BASE] = {
	[BERTH_EPROTO - BERTH_E_BASE] = "protocol violation by the peer",
	[BERTH_ECHECKSUM - BERTH_E_BASE] = "whole-file checksum mismatch",
	[BERTH_ECANCELLED - BERTH_E_BASE] = "cancelled",
	[BERTH_EUNSUPPORTED - BERTH_E_BASE] = "option not supported by berth",
	[BERTH_ELIMIT - BERTH_E_BASE] = "configured limit exceeded",
	[BERTH_EPATH - BERTH_E_BASE] = "unsafe or invalid path name",
	[BERTH_ECODEC -
		BERTH_E_BASE] = "the peer's compressed data did not decode",
};

const char *berth_strerror(int err)
{
	const char *s;

	if (err < 0)
		err = -err;
	if (err >= BERTH_E_BASE && err < BERTH_E_END)
		return berth_errors[err - BERTH_E_BASE];
#ifdef _WIN32
	/* The C runtime names only the classic codes; these come from the
	 * POSIX set mingw-w64 adds (engine/platform/platform_types.h). */
	switch (err) {
	case ECANCELED:
		return "Operation canceled";
	case ELOOP:
		return "Too many levels of symbolic links";
	case EOPNOTSUPP:
		return "Operation not supported";
	case ESHUTDOWN:
		return "Cannot send after transport endpoint shutdown";
	default:
		/* msvcrt's strerror() keeps its text per thread. */
		s = strerror(err);
		return s ? s : "unknown error";
	}
#else
	/* strerrordesc_np() is thread-safe and returns static text. */
	s = strerrordesc_np(err);
	return s ? s : "unknown error";
#endif
}

const char *berth_pump_backend_name(int backend)
{
	switch (backend) {
	case BERTH_PUMP_URING:
		return "uring";
	case BERTH_PUMP_POOL:
		return "pool";
	case BERTH_PUMP_IOCP:
		return "iocp";
	default:
		return "auto";
	}
}
