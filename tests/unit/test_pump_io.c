/* SPDX-License-Identifier: MIT */
/*
 * Pump tests: dispatch from many threads, reads and writes, vectors, EOF
 * and short transfers continued by the pump.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_pump_util.h"

/* ---- dispatch and batching ---- */

#define MT_THREADS 4
#define MT_PER_THREAD 2500

struct mt_arg {
	struct berth_pump *pump;
	struct waiter *w;
	struct tracked *t;
	char (*bufs)[8];
	int fd;
};

/* Half no-ops, half 8-byte reads, all submitted from one thread. */
static void *mt_submitter(void *arg)
{
	struct mt_arg *a = arg;
	int i;

	for (i = 0; i < MT_PER_THREAD; i++) {
		struct tracked *t = &a->t[i];

		if (i % 2)
			berth_prep_read(&t->req, a->fd, a->bufs[i], 8,
					(uint64_t)(i % 64) * 8);
		else
			berth_prep_nop(&t->req);
		track(t, a->pump, a->w, 1);
		if (berth_pump_submit(a->pump, &t->req) != 0)
			abort();
	}
	return NULL;
}

static void test_many_from_threads(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct tracked t[MT_THREADS][MT_PER_THREAD];
	static char bufs[MT_THREADS][MT_PER_THREAD][8];
	struct mt_arg args[MT_THREADS];
	pthread_t th[MT_THREADS];
	struct waiter w;
	char data[512];
	int fd, i, j;

	(void)state;
	memset(data, 'x', sizeof(data));
	fd = tmp_file(data, sizeof(data));
	waiter_init(&w);
	for (i = 0; i < MT_THREADS; i++) {
		args[i] = (struct mt_arg){pump, &w, t[i], bufs[i], fd};
		assert_int_equal(
			pthread_create(&th[i], NULL, mt_submitter, &args[i]),
			0);
	}
	for (i = 0; i < MT_THREADS; i++)
		pthread_join(th[i], NULL);
	waiter_wait(&w, MT_THREADS * MT_PER_THREAD);
	for (i = 0; i < MT_THREADS; i++) {
		for (j = 0; j < MT_PER_THREAD; j++) {
			assert_int_equal(atomic_load(&t[i][j].calls), 1);
			assert_true(t[i][j].on_pump_thread);
			assert_int_equal(t[i][j].res, j % 2 ? 8 : 0);
			if (j % 2)
				assert_memory_equal(bufs[i][j], "xxxxxxxx", 8);
		}
	}
	close(fd);
	pump_done(pump);
}

/* ---- reads, writes, short transfers, EOF ---- */

static void test_read_eof_and_vectors(void **state)
{
	struct berth_pump *pump = pump_new();
	struct tracked t;
	struct waiter w;
	char data[10000], a[4096], b[8192];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	int fd, i;

	(void)state;
	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (char)(i * 7);
	fd = tmp_file(data, sizeof(data));
	waiter_init(&w);

	/* A vectored read across EOF gets exactly what the file holds. */
	berth_prep_readv(&t.req, fd, iov, 2, 0);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 1);
	assert_int_equal(t.res, 10000);
	assert_memory_equal(a, data, sizeof(a));
	assert_memory_equal(b, data + sizeof(a), 10000 - sizeof(a));

	/* At EOF: 0. */
	berth_prep_read(&t.req, fd, a, sizeof(a), 20000);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 2);
	assert_int_equal(t.res, 0);
	close(fd);
	pump_done(pump);
}

static void test_short_io_is_continued(void **state)
{
	struct berth_pump *pump = pump_new();
	struct berth_fault f = {0};
	struct berth_pump_stats st;
	struct tracked t;
	struct waiter w;
	static char src[3 * 65536 + 17], back[sizeof(src)];
	struct iovec iov[3] = {
		{src, 65536},
		{src + 65536, 65536 + 17},
		{src + 2 * 65536 + 17, 65536},
	};
	int fd, i;

	(void)state;
	for (i = 0; i < (int)sizeof(src); i++)
		src[i] = (char)(i ^ (i >> 9));
	fd = tmp_file(NULL, 0);
	waiter_init(&w);

	/* Every write attempt moves at most 1000 bytes. */
	f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
	f.nth = 1;
	f.count = 1;
	f.short_bytes = 1000;
	assert_int_equal(berth_pump_inject(pump, &f), 0);
	berth_prep_writev(&t.req, fd, iov, 3, 4096);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 1);
	assert_int_equal(t.res, (ssize_t)sizeof(src));
	assert_int_equal(pread(fd, back, sizeof(back), 4096),
			 (ssize_t)sizeof(back));
	assert_memory_equal(back, src, sizeof(src));

	/* Short reads: the 1st read attempt is cut to 3 bytes. */
	berth_pump_clear_faults(pump);
	f.ops = BERTH_OP_BIT(BERTH_OP_READ);
	f.short_bytes = 3;
	assert_int_equal(berth_pump_inject(pump, &f), 0);
	memset(back, 0, sizeof(back));
	berth_prep_read(&t.req, fd, back, sizeof(back), 4096);
	track(&t, pump, &w, 0);
	assert_int_equal(berth_pump_submit(pump, &t.req), 0);
	waiter_wait(&w, 2);
	assert_int_equal(t.res, (ssize_t)sizeof(src));
	assert_memory_equal(back, src, sizeof(src));

	berth_pump_stats(pump, &st);
	assert_true(st.resubmits >= 2);
	assert_int_equal(st.faults, 2);
	close(fd);
	pump_done(pump);
}

const struct CMUnitTest pump_io_tests[] = {
	cmocka_unit_test(test_many_from_threads),
	cmocka_unit_test(test_read_eof_and_vectors),
	cmocka_unit_test(test_short_io_is_continued),
};
const size_t pump_io_count = sizeof(pump_io_tests) / sizeof(pump_io_tests[0]);
