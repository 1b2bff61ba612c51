/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the protocol/ sources only.  Nothing here is part of
 * the module API (protocol/protocol.h).
 */
#ifndef BERTH_PROTO_INT_H
#define BERTH_PROTO_INT_H

#include <stdint.h>
#include <string.h>

#include "protocol/protocol.h"

/*
 * File-type bits are wire values (rsync sends POSIX modes).  Windows'
 * <sys/stat.h> lacks the ones it has no files for; they are POSIX's.
 */
#ifdef _WIN32
#ifndef S_IFLNK
#define S_IFLNK 0120000
#endif
#ifndef S_IFSOCK
#define S_IFSOCK 0140000
#endif
#endif

/* Propagate a negative result; anything >= 0 falls through. */
#define TRY(expr)                      \
	do {                           \
		int try_r_ = (expr);   \
		if (try_r_ < 0)        \
			return try_r_; \
	} while (0)

/* Bytes still unread in @in. */
static inline size_t in_avail(const struct berth_proto_in *in)
{
	return in->size - in->pos;
}

/* Room left in @out. */
static inline size_t out_room(const struct berth_proto_out *out)
{
	return out->size - out->pos;
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/*
 * A parser run by berth__stash_run(): consumes one complete unit from @view
 * and returns BERTH_PROTO_DONE (or another positive event code), or returns
 * BERTH_PROTO_MORE without side effects when @view ends too early, or a
 * negative error.
 */
typedef int (*berth__unit_fn)(void *ctx, struct berth_proto_in *view);

/*
 * Run @fn over the stash's saved bytes followed by @in, so that a unit split
 * across input chunks is parsed as if contiguous.  Bytes of an incomplete
 * unit are moved into the stash (at most @st->cap bytes: a longer unit is
 * -BERTH_ELIMIT).  Returns what @fn returned.
 */
int berth__stash_run(struct berth_proto_stash *st, struct berth_proto_in *in,
		     berth__unit_fn fn, void *ctx);

/* Case-insensitive search of @name (length @len) in a space-separated list. */
int berth__name_in_list(const char *list, const char *name, size_t len);

/*
 * Sort (§7.7), clean duplicates and validate directory parts (§7.5) of a
 * list whose files[] are in transmission order; with @keep_tx, fl->tx_of
 * says where each entry was sent.  With @parent (inc
 * recursion sub-list) every name's directory part must equal it; else
 * every directory part must be a directory of the list.  Also resolves
 * same-list hard-link references to sorted ndx.  Below @protocol 29 the
 * order is that of the whole names byte by byte (directories are not
 * special).  0, -BERTH_EPROTO, -ENOMEM.
 */
int berth__flist_finish(struct berth_flist *fl, const char *parent,
			int protocol, bool strip_root, bool keep_tx);

/* ---- file-list decoder internals (proto_flist.c, proto_flist_attr.c) */

enum { ST_IDLE, ST_ENTRIES, ST_UIDS, ST_GIDS, ST_IOERR, ST_DONE };

struct id_name {
	uint32_t id;
	uint32_t off; /* into ids_pool */
	uint32_t seq; /* arrival order: the latest name wins */
	bool gid;
};

struct pool {
	char *p;
	size_t len, cap;
	size_t limit; /* 0 = none */
};

/* An entry being parsed: pointers into the parse view or scratch. */
struct pend {
	bool end;
	int32_t io_error;
	struct berth_file f;
	struct berth_file_ext x; /* f.ext once committed */
	uint32_t xflags; /* as received (protocol < 30: bits 0-7) */
	int32_t hlink; /* its berth_flist.hlink, or -1 */
	uint32_t l1;
	const uint8_t *suffix;
	uint32_t l2;
	const uint8_t *link;
	const uint8_t *sum;
	const uint8_t *uname, *gname;
	uint8_t uname_len, gname_len;
	bool set_uname, set_gname;
	const uint8_t *xset; /* literal xattr set bytes (re-parsed on commit) */
	size_t xset_len;
	uint32_t xcount;
	const uint8_t *acl_lit[2]; /* literal ACL bytes (re-parsed on commit) */
	size_t acl_len[2];
	bool rdev_field; /* the rdev fields were present: update the state */
	uint32_t major; /* the rdev major as sent or inherited */
	uint32_t minor; /* protocol < 28: the minor as sent or inherited */
	bool idev; /* protocol < 30 hard link: dev and inode were sent */
	int64_t dev, ino;
};

/* A (dev, inode) pair of protocols < 30 and the first entry that had it. */
struct idev_slot {
	int64_t dev, ino;
	int32_t tx; /* transmission index of the first, -1 = empty */
	uint32_t members;
};

struct berth_flist_dec {
	struct berth_flist_config cfg;
	struct berth_proto_stash stash;
	int state;
	bool inc, varint_flags, safe_flist;
	bool old; /* protocol < 30: fixed-width fields (proto_flist_old.c) */
	/* "previous entry" state, session-long (§7.1) */
	char *lastname;
	uint32_t lastname_len;
	int64_t mtime, atime, crtime;
	uint32_t mode, uid, gid, rdev_major, rdev_minor;
	int64_t dev; /* protocol < 30: the last hard-link device */
	/* protocol < 30: inside a top directory's hierarchy (content
	 * directories), the length of its name (0: the whole tree) */
	bool in_hier;
	uint32_t hier_len;
	/* protocol < 30: hard-link groups by (dev, inode) */
	struct idev_slot *idev;
	uint32_t idev_cap, idev_used;
	/* current list */
	struct berth_flist *cur;
	uint32_t cap;
	uint64_t list_bytes; /* names, targets and sums of the list */
	const char *parent; /* sub-list's directory name */
	/* the current list's directory parts: their shared records in an
	 * open-addressed table, and the last one found
	 * (proto_flist_arena.c) */
	const struct berth_file_ext **dirtab;
	uint32_t dirtab_mask, dirtab_used;
	const struct berth_file_ext *dir_last;
	/* all lists so far */
	uint32_t total_files;
	int32_t next_start;
	bool started;
	/* directory list (inc recursion): copies of the names, and per
	 * directory DIR_CONTENT / DIR_LISTED */
	char **dirs;
	uint8_t *dir_flags;
	uint32_t ndirs, dirs_cap;
	/* ids */
	struct id_name *ids;
	uint32_t nids, ids_cap, nsorted, ids_appended;
	struct pool ids_pool;
	/* xattr sets */
	struct berth_xattr_set *xsets;
	uint32_t nxsets, xsets_cap;
	/* ACLs, access [0] and default [1] */
	size_t attr_bytes; /* memory of all xattr sets and ACLs */
	struct berth_acl *acls[2];
	uint32_t nacls[2], acls_cap[2];
	struct pend pend;
};

int berth__flist_pool_add(struct pool *p, const void *data, size_t len,
			  uint32_t *off);
/*
 * @len bytes in @fl's blocks (proto_flist_arena.c), 8-byte aligned when
 * @align, valid until berth_flist_free(); they never move.  NULL: no
 * memory.
 */
void *berth__flist_alloc(struct berth_flist *fl, size_t len, bool align);
/* Free a chain of blocks (NULL: nothing). */
void berth__flist_free_blks(struct berth_flist_blk *b);
/*
 * The current list's shared record (ext fields empty) of the directory
 * part @dir (@len bytes with its trailing '/'; 0: the top, whose record is
 * berth_file_ext_none), made on first use.  0, -ENOMEM or -BERTH_ELIMIT.
 */
int berth__flist_dir(struct berth_flist_dec *d, const char *dir, uint32_t len,
		     const struct berth_file_ext **out);
/* Forget the current list's directory parts (a list begins). */
void berth__flist_dirs_reset(struct berth_flist_dec *d);
/* Unit-parser helpers: BERTH_PROTO_DONE / MORE / error. */
int berth__flist_get_bytes(struct berth_proto_in *v, size_t n,
			   const uint8_t **p);
int berth__flist_get_name8(struct berth_proto_in *v, const uint8_t **p,
			   uint8_t *len);
/* The xattr field of an entry (§7.8) into d->pend. */
int berth__flist_parse_xattrs(struct berth_flist_dec *d,
			      struct berth_proto_in *v);
/* Store the literal set parsed into d->pend. */
int berth__flist_commit_xset(struct berth_flist_dec *d);
/* Remember the name of uid/gid @id. */
int berth__flist_set_id(struct berth_flist_dec *d, bool gid, uint32_t id,
			const uint8_t *name, size_t len);
/* The ACL fields of an entry (§7.8) of type @type into d->pend. */
int berth__flist_parse_acls(struct berth_flist_dec *d, struct berth_proto_in *v,
			    uint32_t type);
/* Store the literal ACLs parsed into d->pend. */
int berth__flist_commit_acls(struct berth_flist_dec *d);
void berth__flist_free_acls(struct berth_flist_dec *d);
/* Sort and dedupe the id names (end of each list). */
void berth__flist_sort_ids(struct berth_flist_dec *d);

/* A symlink's target (its length a varint, below 30 an int32): not
 * empty, no NUL, at most max_link bytes. */
int berth__flist_entry_link(struct berth_flist_dec *d,
			    struct berth_proto_in *v);

/* ---- protocols 27..29 (proto_flist_old.c) */

/* A file type berth knows (§3.6). */
bool berth__flist_mode_ok(uint32_t mode);

/* The fields of an entry after its name, in the pre-30 encoding. */
int berth__flist_old_attrs(struct berth_flist_dec *d, struct berth_proto_in *v,
			   uint32_t x);
/* On commit, before the entry is stored: join the pending entry's (dev,
 * inode) group; @tx is its index, @name its path. */
int berth__flist_old_commit(struct berth_flist_dec *d, int32_t tx,
			    const char *name);
/* At the end of the list: a group of one is no hard link. */
void berth__flist_old_finish(struct berth_flist_dec *d);
/* Unit parser for one id-list item (returns 2) or list end (DONE). */
int berth__flist_unit_id(void *ctx, struct berth_proto_in *v);

/*
 * Token decoder state (proto_token*.c).  proto_token.c holds the API, the
 * plain format and the dispatch; proto_token_frame.c the compressed
 * format's flag bytes (§9.3), which hands each DEFLATED_DATA payload to
 * the compressor's file: proto_token_zlib.c (zlib and zlibx),
 * proto_token_lz4.c, proto_token_zstd.c.
 */
struct berth_tok_dec {
	struct berth_tok_config cfg;
	int state;
	uint8_t small[64]; /* a fixed-size field being collected */
	unsigned small_len;
	struct berth_sum_head head;
	int64_t left; /* literal / compressed payload bytes left */
	int32_t last; /* compressed: last block number */
	uint8_t flag; /* compressed: the flag byte being completed */
	bool data_seen; /* compressed: a payload since the last token */
	bool zfull; /* zstd: the last call filled the output */
	int32_t see_block; /* zlib: next block owed to berth_tok_dec_see */
	int32_t see_left; /* ... and how many are owed */
	void *codec; /* ZSTD_DCtx or z_stream */
	uint8_t *zout; /* literal output of the compressor */
	size_t zout_cap;
	uint8_t *zin; /* lz4: a payload split across input chunks */
	size_t zin_len;
};

enum {
	TOK_IDLE,
	TOK_HEAD,
	TOK_TOKEN, /* plain: int32 token; compressed: flag byte */
	TOK_LIT, /* plain literal bytes */
	TOK_FLAG2, /* compressed: the rest of a flag's fixed fields */
	TOK_ZDATA, /* compressed: payload */
	TOK_SUM,
};

/* A step changed state and wants to be called again. */
#define BERTH__TOK_AGAIN 100

/*
 * Collect @n bytes of a fixed field into d->small across calls; true when
 * complete (then d->small_len is reset by the caller).
 */
static inline bool tok_collect(struct berth_tok_dec *d,
			       struct berth_proto_in *in, unsigned n)
{
	size_t k = n - d->small_len;

	if (k > in_avail(in))
		k = in_avail(in);
	memcpy(d->small + d->small_len, in->ptr + in->pos, k);
	d->small_len += (unsigned)k;
	in->pos += k;
	return d->small_len == n;
}

/* One step of the compressed format (TOK_TOKEN, TOK_FLAG2, TOK_ZDATA):
   an event, MORE, BERTH__TOK_AGAIN or an error. */
int berth__tok_frame_step(struct berth_tok_dec *d, struct berth_proto_in *in,
			  struct berth_tok_event *ev);

/*
 * A compressor's part.  _data: @n bytes of the current payload at @p
 * (@end: its last ones), *@used of them taken; returns BERTH_TOK_LITERAL
 * (ev filled), BERTH__TOK_AGAIN (nothing to show yet) or an error.
 * _pending: before a flag byte that is not DEFLATED_DATA, after payloads:
 * the literal bytes still held (BERTH_TOK_LITERAL), then BERTH__TOK_AGAIN.
 */
int berth__tok_zstd_init(struct berth_tok_dec *d);
void berth__tok_zstd_free(struct berth_tok_dec *d);
int berth__tok_zstd_data(struct berth_tok_dec *d, const uint8_t *p, size_t n,
			 bool end, size_t *used, struct berth_tok_event *ev);
int berth__tok_zstd_pending(struct berth_tok_dec *d,
			    struct berth_tok_event *ev);

int berth__tok_zlib_init(struct berth_tok_dec *d);
void berth__tok_zlib_free(struct berth_tok_dec *d);
/* A new file: an empty history. */
int berth__tok_zlib_reset(struct berth_tok_dec *d);
int berth__tok_zlib_data(struct berth_tok_dec *d, const uint8_t *p, size_t n,
			 bool end, size_t *used, struct berth_tok_event *ev);
int berth__tok_zlib_pending(struct berth_tok_dec *d,
			    struct berth_tok_event *ev);
/* One matched block into the inflate history (zlib only). */
int berth__tok_zlib_see(struct berth_tok_dec *d, const uint8_t *p, size_t len);

int berth__tok_lz4_init(struct berth_tok_dec *d);
void berth__tok_lz4_free(struct berth_tok_dec *d);
int berth__tok_lz4_data(struct berth_tok_dec *d, const uint8_t *p, size_t n,
			bool end, size_t *used, struct berth_tok_event *ev);

/* Resumable decoders: run one step, and return what is not DONE (MORE
 * or an error) to the caller, who calls again with more input. */
#define GET(call)                               \
	do {                                    \
		int get_r_ = (call);            \
		if (get_r_ != BERTH_PROTO_DONE) \
			return get_r_;          \
	} while (0)

#endif /* BERTH_PROTO_INT_H */
