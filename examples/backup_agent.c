/* SPDX-License-Identifier: MIT */
/*
 * A small backup agent on libberth.  It listens on a Unix socket; each
 * connection (from `rsync -e 'berth-connect SOCKET' src/ any:NAME/`) gets a
 * session of its own, all on one shared pump, writing a new snapshot
 *
 *     ROOT/NAME/<UTC time>/
 *
 * with --link-dest to NAME's previous snapshot, so unchanged files become
 * hard links into it.  A snapshot is written as ROOT/NAME/.incoming-<time>
 * and renamed to its name only when its session succeeded (exit 0, or 24:
 * files vanished at the sender); a refused, failed or cancelled push
 * leaves nothing, so the next push links against the last good snapshot.
 * Every committed file is printed from the event callback.  The client
 * chooses nothing but the options of its transfer: its DEST is replaced by
 * the snapshot, and path options that could reach outside it (--link-dest,
 * --temp-dir, ...) are dropped.  The session's messages go back to the
 * client (berth-connect prints them), as ssh carries a server's stderr;
 * exit codes are rsync's.
 *
 *     berth-backup-agent SOCKET ROOT   (SIGINT/SIGTERM: cancel and exit)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"
#include "connect_proto.h"

struct conn {
	int sock;
	int status_fd;
	char buf[CONNECT_MAX_BYTES + 1];
	char *argv[CONNECT_MAX_ARGS + 4];
	int argc;
	char name[128];
	char stamp[32]; /* the snapshot's name once it succeeded */
	char dir[PATH_MAX + 256]; /* ROOT/NAME */
	char snap[PATH_MAX + 384]; /* ROOT/NAME/.incoming-<stamp> while it
				      * runs */
	char link_dest[PATH_MAX + 640];
	struct berth_session *session;
	struct conn *next;
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* ------------------------------------------------------------ events */

