/* SPDX-License-Identifier: MIT */
/*
 * File-list decoder (§7): entries relative to the previous one, end marker
 * with io_error, uid/gid name lists, xattr sets, incremental sub-lists.
 * Each entry is parsed as one unit (berth__stash_run), so a partial entry
 * never changes the session state.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "protocol/proto_int.h"

/* berth_flist_dec.dir_flags */
#define DIR_CONTENT 1u /* its contents are part of the transfer */
#define DIR_LISTED 2u /* its list has come (the initial list: ".") */

void berth_flist_config_init(struct berth_flist_config *cfg,
			     const struct berth_opts *o,
			     const struct berth_hs_result *hs)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->protocol = hs->protocol;
	cfg->compat = hs->compat;
	cfg->links = o->links;
	cfg->owner = o->owner;
	cfg->group = o->group;
	cfg->devices = o->devices;
	cfg->specials = o->specials;
	cfg->hard_links = o->hard_links > 0;
	cfg->checksum = o->checksum;
	cfg->atimes = o->atimes > 0;
	cfg->crtimes = o->crtimes;
	cfg->acls = o->acls;
	cfg->xattrs = o->xattrs;
	cfg->numeric_ids = o->numeric_ids;
	cfg->relative = o->relative;
	cfg->recursive = o->recursive;
	cfg->flist_csum_len = (int)berth_csum_digest_len(hs->file_csum);
}

int berth_flist_dec_create(struct berth_flist_dec **dp,
			   const struct berth_flist_config *cfg)
{
	struct berth_flist_dec *d;
	struct berth_flist_config c = *cfg;

	*dp = NULL;
	if (c.protocol < BERTH_PROTO_MIN || c.protocol > BERTH_PROTO_MAX)
		return -EINVAL;
	if (c.checksum && (c.flist_csum_len < 1 || c.flist_csum_len > 64))
		return -EINVAL;
	/* Protocols < 30 have no ACLs, xattrs, atimes or crtimes. */
	if (c.protocol < 30 && (c.acls || c.xattrs || c.atimes || c.crtimes))
		return -EINVAL;
	if (!c.max_files)
		c.max_files = 1u << 22;
	if (!c.max_name)
		c.max_name = 4095;
	if (!c.max_link)
		c.max_link = 4095;
	if (!c.max_ids)
		c.max_ids = 65536;
	if (!c.max_xattr_sets)
		c.max_xattr_sets = 65536;
	if (!c.max_xattr_count)
		c.max_xattr_count = 1024;
	if (!c.max_xattr_bytes)
		c.max_xattr_bytes = 65536;
	if (!c.max_acls)
		c.max_acls = 65536;
	if (!c.max_acl_entries)
		c.max_acl_entries = 1024;
	if (!c.max_list_bytes)
		c.max_list_bytes = 1ull << 30;
	if (!c.max_attr_bytes)
		c.max_attr_bytes = 64ull << 20;
	if (c.max_name > 4095 || c.max_link > 65535 ||
	    c.max_xattr_bytes > (1u << 24) || c.max_acl_entries > 65536 ||
	    c.max_files > (1u << 30))
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = c;
	d->inc = c.compat & BERTH_CF_INC_RECURSE;
	d->varint_flags = c.compat & BERTH_CF_VARINT_FLIST_FLAGS;
	d->old = c.protocol < 30;
	d->safe_flist = c.protocol >= 31 || (c.compat & BERTH_CF_SAFE_FLIST);
	/* The largest entry: fixed fields, name suffix, link, two id names,
	 * checksum and one literal xattr set. */
	d->stash.cap = 128 + c.max_name + c.max_link + 2 * 256 + 64 +
		       (c.xattrs ? c.max_xattr_bytes : 0) +
		       (c.acls ? 2 * (40 + 270 * (size_t)c.max_acl_entries)
			       : 0);
	d->stash.buf = malloc(d->stash.cap);
	d->lastname = malloc(c.max_name + 1);
	if (!d->stash.buf || !d->lastname) {
		berth_flist_dec_free(d);
		return -ENOMEM;
	}
	d->lastname[0] = '\0';
	d->state = ST_IDLE;
	*dp = d;
	return 0;
}

