/* SPDX-License-Identifier: MIT */
/*
 * Pump mode: 1-16 client threads ("sessions", one tag each) keep a window
 * of requests in flight on one shared pump — positioned writes and
 * read-backs of their own file regions, fsyncs, statx, no-ops and reads on
 * an empty pipe that only a later write (or a cancel) finishes — while the
 * iteration's disruption lands: single cancels, tag cancels, a pump
 * shutdown with everything in flight, or injected faults.
 *
 * Invariants: every accepted request's callback runs exactly once (a
 * per-request counter; after shutdown nothing is left in flight); no
 * callback for a refused submit; results are the operation's (full length
 * for writes and reads, also under short-transfer faults), -ECANCELED, or
 * an injected errno on a request that fault could match; read-backs return
 * what was written; the pump's submitted == completed == what the threads
 * counted; sessions nobody disturbed see only successes; fds and heap come
 * back to where they were.
 *
 * Lock order: sess->lock is a leaf (the pump's cancel/submit take their
 * own leaf locks while it is held; callbacks take it without the pump's).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/pump/pump.h"
#include "stress.h"

#define SLOT_BYTES (64 * 1024)
#define MAX_WINDOW 16

enum { K_WRITE, K_READ, K_FSYNC, K_NOP, K_STATX, K_PIPE };

struct psess;

struct pslot {
	struct berth_req req;
	struct psess *s;
	atomic_int cbs; /* callbacks since the last submit */
	int busy; /* lock */
	int kind;
	int idx;
	size_t len;
	uint64_t gen; /* data generation written into the region */
	int valid; /* region holds generation gen (len bytes) */
	struct statx stx;
	unsigned char *buf;
};

struct pump_iter;

struct psess {
	struct pump_iter *it;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t tag;
	int fd;
	int pipefd[2];
	char path[512];
	unsigned window;
	unsigned nops;
	unsigned nbusy; /* lock */
	int pipe_busy; /* lock: a pipe read is in flight */
	uint32_t err_ok; /* bit per allowed errno class, see err_bit() */
	int disturbed;
	uint64_t accepted; /* submits the pump took */
	atomic_uint_fast64_t callbacks;
	struct pslot slot[MAX_WINDOW];
	struct stress_rng rng;
};

struct pump_iter {
	struct stress_state *st;
	struct berth_pump *pump;
	struct psess *sess;
	unsigned nsess;
	atomic_int shut; /* shutdown began */
};

static uint32_t err_bit(int e)
{
	switch (e) {
	case ECANCELED:
		return 1;
	case ENOSPC:
		return 2;
	case EIO:
		return 4;
	default:
		return 0x80000000u;
	}
}

