/* SPDX-License-Identifier: MIT */
/*
 * Process and in-process session modes: real rsync clients push real
 * trees (many small files, a large file sent as a delta against an older
 * version, or a mixed tree) into berth.
 *
 * Process mode: each client runs `berth --server` through the relay
 * (stress_relay.c) as its remote shell; one berth process per client.
 * Disruptions: SIGKILL the client, cut both pipes mid-stream, SIGTERM or
 * SIGINT the berth process, SIGKILL the berth process (no cleanup is
 * possible: a second push follows, which must succeed and leave no temp
 * file of the killed one behind).
 *
 * Session mode: the relay connects to a unix socket of this process
 * instead, and each connection runs a berth_session (create, run) on a thread with
 * one shared pump (uring or pool).  Disruptions: SIGKILL the client, cut
 * the stream, cancel a session through the API (berth_session_cancel()),
 * shut the shared pump down with sessions in flight, faults on the pump.
 *
 * Durability per iteration: none, file or batch (session mode), or the
 * clients send --fsync with none configured (batch, both modes).
 *
 * Invariants: every destination file holds its old content (or is absent
 * if it had none) or the complete new content; no temp files; undisturbed
 * clients exit 0 with the destination equal to the source (content, mode,
 * mtime); a berth told SIGTERM/SIGINT exits with rsync's code 20 rather
 * than dying of the signal; session mode: pump submitted == completed,
 * fds and heap back to where they were.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "engine/pump/pump.h"
#include "stress.h"

extern char **environ;

enum { PW_SMALL, PW_DELTA, PW_MIXED, PW__COUNT };
static const char *const pw_names[PW__COUNT] = {"small", "large-delta",
						"mixed"};

#define BASE_MTIME 1700000000

struct pfile {
	char rel[48];
	uint64_t new_hash, old_hash;
	size_t new_len, old_len;
	int has_old;
	atomic_int committed; /* session mode: file_committed events */
	mode_t mode;
	int64_t mtime;
};

struct psession;

struct proc_iter {
	struct stress_state *st;
	struct berth_pump *pump; /* session mode */
	struct psession *sess;
	unsigned nsess;
	int in_process;
	int workload;
	int disruption;
	int durability; /* session mode */
	int client_fsync; /* the clients send --fsync (both modes) */
	int listen_fd;
	char sock_path[512];
	pthread_t acceptor;
	atomic_int stop_accept;
	atomic_int pump_down;
};

struct psession {
	struct proc_iter *it;
	char dir[512], src[600], dst[600], info[600], log[600];
	struct pfile *files;
	unsigned nfiles;
	int victim;
	int disrupted; /* the disruption was delivered */
	int has_fire; /* a disruption is scheduled */
	double fire_at; /* relative, then monotonic */
	unsigned long long cut;
	pid_t client;
	int client_status;
	int client_done;
	double t_end; /* monotonic, when the client exited */
	pid_t berth; /* process mode, from the info file */
	int repushed; /* sigkill-berth: -1 before the second push, 1 after */
	double berth_seen; /* when it was first seen running as berth */
	/* session mode */
	pthread_t thread;
	int thread_started;
	int conn;
	int argc;
	char **argv;
	int exit_code;
	struct berth_session *bs; /* bs_lock; NULL once freed */
	pthread_mutex_t bs_lock; /* before log_lock */
	char last_log[256];
	pthread_mutex_t log_lock;
};

/* Cancel a session through the API: 0, or -EAGAIN while its client has
 * not connected yet. */
static int session_cancel(struct psession *s)
{
	int ret = -EAGAIN;

	/* bs_lock keeps the session from being freed meanwhile; cancel
	 * logs through session_log(), which takes log_lock after it. */
	pthread_mutex_lock(&s->bs_lock);
	if (s->bs) {
		berth_session_cancel(s->bs);
		ret = 0;
	}
	pthread_mutex_unlock(&s->bs_lock);
	return ret;
}

