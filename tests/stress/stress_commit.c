/* SPDX-License-Identifier: MIT */
/*
 * Commit mode: 1-16 commit stages ("sessions") on one shared pump, each fed
 * by its own producer thread with a workload (many small files, a few large
 * files in random chunks, or a mixed tree with directories) over a
 * destination that already holds an older version of some of the names.
 * The iteration's disruption: berth_commit_cancel() at a random moment,
 * files aborted mid-write, a pump shutdown with everything in flight, or
 * faults injected on one session's files (ENOSPC/EIO on write, EIO on
 * fsync, short writes, a failing rename) or on everyone's.
 *
 * Invariants: every final name holds its old content (or is absent if it
 * had none) or the complete new content; exactly one file event per begun
 * file, and an event without error means the new content; no temp files;
 * sessions nobody disturbed committed everything and flushed with 0; the
 * pump's submitted == completed with nothing in flight; fds and heap come
 * back to where they were.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/commit/commit.h"
#include "engine/pump/pump.h"
#include "stress.h"

enum { W_SMALL, W_LARGE, W_MIXED, W__COUNT };
static const char *const workload_names[W__COUNT] = {"small", "large", "mixed"};

struct cfile {
	char rel[64];
	uint64_t old_seed, new_seed;
	size_t old_len, new_len;
	int has_old;
	int abort_at; /* abort after this many chunks; -1 never */
	int begun;
	atomic_int events;
	atomic_int ev_err;
	uint64_t tag;
};

struct commit_iter;

struct csess {
	struct commit_iter *it;
	pthread_t thread;
	struct berth_commit *c;
	struct berth_commit_opts o;
	char root[512];
	int rootfd;
	int ndirs;
	struct cfile *files;
	unsigned nfiles;
	int disturbed; /* outcomes other than success are allowed */
	int flush_ret;
	int create_ret;
	struct stress_rng rng;
};

struct commit_iter {
	struct stress_state *st;
	struct berth_pump *pump;
	struct csess *sess;
	unsigned nsess;
	int workload;
	int disruption;
};

static void on_event(void *arg, const struct berth_commit_event *ev)
{
	struct csess *s = arg;
	struct cfile *f = ev->user;

	if (ev->kind != BERTH_COMMIT_EV_FILE || !f)
		return;
	if (f < s->files || f >= s->files + s->nfiles)
		abort(); /* own invariant: user is ours */
	atomic_store(&f->ev_err, ev->err);
	atomic_fetch_add(&f->events, 1);
}

static void *csess_main(void *arg)
{
	struct csess *s = arg;
	struct commit_iter *it = s->it;
	struct berth_commit_meta m = {.mode = 0644,
				      .mtime_sec = 1700000000,
				      .uid = (uint32_t)-1,
				      .gid = (uint32_t)-1};
	unsigned char *buf = NULL;
	size_t cap = 0;
	unsigned i;
	int r, d;

	for (d = 0; d < s->ndirs; d++) {
		char rel[16];

		snprintf(rel, sizeof(rel), "d%d", d);
		m.mode = 040755;
		m.user = NULL;
		r = berth_commit_mkdir(s->c, rel, &m);
		if (r < 0 && !s->disturbed)
			stress_violation(it->st, SV_UNDISTURBED,
					 "%s: mkdir %s: %s", s->root, rel,
					 berth_strerror(r));
	}
	m.mode = 0644;
	for (i = 0; i < s->nfiles; i++) {
		struct cfile *f = &s->files[i];
		struct berth_commit_file *h;
		size_t off = 0;
		int chunk = 0;

		if (f->new_len > cap) {
			free(buf);
			cap = f->new_len;
			buf = malloc(cap);
			if (!buf)
				abort();
		}
		stress_fill(buf, f->new_len, f->new_seed);
		m.user = f;
		m.size_hint = f->new_len;
		r = berth_commit_file_begin(s->c, f->rel, &m, 0, &h);
		if (r < 0) {
			if (!s->disturbed)
				stress_violation(it->st, SV_UNDISTURBED,
						 "%s: begin %s: %s", s->root,
						 f->rel, berth_strerror(r));
			continue;
		}
		f->begun = 1;
		f->tag = berth_commit_file_tag(h);
		while (off < f->new_len) {
			size_t n = (size_t)stress_range(
				&s->rng, 1,
				f->new_len > 262144 ? 262144 : f->new_len);

			if (n > f->new_len - off)
				n = f->new_len - off;
			if (chunk++ == f->abort_at)
				break;
			r = berth_commit_file_write(h, buf + off, n);
			if (r < 0 && !s->disturbed)
				stress_violation(it->st, SV_UNDISTURBED,
						 "%s: write %s: %s", s->root,
						 f->rel, berth_strerror(r));
			if (r < 0)
				break;
			off += n;
		}
		if (f->abort_at >= 0 && chunk > f->abort_at)
			berth_commit_file_abort(h);
		else if (r < 0 && stress_chance(&s->rng, 50))
			berth_commit_file_abort(h);
		else
			berth_commit_file_finish(h);
	}
	free(buf);
	s->flush_ret = berth_commit_flush(s->c);
	if (s->flush_ret && !s->disturbed)
		stress_violation(it->st, SV_UNDISTURBED, "%s: flush: %s",
				 s->root, berth_strerror(s->flush_ret));
	return NULL;
}

