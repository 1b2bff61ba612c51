/* SPDX-License-Identifier: MIT */
/* Pump tests: the shared fixtures (test_pump_util.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_pump_util.h"

void waiter_init(struct waiter *w)
{
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->done = 0;
}

void waiter_wait(struct waiter *w, unsigned long n)
{
	pthread_mutex_lock(&w->lock);
	while (w->done < n)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

unsigned long waiter_count(struct waiter *w)
{
	unsigned long n;

	pthread_mutex_lock(&w->lock);
	n = w->done;
	pthread_mutex_unlock(&w->lock);
	return n;
}

static void tracked_cb(struct berth_req *req, ssize_t res)
{
	struct tracked *t = (struct tracked *)req->data;

	t->res = res;
	t->on_pump_thread = berth_pump_on_thread(t->pump);
	atomic_fetch_add(&t->calls, 1);
	pthread_mutex_lock(&t->w->lock);
	t->w->done++;
	pthread_cond_broadcast(&t->w->cond);
	pthread_mutex_unlock(&t->w->lock);
}

void track(struct tracked *t, struct berth_pump *pump, struct waiter *w,
	   uint64_t tag)
{
	t->w = w;
	t->pump = pump;
	t->res = 0x7fff;
	atomic_store(&t->calls, 0);
	berth_req_set_cb(&t->req, tracked_cb, t, tag);
}

int expected_backend(void)
{
	const char *env = getenv("BERTH_PUMP");

	if (env && !strcmp(env, "pool"))
		return BERTH_PUMP_POOL;
	if (env && !strcmp(env, "uring"))
		return BERTH_PUMP_URING;
	if (env && !strcmp(env, "iocp"))
		return BERTH_PUMP_IOCP;
	return BERTH_PUMP_AUTO;
}

struct berth_pump *pump_new(void)
{
	struct berth_pump *pump = NULL;
	int want = expected_backend();

	assert_int_equal(berth_pump_create(NULL, &pump), 0);
	if (want)
		assert_int_equal(berth_pump_backend(pump), want);
	assert_non_null(berth_pump_backend_reason(pump));
	return pump;
}

/* Shut down and check that every accepted request completed once. */
void pump_done(struct berth_pump *pump)
{
	struct berth_pump_stats st;

	assert_int_equal(berth_pump_shutdown(pump), 0);
	berth_pump_stats(pump, &st);
	assert_int_equal(st.submitted, st.completed);
	assert_int_equal(st.in_flight, 0);
	berth_pump_free(pump);
}

int tmp_file(const char *content, size_t len)
{
	char name[] = "/tmp/berth-pump-XXXXXX";
	int fd = mkstemp(name);

	assert_true(fd >= 0);
	unlink(name);
	if (len)
		assert_int_equal(pwrite(fd, content, len, 0), (ssize_t)len);
	return fd;
}

ssize_t run1_tag(struct berth_pump *pump, struct waiter *w, struct tracked *t,
		 uint64_t tag)
{
	unsigned long before = waiter_count(w);

	track(t, pump, w, tag);
	assert_int_equal(berth_pump_submit(pump, &t->req), 0);
	waiter_wait(w, before + 1);
	assert_int_equal(atomic_load(&t->calls), 1);
	return t->res;
}

ssize_t run1(struct berth_pump *pump, struct waiter *w, struct tracked *t)
{
	return run1_tag(pump, w, t, 0);
}

/* Whether the pump set up its SQPOLL helper ring. */
bool helper_up(struct berth_pump *pump)
{
	return strstr(berth_pump_backend_reason(pump), "SQPOLL helper ring");
}

/* The helper ring takes a share of every queue deeper than one read. */
bool helper_on_every_queue(struct berth_pump *pump)
{
	const char *env = getenv("BERTH_PUMP_SQPOLL");

	return berth_pump_backend(pump) == BERTH_PUMP_URING && env &&
	       !strcmp(env, "1");
}
