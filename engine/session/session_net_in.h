/* SPDX-License-Identifier: MIT */
/*
 * Net-in (session_net_in.c): the de-multiplexing reader of the input fd,
 * and the sender's out-of-band messages.
 */
#ifndef BERTH_SESSION_NET_IN_H
#define BERTH_SESSION_NET_IN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "protocol/protocol.h"

struct berth_session;

/*
 * The input side: reads the input fd, and once multiplexing has started,
 * de-multiplexes it into a contiguous buffer of data bytes; out-of-band
 * messages go to berth__session_on_msg().  Used by the net-in thread only.
 */
struct berth_in {
	struct berth_session *s;
	int fd;
	int stop_fd; /* a waker's fd: readable = stop reading */
	bool tcp; /* a short read asks for an ACK now (berth_plat_quickack) */
	bool muxed;
	struct berth_demux demux;
	uint8_t *raw; /* bytes read, not yet de-multiplexed */
	size_t raw_len, raw_pos, raw_cap;
	/* The data bytes: in->buf, or (lent) a frame's payload still in
	 * in->raw, read in place instead of copied; in->buf takes what is
	 * left of it before in->raw is read into again. */
	uint8_t *data;
	size_t data_len, data_pos;
	uint8_t *buf; /* de-multiplexed data bytes that had to be copied */
	size_t data_cap; /* of in->buf */
	struct berth_ndx_state ndx;
	_Atomic uint64_t total_read; /* also read by other threads */
	uint64_t data_done; /* data bytes consumed, mux headers not counted */
};

int berth__in_init(struct berth_in *in, struct berth_session *s, int fd,
		   int stop_fd);
/* Read and drop input until EOF, the stop fd, or @ms milliseconds (or,
   with @idle_ms > 0, until no input came for that long). */
void berth__in_discard(struct berth_in *in, int ms, int idle_ms);
void berth__in_destroy(struct berth_in *in);
/* Switch to de-multiplexing (right after the handshake). */
int berth__in_start_mux(struct berth_in *in);
/* Make at least @n data bytes available at in->data + in->data_pos. */
int berth__in_need(struct berth_in *in, size_t n);
/* Make at least one more byte available (after a decoder said MORE). */
int berth__in_more(struct berth_in *in);
/* The available bytes as a protocol input; consume with in_consumed(). */
static inline struct berth_proto_in berth__in_view(struct berth_in *in)
{
	struct berth_proto_in v = {in->data + in->data_pos,
				   in->data_len - in->data_pos, 0};
	return v;
}
static inline void berth__in_consumed(struct berth_in *in, size_t n)
{
	in->data_pos += n;
	in->data_done += n;
}
int berth__in_int32(struct berth_in *in, int32_t *v);
int berth__in_u8(struct berth_in *in, uint8_t *v);
int berth__in_shortint(struct berth_in *in, uint16_t *v);
int berth__in_ndx(struct berth_in *in, int32_t *v);
int berth__in_vstring(struct berth_in *in, char *buf, size_t cap, size_t *len);
int berth__in_bytes(struct berth_in *in, void *buf, size_t n);

/* An out-of-band message from the sender (MSG_IO_ERROR, MSG_NO_SEND,
 * MSG_ERROR_EXIT): 0, or an error that ends the session. */
int berth__session_on_msg(struct berth_session *s,
			  const struct berth_demux_event *ev);

#endif /* BERTH_SESSION_NET_IN_H */
