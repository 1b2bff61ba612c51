/* SPDX-License-Identifier: MIT */
/*
 * The daemon's pure parsers: rsyncd.conf syntax (sections, comments,
 * continuations, &include/&merge through callbacks), PROXY v1/v2
 * headers, the greeting and the challenge's answer, response digests,
 * host rules, path sanitizing; incoming chmod and the daemon's filter
 * list.
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

#include "daemon/daemon_int.h"
#include "engine/commit/commit.h"
#include "engine/session/session_daemon.h"
#include "protocol/protocol.h"

/* ------------------------------------------------------- rsyncd.conf */

static void conf_basic(void **state)
{
	static const char text[] = "# comment\n"
				   "; another\n"
				   "Use Chroot = no\n"
				   "port=8873\n"
				   "[mod]\n"
				   "\tpath = /srv/x\n"
				   "\tread_only = no\n"
				   "\tcomment = a \\\n"
				   "  continued line\n"
				   "[other]\n"
				   "path=/srv/y\n";
	struct berth_dconf c;
	const struct berth_dconf_param *p;

	(void)state;
	assert_int_equal(berth_dconf_parse(&c, "t", text, strlen(text), NULL),
			 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.sect[1].name, "mod");
	p = berth_dconf_find(&c.sect[0], "usechroot");
	assert_non_null(p);
	assert_string_equal(p->val, "no");
	p = berth_dconf_find(&c.sect[1], "readonly");
	assert_non_null(p);
	assert_string_equal(p->val, "no");
	p = berth_dconf_find(&c.sect[1], "comment");
	assert_non_null(p);
	assert_non_null(strstr(p->val, "continued line"));
	assert_null(berth_dconf_find(&c.sect[2], "readonly"));
	berth_dconf_free(&c);
}

static void conf_bad(void **state)
{
	static const char *bad[] = {"[unterminated\n", "novalue\n"};
	struct berth_dconf c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_true(berth_dconf_parse(&c, "t", bad[i], strlen(bad[i]),
					      NULL) < 0);
		assert_true(c.err[0] != '\0');
		berth_dconf_free(&c);
	}
}

/* &include / &merge: two in-memory files. */
static int t_list(void *arg, const char *path, const char *suffix,
		  char ***names, size_t *n)
{
	(void)arg;
	(void)suffix;
	*names = malloc(sizeof(char *));
	(*names)[0] = strdup(path);
	*n = 1;
	return 0;
}

static int t_read(void *arg, const char *path, char **text, size_t *len)
{
	const char *t = NULL;

	(void)arg;
	if (!strcmp(path, "/inc.conf"))
		t = "read only = no\n[incmod]\npath = /srv/inc\n";
	else if (!strcmp(path, "/m.inc"))
		t = "comment = merged\n";
	if (!t)
		return -ENOENT;
	*text = strdup(t);
	*len = strlen(t);
	return 0;
}

static void conf_include_merge(void **state)
{
	static const char text[] = "[a]\npath = /srv/a\n&merge /m.inc\n"
				   "&include /inc.conf\n";
	struct berth_dconf_io io = {t_list, t_read, NULL};
	struct berth_dconf c;
	const struct berth_dconf_param *p;
	size_t i;

	(void)state;
	assert_int_equal(berth_dconf_parse(&c, "t", text, strlen(text), &io),
			 0);
	/* The merged line is in [a]. */
	p = berth_dconf_find(&c.sect[1], "comment");
	assert_non_null(p);
	assert_string_equal(p->val, "merged");
	/* The included file's module, with its file's default. */
	for (i = 0; i < c.n && strcmp(c.sect[i].name, "incmod"); i++)
		;
	assert_true(i < c.n);
	p = berth_dconf_find(&c.sect[i], "path");
	assert_non_null(p);
	assert_string_equal(p->val, "/srv/inc");
	berth_dconf_free(&c);
}

/* ------------------------------------------------------- PROXY headers */

static void proxy_v1(void **state)
{
	static const char h[] = "PROXY TCP4 10.1.2.3 10.0.0.1 5555 873\r\n";
	struct berth_proxy_hdr hdr;
	size_t need = 0;

	(void)state;
	assert_int_equal(berth_proxy_parse((const uint8_t *)h, 6, &need, &hdr),
			 0);
	assert_true(need > 0);
	assert_int_equal(
		berth_proxy_parse((const uint8_t *)h, strlen(h), &need, &hdr),
		(int)strlen(h));
	assert_false(hdr.local);
	assert_int_equal(hdr.src.ss_family, AF_INET);
	assert_true(berth_proxy_parse((const uint8_t *)"PROXY TCP4 x y 1 2\r\n",
				      20, &need, &hdr) < 0);
	assert_true(berth_proxy_parse((const uint8_t *)"GET / HTTP/1.0\r\n", 16,
				      &need, &hdr) < 0);
}

