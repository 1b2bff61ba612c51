/* SPDX-License-Identifier: MIT */
/*
 * berth protocol/ — the rsync wire protocol (versions 27..32) as pure
 * functions over caller-owned buffers.  Nothing here does I/O, allocates per
 * byte, uses threads or knows about files: the engine feeds bytes in and
 * takes bytes out.  Reference: shared/docs/rsync-protocol.md (§ numbers in
 * the comments below refer to it).
 *
 * Conventions
 *  - Input is a caller-owned struct berth_proto_in {ptr, size, pos}; a
 *    decoder consumes from pos and advances it.  Decoders accept any amount
 *    of input at a time (also one byte) and answer BERTH_PROTO_MORE ("need
 *    more input", everything offered was consumed or stashed),
 *    BERTH_PROTO_DONE or a decoder-specific positive event, or a negative
 *    error: -BERTH_EPROTO for anything the peer got wrong, -BERTH_ELIMIT
 *    when a configured limit is exceeded, -BERTH_EPATH for an unsafe name,
 *    -BERTH_EUNSUPPORTED for a feature berth does not implement.
 *  - Primitive getters (berth_proto_get_*) are all-or-nothing: with too few
 *    bytes they return BERTH_PROTO_MORE and consume nothing.
 *  - Output is a caller-owned struct berth_proto_out {ptr, size, pos}; an
 *    encoder either writes the whole item and returns >= 0, or writes nothing
 *    and returns -ENOBUFS.
 *  - Every object is used by one thread at a time; there is no global state.
 */
#ifndef BERTH_PROTOCOL_H
#define BERTH_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth.h"
#include "engine/common/sums.h"

/* ------------------------------------------------------------------ buffers */

struct berth_proto_in {
	const uint8_t *ptr;
	size_t size;
	size_t pos;
};

struct berth_proto_out {
	uint8_t *ptr;
	size_t size;
	size_t pos;
};

enum {
	BERTH_PROTO_MORE = 0, /* need more input */
	BERTH_PROTO_DONE = 1, /* one unit decoded */
};

/*
 * Bytes of a unit that was split across input chunks (internal to the
 * decoders that embed it; callers never touch it).
 */
struct berth_proto_stash {
	uint8_t *buf;
	size_t len;
	size_t cap;
};

/* ----------------------------------------------------- primitives (§3) */

/* Protocol versions berth speaks (27..29: the pre-3.0 encodings). */
#define BERTH_PROTO_MIN 27
#define BERTH_PROTO_MAX 32

/* Special file-list indices (§3.5). */
#define BERTH_NDX_DONE (-1)
#define BERTH_NDX_FLIST_EOF (-2)
#define BERTH_NDX_DEL_STATS (-3)
#define BERTH_NDX_FLIST_OFFSET (-101)

/*
 * One direction's ndx delta state (§3.5); init with berth_ndx_init().
 * Below protocol 30 an ndx is a plain int32 (set @plain).
 */
struct berth_ndx_state {
	int32_t prev_pos;
	int32_t prev_neg;
	bool plain;
};

void berth_ndx_init(struct berth_ndx_state *st);
/* Choose the encoding for @protocol (keeps the delta state). */
void berth_ndx_set_protocol(struct berth_ndx_state *st, int protocol);

int berth_proto_get_u8(struct berth_proto_in *in, uint8_t *v);
int berth_proto_get_shortint(struct berth_proto_in *in, uint16_t *v);
int berth_proto_get_int32(struct berth_proto_in *in, int32_t *v);
int berth_proto_get_uint32(struct berth_proto_in *in, uint32_t *v);
/* varint (§3.2): 1..5 bytes, a first byte >= 0xf8 is -BERTH_EPROTO. */
int berth_proto_get_varint(struct berth_proto_in *in, int32_t *v);
/* varlong(min_bytes) (§3.3), min_bytes 1..8; overflow is -BERTH_EPROTO. */
int berth_proto_get_varlong(struct berth_proto_in *in, int min_bytes,
			    int64_t *v);
/*
 * vstring (§3.4) into @buf (capacity @cap, not NUL-terminated unless room:
 * a NUL is appended when len < cap).  A length > @cap is -BERTH_ELIMIT.
 */
int berth_proto_get_vstring(struct berth_proto_in *in, char *buf, size_t cap,
			    size_t *len);
/*
 * longint (protocols < 30): an int32, or 0xffffffff and an int64.  A
 * negative value is -BERTH_EPROTO.
 */
int berth_proto_get_longint(struct berth_proto_in *in, int64_t *v);
/* ndx (§3.5) using and updating @st.  Out-of-range values: -BERTH_EPROTO. */
int berth_proto_get_ndx(struct berth_proto_in *in, struct berth_ndx_state *st,
			int32_t *v);

int berth_proto_put_u8(struct berth_proto_out *out, uint8_t v);
int berth_proto_put_shortint(struct berth_proto_out *out, uint16_t v);
int berth_proto_put_int32(struct berth_proto_out *out, int32_t v);
int berth_proto_put_uint32(struct berth_proto_out *out, uint32_t v);
/* The stock writer's byte forms (so streams match captures byte for byte). */
int berth_proto_put_varint(struct berth_proto_out *out, int32_t v);
int berth_proto_put_varlong(struct berth_proto_out *out, int64_t v,
			    int min_bytes);
