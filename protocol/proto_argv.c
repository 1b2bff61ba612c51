/* SPDX-License-Identifier: MIT */
/*
 * `rsync --server` argv for a push (§2): the letter cluster with the
 * capability string, long options, ".", DEST, and secluded arguments.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>

#include "protocol/proto_int.h"

enum arg_kind { A_NONE, A_STR, A_INT };

enum opt_id {
	O_SERVER,
	O_SENDER,
	O_DAEMON,
	O_LOG_FORMAT,
	O_OUT_FORMAT,
	O_DELETE,
	O_DELETE_BEFORE,
	O_DELETE_DURING,
	O_DELETE_DELAY,
	O_DELETE_AFTER,
	O_DELETE_EXCLUDED,
	O_FORCE,
	O_MAX_DELETE,
	O_MIN_SIZE,
	O_MAX_SIZE,
	O_SIZE_ONLY,
	O_IGNORE_EXISTING,
	O_EXISTING,
	O_PARTIAL,
	O_PARTIAL_DIR,
	O_DELAY_UPDATES,
	O_INPLACE,
	O_APPEND,
	O_APPEND_VERIFY,
	O_NO_W,
	O_BACKUP_DIR,
	O_SUFFIX,
	O_COMPARE_DEST,
	O_COPY_DEST,
	O_LINK_DEST,
	O_TEMP_DIR,
	O_CHECKSUM_SEED,
	O_CHECKSUM_CHOICE,
	O_COMPRESS_CHOICE,
	O_NEW_COMPRESS,
	O_OLD_COMPRESS,
	O_COMPRESS_LEVEL,
	O_NUMERIC_IDS,
	O_USERMAP,
	O_GROUPMAP,
	O_NO_SPECIALS,
	O_SPECIALS,
	O_TIMEOUT,
	O_BWLIMIT,
	O_MODIFY_WINDOW,
	O_IGNORE_ERRORS,
	O_SAFE_LINKS,
	O_COPY_UNSAFE_LINKS,
	O_FSYNC,
	O_MKPATH,
	O_REMOVE_SOURCE_FILES,
	O_PREALLOCATE,
	O_WRITE_DEVICES,
	O_OPEN_NOATIME,
	O_STATS,
	O_MSGS2STDERR,
	O_NO_MSGS2STDERR,
	O_INFO,
	O_DEBUG,
	O_MAX_ALLOC,
	O_USE_QSORT,
	O_NO_R,
	O_NO_IMPLIED_DIRS,
	O_NO_RELATIVE,
	O_BLOCK_SIZE,
	O_ICONV,
	O_NO_ICONV,
	O_SUPER,
	O_FAKE_SUPER,
	O_NO_SUPER,
	O_FILES_FROM,
	O_FROM0,
	O_REFUSED, /* known, but berth does not support it */
};

