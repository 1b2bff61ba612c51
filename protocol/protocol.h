/* SPDX-License-Identifier: MIT */
/*
 * berth protocol/ — the rsync wire protocol (versions 30..32) as pure
 * functions over caller-owned buffers.  Nothing here does I/O, allocates per
 * byte, uses threads or knows about files: the engine feeds bytes in and
 * takes bytes out.  Reference: shared/docs/rsync-protocol.md (§ numbers in
 * the comments below refer to it).
 *
 * Conventions
 *  - Input is a caller-owned struct berth_proto_in {ptr, size, pos}; a
 *    decoder consumes from pos and advances it.  Decoders accept any amount
 *    of input at a time (also one byte) and answer BERTH_PROTO_MORE ("need
 *    more input", everything offered was consumed or stashed),
 *    BERTH_PROTO_DONE or a decoder-specific positive event, or a negative
 *    error: -BERTH_EPROTO for anything the peer got wrong, -BERTH_ELIMIT
 *    when a configured limit is exceeded, -BERTH_EPATH for an unsafe name,
 *    -BERTH_EUNSUPPORTED for a feature berth does not implement.
 *  - Primitive getters (berth_proto_get_*) are all-or-nothing: with too few
 *    bytes they return BERTH_PROTO_MORE and consume nothing.
 *  - Output is a caller-owned struct berth_proto_out {ptr, size, pos}; an
 *    encoder either writes the whole item and returns >= 0, or writes nothing
 *    and returns -ENOBUFS.
 *  - Every object is used by one thread at a time; there is no global state.
 */
#ifndef BERTH_PROTOCOL_H
#define BERTH_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth.h"

/* ------------------------------------------------------------------ buffers */

struct berth_proto_in {
	const uint8_t *ptr;
	size_t size;
	size_t pos;
};

struct berth_proto_out {
	uint8_t *ptr;
	size_t size;
	size_t pos;
};

enum {
	BERTH_PROTO_MORE = 0, /* need more input */
	BERTH_PROTO_DONE = 1, /* one unit decoded */
};

/*
 * Bytes of a unit that was split across input chunks (internal to the
 * decoders that embed it; callers never touch it).
 */
struct berth_proto_stash {
	uint8_t *buf;
	size_t len;
	size_t cap;
};

/* ----------------------------------------------------- primitives (§3) */

/* Protocol versions berth speaks. */
#define BERTH_PROTO_MIN 30
#define BERTH_PROTO_MAX 32

/* Special file-list indices (§3.5). */
#define BERTH_NDX_DONE (-1)
#define BERTH_NDX_FLIST_EOF (-2)
#define BERTH_NDX_DEL_STATS (-3)
#define BERTH_NDX_FLIST_OFFSET (-101)

/* One direction's ndx delta state (§3.5); init with berth_ndx_init(). */
struct berth_ndx_state {
	int32_t prev_pos;
	int32_t prev_neg;
};

void berth_ndx_init(struct berth_ndx_state *st);

int berth_proto_get_u8(struct berth_proto_in *in, uint8_t *v);
int berth_proto_get_shortint(struct berth_proto_in *in, uint16_t *v);
int berth_proto_get_int32(struct berth_proto_in *in, int32_t *v);
int berth_proto_get_uint32(struct berth_proto_in *in, uint32_t *v);
/* varint (§3.2): 1..5 bytes, a first byte >= 0xf8 is -BERTH_EPROTO. */
int berth_proto_get_varint(struct berth_proto_in *in, int32_t *v);
/* varlong(min_bytes) (§3.3), min_bytes 1..8; overflow is -BERTH_EPROTO. */
int berth_proto_get_varlong(struct berth_proto_in *in, int min_bytes,
			    int64_t *v);
/*
 * vstring (§3.4) into @buf (capacity @cap, not NUL-terminated unless room:
 * a NUL is appended when len < cap).  A length > @cap is -BERTH_ELIMIT.
 */
int berth_proto_get_vstring(struct berth_proto_in *in, char *buf, size_t cap,
			    size_t *len);
/* ndx (§3.5) using and updating @st.  Out-of-range values: -BERTH_EPROTO. */
int berth_proto_get_ndx(struct berth_proto_in *in, struct berth_ndx_state *st,
			int32_t *v);

int berth_proto_put_u8(struct berth_proto_out *out, uint8_t v);
int berth_proto_put_shortint(struct berth_proto_out *out, uint16_t v);
int berth_proto_put_int32(struct berth_proto_out *out, int32_t v);
int berth_proto_put_uint32(struct berth_proto_out *out, uint32_t v);
/* The stock writer's byte forms (so streams match captures byte for byte). */
int berth_proto_put_varint(struct berth_proto_out *out, int32_t v);
int berth_proto_put_varlong(struct berth_proto_out *out, int64_t v,
			    int min_bytes);
