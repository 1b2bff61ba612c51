/* SPDX-License-Identifier: MIT */
/* `rsync --server` argv parsing (§2) and secluded arguments (§2.5). */
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

#define PARSE(o, ...)                                                       \
	({                                                                  \
		char *v_[] = {"rsync", "--server", __VA_ARGS__};            \
		berth_opts_parse(o, (int)(sizeof(v_) / sizeof(v_[0])), v_); \
	})

static void test_examples(void **state)
{
	struct berth_opts o;

	(void)state;
	assert_int_equal(PARSE(&o, "-logDtpre.iLsfxCIvu", ".", "/d/"), 0);
	assert_true(o.links && o.owner && o.group && o.devices && o.specials);
	assert_true(o.times && o.perms && o.recursive);
	assert_false(o.compress);
	assert_string_equal(o.caps, ".iLsfxCIvu");
	assert_string_equal(o.dest, "/d/");
	assert_false(berth_opts_want_filters(&o));

	assert_int_equal(PARSE(&o, "-vvlHogDtpXXre.iLsfxCIvu", "--delete",
			       "--force", "--log-format=%i%I", ".", "x"),
			 0);
	assert_int_equal(o.verbose, 2);
	assert_int_equal(o.hard_links, 1);
	assert_int_equal(o.xattrs, 2);
	assert_int_equal(o.delete_mode, BERTH_DELETE_DURING);
	assert_true(o.force);
	assert_string_equal(o.log_format, "%i%I");
	assert_true(berth_opts_want_filters(&o));

	/* -U; -UU also means --open-noatime (rsync's options.c). */
	assert_int_equal(PARSE(&o, "-logDtpUr", ".", "x"), 0);
	assert_int_equal(o.atimes, 1);
	assert_false(o.open_noatime);
	assert_int_equal(PARSE(&o, "-logDtpUUr", ".", "x"), 0);
	assert_int_equal(o.atimes, 2);
	assert_true(o.open_noatime);

	assert_int_equal(PARSE(&o, "-logDtpr", "--append", "--append",
			       "--link-dest", "../prev", "--partial-dir", ".p",
			       "--suffix=.bak", "-B8192", "--max-delete=-1",
			       "--compress-level=9", "--compress-choice=zstd",
			       "--checksum-seed=-5", "--min-size=1.5k",
			       "--max-size=2MB", "--no-specials", ".", "d"),
			 0);
	assert_null(o.caps);
	assert_int_equal(o.append, 2);
	assert_int_equal(o.n_alt_dest, 1);
	assert_int_equal(o.alt_dest_type, BERTH_ALT_LINK);
	assert_string_equal(o.alt_dest[0], "../prev");
	assert_string_equal(o.partial_dir, ".p");
	assert_string_equal(o.suffix, ".bak");
	assert_int_equal(o.block_size, 8192);
	assert_int_equal(o.max_delete, 0);
	assert_int_equal(o.compress_level, 9);
	assert_true(o.have_seed);
	assert_int_equal(o.checksum_seed, -5);
	assert_int_equal(o.min_size, 1536);
	assert_int_equal(o.max_size, 2000000);
	assert_false(o.specials);
	assert_true(o.devices);

	struct berth_hs_config cfg = {0};

	berth_opts_hs_config(&o, &cfg);
	assert_true(cfg.compress);
	assert_string_equal(cfg.compress_choice, "zstd");
	assert_int_equal(cfg.seed, -5);
	assert_false(cfg.compress_level0);

	/* A level alone turns compression on; 0 turns zlib off later;
	 * "auto" is no choice; 3.1's spellings fix zlib/zlibx. */
	assert_int_equal(PARSE(&o, "-logDtpr", "--compress-level=0", ".", "d"),
			 0);
	memset(&cfg, 0, sizeof(cfg));
	berth_opts_hs_config(&o, &cfg);
	assert_true(cfg.compress);
	assert_true(cfg.compress_level0);
	assert_null(cfg.compress_choice);
	assert_int_equal(PARSE(&o, "-logDtpr", "--zc=auto", ".", "d"), 0);
	memset(&cfg, 0, sizeof(cfg));
	berth_opts_hs_config(&o, &cfg);
	assert_true(cfg.compress);
	assert_false(cfg.compress_level0);
	assert_null(cfg.compress_choice);
	assert_int_equal(PARSE(&o, "-logDtpr", "--new-compress", ".", "d"), 0);
	berth_opts_hs_config(&o, &cfg);
	assert_string_equal(cfg.compress_choice, "zlibx");
	assert_int_equal(PARSE(&o, "-logDtprz", "--old-compress", ".", "d"), 0);
	berth_opts_hs_config(&o, &cfg);
	assert_string_equal(cfg.compress_choice, "zlib");

	assert_int_equal(PARSE(&o, "-slogDtpre.iLsfxCIvu"), 0);
	assert_true(o.secluded);
	assert_null(o.dest);
	char *more[] = {"rsync", "--delete-after", "--timeout", "30",
			".",	 "/a b/"};
	assert_int_equal(berth_opts_parse_more(&o, 6, more), 0);
	assert_int_equal(o.delete_mode, BERTH_DELETE_AFTER);
	assert_int_equal(o.timeout, 30);
	assert_string_equal(o.dest, "/a b/");
}

