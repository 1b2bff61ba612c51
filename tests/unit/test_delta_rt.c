/* SPDX-License-Identifier: MIT */
/*
 * Delta tests: round trips signature(basis) -> tokens(new) -> apply(basis)
 * == new through the pump, and apply's defences against a bad sender.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_delta.h"

enum edit {
	E_SAME,
	E_CHANGE, /* overwrite a run in the middle */
	E_INSERT, /* insert bytes */
	E_DELETE, /* delete bytes */
	E_TRUNCATE, /* keep a prefix */
	E_GROW, /* append bytes */
	E_SWAP, /* swap the halves: blocks out of order */
	E_NEW, /* nothing in common */
	E_EMPTY, /* new file is empty */
	E_SCATTER, /* 1% of bytes changed at random */
};

struct rt_case {
	size_t basis_len;
	enum edit edit;
	uint32_t block_size; /* -B, 0 = rule */
	int type;
	size_t mem_limit; /* apply memory, 0 = default */
	size_t max_lit;
	int runs;
	int redo;
};

static uint8_t *make_new(uint64_t *seed, const uint8_t *b, size_t blen,
			 enum edit e, size_t *nlen)
{
	size_t cap = blen * 2 + 5000, n = 0, at = blen / 2, k;
	uint8_t *o = malloc(cap);

	assert_non_null(o);
	switch (e) {
	case E_SAME:
		memcpy(o, b, n = blen);
		break;
	case E_CHANGE:
		memcpy(o, b, n = blen);
		k = blen / 10 + 1 < 3000 ? blen / 10 + 1 : 3000;
		if (at + k > n)
			k = n - at;
		rand_bytes(seed, o + at, k);
		break;
	case E_INSERT:
		memcpy(o, b, at);
		rand_bytes(seed, o + at, 1234);
		memcpy(o + at + 1234, b + at, blen - at);
		n = blen + 1234;
		break;
	case E_DELETE:
		k = blen / 7;
		memcpy(o, b, at);
		memcpy(o + at, b + at + k, blen - at - k);
		n = blen - k;
		break;
	case E_TRUNCATE:
		memcpy(o, b, n = blen * 2 / 3);
		break;
	case E_GROW:
		memcpy(o, b, blen);
		rand_bytes(seed, o + blen, 4321);
		n = blen + 4321;
		break;
	case E_SWAP:
		memcpy(o, b + at, blen - at);
		memcpy(o + blen - at, b, at);
		n = blen;
		break;
	case E_NEW:
		rand_bytes(seed, o, n = blen);
		break;
	case E_EMPTY:
		n = 0;
		break;
	case E_SCATTER:
		memcpy(o, b, n = blen);
		for (k = 0; k < blen / 100; k++)
			o[rand_u64(seed) % blen] ^= 0x5a;
		break;
	}
	*nlen = n;
	return o;
}

