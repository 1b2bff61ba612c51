/* SPDX-License-Identifier: MIT */
/*
 * MD4, MD5 and SHA1 from BCrypt (md_bcrypt.h).  The three algorithm
 * providers are opened once per process (a once-only probe, as the house
 * style allows) and never closed; each context creates its own hash object.
 * A BCrypt failure (out of memory) leaves a context without a hash: its
 * digest is then all zeros, which no peer's digest matches, so the file is
 * redone or reported rather than trusted.
 */
#include <string.h>

#include <windows.h>
#include <bcrypt.h>

#include "engine/delta/md_bcrypt.h"

static INIT_ONCE algs_once = INIT_ONCE_STATIC_INIT;
static BCRYPT_ALG_HANDLE algs[3];

static BOOL CALLBACK open_algs(PINIT_ONCE once, PVOID arg, PVOID *ctx)
{
	static const LPCWSTR names[3] = {BCRYPT_MD4_ALGORITHM,
					 BCRYPT_MD5_ALGORITHM,
					 BCRYPT_SHA1_ALGORITHM};

	(void)once;
	(void)arg;
	(void)ctx;
	for (int i = 0; i < 3; i++)
		if (BCryptOpenAlgorithmProvider(&algs[i], names[i], NULL, 0))
			algs[i] = NULL;
	return TRUE;
}

void berth__md_release(struct berth_md_ctx *c)
{
	if (c->hash)
		BCryptDestroyHash(c->hash);
	c->hash = NULL;
}

void berth__md_init(struct berth_md_ctx *c, int alg)
{
	BCRYPT_HASH_HANDLE h = NULL;

	InitOnceExecuteOnce(&algs_once, open_algs, NULL, NULL);
	berth__md_release(c);
	c->alg = alg;
	if (algs[alg] &&
	    BCryptCreateHash(algs[alg], &h, NULL, 0, NULL, 0, 0) == 0)
		c->hash = h;
}

void berth__md_update(struct berth_md_ctx *c, const void *buf, size_t len)
{
	const UCHAR *p = buf;

	while (c->hash && len) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;

		BCryptHashData(c->hash, (PUCHAR)(uintptr_t)p, n, 0);
		p += n;
		len -= n;
	}
}

void berth__md_final(uint8_t *out, struct berth_md_ctx *c)
{
	ULONG len = c->alg == 2 ? 20 : 16;

	memset(out, 0, len);
	if (c->hash)
		BCryptFinishHash(c->hash, out, len, 0);
	berth__md_release(c);
}