/* len <= 0x7fff, else -EINVAL. */
int berth_proto_put_vstring(struct berth_proto_out *out, const char *s,
			    size_t len);
/* @v >= 0 or one of the negative specials (< -1 ones update prev_neg). */
int berth_proto_put_ndx(struct berth_proto_out *out, struct berth_ndx_state *st,
			int32_t v);
int berth_proto_put_bytes(struct berth_proto_out *out, const void *p,
			  size_t len);

/* ------------------------------------------------ multiplexing (§5) */

enum berth_msg_code {
	BERTH_MSG_DATA = 0,
	BERTH_MSG_ERROR_XFER = 1,
	BERTH_MSG_INFO = 2,
	BERTH_MSG_ERROR = 3,
	BERTH_MSG_WARNING = 4,
	BERTH_MSG_ERROR_SOCKET = 5,
	BERTH_MSG_LOG = 6,
	BERTH_MSG_CLIENT = 7,
	BERTH_MSG_ERROR_UTF8 = 8,
	BERTH_MSG_REDO = 9,
	BERTH_MSG_STATS = 10,
	BERTH_MSG_IO_ERROR = 22,
	BERTH_MSG_IO_TIMEOUT = 33,
	BERTH_MSG_NOOP = 42,
	BERTH_MSG_ERROR_EXIT = 86,
	BERTH_MSG_SUCCESS = 100,
	BERTH_MSG_DELETED = 101,
	BERTH_MSG_NO_SEND = 102,
};

#define BERTH_MPLEX_BASE 7
#define BERTH_MUX_MAX_FRAME 0xffffff

/* Static name of a message code ("MSG_DATA", ...), "?" if unknown. */
const char *berth_msg_name(int code);

/* Which stream the demultiplexer reads: it decides which codes are legal. */
enum berth_demux_dir {
	BERTH_DEMUX_C2S = 0, /* a sending client's stream (what berth reads) */
	BERTH_DEMUX_S2C = 1, /* a server's stream (tests, tools) */
};

/* Demultiplexer state; caller-owned, init/destroy. */
struct berth_demux {
	uint8_t hdr[4];
	unsigned hdr_len;
	bool in_frame;
	int code;
	uint32_t left;
	int dir;
	uint8_t *msg;
	size_t msg_len;
	size_t msg_cap;
};

enum {
	BERTH_DEMUX_DATA = 2, /* ev->ptr/len: a slice of the input, MSG_DATA */
	BERTH_DEMUX_MSG = 3, /* ev: one complete out-of-band message */
};

struct berth_demux_event {
	int code;
	const uint8_t *ptr; /* DATA: points into the input; MSG: into @d */
	size_t len;
	int32_t value; /* int32 payload of IO_ERROR, NO_SEND, SUCCESS,
			  ERROR_EXIT (-1 if ERROR_EXIT was empty) */
};

/*
 * Prepare @d.  Messages other than MSG_DATA longer than @max_msg are
 * -BERTH_ELIMIT.  Returns 0 or -ENOMEM.
 */
int berth_demux_init(struct berth_demux *d, enum berth_demux_dir dir,
		     size_t max_msg);
void berth_demux_destroy(struct berth_demux *d);

/*
 * Consume frame bytes from @in until one event is ready: returns
 * BERTH_DEMUX_DATA (ev->ptr/len: payload bytes inside @in, valid while @in
 * is), BERTH_DEMUX_MSG (ev: a message; ptr valid until the next call), or
 * BERTH_PROTO_MORE when @in is used up.  Zero-length DATA frames
 * (keep-alives) and MSG_NOOP produce no event.  An unknown or illegal code
 * or a fixed-size message of the wrong size is -BERTH_EPROTO.
 */
int berth_demux_poll(struct berth_demux *d, struct berth_proto_in *in,
		     struct berth_demux_event *ev);

/* True if @d is between frames (a clean place for the stream to end). */
bool berth_demux_idle(const struct berth_demux *d);

/* A frame header for @len (< 2^24) payload bytes of @code. */
int berth_mux_put_header(struct berth_proto_out *out, int code, size_t len);
/* Header + payload. */
int berth_mux_put_msg(struct berth_proto_out *out, int code, const void *p,
		      size_t len);
/* A message with a 4-byte int32 payload (SUCCESS, NO_SEND, ERROR_EXIT...). */
int berth_mux_put_int_msg(struct berth_proto_out *out, int code, int32_t v);

/* --------------------------------------------------- handshake (§4) */

/* Compat flags (§4.2). */
#define BERTH_CF_INC_RECURSE (1u << 0)
#define BERTH_CF_SYMLINK_TIMES (1u << 1)
#define BERTH_CF_SYMLINK_ICONV (1u << 2)
#define BERTH_CF_SAFE_FLIST (1u << 3)
#define BERTH_CF_AVOID_XATTR_OPTIM (1u << 4)
#define BERTH_CF_CHKSUM_SEED_FIX (1u << 5)
#define BERTH_CF_INPLACE_PARTIAL_DIR (1u << 6)
#define BERTH_CF_VARINT_FLIST_FLAGS (1u << 7)
#define BERTH_CF_ID0_NAMES (1u << 8)