static uint64_t hash_buf(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static void gen_tree(struct proc_iter *it, struct psession *s,
		     struct stress_rng *r)
{
	unsigned i, nsmall = 0, nlarge = 0, ndirs = 0;
	char p[1024];

	switch (it->workload) {
	case PW_SMALL:
		nsmall = (unsigned)stress_range(r, 20, 150);
		break;
	case PW_DELTA:
		nlarge = (unsigned)stress_range(r, 1, 2);
		break;
	default:
		ndirs = (unsigned)stress_range(r, 1, 5);
		nsmall = (unsigned)stress_range(r, 10, 60);
		nlarge = 1;
	}
	s->nfiles = nsmall + nlarge;
	s->files = calloc(s->nfiles, sizeof(*s->files));
	if (!s->files)
		abort();
	if (stress_mkdirs(s->src, 0755) || stress_mkdirs(s->dst, 0755))
		abort();
	for (i = 0; i < ndirs; i++) {
		snprintf(p, sizeof(p), "%s/d%u", s->src, i);
		mkdir(p, 0755);
		snprintf(p, sizeof(p), "%s/d%u", s->dst, i);
		mkdir(p, 0755);
	}
	for (i = 0; i < s->nfiles; i++) {
		struct pfile *f = &s->files[i];
		int large = i >= nsmall;
		size_t len = large ? stress_range(r, 1 << 20, 8 << 20)
				   : stress_range(r, 0, 16384);
		size_t olen;
		unsigned char *buf, *old;
		unsigned k, edits;

		if (ndirs && stress_chance(r, 70))
			snprintf(f->rel, sizeof(f->rel), "d%u/f%03u",
				 (unsigned)stress_range(r, 0, ndirs - 1), i);
		else
			snprintf(f->rel, sizeof(f->rel), "f%03u", i);
		f->mode = stress_chance(r, 20) ? 0600 : 0644;
		f->mtime = BASE_MTIME + i;
		buf = malloc(len + 1);
		if (!buf)
			abort();
		stress_fill(buf, len, stress_next(r));
		f->new_len = len;
		f->new_hash = hash_buf(buf, len);
		snprintf(p, sizeof(p), "%s/%s", s->src, f->rel);
		if (stress_write_file(p, buf, len, f->mode, f->mtime))
			abort();
		f->has_old = large ? stress_chance(r, 90)
				   : stress_chance(r, 50);
		if (f->has_old) {
			/* Large: the new content with edits (a delta);
			 * small: unrelated older bytes. */
			olen = large ? len : stress_range(r, 0, 8192);
			old = malloc(olen + 1);
			if (!old)
				abort();
			if (large) {
				memcpy(old, buf, olen);
				edits = (unsigned)stress_range(r, 1, 8);
				for (k = 0; k < edits; k++) {
					size_t at = stress_range(r, 0,
								 olen - 1);
					size_t n = stress_range(r, 1, 50000);

					if (n > olen - at)
						n = olen - at;
					stress_fill(old + at, n,
						    stress_next(r));
				}
			} else {
				stress_fill(old, olen, stress_next(r));
			}
			f->old_len = olen;
			f->old_hash = hash_buf(old, olen);
			snprintf(p, sizeof(p), "%s/%s", s->dst, f->rel);
			if (stress_write_file(p, old, olen, 0644,
					      BASE_MTIME - 1000))
				abort();
			free(old);
		}
		free(buf);
	}
}

static void temp_found(void *arg, const char *path)
{
	struct psession *s = arg;
	struct stress_state *st = s->it->st;

	int sig = s->disrupted && (s->it->disruption == SD_SIGTERM ||
				   s->it->disruption == SD_SIGINT);

	if (s->repushed < 0)
		return; /* the killed berth's: the second push removes them */
	if (s->repushed > 0) {
		stress_violation(st, SV_TEMP_KILLED,
				 "temp file left: %s (a berth was SIGKILLed "
				 "here, and the next push succeeded)",
				 path);
		return;
	}
	stress_violation(st, sig ? SV_TEMP_SIGNAL : SV_TEMP,
			 "temp file left: %s (%s, client %s, berth %s)", path,
			 stress_disruption_names[s->it->disruption],
			 s->victim ? "disrupted" : "undisturbed",
			 s->it->in_process ? "in-process" : "process");
}

static void check_session(struct psession *s)
{
	struct stress_state *st = s->it->st;
	int ok = s->client_done && WIFEXITED(s->client_status) &&
		 WEXITSTATUS(s->client_status) == 0;
	char p[1024];
	unsigned i;

	/* In-process, sessions share a pump: one failing because another
	 * was disrupted is its own kind (isolation). */
	if (!s->victim && !ok)
		stress_violation(
			st,
			s->it->in_process && s->it->disruption != SD_NONE
				? SV_ISOLATION
				: SV_UNDISTURBED,
			"%s: undisturbed client ended with status "
			"0x%x (berth exit %d, log: %s)",
			s->dst, s->client_status, s->exit_code, s->last_log);
	for (i = 0; i < s->nfiles; i++) {
		struct pfile *f = &s->files[i];
		unsigned char *got;
		struct stat sb;
		ssize_t n;
		uint64_t h;
		int is_new, is_old;

		snprintf(p, sizeof(p), "%s/%s", s->dst, f->rel);
		n = stress_read_file(p, &got);
		h = n >= 0 ? hash_buf(got, (size_t)n) : 0;
		free(got);
		is_new = n >= 0 && (size_t)n == f->new_len && h == f->new_hash;
		is_old = f->has_old ? n >= 0 && (size_t)n == f->old_len &&
					      h == f->old_hash
				    : n == -ENOENT;
		st->files++;
		if (atomic_load(&f->committed) && !is_new)
			stress_violation(st, SV_CONTENT,
					 "%s: a file_committed event, but not "
					 "the new content",
					 p);
		if (!is_new && !is_old) {
			stress_violation(st, SV_CONTENT,
					 "%s: neither old nor new content (%zd "
					 "bytes; old %zu, new %zu)",
					 p, n, f->old_len, f->new_len);
			continue;
		}
		if (!ok)
			continue;
		/* A client that succeeded: the whole tree is the source. */
		if (!is_new || lstat(p, &sb) < 0 ||
		    (sb.st_mode & 07777) != f->mode ||
		    sb.st_mtim.tv_sec != f->mtime)
			stress_violation(st,
					 s->victim ? SV_RESULT : SV_UNDISTURBED,
					 "%s: client exited 0 but the file is "
					 "not the source's (new %d; berth "
					 "exit %d, log: %s)",
					 p, is_new, s->exit_code, s->last_log);
	}
	stress_find_temps(s->dst, temp_found, s);
}

/* ---- session mode: the socket side ---- */

static void session_log(void *arg, int level, const char *msg)
{
	struct psession *s = arg;

	(void)level;
	pthread_mutex_lock(&s->log_lock);
	snprintf(s->last_log, sizeof(s->last_log), "%s", msg);
	pthread_mutex_unlock(&s->log_lock);
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The relay's header: argc, then each argument as length + bytes. */
static char **read_argv(int fd, int *argc)
{
	uint32_t n, len, i;
	char **argv;

	if (read_all(fd, &n, sizeof(n)) < 0 || n == 0 || n > 64)
		return NULL;
	argv = calloc(n + 1, sizeof(*argv));
	if (!argv)
		return NULL;
	for (i = 0; i < n; i++) {
		if (read_all(fd, &len, sizeof(len)) < 0 || len > 4096)
			break;
		argv[i] = calloc(1, len + 1);
		if (!argv[i] || read_all(fd, argv[i], len) < 0)
			break;
	}
	if (i < n) {
		for (i = 0; i < n; i++)
			free(argv[i]);
		free(argv);
		return NULL;
	}
	*argc = (int)n;
	return argv;
}

/* Per-session events: a committed file must be complete and new. */
static void on_committed(void *arg, const struct berth_file_event *ev)
{
	struct psession *s = arg;
	unsigned i;

	for (i = 0; i < s->nfiles; i++)
		if (!strcmp(s->files[i].rel, ev->path)) {
			atomic_fetch_add(&s->files[i].committed, 1);
			if (ev->size != s->files[i].new_len)
				stress_violation(s->it->st, SV_RESULT,
						 "%s/%s: committed event with "
						 "size %llu, source has %zu",
						 s->dst, ev->path,
						 (unsigned long long)ev->size,
						 s->files[i].new_len);
		}
}

static const struct berth_session_events session_events = {
	.file_committed = on_committed,
};

static void *session_main(void *arg)
{
	struct psession *s = arg;
	struct berth_session_opts so = {0};
	struct berth_session *bs = NULL;
	FILE *f;
	int ret;

	so.argc = s->argc;
	so.argv = s->argv;
	so.dest_dirfd = -1;
	so.durability = s->it->durability;
	so.events = &session_events;
	so.event_arg = s;
	so.log = session_log;
	so.log_arg = s;
	ret = berth_session_create(s->it->pump, &so, &bs);
	if (ret < 0) {
		s->exit_code = 1;
		stress_violation(s->it->st, SV_RESULT, "session_create: %s",
				 berth_strerror(ret));
	} else {
		pthread_mutex_lock(&s->bs_lock);
		s->bs = bs;
		pthread_mutex_unlock(&s->bs_lock);
		ret = berth_session_run(bs, s->conn, s->conn);
		/* Cancelled: what `berth --server` exits with then. */
		s->exit_code = ret == -BERTH_ECANCELLED ? 20 : ret;
		/* Free before closing the socket: the session's writer
		 * thread is joined only by berth_session_free(), and may
		 * still write after run returned (reported: closing the fd
		 * between the two is a race TSan sees). */
		pthread_mutex_lock(&s->bs_lock);
		s->bs = NULL;
		pthread_mutex_unlock(&s->bs_lock);
		berth_session_free(bs);
	}
	/* What a process would exit with: the relay passes it on to the
	 * client as its own exit code (as ssh does), once the stream ends. */
	f = fopen(s->info, "ae");
	if (f) {
		fprintf(f, "exit %d\n", s->exit_code);
		fclose(f);
	}
	close(s->conn);
	return NULL;
}

/* Which session a connection belongs to: the destination argument. */
static struct psession *match(struct proc_iter *it, int argc, char **argv)
{
	unsigned i;

	for (i = 0; i < it->nsess; i++) {
		size_t n = strlen(it->sess[i].dst);

		if (!strncmp(argv[argc - 1], it->sess[i].dst, n) &&
		    !it->sess[i].argv)
			return &it->sess[i];
	}
	return NULL;
}

static void *acceptor_main(void *arg)
{
	struct proc_iter *it = arg;
	struct pollfd pfd = {.fd = it->listen_fd, .events = POLLIN};

	while (!atomic_load(&it->stop_accept)) {
		struct psession *s;
		char **argv;
		int fd, argc = 0;

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		fd = accept4(it->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		argv = read_argv(fd, &argc);
		s = argv ? match(it, argc, argv) : NULL;
		if (!s) {
			/* A client killed mid-header: nothing to run. */
			if (argv) {
				for (int i = 0; i < argc; i++)
					free(argv[i]);
				free(argv);
			}
			close(fd);
			continue;
		}
		s->argv = argv;
		s->argc = argc;
		s->conn = fd;
		if (pthread_create(&s->thread, NULL, session_main, s))
			abort();
		s->thread_started = 1;
	}
	return NULL;
}

static int listen_sock(struct proc_iter *it)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(it->sock_path, sizeof(it->sock_path), "%s/sock",
		 it->st->o.workdir);
	unlink(it->sock_path);
	if (strlen(it->sock_path) >= sizeof(sa.sun_path))
		abort(); /* --workdir too long for a socket path */
	memcpy(sa.sun_path, it->sock_path, strlen(it->sock_path) + 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0)
		abort();
	return fd;
}

/* ---- both modes ---- */

static pid_t spawn_client(struct proc_iter *it, struct psession *s)
{
	struct stress_state *st = it->st;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char rsh[1024], rpath[1024], srcarg[700], dstarg[700];
	char env_info[700], env_cut[64], env_sock[600], prog[512];
	char opt_a[] = "-a", opt_e[] = "-e", opt_fsync[] = "--fsync";
	char env_asan[512];
	char *envp[256];
	char *argv[16];
	int a = 0, e = 0, i;
	pid_t pid;

	snprintf(rsh, sizeof(rsh), "%s --relay", st->o.self);
	snprintf(rpath, sizeof(rpath), "--rsync-path=%s", st->o.berth);
	snprintf(srcarg, sizeof(srcarg), "%s/", s->src);
	snprintf(dstarg, sizeof(dstarg), "localhost:%s/", s->dst);
	snprintf(prog, sizeof(prog), "%s", st->o.rsync);
	argv[a++] = prog;
	argv[a++] = opt_a;
	if (it->client_fsync)
		argv[a++] = opt_fsync;
	argv[a++] = opt_e;
	argv[a++] = rsh;
	argv[a++] = rpath;
	argv[a++] = srcarg;
	argv[a++] = dstarg;
	argv[a] = NULL;
	for (i = 0; environ[i] && e < 250; i++)
		if (strncmp(environ[i], "BERTH_STRESS_", 13) &&
		    strncmp(environ[i], "ASAN_OPTIONS=", 13))
			envp[e++] = environ[i];
	/* The berth processes run with this process's sanitizer options,
	 * leak checks included (berth --server frees everything). */
	snprintf(env_asan, sizeof(env_asan), "ASAN_OPTIONS=%s",
		 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "");
	envp[e++] = env_asan;
	snprintf(env_info, sizeof(env_info), "BERTH_STRESS_INFO=%s", s->info);
	envp[e++] = env_info;
	if (s->cut) {
		snprintf(env_cut, sizeof(env_cut), "BERTH_STRESS_CUT=%llu",
			 s->cut);
		envp[e++] = env_cut;
	}
	if (it->in_process) {
		snprintf(env_sock, sizeof(env_sock), "BERTH_STRESS_SOCK=%s",
			 it->sock_path);
		envp[e++] = env_sock;
	}
	envp[e] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, s->log,
					 O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	/* Own process group: a hang report kills the client, its relay
	 * and its berth, and nothing else. */
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	if (posix_spawnp(&pid, st->o.rsync, &fa, &attr, argv, envp))
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (pid > 0) {
		pthread_mutex_lock(&st->lock);
		if (st->npgids < sizeof(st->pgids) / sizeof(st->pgids[0]))
			st->pgids[st->npgids++] = pid;
		pthread_mutex_unlock(&st->lock);
	}
	return pid;
}

/* The berth pid the relay wrote, or 0 while there is none yet. */
static pid_t read_info(struct psession *s, int *status, int *have_status)
{
	char line[128];
	pid_t pid = 0;
	long v;
	FILE *f = fopen(s->info, "re");

	*have_status = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "pid %ld", &v) == 1)
			pid = (pid_t)v;
		else if (sscanf(line, "status %ld", &v) == 1) {
			*status = (int)v;
			*have_status = 1;
		}
	}
	fclose(f);
	return pid;
}

