/* SPDX-License-Identifier: MIT */
/*
 * Server handshake (§4) replayed against every capture: the bytes berth
 * would send must equal the captured server bytes (with the stock lists).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocol/protocol.h"
#include "proto_testutil.h"

#define STOCK_CSUMS "xxh128 xxh3 xxh64 md5 md4 sha1 none"
#define STOCK_ZIPS "zstd lz4 zlibx zlib none"

struct run {
	struct berth_opts o;
	char **argv;
	int argc;
	char sbuf[4096];
	char *sargv[64];
	size_t c2s_at; /* after the secluded args */
};

/* Parse the case's argv (and secluded args from the C2S stream). */
static void load_opts(struct run *r, const char *cs, const uint8_t *c2s,
		      size_t c2s_len)
{
	struct berth_secluded s;
	struct berth_proto_in in = {c2s, c2s_len, 0};

	r->argv = pt_argv(cs, &r->argc);
	assert_non_null(r->argv);
	assert_int_equal(berth_opts_parse(&r->o, r->argc, r->argv), 0);
	r->c2s_at = 0;
	if (r->o.secluded) {
		berth_secluded_init(&s, r->sbuf, sizeof(r->sbuf), r->sargv, 64);
		/* one byte at a time */
		for (;;) {
			struct berth_proto_in one = {c2s, in.pos + 1, in.pos};
			int rc = berth_secluded_decode(&s, &one);

			assert_true(rc >= 0);
			in.pos = one.pos;
			if (rc == BERTH_PROTO_DONE)
				break;
		}
		assert_string_equal(s.argv[0], "rsync");
		assert_int_equal(berth_opts_parse_more(&r->o, s.argc, s.argv),
				 0);
		r->c2s_at = in.pos;
	}
	assert_non_null(r->o.dest);
}

/* Expected choice from README: "-> checksum = X (block/file), Y (...". */
static void readme_choice(const char *cs, char *x, char *y, char *z)
{
	size_t len;
	char *t = (char *)pt_load(cs, "README.md", &len);
	char *p = strstr(t, "-> checksum = ");

	assert_non_null(p);
	assert_int_equal(
		sscanf(p,
		       "-> checksum = %31s (block/file), %31s (--checksum), compression = %31s",
		       x, y, z),
		3);
	free(t);
}

static int replay(const struct run *r, const uint8_t *c2s, size_t c2s_len,
		  struct berth_hs_config *cfg, uint8_t *s2c, size_t *s2c_len,
		  size_t *c2s_end, struct berth_hs_result *res)
{
	struct berth_hs hs;
	struct berth_proto_out out = {s2c, 4096, 0};
	struct berth_proto_in in = {c2s, 0, r->c2s_at};
	int rc;

	assert_int_equal(berth_hs_init(&hs, cfg), 0);
	assert_int_equal(berth_hs_put_version(&hs, &out), 0);
	do {
		in.size = in.pos + 1;
		rc = berth_hs_get_version(&hs, &in);
	} while (rc == 0 && in.pos < c2s_len);
	if (rc < 0)
		return rc;
	assert_int_equal(berth_hs_put_setup(&hs, &out), 0);
	do {
		in.size = in.pos + 1 <= c2s_len ? in.pos + 1 : c2s_len;
		rc = berth_hs_get_lists(&hs, &in);
	} while (rc == 0 && in.pos < c2s_len);
	if (rc < 0)
		return rc;
	assert_int_equal(rc, BERTH_PROTO_DONE);
	assert_int_equal(berth_hs_put_seed(&hs, &out), 0);
	*s2c_len = out.pos;
	*c2s_end = in.pos;
	*res = hs.res;
	return 0;
}

