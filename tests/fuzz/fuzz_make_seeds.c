/* SPDX-License-Identifier: MIT */
/*
 * Write seed corpora for the protocol fuzz targets from the captures:
 *   BERTH_SHARED=/work/shared ./fuzz_make_seeds OUTDIR
 * creates OUTDIR/{demux,handshake,filter,flist,token,argv}/<case>, each
 * prefixed with the configuration bytes its fuzz target expects, and
 * OUTDIR/ztoken/ from streams and scripts made here (tok_encoder.c), and
 * OUTDIR/flist/acls-* : lists with ACLs made here (no capture has -A).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocol/protocol.h"
#include "proto_testutil.h"
#include "tok_encoder.h"

static const char *outdir;

static void put(const char *dir, const char *name, const uint8_t *pre,
		size_t npre, const uint8_t *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", outdir, dir, name);
	f = fopen(path, "wb");
	if (!f)
		return;
	fwrite(pre, 1, npre, f);
	fwrite(p, 1, len, f);
	fclose(f);
}

static void one(const char *cs)
{
	struct pt_session s;
	size_t s2c_at, c2s_at;
	uint8_t pre[3];
	char args[4096];
	size_t al = 0;

	if (pt_session_open(&s, cs) || !pt_mux_start(cs, &s2c_at, &c2s_at)) {
		pt_session_close(&s);
		return;
	}
	pre[0] = 0x40;
	put("demux", cs, pre, 1, s.c2s + c2s_at, s.c2s_len - c2s_at);
	pre[0] = (uint8_t)(0x01 | (s.o.compress ? 0x40 : 0));
	pre[1] = 0x20;
	put("handshake", cs, pre, 2, s.c2s, c2s_at);

	/* flist: byte 0 = protocol % 3 (2 = 32) and format bits, byte 1 =
	   preserve options, byte 2 = chunking seed (fuzz_proto_flist.c) */
	pre[0] = (uint8_t)((s.hs.compat & BERTH_CF_INC_RECURSE ? 0x04 : 0) |
			   (s.hs.compat & BERTH_CF_VARINT_FLIST_FLAGS ? 0x08
								      : 0) |
			   (s.o.xattrs ? 0x10 : 0) | (s.o.acls ? 0x80 : 0));
	while (pre[0] % 3 != 2)
		pre[0]++;
	pre[1] = (uint8_t)(s.o.links | s.o.owner << 1 | s.o.group << 2 |
			   s.o.devices << 3 | s.o.specials << 4 |
			   (s.o.hard_links > 0) << 5 | s.o.checksum << 6);
	pre[2] = 7;
	struct berth_proto_in in = {s.data, s.data_len, 0};

	if (berth_opts_want_filters(&s.o)) {
		struct berth_filter_dec fd;
		struct berth_filter_rule r;
		uint8_t fpre = 200;

		if (!berth_filter_dec_init(&fd, 4096, 100)) {
			while (berth_filter_decode(&fd, &in, &r) ==
			       BERTH_FILTER_RULE)
				;
			berth_filter_dec_destroy(&fd);
			put("filter", cs, &fpre, 1, s.data, in.pos);
		}
	}
	put("flist", cs, pre, 3, s.data + in.pos, s.data_len - in.pos);

	struct berth_flist_config cfg;
	struct berth_flist_dec *d;

	berth_flist_config_init(&cfg, &s.o, &s.hs);
	if (!berth_flist_dec_create(&d, &cfg)) {
		if (!berth_flist_dec_begin(d, -1) &&
		    berth_flist_decode(d, &in) == BERTH_PROTO_DONE) {
			pre[0] = (uint8_t)((s.hs.compress ==
					    BERTH_COMPRESS_ZSTD) |
					   (berth_csum_digest_len(
						    s.hs.xfer_csum) ==
					    16) << 1 |
					   (s.o.xattrs ? 4 : 0));
			pre[1] = 5;
			put("token", cs, pre, 2, s.data + in.pos,
			    s.data_len - in.pos);
			if (s.o.xattrs) {
				/* The same with the streaming value
				 * decoder (fuzz_proto_token, bit 16). */
				char vname[300];

				snprintf(vname, sizeof(vname), "%s-vals", cs);
				pre[0] |= 16;
				put("token", vname, pre, 2, s.data + in.pos,
				    s.data_len - in.pos);
			}
		}
		berth_flist_free(berth_flist_dec_take(d));
		berth_flist_dec_free(d);
	}
	/* argv: the arguments after --server, NUL-separated, then "" */
	for (int k = 2; k < s.argc; k++) {
		size_t l = strlen(s.argv[k]);

		if (al + l + 2 > sizeof(args))
			break;
		memcpy(args + al, s.argv[k], l + 1);
		al += l + 1;
	}
	args[al++] = 0;
	put("argv", cs, pre, 0, (const uint8_t *)args, al);
	pt_session_close(&s);
}