static void on_committed(void *arg, const struct berth_file_event *ev)
{
	struct conn *c = arg;
	char hex[2 * 16 + 1];
	unsigned i;

	for (i = 0; i < ev->checksum_len && i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", ev->checksum[i]);
	hex[2 * i] = '\0';
	say("[%s] committed %s %llu bytes mode %o %s:%s\n", c->name, ev->path,
	    (unsigned long long)ev->size, ev->mode, ev->checksum_name, hex);
}

static void on_error(void *arg, const char *path, int err)
{
	struct conn *c = arg;

	say("[%s] error %s: %s\n", c->name, path, berth_strerror(err));
}

/* To the client, as ssh carries a server's stderr: text lines on the
 * status pipe (non-blocking: a client that does not read loses lines, the
 * session never waits for it). */
static void tell_client(struct conn *c, const char *msg)
{
	size_t len = strlen(msg);

	if (c->status_fd < 0 || len == 0)
		return;
	if (write(c->status_fd, msg, len) < 0 ||
	    (msg[len - 1] != '\n' && write(c->status_fd, "\n", 1) < 0)) {
		/* the connector is gone or not reading */
	}
}

static void on_log(void *arg, int level, const char *msg)
{
	struct conn *c = arg;

	say("[%s] %s", c->name, msg);
	if (level <= BERTH_LOG_INFO)
		tell_client(c, msg);
}

/* rsync's exit codes, named for the agent's log. */
static const char *code_name(int code)
{
	switch (code) {
	case 0:
		return "success";
	case 1:
		return "syntax or usage error";
	case 2:
		return "protocol incompatibility";
	case 3:
		return "errors selecting input/output files, dirs";
	case 4:
		return "requested action not supported";
	case 11:
		return "error in file I/O";
	case 12:
		return "error in rsync protocol data stream";
	case 20:
		return "cancelled";
	case 22:
		return "error allocating memory or starting";
	case 23:
		return "partial transfer due to error";
	case 24:
		return "some files vanished before they could be transferred";
	case 25:
		return "--max-delete stopped deletions";
	case 30:
		return "timeout";
	default:
		return "error";
	}
}

static const struct berth_session_events events = {
	.file_committed = on_committed,
	.file_error = on_error,
};

/* ------------------------------------------------------------ snapshots */

/* The client's NAME (its DEST), reduced to a safe directory name. */
static void client_name(struct conn *c)
{
	const char *dest = c->argc > 0 ? c->argv[c->argc - 1] : "";
	size_t n = 0;

	for (; *dest && n + 1 < sizeof(c->name); dest++) {
		if ((*dest >= 'a' && *dest <= 'z') ||
		    (*dest >= 'A' && *dest <= 'Z') ||
		    (*dest >= '0' && *dest <= '9') || *dest == '-' ||
		    *dest == '_')
			c->name[n++] = *dest;
	}
	if (n == 0)
		c->name[n++] = 'x';
	c->name[n] = '\0';
}

/* ROOT/NAME/.incoming-<time>, and the newest earlier snapshot for
 * --link-dest.  Names beginning with a dot (snapshots being written, or
 * left by a crash) are never a base. */
static int make_snapshot(struct conn *c, const char *root)
{
	char best[256] = "";
	struct dirent *de;
	time_t now = time(NULL);
	struct tm tm;
	DIR *d;

	snprintf(c->dir, sizeof(c->dir), "%s/%s", root, c->name);
	if (mkdir(c->dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	d = opendir(c->dir);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] != '.' && strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	}
	if (d)
		closedir(d);
	gmtime_r(&now, &tm);
	strftime(c->stamp, sizeof(c->stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int n = 0;; n++) {
		snprintf(c->snap, sizeof(c->snap), "%s/.incoming-%s.%d", c->dir,
			 c->stamp, n);
		if (mkdir(c->snap, 0755) == 0)
			break;
		if (errno != EEXIST)
			return -errno;
	}
	c->link_dest[0] = '\0';
	if (best[0])
		snprintf(c->link_dest, sizeof(c->link_dest),
			 "--link-dest=%s/%s", c->dir, best);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int type,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0 &&
	    errno != ENOENT)
		say("agent: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* The session's end: a good snapshot gets its name, a bad one goes. */
static void finish_snapshot(struct conn *c, int code)
{
	char final[sizeof(c->snap)];

	if (code == 0 || code == 24) {
		for (int n = 0;; n++) {
			if (n == 0)
				snprintf(final, sizeof(final), "%s/%s", c->dir,
					 c->stamp);
			else
				snprintf(final, sizeof(final), "%s/%s.%d",
					 c->dir, c->stamp, n);
			/* RENAME_NOREPLACE: never over another snapshot. */
			if (renameat2(AT_FDCWD, c->snap, AT_FDCWD, final,
				      RENAME_NOREPLACE) == 0) {
				snprintf(c->snap, sizeof(c->snap), "%s", final);
				return;
			}
			if (errno != EEXIST)
				break;
		}
		say("[%s] cannot name the snapshot: %s\n", c->name,
		    strerror(errno));
	}
	nftw(c->snap, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(c->snap, sizeof(c->snap), "(removed)");
}

/* Drop client options that name paths; add our --link-dest before ".". */
static void rewrite_argv(struct conn *c)
{
	static const char *const path_opts[] = {
		"--link-dest",	 "--compare-dest", "--copy-dest", "--temp-dir",
		"--partial-dir", "--backup-dir",   NULL,
	};
	char *in[CONNECT_MAX_ARGS + 4];
	int i, k, out = 0;

	/* Copy first: the new list may be one longer than the old. */
	memcpy(in, c->argv, sizeof(in));
	for (i = 0; i < c->argc; i++) {
		const char *a = in[i];
		int drop = 0;

		for (k = 0; path_opts[k]; k++) {
			size_t n = strlen(path_opts[k]);

			if (!strncmp(a, path_opts[k], n) && a[n] == '=')
				drop = 1;
			else if (!strcmp(a, path_opts[k]))
				drop = 2; /* the value is the next element */
		}
		if (drop == 2)
			i++;
		if (drop)
			continue;
		if (!strcmp(a, ".") && i == c->argc - 2 && c->link_dest[0])
			c->argv[out++] = c->link_dest;
		c->argv[out++] = in[i];
	}
	c->argc = out;
	c->argv[out] = NULL;
}

/* ------------------------------------------------------------ connections */

static int read_header(struct conn *c)
{
	c->argc = connect_recv_header(c->sock, c->buf, c->argv, &c->status_fd);
	return c->argc < 0 ? -1 : 0;
}

static struct conn *live;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;

static void done(void *arg, int result)
{
	struct conn *c = arg, **pp;
	struct berth_stats st = {.size = sizeof(st)};
	/* rsync's codes: a cancelled session is a signal's 20, one that
	 * could not start is 22. */
	int code = result == -BERTH_ECANCELLED ? 20 : result < 0 ? 22 : result;
	unsigned char end[2] = {0, (unsigned char)code};

	berth_session_stats(c->session, &st);
	finish_snapshot(c, code);
	say("[%s] session ended: exit %d (%s), %llu files, %llu bytes "
	    "literal, %llu matched, %.2f s -> %s\n",
	    c->name, code, code_name(code),
	    (unsigned long long)st.files_transferred,
	    (unsigned long long)st.bytes_literal,
	    (unsigned long long)st.bytes_matched, st.seconds_total, c->snap);
	if (write(c->status_fd, end, 2) < 0) {
		/* the connector is gone */
	}
	close(c->status_fd);
	close(c->sock);
	pthread_mutex_lock(&live_lock);
	for (pp = &live; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	berth_session_free(c->session);
	pthread_mutex_unlock(&live_lock);
	free(c);
}

static void serve(int sock, struct berth_pump *pump, const char *root)
{
	struct berth_session_opts so = {.size = sizeof(so)};
	struct conn *c = calloc(1, sizeof(*c));
	int ret;

	if (!c) {
		close(sock);
		return;
	}
	c->sock = sock;
	c->status_fd = -1;
	if (read_header(c) < 0 || c->argc < 3) {
		say("agent: bad connection header\n");
		close(sock);
		free(c);
		return;
	}
	/* Messages to the client never block a session. */
	fcntl(c->status_fd, F_SETFL, O_NONBLOCK);
	client_name(c);
	ret = make_snapshot(c, root);
	if (ret < 0) {
		char msg[8448];
		unsigned char end[2] = {0, 11}; /* rsync: file I/O */

		snprintf(msg, sizeof(msg),
			 "berth-backup-agent: cannot make a snapshot in %s: "
			 "%s\n",
			 c->dir, strerror(-ret));
		say("[%s] %s", c->name, msg);
		tell_client(c, msg);
		if (write(c->status_fd, end, 2) < 0) {
			/* the connector is gone */
		}
		close(c->status_fd);
		close(sock);
		free(c);
		return;
	}
	rewrite_argv(c);
	so.argc = c->argc;
	so.argv = c->argv;
	so.dest_dirfd = -1;
	so.dest_path = c->snap; /* the client's DEST is ignored */
	so.durability = BERTH_DURABLE_BATCH;
	so.events = &events;
	so.event_arg = c;
	so.log = on_log;
	so.log_arg = c;
	pthread_mutex_lock(&live_lock);
	if (berth_session_create(pump, &so, &c->session) < 0) {
		pthread_mutex_unlock(&live_lock);
		finish_snapshot(c, 22);
		close(c->status_fd);
		close(sock);
		free(c);
		return;
	}
	c->next = live;
	live = c;
	pthread_mutex_unlock(&live_lock);
	say("[%s] session started -> %s %s\n", c->name, c->snap,
	    c->link_dest[0] ? c->link_dest : "(first snapshot)");
	if (berth_session_start(c->session, sock, sock, done, c) < 0)
		done(c, -ENOMEM);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct berth_pump *pump;
	char root[PATH_MAX];
	sigset_t set;
	int lsock, sock, ret;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: berth-backup-agent SOCKET ROOT\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	ret = berth_pump_create(NULL, &pump);
	if (ret < 0) {
		fprintf(stderr, "agent: pump: %s\n", berth_strerror(ret));
		return 1;
	}
	say("agent: pump backend %s (%s)\n",
	    berth_pump_backend_name(berth_pump_backend(pump)),
	    berth_pump_backend_reason(pump));
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lsock, 16) < 0) {
		perror(argv[1]);
		return 1;
	}
	mkdir(argv[2], 0755);
	/* --link-dest paths must not depend on the session's directory. */
	if (!realpath(argv[2], root)) {
		perror(argv[2]);
		return 1;
	}
	say("agent: listening on %s, snapshots in %s\n", argv[1], root);

	for (;;) {
		struct pollfd pfd = {.fd = lsock, .events = POLLIN};
		struct timespec zero = {0, 0};

		/* A signal ends the agent: cancel what runs, wait, free. */
		if (sigtimedwait(&set, NULL, &zero) >= 0)
			break;
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		sock = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
		if (sock < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		serve(sock, pump, root);
	}
	pthread_mutex_lock(&live_lock);
	for (struct conn *c = live; c; c = c->next)
		berth_session_cancel(c->session);
	pthread_mutex_unlock(&live_lock);
	for (;;) {
		pthread_mutex_lock(&live_lock);
		bool idle = live == NULL;
		pthread_mutex_unlock(&live_lock);
		if (idle)
			break;
		usleep(10000);
	}
	berth_pump_free(pump);
	close(lsock);
	unlink(argv[1]);
	return 0;
}