/* When berth grants incremental recursion (§2.3 plus berth's own list). */
static void test_inc_recurse(void **state)
{
	struct berth_opts o;

	(void)state;
#define GRANTS(want, ...)                                                \
	do {                                                             \
		assert_int_equal(PARSE(&o, __VA_ARGS__, ".", "/d/"), 0); \
		assert_int_equal(berth_opts_inc_recurse(&o), want);      \
	} while (0)
	GRANTS(true, "-logDtpre.iLsfxCIvu");
	GRANTS(true, "-logDtpre.iLsfxCIvu", "--delete");
	GRANTS(true, "-nlogDtpre.iLsfxCIvu", "--delete");
	GRANTS(true, "-vlogDtprze.iLsfxCIvu", "--log-format=%i");
	GRANTS(true, "-logDtprce.iLsfxCIvu", "--delete-excluded", "--delete");
	GRANTS(false, "-logDtpe.iLsfxCIvu"); /* not recursive */
	/* stock rsync's refusals */
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--delete-before");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--delete-after");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--delay-updates");
	GRANTS(false, "-mlogDtpre.iLsfxCIvu");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--use-qsort");
	/* berth's: one complete list only */
	GRANTS(false, "-lHogDtpre.iLsfxCIvu");
	GRANTS(false, "-logDtpXre.iLsfxCIvu");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--delete-delay");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--partial-dir=.p");
	GRANTS(false, "-blogDtpre.iLsfxCIvu");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--backup-dir=b");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--link-dest=../p");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--inplace");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--append");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--remove-source-files");
	GRANTS(false, "-logDtpre.iLsfxCIvu", "--existing");
#undef GRANTS
}

static void test_errors(void **state)
{
	struct berth_opts o;

	(void)state;
	assert_int_equal(PARSE(&o, "-logDtpr", "--sender", ".", "d"),
			 -BERTH_EUNSUPPORTED);
	assert_null(o.bad); /* the reason is a sentence of its own */
	assert_non_null(strstr(o.why, "pull (--sender)"));
	assert_int_equal(PARSE(&o, "-logDtpARNr", ".", "d"), 0);
	assert_true(o.acls && o.relative && o.crtimes);
	/* --iconv is taken (and turns incremental recursion off). */
	assert_int_equal(
		PARSE(&o, "-logDtpre.iLsfxC", "--iconv=utf8", ".", "d"), 0);
	assert_string_equal(o.iconv, "utf8");
	assert_false(berth_opts_inc_recurse(&o));
	assert_int_equal(
		PARSE(&o, "-logDtpr", "--iconv=.", "--no-iconv", ".", "d"), 0);
	assert_null(o.iconv);
	/* A receiving server is told --files-from only for a list on its
	 * own host: parsed, the session refuses it. */
	assert_int_equal(PARSE(&o, "-logDtpR", "--files-from", "x", "--from0",
			       "--no-implied-dirs", ".", "d"),
			 0);
	assert_string_equal(o.files_from, "x");
	assert_true(o.from0 && o.relative && o.no_implied_dirs);
	assert_false(o.recursive);
	assert_int_equal(PARSE(&o, "-logDtpr", "--bogus", ".", "d"), -EINVAL);
	assert_string_equal(o.bad, "--bogus");
	assert_int_equal(PARSE(&o, "-logDtpQr", ".", "d"), -EINVAL);
	assert_int_equal(PARSE(&o, "-logDtpr", "--timeout=x", ".", "d"),
			 -EINVAL);
	assert_int_equal(PARSE(&o, "-logDtpr", "--partial-dir"), -EINVAL);
	assert_int_equal(PARSE(&o, "-logDtpr", ".", "d", "e"), -EINVAL);
	assert_int_equal(PARSE(&o, "-logDtpr", "."), -EINVAL);
	assert_int_equal(PARSE(&o, "-logDtpr", "--force=1", ".", "d"), -EINVAL);
	assert_int_equal(
		PARSE(&o, "-r", "--link-dest=a", "--copy-dest=b", ".", "d"),
		-EINVAL);
	char *v[] = {"rsync", "-r", ".", "d"};
	assert_int_equal(berth_opts_parse(&o, 4, v), -EINVAL);
	assert_null(o.bad);
	assert_non_null(strstr(o.why, "--server"));
}

/* The first error is kept and named; parsing goes on, so what the
 * handshake needs (the capabilities, choices) is known for the refusal. */