/*
 * fuzz_proto_ztoken: for every compressor and protocol 30/31 a stream of
 * two files (decode mode) and a script (round-trip mode).
 */
static void ztoken_seeds(void)
{
	static const uint8_t script[] = {1,    3,    0x08, 0x80, 40,   2,
					 0x11, 0xc0, 20,   'h',	 'i',  0x03,
					 0x80, 200,  250,  0x1a, 0x80, 3};
	static uint8_t basis[3 * 5000];
	struct berth_sum_head h = {3, 5000, 2, 0};
	uint32_t lens[3] = {5000, 5000, 5000};
	struct tok_enc t;
	char name[64];
	uint8_t pre;

	for (size_t i = 0; i < sizeof(basis); i++)
		basis[i] = (uint8_t) "rsync block token\n"[i % 18];
	for (int c = 0; c < 8; c++) {
		static const int comp[4] = {
			BERTH_COMPRESS_ZLIB, BERTH_COMPRESS_ZLIBX,
			BERTH_COMPRESS_LZ4, BERTH_COMPRESS_ZSTD};

		pre = (uint8_t)c;
		if (te_init(&t, comp[c & 3], c & 4 ? 30 : 31, 0))
			continue;
		for (int f = 0; f < 2; f++) {
			te_file(&t, &h);
			te_literal(&t, basis + 100, 3000);
			te_blocks(&t, 1, 2, basis + 5000, lens);
			te_literal(&t, "new text, new text\n", 19);
			te_blocks(&t, 0, 1, basis, lens);
			te_end(&t, (const uint8_t *)"\x11", 1);
		}
		snprintf(name, sizeof(name), "stream-%d", c);
		put("ztoken", name, &pre, 1, t.buf, t.len);
		te_destroy(&t);
		pre |= 8;
		snprintf(name, sizeof(name), "script-%d", c);
		put("ztoken", name, &pre, 1, script, sizeof(script));
	}
}

/*
 * fuzz_proto_flist with -A (config byte 0x80), rsync's ACL encoding as
 * protocol/proto_flist_acl.c reads it: after each entry's other fields an
 * access ACL (every non-symlink) and a default ACL (directories), each a
 * varint index (0: a literal follows; k: the k-th literal of its kind
 * sent so far) and a literal: flags (user/group/mask/other objects, name
 * list), the objects' permissions, then the named entries (id, perms << 2
 * | 2 for a user | 1 when a name follows, the name).
 */
struct acl_ida {
	int32_t id;
	uint8_t perms;
	bool user;
	const char *name; /* NULL: no name on the wire */
};

struct acl_lit {
	uint8_t flags; /* BERTH_ACL_* */
	uint8_t obj[4]; /* user, group, mask, other */
	uint32_t n;
	const struct acl_ida *ida;
};

