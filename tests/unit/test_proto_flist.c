/* SPDX-License-Identifier: MIT */
/*
 * File-list decoding (§7) of every capture, compared field by field with
 * the annotated decoding in the capture's README.md (made by decode.py),
 * plus the filter list (§6) and hostile inputs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "protocol/protocol.h"
#include "proto_testutil.h"

/* The README's lines for the client stream, in order. */
struct expect {
	char **entries; /* "name='..' mode=..." parts */
	int nentries;
	char **sorted; /* "1=., 2=a.txt" parts */
	int nsorted;
};

static void load_expect(const char *cs, struct expect *e)
{
	size_t len;
	char *t = (char *)pt_load(cs, "README.md", &len), *save = NULL, *l;
	char *c2s = strstr(t, "== client -> server");
	char *stop = strstr(t, "== server -> client");

	memset(e, 0, sizeof(*e));
	assert_non_null(c2s);
	if (stop)
		*stop = '\0';
	for (l = strtok_r(c2s, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *p = strstr(l, " name=");

		if (strstr(l, " xflags=0x") && p) {
			e->entries = realloc(e->entries,
					     sizeof(char *) *
						     (size_t)(e->nentries + 1));
			e->entries[e->nentries++] = strdup(p + 1);
		} else if ((p = strstr(l, "sorted: "))) {
			e->sorted = realloc(e->sorted,
					    sizeof(char *) *
						    (size_t)(e->nsorted + 1));
			e->sorted[e->nsorted++] = strdup(p + 8);
		}
	}
	free(t);
}

static void free_expect(struct expect *e)
{
	pt_free_list(e->entries, e->nentries);
	pt_free_list(e->sorted, e->nsorted);
}

/* decode.py's description of an entry. */
static void describe(const struct pt_session *s,
		     const struct berth_flist_dec *d,
		     const struct berth_flist *fl, const struct berth_file *f,
		     char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "name='%s' mode=%o size=%lld mtime=%lld",
			 pt_path(f), f->mode, (long long)f->size,
			 (long long)f->mtime);

	if (f->nsec) /* decode.py's with MOD_NSEC: none is 0 in captures/ */
		n += snprintf(buf + n, cap - (size_t)n, ".%09u", f->nsec);
	if (s->o.owner)
		n += snprintf(buf + n, cap - (size_t)n, " uid=%u", f->uid);
	if (s->o.group)
		n += snprintf(buf + n, cap - (size_t)n, " gid=%u", f->gid);
	if (f->flags & BERTH_FILE_HAS_RDEV)
		n += snprintf(buf + n, cap - (size_t)n, " rdev=(%u, %u)",
			      f->ext->rdev_major, f->ext->rdev_minor);
	if (f->ext->link)
		n += snprintf(buf + n, cap - (size_t)n, " -> %s", f->ext->link);
	if ((f->flags & BERTH_FILE_HLINKED) &&
	    !(f->flags & BERTH_FILE_HLINK_FIRST) && s->o.hard_links) {
		int32_t raw = fl->hlink[f - fl->files];

		if (raw >= fl->ndx_start) /* back to transmission numbering */
			raw = fl->ndx_start +
			      (int32_t)fl->tx_of[raw - fl->ndx_start];
		n += snprintf(buf + n, cap - (size_t)n, " hlink->%d%s", raw,
			      f->flags & BERTH_FILE_ABBREV ? " (abbrev)" : "");
	}
	if (f->ext->sum) {
		n += snprintf(buf + n, cap - (size_t)n, " sum=");
		for (int i = 0; i < (int)berth_csum_digest_len(s->hs.file_csum);
		     i++)
			n += snprintf(buf + n, cap - (size_t)n, "%02x",
				      f->ext->sum[i]);
	}
	if (f->ext->xattr_set >= 0) {
		assert_non_null(berth_flist_dec_xattrs(d, f->ext->xattr_set));
		n += snprintf(buf + n, cap - (size_t)n, " xattr=('%s', %d)",
			      f->flags & BERTH_FILE_XATTR_LIT ? "literal"
							      : "ref",
			      f->ext->xattr_set);
	}
}

/* Decode one list from @in in chunks of @chunk bytes (0 = random). */
static struct berth_flist *decode_list(struct berth_flist_dec *d,
				       struct berth_proto_in *in, size_t chunk,
				       int32_t dir_k)
{
	uint32_t x = 7;
	int r;

	assert_int_equal(berth_flist_dec_begin(d, dir_k), 0);
	do {
		size_t c = chunk ? chunk
				 : 1 + (x = x * 1103515245u + 12345u) % 61;
		struct berth_proto_in part = {
			in->ptr,
			in->pos + c < in->size ? in->pos + c : in->size,
			in->pos};

		r = berth_flist_decode(d, &part);
		in->pos = part.pos;
		assert_true(r >= 0);
		if (r == 0)
			assert_int_equal(part.pos, part.size);
	} while (r == 0 && in->pos < in->size);
	assert_int_equal(r, BERTH_PROTO_DONE);
	return berth_flist_dec_take(d);
}

