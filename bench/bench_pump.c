/* SPDX-License-Identifier: MIT */
/*
 * Pump benchmark: random 4 KiB reads from a file in the page cache and
 * sequential 1 MiB writes, at queue depth 1, 16 and 64, through each pump
 * backend and through plain pread/pwrite loops: "plain" runs one thread per
 * depth slot, "plain1" one thread doing all the work.  Every variant does
 * the same number of operations on the same file, and depth slot (or plain
 * thread) i draws its offsets from the same seeded generator.  Each depth
 * slot has its own 1 MiB buffer, and so does plain1: it cycles through as
 * many buffers as the depth, so every variant copies from (or to) the same
 * amount of memory.
 *
 * "uring" is the io_uring backend as created by default: its SQPOLL helper
 * ring takes a share of the reads in queues at least 16 deep.  "uring1" is
 * the backend with one ring (BERTH_PUMP_HELPER_OFF), "uring+sq" with the
 * helper taking a share of every queue (BERTH_PUMP_HELPER_ON).  --direct
 * writes with O_DIRECT into a preallocated file, so the depth reaches the
 * device.  "iocp" is the Windows backend (unavailable on Linux; under Wine
 * its figures are Wine's, not Windows').  With --rounds N everything runs
 * N times, interleaved, and a
 * table of medians follows.
 *
 *   bench_pump [--file PATH] [--size MiB] [--reads N] [--write-mib MiB]
 *              [--qd N] [--only VARIANT,...] [--no-writes] [--direct]
 *              [--rounds N]
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
#include <sys/stat.h>
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
	unsigned nbuf; /* buffers to cycle through: depth slots served */
};