/* One access or default ACL field: a reference when @ref > 0. */
static void put_acl(struct berth_proto_out *o, int32_t ref,
		    const struct acl_lit *a)
{
	berth_proto_put_varint(o, ref);
	if (ref)
		return;
	berth_proto_put_u8(o, a->flags);
	for (int i = 0; i < 4; i++)
		if (a->flags & (1u << i))
			berth_proto_put_varint(o, a->obj[i]);
	if (!(a->flags & BERTH_ACL_NAME_LIST))
		return;
	berth_proto_put_varint(o, (int32_t)a->n);
	for (uint32_t i = 0; i < a->n; i++) {
		const struct acl_ida *e = &a->ida[i];

		berth_proto_put_varint(o, e->id);
		berth_proto_put_varint(o, e->perms << 2 | (e->user ? 2 : 0) |
						  (e->name ? 1 : 0));
		if (e->name) {
			berth_proto_put_u8(o, (uint8_t)strlen(e->name));
			berth_proto_put_bytes(o, e->name, strlen(e->name));
		}
	}
}

/* An entry's fields before its ACLs (protocol 32, varint flags, no -o
 * -g -l -D): flags, name, size, mtime, mode. */
static void put_entry(struct berth_proto_out *o, const char *name,
		      uint32_t mode, int64_t size)
{
	berth_proto_put_varint(o, BERTH_XMIT_EXTENDED_FLAGS);
	berth_proto_put_u8(o, (uint8_t)strlen(name));
	berth_proto_put_bytes(o, name, strlen(name));
	berth_proto_put_varlong(o, size, 3);
	berth_proto_put_varlong(o, 1700000000, 4);
	berth_proto_put_int32(o, (int32_t)mode);
}

/* The seed must decode whole, with its ACLs: say so on stderr. */
static void acl_seed_check(const uint8_t *p, size_t len)
{
	struct berth_flist_config cfg = {.protocol = 32,
					 .compat = BERTH_CF_SAFE_FLIST |
						   BERTH_CF_ID0_NAMES |
						   BERTH_CF_VARINT_FLIST_FLAGS,
					 .acls = true,
					 .flist_csum_len = 16};
	struct berth_proto_in in = {p, len, 0};
	struct berth_flist_dec *d;
	uint32_t n[2] = {0, 0};
	int r = -1;

	if (berth_flist_dec_create(&d, &cfg))
		return;
	if (!berth_flist_dec_begin(d, -1))
		r = berth_flist_decode(d, &in);
	for (int k = 0; k < 2; k++)
		while (berth_flist_dec_acl(d, k, (int32_t)n[k]))
			n[k]++;
	fprintf(stderr,
		"flist/acls-tree: %s, %zu of %zu bytes, %u access "
		"and %u default ACLs\n",
		r == BERTH_PROTO_DONE ? "decodes" : "DOES NOT DECODE", in.pos,
		len, n[0], n[1]);
	berth_flist_free(berth_flist_dec_take(d));
	berth_flist_dec_free(d);
}

