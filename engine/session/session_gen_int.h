/* SPDX-License-Identifier: MIT */
/*
 * The generator's own state, shared by its files (session_gen*.c) and by
 * no one else: the walk (the chain of directories it is inside, the list
 * being generated), the destination lookup cache, -H groups and the
 * directories whose attributes are set again at the end.
 *
 *   session_gen.c          the walk, the phases and the end
 *   session_gen_lookup.c   destination lookup and itemizing
 *   session_gen_request.c  item records and file requests
 *   session_gen_file.c     a regular file's decision
 *   session_gen_tree.c     directories, symlinks, device/special nodes
 *   session_gen_alt.c      alt-dest dirs and -c
 *   session_gen_hlink.c    hard links
 *
 * Generator thread only.
 */
#ifndef BERTH_SESSION_GEN_INT_H
#define BERTH_SESSION_GEN_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "engine/path/path.h"
#include "engine/session/session.h"

#define DIR_CACHE 8 /* directory fds the lookups keep open */
#define REC_MAX 64 /* ndx + iflags + basis type: fits easily */

/* The chain of directories the walk is inside (sorted order is depth
 * first, so a stack follows it). */
struct dir_frame {
	/* the directory's entry (of the initial list, which stays: frames
	 * are pushed without incremental recursion only) */
	const struct berth_file *dir;
	size_t len; /* of its path */
	bool is_new; /* created by us: its contents cannot exist yet */
};

/* A directory whose attributes are set again at the end: what its
 * berth__session_meta() is made from again then (12 bytes, not the
 * meta's 100-odd: a list can hold many directories). */
struct dir_fix {
	int32_t ndx;
	uint32_t cur_mode; /* the existing directory's st_mode, or 0 */
	uint8_t is_new;
	uint8_t quiet; /* meta.user SESSION_QUIET */
};

struct gen {
	struct berth_session *s;
	/* A directory whose subtree is skipped (--existing and missing, or
	 * refused, or not made): its name, copied, as with incremental
	 * recursion the list holding it can be freed while the walk goes on
	 * in later lists.  Names are at most 4095 bytes (the decoder's
	 * max_name).  skip_len 0: none. */
	char skip_dir[4096];
	size_t skip_len;
	int32_t *hl_leader; /* -H: per ndx, its group's leader, or -1 */
	bool any_hlinks;
	struct berth_dircache dcache; /* parent directories looked up */
	bool root_swept; /* the root's dead temp files: looked for */
	struct dir_frame *stack;
	size_t depth;
	struct dir_fix *dirs; /* every directory, for the final attributes */
	size_t ndirs;
	/* Incremental recursion: the list being generated, its directory
	 * (NULL for an initial list without "."), whether the directory is
	 * new (its entries then cannot exist), and the oldest list whose
	 * NDX_DONE is not sent yet. */
	struct sess_list *list;
	struct sess_dir *sdir;
	bool list_parent_new;
	/* The list's directory could not be made (or lies beneath one
	 * that could not): its entries are skipped, its directories'
	 * lists too (struct sess_dir.missing). */
	bool list_skip;
	uint32_t list_dirs; /* directories of the list seen so far */
	struct sess_list *oldest;
	/* -R --no-implied-dirs: the parent last made sure of (copied, as
	 * skip_dir; rel_parent_len 0: none) */
	char rel_parent[4096];
	size_t rel_parent_len;
};

/* session_gen_tree.c */
/* -R --no-implied-dirs: make @f's missing parent directories. */
int berth__gen_rel_parents(struct gen *g, const struct berth_file *f);

/* session_gen_lookup.c */
/* Skip what lies beneath directory @f (its name copied). */
void berth__gen_skip_below(struct gen *g, const struct berth_file *f);
/* The parent-directory cache, its opens through session_sys.c. */
void berth__gen_dir_cache_init(struct gen *g);
/* An O_PATH fd of directory @path (@len bytes of it) beneath the root. */
int berth__gen_dir_fd(struct gen *g, const char *path, size_t len);
/* The directory holding @f (its directory part), as berth__gen_dir_fd(). */
int berth__gen_parent_fd(struct gen *g, const struct berth_file *f);
const char *berth__gen_base_name(const char *name);
void berth__gen_push_dir(struct gen *g, const struct berth_file *dir,
			 bool is_new);
/* The attributes directory @f gets at the end: existed with @cur_mode
 * unless @is_new; @quiet: a failure to set them is not reported. */
void berth__gen_dir_meta(struct berth_session *s, const struct berth_file *f,
			 bool is_new, mode_t cur_mode, bool quiet,
			 struct berth_commit_meta *m);
/* lstat of the destination for @f: 0, -ENOENT, or another error. */
int berth__gen_dest_stat(struct gen *g, const struct berth_file *f,
			 struct stat *st);
/* What the receiver needs to know of the destination (under s->sync.lock). */
void berth__gen_set_exists(struct berth_session *s, int32_t ndx, bool exists,
			   mode_t mode);
