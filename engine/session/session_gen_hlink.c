/* SPDX-License-Identifier: MIT */
/*
 * The generator's hard links (-H): groups by the sender's dev/ino, the
 * leader transferred, followers linked to it once it is written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_sys.h"
#include "engine/session/session_gen_int.h"

/*
 * -H: every member of a hard-link group points at the group's leader, the
 * member transferred (the last in sorted order, as rsync picks it when
 * none exists yet); the others are linked to it once it is committed.
 */
int berth__gen_hlink_groups(struct gen *g)
{
	const struct berth_flist *fl = g->s->lst.fl;
	int32_t i, key;

	g->hl_leader = malloc(fl->count * sizeof(*g->hl_leader) + 1);
	if (!g->hl_leader)
		return -ENOMEM;
	/* Pass 1: leader[key] = last member of the group keyed by the
	 * first member's ndx.  Pass 2: every member learns it. */
	for (i = 0; i < (int32_t)fl->count; i++)
		g->hl_leader[i] = -1;
	for (i = 0; i < (int32_t)fl->count; i++) {
		const struct berth_file *f = &fl->files[i];

		if (!(f->flags & BERTH_FILE_HLINKED) || !S_ISREG(f->mode) ||
		    (f->flags & BERTH_FILE_INACTIVE))
			continue;
		key = fl->hlink && fl->hlink[i] >= 0 ? fl->hlink[i] : i;
		if (key >= (int32_t)fl->count)
			return -BERTH_EPROTO;
		if (g->hl_leader[key] < i)
			g->hl_leader[key] = i;
		g->any_hlinks = true;
	}
	for (i = 0; i < (int32_t)fl->count; i++) {
		const struct berth_file *f = &fl->files[i];

		if (!(f->flags & BERTH_FILE_HLINKED) || !S_ISREG(f->mode) ||
		    (f->flags & BERTH_FILE_INACTIVE) || !fl->hlink ||
		    fl->hlink[i] < 0)
			continue;
		g->hl_leader[i] = g->hl_leader[fl->hlink[i]];
	}
	return 0;
}

/* A follower: linked later, by berth__gen_link_followers(). */
bool berth__gen_is_follower(const struct gen *g, int32_t ndx)
{
	return g->hl_leader && g->hl_leader[ndx] >= 0 &&
	       g->hl_leader[ndx] != ndx;
}

/* Are @a and @b (beneath the root) the same file? */
static bool same_inode(struct berth_session *s, const char *a, const char *b)
{
	struct stat sa, sb;
	int fa, fb;
	bool same = false;

	fa = berth__sys_open(s, s->dest.root_fd, a, O_PATH | O_NOFOLLOW);
	fb = berth__sys_open(s, s->dest.root_fd, b, O_PATH | O_NOFOLLOW);
	if (fa >= 0 && fb >= 0 && fstat(fa, &sa) == 0 && fstat(fb, &sb) == 0)
		same = S_ISREG(sa.st_mode) && sa.st_dev == sb.st_dev &&
		       sa.st_ino == sb.st_ino;
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same;
}

/*
 * Link every follower whose leader is done, in descending order (the
 * order rsync reports them), with an "hf" record naming the leader.
 */
int berth__gen_link_followers(struct gen *g)
{
	struct berth_session *s = g->s;
	const struct berth_flist *fl = s->lst.fl;
	int32_t i, leader;
	int ret;

	if (!g->any_hlinks)
		return 0;
	/* The leaders must be on disk under their final names. */
	berth__out_flush(&s->out);
	pthread_mutex_lock(&s->sync.lock);
	s->sync.done_waiters++;
	for (i = 0; i < (int32_t)fl->count; i++) {
		leader = g->hl_leader[i];
		if (leader != i)
			continue;
		while (s->lst.fst[i].state == FST_REQUESTED && !s->rep.fatal &&
		       !s->sync.recv_finished && s->sync.nredo == 0)
			pthread_cond_wait(&s->sync.cond, &s->sync.lock);
	}
	s->sync.done_waiters--;
	pthread_mutex_unlock(&s->sync.lock);
	if (!s->opts.dry_run)
		berth_commit_flush(s->stg.commit);
	for (i = (int32_t)fl->count - 1; i >= 0; i--) {
		char fpath[BERTH_PATH_BUF], lpath[BERTH_PATH_BUF];
		const char *fname, *lname;

		if (!berth__gen_is_follower(g, i))
			continue;
		leader = g->hl_leader[i];
		fname = berth_file_path(&fl->files[i], fpath);
		lname = berth_file_path(&fl->files[leader], lpath);
		if (same_inode(s, fname, lname))
			continue; /* already the right link: nothing to say */
		if (!s->opts.dry_run) {
			ret = berth_commit_hardlink(
				s->stg.commit, fname, lname,
				(void *)(intptr_t)(i +
						   1)); /* events: ndx + 1 */
			if (ret < 0)
				berth__session_file_error(
					s, "link %s => %s: %s\n", fname, lname,
					berth_strerror(ret));
		}
		ret = berth__gen_put_link_record(s, i, &fl->files[leader]);
		if (ret < 0)
			return ret;
	}
	g->any_hlinks = false;
	return 0;
}
