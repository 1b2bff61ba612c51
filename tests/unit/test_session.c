/* SPDX-License-Identifier: MIT */
/*
 * libberth sessions driven by real rsync clients: each client runs
 * `rsync -a -e 'berth-connect SOCK' SRC/ x:NAME/`, the test accepts the
 * connection as an agent would and runs a session for it on one shared
 * pump.  Run once per pump backend.
 *
 *  - eight sessions at once, each into its own destination, all verified;
 *  - one cancelled mid-transfer while the others finish intact;
 *  - a client that disappears (SIGKILL) mid-transfer;
 *  - pump shutdown while sessions run: they end, nothing hangs;
 *  - faults injected into the generator's own blocking calls (lookups and
 *    their parent-directory opens, -c and copy-dest reads, delete
 *    listings, xattr reads): they reach
 *    them, and the session ends as rsync's receiver would;
 *  - --backup-dir: a relative one is never reached through a symlink in
 *    the destination; an absolute one is made where missing;
 *  - --fsync from the client, no durability configured: batch mode (the
 *    directories are fsynced, and a failed one is no success);
 *  - after every test: no temp files, every pump request completed once.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "berth.h"
#include "engine/pump/pump.h"
#include "engine/session/session.h"
#include "examples/connect_proto.h"

extern char **environ;

#define MAX_CLIENTS 8

struct client {
	/* set up by the test */
	char src[512], dst[512];
	int files;
	int cancel_after; /* cancel after this many committed files (0: no) */
	int kill_after; /* SIGKILL the client after this many (0: no) */
	int shutdown_after; /* shut the pump down after this many (0: no) */
	int shutdown_received; /* ... once this many files came (0: no) */
	char opts[4][640]; /* more client options ("": no more) */
	struct berth_fault fault; /* armed on the session's own tag (ops) */
	uint64_t fault_tag; /* ... plus this (16: the commit stage's
			     * directory requests); ~0: any tag */
	uint64_t faults_fired; /* by the pump of its run */
	/* filled in */
	pid_t pid;
	int sock, status_fd;
	char buf[CONNECT_MAX_BYTES + 1];
	char *argv[CONNECT_MAX_ARGS + 1];
	struct berth_session *session;
	struct berth_pump *pump;
	atomic_int committed;
	atomic_int errors;
	int result;
	int client_status;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	int *done;
};

static int backend(void)
{
	const char *b = getenv("BERTH_PUMP");

	return b && !strcmp(b, "pool") ? BERTH_PUMP_POOL : BERTH_PUMP_URING;
}

/* ------------------------------------------------------------ trees */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void write_file(const char *path, size_t size, uint64_t *rng,
		       time_t mtime)
{
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	char *buf = malloc(size + 8);
	size_t i;
	int fd;

	assert_non_null(buf);
	for (i = 0; i < size; i += 8) {
		uint64_t v = rng_next(rng);

		memcpy(buf + i, &v, 8);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, size), (ssize_t)size);
	assert_int_equal(futimens(fd, ts), 0);
	close(fd);
	free(buf);
}

/* @files files in 4 subdirectories; every 7th one is @big bytes. */
static void make_tree(const char *root, int files, size_t big, uint64_t seed)
{
	char path[4096];
	uint64_t rng = seed | 1;
	int i;

	assert_int_equal(mkdir(root, 0755), 0);
	for (i = 0; i < 4; i++) {
		assert_true(snprintf(path, sizeof(path), "%s/d%d", root, i) <
			    (int)sizeof(path));
		assert_int_equal(mkdir(path, 0755), 0);
	}
	for (i = 0; i < files; i++) {
		assert_true(snprintf(path, sizeof(path), "%s/d%d/f%03d", root,
				     i % 4, i) < (int)sizeof(path));
		write_file(path, i % 7 == 0 ? big : rng_next(&rng) % 20000,
			   &rng, 1700000000 + i);
	}
}

