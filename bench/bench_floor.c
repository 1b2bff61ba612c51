/* SPDX-License-Identifier: MIT */
/*
 * bench_floor: the file-system floor of an initial copy, for the benchmark
 * report (bench/run.py --floor).  It does only what any receiver of
 * `rsync -a SRC/ DST/` has to do for directories and regular files, and
 * nothing of the protocol: a child process (the sender's stand-in, not
 * counted) walks SRC and writes a small header and each file's bytes into
 * a pipe; the measured process reads them out of the pipe, makes each
 * directory and sets its mode and times, and creates each file under a
 * temporary name in its directory, writes it, computes its whole-file
 * checksum (XXH3-128, the one protocol 31 clients ask for), sets its mode
 * and times, [fsyncs,] closes it and renames it to its final name.
 * Prints the measured process's user and system CPU (every thread) and
 * its wall time:
 *
 *   bench_floor [--fsync] [--jobs N] [--tcp] [--stat | --basis] SRC DST
 *
 * --stat: the floor of a no-change re-sync instead: DST already holds
 * SRC's tree, the child sends the entries without their data, and the
 * measured process only lstats each one beneath DST and compares its
 * size and mtime (the quick check), as any receiver must; a difference is
 * an error (the premise is wrong).
 *
 * --basis: a lower bound for a delta push whose basis is as large as the
 * new file (W3): DST holds the basis of each regular file of SRC (the
 * child again sends no data); each is read once for its block sums
 * (XXH3-64 per block of rsync's size for it, no rolling checksum), then
 * again into a new file under a temporary name with its whole-file
 * checksum, mode and times, renamed over it.  No literal data, no delta
 * search, no protocol: every receiver that reads its basis and writes the
 * new file does at least this.  The new file is the basis's bytes, so the
 * destination is not SRC's afterwards.
 *
 * --jobs N: N such copies at once, each from its own pipe and child into
 * DST/c0 ... DST/c<N-1> (the concurrent workloads' floor).
 * --tcp: each child's bytes come over a loopback TCP connection instead
 * of a pipe, as a daemon's clients' do.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(BERTH_XXH_DISPATCH) && BERTH_XXH_DISPATCH
#include <xxh_x86dispatch.h> /* as berth's checksum.c */
#endif

#define BUF_SIZE (256 * 1024)

/* One entry on the pipe: this header, the path, then @size data bytes. */
struct hdr {
	uint32_t path_len;
	uint32_t mode;
	uint64_t size;
	int64_t mtime_sec;
	int64_t mtime_nsec;
};

struct dir_fix {
	struct hdr h;
	char *path;
};

enum { MODE_COPY, MODE_STAT, MODE_BASIS };

struct job {
	char dst[4096];
	bool fsync;
	int mode; /* MODE_* */
	int fd; /* the pipe's read end */
	XXH3_state_t *sum; /* the whole-file checksum, reset per file */
	int err;
};

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

