/* SPDX-License-Identifier: MIT */
/*
 * Server side of the handshake (§4): version exchange, compat flags,
 * checksum/compression negotiation and the checksum seed.
 */
#include <errno.h>
#include <strings.h>

#include "protocol/proto_int.h"

enum {
	HS_INIT,
	HS_VERSION_SENT,
	HS_VERSION_READ,
	HS_SETUP_SENT,
	HS_LISTS_READ,
	HS_DONE,
};

/* The client's lists are shorter than this (stock limit is 256). */
#define HS_MAX_LIST 512

static const char *const compressors[] = {
	[BERTH_COMPRESS_NONE] = "none",	  [BERTH_COMPRESS_ZLIB] = "zlib",
	[BERTH_COMPRESS_ZLIBX] = "zlibx", [BERTH_COMPRESS_LZ4] = "lz4",
	[BERTH_COMPRESS_ZSTD] = "zstd",
};

int berth_compress_by_name(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(compressors) / sizeof(compressors[0]);
	     i++)
		if (strlen(compressors[i]) == len &&
		    strncasecmp(compressors[i], name, len) == 0)
			return (int)i;
	return -BERTH_EUNSUPPORTED;
}

const char *berth_compress_name(int compress)
{
	if (compress < 0 ||
	    (size_t)compress >= sizeof(compressors) / sizeof(compressors[0]))
		return "?";
	return compressors[compress];
}

static const char *csum_list(const struct berth_hs *hs)
{
	return hs->cfg.checksum_list ? hs->cfg.checksum_list
				     : BERTH_HS_CHECKSUM_LIST;
}

static const char *compress_list(const struct berth_hs *hs)
{
	return hs->cfg.compress_list ? hs->cfg.compress_list
				     : BERTH_HS_COMPRESS_LIST;
}

static bool has_cap(const struct berth_hs *hs, char c)
{
	const char *caps = hs->cfg.client_caps;

	if (!caps)
		return false;
	/* A pre-release client prefixes "<proto>.<subproto>"; skip to '.'. */
	caps = strchr(caps, '.');
	return caps && strchr(caps + 1, c) != NULL;
}

int berth_hs_init(struct berth_hs *hs, const struct berth_hs_config *cfg)
{
	memset(hs, 0, sizeof(*hs));
	hs->cfg = *cfg;
	if (!hs->cfg.max_protocol)
		hs->cfg.max_protocol = BERTH_PROTO_MAX;
	if (hs->cfg.max_protocol < BERTH_PROTO_MIN ||
	    hs->cfg.max_protocol > BERTH_PROTO_MAX)
		return -EINVAL;
	hs->stash.buf = hs->stash_buf;
	hs->stash.cap = sizeof(hs->stash_buf);
	hs->res.seed = cfg->seed;
	hs->state = HS_INIT;
	return 0;
}

int berth_hs_put_version(struct berth_hs *hs, struct berth_proto_out *out)
{
	if (hs->state != HS_INIT)
		return -EINVAL;
	TRY(berth_proto_put_int32(out, hs->cfg.max_protocol));
	hs->state = HS_VERSION_SENT;
	return 0;
}

/*
 * Parse "X" or "X,Y" (--checksum-choice): transfer and flist checksums.
 * Every name must be supported (in our list), "auto" means md5.
 */
static int fixed_csum(struct berth_hs *hs, const char *choice)
{
	const char *comma = strchr(choice, ',');
	const char *names[2] = {choice, comma ? comma + 1 : choice};
	size_t lens[2] = {comma ? (size_t)(comma - choice) : strlen(choice),
			  strlen(names[1])};
	int ids[2];

	for (int i = 0; i < 2; i++) {
		if (lens[i] == 4 && strncasecmp(names[i], "auto", 4) == 0) {
			names[i] = "md5";
			lens[i] = 3;
		}
		ids[i] = berth_csum_from_name(names[i], lens[i]);
		TRY(ids[i]);
		if (!berth__name_in_list(csum_list(hs), names[i], lens[i]))
			return -BERTH_EUNSUPPORTED;
	}
	hs->res.xfer_csum = ids[0];
	hs->res.file_csum = ids[1];
	return 0;
}

/*
 * The compressor once chosen: as rsync's, --compress-level=0 turns zlib
 * and zlibx off (both sides apply the rule after the choice).
 */
static void set_compress(struct berth_hs *hs, int id)
{
	if (hs->cfg.compress_level0 &&
	    (id == BERTH_COMPRESS_ZLIB || id == BERTH_COMPRESS_ZLIBX))
		id = BERTH_COMPRESS_NONE;
	hs->res.compress = id;
}

