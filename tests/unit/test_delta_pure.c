/* SPDX-License-Identifier: MIT */
/* Delta tests: checksums and sum head rules (pure functions). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/common/tmpname.h"
#include "engine/delta/delta_int.h"
#include "test_delta.h"

/* The definition of §8.5.2, one byte at a time. */
static uint32_t rolling_ref(const uint8_t *p, size_t n)
{
	uint32_t s1 = 0, s2 = 0;

	for (size_t i = 0; i < n; i++) {
		s1 += (uint32_t)(int32_t)(int8_t)p[i];
		s2 += s1;
	}
	return (s1 & 0xffff) | (s2 << 16);
}

static void test_rolling(void **state)
{
	uint64_t seed = 1;
	uint8_t buf[5000];
	struct berth_rolling_state r;
	size_t n;

	(void)state;
	rand_bytes(&seed, buf, sizeof(buf));
	for (n = 0; n < 100; n++)
		assert_int_equal(berth_rolling(buf, n), rolling_ref(buf, n));
	for (n = 690; n < 710; n++)
		assert_int_equal(berth_rolling(buf + 3, n),
				 rolling_ref(buf + 3, n));
	memset(buf, 0xff, 700);
	assert_int_equal(berth_rolling(buf, 700), rolling_ref(buf, 700));
	memset(buf, 0x80, 4096);
	assert_int_equal(berth_rolling(buf, 4096), rolling_ref(buf, 4096));

	/* Rolling by one equals recomputing; so does shrinking at the end. */
	rand_bytes(&seed, buf, sizeof(buf));
	berth_rolling_init(&r, buf, 700);
	for (size_t p = 0; p + 700 < 3000; p++) {
		berth_rolling_roll(&r, buf[p], buf[p + 700], 700);
		assert_int_equal(berth_rolling_value(&r),
				 rolling_ref(buf + p + 1, 700));
	}
	berth_rolling_init(&r, buf + 4300, 700);
	for (size_t w = 700; w > 1; w--) {
		berth_rolling_drop(&r, buf[5000 - w], w);
		assert_int_equal(berth_rolling_value(&r),
				 rolling_ref(buf + 5000 - w + 1, w - 1));
	}
}

/* Every kernel this machine has, on long and odd-sized buffers. */
static void test_rolling_kernels(void **state)
{
	static uint8_t buf[300007];
	static const size_t lens[] = {0,  1,  15, 16,  17,   31,     32,    33,
				      63, 64, 65, 700, 4097, 131072, 300007};
	uint64_t seed = 9;
	int ran = 0;

	(void)state;
	rand_bytes(&seed, buf, sizeof(buf));
	for (int k = BERTH__ROLL_C; k <= BERTH__ROLL_AVX2; k++) {
		struct berth_rolling_state r;

		if (berth__rolling_with(k, &r, buf, 1) == -ENOTSUP)
			continue;
		ran++;
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			const uint8_t *p = buf + (i & 7); /* unaligned too */
			size_t n = lens[i] -
				   (lens[i] > sizeof(buf) - 8 ? 8 : 0);

			assert_int_equal(berth__rolling_with(k, &r, p, n), 0);
			assert_int_equal(berth_rolling_value(&r),
					 rolling_ref(p, n));
		}
	}
	assert_true(ran >= 1);
	print_message("rolling kernels checked: %d\n", ran);
}

static void test_csum_names(void **state)
{
	static const char *names[] = {"xxh128", "xxh3", "xxh64", "md5",
				      "md4",	"sha1", "none"};
	static const unsigned lens[] = {16, 8, 8, 16, 16, 20, 1};
	struct berth_csum_params p;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int t = berth_csum_from_name(names[i], strlen(names[i]));

		assert_true(t >= 0);
		assert_string_equal(berth_csum_name(t), names[i]);
		assert_int_equal(berth_csum_digest_len(t), lens[i]);
	}
	assert_int_equal(berth_csum_from_name("XXHASH", 6), BERTH_CSUM_XXH64);
	assert_int_equal(berth_csum_from_name("MD5", 3), BERTH_CSUM_MD5);
	assert_int_equal(berth_csum_from_name("md", 2), -BERTH_EUNSUPPORTED);
	assert_int_equal(berth_csum_from_name("xxh1280", 7),
			 -BERTH_EUNSUPPORTED);
	assert_null(berth_csum_name(-1));
	assert_null(berth_csum_name(BERTH_CSUM__COUNT));
	assert_int_equal(berth_csum_digest_len(99), 0);

	assert_int_equal(berth_csum_params_init(&p, BERTH_CSUM_MD5, 1, 26, 0),
			 -BERTH_EUNSUPPORTED);
	assert_int_equal(berth_csum_params_init(&p, BERTH_CSUM_MD4, 1, 27, 0),
			 0);
	assert_int_equal(p.seed_first, 0); /* MD4_OLD: the seed after */
	assert_int_equal(berth_csum_params_init(&p, 42, 1, 31, 0), -EINVAL);
	assert_int_equal(berth_csum_params_init(&p, BERTH_CSUM_MD5, 1, 31,
						BERTH_CF_CHKSUM_SEED_FIX),
			 0);
	assert_true(p.seed_first);
	assert_int_equal(berth_csum_params_init(&p, BERTH_CSUM_MD5, 1, 30, 0),
			 0);
	assert_false(p.seed_first);
	assert_int_equal(berth_csum_params_init(&p, BERTH_CSUM_MD4, 1, 32,
						BERTH_CF_CHKSUM_SEED_FIX),
			 0);
	assert_false(p.seed_first);
}

