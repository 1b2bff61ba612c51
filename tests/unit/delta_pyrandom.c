/* SPDX-License-Identifier: MIT */
/* Python's Mersenne Twister and randbytes(), for the delta tests. */
#include "delta_pyrandom.h"

#define MT_N 624
#define MT_M 397

struct mt {
	uint32_t s[MT_N];
	int i;
};

static void mt_init(struct mt *m, uint32_t seed)
{
	m->s[0] = seed;
	for (int i = 1; i < MT_N; i++)
		m->s[i] = 1812433253u * (m->s[i - 1] ^ (m->s[i - 1] >> 30)) +
			  (uint32_t)i;
	m->i = MT_N;
}

/* CPython seeds an int through init_by_array(its 32-bit digits). */
static void mt_init_array(struct mt *m, const uint32_t *key, int klen)
{
	int i = 1, j = 0, k;

	mt_init(m, 19650218u);
	for (k = MT_N > klen ? MT_N : klen; k; k--) {
		m->s[i] = (m->s[i] ^
			   ((m->s[i - 1] ^ (m->s[i - 1] >> 30)) * 1664525u)) +
			  key[j] + (uint32_t)j;
		i++;
		j++;
		if (i >= MT_N) {
			m->s[0] = m->s[MT_N - 1];
			i = 1;
		}
		if (j >= klen)
			j = 0;
	}
	for (k = MT_N - 1; k; k--) {
		m->s[i] = (m->s[i] ^ ((m->s[i - 1] ^ (m->s[i - 1] >> 30)) *
				      1566083941u)) -
			  (uint32_t)i;
		i++;
		if (i >= MT_N) {
			m->s[0] = m->s[MT_N - 1];
			i = 1;
		}
	}
	m->s[0] = 0x80000000u;
}

static uint32_t mt_next(struct mt *m)
{
	uint32_t y;

	if (m->i >= MT_N) {
		int k;

		for (k = 0; k < MT_N; k++) {
			y = (m->s[k] & 0x80000000u) |
			    (m->s[(k + 1) % MT_N] & 0x7fffffffu);
			m->s[k] = m->s[(k + MT_M) % MT_N] ^ (y >> 1) ^
				  ((y & 1) ? 0x9908b0dfu : 0);
		}
		m->i = 0;
	}
	y = m->s[m->i++];
	y ^= y >> 11;
	y ^= (y << 7) & 0x9d2c5680u;
	y ^= (y << 15) & 0xefc60000u;
	y ^= y >> 18;
	return y;
}

/* randbytes(n) = getrandbits(8n).to_bytes(n, "little"): 32-bit words, low
 * word first; a last partial word keeps its top bits. */
void pyrandom_bytes(uint32_t seed, uint8_t *out, size_t n)
{
	struct mt m;
	size_t i = 0;

	mt_init_array(&m, &seed, 1);
	while (i + 4 <= n) {
		uint32_t r = mt_next(&m);

		out[i] = (uint8_t)r;
		out[i + 1] = (uint8_t)(r >> 8);
		out[i + 2] = (uint8_t)(r >> 16);
		out[i + 3] = (uint8_t)(r >> 24);
		i += 4;
	}
	if (i < n) {
		unsigned bits = (unsigned)(n - i) * 8;
		uint32_t r = mt_next(&m) >> (32 - bits);

		for (; i < n; i++, r >>= 8)
			out[i] = (uint8_t)r;
	}
}
