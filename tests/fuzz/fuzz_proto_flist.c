/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the file-list decoder (§7) under many format configurations: the
 * first three bytes choose protocol (30..32, or with byte 2's top bit
 * 27..29: the pre-30 fixed-width encoding), compat flags and preserve
 * options;
 * between lists an ndx chooses the next sub-list (inc-recursion).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_flist_config cfg = {0};
	struct berth_flist_dec *d;
	struct berth_ndx_state ndx;
	struct fz_chunker c;
	int32_t k = -1;
	volatile uint64_t sink = 0;

	if (size < 3)
		return 0;
	cfg.protocol = 30 + data[0] % 3;
	cfg.compat = BERTH_CF_SAFE_FLIST | BERTH_CF_ID0_NAMES;
	if (data[0] & 0x04)
		cfg.compat |= BERTH_CF_INC_RECURSE;
	if (data[0] & 0x08)
		cfg.compat |= BERTH_CF_VARINT_FLIST_FLAGS;
	cfg.links = data[1] & 1;
	cfg.owner = data[1] & 2;
	cfg.group = data[1] & 4;
	cfg.devices = data[1] & 8;
	cfg.specials = data[1] & 16;
	cfg.hard_links = data[1] & 32;
	cfg.checksum = data[1] & 64;
	cfg.atimes = data[1] & 128;
	cfg.xattrs = data[0] & 0x10 ? 1 : 0;
	cfg.crtimes = data[0] & 0x20;
	cfg.numeric_ids = data[0] & 0x40;
	cfg.acls = data[0] & 0x80;
	/* Protocols 27..29 have no compat flags, xattrs, ACLs, atimes or
	 * crtimes. */
	if (data[2] & 0x80) {
		cfg.protocol -= 3;
		cfg.compat = 0;
		cfg.xattrs = 0;
		cfg.acls = cfg.atimes = cfg.crtimes = false;
	}
	cfg.flist_csum_len = 16;
	cfg.max_files = 2000;
	cfg.max_name = 300;
	cfg.max_link = 300;
	cfg.max_xattr_bytes = 2000;
	if (berth_flist_dec_create(&d, &cfg))
		return 0;
	berth_ndx_init(&ndx);
	fz_init(&c, data + 3, size - 3, data[2]);
	for (int lists = 0; lists < 50; lists++) {
		struct berth_flist *fl;
		int r = 0;

		if (berth_flist_dec_begin(d, k))
			break;
		while ((r = berth_flist_decode(d, &c.in)) == 0 && fz_more(&c))
			;
		if (r != 1)
			break;
		fl = berth_flist_dec_take(d);
		for (uint32_t i = 0; i < fl->count; i++) {
			const struct berth_file *f = &fl->files[i];
			char path[BERTH_PATH_BUF];
			const char *p = berth_file_path(f, path);

			uint32_t len = berth_file_path_len(f);

			/* The path's last byte: its length is the whole
			 * path's, its parts within bounds. */
			sink += (len ? p[len - 1] : p[0]) + f->size;
			if (strlen(p) != len || len > 4095)
				abort();
			/* A same-list hard-link reference is sorted. */
			if (fl->hlink &&
			    fl->hlink[i] >= fl->ndx_start + (int64_t)fl->count)
				abort();
			if (f->ext->link)
				sink += (uint8_t)f->ext
						->link[f->ext->link_len - 1];
			if (f->ext->sum)
				sink += f->ext->sum[15];
			if (f->ext->xattr_set >= 0)
				sink += berth_flist_dec_xattrs(
						d, f->ext->xattr_set)
						->count;
			berth_flist_dec_user_name(d, f->uid);
			for (int kind = 0; kind < 2; kind++) {
				const struct berth_acl *a =
					f->ext->acl[kind] >= 0
						? berth_flist_dec_acl(
							  d, kind,
							  f->ext->acl[kind])
						: NULL;

				if (a)
					sink += a->flags + a->count +
						(a->count ? a->idas[0].id : 0);
			}
		}
		berth_flist_free(fl);
		if (!(cfg.compat & BERTH_CF_INC_RECURSE))
			break;
		int32_t v;

		while ((r = berth_proto_get_ndx(&c.in, &ndx, &v)) == 0 &&
		       fz_more(&c))
			;
		if (r != 1 || v > BERTH_NDX_FLIST_OFFSET)
			break;
		k = BERTH_NDX_FLIST_OFFSET - v;
	}
	(void)sink;
	berth_flist_dec_free(d);
	return 0;
}
