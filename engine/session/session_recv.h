/* SPDX-License-Identifier: MIT */
/*
 * The receiver loop on the net-in thread (session_recv.c).
 */
#ifndef BERTH_SESSION_RECV_H
#define BERTH_SESSION_RECV_H

#include <stddef.h>

struct berth_session;

int berth__recv_loop(struct berth_session *s);
/* Delta apply's output callback (arg: the session). */
int berth__recv_apply_out(void *arg, const void *buf, size_t len);

#endif /* BERTH_SESSION_RECV_H */
