/* SPDX-License-Identifier: MIT */
/*
 * --fake-super: what only root may set is kept in the user.rsync.%stat
 * xattr, in rsync's text ("%o %u,%u %u:%u": the mode with its type bits
 * in octal, the device's major and minor, owner and group), and the real
 * item is made usable by the copying user (rsync's set_stat_xattr in
 * xattrs.c): its mode loses the set-id and sticky bits and gains u+rw
 * (u+rwx for a directory).  An item whose real attributes are already the
 * wanted ones keeps no %stat.  Devices and specials are plain files here
 * (made by the mknod step); their type lives in %stat.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/commit/commit_int.h"

#define XSTAT "user.rsync.%stat"
#define XSTAT_MAX 255 /* rsync reads at most this much */

int berth_fake_stat_format(char *buf, size_t cap,
			   const struct berth_fake_stat *st)
{
	char tmp[XSTAT_MAX + 1];
	int n = snprintf(tmp, sizeof(tmp), "%o %u,%u %u:%u", (unsigned)st->mode,
			 (unsigned)st->rdev_major, (unsigned)st->rdev_minor,
			 (unsigned)st->uid, (unsigned)st->gid);

	if (n < 0 || (size_t)n > cap)
		return -ENOSPC;
	memcpy(buf, tmp, (size_t)n);
	if ((size_t)n < cap)
		buf[n] = '\0';
	return n;
}

/* One number at *@p in @base (rsync reads them with sscanf: leading blanks
 * and, for the decimal ones, a sign are allowed). */
static int number(const char **p, const char *end, int base, uint32_t *out)
{
	const char *s = *p;
	bool neg = false;
	uint64_t v = 0;
	int digits = 0;

	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n'))
		s++;
	if (base == 10 && s < end && (*s == '-' || *s == '+'))
		neg = *s++ == '-';
	for (; s < end; s++, digits++) {
		int d = *s - '0';

		if (d < 0 || d >= base)
			break;
		v = v * (unsigned)base + (unsigned)d;
		if (v > UINT32_MAX && !(neg && v <= (uint64_t)INT32_MAX + 1))
			return -EINVAL;
	}
	if (!digits)
		return -EINVAL;
	*out = neg ? (uint32_t)(0 - (uint32_t)v) : (uint32_t)v;
	*p = s;
	return 0;
}

int berth_fake_stat_parse(const char *buf, size_t len,
			  struct berth_fake_stat *st)
{
	const char *p = buf, *end = buf + len;
	static const char seps[] = {' ', ',', ' ', ':'};
	uint32_t *fields[] = {&st->mode, &st->rdev_major, &st->rdev_minor,
			      &st->uid, &st->gid};

	for (int i = 0; i < 5; i++) {
		/* sscanf: a blank in the format matches any run of blanks
		 * (none too; number() skips them), other characters
		 * themselves. */
		if (i > 0 && seps[i - 1] != ' ' &&
		    (p == end || *p++ != seps[i - 1]))
			return -EINVAL;
		if (number(&p, end, i ? 10 : 8, fields[i]) < 0)
			return -EINVAL;
	}
	return 0;
}

static int read_at(const char *path, struct berth_fake_stat *st)
{
	char buf[XSTAT_MAX + 1];
	ssize_t n = getxattr(path, XSTAT, buf, sizeof(buf) - 1);

	if (n < 0)
		return errno == ENOTSUP ? -ENODATA : -errno;
	return berth_fake_stat_parse(buf, (size_t)n, st);
}

int berth_fake_stat_read(int fd, struct berth_fake_stat *st)
{
	char path[32];

	if (berth_plat_fd_path(fd, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	return read_at(path, st);
}

int berth__commit_fake_stat(const char *path, const struct berth_commit_meta *m,
			    const struct stat *real)
{
	uint32_t type = real->st_mode & S_IFMT;
	uint32_t fmode = (m->ftype & S_IFMT) | (m->mode & 07777);
	uint32_t mode = type | (fmode & 0777) | (S_ISDIR(type) ? 0700 : 0600);
	struct berth_fake_stat want, cur;
	bool dev = S_ISCHR(m->ftype) || S_ISBLK(m->ftype);
	uint32_t rmaj = 0, rmin = 0;
	char buf[XSTAT_MAX + 1];
	int n, have;

	if (S_ISLNK(type))
		return 0; /* no user xattrs on a symlink (rsync: EPERM) */
	if ((real->st_mode & (S_IFMT | 07777)) != mode &&
	    chmod(path, mode & 07777) < 0)
		return -errno;
	if (S_ISCHR(type) || S_ISBLK(type)) {
		rmaj = major(real->st_rdev);
		rmin = minor(real->st_rdev);
	}
	want = (struct berth_fake_stat){
		.mode = fmode,
		.rdev_major = dev ? m->rdev_major : 0,
		.rdev_minor = dev ? m->rdev_minor : 0,
		.uid = m->uid != (uint32_t)-1 ? m->uid : real->st_uid,
		.gid = m->gid != (uint32_t)-1 ? m->gid : real->st_gid,
	};
	have = read_at(path, &cur);
	if (have < 0 && have != -ENODATA && have != -EINVAL)
		return have;
	if (mode == fmode && rmaj == want.rdev_major &&
	    rmin == want.rdev_minor && real->st_uid == want.uid &&
	    real->st_gid == want.gid) {
		if (have != -ENODATA && removexattr(path, XSTAT) < 0 &&
		    errno != ENODATA)
			return -errno;
		return 0;
	}
	if (have == 0 && !memcmp(&cur, &want, sizeof(cur)))
		return 0;
	n = berth_fake_stat_format(buf, sizeof(buf), &want);
	if (n < 0)
		return n;
	return setxattr(path, XSTAT, buf, (size_t)n, 0) < 0 ? -errno : 0;
}
