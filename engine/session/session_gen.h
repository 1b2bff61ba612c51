/* SPDX-License-Identifier: MIT */
/*
 * The generator thread (session_gen*.c).
 */
#ifndef BERTH_SESSION_GEN_H
#define BERTH_SESSION_GEN_H

/* Generator thread body (arg: the session). */
void *berth__gen_main(void *arg);

#endif /* BERTH_SESSION_GEN_H */
