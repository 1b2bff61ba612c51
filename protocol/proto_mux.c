/* SPDX-License-Identifier: MIT */
/*
 * Multiplexed frames (§5): a streaming demultiplexer that presents MSG_DATA
 * as byte slices of the caller's input and everything else as events, and
 * the frame encoder.
 */
#include <errno.h>
#include <stdlib.h>

#include "protocol/proto_int.h"

/* Payload rule per code: -2 illegal, -1 text (any length), else exact size. */
struct msg_rule {
	int code;
	const char *name;
	int c2s; /* legal from a sending client */
	int s2c; /* legal from a server */
	int size;
};

static const struct msg_rule rules[] = {
	{BERTH_MSG_DATA, "MSG_DATA", 1, 1, -1},
	{BERTH_MSG_ERROR_XFER, "MSG_ERROR_XFER", 1, 1, -1},
	{BERTH_MSG_INFO, "MSG_INFO", 1, 1, -1},
	{BERTH_MSG_ERROR, "MSG_ERROR", 1, 1, -1},
	{BERTH_MSG_WARNING, "MSG_WARNING", 1, 1, -1},
	{BERTH_MSG_ERROR_SOCKET, "MSG_ERROR_SOCKET", 0, 0, -1},
	{BERTH_MSG_LOG, "MSG_LOG", 0, 0, -1},
	{BERTH_MSG_CLIENT, "MSG_CLIENT", 0, 0, -1},
	{BERTH_MSG_ERROR_UTF8, "MSG_ERROR_UTF8", 0, 0, -1},
	{BERTH_MSG_REDO, "MSG_REDO", 0, 0, 4},
	{BERTH_MSG_STATS, "MSG_STATS", 0, 0, -1},
	{BERTH_MSG_IO_ERROR, "MSG_IO_ERROR", 1, 1, 4},
	{BERTH_MSG_IO_TIMEOUT, "MSG_IO_TIMEOUT", 0, 1, 4},
	{BERTH_MSG_NOOP, "MSG_NOOP", 1, 1, 0},
	{BERTH_MSG_ERROR_EXIT, "MSG_ERROR_EXIT", 1, 1, -3},
	{BERTH_MSG_SUCCESS, "MSG_SUCCESS", 0, 1, 4},
	{BERTH_MSG_DELETED, "MSG_DELETED", 0, 1, -1},
	{BERTH_MSG_NO_SEND, "MSG_NO_SEND", 1, 1, 4},
};

static const struct msg_rule *rule_of(int code)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].code == code)
			return &rules[i];
	return NULL;
}

const char *berth_msg_name(int code)
{
	const struct msg_rule *r = rule_of(code);

	return r ? r->name : "?";
}

int berth_demux_init(struct berth_demux *d, enum berth_demux_dir dir,
		     size_t max_msg)
{
	memset(d, 0, sizeof(*d));
	d->dir = dir;
	d->msg_cap = max_msg < 4 ? 4 : max_msg;
	d->msg = malloc(d->msg_cap);
	return d->msg ? 0 : -ENOMEM;
}

void berth_demux_destroy(struct berth_demux *d)
{
	free(d->msg);
	d->msg = NULL;
}

bool berth_demux_idle(const struct berth_demux *d)
{
	return !d->in_frame && d->hdr_len == 0;
}

/* Validate a just-read header and set up the frame. */
static int start_frame(struct berth_demux *d)
{
	uint32_t h = get_le32(d->hdr);
	unsigned tag = h >> 24;
	const struct msg_rule *r;

	d->hdr_len = 0;
	if (tag < BERTH_MPLEX_BASE)
		return -BERTH_EPROTO;
	d->code = (int)(tag - BERTH_MPLEX_BASE);
	d->left = h & 0xffffff;
	r = rule_of(d->code);
	if (!r || !(d->dir == BERTH_DEMUX_C2S ? r->c2s : r->s2c))
		return -BERTH_EPROTO;
	if (r->size >= 0 && d->left != (uint32_t)r->size)
		return -BERTH_EPROTO;
	if (r->size == -3 && d->left != 0 && d->left != 4)
		return -BERTH_EPROTO;
	if (d->code != BERTH_MSG_DATA && d->left > d->msg_cap)
		return -BERTH_ELIMIT;
	d->in_frame = true;
	d->msg_len = 0;
	return 0;
}

static int finish_msg(struct berth_demux *d, struct berth_demux_event *ev)
{
	d->in_frame = false;
	if (d->code == BERTH_MSG_NOOP)
		return 0;
	ev->code = d->code;
	ev->ptr = d->msg;
	ev->len = d->msg_len;
	ev->value = d->msg_len == 4 ? (int32_t)get_le32(d->msg) : -1;
	return BERTH_DEMUX_MSG;
}

int berth_demux_poll(struct berth_demux *d, struct berth_proto_in *in,
		     struct berth_demux_event *ev)
{
	size_t n;
	int r;

	for (;;) {
		if (!d->in_frame) {
			while (d->hdr_len < 4 && in_avail(in))
				d->hdr[d->hdr_len++] = in->ptr[in->pos++];
			if (d->hdr_len < 4)
				return BERTH_PROTO_MORE;
			TRY(start_frame(d));
			if (d->left == 0) {
				if (d->code == BERTH_MSG_DATA) {
					d->in_frame = false;
					continue;
				}
				r = finish_msg(d, ev);
				if (r)
					return r;
				continue;
			}
		}
		if (!in_avail(in))
			return BERTH_PROTO_MORE;
		n = in_avail(in) < d->left ? in_avail(in) : d->left;
		if (d->code == BERTH_MSG_DATA) {
			ev->code = BERTH_MSG_DATA;
			ev->ptr = in->ptr + in->pos;
			ev->len = n;
			ev->value = 0;
			in->pos += n;
			d->left -= (uint32_t)n;
			if (!d->left)
				d->in_frame = false;
			return BERTH_DEMUX_DATA;
		}
		memcpy(d->msg + d->msg_len, in->ptr + in->pos, n);
		d->msg_len += n;
		in->pos += n;
		d->left -= (uint32_t)n;
		if (!d->left) {
			r = finish_msg(d, ev);
			if (r)
				return r;
		}
	}
}

int berth_mux_put_header(struct berth_proto_out *out, int code, size_t len)
{
	if (len > BERTH_MUX_MAX_FRAME || code < 0 ||
	    code > 255 - BERTH_MPLEX_BASE)
		return -EINVAL;
	return berth_proto_put_uint32(
		out, (uint32_t)(code + BERTH_MPLEX_BASE) << 24 | (uint32_t)len);
}

int berth_mux_put_msg(struct berth_proto_out *out, int code, const void *p,
		      size_t len)
{
	if (out_room(out) < 4 + len)
		return -ENOBUFS;
	TRY(berth_mux_put_header(out, code, len));
	return berth_proto_put_bytes(out, p, len);
}

int berth_mux_put_int_msg(struct berth_proto_out *out, int code, int32_t v)
{
	uint8_t b[4];

	put_le32(b, (uint32_t)v);
	return berth_mux_put_msg(out, code, b, 4);
}