/* The sender's stand-in: @rel (relative to @root) and everything below. */
static int send_tree(int out, const char *root, const char *rel, char *buf,
		     bool data)
{
	char path[4096];
	struct stat st;
	struct hdr h;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	if (lstat(path, &st) < 0)
		return -1;
	h = (struct hdr){(uint32_t)strlen(rel), st.st_mode,
			 S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0,
			 st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return 0;
	if (write_all(out, &h, sizeof(h)) < 0 ||
	    write_all(out, rel, h.path_len) < 0)
		return -1;
	if (S_ISREG(st.st_mode) && !data)
		return 0;
	if (S_ISREG(st.st_mode)) {
		int fd = open(path, O_RDONLY);
		ssize_t n;

		if (fd < 0)
			return -1;
		while ((n = read(fd, buf, BUF_SIZE)) > 0)
			if (write_all(out, buf, (size_t)n) < 0)
				break;
		close(fd);
		return n == 0 ? 0 : -1;
	}
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char sub[4096];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", rel, e->d_name);
		if (send_tree(out, root, sub, buf, data) < 0) {
			closedir(d);
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/* @path beneath @dfd made from @h->size bytes read from @src: a temporary
 * name, the bytes with their XXH3-128, mode, times, [fsync,] close,
 * rename. */
static int receive_file(struct job *j, int dfd, const char *path,
			const struct hdr *h, int src, char *buf)
{
	const char *slash = strrchr(path, '/');
	size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
	struct timespec ts[2] = {{h->mtime_sec, h->mtime_nsec},
				 {h->mtime_sec, h->mtime_nsec}};
	char tmp[4200];
	XXH3_state_t *x = j->sum;
	uint64_t left = h->size;
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%.*s.%s.floor", (int)dl, path, path + dl);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	XXH3_128bits_reset(x);
	while (left > 0 && r == 0) {
		size_t n = left < BUF_SIZE ? (size_t)left : BUF_SIZE;

		r = read_all(src, buf, n);
		if (r == 0) {
			XXH3_128bits_update(x, buf, n);
			r = fd < 0 ? -1 : write_all(fd, buf, n);
		}
		left -= n;
	}
	(void)XXH3_128bits_digest(x);
	if (fd < 0)
		return -1;
	if (r == 0 && (fchmod(fd, h->mode & 07777) < 0 ||
		       futimens(fd, ts) < 0 || (j->fsync && fsync(fd) < 0)))
		r = -1;
	if (close(fd) < 0)
		r = -1;
	if (r == 0 && renameat(dfd, tmp, dfd, path) < 0)
		r = -1;
	return r;
}

/* Where --basis puts its block sums, so that they are computed. */
volatile uint64_t floor_sink;

/* rsync's block length for a file of @len bytes (protocol 30 and up). */
static size_t block_len(uint64_t len)
{
	uint64_t b = 1;

	if (len <= 700 * 700)
		return 700;
	while (b * b < len)
		b++;
	b &= ~(uint64_t)7;
	return b > 131072 ? 131072 : (size_t)b;
}

/* --basis: one file's basis read twice, as in the comment at the top: its
 * block sums, then the new file made of its bytes. */
static int rebuild(struct job *j, int dfd, const char *path,
		   const struct hdr *h, char *buf)
{
	struct hdr b = *h; /* the mode and times of SRC's file */
	struct stat st;
	size_t bl, off;
	ssize_t n = -1;
	int in = openat(dfd, path, O_RDONLY | O_CLOEXEC), r = -1;

	if (in < 0)
		return -1;
	if (fstat(in, &st) == 0) {
		b.size = (uint64_t)st.st_size;
		bl = block_len(b.size);
		while ((n = read(in, buf, BUF_SIZE)) > 0)
			for (off = 0; off < (size_t)n; off += bl)
				floor_sink ^= XXH3_64bits(
					buf + off, (size_t)n - off < bl
							   ? (size_t)n - off
							   : bl);
	}
	if (n == 0 && lseek(in, 0, SEEK_SET) == 0)
		r = receive_file(j, dfd, path, &b, in, buf);
	close(in);
	return r;
}

/* --stat and --basis: the quick check of every entry beneath DST, and with
 * --basis each regular file rebuilt from itself.  The entries are read
 * through a large buffer, as a receiver reads its file list, so the floor
 * is the lstats and not two pipe reads per entry. */
static void check(struct job *j, char *buf)
{
	char path[4097];
	struct stat st;
	struct hdr h;
	int dfd = open(j->dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	FILE *in = fdopen(dup(j->fd), "r");

	if (dfd < 0 || !in || setvbuf(in, NULL, _IOFBF, BUF_SIZE)) {
		j->err = errno ? errno : ENOMEM;
		goto out;
	}
	while (fread(&h, sizeof(h), 1, in) == 1) {
		if (h.path_len >= sizeof(path) ||
		    fread(path, 1, h.path_len, in) != h.path_len) {
			j->err = EPROTO;
			break;
		}
		path[h.path_len] = '\0';
		if (fstatat(dfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			j->err = errno;
			break;
		}
		if (j->mode == MODE_BASIS) {
			if (S_ISREG(h.mode) &&
			    rebuild(j, dfd, path, &h, buf) < 0) {
				j->err = errno ? errno : EIO;
				break;
			}
		} else if (S_ISREG(h.mode) &&
			   ((uint64_t)st.st_size != h.size ||
			    st.st_mtim.tv_sec != h.mtime_sec)) {
			j->err = ESTALE; /* not a no-change re-sync */
			break;
		}
	}
out:
	if (in)
		fclose(in);
	if (dfd >= 0)
		close(dfd);
}

static void *receive(void *arg)
{
	struct job *j = arg;
	char *buf = malloc(BUF_SIZE);
	char path[4097];
	struct hdr h;
	struct dir_fix *fix = NULL;
	size_t nfix = 0;
	int dfd;

	j->sum = XXH3_createState();
	if (buf && j->sum && j->mode != MODE_COPY) {
		check(j, buf);
		XXH3_freeState(j->sum);
		free(buf);
		return NULL;
	}
	if (!buf || !j->sum || mkdir(j->dst, 0755) < 0) {
		j->err = buf && j->sum ? errno : ENOMEM;
		XXH3_freeState(j->sum);
		free(buf);
		return NULL;
	}
	dfd = open(j->dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (dfd >= 0 && read_all(j->fd, &h, sizeof(h)) == 0) {
		if (h.path_len >= sizeof(path) ||
		    read_all(j->fd, path, h.path_len) < 0) {
			j->err = EPROTO;
			break;
		}
		path[h.path_len] = '\0';
		if (S_ISDIR(h.mode)) {
			/* "." is DST itself.  Mode and times at the end, as
			 * rsync sets them: the files change the mtime. */
			struct dir_fix *n = realloc(fix,
						    (nfix + 1) * sizeof(*fix));

			if (!n || (strcmp(path, ".") &&
				   mkdirat(dfd, path, 0700) < 0)) {
				j->err = n ? errno : ENOMEM;
				break;
			}
			fix = n;
			fix[nfix].h = h;
			fix[nfix++].path = strdup(path);
		} else if (receive_file(j, dfd, path, &h, j->fd, buf) < 0) {
			j->err = errno ? errno : EIO;
			break;
		}
	}
	while (nfix > 0) {
		struct dir_fix *f = &fix[--nfix];
		struct timespec ts[2] = {{f->h.mtime_sec, f->h.mtime_nsec},
					 {f->h.mtime_sec, f->h.mtime_nsec}};

		if (!j->err &&
		    (!f->path ||
		     fchmodat(dfd, f->path, f->h.mode & 07777, 0) < 0 ||
		     utimensat(dfd, f->path, ts, 0) < 0))
			j->err = f->path ? errno : ENOMEM;
		free(f->path);
	}
	free(fix);
	if (dfd < 0)
		j->err = errno;
	else
		close(dfd);
	XXH3_freeState(j->sum);
	free(buf);
	return NULL;
}

static double secs(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* A connected loopback TCP pair: fds[0] reads what fds[1] writes. */
static int tcp_pair(int fds[2])
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	if (l < 0)
		return -1;
	fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ok = fds[1] >= 0 && !bind(l, (struct sockaddr *)&sa, sizeof(sa)) &&
	     !listen(l, 1) && !getsockname(l, (struct sockaddr *)&sa, &len) &&
	     !connect(fds[1], (struct sockaddr *)&sa, sizeof(sa));
	fds[0] = ok ? accept4(l, NULL, NULL, SOCK_CLOEXEC) : -1;
	close(l);
	if (fds[0] < 0) {
		if (fds[1] >= 0)
			close(fds[1]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct job *jobs;
	pthread_t *th;
	pid_t *kids;
	struct rusage ru;
	struct timespec t0, t1;
	bool fsync_on = false, tcp = false;
	int mode = MODE_COPY;
	int njobs = 1, i, err = 0, a = 1;

	for (; a < argc && argv[a][0] == '-'; a++) {
		if (!strcmp(argv[a], "--fsync"))
			fsync_on = true;
		else if (!strcmp(argv[a], "--tcp"))
			tcp = true;
		else if (!strcmp(argv[a], "--stat"))
			mode = MODE_STAT;
		else if (!strcmp(argv[a], "--basis"))
			mode = MODE_BASIS;
		else if (!strcmp(argv[a], "--jobs") && a + 1 < argc)
			njobs = atoi(argv[++a]);
		else
			break;
	}
	if (argc - a != 2 || njobs < 1 || njobs > 64) {
		fprintf(stderr, "usage: bench_floor [--fsync] [--jobs N] "
				"[--tcp] [--stat | --basis] SRC DST\n");
		return 2;
	}
	jobs = calloc((size_t)njobs, sizeof(*jobs));
	th = calloc((size_t)njobs, sizeof(*th));
	kids = calloc((size_t)njobs, sizeof(*kids));
	if (!jobs || !th || !kids ||
	    (njobs > 1 && mode == MODE_COPY && mkdir(argv[a + 1], 0755)))
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < njobs; i++) {
		int p[2];

		if (tcp ? tcp_pair(p) < 0 : pipe2(p, O_CLOEXEC) < 0)
			return 1;
		kids[i] = fork();
		if (kids[i] == 0) {
			char *buf = malloc(BUF_SIZE);

			close(p[0]);
			_exit(buf && send_tree(p[1], argv[a], ".", buf,
					       mode == MODE_COPY) == 0
				      ? 0
				      : 1);
		}
		close(p[1]);
		jobs[i].fsync = fsync_on;
		jobs[i].mode = mode;
		jobs[i].fd = p[0];
		if (njobs > 1)
			snprintf(jobs[i].dst, sizeof(jobs[i].dst), "%s/c%d",
				 argv[a + 1], i);
		else
			snprintf(jobs[i].dst, sizeof(jobs[i].dst), "%s",
				 argv[a + 1]);
		if (pthread_create(&th[i], NULL, receive, &jobs[i]))
			return 1;
	}
	for (i = 0; i < njobs; i++) {
		int st;

		pthread_join(th[i], NULL);
		close(jobs[i].fd);
		waitpid(kids[i], &st, 0);
		if (jobs[i].err || !WIFEXITED(st) || WEXITSTATUS(st))
			err = jobs[i].err ? jobs[i].err : EIO;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	getrusage(RUSAGE_SELF, &ru);
	printf("user %.3f sys %.3f wall %.3f\n", secs(ru.ru_utime),
	       secs(ru.ru_stime),
	       (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	if (err)
		fprintf(stderr, "bench_floor: %s\n", strerror(err));
	free(jobs);
	free(th);
	free(kids);
	return err ? 1 : 0;
}
