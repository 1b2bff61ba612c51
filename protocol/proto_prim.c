/* SPDX-License-Identifier: MIT */
/*
 * Primitive encodings (§3): fixed-size integers, varint, varlong, vstring,
 * ndx, and the stash that lets unit parsers see split input as contiguous.
 */
#include <errno.h>
#include <assert.h>
#include <stdlib.h>
#include <strings.h>

#include "protocol/proto_int.h"

/* Number of leading one bits of @b (0..8). */
static int leading_ones(uint8_t b)
{
	int n = 0;

	while (n < 8 && (b & (0x80 >> n)))
		n++;
	return n;
}

int berth_proto_get_u8(struct berth_proto_in *in, uint8_t *v)
{
	if (in_avail(in) < 1)
		return BERTH_PROTO_MORE;
	*v = in->ptr[in->pos++];
	return BERTH_PROTO_DONE;
}

int berth_proto_get_shortint(struct berth_proto_in *in, uint16_t *v)
{
	if (in_avail(in) < 2)
		return BERTH_PROTO_MORE;
	*v = (uint16_t)(in->ptr[in->pos] | in->ptr[in->pos + 1] << 8);
	in->pos += 2;
	return BERTH_PROTO_DONE;
}

int berth_proto_get_uint32(struct berth_proto_in *in, uint32_t *v)
{
	if (in_avail(in) < 4)
		return BERTH_PROTO_MORE;
	*v = get_le32(in->ptr + in->pos);
	in->pos += 4;
	return BERTH_PROTO_DONE;
}

int berth_proto_get_int32(struct berth_proto_in *in, int32_t *v)
{
	uint32_t u;
	int r = berth_proto_get_uint32(in, &u);

	if (r == BERTH_PROTO_DONE)
		*v = (int32_t)u;
	return r;
}

int berth_proto_get_varint(struct berth_proto_in *in, int32_t *v)
{
	const uint8_t *p = in->ptr + in->pos;
	uint32_t u = 0;
	int extra, i;

	if (in_avail(in) < 1)
		return BERTH_PROTO_MORE;
	extra = leading_ones(p[0]);
	if (extra > 4)
		return -BERTH_EPROTO;
	if (in_avail(in) < (size_t)extra + 1)
		return BERTH_PROTO_MORE;
	for (i = 0; i < extra; i++)
		u |= (uint32_t)p[1 + i] << (8 * i);
	if (extra < 4)
		u |= (uint32_t)(p[0] & (0xff >> (extra + 1))) << (8 * extra);
	else if (p[0] & 0x07)
		return -BERTH_EPROTO; /* bits above 32 */
	*v = (int32_t)u;
	in->pos += (size_t)extra + 1;
	return BERTH_PROTO_DONE;
}

int berth_proto_get_varlong(struct berth_proto_in *in, int min_bytes,
			    int64_t *v)
{
	const uint8_t *p = in->ptr + in->pos;
	uint64_t u = 0;
	int extra, nlow, i;
	uint8_t top;

	if (min_bytes < 1 || min_bytes > 8)
		return -EINVAL;
	if (in_avail(in) < (size_t)min_bytes)
		return BERTH_PROTO_MORE;
	extra = leading_ones(p[0]);
	nlow = min_bytes - 1 + extra;
	if (nlow > 8)
		return -BERTH_EPROTO;
	if (in_avail(in) < (size_t)min_bytes + (size_t)extra)
		return BERTH_PROTO_MORE;
	for (i = 0; i < nlow; i++)
		u |= (uint64_t)p[1 + i] << (8 * i);
	top = extra ? (uint8_t)(p[0] & (0xff >> (extra + 1))) : p[0];
	if (nlow < 8)
		u |= (uint64_t)top << (8 * nlow);
	else if (top)
		return -BERTH_EPROTO; /* bits above 64 */
	*v = (int64_t)u;
	in->pos += (size_t)min_bytes + (size_t)extra;
	return BERTH_PROTO_DONE;
}

int berth_proto_get_vstring(struct berth_proto_in *in, char *buf, size_t cap,
			    size_t *len)
{
	const uint8_t *p = in->ptr + in->pos;
	size_t n, hdr = 1;

	if (in_avail(in) < 1)
		return BERTH_PROTO_MORE;
	n = p[0];
	if (n & 0x80) {
		if (in_avail(in) < 2)
			return BERTH_PROTO_MORE;
		n = (n & 0x7f) << 8 | p[1];
		hdr = 2;
	}
	if (n > cap)
		return -BERTH_ELIMIT;
	if (in_avail(in) < hdr + n)
		return BERTH_PROTO_MORE;
	memcpy(buf, p + hdr, n);
	if (n < cap)
		buf[n] = '\0';
	*len = n;
	in->pos += hdr + n;
	return BERTH_PROTO_DONE;
}