static void run_rt(const struct rt_case *c, uint64_t seed)
{
	struct berth_delta_apply_opts ao = {
		.pump = test_pump(), .out = sink_cb, .mem_limit = c->mem_limit};
	struct berth_delta_apply *a;
	struct berth_csum_params p;
	struct berth_sum_head h;
	struct sink sig = {0}, out = {0};
	struct ds_tokens t;
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];
	uint8_t *basis, *newf;
	size_t nlen;
	int fd, ret;

	basis = malloc(c->basis_len ? c->basis_len : 1);
	rand_bytes(&seed, basis, c->basis_len);
	newf = make_new(&seed, basis, c->basis_len, c->edit, &nlen);
	fd = temp_file(basis, c->basis_len);

	assert_int_equal(
		berth_csum_params_init(&p, c->type, (uint32_t)seed, 32, 0x1ff),
		0);
	assert_int_equal(berth_sum_head_init(&h, c->basis_len, 32, c->type,
					     c->block_size, c->redo),
			 0);
	sig_of(&p, &h, fd, &sig);
	assert_int_equal(ds_match(&p, sig.buf, sig.len, newf, nlen,
				  c->max_lit ? c->max_lit : 32768, c->runs, &t),
			 0);
	assert_int_equal(t.lit_bytes + t.match_bytes, nlen);
	if (c->edit == E_SAME)
		assert_int_equal(t.lit_bytes, 0);

	ao.out_arg = &out;
	assert_int_equal(berth_delta_apply_create(&ao, &a), 0);
	berth_csum_whole(c->type, newf, nlen, sum);
	ret = apply_tokens(a, fd, c->basis_len, &h, c->type, &t, sum, &out);
	assert_int_equal(ret, 0);
	assert_int_equal(out.len, nlen);
	if (nlen)
		assert_memory_equal(out.buf, newf, nlen);

	/* The engine is reusable: apply again into the same sink. */
	out.len = 0;
	assert_int_equal(
		apply_tokens(a, fd, c->basis_len, &h, c->type, &t, sum, &out),
		0);
	assert_int_equal(out.len, nlen);

	berth_delta_apply_free(a);
	ds_tokens_free(&t);
	sink_free(&sig);
	sink_free(&out);
	close(fd);
	free(basis);
	free(newf);
}

static void test_roundtrip(void **state)
{
	static const int types[] = {BERTH_CSUM_XXH128, BERTH_CSUM_XXH3,
				    BERTH_CSUM_XXH64,  BERTH_CSUM_MD5,
				    BERTH_CSUM_MD4,    BERTH_CSUM_SHA1};
	static const size_t sizes[] = {0,    1,	    699,    700,   701,
				       1400, 20000, 300000, 490001};
	int n = 0;

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (int e = E_SAME; e <= E_SCATTER; e++) {
			struct rt_case c = {
				.basis_len = sizes[s],
				.edit = (enum edit)e,
				.type = types[n % 6],
				.runs = n & 1,
				.max_lit = (n % 3) ? 32768 : 1000,
				.redo = (n % 5) == 0,
			};

			run_rt(&c, 0x9e3779b97f4a7c15ull + (uint64_t)n);
			n++;
		}
	}
}

/* Block sizes at the rule's edges, -B values, and apply memory at its
 * minimum (two slots: reads wait for each other). */