static void check_case(const char *cs, size_t chunk)
{
	struct pt_session s;
	struct expect e;
	struct berth_flist_config cfg;
	struct berth_flist_dec *d;
	struct berth_proto_in in;
	struct berth_ndx_state ndx;
	int ent = 0, lists = 0;
	char buf[8192];

	assert_int_equal(pt_session_open(&s, cs), 0);
	load_expect(cs, &e);
	in = (struct berth_proto_in){s.data, s.data_len, 0};
	if (berth_opts_want_filters(&s.o)) {
		struct berth_filter_dec fd;
		struct berth_filter_rule rule;
		int r, n = 0;

		assert_int_equal(berth_filter_dec_init(&fd, 4096, 1000), 0);
		while ((r = berth_filter_decode(&fd, &in, &rule)) ==
		       BERTH_FILTER_RULE) {
			static const char *want[] = {"*.tmp", "keep*",
						     "/top-only"};

			assert_true(n < 3);
			assert_int_equal(rule.pattern_len, strlen(want[n]));
			assert_memory_equal(rule.pattern, want[n],
					    rule.pattern_len);
			assert_int_equal(rule.type, BERTH_FILTER_EXCLUDE);
			assert_int_equal(rule.mods,
					 n == 1 ? BERTH_FM_RECEIVER : 0);
			n++;
		}
		assert_int_equal(r, BERTH_PROTO_DONE);
		assert_int_equal(n,
				 strcmp(cs, "case4c_delete_filters") ? 0 : 3);
		berth_filter_dec_destroy(&fd);
	}
	berth_flist_config_init(&cfg, &s.o, &s.hs);
	cfg.tx_order = true;
	assert_int_equal(berth_flist_dec_create(&d, &cfg), 0);
	berth_ndx_init(&ndx);
	for (int32_t dir_k = -1;;) {
		struct berth_flist *fl = decode_list(d, &in, chunk, dir_k);
		const struct berth_file **tx;
		int n = 0;

		assert_non_null(fl);
		assert_int_equal(fl->io_error, 0);
		/* entries in transmission order */
		tx = calloc(fl->count, sizeof(*tx));
		for (uint32_t i = 0; i < fl->count; i++)
			tx[fl->tx_of[i]] = &fl->files[i];
		for (uint32_t i = 0; i < fl->count; i++) {
			assert_true(ent < e.nentries);
			describe(&s, d, fl, tx[i], buf, sizeof(buf));
			if (strcmp(buf, e.entries[ent]) != 0)
				fail_msg("%s entry %d:\n got  %s\n want %s", cs,
					 ent, buf, e.entries[ent]);
			ent++;
			assert_int_equal(tx[i]->flags & BERTH_FILE_INACTIVE, 0);
		}
		free(tx);
		assert_true(lists < e.nsorted);
		for (uint32_t i = 0; i < fl->count; i++)
			n += snprintf(buf + n, sizeof(buf) - (size_t)n,
				      "%s%d=%s", i ? ", " : "",
				      fl->ndx_start + (int32_t)i,
				      pt_path(&fl->files[i]));
		if (strcmp(buf, e.sorted[lists]) != 0)
			fail_msg("%s list %d sorted:\n got  %s\n want %s", cs,
				 lists, buf, e.sorted[lists]);
		lists++;
		berth_flist_free(fl);
		if (!(s.hs.compat & BERTH_CF_INC_RECURSE))
			break;
		/* Sub-lists that follow directly (inc-recursion). */
		int32_t v;

		assert_int_equal(berth_proto_get_ndx(&in, &ndx, &v), 1);
		if (v > BERTH_NDX_FLIST_OFFSET)
			break;
		dir_k = BERTH_NDX_FLIST_OFFSET - v;
	}
	if (!(s.hs.compat & BERTH_CF_INC_RECURSE)) {
		assert_int_equal(lists, e.nsorted);
		assert_int_equal(ent, e.nentries);
	}
	if (getenv("PT_VERBOSE"))
		fprintf(stderr, "%s: %d entries in %d lists (of %d/%d)\n", cs,
			ent, lists, e.nentries, e.nsorted);
	if (!strcmp(cs, "case1_initial_a_noinc")) {
		assert_string_equal(berth_flist_dec_user_name(d, 1), "daemon");
		assert_string_equal(berth_flist_dec_user_name(d, 0), "root");
		assert_string_equal(berth_flist_dec_group_name(d, 1), "daemon");
		assert_null(berth_flist_dec_group_name(d, 5));
	}
	if (!strcmp(cs, "case1_initial_a")) {
		assert_string_equal(berth_flist_dec_user_name(d, 0), "root");
		assert_string_equal(berth_flist_dec_group_name(d, 1), "daemon");
	}
	if (!strcmp(cs, "case10_xattrs")) {
		const struct berth_xattr_set *x = berth_flist_dec_xattrs(d, 1);

		assert_int_equal(x->count, 2);
		assert_string_equal(x->items[0].name, "user.long");
		assert_int_equal(x->items[0].datum_len, 40);
		assert_string_equal(x->items[1].name, "user.short");
		assert_memory_equal(x->items[1].value, "value-1", 7);
	}
	berth_flist_dec_free(d);
	free_expect(&e);
	pt_session_close(&s);
}

