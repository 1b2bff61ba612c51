/* SPDX-License-Identifier: MIT */
/*
 * Net-in: the de-multiplexing reader of the input fd used by the net-in
 * thread, and the out-of-band messages from the sender (MSG_IO_ERROR,
 * MSG_NO_SEND, MSG_ERROR_EXIT).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session/session.h"

#define IN_CHUNK (256 * 1024)
#define MAX_MSG (64 * 1024)
#define SHORT_READ 1024 /* less than one segment of a busy stream */

int berth__in_init(struct berth_in *in, struct berth_session *s, int fd,
		   int stop_fd)
{
	memset(in, 0, sizeof(*in));
	in->s = s;
	in->fd = fd;
	in->stop_fd = stop_fd;
	in->tcp = berth_plat_is_tcp(fd);
	in->raw_cap = IN_CHUNK;
	in->data_cap = 2 * IN_CHUNK;
	in->raw = malloc(in->raw_cap);
	in->buf = in->data = malloc(in->data_cap);
	berth_ndx_init(&in->ndx);
	if (!in->raw || !in->buf) {
		berth__in_destroy(in);
		return -ENOMEM;
	}
	return 0;
}

void berth__in_destroy(struct berth_in *in)
{
	if (in->muxed)
		berth_demux_destroy(&in->demux);
	free(in->raw);
	free(in->buf);
	in->raw = in->buf = in->data = NULL;
}

int berth__in_start_mux(struct berth_in *in)
{
	size_t left = in->data_len - in->data_pos;
	int ret = berth_demux_init(&in->demux, BERTH_DEMUX_C2S, MAX_MSG);

	if (ret < 0)
		return ret;
	in->muxed = true;
	/* Bytes read past the handshake are frames: de-multiplex them. */
	if (left > in->raw_cap) {
		uint8_t *p = realloc(in->raw, left);

		if (!p)
			return -ENOMEM;
		in->raw = p;
		in->raw_cap = left;
	}
	memcpy(in->raw, in->data + in->data_pos, left);
	in->raw_pos = 0;
	in->raw_len = left;
	in->data_pos = in->data_len = 0;
	return 0;
}

/* Data lent from in->raw: what is left of it moves to in->buf. */
static int data_settle(struct berth_in *in)
{
	size_t live = in->data_len - in->data_pos;
	uint8_t *p;

	if (in->data == in->buf)
		return 0;
	if (live > in->data_cap) {
		p = realloc(in->buf, live);
		if (!p)
			return -ENOMEM;
		in->buf = p;
		in->data_cap = live;
	}
	memcpy(in->buf, in->data + in->data_pos, live);
	in->data = in->buf;
	in->data_pos = 0;
	in->data_len = live;
	return 0;
}

/* Read what the fd has into in->raw (blocking; cancellable). */
static int read_raw(struct berth_in *in)
{
	ssize_t n;
	int ret;

	ret = data_settle(in); /* in->raw is written over below */
	if (ret < 0)
		return ret;
	if (in->raw_pos == in->raw_len)
		in->raw_pos = in->raw_len = 0;
	if (in->raw_len == in->raw_cap) {
		memmove(in->raw, in->raw + in->raw_pos,
			in->raw_len - in->raw_pos);
		in->raw_len -= in->raw_pos;
		in->raw_pos = 0;
	}
	for (;;) {
		ret = berth__wait_fd(in->fd, POLLIN, in->stop_fd);
		if (ret < 0)
			return ret;
		n = read(in->fd, in->raw + in->raw_len,
			 in->raw_cap - in->raw_len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) /* the client went: reported as rsync does */
			return -EPIPE; /* (berth__session_fatal(), code 12) */
		in->raw_len += (size_t)n;
		in->total_read += (uint64_t)n;
		/* A short read: the client may be waiting for its ACK. */
		if (in->tcp && n < SHORT_READ)
			berth_plat_quickack(in->fd);
		return 0;
	}
}

