/* SPDX-License-Identifier: MIT */
/*
 * Item records (§8.3): the generator's encoder and the decoder for the
 * sender's echo (§9.1); the end-of-session encoders (§10).
 */
#include <errno.h>
#include <stdlib.h>

#include "protocol/proto_int.h"

int berth_item_put(struct berth_proto_out *out, struct berth_ndx_state *st,
		   const struct berth_item *it, bool with_xattr_req)
{
	struct berth_ndx_state saved = *st;
	size_t start = out->pos;
	int r;

	if (it->ndx < 0 || it->nxattr > BERTH_MAX_XATTR_REQ)
		return -EINVAL;
	r = berth_proto_put_ndx(out, st, it->ndx);
	if (!r)
		r = berth_proto_put_shortint(out, it->iflags);
	if (!r && (it->iflags & BERTH_ITEM_BASIS_TYPE_FOLLOWS))
		r = berth_proto_put_u8(out, it->fnamecmp_type);
	if (!r && (it->iflags & BERTH_ITEM_XNAME_FOLLOWS))
		r = berth_proto_put_vstring(out, it->xname, it->xname_len);
	if (!r && with_xattr_req)
		r = berth_xattr_req_put(out, it->xattr_num, it->nxattr);
	if (r) {
		out->pos = start;
		*st = saved;
	}
	return r;
}

int berth_item_dec_init(struct berth_item_dec *d,
			const struct berth_item_dec_config *cfg)
{
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	if (!d->cfg.max_xattr_bytes)
		d->cfg.max_xattr_bytes = 1 << 20;
	berth_ndx_init(&d->ndx);
	d->stash.cap = 64 + sizeof(d->xname) + 12 * BERTH_MAX_XATTR_REQ +
		       (d->cfg.xattrs ? d->cfg.max_xattr_bytes : 0);
	d->stash.buf = malloc(d->stash.cap);
	d->vals = d->cfg.xattrs && d->cfg.values
			  ? malloc(d->cfg.max_xattr_bytes)
			  : NULL;
	if (!d->stash.buf || (d->cfg.xattrs && d->cfg.values && !d->vals)) {
		berth_item_dec_destroy(d);
		return -ENOMEM;
	}
	return 0;
}

void berth_item_dec_destroy(struct berth_item_dec *d)
{
	free(d->stash.buf);
	free(d->vals);
	d->stash.buf = NULL;
	d->vals = NULL;
}

static int unit_xattrs(struct berth_item_dec *d, struct berth_proto_in *v)
{
	struct berth_item *it = d->out;
	uint32_t num = 0;
	size_t used = 0;
	int32_t rel, len;

	it->nxattr = 0;
	for (;;) {
		GET(berth_proto_get_varint(v, &rel));
		if (rel == 0)
			return BERTH_PROTO_DONE;
		if (rel < 0 || (uint64_t)num + (uint32_t)rel > INT32_MAX)
			return -BERTH_EPROTO;
		if (it->nxattr >= BERTH_MAX_XATTR_REQ)
			return -BERTH_ELIMIT;
		num += (uint32_t)rel;
		it->xattr_num[it->nxattr] = num;
		it->xattr_len[it->nxattr] = 0;
		it->xattr_val[it->nxattr] = NULL;
		if (d->cfg.values) {
			GET(berth_proto_get_varint(v, &len));
			if (len < 0)
				return -BERTH_EPROTO;
			if ((size_t)len > d->cfg.max_xattr_bytes - used)
				return -BERTH_ELIMIT;
			if (in_avail(v) < (size_t)len)
				return BERTH_PROTO_MORE;
			memcpy(d->vals + used, v->ptr + v->pos, (size_t)len);
			it->xattr_len[it->nxattr] = (uint32_t)len;
			it->xattr_val[it->nxattr] = d->vals + used;
			used += (size_t)len;
			v->pos += (size_t)len;
		}
		it->nxattr++;
	}
}

static int unit_item(void *ctx, struct berth_proto_in *v)
{
	struct berth_item_dec *d = ctx;
	struct berth_item *it = d->out;
	struct berth_ndx_state st = d->ndx;
	size_t len;
	uint16_t fl;

	GET(berth_proto_get_ndx(v, &st, &it->ndx));
	it->iflags = 0;
	it->xname = NULL;
	it->xname_len = 0;
	it->nxattr = 0;
	if (it->ndx >= 0) {
		GET(berth_proto_get_shortint(v, &fl));
		it->iflags = fl;
		if (fl & BERTH_ITEM_BASIS_TYPE_FOLLOWS)
			GET(berth_proto_get_u8(v, &it->fnamecmp_type));
		if (fl & BERTH_ITEM_XNAME_FOLLOWS) {
			GET(berth_proto_get_vstring(v, d->xname,
						    sizeof(d->xname), &len));
			if (memchr(d->xname, '\0', len))
				return -BERTH_EPROTO;
			it->xname = d->xname;
			it->xname_len = len;
		}
		if (d->cfg.xattrs && (fl & BERTH_ITEM_REPORT_XATTR) &&
		    !(d->cfg.xattr_optim && (fl & BERTH_ITEM_XNAME_FOLLOWS) &&
		      (fl & BERTH_ITEM_LOCAL_CHANGE)))
			GET(unit_xattrs(d, v));
	}
	d->ndx = st;
	return BERTH_PROTO_DONE;
}

int berth_item_decode(struct berth_item_dec *d, struct berth_proto_in *in,
		      struct berth_item *it)
{
	d->out = it;
	return berth__stash_run(&d->stash, in, unit_item, d);
}

int berth_done_put(struct berth_proto_out *out, struct berth_ndx_state *st)
{
	return berth_proto_put_ndx(out, st, BERTH_NDX_DONE);
}

int berth_del_stats_put(struct berth_proto_out *out, struct berth_ndx_state *st,
			int protocol, const struct berth_del_stats *ds)
{
	struct berth_ndx_state saved = *st;
	size_t start = out->pos;
	const int32_t v[5] = {ds->files, ds->dirs, ds->symlinks, ds->devices,
			      ds->specials};
	int r;

	if (protocol < 31)
		return -EINVAL;
	r = berth_proto_put_ndx(out, st, BERTH_NDX_DEL_STATS);
	for (int i = 0; !r && i < 5; i++)
		r = berth_proto_put_varint(out, v[i]);
	if (r) {
		out->pos = start;
		*st = saved;
	}
	return r;
}

int berth_end_done_count(int protocol)
{
	return protocol >= 31 ? 4 : protocol >= 29 ? 3 : 2;
}

int berth_deleted_put(struct berth_proto_out *out, const char *name, size_t len,
		      bool is_dir)
{
	size_t n = len + (is_dir ? 1 : 0);

	if (out_room(out) < 4 + n)
		return -ENOBUFS;
	TRY(berth_mux_put_header(out, BERTH_MSG_DELETED, n));
	berth_proto_put_bytes(out, name, len);
	if (is_dir)
		berth_proto_put_u8(out, 0);
	return 0;
}
