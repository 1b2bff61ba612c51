/* SPDX-License-Identifier: MIT */
/*
 * berth's mark on its temp names (tmpname.h).
 */
#include <stdint.h>
#include <string.h>
#ifdef _WIN32
#include <process.h>
#define getpid _getpid
#else
#include <unistd.h>
#endif

#include "engine/common/tmpname.h"

static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* FNV-1a over @n bytes, from berth's own basis (not FNV's). */
static uint32_t check_of(const char *s, size_t n)
{
	uint32_t h = 0x62657274u; /* "bert" */

	while (n--) {
		h ^= (uint8_t)*s++;
		h *= 16777619u;
	}
	return h % (36u * 36u * 36u * 36u);
}

size_t berth_tmpname_mark(char *out, size_t len)
{
	char pid[8];
	unsigned long v = (unsigned long)getpid();
	size_t n = 0;
	uint32_t c;

	do {
		pid[n++] = digits[v % 36];
		v /= 36;
	} while (v && n < 6);
	out[len++] = '~';
	while (n)
		out[len++] = pid[--n];
	c = check_of(out, len);
	for (int i = 3; i >= 0; i--) {
		out[len + (size_t)i] = digits[c % 36];
		c /= 36;
	}
	len += 4;
	out[len] = '\0';
	return len;
}

static int digit_of(char ch)
{
	const char *p = ch ? strchr(digits, ch) : NULL;

	return p ? (int)(p - digits) : -1;
}

long berth_tmpname_owner(const char *name)
{
	const char *t = strrchr(name, '~');
	size_t len = strlen(name), pos, ndig;
	unsigned long pid = 0;
	uint32_t c = 0;

	/* ".N.XXXXXX~P" + check: at least 9 bytes before the '~'. */
	if (name[0] != '.' || !t || (size_t)(t - name) < 9)
		return 0;
	pos = (size_t)(t - name);
	if (name[pos - 7] != '.' || len < pos + 1 + 1 + 4)
		return 0;
	ndig = len - pos - 1 - 4;
	if (ndig > 6)
		return 0;
	for (size_t i = pos - 6; i < pos; i++)
		if (!((name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9')))
			return 0;
	for (size_t i = 0; i < ndig; i++) {
		int d = digit_of(name[pos + 1 + i]);

		if (d < 0)
			return 0;
		pid = pid * 36 + (unsigned long)d;
	}
	for (size_t i = 0; i < 4; i++) {
		int d = digit_of(name[len - 4 + i]);

		if (d < 0)
			return 0;
		c = c * 36 + (uint32_t)d;
	}
	if (pid == 0 || pid > 0x7fffffffu || c != check_of(name, len - 4))
		return 0;
	return (long)pid;
}