/* Known digests of "abc" (RFC 1320, RFC 1321, FIPS 180) and xxhash's
 * empty-input values, through both the one-shot and streaming paths. */
static void test_csum_digests(void **state)
{
	static const struct {
		int type;
		const char *in, *hex;
	} v[] = {
		{BERTH_CSUM_MD4, "abc", "a448017aaf21d8525fc10ae87aa6729d"},
		{BERTH_CSUM_MD5, "abc", "900150983cd24fb0d6963f7d28e17f72"},
		{BERTH_CSUM_SHA1, "abc",
		 "a9993e364706816aba3e25717850c26c9cd0d89d"},
		/* XXH64("") = 0xef46db3751d8e999, little endian */
		{BERTH_CSUM_XXH64, "", "99e9d85137db46ef"},
		/* XXH3_64bits("") = 0x2d06800538d394c2 */
		{BERTH_CSUM_XXH3, "", "c294d3380580062d"},
		/* XXH3_128bits("") = 0x99aa06d3014798d86001c324468d497f */
		{BERTH_CSUM_XXH128, "", "7f498d4624c30160d8984701d306aa99"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t a[BERTH_CSUM_MAX_DIGEST], b[BERTH_CSUM_MAX_DIGEST];
		char hex[2 * BERTH_CSUM_MAX_DIGEST + 1];
		char want[2 * BERTH_CSUM_MAX_DIGEST + 1];
		struct berth_csum_ctx c;
		unsigned n, k, j = 0;

		n = berth_csum_whole(v[i].type, v[i].in, strlen(v[i].in), a);
		assert_int_equal(berth_csum_ctx_init(&c, v[i].type), 0);
		berth_csum_ctx_update(&c, v[i].in, strlen(v[i].in));
		assert_int_equal(berth_csum_ctx_final(&c, b), n);
		berth_csum_ctx_destroy(&c);
		assert_memory_equal(a, b, n);
		for (k = 0; k < n; k++)
			sprintf(hex + 2 * k, "%02x", a[k]);
		for (k = 0; v[i].hex[k]; k++)
			if (v[i].hex[k] != ' ')
				want[j++] = v[i].hex[k];
		want[j] = 0;
		assert_string_equal(hex, want);
	}
}

/* Streaming in odd pieces equals one shot, for every type; seeded block
 * sums differ from unseeded ones except for seed 0. */
static void test_csum_stream(void **state)
{
	uint64_t seed = 7;
	static uint8_t buf[70001];

	(void)state;
	rand_bytes(&seed, buf, sizeof(buf));
	for (int t = 0; t < BERTH_CSUM__COUNT; t++) {
		uint8_t a[BERTH_CSUM_MAX_DIGEST], b[BERTH_CSUM_MAX_DIGEST];
		struct berth_csum_params p;
		struct berth_csum_ctx c;
		size_t off = 0, step = 1;
		unsigned n;

		n = berth_csum_whole(t, buf, sizeof(buf), a);
		assert_int_equal(berth_csum_ctx_init(&c, t), 0);
		berth_csum_ctx_update(&c, "junk", 4);
		berth_csum_ctx_reset(&c);
		while (off < sizeof(buf)) {
			size_t k = step < sizeof(buf) - off ? step
							    : sizeof(buf) - off;

			berth_csum_ctx_update(&c, buf + off, k);
			off += k;
			step = step * 3 + 1;
		}
		assert_int_equal(berth_csum_ctx_final(&c, b), n);
		assert_memory_equal(a, b, n);
		berth_csum_ctx_destroy(&c);

		assert_int_equal(berth_csum_params_init(&p, t, 0, 32, 0x1ff),
				 0);
		berth_csum_block(&p, buf, sizeof(buf), b);
		assert_memory_equal(a, b, n);
		if (t == BERTH_CSUM_NONE)
			continue;
		assert_int_equal(
			berth_csum_params_init(&p, t, 12345, 32, 0x1ff), 0);
		berth_csum_block(&p, buf, sizeof(buf), b);
		assert_memory_not_equal(a, b, n);
	}
}

static void check_head(uint64_t len, int type, int redo, int32_t count,
		       int32_t blength, int32_t s2, int32_t rem)
{
	struct berth_sum_head h;

	assert_int_equal(berth_sum_head_init(&h, len, 32, type, 0, redo), 0);
	assert_int_equal(h.count, count);
	assert_int_equal(h.blength, blength);
	assert_int_equal(h.s2length, s2);
	assert_int_equal(h.remainder, rem);
	assert_int_equal(berth_sum_head_len(&h), len);
	assert_int_equal(berth_sum_head_check(&h, type, len), 0);
}

/* berth's mark on temp names: its own pid back, nothing from others. */
static void test_tmpname_mark(void **state)
{
	char name[64] = ".file.txt.Ab3dE9";
	size_t n;

	(void)state;
	n = berth_tmpname_mark(name, strlen(name));
	assert_int_equal(n, strlen(name));
	assert_true(n <= strlen(".file.txt.Ab3dE9") + BERTH_TMPNAME_MARK_MAX);
	assert_int_equal(berth_tmpname_owner(name), (long)getpid());
	/* rsync's own temp names, a user's file, an edited mark. */
	assert_int_equal(berth_tmpname_owner(".file.txt.Ab3dE9"), 0);
	assert_int_equal(berth_tmpname_owner("file.txt"), 0);
	assert_int_equal(berth_tmpname_owner(".a.Ab3dE9~1z0000"), 0);
	assert_int_equal(berth_tmpname_owner("~"), 0);
	assert_int_equal(berth_tmpname_owner(".~"), 0);
	name[n - 1] = name[n - 1] == 'a' ? 'b' : 'a';
	assert_int_equal(berth_tmpname_owner(name), 0);
	name[n - 1] = '\0';
	assert_int_equal(berth_tmpname_owner(name), 0);
}

/* The echo must be the head the generator computed, field for field. */
static void test_sum_head_echo(void **state)
{
	static const uint64_t lens[] = {1,	700,	  701,
					300000, 50331648, 1ull << 34};
	struct berth_sum_head h, e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int redo = 0; redo < 2; redo++) {
			assert_int_equal(berth_sum_head_init(&h, lens[i], 31,
							     BERTH_CSUM_MD5, 0,
							     redo),
					 0);
			assert_int_equal(
				berth_sum_head_echo_check(
					&h, 31, BERTH_CSUM_MD5, 0, redo),
				0);
			/* The other pass's strong-sum length. */
			assert_int_equal(
				berth_sum_head_echo_check(
					&h, 31, BERTH_CSUM_MD5, 0, !redo),
				-BERTH_EPROTO);
			e = h;
			e.s2length = h.s2length == 2 ? 3 : 2;
			assert_int_equal(
				berth_sum_head_echo_check(
					&e, 31, BERTH_CSUM_MD5, 0, redo),
				-BERTH_EPROTO);
			/* Same length, other block size. */
			assert_int_equal(
				berth_sum_head_echo_check(
					&h, 31, BERTH_CSUM_MD5, 512, redo),
				h.blength == 512 ? 0 : -BERTH_EPROTO);
		}
	}
	/* -B 1000: 2500 bytes are 3 blocks of 1000, 500 left. */
	assert_int_equal(
		berth_sum_head_init(&h, 2500, 30, BERTH_CSUM_MD5, 1000, 0), 0);
	assert_int_equal(
		berth_sum_head_echo_check(&h, 30, BERTH_CSUM_MD5, 1000, 0), 0);
	e = (struct berth_sum_head){
		.count = 5, .blength = 500, .s2length = h.s2length};
	assert_int_equal(
		berth_sum_head_echo_check(&e, 30, BERTH_CSUM_MD5, 1000, 0),
		-BERTH_EPROTO);
	/* No blocks: all zero, nothing else. */
	e = (struct berth_sum_head){0};
	assert_int_equal(
		berth_sum_head_echo_check(&e, 30, BERTH_CSUM_MD5, 0, 0), 0);
	e.s2length = 2;
	assert_int_equal(
		berth_sum_head_echo_check(&e, 30, BERTH_CSUM_MD5, 0, 0),
		-BERTH_EPROTO);
	e = (struct berth_sum_head){.blength = 700};
	assert_int_equal(
		berth_sum_head_echo_check(&e, 30, BERTH_CSUM_MD5, 0, 0),
		-BERTH_EPROTO);
}

