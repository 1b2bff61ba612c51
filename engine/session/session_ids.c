/* SPDX-License-Identifier: MIT */
/*
 * Owners and modes: --usermap/--groupmap/--chown rules and the sender's id
 * names mapped to local ids (cached), and the commit metadata of a file-list
 * entry (mode, times, owner) as the options ask.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session/session.h"

/* A local user or group: a name, or a number. */
static bool local_id(const char *name, size_t len, bool user, uint32_t *out)
{
	char nm[256], buf[4096], *end;
	unsigned long v;

	if (len == 0 || len >= sizeof(nm))
		return false;
	memcpy(nm, name, len);
	nm[len] = '\0';
	v = strtoul(nm, &end, 10);
	if (*end == '\0') {
		*out = (uint32_t)v;
		return true;
	}
	if (user) {
		struct passwd pw, *res = NULL;

		if (getpwnam_r(nm, &pw, buf, sizeof(buf), &res) == 0 && res) {
			*out = res->pw_uid;
			return true;
		}
	} else {
		struct group gr, *res = NULL;

		if (getgrnam_r(nm, &gr, buf, sizeof(buf), &res) == 0 && res) {
			*out = res->gr_gid;
			return true;
		}
	}
	return false;
}

/*
 * --usermap / --groupmap: "FROM:TO,..."; FROM is an id, an id range
 * "LOW-HIGH", or a name pattern (wildcards; "*" matches every id); the
 * first matching pair decides, and a TO that does not exist here maps
 * nothing (rsync's rules).
 */
static bool map_rules(const char *map, uint32_t id, const char *name, bool user,
		      uint32_t *out)
{
	const char *p = map;

	while (*p) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *colon = memchr(p, ':', (size_t)(end - p));
		char from[256], *e;
		unsigned long lo, hi;
		bool hit = false;

		if (colon && (size_t)(colon - p) < sizeof(from)) {
			memcpy(from, p, (size_t)(colon - p));
			from[colon - p] = '\0';
			lo = strtoul(from, &e, 10);
			if (e != from && *e == '\0')
				hit = id == lo;
			else if (e != from && *e == '-' &&
				 (hi = strtoul(e + 1, &e, 10), *e == '\0'))
				hit = id >= lo && id <= hi;
			else
				hit = fnmatch(from, name ? name : "", 0) == 0 ||
				      !strcmp(from, "*");
			if (hit)
				return local_id(colon + 1,
						(size_t)(end - colon - 1), user,
						out);
		}
		p = comma ? comma + 1 : end;
	}
	return false;
}

static uint32_t map_id(struct berth_session *s, uint32_t id, bool user)
{
	struct id_map **tab = user ? &s->ids.uids : &s->ids.gids;
	size_t *n = user ? &s->ids.nuids : &s->ids.ngids;
	const char *map = user ? s->opts.usermap : s->opts.groupmap;
	const char *name;
	uint32_t to = id;
	size_t i;
	/* A module's "numeric ids": the names come, and are not used. */
	bool numeric = s->opts.numeric_ids || berth__dmn_numeric_ids(s);

	if (!map && (id == 0 || numeric))
		return id;
	pthread_mutex_lock(&s->sync.lock);
	for (i = 0; i < *n; i++) {
		if ((*tab)[i].from == id) {
			to = (*tab)[i].to;
			pthread_mutex_unlock(&s->sync.lock);
			return to;
		}
	}
	pthread_mutex_lock(&s->lst.names_lock);
	name = user ? berth_flist_dec_user_name(s->lst.fdec, id)
		    : berth_flist_dec_group_name(s->lst.fdec, id);
	if (berth__dmn_numeric_ids(s))
		name = NULL;
	if (map && map_rules(map, id, name, user, &to)) {
		/* mapped */
	} else if (name && *name && id != 0 && !numeric) {
		local_id(name, strlen(name), user, &to);
	}
	pthread_mutex_unlock(&s->lst.names_lock);
	struct id_map *p = realloc(*tab, (*n + 1) * sizeof(**tab));
	if (p) {
		*tab = p;
		p[*n].from = id;
		p[*n].to = to;
		(*n)++;
	}
	pthread_mutex_unlock(&s->sync.lock);
	return to;
}

