/* SPDX-License-Identifier: MIT */
/*
 * File-list attributes kept for the whole session (§7.6, §7.8): uid/gid
 * names (inline or id lists) and xattr sets, plus the byte helpers the
 * entry parser shares.
 */
#include <errno.h>
#include <stdlib.h>

#include "protocol/proto_int.h"

int berth__flist_pool_add(struct pool *p, const void *data, size_t len,
			  uint32_t *off)
{
	if (p->limit && p->len + len + 1 > p->limit)
		return -BERTH_ELIMIT;
	if (p->len + len + 1 > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		char *n;

		while (cap < p->len + len + 1)
			cap *= 2;
		if (cap > UINT32_MAX)
			return -BERTH_ELIMIT;
		n = realloc(p->p, cap);
		if (!n)
			return -ENOMEM;
		p->p = n;
		p->cap = cap;
	}
	*off = (uint32_t)p->len;
	memcpy(p->p + p->len, data, len);
	p->p[p->len + len] = '\0';
	p->len += len + 1;
	return 0;
}

int berth__flist_get_bytes(struct berth_proto_in *v, size_t n,
			   const uint8_t **p)
{
	if (in_avail(v) < n)
		return BERTH_PROTO_MORE;
	*p = v->ptr + v->pos;
	v->pos += n;
	return BERTH_PROTO_DONE;
}

int berth__flist_get_name8(struct berth_proto_in *v, const uint8_t **p,
			   uint8_t *len)
{
	GET(berth_proto_get_u8(v, len));
	return berth__flist_get_bytes(v, *len, p);
}

/* Parse (only) a literal xattr set; @count items. */
static int parse_xset(struct berth_flist_dec *d, struct berth_proto_in *v,
		      uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		int32_t nl, dl;
		const uint8_t *p;

		GET(berth_proto_get_varint(v, &nl));
		GET(berth_proto_get_varint(v, &dl));
		if (nl < 2 || nl > 4096 || dl < 0)
			return -BERTH_EPROTO;
		GET(berth__flist_get_bytes(v, (size_t)nl, &p));
		if (p[nl - 1] != '\0' || memchr(p, '\0', (size_t)nl - 1))
			return -BERTH_EPROTO;
		GET(berth__flist_get_bytes(v, dl <= 32 ? (size_t)dl : 16, &p));
		if ((size_t)(v->pos - (size_t)(d->pend.xset - v->ptr)) >
		    d->cfg.max_xattr_bytes)
			return -BERTH_ELIMIT;
	}
	return BERTH_PROTO_DONE;
}

int berth__flist_parse_xattrs(struct berth_flist_dec *d,
			      struct berth_proto_in *v)
{
	struct pend *p = &d->pend;
	int32_t ndx, count;

	GET(berth_proto_get_varint(v, &ndx));
	if (ndx != 0) {
		if (ndx < 0 || (uint32_t)ndx > d->nxsets)
			return -BERTH_EPROTO;
		p->x.xattr_set = ndx - 1;
		return BERTH_PROTO_DONE;
	}
	GET(berth_proto_get_varint(v, &count));
	if (count < 0)
		return -BERTH_EPROTO;
	if ((uint32_t)count > d->cfg.max_xattr_count ||
	    d->nxsets >= d->cfg.max_xattr_sets)
		return -BERTH_ELIMIT;
	p->xset = v->ptr + v->pos;
	p->xcount = (uint32_t)count;
	GET(parse_xset(d, v, p->xcount));
	p->xset_len = (size_t)(v->ptr + v->pos - p->xset);
	p->x.xattr_set = (int32_t)d->nxsets;
	p->f.flags |= BERTH_FILE_XATTR_LIT;
	return BERTH_PROTO_DONE;
}

/* Store a literal xattr set parsed by parse_xattrs (re-walks the bytes). */
int berth__flist_commit_xset(struct berth_flist_dec *d)
{
	struct pend *p = &d->pend;
	struct berth_proto_in v = {p->xset, p->xset_len, 0};
	struct berth_xattr_set *s;
	uint8_t *mem, *bytes;
	size_t isz = sizeof(struct berth_xattr) * p->xcount;

	if (d->nxsets == d->xsets_cap) {
		uint32_t cap = d->xsets_cap ? d->xsets_cap * 2 : 16;
		void *n = realloc(d->xsets, sizeof(*d->xsets) * cap);

		if (!n)
			return -ENOMEM;
		d->xsets = n;
		d->xsets_cap = cap;
	}
	if (d->attr_bytes + isz + p->xset_len + 1 > d->cfg.max_attr_bytes)
		return -BERTH_ELIMIT;
	d->attr_bytes += isz + p->xset_len + 1;
	mem = malloc(isz + p->xset_len + 1);
	if (!mem)
		return -ENOMEM;
	s = &d->xsets[d->nxsets];
	s->count = p->xcount;
	s->items = (struct berth_xattr *)mem;
	bytes = mem + isz;
	memcpy(bytes, p->xset, p->xset_len);
	v.ptr = bytes;
	for (uint32_t i = 0; i < p->xcount; i++) {
		int32_t nl, dl;

		berth_proto_get_varint(&v, &nl);
		berth_proto_get_varint(&v, &dl);
		s->items[i].name = (const char *)bytes + v.pos;
		s->items[i].name_len = (uint32_t)nl;
		s->items[i].datum_len = (uint32_t)dl;
		v.pos += (size_t)nl;
		s->items[i].value = bytes + v.pos;
		v.pos += dl <= 32 ? (size_t)dl : 16;
	}
	d->nxsets++;
	return 0;
}