static const struct {
	const char *name;
	int id;
	int kind;
} longopts[] = {
	{"server", O_SERVER, A_NONE},
	{"sender", O_SENDER, A_NONE},
	{"daemon", O_DAEMON, A_NONE},
	{"log-format", O_LOG_FORMAT, A_STR},
	{"out-format", O_OUT_FORMAT, A_STR},
	{"delete", O_DELETE, A_NONE},
	{"del", O_DELETE_DURING, A_NONE},
	{"delete-before", O_DELETE_BEFORE, A_NONE},
	{"delete-during", O_DELETE_DURING, A_NONE},
	{"delete-delay", O_DELETE_DELAY, A_NONE},
	{"delete-after", O_DELETE_AFTER, A_NONE},
	{"delete-excluded", O_DELETE_EXCLUDED, A_NONE},
	{"force", O_FORCE, A_NONE},
	{"max-delete", O_MAX_DELETE, A_INT},
	{"min-size", O_MIN_SIZE, A_STR},
	{"max-size", O_MAX_SIZE, A_STR},
	{"size-only", O_SIZE_ONLY, A_NONE},
	{"ignore-existing", O_IGNORE_EXISTING, A_NONE},
	{"existing", O_EXISTING, A_NONE},
	{"ignore-non-existing", O_EXISTING, A_NONE},
	{"partial", O_PARTIAL, A_NONE},
	{"partial-dir", O_PARTIAL_DIR, A_STR},
	{"delay-updates", O_DELAY_UPDATES, A_NONE},
	{"inplace", O_INPLACE, A_NONE},
	{"append", O_APPEND, A_NONE},
	{"append-verify", O_APPEND_VERIFY, A_NONE},
	{"no-W", O_NO_W, A_NONE},
	{"no-whole-file", O_NO_W, A_NONE},
	{"backup-dir", O_BACKUP_DIR, A_STR},
	{"suffix", O_SUFFIX, A_STR},
	{"compare-dest", O_COMPARE_DEST, A_STR},
	{"copy-dest", O_COPY_DEST, A_STR},
	{"link-dest", O_LINK_DEST, A_STR},
	{"temp-dir", O_TEMP_DIR, A_STR},
	{"checksum-seed", O_CHECKSUM_SEED, A_INT},
	{"checksum-choice", O_CHECKSUM_CHOICE, A_STR},
	{"cc", O_CHECKSUM_CHOICE, A_STR},
	{"compress-choice", O_COMPRESS_CHOICE, A_STR},
	{"zc", O_COMPRESS_CHOICE, A_STR},
	{"new-compress", O_NEW_COMPRESS, A_NONE},
	{"old-compress", O_OLD_COMPRESS, A_NONE},
	{"compress-level", O_COMPRESS_LEVEL, A_INT},
	{"zl", O_COMPRESS_LEVEL, A_INT},
	{"numeric-ids", O_NUMERIC_IDS, A_NONE},
	{"usermap", O_USERMAP, A_STR},
	{"groupmap", O_GROUPMAP, A_STR},
	{"no-specials", O_NO_SPECIALS, A_NONE},
	{"specials", O_SPECIALS, A_NONE},
	{"timeout", O_TIMEOUT, A_INT},
	{"bwlimit", O_BWLIMIT, A_STR},
	{"modify-window", O_MODIFY_WINDOW, A_INT},
	{"ignore-errors", O_IGNORE_ERRORS, A_NONE},
	{"safe-links", O_SAFE_LINKS, A_NONE},
	{"copy-unsafe-links", O_COPY_UNSAFE_LINKS, A_NONE},
	{"fsync", O_FSYNC, A_NONE},
	{"mkpath", O_MKPATH, A_NONE},
	{"remove-source-files", O_REMOVE_SOURCE_FILES, A_NONE},
	{"remove-sent-files", O_REMOVE_SOURCE_FILES, A_NONE},
	{"preallocate", O_PREALLOCATE, A_NONE},
	{"write-devices", O_WRITE_DEVICES, A_NONE},
	{"open-noatime", O_OPEN_NOATIME, A_NONE},
	{"stats", O_STATS, A_NONE},
	{"msgs2stderr", O_MSGS2STDERR, A_NONE},
	{"no-msgs2stderr", O_NO_MSGS2STDERR, A_NONE},
	{"info", O_INFO, A_STR},
	{"debug", O_DEBUG, A_STR},
	{"max-alloc", O_MAX_ALLOC, A_STR},
	{"use-qsort", O_USE_QSORT, A_NONE},
	{"no-r", O_NO_R, A_NONE},
	{"no-recursive", O_NO_R, A_NONE},
	{"no-implied-dirs", O_NO_IMPLIED_DIRS, A_NONE},
	{"no-relative", O_NO_RELATIVE, A_NONE},
	{"no-R", O_NO_RELATIVE, A_NONE},
	{"block-size", O_BLOCK_SIZE, A_INT},
	{"iconv", O_ICONV, A_STR},
	{"no-iconv", O_NO_ICONV, A_NONE},
	{"super", O_SUPER, A_NONE},
	{"fake-super", O_FAKE_SUPER, A_NONE},
	{"no-super", O_NO_SUPER, A_NONE},
	{"files-from", O_FILES_FROM, A_STR},
	{"from0", O_FROM0, A_NONE},
	/* Recognised but refused: they change the wire format or the role. */
	{"delete-missing-args", O_REFUSED, A_NONE},
	{"ignore-missing-args", O_REFUSED, A_NONE},
	{"only-write-batch", O_REFUSED, A_STR},
	{"write-batch", O_REFUSED, A_STR},
	{"read-batch", O_REFUSED, A_STR},
	{"munge-links", O_REFUSED, A_NONE},
	{"stop-at", O_REFUSED, A_STR},
	{"stop-after", O_REFUSED, A_STR},
	{"time-limit", O_REFUSED, A_STR},
	{"copy-devices", O_REFUSED, A_NONE},
	{"fuzzy", O_REFUSED, A_NONE}, /* rsync 2.x sends it long, not -y */
};

