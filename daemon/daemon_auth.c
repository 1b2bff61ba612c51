/* SPDX-License-Identifier: MIT */
/*
 * rsync daemon authentication: the challenge, the client's answer
 * (base64 of DIGEST(secret || challenge), unpadded) with the digests
 * rsync offers, from libmd; base64 from the C library's resolver
 * (b64_ntop); the "auth users" rules (USER or @GROUP patterns, with
 * :ro, :rw or :deny) and the secrets file with "strict modes".
 */
#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <md4.h>
#include <md5.h>
#include <pwd.h>
#include <resolv.h>
#include <sha1.h>
#include <sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon_int.h"
#include "protocol/protocol.h"

#define MAX_GROUPS 256

static unsigned digest(int d, const char *a, const char *b, uint8_t *out)
{
	size_t la = strlen(a), lb = strlen(b);

	switch (d) {
	case BERTH_DAUTH_MD4:
	case BERTH_DAUTH_MD4_OLD: {
		static const uint8_t seed[4]; /* rsync's old MD4: seed 0 */
		MD4_CTX c;

		MD4Init(&c);
		if (d == BERTH_DAUTH_MD4_OLD)
			MD4Update(&c, seed, sizeof(seed));
		MD4Update(&c, (const uint8_t *)a, la);
		MD4Update(&c, (const uint8_t *)b, lb);
		MD4Final(out, &c);
		return 16;
	}
	case BERTH_DAUTH_MD5: {
		MD5_CTX c;

		MD5Init(&c);
		MD5Update(&c, (const uint8_t *)a, la);
		MD5Update(&c, (const uint8_t *)b, lb);
		MD5Final(out, &c);
		return 16;
	}
	case BERTH_DAUTH_SHA1: {
		SHA1_CTX c;

		SHA1Init(&c);
		SHA1Update(&c, (const uint8_t *)a, la);
		SHA1Update(&c, (const uint8_t *)b, lb);
		SHA1Final(out, &c);
		return 20;
	}
	case BERTH_DAUTH_SHA256: {
		SHA2_CTX c;

		SHA256Init(&c);
		SHA256Update(&c, (const uint8_t *)a, la);
		SHA256Update(&c, (const uint8_t *)b, lb);
		SHA256Final(out, &c);
		return 32;
	}
	case BERTH_DAUTH_SHA512: {
		SHA2_CTX c;

		SHA512Init(&c);
		SHA512Update(&c, (const uint8_t *)a, la);
		SHA512Update(&c, (const uint8_t *)b, lb);
		SHA512Final(out, &c);
		return 64;
	}
	}
	return 0;
}

/* rsync's base64: the standard alphabet without '=' padding. */
static int b64(const uint8_t *in, size_t len, char *out, size_t cap)
{
	int n = b64_ntop(in, len, out, cap);

	if (n < 0)
		return -ENAMETOOLONG;
	while (n > 0 && out[n - 1] == '=')
		out[--n] = '\0';
	return n;
}

int berth_dauth_challenge(int d, char *out, size_t cap)
{
	uint8_t rnd[64];
	unsigned len = berth_dauth_digest_len(d);

	if (!len || len > sizeof(rnd))
		return -EINVAL;
	/* Unpredictable and never repeated; the client only hashes it. */
	if (getrandom(rnd, len, 0) != (ssize_t)len)
		return -EIO;
	return b64(rnd, len, out, cap) < 0 ? -ENAMETOOLONG : 0;
}

int berth_dauth_response(int d, const char *secret, const char *challenge,
			 char *out, size_t cap)
{
	uint8_t buf[64];
	unsigned len = digest(d, secret, challenge, buf);
	int n;

	if (!len)
		return -EINVAL;
	n = b64(buf, len, out, cap);
	explicit_bzero(buf, sizeof(buf));
	return n < 0 ? n : 0;
}