/* 0 if @b has every file of @a with the same bytes, mode and mtime. */
static int same_tree(const char *a, const char *b)
{
	char pa[1024], pb[1024];
	struct dirent *de;
	struct stat sa, sb;
	int bad = 0;
	DIR *d = opendir(a);

	if (!d)
		return -1;
	while (!bad && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(pa, sizeof(pa), "%s/%s", a, de->d_name);
		snprintf(pb, sizeof(pb), "%s/%s", b, de->d_name);
		if (lstat(pa, &sa) || lstat(pb, &sb) ||
		    (sa.st_mode != sb.st_mode)) {
			bad = 1;
		} else if (S_ISDIR(sa.st_mode)) {
			bad = same_tree(pa, pb) != 0;
		} else {
			FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
			int ca = 0, cb = 0;

			bad = !fa || !fb || sa.st_size != sb.st_size ||
			      sa.st_mtime != sb.st_mtime;
			while (!bad && ca != EOF) {
				ca = fgetc(fa);
				cb = fgetc(fb);
				bad = ca != cb;
			}
			if (fa)
				fclose(fa);
			if (fb)
				fclose(fb);
		}
	}
	closedir(d);
	return bad ? -1 : 0;
}

/*
 * No temp files below @dir, and every regular file there is complete: the
 * same bytes as its source (a destination file is old or new, never
 * partial).  Returns the number of complete files, -1 on a violation.
 */
static int check_partial(const char *dir, const char *src)
{
	char pd[1024], ps[1024];
	struct dirent *de;
	struct stat st;
	int n = 0, r;
	DIR *d = opendir(dir);

	if (!d)
		return 0; /* never created */
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_name[0] == '.') {
			print_error("temp file left: %s/%s\n", dir, de->d_name);
			closedir(d);
			return -1;
		}
		snprintf(pd, sizeof(pd), "%s/%s", dir, de->d_name);
		snprintf(ps, sizeof(ps), "%s/%s", src, de->d_name);
		if (lstat(pd, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			r = check_partial(pd, ps);
		} else {
			FILE *fa = fopen(pd, "rb"), *fb = fopen(ps, "rb");
			int ca = 0, cb = 0;

			r = fa && fb ? 1 : -1;
			while (r > 0 && ca != EOF) {
				ca = fgetc(fa);
				cb = fgetc(fb);
				if (ca != cb)
					r = -1;
			}
			if (fa)
				fclose(fa);
			if (fb)
				fclose(fb);
			if (r < 0)
				print_error("partial file: %s\n", pd);
		}
		if (r < 0) {
			closedir(d);
			return -1;
		}
		n += r;
	}
	closedir(d);
	return n;
}

/* ------------------------------------------------------------ sessions */

static void *shutdown_pump(void *pump)
{
	berth_pump_shutdown(pump);
	return NULL;
}

static void shutdown_soon(struct client *c)
{
	pthread_t t;

	/* As an agent would: from a thread of its own. */
	assert_int_equal(pthread_create(&t, NULL, shutdown_pump, c->pump), 0);
	pthread_detach(t);
}

static void on_committed(void *arg, const struct berth_file_event *ev)
{
	struct client *c = arg;
	int n = atomic_fetch_add(&c->committed, 1) + 1;

	assert_true(ev->checksum_len > 0);
	if (c->cancel_after && n == c->cancel_after)
		berth_session_cancel(c->session);
	if (c->kill_after && n == c->kill_after)
		kill(c->pid, SIGKILL);
	if (c->shutdown_after && n == c->shutdown_after)
		shutdown_soon(c);
}

static void on_progress(void *arg, const struct berth_progress *p)
{
	struct client *c = arg;

	if (c->shutdown_received &&
	    p->files_done == (uint64_t)c->shutdown_received)
		shutdown_soon(c);
}

static void on_error(void *arg, const char *path, int err)
{
	struct client *c = arg;

	(void)path;
	(void)err;
	atomic_fetch_add(&c->errors, 1);
}

static const struct berth_session_events events = {
	.file_committed = on_committed,
	.file_error = on_error,
	.progress = on_progress,
};