/* A directory stands where @what must go: 0 (way made), 1 (skip), error. */
int berth__gen_clear_dir_for(struct gen *g, const struct berth_file *f,
			     const char *what);
/* --existing / --ignore-existing.  True: skip the item. */
bool berth__gen_existence_gate(struct gen *g, const struct berth_file *f,
			       int stat_ret, const struct stat *st);
/* The lookup of @f and the gates: 0 (it exists, @st), -ENOENT,
 * BERTH_GEN_SKIP (a gate skips it) or another error. */
#define BERTH_GEN_SKIP 1
int berth__gen_lookup(struct gen *g, const struct berth_file *f,
		      struct stat *st);
bool berth__gen_mtime_differs(struct berth_session *s,
			      const struct berth_file *f,
			      const struct stat *st);
/* -U: does @st's atime differ from @f's (whole seconds, the window)? */
bool berth__gen_atime_differs(struct berth_session *s,
			      const struct berth_file *f,
			      const struct stat *st);
/* §8.4 for an item that exists; @base: the flags decided so far. */
uint32_t berth__gen_itemize(struct berth_session *s, const struct berth_file *f,
			    const struct stat *st, uint32_t base);

/* session_gen_request.c */
bool berth__gen_record_wanted(struct berth_session *s, uint32_t iflags);
int berth__gen_put_record(struct berth_session *s, int32_t ndx,
			  uint32_t iflags);
/* A hard-link record ("hf"); @to NULL: an existing link already right. */
int berth__gen_put_link_record(struct berth_session *s, int32_t ndx,
			       const struct berth_file *to);
int berth__gen_put_del_stats(struct berth_session *s);
int berth__gen_put_ndx(struct berth_session *s, int32_t ndx);
/* Ask for file @ndx: record, then the sum head and block sums of the basis
 * (@bname in @basis_dir, or @f's name; -1: none) or an empty head. */
int berth__gen_request_file_at(struct gen *g, int32_t ndx, uint32_t iflags,
			       int basis_dir, const char *bname, int btype,
			       bool redo);
int berth__gen_request_file(struct gen *g, int32_t ndx, uint32_t iflags,
			    int basis_dir, int btype, bool redo);
/* An item that is already right: its record (if wanted) and attributes. */
int berth__gen_keep_item(struct berth_session *s, int32_t ndx,
			 const struct berth_file *f, const struct stat *st,
			 uint32_t iflags);

/* session_gen_tree.c */
int berth__gen_symlink(struct gen *g, int32_t ndx, const struct berth_file *f);
int berth__gen_dir(struct gen *g, int32_t ndx, const struct berth_file *f);
/* Incremental: make sure list directory @d (number @k) exists before its
 * entries; the mkdir's outcome comes later (berth__gen_mk_wait()). */
int berth__gen_dir_ensure(struct gen *g, const struct berth_file *f,
			  struct sess_dir *d, uint32_t k);
/* Wait for a queued mkdir's outcome (enum berth_gen_mk in *@state, the
 * error in *@err, both under sync.lock): 0, -errno, -BERTH_ECANCELLED. */
int berth__gen_mk_wait(struct berth_session *s, uint8_t *state, int *err);
int berth__gen_node(struct gen *g, int32_t ndx, const struct berth_file *f);

/* session_gen_alt.c */
/* A regular file with alt-dest dirs: matched, copied, linked or asked. */
int berth__gen_file_alt(struct gen *g, int32_t ndx, const struct berth_file *f);
/* The first alt-dest dir holding a directory at @f's name, or -1. */
int berth__gen_alt_dir_stat(struct berth_session *s, const struct berth_file *f,
			    struct stat *st);
/*
 * A symlink, device or special missing from the destination, with alt-dest
 * dirs: 1 when it is done (hard-linked, or left out by --compare-dest);
 * else 0 with *@j the alt dir whose item it is compared with (@st), -1 for
 * none, and *@quiet for a --copy-dest full match (made, not itemized).
 */
int berth__gen_nonreg_alt(struct gen *g, int32_t ndx,
			  const struct berth_file *f, struct stat *st, int *j,
			  bool *quiet);
/* -c: does the file at @f's name in @dirfd have @f's checksum? */
bool berth__gen_checksum_matches(struct berth_session *s, int dirfd,
				 const struct berth_file *f);

/* session_gen_hlink.c */
/* -H: find each group's leader (hl_leader). */
int berth__gen_hlink_groups(struct gen *g);
bool berth__gen_is_follower(const struct gen *g, int32_t ndx);
/* Link the followers of every leader written so far. */
int berth__gen_link_followers(struct gen *g);

/* session_gen_file.c */
/* A partial file of @f to use as its basis: its path in @ppath. */
bool berth__gen_partial_basis(struct berth_session *s,
			      const struct berth_file *f, char *ppath,
			      size_t cap);
int berth__gen_file(struct gen *g, int32_t ndx, const struct berth_file *f);

#endif /* BERTH_SESSION_GEN_INT_H */
