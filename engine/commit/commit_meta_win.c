/* SPDX-License-Identifier: MIT */
/*
 * Windows: -A (POSIX ACLs) and --fake-super (user.* extended attributes)
 * have no counterpart, so commit_acl.c and commit_fake.c are not built
 * there; this file gives their entry points for the rest of the stage.  An
 * item that asks for ACLs or fake-super attributes is refused on its own
 * with -EOPNOTSUPP (the caller reports that one file and goes on); an
 * item that asks for neither takes the plain chmod path, as on Linux.
 */
#include <errno.h>

#include "engine/commit/commit_int.h"

static bool has_acl(const struct berth_commit_meta *m)
{
	return m->acl[0] || m->acl[1];
}

int berth_commit_acl_differs(int fd, const struct berth_commit_meta *m,
			     uint32_t cur_mode, bool is_dir, bool fake_super)
{
	(void)fd;
	(void)cur_mode;
	(void)is_dir;
	(void)fake_super;
	return has_acl(m) ? -EOPNOTSUPP : 0;
}

int berth__commit_acl_apply(const char *path, const struct berth_commit_meta *m,
			    uint32_t cur_mode, bool is_dir, bool fake_super)
{
	(void)path;
	(void)cur_mode;
	(void)is_dir;
	(void)fake_super;
	return has_acl(m) ? -EOPNOTSUPP : 0;
}

bool berth__commit_mode_special(const struct berth_commit *c,
				const struct berth_commit_meta *m)
{
	return c->o.fake_super || has_acl(m);
}

int berth__commit_mode_fd(const struct berth_commit *c, int fd,
			  const struct berth_commit_meta *m)
{
	(void)c;
	(void)fd;
	(void)m;
	return -EOPNOTSUPP;
}

ssize_t berth__commit_mode_run(void *arg)
{
	(void)arg;
	return -EOPNOTSUPP;
}

int berth_fake_stat_read(int fd, struct berth_fake_stat *st)
{
	(void)fd;
	(void)st;
	return -ENODATA; /* as a file system without xattrs answers */
}

int berth__commit_fake_stat(const char *path, const struct berth_commit_meta *m,
			    const struct stat *real)
{
	(void)path;
	(void)m;
	(void)real;
	return -EOPNOTSUPP;
}
