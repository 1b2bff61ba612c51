/* SPDX-License-Identifier: MIT */
/*
 * -A: POSIX access and default ACLs through libacl, as rsync's receiver
 * compares and sets them (acls.c: get_acl, set_acl, rsync_acl_equal_enough,
 * pack_smb_acl with change_sacl_perms).  An item's ACL is read into the
 * same shape the wire gives (struct berth_commit_racl), compared by
 * rsync's rules, and set only where it differs: the access ACL's user,
 * mask and other entries (and group, unless the sender kept it apart)
 * come from the new mode; the mode is then set as usual.  With
 * --fake-super the ACLs live in user.rsync.%aacl / %dacl instead
 * (commit_fake.c) and the real mode is left to the %stat step.
 *
 * Every call works on /proc/self/fd/N of an fd opened beneath the
 * destination without following a symlink, never on a path the
 * filesystem resolves again.
 */
#include <acl/libacl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/acl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/commit/commit_int.h"

#define NONE BERTH_COMMIT_ACL_NONE
#define RACL_MAX_NAMES 65536 /* named entries read from one item */

/* An ACL read from an item (owns its idas). */
struct local_acl {
	struct berth_commit_racl r;
	uint32_t cap;
};

static void local_init(struct local_acl *l)
{
	memset(l, 0, sizeof(*l));
	l->r.user_obj = l->r.group_obj = l->r.mask_obj = l->r.other_obj = NONE;
}

static void local_free(struct local_acl *l)
{
	free(l->r.idas);
	local_init(l);
}

static int local_add(struct local_acl *l, uint32_t id, uint32_t access)
{
	if (l->r.count == l->cap) {
		uint32_t cap = l->cap ? l->cap * 2 : 8;
		void *n;

		if (cap > RACL_MAX_NAMES)
			return -E2BIG;
		n = realloc(l->r.idas, cap * sizeof(*l->r.idas));
		if (!n)
			return -ENOMEM;
		l->r.idas = n;
		l->cap = cap;
	}
	l->r.idas[l->r.count].id = id;
	l->r.idas[l->r.count].access = access;
	l->r.count++;
	return 0;
}

/* ------------------------------------------------------ comparisons */

static bool idas_equal(const struct berth_commit_racl *a,
		       const struct berth_commit_racl *b)
{
	if (a->count != b->count)
		return false;
	for (uint32_t i = 0; i < a->count; i++)
		if (a->idas[i].id != b->idas[i].id ||
		    a->idas[i].access != b->idas[i].access)
			return false;
	return true;
}

static bool racl_equal(const struct berth_commit_racl *a,
		       const struct berth_commit_racl *b)
{
	return a->user_obj == b->user_obj && a->group_obj == b->group_obj &&
	       a->mask_obj == b->mask_obj && a->other_obj == b->other_obj &&
	       idas_equal(a, b);
}

/*
 * rsync's rsync_acl_equal_enough(): an item's full access ACL @cur against
 * the condensed one received (@want, whose missing object entries come
 * from @mode).  Only what the mode cannot carry counts.
 */
static bool access_equal(const struct berth_commit_racl *cur,
			 const struct berth_commit_racl *want, uint32_t mode)
{
	if ((cur->mask_obj ^ want->mask_obj) & NONE)
		return false; /* one has a mask, the other not */
	if (cur->mask_obj != NONE) {
		/* With a mask, the group entry is one of the extended ones. */
		uint8_t g = want->group_obj == NONE ? (mode >> 3) & 7
						    : want->group_obj;

		if (cur->group_obj != g)
			return false;
	}
	return idas_equal(cur, want);
}

/* ------------------------------------------------- libacl, read/write */

