/* SPDX-License-Identifier: MIT */
/*
 * Pump tests: deep queues (chains of reads and writes resubmitted from
 * their callbacks), the SQPOLL helper ring that shares them, and cancel and
 * shutdown while they run.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_pump_util.h"

/* ---- deep queues: chains of 4 KiB reads and writes from callbacks ---- */

#define DEEP_SLOTS 16
#define DEEP_BLOCKS 256 /* a 1 MiB file */
#define DEEP_BS 4096
#define DEEP_WRAP 64 /* write i of a slot goes to place i % DEEP_WRAP */

struct deep {
	struct berth_pump *pump;
	struct waiter w; /* counts finished slots */
	int fd;
	int wfd; /* write i of slot s: block (i % DEEP_WRAP) * 16 + s */
	int per_slot;
	atomic_int bad; /* wrong result or wrong bytes */
	atomic_int accepted; /* submits that returned 0 */
	atomic_int calls; /* callbacks run */
	atomic_int refused; /* submits refused with -ESHUTDOWN */
	atomic_int cancelled; /* callbacks with -ECANCELED */
	atomic_int stop_tag; /* chains of this tag stop issuing */
};

struct deep_slot {
	struct berth_req req;
	struct deep *d;
	unsigned idx;
	uint64_t rng;
	int issued;
	uint32_t block;
	bool writing;
	char buf[DEEP_BS];
};

static void deep_fill(char *buf, uint32_t block)
{
	int i;

	for (i = 0; i < DEEP_BS; i++)
		buf[i] = (char)(block * 31 + (uint32_t)i * 131);
}

static bool deep_check(const char *buf, uint32_t block)
{
	char want[DEEP_BS];

	deep_fill(want, block);
	return !memcmp(buf, want, DEEP_BS);
}

static void deep_finish(struct deep *d)
{
	pthread_mutex_lock(&d->w.lock);
	d->w.done++;
	pthread_cond_broadcast(&d->w.cond);
	pthread_mutex_unlock(&d->w.lock);
}

static void deep_cb(struct berth_req *req, ssize_t res);

/* Issue the slot's next request; false when the chain is over. */
static bool deep_issue(struct deep_slot *s)
{
	struct deep *d = s->d;
	uint64_t off;
	int ret;

	if (s->issued == d->per_slot ||
	    atomic_load(&d->stop_tag) == (int)(s->idx % 2 + 1))
		return false;
	if (s->writing) {
		s->block = (uint32_t)s->issued;
		off = ((uint64_t)(s->issued % DEEP_WRAP) * DEEP_SLOTS +
		       s->idx) *
		      DEEP_BS;
		deep_fill(s->buf, s->block * DEEP_SLOTS + s->idx);
		berth_prep_write(&s->req, d->wfd, s->buf, DEEP_BS, off);
	} else {
		s->rng = s->rng * 6364136223846793005ull +
			 1442695040888963407ull;
		s->block = (uint32_t)(s->rng >> 33) % DEEP_BLOCKS;
		memset(s->buf, 0, DEEP_BS);
		berth_prep_read(&s->req, d->fd, s->buf, DEEP_BS,
				(uint64_t)s->block * DEEP_BS);
	}
	berth_req_set_cb(&s->req, deep_cb, s, s->idx % 2 + 1);
	s->issued++;
	ret = berth_pump_submit(d->pump, &s->req);
	if (ret == 0) {
		atomic_fetch_add(&d->accepted, 1);
		return true;
	}
	if (ret == -ESHUTDOWN)
		atomic_fetch_add(&d->refused, 1);
	else
		atomic_store(&d->bad, 1);
	return false;
}

static void deep_cb(struct berth_req *req, ssize_t res)
{
	struct deep_slot *s = req->data;
	struct deep *d = s->d;

	atomic_fetch_add(&d->calls, 1);
	if (res == -ECANCELED)
		atomic_fetch_add(&d->cancelled, 1);
	else if (res != DEEP_BS ||
		 (!s->writing && !deep_check(s->buf, s->block)))
		atomic_store(&d->bad, 1);
	if (!deep_issue(s))
		deep_finish(d);
}

static int deep_file(void)
{
	char buf[DEEP_BS];
	int fd = tmp_file(NULL, 0);
	uint32_t b;

	for (b = 0; b < DEEP_BLOCKS; b++) {
		deep_fill(buf, b);
		assert_int_equal(pwrite(fd, buf, DEEP_BS, (off_t)b * DEEP_BS),
				 DEEP_BS);
	}
	return fd;
}