/* What went wrong with one argument: a phrase about it, or (@sentence) a
 * whole message; the unknown letter of a cluster. */
struct arg_err {
	const char *why;
	bool sentence;
	char letter;
};

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *v)
{
	char *end;
	long long x;

	errno = 0;
	x = strtoll(s, &end, 10);
	if (errno || end == s || *end || x < lo || x > hi)
		return -EINVAL;
	*v = x;
	return 0;
}

/*
 * Sizes for --min-size/--max-size/--bwlimit: a number with an optional
 * K/M/G/T suffix, binary ("K", "KiB") or decimal ("KB").
 */
static int parse_size(const char *s, int64_t *v)
{
	static const char units[] = "bkmgt";
	const char *u;
	char *end;
	double x, mult = 1, base = 1024;

	errno = 0;
	x = strtod(s, &end);
	if (errno || end == s || x < 0)
		return -EINVAL;
	if (*end) {
		u = strchr(units, *end | 0x20);
		if (!u)
			return -EINVAL;
		if ((end[1] | 0x20) == 'b' && !end[2] && *u != 'b')
			base = 1000;
		else if (end[1] && !((end[1] | 0x20) == 'i' &&
				     (end[2] | 0x20) == 'b' && !end[3]))
			return -EINVAL;
		for (long i = 0; i < u - units; i++)
			mult *= base;
	}
	if (x * mult > 9e18)
		return -EINVAL;
	*v = (int64_t)(x * mult);
	return 0;
}

/* The letter cluster after '-'.  An unknown letter is -EINVAL with the
 * letter in *@bad; the letters after it are still taken, so the
 * capabilities after 'e' are known. */
