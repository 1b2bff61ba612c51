/* SPDX-License-Identifier: MIT */
/*
 * berth's mark on its temp names.  A file is written under rsync's temp
 * name ".NAME.XXXXXX" beside its final name; berth appends "~", the
 * writing process's id in base 36 and a 4-character check of all that,
 * so that a later session can tell the temp files of a berth that died
 * (SIGKILL, a power cut) from anything else and remove them.
 */
#ifndef BERTH_TMPNAME_H
#define BERTH_TMPNAME_H

#include <stddef.h>

/* Bytes the mark adds at most: "~", 6 base-36 digits, the check. */
#define BERTH_TMPNAME_MARK_MAX 11

/*
 * Append the mark of this process to the temp name @out[0..@len) (which
 * has room for BERTH_TMPNAME_MARK_MAX more bytes and the NUL).  Returns
 * the new length.
 */
size_t berth_tmpname_mark(char *out, size_t len);

/* The process id in berth's mark on @name, or 0 when @name does not carry
 * a valid one.  Pure. */
long berth_tmpname_owner(const char *name);

#endif /* BERTH_TMPNAME_H */
