/* SPDX-License-Identifier: MIT */
/*
 * The basis reader's ring (engine/basis/basis_reader.c): delivery in queued
 * order, coalescing of adjacent open reads, bytes between reads, a full
 * ring, buffers given back (trim), reads of cached data on the calling
 * thread, sticky errors and cancel, a basis that shrank.  Signatures and token apply over it are tested in test_delta*.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/uio.h>
#endif

#include <cmocka.h>

#include "engine/basis/basis_int.h"
#include "engine/pump/pump.h"

#define FILE_LEN 4096

/* What the deliver callback saw. */
struct seen {
	struct {
		uint8_t bytes[512];
		size_t len;
		uint64_t user;
		int is_read, short_read;
	} c[64];
	unsigned n;
	unsigned fail_at; /* > 0: that call (1-based) returns fail_err */
	int fail_err;
};

static struct berth_pump *pump;
static uint8_t data[FILE_LEN];
static int fd = -1;

static int deliver(void *arg, const struct berth_basis_chunk *c)
{
	struct seen *s = arg;

	assert_true(s->n < 64);
	assert_true(c->len <= sizeof(s->c[0].bytes));
	memcpy(s->c[s->n].bytes, c->buf, c->len);
	s->c[s->n].len = c->len;
	s->c[s->n].user = c->user;
	s->c[s->n].is_read = c->is_read;
	s->c[s->n].short_read = c->short_read;
	s->n++;
	if (s->fail_at && s->n == s->fail_at)
		return s->fail_err;
	return 0;
}

static struct berth_basis *ring(struct seen *s, unsigned nslots,
				size_t slot_size)
{
	struct berth_basis_opts o = {.pump = pump,
				     .nslots = nslots,
				     .slot_size = slot_size,
				     .tag = 0xba515,
				     .deliver = deliver,
				     .arg = s};
	struct berth_basis *b;

	memset(s, 0, sizeof(*s));
	assert_int_equal(berth_basis_create(&o, &b), 0);
	return b;
}

static uint64_t submitted(void)
{
	struct berth_pump_stats st;

	berth_pump_stats(pump, &st);
	return st.submitted;
}