static void free_cur(struct berth_flist_dec *d)
{
	berth_flist_free(d->cur);
	d->cur = NULL;
	d->list_bytes = 0;
	d->cap = 0;
}

void berth_flist_dec_free(struct berth_flist_dec *d)
{
	if (!d)
		return;
	free_cur(d);
	free(d->stash.buf);
	free(d->lastname);
	free(d->dirtab);
	for (uint32_t i = 0; i < d->ndirs; i++)
		free(d->dirs[i]);
	free(d->dirs);
	free(d->dir_flags);
	free(d->idev);
	free(d->ids);
	free(d->ids_pool.p);
	berth__flist_free_acls(d);
	for (uint32_t i = 0; i < d->nxsets; i++)
		free(d->xsets[i].items);
	free(d->xsets);
	free(d);
}

void berth_flist_free(struct berth_flist *fl)
{
	if (!fl)
		return;
	free(fl->files);
	free(fl->tx_of);
	free(fl->hlink);
	berth__flist_free_blks(fl->blks);
	free(fl);
}

int berth_flist_dec_begin(struct berth_flist_dec *d, int32_t dir_k)
{
	if (d->state != ST_IDLE && d->state != ST_DONE)
		return -EINVAL;
	if (d->cur)
		return -EINVAL; /* previous list not taken */
	if (dir_k >= 0) {
		if (!d->inc || !d->started)
			return -BERTH_EPROTO;
		/* One list per content directory, at most (§7.9). */
		if ((uint32_t)dir_k >= d->ndirs ||
		    (d->dir_flags[dir_k] & (DIR_CONTENT | DIR_LISTED)) !=
			    DIR_CONTENT)
			return -BERTH_EPROTO;
		d->dir_flags[dir_k] |= DIR_LISTED;
		d->parent = d->dirs[dir_k];
	} else {
		if (d->started)
			return -BERTH_EPROTO;
		d->parent = NULL;
		d->next_start = d->inc ? 1 : 0;
	}
	if (!d->inc && d->started)
		return -BERTH_EPROTO;
	d->cur = calloc(1, sizeof(*d->cur));
	if (!d->cur)
		return -ENOMEM;
	berth__flist_dirs_reset(d);
	d->cur->ndx_start = d->next_start;
	d->cur->dir_k = dir_k;
	d->started = true;
	d->list_bytes = 0;
	d->state = ST_ENTRIES;
	return 0;
}

bool berth__flist_mode_ok(uint32_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		return true;
	}
	return false;
}

static int parse_end(struct berth_flist_dec *d, struct berth_proto_in *v)
{
	GET(berth_proto_get_varint(v, &d->pend.io_error));
	d->pend.end = true;
	return BERTH_PROTO_DONE;
}

/*
 * The entry's flags (§7.2), or the end of the list: then d->pend.end is
 * set (and the io_error read) and the entry has no more fields.
 */
static int entry_flags(struct berth_flist_dec *d, struct berth_proto_in *v,
		       uint32_t *xp)
{
	uint32_t x;
	int32_t i32;
	uint8_t b;

	if (d->varint_flags) {
		GET(berth_proto_get_varint(v, &i32));
		if (i32 == 0)
			return parse_end(d, v);
		x = (uint32_t)i32;
	} else {
		GET(berth_proto_get_u8(v, &b));
		if (b == 0) {
			d->pend.end = true;
			return BERTH_PROTO_DONE;
		}
		x = b;
		/* Protocol 27 has one flag byte (bit 2: same rdev). */
		if ((x & BERTH_XMIT_EXTENDED_FLAGS) && d->cfg.protocol >= 28) {
			GET(berth_proto_get_u8(v, &b));
			x |= (uint32_t)b << 8;
		}
		if (x ==
		    (BERTH_XMIT_EXTENDED_FLAGS | BERTH_XMIT_IO_ERROR_ENDLIST)) {
			if (!d->safe_flist)
				return -BERTH_EPROTO;
			return parse_end(d, v);
		}
	}
	*xp = x;
	return BERTH_PROTO_DONE;
}

