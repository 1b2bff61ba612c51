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

#endif /* BERTH_PROTOCOL_H */
