/* SPDX-License-Identifier: MIT */
/*
 * The platform seam (engine/platform) and the safe-path component
 * (engine/path): wakers, open beneath a directory, the fd path, the
 * umask, the group sync; name checks, the --backup-dir root, the directory-fd cache.
 * No pump: registered once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth.h"
#include "engine/path/path.h"
#include "engine/platform/platform.h"

/* A scratch tree: root/ with sub/f, and out/ beside it. */
struct tree {
	char dir[64];
	int root;
	int out;
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void tree_make(struct tree *t)
{
	char p[128];
	int fd;

	snprintf(t->dir, sizeof(t->dir), "/tmp/berth-plat-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(p, sizeof(p), "%s/root", t->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/out", t->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	t->root = open(t->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(t->root >= 0);
	t->out = openat(t->root, "out", O_PATH | O_DIRECTORY | O_CLOEXEC);
	fd = openat(t->root, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0 && t->out >= 0);
	close(t->root);
	t->root = fd;
	assert_int_equal(mkdirat(t->root, "sub", 0755), 0);
	fd = openat(t->root, "sub/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	/* Symlinks to the outside: as a directory and as a file. */
	snprintf(p, sizeof(p), "%s/out", t->dir);
	assert_int_equal(symlinkat(p, t->root, "evil"), 0);
	assert_int_equal(symlinkat("sub/f", t->root, "link"), 0);
}

static void tree_free(struct tree *t)
{
	char cmd[128];

	close(t->root);
	close(t->out);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	assert_int_equal(system(cmd), 0);
}

static int readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_waker(void **state)
{
	struct berth_waker w, b;

	(void)state;
	berth_waker_clear(&w);
	berth_waker_destroy(&w); /* a no-op */
	assert_int_equal(berth_waker_init(&w, BERTH_WAKER_NONBLOCK), 0);
	assert_false(readable(berth_waker_fd(&w)));
	berth_waker_drain(&w); /* lowered, nonblocking: returns */
	assert_int_equal(berth_waker_signal(&w), 0);
	assert_int_equal(berth_waker_signal(&w), 0);
	assert_true(readable(berth_waker_fd(&w)));
	berth_waker_drain(&w); /* both signals at once */
	assert_false(readable(berth_waker_fd(&w)));
	berth_waker_destroy(&w);
	assert_int_equal(berth_waker_fd(&w), -1);

	/* Blocking: a drain after a signal does not wait. */
	assert_int_equal(berth_waker_init(&b, 0), 0);
	assert_int_equal(berth_waker_signal(&b), 0);
	berth_waker_drain(&b);
	assert_false(readable(berth_waker_fd(&b)));
	berth_waker_destroy(&b);
}

static void *signal_later(void *arg)
{
	usleep(20000);
	assert_int_equal(berth_waker_signal(arg), 0);
	return NULL;
}

/* Another thread's signal wakes a poller. */
static void test_waker_thread(void **state)
{
	struct berth_waker w;
	struct pollfd p;
	pthread_t t;

	(void)state;
	assert_int_equal(berth_waker_init(&w, 0), 0);
	p = (struct pollfd){.fd = berth_waker_fd(&w), .events = POLLIN};
	assert_int_equal(pthread_create(&t, NULL, signal_later, &w), 0);
	assert_int_equal(poll(&p, 1, 10000), 1);
	berth_waker_drain(&w);
	pthread_join(t, NULL);
	berth_waker_destroy(&w);
}

static void test_open_beneath(void **state)
{
	struct tree t;
	int fd, n0 = count_fds();
	char buf[64];

	(void)state;
	tree_make(&t);
	fd = berth_plat_open_beneath(t.root, "sub/f", O_RDONLY);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	fd = berth_plat_open_beneath(t.root, "sub", O_PATH | O_DIRECTORY);
	assert_true(fd >= 0);
	close(fd);
	/* Never above the root, never through a symlink. */
	assert_int_equal(berth_plat_open_beneath(t.root, "../out", O_PATH),
			 -EXDEV);
	assert_int_equal(berth_plat_open_beneath(t.root, "/etc", O_PATH),
			 -EXDEV);
	assert_int_equal(berth_plat_open_beneath(t.root, "evil", O_PATH),
			 -ELOOP);
	assert_int_equal(berth_plat_open_beneath(t.root, "link", O_RDONLY),
			 -ELOOP);
	assert_int_equal(berth_plat_open_beneath(t.root, "nope", O_RDONLY),
			 -ENOENT);
	/* With a mode: created beneath, exclusive. */
	fd = berth_plat_open_beneath_mode(t.root, "sub/g",
					  O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(
		berth_plat_open_beneath_mode(t.root, "sub/g",
					     O_WRONLY | O_CREAT | O_EXCL, 0600),
		-EEXIST);
	assert_int_equal(berth_plat_open_beneath_mode(t.root, "evil/x",
						      O_WRONLY | O_CREAT, 0600),
			 -ELOOP);
	/* The fd path reaches the fd's object. */
	fd = berth_plat_open_beneath(t.root, "sub", O_PATH | O_DIRECTORY);
	assert_int_equal(berth_plat_fd_path(fd, buf, sizeof(buf)), 0);
	assert_int_equal(faccessat(AT_FDCWD, buf, F_OK, 0), 0);
	assert_int_equal(berth_plat_fd_path(fd, buf, 4), -ENAMETOOLONG);
	close(fd);
	tree_free(&t);
	assert_int_equal(count_fds(), n0);
}

static void test_umask(void **state)
{
	mode_t old = umask(027);

	(void)state;
	assert_int_equal(berth_plat_umask(), 027);
	umask(old);
	assert_int_equal(berth_plat_umask(), old);
}

/* Only a TCP socket is TCP; asking for an ACK now is harmless on it and
 * ignored elsewhere. */
static void test_tcp(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int l, c, s, sp[2], p[2];

	(void)state;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	s = accept(l, NULL, NULL);
	assert_true(s >= 0);
	assert_true(berth_plat_is_tcp(s));
	assert_true(berth_plat_is_tcp(c));
	assert_int_equal(write(c, "x", 1), 1);
	berth_plat_quickack(s);
	assert_int_equal(read(s, &len, 1), 1);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_false(berth_plat_is_tcp(sp[0]));
	berth_plat_quickack(sp[0]);
	assert_int_equal(pipe(p), 0);
	assert_false(berth_plat_is_tcp(p[0]));
	berth_plat_quickack(p[0]);
	assert_false(berth_plat_is_tcp(-1));
	close(l);
	close(c);
	close(s);
	close(sp[0]);
	close(sp[1]);
	close(p[0]);
	close(p[1]);
}

static void test_names(void **state)
{
	static const char *const bad[] = {"",	"/a",  "a//b",	 "a/", ".",
					  "..", "a/.", "a/../b", "./a"};
	char longc[NAME_MAX + 3];
	const char *base;
	size_t dl, i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(berth_path_check(bad[i]), -BERTH_EPATH);
	assert_int_equal(berth_path_check(NULL), -BERTH_EPATH);
	memset(longc, 'x', NAME_MAX + 1);
	longc[NAME_MAX + 1] = '\0';
	assert_int_equal(berth_path_check(longc), -BERTH_EPATH);
	longc[NAME_MAX] = '\0';
	assert_int_equal(berth_path_check(longc), 0);
	assert_int_equal(berth_path_check("..a/b.."), 0);
	assert_int_equal(berth_path_split("a/b/c", &dl, &base), 0);
	assert_int_equal(dl, 3);
	assert_string_equal(base, "c");
	assert_int_equal(berth_path_split("c", &dl, &base), 0);
	assert_int_equal(dl, 0);
	assert_string_equal(base, "c");
	assert_int_equal(berth_path_split("a/../c", &dl, &base), -BERTH_EPATH);
	assert_true(berth_path_overlap("a", 1, "a/b", 3));
	assert_true(berth_path_overlap("a/b", 3, "a", 1));
	assert_true(berth_path_overlap("", 0, "x", 1));
	assert_true(berth_path_overlap("a/b", 3, "a/b", 3));
	assert_false(berth_path_overlap("a", 1, "ab", 2));
	assert_false(berth_path_overlap("a/b", 3, "a/c", 3));
}

static void test_backup_root(void **state)
{
	struct tree t;
	struct stat st;
	char abs[128];
	int fd, n0 = count_fds();

	(void)state;
	tree_make(&t);
	/* Relative: made beneath the destination, level by level. */
	fd = berth_path_backup_root(t.root, "bak/deep/");
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fstatat(t.root, "bak/deep", &st, 0), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Existing: opened again. */
	fd = berth_path_backup_root(t.root, "bak");
	assert_true(fd >= 0);
	close(fd);
	/* Never through a symlink, never above the destination. */
	assert_int_equal(berth_path_backup_root(t.root, "evil/x"), -ELOOP);
	assert_int_equal(faccessat(t.out, "x", F_OK, 0), -1);
	assert_int_equal(berth_path_backup_root(t.root, "../out"), -EXDEV);
	assert_int_equal(berth_path_backup_root(t.root, "sub/f"), -ENOTDIR);
	/* Absolute: as given, made where missing. */
	snprintf(abs, sizeof(abs), "%s/out/abs/b", t.dir);
	fd = berth_path_backup_root(t.root, abs);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(fstatat(t.out, "abs/b", &st, 0), 0);
	tree_free(&t);
	assert_int_equal(count_fds(), n0);
}

/*
 * Batch durability's group sync: syncfs() on a trusted file system, then
 * each file told covered (0) or not (1: another device, its own fsync).
 */
static void test_sync_group(void **state)
{
	struct tree t;
	uint64_t dev = 0, dev2 = 0;
	char shm[] = "/dev/shm/berth-plat-XXXXXX";
	int fd, fd2, r;

	(void)state;
	tree_make(&t);
	fd = openat(t.root, "g", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "data", 4), 4);
	r = berth_plat_syncfs(fd, &dev);
	if (r == -EOPNOTSUPP) { /* /tmp on a file system not trusted */
		close(fd);
		tree_free(&t);
		skip();
	}
	assert_int_equal(r, 0);
	assert_int_equal(berth_plat_sync_check(fd, dev), 0);
	assert_int_equal(berth_plat_sync_check(fd, dev + 1), 1);
	assert_int_equal(berth_plat_sync_check(-1, dev), -EBADF);
	fd2 = mkstemp(shm); /* tmpfs: another device */
	if (fd2 >= 0) {
		assert_int_equal(berth_plat_syncfs(fd2, &dev2), 0);
		assert_true(dev2 != dev);
		assert_int_equal(berth_plat_sync_check(fd2, dev), 1);
		assert_int_equal(berth_plat_sync_check(fd, dev2), 1);
		unlink(shm);
		close(fd2);
	}
	close(fd);
	tree_free(&t);
}

/* Synchronous use (the generator's): LRU of `max`, borrowed fds. */
static void test_dircache_sync(void **state)
{
	struct berth_dircache dc;
	struct tree t;
	char name[16];
	struct stat st;
	int fd, fd2, i, n0 = count_fds(), n1;

	(void)state;
	tree_make(&t);
	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		assert_int_equal(mkdirat(t.root, name, 0755), 0);
	}
	n1 = count_fds();
	berth_dircache_init(&dc, 3, sizeof(struct berth_dirent), NULL, NULL);
	fd = berth_dircache_get_fd(&dc, t.root, 0, "sub/xyz", 3, O_PATH);
	assert_true(fd >= 0);
	assert_int_equal(fstatat(fd, "f", &st, AT_SYMLINK_NOFOLLOW), 0);
	/* A hit: the same fd. */
	fd2 = berth_dircache_get_fd(&dc, t.root, 0, "sub", 3, O_PATH);
	assert_int_equal(fd2, fd);
	/* The root itself, as ".". */
	fd2 = berth_dircache_get_fd(&dc, t.root, 0, "", 0, O_PATH);
	assert_true(fd2 >= 0 && fd2 != fd);
	/* Misses: errors are not cached. */
	assert_int_equal(
		berth_dircache_get_fd(&dc, t.root, 0, "evil", 4, O_PATH),
		-ELOOP);
	assert_int_equal(
		berth_dircache_get_fd(&dc, t.root, 0, "sub/f", 5, O_PATH),
		-ENOTDIR);
	assert_int_equal(dc.ncached, 2);
	/* More than max: the oldest go, at most 3 stay open. */
	for (i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		assert_true(berth_dircache_get_fd(&dc, t.root, 0, name,
						  strlen(name), O_PATH) >= 0);
		assert_true(dc.ncached <= 3);
		assert_true(count_fds() <= n1 + 3);
	}
	assert_null(berth_dircache_find(&dc, 0, "sub", 3));
	assert_non_null(berth_dircache_find(&dc, 0, "d5", 2));
	/* Another root is another key. */
	assert_null(berth_dircache_find(&dc, 1, "d5", 2));
	/* Invalidation: at or below a removed directory. */
	berth_dircache_invalidate(&dc, "d", 1);
	assert_non_null(berth_dircache_find(&dc, 0, "d5", 2));
	berth_dircache_invalidate(&dc, "d5", 2);
	assert_null(berth_dircache_find(&dc, 0, "d5", 2));
	assert_int_equal(dc.ncached, 2);
	berth_dircache_evict_all(&dc);
	assert_int_equal(dc.ncached, 0);
	assert_int_equal(dc.nalive, 0);
	assert_int_equal(count_fds(), n1);
	berth_dircache_destroy(&dc);
	tree_free(&t);
	assert_int_equal(count_fds(), n0);
}

struct owner {
	struct berth_dirent *evicted[8];
	int n;
};

struct my_ent {
	struct berth_dirent e;
	int extra;
};

static void my_evict(struct berth_dircache *dc, struct berth_dirent *e)
{
	struct owner *o = dc->arg;

	assert_int_equal(e->state, BERTH_DIRENT_CLOSING);
	assert_int_equal(e->refs, 0);
	o->evicted[o->n++] = e;
}

/* Asynchronous use (the commit stage's): the owner opens and closes. */
static void test_dircache_async(void **state)
{
	struct owner o = {.n = 0};
	struct berth_dircache dc;
	struct berth_dirent *a, *b, *c, *it;
	int seen;

	(void)state;
	berth_dircache_init(&dc, 1, sizeof(struct my_ent), my_evict, &o);
	a = berth_dircache_add(&dc, 0, "a/b", 3);
	assert_non_null(a);
	assert_string_equal(a->path, "a/b");
	assert_int_equal(a->state, BERTH_DIRENT_OPENING);
	assert_ptr_equal(berth_dircache_find(&dc, 0, "a/bc", 3), a);
	((struct my_ent *)(void *)a)->extra = 7;
	/* Opening entries are not invalidated (their waiters hold them). */
	berth_dircache_invalidate(&dc, "a", 1);
	assert_ptr_equal(berth_dircache_find(&dc, 0, "a/b", 3), a);
	a->state = BERTH_DIRENT_READY;
	berth_dircache_hold(&dc, a);
	b = berth_dircache_add(&dc, 1, "a/b", 3);
	c = berth_dircache_add(&dc, 0, "", 0);
	assert_string_equal(c->path, ".");
	b->state = c->state = BERTH_DIRENT_READY;
	berth_dircache_trim(&dc); /* all referenced or opening: none go */
	assert_int_equal(o.n, 0);
	seen = 0;
	for (it = berth_dircache_next(&dc, NULL); it;
	     it = berth_dircache_next(&dc, it))
		seen++;
	assert_int_equal(seen, 3);
	/* A failed open: forgotten, freed by its owner. */
	berth_dircache_forget(&dc, b);
	berth_dircache_ent_free(&dc, b);
	/* Invalidated while referenced: evicted on the last put. */
	berth_dircache_invalidate(&dc, "a", 1);
	assert_null(berth_dircache_find(&dc, 0, "a/b", 3));
	assert_int_equal(o.n, 0);
	berth_dircache_put(&dc, a);
	assert_int_equal(o.n, 1);
	assert_ptr_equal(o.evicted[0], a);
	assert_int_equal(((struct my_ent *)(void *)a)->extra, 7);
	berth_dircache_ent_free(&dc, a);
	/* Evict all: the unreferenced ready one. */
	berth_dircache_hold(&dc, c);
	berth_dircache_put(&dc, c);
	berth_dircache_evict_all(&dc);
	assert_int_equal(o.n, 2);
	berth_dircache_ent_free(&dc, c);
	assert_int_equal(dc.nalive, 0);
	berth_dircache_destroy(&dc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_waker),
		cmocka_unit_test(test_waker_thread),
		cmocka_unit_test(test_open_beneath),
		cmocka_unit_test(test_umask),
		cmocka_unit_test(test_tcp),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_backup_root),
		cmocka_unit_test(test_sync_group),
		cmocka_unit_test(test_dircache_sync),
		cmocka_unit_test(test_dircache_async),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
