/* SPDX-License-Identifier: MIT */
/*
 * berth --daemon: rsync's daemon command line, the listener (or inetd's
 * socket on stdin, or systemd's sockets, or a remote shell's stdin and
 * stdout), a thread per connection, every session on one shared pump;
 * SIGHUP loads the configuration again for new connections (running ones
 * keep theirs), SIGTERM and SIGINT end every session cleanly and exit.
 *
 * Signals are blocked in every thread and read from a signalfd by the
 * accept loop.  Lock order: d->lock only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon_int.h"

#define DEFAULT_CONFIG "/etc/rsyncd.conf"
#define MAX_LISTEN 16
#define STOP_WAIT_MS 15000

static void usage(void)
{
	fprintf(stderr, "usage: berth --daemon [--config=FILE] [--port=PORT] "
			"[--address=ADDR]\n"
			"                      [--no-detach] [--log-file=FILE] "
			"[--bwlimit=KBPS]\n"
			"                      [--dparam=NAME=VALUE]...\n"
			"       (configuration: " DEFAULT_CONFIG
			" unless --config; rsyncd.conf syntax)\n");
}

struct cmdline {
	bool server, no_detach;
	const char *worker, *worker_chroot; /* a worker process's */
	struct berth_doverride ov;
	int64_t bwlimit;
};

static const char *value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (!strncmp(a, name, n) && a[n] == '=')
		return a + n + 1;
	if (!strcmp(a, name) && *i + 1 < argc)
		return argv[++*i];
	return NULL;
}

static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	const char *v;
	char *end;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--daemon") || !strcmp(a, ".") ||
		    !strcmp(a, "-4") || !strcmp(a, "-6") ||
		    !strcmp(a, "--ipv4") || !strcmp(a, "--ipv6"))
			continue;
		if (!strcmp(a, "--server"))
			cl->server = true;
		else if (!strcmp(a, "--no-detach"))
			cl->no_detach = true;
		else if ((v = value(argc, argv, &i, "--berth-worker")))
			cl->worker = v;
		else if ((v = value(argc, argv, &i, "--berth-worker-chroot")))
			cl->worker_chroot = v;
		else if ((v = value(argc, argv, &i, "--config")))
			cl->ov.config = v;
		else if ((v = value(argc, argv, &i, "--address")))
			cl->ov.address = v;
		else if ((v = value(argc, argv, &i, "--log-file")))
			cl->ov.log_file = v;
		else if ((v = value(argc, argv, &i, "--port"))) {
			long p = strtol(v, &end, 10);

			if (*end || p <= 0 || p > 65535)
				return -1;
			cl->ov.port = (int)p;
		} else if ((v = value(argc, argv, &i, "--bwlimit"))) {
			cl->bwlimit = strtoll(v, &end, 10);
			if (*end || cl->bwlimit < 0)
				return -1;
		} else if ((v = value(argc, argv, &i, "--dparam")) ||
			   (v = value(argc, argv, &i, "-M"))) {
			if (cl->ov.nparams == 32)
				return -1;
			cl->ov.params[cl->ov.nparams++] = v;
		} else {
			fprintf(stderr, "berth --daemon: unknown option %s\n",
				a);
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------ connections */

static void set_peer(struct berth_dconn *c, const struct sockaddr *sa,
		     socklen_t len, bool lookup)
{
	if (getnameinfo(sa, len, c->addr, sizeof(c->addr), NULL, 0,
			NI_NUMERICHOST))
		snprintf(c->addr, sizeof(c->addr), "0.0.0.0");
	if (!strncmp(c->addr, "::ffff:", 7) && strchr(c->addr, '.'))
		memmove(c->addr, c->addr + 7, strlen(c->addr + 7) + 1);
	if (!lookup)
		snprintf(c->host, sizeof(c->host), "UNDETERMINED");
	else if (getnameinfo(sa, len, c->host, sizeof(c->host), NULL, 0,
			     NI_NAMEREQD))
		snprintf(c->host, sizeof(c->host), "UNKNOWN");
}

/* A PROXY header first, when the configuration says a balancer sends
 * one: read exactly the header, then the client's address is its. */
static int read_proxy(struct berth_dconn *c)
{
	uint8_t buf[BERTH_PROXY_MAX];
	struct berth_proxy_hdr h;
	size_t len = 0, need;
	struct pollfd pf = {.fd = c->in_fd, .events = POLLIN};
	int ret;

	for (;;) {
		ret = berth_proxy_parse(buf, len, &need, &h);
		if (ret != 0)
			break;
		if (len + need > sizeof(buf))
			return -BERTH_EPROTO;
		while (need) {
			ssize_t r;

			if (poll(&pf, 1, 10000) <= 0)
				return -ETIMEDOUT;
			r = read(c->in_fd, buf + len, need);
			if (r <= 0)
				return -EPIPE;
			len += (size_t)r;
			need -= (size_t)r;
		}
	}
	if (ret < 0)
		return ret;
	if (!h.local)
		set_peer(c, (struct sockaddr *)&h.src, h.src_len,
			 c->cfg->reverse_lookup);
	return 0;
}

static int serve(struct berth_dconn *c)
{
	if (c->cfg->proxy_protocol && read_proxy(c) < 0) {
		berth__dlog(c->d, "bad PROXY header from %s", c->addr);
		return 5;
	}
	return berth__dconn_serve(c);
}

static void *conn_thread(void *arg)
{
	struct berth_dconn *c = arg;

	(void)serve(c);
	berth__dconn_end(c);
	return NULL;
}

static void accept_one(struct berth_daemon *d, int lfd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct berth_dconn *c;
	pthread_attr_t attr;
	pthread_t tid;
	int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	c = berth__dconn_new(d, fd, fd);
	if (!c) {
		static const char full[] =
			"@RSYNCD: 32.0\n@ERROR: max connections reached -- "
			"try again later\n";

		if (write(fd, full, sizeof(full) - 1) < 0) {
			/* it went away */
		}
		close(fd);
		return;
	}
	c->socket = true;
	set_peer(c, (struct sockaddr *)&ss, len,
		 c->cfg->reverse_lookup && !c->cfg->proxy_protocol);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, conn_thread, c))
		berth__dconn_end(c);
	pthread_attr_destroy(&attr);
}