/* Name: shared prefix + suffix (§7.3 rows 1-3). */
static int entry_name(struct berth_flist_dec *d, struct berth_proto_in *v,
		      uint32_t x)
{
	struct pend *p = &d->pend;
	int32_t i32;
	uint8_t b;

	if (x & BERTH_XMIT_SAME_NAME) {
		GET(berth_proto_get_u8(v, &b));
		p->l1 = b;
	}
	if (x & BERTH_XMIT_LONG_NAME) {
		GET(d->old ? berth_proto_get_int32(v, &i32)
			   : berth_proto_get_varint(v, &i32));
		if (i32 < 0)
			return -BERTH_EPROTO;
		p->l2 = (uint32_t)i32;
	} else {
		GET(berth_proto_get_u8(v, &b));
		p->l2 = b;
	}
	if (p->l1 > d->lastname_len)
		return -BERTH_EPROTO;
	if ((uint64_t)p->l1 + p->l2 > d->cfg.max_name)
		return -BERTH_EPATH;
	GET(berth__flist_get_bytes(v, p->l2, &p->suffix));
	return BERTH_PROTO_DONE;
}

/* An abbreviated hard link: its attributes are those of @first. */
static void hlink_copy_first(struct pend *p, const struct berth_file *first)
{
	struct berth_file *f = &p->f;
	struct berth_file_ext x;

	f->size = first->size;
	f->mtime = first->mtime;
	f->nsec = first->nsec;
	f->mode = first->mode;
	f->uid = first->uid;
	f->gid = first->gid;
	/* Its times, rdev, link target and sum; xattrs and ACLs are the
	 * entry's own. */
	x = *first->ext;
	x.xattr_set = p->x.xattr_set;
	x.acl[0] = p->x.acl[0];
	x.acl[1] = p->x.acl[1];
	p->x = x;
	f->flags = (first->flags & (BERTH_FILE_HAS_RDEV | BERTH_FILE_HAS_ATIME |
				    BERTH_FILE_HAS_CRTIME)) |
		   BERTH_FILE_ABBREV;
	if (first->flags & BERTH_FILE_HAS_RDEV) {
		p->rdev_field = true;
		p->major = first->ext->rdev_major;
	}
}

/*
 * Hard-link reference (row 4).  *@abbrev is set when it names the first of
 * its group in this list: the entry then sends no attributes of its own.
 */
static int entry_hlink(struct berth_flist_dec *d, struct berth_proto_in *v,
		       uint32_t x, bool *abbrev)
{
	const struct berth_flist_config *c = &d->cfg;
	int32_t i32;

	if (c->hard_links && (x & BERTH_XMIT_HLINKED) &&
	    !(x & BERTH_XMIT_HLINK_FIRST)) {
		GET(berth_proto_get_varint(v, &i32));
		if (i32 < 0)
			return -BERTH_EPROTO;
		if (i32 >= d->cur->ndx_start) {
			uint32_t k = (uint32_t)(i32 - d->cur->ndx_start);
			const struct berth_file *first;

			if (k >= d->cur->count)
				return -BERTH_EPROTO;
			first = &d->cur->files[k];
			if (!(first->flags & BERTH_FILE_HLINK_FIRST) ||
			    S_ISDIR(first->mode))
				return -BERTH_EPROTO;
			hlink_copy_first(&d->pend, first);
			*abbrev = true;
		}
		d->pend.hlink = i32;
	} else if (c->hard_links && (x & BERTH_XMIT_HLINKED)) {
		d->pend.hlink = 0; /* first of its group: resolved on finish */
	}
	return BERTH_PROTO_DONE;
}