/*
 * Whether berth @pid can take @sig yet: a signal that lands before the
 * program even started (still the relay's fork, or in the dynamic loader)
 * kills any program, rsync too, and says nothing about berth.  Ready (1)
 * once the signal is blocked or caught.  A berth still not ready after 5 s
 * of running as berth (a sanitizer build's start-up on a loaded machine
 * can take well over the 100 ms once allowed here) gets no signal (-1):
 * the disruption counts as not delivered, not as a death berth could not
 * have prevented.
 */
static int signal_ready(struct psession *s, pid_t pid, int sig)
{
	char path[64], line[256];
	unsigned long long blk = 0, cgt = 0;
	int is_berth = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Name:", 5))
			is_berth = strstr(line, "berth") != NULL &&
				   !strstr(line, "berth-stress");
		sscanf(line, "SigBlk: %llx", &blk);
		sscanf(line, "SigCgt: %llx", &cgt);
	}
	fclose(f);
	if (!is_berth)
		return 0;
	if (sig == SIGKILL || (blk | cgt) & (1ull << (sig - 1)))
		return 1;
	if (s->berth_seen == 0)
		s->berth_seen = stress_now();
	return stress_now() - s->berth_seen > 5.0 ? -1 : 0;
}

static void fire(struct proc_iter *it, struct psession *s)
{
	int status, have, sig, ready;
	pid_t pid;

	switch (it->disruption) {
	case SD_KILL_CLIENT:
		kill(s->client, SIGKILL);
		s->disrupted = 1;
		break;
	case SD_SIGTERM:
	case SD_SIGINT:
	case SD_KILL_BERTH:
		pid = read_info(s, &status, &have);
		if (!pid || have) {
			/* Not started yet: try again shortly; already
			 * over: too late, count it as not delivered. */
			if (!have)
				s->fire_at += 0.002;
			else
				s->has_fire = 0;
			return;
		}
		sig = it->disruption == SD_SIGTERM  ? SIGTERM
		      : it->disruption == SD_SIGINT ? SIGINT
						    : SIGKILL;
		ready = signal_ready(s, pid, sig);
		if (ready < 0) {
			s->has_fire = 0; /* never ready: not delivered */
			return;
		}
		if (!ready) {
			s->fire_at += 0.001;
			return;
		}
		s->berth = pid;
		kill(pid, sig);
		s->disrupted = 1;
		break;
	case SD_PUMP_SHUTDOWN:
		if (!atomic_exchange(&it->pump_down, 1))
			berth_pump_shutdown(it->pump);
		s->disrupted = 1;
		break;
	case SD_CANCEL_API:
		if (session_cancel(s) < 0) {
			if (!s->client_done)
				s->fire_at += 0.002; /* not connected yet */
			else
				s->has_fire = 0;
			return;
		}
		s->disrupted = 1;
		break;
	default:
		break;
	}
	s->has_fire = 0;
}