static int letters(struct berth_opts *o, const char *s, char *bad)
{
	int ret = 0;

	for (; *s; s++) {
		switch (*s) {
		case 'v':
			o->verbose++;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'n':
			o->dry_run = true;
			break;
		case 'l':
			o->links = true;
			break;
		case 'o':
			o->owner = true;
			break;
		case 'g':
			o->group = true;
			break;
		case 'D':
			o->devices = o->specials = true;
			break;
		case 't':
			o->times = true;
			break;
		case 'p':
			o->perms = true;
			break;
		case 'E':
			o->executability = true;
			break;
		case 'r':
			o->recursive = true;
			break;
		case 'd':
			o->dirs = true;
			break;
		case 'c':
			o->checksum = true;
			break;
		case 'C':
			o->cvs_exclude = true;
			break;
		case 'I':
			o->ignore_times = true;
			break;
		case 'x':
			o->one_file_system++;
			break;
		case 'S':
			o->sparse = true;
			break;
		case 'z':
			o->compress = true;
			break;
		case 'W':
			o->whole_file = true;
			break;
		case 'H':
			o->hard_links++;
			break;
		case 'U':
			/* As rsync: -UU also means --open-noatime. */
			if (++o->atimes > 1)
				o->open_noatime = true;
			break;
		case 'X':
			o->xattrs++;
			break;
		case 'b':
			o->backup = true;
			break;
		case 'u':
			o->update = true;
			break;
		case 'K':
			o->keep_dirlinks = true;
			break;
		case 'm':
			o->prune_empty_dirs = true;
			break;
		case 'O':
			o->omit_dir_times = true;
			break;
		case 'J':
			o->omit_link_times = true;
			break;
		case 'y':
			o->fuzzy++;
			break;
		case 's':
			o->secluded = true;
			break;
		case 'e':
			o->caps = s + 1;
			return ret;
		/* Parsed (the file-list decoder handles their fields); the
		 * session decides whether it implements them. */
		case 'R':
			o->relative = true;
			break;
		case 'A':
			o->acls = true;
			break;
		case 'N':
			o->crtimes = true;
			break;
		case 'L': /* only sent to a receiving client */
		case 'k':
		default:
			if (!ret)
				*bad = *s;
			ret = -EINVAL;
			break;
		}
	}
	return ret;
}

static int set_alt_dest(struct berth_opts *o, int type, const char *dir,
			struct arg_err *e)
{
	if (o->n_alt_dest >= BERTH_MAX_ALT_DEST) {
		e->why = "too many --compare-dest/--copy-dest/--link-dest "
			 "directories";
		return -EINVAL;
	}
	if (o->alt_dest_type && o->alt_dest_type != type) {
		/* rsync: only one kind of alt-dest at a time */
		e->why = "--compare-dest, --copy-dest and --link-dest cannot "
			 "be mixed";
		e->sentence = true;
		return -EINVAL;
	}
	o->alt_dest_type = type;
	o->alt_dest[o->n_alt_dest++] = dir;
	return 0;
}

/*
 * BOOL_FIELD(f) is offsetof() of field @f, which must be a bool (any other
 * type does not compile); STR_FIELD(f) the same for a const char * field.
 */
#define FIELD(f, type)                    \
	(offsetof(struct berth_opts, f) + \
	 _Generic(((struct berth_opts *)0)->f, type : 0))
#define BOOL_FIELD(f) FIELD(f, bool)
#define STR_FIELD(f) FIELD(f, const char *)

/* Options that set one bool of struct berth_opts to a constant. */
static const struct {
	int id;
	size_t off;
	bool value;
} flag_opts[] = {
	{O_FORCE, BOOL_FIELD(force), true},
	{O_SIZE_ONLY, BOOL_FIELD(size_only), true},
	{O_IGNORE_EXISTING, BOOL_FIELD(ignore_existing), true},
	{O_EXISTING, BOOL_FIELD(existing), true},
	{O_PARTIAL, BOOL_FIELD(partial), true},
	{O_DELAY_UPDATES, BOOL_FIELD(delay_updates), true},
	{O_INPLACE, BOOL_FIELD(inplace), true},
	{O_NUMERIC_IDS, BOOL_FIELD(numeric_ids), true},
	{O_NO_SPECIALS, BOOL_FIELD(specials), false},
	{O_SPECIALS, BOOL_FIELD(specials), true},
	{O_IGNORE_ERRORS, BOOL_FIELD(ignore_errors), true},
	{O_SAFE_LINKS, BOOL_FIELD(safe_links), true},
	{O_COPY_UNSAFE_LINKS, BOOL_FIELD(copy_unsafe_links), true},
	{O_FSYNC, BOOL_FIELD(fsync), true},
	{O_MKPATH, BOOL_FIELD(mkpath), true},
	{O_REMOVE_SOURCE_FILES, BOOL_FIELD(remove_source_files), true},
	{O_PREALLOCATE, BOOL_FIELD(preallocate), true},
	{O_WRITE_DEVICES, BOOL_FIELD(write_devices), true},
	{O_OPEN_NOATIME, BOOL_FIELD(open_noatime), true},
	{O_STATS, BOOL_FIELD(stats), true},
	{O_USE_QSORT, BOOL_FIELD(use_qsort), true},
	{O_NO_R, BOOL_FIELD(recursive), false},
	{O_NO_IMPLIED_DIRS, BOOL_FIELD(no_implied_dirs), true},
	{O_NO_RELATIVE, BOOL_FIELD(relative), false},
};

