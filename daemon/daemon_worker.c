/* SPDX-License-Identifier: MIT */
/*
 * The daemon's worker processes: one per set of credentials (uid, gid,
 * supplementary groups) the modules use that differ from the daemon's
 * own, each with its own pump, many sessions on it as in the main
 * process.  A thread of one process cannot write as another user (the
 * commit thread, the pump and io_uring's kernel workers would not follow
 * a per-thread switch), so the credentials are the process's.
 *
 * The main process (root, the listeners) does everything up to the
 * module's credentials: PROXY header, greeting, module, host rules, max
 * connections and lock file, authentication; it then passes the client's
 * socket over the worker's control socket (SCM_RIGHTS) with what the
 * session needs (module name, address, host, user, read only, protocol,
 * the time left) and the write end of a pipe on which the worker reports
 * the session's exit code.  The main thread of that connection waits on
 * the pipe: its slot of max connections, its lock file record and its
 * own copy of the client's socket stay held until then.  A worker that
 * dies closes the pipe; the main process then ends the client's stream
 * (rsync's "connection unexpectedly closed", as when rsync's connection
 * process dies), logs the death and starts the worker again.
 *
 * A worker is this program again (fork, then exec at once: the main
 * process has threads, so the child does nothing that could wait on a
 * lock another thread held), its control socket as fd 3 and the log as
 * fd 4; it reads the configuration file (as root), chroots into the
 * module with use chroot (then one worker per module), drops to its
 * credentials and checks them, and runs sessions on its own pump.  On
 * SIGHUP the main process starts new workers for the new configuration
 * and closes the control sockets of the old ones, which end when their
 * running sessions have ended.  A worker started again after a death
 * reads the file as it is then; a connection for a module whose
 * credentials changed since is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon_int.h"

#define HAND_MAGIC 0x62727468u /* "brth" */
#define RESTART_AFTER_MS 1000
#define WORKER_STOP_MS 15000

struct berth_dworker {
	struct berth_dworker *next;
	struct berth_dcred cred;
	char *chroot; /* the module path it is chrooted into, or NULL */
	struct berth_dcfg *cfg; /* the configuration it was forked with */
	pid_t pid;
	int ctl; /* -1 once it is draining */
	int64_t started_ms;
};

/* A connection handed to a worker (fds: the client's socket, or its two
 * ends, then the pipe for the exit code). */
struct hand_msg {
	uint32_t magic, two_fds, incl, excl;
	int32_t ro, protocol;
	int64_t left_ms;
	char mod[256], addr[64], host[256], user[128];
};

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool cred_eq(const struct berth_dcred *a, const struct berth_dcred *b)
{
	return a->uid == b->uid && a->gid == b->gid &&
	       a->ngroups == b->ngroups &&
	       !memcmp(a->groups, b->groups,
		       sizeof(gid_t) * (size_t)a->ngroups);
}

/* ------------------------------------------------------ the worker */

/* What a worker is: its credentials and chroot, as the main process
 * asked on its command line. */
struct wself {
	struct berth_dcred cred;
	const char *chroot;
};

/* A module this worker may run: the file the main process read could
 * have been changed since (a worker started again reads it as it is). */
static bool mine(const struct wself *me, const struct berth_dmod *m)
{
	/* Not chrooted: any module of these credentials (one with use
	 * chroot whose path has no /proc is confined beneath it). */
	return m->run == BERTH_DRUN_WORKER && cred_eq(&m->cred, &me->cred) &&
	       (!me->chroot || (m->use_chroot && !strcmp(m->path, me->chroot)));
}

struct wconn_arg {
	struct berth_dconn *c;
	int done_fd;
};

static void *wconn_thread(void *arg)
{
	struct wconn_arg *a = arg;
	struct berth_dconn *c = a->c;
	int32_t code = berth__dconn_session(c);
	int in, out;

	/* The client's socket first: it sees the end at once.  Taken from
	 * the connection under the lock, so that a shutdown for SIGTERM
	 * (berth__dconns_cancel()) never meets a number reused since. */
	pthread_mutex_lock(&c->d->lock);
	in = c->in_fd;
	out = c->out_fd;
	c->in_fd = c->out_fd = -1;
	pthread_mutex_unlock(&c->d->lock);
	if (in >= 0)
		close(in);
	if (out >= 0 && out != in)
		close(out);
	if (write(a->done_fd, &code, sizeof(code)) < 0) {
		/* the main process is gone */
	}
	close(a->done_fd);
	berth__dconn_end(c);
	free(a);
	return NULL;
}

