/* SPDX-License-Identifier: MIT */
/*
 * The file-list decoder's conversion hook (berth_flist_config.conv, what
 * --iconv uses): names and link targets converted where they are complete,
 * the shared prefix still taken from the names as sent, the checks and the
 * order on the converted names, entries that do not convert kept inactive
 * at their place, errors of the hook ending the list.
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

/* ------------------------------------------------- a list on the wire */

struct wire {
	uint8_t buf[4096];
	struct berth_proto_out out;
	char prev[256];
};

static void wire_init(struct wire *w)
{
	memset(w, 0, sizeof(*w));
	w->out = (struct berth_proto_out){w->buf, sizeof(w->buf), 0};
}

/* One entry (protocol 32, varint flags): the name relative to the one
 * before, size, mtime, mode, the target of a symlink. */
static void put_entry(struct wire *w, const char *name, uint32_t mode,
		      const char *link)
{
	size_t len = strlen(name), l1 = 0;
	int32_t flags = BERTH_XMIT_SAME_UID; /* never 0 (the end) */

	while (l1 < len && l1 < 255 && name[l1] == w->prev[l1])
		l1++;
	if (l1)
		flags |= BERTH_XMIT_SAME_NAME;
	assert_int_equal(berth_proto_put_varint(&w->out, flags), 0);
	if (l1)
		assert_int_equal(berth_proto_put_u8(&w->out, (uint8_t)l1), 0);
	assert_int_equal(berth_proto_put_u8(&w->out, (uint8_t)(len - l1)), 0);
	assert_int_equal(berth_proto_put_bytes(&w->out, name + l1, len - l1),
			 0);
	assert_int_equal(berth_proto_put_varlong(&w->out, 1, 3), 0);
	assert_int_equal(berth_proto_put_varlong(&w->out, 1700000000, 4), 0);
	assert_int_equal(berth_proto_put_int32(&w->out, (int32_t)mode), 0);
	if (link) {
		assert_int_equal(
			berth_proto_put_varint(&w->out, (int32_t)strlen(link)),
			0);
		assert_int_equal(
			berth_proto_put_bytes(&w->out, link, strlen(link)), 0);
	}
	snprintf(w->prev, sizeof(w->prev), "%s", name);
}

static void put_end(struct wire *w)
{
	assert_int_equal(berth_proto_put_varint(&w->out, 0), 0);
	assert_int_equal(berth_proto_put_varint(&w->out, 0), 0); /* io_error */
}

/* --------------------------------------------------------- the hook */

struct conv_log {
	char out[2][512];
	int calls[2];
	char link_names[8][64]; /* @name of each link call */
	int nlink_names;
	int failed;
};

/*
 * UTF-8 to Latin-1, as the session's converter would: ASCII as it is, a
 * two-byte sequence of U+0080..U+00FF as its byte, anything else cannot
 * be converted.  "nomem" fails as an allocation would; "evil" becomes a
 * name the checks must refuse; "big" grows threefold.
 */
static int to_latin1(void *arg, int what, const char *name, const char *in,
		     size_t len, const char **out, size_t *out_len)
{
	struct conv_log *lg = arg;
	char *o = lg->out[what];
	size_t n = 0;

	assert_true(what == BERTH_FLIST_CONV_NAME ||
		    what == BERTH_FLIST_CONV_LINK);
	lg->calls[what]++;
	if (what == BERTH_FLIST_CONV_LINK) {
		assert_non_null(name);
		if (lg->nlink_names < 8)
			snprintf(lg->link_names[lg->nlink_names++], 64, "%s",
				 name);
	} else {
		assert_null(name);
	}
	if (len == 5 && !memcmp(in, "nomem", 5))
		return -ENOMEM;
	if (len == 4 && !memcmp(in, "evil", 4))
		in = "a/../b", len = 6;
	if (len == 3 && !memcmp(in, "big", 3))
		in = "bigbigbig", len = 9;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)in[i];

		if (c < 0x80) {
			o[n++] = (char)c;
		} else if ((c == 0xc2 || c == 0xc3) && i + 1 < len &&
			   ((uint8_t)in[i + 1] & 0xc0) == 0x80) {
			o[n++] = (char)(((c & 0x03) << 6) |
					((uint8_t)in[++i] & 0x3f));
		} else {
			lg->failed++;
			return 1;
		}
	}
	o[n] = '\0';
	*out = o;
	*out_len = n;
	return 0;
}