/* len <= 0x7fff, else -EINVAL. */
int berth_proto_put_vstring(struct berth_proto_out *out, const char *s,
			    size_t len);
/* @v >= 0 or one of the negative specials (< -1 ones update prev_neg). */
int berth_proto_put_ndx(struct berth_proto_out *out, struct berth_ndx_state *st,
			int32_t v);
int berth_proto_put_bytes(struct berth_proto_out *out, const void *p,
			  size_t len);

/* ------------------------------------------------ multiplexing (§5) */

enum berth_msg_code {
	BERTH_MSG_DATA = 0,
	BERTH_MSG_ERROR_XFER = 1,
	BERTH_MSG_INFO = 2,
	BERTH_MSG_ERROR = 3,
	BERTH_MSG_WARNING = 4,
	BERTH_MSG_ERROR_SOCKET = 5,
	BERTH_MSG_LOG = 6,
	BERTH_MSG_CLIENT = 7,
	BERTH_MSG_ERROR_UTF8 = 8,
	BERTH_MSG_REDO = 9,
	BERTH_MSG_STATS = 10,
	BERTH_MSG_IO_ERROR = 22,
	BERTH_MSG_IO_TIMEOUT = 33,
	BERTH_MSG_NOOP = 42,
	BERTH_MSG_ERROR_EXIT = 86,
	BERTH_MSG_SUCCESS = 100,
	BERTH_MSG_DELETED = 101,
	BERTH_MSG_NO_SEND = 102,
};

#define BERTH_MPLEX_BASE 7
#define BERTH_MUX_MAX_FRAME 0xffffff

/* Static name of a message code ("MSG_DATA", ...), "?" if unknown. */
const char *berth_msg_name(int code);

/* Which stream the demultiplexer reads: it decides which codes are legal. */
enum berth_demux_dir {
	BERTH_DEMUX_C2S = 0, /* a sending client's stream (what berth reads) */
	BERTH_DEMUX_S2C = 1, /* a server's stream (tests, tools) */
};

/* Demultiplexer state; caller-owned, init/destroy. */
struct berth_demux {
	uint8_t hdr[4];
	unsigned hdr_len;
	bool in_frame;
	int code;
	uint32_t left;
	int dir;
	uint8_t *msg;
	size_t msg_len;
	size_t msg_cap;
};

enum {
	BERTH_DEMUX_DATA = 2, /* ev->ptr/len: a slice of the input, MSG_DATA */
	BERTH_DEMUX_MSG = 3, /* ev: one complete out-of-band message */
};

struct berth_demux_event {
	int code;
	const uint8_t *ptr; /* DATA: points into the input; MSG: into @d */
	size_t len;
	int32_t value; /* int32 payload of IO_ERROR, NO_SEND, SUCCESS,
			  ERROR_EXIT (-1 if ERROR_EXIT was empty) */
};

/*
 * Prepare @d.  Messages other than MSG_DATA longer than @max_msg are
 * -BERTH_ELIMIT.  Returns 0 or -ENOMEM.
 */
int berth_demux_init(struct berth_demux *d, enum berth_demux_dir dir,
		     size_t max_msg);
void berth_demux_destroy(struct berth_demux *d);

/*
 * Consume frame bytes from @in until one event is ready: returns
 * BERTH_DEMUX_DATA (ev->ptr/len: payload bytes inside @in, valid while @in
 * is), BERTH_DEMUX_MSG (ev: a message; ptr valid until the next call), or
 * BERTH_PROTO_MORE when @in is used up.  Zero-length DATA frames
 * (keep-alives) and MSG_NOOP produce no event.  An unknown or illegal code
 * or a fixed-size message of the wrong size is -BERTH_EPROTO.
 */
int berth_demux_poll(struct berth_demux *d, struct berth_proto_in *in,
		     struct berth_demux_event *ev);

/* True if @d is between frames (a clean place for the stream to end). */
bool berth_demux_idle(const struct berth_demux *d);

/* A frame header for @len (< 2^24) payload bytes of @code. */
int berth_mux_put_header(struct berth_proto_out *out, int code, size_t len);
/* Header + payload. */
int berth_mux_put_msg(struct berth_proto_out *out, int code, const void *p,
		      size_t len);
/* A message with a 4-byte int32 payload (SUCCESS, NO_SEND, ERROR_EXIT...). */
int berth_mux_put_int_msg(struct berth_proto_out *out, int code, int32_t v);

#endif /* BERTH_PROTOCOL_H */