static bool same(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i;
	unsigned char diff = la != lb;

	for (i = 0; i < la && i < lb; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

/* Does @user belong to a group matching @pat? */
static bool in_group(const char *user, const char *pat, char *gname, size_t cap)
{
	struct passwd pw, *pp = NULL;
	gid_t groups[MAX_GROUPS];
	int n = MAX_GROUPS, i;
	char buf[4096];

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &pp) || !pp)
		return false;
	if (getgrouplist(user, pw.pw_gid, groups, &n) < 0)
		n = MAX_GROUPS;
	for (i = 0; i < n; i++) {
		struct group gr, *gp = NULL;
		char gbuf[4096];

		if (getgrgid_r(groups[i], &gr, gbuf, sizeof(gbuf), &gp) || !gp)
			continue;
		if (!fnmatch(pat, gr.gr_name, 0)) {
			snprintf(gname, cap, "%s", gr.gr_name);
			return true;
		}
	}
	return false;
}

/* The first rule of "auth users" that @user matches: its :ro/:rw/:deny
 * in *@opt ('r', 'w', 'd' or 0), a matching group in @group. */
static bool match_rule(const char *users, const char *user, char *opt,
		       char *group, size_t gcap)
{
	char tok[256], *colon;
	size_t n;

	group[0] = '\0';
	while (*users) {
		users += strspn(users, " ,\t");
		n = strcspn(users, " ,\t");
		if (!n || n >= sizeof(tok)) {
			users += n;
			continue;
		}
		memcpy(tok, users, n);
		tok[n] = '\0';
		users += n;
		*opt = 0;
		colon = strchr(tok, ':');
		if (colon) {
			*colon++ = '\0';
			if (!strcasecmp(colon, "ro"))
				*opt = 'r';
			else if (!strcasecmp(colon, "rw"))
				*opt = 'w';
			else if (!strcasecmp(colon, "deny"))
				*opt = 'd';
		}
		if (tok[0] != '@' && !fnmatch(tok, user, 0))
			return true;
		if (tok[0] == '@' && in_group(user, tok + 1, group, gcap))
			return true;
	}
	return false;
}

static const char *check_secret(const struct berth_dmod *m, int d,
				const char *user, const char *group,
				const char *challenge, const char *response)
{
	char line[1024], want[128];
	const char *who[2] = {user, group[0] ? group : NULL};
	const char *err = "secret not found";
	struct stat st;
	FILE *f;

	if (!m->secrets_file || !*m->secrets_file ||
	    !(f = fopen(m->secrets_file, "re")))
		return "no secrets file";
	if (fstat(fileno(f), &st) < 0) {
		fclose(f);
		return "ignoring secrets file";
	}
	if (m->strict_modes &&
	    ((st.st_mode & 06) || (geteuid() == 0 && st.st_uid != 0))) {
		fclose(f);
		return "ignoring secrets file (strict modes: it must not be "
		       "other-accessible, and root's own when run as root)";
	}
	if (user[0] == '#') {
		fclose(f);
		return "invalid username";
	}
	while ((who[0] || who[1]) && fgets(line, sizeof(line), f)) {
		int k = line[0] == '@';
		const char *s = line + k;
		size_t len;

		line[strcspn(line, "\r\n")] = '\0';
		if (!who[k])
			continue;
		len = strlen(who[k]);
		if (strncmp(s, who[k], len) || s[len] != ':')
			continue;
		if (berth_dauth_response(d, s + len + 1, challenge, want,
					 sizeof(want)) == 0 &&
		    same(response, want)) {
			err = NULL;
			break;
		}
		err = "password mismatch";
		who[k] = NULL; /* one line per name */
	}
	fclose(f);
	explicit_bzero(line, sizeof(line));
	explicit_bzero(want, sizeof(want));
	return err;
}

int berth_dauth_check(const struct berth_dmod *m, int d, const char *challenge,
		      const char *user, const char *response, int *ro,
		      char *why, size_t len)
{
	char opt = 0, group[256];
	const char *err;

	*ro = -1;
	if (!match_rule(m->auth_users, user, &opt, group, sizeof(group)))
		err = "no matching rule";
	else if (opt == 'd')
		err = "denied by rule";
	else
		err = check_secret(m, d, user, group, challenge, response);
	if (err) {
		snprintf(why, len, "%s", err);
		return -EACCES;
	}
	if (opt == 'r')
		*ro = 1;
	else if (opt == 'w')
		*ro = 0;
	return 0;
}