static int decode(struct wire *w, struct berth_flist_config *cfg,
		  struct berth_flist **out)
{
	struct berth_flist_dec *d;
	struct berth_proto_in in = {w->buf, w->out.pos, 0};
	int r;

	cfg->tx_order = true; /* sent() */
	assert_int_equal(berth_flist_dec_create(&d, cfg), 0);
	assert_int_equal(berth_flist_dec_begin(d, -1), 0);
	r = berth_flist_decode(d, &in);
	*out = r == BERTH_PROTO_DONE ? berth_flist_dec_take(d) : NULL;
	berth_flist_dec_free(d);
	return r;
}

/* The entries in the order they were sent. */
static const struct berth_file *sent(const struct berth_flist *fl, uint32_t k)
{
	for (uint32_t i = 0; i < fl->count; i++)
		if (fl->tx_of[i] == k)
			return &fl->files[i];
	fail_msg("no entry sent as #%u", k);
	return NULL;
}

static void build_list(struct wire *w)
{
	wire_init(w);
	put_entry(w, ".", S_IFDIR | 0755, NULL);
	put_entry(w, "caf\xc3\xa9", S_IFREG | 0644, NULL);
	/* Shares the 5 bytes "caf\xc3\xa9" with the name as sent; the
	 * converted one has 4. */
	put_entry(w, "caf\xc3\xa9s", S_IFREG | 0644, NULL);
	put_entry(w, "x\xe6\xbc\xa2", S_IFREG | 0644, NULL); /* CJK */
	put_entry(w, "y", S_IFLNK | 0777, "t\xc3\xbc");
	put_entry(w, "z", S_IFLNK | 0777, "\xf0\x9f\x98\x80"); /* emoji */
	put_entry(w, "d\xc3\xa9", S_IFDIR | 0755, NULL);
	put_entry(w, "d\xc3\xa9/f", S_IFREG | 0644, NULL);
	put_end(w);
}