static void on_done(void *arg, int result)
{
	struct client *c = arg;
	/* The status pipe's end (connect_proto.h): a NUL, then the code. */
	unsigned char code[2] = {0, result < 0 ? 20 : (unsigned char)result};

	c->result = result;
	if (write(c->status_fd, code, 2) < 0) {
		/* the connector is gone (killed) */
	}
	close(c->status_fd);
	close(c->sock);
	pthread_mutex_lock(c->lock);
	(*c->done)++;
	pthread_cond_broadcast(c->cond);
	pthread_mutex_unlock(c->lock);
}

static pid_t spawn_client(const char *sock, const struct client *c,
			  const char *name)
{
	char rsh[1200], srcarg[600], dest[600];
	char *argv[12] = {"rsync", "-a", "-e", rsh};
	posix_spawn_file_actions_t fa;
	int argc = 4;
	pid_t pid;

	snprintf(rsh, sizeof(rsh), "%s %s", BERTH_CONNECT_BIN, sock);
	snprintf(srcarg, sizeof(srcarg), "%s/", c->src);
	snprintf(dest, sizeof(dest), "x:%s/", name);
	for (int k = 0; k < 4 && c->opts[k][0]; k++)
		argv[argc++] = (char *)(uintptr_t)c->opts[k];
	argv[argc++] = srcarg;
	argv[argc++] = dest;
	argv[argc] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	assert_int_equal(posix_spawnp(&pid, "rsync", &fa, NULL, argv, environ),
			 0);
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

/* Run @n clients at once on one pump, each in its own session. */
static void run_clients(struct client *cl, int n, const char *root)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct berth_pump_opts po = {.backend = backend()};
	struct berth_pump_stats pst;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct berth_pump *pump;
	int lsock, done = 0, i, argc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", root);
	lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lsock >= 0);
	assert_int_equal(bind(lsock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lsock, MAX_CLIENTS), 0);
	assert_int_equal(berth_pump_create(&po, &pump), 0);

	for (i = 0; i < n; i++) {
		char name[16];

		snprintf(name, sizeof(name), "c%d", i);
		cl[i].pid = spawn_client(sa.sun_path, &cl[i], name);
	}
	for (i = 0; i < n; i++) {
		struct berth_session_opts so = {0};
		struct client *c;
		int sock = accept(lsock, NULL, NULL);
		char *dest;

		assert_true(sock >= 0);
		/* Which client is it?  Its DEST names it ("c3/"). */
		char buf[CONNECT_MAX_BYTES + 1], *argv[CONNECT_MAX_ARGS + 1];
		int status_fd = -1;

		argc = connect_recv_header(sock, buf, argv, &status_fd);
		assert_true(argc >= 3);
		dest = argv[argc - 1];
		assert_true(dest[0] == 'c');
		c = &cl[atoi(dest + 1)];
		memcpy(c->buf, buf, sizeof(buf));
		for (int k = 0; k <= argc; k++)
			c->argv[k] = argv[k] ? c->buf + (argv[k] - buf) : NULL;
		c->sock = sock;
		c->status_fd = status_fd;
		c->pump = pump;
		c->lock = &lock;
		c->cond = &cond;
		c->done = &done;
		so.argc = argc;
		so.argv = c->argv;
		so.dest_dirfd = -1;
		so.dest_path = c->dst;
		so.events = &events;
		so.event_arg = c;
		assert_int_equal(berth_session_create(pump, &so, &c->session),
				 0);
		if (c->fault.ops) {
			/* White box: the session's own calls carry its base
			 * tag; its stages' requests carry others. */
			c->fault.tag = c->fault_tag == ~(uint64_t)0
					       ? 0
					       : c->session->cfg.tag +
							 c->fault_tag;
			assert_int_equal(berth_pump_inject(pump, &c->fault), 0);
		}
		assert_int_equal(
			berth_session_start(c->session, sock, sock, on_done, c),
			0);
	}
	pthread_mutex_lock(&lock);
	while (done < n)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < n; i++) {
		assert_int_equal(waitpid(cl[i].pid, &cl[i].client_status, 0),
				 cl[i].pid);
		berth_session_free(cl[i].session);
	}
	assert_int_equal(berth_pump_shutdown(pump), 0);
	berth_pump_stats(pump, &pst);
	assert_int_equal(pst.submitted, pst.completed);
	for (i = 0; i < n; i++)
		cl[i].faults_fired = pst.faults;
	berth_pump_free(pump);
	close(lsock);
}