static void test_sum_head_rules(void **state)
{
	struct berth_sum_head h;
	uint8_t w[BERTH_SUM_HEAD_WIRE];

	(void)state;
	/* The verified examples of §8.5.1. */
	check_head(300000, BERTH_CSUM_XXH128, 0, 429, 700, 2, 400);
	check_head(20000, BERTH_CSUM_XXH128, 0, 29, 700, 2, 400);
	check_head(3000, BERTH_CSUM_XXH128, 0, 5, 700, 2, 200);
	check_head(18, BERTH_CSUM_XXH128, 0, 1, 700, 2, 18);
	check_head(50331648, BERTH_CSUM_XXH128, 0, 7101, 7088, 3, 6848);
	/* Redo pass: min(16, digest length) [case8: 16]. */
	check_head(20000, BERTH_CSUM_XXH128, 1, 29, 700, 16, 400);
	check_head(20000, BERTH_CSUM_XXH64, 1, 29, 700, 8, 400);
	check_head(20000, BERTH_CSUM_SHA1, 1, 29, 700, 16, 400);
	/* Boundaries: exactly one block, 700², just above 700². */
	check_head(700, BERTH_CSUM_MD5, 0, 1, 700, 2, 0);
	check_head(701, BERTH_CSUM_MD5, 0, 2, 700, 2, 1);
	check_head(490000, BERTH_CSUM_MD5, 0, 700, 700, 2, 0);
	check_head(490001, BERTH_CSUM_MD5, 0, 701, 700, 2, 1);
	/* The largest block: 2^17 from 2^34 bytes on. */
	check_head(1ull << 34, BERTH_CSUM_MD5, 0, 131072, 131072, 4, 0);
	check_head((1ull << 40) + 1, BERTH_CSUM_MD5, 0, 8388609, 131072, 6, 1);
	check_head(1ull << 46, BERTH_CSUM_XXH64, 0, 536870912, 131072, 7, 0);
	/* s2length is capped by the digest length ("none": 1 byte). */
	check_head(20000, BERTH_CSUM_NONE, 0, 29, 700, 1, 400);

	/* The square-root rule is ⌊√L⌋ rounded down to a multiple of 8. */
	for (uint64_t len = 490001; len < (1ull << 34); len = len * 9 / 7) {
		uint64_t r = 1;

		while (r * r <= len / 4) /* rough: r ~ sqrt(len) / 2 */
			r *= 2;
		while (r * r > len)
			r--;
		while ((r + 1) * (r + 1) <= len)
			r++;
		assert_int_equal(
			berth_sum_head_init(&h, len, 31, BERTH_CSUM_MD5, 0, 0),
			0);
		r &= ~7ull;
		assert_int_equal(h.blength, (int32_t)(r < 700 ? 700 : r));
	}

	/* Empty basis: all zero.  -B overrides; bad -B and types fail. */
	assert_int_equal(berth_sum_head_init(&h, 0, 32, BERTH_CSUM_MD5, 0, 0),
			 0);
	assert_int_equal(h.count | h.blength | h.s2length | h.remainder, 0);
	assert_int_equal(
		berth_sum_head_init(&h, 10000, 32, BERTH_CSUM_MD5, 1024, 0), 0);
	assert_int_equal(h.count, 10);
	assert_int_equal(h.blength, 1024);
	assert_int_equal(h.remainder, 784);
	assert_int_equal(berth_sum_head_init(&h, 10000, 32, BERTH_CSUM_MD5,
					     BERTH_MAX_BLOCK_SIZE + 1, 0),
			 -EINVAL);
	assert_int_equal(berth_sum_head_init(&h, 10000, 32, 77, 0, 0), -EINVAL);
	assert_int_equal(
		berth_sum_head_init(&h, 10000, 26, BERTH_CSUM_MD5, 0, 0),
		-EINVAL);
	assert_int_equal(
		berth_sum_head_init(&h, 10000, 29, BERTH_CSUM_MD4, 0, 0), 0);
	assert_int_equal(h.blength, 700);
	assert_int_equal(
		berth_sum_head_init(&h, 1ull << 50, 32, BERTH_CSUM_MD5, 0, 0),
		-BERTH_ELIMIT);

	/* Wire form round trip. */
	h = (struct berth_sum_head){429, 700, 2, 400};
	berth_sum_head_encode(&h, w);
	assert_memory_equal(w, "\xad\x01\0\0\xbc\x02\0\0\x02\0\0\0\x90\x01\0\0",
			    16);
	memset(&h, 0, sizeof(h));
	berth_sum_head_decode(&h, w);
	assert_int_equal(h.count, 429);
	assert_int_equal(h.remainder, 400);
}