static void test_replay_stock_lists(void **state)
{
	int ncase;
	char **cases = pt_cases(&ncase);

	(void)state;
	if (!cases)
		skip();
	for (int i = 0; i < ncase; i++) {
		size_t c2s_len, s2c_len, s2c_at, c2s_at, n, end;
		uint8_t *c2s = pt_load(cases[i], "client_to_server.bin",
				       &c2s_len);
		uint8_t *s2c = pt_load(cases[i], "server_to_client.bin",
				       &s2c_len);
		uint8_t mine[4096];
		struct berth_hs_config cfg = {0};
		struct berth_hs_result res;
		struct run r;
		char x[32], y[32], z[32];

		assert_true(pt_mux_start(cases[i], &s2c_at, &c2s_at));
		load_opts(&r, cases[i], c2s, c2s_len);
		berth_opts_hs_config(&r.o, &cfg);
		cfg.checksum_list = STOCK_CSUMS;
		cfg.compress_list = STOCK_ZIPS;
		/* Stock server permission for inc-recursion (§2.3). */
		cfg.allow_inc_recurse = r.o.recursive &&
					!r.o.prune_empty_dirs &&
					!r.o.delay_updates &&
					r.o.delete_mode !=
						BERTH_DELETE_BEFORE &&
					r.o.delete_mode != BERTH_DELETE_AFTER;
		assert_int_equal(
			replay(&r, c2s, c2s_len, &cfg, mine, &n, &end, &res),
			0);
		if (n != s2c_at || memcmp(mine, s2c, n) != 0)
			fail_msg("%s: server handshake bytes differ", cases[i]);
		assert_int_equal(end, c2s_at);
		readme_choice(cases[i], x, y, z);
		assert_string_equal(berth_csum_name(res.xfer_csum), x);
		assert_string_equal(berth_csum_name(res.file_csum), y);
		assert_string_equal(berth_compress_name(res.compress), z);
		assert_int_equal(res.seed, 12345);
		free(c2s);
		free(s2c);
		pt_free_list(r.argv, r.argc);
	}
	pt_free_list(cases, ncase);
}

/*
 * Captures whose client asked for incremental recursion: where berth
 * grants it (it works) and where it declines (-H, -X, --append, ...).
 */
static const char *const inc_granted[] = {
	"case1_initial_a", "case7_sort_order", "case8_redo", "case4_delete",
	"case5_checksum",  "case14_dry_run",   NULL,
};
static const char *const inc_declined[] = {
	"case6_types",
	"case6b_hardlinks_xattrs",
	"case10_xattrs",
	"case11_append",
	"case4b_delete_after",
	"case1_initial_a_noinc",
	NULL,
};

/* Whether @name is one of @names (NULL-terminated). */
static bool named(const char *name, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(name, *names))
			return true;
	return false;
}

/*
 * berth's own offer: xxh*, md5, md4; the stock compressors; incremental
 * recursion as stock rsync grants it, except for the options berth only
 * supports with one list (-H, -X, --delete-delay, ...).
 */
static void test_replay_berth_lists(void **state)
{
	int ncase;
	char **cases = pt_cases(&ncase);

	(void)state;
	if (!cases)
		skip();
	for (int i = 0; i < ncase; i++) {
		size_t c2s_len, s2c_len, s2c_at, c2s_at, n, end;
		uint8_t *c2s = pt_load(cases[i], "client_to_server.bin",
				       &c2s_len);
		uint8_t *s2c = pt_load(cases[i], "server_to_client.bin",
				       &s2c_len);
		uint8_t mine[4096];
		struct berth_hs_config cfg = {0};
		struct berth_hs_result res;
		struct run r;
		char x[32], y[32], z[32];
		int rc;

		assert_true(pt_mux_start(cases[i], &s2c_at, &c2s_at));
		load_opts(&r, cases[i], c2s, c2s_len);
		berth_opts_hs_config(&r.o, &cfg);
		readme_choice(cases[i], x, y, z);
		rc = replay(&r, c2s, c2s_len, &cfg, mine, &n, &end, &res);
		if (strcmp(x, "sha1") == 0) {
			assert_int_equal(rc, -BERTH_EUNSUPPORTED);
		} else {
			uint32_t stock_cf;
			struct berth_proto_in in = {s2c, s2c_len, 4};
			int32_t v;

			assert_int_equal(rc, 0);
			assert_int_equal(end, c2s_at);
			assert_string_equal(berth_csum_name(res.xfer_csum), x);
			assert_string_equal(berth_compress_name(res.compress),
					    z);
			assert_int_equal(berth_proto_get_varint(&in, &v), 1);
			stock_cf = (uint32_t)v;
			bool grant = berth_opts_inc_recurse(&r.o);

			assert_int_equal(res.compat,
					 grant ? stock_cf
					       : stock_cf &
							 ~BERTH_CF_INC_RECURSE);
			/* Granted where it works; declined where not. */
			if (named(cases[i], inc_granted))
				assert_true(res.compat & BERTH_CF_INC_RECURSE);
			if (named(cases[i], inc_declined))
				assert_false(res.compat & BERTH_CF_INC_RECURSE);
		}
		free(c2s);
		free(s2c);
		pt_free_list(r.argv, r.argc);
	}
	pt_free_list(cases, ncase);
}