enum berth_compress {
	BERTH_COMPRESS_NONE = 0,
	BERTH_COMPRESS_ZLIB,
	BERTH_COMPRESS_ZLIBX,
	BERTH_COMPRESS_LZ4,
	BERTH_COMPRESS_ZSTD,
};

/*
 * Checksum types and their wire names are shared with the delta engine
 * (enum berth_csum_type, berth_csum_from_name(), berth_csum_name(),
 * berth_csum_digest_len() in engine/common/sums.h): one table for both.
 */
int berth_compress_by_name(const char *name, size_t len);
const char *berth_compress_name(int compress);

/* What berth offers when the caller does not say (§4.3); the compressors
   in the stock server's order, so that both sides pick the same one. */
#define BERTH_HS_CHECKSUM_LIST "xxh128 xxh3 xxh64 md5 md4"
#define BERTH_HS_COMPRESS_LIST "zstd lz4 zlibx zlib none"

struct berth_hs_config {
	int max_protocol; /* 30..32; 0 = BERTH_PROTO_MAX */
	const char *client_caps; /* text after 'e' in the -letters arg,
					e.g. ".iLsfxCIvu"; NULL if absent */
	bool allow_inc_recurse; /* may grant CF_INC_RECURSE */
	bool compress; /* 'z', an explicit compress choice or a level */
	bool compress_level0; /* --compress-level=0: zlib and zlibx then
				 mean no compression (rsync's rule) */
	const char *checksum_choice; /* --checksum-choice=X[,Y] or NULL */
	const char *compress_choice; /* fixed compressor name or NULL */
	const char *checksum_list; /* offered and supported; NULL = default */
	const char *compress_list; /* offered and supported; NULL = default */
	bool no_symlink_iconv; /* do not set CF_SYMLINK_ICONV (stock
					Debian sets it; it only matters
					with --iconv) */
	int32_t seed; /* --checksum-seed or time^pid<<6 */
};

/* Outcome of the handshake; valid once berth_hs_get_lists() is done. */
struct berth_hs_result {
	int protocol; /* negotiated: min(client, ours) */
	int client_protocol;
	uint32_t compat; /* what we sent (0 below 30) */
	bool negotiate; /* name lists were exchanged */
	bool compat_byte; /* compat sent as a byte ('V' client) */
	int xfer_csum; /* enum berth_csum: block sums + whole-file sum */
	int file_csum; /* enum berth_csum: --checksum flist sums */
	int compress; /* enum berth_compress */
	int32_t seed;
};

struct berth_hs {
	struct berth_hs_config cfg;
	struct berth_hs_result res;
	int state;
	struct berth_proto_stash stash;
	uint8_t stash_buf[1024];
};

/*
 * Server-side handshake (§4.1).  Call in this order:
 *   berth_hs_init; berth_hs_put_version (may be sent at once);
 *   berth_hs_get_version until DONE; berth_hs_put_setup (compat flags and
 *   our name lists); berth_hs_get_lists until DONE (client's lists, choice);
 *   berth_hs_put_seed.  After that both directions are multiplexed (below
 *   protocol 30 only ours: the client's stream stays plain; setup and
 *   lists are then empty: no compat flags, no negotiation, MD4 sums).
 * Errors: a client version < 20 or > 40 -BERTH_EPROTO; 20..26, a choice
 * berth does not support, or nothing in common -BERTH_EUNSUPPORTED;
 * -EINVAL when called out of order or with a bad config.
 */
int berth_hs_init(struct berth_hs *hs, const struct berth_hs_config *cfg);
int berth_hs_put_version(struct berth_hs *hs, struct berth_proto_out *out);
int berth_hs_get_version(struct berth_hs *hs, struct berth_proto_in *in);
int berth_hs_put_setup(struct berth_hs *hs, struct berth_proto_out *out);
int berth_hs_get_lists(struct berth_hs *hs, struct berth_proto_in *in);
int berth_hs_put_seed(struct berth_hs *hs, struct berth_proto_out *out);

/* The server argv (§2): struct berth_opts and its parser. */
#include "protocol/proto_opts.h"

/* ------------------------------------------------- filter rules (§6) */

enum berth_filter_type {
	BERTH_FILTER_EXCLUDE = 1, /* "-" */
	BERTH_FILTER_INCLUDE, /* "+" */
	BERTH_FILTER_CLEAR, /* "!" */
	BERTH_FILTER_MERGE, /* "." */
	BERTH_FILTER_DIRMERGE, /* ":" */
};

/* Rule modifiers (§6.2). */
#define BERTH_FM_ABS (1u << 0) /* '/' */
#define BERTH_FM_NEGATE (1u << 1) /* '!' */
#define BERTH_FM_CVS (1u << 2) /* 'C' */
#define BERTH_FM_NO_INHERIT (1u << 3) /* 'n' */
#define BERTH_FM_WORDS (1u << 4) /* 'w' */
#define BERTH_FM_DEF_INCL (1u << 5) /* '+' (merge-file default) */
#define BERTH_FM_DEF_EXCL (1u << 6) /* '-' (merge-file default) */
#define BERTH_FM_EXCL_SELF (1u << 7) /* 'e' */
#define BERTH_FM_XATTR (1u << 8) /* 'x' */
#define BERTH_FM_SENDER (1u << 9) /* 's' */
#define BERTH_FM_RECEIVER (1u << 10) /* 'r' */
#define BERTH_FM_PERISHABLE (1u << 11) /* 'p' */

