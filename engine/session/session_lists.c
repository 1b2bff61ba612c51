/* SPDX-License-Identifier: MIT */
/*
 * The session's file lists (rsync-protocol.md §7.7-§7.9): the lists the
 * net-in thread received and nobody has released yet, found by ndx, the
 * per-entry notes, and (incremental recursion) the directory list.
 *
 * A list lives from its arrival until the generator has sent its NDX_DONE
 * and no stage refers to it any more (see struct sess_list); then its
 * entries, names and notes are freed, so memory follows the sender's
 * look-ahead instead of the size of the tree.  Everything here is under
 * s->sync.lock, except berth__lists_add()'s allocations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/session/session.h"

/* file_state.basis_type holds -2 .. BERTH_MAX_ALT_DEST - 1 in 6 bits. */
_Static_assert(BERTH_MAX_ALT_DEST <= 32, "file_state.basis_type");

/* The directories of @fl, in its (sorted) order: the directory list's
 * next numbers (§7.9; the decoder numbers them the same way). */
static int new_dirs(const struct berth_flist *fl, struct sess_dir ***out,
		    uint32_t *n)
{
	struct sess_dir **v = NULL;
	uint32_t i, k = 0, cnt = 0;

	*out = NULL;
	*n = 0;
	for (i = 0; i < fl->count; i++)
		cnt += S_ISDIR(fl->files[i].mode) ? 1 : 0;
	if (!cnt)
		return 0;
	v = calloc(cnt, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < fl->count; i++) {
		const struct berth_file *f = &fl->files[i];
		char path[BERTH_PATH_BUF];
		const char *name;
		struct sess_dir *d;
		size_t len;

		if (!S_ISDIR(f->mode))
			continue;
		name = berth_file_path(f, path);
		len = strlen(name);
		d = calloc(1, sizeof(*d) + len + 1);
		if (!d)
			goto nomem;
		d->mtime = f->mtime;
		d->nsec = f->nsec;
		d->mode = f->mode;
		d->uid = f->uid;
		d->gid = f->gid;
		d->flags = f->flags;
		memcpy(d->name, name, len + 1);
		v[k++] = d;
	}
	*out = v;
	*n = cnt;
	return 0;
nomem:
	while (k > 0)
		free(v[--k]);
	free(v);
	return -ENOMEM;
}

int berth__lists_add(struct berth_session *s, struct berth_flist *fl)
{
	struct sess_list *l = calloc(1, sizeof(*l));
	struct file_state *fst = calloc((size_t)fl->count + 1, sizeof(*fst));
	struct sess_dir **dirs = NULL;
	uint32_t nd = 0;
	int ret = -ENOMEM;

	if (!l || !fst)
		goto fail;
	if (s->lst.inc) {
		ret = new_dirs(fl, &dirs, &nd);
		if (ret < 0)
			goto fail;
	}
	l->fl = fl;
	l->fst = fst;
	l->start = fl->ndx_start;
	l->count = fl->count;
	l->dir_k = fl->dir_k;
	if (fl->io_error)
		atomic_fetch_or(&s->rep.io_error, fl->io_error);

	pthread_mutex_lock(&s->sync.lock);
	ret = -ENOMEM;
	if (s->lst.ndirs + nd > s->lst.dirs_cap) {
		uint32_t cap = s->lst.dirs_cap ? s->lst.dirs_cap : 64;
		void *p;

		while (cap < s->lst.ndirs + nd)
			cap *= 2;
		p = realloc(s->lst.dirs, cap * sizeof(*s->lst.dirs));
		if (!p)
			goto unlock;
		s->lst.dirs = p;
		s->lst.dirs_cap = cap;
	}
	if (s->lst.nlists == s->lst.lists_cap) {
		size_t live = s->lst.nlists - s->lst.lists_first;

		if (s->lst.lists_first > 0 && live <= s->lst.lists_cap / 2) {
			/* The freed front goes; ndx order is kept. */
			memmove(s->lst.lists, s->lst.lists + s->lst.lists_first,
				live * sizeof(*s->lst.lists));
			s->lst.lists_first = 0;
			s->lst.nlists = live;
		} else {
			size_t cap = s->lst.lists_cap ? 2 * s->lst.lists_cap
						      : 16;
			void *p = realloc(s->lst.lists,
					  cap * sizeof(*s->lst.lists));

			if (!p)
				goto unlock;
			s->lst.lists = p;
			s->lst.lists_cap = cap;
		}
	}
	l->dir_base = s->lst.ndirs;
	if (nd)
		memcpy(s->lst.dirs + s->lst.ndirs, dirs, nd * sizeof(*dirs));
	s->lst.ndirs += nd;
	s->lst.lists[s->lst.nlists++] = l;
	if (s->lst.lists_tail)
		s->lst.lists_tail->next = l;
	if (!s->lst.release_next)
		s->lst.release_next = l;
	s->lst.lists_tail = l;
	s->lst.lists_total++;
	s->lst.files_total += fl->count;
	if (!s->lst.inc) {
		s->lst.fl = fl;
		s->lst.fst = fst;
	}
	pthread_cond_broadcast(&s->sync.cond);
	pthread_mutex_unlock(&s->sync.lock);
	free(dirs);
	return 0;
unlock:
	pthread_mutex_unlock(&s->sync.lock);
fail:
	while (nd > 0)
		free(dirs[--nd]);
	free(dirs);
	free(fst);
	free(l);
	berth_flist_free(fl);
	return ret;
}