/* ------------------------------------------------------------ listening */

static int listen_on(const struct berth_dcfg *cfg, int *fds)
{
	struct addrinfo hints = {0}, *res, *ai;
	char port[16];
	int n = 0, one = 1, ret;

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", cfg->port);
	ret = getaddrinfo(cfg->address, port, &hints, &res);
	if (ret) {
		fprintf(stderr, "berth --daemon: %s: %s\n",
			cfg->address ? cfg->address : "*", gai_strerror(ret));
		return -1;
	}
	for (ai = res; ai && n < MAX_LISTEN; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				0);

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				   sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
		    listen(fd, cfg->listen_backlog) < 0) {
			fprintf(stderr, "berth --daemon: bind/listen: %s\n",
				strerror(errno));
			close(fd);
			continue;
		}
		fds[n++] = fd;
	}
	freeaddrinfo(res);
	return n ? n : -1;
}

/* systemd's sockets (LISTEN_FDS): listeners, or one accepted socket. */
static int systemd_fds(int *fds, bool *accepted)
{
	const char *pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");
	int count, i, acc = 0;
	socklen_t len = sizeof(acc);

	*accepted = false;
	if (!pid || !n || atol(pid) != (long)getpid())
		return 0;
	count = atoi(n);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (count <= 0 || count > MAX_LISTEN)
		return 0;
	for (i = 0; i < count; i++) {
		fds[i] = 3 + i;
		fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	}
	if (getsockopt(fds[0], SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 &&
	    !acc)
		*accepted = true;
	return count;
}

static bool is_socket(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

/* ------------------------------------------------------------ the run */

static void reload(struct berth_daemon *d)
{
	struct berth_dcfg *c, *old;
	char err[512];

	if (berth_dcfg_load(d->config_path, &d->ov, &c, err, sizeof(err)) < 0) {
		berth__dlog(d,
			    "reload of %s failed, keeping the old "
			    "configuration: %s",
			    d->config_path, err);
		return;
	}
	pthread_mutex_lock(&d->lock);
	old = d->cfg;
	d->cfg = c;
	pthread_mutex_unlock(&d->lock);
	berth_dcfg_unref(old);
	berth__dlog(d, "configuration reloaded from %s (new connections)",
		    d->config_path);
	berth__dworkers_start(d);
}

/* End every connection: sessions cancelled (temp files removed, clients
 * told), connections still in their greeting woken and closed. */
static void stop_all(struct berth_daemon *d)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STOP_WAIT_MS / 1000;
	pthread_mutex_lock(&d->lock);
	berth__dconns_cancel(d);
	pthread_mutex_unlock(&d->lock);
	/* Workers end their sessions as this process does. */
	berth__dworkers_stop(d);
	pthread_mutex_lock(&d->lock);
	while (d->n_conns &&
	       pthread_cond_timedwait(&d->idle, &d->lock, &until) == 0)
		;
	pthread_mutex_unlock(&d->lock);
	berth__dworkers_wait(d, STOP_WAIT_MS);
}

static int accept_loop(struct berth_daemon *d, int *fds, int n, int sfd)
{
	struct pollfd pf[MAX_LISTEN + 1];
	struct signalfd_siginfo si;
	int i;

	for (i = 0; i < n; i++)
		pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
	pf[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
	for (;;) {
		if (poll(pf, (nfds_t)n + 1, -1) < 0)
			continue;
		if ((pf[n].revents & POLLIN) &&
		    read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				reload(d);
			} else if (si.ssi_signo == SIGCHLD) {
				berth__dworkers_reap(d);
			} else {
				berth__dlog(d,
					    "signal %d: ending every "
					    "session",
					    (int)si.ssi_signo);
				break;
			}
		}
		for (i = 0; i < n; i++)
			if (pf[i].revents & POLLIN)
				accept_one(d, fds[i]);
	}
	for (i = 0; i < n; i++)
		close(fds[i]);
	stop_all(d);
	return 0;
}

/* One connection on fds we were given (inetd, a remote shell, systemd's
 * accepted socket), on this thread, with signals still watched. */
static void *one_sig_thread(void *arg)
{
	struct berth_daemon *d = ((void **)arg)[0];
	int sfd = *(int *)((void **)arg)[1];
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			continue;
		if (si.ssi_signo == SIGCHLD)
			continue;
		pthread_mutex_lock(&d->lock);
		berth__dconns_cancel(d);
		pthread_mutex_unlock(&d->lock);
		berth__dworkers_stop(d);
		break;
	}
	return NULL;
}