/* Room for @n more data bytes at the end of in->data. */
static int data_room(struct berth_in *in, size_t n)
{
	size_t live;
	uint8_t *p;
	int ret = data_settle(in);

	if (ret < 0)
		return ret;
	live = in->data_len - in->data_pos;
	if (in->data_pos > 0 && (in->data_cap - in->data_len < n ||
				 in->data_pos > in->data_cap / 2)) {
		memmove(in->data, in->data + in->data_pos, live);
		in->data_pos = 0;
		in->data_len = live;
	}
	if (in->data_cap - in->data_len >= n)
		return 0;
	p = realloc(in->buf, in->data_len + n);
	if (!p)
		return -ENOMEM;
	in->buf = in->data = p;
	in->data_cap = in->data_len + n;
	return 0;
}

/* Turn raw bytes into data bytes (and messages) until at least one data
 * byte arrived or the raw buffer is empty. */
static int demux_some(struct berth_in *in)
{
	struct berth_demux_event ev;
	struct berth_proto_in pin;
	int ret, got = 0;

	while (in->raw_pos < in->raw_len) {
		pin.ptr = in->raw + in->raw_pos;
		pin.size = in->raw_len - in->raw_pos;
		pin.pos = 0;
		ret = berth_demux_poll(&in->demux, &pin, &ev);
		in->raw_pos += pin.pos;
		if (ret < 0)
			return ret;
		if (ret == BERTH_DEMUX_DATA && in->data_pos == in->data_len) {
			/* Nothing pending: read the payload where it is. */
			in->data = in->raw + (ev.ptr - in->raw);
			in->data_pos = 0;
			in->data_len = ev.len;
			got = 1;
		} else if (ret == BERTH_DEMUX_DATA) {
			ret = data_room(in, ev.len);
			if (ret < 0)
				return ret;
			memcpy(in->data + in->data_len, ev.ptr, ev.len);
			in->data_len += ev.len;
			got = 1;
		} else if (ret == BERTH_DEMUX_MSG) {
			ret = berth__session_on_msg(in->s, &ev);
			if (ret < 0)
				return ret;
		}
		if (got)
			break;
	}
	return 0;
}

/*
 * Frames read only to be dropped: true once the client has answered our
 * MSG_ERROR_EXIT with its own (protocol >= 31: it then waits for us to
 * close, as we waited for it), or the stream is not frames any more.
 */
static bool discard_frames(struct berth_in *in, const uint8_t *p, size_t len)
{
	struct berth_proto_in pin = {p, len, 0};
	struct berth_demux_event ev;
	int r;

	if (!in->muxed)
		return false;
	while (pin.pos < pin.size) {
		r = berth_demux_poll(&in->demux, &pin, &ev);
		if (r < 0 ||
		    (r == BERTH_DEMUX_MSG && ev.code == BERTH_MSG_ERROR_EXIT))
			return true;
		if (r == BERTH_PROTO_MORE)
			break;
	}
	return false;
}