/* Start @nslots chains (odd slots write when @writes), from this thread. */
static void deep_start(struct deep *d, struct deep_slot *slots, int nslots,
		       bool writes)
{
	int i;

	for (i = 0; i < nslots; i++) {
		slots[i] = (struct deep_slot){
			.d = d,
			.idx = (unsigned)i,
			.rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1),
			.writing = writes && i % 2,
		};
		if (!deep_issue(&slots[i]))
			deep_finish(d);
	}
}

static void deep_init(struct deep *d, struct berth_pump *pump, int per_slot)
{
	memset(d, 0, sizeof(*d));
	d->pump = pump;
	d->per_slot = per_slot;
	waiter_init(&d->w);
	d->fd = deep_file();
	d->wfd = tmp_file(NULL, 0);
}

/* Check that the helper took a share (@shared) or nothing; clean up. */
static void deep_done(struct berth_pump *pump, struct deep *d, bool shared)
{
	struct berth_pump_stats st;

	berth_pump_stats(pump, &st);
	if (shared)
		assert_true(st.helper > 0);
	else
		assert_int_equal(st.helper, 0);
	close(d->fd);
	close(d->wfd);
	pump_done(pump);
}

static void test_deep_queues(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct deep_slot slots[DEEP_SLOTS];
	struct deep d;
	char buf[DEEP_BS];
	int i, j, s;

	(void)state;
	if (helper_on_every_queue(pump) && !helper_up(pump)) {
		pump_done(pump);
		skip();
	}
	deep_init(&d, pump, 300);
	deep_start(&d, slots, DEEP_SLOTS, true);
	waiter_wait(&d.w, DEEP_SLOTS);
	assert_int_equal(atomic_load(&d.bad), 0);
	assert_int_equal(atomic_load(&d.calls), atomic_load(&d.accepted));
	assert_int_equal(atomic_load(&d.calls), DEEP_SLOTS * 300);
	/* Every place holds the last write meant for it. */
	for (s = 1; s < DEEP_SLOTS; s += 2) {
		for (j = 0; j < DEEP_WRAP; j++) {
			i = j + (300 - 1 - j) / DEEP_WRAP * DEEP_WRAP;
			assert_int_equal(
				pread(d.wfd, buf, DEEP_BS,
				      ((off_t)j * DEEP_SLOTS + s) * DEEP_BS),
				DEEP_BS);
			assert_true(deep_check(buf,
					       (uint32_t)(i * DEEP_SLOTS + s)));
		}
	}
	/*
	 * Eight reads at a time: shared with the helper only when it takes a
	 * share of every queue; by default a queue this shallow stays on the
	 * pump's own ring.
	 */
	deep_done(pump, &d, helper_on_every_queue(pump));
}

/*
 * Thirty-two reads at a time, every one checked: a queue this deep is
 * shared with the helper whenever the pump has one (by default on a
 * machine with two CPUs), and its results are as good as the own ring's.
 * On a loaded machine a round can pass without a share (the pump thread
 * took each read as it came, or parked a helper that fell behind:
 * helper_check()), so up to three rounds, each on a new pump.
 */
static void test_deep_reads(void **state)
{
	static struct deep_slot slots[2 * DEEP_SLOTS];

	(void)state;
	for (int round = 0;; round++) {
		struct berth_pump *pump = pump_new();
		struct berth_pump_stats st;
		struct deep d;

		deep_init(&d, pump, 300);
		deep_start(&d, slots, 2 * DEEP_SLOTS, false);
		waiter_wait(&d.w, 2 * DEEP_SLOTS);
		assert_int_equal(atomic_load(&d.bad), 0);
		assert_int_equal(atomic_load(&d.calls), 2 * DEEP_SLOTS * 300);
		berth_pump_stats(pump, &st);
		if (round == 2 || st.helper > 0 || !helper_up(pump)) {
			deep_done(pump, &d, helper_up(pump));
			return;
		}
		close(d.fd);
		close(d.wfd);
		pump_done(pump);
	}
}

/* With $@name set to @value, creating a default pump fails with -EINVAL. */
static void env_refused(const char *name, const char *value)
{
	const char *env = getenv(name);
	char *saved = env ? strdup(env) : NULL;
	struct berth_pump *pump = NULL;

	assert_int_equal(setenv(name, value, 1), 0);
	assert_int_equal(berth_pump_create(NULL, &pump), -EINVAL);
	assert_null(pump);
	if (saved)
		assert_int_equal(setenv(name, saved, 1), 0);
	else
		assert_int_equal(unsetenv(name), 0);
	free(saved);
}

/*
 * The helper option: ON asks for the helper ring whatever the environment
 * says (it may still be refused: one CPU, or SQPOLL not allowed), OFF
 * never sets it up, DEFAULT sets it up for deep read queues unless
 * BERTH_PUMP_SQPOLL says 0 or 1, and a value out of range is refused, in
 * the field or in the environment.
 */
