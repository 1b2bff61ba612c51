/* SPDX-License-Identifier: MIT */
/*
 * berth protocol/ — the `rsync --server` command line of a push (§2):
 * struct berth_opts, its parser and the secluded-argument reader.  Part of
 * the module API: include "protocol/protocol.h", which includes this.
 */
#ifndef BERTH_PROTO_OPTS_H
#define BERTH_PROTO_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct berth_hs_config;
struct berth_dpolicy;
struct berth_proto_in;

/* ------------------------------------------------- server argv (§2) */

enum berth_delete_mode {
	BERTH_DELETE_NONE = 0,
	BERTH_DELETE_BEFORE,
	BERTH_DELETE_DURING,
	BERTH_DELETE_DELAY,
	BERTH_DELETE_AFTER,
};

enum berth_alt_dest { BERTH_ALT_COMPARE = 1, BERTH_ALT_COPY, BERTH_ALT_LINK };

#define BERTH_MAX_ALT_DEST 20

/*
 * Options of `rsync --server` for a push.  Strings point into the argv the
 * caller passed (which must outlive the struct).
 */
struct berth_opts {
	/* single letters (§2.2) */
	int verbose;
	bool quiet, dry_run, links, owner, group, devices, specials, times;
	bool perms, executability, recursive, dirs, checksum, cvs_exclude;
	bool ignore_times, relative, sparse, compress, whole_file;
	bool update, keep_dirlinks, prune_empty_dirs, omit_dir_times;
	bool omit_link_times, backup, secluded, crtimes, acls;
	bool super, fake_super; /* --super, --fake-super (the last wins) */
	int one_file_system, hard_links, atimes, xattrs, fuzzy;
	const char *caps; /* after 'e' (§2.3), NULL if absent */
	/* long options (§2.4) */
	const char *log_format;
	int delete_mode; /* enum berth_delete_mode */
	bool delete_plain; /* --delete without a when: the protocol decides */
	bool delete_excluded, force, size_only, ignore_existing, existing;
	bool partial, delay_updates, inplace, numeric_ids, ignore_errors;
	bool safe_links, copy_unsafe_links, fsync, mkpath, remove_source_files;
	bool preallocate, write_devices, open_noatime, stats, no_whole_file;
	bool have_seed, have_modify_window, use_qsort, no_implied_dirs;
	bool have_compress_level; /* --compress-level given (even 0) */
	int append; /* 1 --append, 2 --append-verify */
	int msgs2stderr; /* -1 default, 0 --no-msgs2stderr, 1 --msgs2stderr */
	int max_delete; /* -1 = unlimited */
	int32_t checksum_seed;
	int32_t block_size; /* -B, 0 = automatic */
	int timeout, modify_window, compress_level;
	int64_t min_size, max_size; /* -1 = unset */
	int64_t bwlimit;
	const char *partial_dir, *backup_dir, *suffix, *temp_dir;
	const char *checksum_choice, *compress_choice, *usermap, *groupmap;
	const char *info, *debug, *max_alloc;
	const char *iconv; /* --iconv=CHARSET as sent, NULL: none */
	/* --files-from: a receiving server gets it only for host:FILE */
	const char *files_from;
	bool from0;
	int n_alt_dest;
	int alt_dest_type; /* enum berth_alt_dest (all must agree) */
	const char *alt_dest[BERTH_MAX_ALT_DEST];
	const char *dest; /* DEST */
	const char *bad; /* the offending argument after an error */
	/* The first error of the command line (parsing goes on after it, so
	 * the handshake can still be made and the refusal sent as rsync's
	 * server sends one): -EINVAL (rsync exit 1) or -BERTH_EUNSUPPORTED
	 * (exit 4), 0 if none; what is wrong with @bad (a fixed phrase; the
	 * whole message when @bad is NULL); the unknown letter in the
	 * cluster @bad, or 0. */
	int bad_err;
	const char *why;
	char bad_letter;
	bool daemon; /* --daemon: the client expects an rsync daemon */
	/* berth's daemon: the module's rules for the session
	 * (engine/session/session_daemon.h); never from the arguments. */
	const struct berth_dpolicy *dpolicy;
};

/*
 * Parse a server argv (argv[0] is the program name, then "--server", the
 * letter cluster, long options, ".", DEST) into @o; "--server" may stand
 * anywhere among the options, as rsync accepts it.  With -s the argv ends
 * after the cluster: parse again with berth_opts_parse_more() once the
 * secluded arguments are read.  Returns 0; -EINVAL for an unknown option
 * or a bad or missing value (rsync exit 1); -BERTH_EUNSUPPORTED for a
 * known option berth refuses outright (--sender, --daemon,
 * --files-from, batch modes...).  The first error is kept in
 * o->bad_err, o->bad, o->why, o->bad_letter, and parsing goes on, so the
 * rest (the capabilities after -e, the compression and checksum choices)
 * is known for the handshake.  Options
 * that are parsed but not (yet) implemented by the engine (-R, -A, -N,
 * --inplace...) are only recorded: the session refuses them.
 */
int berth_opts_parse(struct berth_opts *o, int argc, char *const argv[]);

/*
 * Continue parsing with secluded arguments (§2.5, first one is the
 * program name as sent by the client).
 */
int berth_opts_parse_more(struct berth_opts *o, int argc, char *const argv[]);

/* The receiver reads the filter list (§6.1). */
bool berth_opts_want_filters(const struct berth_opts *o);
/* The same at @protocol (below 29, not with --delete-excluded). */
bool berth_opts_want_filters_at(const struct berth_opts *o, int protocol);

/* Fill a handshake config from @o (client_caps, compress, choices, seed
   when given, allow_inc_recurse per berth_opts_inc_recurse()). */
void berth_opts_hs_config(const struct berth_opts *o,
			  struct berth_hs_config *cfg);
/* May incremental recursion be granted with these options?  rsync's rule
   for a receiving server, minus the options berth only supports with one
   complete list. */
bool berth_opts_inc_recurse(const struct berth_opts *o);

/*
 * Secluded-argument reader (§2.5): NUL-terminated strings until an empty
 * one.  The strings are stored in @buf (caller-owned, @cap bytes) and
 * pointed to by @argv (caller-owned, @max_args entries, NULL-terminated on
 * DONE).  More bytes or args than that is -BERTH_ELIMIT.
 */
struct berth_secluded {
	char *buf;
	size_t cap, len;
	char **argv;
	int max_args, argc;
	size_t start; /* start of the string being read */
};

void berth_secluded_init(struct berth_secluded *s, char *buf, size_t cap,
			 char **argv, int max_args);
int berth_secluded_decode(struct berth_secluded *s, struct berth_proto_in *in);

#endif /* BERTH_PROTO_OPTS_H */
