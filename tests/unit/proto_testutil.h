/* SPDX-License-Identifier: MIT */
/* Helpers for the protocol/ unit tests: capture files from $BERTH_SHARED. */
#ifndef BERTH_PROTO_TESTUTIL_H
#define BERTH_PROTO_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True if $BERTH_SHARED/captures exists. */
bool pt_have_captures(void);

/*
 * Load $BERTH_SHARED/captures/<case_name>/<file> into a malloc'd buffer
 * (NUL-terminated beyond *len).  NULL if absent.
 */
uint8_t *pt_load(const char *case_name, const char *file, size_t *len);

/* Names of all capture cases (sorted); *n set.  Free with pt_free_list. */
char **pt_cases(int *n);
void pt_free_list(char **v, int n);

/* argv.txt of a case as a NULL-terminated vector (free with pt_free_list). */
char **pt_argv(const char *case_name, int *argc);

/* Raw offsets where multiplexing starts, from the case's README.md. */
bool pt_mux_start(const char *case_name, size_t *s2c, size_t *c2s);

/* Demultiplex a whole raw stream from @start: the MSG_DATA bytes (malloc'd). */
uint8_t *pt_demux_all(const uint8_t *raw, size_t len, size_t start, int dir,
		      size_t *out_len);

#include "protocol/protocol.h"

/*
 * Feed @in to the decode call @call in random chunks of 1..@maxc bytes, as
 * a stream arrives (@seed, a uint32_t lvalue, drives the sizes).  The
 * call's first nonzero result, or 0 once @in is consumed.
 */
#define PT_CHUNKED(in, call, seed, maxc)                                     \
	({                                                                   \
		int r_;                                                      \
		for (;;) {                                                   \
			size_t c_ = 1 +                                      \
				    ((seed) = (seed)*1103515245u + 12345u) % \
					    (maxc);                          \
			size_t end_ = (in).size;                             \
			(in).size = (in).pos + c_ < end_ ? (in).pos + c_     \
							 : end_;             \
			r_ = (call);                                         \
			(in).size = end_;                                    \
			if (r_ != 0 || (in).pos >= end_)                     \
				break;                                       \
		}                                                            \
		r_;                                                          \
	})

/*
 * A capture replayed through berth's argv parser and handshake (with the
 * stock server's lists and inc-recursion rule, so it matches the capture),
 * and both directions demultiplexed.
 */
struct pt_session {
	char **argv;
	int argc;
	struct berth_opts o;
	struct berth_hs_result hs;
	uint8_t *c2s, *s2c;
	size_t c2s_len, s2c_len;
	uint8_t *data; /* C2S MSG_DATA bytes after the handshake */
	size_t data_len;
	uint8_t *sdata; /* S2C MSG_DATA bytes after the handshake */
	size_t sdata_len;
	char sbuf[4096];
	char *sargv[64];
};

/* 0, or -1 when the capture is missing or does not replay. */
int pt_session_open(struct pt_session *s, const char *case_name);
void pt_session_close(struct pt_session *s);

/* An entry's path (berth_file_path()), in one of 8 rotating buffers: a
 * test can hold a few at once. */
static inline const char *pt_path(const struct berth_file *f)
{
	static char buf[8][BERTH_PATH_BUF];
	static unsigned k;

	k = (k + 1) % 8;
	return berth_file_path(f, buf[k]);
}

#endif
