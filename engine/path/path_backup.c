/* SPDX-License-Identifier: MIT */
/*
 * The --backup-dir root (path.h): found, and made where missing, one
 * component at a time, as rsync makes it on first use.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/path/path.h"
#include "engine/platform/platform.h"

/* The directory @comp of @dirfd, made if missing: beneath @dirfd with no
 * symlink followed when @beneath, else as open(2) finds it. */
static int open_level(int dirfd, const char *comp, int beneath)
{
	int r = berth_plat_mkdirat(dirfd, comp, 0777);

	if (r < 0 && r != -EEXIST)
		return r;
	if (beneath)
		return berth_plat_open_beneath(dirfd, comp,
					       O_PATH | O_DIRECTORY);
	return berth_plat_open_dir(dirfd, comp);
}

/* The next component of *@p (slashes skipped) into @comp: its length (*@p
 * moved past it), 0 at the end, or -ENAMETOOLONG (*@p left at it). */
static int next_comp(const char **p, char comp[NAME_MAX + 1])
{
	size_t n;

	while (**p == '/')
		(*p)++;
	n = strcspn(*p, "/");
	if (n > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(comp, *p, n);
	comp[n] = '\0';
	*p += n;
	return (int)n;
}

int berth_path_backup_root(int root_fd, const char *dir)
{
	const char *p = dir;
	char comp[NAME_MAX + 1];
	int beneath = *p != '/', fd, next, n;

	fd = berth_plat_open_dir(beneath ? root_fd : AT_FDCWD,
				 beneath ? "." : "/");
	if (fd < 0)
		return fd;
	while ((n = next_comp(&p, comp)) > 0) {
		next = open_level(fd, comp, beneath);
		close(fd);
		if (next < 0)
			return next;
		fd = next;
	}
	if (n < 0) {
		close(fd);
		return n;
	}
	return fd;
}

int berth_path_open_prefix(const char *dir, const char **rest)
{
	const char *p = dir, *at;
	char comp[NAME_MAX + 1];
	int fd, next, n;

	*rest = dir;
	fd = berth_plat_open_dir(AT_FDCWD, "/");
	if (fd < 0)
		return fd;
	for (at = p; (n = next_comp(&p, comp)) > 0; at = p) {
		next = berth_plat_open_dir(fd, comp);
		if (next < 0) {
			if (next == -ENOENT)
				break; /* made beneath on first use */
			close(fd);
			return next;
		}
		close(fd);
		fd = next;
	}
	/* A name too long is refused by berth_path_backup_root() then. */
	for (*rest = n != 0 ? at : p; **rest == '/'; (*rest)++)
		;
	return fd;
}