/*
 * Names are appended (O(1)); berth__flist_sort_ids() sorts and dedupes
 * them at the end of each list so lookups are a binary search.  Every
 * append counts against max_ids, so a hostile sender cannot grow the table
 * by repeating ids.
 */
int berth__flist_set_id(struct berth_flist_dec *d, bool gid, uint32_t id,
			const uint8_t *name, size_t len)
{
	uint32_t off;

	if (d->ids_appended >= d->cfg.max_ids)
		return -BERTH_ELIMIT;
	if (d->nids == d->ids_cap) {
		uint32_t cap = d->ids_cap ? d->ids_cap * 2 : 16;
		void *n = realloc(d->ids, sizeof(*d->ids) * cap);

		if (!n)
			return -ENOMEM;
		d->ids = n;
		d->ids_cap = cap;
	}
	TRY(berth__flist_pool_add(&d->ids_pool, name, len, &off));
	d->ids[d->nids].id = id;
	d->ids[d->nids].gid = gid;
	d->ids[d->nids].off = off;
	d->ids[d->nids].seq = d->ids_appended++;
	d->nids++;
	return 0;
}

static int cmp_id(const void *x, const void *y)
{
	const struct id_name *a = x, *b = y;

	if (a->gid != b->gid)
		return a->gid - b->gid;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

void berth__flist_sort_ids(struct berth_flist_dec *d)
{
	uint32_t i, n = 0;

	if (d->nids == d->nsorted)
		return;
	qsort(d->ids, d->nids, sizeof(*d->ids), cmp_id);
	/* Keep the latest name of each id. */
	for (i = 0; i < d->nids; i++) {
		if (i + 1 < d->nids && d->ids[i + 1].gid == d->ids[i].gid &&
		    d->ids[i + 1].id == d->ids[i].id)
			continue;
		d->ids[n++] = d->ids[i];
	}
	d->nids = d->nsorted = n;
}

/* The id lists (§7.6): one (id, name) item or the end of one list. */
int berth__flist_unit_id(void *ctx, struct berth_proto_in *v)
{
	struct berth_flist_dec *d = ctx;
	bool gid = d->state == ST_GIDS;
	const uint8_t *name;
	uint8_t len;
	int32_t id;

	GET(d->old ? berth_proto_get_int32(v, &id)
		   : berth_proto_get_varint(v, &id));
	if (id == 0) {
		if (d->cfg.compat & BERTH_CF_ID0_NAMES) {
			GET(berth__flist_get_name8(v, &name, &len));
			TRY(berth__flist_set_id(d, gid, 0, name, len));
		}
		return BERTH_PROTO_DONE;
	}
	GET(berth__flist_get_name8(v, &name, &len));
	TRY(berth__flist_set_id(d, gid, (uint32_t)id, name, len));
	return 2; /* one item */
}

static const char *id_name(const struct berth_flist_dec *d, bool gid,
			   uint32_t id)
{
	const struct id_name *hit = NULL;
	uint32_t lo = 0, hi = d->nsorted, i;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct id_name *m = &d->ids[mid];

		if (m->gid == gid && m->id == id) {
			hit = m;
			break;
		}
		if (m->gid < gid || (m->gid == gid && m->id < id))
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Names added since the last sort (mid-list) win. */
	for (i = d->nids; i > d->nsorted; i--)
		if (d->ids[i - 1].id == id && d->ids[i - 1].gid == gid)
			return d->ids_pool.p + d->ids[i - 1].off;
	return hit ? d->ids_pool.p + hit->off : NULL;
}

const char *berth_flist_dec_user_name(const struct berth_flist_dec *d,
				      uint32_t uid)
{
	return id_name(d, false, uid);
}

const char *berth_flist_dec_group_name(const struct berth_flist_dec *d,
				       uint32_t gid)
{
	return id_name(d, true, gid);
}

const struct berth_xattr_set *berth_flist_dec_xattrs(
	const struct berth_flist_dec *d, int32_t idx)
{
	if (idx < 0 || (uint32_t)idx >= d->nxsets)
		return NULL;
	return &d->xsets[idx];
}
