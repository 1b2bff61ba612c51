/* SPDX-License-Identifier: MIT */
/*
 * HAProxy's PROXY protocol, versions 1 (a text line) and 2 (binary), as a
 * load balancer puts it before the client's first byte: where the client
 * really connects from, so host rules and logs see it.  Pure.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon_int.h"

#define V1_MAX 107 /* the longest v1 line, CRLF included */

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
				   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static int port_of(const char *s)
{
	char *end;
	long v;

	if (!*s || (*s == '0' && s[1]))
		return -1;
	v = strtol(s, &end, 10);
	return *end || v < 0 || v > 65535 ? -1 : (int)v;
}

/* "PROXY TCP4 SRC DST SPORT DPORT" (CRLF cut off). */
static int v1_fields(char *l, struct berth_proxy_hdr *h)
{
	char *f[6], *save = NULL;
	int n = 0, sport;

	for (char *t = strtok_r(l, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		if (n == 6)
			return -BERTH_EPROTO;
		f[n++] = t;
	}
	if (n >= 2 && !strcmp(f[1], "UNKNOWN")) {
		h->local = true;
		return 0;
	}
	if (n != 6 || (sport = port_of(f[4])) < 0 || port_of(f[5]) < 0)
		return -BERTH_EPROTO;
	if (!strcmp(f[1], "TCP4")) {
		struct sockaddr_in *a = (struct sockaddr_in *)&h->src;
		struct in_addr dst;

		if (inet_pton(AF_INET, f[2], &a->sin_addr) != 1 ||
		    inet_pton(AF_INET, f[3], &dst) != 1)
			return -BERTH_EPROTO;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)sport);
		h->src_len = sizeof(*a);
		return 0;
	}
	if (!strcmp(f[1], "TCP6")) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&h->src;
		struct in6_addr dst;

		if (inet_pton(AF_INET6, f[2], &a->sin6_addr) != 1 ||
		    inet_pton(AF_INET6, f[3], &dst) != 1)
			return -BERTH_EPROTO;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)sport);
		h->src_len = sizeof(*a);
		return 0;
	}
	return -BERTH_EPROTO;
}

static int parse_v1(const uint8_t *buf, size_t len, size_t *need,
		    struct berth_proxy_hdr *h)
{
	const uint8_t *cr = NULL;
	char line[V1_MAX + 1];
	size_t i;
	int ret;

	for (i = 0; i < len; i++) {
		if (buf[i] == '\r') {
			cr = buf + i;
			break;
		}
		/* Printable ASCII only. */
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return -BERTH_EPROTO;
	}
	if (!cr) {
		if (len >= V1_MAX - 1)
			return -BERTH_EPROTO;
		*need = 1; /* a line: one byte at a time */
		return 0;
	}
	if ((size_t)(cr - buf) + 2 > len) {
		*need = 1;
		return 0;
	}
	if (cr[1] != '\n')
		return -BERTH_EPROTO;
	memcpy(line, buf, (size_t)(cr - buf));
	line[cr - buf] = '\0';
	ret = v1_fields(line, h);
	return ret < 0 ? ret : (int)(cr - buf) + 2;
}

static int parse_v2(const uint8_t *buf, size_t len, size_t *need,
		    struct berth_proxy_hdr *h)
{
	size_t body, total;
	uint8_t cmd, fam;

	if (len < 16) {
		*need = 16 - len;
		return 0;
	}
	if ((buf[12] >> 4) != 2)
		return -BERTH_EPROTO;
	cmd = buf[12] & 0x0f;
	fam = buf[13];
	body = (size_t)buf[14] << 8 | buf[15];
	total = 16 + body;
	if (total > BERTH_PROXY_MAX || cmd > 1)
		return -BERTH_EPROTO;
	if (len < total) {
		*need = total - len;
		return 0;
	}
	if (cmd == 0) { /* LOCAL: the balancer's own health check */
		h->local = true;
		return (int)total;
	}
	if (fam == 0x11 && body >= 12) { /* TCP over IPv4 */
		struct sockaddr_in *a = (struct sockaddr_in *)&h->src;

		a->sin_family = AF_INET;
		memcpy(&a->sin_addr, buf + 16, 4);
		memcpy(&a->sin_port, buf + 24, 2);
		h->src_len = sizeof(*a);
		return (int)total;
	}
	if (fam == 0x21 && body >= 36) { /* TCP over IPv6 */
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&h->src;

		a->sin6_family = AF_INET6;
		memcpy(&a->sin6_addr, buf + 16, 16);
		memcpy(&a->sin6_port, buf + 48, 2);
		h->src_len = sizeof(*a);
		return (int)total;
	}
	if (fam == 0x00) { /* UNSPEC: no address to take */
		h->local = true;
		return (int)total;
	}
	return -BERTH_EPROTO; /* UDP, unix sockets, short bodies */
}

int berth_proxy_parse(const uint8_t *buf, size_t len, size_t *need,
		      struct berth_proxy_hdr *h)
{
	size_t n;

	memset(h, 0, sizeof(*h));
	*need = 0;
	if (len == 0) {
		*need = 6;
		return 0;
	}
	if (buf[0] == v2_sig[0]) {
		n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
		if (memcmp(buf, v2_sig, n))
			return -BERTH_EPROTO;
		return parse_v2(buf, len, need, h);
	}
	n = len < 6 ? len : 6;
	if (memcmp(buf, "PROXY ", n))
		return -BERTH_EPROTO;
	if (len < 6) {
		*need = 6 - len;
		return 0;
	}
	return parse_v1(buf, len, need, h);
}
