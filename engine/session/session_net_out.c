/* SPDX-License-Identifier: MIT */
/*
 * Net-out: the framing writer.  Producers append MSG_DATA bytes and message
 * frames to a bounded buffer; the net-out thread writes them, keeps the link
 * alive (--timeout) and honours --bwlimit.
 *
 * Lock order: out->lock is a leaf.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/session/session.h"

#define OUT_FRAME_MAX (32 * 1024) /* what the stock writer emits */

/* Wait until @fd is ready for @events, or @stop_fd is signalled. */
int berth__wait_fd(int fd, short events, int stop_fd)
{
	struct pollfd pfd[2] = {
		{.fd = fd, .events = events},
		{.fd = stop_fd, .events = POLLIN},
	};

	for (;;) {
		if (poll(pfd, 2, -1) >= 0)
			return pfd[1].revents ? -BERTH_ECANCELLED : 0;
		if (errno != EINTR)
			return -errno;
	}
}

int berth__out_init(struct berth_out *o, int fd, int abort_fd, size_t limit)
{
	memset(o, 0, sizeof(*o));
	o->fd = fd;
	o->abort_fd = abort_fd;
	o->limit = limit;
	o->cap = limit + OUT_FRAME_MAX + 64;
	o->spare_cap = o->cap;
	o->buf = malloc(o->cap);
	o->spare = malloc(o->spare_cap);
	o->mbuf_cap = o->mspare_cap = 4096;
	o->mbuf = malloc(o->mbuf_cap);
	o->mspare = malloc(o->mspare_cap);
	o->frame_hdr = SIZE_MAX;
	berth_ndx_init(&o->ndx);
	if (!o->buf || !o->spare || !o->mbuf || !o->mspare) {
		free(o->buf);
		free(o->spare);
		free(o->mbuf);
		free(o->mspare);
		return -ENOMEM;
	}
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->wake, NULL);
	pthread_cond_init(&o->space, NULL);
	return 0;
}