static void proxy_v2(void **state)
{
	uint8_t h[16 + 12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a,
			      0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11,
			      0x00, 0x0c, 10,	1,    2,    3,	  10,
			      0,    0,	  1,	0x15, 0xb3, 0x03, 0x69};
	struct berth_proxy_hdr hdr;
	size_t need = 0;

	(void)state;
	assert_int_equal(berth_proxy_parse(h, 16, &need, &hdr), 0);
	assert_int_equal(need, sizeof(h) - 16);
	assert_int_equal(berth_proxy_parse(h, sizeof(h), &need, &hdr),
			 (int)sizeof(h));
	assert_false(hdr.local);
	h[12] = 0x20; /* LOCAL */
	assert_int_equal(berth_proxy_parse(h, sizeof(h), &need, &hdr),
			 (int)sizeof(h));
	assert_true(hdr.local);
	h[12] = 0x31; /* version 3 */
	assert_true(berth_proxy_parse(h, sizeof(h), &need, &hdr) < 0);
}

/* ------------------------------------------ greeting and the challenge */

static void greeting(void **state)
{
	struct berth_dgreet g;
	char line[64];
	char *user, *resp;

	(void)state;
	assert_int_equal(berth_dgreet_parse("@RSYNCD: 31.0 md5 md4", &g), 0);
	assert_int_equal(g.version, 31);
	assert_true(g.has_list);
	assert_int_equal(berth_dauth_choose(&g, 31), BERTH_DAUTH_MD5);
	assert_int_equal(berth_dgreet_parse("@RSYNCD: 29", &g), 0);
	assert_false(g.has_list);
	assert_int_equal(berth_dauth_choose(&g, 29), BERTH_DAUTH_MD4_OLD);
	assert_int_equal(berth_dauth_choose(&g, 30), BERTH_DAUTH_MD5);
	assert_int_equal(berth_dgreet_parse("@RSYNCD: 32.0 blake9", &g), 0);
	assert_int_equal(berth_dauth_choose(&g, 32), -BERTH_EUNSUPPORTED);
	assert_true(berth_dgreet_parse("HELLO", &g) < 0);
	snprintf(line, sizeof(line), "alice abcdef");
	assert_int_equal(berth_dauth_split(line, &user, &resp), 0);
	assert_string_equal(user, "alice");
	assert_string_equal(resp, "abcdef");
	snprintf(line, sizeof(line), "alice");
	assert_true(berth_dauth_split(line, &user, &resp) < 0);
}

static void responses(void **state)
{
	char out[128], md4[128];

	(void)state;
	/* base64 without padding of DIGEST(secret || challenge). */
	assert_int_equal(berth_dauth_response(BERTH_DAUTH_MD5, "wonderland",
					      "abcdefgh", out, sizeof(out)),
			 0);
	assert_string_equal(out, "YpMVoQKi8/CZOlcm4OFEfA");
	assert_int_equal(berth_dauth_response(BERTH_DAUTH_SHA256, "wonderland",
					      "abcdefgh", out, sizeof(out)),
			 0);
	assert_string_equal(out, "u2l9V0eB/xgC+4/ABoMZW5Zr3hFRWMXf64czjgqyZtY");
	/* The old MD4 hashes a zero seed first: not the plain one. */
	assert_int_equal(berth_dauth_response(BERTH_DAUTH_MD4, "wonderland",
					      "abcdefgh", md4, sizeof(md4)),
			 0);
	assert_int_equal(berth_dauth_response(BERTH_DAUTH_MD4_OLD, "wonderland",
					      "abcdefgh", out, sizeof(out)),
			 0);
	assert_int_equal(strlen(out), 22);
	assert_string_not_equal(out, md4);
}

/* ------------------------------------------------- hosts and paths */

static void hosts_paths(void **state)
{
	char out[64];

	(void)state;
	assert_true(
		berth_daccess_allowed("10.0.0.0/8", NULL, "10.2.3.4", NULL));
	assert_false(
		berth_daccess_allowed("10.0.0.0/8", NULL, "11.0.0.1", NULL));
	assert_false(berth_daccess_allowed(NULL, "127.0.0.0/255.0.0.0",
					   "127.0.0.1", NULL));
	assert_true(berth_daccess_allowed("*.example.org", NULL, "1.2.3.4",
					  "a.example.org"));
	assert_int_equal(berth_dpath_sanitize("/../a/./b/../../../c", 0, out,
					      sizeof(out)),
			 0);
	assert_string_equal(out, "c");
	assert_int_equal(berth_dpath_sanitize("", 0, out, sizeof(out)), 0);
	assert_string_equal(out, ".");
}

/* ------------------------------------------------------ incoming chmod */