static void test_captures(void **state)
{
	int ncase;
	char **cases = pt_cases(&ncase);

	(void)state;
	if (!cases)
		skip();
	for (int i = 0; i < ncase; i++) {
		check_case(cases[i], 0);
		check_case(cases[i], 1);
		check_case(cases[i], 100000);
	}
	pt_free_list(cases, ncase);
}

static void test_order(void **state)
{
	/* §7.7: files before dirs, dirs compare with a trailing '/'. */
	static const struct {
		const char *n;
		bool dir;
	} want[] = {
		{".", 1},     {"b-", 0},  {"b0", 0},	{"b_file", 0},
		{"zz", 0},    {"B", 1},	  {"B/f", 0},	{"a", 1},
		{"a/f", 0},   {"b-c", 1}, {"b-c/f", 0}, {"b.d", 1},
		{"b.d/f", 0}, {"b", 1},	  {"b/f", 0},	{"b/x", 1},
		{"b/x/y", 0}, {"c", 1},	  {"c/f", 0},
	};
	size_t n = sizeof(want) / sizeof(want[0]);

	(void)state;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int c = berth_flist_cmp(want[i].n, want[i].dir,
						want[j].n, want[j].dir);

			if ((i < j && c >= 0) || (i > j && c <= 0) ||
			    (i == j && c))
				fail_msg("%s vs %s: %d", want[i].n, want[j].n,
					 c);
		}
}

static void test_names(void **state)
{
	static const char *bad[] = {"",	   "/a",   "a//b",  "a/",
				    "..",  "a/..", "../a",  "a/../b",
				    "./a", "a/.",  "a/./b", "/"};
	static const char *good[] = {".",     "a",     "a/b", "...",
				     "a/..b", ".a/b.", "a b"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
			berth_flist_check_name(bad[i], strlen(bad[i]), 100),
			-BERTH_EPATH);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(
			berth_flist_check_name(good[i], strlen(good[i]), 100),
			0);
	assert_int_equal(berth_flist_check_name("abc", 3, 2), -BERTH_EPATH);
	assert_int_equal(berth_flist_check_name("a\0b", 3, 100), -BERTH_EPATH);
}

/* Feed hand-made lists (varint flags, proto 32, -logDtpr semantics). */
static int feed(const char *bytes, size_t len, struct berth_flist_config *cfg,
		struct berth_flist **out)
{
	struct berth_flist_dec *d;
	struct berth_proto_in in = {(const uint8_t *)bytes, len, 0};
	int r;

	assert_int_equal(berth_flist_dec_create(&d, cfg), 0);
	assert_int_equal(berth_flist_dec_begin(d, -1), 0);
	r = berth_flist_decode(d, &in);
	if (out)
		*out = r == 1 ? berth_flist_dec_take(d) : NULL;
	berth_flist_dec_free(d);
	return r;
}

