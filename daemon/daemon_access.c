/* SPDX-License-Identifier: MIT */
/*
 * Module policy on names and addresses, pure: rsync's "hosts allow" /
 * "hosts deny" rules (addresses, ADDR/BITS, ADDR/MASK, wildcards on the
 * address or the host name), and the path sanitizing that makes what a
 * client names stay inside its module.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon_int.h"

/* @addr within @net/@bits (both of @len bytes). */
static bool in_net(const uint8_t *addr, const uint8_t *net, int bits,
		   size_t len)
{
	size_t i;

	for (i = 0; i < len && bits > 0; i++, bits -= 8) {
		uint8_t m = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));

		if ((addr[i] & m) != (net[i] & m))
			return false;
	}
	return true;
}

/* The number of leading ones of a dotted mask, -1 if not contiguous. */
static int mask_bits(const uint8_t *m, size_t len)
{
	int bits = 0;
	size_t i;
	bool zero = false;

	for (i = 0; i < len * 8; i++) {
		bool one = m[i / 8] & (0x80 >> (i % 8));

		if (one && zero)
			return -1;
		if (one)
			bits++;
		else
			zero = true;
	}
	return bits;
}

static bool match_net(const char *tok, const char *addr)
{
	char net[64], *slash;
	uint8_t a[16], n[16], m[16];
	int fam, bits;
	size_t len;
	char *end;

	if (strlen(tok) >= sizeof(net))
		return false;
	strcpy(net, tok);
	slash = strchr(net, '/');
	*slash = '\0';
	fam = strchr(net, ':') ? AF_INET6 : AF_INET;
	len = fam == AF_INET6 ? 16 : 4;
	if (inet_pton(fam, net, n) != 1)
		return false;
	/* An IPv4 client on an IPv6 socket shows as ::ffff:a.b.c.d. */
	if (fam == AF_INET && !strncmp(addr, "::ffff:", 7) && strchr(addr, '.'))
		addr += 7;
	if (inet_pton(fam, addr, a) != 1)
		return false;
	if (inet_pton(fam, slash + 1, m) == 1) {
		bits = mask_bits(m, len);
	} else {
		long v = strtol(slash + 1, &end, 10);

		bits = *end || slash[1] == '\0' || v < 0 || v > (long)len * 8
			       ? -1
			       : (int)v;
	}
	return bits >= 0 && in_net(a, n, bits, len);
}

static bool match_one(const char *tok, const char *addr, const char *host)
{
	if (strchr(tok, '/'))
		return match_net(tok, addr);
	if (!fnmatch(tok, addr, 0))
		return true;
	if (host && !fnmatch(tok, host, FNM_CASEFOLD))
		return true;
	return false;
}

static bool match_list(const char *list, const char *addr, const char *host)
{
	char tok[256];
	size_t n;

	while (*list) {
		list += strspn(list, " ,\t");
		n = strcspn(list, " ,\t");
		if (n && n < sizeof(tok)) {
			memcpy(tok, list, n);
			tok[n] = '\0';
			if (match_one(tok, addr, host))
				return true;
		}
		list += n;
	}
	return false;
}

bool berth_daccess_allowed(const char *allow, const char *deny,
			   const char *addr, const char *host)
{
	if (allow && !*allow)
		allow = NULL;
	if (deny && !*deny)
		deny = NULL;
	/* rsync's order: an allow list alone admits only its matches, a
	 * deny list alone refuses only its matches; with both, a match of
	 * the allow list wins, then a match of the deny list refuses. */
	if (!deny)
		return !allow || match_list(allow, addr, host);
	if (!allow)
		return !match_list(deny, addr, host);
	if (match_list(allow, addr, host))
		return true;
	return !match_list(deny, addr, host);
}

int berth_dpath_sanitize(const char *path, int depth, char *out, size_t cap)
{
	size_t n = 0, keep = 0; /* keep: bytes of leading ".." kept */
	const char *p = path;

	if (cap < 2)
		return -ENAMETOOLONG;
	while (*p == '/') {
		p++;
		depth = 0; /* an absolute path starts at the module */
	}
	while (*p) {
		size_t len = strcspn(p, "/");

		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* "//" or "." */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (depth > 0 && n == keep) {
				if (n + 3 >= cap)
					return -ENAMETOOLONG;
				memcpy(out + n, "../", 3);
				n += 3;
				keep = n;
				depth--;
			} else if (n > keep) {
				/* drop the last component */
				n--; /* its '/' */
				while (n > keep && out[n - 1] != '/')
					n--;
			}
		} else {
			if (n + len + 1 >= cap)
				return -ENAMETOOLONG;
			memcpy(out + n, p, len);
			n += len;
			out[n++] = '/';
		}
		p += len;
		while (*p == '/')
			p++;
	}
	/* No trailing slash unless the path had one (rsync keeps it). */
	if (n && (!*path || path[strlen(path) - 1] != '/'))
		n--;
	if (n == 0)
		out[n++] = '.';
	out[n] = '\0';
	return 0;
}