static int unpack(acl_t acl, struct local_acl *l)
{
	acl_entry_t e;
	int r;

	for (r = acl_get_entry(acl, ACL_FIRST_ENTRY, &e); r == 1;
	     r = acl_get_entry(acl, ACL_NEXT_ENTRY, &e)) {
		acl_tag_t tag;
		acl_permset_t ps;
		uint32_t access, id = 0;
		void *q;
		int ret;

		if (acl_get_tag_type(e, &tag) < 0 ||
		    acl_get_permset(e, &ps) < 0)
			return -errno;
		access = (acl_get_perm(ps, ACL_READ) == 1 ? 4u : 0) |
			 (acl_get_perm(ps, ACL_WRITE) == 1 ? 2u : 0) |
			 (acl_get_perm(ps, ACL_EXECUTE) == 1 ? 1u : 0);
		switch (tag) {
		case ACL_USER_OBJ:
			l->r.user_obj = (uint8_t)access;
			continue;
		case ACL_GROUP_OBJ:
			l->r.group_obj = (uint8_t)access;
			continue;
		case ACL_MASK:
			l->r.mask_obj = (uint8_t)access;
			continue;
		case ACL_OTHER:
			l->r.other_obj = (uint8_t)access;
			continue;
		case ACL_USER:
		case ACL_GROUP:
			q = acl_get_qualifier(e);
			if (!q)
				return -errno;
			id = *(const uint32_t *)q;
			acl_free(q);
			if (tag == ACL_USER)
				access |= BERTH_COMMIT_ACL_USER;
			ret = local_add(l, id, access);
			if (ret < 0)
				return ret;
			continue;
		default:
			continue; /* rsync ignores unknown tags too */
		}
	}
	return r < 0 ? -errno : 0;
}

static bool no_acl_support(int err)
{
	return err == ENOTSUP || err == ENOSYS;
}

/* The item's ACL of @type: a filesystem without ACLs has the mode's. */
static int read_sys(const char *path, acl_type_t type, uint32_t mode,
		    struct local_acl *l)
{
	acl_t acl = acl_get_file(path, type);
	int ret;

	if (!acl) {
		ret = errno;
		if (!no_acl_support(ret))
			return -ret;
		if (type == ACL_TYPE_ACCESS) {
			l->r.user_obj = (mode >> 6) & 7;
			l->r.group_obj = (mode >> 3) & 7;
			l->r.other_obj = mode & 7;
		}
		return 0;
	}
	ret = unpack(acl, l);
	acl_free(acl);
	return ret;
}

static int add_entry(acl_t *acl, acl_tag_t tag, const uint32_t *id,
		     uint32_t access)
{
	acl_entry_t e;
	acl_permset_t ps;

	if (acl_create_entry(acl, &e) < 0 || acl_set_tag_type(e, tag) < 0 ||
	    (id && acl_set_qualifier(e, id) < 0) ||
	    acl_get_permset(e, &ps) < 0 || acl_clear_perms(ps) < 0 ||
	    ((access & 4) && acl_add_perm(ps, ACL_READ) < 0) ||
	    ((access & 2) && acl_add_perm(ps, ACL_WRITE) < 0) ||
	    ((access & 1) && acl_add_perm(ps, ACL_EXECUTE) < 0) ||
	    acl_set_permset(e, ps) < 0)
		return -errno;
	return 0;
}

/*
 * rsync's pack_smb_acl() (and, for an access ACL, change_sacl_perms()):
 * the system ACL for @w; with @mode_src, user, other, the mask and a
 * group left out take @mode's bits.
 */
static int pack(const struct berth_commit_racl *w, bool access_acl,
		uint32_t mode, acl_t *out)
{
	acl_t acl = acl_init((int)w->count + 4);
	uint32_t u = w->user_obj & ~NONE, g = w->group_obj & ~NONE;
	uint32_t m = w->mask_obj, o = w->other_obj & ~NONE;
	int ret = 0;

	if (!acl)
		return -errno;
	if (access_acl) {
		u = (mode >> 6) & 7;
		if (w->group_obj == NONE)
			g = (mode >> 3) & 7;
		if (m != NONE)
			m = (mode >> 3) & 7;
		o = mode & 7;
	}
	ret = add_entry(&acl, ACL_USER_OBJ, NULL, u);
	for (uint32_t i = 0; !ret && i < w->count; i++) {
		const struct berth_commit_acl_ida *a = &w->idas[i];

		ret = add_entry(&acl,
				a->access & BERTH_COMMIT_ACL_USER ? ACL_USER
								  : ACL_GROUP,
				&a->id, a->access & 7);
	}
	if (!ret)
		ret = add_entry(&acl, ACL_GROUP_OBJ, NULL, g);
	if (!ret && m != NONE)
		ret = add_entry(&acl, ACL_MASK, NULL, m & 7);
	if (!ret)
		ret = add_entry(&acl, ACL_OTHER, NULL, o);
	if (ret < 0) {
		acl_free(acl);
		return ret;
	}
	*out = acl;
	return 0;
}