static void test_hostile(void **state)
{
	struct berth_flist_config cfg = {
		.protocol = 32,
		.compat = 0x1fe,
		.links = true,
		.owner = false,
	};
	struct berth_flist *fl;

	(void)state;
	/* ok: "." dir, file "a" 1 byte, end */
	assert_int_equal(
		feed("\x01\x01.\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00"
		     "\x04\x01"
		     "a\x00\x01\x00\x65\x03\xf1\x53\xa4\x81\x00\x00\x00\x00",
		     32, &cfg, &fl),
		1);
	assert_int_equal(fl->count, 2);
	assert_string_equal(pt_path(&fl->files[1]), "a");
	berth_flist_free(fl);
	/* ".." */
	assert_int_equal(
		feed("\x04\x02..\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00\x00\x00",
		     18, &cfg, NULL),
		-BERTH_EPATH);
	/* absolute */
	assert_int_equal(
		feed("\x04\x02/a\x00\x00\x10\x65\x03\xf1\x53\xa4\x81\x00\x00\x00\x00",
		     18, &cfg, NULL),
		-BERTH_EPATH);
	/* "." not a directory */
	assert_int_equal(
		feed("\x04\x01.\x00\x00\x10\x65\x03\xf1\x53\xa4\x81\x00\x00\x00\x00",
		     17, &cfg, NULL),
		-BERTH_EPROTO);
	/* bad mode type 0o170000 */
	assert_int_equal(
		feed("\x04\x01x\x00\x00\x10\x65\x03\xf1\x53\xa4\xf1\x00\x00\x00\x00",
		     17, &cfg, NULL),
		-BERTH_EPROTO);
	/* prefix longer than the previous name */
	assert_int_equal(feed("\x24\x05\x01x", 4, &cfg, NULL), -BERTH_EPROTO);
	/* negative size */
	assert_int_equal(feed("\x04\x01x\xfc\xff\xff\xff\xff\xff\xff\xff\xff",
			      12, &cfg, NULL),
			 -BERTH_EPROTO);
	/* file in a directory not in the list */
	assert_int_equal(
		feed("\x04\x03"
		     "d/x\x00\x00\x10\x65\x03\xf1\x53\xa4\x81\x00\x00\x00\x00",
		     19, &cfg, NULL),
		-BERTH_EPROTO);
	/* over-long name (limit 8) */
	cfg.max_name = 8;
	assert_int_equal(feed("\x44\x89\x00"
			      "aaaaaaaaaa",
			      13, &cfg, NULL),
			 -BERTH_EPATH);
	cfg.max_name = 0;
	/* symlink with an empty target / too long target */
	assert_int_equal(
		feed("\x04\x01l\x00\x00\x00\x65\x03\xf1\x53\xff\xa1\x00\x00\x00",
		     16, &cfg, NULL),
		-BERTH_EPROTO);
	cfg.max_link = 3;
	assert_int_equal(
		feed("\x04\x01l\x00\x00\x00\x65\x03\xf1\x53\xff\xa1\x00\x00\x04",
		     16, &cfg, NULL),
		-BERTH_ELIMIT);
	cfg.max_link = 0;
	/* nsec out of range */
	assert_int_equal(
		feed("\xa0\x04\x01x\x00\x00\x00\x65\x03\xf1\x53\xf0\x00\xca\x9a\x3b",
		     16, &cfg, NULL),
		-BERTH_EPROTO);
	/* too many files */
	cfg.max_files = 1;
	assert_int_equal(
		feed("\x04\x01.\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00"
		     "\x04\x01"
		     "a\x00\x01\x00\x65\x03\xf1\x53\xa4\x81\x00\x00\x00\x00",
		     32, &cfg, NULL),
		-BERTH_ELIMIT);
	cfg.max_files = 0;
	/* names of one list above max_list_bytes */
	cfg.max_list_bytes = 3;
	assert_int_equal(
		feed("\x04\x01.\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00"
		     "\x04\x01"
		     "a\x00\x01\x00\x65\x03\xf1\x53\xa4\x81\x00\x00\x00\x00",
		     32, &cfg, NULL),
		-BERTH_ELIMIT);
	cfg.max_list_bytes = 0;
	/* hard-link reference to an entry not received yet */
	cfg.hard_links = true;
	assert_int_equal(feed("\x82\x04\x01x\x05", 5, &cfg, NULL),
			 -BERTH_EPROTO);
	/* xattr set reference that does not exist */
	cfg.hard_links = false;
	cfg.xattrs = 1;
	assert_int_equal(
		feed("\x04\x01x\x00\x00\x00\x65\x03\xf1\x53\xa4\x81\x00\x00\x03",
		     16, &cfg, NULL),
		-BERTH_EPROTO);
	/* byte flags: io-error end marker needs safe flist at proto 30 */
	cfg.xattrs = 0;
	cfg.protocol = 30;
	cfg.compat = 0;
	assert_int_equal(feed("\x04\x10\x01", 3, &cfg, NULL), -BERTH_EPROTO);
	cfg.compat = BERTH_CF_SAFE_FLIST;
	assert_int_equal(feed("\x04\x10\x01", 3, &cfg, &fl), 1);
	assert_int_equal(fl->io_error, 1);
	berth_flist_free(fl);
	/* duplicates: the directory wins over a file of the same name */
	cfg.protocol = 32;
	cfg.compat = 0x1fe;
	assert_int_equal(
		feed("\x04\x01x\x00\x00\x00\x65\x03\xf1\x53\xa4\x81\x00\x00"
		     "\x04\x01x\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00"
		     "\x04\x01x\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00\x00\x00",
		     44, &cfg, &fl),
		1);
	assert_int_equal(fl->count, 3);
	assert_true(fl->files[0].flags & BERTH_FILE_INACTIVE); /* the file */
	assert_false(fl->files[1].flags & BERTH_FILE_INACTIVE);
	assert_true(fl->files[2].flags & BERTH_FILE_INACTIVE);
	berth_flist_free(fl);
}