static int setup(void **state)
{
	struct berth_pump_opts po = {0};
	char path[] = "/tmp/berth-basis-XXXXXX";

	(void)state;
	for (size_t i = 0; i < FILE_LEN; i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	if (write(fd, data, FILE_LEN) != FILE_LEN)
		return -1;
	return berth_pump_create(&po, &pump) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	berth_pump_free(pump);
	close(fd);
	return 0;
}

static void test_bad_opts(void **state)
{
	struct berth_basis_opts o = {
		.pump = pump, .nslots = 2, .slot_size = 64};
	struct berth_basis *b = NULL;

	(void)state;
	assert_int_equal(berth_basis_create(&o, &b), -EINVAL); /* deliver */
	o.deliver = deliver;
	o.nslots = 0;
	assert_int_equal(berth_basis_create(&o, &b), -EINVAL);
	o.nslots = 2;
	o.slot_size = 0;
	assert_int_equal(berth_basis_create(&o, &b), -EINVAL);
	berth_basis_free(NULL);
}

/* Reads and bytes come out in the order queued; adjacent open reads of
 * the same fd and user become one pump read while they fit. */
static void test_order_and_coalescing(void **state)
{
	struct seen s;
	struct berth_basis *b = ring(&s, 4, 64);
	uint64_t n0 = submitted();

	(void)state;
	assert_int_equal(
		berth_basis_prep_read(b, fd, 0, 16, 1, BERTH_BASIS_OPEN), 0);
	assert_int_equal(
		berth_basis_prep_read(b, fd, 16, 16, 1, BERTH_BASIS_OPEN), 0);
	assert_int_equal(berth_basis_pending(b), 1);
	assert_int_equal(submitted() - n0, 0); /* still open */
	assert_int_equal(berth_basis_prep_bytes(b, "xyz", 3, 2), 0);
	assert_int_equal(submitted() - n0, 1); /* bytes closed it */
	assert_int_equal(berth_basis_prep_read(b, fd, 1000, 10, 3, 0), 0);
	assert_int_equal(submitted() - n0, 2); /* not open: at once */
	/* Not adjacent, then another user: new entries. */
	assert_int_equal(
		berth_basis_prep_read(b, fd, 40, 8, 4, BERTH_BASIS_OPEN), 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), 0);
	assert_int_equal(berth_basis_pending(b), 0);
	assert_int_equal(submitted() - n0, 3);

	assert_int_equal(s.n, 4);
	assert_true(s.c[0].is_read && s.c[0].len == 32 && s.c[0].user == 1);
	assert_memory_equal(s.c[0].bytes, data, 32);
	assert_true(!s.c[1].is_read && s.c[1].len == 3 && s.c[1].user == 2);
	assert_memory_equal(s.c[1].bytes, "xyz", 3);
	assert_true(s.c[2].is_read && s.c[2].len == 10 && s.c[2].user == 3);
	assert_memory_equal(s.c[2].bytes, data + 1000, 10);
	assert_true(s.c[3].is_read && s.c[3].len == 8 && s.c[3].user == 4);
	assert_memory_equal(s.c[3].bytes, data + 40, 8);
	for (unsigned i = 0; i < s.n; i++)
		assert_false(s.c[i].short_read);

	/* An open read is submitted once another of its size would not
	 * fit; a read that does not fit starts a new entry. */
	n0 = submitted();
	memset(&s, 0, sizeof(s));
	for (uint64_t off = 0; off < 120; off += 24)
		assert_int_equal(berth_basis_prep_read(b, fd, off, 24, 0,
						       BERTH_BASIS_OPEN),
				 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), 0);
	assert_int_equal(s.n, 3); /* 48 + 48 + 24 in 64-byte slots */
	assert_int_equal(submitted() - n0, 3);
	assert_int_equal(s.c[0].len, 48);
	assert_int_equal(s.c[1].len, 48);
	assert_int_equal(s.c[2].len, 24);
	assert_memory_equal(s.c[1].bytes, data + 48, 48);
	assert_int_equal(berth_basis_prep_read(b, fd, 0, 65, 0, 0), -EINVAL);
	berth_basis_free(b);
}

/* Many more entries than slots: a full ring delivers its head to make
 * room; bytes longer than a slot span several. */
static void test_full_ring(void **state)
{
	uint8_t lit[100];
	struct seen s;
	struct berth_basis *b = ring(&s, 2, 64);
	size_t at = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(lit); i++)
		lit[i] = (uint8_t)~i;
	for (uint64_t off = 0; off < 20 * 50; off += 50)
		assert_int_equal(berth_basis_prep_read(b, fd, off, 50, off, 0),
				 0);
	assert_true(s.n >= 18); /* at most 2 pending */
	assert_int_equal(berth_basis_prep_bytes(b, lit, sizeof(lit), 7), 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), 0);
	assert_int_equal(s.n, 22);
	for (unsigned i = 0; i < 20; i++) {
		assert_int_equal(s.c[i].user, i * 50);
		assert_memory_equal(s.c[i].bytes, data + i * 50, 50);
	}
	assert_int_equal(s.c[20].len, 64);
	assert_int_equal(s.c[21].len, 36);
	for (unsigned i = 20; i < 22; i++) {
		assert_memory_equal(s.c[i].bytes, lit + at, s.c[i].len);
		at += s.c[i].len;
	}
	berth_basis_free(b);
}

/*
 * A full ring frees exactly one slot when it needs one, even when more
 * reads are complete: the freed slot is refilled before the next is
 * delivered, so reads stay in flight while the caller hashes (a ring that
 * delivered everything complete first left none in flight meanwhile:
 * signatures from a file ran at half speed).
 */
