/* SPDX-License-Identifier: MIT */
/*
 * Owners and modes (session_ids.c): id mapping and the commit metadata of a
 * file-list entry.
 */
#ifndef BERTH_SESSION_IDS_H
#define BERTH_SESSION_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include "engine/commit/commit.h"
#include "protocol/protocol.h"

struct berth_session;

/* An id mapping cache entry (sender id -> local id). */
struct id_map {
	uint32_t from, to;
};

/* The caches of mapped ids (under lst.names_lock). */
struct sess_ids {
	struct id_map *uids, *gids;
	size_t nuids, ngids;
	gid_t *mine; /* the process's groups (not root: the ones it can set) */
	int nmine; /* -1 until looked up */
};

/* Commit metadata for entry @f (permissions, times, owner) per options. */
void berth__session_meta(struct berth_session *s, const struct berth_file *f,
			 bool exists, mode_t cur_mode,
			 struct berth_commit_meta *m);
uint32_t berth__map_uid(struct berth_session *s, uint32_t uid);
uint32_t berth__map_gid(struct berth_session *s, uint32_t gid);
/* -g: the local group entry @f gets, or (uint32_t)-1 to leave the group
 * alone: without -g, and, as rsync's receiver skips it, a group a
 * receiver that is not root is not a member of (it could not set it). */
uint32_t berth__group_of(struct berth_session *s, const struct berth_file *f);
void berth__ids_free(struct sess_ids *ids);

#endif /* BERTH_SESSION_IDS_H */