static void test_error_details(void **state)
{
	struct berth_opts o;

	(void)state;
	assert_int_equal(
		PARSE(&o, "-logDtpQkre.iLsfxCIvu", "--bogus", ".", "d"),
		-EINVAL);
	assert_string_equal(o.bad, "-logDtpQkre.iLsfxCIvu");
	assert_int_equal(o.bad_letter, 'Q');
	assert_string_equal(o.why, "unknown option");
	assert_string_equal(o.caps, ".iLsfxCIvu");
	assert_true(o.recursive);
	assert_string_equal(o.dest, "d");
	assert_int_equal(PARSE(&o, "-re.iLsfxCIvu", "--block-size=abc",
			       "--super", "--zc=zstd", ".", "d"),
			 -EINVAL);
	assert_string_equal(o.bad, "--block-size=abc");
	assert_string_equal(o.why, "invalid value");
	assert_string_equal(o.compress_choice, "zstd");
	assert_int_equal(PARSE(&o, "-r", "--munge-links", "--bogus", ".", "d"),
			 -BERTH_EUNSUPPORTED);
	assert_string_equal(o.bad, "--munge-links");
	assert_string_equal(o.why, "not supported by berth");
	assert_int_equal(PARSE(&o, "-r", ".", "d", "--partial-dir"), -EINVAL);
	assert_string_equal(o.bad, "--partial-dir");
	assert_int_equal(PARSE(&o, "-r", "--daemon", "."), -BERTH_EUNSUPPORTED);
	assert_true(o.daemon);
	assert_int_equal(PARSE(&o, "-r", "--delete=1", ".", "d"), -EINVAL);
	assert_string_equal(o.why, "takes no value");
	/* "--server" anywhere among the options, as rsync takes it. */
	char *v[] = {"berth", "--size-only", "--server", "-r", ".", "d"};
	assert_int_equal(berth_opts_parse(&o, 6, v), 0);
	assert_true(o.size_only && o.recursive);
	assert_int_equal(o.bad_err, 0);
}

/* --super / --fake-super: after the cluster (-M) or before --server
 * (--rsync-path="berth --fake-super"); the last one wins. */
static void test_super(void **state)
{
	struct berth_opts o;
	char *lead[] = {"berth",    "--fake-super",
			"--server", "-logDtpAre.iLsfxC",
			".",	    "d"};
	char *lead2[] = {
		"berth", "--usermap=1:2", "--super", "--server", "-r", ".",
		"d"};
	char *bad[] = {"berth", "x", "--server", "-r", ".", "d"};
	char *none[] = {"berth", "--fake-super", "-r", ".", "d"};

	(void)state;
	assert_int_equal(PARSE(&o, "-logDtpAr", "--fake-super", ".", "d"), 0);
	assert_true(o.fake_super && !o.super && o.acls);
	assert_int_equal(PARSE(&o, "-r", "--fake-super", "--super", ".", "d"),
			 0);
	assert_true(o.super && !o.fake_super);
	assert_int_equal(
		PARSE(&o, "-r", "--fake-super", "--no-super", ".", "d"), 0);
	assert_false(o.super || o.fake_super);
	assert_int_equal(berth_opts_parse(&o, 6, lead), 0);
	assert_true(o.fake_super && o.acls && o.owner);
	assert_string_equal(o.dest, "d");
	assert_int_equal(berth_opts_parse(&o, 7, lead2), 0);
	assert_true(o.super);
	assert_string_equal(o.usermap, "1:2");
	assert_int_equal(berth_opts_parse(&o, 6, bad), -EINVAL);
	assert_int_equal(berth_opts_parse(&o, 5, none), -EINVAL);
}

static void test_secluded(void **state)
{
	static const char s[] = "rsync\0--delete\0.\0/x/\0\0\x20";
	char buf[64], buf2[8];
	char *argv[8];
	struct berth_secluded sd;
	struct berth_proto_in in = {(const uint8_t *)s, sizeof(s) - 1, 0};

	(void)state;
	berth_secluded_init(&sd, buf, sizeof(buf), argv, 8);
	assert_int_equal(berth_secluded_decode(&sd, &in), 1);
	assert_int_equal(sd.argc, 4);
	assert_string_equal(argv[3], "/x/");
	assert_null(argv[4]);
	assert_int_equal(in.pos, sizeof(s) - 2); /* version byte left */
	in.pos = 0;
	berth_secluded_init(&sd, buf2, sizeof(buf2), argv, 8);
	assert_int_equal(berth_secluded_decode(&sd, &in), -BERTH_ELIMIT);
	in.pos = 0;
	berth_secluded_init(&sd, buf, sizeof(buf), argv, 3);
	assert_int_equal(berth_secluded_decode(&sd, &in), -BERTH_ELIMIT);
}

/* Every capture's argv parses, and DEST is the last line. */
static void test_captures(void **state)
{
	int ncase;
	char **cases = pt_cases(&ncase);

	(void)state;
	if (!cases)
		skip();
	for (int i = 0; i < ncase; i++) {
		struct berth_opts o;
		int argc;
		char **argv = pt_argv(cases[i], &argc);

		assert_int_equal(berth_opts_parse(&o, argc, argv), 0);
		if (!o.secluded)
			assert_string_equal(o.dest, argv[argc - 1]);
		pt_free_list(argv, argc);
	}
	pt_free_list(cases, ncase);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_inc_recurse),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_details),
		cmocka_unit_test(test_super),
		cmocka_unit_test(test_secluded),
		cmocka_unit_test(test_captures),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	if (r == 0 && !pt_have_captures())
		return 77;
	return r;
}
