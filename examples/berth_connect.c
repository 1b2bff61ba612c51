/* SPDX-License-Identifier: MIT */
/*
 * berth-connect: the "remote shell" an rsync client uses to push into a
 * berth agent listening on a Unix socket:
 *
 *     rsync -a -e 'berth-connect /run/berth-agent.sock' src/ any:name/
 *
 * rsync runs `berth-connect SOCKET HOST rsync --server ... . name/`.  This
 * sends the command (from "rsync" on) and a status pipe to the agent, then
 * relays stdin -> socket and socket -> stdout, prints the session's
 * messages on stderr and exits with the exit code the agent reports for
 * the session (as ssh would with the remote command's stderr and exit
 * status).  See connect_proto.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "connect_proto.h"

static int send_header(int sock, int argc, char **argv, int status_wr)
{
	char buf[CONNECT_MAX_BYTES];
	size_t len = 0, n;
	struct iovec iov;
	struct msghdr mh = {0};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	int i;

	for (i = 0; i < argc; i++) {
		n = strlen(argv[i]) + 1;
		if (len + n + 1 > sizeof(buf))
			return -1;
		memcpy(buf + len, argv[i], n);
		len += n;
	}
	buf[len++] = '\0';
	iov.iov_base = buf;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	memset(&cm, 0, sizeof(cm));
	mh.msg_control = cm.b;
	mh.msg_controllen = sizeof(cm.b);
	CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
	CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
	CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &status_wr, sizeof(int));
	return sendmsg(sock, &mh, 0) == (ssize_t)len ? 0 : -1;
}

static int write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The status pipe: message lines to stderr, then NUL and the code. */
struct status {
	int fd;
	int code; /* -1 until the agent sent it */
	bool nul; /* the NUL came; the next byte is the code */
};

/* Read what the status pipe has; returns 0 at its end, 1 otherwise. */
static int read_status(struct status *st)
{
	char buf[4096];
	ssize_t n, i, text = 0;

	n = read(st->fd, buf, sizeof(buf));
	if (n < 0 && errno == EINTR)
		return 1;
	if (n <= 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (st->nul) {
			st->code = (unsigned char)buf[i];
			st->nul = false;
		} else if (buf[i] == '\0') {
			st->nul = true;
		} else {
			text++;
		}
	}
	/* Text never follows the NUL: print the text part as it is. */
	if (text > 0 && write_all(STDERR_FILENO, buf, (size_t)text) < 0) {
		/* nowhere left to say it */
	}
	return 1;
}

/* Relay until the agent closes the socket, printing its messages. */
static void relay(int sock, struct status *st)
{
	struct pollfd pfd[3] = {
		{.fd = STDIN_FILENO, .events = POLLIN},
		{.fd = sock, .events = POLLIN},
		{.fd = st->fd, .events = POLLIN},
	};
	char buf[65536];
	ssize_t n;

	for (;;) {
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if (pfd[2].revents && !read_status(st))
			pfd[2].fd = -1;
		if (pfd[0].revents) {
			n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0) {
				/* The client is done sending. */
				shutdown(sock, SHUT_WR);
				pfd[0].fd = -1;
			} else if (write_all(sock, buf, (size_t)n) < 0) {
				pfd[0].fd = -1;
			}
		}
		if (pfd[1].revents) {
			n = read(sock, buf, sizeof(buf));
			if (n <= 0)
				return;
			if (write_all(STDOUT_FILENO, buf, (size_t)n) < 0)
				return;
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct status st = {.fd = -1, .code = -1};
	int sock, status[2];

	if (argc < 4) {
		fprintf(stderr, "usage: rsync -e 'berth-connect SOCKET' "
				"SRC/ any:NAME/\n");
		return 1;
	}
	if (strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "berth-connect: socket path too long\n");
		return 1;
	}
	strcpy(sa.sun_path, argv[1]);
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "berth-connect: %s: %s\n", argv[1],
			strerror(errno));
		return 255;
	}
	if (pipe(status) < 0 ||
	    send_header(sock, argc - 3, argv + 3, status[1]) < 0) {
		fprintf(stderr, "berth-connect: cannot talk to the agent\n");
		return 255;
	}
	close(status[1]);
	st.fd = status[0];
	relay(sock, &st);
	close(sock);
	/* The rest of the messages and the verdict; nothing if it died. */
	while (read_status(&st))
		;
	if (st.code < 0) {
		fprintf(stderr, "berth-connect: the agent ended without an "
				"exit code\n");
		return 255;
	}
	return st.code;
}