static void test_roundtrip_blocks(void **state)
{
	static const struct rt_case cs[] = {
		{1 << 20, E_SCATTER, 8, BERTH_CSUM_XXH3, 0, 32768, 1, 0},
		{100000, E_SWAP, 1, BERTH_CSUM_XXH64, 0, 32768, 0, 0},
		{3000000, E_SCATTER, 0, BERTH_CSUM_XXH128, 1, 32768, 1, 0},
		{3000000, E_SWAP, 0, BERTH_CSUM_MD5, 1, 32768, 0, 1},
		{1000000, E_INSERT, BERTH_MAX_BLOCK_SIZE, BERTH_CSUM_XXH128, 1,
		 32768, 1, 0},
		{BERTH_MAX_BLOCK_SIZE * 3 + 5, E_SAME, BERTH_MAX_BLOCK_SIZE,
		 BERTH_CSUM_MD4, 1, 32768, 0, 0},
		{4000000, E_DELETE, 0, BERTH_CSUM_XXH3, 0, 100, 1, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++)
		run_rt(&cs[i], 77 + i);
}

/* BERTH_DELTA_STRESS=N: N extra random cases (sizes, edits, block sizes,
 * memory limits, types); off by default to keep the suite short. */
static void test_roundtrip_random(void **state)
{
	const char *env = getenv("BERTH_DELTA_STRESS");
	long n = env ? atol(env) : 0;
	uint64_t seed = 0x5eed;

	(void)state;
	if (n <= 0)
		skip();
	for (long i = 0; i < n; i++) {
		struct rt_case c = {0};
		uint64_t r = rand_u64(&seed);

		c.basis_len = r % 4 == 0 ? r % 2000 : (r >> 8) % 3000000;
		c.edit = (enum edit)((r >> 32) % (E_SCATTER + 1));
		c.type = 1 + (int)((r >> 40) % (BERTH_CSUM__COUNT - 1));
		c.block_size = (r >> 44) % 3 ? 0
					     : (uint32_t)((r >> 46) % 5000) + 1;
		c.mem_limit = (r >> 50) % 2 ? 1 : 0;
		c.max_lit = (r >> 51) % 2 ? 32768
					  : (size_t)((r >> 52) % 3000) + 1;
		c.runs = (r >> 62) & 1;
		c.redo = (r >> 63) & 1;
		run_rt(&c, r);
	}
}

/* An engine on a small fixed file: 10 blocks of 700, last one 300. */
struct fixture {
	uint8_t basis[6600];
	int fd;
	struct berth_sum_head h;
	struct berth_delta_apply *a;
	struct sink out;
};

static void fx_init(struct fixture *fx, size_t mem)
{
	struct berth_delta_apply_opts ao = {.pump = test_pump(),
					    .out = sink_cb,
					    .out_arg = &fx->out,
					    .mem_limit = mem,
					    .tag = 0x7e57};
	uint64_t seed = 5;

	memset(&fx->out, 0, sizeof(fx->out));
	rand_bytes(&seed, fx->basis, sizeof(fx->basis));
	fx->fd = temp_file(fx->basis, sizeof(fx->basis));
	assert_int_equal(berth_sum_head_init(&fx->h, sizeof(fx->basis), 32,
					     BERTH_CSUM_XXH128, 0, 0),
			 0);
	assert_int_equal(fx->h.count, 10);
	assert_int_equal(berth_delta_apply_create(&ao, &fx->a), 0);
}

static void fx_destroy(struct fixture *fx)
{
	berth_delta_apply_free(fx->a);
	sink_free(&fx->out);
	close(fx->fd);
}

static int fx_begin(struct fixture *fx, uint64_t size)
{
	struct berth_delta_file f = {.basis_fd = fx->fd,
				     .basis_size = size,
				     .head = fx->h,
				     .csum_type = BERTH_CSUM_XXH128};

	fx->out.len = 0;
	return berth_delta_apply_begin(fx->a, &f);
}

/* Finish with the sender's sum of @expect (@len bytes). */
static int fx_finish(struct fixture *fx, const uint8_t *expect, size_t len)
{
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];

	berth_csum_whole(BERTH_CSUM_XXH128, expect, len, sum);
	return berth_delta_apply_finish(fx->a, sum, 16, NULL);
}

static void test_apply_bad_tokens(void **state)
{
	struct fixture fx;
	uint8_t zero[16] = {0};

	(void)state;
	fx_init(&fx, 0);
	/* Block index at count, runs past the end, overflowing runs. */
	static const uint32_t bad[][2] = {
		{10, 1},	 {9, 2},	  {0, 11},
		{UINT32_MAX, 2}, {5, UINT32_MAX}, {0x80000000u, 1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
		assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 1), 0);
		assert_int_equal(
			berth_delta_apply_blocks(fx.a, bad[i][0], bad[i][1]),
			-BERTH_EPROTO);
		/* Sticky until finish; finish reports it. */
		assert_int_equal(berth_delta_apply_literal(fx.a, "x", 1),
				 -BERTH_EPROTO);
		assert_int_equal(berth_delta_apply_finish(fx.a, zero, 16, NULL),
				 -BERTH_EPROTO);
	}
	/* A head that describes more than the basis holds. */
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis) - 1), -BERTH_EPROTO);
	/* No basis: only an empty head is acceptable. */
	struct berth_delta_file f = {.basis_fd = -1,
				     .basis_size = 1 << 20,
				     .head = fx.h,
				     .csum_type = BERTH_CSUM_XXH128};
	assert_int_equal(berth_delta_apply_begin(fx.a, &f), -BERTH_EPROTO);
	f.head = (struct berth_sum_head){0};
	assert_int_equal(berth_delta_apply_begin(fx.a, &f), 0);
	assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 1), -BERTH_EPROTO);
	berth_delta_apply_abort(fx.a);
	berth_delta_apply_abort(fx.a);
	/* Calls outside a file, a second begin, a bad sum length. */
	assert_int_equal(berth_delta_apply_literal(fx.a, "x", 1), -EINVAL);
	assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 1), -EINVAL);
	assert_int_equal(berth_delta_apply_finish(fx.a, zero, 16, NULL),
			 -EINVAL);
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), -EBUSY);
	assert_int_equal(berth_delta_apply_finish(fx.a, zero, 8, NULL),
			 -EINVAL);
	fx_destroy(&fx);
}

