/* SPDX-License-Identifier: MIT */
/*
 * ACL fields of file-list entries (§7.8, from the sources: no capture):
 * an access ACL for every non-symlink, plus a default ACL for directories,
 * each either a reference to an earlier ACL of its kind or a literal.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "protocol/proto_int.h"

#define ACL_OBJS                                                         \
	(BERTH_ACL_USER_OBJ | BERTH_ACL_GROUP_OBJ | BERTH_ACL_MASK_OBJ | \
	 BERTH_ACL_OTHER_OBJ)

/* Walk one literal ACL; with @acl (commit) also fill it. */
static int walk_acl(struct berth_flist_dec *d, struct berth_proto_in *v,
		    struct berth_acl *acl)
{
	uint32_t *objs[4];
	int32_t x, count, id;
	uint8_t flags, len;
	const uint8_t *name;

	GET(berth_proto_get_u8(v, &flags));
	if (flags & ~(ACL_OBJS | BERTH_ACL_NAME_LIST))
		return -BERTH_EPROTO;
	if (acl) {
		acl->flags = flags;
		objs[0] = &acl->user_obj;
		objs[1] = &acl->group_obj;
		objs[2] = &acl->mask_obj;
		objs[3] = &acl->other_obj;
	}
	for (int i = 0; i < 4; i++) {
		if (!(flags & (1u << i)))
			continue;
		GET(berth_proto_get_varint(v, &x));
		if (x < 0 || x > 7)
			return -BERTH_EPROTO;
		if (acl)
			*objs[i] = (uint32_t)x;
	}
	if (!(flags & BERTH_ACL_NAME_LIST))
		return BERTH_PROTO_DONE;
	GET(berth_proto_get_varint(v, &count));
	if (count < 0)
		return -BERTH_EPROTO;
	if ((uint32_t)count > d->cfg.max_acl_entries)
		return -BERTH_ELIMIT;
	if (acl) {
		acl->count = (uint32_t)count;
		size_t need = sizeof(*acl) + (size_t)count * sizeof(*acl->idas);

		if (d->attr_bytes + need > d->cfg.max_attr_bytes)
			return -BERTH_ELIMIT;
		d->attr_bytes += need;
		acl->idas = count ? calloc((size_t)count, sizeof(*acl->idas))
				  : NULL;
		if (count && !acl->idas)
			return -ENOMEM;
	}
	for (int32_t i = 0; i < count; i++) {
		GET(berth_proto_get_varint(v, &id));
		/* perms << 2 | 2 (user) | 1 (name follows) */
		GET(berth_proto_get_varint(v, &x));
		if (x < 0 || (x >> 2) > 7)
			return -BERTH_EPROTO;
		if (x & 1)
			GET(berth__flist_get_name8(v, &name, &len));
		if (!acl)
			continue;
		acl->idas[i].id = (uint32_t)id;
		acl->idas[i].perms = (uint32_t)x >> 2;
		acl->idas[i].is_user = x & 2;
		if (x & 1)
			TRY(berth__flist_set_id(d, !(x & 2), (uint32_t)id, name,
						len));
	}
	return BERTH_PROTO_DONE;
}

static int parse_one(struct berth_flist_dec *d, struct berth_proto_in *v,
		     int kind)
{
	struct pend *p = &d->pend;
	const uint8_t *start;
	int32_t ndx;

	GET(berth_proto_get_varint(v, &ndx));
	if (ndx < 0 || (uint32_t)ndx > d->nacls[kind])
		return -BERTH_EPROTO;
	if (ndx) {
		p->x.acl[kind] = ndx - 1;
		return BERTH_PROTO_DONE;
	}
	if (d->nacls[kind] >= d->cfg.max_acls)
		return -BERTH_ELIMIT;
	start = v->ptr + v->pos;
	GET(walk_acl(d, v, NULL));
	p->acl_lit[kind] = start;
	p->acl_len[kind] = (size_t)(v->ptr + v->pos - start);
	p->x.acl[kind] = (int32_t)d->nacls[kind];
	return BERTH_PROTO_DONE;
}

int berth__flist_parse_acls(struct berth_flist_dec *d, struct berth_proto_in *v,
			    uint32_t type)
{
	if (type == S_IFLNK)
		return BERTH_PROTO_DONE;
	GET(parse_one(d, v, 0));
	if (type == S_IFDIR)
		GET(parse_one(d, v, 1));
	return BERTH_PROTO_DONE;
}

int berth__flist_commit_acls(struct berth_flist_dec *d)
{
	struct pend *p = &d->pend;

	for (int k = 0; k < 2; k++) {
		struct berth_proto_in v = {p->acl_lit[k], p->acl_len[k], 0};
		struct berth_acl *acl;
		int r;

		if (!p->acl_lit[k])
			continue;
		if (d->nacls[k] == d->acls_cap[k]) {
			uint32_t cap = d->acls_cap[k] ? d->acls_cap[k] * 2 : 16;
			void *n = realloc(d->acls[k],
					  sizeof(*d->acls[k]) * cap);

			if (!n)
				return -ENOMEM;
			d->acls[k] = n;
			d->acls_cap[k] = cap;
		}
		acl = &d->acls[k][d->nacls[k]];
		memset(acl, 0, sizeof(*acl));
		r = walk_acl(d, &v, acl);
		if (r != BERTH_PROTO_DONE) {
			free(acl->idas);
			return r < 0 ? r : -EINVAL;
		}
		acl->mode = p->f.mode;
		d->nacls[k]++;
	}
	return 0;
}

void berth__flist_free_acls(struct berth_flist_dec *d)
{
	for (int k = 0; k < 2; k++) {
		for (uint32_t i = 0; i < d->nacls[k]; i++)
			free(d->acls[k][i].idas);
		free(d->acls[k]);
		d->acls[k] = NULL;
		d->nacls[k] = 0;
	}
}

const struct berth_acl *berth_flist_dec_acl(const struct berth_flist_dec *d,
					    bool dflt, int32_t idx)
{
	int k = dflt ? 1 : 0;

	if (idx < 0 || (uint32_t)idx >= d->nacls[k])
		return NULL;
	return &d->acls[k][idx];
}
