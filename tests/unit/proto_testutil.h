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

#endif