static void test_sum_head_check(void **state)
{
	static const struct {
		struct berth_sum_head h;
		uint64_t basis;
		int ok;
	} v[] = {
		{{0, 0, 0, 0}, 0, 1},
		{{429, 700, 2, 400}, 300000, 1},
		{{429, 700, 2, 400}, 299999, 0}, /* beyond the basis */
		{{429, 700, 2, 0}, 300300, 1},
		{{429, 700, 2, 700}, 300300, 1}, /* remainder == blength */
		{{-1, 700, 2, 0}, 1 << 30, 0},
		{{1, -700, 2, 0}, 1 << 30, 0},
		{{1, 0, 2, 0}, 1 << 30, 0},
		{{0, 0, 2, 0}, 0, 1},
		{{1, BERTH_MAX_BLOCK_SIZE + 1, 2, 0}, 1ull << 40, 0},
		{{1, BERTH_MAX_BLOCK_SIZE, 2, 0}, 1ull << 40, 1},
		{{1, 700, -1, 0}, 1 << 30, 0},
		{{1, 700, 17, 0}, 1 << 30, 0},
		{{1, 700, 16, 0}, 1 << 30, 1},
		{{1, 700, 2, -1}, 1 << 30, 0},
		{{1, 700, 2, 701}, 1 << 30, 0},
		{{INT32_MAX, BERTH_MAX_BLOCK_SIZE, 2, 0}, UINT64_MAX, 1},
		{{INT32_MAX, BERTH_MAX_BLOCK_SIZE, 2, 0}, 1ull << 47, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(berth_sum_head_check(&v[i].h,
						      BERTH_CSUM_XXH128,
						      v[i].basis),
				 v[i].ok ? 0 : -BERTH_EPROTO);
	/* s2length above an 8-byte digest. */
	struct berth_sum_head h = {1, 700, 9, 0};
	assert_int_equal(berth_sum_head_check(&h, BERTH_CSUM_XXH3, 700),
			 -BERTH_EPROTO);
}

/* berth_sig_blocks() in any split equals one call over everything. */
static void test_sig_blocks_split(void **state)
{
	static uint8_t buf[100000];
	uint64_t seed = 3;
	struct berth_csum_params p;
	struct berth_sum_head h;
	uint8_t *a, *b;
	size_t wl;

	(void)state;
	rand_bytes(&seed, buf, sizeof(buf));
	assert_int_equal(berth_csum_params_init(&p, BERTH_CSUM_MD5, 99, 31,
						BERTH_CF_CHKSUM_SEED_FIX),
			 0);
	assert_int_equal(berth_sum_head_init(&h, sizeof(buf), 31,
					     BERTH_CSUM_MD5, 1000 - 8, 1),
			 0);
	wl = (size_t)berth_sig_wire_len(&h);
	a = malloc(wl);
	b = malloc(wl);
	assert_int_equal(berth_sig_blocks(&p, &h, 0, (uint32_t)h.count, buf, a),
			 wl);
	size_t o = 0;
	for (uint32_t i = 0; i < (uint32_t)h.count;) {
		uint32_t n = i % 7 + 1;

		if (n > (uint32_t)h.count - i)
			n = (uint32_t)h.count - i;
		o += berth_sig_blocks(&p, &h, i, n,
				      buf + (size_t)i * (uint32_t)h.blength,
				      b + o);
		i += n;
	}
	assert_int_equal(o, wl);
	assert_memory_equal(a, b, wl);
	free(a);
	free(b);
}

const struct CMUnitTest delta_pure_tests[] = {
	cmocka_unit_test(test_rolling),
	cmocka_unit_test(test_rolling_kernels),
	cmocka_unit_test(test_csum_names),
	cmocka_unit_test(test_csum_digests),
	cmocka_unit_test(test_csum_stream),
	cmocka_unit_test(test_sum_head_rules),
	cmocka_unit_test(test_sum_head_check),
	cmocka_unit_test(test_sum_head_echo),
	cmocka_unit_test(test_tmpname_mark),
	cmocka_unit_test(test_sig_blocks_split),
};
const size_t delta_pure_count = sizeof(delta_pure_tests) /
				sizeof(delta_pure_tests[0]);
