/* SPDX-License-Identifier: MIT */
/*
 * The rsync daemon's text lines (rsync-protocol.md §1.2): the "@RSYNCD:"
 * greeting with its list of authentication digests, the protocol both
 * sides then speak, the digest they agree on, and the client's answer to
 * an authentication challenge.  Pure: strings in, values out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proto_int.h"

static const struct {
	const char *name;
	int id;
	unsigned len;
} digests[] = {
	{"sha512", BERTH_DAUTH_SHA512, 64}, {"sha256", BERTH_DAUTH_SHA256, 32},
	{"sha1", BERTH_DAUTH_SHA1, 20},	    {"md5", BERTH_DAUTH_MD5, 16},
	{"md4", BERTH_DAUTH_MD4, 16},
};

#define N_DIGESTS (sizeof(digests) / sizeof(digests[0]))

/* A decimal number of at most 4 digits at *@p; -1 if none. */
static int small_number(const char **p)
{
	int v = 0, n = 0;

	while (**p >= '0' && **p <= '9' && n < 4) {
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	return n ? v : -1;
}

int berth_dgreet_parse(const char *line, struct berth_dgreet *g)
{
	static const char head[] = "@RSYNCD: ";
	const char *p = line;
	size_t len;

	memset(g, 0, sizeof(*g));
	g->sub = -1;
	if (strncmp(p, head, sizeof(head) - 1) != 0)
		return -BERTH_EPROTO;
	p += sizeof(head) - 1;
	g->version = small_number(&p);
	if (g->version < 1)
		return -BERTH_EPROTO;
	if (*p == '.') {
		p++;
		g->sub = small_number(&p);
		if (g->sub < 0)
			return -BERTH_EPROTO;
	}
	if (*p == '\0')
		return 0;
	if (*p != ' ')
		return -BERTH_EPROTO;
	/* A space present means a list, even an empty one (rsync's rule). */
	p++;
	len = strlen(p);
	if (len >= sizeof(g->list))
		return -BERTH_ELIMIT;
	memcpy(g->list, p, len + 1);
	g->has_list = true;
	return 0;
}

int berth_dgreet_protocol(int ours, const struct berth_dgreet *g)
{
	int sub = g->sub;

	/* A 30 without a sub-version is a beta rsync never shipped. */
	if (sub < 0 && g->version == 30)
		return -BERTH_EUNSUPPORTED;
	if (sub < 0)
		sub = 0;
	if (ours > g->version)
		return sub ? g->version - 1 : g->version;
	/* Ours is a release (sub 0): a client ahead of it, or with a
	 * pre-release of the same number, speaks the one below. */
	if (ours == g->version && sub)
		return ours - 1;
	return ours;
}

int berth_dauth_choose(const struct berth_dgreet *g, int protocol)
{
	const char *p = g->list;
	size_t i, len;

	if (!g->has_list)
		return protocol >= 30 ? BERTH_DAUTH_MD5 : BERTH_DAUTH_MD4_OLD;
	/* The client's order of preference: the first it names that we
	 * know, as its side chooses from our list. */
	while (*p) {
		while (*p == ' ')
			p++;
		len = strcspn(p, " ");
		for (i = 0; len && i < N_DIGESTS; i++)
			if (strlen(digests[i].name) == len &&
			    !strncmp(digests[i].name, p, len))
				return digests[i].id;
		p += len;
	}
	return -BERTH_EUNSUPPORTED;
}

unsigned berth_dauth_digest_len(int digest)
{
	size_t i;

	if (digest == BERTH_DAUTH_MD4_OLD)
		return 16;
	for (i = 0; i < N_DIGESTS; i++)
		if (digests[i].id == digest)
			return digests[i].len;
	return 0;
}

const char *berth_dauth_name(int digest)
{
	size_t i;

	if (digest == BERTH_DAUTH_MD4_OLD)
		return "md4";
	for (i = 0; i < N_DIGESTS; i++)
		if (digests[i].id == digest)
			return digests[i].name;
	return "?";
}

int berth_dauth_split(char *line, char **user, char **response)
{
	char *sp = strchr(line, ' ');

	if (!sp || sp == line || !sp[1])
		return -BERTH_EPROTO;
	*sp = '\0';
	*user = line;
	*response = sp + 1;
	return 0;
}