static void test_apply_no_basis(void **state)
{
	struct fixture fx;
	struct berth_delta_file f = {.basis_fd = -1,
				     .csum_type = BERTH_CSUM_MD5};
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];
	uint64_t total;

	(void)state;
	fx_init(&fx, 0);
	assert_int_equal(berth_delta_apply_begin(fx.a, &f), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(berth_delta_apply_literal(fx.a, fx.basis,
							   sizeof(fx.basis)),
				 0);
	assert_int_equal(berth_delta_apply_literal(fx.a, fx.basis, 0), 0);
	assert_int_equal(fx.out.len, 50 * sizeof(fx.basis));
	berth_csum_whole(BERTH_CSUM_MD5, fx.out.buf, fx.out.len, sum);
	assert_int_equal(berth_delta_apply_finish(fx.a, sum, 16, &total), 0);
	assert_int_equal(total, 50 * sizeof(fx.basis));
	/* Empty file without basis. */
	assert_int_equal(berth_delta_apply_begin(fx.a, &f), 0);
	berth_csum_whole(BERTH_CSUM_MD5, "", 0, sum);
	assert_int_equal(berth_delta_apply_finish(fx.a, sum, 16, &total), 0);
	assert_int_equal(total, 0);
	fx_destroy(&fx);
}

/* Literal and block tokens interleaved, blocks out of order and repeated,
 * with only two slots: the output is still in token order. */
static void test_apply_order(void **state)
{
	struct fixture fx;
	uint8_t *expect = malloc(1 << 20);
	size_t n = 0;
	uint64_t seed = 11;

	(void)state;
	fx_init(&fx, 1);
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	for (int i = 0; i < 60; i++) {
		uint32_t b = (uint32_t)(rand_u64(&seed) % 10);
		uint32_t k = (uint32_t)(rand_u64(&seed) % (10 - b)) + 1;
		size_t lit = rand_u64(&seed) % 3000;

		assert_int_equal(berth_delta_apply_blocks(fx.a, b, k), 0);
		for (uint32_t j = b; j < b + k; j++) {
			uint32_t l = berth_sum_head_block_len(&fx.h, j);

			memcpy(expect + n, fx.basis + (size_t)j * 700, l);
			n += l;
		}
		if (i % 3 == 0)
			continue;
		assert_int_equal(
			berth_delta_apply_literal(fx.a, fx.basis + i, lit), 0);
		memcpy(expect + n, fx.basis + i, lit);
		n += lit;
	}
	assert_int_equal(fx_finish(&fx, expect, n), 0);
	assert_int_equal(fx.out.len, n);
	assert_memory_equal(fx.out.buf, expect, n);
	free(expect);
	fx_destroy(&fx);
}