/* Inc-recursion: sub-lists must name a known directory and stay in it. */
static void test_sublists(void **state)
{
	/* initial list: "." and dir "d"; then a sub-list for dir #1 ("d") */
	static const char init[] =
		"\x04\x01.\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00"
		"\x04\x01"
		"d\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00\x00\x00";
	static const char sub_ok[] =
		"\x24\x01\x02/x\x00\x00\x01\x65\x03\xf1\x53\xa4\x81\x00\x00\x00\x00";
	static const char sub_bad[] =
		"\x04\x01x\x00\x00\x01\x65\x03\xf1\x53\xa4\x81\x00\x00\x00\x00";
	struct berth_flist_config cfg = {.protocol = 32, .compat = 0x1ff};
	struct berth_flist_dec *d;
	struct berth_proto_in in = {(const uint8_t *)init, sizeof(init) - 1, 0};
	struct berth_flist *fl;

	(void)state;
	assert_int_equal(berth_flist_dec_create(&d, &cfg), 0);
	assert_int_equal(berth_flist_dec_begin(d, 0),
			 -BERTH_EPROTO); /* no list yet */
	fl = decode_list(d, &in, 0, -1);
	assert_int_equal(fl->ndx_start, 1);
	assert_int_equal(fl->count, 2);
	berth_flist_free(fl);
	assert_int_equal(berth_flist_dec_ndirs(d), 2);
	assert_int_equal(berth_flist_dec_begin(d, -1),
			 -BERTH_EPROTO); /* 2nd initial */
	assert_int_equal(berth_flist_dec_begin(d, 2),
			 -BERTH_EPROTO); /* no dir #2 */
	assert_int_equal(berth_flist_dec_begin(d, 1), 0);
	in = (struct berth_proto_in){(const uint8_t *)sub_ok,
				     sizeof(sub_ok) - 1, 0};
	assert_int_equal(berth_flist_decode(d, &in), 1);
	fl = berth_flist_dec_take(d);
	assert_int_equal(fl->ndx_start, 4); /* 1 + 2 + 1 */
	assert_string_equal(pt_path(&fl->files[0]), "d/x");
	berth_flist_free(fl);
	/* one list per directory; "." came with the initial list */
	assert_int_equal(berth_flist_dec_begin(d, 1), -BERTH_EPROTO);
	assert_int_equal(berth_flist_dec_begin(d, 0), -BERTH_EPROTO);
	assert_int_equal(berth_flist_dec_begin(d, 2),
			 -BERTH_EPROTO); /* no dir #2 */
	berth_flist_dec_free(d);

	/* a sub-list entry outside its directory */
	assert_int_equal(berth_flist_dec_create(&d, &cfg), 0);
	in = (struct berth_proto_in){(const uint8_t *)init, sizeof(init) - 1,
				     0};
	berth_flist_free(decode_list(d, &in, 0, -1));
	assert_int_equal(berth_flist_dec_begin(d, 1), 0);
	in = (struct berth_proto_in){(const uint8_t *)sub_bad,
				     sizeof(sub_bad) - 1, 0};
	assert_int_equal(berth_flist_decode(d, &in), -BERTH_EPROTO);
	berth_flist_dec_free(d);
}

/* A directory without content (NO_CONTENT_DIR) gets no list of its own. */
static void test_sublist_no_content(void **state)
{
	/* "." and dir "n" with xflags 0x104 (EXTENDED_FLAGS|NO_CONTENT_DIR,
	 * varint) */
	static const char init[] =
		"\x04\x01.\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00"
		"\x81\x04\x01"
		"n\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00\x00\x00";
	struct berth_flist_config cfg = {.protocol = 32, .compat = 0x1ff};
	struct berth_flist_dec *d;
	struct berth_proto_in in = {(const uint8_t *)init, sizeof(init) - 1, 0};

	(void)state;
	assert_int_equal(berth_flist_dec_create(&d, &cfg), 0);
	berth_flist_free(decode_list(d, &in, 0, -1));
	assert_int_equal(berth_flist_dec_ndirs(d), 2);
	assert_int_equal(berth_flist_dec_begin(d, 1), -BERTH_EPROTO);
	berth_flist_dec_free(d);
}

