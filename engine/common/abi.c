/* SPDX-License-Identifier: MIT */
/* The library's version, and the growth rules of the option structs. */
#include <errno.h>
#include <string.h>

#include "berth.h"
#include "engine/common/abi.h"

const char *berth_version(void)
{
	return BERTH_VERSION_STRING;
}

unsigned berth_version_number(void)
{
	return BERTH_VERSION_NUMBER;
}

int berth__abi_copy_in(void *dst, size_t ksize, const void *src, size_t usize,
		       size_t v0)
{
	const unsigned char *extra = (const unsigned char *)src + ksize;

	if (usize == 0)
		usize = v0;
	if (usize < v0)
		return -EINVAL;
	/* Members of a newer header that this library does not know must
	 * be unused: an option is never dropped silently. */
	for (size_t i = ksize; i < usize; i++)
		if (extra[i - ksize])
			return -E2BIG;
	memcpy(dst, src, usize < ksize ? usize : ksize);
	if (usize < ksize)
		memset((unsigned char *)dst + usize, 0, ksize - usize);
	return 0;
}

void berth__abi_copy_out(void *dst, size_t usize, const void *src, size_t ksize,
			 size_t v0)
{
	if (usize == 0)
		usize = v0;
	memcpy(dst, src, usize < ksize ? usize : ksize);
}
