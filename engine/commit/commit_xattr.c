/* SPDX-License-Identifier: MIT */
/*
 * Extended attributes of one item (-X), on the commit thread: list the
 * names the item has, set every wanted attribute, remove the names in
 * reach that are not wanted -- rsync's order and rule (xattrs.c,
 * rsync_xal_set).  Each step is one pump request on the item's fd, which
 * may be an O_PATH fd (symlinks, nodes, items found by name): the pump's
 * xattr ops reach those through /proc/self/fd.
 *
 * A failing attribute does not fail the item (rsync reports it and goes
 * on, and so does the transfer): it is reported as an EV_XATTR event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/commit/commit_int.h"

enum { XJ_SIZE, XJ_LIST, XJ_SET, XJ_REMOVE };

#define XJ_LIST_SLACK 256 /* room for names added between size and list */

static void xattr_event(struct berth_commit *c, struct commit_xattr_job *j,
			int op, const char *name, int err)
{
	if (c->cancelling)
		return; /* the stage is going away: not the item's fault */
	struct berth_commit_event ev = {.kind = BERTH_COMMIT_EV_XATTR,
					.err = err,
					.path = j->path[0] ? j->path : ".",
					.user = j->user,
					.xattr = name,
					.xattr_op = op};

	if (c->cb)
		c->cb(c->cb_arg, &ev);
}

/* Names the receiver may touch (rsync: user_only, or all but system.). */
static int in_reach(const struct berth_commit_xattrs *w, const char *name)
{
	if (w->reach)
		return w->reach(w->reach_arg, name);
	if (w->user_only)
		return strncmp(name, "user.", 5) == 0;
	return strncmp(name, "system.", 7) != 0;
}

/* --fake-super keeps these of its own beside the item's (rsync keeps
 * %stat; %aacl and %dacl it sets again right after). */
static int fake_own(const struct berth_commit *c, const char *name)
{
	return c->o.fake_super && (!strcmp(name, "user.rsync.%stat") ||
				   !strcmp(name, "user.rsync.%aacl") ||
				   !strcmp(name, "user.rsync.%dacl"));
}

static int wanted(const struct berth_commit_xattrs *w, const char *name)
{
	for (uint32_t i = 0; i < w->count; i++)
		if (strcmp(w->items[i].name, name) == 0)
			return 1;
	return 0;
}

static void xj_step(struct berth_commit *c, struct commit_xattr_job *j);

static void xj_io_done(struct berth_commit *c, struct commit_io *io)
{
	struct commit_xattr_job *j = commit_container_of(
		io, struct commit_xattr_job, io);
	int res = (int)io->res;

	switch (j->step) {
	case XJ_SIZE:
		if (res == -EOPNOTSUPP) {
			/* No xattrs here: nothing to remove (setting will say
			 * why it fails). */
			j->names_len = 0;
			j->step = XJ_SET;
		} else if (res < 0) {
			xattr_event(c, j, BERTH_COMMIT_XATTR_LIST, NULL, res);
			j->done(c, j);
			return;
		} else if (res == 0) {
			j->names_len = 0;
			j->step = XJ_SET;
		} else {
			size_t need = (size_t)res + XJ_LIST_SLACK;

			if (need > j->names_cap) {
				char *n = realloc(j->names, need);

				if (!n) {
					xattr_event(c, j,
						    BERTH_COMMIT_XATTR_LIST,
						    NULL, -ENOMEM);
					j->done(c, j);
					return;
				}
				j->names = n;
				j->names_cap = need;
			}
			j->step = XJ_LIST;
		}
		break;
	case XJ_LIST:
		if (res == -ERANGE && ++j->tries < 4) {
			j->step = XJ_SIZE; /* it grew meanwhile */
		} else if (res < 0) {
			xattr_event(c, j, BERTH_COMMIT_XATTR_LIST, NULL, res);
			j->done(c, j);
			return;
		} else {
			j->names_len = (size_t)res;
			/* Only whole names count. */
			while (j->names_len && j->names[j->names_len - 1])
				j->names_len--;
			j->step = XJ_SET;
		}
		break;
	case XJ_SET:
		if (res < 0)
			xattr_event(c, j, BERTH_COMMIT_XATTR_SET,
				    j->want->items[j->i].name, res);
		j->i++;
		break;
	case XJ_REMOVE:
		if (res < 0 && res != -ENODATA)
			xattr_event(c, j, BERTH_COMMIT_XATTR_REMOVE,
				    j->names + j->off, res);
		j->off += strlen(j->names + j->off) + 1;
		break;
	}
	xj_step(c, j);
}

static void xj_step(struct berth_commit *c, struct commit_xattr_job *j)
{
	struct berth_req *req = &j->io.req;
	const struct berth_commit_xattrs *w = j->want;

	if (c->cancelling) {
		j->done(c, j);
		return;
	}
	switch (j->step) {
	case XJ_SIZE:
		berth_prep_flistxattr(req, j->fd, NULL, 0);
		break;
	case XJ_LIST:
		berth_prep_flistxattr(req, j->fd, j->names, j->names_cap);
		break;
	case XJ_SET:
		while (j->i < w->count && !w->items[j->i].value)
			j->i++;
		if (j->i < w->count) {
			berth_prep_fsetxattr(req, j->fd, w->items[j->i].name,
					     w->items[j->i].value,
					     w->items[j->i].len, 0);
			break;
		}
		j->step = XJ_REMOVE;
		/* fall through */
	case XJ_REMOVE:
		while (j->off < j->names_len &&
		       (!in_reach(w, j->names + j->off) ||
			wanted(w, j->names + j->off) ||
			fake_own(c, j->names + j->off)))
			j->off += strlen(j->names + j->off) + 1;
		if (j->off >= j->names_len) {
			j->done(c, j);
			return;
		}
		berth_prep_fremovexattr(req, j->fd, j->names + j->off);
		break;
	}
	berth__commit_submit(c, &j->io, xj_io_done, j->tag);
}

void berth__commit_xattr_run(struct berth_commit *c, struct commit_xattr_job *j,
			     int fd,
			     void (*done)(struct berth_commit *,
					  struct commit_xattr_job *))
{
	j->fd = fd;
	j->done = done;
	j->step = XJ_SIZE;
	j->tries = 0;
	j->i = 0;
	j->off = 0;
	j->names_len = 0;
	xj_step(c, j);
}

void berth__commit_xattr_release(struct commit_xattr_job *j)
{
	free(j->names);
	j->names = NULL;
	j->names_cap = 0;
}
