/* SPDX-License-Identifier: MIT */
/*
 * Delta tests: known answers from the rsync captures.  The vectors in
 * fixtures/delta/<case>.vec are made by fixtures/delta/gen_delta_vectors.py from
 * shared/captures (sums and tokens as captured); the bases are rebuilt here
 * from the capture recipe (Python's random, see delta_pyrandom.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "delta_pyrandom.h"
#include "test_delta.h"

#define MAXS 4

struct vec_sig {
	struct berth_sum_head h;
	uint64_t xxh;
	uint8_t *hex; /* all sums, or NULL for big captures */
	size_t hexlen;
};

struct vec_xfer {
	struct berth_sum_head h;
	struct ds_tokens toks;
	uint8_t *lits[64]; /* owned literal buffers */
	int nlits;
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];
	size_t sumlen;
};

struct vec {
	char name[64];
	int proto, csum, append;
	uint32_t compat, seed;
	uint8_t *basis, *newf;
	size_t basis_len, new_len;
	uint64_t basis_xxh, new_xxh;
	struct vec_sig sig[MAXS];
	int nsig;
	struct vec_xfer xf[MAXS];
	int nxf;
};

static size_t unhex(const char *s, uint8_t **out)
{
	size_t n = strcspn(s, " \n") / 2;
	uint8_t *b = malloc(n ? n : 1);

	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		b[i] = (uint8_t)v;
	}
	*out = b;
	return n;
}

/* "SEED SIZE [rnd OFF SEED N | lit OFF HEX]..." -> bytes */
static uint8_t *recipe(const char *s, size_t *len)
{
	unsigned long seed, size, off, n;
	uint8_t *b;
	int k;

	assert_int_equal(sscanf(s, "%lu %lu%n", &seed, &size, &k), 2);
	b = malloc(size ? size : 1);
	assert_non_null(b);
	pyrandom_bytes((uint32_t)seed, b, size);
	s += k;
	while (*s == ' ') {
		char kind[8];

		assert_int_equal(sscanf(s, " %7s %lu%n", kind, &off, &k), 2);
		s += k;
		if (!strcmp(kind, "trunc")) {
			assert_true(off <= size);
			size = off;
		} else if (!strcmp(kind, "rnd")) {
			assert_int_equal(sscanf(s, " %lu %lu%n", &seed, &n, &k),
					 2);
			s += k;
			assert_true(off + n <= size);
			pyrandom_bytes((uint32_t)seed, b + off, n);
		} else {
			uint8_t *lit;

			s++;
			n = unhex(s, &lit);
			s += 2 * n;
			assert_true(off + n <= size);
			memcpy(b + off, lit, n);
			free(lit);
		}
	}
	*len = size;
	return b;
}

static int read_head(const char *s, struct berth_sum_head *h)
{
	return sscanf(s, "%d %d %d %d", &h->count, &h->blength, &h->s2length,
		      &h->remainder) == 4;
}