struct berth_filter_rule {
	int type; /* enum berth_filter_type */
	unsigned mods; /* BERTH_FM_* */
	bool dir_only; /* pattern had a trailing '/' (removed) */
	const char *pattern; /* not NUL-terminated; valid until next call */
	size_t pattern_len;
};

/* Parse one rule's text (e.g. "-r keep*") into @rule (pointing into
   @text).  Returns 0 or -BERTH_EPROTO. */
int berth_filter_parse(const char *text, size_t len,
		       struct berth_filter_rule *rule);

struct berth_filter_dec {
	struct berth_proto_stash stash;
	/* Protocols < 29 (set after init): "+ X" and "- X" are the only
	 * prefixes, "!" clears, any other text is an exclude pattern. */
	bool old_prefixes;
	char *text;
	size_t max_len;
	unsigned max_rules, count;
	struct berth_filter_rule *out;
};

enum { BERTH_FILTER_RULE = 2 };

/* Rules longer than @max_len or more than @max_rules: -BERTH_ELIMIT. */
int berth_filter_dec_init(struct berth_filter_dec *d, size_t max_len,
			  unsigned max_rules);
void berth_filter_dec_destroy(struct berth_filter_dec *d);
/*
 * Decode the filter list (§6.2) from the C2S data stream: returns
 * BERTH_FILTER_RULE with @rule set, BERTH_PROTO_DONE at the terminating
 * int32 0, BERTH_PROTO_MORE, or an error.
 */
int berth_filter_decode(struct berth_filter_dec *d, struct berth_proto_in *in,
			struct berth_filter_rule *rule);

/* ---------------------------------------------------- file list (§7) */

/* xflags (§7.2). */
#define BERTH_XMIT_TOP_DIR (1u << 0)
#define BERTH_XMIT_SAME_MODE (1u << 1)
#define BERTH_XMIT_EXTENDED_FLAGS (1u << 2)
#define BERTH_XMIT_SAME_UID (1u << 3)
#define BERTH_XMIT_SAME_GID (1u << 4)
#define BERTH_XMIT_SAME_NAME (1u << 5)
#define BERTH_XMIT_LONG_NAME (1u << 6)
#define BERTH_XMIT_SAME_TIME (1u << 7)
#define BERTH_XMIT_SAME_RDEV_MAJOR (1u << 8)
#define BERTH_XMIT_NO_CONTENT_DIR (1u << 8)
#define BERTH_XMIT_HLINKED (1u << 9)
#define BERTH_XMIT_USER_NAME_FOLLOWS (1u << 10)
#define BERTH_XMIT_GROUP_NAME_FOLLOWS (1u << 11)
#define BERTH_XMIT_HLINK_FIRST (1u << 12)
#define BERTH_XMIT_IO_ERROR_ENDLIST (1u << 12)
#define BERTH_XMIT_MOD_NSEC (1u << 13)
#define BERTH_XMIT_SAME_ATIME (1u << 14)
#define BERTH_XMIT_CRTIME_EQ_MTIME (1u << 17)

/* berth_file.flags; ABBREV: a hard-link entry copied from its group's first
 * member (§7.3 row 4) */
#define BERTH_FILE_INACTIVE (1u << 0) /* duplicate, or --iconv failed */
#define BERTH_FILE_ABBREV (1u << 1)
#define BERTH_FILE_HAS_RDEV (1u << 2)
#define BERTH_FILE_HAS_ATIME (1u << 3)
#define BERTH_FILE_HAS_CRTIME (1u << 4)
#define BERTH_FILE_XATTR_LIT (1u << 5) /* xattr_set arrived literally here */
#define BERTH_FILE_TOP_DIR (1u << 6) /* these four: the xflags kept */
#define BERTH_FILE_NO_CONTENT_DIR (1u << 7) /* a directory's only */
#define BERTH_FILE_HLINKED (1u << 8)
#define BERTH_FILE_HLINK_FIRST (1u << 9)

/*
 * The fields of an entry that most entries do not have (a symlink target,
 * a --checksum sum, atime, crtime, rdev, xattr and ACL references), kept
 * out of line so that the common entry stays small.  An entry without any
 * points at berth_file_ext_none.
 */
struct berth_file_ext {
	/* the path's directory part with its '/' ("" at the top): one
	 * copy per directory of a list, shared (berth_file_path()) */
	const char *dir;
	const char *link; /* symlink target or NULL */
	const uint8_t *sum; /* --checksum digest (flist_csum_len) or NULL */
	int64_t atime;
	int64_t crtime;
	uint32_t link_len;
	uint32_t dir_len; /* strlen(dir) */
	uint32_t rdev_major, rdev_minor;
	int32_t xattr_set; /* -1 or index for berth_flist_dec_xattrs() */
	int32_t acl[2]; /* access, default ACL: -1 or index for
			   berth_flist_dec_acl() */
};

/* At the top; no link, sum or rdev; times 0; no xattr set or ACLs. */
extern const struct berth_file_ext berth_file_ext_none;

/*
 * One file-list entry (48 bytes).  Pointers are owned by the berth_flist;
 * ext is never NULL.  The entry's path is ext->dir followed by base
 * (berth_file_path()): a list keeps each directory's path once.
 */