static void test_apply_checksum_mismatch(void **state)
{
	struct fixture fx;
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];

	(void)state;
	fx_init(&fx, 0);
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 10), 0);
	berth_csum_whole(BERTH_CSUM_XXH128, fx.basis, sizeof(fx.basis), sum);
	sum[3] ^= 1;
	assert_int_equal(berth_delta_apply_finish(fx.a, sum, 16, NULL),
			 -BERTH_ECHECKSUM);
	assert_int_equal(fx.out.len, sizeof(fx.basis));
	/* The next file is unaffected. */
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 10), 0);
	assert_int_equal(fx_finish(&fx, fx.basis, sizeof(fx.basis)), 0);
	assert_memory_equal(fx.out.buf, fx.basis, sizeof(fx.basis));

	/* A basis that shrank after the signature: zeros, then a mismatch. */
	assert_int_equal(ftruncate(fx.fd, 5000), 0);
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 10), 0);
	assert_int_equal(fx_finish(&fx, fx.basis, sizeof(fx.basis)),
			 -BERTH_ECHECKSUM);
	fx_destroy(&fx);
}

static void test_apply_output_error(void **state)
{
	struct fixture fx;
	uint8_t zero[16] = {0};

	(void)state;
	fx_init(&fx, 0);
	fx.out.fail_at_call = 2;
	fx.out.fail_err = -ENOSPC;
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	assert_int_equal(berth_delta_apply_literal(fx.a, "ab", 2), 0);
	assert_int_equal(berth_delta_apply_literal(fx.a, "cd", 2), -ENOSPC);
	assert_int_equal(berth_delta_apply_finish(fx.a, zero, 16, NULL),
			 -ENOSPC);
	/* Error surfacing from a drained read: when depends on the pump. */
	fx.out.calls = 0;
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 1), 0);
	int r1 = berth_delta_apply_blocks(fx.a, 5, 1);
	int r2 = berth_delta_apply_blocks(fx.a, 2, 1);
	assert_true(r1 == 0 || r1 == -ENOSPC);
	assert_true(r2 == 0 || r2 == -ENOSPC);
	assert_true(r1 == 0 || r2 == -ENOSPC); /* sticky */
	assert_int_equal(berth_delta_apply_finish(fx.a, zero, 16, NULL),
			 -ENOSPC);
	fx_destroy(&fx);
}

/* Read errors and short reads injected in the pump. */
static void test_apply_read_faults(void **state)
{
	struct berth_fault eio = {
		.ops = BERTH_OP_BIT(BERTH_OP_READ), .nth = 2, .error = EIO};
	struct berth_fault shrt = {.ops = BERTH_OP_BIT(BERTH_OP_READ),
				   .nth = 1,
				   .count = 100,
				   .short_bytes = 100};
	struct berth_csum_params p;
	struct berth_sig_opts so = {.pump = test_pump(), .read_size = 1400};
	struct berth_sig *s;
	struct sink sig = {0};
	struct fixture fx;
	uint8_t zero[16] = {0};

	(void)state;
	fx_init(&fx, 0);
	if (berth_pump_inject(test_pump(), &eio) < 0) {
		fx_destroy(&fx);
		skip();
	}
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	for (uint32_t i = 0; i < 10; i += 2)
		berth_delta_apply_blocks(fx.a, i, 1);
	assert_int_equal(berth_delta_apply_finish(fx.a, zero, 16, NULL), -EIO);
	berth_pump_clear_faults(test_pump());

	assert_int_equal(berth_pump_inject(test_pump(), &shrt), 0);
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 10), 0);
	assert_int_equal(fx_finish(&fx, fx.basis, sizeof(fx.basis)), 0);
	assert_memory_equal(fx.out.buf, fx.basis, sizeof(fx.basis));
	berth_pump_clear_faults(test_pump());

	/* The signature reader reports a read error too. */
	assert_int_equal(
		berth_csum_params_init(&p, BERTH_CSUM_XXH128, 1, 32, 0x1ff), 0);
	assert_int_equal(berth_sig_create(&so, &s), 0);
	eio.nth = 1; /* the whole basis is one read */
	assert_int_equal(berth_pump_inject(test_pump(), &eio), 0);
	assert_int_equal(berth_sig_file(s, fx.fd, &fx.h, &p, sink_cb, &sig),
			 -EIO);
	berth_pump_clear_faults(test_pump());
	/* Heads it refuses. */
	struct berth_sum_head bad = fx.h;
	bad.s2length = 17;
	assert_int_equal(berth_sig_file(s, fx.fd, &bad, &p, sink_cb, &sig),
			 -EINVAL);
	bad = fx.h;
	bad.blength = 0;
	assert_int_equal(berth_sig_file(s, fx.fd, &bad, &p, sink_cb, &sig),
			 -EINVAL);
	berth_sig_free(s);
	sink_free(&sig);
	fx_destroy(&fx);
}

