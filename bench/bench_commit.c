/* SPDX-License-Identifier: MIT */
/*
 * bench_commit DIR [NFILES [POOL_THREADS [MODES]]]
 *
 * Commits NFILES (default 10000) files of 1..16 KiB into 100 directories
 * below DIR, once per durability mode through the commit stage, and once
 * per mode through a plain sequential loop in this same program (open
 * temp, write, [fsync], close, rename; "batch" adds one fsync per
 * directory at the end).  Prints files/s for each.  The pump backend
 * follows BERTH_PUMP (uring or pool).  Each run starts after sync() and
 * uses a fresh subdirectory, removed afterwards.
 *
 * For meaningful fsync numbers DIR should be on a journaled filesystem,
 * e.g. ext4 on a loop device:
 *   truncate -s 4G /tmp/b.img && mkfs.ext4 -q /tmp/b.img &&
 *   mkdir -p /tmp/bm && mount -o loop /tmp/b.img /tmp/bm
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/commit/commit.h"
#include "engine/pump/pump.h"

#define NDIRS 100
#define MAXSZ (16 * 1024)

static const char *const mode_names[] = {"none", "file", "batch"};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t file_size(int i)
{
	return 1024 + (size_t)((unsigned)i * 2654435761u) % (MAXSZ - 1024 + 1);
}

static int rm_cb(const char *p, const struct stat *sb, int flag,
		 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_tree(const char *p)
{
	nftw(p, rm_cb, 64, FTW_DEPTH | FTW_PHYS);
}

static int run_berth(struct berth_pump *pump, const char *dir, int mode, int n,
		     const unsigned char *data, double *secs)
{
	struct berth_commit_opts o = {.durability = mode};
	struct berth_commit_meta m = {.mode = 0644,
				      .mtime_sec = 1700000000,
				      .mtime_nsec = 0,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	struct berth_commit_meta dm = {.mode = 0755,
				       .mtime_nsec = UTIME_OMIT,
				       .uid = (uint32_t)-1,
				       .gid = (uint32_t)-1};
	struct berth_commit_file *f;
	struct berth_commit_stats st;
	struct berth_commit *c;
	char rel[64];
	double t0;
	int fd, r, i;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	t0 = now();
	r = berth_commit_create(pump, fd, &o, NULL, NULL, &c);
	if (r)
		goto out;
	for (i = 0; i < NDIRS && !r; i++) {
		snprintf(rel, sizeof(rel), "d%02d", i);
		r = berth_commit_mkdir(c, rel, &dm);
	}
	for (i = 0; i < n && !r; i++) {
		snprintf(rel, sizeof(rel), "d%02d/f%05d", i % NDIRS, i);
		r = berth_commit_file_begin(c, rel, &m, 0, &f);
		if (r)
			break;
		r = berth_commit_file_write(f, data + (i & 255), file_size(i));
		if (r)
			berth_commit_file_abort(f);
		else
			r = berth_commit_file_finish(f);
	}
	if (!r)
		r = berth_commit_flush(c);
	berth_commit_stats(c, &st);
	berth_commit_free(c);
	*secs = now() - t0;
	if (!r && st.files_done != (uint64_t)n)
		r = -EIO;
out:
	close(fd);
	return r;
}

/* The plain loop rsync's receiver amounts to, one file at a time. */
static int run_plain(const char *dir, int mode, int n,
		     const unsigned char *data, double *secs)
{
	int dfd[NDIRS];
	struct timespec ts[2] = {{1700000000, 0}, {1700000000, 0}};
	char name[64], tmp[64];
	double t0 = now();
	int root, fd, i, r = 0;
	size_t len;

	root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -errno;
	for (i = 0; i < NDIRS; i++) {
		snprintf(name, sizeof(name), "d%02d", i);
		if (mkdirat(root, name, 0755) < 0)
			return -errno;
		dfd[i] = openat(root, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd[i] < 0)
			return -errno;
	}
	for (i = 0; i < n && !r; i++) {
		int d = dfd[i % NDIRS];

		snprintf(name, sizeof(name), "f%05d", i);
		snprintf(tmp, sizeof(tmp), ".f%05d.XXXXXX", i);
		fd = openat(d, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			    0600);
		if (fd < 0)
			return -errno;
		len = file_size(i);
		if (write(fd, data + (i & 255), len) != (ssize_t)len)
			r = -EIO;
		if (fchmod(fd, 0644) < 0 || futimens(fd, ts) < 0)
			r = -errno;
		if (mode != BERTH_DURABLE_NONE && fsync(fd) < 0)
			r = -errno;
		close(fd);
		if (renameat(d, tmp, d, name) < 0)
			r = -errno;
	}
	for (i = 0; i < NDIRS; i++) {
		if (mode == BERTH_DURABLE_BATCH && fsync(dfd[i]) < 0)
			r = -errno;
		close(dfd[i]);
	}
	close(root);
	*secs = now() - t0;
	return r;
}

int main(int argc, char **argv)
{
	struct berth_pump_opts po = {0};
	struct berth_pump *pump;
	unsigned char *data;
	char sub[4096];
	double secs = 0;
	int n = 10000, mode, impl, r, i;

	if (argc < 2) {
		fprintf(stderr,
			"usage: %s DIR [NFILES [POOL_THREADS [MODES]]]\n"
			"  MODES: e.g. none,file,batch (default all)\n",
			argv[0]);
		return 2;
	}
	if (argc > 2)
		n = atoi(argv[2]);
	if (argc > 3)
		po.pool_threads = (unsigned)atoi(argv[3]);
	data = malloc(MAXSZ + 256);
	if (!data)
		return 1;
	for (i = 0; i < MAXSZ + 256; i++)
		data[i] = (unsigned char)(i * 131 + 7);
	r = berth_pump_create(&po, &pump);
	if (r) {
		fprintf(stderr, "pump: %s\n", berth_strerror(r));
		return 1;
	}
	printf("# %d files of 1-16 KiB in %d dirs, pump=%s pool_threads=%u\n",
	       n, NDIRS, berth_pump_backend_name(berth_pump_backend(pump)),
	       po.pool_threads);
	for (mode = BERTH_DURABLE_NONE; mode <= BERTH_DURABLE_BATCH; mode++) {
		if (argc > 4 && !strstr(argv[4], mode_names[mode]))
			continue;
		for (impl = 0; impl < 2; impl++) {
			snprintf(sub, sizeof(sub), "%s/bench-%s-%s", argv[1],
				 mode_names[mode], impl ? "plain" : "berth");
			rm_tree(sub);
			if (mkdir(sub, 0755) < 0) {
				perror(sub);
				return 1;
			}
			sync();
			r = impl ? run_plain(sub, mode, n, data, &secs)
				 : run_berth(pump, sub, mode, n, data, &secs);
			if (r) {
				fprintf(stderr, "%s %s: %s\n", mode_names[mode],
					impl ? "plain" : "berth",
					berth_strerror(r));
				return 1;
			}
			printf("mode=%-5s impl=%-5s files=%d secs=%.3f "
			       "files/s=%.0f\n",
			       mode_names[mode], impl ? "plain" : "berth", n,
			       secs, n / secs);
			fflush(stdout);
			rm_tree(sub);
		}
	}
	berth_pump_free(pump);
	free(data);
	return 0;
}