struct berth_file {
	const char *base; /* last component of the path, NUL-terminated */
	const struct berth_file_ext *ext; /* also its directory part */
	int64_t size;
	int64_t mtime;
	uint32_t nsec;
	uint32_t uid, gid;
	uint16_t mode; /* st_mode: the type bits (§3.6) and 07777 */
	uint16_t flags; /* BERTH_FILE_* */
};

/* Holds the path of any entry: berth_file_path()'s buffer. */
#define BERTH_PATH_BUF 4096

/*
 * The entry's path from the transfer root, NUL-terminated: f->base itself
 * at the top, else its directory part and base composed in @buf
 * (BERTH_PATH_BUF bytes).  Valid while @buf and the list are.
 */
const char *berth_file_path(const struct berth_file *f, char *buf);
/* strlen() of that path: at most 4095 (berth_flist_config.max_name). */
uint32_t berth_file_path_len(const struct berth_file *f);

struct berth_flist_blk;

/* One received list, sorted (§7.7): files[i] has ndx ndx_start + i. */
struct berth_flist {
	int32_t ndx_start;
	uint32_t count;
	int32_t dir_k; /* -1 for the initial list, else directory #k */
	int32_t io_error; /* from the end marker (§7.4) */
	struct berth_file *files;
	/* with berth_flist_config.conv or .tx_order: the transmission
	 * position of files[i], else NULL */
	uint32_t *tx_of;
	/* -1 or files[i]'s hard-link group's first member's ndx (sorted in
	 * this list, else the raw reference); NULL when no entry has one */
	int32_t *hlink;
	/* names, link targets, sums, ext records: blocks that never move */
	struct berth_flist_blk *blks;
};

/* One xattr (§7.8): value bytes when datum_len <= 32, else a 16-byte MD5. */
struct berth_xattr {
	const char *name; /* NUL-terminated */
	uint32_t name_len; /* including the NUL, as on the wire */
	uint32_t datum_len;
	const uint8_t *value;
};

struct berth_xattr_set {
	uint32_t count;
	struct berth_xattr *items;
};

/* ACLs (§7.8): which of the four object entries are present. */
#define BERTH_ACL_USER_OBJ (1u << 0)
#define BERTH_ACL_GROUP_OBJ (1u << 1)
#define BERTH_ACL_MASK_OBJ (1u << 2)
#define BERTH_ACL_OTHER_OBJ (1u << 3)
#define BERTH_ACL_NAME_LIST (1u << 4)

struct berth_acl_ida {
	uint32_t id;
	uint32_t perms; /* rwx = 4|2|1 */
	bool is_user; /* else a group */
};

struct berth_acl {
	uint8_t flags; /* BERTH_ACL_* */
	uint32_t mode; /* of the entry that carried it */
	uint32_t user_obj, group_obj, mask_obj, other_obj;
	uint32_t count;
	struct berth_acl_ida *idas;
};

/* What a berth_flist_conv_fn converts. */
enum { BERTH_FLIST_CONV_NAME = 0, BERTH_FLIST_CONV_LINK = 1 };

/*
 * --iconv: convert a received entry's full name (@what NAME) or symlink
 * target (@what LINK; @name is then the entry's converted name, for the
 * caller's message) from the wire's charset into the local one.  Called
 * once per entry and field, on the decoding thread, before the name is
 * checked and the list sorted.  Returns 0 with *@out / *@out_len set (the
 * callee's bytes, NUL-terminated, valid until its next call with the same
 * @what); 1 when this entry cannot be converted: the decoder keeps it (the
 * peer's indices count it) with an empty name, BERTH_FILE_INACTIVE, and
 * the callee has reported it; < 0 ends the decoding with that error.  The
 * next entry's shared prefix is still taken from the name as received.
 * Meant for one complete list: an inactive entry's empty name fails the
 * check of an incremental sub-list (rsync-protocol.md §7.9).
 */
typedef int (*berth_flist_conv_fn)(void *arg, int what, const char *name,
				   const char *in, size_t len, const char **out,
				   size_t *out_len);

struct berth_flist_config {
	int protocol;
	uint32_t compat; /* BERTH_CF_* as negotiated */
	bool links, owner, group, devices, specials, hard_links, checksum;
	bool atimes, crtimes, acls;
	int xattrs;
	bool numeric_ids; /* no uid/gid name lists */
	/* -R: a leading '/' is dropped after sorting; -R and -r decide the
	 * content directories below protocol 30 (proto_flist_old.c) */
	bool relative, recursive;
	int flist_csum_len; /* digest length of the --checksum sum */
	/* limits (0 = default) */
	uint32_t max_files; /* entries over all lists (default 1<<22) */
	uint32_t max_name; /* full path bytes (default 4095) */
	uint32_t max_link; /* symlink target bytes (default 4095) */
	uint32_t max_ids; /* uid + gid names (default 65536) */
	uint32_t max_xattr_sets; /* default 65536 */
	uint32_t max_xattr_count; /* items per set (default 1024) */
	uint32_t max_xattr_bytes; /* wire bytes of one literal set
				      (default 65536) */
	uint32_t max_acls; /* literal ACLs per kind (default 65536) */
	uint32_t max_acl_entries; /* named entries per ACL (default 1024) */
	uint64_t max_list_bytes; /* names, link targets and sums of one list
				     (default 1 GiB) */
	uint64_t max_attr_bytes; /* all xattr sets and ACLs of the session
				     (default 64 MiB) */
	berth_flist_conv_fn conv; /* NULL: names as received */
	void *conv_arg;
	bool tx_order; /* keep berth_flist.tx_of (also kept with conv) */
};

