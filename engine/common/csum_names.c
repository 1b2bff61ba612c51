/* SPDX-License-Identifier: MIT */
/*
 * The transfer checksum types' wire names and digest lengths
 * (rsync-protocol.md §4.3, §8.5.2): the one table protocol/ (negotiation,
 * file-list sums) and engine/delta/ (block and whole-file sums) share.
 */
#include <string.h>
#include <strings.h>

#include "engine/common/sums.h"

static const struct {
	const char *name;
	unsigned len;
} csum_info[BERTH_CSUM__COUNT] = {
	[BERTH_CSUM_NONE] = {"none", 1},      [BERTH_CSUM_MD4] = {"md4", 16},
	[BERTH_CSUM_MD5] = {"md5", 16},	      [BERTH_CSUM_SHA1] = {"sha1", 20},
	[BERTH_CSUM_XXH64] = {"xxh64", 8},    [BERTH_CSUM_XXH3] = {"xxh3", 8},
	[BERTH_CSUM_XXH128] = {"xxh128", 16},
};

static int valid_type(int type)
{
	return type >= 0 && type < BERTH_CSUM__COUNT;
}

int berth_csum_from_name(const char *name, size_t len)
{
	int t;

	if (len == 6 && !strncasecmp(name, "xxhash", 6))
		return BERTH_CSUM_XXH64;
	for (t = 0; t < BERTH_CSUM__COUNT; t++) {
		if (strlen(csum_info[t].name) == len &&
		    !strncasecmp(name, csum_info[t].name, len))
			return t;
	}
	return -BERTH_EUNSUPPORTED;
}

const char *berth_csum_name(int type)
{
	return valid_type(type) ? csum_info[type].name : NULL;
}

unsigned berth_csum_digest_len(int type)
{
	return valid_type(type) ? csum_info[type].len : 0;
}
