/* SPDX-License-Identifier: MIT */
/*
 * The berth program: a thin user of include/berth.h.
 *
 *   berth --server ...   what a stock rsync client runs on the far side
 *                        (--rsync-path=berth); exit code as rsync's
 *   berth --daemon ...   an rsync daemon (rsync:// modules, rsyncd.conf),
 *                        also `--server --daemon` under a remote shell
 *                        (daemon/daemon_main.c)
 *   berth --restrict=DIR an sshd forced command: the client's push, only
 *                        beneath DIR (cli_restrict.c)
 *   berth --help, --version, and usage errors (cli_usage.c)
 *
 * Signals: SIGTERM, SIGINT and SIGHUP cancel the session (its temp files
 * are removed, the client is told) and berth exits with rsync's code for a
 * signal (20).  The library installs no handlers: this program blocks the
 * signals in all its threads and reads them from a signalfd on one of its
 * own.  A thread the program does not own (a sanitizer's helper) may leave
 * them unblocked; for it a handler forwards the signal through a pipe that
 * the same thread reads, where the default action would have killed the
 * process.  No handler ever runs in a thread of berth's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "berth.h"
#include "cli/cli_int.h"
#include "daemon/daemon_int.h"

#define RERR_SYNTAX CLI_RERR_SYNTAX
#define RERR_MALLOC CLI_RERR_MALLOC
#define RERR_SIGNAL CLI_RERR_SIGNAL

static void log_stderr(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	/* One write per line, so concurrent threads do not interleave. */
	if (write(STDERR_FILENO, msg, strlen(msg)) < 0) {
		/* nowhere left to report it */
	}
}

static int durability_from_env(int *out)
{
	const char *d = getenv("BERTH_DURABILITY");

	if (!d || !strcmp(d, "none"))
		*out = BERTH_DURABLE_NONE;
	else if (!strcmp(d, "file"))
		*out = BERTH_DURABLE_FILE;
	else if (!strcmp(d, "batch"))
		*out = BERTH_DURABLE_BATCH;
	else
		return -1;
	return 0;
}

struct sig_watch {
	sigset_t set;
	int sfd; /* signalfd of the set */
	int rfd; /* the forwarding pipe's read end */
	pthread_mutex_t lock;
	struct berth_session *session; /* under lock; NULL once freed */
};

/* The forwarding pipe's write end, for the handler (a signal handler has
 * no argument to carry it). */
static int sig_wfd = -1;

/* Runs only in a thread that is not berth's (all of berth's block the
 * signals). */
static void on_signal(int sig)
{
	unsigned char b = (unsigned char)sig;
	int saved = errno;

	if (write(sig_wfd, &b, 1) < 0) {
		/* full: a cancel is already on its way */
	}
	errno = saved;
}