static void check_berth_exit(struct psession *s)
{
	struct stress_state *st = s->it->st;
	int status = 0, have;

	if (s->it->in_process)
		return;
	read_info(s, &status, &have);
	/* TSan exits 66 on a report; ASan/UBSan here abort (SIGABRT). */
	if (have && ((WIFEXITED(status) && WEXITSTATUS(status) == 66) ||
		     (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))) {
		stress_violation(st, SV_SANITIZER,
				 "%s: berth stopped on a sanitizer report "
				 "(status 0x%x): see %s",
				 s->dst, status, s->log);
		return;
	}
	if (!have) {
		if (s->client_done && WIFEXITED(s->client_status) &&
		    WEXITSTATUS(s->client_status) == 0)
			stress_violation(st, SV_RESULT,
					 "%s: no berth exit recorded", s->dst);
		return;
	}
	if (s->disrupted && s->it->disruption == SD_KILL_BERTH &&
	    s->repushed <= 0)
		return; /* killed on purpose; the second push is checked */
	if (s->disrupted && (s->it->disruption == SD_SIGTERM ||
			     s->it->disruption == SD_SIGINT)) {
		if (WIFSIGNALED(status))
			stress_violation(st, SV_SIGNAL,
					 "%s: berth died of signal %d instead "
					 "of exiting with code 20",
					 s->dst, WTERMSIG(status));
		else if (WEXITSTATUS(status) != 20 && WEXITSTATUS(status) != 0)
			stress_violation(st, SV_RESULT,
					 "%s: berth exited %d after SIG%s, "
					 "rsync's code is 20",
					 s->dst, WEXITSTATUS(status),
					 s->it->disruption == SD_SIGTERM
						 ? "TERM"
						 : "INT");
		return;
	}
	if (WIFSIGNALED(status))
		stress_violation(st, SV_SIGNAL, "%s: berth died of signal %d",
				 s->dst, WTERMSIG(status));
	if (!s->victim && (!WIFEXITED(status) || WEXITSTATUS(status)))
		stress_violation(st, SV_UNDISTURBED,
				 "%s: undisturbed berth exited 0x%x", s->dst,
				 status);
}