static void chmod_specs(void **state)
{
	struct berth_chmod *c;

	(void)state;
	assert_int_equal(berth_chmod_parse("D2775,F664", 022, &c), 0);
	assert_int_equal(berth_chmod_apply(c, S_IFDIR | 0700), S_IFDIR | 02775);
	assert_int_equal(berth_chmod_apply(c, S_IFREG | 0700), S_IFREG | 0664);
	berth_chmod_free(c);
	assert_int_equal(berth_chmod_parse("ug+rwX,o-w", 022, &c), 0);
	assert_int_equal(berth_chmod_apply(c, S_IFREG | 0602), S_IFREG | 0660);
	assert_int_equal(berth_chmod_apply(c, S_IFREG | 0702), S_IFREG | 0770);
	assert_int_equal(berth_chmod_apply(c, S_IFDIR | 0000), S_IFDIR | 0770);
	berth_chmod_free(c);
	/* No u/g/o/a: the umask's bits stay out. */
	assert_int_equal(berth_chmod_parse("+w", 022, &c), 0);
	assert_int_equal(berth_chmod_apply(c, S_IFREG | 0444), S_IFREG | 0644);
	berth_chmod_free(c);
	assert_int_equal(berth_chmod_parse("u=rx,g+s", 022, &c), 0);
	assert_int_equal(berth_chmod_apply(c, S_IFDIR | 0755), S_IFDIR | 02555);
	berth_chmod_free(c);
	assert_int_equal(berth_chmod_apply(NULL, S_IFREG | 0640),
			 S_IFREG | 0640);
	for (const char *const *b =
		     (const char *const[]){"", "u", "DF+x", "u+q", "8", "u7",
					   "17777", "a+r,", NULL};
	     *b; b++)
		assert_int_equal(berth_chmod_parse(*b, 022, &c), -EINVAL);
}

/* ------------------------------------------- the daemon's filter list */

static void dfilter(void **state)
{
	struct berth_dfilter *f = NULL;
	char why[256];

	(void)state;
	assert_int_equal(berth__dfilter_add(&f, BERTH_DF_FILTER,
					    "- /nope + keep.tmp", why,
					    sizeof(why)),
			 0);
	assert_int_equal(berth__dfilter_add(&f, BERTH_DF_INCLUDE, "/t/d1/f1",
					    why, sizeof(why)),
			 0);
	assert_int_equal(berth__dfilter_add(&f, BERTH_DF_EXCLUDE_FILE,
					    "# comment\nsecret/\n- /t/x\n", why,
					    sizeof(why)),
			 0);
	assert_int_equal(berth__dfilter_add(&f, BERTH_DF_EXCLUDE,
					    "*.tmp - /t/d1/f*", why,
					    sizeof(why)),
			 0);
	/* Basename patterns, wherever DEST is. */
	assert_true(berth__dfilter_hides(f, "t", "a/b.tmp", false));
	assert_false(berth__dfilter_hides(f, "t", "keep.tmp", false));
	/* A "/" in the pattern: from the module's top. */
	assert_true(berth__dfilter_hides(f, "t", "d1/f4", false));
	assert_false(berth__dfilter_hides(f, "t", "d1/f1", false));
	assert_false(berth__dfilter_hides(f, "u", "d1/f4", false));
	assert_true(berth__dfilter_hides(f, "", "nope", true));
	assert_true(berth__dfilter_hides(f, "t", "x", false));
	/* "secret/": the directory and everything beneath it. */
	assert_true(berth__dfilter_hides(f, "", "a/secret", true));
	assert_true(berth__dfilter_hides(f, "", "a/secret/deep/file", false));
	assert_false(berth__dfilter_hides(f, "", "a/secret", false));
	/* "!" clears what came before. */
	assert_int_equal(
		berth__dfilter_add(&f, BERTH_DF_EXCLUDE, "!", why, sizeof(why)),
		0);
	assert_false(berth__dfilter_hides(f, "t", "a/b.tmp", false));
	/* What berth's daemon does not take, and syntax errors. */
	assert_int_equal(berth__dfilter_add(&f, BERTH_DF_FILTER,
					    ": .rsync-filter", why,
					    sizeof(why)),
			 -EINVAL);
	assert_int_equal(berth__dfilter_add(&f, BERTH_DF_FILTER, "y foo", why,
					    sizeof(why)),
			 -EINVAL);
	berth__dfilter_free(f);
	/* Rules for the sending side only are dropped. */
	f = NULL;
	assert_int_equal(berth__dfilter_add(&f, BERTH_DF_FILTER, "H *.x", why,
					    sizeof(why)),
			 0);
	assert_false(berth__dfilter_hides(f, "", "a.x", false));
	berth__dfilter_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(conf_basic),
		cmocka_unit_test(conf_bad),
		cmocka_unit_test(conf_include_merge),
		cmocka_unit_test(proxy_v1),
		cmocka_unit_test(proxy_v2),
		cmocka_unit_test(greeting),
		cmocka_unit_test(responses),
		cmocka_unit_test(hosts_paths),
		cmocka_unit_test(chmod_specs),
		cmocka_unit_test(dfilter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
