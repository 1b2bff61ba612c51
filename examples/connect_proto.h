/* SPDX-License-Identifier: MIT */
/*
 * The tiny framing between berth-connect (the client's "remote shell") and
 * an agent on a Unix socket: first the server argv as NUL-terminated
 * strings ended by an empty one, sent with one SCM_RIGHTS fd (the write end
 * of a pipe on which the agent reports the session's exit code as one
 * byte); then the raw rsync streams in both directions.
 */
#ifndef BERTH_CONNECT_PROTO_H
#define BERTH_CONNECT_PROTO_H

#define CONNECT_MAX_ARGS 256
#define CONNECT_MAX_BYTES 65536

#endif