static int run_one(struct berth_daemon *d, int in_fd, int out_fd, int sfd,
		   bool rsh)
{
	struct berth_dconn *c = berth__dconn_new(d, in_fd, out_fd);
	void *args[2] = {d, &sfd};
	pthread_t tid;
	int ret;

	if (!c)
		return 22;
	c->socket = is_socket(in_fd);
	if (rsh) {
		/* The client's address as the remote shell saw it. */
		const char *ssh = getenv("SSH_CONNECTION");
		size_t n = ssh ? strcspn(ssh, " ") : 0;

		snprintf(c->addr, sizeof(c->addr), "%.*s", (int)n,
			 n ? ssh : "0.0.0.0");
		snprintf(c->host, sizeof(c->host), "%s",
			 n ? c->addr : "UNKNOWN");
	} else {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);

		if (getpeername(in_fd, (struct sockaddr *)&ss, &len) == 0)
			set_peer(c, (struct sockaddr *)&ss, len,
				 c->cfg->reverse_lookup &&
					 !c->cfg->proxy_protocol);
	}
	pthread_create(&tid, NULL, one_sig_thread, args);
	ret = serve(c);
	c->in_fd = c->out_fd = -1; /* not ours to close */
	berth__dconn_end(c);
	pthread_cancel(tid);
	pthread_join(tid, NULL);
	return ret;
}

