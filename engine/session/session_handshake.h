/* SPDX-License-Identifier: MIT */
/*
 * The start of a session (session_handshake.c): refused options, version
 * and negotiation, secluded arguments, the filter list.
 */
#ifndef BERTH_SESSION_HANDSHAKE_H
#define BERTH_SESSION_HANDSHAKE_H

#include "protocol/protocol.h"

struct berth_session;

/* What was negotiated with the client. */
struct sess_neg {
	int argc;
	char **argv;
	char **secluded; /* -s: argv of the secluded arguments */
	char *secluded_buf; /* their bytes */
	struct berth_hs_result hs;
	int proto;
	struct berth_csum_params cp;
	unsigned digest_len;
	/* Protocols < 30 without --checksum-choice: the whole-file sum
	 * hashes the seed first (rsync's MD4_OLD). */
	bool sum_seed_first;
	/* Symlinks get their times: CF_SYMLINK_TIMES, or any protocol < 30
	 * (rsync's receiver times them whenever it can). */
	bool symlink_times;
	char why[256]; /* a refusal's reason made before the handshake */
	char daemon_why[256]; /* the daemon front end's refusal */
};

/* The first option berth does not implement, or NULL. */
const char *berth__unsupported_option(const struct berth_session *s);
/*
 * The command line and the secluded arguments (-s), read before the
 * handshake.  Returns 0 when the handshake may go ahead: an option error
 * is then kept in s->opts.bad_err and refused after it
 * (berth__refuse_options()), where a client of protocol 31 or newer gets
 * the exit code.  Otherwise the refusal is made at once (no "--server",
 * --daemon, the input ended) and the exit code is returned.
 */
int berth__read_args(struct berth_session *s);
/*
 * The version exchange and negotiation.  On failure the refusal is
 * reported (the option error first if there was one, the client's protocol
 * and berth's range, a choice berth does not offer, the end of input) and
 * the exit code is returned; 0 on success.
 */
int berth__handshake(struct berth_session *s);
/* Refuse the option error s->opts.bad_err: message, exit code 1 or 4. */
void berth__refuse_options(struct berth_session *s);
int berth__read_filters(struct berth_session *s);
void berth__neg_free(struct sess_neg *n);

#endif /* BERTH_SESSION_HANDSHAKE_H */