static void *plain_worker(void *arg)
{
	struct plain_arg *a = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (a->id + 1), i, off;
	char *bufs, *buf;
	unsigned k;

	if (posix_memalign((void **)&bufs, 4096, (size_t)a->nbuf * WR_SIZE))
		abort();
	for (k = 0; k < a->nbuf; k++)
		memset(bufs + (size_t)k * WR_SIZE, (int)(a->id + k), WR_SIZE);
	for (i = 0; i < a->ops; i++) {
		buf = bufs + (size_t)(i % a->nbuf) * WR_SIZE;
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
	free(bufs);
	return NULL;
}

/* @nth threads do @ops operations, each cycling through qd / nth buffers. */
static double run_plain(int fd, uint64_t size, int writing, unsigned nth,
			unsigned qd, uint64_t ops)
{
	pthread_t th[MAX_QD];
	struct plain_arg a[MAX_QD];
	double t0 = now();
	unsigned i;

	for (i = 0; i < nth; i++) {
		a[i] = (struct plain_arg){
			.fd = fd,
			.size = size,
			.ops = ops / nth + (i < ops % nth),
			.writing = writing,
			.first_off = (uint64_t)i * WR_SIZE,
			.stride = (uint64_t)nth * WR_SIZE,
			.id = i,
			.nbuf = qd / nth,
		};
		if (pthread_create(&th[i], NULL, plain_worker, &a[i]))
			abort();
	}
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	return now() - t0;
}

static void report(const char *what, const char *via, unsigned qd, uint64_t ops,
		   size_t opsize, double secs)
{
	printf("%-6s %-8s qd=%-3u %10.0f ops/s %7.2f GB/s\n", what, via, qd,
	       (double)ops / secs, (double)ops * (double)opsize / secs / 1e9);
}

/* What one row of the table runs. */
struct variant {
	const char *name;
	int backend; /* BERTH_PUMP_*, or 0 for a plain loop */
	int helper; /* berth_pump_opts.helper for the uring backend */
	bool one_thread; /* plain: one thread instead of one per slot */
};

static const struct variant variants[] = {
	{"uring", BERTH_PUMP_URING, BERTH_PUMP_HELPER_DEFAULT, false},
	{"uring1", BERTH_PUMP_URING, BERTH_PUMP_HELPER_OFF, false},
	{"uring+sq", BERTH_PUMP_URING, BERTH_PUMP_HELPER_ON, false},
	{"pool", BERTH_PUMP_POOL, BERTH_PUMP_HELPER_OFF, false},
	/* Windows: the completion port (unavailable elsewhere). */
	{"iocp", BERTH_PUMP_IOCP, BERTH_PUMP_HELPER_OFF, false},
	{"plain", 0, 0, false},
	{"plain1", 0, 0, true},
};

#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))
#define NQDS 3
#define MAX_ROUNDS 15

struct config {
	int fd;
	uint64_t size;
	uint64_t reads;
	uint64_t write_mib;
	const char *wpath;
	bool writes;
	bool direct; /* writes with O_DIRECT into a preallocated file */
};

/* ops/s per variant, depth, read(0)/write(1), round; 0 = not run. */
static double results[NVARIANTS][NQDS][2][MAX_ROUNDS];

static int run_one(const struct config *c, const struct variant *v, unsigned qd,
		   double out[2])
{
	struct berth_pump_opts opts = {0};
	struct berth_pump *pump = NULL;
	unsigned nth = v->one_thread ? 1 : qd;
	int wfd, ret;
	double s;

	if (v->backend) {
		opts.helper = v->helper;
		opts.backend = v->backend;
		opts.pool_threads = qd < 4 ? 4 : qd;
		ret = berth_pump_create(&opts, &pump);
		if (ret < 0) {
			printf("%s: unavailable (%s)\n", v->name,
			       berth_strerror(ret));
			return ret;
		}
		if (v->helper == BERTH_PUMP_HELPER_ON &&
		    !strstr(berth_pump_backend_reason(pump), "helper ring")) {
			printf("%s: unavailable (%s)\n", v->name,
			       berth_pump_backend_reason(pump));
			berth_pump_free(pump);
			return -EOPNOTSUPP;
		}
		s = run_pump(pump, c->fd, c->size, 0, qd, c->reads);
	} else {
		s = run_plain(c->fd, c->size, 0, nth, qd, c->reads);
	}
	out[0] = (double)c->reads / s;
	report("read", v->name, qd, c->reads, RD_SIZE, s);
	if (c->writes) {
		wfd = open(c->wpath,
			   O_RDWR | O_CREAT | O_TRUNC |
				   (c->direct ? O_DIRECT : 0),
			   0600);
		if (wfd < 0 ||
		    (c->direct &&
		     (errno = posix_fallocate(
			      wfd, 0, (off_t)(c->write_mib * WR_SIZE))))) {
			perror(c->wpath);
			exit(1);
		}
		s = pump ? run_pump(pump, wfd, 0, 1, qd, c->write_mib)
			 : run_plain(wfd, 0, 1, nth, qd, c->write_mib);
		out[1] = (double)c->write_mib / s;
		report("write", v->name, qd, c->write_mib, WR_SIZE, s);
		close(wfd);
	}
	berth_pump_free(pump);
	return 0;
}

/* Whether @name is one of the comma-separated @list (NULL: all). */
static bool wanted(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	if (!list)
		return true;
	for (p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
	double tmp[MAX_ROUNDS];
	unsigned i, k = 0;

	for (i = 0; i < n; i++)
		if (v[i] > 0)
			tmp[k++] = v[i];
	if (!k)
		return 0;
	qsort(tmp, k, sizeof(tmp[0]), cmp_double);
	return k % 2 ? tmp[k / 2] : (tmp[k / 2 - 1] + tmp[k / 2]) / 2;
}

static void print_loadavg(const char *when)
{
	char line[128] = "?";
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (!fgets(line, sizeof(line), f))
			snprintf(line, sizeof(line), "?\n");
		fclose(f);
	}
	printf("# loadavg %s: %s", when, line);
}

int main(int argc, char **argv)
{
	const char *path = "/tmp/berth-bench-pump.dat";
	const char *only = NULL;
	static const unsigned qds[NQDS] = {1, 16, 64};
	struct config c = {
		.wpath = "/tmp/berth-bench-pump.out",
		.reads = 2000000,
		.write_mib = 1024,
		.writes = true,
	};
	uint64_t size_mib = 1024, done, chunk = 64u << 20;
	unsigned qd, one_qd = 0, rounds = 1, r, q, v, w;
	struct stat st;
	double out[2];
	char *buf;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-writes")) {
			c.writes = false;
			continue;
		}
		if (!strcmp(argv[i], "--direct")) {
			c.direct = true;
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
			c.reads = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--write-mib"))
			c.write_mib = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--qd"))
			one_qd = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--only"))
			only = argv[++i];
		else if (!strcmp(argv[i], "--rounds"))
			rounds = (unsigned)strtoul(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "bench_pump: unknown option %s\n",
				argv[i]);
			return 2;
		}
	}
	if (one_qd > MAX_QD || size_mib == 0 || rounds == 0 ||
	    rounds > MAX_ROUNDS || c.reads == 0) {
		fprintf(stderr,
			"bench_pump: --qd at most %d, --size and --reads > 0, "
			"--rounds 1..%d\n",
			MAX_QD, MAX_ROUNDS);
		return 2;
	}
	c.size = size_mib << 20;

	/* Make the read file (or reuse one of the right size) and pull it
	 * into the page cache. */
	c.fd = open(path, O_RDWR | O_CREAT, 0600);
	if (c.fd < 0 || fstat(c.fd, &st) < 0 || !(buf = malloc(chunk))) {
		perror(path);
		return 1;
	}
	memset(buf, 0x5a, chunk);
	for (done = 0; (uint64_t)st.st_size != c.size && done < c.size;
	     done += chunk)
		if (pwrite(c.fd, buf, chunk, (off_t)done) != (ssize_t)chunk)
			return 1;
	for (done = 0; done < c.size; done += chunk)
		if (pread(c.fd, buf, chunk, (off_t)done) != (ssize_t)chunk)
			return 1;
	free(buf);
	printf("# %llu MiB file in the page cache, %llu random 4 KiB reads, "
	       "%llu MiB of 1 MiB writes, %u round(s)\n",
	       (unsigned long long)size_mib, (unsigned long long)c.reads,
	       (unsigned long long)(c.writes ? c.write_mib : 0), rounds);
	print_loadavg("at start");

	for (r = 0; r < rounds; r++) {
		for (q = 0; q < NQDS; q++) {
			qd = one_qd ? one_qd : qds[q];
			if (one_qd && q > 0)
				break;
			for (v = 0; v < NVARIANTS; v++) {
				/* At depth 1 both plain loops are one. */
				if (!wanted(only, variants[v].name) ||
				    (variants[v].one_thread && qd == 1))
					continue;
				out[0] = out[1] = 0;
				if (run_one(&c, &variants[v], qd, out) == 0) {
					results[v][q][0][r] = out[0];
					results[v][q][1][r] = out[1];
				}
			}
		}
	}
	print_loadavg("at end");
	if (rounds > 1) {
		printf("# medians of %u rounds (ops/s)\n", rounds);
		for (w = 0; w < (c.writes ? 2u : 1u); w++) {
			for (q = 0; q < NQDS; q++) {
				qd = one_qd ? one_qd : qds[q];
				if (one_qd && q > 0)
					break;
				printf("%-6s qd=%-3u", w ? "write" : "read",
				       qd);
				for (v = 0; v < NVARIANTS; v++) {
					double m = median(results[v][q][w],
							  rounds);

					if (m > 0)
						printf("  %s %.0f",
						       variants[v].name, m);
				}
				printf("\n");
			}
		}
	}
	close(c.fd);
	unlink(c.wpath);
	return 0;
}