/* A read error that a literal finds at the head of the ring, emptying
 * it, is returned; the literal is not emitted in its place. */
static void test_apply_read_error_then_literal(void **state)
{
	struct berth_fault eio = {
		.ops = BERTH_OP_BIT(BERTH_OP_READ), .nth = 1, .error = EIO};
	struct berth_pump_stats st;
	struct fixture fx;
	uint8_t zero[16] = {0};

	(void)state;
	fx_init(&fx, 0);
	if (berth_pump_inject(test_pump(), &eio) < 0) {
		fx_destroy(&fx);
		skip();
	}
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 1), 0);
	/* Submits the read of block 0 and queues "ab" behind it. */
	assert_int_equal(berth_delta_apply_literal(fx.a, "ab", 2), 0);
	do {
		usleep(1000);
		berth_pump_stats(test_pump(), &st);
	} while (st.in_flight);
	usleep(20000); /* the count goes up just before the callback runs */
	assert_int_equal(berth_delta_apply_literal(fx.a, "cd", 2), -EIO);
	assert_int_equal(fx.out.len, 0);
	assert_int_equal(berth_delta_apply_finish(fx.a, zero, 16, NULL), -EIO);
	berth_pump_clear_faults(test_pump());
	fx_destroy(&fx);
}

/* Random heads and tokens, many of them out of range: every call either
 * does exactly what the tokens say or fails with -BERTH_EPROTO, and no
 * read leaves the basis (ASan would see a bad buffer; the pump a bad
 * offset as a short read and a checksum failure). */