static void count_temp(void *arg, const char *path)
{
	(void)path;
	(*(unsigned *)arg)++;
}

/*
 * sigkill-berth: the berth process died mid-push with no chance to clean
 * up.  Every final name must still hold its old or its new content (the
 * temp files it left are expected); then the same push again, undisturbed:
 * it must succeed, and the checks that follow (every file new, no temp
 * file) hold it to removing the killed session's temp files.
 */
static void repush(struct psession *s)
{
	struct stress_state *st = s->it->st;
	unsigned temps = 0;
	int status;
	pid_t pid;

	s->repushed = -1;
	check_session(s); /* old or new content; temps tolerated */
	check_berth_exit(s);
	stress_find_temps(s->dst, count_temp, &temps);
	if (st->o.verbose)
		stress_log(st, "%s: berth SIGKILLed, %u temp files left\n",
			   s->dst, temps);
	unlink(s->info);
	s->client_done = 0;
	s->client = spawn_client(s->it, s);
	if (s->client < 0) {
		stress_violation(st, SV_RESULT, "cannot run %s", st->o.rsync);
		s->client_done = 1;
		return;
	}
	/* Reap it (and, being the subreaper, its relay and berth). */
	while ((pid = waitpid(-1, &status, 0)) > 0 || errno == EINTR) {
		if (pid == s->client) {
			s->client_status = status;
			s->client_done = 1;
		}
	}
	s->victim = 0; /* undisturbed now: checked as such */
	s->repushed = 1;
}