static int set_sys(const char *path, const struct berth_commit_racl *w,
		   bool access_acl, uint32_t mode)
{
	acl_t acl = NULL;
	int ret;

	if (!access_acl && w->user_obj == NONE)
		return acl_delete_def_file(path) < 0 ? -errno : 0;
	ret = pack(w, access_acl, mode, &acl);
	if (ret < 0)
		return ret;
	ret = acl_set_file(path,
			   access_acl ? ACL_TYPE_ACCESS : ACL_TYPE_DEFAULT,
			   acl) < 0
		      ? -errno
		      : 0;
	acl_free(acl);
	return ret;
}

/* ---------------------------------------- --fake-super: %aacl / %dacl */

#define XACC "user.rsync.%aacl"
#define XDEF "user.rsync.%dacl"

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/*
 * rsync's get_rsync_acl() under --fake-super: four object entries and
 * (id, access) pairs, little-endian 32-bit; absent object entries other
 * than the mask are the mode's.  No attribute: an empty ACL.
 */
static int read_fake(const char *path, bool access_acl, uint32_t mode,
		     struct local_acl *l)
{
	ssize_t n = getxattr(path, access_acl ? XACC : XDEF, NULL, 0), m;
	uint8_t *buf;
	int ret = 0;

	if (n < 0)
		return errno == ENODATA || no_acl_support(errno) ? 0 : -errno;
	if (n < 16 || (n - 16) % 8 || n > 16 + 8 * (ssize_t)RACL_MAX_NAMES)
		return -EINVAL;
	buf = malloc((size_t)n);
	if (!buf)
		return -ENOMEM;
	m = getxattr(path, access_acl ? XACC : XDEF, buf, (size_t)n);
	if (m != n) {
		ret = m < 0 ? -errno : -EAGAIN;
		goto out;
	}
	l->r.user_obj = (uint8_t)get_le32(buf);
	l->r.group_obj = (uint8_t)get_le32(buf + 4);
	l->r.mask_obj = (uint8_t)get_le32(buf + 8);
	l->r.other_obj = (uint8_t)get_le32(buf + 12);
	if (l->r.user_obj == NONE)
		l->r.user_obj = (mode >> 6) & 7;
	if (l->r.group_obj == NONE)
		l->r.group_obj = (mode >> 3) & 7;
	if (l->r.other_obj == NONE)
		l->r.other_obj = mode & 7;
	for (ssize_t off = 16; off < n && !ret; off += 8)
		ret = local_add(l, get_le32(buf + off),
				get_le32(buf + off + 4));
out:
	free(buf);
	return ret;
}

static int set_fake(const char *path, const struct berth_commit_racl *w,
		    bool access_acl)
{
	size_t len = 16 + 8 * (size_t)w->count;
	uint8_t *buf;
	int ret;

	if (!access_acl && w->user_obj == NONE)
		return removexattr(path, XDEF) < 0 ? -errno : 0;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	put_le32(buf, w->user_obj);
	put_le32(buf + 4, w->group_obj);
	put_le32(buf + 8, w->mask_obj);
	put_le32(buf + 12, w->other_obj);
	for (uint32_t i = 0; i < w->count; i++) {
		put_le32(buf + 16 + 8 * i, w->idas[i].id);
		put_le32(buf + 20 + 8 * i, w->idas[i].access);
	}
	ret = setxattr(path, access_acl ? XACC : XDEF, buf, len, 0) < 0 ? -errno
									: 0;
	free(buf);
	return ret;
}