static void slot_cb(struct berth_req *req, ssize_t res)
{
	struct pslot *sl = (struct pslot *)(void *)req;
	struct psess *s = sl->s;
	struct stress_state *st = s->it->st;
	unsigned char *want;
	int prev = atomic_fetch_add(&sl->cbs, 1);

	if (prev != 0)
		stress_violation(st, SV_ONCE,
				 "tag %llu slot %d: callback ran %d times",
				 (unsigned long long)s->tag, sl->idx, prev + 1);
	atomic_fetch_add(&s->callbacks, 1);
	if (res < 0) {
		if (!(err_bit((int)-res) & s->err_ok))
			stress_violation(st, SV_RESULT,
					 "tag %llu kind %d: unexpected error "
					 "%zd (%s)",
					 (unsigned long long)s->tag, sl->kind,
					 res, strerror((int)-res));
		if (sl->kind == K_WRITE)
			sl->valid = 0;
	} else {
		switch (sl->kind) {
		case K_WRITE:
			if ((size_t)res != sl->len)
				stress_violation(st, SV_RESULT,
						 "write of %zu returned %zd",
						 sl->len, res);
			sl->valid = (size_t)res == sl->len;
			break;
		case K_READ:
			if ((size_t)res != sl->len) {
				stress_violation(st, SV_RESULT,
						 "read of %zu returned %zd",
						 sl->len, res);
				break;
			}
			if (!sl->valid)
				break;
			want = malloc(sl->len);
			if (!want)
				abort();
			stress_fill(want, sl->len,
				    s->tag << 40 ^ (uint64_t)sl->idx << 32 ^
					    sl->gen);
			if (memcmp(want, sl->buf, sl->len))
				stress_violation(
					st, SV_RESULT,
					"tag %llu slot %d: read-back "
					"differs from what was written",
					(unsigned long long)s->tag, sl->idx);
			free(want);
			break;
		case K_PIPE:
			if (res != 1)
				stress_violation(st, SV_RESULT,
						 "pipe read returned %zd", res);
			break;
		default:
			if (res != 0)
				stress_violation(st, SV_RESULT,
						 "kind %d returned %zd",
						 sl->kind, res);
		}
	}
	pthread_mutex_lock(&s->lock);
	sl->busy = 0;
	s->nbusy--;
	if (sl->kind == K_PIPE)
		s->pipe_busy = 0;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Feed the pipe so a blocked pipe read ends (one byte per read). */
static void pipe_kick(struct psess *s)
{
	char b = 'k';

	if (write(s->pipefd[1], &b, 1) < 0) {
		/* full pipe: the read has bytes to take anyway */
	}
}

static void prep_slot(struct psess *s, struct pslot *sl)
{
	uint64_t off = (uint64_t)sl->idx * SLOT_BYTES;
	unsigned w = (unsigned)stress_range(&s->rng, 0, 99);

	if (w < 35) {
		sl->kind = K_WRITE;
		sl->len = stress_range(&s->rng, 1, SLOT_BYTES);
		sl->gen++;
		stress_fill(sl->buf, sl->len,
			    s->tag << 40 ^ (uint64_t)sl->idx << 32 ^ sl->gen);
		sl->valid = 0; /* until this write completes */
		berth_prep_write(&sl->req, s->fd, sl->buf, sl->len, off);
	} else if (w < 65 && sl->valid) {
		sl->kind = K_READ;
		memset(sl->buf, 0, sl->len);
		berth_prep_read(&sl->req, s->fd, sl->buf, sl->len, off);
	} else if (w < 72) {
		sl->kind = K_FSYNC;
		berth_prep_fsync(
			&sl->req, s->fd,
			stress_chance(&s->rng, 50) ? BERTH_FSYNC_DATASYNC : 0);
	} else if (w < 82) {
		sl->kind = K_STATX;
#ifdef _WIN32
		/* Windows resolves names only beneath a directory handle
		 * (an absolute path is -EXDEV there): the file's own. */
		berth_prep_statx(&sl->req, s->fd, "", AT_EMPTY_PATH,
				 STATX_BASIC_STATS, &sl->stx);
#else
		berth_prep_statx(&sl->req, AT_FDCWD, s->path, 0,
				 STATX_BASIC_STATS, &sl->stx);
#endif
	} else if (w < 88 && !s->pipe_busy) {
		sl->kind = K_PIPE;
		s->pipe_busy = 1;
		berth_prep_read(&sl->req, s->pipefd[0], sl->buf, 1,
				BERTH_OFF_STREAM);
	} else {
		sl->kind = K_NOP;
		berth_prep_nop(&sl->req);
	}
	berth_req_set_cb(&sl->req, slot_cb, NULL, s->tag);
}

static void *psess_main(void *arg)
{
	struct psess *s = arg;
	struct timespec ts;
	struct pslot *sl;
	unsigned i, j;
	int r;

	for (i = 0; i < s->nops; i++) {
		pthread_mutex_lock(&s->lock);
		while (s->nbusy == s->window) {
			/* A pipe read may hold a pool worker others need:
			 * keep feeding it. */
			if (s->pipe_busy)
				pipe_kick(s);
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 2000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&s->cond, &s->lock, &ts);
		}
		sl = NULL;
		for (j = 0; j < s->window; j++)
			if (!s->slot[j].busy) {
				sl = &s->slot[j];
				break;
			}
		prep_slot(s, sl);
		sl->busy = 1;
		s->nbusy++;
		atomic_store(&sl->cbs, 0);
		r = berth_pump_submit(s->it->pump, &sl->req);
		if (r < 0) {
			sl->busy = 0;
			s->nbusy--;
			if (sl->kind == K_PIPE)
				s->pipe_busy = 0;
			if (sl->kind == K_WRITE)
				sl->valid = 0;
		} else {
			s->accepted++;
		}
		pthread_mutex_unlock(&s->lock);
		if (r == -ESHUTDOWN && atomic_load(&s->it->shut))
			break;
		if (r < 0) {
			stress_violation(s->it->st, SV_RESULT,
					 "submit refused: %d (%s)", r,
					 strerror(-r));
			break;
		}
		if (stress_chance(&s->rng, 10)) {
			pthread_mutex_lock(&s->lock);
			if (s->pipe_busy)
				pipe_kick(s);
			pthread_mutex_unlock(&s->lock);
		}
	}
	/* Drain: everything accepted completes (pipe reads need a byte). */
	pthread_mutex_lock(&s->lock);
	while (s->nbusy) {
		if (s->pipe_busy)
			pipe_kick(s);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 2000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void arm_faults(struct pump_iter *it, struct stress_rng *r)
{
	struct stress_state *st = it->st;
	unsigned n = (unsigned)stress_range(r, 1, 4), i;

	for (i = 0; i < n; i++) {
		struct berth_fault f = {0};
		unsigned kind = (unsigned)stress_range(r, 0, SF_SHORT_READ);
		struct psess *s = NULL;

		switch (kind) {
		case SF_ENOSPC_WRITE:
			f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
			f.error = ENOSPC;
			break;
		case SF_EIO_WRITE:
			f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
			f.error = EIO;
			break;
		case SF_EIO_READ:
			f.ops = BERTH_OP_BIT(BERTH_OP_READ);
			f.error = EIO;
			break;
		case SF_EIO_FSYNC:
			f.ops = BERTH_OP_BIT(BERTH_OP_FSYNC);
			f.error = EIO;
			break;
		case SF_SHORT_WRITE:
			f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
			f.short_bytes = (uint32_t)stress_range(r, 1, 4096);
			break;
		default:
			f.ops = BERTH_OP_BIT(BERTH_OP_READ);
			f.short_bytes = (uint32_t)stress_range(r, 1, 4096);
			kind = SF_SHORT_READ;
			break;
		}
		if (st->o.skip_fault[0] & (1u << kind))
			continue;
		f.nth = stress_range(r, 1, 40);
		f.count = stress_range(r, 1, 5);
		if (stress_chance(r, 75)) {
			s = &it->sess[stress_range(r, 0, it->nsess - 1)];
			f.tag = s->tag;
		}
		if (berth_pump_inject(it->pump, &f) < 0)
			continue;
		st->faults_armed[kind]++;
		for (unsigned k = 0; k < it->nsess; k++) {
			if (s && s != &it->sess[k])
				continue;
			it->sess[k].disturbed = 1;
			if (f.error)
				it->sess[k].err_ok |= err_bit(f.error);
		}
	}
}

void stress_pump_iter(struct stress_state *st, struct stress_rng *r)
{
	struct berth_pump_opts po = {0};
	struct berth_pump_stats ps;
	struct pump_iter it = {.st = st};
	int backend = stress_backend(r);
	int fds0 = stress_count_fds(), fds1;
	size_t heap0 = stress_heap_bytes(), heap1;
	unsigned i, d, victims = 0;
	uint64_t accepted = 0, callbacks = 0;
	double t_end;
	int ret;

	po.backend = backend;
	po.queue_depth = 1u << stress_range(r, 3, 8);
	po.pool_threads = (unsigned)stress_range(r, 1, 8);
	it.nsess = stress_sessions(
		st, (unsigned)stress_range(r, 1, st->o.max_sessions));
	d = (unsigned)stress_range(r, 0, 99);
	d = d < 20   ? SD_NONE
	    : d < 35 ? SD_CANCEL_REQ
	    : d < 50 ? SD_CANCEL_TAG
	    : d < 70 ? SD_PUMP_SHUTDOWN
		     : SD_FAULT;
	d = stress_filter(st, 0, d);
	stress_describe(st, "pump: %s, qd %u, %u pool threads, %u sessions, %s",
			berth_pump_backend_name(backend), po.queue_depth,
			po.pool_threads, it.nsess, stress_disruption_names[d]);
	ret = berth_pump_create(&po, &it.pump);
	if (ret < 0) {
		stress_log(st, "pump: backend %s unavailable (%s), skipped\n",
			   berth_pump_backend_name(backend),
			   berth_strerror(ret));
		return;
	}
	it.sess = calloc(it.nsess, sizeof(*it.sess));
	if (!it.sess)
		abort();
	for (i = 0; i < it.nsess; i++) {
		struct psess *s = &it.sess[i];

		s->it = &it;
		s->tag = i + 1;
		s->rng.s = stress_next(r);
		s->window = (unsigned)stress_range(r, 1, MAX_WINDOW);
		s->nops = (unsigned)stress_range(r, 50, 600);
		pthread_mutex_init(&s->lock, NULL);
		pthread_cond_init(&s->cond, NULL);
		snprintf(s->path, sizeof(s->path), "%s/pump-%u", st->o.workdir,
			 i);
		s->fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			     0600);
#ifdef _WIN32
		/* Windows: the read end overlapped (the pump waits on it and
		 * can cancel it), the write end blocking; a kick is one byte
		 * while a read waits, far from filling the pipe. */
		if (s->fd < 0 || pipe(s->pipefd) < 0 ||
		    ftruncate(s->fd, (off_t)MAX_WINDOW * SLOT_BYTES) < 0)
			abort();
#else
		if (s->fd < 0 || pipe2(s->pipefd, O_CLOEXEC | O_NONBLOCK) < 0 ||
		    ftruncate(s->fd, (off_t)MAX_WINDOW * SLOT_BYTES) < 0)
			abort();
		/* Reads block in the pump (io_uring polls, the pool reads
		 * with a blocking fd); only our kicks are non-blocking. */
		fcntl(s->pipefd[0], F_SETFL, 0);
#endif
		for (unsigned k = 0; k < MAX_WINDOW; k++) {
			s->slot[k].s = s;
			s->slot[k].idx = (int)k;
			s->slot[k].buf = malloc(SLOT_BYTES);
			if (!s->slot[k].buf)
				abort();
		}
	}
	if (d == SD_CANCEL_REQ || d == SD_CANCEL_TAG) {
		for (i = 0; i < it.nsess; i++)
			if (!victims || stress_chance(r, 50)) {
				it.sess[i].disturbed = 1;
				it.sess[i].err_ok |= err_bit(ECANCELED);
				victims++;
			}
	} else if (d == SD_PUMP_SHUTDOWN) {
		for (i = 0; i < it.nsess; i++) {
			it.sess[i].disturbed = 1;
			it.sess[i].err_ok |= err_bit(ECANCELED);
		}
	} else if (d == SD_FAULT) {
		arm_faults(&it, r);
	}
	st->disruptions[d]++;
	st->sessions += it.nsess;
	for (i = 0; i < it.nsess; i++)
		if (pthread_create(&it.sess[i].thread, NULL, psess_main,
				   &it.sess[i]))
			abort();

	/* The disruption, from this thread, at seeded moments. */
	t_end = stress_now() + (double)stress_range(r, 5, 150) / 1000.0;
	if (d == SD_CANCEL_REQ || d == SD_CANCEL_TAG) {
		while (stress_now() < t_end) {
			struct psess *s =
				&it.sess[stress_range(r, 0, it.nsess - 1)];

			stress_sleep_us(stress_range(r, 50, 3000));
			if (!s->disturbed)
				continue;
			if (d == SD_CANCEL_TAG) {
				if (berth_pump_cancel_tag(it.pump, s->tag) < 0)
					stress_violation(st, SV_RESULT,
							 "cancel_tag failed");
				continue;
			}
			pthread_mutex_lock(&s->lock);
			for (i = 0; i < s->window; i++)
				if (s->slot[i].busy && stress_chance(r, 50))
					berth_pump_cancel(it.pump,
							  &s->slot[i].req);
			pthread_mutex_unlock(&s->lock);
		}
	} else if (d == SD_PUMP_SHUTDOWN) {
		stress_sleep_us(stress_range(r, 0, 40000));
		atomic_store(&it.shut, 1);
		ret = berth_pump_shutdown(it.pump);
		if (ret)
			stress_violation(st, SV_RESULT, "shutdown: %d", ret);
		/* Every callback has run: nothing may still be in flight. */
		for (i = 0; i < it.nsess; i++) {
			pthread_mutex_lock(&it.sess[i].lock);
			if (it.sess[i].nbusy)
				stress_violation(
					st, SV_ONCE,
					"tag %llu: %u requests still "
					"in flight after shutdown",
					(unsigned long long)it.sess[i].tag,
					it.sess[i].nbusy);
			pthread_mutex_unlock(&it.sess[i].lock);
		}
	}
	for (i = 0; i < it.nsess; i++)
		pthread_join(it.sess[i].thread, NULL);

	berth_pump_stats(it.pump, &ps);
	for (i = 0; i < it.nsess; i++) {
		struct psess *s = &it.sess[i];

		accepted += s->accepted;
		callbacks += atomic_load(&s->callbacks);
		if (s->accepted != atomic_load(&s->callbacks))
			stress_violation(
				st, SV_ONCE,
				"tag %llu: %llu accepted, %llu "
				"callbacks",
				(unsigned long long)s->tag,
				(unsigned long long)s->accepted,
				(unsigned long long)atomic_load(&s->callbacks));
		if (!s->disturbed && s->err_ok)
			abort(); /* own invariant */
	}
	if (ps.submitted != accepted || ps.completed != callbacks ||
	    ps.in_flight != 0)
		stress_violation(st, SV_COUNT,
				 "pump says %llu submitted, %llu completed, "
				 "%llu in flight; sessions counted %llu "
				 "accepted, %llu callbacks",
				 (unsigned long long)ps.submitted,
				 (unsigned long long)ps.completed,
				 (unsigned long long)ps.in_flight,
				 (unsigned long long)accepted,
				 (unsigned long long)callbacks);
	st->requests += ps.completed;
	st->faults_fired += ps.faults;
	berth_pump_free(it.pump);
	for (i = 0; i < it.nsess; i++) {
		struct psess *s = &it.sess[i];

		close(s->fd);
		close(s->pipefd[0]);
		close(s->pipefd[1]);
		unlink(s->path);
		for (unsigned k = 0; k < MAX_WINDOW; k++)
			free(s->slot[k].buf);
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->cond);
	}
	free(it.sess);
	fds1 = stress_count_fds();
	if (fds1 != fds0) {
		char list[512];

		stress_fd_list(list, sizeof(list));
		stress_violation(st, SV_FD, "pump: %d fds before, %d after:%s",
				 fds0, fds1, list);
	}
	heap1 = stress_heap_bytes();
	if (heap1 > heap0 + (1u << 20))
		stress_violation(st, SV_MEM, "pump: heap %zu -> %zu bytes",
				 heap0, heap1);
}
