/* SPDX-License-Identifier: MIT */
/*
 * berth daemon/ — the rsync:// front end (berth --daemon): rsyncd.conf,
 * the listener, PROXY headers, host rules, authentication and module
 * policy; every connection a session on one shared pump.  Internal to
 * daemon/ and cli/.
 */
#ifndef BERTH_DAEMON_INT_H
#define BERTH_DAEMON_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "berth.h"
#include "engine/session/session_daemon.h"

/* ------------------------------------------- rsyncd.conf (daemon_conf.c) */

struct berth_dconf_param {
	char key[48]; /* canonical: lower case, no spaces/underscores */
	char *val;
	char *where; /* "FILE line N", for messages */
};

struct berth_dconf_sect {
	char *name; /* "global" for the first */
	bool hidden; /* the defaults of an &include'd file */
	struct berth_dconf_param *p;
	size_t n, cap;
};

struct berth_dconf {
	struct berth_dconf_sect *sect; /* [0] is the global section */
	size_t n, cap, n_params;
	char err[512];
};

/* Files for &include/&merge: @list gives the files of @path (itself if a
 * file, else its entries ending in @suffix, sorted; malloc'd); @read a
 * file's whole text (malloc'd). */
struct berth_dconf_io {
	int (*list)(void *arg, const char *path, const char *suffix,
		    char ***names, size_t *n);
	int (*read)(void *arg, const char *path, char **text, size_t *len);
	void *arg;
};

/* Parse @text (named @file in messages) into @c (caller's storage);
 * 0, or -EINVAL/-ENOMEM/-BERTH_ELIMIT with c->err.  Free with
 * berth_dconf_free() either way.  @io may be NULL (no includes). */
int berth_dconf_parse(struct berth_dconf *c, const char *file, const char *text,
		      size_t len, const struct berth_dconf_io *io);
void berth_dconf_free(struct berth_dconf *c);
const struct berth_dconf_param *berth_dconf_find(
	const struct berth_dconf_sect *s, const char *key);

/* --------------------------------------- PROXY headers (daemon_proxy.c) */

struct berth_proxy_hdr {
	bool local; /* v2 LOCAL / v1 UNKNOWN: keep the socket's address */
	struct sockaddr_storage src;
	socklen_t src_len;
};

#define BERTH_PROXY_MAX 4096

/*
 * Parse a PROXY v1 or v2 header at the start of @buf (@len bytes so far).
 * Returns the header's length when complete; 0 with *@need the bytes it
 * still needs at least (never past the header's end, so the caller may
 * read exactly that many); -BERTH_EPROTO for anything else.
 */
int berth_proxy_parse(const uint8_t *buf, size_t len, size_t *need,
		      struct berth_proxy_hdr *h);

/* ------------------------------------------ parameters (daemon_params.c) */

#include <sys/types.h>

#define BERTH_DCRED_GROUPS 32

/* The credentials a module's sessions run with: user, group and the
 * supplementary groups (sorted, without duplicates, the group among
 * them). */
struct berth_dcred {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[BERTH_DCRED_GROUPS];
};

/* Where a module's sessions run (decided at load, from uid and gid). */
enum {
	BERTH_DRUN_MAIN = 0, /* as the daemon itself, in its process */
	BERTH_DRUN_WORKER, /* in the worker process of its credentials */
	BERTH_DRUN_REFUSE, /* refused per connection, as rsync refuses */
};

struct berth_dmod {
	const char *name, *path, *comment;
	/* Where its files are reached: path, or "/" in the worker process
	 * that is chrooted into path (use chroot, daemon_worker.c). */
	const char *root;
	bool read_only, write_only, list, use_chroot, strict_modes;
	bool transfer_logging, reverse_lookup, ignore_errors;
	int numeric_ids; /* -1 unset: as rsync, yes with use chroot */
	int munge_symlinks; /* -1 unset: as rsync, yes without use chroot */
	int fake_super, max_verbosity, timeout, max_connections;
	const char *auth_users, *secrets_file, *hosts_allow, *hosts_deny;
	const char *lock_file, *refuse_options, *dont_compress, *temp_dir;
	const char *log_format;
	/* incoming chmod (parsed at load, freed with the configuration) */
	struct berth_chmod *chmod;
	/* The daemon's filter rules, as given (the files read per
	 * connection, as rsync reads them). */
	const char *filter, *include_from, *include, *exclude_from, *exclude;
	/* uid and gid: where the sessions run; for BERTH_DRUN_REFUSE the
	 * client's "@ERROR: ..." text and the log's line. */
	int run;
	struct berth_dcred cred;
	char run_err[192], run_log[192];
};