static char *scratch(void)
{
	char *root = strdup("/tmp/berth-session-XXXXXX");

	assert_non_null(mkdtemp(root));
	return root;
}

static void rm_rf(const char *root)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
}

static void setup_clients(struct client *cl, int n, const char *root, int files,
			  size_t big)
{
	int i;

	memset(cl, 0, sizeof(*cl) * (size_t)n);
	for (i = 0; i < n; i++) {
		snprintf(cl[i].src, sizeof(cl[i].src), "%s/src%d", root, i);
		snprintf(cl[i].dst, sizeof(cl[i].dst), "%s/dst%d", root, i);
		cl[i].files = files;
		make_tree(cl[i].src, files, big,
			  0x9e3779b97f4a7c15ull * (i + 1));
		assert_int_equal(mkdir(cl[i].dst, 0755), 0);
	}
}

static void test_eight_sessions(void **state)
{
	struct client cl[MAX_CLIENTS];
	char *root = scratch();
	int i;

	(void)state;
	setup_clients(cl, MAX_CLIENTS, root, 40, 200000);
	run_clients(cl, MAX_CLIENTS, root);
	for (i = 0; i < MAX_CLIENTS; i++) {
		assert_int_equal(cl[i].result, 0);
		assert_true(WIFEXITED(cl[i].client_status));
		assert_int_equal(WEXITSTATUS(cl[i].client_status), 0);
		assert_int_equal(atomic_load(&cl[i].committed), cl[i].files);
		assert_int_equal(atomic_load(&cl[i].errors), 0);
		assert_int_equal(same_tree(cl[i].src, cl[i].dst), 0);
	}
	rm_rf(root);
	free(root);
}

static void test_cancel_one(void **state)
{
	struct client cl[3];
	char *root = scratch();
	int i;

	(void)state;
	setup_clients(cl, 3, root, 60, 300000);
	cl[1].cancel_after = 5;
	run_clients(cl, 3, root);
	for (i = 0; i < 3; i++) {
		if (i == 1) {
			assert_int_equal(cl[i].result, -BERTH_ECANCELLED);
			assert_true(!WIFEXITED(cl[i].client_status) ||
				    WEXITSTATUS(cl[i].client_status) != 0);
			assert_true(check_partial(cl[i].dst, cl[i].src) >= 5);
			continue;
		}
		assert_int_equal(cl[i].result, 0);
		assert_int_equal(WEXITSTATUS(cl[i].client_status), 0);
		assert_int_equal(same_tree(cl[i].src, cl[i].dst), 0);
	}
	rm_rf(root);
	free(root);
}

static void test_client_disappears(void **state)
{
	struct client cl[2];
	char *root = scratch();

	(void)state;
	/* ~100 MB: the client cannot be done when the first file lands. */
	setup_clients(cl, 2, root, 140, 5 << 20);
	cl[0].kill_after = 1;
	run_clients(cl, 2, root);
	/* A dead client: rsync's code for a broken stream, nothing partial. */
	assert_true(cl[0].result > 0);
	assert_true(check_partial(cl[0].dst, cl[0].src) >= 1);
	assert_int_equal(cl[1].result, 0);
	assert_int_equal(same_tree(cl[1].src, cl[1].dst), 0);
	rm_rf(root);
	free(root);
}

static void test_pump_shutdown_midway(void **state)
{
	struct client cl[2];
	char *root = scratch();
	int i;

	(void)state;
	/* ~100 MB each: neither can be done when the first file lands. */
	setup_clients(cl, 2, root, 140, 5 << 20);
	cl[0].shutdown_after = 1;
	run_clients(cl, 2, root);
	/* Both end (no hang), with an error or, if done already, success;
	 * either way nothing partial and no temp file stays. */
	for (i = 0; i < 2; i++) {
		assert_true(check_partial(cl[i].dst, cl[i].src) >= 0);
		if (cl[i].result == 0) /* success means every file */
			assert_int_equal(same_tree(cl[i].src, cl[i].dst), 0);
	}
	assert_true(cl[0].result != 0);
	rm_rf(root);
	free(root);
}