void berth_ndx_init(struct berth_ndx_state *st)
{
	st->prev_pos = -1;
	st->prev_neg = 1;
	st->plain = false;
}

void berth_ndx_set_protocol(struct berth_ndx_state *st, int protocol)
{
	st->plain = protocol < 30;
}

int berth_proto_get_longint(struct berth_proto_in *in, int64_t *v)
{
	const uint8_t *p = in->ptr + in->pos;
	int32_t lo;
	uint64_t u = 0;

	if (in_avail(in) < 4)
		return BERTH_PROTO_MORE;
	lo = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
		       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
	if (lo != -1) {
		if (lo < 0)
			return -BERTH_EPROTO;
		*v = lo;
		in->pos += 4;
		return BERTH_PROTO_DONE;
	}
	if (in_avail(in) < 12)
		return BERTH_PROTO_MORE;
	for (int i = 0; i < 8; i++)
		u |= (uint64_t)p[4 + i] << (8 * i);
	if (u > INT64_MAX)
		return -BERTH_EPROTO;
	*v = (int64_t)u;
	in->pos += 12;
	return BERTH_PROTO_DONE;
}

/* Below protocol 30: an int32, >= 0 or -1 (NDX_DONE). */
static int get_plain_ndx(struct berth_proto_in *in, int32_t *v)
{
	int32_t n;
	int r = berth_proto_get_int32(in, &n);

	if (r != BERTH_PROTO_DONE)
		return r;
	if (n < BERTH_NDX_DONE)
		return -BERTH_EPROTO;
	*v = n;
	return BERTH_PROTO_DONE;
}

int berth_proto_get_ndx(struct berth_proto_in *in, struct berth_ndx_state *st,
			int32_t *v)
{
	const uint8_t *p = in->ptr + in->pos;
	size_t need = 1, i = 0;
	int32_t *prev;
	int64_t num;
	bool neg;

	if (st->plain)
		return get_plain_ndx(in, v);
	if (in_avail(in) < 1)
		return BERTH_PROTO_MORE;
	if (p[0] == 0) {
		*v = BERTH_NDX_DONE;
		in->pos++;
		return BERTH_PROTO_DONE;
	}
	neg = p[0] == 0xff;
	if (neg) {
		i = 1;
		need = 2;
		if (in_avail(in) < need)
			return BERTH_PROTO_MORE;
	}
	prev = neg ? &st->prev_neg : &st->prev_pos;
	if (p[i] == 0xfe) {
		need += 2;
		if (in_avail(in) < need)
			return BERTH_PROTO_MORE;
		if (p[i + 1] & 0x80) {
			need += 2;
			if (in_avail(in) < need)
				return BERTH_PROTO_MORE;
			num = (int64_t)p[i + 2] | (int64_t)p[i + 3] << 8 |
			      (int64_t)p[i + 4] << 16 |
			      (int64_t)(p[i + 1] & 0x7f) << 24;
		} else {
			num = (int64_t)*prev + (p[i + 1] << 8 | p[i + 2]);
		}
	} else {
		num = (int64_t)*prev + p[i];
	}
	/*
	 * A positive index is >= 0; a negative one is stored as its absolute
	 * value, which must be >= 2 (-1 only has the one-byte form).
	 */
	if (num > INT32_MAX || num < (neg ? 2 : 0))
		return -BERTH_EPROTO;
	*prev = (int32_t)num;
	*v = neg ? (int32_t)-num : (int32_t)num;
	in->pos += need;
	return BERTH_PROTO_DONE;
}

int berth_proto_put_bytes(struct berth_proto_out *out, const void *p,
			  size_t len)
{
	if (out_room(out) < len)
		return -ENOBUFS;
	if (len)
		memcpy(out->ptr + out->pos, p, len);
	out->pos += len;
	return 0;
}

int berth_proto_put_u8(struct berth_proto_out *out, uint8_t v)
{
	return berth_proto_put_bytes(out, &v, 1);
}

int berth_proto_put_shortint(struct berth_proto_out *out, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	return berth_proto_put_bytes(out, b, 2);
}

int berth_proto_put_uint32(struct berth_proto_out *out, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	return berth_proto_put_bytes(out, b, 4);
}

int berth_proto_put_int32(struct berth_proto_out *out, int32_t v)
{
	return berth_proto_put_uint32(out, (uint32_t)v);
}

int berth_proto_put_varint(struct berth_proto_out *out, int32_t v)
{
	return berth_proto_put_varlong(out, (int64_t)(uint32_t)v, 1);
}

/*
 * The stock writer for both varint (min 1, 32-bit value) and varlong: see
 * §3.3 for the rule.
 */
