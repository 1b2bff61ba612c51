/* SPDX-License-Identifier: MIT */
/*
 * Net-out (session_net_out.c): the framing writer and its thread.
 */
#ifndef BERTH_SESSION_NET_OUT_H
#define BERTH_SESSION_NET_OUT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "protocol/protocol.h"

/*
 * The output side: callers append framed bytes to a bounded buffer under
 * out->lock; the net-out thread writes them.  Before multiplexing starts,
 * berth__out_raw() writes directly.
 */
struct berth_out {
	int fd;
	int abort_fd; /* a waker's fd: readable = give up writing */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* to the writer: bytes queued or closing */
	pthread_cond_t space; /* to producers: room, or drained */
	uint8_t *buf, *spare; /* data frames; the writer swaps them */
	size_t len, cap, spare_cap, limit;
	uint8_t *mbuf, *mspare; /* message frames (written first) */
	size_t mlen, mbuf_cap, mspare_cap;
	bool flush; /* write held data now */
	uint64_t bwlimit; /* --bwlimit: bytes per second written, 0: off */
	int keepalive_ms; /* --timeout: an empty data frame after this
			   * much silence (0: never) */
	struct timespec last_write;
	size_t frame_hdr; /* offset of the open MSG_DATA header, or SIZE_MAX */
	bool writing; /* the writer holds a batch */
	bool closing;
	int err; /* first write error (-errno) */
	bool started;
	pthread_t thread;
	struct berth_ndx_state ndx; /* S2C ndx state (generator only) */
	uint64_t total_written;
};

int berth__out_init(struct berth_out *o, int fd, int abort_fd, size_t limit);
int berth__out_start(struct berth_out *o);
/* Write unframed bytes now (handshake only). */
int berth__out_raw(struct berth_out *o, const void *p, size_t len);
/*
 * Append MSG_DATA bytes (may block for space).  0 or the writer's error.
 * Small amounts are held until berth__out_flush() or 32 KiB, as rsync's
 * writer does, so that messages queued meanwhile reach the client first.
 */
int berth__out_data(struct berth_out *o, const void *p, size_t len);
/* Append one message frame (never blocks for space: messages are few). */
int berth__out_msg(struct berth_out *o, int code, const void *p, size_t len);
/* Write the data held so far (the caller is about to wait for the peer). */
void berth__out_flush(struct berth_out *o);
/* The same within @ms milliseconds: -ETIMEDOUT if not. */
int berth__out_drain_timed(struct berth_out *o, int ms);
/* Wait until everything queued so far is written.  0 or error. */
int berth__out_drain(struct berth_out *o);
/* Write what is queued (bounded by the abort fd), stop and join the
 * writer; after it nothing touches the output fd. */
void berth__out_stop(struct berth_out *o);
/* Drain, stop and join the writer, free buffers.  Returns the error. */
int berth__out_close(struct berth_out *o);

/* Wait until @fd is ready for @events, or @stop_fd is signalled:
 * 0, -BERTH_ECANCELLED (stopped) or -errno. */
int berth__wait_fd(int fd, short events, int stop_fd);

#endif /* BERTH_SESSION_NET_OUT_H */