/*
 * The same with small files, the shutdown landing while commits are in
 * flight: a commit the shutdown cancels must not be taken for one the
 * session cancelled itself, so no session may end 0 with files missing
 * (the stress loop found one that did).
 */
static void test_pump_shutdown_small_files(void **state)
{
	struct client cl[2];
	char *root = scratch();
	int i, round;

	(void)state;
	for (round = 0; round < 6; round++) {
		if (round > 0) /* rm_rf() took it */
			assert_int_equal(mkdir(root, 0700), 0);
		setup_clients(cl, 2, root, 400, 16384);
		/* Every file received, the last ones still being written:
		 * or one committed event well before the end. */
		if (round == 5)
			cl[0].shutdown_after = 300;
		else
			cl[0].shutdown_received = 400 - (round & 1);
		run_clients(cl, 2, root);
		for (i = 0; i < 2; i++) {
			assert_true(check_partial(cl[i].dst, cl[i].src) >= 0);
			if (cl[i].result == 0)
				assert_int_equal(
					same_tree(cl[i].src, cl[i].dst), 0);
		}
		rm_rf(root);
	}
	free(root);
}

/*
 * The generator's blocking calls go through the pump's inline path, so a
 * fault injected into the session's pump reaches each of them.  One push
 * per case into a destination that already holds the tree (or an old
 * snapshot for --copy-dest); the fault fails the Nth call of its kind.
 */
struct fault_case {
	const char *what;
	const char *opts[3];
	unsigned op;
	unsigned nth;
	bool prefill; /* the destination holds a copy of the source */
	bool extra; /* ... and a file the source does not have */
	bool alt; /* an old snapshot with the tree, for --copy-dest */
	int result; /* the session's exit code */
	bool clash; /* a non-empty directory where d0/f000 goes */
};