void berth__lists_eof(struct berth_session *s)
{
	pthread_mutex_lock(&s->sync.lock);
	s->lst.flist_eof = true;
	pthread_cond_broadcast(&s->sync.cond);
	pthread_mutex_unlock(&s->sync.lock);
}

/* berth__list_of(), freed lists included (their records may be gone). */
static struct sess_list *list_of_any(struct berth_session *s, int32_t ndx,
				     int32_t *i)
{
	size_t lo = s->lst.lists_first, hi = s->lst.nlists;
	struct sess_list *l;

	/* The last list whose range (start - 1 onwards) begins <= ndx. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->lst.lists[mid]->start - 1 <= ndx)
			lo = mid;
		else
			hi = mid;
	}
	if (lo >= s->lst.nlists)
		return NULL;
	l = s->lst.lists[lo];
	if (ndx < l->start - 1 || (int64_t)ndx >= (int64_t)l->start + l->count)
		return NULL;
	*i = ndx - l->start;
	return l;
}

struct sess_list *berth__list_of(struct berth_session *s, int32_t ndx,
				 int32_t *i)
{
	struct sess_list *l = list_of_any(s, ndx, i);

	return l && l->fl ? l : NULL;
}

struct file_state *berth__fst_of(struct berth_session *s, int32_t ndx)
{
	int32_t i;
	struct sess_list *l = berth__list_of(s, ndx, &i);

	if (!l)
		return NULL;
	return &l->fst[i >= 0 ? (uint32_t)i : l->count];
}

struct file_side *berth__fst_side(struct berth_session *s, int32_t ndx,
				  bool make)
{
	int32_t i;
	struct sess_list *l = berth__list_of(s, ndx, &i);

	if (!l)
		return NULL;
	if (!l->side && make)
		l->side = calloc((size_t)l->count + 1, sizeof(*l->side));
	if (!l->side)
		return NULL;
	return &l->side[i >= 0 ? (uint32_t)i : l->count];
}

const struct berth_file *berth__file(struct berth_session *s, int32_t ndx)
{
	const struct berth_file *f = NULL;
	struct sess_list *l;
	int32_t i;

	pthread_mutex_lock(&s->sync.lock);
	l = berth__list_of(s, ndx, &i);
	if (l && i >= 0)
		f = &l->fl->files[i];
	pthread_mutex_unlock(&s->sync.lock);
	return f;
}

/* Everything of @l is done: its directory's attributes may be set (a
 * list's directory is dir_k, or "." for an initial list holding it).
 * Best effort: the final pass sets them anyway. */
static void queue_dirfix(struct berth_session *s, struct sess_list *l)
{
	uint32_t k;

	if (l->dir_k >= 0)
		k = (uint32_t)l->dir_k;
	else if (l->count && strcmp(l->fl->files[0].base, ".") == 0)
		k = 0;
	else
		return;
	if (s->lst.ndirfix == s->lst.dirfix_cap) {
		size_t cap = s->lst.dirfix_cap ? 2 * s->lst.dirfix_cap : 64;
		uint32_t *p = realloc(s->lst.dirfix, cap * sizeof(*p));

		if (!p)
			return;
		s->lst.dirfix = p;
		s->lst.dirfix_cap = cap;
	}
	s->lst.dirfix[s->lst.ndirfix++] = k;
}

/* Free @l's entries once it is released and unreferenced, then drop the
 * freed records at the front. */
static void maybe_free(struct berth_session *s, struct sess_list *l)
{
	if (!l->finished || !l->released || l->refs || !l->fl)
		return;
	queue_dirfix(s, l);
	berth_flist_free(l->fl);
	free(l->fst);
	free(l->side);
	l->fl = NULL;
	l->fst = NULL;
	l->side = NULL;
	while (s->lst.lists_first < s->lst.nlists &&
	       !s->lst.lists[s->lst.lists_first]->fl) {
		struct sess_list *f = s->lst.lists[s->lst.lists_first++];

		if (s->lst.lists_tail == f)
			s->lst.lists_tail = NULL;
		if (s->lst.release_next == f)
			s->lst.release_next = NULL;
		free(f);
	}
}

struct sess_list *berth__list_ref(struct berth_session *s, int32_t ndx)
{
	int32_t i;
	struct sess_list *l = berth__list_of(s, ndx, &i);

	if (l)
		l->refs++;
	return l;
}

void berth__list_unref(struct berth_session *s, struct sess_list *l)
{
	if (!l)
		return;
	l->refs--;
	maybe_free(s, l);
}

void berth__list_finish(struct berth_session *s, struct sess_list *l)
{
	l->finished = true;
	maybe_free(s, l);
}

void berth__list_release(struct berth_session *s)
{
	struct sess_list *l = s->lst.release_next;

	if (!l)
		return;
	s->lst.release_next = l->next;
	l->released = true;
	maybe_free(s, l);
}

void berth__fst_requested(struct berth_session *s, int32_t ndx)
{
	int32_t i;
	struct sess_list *l = berth__list_of(s, ndx, &i);
	struct file_state *p;

	if (!l || i < 0)
		return;
	p = &l->fst[i];
	if (p->state != FST_REQUESTED)
		l->pending++;
	p->state = FST_REQUESTED;
}

bool berth__fst_done(struct berth_session *s, int32_t ndx)
{
	int32_t i;
	struct sess_list *l = berth__list_of(s, ndx, &i);
	struct file_state *p;
	bool finished = false;

	if (!l || i < 0)
		return false;
	p = &l->fst[i];
	if (p->state == FST_REQUESTED)
		finished = --l->pending == 0;
	p->state = FST_DONE;
	return finished;
}

void berth__lists_free(struct berth_session *s)
{
	for (size_t i = s->lst.lists_first; i < s->lst.nlists; i++) {
		berth_flist_free(s->lst.lists[i]->fl);
		free(s->lst.lists[i]->fst);
		free(s->lst.lists[i]->side);
		free(s->lst.lists[i]);
	}
	free(s->lst.lists);
	s->lst.lists = NULL;
	s->lst.nlists = s->lst.lists_first = s->lst.lists_cap = 0;
	s->lst.lists_tail = NULL;
	s->lst.release_next = NULL;
	s->lst.fl = NULL;
	s->lst.fst = NULL;
	for (uint32_t i = 0; i < s->lst.ndirs; i++)
		free(s->lst.dirs[i]);
	free(s->lst.dirs);
	s->lst.dirs = NULL;
	s->lst.ndirs = 0;
	free(s->lst.dirfix);
	s->lst.dirfix = NULL;
	s->lst.ndirfix = s->lst.dirfix_cap = 0;
}

void *berth__commit_user(struct berth_session *s, int32_t ndx)
{
	if (s->lst.inc) {
		pthread_mutex_lock(&s->sync.lock);
		berth__list_ref(s, ndx);
		pthread_mutex_unlock(&s->sync.lock);
	}
	return (void *)(intptr_t)(ndx + 1);
}

void berth__commit_user_done(struct berth_session *s, void *user)
{
	int32_t i, ndx = (int32_t)(intptr_t)user - 1;
	struct sess_list *l;

	if (!s->lst.inc || !user || user == SESSION_QUIET)
		return;
	pthread_mutex_lock(&s->sync.lock);
	l = list_of_any(s, ndx, &i);
	if (l && l->refs)
		berth__list_unref(s, l);
	pthread_mutex_unlock(&s->sync.lock);
}

struct file_state berth__fst_get(struct berth_session *s, int32_t ndx)
{
	struct file_state st = {0}, *p;

	pthread_mutex_lock(&s->sync.lock);
	p = berth__fst_of(s, ndx);
	if (p)
		st = *p;
	pthread_mutex_unlock(&s->sync.lock);
	return st;
}