/* Options whose value is kept as it is, in one const char * field. */
static const struct {
	int id;
	size_t off;
} str_opts[] = {
	{O_LOG_FORMAT, STR_FIELD(log_format)},
	{O_OUT_FORMAT, STR_FIELD(log_format)},
	{O_BACKUP_DIR, STR_FIELD(backup_dir)},
	{O_SUFFIX, STR_FIELD(suffix)},
	{O_TEMP_DIR, STR_FIELD(temp_dir)},
	{O_CHECKSUM_CHOICE, STR_FIELD(checksum_choice)},
	{O_COMPRESS_CHOICE, STR_FIELD(compress_choice)},
	{O_USERMAP, STR_FIELD(usermap)},
	{O_GROUPMAP, STR_FIELD(groupmap)},
	{O_INFO, STR_FIELD(info)},
	{O_DEBUG, STR_FIELD(debug)},
	{O_MAX_ALLOC, STR_FIELD(max_alloc)},
	{O_ICONV, STR_FIELD(iconv)},
};

/* The --delete family: 1 when @id is one of them, else 0. */
static int delete_opt(struct berth_opts *o, int id)
{
	switch (id) {
	case O_DELETE:
	case O_DELETE_EXCLUDED:
		if (id == O_DELETE_EXCLUDED)
			o->delete_excluded = true;
		if (!o->delete_mode) {
			o->delete_mode = BERTH_DELETE_DURING;
			o->delete_plain = true;
		}
		break;
	case O_DELETE_BEFORE:
	case O_DELETE_DURING:
	case O_DELETE_DELAY:
	case O_DELETE_AFTER:
		o->delete_plain = false;
		o->delete_mode = id == O_DELETE_BEFORE	 ? BERTH_DELETE_BEFORE
				 : id == O_DELETE_DURING ? BERTH_DELETE_DURING
				 : id == O_DELETE_DELAY	 ? BERTH_DELETE_DELAY
							 : BERTH_DELETE_AFTER;
		break;
	default:
		return 0;
	}
	return 1;
}

/* Options with a number or a size: 1 when @id is one of them, else 0 or
 * -EINVAL for a bad value. */
static int number_opt(struct berth_opts *o, int id, const char *val)
{
	int64_t v = 0;

	switch (id) {
	case O_MAX_DELETE:
		TRY(parse_int(val, INT32_MIN, INT32_MAX, &v));
		/* "--max-delete=-1" is how the client says 0. */
		o->max_delete = v < 0 ? 0 : (int)v;
		break;
	case O_MIN_SIZE:
		TRY(parse_size(val, &o->min_size));
		break;
	case O_MAX_SIZE:
		TRY(parse_size(val, &o->max_size));
		break;
	case O_CHECKSUM_SEED:
		TRY(parse_int(val, INT32_MIN, INT32_MAX, &v));
		o->checksum_seed = (int32_t)v;
		o->have_seed = true;
		break;
	case O_COMPRESS_LEVEL:
		TRY(parse_int(val, -131072, 131072, &v));
		o->compress_level = (int)v;
		o->have_compress_level = true;
		break;
	case O_TIMEOUT:
		TRY(parse_int(val, 0, INT32_MAX, &v));
		o->timeout = (int)v;
		break;
	case O_BWLIMIT:
		TRY(parse_size(val, &o->bwlimit));
		break;
	case O_MODIFY_WINDOW:
		TRY(parse_int(val, INT32_MIN, INT32_MAX, &v));
		o->modify_window = (int)v;
		o->have_modify_window = true;
		break;
	case O_BLOCK_SIZE:
		TRY(parse_int(val, 0, 1 << 29, &v));
		o->block_size = (int32_t)v;
		break;
	default:
		return 0;
	}
	return 1;
}

