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
	int fd;

	if (mkdirat(dirfd, comp, 0777) < 0 && errno != EEXIST)
		return -errno;
	if (beneath)
		return berth_plat_open_beneath(dirfd, comp,
					       O_PATH | O_DIRECTORY);
	fd = openat(dirfd, comp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int berth_path_backup_root(int root_fd, const char *dir)
{
	const char *p = dir;
	char comp[NAME_MAX + 1];
	int beneath = *p != '/', fd, next;
	size_t n;

	fd = openat(beneath ? root_fd : AT_FDCWD, beneath ? "." : "/",
		    O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (*p) {
		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		next = open_level(fd, comp, beneath);
		close(fd);
		if (next < 0)
			return next;
		fd = next;
	}
	return fd;
}