/* Takes the signals and cancels the session. */
static void *sig_thread(void *arg)
{
	struct sig_watch *w = arg;
	struct pollfd pfd[2] = {{.fd = w->sfd, .events = POLLIN},
				{.fd = w->rfd, .events = POLLIN}};
	struct signalfd_siginfo si;
	unsigned char b;

	for (;;) {
		if (poll(pfd, 2, -1) <= 0)
			continue;
		if ((pfd[0].revents & POLLIN) &&
		    read(w->sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if ((pfd[1].revents & POLLIN) && read(w->rfd, &b, 1) != 1)
			continue;
		if ((pfd[1].revents & POLLIN) && b == 0)
			return NULL; /* main is done with the session */
		pthread_mutex_lock(&w->lock);
		if (w->session)
			berth_session_cancel(w->session);
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

static int watch_signals(struct sig_watch *w)
{
	struct sigaction sa;
	int fds[2];

	sigemptyset(&w->set);
	sigaddset(&w->set, SIGTERM);
	sigaddset(&w->set, SIGINT);
	sigaddset(&w->set, SIGHUP);
	/* Blocked before any thread of ours exists, so all inherit it. */
	if (pthread_sigmask(SIG_BLOCK, &w->set, NULL))
		return -1;
	w->sfd = signalfd(-1, &w->set, SFD_CLOEXEC);
	if (w->sfd < 0 || pipe2(fds, O_CLOEXEC) < 0 ||
	    fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0)
		return -1;
	w->rfd = fds[0];
	sig_wfd = fds[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigfillset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0 ||
	    sigaction(SIGHUP, &sa, NULL) < 0)
		return -1;
	return 0;
}

/* The server: one session over stdin/stdout, into @dest_dirfd if it is
 * not -1 (the restricted mode), else into the DEST of @argv. */
static int run_server(int argc, char **argv, int dest_dirfd)
{
	struct berth_session_opts so = {.size = sizeof(so)};
	struct berth_pump *pump = NULL;
	struct sig_watch watch;
	pthread_t tid;
	bool have_tid;
	int ret;

	if (durability_from_env(&so.durability) < 0) {
		fprintf(stderr, "berth: BERTH_DURABILITY must be none, file "
				"or batch\n");
		return RERR_SYNTAX;
	}
	/* A client that goes away is an error code, not a signal death. */
	signal(SIGPIPE, SIG_IGN);
	if (watch_signals(&watch) < 0) {
		fprintf(stderr, "berth: signal setup: %s\n", strerror(errno));
		return RERR_MALLOC;
	}

	ret = berth_pump_create(NULL, &pump);
	if (ret < 0) {
		fprintf(stderr, "berth: no completion pump: %s%s\n",
			berth_strerror(ret),
			ret == -EOPNOTSUPP ? " (built without io_uring?)" : "");
		return RERR_MALLOC;
	}
	so.argc = argc;
	so.argv = argv;
	so.dest_dirfd = dest_dirfd;
	so.log = log_stderr;
	pthread_mutex_init(&watch.lock, NULL);
	ret = berth_session_create(pump, &so, &watch.session);
	if (ret < 0) {
		berth_pump_free(pump);
		return RERR_MALLOC;
	}
	have_tid = pthread_create(&tid, NULL, sig_thread, &watch) == 0;
	ret = berth_session_run(watch.session, STDIN_FILENO, STDOUT_FILENO);
	if (ret == -BERTH_ECANCELLED)
		ret = RERR_SIGNAL;
	/* The signal thread no longer sees the session: free everything. */
	pthread_mutex_lock(&watch.lock);
	berth_session_free(watch.session);
	watch.session = NULL;
	pthread_mutex_unlock(&watch.lock);
	/* Stop and join the signal thread: @watch lives on this stack, and a
	 * detached thread woken after main returned (a SIGHUP as the client
	 * hangs up) would lock a mutex in a dead frame. */
	if (have_tid) {
		unsigned char quit = 0;

		while (write(sig_wfd, &quit, 1) < 0 && errno == EAGAIN)
			usleep(1000);
		pthread_join(tid, NULL);
	}
	berth_pump_free(pump);
	return ret;
}

int main(int argc, char **argv)
{
	struct restricted *r;
	const char *dir;
	bool daemon = false;
	int i, ret;

	/* --daemon, also with --server (rsync -e RSH HOST::MODULE). */
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--daemon") == 0)
			daemon = true;
	/* rsync takes "--server" anywhere among the options (an
	 * --rsync-path="berth OPTION" puts OPTION first); the session
	 * refuses what it does not know, after the handshake, and says
	 * why. */
	for (i = 1; i < argc && strcmp(argv[i], "--server") != 0; i++)
		;
	if (daemon && i >= argc) {
		for (int k = 1; k < argc; k++)
			if (!strcmp(argv[k], "--help") ||
			    !strcmp(argv[k], "-h")) {
				berth__cli_daemon_help(stdout);
				return 0;
			}
	}
	if (daemon)
		return berth_daemon_main(argc, argv);
	if (i < argc)
		return run_server(argc, argv, -1);
	/* Neither: berth's own command line. */
	if (!berth__cli_parse(argc, argv, &dir, &ret))
		return ret;
	r = malloc(sizeof(*r));
	if (!r)
		return RERR_MALLOC;
	ret = berth__restrict_prep(r, dir, getenv("SSH_ORIGINAL_COMMAND"));
	if (ret == 0)
		ret = run_server(r->argc, r->argv, r->dest_fd);
	berth__restrict_destroy(r);
	free(r);
	return ret;
}