static void test_helper_option(void **state)
{
	struct berth_pump_opts opts = {.backend = BERTH_PUMP_URING};
	struct berth_pump *pump = NULL;
	const char *env;
	int ret;

	(void)state;
	opts.helper = 7;
	assert_int_equal(berth_pump_create(&opts, &pump), -EINVAL);
	assert_null(pump);
	if (expected_backend() == BERTH_PUMP_POOL)
		skip();
	opts.helper = BERTH_PUMP_HELPER_OFF;
	ret = berth_pump_create(&opts, &pump);
	if (ret < 0)
		skip(); /* no io_uring here: the pool tests cover it */
	assert_false(helper_up(pump));
	assert_null(strstr(berth_pump_backend_reason(pump), "helper"));
	pump_done(pump);
	opts.helper = BERTH_PUMP_HELPER_ON;
	assert_int_equal(berth_pump_create(&opts, &pump), 0);
	/* Up, or a reason why not. */
	assert_non_null(strstr(berth_pump_backend_reason(pump), "helper"));
	if (sysconf(_SC_NPROCESSORS_ONLN) >= 2)
		assert_true(helper_up(pump) ||
			    strstr(berth_pump_backend_reason(pump),
				   "no SQPOLL helper"));
	else
		assert_false(helper_up(pump));
	pump_done(pump);
	opts.helper = BERTH_PUMP_HELPER_DEFAULT;
	assert_int_equal(berth_pump_create(&opts, &pump), 0);
	env = getenv("BERTH_PUMP_SQPOLL");
	if (env && !strcmp(env, "0"))
		assert_null(strstr(berth_pump_backend_reason(pump), "helper"));
	else if (helper_up(pump) && !helper_on_every_queue(pump))
		assert_non_null(strstr(berth_pump_backend_reason(pump),
				       "helper ring for deep read queues"));
	else if (!helper_up(pump))
		assert_non_null(strstr(berth_pump_backend_reason(pump),
				       "no SQPOLL helper"));
	pump_done(pump);
	env_refused("BERTH_PUMP_SQPOLL", "yes");
	env_refused("BERTH_PUMP", "epoll");
}

/* Cancel one tag's chains while both tags run deep. */
static void test_deep_cancel_tag(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct deep_slot slots[DEEP_SLOTS];
	struct deep d;
	int i, total;

	(void)state;
	deep_init(&d, pump, 2000);
	deep_start(&d, slots, DEEP_SLOTS, true);
	while (atomic_load(&d.calls) < DEEP_SLOTS * 50)
		usleep(100);
	atomic_store(&d.stop_tag, 1);
	assert_int_equal(berth_pump_cancel_tag(pump, 1), 0);
	waiter_wait(&d.w, DEEP_SLOTS);
	assert_int_equal(atomic_load(&d.bad), 0);
	assert_int_equal(atomic_load(&d.calls), atomic_load(&d.accepted));
	/* Tag 2 (odd slots) ran to the end. */
	total = 0;
	for (i = 0; i < DEEP_SLOTS; i++) {
		if (i % 2)
			assert_int_equal(slots[i].issued, 2000);
		total += slots[i].issued;
	}
	assert_int_equal(total, atomic_load(&d.accepted));
	close(d.fd);
	close(d.wfd);
	pump_done(pump);
}

/* Shut down while deep chains keep resubmitting from their callbacks. */
static void test_deep_shutdown(void **state)
{
	struct berth_pump *pump = pump_new();
	static struct deep_slot slots[DEEP_SLOTS];
	struct deep d;

	(void)state;
	deep_init(&d, pump, 1000000);
	deep_start(&d, slots, DEEP_SLOTS, true);
	while (atomic_load(&d.calls) < DEEP_SLOTS * 50)
		usleep(100);
	assert_int_equal(berth_pump_shutdown(pump), 0);
	/* Every accepted request called back once; every chain then ended
	 * on a refused submit. */
	assert_int_equal(waiter_count(&d.w), DEEP_SLOTS);
	assert_int_equal(atomic_load(&d.bad), 0);
	assert_int_equal(atomic_load(&d.calls), atomic_load(&d.accepted));
	assert_int_equal(atomic_load(&d.refused), DEEP_SLOTS);
	close(d.fd);
	close(d.wfd);
	pump_done(pump);
}

const struct CMUnitTest pump_deep_tests[] = {
	cmocka_unit_test(test_deep_queues),
	cmocka_unit_test(test_deep_reads),
	cmocka_unit_test(test_helper_option),
	cmocka_unit_test(test_deep_cancel_tag),
	cmocka_unit_test(test_deep_shutdown),
};
const size_t pump_deep_count = sizeof(pump_deep_tests) /
			       sizeof(pump_deep_tests[0]);