static void run_fault_case(const struct fault_case *fc)
{
	struct client cl[1];
	char *root = scratch(), cmd[2200], alt[600], extra[600], clash[600];

	setup_clients(cl, 1, root, 30, 100000);
	snprintf(alt, sizeof(alt), "--copy-dest=%s/alt", root);
	if (fc->prefill || fc->alt) {
		snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s'", cl[0].src,
			 fc->alt ? alt + strlen("--copy-dest=") : cl[0].dst);
		if (fc->alt)
			assert_int_equal(
				mkdir(alt + strlen("--copy-dest="), 0755), 0);
		assert_int_equal(system(cmd), 0);
	}
	snprintf(extra, sizeof(extra), "%s/zz-extra", cl[0].dst);
	snprintf(clash, sizeof(clash), "%s/d0/f000", cl[0].dst);
	if (fc->clash) {
		snprintf(cmd, sizeof(cmd),
			 "rm -f '%s' && mkdir '%s' && "
			 "touch '%s/inside'",
			 clash, clash, clash);
		assert_int_equal(system(cmd), 0);
	}
	if (fc->extra) {
		FILE *fp = fopen(extra, "w");

		assert_non_null(fp);
		fclose(fp);
	}
	for (int k = 0; k < 3 && fc->opts[k]; k++)
		snprintf(cl[0].opts[k], sizeof(cl[0].opts[k]), "%s",
			 strcmp(fc->opts[k], "ALT") ? fc->opts[k] : alt);
	cl[0].fault.ops = BERTH_OP_BIT(fc->op);
	cl[0].fault.nth = fc->nth;
	cl[0].fault.error = EIO;
	run_clients(cl, 1, root);
	print_message("fault case %s: result %d, client %d, fired %llu\n",
		      fc->what, cl[0].result,
		      WIFEXITED(cl[0].client_status)
			      ? WEXITSTATUS(cl[0].client_status)
			      : -1,
		      (unsigned long long)cl[0].faults_fired);
	assert_int_equal(cl[0].faults_fired, 1);
	assert_int_equal(cl[0].result, fc->result);
	assert_true(WIFEXITED(cl[0].client_status));
	assert_int_equal(WEXITSTATUS(cl[0].client_status), fc->result);
	/* A listing that failed deletes nothing. */
	if (fc->extra) {
		assert_int_equal(access(extra, F_OK), 0);
		assert_int_equal(unlink(extra), 0);
	}
	/* A directory whose listing failed is not taken for empty. */
	if (fc->clash) {
		struct stat st;

		assert_int_equal(lstat(clash, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", clash);
		assert_int_equal(system(cmd), 0);
	}
	/* Nothing torn, no temp file left. */
	assert_true(check_partial(cl[0].dst, cl[0].src) >= 0);
	if (fc->result == 0)
		assert_int_equal(same_tree(cl[0].src, cl[0].dst), 0);
	rm_rf(root);
	free(root);
}

static void test_faults_reach_generator(void **state)
{
	static const struct fault_case cases[] = {
		/* A lookup fails: that entry is an error (exit 23). */
		{"lookup",
		 {"-I"},
		 BERTH_OP_STATX,
		 3,
		 true,
		 false,
		 false,
		 23,
		 false},
		/* A -c read fails: the file does not match, it is sent. */
		{"checksum read",
		 {"-c"},
		 BERTH_OP_READ,
		 1,
		 true,
		 false,
		 false,
		 0,
		 false},
		/* A --copy-dest read fails: that file is an error. */
		{"copy-dest read",
		 {"ALT"},
		 BERTH_OP_READ,
		 1,
		 false,
		 false,
		 true,
		 23,
		 false},
		/* The delete listing fails: nothing deleted, exit 23. */
		{"delete listing",
		 {"--delete"},
		 BERTH_OP_CALL,
		 1,
		 true,
		 true,
		 false,
		 23,
		 false},
		/* Opening a parent directory for the lookups fails: the
		 * entry is an error (exit 23). */
		{"parent dir open",
		 {NULL},
		 BERTH_OP_OPENAT2,
		 1,
		 true,
		 false,
		 false,
		 23,
		 false},
		/* A non-empty directory where a file goes, no --force: the
		 * listing that would show it non-empty fails; it stays. */
		{"clash listing",
		 {NULL},
		 BERTH_OP_CALL,
		 1,
		 true,
		 false,
		 false,
		 23,
		 true},
		/* -X: reading a destination item's xattrs fails. */
		{"xattr read",
		 {"-X"},
		 BERTH_OP_CALL,
		 2,
		 true,
		 false,
		 false,
		 23,
		 false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_fault_case(&cases[i]);
}

/* Files below @dir (recursively), symlinks not followed. */
static int count_files(const char *dir)
{
	char p[1024];
	struct dirent *de;
	struct stat st;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0)
			n += S_ISDIR(st.st_mode) ? count_files(p) : 1;
	}
	closedir(d);
	return n;
}

/*
 * --backup-dir resolved through engine/path: a push that replaces every
 * file (the destination holds older copies) into a destination whose
 * "bak" is a symlink to a directory outside it, with --backup-dir=bak/x:
 * nothing lands outside (rsync would follow the link; berth reports each
 * backup that cannot be made, exit 23).  Then an absolute --backup-dir
 * whose last two levels are missing: made on first use, backups inside.
 */
static void test_backup_dir_paths(void **state)
{
	struct client cl[1];
	char *root = scratch(), cmd[2200], outside[600], bak[600];

	(void)state;
	for (int pass = 0; pass < 2; pass++) {
		setup_clients(cl, 1, root, 20, 50000);
		snprintf(cmd, sizeof(cmd),
			 "cp -a '%s/.' '%s' && find '%s' -type f -exec "
			 "sh -c 'echo old >> \"$1\"' _ {} \\;",
			 cl[0].src, cl[0].dst, cl[0].dst);
		assert_int_equal(system(cmd), 0);
		snprintf(outside, sizeof(outside), "%s/outside", root);
		assert_int_equal(mkdir(outside, 0755), 0);
		if (pass == 0) {
			snprintf(bak, sizeof(bak), "%s/bak", cl[0].dst);
			assert_int_equal(symlink(outside, bak), 0);
			snprintf(cl[0].opts[0], sizeof(cl[0].opts[0]),
				 "--backup-dir=bak/x");
		} else {
			snprintf(cl[0].opts[0], sizeof(cl[0].opts[0]),
				 "--backup-dir=%s/made/x", outside);
		}
		run_clients(cl, 1, root);
		print_message("backup-dir pass %d: result %d, %d in outside\n",
			      pass, cl[0].result, count_files(outside));
		assert_true(WIFEXITED(cl[0].client_status));
		if (pass == 0) {
			assert_int_equal(cl[0].result, 23);
			assert_int_equal(count_files(outside), 0);
			assert_int_equal(unlink(bak), 0);
		} else {
			assert_int_equal(cl[0].result, 0);
			assert_int_equal(count_files(outside), cl[0].files);
		}
		assert_int_equal(WEXITSTATUS(cl[0].client_status),
				 cl[0].result);
		/* No temp file left; without its backup a file stays as it
		 * was (as rsync leaves it when its backup fails), with it
		 * every file is the new one. */
		assert_int_equal(count_files(cl[0].dst), cl[0].files);
		if (pass == 1)
			assert_int_equal(same_tree(cl[0].src, cl[0].dst), 0);
		rm_rf(root);
		assert_int_equal(mkdir(root, 0700), 0);
	}
	rm_rf(root);
	free(root);
}

/*
 * The client's --fsync into a session configured with no durability runs
 * in batch mode: every file fsynced before its rename and the touched
 * directories fsynced before the end (the strict mode fsyncs no
 * directory).  Seen through the pump's fault table: pass 0, no --fsync,
 * no fsync at all; pass 1, the first directory fsync fails, which must
 * end the session with 23, every file complete; pass 2, it succeeds.
 */
static void test_client_fsync_batch(void **state)
{
	struct client cl[1];
	char *root = scratch();

	(void)state;
	for (int pass = 0; pass < 3; pass++) {
		setup_clients(cl, 1, root, 30, 100000);
		if (pass > 0)
			snprintf(cl[0].opts[0], sizeof(cl[0].opts[0]),
				 "--fsync");
		if (pass < 2) {
			cl[0].fault.ops = BERTH_OP_BIT(BERTH_OP_FSYNC);
			cl[0].fault.nth = 1;
			cl[0].fault.error = EIO;
			cl[0].fault_tag = pass == 0 ? ~(uint64_t)0 : 16;
		}
		run_clients(cl, 1, root);
		print_message("client --fsync pass %d: result %d, fired %llu\n",
			      pass, cl[0].result,
			      (unsigned long long)cl[0].faults_fired);
		assert_true(WIFEXITED(cl[0].client_status));
		assert_int_equal(WEXITSTATUS(cl[0].client_status),
				 cl[0].result);
		assert_int_equal(cl[0].faults_fired, pass == 1 ? 1 : 0);
		assert_int_equal(cl[0].result, pass == 1 ? 23 : 0);
		assert_int_equal(check_partial(cl[0].dst, cl[0].src),
				 cl[0].files);
		assert_int_equal(same_tree(cl[0].src, cl[0].dst), 0);
		rm_rf(root);
		assert_int_equal(mkdir(root, 0700), 0);
	}
	rm_rf(root);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eight_sessions),
		cmocka_unit_test(test_cancel_one),
		cmocka_unit_test(test_client_disappears),
		cmocka_unit_test(test_pump_shutdown_midway),
		cmocka_unit_test(test_pump_shutdown_small_files),
		cmocka_unit_test(test_faults_reach_generator),
		cmocka_unit_test(test_backup_dir_paths),
		cmocka_unit_test(test_client_fsync_batch),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