static bool is_sock(int fd)
{
	int type;
	socklen_t len = sizeof(type);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
}

/* One message from the main process: 1 served, 0 end of the control
 * socket, -1 a bad message (dropped). */
static int worker_take(struct berth_daemon *d, const struct wself *me,
		       const char *fail)
{
	struct hand_msg m;
	union {
		char buf[CMSG_SPACE(5 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {&m, sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm;
	int fds[5] = {-1, -1, -1, -1, -1}, nfd = 0, want, i, k;
	struct berth_dconn *c;
	struct wconn_arg *a;
	pthread_attr_t attr;
	pthread_t tid;
	ssize_t r = recvmsg(d->ctl_fd, &mh, MSG_CMSG_CLOEXEC);

	if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
		return 0;
	if (r < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (i = 0; i < (int)((cm->cmsg_len - CMSG_LEN(0)) /
					      sizeof(int)) &&
				    nfd < 5;
			     i++)
				memcpy(&fds[nfd++],
				       CMSG_DATA(cm) + (size_t)i * sizeof(int),
				       sizeof(int));
	want = r == sizeof(m) && m.magic == HAND_MAGIC
		       ? 2 + !!m.two_fds + !!m.incl + !!m.excl
		       : -1;
	if (want != nfd || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
		goto bad;
	m.mod[sizeof(m.mod) - 1] = m.addr[sizeof(m.addr) - 1] = '\0';
	m.host[sizeof(m.host) - 1] = m.user[sizeof(m.user) - 1] = '\0';
	if (!fail) {
		const struct berth_dmod *mod;

		m.mod[sizeof(m.mod) - 1] = '\0';
		mod = berth_dcfg_module(d->cfg, m.mod);
		if (!mod || !mine(me, mod)) {
			berth__dlog(d,
				    "module %s: changed in the configuration "
				    "file since the last reload",
				    m.mod);
			fail = "module changed -- try again later";
		}
	}
	if (fail) {
		/* As rsync's refusal after the module's checks. */
		int32_t code = 5;
		char line[160];
		int n = snprintf(line, sizeof(line), "@ERROR: %s\n", fail);

		if (write(fds[m.two_fds ? 1 : 0], line, (size_t)n) < 0 ||
		    write(fds[nfd - 1], &code, sizeof(code)) < 0) {
			/* gone */
		}
		for (i = 0; i < nfd; i++)
			close(fds[i]);
		return 1;
	}
	c = berth__dconn_new(d, fds[0], m.two_fds ? fds[1] : fds[0]);
	if (!c)
		goto bad;
	a = malloc(sizeof(*a));
	if (!a) {
		c->in_fd = c->out_fd = -1;
		berth__dconn_end(c);
		goto bad;
	}
	a->c = c;
	a->done_fd = fds[nfd - 1];
	k = m.two_fds ? 2 : 1;
	if (m.incl)
		c->from_fd[0] = fds[k++];
	if (m.excl)
		c->from_fd[1] = fds[k++];
	c->socket = is_sock(fds[0]);
	c->slot = c->lock_fd = -1;
	snprintf(c->addr, sizeof(c->addr), "%s", m.addr);
	snprintf(c->host, sizeof(c->host), "%s", m.host);
	snprintf(c->user, sizeof(c->user), "%s", m.user);
	c->ro = m.ro;
	c->protocol = m.protocol;
	c->deadline_ms = now_ms() + (m.left_ms > 0 ? m.left_ms : 1);
	c->mod = berth_dcfg_module(c->cfg, m.mod);
	if (!c->mod) {
		c->in_fd = c->out_fd = -1;
		c->from_fd[0] = c->from_fd[1] = -1;
		berth__dconn_end(c);
		free(a);
		goto bad;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, wconn_thread, a)) {
		c->in_fd = c->out_fd = -1;
		c->from_fd[0] = c->from_fd[1] = -1;
		berth__dconn_end(c);
		free(a);
		pthread_attr_destroy(&attr);
		goto bad;
	}
	pthread_attr_destroy(&attr);
	return 1;
bad:
	for (i = 0; i < nfd; i++)
		close(fds[i]);
	return -1;
}

/* Become @cr for good (every thread: there is only this one yet) and
 * check that it held. */
static int drop_to(const struct berth_dcred *cr, char *why, size_t len)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, now[BERTH_DCRED_GROUPS + 1];
	int n;

	if (setgroups((size_t)cr->ngroups, cr->groups) < 0) {
		snprintf(why, len, "setgroups failed: %s", strerror(errno));
		return -1;
	}
	if (setgid(cr->gid) < 0) {
		snprintf(why, len, "setgid %ld failed: %s", (long)cr->gid,
			 strerror(errno));
		return -1;
	}
	if (setuid(cr->uid) < 0) {
		snprintf(why, len, "setuid %ld failed: %s", (long)cr->uid,
			 strerror(errno));
		return -1;
	}
	n = getgroups(BERTH_DCRED_GROUPS + 1, now);
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    ru != cr->uid || eu != cr->uid || su != cr->uid || rg != cr->gid ||
	    eg != cr->gid || sg != cr->gid || n != cr->ngroups ||
	    (cr->uid != 0 && setuid(0) == 0)) {
		snprintf(why, len, "the credentials did not hold");
		return -1;
	}
	return 0;
}

/* Is a proc filesystem mounted at @dir (itself, not through a symlink a
 * client could have made)?  berth's safe paths for xattrs, ACLs, fake
 * super and the umask go through /proc/self, which a chroot without it
 * would take away. */
static bool proc_at(const char *dir)
{
	struct statfs sf;
	struct stat st;

	return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	       statfs(dir, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC;
}

/* use chroot: the worker's "/" becomes the module's path, and the
 * modules of that path (its configuration is this process's copy) are
 * reached from "/".  Names are looked up once first, so that the name
 * service's libraries (and the time zone) are loaded from outside. */
static int enter_chroot(struct berth_daemon *w, const char *path, char *why,
			size_t len)
{
	struct berth_dcfg *cfg = w->cfg;
	size_t i;

	(void)getpwuid(0);
	(void)getgrgid(0);
	tzset();
	if (chroot(path) < 0 || chdir("/") < 0) {
		snprintf(why, len, "chroot %s failed: %s", path,
			 strerror(errno));
		return -1;
	}
	if (!proc_at("/proc")) { /* checked before; gone since */
		snprintf(why, len, "chroot %s: no /proc inside", path);
		return -1;
	}
	for (i = 0; i < cfg->n_mods; i++)
		if (cfg->mods[i].use_chroot && !strcmp(cfg->mods[i].path, path))
			cfg->mods[i].root = "/";
	return 0;
}

/* The worker's command line: "LOGFD,STDERR,UID,GID,G1:G2:..." */
static int parse_spec(const char *spec, struct berth_daemon *w,
		      struct berth_dcred *cr)
{
	char *end;
	long v[4];
	int i;

	for (i = 0; i < 4; i++) {
		v[i] = strtol(spec, &end, 10);
		if (end == spec || *end != ',')
			return -1;
		spec = end + 1;
	}
	w->log_fd = (int)v[0];
	w->log_stderr = v[1] != 0;
	cr->uid = (uid_t)v[2];
	cr->gid = (gid_t)v[3];
	cr->ngroups = 0;
	while (*spec && cr->ngroups < BERTH_DCRED_GROUPS) {
		cr->groups[cr->ngroups++] = (gid_t)strtoul(spec, &end, 10);
		if (end == spec || (*end && *end != ':'))
			return -1;
		spec = *end ? end + 1 : end;
	}
	return cr->ngroups ? 0 : -1;
}

void berth__dworker_main(struct berth_daemon *w, const char *spec,
			 const char *chroot_path)
{
	struct wself me = {.chroot = chroot_path};
	struct signalfd_siginfo si;
	struct pollfd pf[2];
	sigset_t set;
	char why[PATH_MAX + 64];
	const char *fail = NULL;
	int sfd, ret;
	bool draining = false;
	int64_t until = 0;

	w->ctl_fd = 3; /* as the main process placed it */
	w->is_worker = true;
	w->log_fd = -1;
	if (parse_spec(spec, w, &me.cred) < 0)
		_exit(1);
	signal(SIGPIPE, SIG_IGN);
	if (berth_dcfg_load(w->config_path, &w->ov, &w->cfg, why, sizeof(why)) <
	    0)
		fail = "berth --daemon: configuration error";
	else if (me.chroot && enter_chroot(w, me.chroot, why, sizeof(why)) < 0)
		fail = "chroot failed";
	else if (drop_to(&me.cred, why, sizeof(why)) < 0)
		fail = strstr(why, "setgroups") ? "setgroups failed"
		       : strstr(why, "setgid")	? "setgid failed"
						: "setuid failed";
	if (fail) {
		/* Kept, to refuse its connections as rsync does (and not
		 * be started again and again). */
		berth__dlog(w, "worker for uid %ld gid %ld%s%s: %s",
			    (long)me.cred.uid, (long)me.cred.gid,
			    me.chroot ? " in " : "", me.chroot ? me.chroot : "",
			    why);
		while (worker_take(w, &me, fail) != 0)
			;
		_exit(0);
	}
	/* The signals are blocked as in the main process; TERM and INT
	 * end the sessions, HUP is the main process's business. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->idle, NULL);
	ret = berth_pump_create(NULL, &w->pump);
	if (ret < 0 || sfd < 0) {
		berth__dlog(w, "worker for uid %ld: no completion pump: %s",
			    (long)me.cred.uid, berth_strerror(ret));
		_exit(1);
	}
	berth__dlog(w, "worker for uid %ld gid %ld%s%s started (pump: %s)",
		    (long)me.cred.uid, (long)me.cred.gid,
		    me.chroot ? " in " : "", me.chroot ? me.chroot : "",
		    berth_pump_backend_name(berth_pump_backend(w->pump)));
	for (;;) {
		int n = 0;

		pthread_mutex_lock(&w->lock);
		n = (int)w->n_conns;
		pthread_mutex_unlock(&w->lock);
		if (draining && (n == 0 || (until && now_ms() > until)))
			break;
		pf[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pf[1] = (struct pollfd){.fd = draining ? -1 : w->ctl_fd,
					.events = POLLIN};
		if (poll(pf, 2, draining ? 100 : -1) < 0)
			continue;
		if ((pf[0].revents & POLLIN) &&
		    read(sfd, &si, sizeof(si)) == sizeof(si)) {
			pthread_mutex_lock(&w->lock);
			berth__dconns_cancel(w);
			pthread_mutex_unlock(&w->lock);
			draining = true;
			until = now_ms() + WORKER_STOP_MS;
		}
		if (pf[1].revents & (POLLIN | POLLHUP | POLLERR))
			if (worker_take(w, &me, NULL) == 0)
				draining = true;
	}
	/* Sessions still running past the wait keep their memory: the
	 * process ends under them. */
	_exit(0);
}

/* ------------------------------------------------- the main process */

static const char *cred_text(const struct berth_dcred *cr, char *buf,
			     size_t len)
{
	snprintf(buf, len, "uid %ld gid %ld", (long)cr->uid, (long)cr->gid);
	return buf;
}

/* The worker's command line: the daemon's own, then the configuration
 * file and what the worker is (one allocation, freed by the caller). */
static char **worker_argv(const struct berth_daemon *d,
			  const struct berth_dworker *wk)
{
	size_t n = (size_t)d->argc + 4, len = 0, used, i;
	char **argv, *p;
	int k;

	len += strlen(d->config_path) + 16;
	len += 64 + 12 * (size_t)wk->cred.ngroups;
	len += wk->chroot ? strlen(wk->chroot) + 32 : 0;
	argv = malloc(n * sizeof(char *) + len);
	if (!argv)
		return NULL;
	p = (char *)(argv + n);
	for (i = 0; i < (size_t)d->argc; i++)
		argv[i] = d->argv[i];
	argv[i++] = p;
	p += sprintf(p, "--config=%s", d->config_path) + 1;
	argv[i++] = p;
	used = (size_t)sprintf(p, "--berth-worker=%d,%d,%ld,%ld,",
			       d->log_fd >= 0 ? 4 : -1, d->log_stderr ? 1 : 0,
			       (long)wk->cred.uid, (long)wk->cred.gid);
	for (k = 0; k < wk->cred.ngroups; k++)
		used += (size_t)sprintf(p + used, "%s%ld", k ? ":" : "",
					(long)wk->cred.groups[k]);
	p += used + 1;
	if (wk->chroot) {
		argv[i++] = p;
		sprintf(p, "--berth-worker-chroot=%s", wk->chroot);
	}
	argv[i] = NULL;
	return argv;
}

/* In the forked child (only calls safe after fork in a threaded
 * process): the control socket as 3, the log as 4, stdin and stdout
 * /dev/null, every other descriptor closed at exec; then this program
 * again. */
static void exec_worker(const struct berth_daemon *d, int ctl, char **argv)
{
	int a = fcntl(ctl, F_DUPFD, 10);
	int b = d->log_fd >= 0 ? fcntl(d->log_fd, F_DUPFD, 10) : -1;
	int nul;

	if (a < 0 || dup2(a, 3) < 0 || (b >= 0 && dup2(b, 4) < 0))
		_exit(127);
	nul = open("/dev/null", O_RDWR);
	if (nul >= 0) {
		dup2(nul, 0);
		dup2(nul, 1);
	}
	if (close_range(b >= 0 ? 5 : 4, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = b >= 0 ? 5 : 4; fd < 1024; fd++)
			fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	execv("/proc/self/exe", argv);
	_exit(127);
}

static void worker_free(struct berth_dworker *wk)
{
	if (wk->ctl >= 0)
		close(wk->ctl);
	berth_dcfg_unref(wk->cfg);
	free(wk->chroot);
	free(wk);
}

/* Start a worker for @cr (chrooted into @root unless NULL) under the
 * current configuration; under d->lock.  NULL when it could not be. */
static struct berth_dworker *spawn(struct berth_daemon *d,
				   const struct berth_dcred *cr,
				   const char *root)
{
	struct berth_dworker *wk = calloc(1, sizeof(*wk));
	char t[64], **argv;
	int sv[2];

	if (!wk)
		return NULL;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(wk);
		return NULL;
	}
	wk->cred = *cr;
	wk->chroot = root ? strdup(root) : NULL;
	if (root && !wk->chroot) {
		close(sv[0]);
		close(sv[1]);
		free(wk);
		return NULL;
	}
	wk->cfg = berth_dcfg_ref(d->cfg);
	wk->started_ms = now_ms();
	argv = worker_argv(d, wk);
	wk->pid = argv ? fork() : -1;
	if (wk->pid == 0)
		exec_worker(d, sv[1], argv);
	free(argv);
	close(sv[1]);
	if (wk->pid < 0) {
		berth__dlog(d, "cannot start a worker for %s: %s",
			    cred_text(cr, t, sizeof(t)), strerror(errno));
		wk->ctl = sv[0];
		worker_free(wk);
		return NULL;
	}
	wk->ctl = sv[0];
	wk->next = d->workers;
	d->workers = wk;
	return wk;
}

/* The live worker of @cr (chrooted into @root unless NULL) for the
 * current configuration; started when there is none.  Under d->lock. */
static struct berth_dworker *worker_for(struct berth_daemon *d,
					const struct berth_dcred *cr,
					const char *root)
{
	struct berth_dworker *wk;

	for (wk = d->workers; wk; wk = wk->next)
		if (wk->ctl >= 0 && wk->cfg == d->cfg &&
		    cred_eq(&wk->cred, cr) && !wk->chroot == !root &&
		    (!root || !strcmp(wk->chroot, root)))
			return wk;
	return spawn(d, cr, root);
}

/* A module's worker: its credentials, and its path with use chroot when
 * a real chroot keeps berth whole there (a proc filesystem mounted at
 * PATH/proc); otherwise every path is confined beneath the module, as in
 * the main process. */
static const char *chroot_of(const struct berth_dmod *m)
{
	char proc[PATH_MAX];

	if (!m->use_chroot ||
	    snprintf(proc, sizeof(proc), "%s/proc", m->path) >=
		    (int)sizeof(proc) ||
	    !proc_at(proc))
		return NULL;
	return m->path;
}

void berth__dworkers_start(struct berth_daemon *d)
{
	struct berth_dworker *wk;
	size_t i;

	pthread_mutex_lock(&d->lock);
	/* Workers of an older configuration take no new connections. */
	for (wk = d->workers; wk; wk = wk->next)
		if (wk->cfg != d->cfg && wk->ctl >= 0) {
			close(wk->ctl);
			wk->ctl = -1;
		}
	/* Those of one module each (use chroot) start at their first
	 * connection. */
	for (i = 0; i < d->cfg->n_mods; i++)
		if (d->cfg->mods[i].run == BERTH_DRUN_WORKER &&
		    !chroot_of(&d->cfg->mods[i]))
			(void)worker_for(d, &d->cfg->mods[i].cred, NULL);
	pthread_mutex_unlock(&d->lock);
}

/* Send @c to @wk with the pipe's write end @pw; 0 or -errno. */
static int send_conn(struct berth_dworker *wk, struct berth_dconn *c, int pw)
{
	struct hand_msg m = {0};
	union {
		char buf[CMSG_SPACE(5 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {&m, sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *cm;
	int fds[5], n = 0;
	int64_t left = c->deadline_ms - now_ms();

	memset(&u, 0, sizeof(u));
	m.magic = HAND_MAGIC;
	m.two_fds = c->out_fd != c->in_fd;
	m.ro = c->ro;
	m.protocol = c->protocol;
	m.left_ms = left > 0 ? left : 1;
	snprintf(m.mod, sizeof(m.mod), "%s", c->mod->name);
	snprintf(m.addr, sizeof(m.addr), "%s", c->addr);
	snprintf(m.host, sizeof(m.host), "%s", c->host);
	snprintf(m.user, sizeof(m.user), "%s", c->user);
	fds[n++] = c->in_fd;
	if (m.two_fds)
		fds[n++] = c->out_fd;
	m.incl = c->from_fd[0] >= 0;
	m.excl = c->from_fd[1] >= 0;
	if (m.incl)
		fds[n++] = c->from_fd[0];
	if (m.excl)
		fds[n++] = c->from_fd[1];
	fds[n++] = pw;
	mh.msg_control = u.buf;
	mh.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
	if (sendmsg(wk->ctl, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) !=
	    (ssize_t)sizeof(m))
		return -errno;
	return 0;
}

/* The end of a connection whose worker died: our side finished (the
 * client reads the end of the stream: rsync's "connection unexpectedly
 * closed"), what it still sends read and dropped until it closes, for
 * a few seconds at most. */
static void end_gently(int fd)
{
	int64_t until = now_ms() + 5000;
	char buf[16384];

	shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int64_t left = until - now_ms();

		if (left <= 0 || poll(&pf, 1, (int)left) <= 0 ||
		    read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
}

int berth__dworkers_handoff(struct berth_dconn *c)
{
	struct berth_daemon *d = c->d;
	struct berth_dworker *wk;
	int p[2], ret = -EAGAIN, tries;
	int32_t code = 0;
	char t[64];
	ssize_t r;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pthread_mutex_lock(&d->lock);
	for (tries = 0; tries < 2 && ret < 0 && !d->stopping; tries++) {
		wk = worker_for(d, &c->mod->cred, chroot_of(c->mod));
		if (!wk)
			break;
		ret = send_conn(wk, c, p[1]);
		if (ret < 0) {
			/* Dead or stuck: take no more; SIGCHLD reaps it. */
			berth__dlog(d, "worker [%d] for %s: %s", (int)wk->pid,
				    cred_text(&wk->cred, t, sizeof(t)),
				    strerror(-ret));
			close(wk->ctl);
			wk->ctl = -1;
		}
	}
	if (ret == 0) {
		c->handed = true;
		d->n_early--;
	}
	pthread_mutex_unlock(&d->lock);
	close(p[1]);
	for (int i = 0; i < 2; i++)
		if (c->from_fd[i] >= 0) {
			close(c->from_fd[i]);
			c->from_fd[i] = -1;
		}
	if (ret < 0) {
		close(p[0]);
		return -1;
	}
	/* Our copy of the client's socket stays open until the worker
	 * reports: were the worker to die, its close would reset a
	 * connection with data unread (the client: "error in socket IO");
	 * we end it as rsync's dying child does instead. */
	do
		r = read(p[0], &code, sizeof(code));
	while (r < 0 && errno == EINTR);
	close(p[0]);
	pthread_mutex_lock(&d->lock);
	d->n_early++;
	pthread_mutex_unlock(&d->lock);
	if (r != sizeof(code)) {
		berth__dlog(d,
			    "%s (%s) module %s: its worker ended under the "
			    "session",
			    c->host, c->addr, c->mod->name);
		if (c->socket)
			end_gently(c->in_fd);
		return 12; /* rsync's error in the data stream */
	}
	return code;
}

static void reaped(struct berth_daemon *d, struct berth_dworker *wk, int status)
{
	char t[64];

	cred_text(&wk->cred, t, sizeof(t));
	if (WIFSIGNALED(status))
		berth__dlog(d, "worker [%d] for %s killed by signal %d",
			    (int)wk->pid, t, WTERMSIG(status));
	else if (WEXITSTATUS(status) || wk->ctl >= 0)
		berth__dlog(d, "worker [%d] for %s exited with %d",
			    (int)wk->pid, t, WEXITSTATUS(status));
}

void berth__dworkers_reap(struct berth_daemon *d)
{
	struct berth_dworker **pp, *wk;
	struct berth_dcred again[16];
	char *again_root[16];
	int n_again = 0, status, i;

	pthread_mutex_lock(&d->lock);
	for (pp = &d->workers; (wk = *pp);) {
		if (waitpid(wk->pid, &status, WNOHANG) != wk->pid) {
			pp = &wk->next;
			continue;
		}
		reaped(d, wk, status);
		/* Still needed: start it again, unless it died at once
		 * (then at the next connection for it). */
		if (wk->ctl >= 0 && wk->cfg == d->cfg && !d->stopping &&
		    now_ms() - wk->started_ms >= RESTART_AFTER_MS &&
		    n_again < 16) {
			again_root[n_again] = wk->chroot;
			wk->chroot = NULL;
			again[n_again++] = wk->cred;
		}
		*pp = wk->next;
		worker_free(wk);
	}
	for (i = 0; i < n_again; i++) {
		(void)worker_for(d, &again[i], again_root[i]);
		free(again_root[i]);
	}
	pthread_mutex_unlock(&d->lock);
}

void berth__dworkers_stop(struct berth_daemon *d)
{
	struct berth_dworker *wk;

	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	for (wk = d->workers; wk; wk = wk->next)
		kill(wk->pid, SIGTERM);
	pthread_mutex_unlock(&d->lock);
}

void berth__dworkers_wait(struct berth_daemon *d, int ms)
{
	int64_t until = now_ms() + ms;
	struct berth_dworker *wk;

	/* No more connections: each ends with its last session. */
	pthread_mutex_lock(&d->lock);
	for (wk = d->workers; wk; wk = wk->next)
		if (wk->ctl >= 0) {
			close(wk->ctl);
			wk->ctl = -1;
		}
	pthread_mutex_unlock(&d->lock);
	for (;;) {
		berth__dworkers_reap(d);
		pthread_mutex_lock(&d->lock);
		wk = d->workers;
		pthread_mutex_unlock(&d->lock);
		if (!wk || now_ms() > until)
			break;
		usleep(20000);
	}
	pthread_mutex_lock(&d->lock);
	while ((wk = d->workers)) {
		kill(wk->pid, SIGKILL);
		waitpid(wk->pid, NULL, 0);
		d->workers = wk->next;
		worker_free(wk);
	}
	pthread_mutex_unlock(&d->lock);
}