static void test_full_ring_frees_one(void **state)
{
	struct seen s;
	struct berth_basis *b = ring(&s, 4, 64);

	(void)state;
	for (uint64_t off = 0; off < 4 * 50; off += 50)
		assert_int_equal(berth_basis_prep_read(b, fd, off, 50, off, 0),
				 0);
	/* Let all four complete (50 bytes from the page cache) before the
	 * ring is asked for a fifth. */
	usleep(50 * 1000);
	assert_int_equal(s.n, 0);
	assert_int_equal(berth_basis_prep_read(b, fd, 200, 50, 200, 0), 0);
	assert_int_equal(s.n, 1); /* the head only */
	assert_int_equal(berth_basis_pending(b), 4);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), 0);
	assert_int_equal(s.n, 5);
	for (unsigned i = 0; i < 5; i++)
		assert_memory_equal(s.c[i].bytes, data + i * 50, 50);
	berth_basis_free(b);
}

#ifdef __linux__
/* Whether this file system takes RWF_NOWAIT reads on @fd. */
static bool nowait_reads(void)
{
	uint8_t c;
	struct iovec v = {&c, 1};

	return preadv2(fd, &v, 1, 0, RWF_NOWAIT) == 1;
}

/*
 * cached_inline: a read of cached data is made on the calling thread (no
 * pump request), one of data not cached goes through the pump (after
 * fsync and POSIX_FADV_DONTNEED), an injected read fault still fires, and
 * every entry is delivered as before.
 */
static void test_cached_inline(void **state)
{
	struct berth_basis_opts o = {.pump = pump,
				     .nslots = 2,
				     .slot_size = 256,
				     .tag = 0xba515,
				     .cached_inline = true,
				     .deliver = deliver};
	struct berth_fault eio = {
		.ops = BERTH_OP_BIT(BERTH_OP_READ), .nth = 1, .error = EIO};
	struct berth_basis *b;
	struct seen s;
	bool nowait = nowait_reads();
	uint64_t n0;

	(void)state;
	memset(&s, 0, sizeof(s));
	o.arg = &s;
	assert_int_equal(berth_basis_create(&o, &b), 0);
	for (uint64_t off = 0; off < 2000; off += 200) /* cached: just read */
		assert_int_equal(berth_basis_prep_read(b, fd, off, 200, off, 0),
				 0);
	n0 = submitted();
	assert_int_equal(berth_basis_prep_read(b, fd, 3000, 100, 3000, 0), 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), 0);
	if (nowait)
		assert_int_equal(submitted() - n0, 0);
	assert_int_equal(s.n, 11);
	for (unsigned i = 0; i < 10; i++)
		assert_memory_equal(s.c[i].bytes, data + i * 200, 200);
	assert_memory_equal(s.c[10].bytes, data + 3000, 100);

	/* Not cached: the pump reads it. */
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	n0 = submitted();
	assert_int_equal(berth_basis_prep_read(b, fd, 1024, 200, 7, 0), 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), 0);
	assert_int_equal(s.n, 12);
	assert_memory_equal(s.c[11].bytes, data + 1024, 200);
	if (nowait)
		assert_int_equal(submitted() - n0, 1);

	/* An injected fault meets the inline read too. */
	assert_int_equal(berth_pump_inject(pump, &eio), 0);
	assert_int_equal(berth_basis_prep_read(b, fd, 0, 100, 8, 0), 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), -EIO);
	berth_pump_clear_faults(pump);
	assert_int_equal(s.n, 12);
	berth_basis_free(b);
}
#endif

/*
 * Trim gives the buffers back only while nothing is queued: a trim with
 * reads and bytes pending changes nothing they deliver, and the ring
 * works again after a trim (the buffers are taken again).
 */
static void test_trim(void **state)
{
	uint8_t lit[40];
	struct seen s;
	struct berth_basis *b = ring(&s, 3, 64);

	(void)state;
	memset(lit, 0xa5, sizeof(lit));
	berth_basis_trim(b); /* nothing taken yet */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(berth_basis_prep_read(b, fd, 100, 50, 1, 0),
				 0);
		assert_int_equal(berth_basis_prep_bytes(b, lit, sizeof(lit), 2),
				 0);
		assert_int_equal(berth_basis_prep_read(b, fd, 700, 60, 3, 0),
				 0);
		berth_basis_trim(b); /* three pending: a no-op */
		assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), 0);
		assert_int_equal(s.n, 3 * (unsigned)(round + 1));
		assert_memory_equal(s.c[3 * round].bytes, data + 100, 50);
		assert_memory_equal(s.c[3 * round + 1].bytes, lit, sizeof(lit));
		assert_memory_equal(s.c[3 * round + 2].bytes, data + 700, 60);
		berth_basis_trim(b);
	}
	berth_basis_free(b);
}

