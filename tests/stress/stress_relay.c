/* SPDX-License-Identifier: MIT */
/*
 * `berth-stress --relay HOST CMD...`: the remote shell berth-stress gives
 * the rsync client (-e "berth-stress --relay").  Like tests/interop/rsh it
 * drops HOST and runs CMD (berth --server ...), but stands in the middle of
 * both streams so the loop can break them:
 *
 *   BERTH_STRESS_INFO=FILE  append "pid N" once CMD runs and "status S"
 *                           (the raw wait status) when it ended
 *   BERTH_STRESS_CUT=N      after N bytes from the client, close both
 *                           streams to the receiver and to the client
 *                           ("close its pipe mid-file")
 *   BERTH_STRESS_SOCK=PATH  do not run CMD: connect to the unix socket
 *                           PATH, send the argv (see stress_proc.c) and
 *                           relay to the in-process session there;
 *                           exit with the code it appended to the INFO
 *                           file ("exit N") when the stream ended
 *
 * One thread per direction, so neither side can stall the other.  Exits
 * with CMD's exit code (255 when it died of a signal or was cut), as ssh
 * does.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stress.h"

struct relay {
	int up_in, up_out; /* client -> receiver */
	int down_in, down_out; /* receiver -> client */
	int is_sock; /* up_out == down_in is a socket */
	unsigned long long cut; /* 0: never */
	int was_cut;
};

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void cut_now(struct relay *r)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	r->was_cut = 1;
	if (r->is_sock)
		shutdown(r->up_out, SHUT_RDWR);
	else
		close(r->up_out);
	/* The client's ends: replace, so the other thread's writes go
	 * nowhere and the client sees end of file now. */
	dup2(null, 1);
	dup2(null, 0);
	close(null);
}

static void *up_main(void *arg)
{
	struct relay *r = arg;
	unsigned long long total = 0;
	char buf[65536];

	for (;;) {
		ssize_t n = read(r->up_in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (r->cut && total + (unsigned long long)n >= r->cut) {
			write_all(r->up_out, buf, (size_t)(r->cut - total));
			cut_now(r);
			return NULL;
		}
		total += (unsigned long long)n;
		if (write_all(r->up_out, buf, (size_t)n) < 0)
			break;
	}
	if (r->is_sock)
		shutdown(r->up_out, SHUT_WR);
	else
		close(r->up_out);
	return NULL;
}

static void down_loop(struct relay *r)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(r->down_in, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (write_all(r->down_out, buf, (size_t)n) < 0) {
			/* The client is gone: keep draining the receiver. */
			r->down_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
		}
	}
	close(1);
}

static void info(const char *key, long v)
{
	const char *path = getenv("BERTH_STRESS_INFO");
	char line[64];
	int fd, n;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%s %ld\n", key, v);
	write_all(fd, line, (size_t)n);
	close(fd);
}

/* Socket mode: the exit code the session recorded ("exit N"), or 255. */
static int session_exit(void)
{
	const char *path = getenv("BERTH_STRESS_INFO");
	char line[64];
	int code = 255, v;
	FILE *f = path ? fopen(path, "re") : NULL;

	if (!f)
		return code;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "exit %d", &v) == 1)
			code = v;
	fclose(f);
	return code;
}

static int connect_sock(const char *path, int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uint32_t n = (uint32_t)argc, len;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), i;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	/* Header: argc, then each argument as length + bytes. */
	if (write_all(fd, &n, sizeof(n)) < 0)
		return -1;
	for (i = 0; i < argc; i++) {
		len = (uint32_t)strlen(argv[i]);
		if (write_all(fd, &len, sizeof(len)) < 0 ||
		    write_all(fd, argv[i], len) < 0)
			return -1;
	}
	return fd;
}

int stress_relay_main(int argc, char **argv)
{
	/* Static: the detached up thread may still read it after this
	 * returns, until the process exits. */
	static struct relay r = {.up_in = 0, .down_out = 1};
	const char *cut = getenv("BERTH_STRESS_CUT");
	const char *sock = getenv("BERTH_STRESS_SOCK");
	int to[2], from[2], status = 0;
	pthread_t up;
	pid_t pid;

	/* argv: --relay HOST CMD... */
	if (argc < 3) {
		fprintf(stderr, "usage: berth-stress --relay HOST CMD...\n");
		return 255;
	}
	signal(SIGPIPE, SIG_IGN);
	r.cut = cut ? strtoull(cut, NULL, 10) : 0;
	if (sock) {
		int fd = connect_sock(sock, argc - 2, argv + 2);

		if (fd < 0) {
			perror("berth-stress --relay: connect");
			return 255;
		}
		r.is_sock = 1;
		r.up_out = r.down_in = fd;
		if (pthread_create(&up, NULL, up_main, &r))
			return 255;
		pthread_detach(up);
		down_loop(&r);
		return r.was_cut ? 255 : session_exit();
	}
	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
		return 255;
	pid = fork();
	if (pid < 0)
		return 255;
	if (pid == 0) {
		dup2(to[0], 0);
		dup2(from[1], 1);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	info("pid", (long)pid);
	r.up_out = to[1];
	r.down_in = from[0];
	if (pthread_create(&up, NULL, up_main, &r))
		return 255;
	pthread_detach(up);
	down_loop(&r);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	info("status", (long)status);
	if (r.was_cut || !WIFEXITED(status))
		return 255;
	return WEXITSTATUS(status);
}