/* The options that fit none of the tables and families above; a refusal
 * says why in @e. */
static int other_opt(struct berth_opts *o, int id, const char *val,
		     struct arg_err *e)
{
	switch (id) {
	case O_SERVER:
		break;
	case O_SENDER:
		e->why = "pull (--sender) is not supported: berth only "
			 "receives (push to it: rsync SRC HOST:DEST)";
		e->sentence = true;
		return -BERTH_EUNSUPPORTED;
	case O_DAEMON:
		o->daemon = true;
		e->why = "daemon mode (--daemon, HOST::MODULE) is not "
			 "supported: berth receives over a remote shell "
			 "(HOST:DEST)";
		e->sentence = true;
		return -BERTH_EUNSUPPORTED;
	case O_REFUSED:
		e->why = "not supported by berth";
		return -BERTH_EUNSUPPORTED;
	case O_PARTIAL_DIR:
		o->partial_dir = val;
		o->partial = true;
		break;
	case O_APPEND:
		if (o->append < 2)
			o->append++;
		break;
	case O_APPEND_VERIFY:
		o->append = 2;
		break;
	case O_NO_W:
		o->no_whole_file = true;
		o->whole_file = false;
		break;
	case O_COMPARE_DEST:
		return set_alt_dest(o, BERTH_ALT_COMPARE, val, e);
	case O_COPY_DEST:
		return set_alt_dest(o, BERTH_ALT_COPY, val, e);
	case O_LINK_DEST:
		return set_alt_dest(o, BERTH_ALT_LINK, val, e);
	case O_NEW_COMPRESS:
		o->compress_choice = "zlibx";
		break;
	case O_OLD_COMPRESS:
		o->compress_choice = "zlib";
		break;
	case O_MSGS2STDERR:
		o->msgs2stderr = 1;
		break;
	case O_NO_MSGS2STDERR:
		o->msgs2stderr = 0;
		break;
	case O_NO_ICONV:
		o->iconv = NULL;
		break;
	case O_SUPER:
	case O_FAKE_SUPER:
	case O_NO_SUPER:
		o->super = id == O_SUPER;
		o->fake_super = id == O_FAKE_SUPER;
		break;
	case O_FILES_FROM:
		o->files_from = val;
		break;
	case O_FROM0:
		o->from0 = true;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

/* Apply long option @id with value @val (NULL for an option without one);
 * a refusal other than a bad value says why in @e. */
static int longopt(struct berth_opts *o, int id, const char *val,
		   struct arg_err *e)
{
	char *base = (char *)o;
	size_t k;
	int r;

	for (k = 0; k < sizeof(flag_opts) / sizeof(flag_opts[0]); k++) {
		if (flag_opts[k].id == id) {
			*(bool *)(base + flag_opts[k].off) = flag_opts[k].value;
			return 0;
		}
	}
	for (k = 0; k < sizeof(str_opts) / sizeof(str_opts[0]); k++) {
		if (str_opts[k].id == id) {
			*(const char **)(base + str_opts[k].off) = val;
			return 0;
		}
	}
	if (delete_opt(o, id))
		return 0;
	r = number_opt(o, id, val);
	if (r)
		return r < 0 ? r : 0;
	return other_opt(o, id, val, e);
}

/* One argument at argv[*i] (and its value, which may be the next one);
 * npos counts the positional arguments seen: ".", then DEST. */
static int parse_arg(struct berth_opts *o, int argc, char *const argv[], int *i,
		     int *npos, struct arg_err *e)
{
	const char *a = argv[*i], *name, *eq, *val = NULL;
	size_t nlen, k;
	int64_t v;

	if (*npos || a[0] != '-' || !a[1]) {
		/* "." then DEST; a push has exactly one DEST. */
		if (*npos == 0 && strcmp(a, ".") == 0) {
			*npos = 1;
			return 0;
		}
		if (*npos != 1 || o->dest) {
			e->why = *npos ? "unexpected argument (a push has "
					 "one DEST)"
				       : "unexpected argument before \".\"";
			return -EINVAL;
		}
		o->dest = a;
		*npos = 2;
		return 0;
	}
	if (a[1] == 'B' || a[1] == '@') {
		if (parse_int(a + 2, a[1] == 'B' ? 0 : INT32_MIN,
			      a[1] == 'B' ? 1 << 29 : INT32_MAX, &v) < 0)
			return -EINVAL;
		if (a[1] == 'B') {
			o->block_size = (int32_t)v;
		} else {
			o->modify_window = (int)v;
			o->have_modify_window = true;
		}
		return 0;
	}
	if (a[1] != '-') {
		if (letters(o, a + 1, &e->letter) < 0) {
			e->why = "unknown option";
			return -EINVAL;
		}
		return 0;
	}
	name = a + 2;
	eq = strchr(name, '=');
	nlen = eq ? (size_t)(eq - name) : strlen(name);
	for (k = 0; k < sizeof(longopts) / sizeof(longopts[0]); k++)
		if (strlen(longopts[k].name) == nlen &&
		    strncmp(longopts[k].name, name, nlen) == 0)
			break;
	if (k == sizeof(longopts) / sizeof(longopts[0])) {
		e->why = "unknown option";
		return -EINVAL;
	}
	if (longopts[k].kind != A_NONE) {
		if (eq) {
			val = eq + 1;
		} else if (*i + 1 < argc) {
			val = argv[++*i];
		} else {
			e->why = "missing value";
			return -EINVAL;
		}
	} else if (eq) {
		e->why = "takes no value";
		return -EINVAL;
	}
	return longopt(o, longopts[k].id, val, e);
}

/* Keep the first error of the command line (later ones are consequences
 * more often than not). */
static void note_error(struct berth_opts *o, int err, const char *arg,
		       const struct arg_err *e)
{
	if (o->bad_err)
		return;
	o->bad_err = err;
	o->bad = arg;
	o->bad_letter = e->letter;
	o->why = e->why		  ? e->why
		 : err == -EINVAL ? "invalid value"
				  : "not supported by berth";
	if (e->sentence)
		o->bad = NULL;
}

/* Parse argv[i..]; positional args after the options are ".", DEST.  Goes
 * on after an error; returns the first one. */
static int parse_from(struct berth_opts *o, int argc, char *const argv[], int i)
{
	int npos = 0;

	for (; i < argc; i++) {
		struct arg_err e = {0};
		const char *a = argv[i];
		int r = parse_arg(o, argc, argv, &i, &npos, &e);

		if (r < 0)
			note_error(o, r, a, &e);
	}
	return o->bad_err;
}

/* No DEST: an error unless one came before. */
static int need_dest(struct berth_opts *o)
{
	static const struct arg_err e = {"no destination (DEST) given", true,
					 0};

	if (!o->dest)
		note_error(o, -EINVAL, NULL, &e);
	return o->bad_err;
}

int berth_opts_parse(struct berth_opts *o, int argc, char *const argv[])
{
	static const struct arg_err no_server = {
		"not an rsync server command line (no --server)", true, 0};
	int k;

	memset(o, 0, sizeof(*o));
	o->msgs2stderr = -1;
	o->max_delete = -1;
	o->min_size = o->max_size = -1;
	for (k = 1; k < argc; k++)
		if (strcmp(argv[k], "--server") == 0)
			break;
	if (k >= argc) {
		note_error(o, -EINVAL, NULL, &no_server);
		return o->bad_err;
	}
	parse_from(o, argc, argv, 1);
	return o->secluded ? o->bad_err : need_dest(o);
}

int berth_opts_parse_more(struct berth_opts *o, int argc, char *const argv[])
{
	parse_from(o, argc, argv, 1);
	return need_dest(o);
}

bool berth_opts_want_filters_at(const struct berth_opts *o, int protocol)
{
	/* Before 29 a client with --delete-excluded sends no list. */
	return o->prune_empty_dirs || (o->delete_mode != BERTH_DELETE_NONE &&
				       (!o->delete_excluded || protocol >= 29));
}

bool berth_opts_want_filters(const struct berth_opts *o)
{
	return berth_opts_want_filters_at(o, BERTH_PROTO_MAX);
}

void berth_opts_hs_config(const struct berth_opts *o,
			  struct berth_hs_config *cfg)
{
	cfg->client_caps = o->caps;
	/* A level alone turns compression on (rsync); "auto" is no choice. */
	cfg->compress = o->compress || o->compress_choice ||
			o->have_compress_level;
	cfg->compress_level0 = o->have_compress_level && !o->compress_level;
	cfg->checksum_choice = o->checksum_choice;
	cfg->compress_choice = o->compress_choice &&
					       strcasecmp(o->compress_choice,
							  "auto") != 0
				       ? o->compress_choice
				       : NULL;
	if (o->have_seed)
		cfg->seed = o->checksum_seed;
	cfg->allow_inc_recurse = berth_opts_inc_recurse(o);
}

bool berth_opts_inc_recurse(const struct berth_opts *o)
{
	/* rsync's own rule for a receiving server (§2.3). */
	if (!o->recursive || o->use_qsort || o->prune_empty_dirs ||
	    o->delay_updates || o->delete_mode == BERTH_DELETE_BEFORE ||
	    o->delete_mode == BERTH_DELETE_AFTER)
		return false;
	/* berth's incremental receiver does not do these (yet): hard links
	 * span lists, the others keep per-file state across the session or
	 * look beyond the list being generated.  Declining is always legal:
	 * the client then sends one complete list. */
	if (o->hard_links || o->xattrs || o->acls ||
	    o->delete_mode == BERTH_DELETE_DELAY || o->partial_dir ||
	    o->backup || o->backup_dir || o->n_alt_dest || o->inplace ||
	    o->append || o->remove_source_files || o->existing ||
	    o->ignore_existing || o->fuzzy || o->relative)
		return false;
	/* --iconv: both sides number entries and directories in the order
	 * sent, not sorted (names may sort differently once converted);
	 * berth maps that order for one complete list only. */
	if (o->iconv)
		return false;
	return true;
}

void berth_secluded_init(struct berth_secluded *s, char *buf, size_t cap,
			 char **argv, int max_args)
{
	s->buf = buf;
	s->cap = cap;
	s->len = 0;
	s->argv = argv;
	s->max_args = max_args;
	s->argc = 0;
	s->start = 0;
}

int berth_secluded_decode(struct berth_secluded *s, struct berth_proto_in *in)
{
	while (in_avail(in)) {
		uint8_t c = in->ptr[in->pos++];

		if (s->len >= s->cap)
			return -BERTH_ELIMIT;
		s->buf[s->len++] = (char)c;
		if (c)
			continue;
		if (s->len - 1 == s->start) {
			/* Empty string: the end. */
			if (s->argc >= s->max_args)
				return -BERTH_ELIMIT;
			s->argv[s->argc] = NULL;
			return BERTH_PROTO_DONE;
		}
		if (s->argc + 1 >= s->max_args)
			return -BERTH_ELIMIT;
		s->argv[s->argc++] = s->buf + s->start;
		s->start = s->len;
	}
	return BERTH_PROTO_MORE;
}