static void test_converted(void **state)
{
	struct berth_flist_config cfg = {
		.protocol = 32,
		.compat = BERTH_CF_SAFE_FLIST | BERTH_CF_VARINT_FLIST_FLAGS |
			  BERTH_CF_SYMLINK_ICONV,
		.links = true,
	};
	struct conv_log lg = {0};
	struct berth_flist *fl;
	struct wire w;

	(void)state;
	build_list(&w);
	cfg.conv = to_latin1;
	cfg.conv_arg = &lg;
	assert_int_equal(decode(&w, &cfg, &fl), BERTH_PROTO_DONE);
	/* Every entry keeps its place: the peer's indices count them. */
	assert_int_equal(fl->count, 8);
	assert_int_equal(lg.calls[BERTH_FLIST_CONV_NAME], 8);
	assert_int_equal(lg.calls[BERTH_FLIST_CONV_LINK], 2);
	assert_int_equal(lg.failed, 2);
	assert_string_equal(pt_path(sent(fl, 0)), ".");
	assert_string_equal(pt_path(sent(fl, 1)), "caf\xe9");
	assert_int_equal(berth_file_path_len(sent(fl, 1)), 4);
	assert_string_equal(pt_path(sent(fl, 2)), "caf\xe9s");
	/* Not convertible: inactive, empty name, still there. */
	assert_string_equal(pt_path(sent(fl, 3)), "");
	assert_int_equal(berth_file_path_len(sent(fl, 3)), 0);
	assert_true(sent(fl, 3)->flags & BERTH_FILE_INACTIVE);
	assert_string_equal(pt_path(sent(fl, 4)), "y");
	assert_string_equal(sent(fl, 4)->ext->link, "t\xfc");
	assert_int_equal(sent(fl, 4)->ext->link_len, 2);
	assert_false(sent(fl, 4)->flags & BERTH_FILE_INACTIVE);
	/* A target that does not convert: the entry goes the same way. */
	assert_string_equal(pt_path(sent(fl, 5)), "");
	assert_null(sent(fl, 5)->ext->link);
	assert_true(sent(fl, 5)->flags & BERTH_FILE_INACTIVE);
	/* The hook was told whose target it converts (converted name). */
	assert_int_equal(lg.nlink_names, 2);
	assert_string_equal(lg.link_names[0], "y");
	assert_string_equal(lg.link_names[1], "z");
	/* The directory check and the order use the converted names. */
	assert_string_equal(pt_path(sent(fl, 6)), "d\xe9");
	assert_string_equal(pt_path(sent(fl, 7)), "d\xe9/f");
	assert_string_equal(pt_path(&fl->files[0]), ".");
	for (uint32_t i = 2; i < fl->count; i++)
		assert_true(berth_flist_cmp(pt_path(&fl->files[i - 1]),
					    S_ISDIR(fl->files[i - 1].mode),
					    pt_path(&fl->files[i]),
					    S_ISDIR(fl->files[i].mode)) <= 0);
	berth_flist_free(fl);

	/* Without the hook the names are the bytes as sent. */
	cfg.conv = NULL;
	assert_int_equal(decode(&w, &cfg, &fl), BERTH_PROTO_DONE);
	assert_string_equal(pt_path(sent(fl, 2)), "caf\xc3\xa9s");
	assert_string_equal(pt_path(sent(fl, 3)), "x\xe6\xbc\xa2");
	assert_string_equal(sent(fl, 5)->ext->link, "\xf0\x9f\x98\x80");
	for (uint32_t i = 0; i < fl->count; i++)
		assert_false(fl->files[i].flags & BERTH_FILE_INACTIVE);
	berth_flist_free(fl);
}

static void test_errors(void **state)
{
	struct berth_flist_config cfg = {
		.protocol = 32,
		.compat = BERTH_CF_SAFE_FLIST | BERTH_CF_VARINT_FLIST_FLAGS,
		.links = true,
		.conv = to_latin1,
	};
	struct conv_log lg = {0};
	struct berth_flist *fl;
	struct wire w;

	(void)state;
	cfg.conv_arg = &lg;
	/* The checks see the converted name: "evil" becomes "a/../b". */
	wire_init(&w);
	put_entry(&w, ".", S_IFDIR | 0755, NULL);
	put_entry(&w, "evil", S_IFREG | 0644, NULL);
	put_end(&w);
	assert_int_equal(decode(&w, &cfg, &fl), -BERTH_EPATH);
	assert_null(fl);
	/* A hook error ends the list with it. */
	wire_init(&w);
	put_entry(&w, ".", S_IFDIR | 0755, NULL);
	put_entry(&w, "nomem", S_IFREG | 0644, NULL);
	put_end(&w);
	assert_int_equal(decode(&w, &cfg, &fl), -ENOMEM);
	/* ... also for a target. */
	wire_init(&w);
	put_entry(&w, ".", S_IFDIR | 0755, NULL);
	put_entry(&w, "l", S_IFLNK | 0777, "nomem");
	put_end(&w);
	assert_int_equal(decode(&w, &cfg, &fl), -ENOMEM);
	/* The target limit holds for the converted bytes. */
	cfg.max_link = 4;
	wire_init(&w);
	put_entry(&w, ".", S_IFDIR | 0755, NULL);
	put_entry(&w, "l", S_IFLNK | 0777, "ab\xc3\xa9");
	put_end(&w);
	assert_int_equal(decode(&w, &cfg, &fl), BERTH_PROTO_DONE);
	assert_string_equal(sent(fl, 1)->ext->link, "ab\xe9");
	berth_flist_free(fl);
	wire_init(&w);
	put_entry(&w, ".", S_IFDIR | 0755, NULL);
	put_entry(&w, "l", S_IFLNK | 0777, "big");
	put_end(&w);
	assert_int_equal(decode(&w, &cfg, &fl), -BERTH_ELIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_converted),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