static void plan_session(struct commit_iter *it, struct csess *s,
			 struct stress_rng *r)
{
	unsigned i, nsmall = 0, nlarge = 0;

	switch (it->workload) {
	case W_SMALL:
		nsmall = (unsigned)stress_range(r, 10, 80);
		break;
	case W_LARGE:
		nlarge = (unsigned)stress_range(r, 1, 3);
		break;
	default:
		s->ndirs = (int)stress_range(r, 1, 4);
		nsmall = (unsigned)stress_range(r, 5, 40);
		nlarge = 1;
	}
	s->nfiles = nsmall + nlarge;
	s->files = calloc(s->nfiles, sizeof(*s->files));
	if (!s->files)
		abort();
	for (i = 0; i < s->nfiles; i++) {
		struct cfile *f = &s->files[i];
		int large = i >= nsmall;

		if (s->ndirs && stress_chance(r, 70))
			snprintf(
				f->rel, sizeof(f->rel), "d%d/f%03u",
				(int)stress_range(r, 0, (uint64_t)s->ndirs - 1),
				i);
		else
			snprintf(f->rel, sizeof(f->rel), "f%03u", i);
		f->new_seed = stress_next(r);
		f->new_len = large ? stress_range(r, 256 << 10, 6 << 20)
				   : stress_range(r, 0, 16384);
		f->has_old = stress_chance(r, 60);
		f->old_seed = stress_next(r);
		f->old_len = stress_range(r, 0, large ? 1 << 20 : 8192);
		f->abort_at = -1;
		atomic_init(&f->events, 0);
		atomic_init(&f->ev_err, 1);
	}
	s->o.durability = (int)stress_range(r, 0, 2);
	s->o.buf_size = (size_t)1 << stress_range(r, 12, 17);
	s->o.mem_budget = s->o.buf_size * stress_range(r, 2, 64);
	s->o.max_files = (unsigned)stress_range(r, 1, 32);
	s->o.max_ops = (unsigned)stress_range(r, 1, 16);
	s->o.dir_cache = (unsigned)stress_range(r, 1, 16);
}

/* Create the old state: the directories and the files that had one. */
static void seed_tree(struct csess *s)
{
	char p[1024];
	unsigned char *buf;
	unsigned i;
	int d;

	if (stress_mkdirs(s->root, 0755) < 0)
		abort();
	for (d = 0; d < s->ndirs; d++) {
		snprintf(p, sizeof(p), "%s/d%d", s->root, d);
		if (mkdir(p, 0755) < 0)
			abort();
	}
	for (i = 0; i < s->nfiles; i++) {
		struct cfile *f = &s->files[i];

		if (!f->has_old)
			continue;
		buf = malloc(f->old_len + 1);
		if (!buf)
			abort();
		stress_fill(buf, f->old_len, f->old_seed);
		snprintf(p, sizeof(p), "%s/%s", s->root, f->rel);
		if (stress_write_file(p, buf, f->old_len, 0600, 1600000000))
			abort();
		free(buf);
	}
}

static int same(const unsigned char *got, ssize_t n, size_t len, uint64_t seed)
{
	unsigned char *want;
	int eq;

	if (n < 0 || (size_t)n != len)
		return 0;
	want = malloc(len + 1);
	if (!want)
		abort();
	stress_fill(want, len, seed);
	eq = !memcmp(want, got, len);
	free(want);
	return eq;
}

static void temp_found(void *arg, const char *path)
{
	stress_violation(arg, SV_TEMP, "temp file left: %s", path);
}