/*
 * Session mode: faults on the shared pump, for whichever session's request
 * comes nth.  Basis reads failing (eio-read, short-read) exercise the
 * generator; writes, fsyncs and renames the commit stage.
 */
static void session_fault(unsigned kind, struct stress_rng *r,
			  struct berth_fault *f)
{
	memset(f, 0, sizeof(*f));
	switch (kind) {
	case SF_ENOSPC_WRITE:
		f->ops = BERTH_OP_BIT(BERTH_OP_WRITE);
		f->error = ENOSPC;
		break;
	case SF_EIO_WRITE:
		f->ops = BERTH_OP_BIT(BERTH_OP_WRITE);
		f->error = EIO;
		break;
	case SF_EIO_READ:
		f->ops = BERTH_OP_BIT(BERTH_OP_READ);
		f->error = EIO;
		break;
	case SF_EIO_FSYNC:
		f->ops = BERTH_OP_BIT(BERTH_OP_FSYNC);
		f->error = EIO;
		break;
	case SF_SHORT_WRITE:
		f->ops = BERTH_OP_BIT(BERTH_OP_WRITE);
		f->short_bytes = (uint32_t)stress_range(r, 1, 8192);
		break;
	case SF_SHORT_READ:
		f->ops = BERTH_OP_BIT(BERTH_OP_READ);
		f->short_bytes = (uint32_t)stress_range(r, 1, 8192);
		break;
	default:
		f->ops = BERTH_OP_BIT(BERTH_OP_RENAMEAT2);
		f->error = stress_chance(r, 50) ? EACCES : EDQUOT;
		break;
	}
	f->nth = stress_range(r, 1, 200);
	f->count = stress_range(r, 1, 3);
}

/*
 * Session mode: faults on the shared pump, for whichever session's request
 * comes nth.  Basis reads failing (eio-read, short-read) exercise the
 * generator; writes, fsyncs and renames the commit stage.  --fault
 * KIND[@NTH] arms exactly that one instead.
 */
static void arm_session_faults(struct proc_iter *it, struct stress_rng *r)
{
	struct stress_state *st = it->st;
	unsigned n = (unsigned)stress_range(r, 1, 3), i;
	struct berth_fault f;

	for (i = 0; i < n; i++) {
		unsigned kind = (unsigned)stress_range(r, 0, SF__COUNT - 1);

		if (st->o.force_fault >= 0) {
			if (i > 0)
				break;
			kind = (unsigned)st->o.force_fault;
		}
		session_fault(kind, r, &f);
		if (st->o.force_fault >= 0) {
			f.nth = st->o.force_fault_nth;
			f.count = 1;
		} else if (st->o.skip_fault[3] & (1u << kind)) {
			continue;
		}
		if (berth_pump_inject(it->pump, &f) == 0) {
			st->faults_armed[kind]++;
			stress_log(st, "  fault %s nth %llu count %llu\n",
				   stress_fault_names[kind],
				   (unsigned long long)f.nth,
				   (unsigned long long)f.count);
		}
	}
}

