/* SPDX-License-Identifier: MIT */
/* Shared fixtures of the disk-commit tests (test_commit_*.c). */
#ifndef BERTH_TEST_COMMIT_UTIL_H
#define BERTH_TEST_COMMIT_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <pthread.h>
#include <cmocka.h>

#include "engine/commit/commit.h"
#include "engine/pump/pump.h"

/* The tests' tag_base: item n's requests get TAG_BASE + n, the stage's
 * own (directory) requests TAG_BASE. */
#define TAG_BASE 1000

struct ev_rec {
	char path[128];
	int err;
	int kind;
	int step; /* enum berth_commit_step */
	int op; /* EV_OP: enum berth_commit_op_kind */
	bool has_tmp, has_target;
};

/* One stage on its own pump, committing into a fresh temp directory. */
struct env {
	int nfds; /* open fds before the stage: none may leak */
	struct berth_pump *pump;
	struct berth_commit *c;
	char root[64];
	char out[64]; /* "outside" the destination */
	int rootfd;
	pthread_mutex_t lock;
	struct ev_rec ev[4096];
	unsigned nev;
};

/* Set up @v with options @o (NULL: defaults with TAG_BASE); < 0 when no
 * pump can be made.  env_stop() removes it all and checks for fd leaks. */
int env_start(struct env *v, const struct berth_commit_opts *o);
void env_stop(struct env *v);

/* The last event's error for @path; 1 when there was none. */
int ev_err(struct env *v, const char *path);
/* The last event for @path (a copy); its err is 1 when there was none. */
struct ev_rec ev_last(struct env *v, const char *path);

/* Count entries whose name starts with '.' (temp files) below @dir. */
int count_temps(const char *dir);

/* @n deterministic bytes from @seed. */
void fill(unsigned char *p, size_t n, unsigned seed);

/* Write @data to @rel in the destination behind the stage's back. */
void write_plain(struct env *v, const char *rel, const char *data);

/* @dir/@rel holds exactly @len bytes of @data. */
void expect_content(const char *dir, const char *rel, const void *data,
		    size_t len);

/* A flush succeeds; then @rel's event has no error, it holds exactly
 * @len bytes of @data and no temp file is left in the destination. */
void expect_committed(struct env *v, const char *rel, const void *data,
		      size_t len);

/* begin, write @len bytes of @data, finish: finish's result. */
int commit_one(struct env *v, const char *rel, const void *data, size_t len,
	       const struct berth_commit_meta *m);

/* @path has mode @mode (Windows keeps u+w only: the read-only bit). */
void expect_mode(const char *path, unsigned mode);

/* @path's mtime is @sec.@nsec (Windows keeps 100 ns ticks). */
void expect_mtime(const char *path, int64_t sec, long nsec);

/* Whether @dir/@rel exists (not following a final symlink). */
int exists(const char *dir, const char *rel);

/* Test groups, one per source file, in the order main() runs them. */
extern const struct CMUnitTest commit_paths_tests[];
extern const size_t commit_paths_count;
extern const struct CMUnitTest commit_durability_tests[];
extern const size_t commit_durability_count;
extern const struct CMUnitTest commit_fault_tests[];
extern const size_t commit_fault_count;
extern const struct CMUnitTest commit_tree_tests[];
extern const size_t commit_tree_count;
extern const struct CMUnitTest commit_finish_tests[];
extern const size_t commit_finish_count;
extern const struct CMUnitTest commit_xattr_tests[];
extern const size_t commit_xattr_count;
extern const struct CMUnitTest commit_cancel_tests[];
extern const size_t commit_cancel_count;
#ifdef _WIN32
extern const struct CMUnitTest commit_win_tests[];
extern const size_t commit_win_count;
#endif

#endif
