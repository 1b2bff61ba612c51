/* SPDX-License-Identifier: MIT */
/*
 * bench_delta: delta engine throughput next to the machine's memcpy and
 * xxh3 rates.
 *
 *   signature: MB/s of berth_sig_file() over a basis of BENCH_MB (default
 *              1024) MiB, per checksum type (page cache warm), and of the
 *              pure berth_sig_blocks() over the same bytes in memory;
 *   apply:     MB/s of token apply rebuilding a file of the same size with
 *              1% of its blocks replaced by literals (synthetic token stream:
 *              matching 1 GiB with a sender is not what is measured), the
 *              output callback only touching the data.
 *
 * Usage: bench_delta [MiB]   (or BENCH_MB=...).  Not a test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/basis/basis.h"
#include "engine/delta/delta.h"
#include "engine/pump/pump.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mbs(uint64_t bytes, double secs)
{
	return (double)bytes / (1 << 20) / secs;
}

static uint64_t sink_sum;

static int count_cb(void *arg, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	(void)arg;
	/* Touch one byte per page so the data is not left unread. */
	for (size_t i = 0; i < len; i += 4096)
		sink_sum += p[i];
	return 0;
}

static void fill(uint8_t *b, size_t n, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i + 8 <= n; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(b + i, &x, 8);
	}
}

int main(int argc, char **argv)
{
	static const int types[] = {BERTH_CSUM_XXH128, BERTH_CSUM_XXH3,
				    BERTH_CSUM_XXH64, BERTH_CSUM_MD5,
				    BERTH_CSUM_MD4};
	const char *env = getenv("BENCH_MB");
	size_t mb = argc > 1 ? strtoul(argv[1], NULL, 0)
		    : env    ? strtoul(env, NULL, 0)
			     : 1024;
	size_t size = mb << 20;
	struct berth_pump_opts po = {0};
	struct berth_pump *pump;
	char path[] = "/tmp/bench-delta-XXXXXX";
	uint8_t *basis, *dst, *wire;
	double t;
	int fd, ret;

	basis = malloc(size);
	dst = malloc(size);
	if (!basis || !dst)
		return 1;
	fill(basis, size, 42);
	fd = mkstemp(path);
	if (fd < 0)
		return 1;
	unlink(path);
	for (size_t off = 0; off < size;) {
		ssize_t n = write(fd, basis + off, size - off);

		if (n <= 0)
			return 1;
		off += (size_t)n;
	}
	ret = berth_pump_create(&po, &pump);
	if (ret < 0) {
		fprintf(stderr, "pump: %s\n", berth_strerror(ret));
		return 1;
	}
	printf("bench_delta: %zu MiB, pump backend %s\n", mb,
	       berth_pump_backend_name(berth_pump_backend(pump)));

	memset(dst, 0, size); /* fault the pages in first */
	t = now();
	memcpy(dst, basis, size);
	t = now() - t;
	printf("%-28s %8.0f MB/s\n", "memcpy", mbs(size, t));
	t = now();
	sink_sum += XXH3_64bits(basis, size);
	t = now() - t;
	printf("%-28s %8.0f MB/s\n", "xxh3 (one shot)", mbs(size, t));
	t = now();
	sink_sum += berth_rolling(basis, size);
	t = now() - t;
	printf("%-28s %8.0f MB/s\n", "rolling checksum", mbs(size, t));

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct berth_sig_opts so = {.pump = pump};
		struct berth_csum_params p;
		struct berth_sum_head h;
		struct berth_sig *s;
		char label[64];

		berth_csum_params_init(&p, types[i], 12345, 32, 0x1ff);
		berth_sum_head_init(&h, size, 32, types[i], 0, 0);
		wire = malloc(berth_sig_wire_len(&h));
		t = now();
		berth_sig_blocks(&p, &h, 0, (uint32_t)h.count, basis, wire);
		t = now() - t;
		free(wire);
		snprintf(label, sizeof(label), "sig %s (memory, B=%d)",
			 berth_csum_name(types[i]), h.blength);
		printf("%-28s %8.0f MB/s\n", label, mbs(size, t));

		berth_sig_create(&so, &s);
		t = now();
		ret = berth_sig_file(s, fd, &h, &p, count_cb, NULL);
		t = now() - t;
		berth_sig_free(s);
		snprintf(label, sizeof(label), "sig %s (file)",
			 berth_csum_name(types[i]));
		printf("%-28s %8.0f MB/s%s\n", label, mbs(size, t),
		       ret ? " (error)" : "");
	}

	/* Apply: 1% of the blocks become literals. */
	{
		struct berth_delta_apply_opts ao = {.pump = pump,
						    .out = count_cb};
		struct berth_delta_file f = {.basis_fd = fd,
					     .basis_size = size,
					     .csum_type = BERTH_CSUM_XXH128};
		struct berth_delta_apply *a;
		uint8_t sum[BERTH_CSUM_MAX_DIGEST] = {0};
		uint64_t x = 7, total = 0, lit = 0;
		uint32_t run = 0;

		berth_sum_head_init(&f.head, size, 32, f.csum_type, 0, 0);
		berth_delta_apply_create(&ao, &a);
		t = now();
		berth_delta_apply_begin(a, &f);
		for (uint32_t i = 0; i < (uint32_t)f.head.count; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (x % 100)
				continue; /* block i matches: part of a run */
			if (i > run)
				berth_delta_apply_blocks(a, run, i - run);
			/* Stock senders send literals in 32 KiB pieces. */
			uint32_t len = berth_sum_head_block_len(&f.head, i);
			for (uint32_t o = 0; o < len; o += 32768)
				berth_delta_apply_literal(
					a,
					dst +
						(size_t)i * (uint32_t)f.head
								    .blength +
						o,
					len - o < 32768 ? len - o : 32768);
			lit += len;
			run = i + 1;
		}
		if ((uint32_t)f.head.count > run)
			berth_delta_apply_blocks(a, run,
						 (uint32_t)f.head.count - run);
		ret = berth_delta_apply_finish(a, sum, 16, &total);
		t = now() - t;
		printf("%-28s %8.0f MB/s (%.1f%% literal, %s)\n",
		       "apply xxh128, 1% changed", mbs(total, t),
		       100.0 * (double)lit / (double)size,
		       ret == -BERTH_ECHECKSUM ? "sum checked"
					       : berth_strerror(ret));
		berth_delta_apply_free(a);
	}

	berth_pump_free(pump);
	close(fd);
	free(basis);
	free(dst);
	return sink_sum == 42 ? 2 : 0;
}