static void test_errors(void **state)
{
	struct berth_hs hs;
	struct berth_hs_config cfg = {0};
	uint8_t b[64];
	struct berth_proto_out out = {b, sizeof(b), 0};
	struct berth_proto_in in;
	static const uint8_t v26[] = {26, 0, 0, 0}, v41[] = {41, 0, 0, 0};
	static const uint8_t v29[] = {29, 0, 0, 0};
	static const uint8_t v31[] = {31, 0, 0, 0, 3, 'f', 'o', 'o'};
	static const uint8_t v32z[] = {32,  0, 0,   0,	 3,   'm', 'd',
				       '5', 4, 'z', 'l', 'i', 'b'};

	(void)state;
	cfg.client_caps = ".iLsfxCIvu";
	berth_hs_init(&hs, &cfg);
	assert_int_equal(berth_hs_get_version(&hs, &in), -EINVAL); /* order */
	berth_hs_put_version(&hs, &out);
	assert_memory_equal(b, "\x20\0\0\0", 4);
	in = (struct berth_proto_in){v26, 4, 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), -BERTH_EUNSUPPORTED);

	/* 29: nothing negotiated, no compat flags, MD4, zlib with -z. */
	cfg.compress = true;
	cfg.compress_list = "zstd zlib";
	berth_hs_init(&hs, &cfg);
	out.pos = 0;
	berth_hs_put_version(&hs, &out);
	in = (struct berth_proto_in){v29, 4, 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), BERTH_PROTO_DONE);
	assert_int_equal(hs.res.protocol, 29);
	assert_int_equal(hs.res.compat, 0);
	assert_false(hs.res.negotiate);
	assert_int_equal(hs.res.xfer_csum, BERTH_CSUM_MD4);
	assert_int_equal(hs.res.compress, BERTH_COMPRESS_ZLIB);
	out.pos = 0;
	assert_int_equal(berth_hs_put_setup(&hs, &out), 0);
	assert_int_equal(out.pos, 0); /* nothing */
	in = (struct berth_proto_in){v29, 0, 0};
	assert_int_equal(berth_hs_get_lists(&hs, &in), BERTH_PROTO_DONE);
	assert_int_equal(berth_hs_put_seed(&hs, &out), 0);
	assert_int_equal(out.pos, 4);
	cfg.compress = false;
	cfg.compress_list = NULL;
	berth_hs_init(&hs, &cfg);
	berth_hs_put_version(&hs, &out);
	in = (struct berth_proto_in){v41, 4, 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), -BERTH_EPROTO);

	/* nothing in common */
	berth_hs_init(&hs, &cfg);
	out.pos = 0;
	berth_hs_put_version(&hs, &out);
	in = (struct berth_proto_in){v31, sizeof(v31), 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), 1);
	assert_int_equal(hs.res.protocol, 31);
	assert_int_equal(berth_hs_put_setup(&hs, &out), 0);
	assert_memory_equal(b + 4, "\x81\xfe\x19xxh128 xxh3 xxh64 md5 md4", 28);
	assert_int_equal(berth_hs_get_lists(&hs, &in), -BERTH_EUNSUPPORTED);

	/* compression: client offers only zlib */
	cfg.compress = true;
	berth_hs_init(&hs, &cfg);
	out.pos = 0;
	berth_hs_put_version(&hs, &out);
	in = (struct berth_proto_in){v32z, sizeof(v32z), 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), 1);
	assert_int_equal(berth_hs_put_setup(&hs, &out), 0);
	assert_memory_equal(
		b + 6,
		"\x19xxh128 xxh3 xxh64 md5 md4\x18zstd lz4 zlibx zlib none",
		51);
	/* our first name that the client has */
	assert_int_equal(berth_hs_get_lists(&hs, &in), 1);
	assert_int_equal(hs.res.compress, BERTH_COMPRESS_ZLIB);
	/* ... unless --compress-level=0 turns zlib off */
	cfg.compress_level0 = true;
	berth_hs_init(&hs, &cfg);
	out.pos = 0;
	berth_hs_put_version(&hs, &out);
	in = (struct berth_proto_in){v32z, sizeof(v32z), 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), 1);
	assert_int_equal(berth_hs_put_setup(&hs, &out), 0);
	assert_int_equal(berth_hs_get_lists(&hs, &in), 1);
	assert_int_equal(hs.res.compress, BERTH_COMPRESS_NONE);
	cfg.compress_level0 = false;
	/* nothing in common */
	cfg.compress_list = "zstd none";
	berth_hs_init(&hs, &cfg);
	out.pos = 0;
	berth_hs_put_version(&hs, &out);
	in = (struct berth_proto_in){v32z, sizeof(v32z), 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), 1);
	assert_int_equal(berth_hs_put_setup(&hs, &out), 0);
	assert_int_equal(berth_hs_get_lists(&hs, &in), -BERTH_EUNSUPPORTED);
	cfg.compress_list = NULL;

	/* explicit choices */
	cfg.compress = false;
	cfg.checksum_choice = "xxh3,md5";
	berth_hs_init(&hs, &cfg);
	out.pos = 0;
	berth_hs_put_version(&hs, &out);
	in = (struct berth_proto_in){v32z, 4, 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), 1);
	assert_int_equal(hs.res.xfer_csum, BERTH_CSUM_XXH3);
	assert_int_equal(hs.res.file_csum, BERTH_CSUM_MD5);
	assert_int_equal(berth_hs_put_setup(&hs, &out), 0);
	assert_int_equal(out.pos, 6); /* no lists */
	assert_int_equal(berth_hs_get_lists(&hs, &in), 1);
	cfg.checksum_choice = "sha1";
	berth_hs_init(&hs, &cfg);
	berth_hs_put_version(&hs, &out);
	in = (struct berth_proto_in){v32z, 4, 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), -BERTH_EUNSUPPORTED);
	cfg.checksum_choice = "auto";
	cfg.client_caps = ".iLsfx"; /* old client: md5, byte xflags */
	berth_hs_init(&hs, &cfg);
	berth_hs_put_version(&hs, &out);
	in = (struct berth_proto_in){v32z, 4, 0};
	assert_int_equal(berth_hs_get_version(&hs, &in), 1);
	assert_int_equal(hs.res.xfer_csum, BERTH_CSUM_MD5);
	assert_false(hs.res.negotiate);
	assert_int_equal(hs.res.compat, 0x1e);
	/* a list longer than the limit */
	{
		uint8_t big[600] = {32, 0, 0, 0, 0x82, 0x00};

		memset(big + 6, 'a', sizeof(big) - 6);
		cfg.checksum_choice = NULL;
		cfg.client_caps = ".v";
		berth_hs_init(&hs, &cfg);
		out.pos = 0;
		berth_hs_put_version(&hs, &out);
		in = (struct berth_proto_in){big, sizeof(big), 0};
		assert_int_equal(berth_hs_get_version(&hs, &in), 1);
		berth_hs_put_setup(&hs, &out);
		assert_int_equal(berth_hs_get_lists(&hs, &in), -BERTH_EPROTO);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_stock_lists),
		cmocka_unit_test(test_replay_berth_lists),
		cmocka_unit_test(test_errors),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	if (r == 0 && !pt_have_captures())
		return 77;
	return r;
}