/* How an iteration makes files durable, for its description. */
static const char *durability_desc(const struct proc_iter *it)
{
	if (it->client_fsync)
		return ", client --fsync";
	if (!it->in_process || it->durability == BERTH_DURABLE_NONE)
		return "";
	return it->durability == BERTH_DURABLE_FILE ? ", durability file"
						    : ", durability batch";
}

void stress_proc_iter(struct stress_state *st, struct stress_rng *r,
		      int in_process)
{
	struct proc_iter it = {.st = st, .in_process = in_process};
	struct berth_pump_opts po = {0};
	struct berth_pump_stats ps;
	int fds0 = stress_count_fds(), fds1;
	size_t heap0 = stress_heap_bytes(), heap1;
	unsigned i, victims = 0, left;
	double t0, span;
	int d, ret;

	it.workload = stress_workload(st,
				      (int)stress_range(r, 0, PW__COUNT - 1));
	it.nsess = (unsigned)stress_range(r, 1, st->o.max_procs);
	if (in_process && it.nsess > st->o.max_sessions)
		it.nsess = st->o.max_sessions;
	it.nsess = stress_sessions(st, it.nsess);
	po.backend = stress_backend(r);
	d = (int)stress_range(r, 0, 99);
	if (in_process)
		d = d < 20   ? SD_NONE
		    : d < 36 ? SD_KILL_CLIENT
		    : d < 52 ? SD_CUT_PIPE
		    : d < 68 ? SD_CANCEL_API
		    : d < 84 ? SD_PUMP_SHUTDOWN
			     : SD_FAULT;
	else
		d = d < 20   ? SD_NONE
		    : d < 40 ? SD_KILL_CLIENT
		    : d < 55 ? SD_CUT_PIPE
		    : d < 70 ? SD_SIGTERM
		    : d < 80 ? SD_SIGINT
			     : SD_KILL_BERTH;
	d = stress_filter(st, in_process ? 3 : 2, d);
	it.disruption = d;
	/* none, file, batch, or none with the clients' --fsync (which
	 * selects batch, also in process mode). */
	it.durability = (int)stress_range(r, 0, 3);
	if (it.durability == 3) {
		it.durability = BERTH_DURABLE_NONE;
		it.client_fsync = 1;
	}
	stress_describe(st, "%s: %u clients, workload %s, %s%s%s%s",
			in_process ? "session" : "process", it.nsess,
			pw_names[it.workload], stress_disruption_names[d],
			in_process ? ", pump " : "",
			in_process ? berth_pump_backend_name(po.backend) : "",
			durability_desc(&it));
	if (in_process) {
		ret = berth_pump_create(&po, &it.pump);
		if (ret < 0) {
			stress_log(st, "session: no %s backend, skipped\n",
				   berth_pump_backend_name(po.backend));
			return;
		}
		it.listen_fd = listen_sock(&it);
	}
	it.sess = calloc(it.nsess, sizeof(*it.sess));
	if (!it.sess)
		abort();
	/* Aim inside the transfer: within the mean time undisturbed
	 * clients of this mode and workload took so far (this build, this
	 * machine), at first a guess. */
	span = 0.6 * st->span[in_process][it.workload];
	if (span <= 0)
		span = it.workload == PW_SMALL ? 0.08 : 0.3;
	for (i = 0; i < it.nsess; i++) {
		struct psession *s = &it.sess[i];
		uint64_t bytes = 0;

		s->it = &it;
		s->conn = -1;
		pthread_mutex_init(&s->log_lock, NULL);
		pthread_mutex_init(&s->bs_lock, NULL);
		snprintf(s->dir, sizeof(s->dir), "%s/proc-%u", st->o.workdir,
			 i);
		snprintf(s->src, sizeof(s->src), "%s/src", s->dir);
		snprintf(s->dst, sizeof(s->dst), "%s/dst", s->dir);
		snprintf(s->info, sizeof(s->info), "%s/info", s->dir);
		snprintf(s->log, sizeof(s->log), "%s/client.log", s->dir);
		gen_tree(&it, s, r);
		for (unsigned k = 0; k < s->nfiles; k++)
			bytes += s->files[k].new_len;
		if (d != SD_NONE && (!victims || stress_chance(r, 50))) {
			s->victim = 1;
			victims++;
			if (d == SD_CUT_PIPE) {
				s->cut = stress_range(r, 1, bytes / 4 + 4096);
				s->disrupted = 1;
			} else {
				s->has_fire = 1;
				s->fire_at = (double)stress_range(
						     r, 0,
						     (uint64_t)(span * 1e6)) /
					     1e6;
			}
		}
	}
	if (d == SD_PUMP_SHUTDOWN || d == SD_FAULT)
		for (i = 0; i < it.nsess; i++)
			it.sess[i].victim = 1; /* it hits every session */
	if (d == SD_FAULT)
		arm_session_faults(&it, r);
	st->disruptions[d]++;
	st->sessions += it.nsess;
	if (in_process &&
	    pthread_create(&it.acceptor, NULL, acceptor_main, &it))
		abort();
	t0 = stress_now();
	for (i = 0; i < it.nsess; i++) {
		struct psession *s = &it.sess[i];

		if (s->has_fire)
			s->fire_at += t0;
		s->client = spawn_client(&it, s);
		if (s->client < 0) {
			stress_violation(st, SV_RESULT, "cannot run %s",
					 st->o.rsync);
			s->client_done = 1;
		}
	}
	/* Reap clients (and, being the subreaper, orphaned relays and
	 * berths) while the disruptions land at their moments. */
	left = it.nsess;
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			for (i = 0; i < it.nsess; i++)
				if (it.sess[i].client == pid) {
					it.sess[i].client_status = status;
					it.sess[i].client_done = 1;
					it.sess[i].t_end = stress_now();
					left--;
				}
			continue;
		}
		if (pid < 0 && errno == ECHILD)
			break;
		for (i = 0; i < it.nsess; i++) {
			struct psession *s = &it.sess[i];

			if (s->has_fire && stress_now() >= s->fire_at) {
				if (s->client_done && d == SD_KILL_CLIENT)
					s->has_fire = 0;
				else
					fire(&it, s);
			}
		}
		(void)left;
		stress_sleep_us(1000);
	}
	for (i = 0; i < it.nsess; i++) {
		struct psession *s = &it.sess[i];
		double *avg = &st->span[in_process][it.workload];

		if (s->victim || !s->client_done || s->client_status)
			continue;
		*avg = *avg > 0 ? 0.8 * *avg + 0.2 * (s->t_end - t0)
				: s->t_end - t0;
	}
	if (in_process) {
		atomic_store(&it.stop_accept, 1);
		pthread_join(it.acceptor, NULL);
		for (i = 0; i < it.nsess; i++) {
			struct psession *s = &it.sess[i];

			if (s->thread_started)
				pthread_join(s->thread, NULL);
			if (!s->victim && s->exit_code != 0)
				stress_violation(st,
						 d != SD_NONE ? SV_ISOLATION
							      : SV_UNDISTURBED,
						 "%s: undisturbed session "
						 "returned %d (%s)",
						 s->dst, s->exit_code,
						 s->last_log);
		}
		close(it.listen_fd);
		unlink(it.sock_path);
		berth_pump_stats(it.pump, &ps);
		if (ps.submitted != ps.completed || ps.in_flight)
			stress_violation(st, SV_COUNT,
					 "pump: %llu submitted, %llu "
					 "completed, %llu in flight after "
					 "every session ended",
					 (unsigned long long)ps.submitted,
					 (unsigned long long)ps.completed,
					 (unsigned long long)ps.in_flight);
		st->requests += ps.completed;
		st->faults_fired += ps.faults;
		berth_pump_free(it.pump);
	}
	for (i = 0; i < it.nsess; i++) {
		struct psession *s = &it.sess[i];

		if (s->victim && !s->disrupted && d != SD_CUT_PIPE &&
		    d != SD_PUMP_SHUTDOWN && d != SD_FAULT) {
			st->late++;
			stress_log(st,
				   "%s: %s came too late (at +%.3f s; the "
				   "client ended at +%.3f s)\n",
				   s->dst, stress_disruption_names[d],
				   s->fire_at - t0, s->t_end - t0);
		}
		if (s->disrupted && d == SD_KILL_BERTH)
			repush(s);
		check_session(s);
		check_berth_exit(s);
		if (!st->violation)
			stress_rm_rf(s->dir);
		else
			fprintf(stderr, "berth-stress: kept %s\n", s->dir);
		free(s->files);
		if (s->argv) {
			for (int k = 0; k < s->argc; k++)
				free(s->argv[k]);
			free(s->argv);
		}
		pthread_mutex_destroy(&s->log_lock);
		pthread_mutex_destroy(&s->bs_lock);
	}
	free(it.sess);
	fds1 = stress_count_fds();
	if (fds1 != fds0) {
		char list[512];

		stress_fd_list(list, sizeof(list));
		stress_violation(st, SV_FD, "%s: %d fds before, %d after:%s",
				 in_process ? "session" : "process", fds0, fds1,
				 list);
	}
	heap1 = stress_heap_bytes();
	if (in_process && heap1 > heap0 + (4u << 20))
		stress_violation(st, SV_MEM, "session: heap %zu -> %zu bytes",
				 heap0, heap1);
}
