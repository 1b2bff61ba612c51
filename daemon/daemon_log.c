/* SPDX-License-Identifier: MIT */
/*
 * The daemon's log: one line per write (O_APPEND), so threads and other
 * processes sharing the file do not interleave; and the transfer log of
 * "transfer logging" in the module's "log format" (%a address, %h host,
 * %m module, %u user, %P module path, %f and %n the file, %l its length,
 * %b the bytes its data took on the wire, %o the operation, %p the
 * process id, %t the time, %% a percent sign).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon_int.h"

static void put_line(struct berth_daemon *d, const char *msg)
{
	char line[4096];
	struct tm tm;
	time_t now = time(NULL);
	size_t n;
	int fd = d->log_fd >= 0 ? d->log_fd : d->log_stderr ? 2 : -1;

	if (fd < 0)
		return;
	localtime_r(&now, &tm);
	n = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S ", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "[%d] %s",
			      (int)getpid(), msg);
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	if (line[n - 1] != '\n')
		line[n++] = '\n';
	if (write(fd, line, n) < 0) {
		/* nowhere left to say it */
	}
}

void berth__dlog(struct berth_daemon *d, const char *fmt, ...)
{
	char msg[3072];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	put_line(d, msg);
}

void berth__dlog_file(struct berth_dconn *c, const char *op, const char *path,
		      uint64_t size, uint64_t wire_bytes)
{
	const char *f = c->mod->log_format;
	char out[3072];
	size_t n = 0;

	for (; *f && n < sizeof(out) - 1; f++) {
		char tmp[PATH_MAX * 2 + 2];
		const char *s = tmp;

		if (*f != '%' || !f[1]) {
			out[n++] = *f;
			continue;
		}
		switch (*++f) {
		case 'a':
			s = c->addr;
			break;
		case 'h':
			s = c->host;
			break;
		case 'm':
			s = c->mod->name;
			break;
		case 'u':
			s = c->user;
			break;
		case 'P':
			s = c->mod->path;
			break;
		case 'f':
			/* As rsync: from the module's top. */
			if (c->pol_rel[0])
				snprintf(tmp, sizeof(tmp), "%s/%s", c->pol_rel,
					 path);
			else
				s = path;
			break;
		case 'n':
			s = path;
			break;
		case 'l':
			snprintf(tmp, sizeof(tmp), "%llu",
				 (unsigned long long)size);
			break;
		case 'b': /* the file's data as it came over the wire */
			snprintf(tmp, sizeof(tmp), "%llu",
				 (unsigned long long)wire_bytes);
			break;
		case 'o':
			s = op;
			break;
		case 'p':
			snprintf(tmp, sizeof(tmp), "%d", (int)getpid());
			break;
		case 't': {
			time_t now = time(NULL);
			struct tm tm;

			localtime_r(&now, &tm);
			strftime(tmp, sizeof(tmp), "%Y/%m/%d %H:%M:%S", &tm);
			break;
		}
		case '%':
			s = "%";
			break;
		default:
			snprintf(tmp, sizeof(tmp), "%%%c", *f);
			break;
		}
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%s", s);
		if (n >= sizeof(out))
			n = sizeof(out) - 1;
	}
	out[n] = '\0';
	put_line(c->d, out);
}