/* --bwlimit: after @n bytes, sleep as long as they take at @bps. */
static void throttle(uint64_t bps, size_t n)
{
	uint64_t ns = (uint64_t)n * 1000000000ull / bps;
	struct timespec ts = {(time_t)(ns / 1000000000ull),
			      (long)(ns % 1000000000ull)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Write everything, unless told to give up: each piece waits for room with
 * poll() beside the abort fd and is at most PIPE_BUF bytes, which a pipe or
 * socket with room takes without blocking, so a stalled client can never
 * keep the writer from seeing the abort.
 */
static int write_all(struct berth_out *o, const uint8_t *p, size_t len)
{
	ssize_t n;
	int ret;

	while (len > 0) {
		ret = berth__wait_fd(o->fd, POLLOUT, o->abort_fd);
		if (ret < 0)
			return ret;
		n = write(o->fd, p, len < 4096 ? len : 4096);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (o->bwlimit)
			throttle(o->bwlimit, (size_t)n);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int berth__out_raw(struct berth_out *o, const void *p, size_t len)
{
	int ret = write_all(o, p, len);

	if (ret == 0)
		o->total_written += len;
	return ret;
}

/* Data goes out when this much is queued, on a flush, or after a pause. */
#define OUT_FLUSH_AT OUT_FRAME_MAX
#define OUT_LINGER_NS 1000000000L

static bool data_due(const struct berth_out *o)
{
	return o->len > 0 && (o->len >= OUT_FLUSH_AT || o->flush || o->closing);
}

static long ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000 +
	       (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* With --timeout, a side that said nothing for N/2 s sends an empty
 * MSG_DATA frame (§5.4).  Called with o->lock held, nothing queued. */
static void keepalive(struct berth_out *o)
{
	static const uint8_t frame[4] = {0, 0, 0,
					 BERTH_MPLEX_BASE + BERTH_MSG_DATA};

	if (o->keepalive_ms && o->mlen == 0 && o->len == 0 &&
	    ms_since(&o->last_write) >= o->keepalive_ms &&
	    o->mbuf_cap >= sizeof(frame)) {
		memcpy(o->mbuf, frame, sizeof(frame));
		o->mlen = sizeof(frame);
	}
}

/*
 * The writer: messages first, then data that is due.  As rsync's writer,
 * it holds small amounts of data until a flush point, and messages overtake
 * data that is still held (clients print in arrival order).
 */
static void *out_main(void *arg)
{
	struct berth_out *o = arg;
	uint8_t *batch = NULL, *msgs;
	size_t len, mlen, batch_cap = 0, mcap;
	struct timespec until;
	int ret;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		while (o->mlen == 0 && !data_due(o) && !o->closing) {
			if (o->len == 0 && !o->keepalive_ms) {
				pthread_cond_wait(&o->wake, &o->lock);
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_nsec += OUT_LINGER_NS % 1000000000L;
			until.tv_sec += OUT_LINGER_NS / 1000000000L +
					until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			if (pthread_cond_timedwait(&o->wake, &o->lock,
						   &until) == ETIMEDOUT) {
				o->flush = true;
				keepalive(o);
			}
		}
		if (o->mlen == 0 && o->len == 0)
			break; /* closing, nothing left */
		/* Take the messages, and the data if it is due. */
		msgs = o->mbuf;
		mcap = o->mbuf_cap;
		mlen = o->mlen;
		o->mbuf = o->mspare;
		o->mspare = NULL;
		o->mbuf_cap = o->mspare_cap;
		o->mlen = 0;
		len = 0;
		if (data_due(o)) {
			batch = o->buf;
			batch_cap = o->cap;
			len = o->len;
			o->buf = o->spare;
			o->cap = o->spare_cap;
			o->spare = NULL;
			o->len = 0;
			o->frame_hdr = SIZE_MAX;
			o->flush = false;
		}
		o->writing = true;
		pthread_cond_broadcast(&o->space);
		pthread_mutex_unlock(&o->lock);

		ret = o->err;
		if (!ret && mlen)
			ret = write_all(o, msgs, mlen);
		if (!ret && len)
			ret = write_all(o, batch, len);

		pthread_mutex_lock(&o->lock);
		o->mspare = msgs;
		o->mspare_cap = mcap;
		if (len) {
			o->spare = batch;
			o->spare_cap = batch_cap;
		}
		o->writing = false;
		o->total_written += len + mlen;
		clock_gettime(CLOCK_MONOTONIC, &o->last_write);
		if (ret < 0 && !o->err)
			o->err = ret;
		pthread_cond_broadcast(&o->space);
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

int berth__out_start(struct berth_out *o)
{
	int ret = -pthread_create(&o->thread, NULL, out_main, o);

	if (ret == 0)
		o->started = true;
	return ret;
}

/* Wait until @n more bytes fit.  Called with o->lock held. */
static int out_wait_room(struct berth_out *o, size_t n)
{
	while (!o->err && o->len + n > o->limit && o->len > 0) {
		o->flush = true; /* a full buffer is due */
		pthread_cond_signal(&o->wake);
		pthread_cond_wait(&o->space, &o->lock);
	}
	return o->err;
}

int berth__out_data(struct berth_out *o, const void *p, size_t len)
{
	const uint8_t *src = p;
	size_t room, n;
	uint32_t flen;
	int ret = 0;

	pthread_mutex_lock(&o->lock);
	while (len > 0) {
		ret = out_wait_room(o,
				    len < OUT_FRAME_MAX ? len : OUT_FRAME_MAX);
		if (ret < 0)
			break;
		if (o->frame_hdr == SIZE_MAX) {
			o->frame_hdr = o->len;
			memset(o->buf + o->len, 0, 4);
			o->buf[o->len + 3] = BERTH_MPLEX_BASE + BERTH_MSG_DATA;
			o->len += 4;
		}
		flen = (uint32_t)(o->len - o->frame_hdr - 4);
		room = OUT_FRAME_MAX - flen;
		n = len < room ? len : room;
		memcpy(o->buf + o->len, src, n);
		o->len += n;
		flen += (uint32_t)n;
		o->buf[o->frame_hdr] = (uint8_t)flen;
		o->buf[o->frame_hdr + 1] = (uint8_t)(flen >> 8);
		o->buf[o->frame_hdr + 2] = (uint8_t)(flen >> 16);
		if (flen == OUT_FRAME_MAX)
			o->frame_hdr = SIZE_MAX;
		src += n;
		len -= n;
	}
	if (o->len >= OUT_FLUSH_AT)
		pthread_cond_signal(&o->wake);
	pthread_mutex_unlock(&o->lock);
	return ret;
}

int berth__out_msg(struct berth_out *o, int code, const void *p, size_t len)
{
	struct berth_proto_out po;
	uint8_t *nb;
	size_t need;
	int ret;

	if (len > OUT_FRAME_MAX)
		len = OUT_FRAME_MAX; /* messages are text lines: cut */
	pthread_mutex_lock(&o->lock);
	ret = o->err;
	need = o->mlen + len + 4;
	if (ret == 0 && need > o->mbuf_cap) {
		/* Messages never wait for the writer: grow instead. */
		nb = realloc(o->mbuf, need * 2);
		if (!nb) {
			ret = -ENOMEM;
		} else {
			o->mbuf = nb;
			o->mbuf_cap = need * 2;
		}
	}
	if (ret == 0) {
		po.ptr = o->mbuf;
		po.size = o->mbuf_cap;
		po.pos = o->mlen;
		ret = berth_mux_put_msg(&po, code, p, len);
		if (ret >= 0) {
			o->mlen = po.pos;
			ret = 0;
			pthread_cond_signal(&o->wake);
		}
	}
	pthread_mutex_unlock(&o->lock);
	return ret;
}

void berth__out_flush(struct berth_out *o)
{
	pthread_mutex_lock(&o->lock);
	if (o->len > 0) {
		o->flush = true;
		pthread_cond_signal(&o->wake);
	}
	pthread_mutex_unlock(&o->lock);
}

int berth__out_drain(struct berth_out *o)
{
	int ret;

	pthread_mutex_lock(&o->lock);
	o->flush = true;
	pthread_cond_signal(&o->wake);
	while (!o->err && (o->len > 0 || o->mlen > 0 || o->writing)) {
		o->flush = true;
		pthread_cond_signal(&o->wake);
		pthread_cond_wait(&o->space, &o->lock);
	}
	ret = o->err;
	pthread_mutex_unlock(&o->lock);
	return ret;
}

int berth__out_drain_timed(struct berth_out *o, int ms)
{
	struct timespec until;
	int ret = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&o->lock);
	while (!o->err && (o->len > 0 || o->mlen > 0 || o->writing)) {
		o->flush = true;
		pthread_cond_signal(&o->wake);
		if (pthread_cond_timedwait(&o->space, &o->lock, &until) ==
		    ETIMEDOUT) {
			ret = -ETIMEDOUT;
			break;
		}
	}
	if (!ret)
		ret = o->err;
	pthread_mutex_unlock(&o->lock);
	return ret;
}

void berth__out_stop(struct berth_out *o)
{
	if (!o->started)
		return;
	pthread_mutex_lock(&o->lock);
	o->closing = true;
	pthread_cond_signal(&o->wake);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->thread, NULL);
	o->started = false;
}

int berth__out_close(struct berth_out *o)
{
	int ret;

	berth__out_stop(o);
	ret = o->err;
	free(o->buf);
	free(o->spare);
	free(o->mbuf);
	free(o->mspare);
	o->buf = o->spare = o->mbuf = o->mspare = NULL;
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->wake);
	pthread_cond_destroy(&o->space);
	return ret;
}
