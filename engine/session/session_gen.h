/* SPDX-License-Identifier: MIT */
/*
 * The generator thread (session_gen*.c).
 */
#ifndef BERTH_SESSION_GEN_H
#define BERTH_SESSION_GEN_H

#include <stdbool.h>

struct berth_session;

/* Generator thread body (arg: the session). */
void *berth__gen_main(void *arg);

/*
 * The generator's own mkdirs carry a meta.user of theirs, and it waits for
 * their outcome before it generates anything beneath (a directory that
 * cannot be made is reported once and its contents skipped, as rsync's
 * generator does).  Is @user one of them?  Any thread.
 */
bool berth__gen_mkdir_token(const void *user);
/* The commit stage's outcome (0 or -errno) of such a mkdir: recorded for
 * the generator.  Commit thread (the event callback). */
void berth__gen_mkdir_done(struct berth_session *s, void *user, int err);

#endif /* BERTH_SESSION_GEN_H */
