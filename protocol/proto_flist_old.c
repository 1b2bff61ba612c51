/* SPDX-License-Identifier: MIT */
/*
 * File-list entries of protocols 27..29 (rsync 2.6.x and 3.x clients with
 * --protocol below 30): the fields after the name in their fixed-width
 * form, and hard links given as (device, inode) pairs instead of
 * references to an earlier entry.  Learnt from rsync's documentation and
 * its recv_file_entry(); the decoder turns the pairs into the form the
 * protocol-30 encoding has (first member, later members pointing at it),
 * so nothing past the decoder knows the difference.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "protocol/proto_int.h"

/* Meanings of flag bits before protocol 30. */
#define XMIT_SAME_RDEV_PRE28 (1u << 2) /* protocol 27: one flag byte */
#define XMIT_SAME_DEV_PRE30 (1u << 10)
#define XMIT_RDEV_MINOR_8_PRE30 (1u << 11)

/* The rdev of a device (or, before 31, of a special: sent, unused). */
static int old_rdev(struct berth_flist_dec *d, struct berth_proto_in *v,
		    uint32_t x, uint32_t type)
{
	const struct berth_flist_config *c = &d->cfg;
	struct pend *p = &d->pend;
	struct berth_file *f = &p->f;
	bool dev = type == S_IFCHR || type == S_IFBLK;
	int32_t i32;
	uint8_t b;

	if (!((c->devices && dev) ||
	      (c->specials && (type == S_IFIFO || type == S_IFSOCK)))) {
		if (c->protocol < 28) {
			/* Other entries reset the "same rdev" state. */
			p->rdev_field = true;
			p->major = p->minor = 0;
		}
		return BERTH_PROTO_DONE;
	}
	p->rdev_field = true;
	p->major = d->rdev_major;
	p->minor = d->rdev_minor;
	if (c->protocol < 28) {
		if (!(x & XMIT_SAME_RDEV_PRE28)) {
			uint32_t r;

			GET(berth_proto_get_uint32(v, &r));
			/* A 32-bit dev_t the Linux way (glibc's split). */
			p->major = (r >> 8) & 0xfff;
			p->minor = (r & 0xff) | ((r >> 12) & 0xfff00);
		}
	} else {
		if (!(x & BERTH_XMIT_SAME_RDEV_MAJOR)) {
			GET(berth_proto_get_int32(v, &i32));
			p->major = (uint32_t)i32;
		}
		if (x & XMIT_RDEV_MINOR_8_PRE30) {
			GET(berth_proto_get_u8(v, &b));
			p->minor = b;
		} else {
			GET(berth_proto_get_int32(v, &i32));
			p->minor = (uint32_t)i32;
		}
	}
	if (dev) {
		p->x.rdev_major = p->major;
		p->x.rdev_minor = p->minor;
		f->flags |= BERTH_FILE_HAS_RDEV;
	}
	return BERTH_PROTO_DONE;
}

/* Hard-link identity: protocol 27 sends it for every regular file, 28
 * and 29 for entries flagged HLINKED (device elided when the same). */
static int old_idev(struct berth_flist_dec *d, struct berth_proto_in *v,
		    uint32_t x, uint32_t type)
{
	struct pend *p = &d->pend;

	if (!d->cfg.hard_links ||
	    (d->cfg.protocol < 28 ? type != S_IFREG
				  : !(x & BERTH_XMIT_HLINKED)))
		return BERTH_PROTO_DONE;
	/* No client links a directory: the entry would become a link to
	 * a file of its group. */
	if (type == S_IFDIR)
		return -BERTH_EPROTO;
	p->dev = d->dev;
	if (d->cfg.protocol < 28 || !(x & XMIT_SAME_DEV_PRE30))
		GET(berth_proto_get_longint(v, &p->dev));
	GET(berth_proto_get_longint(v, &p->ino));
	p->idev = true;
	return BERTH_PROTO_DONE;
}

int berth__flist_old_attrs(struct berth_flist_dec *d, struct berth_proto_in *v,
			   uint32_t x)
{
	const struct berth_flist_config *c = &d->cfg;
	struct pend *p = &d->pend;
	struct berth_file *f = &p->f;
	uint32_t type;
	int32_t i32;

	GET(berth_proto_get_longint(v, &f->size));
	f->mtime = d->mtime;
	if (!(x & BERTH_XMIT_SAME_TIME)) {
		GET(berth_proto_get_int32(v, &i32));
		f->mtime = i32;
	}
	f->mode = d->mode;
	if (!(x & BERTH_XMIT_SAME_MODE)) {
		GET(berth_proto_get_int32(v, &i32));
		f->mode = (uint16_t)i32; /* type and 07777 */
	}
	type = f->mode & S_IFMT;
	if (!berth__flist_mode_ok(f->mode))
		return -BERTH_EPROTO;
	f->uid = d->uid;
	if (c->owner && !(x & BERTH_XMIT_SAME_UID)) {
		GET(berth_proto_get_int32(v, &i32));
		f->uid = (uint32_t)i32;
	}
	f->gid = d->gid;
	if (c->group && !(x & BERTH_XMIT_SAME_GID)) {
		GET(berth_proto_get_int32(v, &i32));
		f->gid = (uint32_t)i32;
	}
	GET(old_rdev(d, v, x, type));
	if (c->links && type == S_IFLNK)
		GET(berth__flist_entry_link(d, v));
	GET(old_idev(d, v, x, type));
	/* -c: a sum for regular files; before 28 for every entry (unused). */
	if (c->checksum && (type == S_IFREG || c->protocol < 28)) {
		const uint8_t *sum;

		GET(berth__flist_get_bytes(v, (size_t)c->flist_csum_len, &sum));
		if (type == S_IFREG)
			p->sum = sum;
	}
	return BERTH_PROTO_DONE;
}

