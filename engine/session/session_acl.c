/* SPDX-License-Identifier: MIT */
/*
 * -A / --acls and the --fake-super lookups: see session_acl.h.  The
 * comparisons and the setting live in the commit stage (commit_acl.c,
 * commit_fake.c); this file turns the decoder's ACLs into what they
 * compare and set, and reads destination items for the generator through
 * an O_PATH | O_NOFOLLOW fd opened beneath a directory (never through a
 * symlink).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_acl.h"
#include "engine/session/session_sys.h"

#define NONE BERTH_COMMIT_ACL_NONE

struct berth_acls {
	struct berth_commit_racl *list[2]; /* access, default */
	uint32_t n[2];
};

/* rsync's recv_rsync_acl(): one received ACL as the receiver keeps it. */
static int convert(struct berth_session *s, const struct berth_acl *in,
		   bool dflt, struct berth_commit_racl *out)
{
	uint32_t names_bits = 0;

	out->user_obj = in->flags & BERTH_ACL_USER_OBJ ? (uint8_t)in->user_obj
						       : NONE;
	out->group_obj = in->flags & BERTH_ACL_GROUP_OBJ
				 ? (uint8_t)in->group_obj
				 : NONE;
	out->mask_obj = in->flags & BERTH_ACL_MASK_OBJ ? (uint8_t)in->mask_obj
						       : NONE;
	out->other_obj = in->flags & BERTH_ACL_OTHER_OBJ
				 ? (uint8_t)in->other_obj
				 : NONE;
	out->count = in->count;
	out->idas = NULL;
	if (in->count) {
		out->idas = calloc(in->count, sizeof(*out->idas));
		if (!out->idas)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < in->count; i++) {
		const struct berth_acl_ida *a = &in->idas[i];

		/* Named ids map as owners do (rsync's match_acl_ids):
		 * by name unless --numeric-ids, through --usermap and
		 * --groupmap. */
		out->idas[i].id = a->is_user ? berth__map_uid(s, a->id)
					     : berth__map_gid(s, a->id);
		out->idas[i].access = (a->perms & 7) |
				      (a->is_user ? BERTH_COMMIT_ACL_USER : 0);
		names_bits |= a->perms & 7;
	}
	/* Named entries need a mask: the sender left it out when it was the
	 * mode's group bits (access) or the union of the rest (default). */
	if (in->count && out->mask_obj == NONE)
		out->mask_obj = dflt ? (uint8_t)(names_bits |
						 (out->group_obj & ~NONE))
				     : (uint8_t)((in->mode >> 3) & 7);
	return 0;
}

int berth__acl_create(struct berth_session *s)
{
	struct berth_acls *a;
	int ret;

	if (!s->opts.acls)
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	s->acl = a;
	for (int k = 0; k < 2; k++) {
		uint32_t n = 0;

		while (berth_flist_dec_acl(s->lst.fdec, k, (int32_t)n))
			n++;
		a->list[k] = calloc(n ? n : 1, sizeof(*a->list[k]));
		if (!a->list[k])
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++) {
			ret = convert(
				s,
				berth_flist_dec_acl(s->lst.fdec, k, (int32_t)i),
				k, &a->list[k][i]);
			if (ret < 0)
				return ret;
			a->n[k] = i + 1;
		}
	}
	return 0;
}

void berth__acl_free(struct berth_acls *a)
{
	if (!a)
		return;
	for (int k = 0; k < 2; k++) {
		for (uint32_t i = 0; i < a->n[k]; i++)
			free(a->list[k][i].idas);
		free(a->list[k]);
	}
	free(a);
}

static const struct berth_commit_racl *acl_of(const struct berth_acls *a, int k,
					      int32_t idx)
{
	if (idx < 0 || (uint32_t)idx >= a->n[k])
		return NULL;
	return &a->list[k][idx];
}

void berth__acl_meta(struct berth_session *s, const struct berth_file *f,
		     struct berth_commit_meta *m)
{
	m->acl[0] = m->acl[1] = NULL;
	if (!s->acl || S_ISLNK(f->mode))
		return;
	m->acl[0] = acl_of(s->acl, 0, f->ext->acl[0]);
	if (S_ISDIR(f->mode))
		m->acl[1] = acl_of(s->acl, 1, f->ext->acl[1]);
}

void berth__acl_fake_stat(struct berth_session *s, int dirfd, const char *name,
			  struct stat *st)
{
	struct berth_fake_stat fs;
	int fd;

	if (!s->opts.fake_super || S_ISLNK(st->st_mode) ||
	    S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ||
	    S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode))
		return;
	fd = berth__sys_open(s, dirfd, name, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (berth_fake_stat_read(fd, &fs) == 0) {
		st->st_mode = fs.mode;
		st->st_rdev = makedev(fs.rdev_major, fs.rdev_minor);
		st->st_uid = fs.uid;
		st->st_gid = fs.gid;
	} /* a corrupt one: rsync stops (exit 11); berth uses the real */
	close(fd);
}

uint32_t berth__acl_gen_itemize(struct berth_session *s,
				const struct berth_file *f, int dirfd,
				const char *name)
{
	struct berth_commit_meta m;
	struct stat st;
	int fd, ret;

	if (!s->acl || dirfd < 0 || S_ISLNK(f->mode))
		return 0;
	berth__acl_meta(s, f, &m);
	m.mode = f->mode;
	fd = berth__sys_open(s, dirfd, name, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		return fd == -ENOENT ? 0 : BERTH_ITEM_REPORT_ACL;
	ret = fstat(fd, &st) < 0 ? -errno : 0;
	if (ret == 0 && S_ISLNK(st.st_mode)) {
		close(fd);
		return 0;
	}
	if (ret == 0) {
		if (s->opts.fake_super) {
			struct berth_fake_stat fs;

			if (berth_fake_stat_read(fd, &fs) == 0)
				st.st_mode = fs.mode;
		}
		ret = berth_commit_acl_differs(fd, &m, st.st_mode,
					       S_ISDIR(f->mode),
					       s->opts.fake_super);
	}
	close(fd);
	if (ret < 0) {
		berth__session_file_error(s, "reading the ACLs of %s: %s\n",
					  name, berth_strerror(ret));
		return BERTH_ITEM_REPORT_ACL;
	}
	return ret ? BERTH_ITEM_REPORT_ACL : 0;
}

int berth__acl_dir_check(struct berth_session *s, const char *name,
			 struct stat *st, const struct berth_commit_meta *m)
{
	int fd, ret;

	berth__acl_fake_stat(s, s->dest.root_fd, name, st);
	if (!m->acl[0] && !m->acl[1])
		return 0;
	fd = berth__sys_open(s, s->dest.root_fd, name,
			     O_PATH | O_NOFOLLOW | O_DIRECTORY);
	if (fd < 0)
		return 1;
	ret = berth_commit_acl_differs(fd, m, st->st_mode, true,
				       s->opts.fake_super);
	close(fd);
	return ret != 0;
}
