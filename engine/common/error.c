/* SPDX-License-Identifier: MIT */
/* Error names: errno values and berth's own codes. */
#include <string.h>

#include "berth.h"

static const char *const berth_errors[BERTH_E_END - BERTH_E_BASE] = {
	[BERTH_EPROTO - BERTH_E_BASE] = "protocol violation by the peer",
	[BERTH_ECHECKSUM - BERTH_E_BASE] = "whole-file checksum mismatch",
	[BERTH_ECANCELLED - BERTH_E_BASE] = "cancelled",
	[BERTH_EUNSUPPORTED - BERTH_E_BASE] = "option not supported by berth",
	[BERTH_ELIMIT - BERTH_E_BASE] = "configured limit exceeded",
	[BERTH_EPATH - BERTH_E_BASE] = "unsafe or invalid path name",
};

const char *berth_strerror(int err)
{
	const char *s;

	if (err < 0)
		err = -err;
	if (err >= BERTH_E_BASE && err < BERTH_E_END)
		return berth_errors[err - BERTH_E_BASE];
	/* strerrordesc_np() is thread-safe and returns static text. */
	s = strerrordesc_np(err);
	return s ? s : "unknown error";
}

const char *berth_pump_backend_name(int backend)
{
	switch (backend) {
	case BERTH_PUMP_URING:
		return "uring";
	case BERTH_PUMP_POOL:
		return "pool";
	default:
		return "auto";
	}
}