/* uid names: the latest name of a repeated id wins; max_ids holds. */
static void test_id_lists(void **state)
{
	static const char l[] =
		"\x04\x01.\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00\x00"
		"\x00\x00"
		"\x01\x01"
		"a\x02\x01"
		"c\x01\x01"
		"b\x00";
	struct berth_flist_config cfg = {
		.protocol = 32, .compat = 0x88, .owner = true};
	struct berth_flist_dec *d;
	struct berth_proto_in in = {(const uint8_t *)l, sizeof(l) - 1, 0};

	(void)state;
	assert_int_equal(berth_flist_dec_create(&d, &cfg), 0);
	berth_flist_free(decode_list(d, &in, 0, -1));
	assert_int_equal(in.pos, in.size);
	assert_string_equal(berth_flist_dec_user_name(d, 1), "b");
	assert_string_equal(berth_flist_dec_user_name(d, 2), "c");
	assert_null(berth_flist_dec_user_name(d, 0));
	assert_null(berth_flist_dec_group_name(d, 1));
	berth_flist_dec_free(d);
	cfg.max_ids = 2;
	assert_int_equal(feed(l, sizeof(l) - 1, &cfg, NULL), -BERTH_ELIMIT);
}

/* A little-endian int32 into a byte string being built. */
static size_t put32(uint8_t *p, size_t at, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
	return at + 4;
}

/*
 * Protocols 27..29 (no capture: built by hand from rsync's encoding):
 * fixed-width fields, (dev, inode) hard links, rdev, id lists and the
 * io_error after them; sorted by whole names below 29.
 */
static void test_old_protocols(void **state)
{
	for (int proto = 27; proto <= 29; proto++) {
		uint8_t b[512];
		size_t n = 0;
		struct berth_flist_config cfg = {.protocol = proto,
						 .owner = true,
						 .devices = true,
						 .hard_links = true};
		struct berth_flist_dec *d;
		struct berth_flist *fl;
		struct berth_proto_in in;
		uint8_t ext = proto >= 28 ? 0x04 : 0; /* EXTENDED_FLAGS */

		(void)state;
		/* "." dir: flags TOP_DIR, l2=1, size, mtime, mode, uid 0. */
		b[n++] = 0x01;
		b[n++] = 1;
		b[n++] = '.';
		n = put32(b, n, 0);
		n = put32(b, n, 1700000000);
		n = put32(b, n, 040755);
		n = put32(b, n, 0);
		/* "a-b" and "a/x": two names of one inode (28+: HLINKED),
		 * the same uid (SAME_UID) and time. */
		for (int k = 0; k < 2; k++) {
			const char *nm = k ? "a" : "a-b";

			if (proto >= 28) {
				b[n++] = 0x80 | 0x08 | ext; /* SAME_TIME|UID */
				b[n++] = 0x02; /* HLINKED >> 8 */
			} else {
				b[n++] = 0x80 | 0x08;
			}
			b[n++] = (uint8_t)strlen(nm);
			memcpy(b + n, nm, strlen(nm));
			n += strlen(nm);
			n = put32(b, n, 5); /* size */
			n = put32(b, n, 0100644);
			n = put32(b, n, 7); /* dev (longint) */
			n = put32(b, n, 42); /* inode */
		}
		/* "a.dev": a char device 4:5, SAME_TIME|SAME_UID. */
		b[n++] = 0x80 | 0x08 | ext;
		if (ext)
			b[n++] = 0;
		b[n++] = 5;
		memcpy(b + n, "a.dev", 5);
		n += 5;
		n = put32(b, n, 0);
		n = put32(b, n, 020600);
		if (proto < 28) {
			n = put32(b, n, (4u << 8) | 5u);
		} else {
			n = put32(b, n, 4); /* major */
			n = put32(b, n, 5); /* minor (not 8-bit form) */
		}
		b[n++] = 0; /* end */
		/* uid list: 0 (none) -- then io_error */
		n = put32(b, n, 0);
		n = put32(b, n, 3);
		in = (struct berth_proto_in){b, n, 0};
		assert_int_equal(berth_flist_dec_create(&d, &cfg), 0);
		fl = decode_list(d, &in, 0, -1);
		assert_int_equal(in.pos, in.size);
		assert_int_equal(fl->count, 4);
		assert_int_equal(fl->io_error, 3);
		assert_string_equal(pt_path(&fl->files[0]), ".");
		/* Below 29 by whole name: "a" < "a-b" < "a.dev"; from 29
		 * non-directories in the same order too (strcmp). */
		assert_string_equal(pt_path(&fl->files[1]), "a");
		assert_string_equal(pt_path(&fl->files[2]), "a-b");
		assert_string_equal(pt_path(&fl->files[3]), "a.dev");
		assert_int_equal(fl->files[1].mtime, 1700000000);
		assert_int_equal(fl->files[3].ext->rdev_major, 4);
		assert_int_equal(fl->files[3].ext->rdev_minor, 5);
		assert_true(fl->files[3].flags & BERTH_FILE_HAS_RDEV);
		/* One group: both point at the same first member. */
		assert_true(fl->files[1].flags & BERTH_FILE_HLINKED);
		assert_true(fl->files[2].flags & BERTH_FILE_HLINKED);
		assert_int_equal(fl->hlink[1], fl->hlink[2]);
		assert_false(fl->files[3].flags & BERTH_FILE_HLINKED);
		assert_int_equal(fl->hlink[3], -1);
		berth_flist_free(fl);
		berth_flist_dec_free(d);
		/* Truncated anywhere: MORE, never an error or a crash. */
		for (size_t cut = 0; cut < n; cut++)
			assert_int_equal(feed((const char *)b, cut, &cfg, NULL),
					 BERTH_PROTO_MORE);
		if (proto < 28)
			continue;
		/* A directory in a hard-link group (no client sends one):
		 * it would become a link to a file of the group. */
		n = 0;
		b[n++] = 0x80 | 0x08 | ext; /* SAME_TIME|SAME_UID */
		b[n++] = 0x02; /* HLINKED >> 8 */
		b[n++] = 1;
		b[n++] = 'd';
		n = put32(b, n, 4096);
		n = put32(b, n, 040755);
		n = put32(b, n, 7); /* dev */
		n = put32(b, n, 43); /* inode */
		b[n++] = 0;
		n = put32(b, n, 0);
		n = put32(b, n, 0);
		assert_int_equal(feed((const char *)b, n, &cfg, NULL),
				 -BERTH_EPROTO);
	}
}