static void test_apply_adversarial(void **state)
{
	struct fixture fx;
	uint8_t *expect = malloc(1 << 20);
	uint64_t seed = 99;
	int files = 0, bad_heads = 0, bad_tokens = 0;

	(void)state;
	fx_init(&fx, 1);
	for (int it = 0; it < 400; it++) {
		uint64_t r = rand_u64(&seed);
		struct berth_delta_file f = {.basis_fd = fx.fd,
					     .csum_type = BERTH_CSUM_XXH3};
		struct berth_sum_head *h = &f.head;
		size_t n = 0;
		int ret = 0, want_err = 0;

		if (r % 4) { /* plausible, sometimes beyond the basis */
			h->blength = (int32_t)((r >> 8) % 600) + 1;
			h->count = (int32_t)((r >> 20) %
					     (6600 / (uint32_t)h->blength + 2));
			h->s2length = (int32_t)((r >> 36) % 17);
			h->remainder = (int32_t)((r >> 42) %
						 ((uint32_t)h->blength + 1));
		} else { /* anything */
			h->count = (int32_t)(r % 24) - 2;
			h->blength = (int32_t)((r >> 10) % 200000) - 9;
			h->s2length = (int32_t)((r >> 30) % 20) - 1;
			h->remainder = (int32_t)((r >> 36) % 1600) - 1;
		}
		f.basis_size = (r >> 58) % 4 ? sizeof(fx.basis)
					     : (r >> 40) % sizeof(fx.basis);
		fx.out.len = 0;
		ret = berth_delta_apply_begin(fx.a, &f);
		if (berth_sum_head_check(h, f.csum_type, f.basis_size)) {
			assert_int_equal(ret, -BERTH_EPROTO);
			bad_heads++;
			continue;
		}
		assert_int_equal(ret, 0);
		for (int k = 0; k < 12 && !want_err; k++) {
			uint64_t q = rand_u64(&seed);

			if (q % 3 == 0) {
				size_t len = (q >> 8) % 2000;

				ret = berth_delta_apply_literal(
					fx.a, fx.basis + (q >> 20) % 4000, len);
				memcpy(expect + n, fx.basis + (q >> 20) % 4000,
				       len);
				n += len;
				assert_int_equal(ret, 0);
				continue;
			}
			uint32_t first, cnt;

			if ((q >> 4) % 16 == 0 || h->count == 0) { /* wild */
				first = (q >> 8) % 2 ? (uint32_t)(q >> 16) % 26
						     : (uint32_t)(q >> 16);
				cnt = (q >> 9) % 2 ? (uint32_t)(q >> 48) % 5
						   : (uint32_t)(q >> 32);
			} else {
				first = (uint32_t)(q >> 16) %
					(uint32_t)h->count;
				cnt = (uint32_t)(q >> 48) %
				      ((uint32_t)h->count - first + 1);
			}
			ret = berth_delta_apply_blocks(fx.a, first, cnt);
			if ((uint64_t)first + cnt > (uint64_t)h->count ||
			    (cnt && first >= (uint32_t)h->count)) {
				assert_int_equal(ret, -BERTH_EPROTO);
				want_err = 1;
				break;
			}
			assert_int_equal(ret, 0);
			for (uint32_t b = first; b < first + cnt; b++) {
				uint32_t l = berth_sum_head_block_len(h, b);

				memcpy(expect + n,
				       fx.basis +
					       (size_t)b * (uint32_t)h->blength,
				       l);
				n += l;
			}
		}
		if (want_err) {
			berth_delta_apply_abort(fx.a);
			bad_tokens++;
			continue;
		}
		files++;
		uint8_t sum[BERTH_CSUM_MAX_DIGEST];
		berth_csum_whole(BERTH_CSUM_XXH3, expect, n, sum);
		assert_int_equal(berth_delta_apply_finish(fx.a, sum, 8, NULL),
				 0);
		assert_int_equal(fx.out.len, n);
		if (n)
			assert_memory_equal(fx.out.buf, expect, n);
	}
	/* The mix exercised all three outcomes. */
	print_message("files %d, bad heads %d, bad tokens %d\n", files,
		      bad_heads, bad_tokens);
	assert_true(files > 20 && bad_heads > 20 && bad_tokens > 20);
	free(expect);
	fx_destroy(&fx);
}

/* --append-verify: the kept prefix is hashed (through the pump, more of it
 * than the ring holds), not emitted; the literal tail is. */
static void test_apply_append_verify(void **state)
{
	struct berth_delta_apply_opts ao = {
		.pump = test_pump(), .out = sink_cb, .mem_limit = 1};
	size_t plen = 700001, tail = 54321;
	uint8_t *newf = malloc(plen + tail);
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];
	struct berth_delta_apply *a;
	struct berth_delta_file f = {.basis_size = plen,
				     .csum_type = BERTH_CSUM_MD5};
	struct sink out = {0};
	uint64_t seed = 21, total;

	(void)state;
	rand_bytes(&seed, newf, plen + tail);
	f.basis_fd = temp_file(newf, plen);
	assert_int_equal(
		berth_sum_head_init(&f.head, plen, 31, f.csum_type, 0, 0), 0);
	ao.out_arg = &out;
	assert_int_equal(berth_delta_apply_create(&ao, &a), 0);
	berth_csum_whole(f.csum_type, newf, plen + tail, sum);
	for (int round = 0; round < 2; round++) {
		out.len = 0;
		f.hash_prefix = plen;
		assert_int_equal(berth_delta_apply_begin(a, &f), 0);
		assert_int_equal(
			berth_delta_apply_literal(a, newf + plen, tail), 0);
		assert_int_equal(berth_delta_apply_finish(a, sum, 16, &total),
				 0);
		assert_int_equal(total, tail);
		assert_int_equal(out.len, tail);
		assert_memory_equal(out.buf, newf + plen, tail);
	}
	/* Plain --append: no prefix in the sum, which then mismatches. */
	f.hash_prefix = 0;
	assert_int_equal(berth_delta_apply_begin(a, &f), 0);
	assert_int_equal(berth_delta_apply_literal(a, newf + plen, tail), 0);
	assert_int_equal(berth_delta_apply_finish(a, sum, 16, NULL),
			 -BERTH_ECHECKSUM);
	/* A prefix longer than the basis. */
	f.hash_prefix = plen + 1;
	assert_int_equal(berth_delta_apply_begin(a, &f), -EINVAL);
	berth_delta_apply_free(a);
	sink_free(&out);
	close(f.basis_fd);
	free(newf);
}