int berth_proto_put_varlong(struct berth_proto_out *out, int64_t v,
			    int min_bytes)
{
	uint8_t le[8], b[9];
	uint64_t u = (uint64_t)v;
	int n = 8, k, i, len;
	uint8_t t;

	if (min_bytes < 1 || min_bytes > 8)
		return -EINVAL;
	for (i = 0; i < 8; i++)
		le[i] = (uint8_t)(u >> (8 * i));
	while (n > 1 && le[n - 1] == 0)
		n--;
	if (n < min_bytes)
		n = min_bytes;
	t = le[n - 1];
	k = n - min_bytes;
	if (t >= (0x80 >> k)) {
		/* Marker byte of k+1 ones, then all n bytes. */
		b[0] = (uint8_t) ~(0xff >> (k + 1));
		memcpy(b + 1, le, (size_t)n);
		len = n + 1;
	} else {
		b[0] = (uint8_t)(~(0xff >> k) | t);
		memcpy(b + 1, le, (size_t)n - 1);
		len = n;
	}
	return berth_proto_put_bytes(out, b, (size_t)len);
}

int berth_proto_put_vstring(struct berth_proto_out *out, const char *s,
			    size_t len)
{
	uint8_t hdr[2];
	size_t hl = 1;

	if (len > 0x7fff)
		return -EINVAL;
	if (len < 0x80) {
		hdr[0] = (uint8_t)len;
	} else {
		hdr[0] = (uint8_t)(0x80 | len >> 8);
		hdr[1] = (uint8_t)len;
		hl = 2;
	}
	if (out_room(out) < hl + len)
		return -ENOBUFS;
	berth_proto_put_bytes(out, hdr, hl);
	return berth_proto_put_bytes(out, s, len);
}

int berth_proto_put_ndx(struct berth_proto_out *out, struct berth_ndx_state *st,
			int32_t v)
{
	uint8_t b[6];
	size_t n = 0;
	int32_t u, d, *prev;

	if (st->plain)
		return v < BERTH_NDX_DONE ? -EINVAL
					  : berth_proto_put_int32(out, v);
	if (v == BERTH_NDX_DONE)
		return berth_proto_put_u8(out, 0);
	if (v < -1) {
		if (v == INT32_MIN)
			return -EINVAL;
		b[n++] = 0xff;
		u = -v;
		prev = &st->prev_neg;
	} else {
		u = v;
		prev = &st->prev_pos;
	}
	d = (int32_t)((int64_t)u - *prev);
	if (d >= 1 && d <= 253) {
		b[n++] = (uint8_t)d;
	} else if (d >= 0 && d <= 0x7fff) {
		b[n++] = 0xfe;
		b[n++] = (uint8_t)(d >> 8);
		b[n++] = (uint8_t)d;
	} else {
		b[n++] = 0xfe;
		b[n++] = (uint8_t)((u >> 24) | 0x80);
		b[n++] = (uint8_t)u;
		b[n++] = (uint8_t)(u >> 8);
		b[n++] = (uint8_t)(u >> 16);
	}
	TRY(berth_proto_put_bytes(out, b, n));
	*prev = u;
	return 0;
}

int berth__stash_run(struct berth_proto_stash *st, struct berth_proto_in *in,
		     berth__unit_fn fn, void *ctx)
{
	struct berth_proto_in view;
	size_t old = st->len, n;
	int r;

	if (old == 0) {
		view = *in;
		r = fn(ctx, &view);
		if (r != BERTH_PROTO_MORE) {
			if (r > 0)
				in->pos = view.pos;
			return r;
		}
		n = in_avail(in);
		if (n >= st->cap)
			return -BERTH_ELIMIT;
		memcpy(st->buf, in->ptr + in->pos, n);
		st->len = n;
		in->pos += n;
		return BERTH_PROTO_MORE;
	}
	n = in_avail(in);
	if (n > st->cap - old)
		n = st->cap - old;
	memcpy(st->buf + old, in->ptr + in->pos, n);
	view.ptr = st->buf;
	view.size = old + n;
	view.pos = 0;
	r = fn(ctx, &view);
	if (r == BERTH_PROTO_MORE) {
		in->pos += n;
		st->len = old + n;
		if (st->len >= st->cap)
			return -BERTH_ELIMIT;
		return BERTH_PROTO_MORE;
	}
	if (r < 0)
		return r;
	/* The unit needed more than the old bytes, so view.pos > old. */
	assert(view.pos > old);
	in->pos += view.pos - old;
	st->len = 0;
	return r;
}

int berth__name_in_list(const char *list, const char *name, size_t len)
{
	const char *p = list, *e;

	while (*p) {
		while (*p == ' ')
			p++;
		e = p;
		while (*e && *e != ' ')
			e++;
		if ((size_t)(e - p) == len && len &&
		    strncasecmp(p, name, len) == 0)
			return 1;
		p = e;
	}
	return 0;
}