/* ------------------------------------------------------------- API */

/* Compare (and with @set, set) one kind.  1: it differs, 0: same. */
static int one_kind(const char *path, const struct berth_commit_racl *want,
		    bool access_acl, uint32_t cur_mode, uint32_t new_mode,
		    bool fake, bool set)
{
	struct local_acl cur;
	bool same;
	int ret;

	local_init(&cur);
	ret = fake ? read_fake(path, access_acl, cur_mode, &cur)
		   : read_sys(path,
			      access_acl ? ACL_TYPE_ACCESS : ACL_TYPE_DEFAULT,
			      cur_mode, &cur);
	if (ret < 0) {
		local_free(&cur);
		return ret;
	}
	same = access_acl ? access_equal(&cur.r, want, new_mode)
			  : racl_equal(&cur.r, want);
	local_free(&cur);
	if (same)
		return 0;
	if (set) {
		ret = fake ? set_fake(path, want, access_acl)
			   : set_sys(path, want, access_acl, new_mode);
		if (ret < 0)
			return ret;
	}
	return 1;
}

static int acls(const char *path, const struct berth_commit_meta *m,
		uint32_t cur_mode, bool is_dir, bool fake, bool set)
{
	int a = 0, d = 0;

	if (m->acl[0]) {
		a = one_kind(path, m->acl[0], true, cur_mode, m->mode, fake,
			     set);
		if (a < 0)
			return a;
	}
	if (is_dir && m->acl[1]) {
		d = one_kind(path, m->acl[1], false, cur_mode, m->mode, fake,
			     set);
		if (d < 0)
			return d;
	}
	return a || d;
}

int berth_commit_acl_differs(int fd, const struct berth_commit_meta *m,
			     uint32_t cur_mode, bool is_dir, bool fake_super)
{
	char path[32];

	if (!m->acl[0] && !m->acl[1])
		return 0;
	if (berth_plat_fd_path(fd, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	return acls(path, m, cur_mode, is_dir, fake_super, false);
}

int berth__commit_acl_apply(const char *path, const struct berth_commit_meta *m,
			    uint32_t cur_mode, bool is_dir, bool fake_super)
{
	int ret = acls(path, m, cur_mode, is_dir, fake_super, true);

	return ret < 0 ? ret : 0;
}

bool berth__commit_mode_special(const struct berth_commit *c,
				const struct berth_commit_meta *m)
{
	return c->o.fake_super || m->acl[0] || m->acl[1];
}

int berth__commit_mode_fd(const struct berth_commit *c, int fd,
			  const struct berth_commit_meta *m)
{
	struct berth_fake_stat fs;
	char path[32];
	struct stat st;
	uint32_t cur;
	bool is_dir;
	int ret;

	if (berth_plat_fd_path(fd, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISLNK(st.st_mode))
		return c->o.fake_super ? 0 : -EOPNOTSUPP;
	is_dir = S_ISDIR(st.st_mode);
	cur = st.st_mode;
	if (c->o.fake_super) {
		/* rsync reads the ACLs against the mode its stat shows. */
		if (berth_fake_stat_read(fd, &fs) == 0)
			cur = fs.mode;
		ret = berth__commit_fake_stat(path, m, &st);
		if (ret == 0)
			ret = berth__commit_acl_apply(path, m, cur, is_dir,
						      true);
		return ret;
	}
	ret = berth__commit_acl_apply(path, m, cur, is_dir, false);
	if (ret == 0 && chmod(path, m->mode & 07777) < 0)
		ret = -errno;
	return ret;
}

ssize_t berth__commit_mode_run(void *arg)
{
	struct commit_mode_job *j = arg;
	int fd = j->fd, ret;

	if (fd < 0 && j->name) {
		fd = openat(j->dirfd, j->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		ret = berth__commit_mode_fd(j->c, fd, j->m);
		close(fd);
		return ret;
	}
	return berth__commit_mode_fd(j->c, fd >= 0 ? fd : j->dirfd, j->m);
}