/* Size, mtime with its nanoseconds, crtime. */
static int entry_size_time(struct berth_flist_dec *d, struct berth_proto_in *v,
			   uint32_t x)
{
	const struct berth_flist_config *c = &d->cfg;
	struct berth_file *f = &d->pend.f;
	int32_t i32;

	GET(berth_proto_get_varlong(v, 3, &f->size));
	if (f->size < 0)
		return -BERTH_EPROTO;
	if (!(x & BERTH_XMIT_SAME_TIME))
		GET(berth_proto_get_varlong(v, 4, &f->mtime));
	else
		f->mtime = d->mtime;
	if ((x & BERTH_XMIT_MOD_NSEC) && c->protocol >= 31) {
		GET(berth_proto_get_varint(v, &i32));
		if (i32 < 0 || i32 > 999999999)
			return -BERTH_EPROTO;
		f->nsec = (uint32_t)i32;
	}
	if (c->crtimes) {
		if (!(x & BERTH_XMIT_CRTIME_EQ_MTIME))
			GET(berth_proto_get_varlong(v, 4, &d->pend.x.crtime));
		else
			d->pend.x.crtime = f->mtime;
		f->flags |= BERTH_FILE_HAS_CRTIME;
	}
	return BERTH_PROTO_DONE;
}

/* Mode (a file type we know), then the atime of all but directories. */
static int entry_mode(struct berth_flist_dec *d, struct berth_proto_in *v,
		      uint32_t x)
{
	struct berth_file *f = &d->pend.f;
	int32_t i32;

	if (!(x & BERTH_XMIT_SAME_MODE)) {
		GET(berth_proto_get_int32(v, &i32));
		f->mode = (uint16_t)i32; /* type and 07777 */
	} else {
		f->mode = d->mode;
	}
	if (!berth__flist_mode_ok(f->mode))
		return -BERTH_EPROTO;
	if (d->cfg.atimes && (f->mode & S_IFMT) != S_IFDIR) {
		if (!(x & BERTH_XMIT_SAME_ATIME))
			GET(berth_proto_get_varlong(v, 4, &d->pend.x.atime));
		else
			d->pend.x.atime = d->atime;
		f->flags |= BERTH_FILE_HAS_ATIME;
	}
	return BERTH_PROTO_DONE;
}

/* uid and gid, each with its name when one follows. */
static int entry_ids(struct berth_flist_dec *d, struct berth_proto_in *v,
		     uint32_t x)
{
	const struct berth_flist_config *c = &d->cfg;
	struct pend *p = &d->pend;
	struct berth_file *f = &p->f;
	int32_t i32;

	f->uid = d->uid;
	if (c->owner && !(x & BERTH_XMIT_SAME_UID)) {
		GET(berth_proto_get_varint(v, &i32));
		f->uid = (uint32_t)i32;
		if (x & BERTH_XMIT_USER_NAME_FOLLOWS) {
			GET(berth__flist_get_name8(v, &p->uname,
						   &p->uname_len));
			p->set_uname = true;
		}
	}
	f->gid = d->gid;
	if (c->group && !(x & BERTH_XMIT_SAME_GID)) {
		GET(berth_proto_get_varint(v, &i32));
		f->gid = (uint32_t)i32;
		if (x & BERTH_XMIT_GROUP_NAME_FOLLOWS) {
			GET(berth__flist_get_name8(v, &p->gname,
						   &p->gname_len));
			p->set_gname = true;
		}
	}
	return BERTH_PROTO_DONE;
}

