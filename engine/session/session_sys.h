/* SPDX-License-Identifier: MIT */
/*
 * The session's own blocking file-system calls (session_sys.c): the
 * generator's lookups and listings, -c and copy-from-alt reads, xattr
 * reads.  They run inline on the calling thread (a hop to the pump would
 * cost more than the call on the generator's critical path), through
 * berth_pump_run_inline(), so that faults injected into the session's
 * pump reach them as they reach its submitted requests: op
 * BERTH_OP_STATX (lookups), BERTH_OP_READ (reads), BERTH_OP_OPENAT2
 * (opens beneath the destination or an alt dir), BERTH_OP_CALL
 * (directory listings, xattr reads), tagged with the session's tag.
 */
#ifndef BERTH_SESSION_SYS_H
#define BERTH_SESSION_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "engine/pump/pump.h"

struct berth_session;

/* lstat of @name beneath @dirfd (no symlink followed): 0 or -errno. */
int berth__sys_lstatat(struct berth_session *s, int dirfd, const char *name,
		       struct stat *st);
/* mkdir of @name (one component) beneath @dirfd with @mode (the umask
 * applies): 0 or -errno. */
int berth__sys_mkdirat(struct berth_session *s, int dirfd, const char *name,
		       mode_t mode);
/* pread: bytes read (0 at EOF) or -errno. */
ssize_t berth__sys_pread(struct berth_session *s, int fd, void *buf, size_t len,
			 uint64_t off);
/* openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, O_CLOEXEC added) of
 * @path below @dirfd: the fd or -errno. */
int berth__sys_open(struct berth_session *s, int dirfd, const char *path,
		    int flags);
/* A file to read (a basis, -c, a copy from an alt dir): berth__sys_open()
 * with O_RDONLY | O_NOFOLLOW, and O_NOATIME with --open-noatime where the
 * kernel permits it.  The fd or -errno. */
int berth__sys_open_read(struct berth_session *s, int dirfd, const char *path);
/* @fn(@arg), its result (>= 0 or -errno). */
ssize_t berth__sys_call(struct berth_session *s, berth_req_fn fn, void *arg);

#endif /* BERTH_SESSION_SYS_H */