static uint64_t idev_hash(int64_t dev, int64_t ino)
{
	uint64_t h = (uint64_t)dev * 0x9e3779b97f4a7c15ull;

	h ^= (uint64_t)ino + 0x7f4a7c159e3779b9ull + (h << 6) + (h >> 2);
	return h ^ (h >> 29);
}

static struct idev_slot *idev_find(struct idev_slot *t, uint32_t cap,
				   int64_t dev, int64_t ino)
{
	uint32_t i = (uint32_t)idev_hash(dev, ino) & (cap - 1);

	while (t[i].tx >= 0 && (t[i].dev != dev || t[i].ino != ino))
		i = (i + 1) & (cap - 1);
	return &t[i];
}

static int idev_grow(struct berth_flist_dec *d)
{
	uint32_t cap = d->idev_cap ? d->idev_cap * 2 : 1024;
	struct idev_slot *t = malloc(sizeof(*t) * cap);

	if (!t)
		return -ENOMEM;
	for (uint32_t i = 0; i < cap; i++)
		t[i].tx = -1;
	for (uint32_t i = 0; i < d->idev_cap; i++)
		if (d->idev[i].tx >= 0)
			*idev_find(t, cap, d->idev[i].dev,
				   d->idev[i].ino) = d->idev[i];
	free(d->idev);
	d->idev = t;
	d->idev_cap = cap;
	return 0;
}

/*
 * Which directories are content directories (their extraneous entries
 * may be deleted), as a pre-30 receiver works it out from the order: a
 * top directory starts a hierarchy (with recursion); the directories
 * after it are inside while, with -R, their names continue the top one's
 * (the shared prefix with the previous name covering it).  The others get
 * BERTH_XMIT_NO_CONTENT_DIR, as protocol 30 would send them.
 */
static void old_content_dir(struct berth_flist_dec *d, const char *name)
{
	struct pend *p = &d->pend;
	uint32_t len = p->l1 + p->l2;
	bool content = false;

	if (p->xflags & BERTH_XMIT_TOP_DIR) {
		d->in_hier = d->cfg.recursive;
		d->hier_len = len == 1 && name[0] == '.' ? 0 : len;
		content = true;
	} else if (d->in_hier) {
		if (!d->cfg.relative || !d->hier_len ||
		    (p->l1 >= d->hier_len && name[d->hier_len] == '/'))
			content = true;
		else
			d->in_hier = false;
	}
	if (!content)
		p->xflags |= BERTH_XMIT_NO_CONTENT_DIR;
}

int berth__flist_old_commit(struct berth_flist_dec *d, int32_t tx,
			    const char *name)
{
	struct pend *p = &d->pend;
	struct idev_slot *e;

	/* Bits 8..11 mean other things before 30: keep none of them. */
	p->xflags &= 0xffu & ~BERTH_XMIT_EXTENDED_FLAGS;
	if (S_ISDIR(p->f.mode))
		old_content_dir(d, name);
	if (p->idev)
		d->dev = p->dev;
	if (!p->idev)
		return 0;
	if ((d->idev_used + 1) * 4 > d->idev_cap * 3)
		TRY(idev_grow(d));
	e = idev_find(d->idev, d->idev_cap, p->dev, p->ino);
	if (e->tx < 0) {
		e->dev = p->dev;
		e->ino = p->ino;
		e->tx = tx;
		e->members = 0;
		d->idev_used++;
		p->xflags |= BERTH_XMIT_HLINKED | BERTH_XMIT_HLINK_FIRST;
		p->hlink = 0; /* resolved when the list is sorted */
	} else {
		p->xflags |= BERTH_XMIT_HLINKED;
		p->hlink = e->tx;
	}
	e->members++;
	return 0;
}

void berth__flist_old_finish(struct berth_flist_dec *d)
{
	struct berth_flist *fl = d->cur;

	if (!d->idev)
		return;
	/* A group of one (its other names not in the transfer) is a plain
	 * file, as rsync treats it.  files[] is still in transmission order. */
	for (uint32_t k = 0; k < d->idev_cap; k++) {
		const struct idev_slot *e = &d->idev[k];
		struct berth_file *f;

		if (e->tx < fl->ndx_start || e->members != 1 ||
		    (uint32_t)(e->tx - fl->ndx_start) >= fl->count)
			continue;
		f = &fl->files[e->tx - fl->ndx_start];
		f->flags &= ~(BERTH_FILE_HLINKED | BERTH_FILE_HLINK_FIRST);
		fl->hlink[e->tx - fl->ndx_start] = -1;
	}
	free(d->idev);
	d->idev = NULL;
	d->idev_cap = d->idev_used = 0;
}