/* rdev of devices, and of specials before protocol 31 (sent, unused). */
static int entry_rdev(struct berth_flist_dec *d, struct berth_proto_in *v,
		      uint32_t x, uint32_t type)
{
	const struct berth_flist_config *c = &d->cfg;
	struct pend *p = &d->pend;
	struct berth_file *f = &p->f;
	int32_t i32;

	if ((c->devices && (type == S_IFCHR || type == S_IFBLK)) ||
	    (c->specials && (type == S_IFIFO || type == S_IFSOCK) &&
	     c->protocol < 31)) {
		p->rdev_field = true;
		p->major = d->rdev_major;
		if (!(x & BERTH_XMIT_SAME_RDEV_MAJOR)) {
			GET(berth_proto_get_varint(v, &i32));
			p->major = (uint32_t)i32;
		}
		p->x.rdev_major = p->major;
		GET(berth_proto_get_varint(v, &i32));
		p->x.rdev_minor = (uint32_t)i32;
		if (type == S_IFCHR || type == S_IFBLK)
			f->flags |= BERTH_FILE_HAS_RDEV;
		else
			p->x.rdev_major = p->x.rdev_minor = 0;
	}
	return BERTH_PROTO_DONE;
}

int berth__flist_entry_link(struct berth_flist_dec *d, struct berth_proto_in *v)
{
	struct pend *p = &d->pend;
	int32_t i32;

	GET(d->old ? berth_proto_get_int32(v, &i32)
		   : berth_proto_get_varint(v, &i32));
	if (i32 <= 0)
		return -BERTH_EPROTO;
	if ((uint32_t)i32 > d->cfg.max_link)
		return -BERTH_ELIMIT;
	p->x.link_len = (uint32_t)i32;
	GET(berth__flist_get_bytes(v, p->x.link_len, &p->link));
	if (memchr(p->link, '\0', p->x.link_len))
		return -BERTH_EPROTO;
	return BERTH_PROTO_DONE;
}

/* The attributes of an entry that is not an abbreviated hard link. */
static int entry_attrs(struct berth_flist_dec *d, struct berth_proto_in *v,
		       uint32_t x)
{
	const struct berth_flist_config *c = &d->cfg;
	struct pend *p = &d->pend;
	uint32_t type;

	GET(entry_size_time(d, v, x));
	GET(entry_mode(d, v, x));
	type = p->f.mode & S_IFMT;
	GET(entry_ids(d, v, x));
	GET(entry_rdev(d, v, x, type));
	if (c->links && type == S_IFLNK)
		GET(berth__flist_entry_link(d, v));
	if (c->checksum && type == S_IFREG)
		GET(berth__flist_get_bytes(v, (size_t)c->flist_csum_len,
					   &p->sum));
	return BERTH_PROTO_DONE;
}

/* One entry (§7.2-7.9) into d->pend, or the end of the list. */
static int unit_entry(void *ctx, struct berth_proto_in *v)
{
	struct berth_flist_dec *d = ctx;
	const struct berth_flist_config *c = &d->cfg;
	struct pend *p = &d->pend;
	struct berth_file *f = &p->f;
	bool abbrev = false;
	uint32_t x;

	memset(p, 0, sizeof(*p));
	p->x = berth_file_ext_none;
	p->hlink = -1;
	GET(entry_flags(d, v, &x));
	if (p->end)
		return BERTH_PROTO_DONE;
	p->xflags = x;
	GET(entry_name(d, v, x));
	if (d->old)
		return berth__flist_old_attrs(d, v, x);
	GET(entry_hlink(d, v, x, &abbrev));
	if (!abbrev)
		GET(entry_attrs(d, v, x));
	if (c->acls)
		GET(berth__flist_parse_acls(d, v, f->mode & S_IFMT));
	if (c->xattrs)
		GET(berth__flist_parse_xattrs(d, v));
	return BERTH_PROTO_DONE;
}

/*
 * --iconv (cfg.conv): the complete name @wire, then the link target, as
 * the caller converts them; the checks that follow see the converted
 * bytes.  An entry the caller cannot convert stays (the peer's indices
 * count it), inactive with an empty name: *@dead.  The prefix of the next
 * name stays the wire name (d->lastname).
 */