/* A session cancel (pump tag) while reads are in flight: the file ends
 * with -ECANCELED or completes, never hangs; the engine stays usable. */
static void test_apply_cancel(void **state)
{
	struct fixture fx;
	uint8_t expect[3500];
	size_t n = 0;
	int ret;

	(void)state;
	fx_init(&fx, 0);
	for (int round = 0; round < 20; round++) {
		n = 0;
		assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
		for (uint32_t i = 0; i < 10; i += 2) {
			ret = berth_delta_apply_blocks(fx.a, i, 1);
			assert_true(ret == 0 || ret == -ECANCELED);
			memcpy(expect + n, fx.basis + i * 700, 700);
			n += 700;
		}
		berth_pump_cancel_tag(test_pump(), 0x7e57);
		ret = fx_finish(&fx, expect, n);
		assert_true(ret == 0 || ret == -ECANCELED);
	}
	assert_int_equal(fx_begin(&fx, sizeof(fx.basis)), 0);
	assert_int_equal(berth_delta_apply_blocks(fx.a, 0, 10), 0);
	assert_int_equal(fx_finish(&fx, fx.basis, sizeof(fx.basis)), 0);
	fx_destroy(&fx);
}

/* The signature of a basis that shrank reads zeros past the end. */
static void test_sig_short_basis(void **state)
{
	struct fixture fx;
	struct berth_csum_params p;
	struct sink sig = {0};
	uint8_t padded[6600] = {0}, want[10 * 20];

	(void)state;
	fx_init(&fx, 0);
	memcpy(padded, fx.basis, 4000);
	assert_int_equal(ftruncate(fx.fd, 4000), 0);
	assert_int_equal(
		berth_csum_params_init(&p, BERTH_CSUM_XXH128, 1, 32, 0x1ff), 0);
	sig_of(&p, &fx.h, fx.fd, &sig);
	berth_sig_blocks(&p, &fx.h, 0, 10, padded, want);
	assert_memory_equal(sig.buf + 16, want, 10 * (4 + 2));
	sink_free(&sig);
	fx_destroy(&fx);
}

const struct CMUnitTest delta_rt_tests[] = {
	cmocka_unit_test(test_roundtrip),
	cmocka_unit_test(test_roundtrip_blocks),
	cmocka_unit_test(test_roundtrip_random),
	cmocka_unit_test(test_apply_bad_tokens),
	cmocka_unit_test(test_apply_no_basis),
	cmocka_unit_test(test_apply_order),
	cmocka_unit_test(test_apply_checksum_mismatch),
	cmocka_unit_test(test_apply_output_error),
	cmocka_unit_test(test_apply_read_faults),
	cmocka_unit_test(test_apply_read_error_then_literal),
	cmocka_unit_test(test_apply_adversarial),
	cmocka_unit_test(test_apply_append_verify),
	cmocka_unit_test(test_apply_cancel),
	cmocka_unit_test(test_sig_short_basis),
};
const size_t delta_rt_count = sizeof(delta_rt_tests) /
			      sizeof(delta_rt_tests[0]);
