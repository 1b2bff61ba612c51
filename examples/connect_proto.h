/* SPDX-License-Identifier: MIT */
/*
 * The tiny framing between berth-connect (the client's "remote shell") and
 * an agent on a Unix socket: first the server argv as NUL-terminated
 * strings ended by an empty one, sent with one SCM_RIGHTS fd (the write end
 * of the status pipe); then the raw rsync streams in both directions.
 *
 * The status pipe carries what ssh would carry on stderr and as the exit
 * status: the session's message lines (text, each ending in a newline, no
 * NUL), which berth-connect prints on its stderr as they come, then a NUL
 * and one byte, the session's rsync exit code.
 */
#ifndef BERTH_CONNECT_PROTO_H
#define BERTH_CONNECT_PROTO_H

#include <string.h>
#include <sys/socket.h>

#define CONNECT_MAX_ARGS 256
#define CONNECT_MAX_BYTES 65536

/*
 * Agent side: read the header from @sock into @buf (CONNECT_MAX_BYTES + 1
 * bytes), pointing @argv (CONNECT_MAX_ARGS + 1 entries, NULL-terminated) at
 * the strings and taking the status fd.  Returns argc, or -1 for a bad
 * header (nothing may follow the terminator in the same message: the
 * connector sends the header alone, before any rsync data).
 */
static inline int connect_recv_header(int sock, char *buf, char **argv,
				      int *status_fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = {buf, CONNECT_MAX_BYTES};
	struct msghdr mh = {0};
	struct cmsghdr *h;
	size_t at = 0;
	ssize_t n;
	int argc = 0;

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.b;
	mh.msg_controllen = sizeof(cm.b);
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return -1;
	h = CMSG_FIRSTHDR(&mh);
	if (!h || h->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(status_fd, CMSG_DATA(h), sizeof(int));
	buf[n] = '\0';
	while (at < (size_t)n && buf[at] && argc < CONNECT_MAX_ARGS) {
		argv[argc++] = buf + at;
		at += strlen(buf + at) + 1;
	}
	argv[argc] = NULL;
	return at < (size_t)n && buf[at] == '\0' && at + 1 == (size_t)n ? argc
									: -1;
}

#endif