static int convert_entry(struct berth_flist_dec *d, const char *wire,
			 const char **name, uint32_t *name_len,
			 const char **link, bool *dead)
{
	const struct berth_flist_config *c = &d->cfg;
	struct pend *p = &d->pend;
	size_t n = 0;
	int r;

	r = c->conv(c->conv_arg, BERTH_FLIST_CONV_NAME, NULL, wire,
		    p->l1 + p->l2, name, &n);
	if (r < 0)
		return r;
	*dead = r != 0;
	*name_len = *dead ? 0 : (uint32_t)n;
	if (*dead)
		*name = "";
	if (!p->link || (p->f.flags & BERTH_FILE_ABBREV))
		return 0;
	r = c->conv(c->conv_arg, BERTH_FLIST_CONV_LINK, *name,
		    (const char *)p->link, p->x.link_len, link, &n);
	if (r < 0)
		return r;
	if (r != 0) {
		*dead = true;
		*name = "";
		*name_len = 0;
		*link = NULL;
		p->x.link_len = 0;
		return 0;
	}
	if (n > c->max_link)
		return -BERTH_ELIMIT;
	if (n == 0 || memchr(*link, '\0', n))
		return -BERTH_EPROTO;
	p->x.link_len = (uint32_t)n;
	return 0;
}

/* A copy of @len bytes (and a NUL when @nul) in the list's blocks. */
static int list_copy(struct berth_flist_dec *d, const void *src, size_t len,
		     bool nul, const void **out)
{
	char *c;

	/* Counted with a NUL either way, as the limit always was. */
	if (d->list_bytes + len + 1 > d->cfg.max_list_bytes)
		return -BERTH_ELIMIT;
	c = berth__flist_alloc(d->cur, len + (nul ? 1 : 0), false);
	if (!c)
		return -ENOMEM;
	memcpy(c, src, len);
	if (nul)
		c[len] = '\0';
	d->list_bytes += len + 1;
	*out = c;
	return 0;
}

/*
 * f->base, and f->ext: the shared record of its directory (@name's part
 * up to its last '/'), or a copy of d->pend.x with that directory.
 */
static int commit_name_ext(struct berth_flist_dec *d, struct berth_file *f,
			   const char *name, uint32_t len)
{
	const struct berth_file_ext *x = &d->pend.x, *dir;
	struct berth_file_ext *c;
	const void *copy;
	uint32_t dl = len;

	while (dl && name[dl - 1] != '/')
		dl--;
	TRY(berth__flist_dir(d, name, dl, &dir));
	TRY(list_copy(d, name + dl, len - dl, true, &copy));
	f->base = copy;
	f->ext = dir;
	if (!x->link && !x->sum && !x->atime && !x->crtime && !x->link_len &&
	    !x->rdev_major && !x->rdev_minor && x->xattr_set == -1 &&
	    x->acl[0] == -1 && x->acl[1] == -1)
		return 0;
	c = berth__flist_alloc(d->cur, sizeof(*c), true);
	if (!c)
		return -ENOMEM;
	*c = *x;
	c->dir = dir->dir;
	c->dir_len = dir->dir_len;
	f->ext = c;
	return 0;
}

/*
 * Room for the list's next entry, and its hard-link reference @hlink
 * stored: the list's hlink[] is made by the first entry with one.
 */
static int list_slot(struct berth_flist_dec *d, int32_t hlink)
{
	struct berth_flist *fl = d->cur;

	if (fl->count == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 64;
		void *n = realloc(fl->files, sizeof(*fl->files) * cap);

		if (!n)
			return -ENOMEM;
		fl->files = n;
		if (fl->hlink) {
			n = realloc(fl->hlink, sizeof(*fl->hlink) * cap);
			if (!n)
				return -ENOMEM;
			fl->hlink = n;
		}
		d->cap = cap;
	}
	if (hlink != -1 && !fl->hlink) {
		fl->hlink = malloc(sizeof(*fl->hlink) * d->cap);
		if (!fl->hlink)
			return -ENOMEM;
		for (uint32_t i = 0; i < fl->count; i++)
			fl->hlink[i] = -1;
	}
	if (fl->hlink)
		fl->hlink[fl->count] = hlink;
	return 0;
}

