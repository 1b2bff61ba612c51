/* SPDX-License-Identifier: MIT */
/*
 * Pump tests: fault injection, and the per-op fallback from the ring to the
 * pool at run time.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "test_pump_util.h"

/* ---- fault injection ---- */

static void test_fault_injection(void **state)
{
	struct berth_pump *pump = pump_new();
	struct berth_fault f = {0};
	struct tracked t[6];
	struct waiter w;
	int fd, i;

	(void)state;
	waiter_init(&w);
	fd = tmp_file(NULL, 0);
	/* The 3rd write of tag 5 fails with ENOSPC; tag 6 is never hit. */
	f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
	f.tag = 5;
	f.nth = 3;
	f.error = ENOSPC;
	assert_int_equal(berth_pump_inject(pump, &f), 0);
	/* Every fsync fails with EIO (count large). */
	memset(&f, 0, sizeof(f));
	f.ops = BERTH_OP_BIT(BERTH_OP_FSYNC);
	f.count = 100;
	f.error = EIO;
	assert_int_equal(berth_pump_inject(pump, &f), 0);

	for (i = 0; i < 4; i++) {
		berth_prep_write(&t[i].req, fd, "abcd", 4, (uint64_t)i * 4);
		assert_int_equal(run1_tag(pump, &w, &t[i], i < 3 ? 5 : 6),
				 i == 2 ? -ENOSPC : 4);
	}
	berth_prep_fsync(&t[4].req, fd, 0);
	assert_int_equal(run1(pump, &w, &t[4]), -EIO);
	berth_pump_clear_faults(pump);
	berth_prep_fsync(&t[5].req, fd, 0);
	assert_int_equal(run1(pump, &w, &t[5]), 0);
	close(fd);
	pump_done(pump);
}

/*
 * The per-op fallback at run time: the ring refuses a read it was probed
 * for (a real -EOPNOTSUPP from the kernel, through BERTH_FAULT_RING_REFUSE);
 * the pump reruns it on the pool and keeps reads there.  A write the pool
 * refuses as well was bad in itself: writes stay on the ring.
 */
static void test_ring_refusal_falls_back(void **state)
{
	struct berth_pump *pump = pump_new();
	struct berth_fault f = {0};
	struct berth_pump_stats st;
	bool uring = berth_pump_backend(pump) == BERTH_PUMP_URING;
	struct tracked t;
	struct waiter w;
	char data[4096], buf[4096];
	int fd, i;

	(void)state;
	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (char)(i * 13);
	fd = tmp_file(data, sizeof(data));
	waiter_init(&w);
	f.ops = BERTH_OP_BIT(BERTH_OP_READ);
	f.flags = BERTH_FAULT_RING_REFUSE;
	assert_int_equal(berth_pump_inject(pump, &f), 0);

	/* Refused by the ring, done by the pool: the caller sees data. */
	memset(buf, 0, sizeof(buf));
	berth_prep_read(&t.req, fd, buf, sizeof(buf), 0);
	assert_int_equal(run1(pump, &w, &t), (ssize_t)sizeof(buf));
	assert_memory_equal(buf, data, sizeof(data));
	berth_pump_stats(pump, &st);
	assert_int_equal(st.faults, 1);
	assert_int_equal(st.fallback, uring ? 1 : 0);

	/* The fault is spent; reads now go to the pool directly. */
	memset(buf, 0, sizeof(buf));
	berth_prep_read(&t.req, fd, buf, 100, 50);
	assert_int_equal(run1(pump, &w, &t), 100);
	assert_memory_equal(buf, data + 50, 100);
	berth_pump_stats(pump, &st);
	assert_int_equal(st.fallback, uring ? 2 : 0);

	/* A write both refuse (offset beyond what off_t holds): its error
	 * comes back, and it does not cost writes the ring. */
	berth_pump_clear_faults(pump);
	berth_prep_write(&t.req, fd, data, 10, (uint64_t)-2);
	assert_int_equal(run1(pump, &w, &t), -EINVAL);
	berth_pump_stats(pump, &st);
	assert_int_equal(st.fallback, uring ? 3 : 0);
	berth_prep_write(&t.req, fd, data, 10, 0);
	assert_int_equal(run1(pump, &w, &t), 10);
	berth_pump_stats(pump, &st);
	assert_int_equal(st.fallback, uring ? 3 : 0);
	close(fd);
	pump_done(pump);
}

const struct CMUnitTest pump_fault_tests[] = {
	cmocka_unit_test(test_fault_injection),
	cmocka_unit_test(test_ring_refusal_falls_back),
};
const size_t pump_fault_count = sizeof(pump_fault_tests) /
				sizeof(pump_fault_tests[0]);