static int detach(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -1;
	if (pid > 0)
		_exit(0);
	setsid();
	if (chdir("/") < 0)
		return -1;
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return 0;
}

static int open_log(struct berth_daemon *d)
{
	const char *f = d->cfg->log_file;

	d->log_fd = -1;
	if (!f || !*f)
		return 0;
	d->log_fd = open(f, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (d->log_fd < 0) {
		fprintf(stderr, "berth --daemon: log file %s: %s\n", f,
			strerror(errno));
		return -1;
	}
	return 0;
}

int berth_daemon_main(int argc, char **argv)
{
	struct berth_daemon d = {0};
	struct cmdline cl = {0};
	int fds[MAX_LISTEN], n = 0, sfd, ret;
	bool accepted = false, rsh, inetd;
	sigset_t set;
	char err[512];

	if (parse_cmdline(argc, argv, &cl) < 0) {
		usage();
		return 1;
	}
	if (cl.worker) {
		d.config_path = cl.ov.config ? cl.ov.config : DEFAULT_CONFIG;
		d.ov = cl.ov;
		d.bwlimit = cl.bwlimit;
		berth__dworker_main(&d, cl.worker, cl.worker_chroot);
	}
	d.argc = argc;
	d.argv = argv;
	rsh = cl.server;
	inetd = !rsh && is_socket(STDIN_FILENO);
	if (!rsh && !inetd)
		n = systemd_fds(fds, &accepted);
	d.config_path = cl.ov.config		? cl.ov.config
			: rsh && geteuid() != 0 ? "rsyncd.conf"
						: DEFAULT_CONFIG;
	d.ov = cl.ov;
	d.bwlimit = cl.bwlimit;
	if (berth_dcfg_load(d.config_path, &d.ov, &d.cfg, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "berth --daemon: %s\n", err);
		if (rsh)
			printf("@ERROR: berth --daemon: configuration "
			       "error\n");
		return 1;
	}
	d.log_stderr = !rsh && !inetd && !accepted && cl.no_detach;
	if (open_log(&d) < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	d.ctl_fd = -1;
	if (!rsh && !inetd && !accepted && n == 0) {
		n = listen_on(d.cfg, fds);
		if (n < 0) {
			berth_dcfg_unref(d.cfg);
			return 10; /* rsync's socket I/O error */
		}
	}
	if (!rsh && !inetd && !accepted && !cl.no_detach && detach() < 0)
		return 10;
	/* Blocked before any thread exists, so all inherit it. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.idle, NULL);
	ret = berth_pump_create(NULL, &d.pump);
	if (ret < 0) {
		berth__dlog(&d, "no completion pump: %s", berth_strerror(ret));
		return 22;
	}
	if (rsh || inetd || accepted) {
		ret = run_one(&d, rsh || accepted ? (accepted ? fds[0] : 0) : 0,
			      rsh ? 1 : (accepted ? fds[0] : 0), sfd, rsh);
		berth__dworkers_wait(&d, STOP_WAIT_MS);
	} else {
		if (d.cfg->pid_file && *d.cfg->pid_file) {
			FILE *f = fopen(d.cfg->pid_file, "we");

			if (f) {
				fprintf(f, "%d\n", (int)getpid());
				fclose(f);
			}
		}
		berth__dlog(
			&d,
			"berth %s daemon starting, listening on port "
			"%d (pump: %s)",
			BERTH_VERSION_STRING, d.cfg->port,
			berth_pump_backend_name(berth_pump_backend(d.pump)));
		berth__dworkers_start(&d);
		ret = accept_loop(&d, fds, n, sfd);
		if (d.cfg->pid_file && *d.cfg->pid_file)
			unlink(d.cfg->pid_file);
	}
	berth_pump_free(d.pump);
	berth_dcfg_unref(d.cfg);
	if (d.log_fd >= 0)
		close(d.log_fd);
	close(sfd);
	return ret;
}