void berth__in_discard(struct berth_in *in, int ms, int idle_ms)
{
	struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
	struct timespec t0, t;
	uint8_t sink[65536];
	ssize_t n;
	long left;

	if (discard_frames(in, in->raw + in->raw_pos,
			   in->raw_len - in->raw_pos))
		return;
	in->raw_pos = in->raw_len;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = ms - ((t.tv_sec - t0.tv_sec) * 1000 +
			     (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (idle_ms > 0 && left > idle_ms)
			left = idle_ms;
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return;
		n = read(in->fd, sink, sizeof(sink));
		if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			return;
		if (n > 0 && discard_frames(in, sink, (size_t)n))
			return;
	}
}

int berth__in_more(struct berth_in *in)
{
	size_t before = in->data_len - in->data_pos;
	int ret;

	while (in->data_len - in->data_pos == before) {
		if (!in->muxed) {
			if (in->raw_pos == in->raw_len) {
				ret = read_raw(in);
				if (ret < 0)
					return ret;
			}
			ret = data_room(in, in->raw_len - in->raw_pos);
			if (ret < 0)
				return ret;
			memcpy(in->data + in->data_len, in->raw + in->raw_pos,
			       in->raw_len - in->raw_pos);
			in->data_len += in->raw_len - in->raw_pos;
			in->raw_pos = in->raw_len;
			continue;
		}
		if (in->raw_pos == in->raw_len) {
			ret = read_raw(in);
			if (ret < 0)
				return ret;
		}
		ret = demux_some(in);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int berth__in_need(struct berth_in *in, size_t n)
{
	int ret;

	while (in->data_len - in->data_pos < n) {
		ret = berth__in_more(in);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Run a primitive getter, reading more until it has its bytes. */
#define IN_GET(in, call)                                               \
	do {                                                           \
		for (;;) {                                             \
			struct berth_proto_in v_ = berth__in_view(in); \
			int r_ = (call);                               \
			if (r_ < 0)                                    \
				return r_;                             \
			if (r_ != BERTH_PROTO_MORE) {                  \
				berth__in_consumed(in, v_.pos);        \
				return 0;                              \
			}                                              \
			r_ = berth__in_more(in);                       \
			if (r_ < 0)                                    \
				return r_;                             \
		}                                                      \
	} while (0)

int berth__in_int32(struct berth_in *in, int32_t *v)
{
	IN_GET(in, berth_proto_get_int32(&v_, v));
}

int berth__in_u8(struct berth_in *in, uint8_t *v)
{
	IN_GET(in, berth_proto_get_u8(&v_, v));
}

int berth__in_shortint(struct berth_in *in, uint16_t *v)
{
	IN_GET(in, berth_proto_get_shortint(&v_, v));
}

static int in_ndx(struct berth_in *in, int32_t *v)
{
	IN_GET(in, berth_proto_get_ndx(&v_, &in->ndx, v));
}

int berth__in_ndx(struct berth_in *in, int32_t *v)
{
	int ret = in_ndx(in, v);

	/* --iconv: the sender numbers entries in the order it sent them. */
	if (ret == 0)
		*v = berth__ndx_from_wire(in->s, *v);
	return ret;
}

int berth__in_vstring(struct berth_in *in, char *buf, size_t cap, size_t *len)
{
	IN_GET(in, berth_proto_get_vstring(&v_, buf, cap, len));
}

int berth__in_bytes(struct berth_in *in, void *buf, size_t n)
{
	int ret = berth__in_need(in, n);

	if (ret < 0)
		return ret;
	memcpy(buf, in->data + in->data_pos, n);
	berth__in_consumed(in, n);
	return 0;
}

int berth__session_on_msg(struct berth_session *s,
			  const struct berth_demux_event *ev)
{
	bool ok;

	switch (ev->code) {
	case BERTH_MSG_IO_ERROR:
		atomic_fetch_or(&s->rep.io_error, ev->value);
		return 0;
	case BERTH_MSG_NO_SEND: {
		int32_t ndx = berth__ndx_from_wire(s, ev->value);
		struct sess_list *l;
		int32_t i = -1;

		pthread_mutex_lock(&s->sync.lock);
		l = ndx >= 0 ? berth__list_of(s, ndx, &i) : NULL;
		ok = l && i >= 0 && l->fst[i].state == FST_REQUESTED;
		if ((ok && berth__fst_done(s, ndx)) || s->sync.done_waiters)
			pthread_cond_broadcast(&s->sync.cond);
		pthread_mutex_unlock(&s->sync.lock);
		return ok ? 0 : -BERTH_EPROTO;
	}
	case BERTH_MSG_ERROR_EXIT:
		/* The client hit a fatal error: end with its code. */
		pthread_mutex_lock(&s->sync.lock);
		berth__set_fatal(s, ev->value > 0 ? ev->value : RERR_PARTIAL);
		pthread_cond_broadcast(&s->sync.cond);
		pthread_mutex_unlock(&s->sync.lock);
		return -BERTH_ECANCELLED;
	default:
		return 0; /* informational: nothing for a receiver to do */
	}
}