static void acl_seeds(void)
{
	static const struct acl_ida named[] = {
		{1000, 6, true, "alice"},
		{100, 4, false, "users"},
		{65534, 5, true, NULL},
		{7, 7, false, NULL},
	};
	static const struct acl_ida dflt[] = {{65534, 5, true, "nobody"}};
	const struct acl_lit plain = {0, {0}, 0, NULL};
	const struct acl_lit objs = {BERTH_ACL_USER_OBJ | BERTH_ACL_GROUP_OBJ |
					     BERTH_ACL_OTHER_OBJ,
				     {7, 5, 0, 5},
				     0,
				     NULL};
	const struct acl_lit masked = {
		BERTH_ACL_USER_OBJ | BERTH_ACL_GROUP_OBJ | BERTH_ACL_MASK_OBJ |
			BERTH_ACL_OTHER_OBJ | BERTH_ACL_NAME_LIST,
		{6, 4, 7, 0},
		4,
		named};
	const struct acl_lit mask_only = {
		BERTH_ACL_MASK_OBJ, {0, 0, 4, 0}, 0, NULL};
	const struct acl_lit def = {BERTH_ACL_USER_OBJ | BERTH_ACL_GROUP_OBJ |
					    BERTH_ACL_OTHER_OBJ |
					    BERTH_ACL_NAME_LIST,
				    {7, 5, 0, 5},
				    1,
				    dflt};
	/* byte 0: protocol 32 (% 3 == 2), varint flags, ACLs; then no
	 * preserve options; byte 2: the chunking seed. */
	uint8_t pre[3] = {0x89, 0, 7};
	uint8_t buf[4096];
	struct berth_proto_out o = {buf, sizeof(buf), 0};

	/* A directory with access and default ACLs, files with literal
	 * ACLs (objects only, named entries with and without names, a mask
	 * alone) and references to them, a subdirectory reusing both. */
	put_entry(&o, ".", S_IFDIR | 0755, 4096);
	put_acl(&o, 0, &objs);
	put_acl(&o, 0, &def);
	put_entry(&o, "a", S_IFREG | 0640, 10);
	put_acl(&o, 0, &masked);
	put_entry(&o, "b", S_IFREG | 0600, 0);
	put_acl(&o, 1, NULL);
	put_entry(&o, "c", S_IFREG | 0644, 3);
	put_acl(&o, 0, &mask_only);
	put_entry(&o, "d", S_IFDIR | 0750, 4096);
	put_acl(&o, 2, NULL);
	put_acl(&o, 1, NULL);
	put_entry(&o, "d/e", S_IFREG | 0644, 1);
	put_acl(&o, 0, &plain);
	put_entry(&o, "f", S_IFIFO | 0644, 0);
	put_acl(&o, 3, NULL);
	/* The end, no I/O error, the uid and gid lists (ACL ids named;
	 * each ends with id 0 and its name: the target sets ID0_NAMES). */
	berth_proto_put_varint(&o, 0);
	berth_proto_put_varint(&o, 0);
	berth_proto_put_varint(&o, 65534);
	berth_proto_put_u8(&o, 6);
	berth_proto_put_bytes(&o, "nobody", 6);
	berth_proto_put_varint(&o, 0);
	berth_proto_put_u8(&o, 4);
	berth_proto_put_bytes(&o, "root", 4);
	berth_proto_put_varint(&o, 7);
	berth_proto_put_u8(&o, 5);
	berth_proto_put_bytes(&o, "group", 5);
	berth_proto_put_varint(&o, 0);
	berth_proto_put_u8(&o, 4);
	berth_proto_put_bytes(&o, "root", 4);
	put("flist", "acls-tree", pre, 3, buf, o.pos);
	acl_seed_check(buf, o.pos);
	/* The same with other chunks, and with the numeric-ids bit (no id
	 * lists follow then: the decoder stops at the end's io_error). */
	pre[2] = 0;
	put("flist", "acls-tree-chunks0", pre, 3, buf, o.pos);
	pre[0] |= 0x40;
	pre[2] = 7;
	put("flist", "acls-tree-numeric", pre, 3, buf, o.pos);
}

int main(int argc, char **argv)
{
	static const char *const dirs[] = {"demux", "handshake", "filter",
					   "flist", "token",	 "argv",
					   "ztoken"};
	char p[4096];
	char **cs;
	int n;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR (with BERTH_SHARED set)\n",
			argv[0]);
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", outdir, dirs[i]);
		mkdir(p, 0755);
	}
	cs = pt_cases(&n);
	if (!cs) {
		fprintf(stderr, "no captures under $BERTH_SHARED/captures\n");
		return 1;
	}
	for (int i = 0; i < n; i++)
		one(cs[i]);
	pt_free_list(cs, n);
	ztoken_seeds();
	acl_seeds();
	return 0;
}
