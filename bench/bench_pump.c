/* SPDX-License-Identifier: MIT */
/*
 * Pump benchmark: random 4 KiB reads from a file in the page cache and
 * sequential 1 MiB writes, at queue depth 1, 16 and 64, through each pump
 * backend and through plain pread/pwrite loops: "plain" runs one thread per
 * depth slot, "plain1" one thread doing all the work.  Every variant does
 * the same number of operations on the same file, and depth slot (or plain
 * thread) i draws its offsets from the same seeded generator.
 *
 *   bench_pump [--file PATH] [--size MiB] [--reads N] [--write-mib MiB]
 *              [--qd N] [--only uring|pool|plain|plain1] [--no-writes]
 *
 * Not a test: it prints ops/s and GB/s and always exits 0 on success.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/pump/pump.h"

#define RD_SIZE 4096
#define WR_SIZE (1u << 20)
#define MAX_QD 64

struct bench {
	struct berth_pump *pump;
	int fd;
	uint64_t file_size;
	int writing;
	atomic_int failed;
	atomic_uint slots_left; /* slots still working through their quota */
	int finished; /* under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* One depth slot: after its first submit only its callback touches it. */
struct slot {
	struct berth_req req;
	struct bench *b;
	uint64_t rng;
	uint64_t left; /* operations still to issue */
	uint64_t next_off; /* writes: this slot's next offset */
	uint64_t stride; /* writes: qd * WR_SIZE */
	char *buf;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64*: cheap, good enough to scatter offsets. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void slot_issue(struct slot *s);

static void slot_done(struct berth_req *req, ssize_t res)
{
	struct slot *s = req->data;
	struct bench *b = s->b;
	size_t want = b->writing ? WR_SIZE : RD_SIZE;

	if (res != (ssize_t)want)
		atomic_store(&b->failed, 1);
	if (s->left > 0 && !atomic_load(&b->failed)) {
		slot_issue(s);
		return;
	}
	if (atomic_fetch_sub(&b->slots_left, 1) == 1) {
		pthread_mutex_lock(&b->lock);
		b->finished = 1;
		pthread_cond_signal(&b->cond);
		pthread_mutex_unlock(&b->lock);
	}
}

static void slot_issue(struct slot *s)
{
	struct bench *b = s->b;
	uint64_t off;

	s->left--;
	if (b->writing) {
		off = s->next_off;
		s->next_off += s->stride;
		berth_prep_write(&s->req, b->fd, s->buf, WR_SIZE, off);
	} else {
		off = (rnd(&s->rng) % (b->file_size / RD_SIZE)) * RD_SIZE;
		berth_prep_read(&s->req, b->fd, s->buf, RD_SIZE, off);
	}
	berth_req_set_cb(&s->req, slot_done, s, 0);
	if (berth_pump_submit(b->pump, &s->req) < 0)
		abort();
}

/* Runs @ops operations at depth @qd; returns seconds. */
static double run_pump(struct berth_pump *pump, int fd, uint64_t size,
		       int writing, unsigned qd, uint64_t ops)
{
	static struct slot slots[MAX_QD];
	struct bench b = {0};
	double t0;
	unsigned i;

	b.pump = pump;
	b.fd = fd;
	b.file_size = size;
	b.writing = writing;
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	atomic_store(&b.slots_left, qd);
	for (i = 0; i < qd; i++) {
		slots[i].b = &b;
		slots[i].rng = 0x9e3779b97f4a7c15ull * (i + 1);
		slots[i].left = ops / qd + (i < ops % qd);
		slots[i].next_off = (uint64_t)i * WR_SIZE;
		slots[i].stride = (uint64_t)qd * WR_SIZE;
		if (!slots[i].buf &&
		    posix_memalign((void **)&slots[i].buf, 4096, WR_SIZE))
			abort();
		memset(slots[i].buf, (int)i, WR_SIZE);
	}
	t0 = now();
	for (i = 0; i < qd; i++)
		slot_issue(&slots[i]);
	pthread_mutex_lock(&b.lock);
	while (!b.finished)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	if (atomic_load(&b.failed)) {
		fprintf(stderr, "bench: an I/O failed\n");
		exit(1);
	}
	return now() - t0;
}

struct plain_arg {
	int fd;
	uint64_t size;
	uint64_t ops;
	int writing;
	uint64_t first_off, stride;
	unsigned id;
};

static void *plain_worker(void *arg)
{
	struct plain_arg *a = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (a->id + 1), i, off;
	char *buf;

	if (posix_memalign((void **)&buf, 4096, WR_SIZE))
		abort();
	memset(buf, 1, WR_SIZE);
	for (i = 0; i < a->ops; i++) {
		if (a->writing) {
			off = a->first_off + i * a->stride;
			if (pwrite(a->fd, buf, WR_SIZE, (off_t)off) != WR_SIZE)
				abort();
		} else {
			off = (rnd(&rng) % (a->size / RD_SIZE)) * RD_SIZE;
			if (pread(a->fd, buf, RD_SIZE, (off_t)off) != RD_SIZE)
				abort();
		}
	}
	free(buf);
	return NULL;
}

static double run_plain(int fd, uint64_t size, int writing, unsigned qd,
			uint64_t ops)
{
	pthread_t th[MAX_QD];
	struct plain_arg a[MAX_QD];
	double t0 = now();
	unsigned i;

	for (i = 0; i < qd; i++) {
		a[i] = (struct plain_arg){
			.fd = fd,
			.size = size,
			.ops = ops / qd + (i < ops % qd),
			.writing = writing,
			.first_off = (uint64_t)i * WR_SIZE,
			.stride = (uint64_t)qd * WR_SIZE,
			.id = i,
		};
		if (pthread_create(&th[i], NULL, plain_worker, &a[i]))
			abort();
	}
	for (i = 0; i < qd; i++)
		pthread_join(th[i], NULL);
	return now() - t0;
}

static void report(const char *what, const char *via, unsigned qd, uint64_t ops,
		   size_t opsize, double secs)
{
	printf("%-6s %-6s qd=%-3u %10.0f ops/s %7.2f GB/s\n", what, via, qd,
	       (double)ops / secs, (double)ops * (double)opsize / secs / 1e9);
}

static bool wanted(const char *only, const char *via)
{
	return !only || !strcmp(only, via);
}

int main(int argc, char **argv)
{
	const char *path = "/tmp/berth-bench-pump.dat";
	const char *wpath = "/tmp/berth-bench-pump.out";
	const char *only = NULL;
	uint64_t size_mib = 1024, reads = 2000000, write_mib = 1024;
	static const unsigned qds[] = {1, 16, 64};
	static const int backends[] = {BERTH_PUMP_URING, BERTH_PUMP_POOL};
	struct berth_pump_opts opts = {0};
	struct berth_pump *pump;
	uint64_t done, chunk = 64u << 20;
	unsigned qd, one_qd = 0;
	bool writes = true;
	char *buf;
	int fd, wfd, i, q, ret;
	double s;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-writes")) {
			writes = false;
			continue;
		}
		if (i + 1 == argc) {
			fprintf(stderr, "bench_pump: %s needs a value\n",
				argv[i]);
			return 2;
		}
		if (!strcmp(argv[i], "--file"))
			path = argv[++i];
		else if (!strcmp(argv[i], "--size"))
			size_mib = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--reads"))
			reads = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--write-mib"))
			write_mib = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--qd"))
			one_qd = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--only"))
			only = argv[++i];
		else {
			fprintf(stderr, "bench_pump: unknown option %s\n",
				argv[i]);
			return 2;
		}
	}
	if (one_qd > MAX_QD || size_mib == 0) {
		fprintf(stderr, "bench_pump: --qd at most %d, --size > 0\n",
			MAX_QD);
		return 2;
	}

	/* Make the read file and pull it into the page cache. */
	fd = open(path, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || !(buf = malloc(chunk))) {
		perror(path);
		return 1;
	}
	memset(buf, 0x5a, chunk);
	for (done = 0; done < size_mib << 20; done += chunk)
		if (pwrite(fd, buf, chunk, (off_t)done) != (ssize_t)chunk)
			return 1;
	for (done = 0; done < size_mib << 20; done += chunk)
		if (pread(fd, buf, chunk, (off_t)done) != (ssize_t)chunk)
			return 1;
	free(buf);
	printf("# %llu MiB file in the page cache, %llu random 4 KiB reads, "
	       "%llu MiB of 1 MiB writes\n",
	       (unsigned long long)size_mib, (unsigned long long)reads,
	       (unsigned long long)(writes ? write_mib : 0));

	for (q = 0; q < 3; q++) {
		qd = one_qd ? one_qd : qds[q];
		if (one_qd && q > 0)
			break;
		for (i = 0; i < 2; i++) {
			if (!wanted(only, berth_pump_backend_name(backends[i])))
				continue;
			opts.backend = backends[i];
			opts.pool_threads = qd < 4 ? 4 : qd;
			ret = berth_pump_create(&opts, &pump);
			if (ret < 0) {
				printf("%s: unavailable (%s)\n",
				       berth_pump_backend_name(backends[i]),
				       berth_strerror(ret));
				continue;
			}
			s = run_pump(pump, fd, size_mib << 20, 0, qd, reads);
			report("read", berth_pump_backend_name(backends[i]), qd,
			       reads, RD_SIZE, s);
			if (writes) {
				wfd = open(wpath, O_RDWR | O_CREAT | O_TRUNC,
					   0600);
				if (wfd < 0) {
					perror(wpath);
					return 1;
				}
				s = run_pump(pump, wfd, 0, 1, qd, write_mib);
				report("write",
				       berth_pump_backend_name(backends[i]), qd,
				       write_mib, WR_SIZE, s);
				close(wfd);
			}
			berth_pump_free(pump);
		}
		for (i = 0; i < 2; i++) {
			const char *via = i ? "plain1" : "plain";
			unsigned nth = i ? 1 : qd;

			/* At depth 1 both are the same loop. */
			if (!wanted(only, via) || (i && qd == 1))
				continue;
			s = run_plain(fd, size_mib << 20, 0, nth, reads);
			report("read", via, qd, reads, RD_SIZE, s);
			if (!writes)
				continue;
			wfd = open(wpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
			if (wfd < 0) {
				perror(wpath);
				return 1;
			}
			s = run_plain(wfd, 0, 1, nth, write_mib);
			report("write", via, qd, write_mib, WR_SIZE, s);
			close(wfd);
		}
	}
	close(fd);
	unlink(wpath);
	return 0;
}