static void check_session(struct stress_state *st, struct csess *s)
{
	char p[1024];
	unsigned i;

	for (i = 0; i < s->nfiles; i++) {
		struct cfile *f = &s->files[i];
		unsigned char *got;
		ssize_t n;
		int ev = atomic_load(&f->events), err = atomic_load(&f->ev_err);
		int is_new, is_old;

		snprintf(p, sizeof(p), "%s/%s", s->root, f->rel);
		n = stress_read_file(p, &got);
		is_new = same(got, n, f->new_len, f->new_seed);
		is_old = f->has_old ? same(got, n, f->old_len, f->old_seed)
				    : n == -ENOENT;
		free(got);
		st->files++;
		if (!is_new && !is_old)
			stress_violation(st, SV_CONTENT,
					 "%s: neither old nor new content "
					 "(%zd bytes; old %zu, new %zu; event "
					 "%d err %d)",
					 p, n, f->old_len, f->new_len, ev, err);
		if (f->begun && ev != 1)
			stress_violation(st, SV_ONCE,
					 "%s: %d file events (tag %llu)", p, ev,
					 (unsigned long long)f->tag);
		if (!f->begun && ev != 0)
			stress_violation(st, SV_ONCE,
					 "%s: event for a file never begun", p);
		if (f->begun && ev == 1 && err == 0 && !is_new)
			stress_violation(st, SV_CONTENT,
					 "%s: committed without error but not "
					 "the new content",
					 p);
		if (f->begun && ev == 1 && err != 0 && !is_old)
			stress_violation(st, SV_CONTENT,
					 "%s: failed (%s) but not the old "
					 "content",
					 p, berth_strerror(err));
		if (!s->disturbed && (!f->begun || err != 0))
			stress_violation(st, SV_UNDISTURBED,
					 "%s: undisturbed file not committed "
					 "(begun %d, err %s)",
					 p, f->begun, berth_strerror(err));
	}
	stress_find_temps(s->root, temp_found, st);
}

/* Faults on one session's file tags (or on everyone: tag 0). */
static void arm_faults(struct commit_iter *it, struct stress_rng *r)
{
	struct stress_state *st = it->st;
	unsigned n = (unsigned)stress_range(r, 1, 3), i, k;

	for (i = 0; i < n; i++) {
		struct berth_fault f = {0};
		unsigned kind = (unsigned)stress_range(r, 0, 4);
		struct csess *s = &it->sess[stress_range(r, 0, it->nsess - 1)];
		int global = stress_chance(r, 20);
		uint64_t fileno;

		switch (kind) {
		case 0:
			kind = SF_ENOSPC_WRITE;
			f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
			f.error = ENOSPC;
			break;
		case 1:
			kind = SF_EIO_WRITE;
			f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
			f.error = EIO;
			break;
		case 2:
			kind = SF_EIO_FSYNC;
			f.ops = BERTH_OP_BIT(BERTH_OP_FSYNC);
			f.error = EIO;
			break;
		case 3:
			kind = SF_SHORT_WRITE;
			f.ops = BERTH_OP_BIT(BERTH_OP_WRITE);
			f.short_bytes = (uint32_t)stress_range(r, 1, 8192);
			f.count = stress_range(r, 1, 50);
			break;
		default:
			kind = SF_RENAME;
			f.ops = BERTH_OP_BIT(BERTH_OP_RENAMEAT2);
			f.error = stress_chance(r, 50) ? EACCES : EDQUOT;
			break;
		}
		if (st->o.skip_fault[1] & (1u << kind))
			continue;
		if (!f.count)
			f.count = stress_range(r, 1, 3);
		if (global) {
			f.nth = stress_range(r, 1, 200);
		} else {
			/* Tags: tag_base + n for the n-th item begun; the
			 * mkdirs come first. */
			fileno = stress_range(r, 1, s->nfiles);
			f.tag = s->o.tag_base + (uint64_t)s->ndirs + fileno;
			f.nth = stress_range(r, 1, 4);
		}
		if (berth_pump_inject(it->pump, &f) < 0)
			continue;
		st->faults_armed[kind]++;
		if (!f.error)
			continue; /* short writes must not change outcomes */
		for (k = 0; k < it->nsess; k++)
			if (global || &it->sess[k] == s)
				it->sess[k].disturbed = 1;
	}
}