static void vec_load(struct vec *v, const char *name)
{
	const char *dir = getenv("BERTH_FIXTURES");
	char path[512], key[32], *line = NULL, csum[16];
	size_t cap = 0;
	FILE *f;

	memset(v, 0, sizeof(*v));
	snprintf(path, sizeof(path), "%s/delta/%s.vec", dir ? dir : "fixtures",
		 name);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	while (getline(&line, &cap, f) > 0) {
		char *arg;
		struct vec_xfer *x = v->nxf ? &v->xf[v->nxf - 1] : NULL;
		struct vec_sig *g = v->nsig ? &v->sig[v->nsig - 1] : NULL;

		if (line[0] == '#' || sscanf(line, "%31s", key) != 1)
			continue;
		arg = line + strlen(key);
		arg += *arg == ' ';
		if (!strcmp(key, "case")) {
			sscanf(arg, "%63s", v->name);
		} else if (!strcmp(key, "append")) {
			v->append = atoi(arg);
		} else if (!strcmp(key, "proto")) {
			v->proto = atoi(arg);
		} else if (!strcmp(key, "compat")) {
			v->compat = (uint32_t)strtoul(arg, NULL, 0);
		} else if (!strcmp(key, "seed")) {
			v->seed = (uint32_t)strtoul(arg, NULL, 0);
		} else if (!strcmp(key, "csum")) {
			sscanf(arg, "%15s", csum);
			v->csum = berth_csum_from_name(csum, strlen(csum));
			assert_true(v->csum >= 0);
		} else if (!strcmp(key, "basis")) {
			v->basis = recipe(arg, &v->basis_len);
		} else if (!strcmp(key, "new")) {
			v->newf = recipe(arg, &v->new_len);
		} else if (!strcmp(key, "basis_xxh64")) {
			v->basis_xxh = strtoull(arg, NULL, 16);
		} else if (!strcmp(key, "new_xxh64")) {
			v->new_xxh = strtoull(arg, NULL, 16);
		} else if (!strcmp(key, "sig")) {
			assert_true(v->nsig < MAXS);
			assert_true(read_head(arg, &v->sig[v->nsig++].h));
		} else if (!strcmp(key, "sig_xxh64")) {
			g->xxh = strtoull(arg, NULL, 16);
		} else if (!strcmp(key, "sig_hex")) {
			g->hexlen = unhex(arg, &g->hex);
		} else if (!strcmp(key, "xfer")) {
			assert_true(v->nxf < MAXS);
			assert_true(read_head(arg, &v->xf[v->nxf++].h));
		} else if (!strcmp(key, "tok_blocks")) {
			struct ds_token t = {0};
			unsigned a, b;

			assert_int_equal(sscanf(arg, "%u %u", &a, &b), 2);
			t.first = a;
			t.n = b - a + 1;
			x->toks.v = realloc(x->toks.v,
					    (x->toks.n + 1) * sizeof(t));
			x->toks.v[x->toks.n++] = t;
		} else if (!strcmp(key, "tok_lit")) {
			struct ds_token t = {.is_lit = 1};
			uint8_t *b;

			assert_true(x->nlits < 64);
			t.len = unhex(arg, &b);
			t.lit = b;
			x->lits[x->nlits++] = b;
			x->toks.v = realloc(x->toks.v,
					    (x->toks.n + 1) * sizeof(t));
			x->toks.v[x->toks.n++] = t;
		} else if (!strcmp(key, "xfer_sum")) {
			uint8_t *b;

			x->sumlen = unhex(arg, &b);
			assert_true(x->sumlen <= BERTH_CSUM_MAX_DIGEST);
			memcpy(x->sum, b, x->sumlen);
			free(b);
		}
	}
	free(line);
	fclose(f);
	assert_non_null(v->basis);
	assert_non_null(v->newf);
}

static void vec_free(struct vec *v)
{
	free(v->basis);
	free(v->newf);
	for (int i = 0; i < v->nsig; i++)
		free(v->sig[i].hex);
	for (int i = 0; i < v->nxf; i++) {
		for (int k = 0; k < v->xf[i].nlits; k++)
			free(v->xf[i].lits[k]);
		free(v->xf[i].toks.v);
	}
}