/* ACLs (§7.8, no capture): a literal access + default ACL, then a ref. */
static void test_acls(void **state)
{
	static const char good[] =
		"\x04\x01.\x00\x00\x10\x65\x03\xf1\x53\xed\x41\x00\x00"
		"\x00\x1b\x07\x05\x05\x01\x83\xe8\x1b\x05"
		"alice"
		"\x00\x00"
		"\x04\x01"
		"f\x00\x00\x00\x65\x03\xf1\x53\xa4\x81\x00\x00\x01"
		"\x00\x00\x00\x00";
	struct berth_flist_config cfg = {
		.protocol = 32, .compat = 0x88, .acls = true};
	struct berth_flist_dec *d;
	struct berth_proto_in in = {(const uint8_t *)good, sizeof(good) - 1, 0};
	struct berth_flist *fl;
	const struct berth_acl *a;
	char bad[sizeof(good)];

	(void)state;
	assert_int_equal(berth_flist_dec_create(&d, &cfg), 0);
	fl = decode_list(d, &in, 0, -1);
	assert_int_equal(in.pos, in.size);
	assert_int_equal(fl->count, 2);
	assert_int_equal(fl->files[0].ext->acl[0], 0);
	assert_int_equal(fl->files[0].ext->acl[1], 0);
	assert_int_equal(fl->files[1].ext->acl[0], 0);
	assert_int_equal(fl->files[1].ext->acl[1], -1);
	a = berth_flist_dec_acl(d, false, 0);
	assert_int_equal(a->flags, 0x1b);
	assert_int_equal(a->user_obj, 7);
	assert_int_equal(a->group_obj, 5);
	assert_int_equal(a->other_obj, 5);
	assert_int_equal(a->count, 1);
	assert_int_equal(a->idas[0].id, 1000);
	assert_int_equal(a->idas[0].perms, 6);
	assert_true(a->idas[0].is_user);
	assert_string_equal(berth_flist_dec_user_name(d, 1000), "alice");
	assert_int_equal(berth_flist_dec_acl(d, true, 0)->flags, 0);
	assert_null(berth_flist_dec_acl(d, true, 1));
	berth_flist_free(fl);
	berth_flist_dec_free(d);

	/* a permission above rwx; a reference to a missing ACL; bad flags */
	memcpy(bad, good, sizeof(good));
	bad[16] = 8;
	assert_int_equal(feed(bad, sizeof(good) - 1, &cfg, NULL),
			 -BERTH_EPROTO);
	memcpy(bad, good, sizeof(good));
	bad[sizeof(good) - 6] = 3;
	assert_int_equal(feed(bad, sizeof(good) - 1, &cfg, NULL),
			 -BERTH_EPROTO);
	memcpy(bad, good, sizeof(good));
	bad[15] = 0x3b;
	assert_int_equal(feed(bad, sizeof(good) - 1, &cfg, NULL),
			 -BERTH_EPROTO);
	cfg.max_acl_entries = 0;
	cfg.max_acls = 1;
	memcpy(bad, good, sizeof(good));
	bad[sizeof(good) - 6] = 0; /* a second literal access ACL */
	assert_int_equal(feed(bad, sizeof(good) - 1, &cfg, NULL),
			 -BERTH_ELIMIT);
}

