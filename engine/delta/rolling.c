/* SPDX-License-Identifier: MIT */
/*
 * rsync's rolling checksum (rsync-protocol.md §8.5.2) over a buffer:
 * s1 = sum of x_i, s2 = sum of (n - i) x_i, bytes taken as signed chars.
 *
 * It is on the signature hot path (every basis byte), so the bulk runs in
 * chunks of C bytes: within a chunk a = sum x_i and b = sum (C - i) x_i are
 * independent dot products (SIMD), and across chunks
 *     s2 += C * s1_before_chunk + b,   s1 += a,
 * accumulated lane-wise as in vectorised Adler-32.  All sums wrap mod 2^32,
 * as rsync's do.  AVX2 is used when the CPU has it (checked once per call by
 * the compiler's cpu-feature probe), SSE2 otherwise on x86-64, plain C
 * elsewhere and for the tail.
 */
#include <errno.h>

#include "engine/delta/delta_int.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* Plain C: one byte at a time (tails and other architectures). */
static void rolling_c(const int8_t *p, size_t n, uint32_t *s1, uint32_t *s2)
{
	uint32_t a = *s1, b = *s2;

	for (size_t i = 0; i < n; i++) {
		a += (uint32_t)(int32_t)p[i];
		b += a;
	}
	*s1 = a;
	*s2 = b;
}

#if HAVE_X86
static uint32_t hsum128(__m128i v)
{
	v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
	v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
	return (uint32_t)_mm_cvtsi128_si32(v);
}

/* @n chunks of 16 bytes. */
static void rolling_sse2(const int8_t *p, size_t n, uint32_t *s1, uint32_t *s2)
{
	const __m128i ones = _mm_set1_epi16(1);
	const __m128i wlo = _mm_setr_epi16(16, 15, 14, 13, 12, 11, 10, 9);
	const __m128i whi = _mm_setr_epi16(8, 7, 6, 5, 4, 3, 2, 1);
	__m128i va = _mm_setzero_si128(), vpre = va, vb = va;

	for (size_t k = 0; k < n; k++, p += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i lo = _mm_srai_epi16(_mm_unpacklo_epi8(x, x), 8);
		__m128i hi = _mm_srai_epi16(_mm_unpackhi_epi8(x, x), 8);

		vpre = _mm_add_epi32(vpre, va);
		va = _mm_add_epi32(va, _mm_add_epi32(_mm_madd_epi16(lo, ones),
						     _mm_madd_epi16(hi, ones)));
		vb = _mm_add_epi32(vb, _mm_add_epi32(_mm_madd_epi16(lo, wlo),
						     _mm_madd_epi16(hi, whi)));
	}
	*s2 += 16 * ((uint32_t)n * *s1 + hsum128(vpre)) + hsum128(vb);
	*s1 += hsum128(va);
}

/* @n chunks of 32 bytes. */
__attribute__((target("avx2"))) static void rolling_avx2(const int8_t *p,
							 size_t n, uint32_t *s1,
							 uint32_t *s2)
{
	const __m256i ones8 = _mm256_set1_epi8(1);
	const __m256i ones16 = _mm256_set1_epi16(1);
	const __m256i w = _mm256_setr_epi8(
		32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
		16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
	__m256i va = _mm256_setzero_si256(), vpre = va, vb = va;
	__m128i a, pre, b;

	for (size_t k = 0; k < n; k++, p += 32) {
		__m256i x = _mm256_loadu_si256(
			(const __m256i *)(const void *)p);

		vpre = _mm256_add_epi32(vpre, va);
		/* maddubs: unsigned weights x signed bytes -> int16 pairs */
		va = _mm256_add_epi32(
			va, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, x),
					      ones16));
		vb = _mm256_add_epi32(
			vb,
			_mm256_madd_epi16(_mm256_maddubs_epi16(w, x), ones16));
	}
	a = _mm_add_epi32(_mm256_castsi256_si128(va),
			  _mm256_extracti128_si256(va, 1));
	pre = _mm_add_epi32(_mm256_castsi256_si128(vpre),
			    _mm256_extracti128_si256(vpre, 1));
	b = _mm_add_epi32(_mm256_castsi256_si128(vb),
			  _mm256_extracti128_si256(vb, 1));
	*s2 += 32 * ((uint32_t)n * *s1 + hsum128(pre)) + hsum128(b);
	*s1 += hsum128(a);
}
#endif

int berth__rolling_with(int kernel, struct berth_rolling_state *r,
			const void *buf, size_t len)
{
	const int8_t *p = buf;
	uint32_t s1 = 0, s2 = 0;

#if HAVE_X86
	if (kernel == BERTH__ROLL_AUTO)
		kernel = __builtin_cpu_supports("avx2") ? BERTH__ROLL_AVX2
							: BERTH__ROLL_SSE2;
	if (kernel == BERTH__ROLL_AVX2 && !__builtin_cpu_supports("avx2"))
		return -ENOTSUP;
	if (kernel == BERTH__ROLL_AVX2 && len >= 32) {
		size_t n = len / 32;

		rolling_avx2(p, n, &s1, &s2);
		p += n * 32;
		len -= n * 32;
	}
	if (kernel != BERTH__ROLL_C && len >= 16) {
		size_t n = len / 16;

		rolling_sse2(p, n, &s1, &s2);
		p += n * 16;
		len -= n * 16;
	}
#else
	if (kernel == BERTH__ROLL_SSE2 || kernel == BERTH__ROLL_AVX2)
		return -ENOTSUP;
#endif
	rolling_c(p, len, &s1, &s2);
	r->s1 = s1;
	r->s2 = s2;
	return 0;
}

void berth_rolling_init(struct berth_rolling_state *r, const void *buf,
			size_t len)
{
	berth__rolling_with(BERTH__ROLL_AUTO, r, buf, len);
}

uint32_t berth_rolling(const void *buf, size_t len)
{
	struct berth_rolling_state r;

	berth_rolling_init(&r, buf, len);
	return berth_rolling_value(&r);
}