uint32_t berth__map_uid(struct berth_session *s, uint32_t uid)
{
	return map_id(s, uid, true);
}

uint32_t berth__map_gid(struct berth_session *s, uint32_t gid)
{
	return map_id(s, gid, false);
}

/* Is @gid one of the process's groups (its effective one included)?
 * Under s->sync.lock; looked up once. */
static bool my_group(struct berth_session *s, gid_t gid)
{
	struct sess_ids *ids = &s->ids;
	int i, n;

	if (ids->nmine < 0) {
		n = getgroups(0, NULL);
		ids->mine = malloc(((size_t)(n > 0 ? n : 0) + 1) *
				   sizeof(*ids->mine));
		if (!ids->mine)
			return gid == getegid(); /* try again next time */
		n = n > 0 ? getgroups(n, ids->mine) : 0;
		ids->nmine = n > 0 ? n : 0;
		ids->mine[ids->nmine++] = getegid();
	}
	for (i = 0; i < ids->nmine; i++)
		if (ids->mine[i] == gid)
			return true;
	return false;
}

uint32_t berth__group_of(struct berth_session *s, const struct berth_file *f)
{
	uint32_t gid;
	bool mine;

	if (!s->opts.group)
		return (uint32_t)-1;
	gid = berth__map_gid(s, f->gid);
	if (s->dest.am_root)
		return gid;
	pthread_mutex_lock(&s->sync.lock);
	mine = my_group(s, (gid_t)gid);
	pthread_mutex_unlock(&s->sync.lock);
	return mine ? gid : (uint32_t)-1;
}

void berth__session_meta(struct berth_session *s, const struct berth_file *f,
			 bool exists, mode_t cur_mode,
			 struct berth_commit_meta *m)
{
	mode_t type = f->mode & S_IFMT;
	mode_t mode;

	memset(m, 0, sizeof(*m));
	/* §9.5: without -p an existing item keeps its bits, a new one gets
	 * the source's masked by the umask, without set-id/sticky bits. */
	if (s->opts.perms)
		mode = f->mode & 07777;
	else if (exists)
		mode = cur_mode & 07777;
	else
		mode = f->mode & 0777 & ~s->dest.umask;
	if (!s->opts.perms && s->opts.executability && !S_ISLNK(type)) {
		if (f->mode & 0111)
			mode |= (mode & 0444) >> 2;
		else
			mode &= ~0111u;
	}
	m->mode = berth__dmn_mode(s, type, mode); /* incoming chmod */
	if (s->opts.times && !(S_ISDIR(type) && s->opts.omit_dir_times) &&
	    !(S_ISLNK(type) &&
	      (s->opts.omit_link_times || !s->neg.symlink_times))) {
		m->mtime_sec = f->mtime;
		m->mtime_nsec = f->nsec;
	} else {
		m->mtime_nsec = UTIME_OMIT;
	}
	/* -U: as rsync's set_file_attrs(), every item but a directory gets
	 * the sender's atime (a symlink only where its times are set). */
	if (s->opts.atimes && (f->flags & BERTH_FILE_HAS_ATIME) &&
	    !S_ISDIR(type) &&
	    !(S_ISLNK(type) &&
	      (s->opts.omit_link_times || !s->neg.symlink_times))) {
		m->atime_set = true;
		m->atime_sec = f->ext->atime;
	}
	m->uid = s->opts.owner && s->dest.am_root ? berth__map_uid(s, f->uid)
						  : (uint32_t)-1;
	m->gid = berth__group_of(s, f);
	/* -A: the ACLs go with the mode; --fake-super: so does the type. */
	berth__acl_meta(s, f, m);
	m->ftype = type;
	m->rdev_major = f->ext->rdev_major;
	m->rdev_minor = f->ext->rdev_minor;
}

void berth__ids_free(struct sess_ids *ids)
{
	free(ids->uids);
	free(ids->gids);
	free(ids->mine);
	ids->mine = NULL;
	ids->nmine = -1;
	ids->uids = ids->gids = NULL;
	ids->nuids = ids->ngids = 0;
}
