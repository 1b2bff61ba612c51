/* SPDX-License-Identifier: MIT */
/*
 * Reading file lists from the stream (session_flist.c).
 */
#ifndef BERTH_SESSION_FLIST_H
#define BERTH_SESSION_FLIST_H

#include <stdint.h>

struct berth_session;

struct berth_flist;

/* Read the initial file list. */
int berth__read_initial_flist(struct berth_session *s);
/* Read one list (@dir_k -1: the initial one) into the session. */
int berth__read_flist(struct berth_session *s, int32_t dir_k);
/* The initial list, or NULL. */
struct berth_flist *berth__first_list(struct berth_session *s);

#endif /* BERTH_SESSION_FLIST_H */