static void run_case(const char *name)
{
	struct berth_delta_apply_opts ao = {.pump = test_pump(),
					    .out = sink_cb};
	struct berth_delta_apply *a;
	struct berth_csum_params p;
	struct sink out = {0};
	uint8_t want[BERTH_CSUM_MAX_DIGEST];
	struct vec v;
	size_t skip;
	int fd;

	vec_load(&v, name);
	/* --append keeps the basis in place; only the tail is sent. */
	skip = v.append ? v.basis_len : 0;
	/* The rebuilt files are the capture's files. */
	assert_int_equal(XXH64(v.basis, v.basis_len, 0), v.basis_xxh);
	assert_int_equal(XXH64(v.newf, v.new_len, 0), v.new_xxh);
	assert_int_equal(
		berth_csum_params_init(&p, v.csum, v.seed, v.proto, v.compat),
		0);
	fd = temp_file(v.basis, v.basis_len);

	for (int i = 0; i < v.nsig; i++) {
		const struct vec_sig *g = &v.sig[i];
		struct berth_sum_head h;
		struct sink sig = {0};
		uint8_t *sums;
		size_t wl;

		/* Sum head: first the normal pass, then the redo pass. */
		assert_int_equal(berth_sum_head_init(&h, v.basis_len, v.proto,
						     v.csum, 0, i > 0),
				 0);
		assert_memory_equal(&h, &g->h, sizeof(h));

		if (v.append)
			continue; /* --append: the head only, no sums */

		/* Pure sums over the whole basis. */
		wl = (size_t)berth_sig_wire_len(&h);
		sums = malloc(wl);
		assert_int_equal(berth_sig_blocks(&p, &h, 0, (uint32_t)h.count,
						  v.basis, sums),
				 wl);
		if (g->hex) {
			assert_int_equal(g->hexlen, wl);
			assert_memory_equal(sums, g->hex, wl);
		}
		assert_int_equal(XXH64(sums, wl, 0), g->xxh);

		/* The same through the pump-driven reader. */
		sig_of(&p, &h, fd, &sig);
		assert_memory_equal(sig.buf + BERTH_SUM_HEAD_WIRE, sums, wl);
		free(sums);
		sink_free(&sig);
	}

	ao.out_arg = &out;
	assert_int_equal(berth_delta_apply_create(&ao, &a), 0);
	for (int i = 0; i < v.nxf; i++) {
		struct vec_xfer *x = &v.xf[i];
		int ret;

		out.len = 0;
		ret = apply_tokens(a, fd, v.basis_len, &x->h, v.csum, &x->toks,
				   x->sum, &out);
		if (!strcmp(name, "case8_redo") && i == 0) {
			/* One bit of the literal was flipped on the way:
			 * the sender's sum is over the true file. */
			assert_int_equal(ret, -BERTH_ECHECKSUM);
		} else {
			assert_int_equal(ret, 0);
			assert_int_equal(out.len, v.new_len - skip);
			assert_memory_equal(out.buf, v.newf + skip,
					    v.new_len - skip);
		}
		/* The sender's whole-file sum is the unseeded digest (with
		 * --append: of the appended bytes). */
		assert_int_equal(x->sumlen, berth_csum_digest_len(v.csum));
		berth_csum_whole(v.csum, v.newf + skip, v.new_len - skip, want);
		assert_memory_equal(want, x->sum, x->sumlen);
	}
	sink_free(&out);
	berth_delta_apply_free(a);
	close(fd);
	vec_free(&v);
}

#define KAT(name)                             \
	static void test_##name(void **state) \
	{                                     \
		(void)state;                  \
		run_case(#name);              \
	}

KAT(case2_delta)
KAT(case2_delta_csum_md4)
KAT(case2_delta_csum_md5)
KAT(case2_delta_csum_sha1)
KAT(case2_delta_csum_xxh3)
KAT(case2_delta_csum_xxh64)
KAT(case2_delta_proto30)
KAT(case2_delta_proto30_oldcaps)
KAT(case2b_delta_48mb)
KAT(case8_redo)
KAT(case11_append)
KAT(case3_delta_zstd)
KAT(case3b_delta_zlib_oldcaps)

const struct CMUnitTest delta_kat_tests[] = {
	cmocka_unit_test(test_case2_delta),
	cmocka_unit_test(test_case2_delta_csum_md4),
	cmocka_unit_test(test_case2_delta_csum_md5),
	cmocka_unit_test(test_case2_delta_csum_sha1),
	cmocka_unit_test(test_case2_delta_csum_xxh3),
	cmocka_unit_test(test_case2_delta_csum_xxh64),
	cmocka_unit_test(test_case2_delta_proto30),
	cmocka_unit_test(test_case2_delta_proto30_oldcaps),
	cmocka_unit_test(test_case2b_delta_48mb),
	cmocka_unit_test(test_case8_redo),
	cmocka_unit_test(test_case11_append),
	cmocka_unit_test(test_case3_delta_zstd),
	cmocka_unit_test(test_case3b_delta_zlib_oldcaps),
};
const size_t delta_kat_count = sizeof(delta_kat_tests) /
			       sizeof(delta_kat_tests[0]);
