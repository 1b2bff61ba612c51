/* SPDX-License-Identifier: MIT */
/*
 * rsync's checksums: the rolling checksum, the seeded strong block sums and
 * the unseeded whole-file digests (rsync-protocol.md §8.5.2-8.5.4).
 * MD4/MD5/SHA1 come from libmd (from BCrypt on Windows, md_bcrypt.c), the
 * xxhash family from libxxhash.  The
 * types' names and digest lengths are engine/common/csum_names.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#if defined(BERTH_XXH_DISPATCH) && BERTH_XXH_DISPATCH
/* XXH3 through libxxhash's run-time choice of the widest vector unit
 * (AVX2, AVX-512) instead of its baseline build (SSE2); the same digests. */
#include <xxh_x86dispatch.h>
#endif
#ifdef _WIN32
/* Windows: the same names over BCrypt; a context holds a hash object to
 * release (md_bcrypt.h). */
#include "engine/delta/md_bcrypt.h"
#define MD_RELEASE(state) berth__md_release(state)
#else
#include <md4.h>
#include <md5.h>
#include <sha1.h>
#define MD_RELEASE(state) ((void)(state))
#endif

#include "engine/delta/delta.h"

static int valid_type(int type)
{
	return type >= 0 && type < BERTH_CSUM__COUNT;
}

int berth_csum_params_init(struct berth_csum_params *p, int type, uint32_t seed,
			   int proto, uint32_t compat_flags)
{
	if (!valid_type(type))
		return -EINVAL;
	if (proto < 27)
		return -BERTH_EUNSUPPORTED;
	p->type = type;
	p->seed = seed;
	switch (type) {
	case BERTH_CSUM_MD5:
		p->seed_first = !!(compat_flags & BERTH_CF_CHKSUM_SEED_FIX);
		break;
	case BERTH_CSUM_SHA1:
		p->seed_first = 1;
		break;
	default:
		/* md4: rsync's built-in MD4 appends the seed (§14 item 1). */
		p->seed_first = 0;
		break;
	}
	return 0;
}

