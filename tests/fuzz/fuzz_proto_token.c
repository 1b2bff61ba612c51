/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the sender's per-file answer: item echo (§9.1), sum head, plain or
 * zstd tokens (§9.2, §9.3), checksum; several files per session.  With
 * xattrs (bit 4) the echoed values are read by the item decoder, or with
 * bit 16 by the streaming value decoder the session uses.
 */
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct berth_item it;
	struct berth_item_dec idec;
	struct berth_item_dec_config icfg = {0};
	struct berth_tok_dec *td;
	struct berth_tok_config tcfg = {0};
	struct berth_tok_event ev;
	struct berth_xattr_val_dec vd;
	struct berth_xattr_val val;
	struct fz_chunker c;
	bool stream_vals;
	volatile uint64_t sink = 0;
	int r = 0;

	if (size < 2)
		return 0;
	tcfg.compress = data[0] & 1 ? BERTH_COMPRESS_ZSTD : BERTH_COMPRESS_NONE;
	tcfg.csum_type = data[0] & 2 ? BERTH_CSUM_XXH128 : BERTH_CSUM_XXH64;
	tcfg.digest_len = data[0] & 2 ? 16 : 8;
	tcfg.zstd_window_log = 20;
	tcfg.out_size = 512;
	stream_vals = (data[0] & 4) && (data[0] & 16);
	icfg.xattrs = (data[0] & 4) && !stream_vals;
	icfg.xattr_optim = data[0] & 8;
	icfg.values = true;
	icfg.max_xattr_bytes = 4096;
	if (berth_tok_dec_create(&td, &tcfg))
		return 0;
	if (berth_item_dec_init(&idec, &icfg)) {
		berth_tok_dec_free(td);
		return 0;
	}
	if (berth_xattr_val_dec_init(&vd, 4096, 8192)) {
		berth_item_dec_destroy(&idec);
		berth_tok_dec_free(td);
		return 0;
	}
	fz_init(&c, data + 2, size - 2, data[1]);
	for (int files = 0; files < 100; files++) {
		while ((r = berth_item_decode(&idec, &c.in, &it)) == 0 &&
		       fz_more(&c))
			;
		if (r != 1)
			break;
		if (stream_vals && it.ndx >= 0 &&
		    (it.iflags & BERTH_ITEM_REPORT_XATTR)) {
			berth_xattr_val_dec_begin(&vd);
			for (;;) {
				while ((r = berth_xattr_val_decode(
						&vd, &c.in, &val)) == 0 &&
				       fz_more(&c))
					;
				if (r != BERTH_XATTR_VAL)
					break;
				if (val.len)
					sink += val.ptr[val.len - 1] + val.num;
			}
			if (r != BERTH_PROTO_DONE)
				break;
		}
		if (it.ndx < 0 || !(it.iflags & BERTH_ITEM_TRANSFER))
			continue;
		berth_tok_dec_begin(td);
		for (;;) {
			while ((r = berth_tok_decode(td, &c.in, &ev)) == 0 &&
			       fz_more(&c))
				;
			if (r <= 0 || r == BERTH_TOK_END)
				break;
			if (r == BERTH_TOK_LITERAL)
				sink += ev.ptr[ev.len - 1];
			else if (r == BERTH_TOK_BLOCKS)
				sink += (uint64_t)ev.block +
					(uint64_t)ev.nblocks;
		}
		if (r != BERTH_TOK_END)
			break;
		sink += ev.sum[tcfg.digest_len - 1];
	}
	(void)sink;
	berth_xattr_val_dec_destroy(&vd);
	berth_item_dec_destroy(&idec);
	berth_tok_dec_free(td);
	return 0;
}