/* Fill the format part of @cfg from options and the handshake. */
void berth_flist_config_init(struct berth_flist_config *cfg,
			     const struct berth_opts *o,
			     const struct berth_hs_result *hs);

struct berth_flist_dec;

/*
 * Create a file-list decoder (session-long: the "previous entry" state,
 * the directory list, id names, xattr sets and ACLs live here).  -EINVAL
 * for a bad config, -ENOMEM.
 */
int berth_flist_dec_create(struct berth_flist_dec **d,
			   const struct berth_flist_config *cfg);
void berth_flist_dec_free(struct berth_flist_dec *d);

/*
 * Begin the next list: @dir_k = -1 for the initial list, else the k of the
 * NDX_FLIST_OFFSET - k that announced it (inc-recursion; k must name a
 * known directory, else -BERTH_EPROTO).
 */
int berth_flist_dec_begin(struct berth_flist_dec *d, int32_t dir_k);

/*
 * Feed C2S data bytes.  Returns BERTH_PROTO_MORE, or BERTH_PROTO_DONE when
 * the list (and, non-incremental, the uid/gid name lists) is complete,
 * validated (§7.5), sorted and cleaned (§7.7): take it with
 * berth_flist_dec_take().  Errors: -BERTH_EPROTO (bad field), -BERTH_EPATH
 * (unsafe or over-long name), -BERTH_ELIMIT, -ENOMEM.  After an error the
 * decoder is unusable.
 */
int berth_flist_decode(struct berth_flist_dec *d, struct berth_proto_in *in);

/* The finished list; the caller owns it (berth_flist_free). */
struct berth_flist *berth_flist_dec_take(struct berth_flist_dec *d);
void berth_flist_free(struct berth_flist *fl);

/* Names received for ids (inline or id lists, §7.6); NULL if none. */
const char *berth_flist_dec_user_name(const struct berth_flist_dec *d,
				      uint32_t uid);
const char *berth_flist_dec_group_name(const struct berth_flist_dec *d,
				       uint32_t gid);
/* Literal xattr set number @idx (berth_file.xattr_set), NULL if none. */
const struct berth_xattr_set *berth_flist_dec_xattrs(
	const struct berth_flist_dec *d, int32_t idx);
/* Literal ACL number @idx of the access (@dflt false) or default list. */
const struct berth_acl *berth_flist_dec_acl(const struct berth_flist_dec *d,
					    bool dflt, int32_t idx);
/* Number of directories in the inc-recursion directory list. */
uint32_t berth_flist_dec_ndirs(const struct berth_flist_dec *d);

/*
 * §7.7 order of two entries (name + is-directory); < 0, 0, > 0.  The root
 * "." sorts first.
 */
int berth_flist_cmp(const char *a, bool a_dir, const char *b, bool b_dir);

/*
 * §7.5 name check: relative, no empty, "." (except the whole name ".")
 * or ".." components, no NUL, at most @max bytes.  0 or -BERTH_EPATH.
 */
int berth_flist_check_name(const char *name, size_t len, size_t max);

/* ------------------------------------- sums, tokens (§8.5, §9.2, §9.3) */

/*
 * The sum head (struct berth_sum_head), its checks and encoding are shared
 * with the delta engine (engine/common/sums.h); the block sums are the
 * delta engine's (engine/delta/).
 */

struct berth_tok_dec;

struct berth_tok_config {
	int compress; /* enum berth_compress */
	int protocol; /* negotiated (zlib's matched-data rule below 31);
			 0 = BERTH_PROTO_MAX */
	int csum_type; /* enum berth_csum_type: sum head checks */
	int digest_len; /* whole-file checksum bytes after the end */
	int zstd_window_log; /* max window (memory bound); 0 = 27 */
	size_t out_size; /* zstd/zlib literal chunk buffer; 0 = 128 KiB */
};

enum {
	BERTH_TOK_HEAD = 2, /* ev->head: the echoed sum head (checked) */
	BERTH_TOK_LITERAL = 3, /* ev->ptr/len: literal bytes (input slice for
				  plain tokens, decoder buffer otherwise) */
	BERTH_TOK_BLOCKS = 4, /* ev->block .. ev->block + ev->nblocks - 1 */
	BERTH_TOK_END = 5, /* ev->sum: digest_len bytes; file done */
};

struct berth_tok_event {
	const uint8_t *ptr;
	size_t len;
	int32_t block;
	int32_t nblocks;
	const struct berth_sum_head *head;
	const uint8_t *sum;
};

/*
 * Session-long token decoder (§9.2, §9.3): plain, zlib, zlibx, lz4 or
 * zstd tokens (one zstd context for the whole session; zlib/zlibx start
 * afresh with every file).  -ENOMEM, -EINVAL (bad config),
 * -BERTH_EUNSUPPORTED (unknown compressor).  Any thread, one at a time.
 */
int berth_tok_dec_create(struct berth_tok_dec **d,
			 const struct berth_tok_config *cfg);