static void put_le64(uint8_t *out, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

static void put_xxh128(uint8_t *out, XXH128_hash_t h)
{
	put_le64(out, h.low64);
	put_le64(out + 8, h.high64);
}

/* MD4/MD5/SHA1 of buf with the 4 seed bytes before or after (none if 0). */
#define SEEDED_MD(CTX, INIT, UPDATE, FINAL)    \
	do {                                   \
		CTX c = {0};                   \
		INIT(&c);                      \
		if (p->seed && p->seed_first)  \
			UPDATE(&c, sb, 4);     \
		UPDATE(&c, buf, len);          \
		if (p->seed && !p->seed_first) \
			UPDATE(&c, sb, 4);     \
		FINAL(out, &c);                \
	} while (0)

void berth_csum_block(const struct berth_csum_params *p, const void *buf,
		      size_t len, uint8_t out[BERTH_CSUM_MAX_DIGEST])
{
	uint8_t sb[4] = {(uint8_t)p->seed, (uint8_t)(p->seed >> 8),
			 (uint8_t)(p->seed >> 16), (uint8_t)(p->seed >> 24)};

	switch (p->type) {
	case BERTH_CSUM_XXH128:
		put_xxh128(out, XXH3_128bits_withSeed(buf, len, p->seed));
		break;
	case BERTH_CSUM_XXH3:
		put_le64(out, XXH3_64bits_withSeed(buf, len, p->seed));
		break;
	case BERTH_CSUM_XXH64:
		put_le64(out, XXH64(buf, len, p->seed));
		break;
	case BERTH_CSUM_MD5:
		SEEDED_MD(MD5_CTX, MD5Init, MD5Update, MD5Final);
		break;
	case BERTH_CSUM_MD4:
		SEEDED_MD(MD4_CTX, MD4Init, MD4Update, MD4Final);
		break;
	case BERTH_CSUM_SHA1:
		SEEDED_MD(SHA1_CTX, SHA1Init, SHA1Update, SHA1Final);
		break;
	default:
		memset(out, 0, BERTH_CSUM_MAX_DIGEST);
		break;
	}
}

unsigned berth_csum_whole(int type, const void *buf, size_t len,
			  uint8_t out[BERTH_CSUM_MAX_DIGEST])
{
	struct berth_csum_params p = {.type = type, .seed = 0};

	berth_csum_block(&p, buf, len, out);
	return berth_csum_digest_len(type);
}

int berth_csum_ctx_init(struct berth_csum_ctx *c, int type)
{
	c->type = type;
	c->state = NULL;
	switch (type) {
	case BERTH_CSUM_XXH128:
	case BERTH_CSUM_XXH3:
		c->state = XXH3_createState();
		break;
	case BERTH_CSUM_XXH64:
		c->state = XXH64_createState();
		break;
	case BERTH_CSUM_MD4:
		c->state = calloc(1, sizeof(MD4_CTX));
		break;
	case BERTH_CSUM_MD5:
		c->state = calloc(1, sizeof(MD5_CTX));
		break;
	case BERTH_CSUM_SHA1:
		c->state = calloc(1, sizeof(SHA1_CTX));
		break;
	case BERTH_CSUM_NONE:
		return 0;
	default:
		return -EINVAL;
	}
	if (!c->state)
		return -ENOMEM;
	berth_csum_ctx_reset(c);
	return 0;
}

void berth_csum_ctx_reset(struct berth_csum_ctx *c)
{
	switch (c->type) {
	case BERTH_CSUM_XXH128:
		XXH3_128bits_reset(c->state);
		break;
	case BERTH_CSUM_XXH3:
		XXH3_64bits_reset(c->state);
		break;
	case BERTH_CSUM_XXH64:
		XXH64_reset(c->state, 0);
		break;
	case BERTH_CSUM_MD4:
		MD4Init(c->state);
		break;
	case BERTH_CSUM_MD5:
		MD5Init(c->state);
		break;
	case BERTH_CSUM_SHA1:
		SHA1Init(c->state);
		break;
	default:
		break;
	}
}

void berth_csum_ctx_update(struct berth_csum_ctx *c, const void *buf,
			   size_t len)
{
	if (!len)
		return;
	switch (c->type) {
	case BERTH_CSUM_XXH128:
		XXH3_128bits_update(c->state, buf, len);
		break;
	case BERTH_CSUM_XXH3:
		XXH3_64bits_update(c->state, buf, len);
		break;
	case BERTH_CSUM_XXH64:
		XXH64_update(c->state, buf, len);
		break;
	case BERTH_CSUM_MD4:
		MD4Update(c->state, buf, len);
		break;
	case BERTH_CSUM_MD5:
		MD5Update(c->state, buf, len);
		break;
	case BERTH_CSUM_SHA1:
		SHA1Update(c->state, buf, len);
		break;
	default:
		break;
	}
}

unsigned berth_csum_ctx_final(struct berth_csum_ctx *c,
			      uint8_t out[BERTH_CSUM_MAX_DIGEST])
{
	memset(out, 0, BERTH_CSUM_MAX_DIGEST);
	switch (c->type) {
	case BERTH_CSUM_XXH128:
		put_xxh128(out, XXH3_128bits_digest(c->state));
		break;
	case BERTH_CSUM_XXH3:
		put_le64(out, XXH3_64bits_digest(c->state));
		break;
	case BERTH_CSUM_XXH64:
		put_le64(out, XXH64_digest(c->state));
		break;
	case BERTH_CSUM_MD4:
		MD4Final(out, c->state);
		break;
	case BERTH_CSUM_MD5:
		MD5Final(out, c->state);
		break;
	case BERTH_CSUM_SHA1:
		SHA1Final(out, c->state);
		break;
	default:
		break;
	}
	return berth_csum_digest_len(c->type);
}

void berth_csum_ctx_destroy(struct berth_csum_ctx *c)
{
	switch (c->type) {
	case BERTH_CSUM_XXH128:
	case BERTH_CSUM_XXH3:
		XXH3_freeState(c->state);
		break;
	case BERTH_CSUM_XXH64:
		XXH64_freeState(c->state);
		break;
	case BERTH_CSUM_MD4:
	case BERTH_CSUM_MD5:
	case BERTH_CSUM_SHA1:
		MD_RELEASE(c->state);
		free(c->state);
		break;
	default:
		free(c->state);
		break;
	}
	c->state = NULL;
	c->type = BERTH_CSUM_NONE;
}