static int fixed_compress(struct berth_hs *hs, const char *name)
{
	int id = berth_compress_by_name(name, strlen(name));

	TRY(id);
	if (id != BERTH_COMPRESS_NONE &&
	    !berth__name_in_list(compress_list(hs), name, strlen(name)))
		return -BERTH_EUNSUPPORTED;
	set_compress(hs, id);
	return 0;
}

/*
 * Are compressor names negotiated (§4.3)?  Only with a client that can
 * (the 'v' capability) at protocol 30 or later.  Otherwise compression
 * without an explicit choice is zlib: rsync 3.1 and older, and every
 * protocol below 30.
 */
static bool negotiates_compress(const struct berth_hs *hs)
{
	return hs->res.negotiate && hs->res.protocol >= 30;
}

static int unit_version(void *ctx, struct berth_proto_in *view)
{
	struct berth_hs *hs = ctx;
	int32_t v;
	int r = berth_proto_get_int32(view, &v);

	if (r != BERTH_PROTO_DONE)
		return r;
	if (v < 20 || v > 40)
		return -BERTH_EPROTO;
	if (v < BERTH_PROTO_MIN)
		return -BERTH_EUNSUPPORTED;
	hs->res.client_protocol = v;
	return BERTH_PROTO_DONE;
}

/*
 * Below protocol 30 there are no compat flags and nothing is negotiated:
 * seeded MD4 for block and file sums (unless --checksum-choice fixes one),
 * zlib when compressing.
 */
static int old_setup(struct berth_hs *hs)
{
	struct berth_hs_result *res = &hs->res;

	res->compat = 0;
	res->xfer_csum = res->file_csum = BERTH_CSUM_MD4;
	if (hs->cfg.checksum_choice)
		TRY(fixed_csum(hs, hs->cfg.checksum_choice));
	else if (!berth__name_in_list(csum_list(hs), "md4", 3))
		return -BERTH_EUNSUPPORTED;
	res->compress = BERTH_COMPRESS_NONE;
	if (hs->cfg.compress)
		TRY(fixed_compress(hs, hs->cfg.compress_choice
					       ? hs->cfg.compress_choice
					       : "zlib"));
	hs->state = HS_VERSION_READ;
	return BERTH_PROTO_DONE;
}

int berth_hs_get_version(struct berth_hs *hs, struct berth_proto_in *in)
{
	struct berth_hs_result *res = &hs->res;
	uint32_t cf = 0;
	int r;

	if (hs->state != HS_VERSION_SENT)
		return -EINVAL;
	r = berth__stash_run(&hs->stash, in, unit_version, hs);
	if (r != BERTH_PROTO_DONE)
		return r;
	res->protocol = res->client_protocol < hs->cfg.max_protocol
				? res->client_protocol
				: hs->cfg.max_protocol;
	if (res->protocol < 30)
		return old_setup(hs);
	if (has_cap(hs, 'i') && hs->cfg.allow_inc_recurse)
		cf |= BERTH_CF_INC_RECURSE;
	cf |= BERTH_CF_SYMLINK_TIMES;
	if (!hs->cfg.no_symlink_iconv)
		cf |= BERTH_CF_SYMLINK_ICONV;
	if (has_cap(hs, 'f'))
		cf |= BERTH_CF_SAFE_FLIST;
	if (has_cap(hs, 'x'))
		cf |= BERTH_CF_AVOID_XATTR_OPTIM;
	if (has_cap(hs, 'C'))
		cf |= BERTH_CF_CHKSUM_SEED_FIX;
	if (has_cap(hs, 'I'))
		cf |= BERTH_CF_INPLACE_PARTIAL_DIR;
	if (has_cap(hs, 'v')) {
		cf |= BERTH_CF_VARINT_FLIST_FLAGS;
		res->negotiate = true;
	}
	if (has_cap(hs, 'u'))
		cf |= BERTH_CF_ID0_NAMES;
	if (has_cap(hs, 'V')) {
		cf |= BERTH_CF_VARINT_FLIST_FLAGS;
		res->compat_byte = true;
	}
	res->compat = cf;

	/* Fixed choices are known now; negotiated ones after the lists. */
	res->xfer_csum = res->file_csum = BERTH_CSUM_MD5;
	if (hs->cfg.checksum_choice)
		TRY(fixed_csum(hs, hs->cfg.checksum_choice));
	else if (!res->negotiate &&
		 !berth__name_in_list(csum_list(hs), "md5", 3))
		return -BERTH_EUNSUPPORTED;
	res->compress = BERTH_COMPRESS_NONE;
	if (hs->cfg.compress) {
		if (hs->cfg.compress_choice)
			TRY(fixed_compress(hs, hs->cfg.compress_choice));
		else if (!negotiates_compress(hs))
			TRY(fixed_compress(hs, "zlib"));
	}
	hs->state = HS_VERSION_READ;
	return BERTH_PROTO_DONE;
}