/* A loaded configuration: shared by the connections that began under it
 * (reference counted), replaced whole on SIGHUP. */
struct berth_dcfg {
	atomic_int refs;
	struct berth_dconf conf;
	struct berth_dmod *mods;
	size_t n_mods;
	/* global */
	const char *motd_file, *pid_file, *log_file, *address;
	int port, proxy_protocol, timeout, listen_backlog;
	bool reverse_lookup;
};

struct berth_doverride {
	const char *config; /* --config */
	int port; /* --port, 0 none */
	const char *address, *log_file;
	int nparams;
	const char *params[32]; /* --dparam NAME=VALUE */
};

/* Load and check @path: every parameter known and supported, or an error
 * naming it (@err, @errlen).  0 and *@out (refs 1), or -errno. */
int berth_dcfg_load(const char *path, const struct berth_doverride *ov,
		    struct berth_dcfg **out, char *err, size_t errlen);
struct berth_dcfg *berth_dcfg_ref(struct berth_dcfg *c);
void berth_dcfg_unref(struct berth_dcfg *c);
const struct berth_dmod *berth_dcfg_module(const struct berth_dcfg *c,
					   const char *name);

struct berth_dfilter;
/* Module @m's filter list (NULL when it has none), its "from" files
 * read now (from @from_fd[0] for "include from", [1] for "exclude from"
 * when they are >= 0: descriptors opened by the main process, taken and
 * closed here; @from_fd may be NULL): 0, or -errno with @why naming the
 * parameter or file. */
int berth__dmod_filter(const struct berth_dmod *m, int *from_fd,
		       struct berth_dfilter **out, char *why, size_t len);

/* -------------------------------------------- host rules (daemon_access.c) */

/* rsync's "hosts allow"/"hosts deny" decision for @addr (text) and @host
 * (its name, or NULL); true if access is allowed. */
bool berth_daccess_allowed(const char *allow, const char *deny,
			   const char *addr, const char *host);

/* Make @path (a client's) look as if chrooted into the module: no
 * leading '/', no '.' components, '..' only in its first @depth
 * components (others collapse, never above the start); "." if empty.
 * Writes to @out (@cap bytes); -ENAMETOOLONG if it does not fit. */
int berth_dpath_sanitize(const char *path, int depth, char *out, size_t cap);

/* ------------------------------------------------ auth (daemon_auth.c) */

/* A new challenge for @digest (base64 text) in @out (>= 100 bytes). */
int berth_dauth_challenge(int digest, char *out, size_t cap);
/* rsync's response: base64 (unpadded) of DIGEST(secret || challenge). */
int berth_dauth_response(int digest, const char *secret, const char *challenge,
			 char *out, size_t cap);

/*
 * The whole check of a client's "USER RESPONSE" answer against the
 * module's auth users and secrets file.  Returns 0 (and *@ro: -1 module
 * default, 0 rw, 1 ro) or -EACCES with @why for the log.
 */
int berth_dauth_check(const struct berth_dmod *m, int digest,
		      const char *challenge, const char *user,
		      const char *response, int *ro, char *why, size_t len);

/* ---------------------------------------------------- the daemon */

#include <limits.h>
#include <pthread.h>

struct berth_dconn;
struct berth_dworker;

/* What the whole daemon shares: lock order d->lock, then nothing.  A
 * worker process (daemon_worker.c) has one of its own. */
struct berth_daemon {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* signalled as connections end */
	struct berth_dcfg *cfg; /* current; replaced on SIGHUP */
	struct berth_pump *pump;
	struct berth_dconn *conns; /* every live connection */
	unsigned n_conns, n_early; /* all, and those before a session */
	bool stopping;
	int log_fd; /* the log file, or -1 */
	bool log_stderr; /* no log file: stderr (foreground only) */
	const char *config_path;
	struct berth_doverride ov;
	int64_t bwlimit; /* --bwlimit KiB/s, 0 none */
	/* Worker processes, one per credentials (and configuration) in
	 * use, under lock; in a worker: its control socket. */
	struct berth_dworker *workers;
	int ctl_fd;
	bool is_worker;
	int argc; /* the command line, for starting a worker */
	char **argv;
	/* Connections per module name (max connections), under lock. */
	struct {
		char name[256];
		int count;
	} slots[64];
};

