/* SPDX-License-Identifier: MIT */
/*
 * The small-file call: a file expected to fit one buffer is created,
 * written, given its owner, mode and times, [fsynced,] [backed up] and
 * renamed in one blocking call, instead of a request per step
 * (commit_steps.c runs it on the commit thread, or submits it to the pump
 * once that is shut down, and takes its result).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/commit/commit_int.h"

/*
 * A small file in one call (commit thread, or a pool thread): the same
 * steps as the request chain, in the same order, and on failure the temp
 * file is gone.
 */
ssize_t berth__commit_small_run(void *arg)
{
	struct berth_commit_file *f = arg;
	struct berth_commit *c = f->c;
	const struct commit_buf *b = f->sbuf;
	int dfd = f->dir->e.fd, tfd = commit_tmp_dirfd(c, f), fd, r = 0;
	struct timespec ts[2];
	size_t done = 0;
	ssize_t n;

	f->small_step = BERTH_COMMIT_STEP_OPEN;
	fd = berth_plat_open_beneath_mode(tfd, f->tmp,
					  O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return fd;
	f->small_step = BERTH_COMMIT_STEP_WRITE;
	while (b && done < b->len && !r) {
		n = berth_plat_pwrite(fd, b->data + done, b->len - done, done);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? (int)n : -EIO;
		else
			done += (size_t)n;
	}
	if (!r)
		f->small_step = BERTH_COMMIT_STEP_CHOWN;
	if (!r && c->o.preserve_owner && !c->o.fake_super &&
	    (f->meta.uid != (uint32_t)-1 || f->meta.gid != (uint32_t)-1))
		r = berth__commit_chown_result(
			c, berth_plat_fchown(fd, f->meta.uid, f->meta.gid));
	if (!r)
		f->small_step = BERTH_COMMIT_STEP_CHMOD;
	if (!r && berth__commit_mode_special(c, &f->meta))
		r = berth__commit_mode_fd(c, fd, &f->meta); /* -A, fake-super */
	else if (!r)
		r = berth_plat_fchmod(fd, f->meta.mode & 07777);
	if (!r)
		f->small_step = BERTH_COMMIT_STEP_TIMES;
	if (!r && berth__commit_times(&f->meta, ts))
		r = berth_plat_futimens(fd, ts);
	if (!r)
		f->small_step = BERTH_COMMIT_STEP_FSYNC;
	if (!r && c->o.durability != BERTH_DURABLE_NONE)
		r = berth_plat_fsync(fd);
	if (close(fd) < 0 && !r) {
		r = -errno;
		f->small_step = BERTH_COMMIT_STEP_CLOSE;
	}
	if (!r && c->o.backup_suffix) {
		f->small_step = BERTH_COMMIT_STEP_BACKUP;
		r = berth_plat_renameat(dfd, f->base, dfd, f->bak, 0);
		if (r == -ENOENT)
			r = 0;
	}
	if (!r) {
		f->small_step = BERTH_COMMIT_STEP_RENAME;
		r = berth_plat_renameat(tfd, f->tmp, dfd, f->base, 0);
	}
	if (r)
		berth_plat_unlinkat(tfd, f->tmp, 0);
	return r;
}
