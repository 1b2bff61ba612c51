/* SPDX-License-Identifier: MIT */
/*
 * One rsync:// connection (rsync-protocol.md §1.2), on its own thread: an
 * optional PROXY header, the greeting and version exchange, the module
 * (or the listing), host rules, max connections, the challenge, the
 * client's arguments, then a receive session on the daemon's shared pump.
 * Everything before the session is bounded: line lengths, argument
 * counts and bytes, and the time it may take.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon_int.h"
#include "engine/platform/platform.h"
#include "protocol/protocol.h"

#define RERR_STARTCLIENT 5
#define RERR_PROTOCOL 2
#define RERR_TIMEOUT 30
#define LINE_MAX_BYTES 4096
#define MAX_CONNS 512 /* connections at once, per process */
#define MAX_EARLY 128 /* of them, before their session started */

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int put(struct berth_dconn *c, const char *s, size_t n)
{
	while (n) {
		struct pollfd p = {.fd = c->out_fd, .events = POLLOUT};
		int64_t left = c->deadline_ms - now_ms();
		ssize_t w;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -ETIMEDOUT;
		w = write(c->out_fd, s, n);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0)
			return -EPIPE;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int putf(struct berth_dconn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int putf(struct berth_dconn *c, const char *fmt, ...)
{
	char buf[LINE_MAX_BYTES];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	return put(c, buf,
		   (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Exactly @n bytes (never more: what follows belongs to the session). */
static int get(struct berth_dconn *c, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		struct pollfd pf = {.fd = c->in_fd, .events = POLLIN};
		int64_t left = c->deadline_ms - now_ms();
		ssize_t r;

		/* The client's next bytes may wait for the ACK of its last
		 * ones (Nagle); ours would go out only after 40 ms. */
		if (c->tcp)
			berth_plat_quickack(c->in_fd);
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return -ETIMEDOUT;
		r = read(c->in_fd, p, n);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -EPIPE;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A line ending in '\n' (or NUL when @nul), without it; '\r' dropped. */
static int get_line(struct berth_dconn *c, char *buf, size_t cap, bool nul)
{
	size_t n = 0;
	char ch;
	int ret;

	for (;;) {
		ret = get(c, &ch, 1);
		if (ret < 0)
			return ret;
		if (ch == '\n' || (nul && ch == '\0'))
			break;
		if (ch == '\r' && !nul)
			continue;
		if (n + 1 >= cap)
			return -BERTH_ELIMIT;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return (int)n;
}

static int refuse(struct berth_dconn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int refuse(struct berth_dconn *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)putf(c, "@ERROR: %s\n", msg);
	return RERR_STARTCLIENT;
}

static int greet(struct berth_dconn *c)
{
	char line[LINE_MAX_BYTES];
	struct berth_dgreet g;
	int ret;

	ret = putf(c, "@RSYNCD: %d.0 %s\n", BERTH_PROTO_MAX, BERTH_DAUTH_LIST);
	if (ret == 0 && c->cfg->motd_file && *c->cfg->motd_file) {
		FILE *f = fopen(c->cfg->motd_file, "re");
		size_t n;

		while (f && (n = fread(line, 1, sizeof(line), f)) > 0 &&
		       ret == 0)
			ret = put(c, line, n);
		if (f)
			fclose(f);
		if (ret == 0)
			ret = put(c, "\n", 1);
	}
	if (ret == 0)
		ret = get_line(c, line, sizeof(line), false);
	if (ret < 0)
		return ret;
	if (berth_dgreet_parse(line, &g) < 0) {
		(void)putf(c, "@ERROR: protocol startup error\n");
		return -1;
	}
	c->protocol = berth_dgreet_protocol(BERTH_PROTO_MAX, &g);
	if (c->protocol == -BERTH_EUNSUPPORTED) {
		(void)putf(c, "@ERROR: your client is speaking an "
			      "incompatible beta of protocol 30\n");
		return -1;
	}
	if (c->protocol < BERTH_PROTO_MIN) {
		(void)putf(c,
			   "@ERROR: berth speaks rsync protocols %d to %d; "
			   "your client speaks %d\n",
			   BERTH_PROTO_MIN, BERTH_PROTO_MAX, g.version);
		return -1;
	}
	/* The digest for a challenge, kept in ro until it is needed. */
	c->ro = berth_dauth_choose(&g, c->protocol);
	return 0;
}

static void listing(struct berth_dconn *c)
{
	size_t i;

	for (i = 0; i < c->cfg->n_mods; i++)
		if (c->cfg->mods[i].list)
			(void)putf(c, "%-15s\t%s\n", c->cfg->mods[i].name,
				   c->cfg->mods[i].comment);
	(void)putf(c, "@RSYNCD: EXIT\n");
}

/* max connections: an in-process count per module name, and slots of
 * the lock file when one is named (shared with other daemons, rsync's
 * too: one 4-byte record per slot, locked while a client holds it). */
static int claim(struct berth_dconn *c)
{
	struct berth_daemon *d = c->d;
	int max = c->mod->max_connections, i, free_i = -1, ret = 0;

	if (max == 0)
		return 0;
	if (max < 0)
		return -EUSERS;
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < (int)(sizeof(d->slots) / sizeof(d->slots[0])); i++) {
		if (d->slots[i].count &&
		    !strcmp(d->slots[i].name, c->mod->name))
			break;
		if (!d->slots[i].count && free_i < 0)
			free_i = i;
	}
	if (i == (int)(sizeof(d->slots) / sizeof(d->slots[0])))
		i = free_i;
	if (i < 0 || d->slots[i].count >= max) {
		ret = -EUSERS;
	} else {
		snprintf(d->slots[i].name, sizeof(d->slots[i].name), "%s",
			 c->mod->name);
		d->slots[i].count++;
		c->slot = i;
	}
	pthread_mutex_unlock(&d->lock);
	if (ret < 0 || !c->mod->lock_file)
		return ret;
	c->lock_fd = open(c->mod->lock_file, O_RDWR | O_CREAT | O_CLOEXEC,
			  0600);
	if (c->lock_fd < 0)
		return -errno;
	for (i = 0; i < max; i++) {
		struct flock fl = {.l_type = F_WRLCK,
				   .l_whence = SEEK_SET,
				   .l_start = (off_t)i * 4,
				   .l_len = 4};

		if (fcntl(c->lock_fd, F_OFD_SETLK, &fl) == 0)
			return 0;
	}
	return -EUSERS;
}

static void release(struct berth_dconn *c)
{
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	c->lock_fd = -1;
	if (c->slot < 0)
		return;
	pthread_mutex_lock(&c->d->lock);
	c->d->slots[c->slot].count--;
	pthread_mutex_unlock(&c->d->lock);
	c->slot = -1;
}

static int authenticate(struct berth_dconn *c, int digest)
{
	char challenge[128], line[LINE_MAX_BYTES], why[256];
	char *user, *resp;
	int ro;

	if (!c->mod->auth_users || !*c->mod->auth_users)
		return 0;
	if (digest < 0)
		return refuse(c,
			      "your client does not support one of our "
			      "daemon-auth checksums: %s",
			      BERTH_DAUTH_LIST);
	if (berth_dauth_challenge(digest, challenge, sizeof(challenge)) < 0 ||
	    putf(c, "@RSYNCD: AUTHREQD %s\n", challenge) < 0)
		return -1;
	if (get_line(c, line, sizeof(line), false) < 0 ||
	    berth_dauth_split(line, &user, &resp) < 0) {
		berth__dlog(c->d,
			    "auth failed on module %s from %s (%s): invalid "
			    "challenge response",
			    c->mod->name, c->host, c->addr);
		return refuse(c, "auth failed on module %s", c->mod->name);
	}
	if (berth_dauth_check(c->mod, digest, challenge, user, resp, &ro, why,
			      sizeof(why)) < 0) {
		berth__dlog(c->d,
			    "auth failed on module %s from %s (%s) for %s: %s",
			    c->mod->name, c->host, c->addr, user, why);
		return refuse(c, "auth failed on module %s", c->mod->name);
	}
	snprintf(c->user, sizeof(c->user), "%s", user);
	if (ro >= 0)
		c->ro = ro;
	return 0;
}

/* What the module's rules need before the session: the filter list (its
 * files read now, as rsync reads them per connection), and with munged
 * symlinks no "/rsyncd-munged" directory (a munged link would lead into
 * it; rsync refuses the module then). */
static int module_rules(struct berth_dconn *c)
{
	const struct berth_dmod *m = c->mod;
	char why[512], dir[PATH_MAX];
	bool munge = m->munge_symlinks < 0 ? !m->use_chroot : m->munge_symlinks;
	struct stat st;

	if (berth__dmod_filter(m, c->d->is_worker ? c->from_fd : NULL,
			       &c->filter, why, sizeof(why)) < 0) {
		berth__dlog(c->d, "module %s: %s", m->name, why);
		return refuse(c, "module %s: bad filter rules -- contact admin",
			      m->name);
	}
	/* rsync looks where a chroot puts its "/": the module with one. */
	snprintf(dir, sizeof(dir), "%s/rsyncd-munged",
		 m->use_chroot && strcmp(m->root, "/") ? m->root : "");
	if (munge && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
		berth__dlog(c->d,
			    "Symlink munging is unsafe when a %s directory "
			    "exists.",
			    dir);
		return refuse(c, "daemon security issue -- contact admin");
	}
	return 0;
}

/* For a worker: the module's "include from" and "exclude from" files,
 * opened here as rsync reads them (before its chroot and setuid). */
static int open_from_files(struct berth_dconn *c)
{
	const char *f[2] = {c->mod->include_from, c->mod->exclude_from};
	const char *what[2] = {"include from", "exclude from"};

	for (int i = 0; i < 2; i++) {
		if (!f[i] || !*f[i])
			continue;
		c->from_fd[i] = open(f[i], O_RDONLY | O_CLOEXEC);
		if (c->from_fd[i] < 0) {
			berth__dlog(c->d, "module %s: %s = %s: %s",
				    c->mod->name, what[i], f[i],
				    strerror(errno));
			return refuse(c,
				      "module %s: bad filter rules -- contact "
				      "admin",
				      c->mod->name);
		}
	}
	return 0;
}

/* The client's arguments: strings until an empty one, NUL-terminated
 * from protocol 30, newline-terminated before. */
static int read_args(struct berth_dconn *c)
{
	size_t used = 0;
	int argc = 0, n;

	c->argv[argc++] = (char *)"rsyncd";
	for (;;) {
		if (argc > DCONN_MAX_ARGS || used >= sizeof(c->argbuf))
			return -BERTH_ELIMIT;
		n = get_line(c, c->argbuf + used, sizeof(c->argbuf) - used,
			     c->protocol >= 30);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		c->argv[argc++] = c->argbuf + used;
		used += (size_t)n + 1;
	}
	c->argv[argc] = NULL;
	return argc;
}

static void on_file(void *arg, const struct berth_file_event *ev)
{
	struct berth_dconn *c = arg;

	berth__dlog_file(c, "recv", ev->path, ev->size, ev->wire_bytes);
}

static void session_log(void *arg, int level, const char *msg)
{
	struct berth_dconn *c = arg;

	(void)level;
	berth__dlog(c->d, "%s", msg);
}

static int run_session(struct berth_dconn *c, int argc)
{
	struct berth_session_events ev = {0};
	struct berth_session_daemon hook = {c->protocol, berth__dconn_check, c};
	struct berth_session_opts so = {0};
	struct berth_session *s;
	int ret;

	so.argc = argc;
	so.argv = c->argv;
	so.dest_dirfd = -1;
	so.daemon = &hook;
	so.log = session_log;
	so.log_arg = c;
	if (c->mod->transfer_logging) {
		ev.file_committed = on_file;
		so.events = &ev;
		so.event_arg = c;
	}
	ret = berth_session_create(c->d->pump, &so, &s);
	if (ret < 0)
		return 22;
	pthread_mutex_lock(&c->d->lock);
	c->session = s;
	c->d->n_early--;
	if (c->d->stopping)
		berth_session_cancel(s);
	pthread_mutex_unlock(&c->d->lock);
	ret = berth_session_run(s, c->in_fd, c->out_fd);
	pthread_mutex_lock(&c->d->lock);
	c->session = NULL;
	c->d->n_early++;
	pthread_mutex_unlock(&c->d->lock);
	berth_session_free(s);
	return ret == -BERTH_ECANCELLED ? 20 : ret;
}

/* A connection that ends before its session: a client that stopped
 * talking past the timeout ends as rsync's daemon ends it (30, "io
 * timeout"); anything else as a failed start (5). */
static int ended_early(struct berth_dconn *c, int err)
{
	if (err != -ETIMEDOUT)
		return RERR_STARTCLIENT;
	berth__dlog(c->d, "%s (%s): io timeout after %d seconds -- exiting",
		    c->host, c->addr,
		    c->cfg->timeout > 0 ? c->cfg->timeout : 60);
	return RERR_TIMEOUT;
}

int berth__dconn_session(struct berth_dconn *c)
{
	int argc, ret;

	ret = module_rules(c);
	if (ret == 0 && putf(c, "@RSYNCD: OK\n") < 0)
		ret = -1;
	argc = ret == 0 ? read_args(c) : -1;
	if (ret == 0 && argc == -ETIMEDOUT) {
		ret = ended_early(c, argc);
	} else if (ret == 0 && argc < 0) {
		berth__dlog(c->d, "%s (%s): bad arguments", c->host, c->addr);
		ret = RERR_PROTOCOL;
	}
	if (ret == 0) {
		berth__dlog(c->d, "connect from %s (%s) to module %s%s%s",
			    c->host, c->addr, c->mod->name,
			    c->user[0] ? " as " : "", c->user);
		ret = run_session(c, argc);
		berth__dlog(c->d, "%s (%s) module %s: %s %s (exit %d)", c->host,
			    c->addr, c->mod->name,
			    c->request[0] ? c->request : "-",
			    ret ? "failed" : "done", ret);
	}
	berth__dfilter_free(c->filter);
	c->filter = NULL;
	return ret < 0 ? RERR_STARTCLIENT : ret;
}

int berth__dconn_serve(struct berth_dconn *c)
{
	char line[LINE_MAX_BYTES];
	int digest, ret;

	c->slot = -1;
	c->lock_fd = -1;
	c->deadline_ms = now_ms() +
			 (c->cfg->timeout > 0 ? c->cfg->timeout : 60) * 1000;
	ret = greet(c);
	if (ret < 0)
		return ended_early(c, ret);
	digest = c->ro;
	c->ro = 0;
	ret = get_line(c, line, sizeof(line), false);
	if (ret < 0)
		return ended_early(c, ret);
	if (!line[0] || !strcmp(line, "#list")) {
		listing(c);
		return 0;
	}
	if (line[0] == '#')
		return refuse(c, "Unknown command '%s'", line);
	c->mod = berth_dcfg_module(c->cfg, line);
	if (!c->mod)
		return refuse(c, "Unknown module '%s'", line);
	if (!berth_daccess_allowed(c->mod->hosts_allow, c->mod->hosts_deny,
				   c->addr, c->host)) {
		berth__dlog(c->d, "rsync denied on module %s from %s (%s)",
			    c->mod->name, c->host, c->addr);
		return refuse(c, "access denied to %s from %s (%s)",
			      c->mod->name, c->host, c->addr);
	}
	ret = claim(c);
	if (ret < 0) {
		char n[16];

		release(c);
		snprintf(n, sizeof(n), "%d", c->mod->max_connections);
		if (ret != -EUSERS)
			return refuse(c, "failed to open lock file %s : %s",
				      c->mod->lock_file, strerror(-ret));
		return refuse(c,
			      "max connections (%s) reached -- try again "
			      "later",
			      n);
	}
	c->ro = c->mod->read_only;
	ret = authenticate(c, digest);
	if (ret == 0 && c->mod->run == BERTH_DRUN_REFUSE) {
		berth__dlog(c->d, "module %s: %s", c->mod->name,
			    c->mod->run_log);
		ret = refuse(c, "%s", c->mod->run_err);
	} else if (ret == 0 && c->mod->run == BERTH_DRUN_WORKER) {
		ret = open_from_files(c);
		if (ret == 0)
			ret = berth__dworkers_handoff(c); /* its exit code */
		if (ret < 0) {
			/* No worker took it (none could be started, or the
			 * daemon is ending): the client is told. */
			berth__dlog(c->d, "%s (%s) module %s: no worker",
				    c->host, c->addr, c->mod->name);
			ret = refuse(c, "no worker process for module %s",
				     c->mod->name);
		}
	} else if (ret == 0) {
		ret = berth__dconn_session(c);
	}
	release(c);
	return ret < 0 ? RERR_STARTCLIENT : ret;
}

/* ----------------------------------- the daemon's list of connections */

struct berth_dconn *berth__dconn_new(struct berth_daemon *d, int in_fd,
				     int out_fd)
{
	struct berth_dconn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->d = d;
	c->from_fd[0] = c->from_fd[1] = -1;
	c->in_fd = in_fd;
	c->out_fd = out_fd;
	c->tcp = berth_plat_is_tcp(in_fd);
	pthread_mutex_lock(&d->lock);
	if (d->stopping || d->n_conns >= MAX_CONNS || d->n_early >= MAX_EARLY) {
		pthread_mutex_unlock(&d->lock);
		free(c);
		return NULL;
	}
	c->cfg = berth_dcfg_ref(d->cfg);
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	d->n_conns++;
	d->n_early++;
	pthread_mutex_unlock(&d->lock);
	return c;
}

void berth__dconn_end(struct berth_dconn *c)
{
	struct berth_daemon *d = c->d;

	for (int i = 0; i < 2; i++)
		if (c->from_fd[i] >= 0)
			close(c->from_fd[i]);
	/* Out of the list first: berth__dconns_cancel() (under the lock)
	 * must never shut down a number closed and reused since. */
	pthread_mutex_lock(&d->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	d->n_conns--;
	d->n_early--;
	pthread_cond_broadcast(&d->idle);
	pthread_mutex_unlock(&d->lock);
	if (c->in_fd >= 0)
		close(c->in_fd);
	if (c->out_fd >= 0 && c->out_fd != c->in_fd)
		close(c->out_fd);
	berth_dcfg_unref(c->cfg);
	free(c);
}

void berth__dconns_cancel(struct berth_daemon *d)
{
	struct berth_dconn *c;

	d->stopping = true;
	for (c = d->conns; c; c = c->next) {
		if (c->session)
			berth_session_cancel(c->session);
		else if (c->socket && !c->handed && c->in_fd >= 0)
			shutdown(c->in_fd, SHUT_RDWR);
	}
}