void berth_tok_dec_free(struct berth_tok_dec *d);
/* Start the next transferred file: sum head echo, tokens, checksum. */
int berth_tok_dec_begin(struct berth_tok_dec *d);
/*
 * Decode from @in: returns one event (BERTH_TOK_*), BERTH_PROTO_MORE, or
 * -BERTH_EPROTO (bad sum head, block index >= count, bad flag byte, zero
 * or negative literal length, corrupt compressed data).  After
 * BERTH_TOK_END call berth_tok_dec_begin() for the next file.  -EINVAL
 * while matched blocks wait for berth_tok_dec_see().
 */
int berth_tok_decode(struct berth_tok_dec *d, struct berth_proto_in *in,
		     struct berth_tok_event *ev);
/*
 * zlib (not zlibx) continues its literal data from the matched data: the
 * receiver must put every matched block into the inflate history before
 * decoding on (§9.3).  True for such a decoder: then after each
 * BERTH_TOK_BLOCKS event call berth_tok_dec_see() once per block, in
 * order, with the basis bytes of that block.
 */
bool berth_tok_dec_needs_basis(const struct berth_tok_dec *d);
/*
 * The basis bytes of the next matched block of the last BERTH_TOK_BLOCKS
 * event (@len must be that block's length; the caller keeps @ptr).  0;
 * -EINVAL when no block waits or @len is wrong; -BERTH_EPROTO when the
 * inflate stream cannot take them (a corrupt stream).
 */
int berth_tok_dec_see(struct berth_tok_dec *d, const void *ptr, size_t len);

/* ----------------------------------------- item records (§8.3, §9.1) */

/* iflags (§8.4) */
#define BERTH_ITEM_REPORT_ATIME (1u << 0)
#define BERTH_ITEM_REPORT_CHANGE (1u << 1)
#define BERTH_ITEM_REPORT_SIZE (1u << 2)
#define BERTH_ITEM_REPORT_TIMEFAIL (1u << 2)
#define BERTH_ITEM_REPORT_TIME (1u << 3)
#define BERTH_ITEM_REPORT_PERMS (1u << 4)
#define BERTH_ITEM_REPORT_OWNER (1u << 5)
#define BERTH_ITEM_REPORT_GROUP (1u << 6)
#define BERTH_ITEM_REPORT_ACL (1u << 7)
#define BERTH_ITEM_REPORT_XATTR (1u << 8)
#define BERTH_ITEM_REPORT_CRTIME (1u << 10)
#define BERTH_ITEM_BASIS_TYPE_FOLLOWS (1u << 11)
#define BERTH_ITEM_XNAME_FOLLOWS (1u << 12)
#define BERTH_ITEM_IS_NEW (1u << 13)
#define BERTH_ITEM_LOCAL_CHANGE (1u << 14)
#define BERTH_ITEM_TRANSFER (1u << 15)

/* fnamecmp_type values (§8.3) */
#define BERTH_FNAMECMP_PARTIAL_DIR 0x81
#define BERTH_FNAMECMP_BACKUP 0x82
#define BERTH_FNAMECMP_FUZZY 0x83

#define BERTH_MAX_XATTR_REQ 256

/* One generator record, or one echo from the sender (without its sums). */
struct berth_item {
	int32_t ndx; /* >= 0, or a negative special (no other field) */
	uint16_t iflags;
	uint8_t fnamecmp_type; /* valid with ITEM_BASIS_TYPE_FOLLOWS */
	const char *xname; /* valid with ITEM_XNAME_FOLLOWS */
	size_t xname_len;
	/* xattr request (generator) / values (echo): absolute 1-based
	   numbers; values point into the decoder */
	uint32_t nxattr;
	uint32_t xattr_num[BERTH_MAX_XATTR_REQ];
	uint32_t xattr_len[BERTH_MAX_XATTR_REQ];
	const uint8_t *xattr_val[BERTH_MAX_XATTR_REQ];
};

/*
 * Write a generator record (§8.3) without its sum head: ndx, iflags,
 * [fnamecmp_type], [xname], and the xattr request when @with_xattr_req
 * (X && !dry-run && REPORT_XATTR && !optimisation, §8.3).
 */
int berth_item_put(struct berth_proto_out *out, struct berth_ndx_state *st,
		   const struct berth_item *it, bool with_xattr_req);

struct berth_item_dec_config {
	bool xattrs; /* 'X' and not dry run */
	bool xattr_optim; /* proto >= 31 and CF_AVOID_XATTR_OPTIM clear */
	bool values; /* reading the sender's echo (values), not a
			      generator record (request numbers) */
	size_t max_xattr_bytes; /* all values of one echo; 0 = 1 MiB */
};

struct berth_item_dec {
	struct berth_item_dec_config cfg;
	struct berth_ndx_state ndx;
	struct berth_proto_stash stash;
	char xname[0x8000];
	uint8_t *vals;
	struct berth_item *out;
};

int berth_item_dec_init(struct berth_item_dec *d,
			const struct berth_item_dec_config *cfg);
void berth_item_dec_destroy(struct berth_item_dec *d);
/*
 * Read one record or echo header (§9.1) into @it: BERTH_PROTO_DONE (a
 * negative it->ndx is a special index and nothing else was read),
 * BERTH_PROTO_MORE, or -BERTH_EPROTO / -BERTH_ELIMIT.  The sum head and
 * tokens that follow a transfer are read with berth_tok_decode().
 */