/* The wire flags an entry keeps (BERTH_FILE_TOP_DIR...). */
static uint16_t kept_xflags(uint32_t x, uint32_t type)
{
	uint16_t k = 0;

	if (x & BERTH_XMIT_TOP_DIR)
		k |= BERTH_FILE_TOP_DIR;
	if ((x & BERTH_XMIT_NO_CONTENT_DIR) && type == S_IFDIR)
		k |= BERTH_FILE_NO_CONTENT_DIR;
	if (x & BERTH_XMIT_HLINKED)
		k |= BERTH_FILE_HLINKED;
	if (x & BERTH_XMIT_HLINK_FIRST)
		k |= BERTH_FILE_HLINK_FIRST;
	return k;
}

static int commit_entry(struct berth_flist_dec *d)
{
	struct pend *p = &d->pend;
	struct berth_flist *fl = d->cur;
	struct berth_file *f;
	const void *copy;
	char *name = d->lastname;
	const char *nm = name, *link = (const char *)p->link;
	uint32_t nlen = p->l1 + p->l2, type = p->f.mode & S_IFMT;
	bool dead = false;

	if (d->total_files >= d->cfg.max_files)
		return -BERTH_ELIMIT;
	/* The name: validated before any state changes. */
	memcpy(name + p->l1, p->suffix, p->l2);
	if (d->cfg.conv)
		TRY(convert_entry(d, name, &nm, &nlen, &link, &dead));
	if (!dead) {
		/* -R: a leading '/' (an absolute source) goes after sorting. */
		uint32_t lead = 0;

		while (d->cfg.relative && lead < nlen && nm[lead] == '/')
			lead++;
		TRY(berth_flist_check_name(nm + lead, nlen - lead,
					   d->cfg.max_name));
		if (lead && nlen - lead == 1 && nm[lead] == '.')
			return -BERTH_EPATH;
		if (nlen == 1 && nm[0] == '.' && type != S_IFDIR)
			return -BERTH_EPROTO;
	}
	if (d->old)
		TRY(berth__flist_old_commit(
			d, fl->ndx_start + (int32_t)fl->count, name));
	TRY(list_slot(d, p->hlink));
	f = &fl->files[fl->count];
	*f = p->f;
	f->flags |= kept_xflags(p->xflags, type);
	if (dead)
		f->flags |= BERTH_FILE_INACTIVE;
	if (p->f.flags & BERTH_FILE_ABBREV) {
		/* p->x shares the group's first member's link target and
		 * sum (hlink_copy_first); its target could not be
		 * converted: no target. */
		if (d->cfg.conv && d->cfg.links && type == S_IFLNK &&
		    !p->x.link)
			f->flags |= BERTH_FILE_INACTIVE;
	} else {
		if (link) {
			TRY(list_copy(d, link, p->x.link_len, true, &copy));
			p->x.link = copy;
		}
		if (p->sum) {
			TRY(list_copy(d, p->sum, (size_t)d->cfg.flist_csum_len,
				      false, &copy));
			p->x.sum = copy;
		}
	}
	TRY(commit_name_ext(d, f, nm, nlen));
	if (p->set_uname)
		TRY(berth__flist_set_id(d, false, f->uid, p->uname,
					p->uname_len));
	if (p->set_gname)
		TRY(berth__flist_set_id(d, true, f->gid, p->gname,
					p->gname_len));
	if (p->xset)
		TRY(berth__flist_commit_xset(d));
	TRY(berth__flist_commit_acls(d));
	/* Update the "previous entry" state (also from abbreviated ones). */
	d->lastname_len = p->l1 + p->l2;
	name[d->lastname_len] = '\0';
	d->mtime = f->mtime;
	d->mode = f->mode;
	d->uid = f->uid;
	d->gid = f->gid;
	if (f->flags & BERTH_FILE_HAS_ATIME)
		d->atime = p->x.atime;
	if (p->rdev_field) {
		d->rdev_major = p->major;
		d->rdev_minor = p->minor;
	}
	fl->count++;
	d->total_files++;
	return 0;
}