void stress_commit_iter(struct stress_state *st, struct stress_rng *r)
{
	struct berth_pump_opts po = {0};
	struct berth_pump_stats ps;
	struct commit_iter it = {.st = st};
	int backend = stress_backend(r);
	int fds0 = stress_count_fds(), fds1;
	size_t heap0 = stress_heap_bytes(), heap1;
	unsigned i, victims = 0;
	int d, ret;

	po.backend = backend;
	po.queue_depth = 1u << stress_range(r, 3, 8);
	po.pool_threads = (unsigned)stress_range(r, 1, 8);
	it.nsess = stress_sessions(
		st, (unsigned)stress_range(r, 1, st->o.max_sessions));
	it.workload = stress_workload(st,
				      (int)stress_range(r, 0, W__COUNT - 1));
	d = (int)stress_range(r, 0, 99);
	d = d < 20   ? SD_NONE
	    : d < 35 ? SD_CANCEL_API
	    : d < 50 ? SD_ABORT_FILE
	    : d < 65 ? SD_PUMP_SHUTDOWN
		     : SD_FAULT;
	d = stress_filter(st, 1, d);
	it.disruption = d;
	stress_describe(st, "commit: %s, %u sessions, workload %s, %s",
			berth_pump_backend_name(backend), it.nsess,
			workload_names[it.workload],
			stress_disruption_names[d]);
	ret = berth_pump_create(&po, &it.pump);
	if (ret < 0) {
		stress_log(st, "commit: backend %s unavailable, skipped\n",
			   berth_pump_backend_name(backend));
		return;
	}
	it.sess = calloc(it.nsess, sizeof(*it.sess));
	if (!it.sess)
		abort();
	for (i = 0; i < it.nsess; i++) {
		struct csess *s = &it.sess[i];

		s->it = &it;
		s->rng.s = stress_next(r);
		snprintf(s->root, sizeof(s->root), "%s/commit-%u",
			 st->o.workdir, i);
		plan_session(&it, s, r);
		s->o.tag_base = (uint64_t)(i + 1) << 32;
		seed_tree(s);
		s->rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->rootfd < 0)
			abort();
		s->create_ret = berth_commit_create(it.pump, s->rootfd, &s->o,
						    on_event, s, &s->c);
		if (s->create_ret < 0)
			stress_violation(st, SV_RESULT, "commit_create: %s",
					 berth_strerror(s->create_ret));
	}
	if (st->violation)
		goto out;
	if (d == SD_CANCEL_API || d == SD_ABORT_FILE) {
		for (i = 0; i < it.nsess; i++)
			if (!victims || stress_chance(r, 50)) {
				it.sess[i].disturbed = 1;
				victims++;
				if (d != SD_ABORT_FILE)
					continue;
				for (unsigned k = 0; k < it.sess[i].nfiles; k++)
					if (stress_chance(r, 30))
						it.sess[i].files[k].abort_at =
							(int)stress_range(r, 0,
									  5);
			}
	} else if (d == SD_PUMP_SHUTDOWN) {
		for (i = 0; i < it.nsess; i++)
			it.sess[i].disturbed = 1;
	} else if (d == SD_FAULT) {
		arm_faults(&it, r);
	}
	st->disruptions[d]++;
	st->sessions += it.nsess;
	for (i = 0; i < it.nsess; i++)
		if (pthread_create(&it.sess[i].thread, NULL, csess_main,
				   &it.sess[i]))
			abort();
	if (d == SD_CANCEL_API) {
		for (i = 0; i < it.nsess; i++) {
			if (!it.sess[i].disturbed)
				continue;
			stress_sleep_us(stress_range(r, 0, 30000));
			ret = berth_commit_cancel(it.sess[i].c);
			if (ret)
				stress_violation(st, SV_RESULT,
						 "commit_cancel: %s",
						 berth_strerror(ret));
		}
	} else if (d == SD_PUMP_SHUTDOWN) {
		stress_sleep_us(stress_range(r, 0, 60000));
		ret = berth_pump_shutdown(it.pump);
		if (ret)
			stress_violation(st, SV_RESULT, "shutdown: %d", ret);
	}
	for (i = 0; i < it.nsess; i++)
		pthread_join(it.sess[i].thread, NULL);
out:
	for (i = 0; i < it.nsess; i++)
		berth_commit_free(it.sess[i].c);
	berth_pump_stats(it.pump, &ps);
	if (ps.submitted != ps.completed || ps.in_flight)
		stress_violation(st, SV_COUNT,
				 "pump: %llu submitted, %llu completed, %llu "
				 "in flight after every stage was freed",
				 (unsigned long long)ps.submitted,
				 (unsigned long long)ps.completed,
				 (unsigned long long)ps.in_flight);
	st->requests += ps.completed;
	st->faults_fired += ps.faults;
	berth_pump_free(it.pump);
	for (i = 0; i < it.nsess; i++) {
		struct csess *s = &it.sess[i];

		close(s->rootfd);
		check_session(st, s);
		stress_rm_rf(s->root);
		free(s->files);
	}
	free(it.sess);
	fds1 = stress_count_fds();
	if (fds1 != fds0) {
		char list[512];

		stress_fd_list(list, sizeof(list));
		stress_violation(st, SV_FD,
				 "commit: %d fds before, %d after:%s", fds0,
				 fds1, list);
	}
	heap1 = stress_heap_bytes();
	if (heap1 > heap0 + (1u << 20))
		stress_violation(st, SV_MEM, "commit: heap %zu -> %zu bytes",
				 heap0, heap1);
}
