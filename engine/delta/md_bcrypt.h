/* SPDX-License-Identifier: MIT */
/*
 * MD4, MD5 and SHA1 on Windows from the system's BCrypt, under libmd's
 * names (MD4_CTX, MD4Init, MD4Update, MD4Final, ...), so checksum.c calls
 * the same functions on both systems.  Windows only (md_bcrypt.c).
 *
 * A context holds one BCrypt hash object: Init (re)creates it, Final
 * finishes and frees it, berth__md_release() frees one that was never
 * finished (checksum.c's destroy and reset).  A context must start zeroed.
 */
#ifndef BERTH_MD_BCRYPT_H
#define BERTH_MD_BCRYPT_H

#include <stddef.h>
#include <stdint.h>

struct berth_md_ctx {
	int alg; /* 0 MD4, 1 MD5, 2 SHA1 */
	void *hash; /* BCRYPT_HASH_HANDLE, or NULL */
};

typedef struct berth_md_ctx MD4_CTX;
typedef struct berth_md_ctx MD5_CTX;
typedef struct berth_md_ctx SHA1_CTX;

void berth__md_init(struct berth_md_ctx *c, int alg);
void berth__md_update(struct berth_md_ctx *c, const void *buf, size_t len);
void berth__md_final(uint8_t *out, struct berth_md_ctx *c);
void berth__md_release(struct berth_md_ctx *c);

#define MD4Init(c) berth__md_init((c), 0)
#define MD5Init(c) berth__md_init((c), 1)
#define SHA1Init(c) berth__md_init((c), 2)
#define MD4Update berth__md_update
#define MD5Update berth__md_update
#define SHA1Update berth__md_update
#define MD4Final berth__md_final
#define MD5Final berth__md_final
#define SHA1Final berth__md_final

#endif /* BERTH_MD_BCRYPT_H */