int berth_item_decode(struct berth_item_dec *d, struct berth_proto_in *in,
		      struct berth_item *it);

/* ------------------------- xattr request and values (§8.3, §9.1) */

/*
 * The generator's xattr request: the strictly increasing 1-based item
 * numbers @nums[0..n) as differences, then the 0 terminator.  -EINVAL for
 * numbers out of order, -ENOBUFS (nothing written) without room.
 */
int berth_xattr_req_put(struct berth_proto_out *out, const uint32_t *nums,
			uint32_t n);

/* One value of the sender's answer. */
struct berth_xattr_val {
	uint32_t num; /* absolute 1-based item number */
	uint32_t len;
	const uint8_t *ptr; /* len bytes; valid until the next call (input or
			       decoder storage) */
};

enum { BERTH_XATTR_VAL = 2 };

/*
 * Decoder of the answer (varint number difference, varint length, value;
 * 0 ends the list), one whole value per event.  Session-long; call
 * berth_xattr_val_dec_begin() before each list.
 */
struct berth_xattr_val_dec {
	struct berth_proto_stash stash;
	size_t max_value; /* one value */
	size_t max_total; /* all values of one list; 0 = no limit */
	size_t total;
	uint32_t num;
	struct berth_xattr_val *out;
};

/* -EINVAL (max_value 0 or > INT32_MAX), -ENOMEM. */
int berth_xattr_val_dec_init(struct berth_xattr_val_dec *d, size_t max_value,
			     size_t max_total);
void berth_xattr_val_dec_destroy(struct berth_xattr_val_dec *d);
void berth_xattr_val_dec_begin(struct berth_xattr_val_dec *d);
/*
 * BERTH_XATTR_VAL (@ev set), BERTH_PROTO_DONE at the terminator,
 * BERTH_PROTO_MORE, -BERTH_EPROTO (a number that does not go up, a
 * negative length), -BERTH_ELIMIT (a value or the list over the limits).
 */
int berth_xattr_val_decode(struct berth_xattr_val_dec *d,
			   struct berth_proto_in *in,
			   struct berth_xattr_val *ev);

/* ---------------------------------------------- end of session (§10) */

/* Deletion counts for NDX_DEL_STATS (§10.2). */
struct berth_del_stats {
	int32_t files, dirs, symlinks, devices, specials;
};

/* NDX_DONE (one byte 00). */
int berth_done_put(struct berth_proto_out *out, struct berth_ndx_state *st);
/* NDX_DEL_STATS + 5 varints (proto >= 31 only; -EINVAL below). */
int berth_del_stats_put(struct berth_proto_out *out, struct berth_ndx_state *st,
			int protocol, const struct berth_del_stats *ds);
/*
 * How many NDX_DONE the generator writes after its last phase-0 list
 * (G2, G3 and, proto >= 31, G4, then G_final) — §8.6 / §10.1.  Below 29
 * there is no G3 (no delay-updates phase): 2.
 */
int berth_end_done_count(int protocol);
/* MSG_DELETED (§5.2): directories carry a trailing NUL. */
int berth_deleted_put(struct berth_proto_out *out, const char *name, size_t len,
		      bool is_dir);

/* ------------------------------------------ daemon text lines (§1.2) */

/* The authentication digests of an rsync daemon, in our order of
 * preference: the list our greeting offers. */
enum {
	BERTH_DAUTH_MD4 = 1,
	BERTH_DAUTH_MD5,
	BERTH_DAUTH_SHA1,
	BERTH_DAUTH_SHA256,
	BERTH_DAUTH_SHA512,
	/* Below protocol 30 with no list: MD4 over a 4-byte zero seed,
	 * then the secret and the challenge (rsync's old MD4); not offered
	 * by name. */
	BERTH_DAUTH_MD4_OLD,
};
#define BERTH_DAUTH_LIST "sha512 sha256 sha1 md5 md4"

/* A peer's "@RSYNCD: V[.S][ LIST]" line (without its newline). */
struct berth_dgreet {
	int version;
	int sub; /* -1: absent */
	bool has_list; /* a space followed the version (rsync's rule: even
			* an empty list is a list) */
	char list[256];
};

/* Parse @line (NUL-terminated, no newline).  0, -BERTH_EPROTO if it is
 * not a greeting, -BERTH_ELIMIT for a list over 255 bytes. */
int berth_dgreet_parse(const char *line, struct berth_dgreet *g);
/* The protocol spoken after the greeting, rsync's rule with sub-versions;
 * -BERTH_EUNSUPPORTED for a 30 without one (a beta rsync refuses). */
int berth_dgreet_protocol(int ours, const struct berth_dgreet *g);
/* The digest for the challenge: the first of the client's list we know
 * (md5 without a list from protocol 30, md4 below); -BERTH_EUNSUPPORTED
 * when the list names none. */
int berth_dauth_choose(const struct berth_dgreet *g, int protocol);
unsigned berth_dauth_digest_len(int digest);
const char *berth_dauth_name(int digest);
/* Split the client's "USER RESPONSE" answer in place; -BERTH_EPROTO if
 * it is not two words. */
int berth_dauth_split(char *line, char **user, char **response);

#endif /* BERTH_PROTOCOL_H */