#define DCONN_MAX_ARGS 512
#define DCONN_ARG_BYTES (64 * 1024)

struct berth_dconn {
	struct berth_dconn *next, *prev; /* under d->lock */
	struct berth_daemon *d;
	struct berth_dcfg *cfg; /* a reference */
	int in_fd, out_fd;
	bool socket; /* in_fd is a socket (shutdown() wakes it) */
	bool tcp; /* in_fd is TCP: ACK at once while waiting for the peer */
	char addr[64], host[256];
	int64_t deadline_ms; /* before the session: the time left */
	const struct berth_dmod *mod;
	int slot; /* in d->slots, or -1 */
	int lock_fd; /* lock file of max connections, or -1 */
	char user[128];
	int ro; /* effective read only */
	int protocol;
	bool handed; /* its session runs in a worker process */
	struct berth_session *session; /* under d->lock while it runs */
	char *argv[DCONN_MAX_ARGS + 2];
	char argbuf[DCONN_ARG_BYTES];
	/* What the option check made (the session borrows them). */
	char dest[PATH_MAX], rel[PATH_MAX];
	char alt[20][PATH_MAX];
	char tmp[PATH_MAX], backup[PATH_MAX];
	char request[PATH_MAX];
	/* The module's rules for the session (berth_opts.dpolicy). */
	struct berth_dpolicy pol;
	char pol_rel[PATH_MAX], pol_shown[PATH_MAX + 1];
	struct berth_dfilter *filter; /* this connection's, or NULL */
	/* Handed to a worker: its "include from" and "exclude from" files,
	 * opened by the main process (or -1). */
	int from_fd[2];
};

/* daemon_conn.c: one connection from greeting to the session's end, on
 * the calling thread.  Returns the exit code of the session (or of the
 * refusal: 5 for an @ERROR before it). */
int berth__dconn_serve(struct berth_dconn *c);
/* daemon_conn.c: the part a worker process runs for a connection handed
 * to it (the module's rules, "@RSYNCD: OK", the arguments, the session);
 * c->mod, c->user, c->ro, c->protocol and c->deadline_ms set. */
int berth__dconn_session(struct berth_dconn *c);
/* daemon_conn.c: register a connection on @d (NULL when full or ending)
 * and end it (fds closed unless -1, unregistered, freed); cancel every
 * session of @d and wake the connections before theirs (under d->lock). */
struct berth_dconn *berth__dconn_new(struct berth_daemon *d, int in_fd,
				     int out_fd);
void berth__dconn_end(struct berth_dconn *c);
void berth__dconns_cancel(struct berth_daemon *d);

/* daemon_worker.c: the worker process's whole run (berth --daemon ...
 * --berth-worker=SPEC [--berth-worker-chroot=PATH], as the main process
 * starts it): @w has the command line's configuration path, overrides
 * and bandwidth limit.  Never returns. */
void berth__dworker_main(struct berth_daemon *w, const char *spec,
			 const char *chroot_path) __attribute__((noreturn));
/* The worker processes.  Start those the current
 * configuration needs (old ones end with their last session): at start-up
 * and after a reload, on the thread that runs the accept loop. */
void berth__dworkers_start(struct berth_daemon *d);
/* Hand connection @c (its module runs in a worker) to its worker and wait
 * for the session's end there; the exit code, 12 if the worker died. */
int berth__dworkers_handoff(struct berth_dconn *c);
/* SIGCHLD: reap ended workers, log them, start again those still needed.
 * SIGTERM: send it on to every worker, then reap them (bounded). */
void berth__dworkers_reap(struct berth_daemon *d);
void berth__dworkers_stop(struct berth_daemon *d);
void berth__dworkers_wait(struct berth_daemon *d, int ms);

/* daemon_check.c: the session's option check (berth_session_daemon). */
int berth__dconn_check(void *arg, struct berth_opts *o, char **argv,
		       char **more, char *why, size_t len);
/* daemon_log.c: a line to the daemon's log (printf-like, no newline
 * needed); thread-safe. */
void berth__dlog(struct berth_daemon *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The transfer log line of a committed file, in the module's format. */
void berth__dlog_file(struct berth_dconn *c, const char *op, const char *path,
		      uint64_t size, uint64_t wire_bytes);

/* berth --daemon and berth --server --daemon: the program's whole run.
 * Returns the process exit code. */
int berth_daemon_main(int argc, char **argv);

#endif /* BERTH_DAEMON_INT_H */