static bool send_csum_list(const struct berth_hs *hs)
{
	return hs->res.negotiate && !hs->cfg.checksum_choice;
}

static bool send_compress_list(const struct berth_hs *hs)
{
	return negotiates_compress(hs) && hs->cfg.compress &&
	       !hs->cfg.compress_choice;
}

int berth_hs_put_setup(struct berth_hs *hs, struct berth_proto_out *out)
{
	size_t start = out->pos;
	const char *l;
	int r = 0;

	if (hs->state != HS_VERSION_READ)
		return -EINVAL;
	if (hs->res.protocol < 30) {
		hs->state = HS_SETUP_SENT; /* nothing to send */
		return 0;
	}
	if (hs->res.compat_byte)
		r = berth_proto_put_u8(out, (uint8_t)hs->res.compat);
	else
		r = berth_proto_put_varint(out, (int32_t)hs->res.compat);
	if (!r && send_csum_list(hs)) {
		l = csum_list(hs);
		r = berth_proto_put_vstring(out, l, strlen(l));
	}
	if (!r && send_compress_list(hs)) {
		l = compress_list(hs);
		r = berth_proto_put_vstring(out, l, strlen(l));
	}
	if (r) {
		out->pos = start;
		return r;
	}
	hs->state = HS_SETUP_SENT;
	return 0;
}

/*
 * Our pick: the first name of our list that is also in the peer's list
 * (§4.3).  Returns the name's position/length in @ours or -1.
 */
static int pick(const char *ours, const char *theirs, size_t *len)
{
	const char *p = ours, *e;

	while (*p) {
		while (*p == ' ')
			p++;
		e = p;
		while (*e && *e != ' ')
			e++;
		if (e > p && berth__name_in_list(theirs, p, (size_t)(e - p))) {
			*len = (size_t)(e - p);
			return (int)(p - ours);
		}
		p = e;
	}
	return -1;
}

static int unit_lists(void *ctx, struct berth_proto_in *view)
{
	struct berth_hs *hs = ctx;
	char cs[HS_MAX_LIST], cz[HS_MAX_LIST];
	const char *ours;
	size_t len;
	int r, at, id;

	if (send_csum_list(hs)) {
		r = berth_proto_get_vstring(view, cs, sizeof(cs) - 1, &len);
		if (r != BERTH_PROTO_DONE)
			return r == -BERTH_ELIMIT ? -BERTH_EPROTO : r;
		cs[len] = '\0';
		if (memchr(cs, '\0', len))
			return -BERTH_EPROTO;
	}
	if (send_compress_list(hs)) {
		r = berth_proto_get_vstring(view, cz, sizeof(cz) - 1, &len);
		if (r != BERTH_PROTO_DONE)
			return r == -BERTH_ELIMIT ? -BERTH_EPROTO : r;
		cz[len] = '\0';
		if (memchr(cz, '\0', len))
			return -BERTH_EPROTO;
	}
	if (send_csum_list(hs)) {
		ours = csum_list(hs);
		at = pick(ours, cs, &len);
		if (at < 0)
			return -BERTH_EUNSUPPORTED;
		id = berth_csum_from_name(ours + at, len);
		TRY(id);
		hs->res.xfer_csum = hs->res.file_csum = id;
	}
	if (send_compress_list(hs)) {
		ours = compress_list(hs);
		at = pick(ours, cz, &len);
		if (at < 0)
			return -BERTH_EUNSUPPORTED;
		id = berth_compress_by_name(ours + at, len);
		TRY(id);
		set_compress(hs, id);
	}
	return BERTH_PROTO_DONE;
}

int berth_hs_get_lists(struct berth_hs *hs, struct berth_proto_in *in)
{
	int r;

	if (hs->state != HS_SETUP_SENT)
		return -EINVAL;
	if (!send_csum_list(hs) && !send_compress_list(hs)) {
		hs->state = HS_LISTS_READ;
		return BERTH_PROTO_DONE;
	}
	r = berth__stash_run(&hs->stash, in, unit_lists, hs);
	if (r == BERTH_PROTO_DONE)
		hs->state = HS_LISTS_READ;
	return r;
}

int berth_hs_put_seed(struct berth_hs *hs, struct berth_proto_out *out)
{
	if (hs->state != HS_LISTS_READ)
		return -EINVAL;
	TRY(berth_proto_put_int32(out, hs->res.seed));
	hs->state = HS_DONE;
	return 0;
}