static int finish_list(struct berth_flist_dec *d)
{
	struct berth_flist *fl = d->cur;
	uint32_t i;

	d->cap = 0;
	if (d->old)
		berth__flist_old_finish(d);
	TRY(berth__flist_finish(fl, d->parent, d->cfg.protocol, d->cfg.relative,
				d->cfg.conv || d->cfg.tx_order));
	berth__flist_sort_ids(d);
	if (d->inc) {
		/* Directory list: this list's directories in sorted order. */
		for (i = 0; i < fl->count; i++) {
			char *copy, path[BERTH_PATH_BUF];

			if (!S_ISDIR(fl->files[i].mode))
				continue;
			if (d->ndirs == d->dirs_cap) {
				uint32_t cap = d->dirs_cap ? d->dirs_cap * 2
							   : 64;
				void *n = realloc(d->dirs,
						  sizeof(*d->dirs) * cap);

				if (!n)
					return -ENOMEM;
				d->dirs = n;
				n = realloc(d->dir_flags, cap);
				if (!n)
					return -ENOMEM;
				d->dir_flags = n;
				d->dirs_cap = cap;
			}
			copy = strdup(berth_file_path(&fl->files[i], path));
			if (!copy)
				return -ENOMEM;
			/* "." came with its contents (the initial list). */
			d->dir_flags[d->ndirs] =
				(fl->files[i].flags & BERTH_FILE_NO_CONTENT_DIR
					 ? 0
					 : DIR_CONTENT) |
				(!d->parent && !strcmp(copy, ".") ? DIR_LISTED
								  : 0);
			d->dirs[d->ndirs++] = copy;
		}
	}
	d->next_start = fl->ndx_start + (int32_t)fl->count + (d->inc ? 1 : 0);
	d->state = ST_DONE;
	return BERTH_PROTO_DONE;
}

static int unit_io_error(void *ctx, struct berth_proto_in *v)
{
	struct berth_flist_dec *d = ctx;

	GET(berth_proto_get_int32(v, &d->cur->io_error));
	return BERTH_PROTO_DONE;
}

int berth_flist_decode(struct berth_flist_dec *d, struct berth_proto_in *in)
{
	int r;

	for (;;) {
		switch (d->state) {
		case ST_ENTRIES:
			r = berth__stash_run(&d->stash, in, unit_entry, d);
			if (r != BERTH_PROTO_DONE)
				return r;
			if (!d->pend.end) {
				TRY(commit_entry(d));
				break;
			}
			d->cur->io_error = d->pend.io_error;
			if (!d->inc && !d->cfg.numeric_ids &&
			    (d->cfg.owner || d->cfg.group || d->cfg.acls))
				d->state = d->cfg.owner || d->cfg.acls
						   ? ST_UIDS
						   : ST_GIDS;
			else if (d->old)
				d->state = ST_IOERR;
			else
				return finish_list(d);
			break;
		case ST_IOERR:
			/* Before 30 the io_error follows the id lists. */
			r = berth__stash_run(&d->stash, in, unit_io_error, d);
			if (r != BERTH_PROTO_DONE)
				return r;
			return finish_list(d);
		case ST_UIDS:
		case ST_GIDS:
			r = berth__stash_run(&d->stash, in,
					     berth__flist_unit_id, d);
			if (r == BERTH_PROTO_DONE) {
				if (d->state == ST_UIDS &&
				    (d->cfg.group || d->cfg.acls))
					d->state = ST_GIDS;
				else if (d->old)
					d->state = ST_IOERR;
				else
					return finish_list(d);
			} else if (r != 2) {
				return r;
			}
			break;
		default:
			return -EINVAL;
		}
	}
}

struct berth_flist *berth_flist_dec_take(struct berth_flist_dec *d)
{
	struct berth_flist *fl = d->state == ST_DONE ? d->cur : NULL;

	if (fl)
		d->cur = NULL;
	return fl;
}

uint32_t berth_flist_dec_ndirs(const struct berth_flist_dec *d)
{
	return d->ndirs;
}
