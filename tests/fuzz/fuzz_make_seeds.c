/* SPDX-License-Identifier: MIT */
/*
 * Write seed corpora for the protocol fuzz targets from the captures:
 *   BERTH_SHARED=/work/shared ./fuzz_make_seeds OUTDIR
 * creates OUTDIR/{demux,handshake,filter,flist,token,argv}/<case>, each
 * prefixed with the configuration bytes its fuzz target expects, and
 * OUTDIR/ztoken/ from streams and scripts made here (tok_encoder.c).
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
			   (s.o.xattrs ? 0x10 : 0));
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
	return 0;
}