static void test_filter(void **state)
{
	struct berth_filter_rule r;
	struct berth_filter_dec d;
	struct berth_proto_in in;
	static const uint8_t big[] = {0x10, 0, 0, 0, '-', ' '};
	static const uint8_t neg[] = {0xff, 0xff, 0xff, 0xff};

	(void)state;
	assert_int_equal(berth_filter_parse("-/! /x/", 7, &r), 0);
	assert_int_equal(r.mods, BERTH_FM_ABS | BERTH_FM_NEGATE);
	assert_true(r.dir_only);
	assert_int_equal(r.pattern_len, 2);
	assert_int_equal(berth_filter_parse("!", 1, &r), 0);
	assert_int_equal(r.type, BERTH_FILTER_CLEAR);
	assert_int_equal(berth_filter_parse("-C", 2, &r), 0);
	assert_int_equal(berth_filter_parse(":n- .rules", 10, &r), 0);
	assert_int_equal(r.type, BERTH_FILTER_DIRMERGE);
	assert_int_equal(berth_filter_parse("x foo", 5, &r), -BERTH_EPROTO);
	assert_int_equal(berth_filter_parse("-q foo", 6, &r), -BERTH_EPROTO);
	assert_int_equal(berth_filter_parse("- ", 2, &r), -BERTH_EPROTO);
	assert_int_equal(berth_filter_parse("!x", 2, &r), -BERTH_EPROTO);
	berth_filter_dec_init(&d, 8, 2);
	in = (struct berth_proto_in){big, sizeof(big), 0};
	assert_int_equal(berth_filter_decode(&d, &in, &r), -BERTH_ELIMIT);
	berth_filter_dec_destroy(&d);
	berth_filter_dec_init(&d, 8, 2);
	in = (struct berth_proto_in){neg, sizeof(neg), 0};
	assert_int_equal(berth_filter_decode(&d, &in, &r), -BERTH_EPROTO);
	berth_filter_dec_destroy(&d);
	/* rule count limit, byte-at-a-time */
	{
		static const uint8_t three[] = {3, 0, 0, 0, '-', ' ', 'a',
						3, 0, 0, 0, '+', ' ', 'b',
						3, 0, 0, 0, '-', ' ', 'c'};
		int rc = 0, rules = 0;

		berth_filter_dec_init(&d, 8, 2);
		for (size_t i = 0; i < sizeof(three) && rc >= 0; i++) {
			in = (struct berth_proto_in){three, i + 1, i};
			rc = berth_filter_decode(&d, &in, &r);
			if (rc == BERTH_FILTER_RULE)
				rules++;
		}
		assert_int_equal(rules, 2);
		assert_int_equal(rc, -BERTH_ELIMIT);
		berth_filter_dec_destroy(&d);
	}
	/* Protocols < 29: "+ "/"- " prefixes only, else an exclude. */
	{
		static const uint8_t old[] = {
			5, 0,	0, 0,	'*', '.', 't', 'm', 'p', 4,
			0, 0,	0, '+', ' ', 'k', '/', 1,   0,	 0,
			0, '!', 3, 0,	0,   0,	  '-', 'C', 'x'};
		struct berth_filter_rule got[4];
		int n = 0, rc;

		berth_filter_dec_init(&d, 64, 10);
		d.old_prefixes = true;
		in = (struct berth_proto_in){old, sizeof(old), 0};
		while ((rc = berth_filter_decode(&d, &in, &got[n])) ==
		       BERTH_FILTER_RULE)
			n++;
		assert_int_equal(rc, BERTH_PROTO_MORE);
		assert_int_equal(n, 4);
		assert_int_equal(got[0].type, BERTH_FILTER_EXCLUDE);
		assert_int_equal(got[0].pattern_len, 5); /* "*.tmp" */
		assert_int_equal(got[1].type, BERTH_FILTER_INCLUDE);
		assert_true(got[1].dir_only);
		assert_int_equal(got[2].type, BERTH_FILTER_CLEAR);
		/* "-Cx" is no prefix there: the pattern "-Cx". */
		assert_int_equal(got[3].type, BERTH_FILTER_EXCLUDE);
		assert_int_equal(got[3].mods, 0);
		assert_int_equal(got[3].pattern_len, 3);
		berth_filter_dec_destroy(&d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_captures),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_sublists),
		cmocka_unit_test(test_sublist_no_content),
		cmocka_unit_test(test_id_lists),
		cmocka_unit_test(test_acls),
		cmocka_unit_test(test_old_protocols),
		cmocka_unit_test(test_filter),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	if (r == 0 && !pt_have_captures())
		return 77;
	return r;
}