/* The deliver callback's error is sticky until cancel; nothing after it
 * is delivered; the ring works again after cancel. */
static void test_deliver_error(void **state)
{
	struct seen s;
	struct berth_basis *b = ring(&s, 3, 64);

	(void)state;
	s.fail_at = 2;
	s.fail_err = -ENOSPC;
	for (uint64_t off = 0; off < 5 * 32; off += 32)
		berth_basis_prep_read(b, fd, off, 32, 0, 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), -ENOSPC);
	assert_int_equal(s.n, 2);
	assert_int_equal(berth_basis_prep_read(b, fd, 0, 1, 0, 0), -ENOSPC);
	assert_int_equal(berth_basis_prep_bytes(b, "a", 1, 0), -ENOSPC);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_READY), -ENOSPC);
	berth_basis_cancel(b);
	assert_int_equal(berth_basis_pending(b), 0);

	s.fail_at = 0;
	s.n = 0;
	assert_int_equal(berth_basis_prep_read(b, fd, 64, 8, 0, 0), 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), 0);
	assert_int_equal(s.n, 1);
	assert_memory_equal(s.c[0].bytes, data + 64, 8);

	/* Cancel with reads in flight and an open one: waits, drops. */
	s.n = 0;
	berth_basis_prep_read(b, fd, 0, 8, 0, 0);
	berth_basis_prep_bytes(b, "b", 1, 0);
	berth_basis_prep_read(b, fd, 8, 8, 0, BERTH_BASIS_OPEN);
	berth_basis_cancel(b);
	assert_int_equal(s.n, 0);
	assert_int_equal(berth_basis_pending(b), 0);
	berth_basis_free(b);
}

/* A read error from the pump: earlier entries are delivered, the error is
 * returned, later entries dropped. */
static void test_read_error(void **state)
{
	struct berth_fault eio = {
		.ops = BERTH_OP_BIT(BERTH_OP_READ), .nth = 2, .error = EIO};
	struct seen s;
	struct berth_basis *b = ring(&s, 4, 64);

	(void)state;
	if (berth_pump_inject(pump, &eio) < 0) {
		berth_basis_free(b);
		skip();
	}
	for (uint64_t off = 0; off < 4 * 16; off += 16)
		assert_int_equal(berth_basis_prep_read(b, fd, off, 16, 0, 0),
				 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), -EIO);
	assert_int_equal(s.n, 1);
	assert_memory_equal(s.c[0].bytes, data, 16);
	berth_pump_clear_faults(pump);
	berth_basis_free(b);
}

/* Reads past the end of the basis: the missing bytes are zeros and the
 * chunk says so. */
static void test_short_read(void **state)
{
	uint8_t want[48] = {0};
	struct seen s;
	struct berth_basis *b = ring(&s, 2, 64);

	(void)state;
	memcpy(want, data + FILE_LEN - 16, 16);
	assert_int_equal(berth_basis_prep_read(b, fd, FILE_LEN - 16, 48, 0, 0),
			 0);
	assert_int_equal(berth_basis_prep_read(b, fd, 0, 8, 0, 0), 0);
	assert_int_equal(berth_basis_poll(b, BERTH_BASIS_POLL_ALL), 0);
	assert_int_equal(s.n, 2);
	assert_true(s.c[0].short_read && s.c[0].len == 48);
	assert_memory_equal(s.c[0].bytes, want, 48);
	assert_false(s.c[1].short_read);
	berth_basis_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_opts),
		cmocka_unit_test(test_order_and_coalescing),
		cmocka_unit_test(test_full_ring),
		cmocka_unit_test(test_full_ring_frees_one),
		cmocka_unit_test(test_trim),
#ifdef __linux__
		cmocka_unit_test(test_cached_inline),
#endif
		cmocka_unit_test(test_deliver_error),
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_short_read),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
