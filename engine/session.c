/* SPDX-License-Identifier: MIT */
/*
 * A receive session from start to exit code: server argv, handshake,
 * destination, filter and file lists, then the generator thread beside the
 * receiver loop, and the end (rsync-protocol.md §2, §4, §6, §7, §10).
 *
 * Lock order: s->lock, then out->lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/session_int.h"
#include "engine/session_xattr.h"

#define OUT_LIMIT (256 * 1024)
#define MAX_SECLUDED_ARGS 1024
/*
 * Memory a session's stages keep for data in flight.  Measured on bench
 * W1-W6 (2026-11-21 16:00 UTC, 2 pairs each, against the earlier 4 MiB
 * commit / 8 MiB apply / 4 x 1 MiB signature reads): W3 peak RSS 18.8 ->
 * 6.6 MiB, W6 21.3 -> 9.0, W2 7.0 -> 3.7, and wall ratios against rsync
 * no worse (W3 1.06 -> 1.05, W6 0.97 -> 0.96, W1 1.12 -> 0.78; at load
 * 1-4, so within the noise).  A few reads in flight keep the pump busy;
 * more only hold memory.
 */
#define SESSION_COMMIT_BUDGET (1u << 20)
#define SESSION_APPLY_BUDGET (2u << 20)
#define SESSION_SIG_READ (256u << 10)

#define SECLUDED_BYTES (256 * 1024)

/* ------------------------------------------------------------ logging */

static void vlog(struct berth_session *s, int level, const char *fmt,
		 va_list ap) __attribute__((format(printf, 3, 0)));
static void vlog(struct berth_session *s, int level, const char *fmt,
		 va_list ap)
{
	char msg[2048];
	int n, code;
	bool to_socket;

	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	/* §5.5: info through the socket, errors and warnings to stderr,
	 * unless --msgs2stderr / --no-msgs2stderr say otherwise. */
	if (level == BERTH_LOG_INFO)
		to_socket = s->opts.msgs2stderr != 1;
	else
		to_socket = s->opts.msgs2stderr == 0;
	if (to_socket && s->out.started) {
		code = level == BERTH_LOG_INFO	    ? BERTH_MSG_INFO
		       : level == BERTH_LOG_WARNING ? BERTH_MSG_WARNING
						    : BERTH_MSG_ERROR_XFER;
		if (berth__out_msg(&s->out, code, msg, (size_t)n) == 0)
			return;
	}
	if (s->log_fn)
		s->log_fn(s->log_arg, level, msg);
}

void berth__session_log(struct berth_session *s, int level, const char *fmt,
			...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(s, level, fmt, ap);
	va_end(ap);
}

void berth__session_file_error(struct berth_session *s, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&s->file_errors, 1);
	va_start(ap, fmt);
	vlog(s, BERTH_LOG_ERROR, fmt, ap);
	va_end(ap);
}

void berth__session_fatal(struct berth_session *s, int code, const char *fmt,
			  ...)
{
	uint64_t one = 1;
	va_list ap;
	bool first;

	pthread_mutex_lock(&s->lock);
	first = atomic_load(&s->fatal) == 0 &&
		berth__set_fatal(s, code) == code;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (!first)
		return;
	va_start(ap, fmt);
	vlog(s, BERTH_LOG_ERROR, fmt, ap);
	va_end(ap);
	/* Stop the net-in thread if it waits for input. */
	if (write(s->stop_fd, &one, sizeof(one)) < 0) {
		/* saturated: already signalled */
	}
}

int berth__exit_code_of(int err)
{
	if (err >= 0)
		return RERR_OK;
	switch (-err) {
	case BERTH_EPROTO:
	case BERTH_EPATH:
		return RERR_PROTOCOL;
	case BERTH_EUNSUPPORTED:
		return RERR_UNSUPPORTED;
	case BERTH_ELIMIT:
		return RERR_PROTOCOL;
	case ENOMEM:
		return RERR_MALLOC;
	case EPIPE:
	case ECONNRESET:
		return RERR_STREAMIO;
	case BERTH_ECANCELLED:
		return RERR_SIGNAL;
	default:
		return RERR_FILEIO;
	}
}

/* ------------------------------------------------------------ ids */

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
	struct id_map **tab = user ? &s->uids : &s->gids;
	size_t *n = user ? &s->nuids : &s->ngids;
	const char *map = user ? s->opts.usermap : s->opts.groupmap;
	const char *name;
	uint32_t to = id;
	size_t i;

	if (!map && (id == 0 || s->opts.numeric_ids))
		return id;
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < *n; i++) {
		if ((*tab)[i].from == id) {
			to = (*tab)[i].to;
			pthread_mutex_unlock(&s->lock);
			return to;
		}
	}
	pthread_mutex_lock(&s->names_lock);
	name = user ? berth_flist_dec_user_name(s->fdec, id)
		    : berth_flist_dec_group_name(s->fdec, id);
	if (map && map_rules(map, id, name, user, &to)) {
		/* mapped */
	} else if (name && *name && id != 0 && !s->opts.numeric_ids) {
		local_id(name, strlen(name), user, &to);
	}
	pthread_mutex_unlock(&s->names_lock);
	struct id_map *p = realloc(*tab, (*n + 1) * sizeof(**tab));
	if (p) {
		*tab = p;
		p[*n].from = id;
		p[*n].to = to;
		(*n)++;
	}
	pthread_mutex_unlock(&s->lock);
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
		mode = f->mode & 0777 & ~s->umask;
	if (!s->opts.perms && s->opts.executability && !S_ISLNK(type)) {
		if (f->mode & 0111)
			mode |= (mode & 0444) >> 2;
		else
			mode &= ~0111u;
	}
	m->mode = mode;
	if (s->opts.times && !(S_ISDIR(type) && s->opts.omit_dir_times) &&
	    !(S_ISLNK(type) && (s->opts.omit_link_times ||
				!(s->hs.compat & BERTH_CF_SYMLINK_TIMES)))) {
		m->mtime_sec = f->mtime;
		m->mtime_nsec = f->nsec;
	} else {
		m->mtime_nsec = UTIME_OMIT;
	}
	m->uid = s->opts.owner && s->am_root ? berth__map_uid(s, f->uid)
					     : (uint32_t)-1;
	m->gid = s->opts.group ? berth__map_gid(s, f->gid) : (uint32_t)-1;
}

/* ------------------------------------------------------------ messages */

int berth__session_on_msg(struct berth_session *s,
			  const struct berth_demux_event *ev)
{
	bool ok;

	switch (ev->code) {
	case BERTH_MSG_IO_ERROR:
		atomic_fetch_or(&s->io_error, ev->value);
		return 0;
	case BERTH_MSG_NO_SEND: {
		struct sess_list *l;
		int32_t i = -1;

		pthread_mutex_lock(&s->lock);
		l = ev->value >= 0 ? berth__list_of(s, ev->value, &i) : NULL;
		ok = l && i >= 0 && l->fst[i].state == FST_REQUESTED;
		if ((ok && berth__fst_done(s, ev->value)) || s->done_waiters)
			pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		return ok ? 0 : -BERTH_EPROTO;
	}
	case BERTH_MSG_ERROR_EXIT:
		/* The client hit a fatal error: end with its code. */
		pthread_mutex_lock(&s->lock);
		berth__set_fatal(s, ev->value > 0 ? ev->value : RERR_PARTIAL);
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
		return -BERTH_ECANCELLED;
	default:
		return 0; /* informational: nothing for a receiver to do */
	}
}

/* ------------------------------------------------------------ options */

/* The first option this slice does not implement, or NULL. */
static const char *unsupported_option(const struct berth_session *s)
{
	const struct berth_opts *o = &s->opts;
	static const struct {
		size_t off;
		const char *name;
	} flags[] = {
#define F(field, name) {offsetof(struct berth_opts, field), name}

		F(prune_empty_dirs, "--prune-empty-dirs"),
		F(crtimes, "--crtimes"),
		F(acls, "--acls"),
		F(relative, "--relative"),

		F(copy_unsafe_links, "--copy-unsafe-links"),

		F(write_devices, "--write-devices"),
		F(keep_dirlinks, "--keep-dirlinks"),
#undef F
	};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (*(const bool *)((const char *)o + flags[i].off))
			return flags[i].name;
	if (o->atimes)
		return "--atimes";
	if (o->fuzzy)
		return "--fuzzy";

	if (s->hs.compress != BERTH_COMPRESS_NONE &&
	    s->hs.compress != BERTH_COMPRESS_ZSTD)
		return s->hs.compress == BERTH_COMPRESS_LZ4 ? "lz4 compression"
		       : s->hs.compress == BERTH_COMPRESS_ZLIBX
			       ? "zlibx compression"
			       : "zlib compression (use --zc=zstd)";
	if (o->partial_dir &&
	    (!o->partial_dir[0] || strchr(o->partial_dir, '/') ||
	     !strcmp(o->partial_dir, ".") || !strcmp(o->partial_dir, "..")))
		return "--partial-dir other than a directory name (one "
		       "relative path component)";
	if (o->delay_updates && o->hard_links)
		return "--delay-updates with --hard-links";
	if (o->backup_dir && o->delay_updates)
		return "--backup-dir with --delay-updates";
	if (o->backup && (o->inplace || o->append))
		return "--backup with --inplace/--append";

	return NULL;
}

/* ------------------------------------------------------------ handshake */

/* Run a decoder over the input until it is DONE. */
#define IN_DECODE(s, call)                                                   \
	({                                                                   \
		int r_;                                                      \
		for (;;) {                                                   \
			struct berth_proto_in v_ = berth__in_view(&(s)->in); \
			r_ = (call);                                         \
			berth__in_consumed(&(s)->in, v_.pos);                \
			if (r_ != BERTH_PROTO_MORE)                          \
				break;                                       \
			r_ = berth__in_more(&(s)->in);                       \
			if (r_ < 0)                                          \
				break;                                       \
		}                                                            \
		r_;                                                          \
	})

static int out_raw_item(struct berth_session *s, struct berth_hs *hs,
			int (*put)(struct berth_hs *, struct berth_proto_out *))
{
	uint8_t buf[1024];
	struct berth_proto_out po = {buf, sizeof(buf), 0};
	int ret = put(hs, &po);

	return ret < 0 ? ret : berth__out_raw(&s->out, buf, po.pos);
}

static int handshake(struct berth_session *s)
{
	struct berth_hs_config cfg = {0};
	struct berth_hs hs;
	int ret;

	berth_opts_hs_config(&s->opts, &cfg);
	/* A compressor fixed by the client (an explicit choice, or zlib for a
	 * client that cannot negotiate) is accepted here so the handshake
	 * completes; anything but zstd is then refused with a clear message
	 * (unsupported_option), instead of a broken pipe. */
	if (cfg.compress_choice || !s->opts.caps || !strchr(s->opts.caps, 'v'))
		cfg.compress_list = "zstd lz4 zlibx zlib none";
	if (!s->opts.have_seed)
		cfg.seed = (int32_t)(time(NULL) ^ ((long)getpid() << 6));
	ret = berth_hs_init(&hs, &cfg);
	if (ret == 0)
		ret = out_raw_item(s, &hs, berth_hs_put_version);
	if (ret == 0)
		ret = IN_DECODE(s, berth_hs_get_version(&hs, &v_));
	if (ret >= 0)
		ret = out_raw_item(s, &hs, berth_hs_put_setup);
	if (ret >= 0)
		ret = IN_DECODE(s, berth_hs_get_lists(&hs, &v_));
	if (ret >= 0)
		ret = out_raw_item(s, &hs, berth_hs_put_seed);
	if (ret < 0)
		return ret;
	s->hs = hs.res;
	s->proto = hs.res.protocol;
	s->digest_len = berth_csum_digest_len(hs.res.xfer_csum);
	return berth_csum_params_init(&s->cp, hs.res.xfer_csum,
				      (uint32_t)hs.res.seed, s->proto,
				      hs.res.compat);
}

/* ------------------------------------------------------------ setup */

static int read_secluded(struct berth_session *s)
{
	struct berth_secluded sec;
	char *buf = malloc(SECLUDED_BYTES);
	char **argv = calloc(MAX_SECLUDED_ARGS + 1, sizeof(char *));
	int ret;

	if (!buf || !argv) {
		free(buf);
		free(argv);
		return -ENOMEM;
	}
	s->secluded = argv;
	s->secluded_buf = buf;
	berth_secluded_init(&sec, buf, SECLUDED_BYTES, argv, MAX_SECLUDED_ARGS);
	ret = IN_DECODE(s, berth_secluded_decode(&sec, &v_));
	if (ret < 0)
		return ret;
	return berth_opts_parse_more(&s->opts, sec.argc, argv);
}

static int read_filters(struct berth_session *s)
{
	struct berth_filter_dec d;
	struct berth_filter_rule rule;
	int ret;

	ret = berth_filter_dec_init(&d, 4096, 10000);
	if (ret < 0)
		return ret;
	do {
		ret = IN_DECODE(s, berth_filter_decode(&d, &v_, &rule));
		if (ret == BERTH_FILTER_RULE && (rule.mods & BERTH_FM_XATTR)) {
			/* rsync's xattr-name rules (-X filtering): not
			 * implemented, and not to be read as path rules. */
			berth__session_log(s, BERTH_LOG_ERROR,
					   "berth: xattr filter rules are not "
					   "supported (\"%.*s\")\n",
					   (int)rule.pattern_len, rule.pattern);
			ret = -BERTH_EUNSUPPORTED;
		}
		if (ret == BERTH_FILTER_RULE) {
			int r = berth__session_add_rule(s, &rule);

			if (r < 0)
				ret = r;
		}
	} while (ret == BERTH_FILTER_RULE);
	berth_filter_dec_destroy(&d);
	return ret < 0 ? ret : 0;
}

int berth__read_flist(struct berth_session *s, int32_t dir_k)
{
	struct berth_flist *fl;
	int ret;

	ret = berth_flist_dec_begin(s->fdec, dir_k);
	/* Under names_lock: the decoder's id names grow with the lists
	 * while other threads map ids (map_id); reading input is outside
	 * it. */
	while (ret == 0) {
		struct berth_proto_in v = berth__in_view(&s->in);

		pthread_mutex_lock(&s->names_lock);
		ret = berth_flist_decode(s->fdec, &v);
		pthread_mutex_unlock(&s->names_lock);
		berth__in_consumed(&s->in, v.pos);
		if (ret == BERTH_PROTO_MORE)
			ret = berth__in_more(&s->in);
		else if (ret == BERTH_PROTO_DONE)
			break;
	}
	if (ret < 0)
		return ret;
	fl = berth_flist_dec_take(s->fdec);
	if (!fl)
		return -ENOMEM;
	if (s->sopts.max_file_size) {
		for (uint32_t i = 0; i < fl->count; i++)
			if (S_ISREG(fl->files[i].mode) &&
			    (uint64_t)fl->files[i].size >
				    s->sopts.max_file_size) {
				berth_flist_free(fl);
				return -BERTH_ELIMIT;
			}
	}
	return berth__lists_add(s, fl);
}

static int read_flist(struct berth_session *s)
{
	struct berth_flist_config cfg;
	int ret;

	s->inc = s->hs.compat & BERTH_CF_INC_RECURSE;
	berth_flist_config_init(&cfg, &s->opts, &s->hs);
	if (s->sopts.max_files)
		cfg.max_files = s->sopts.max_files;
	ret = berth_flist_dec_create(&s->fdec, &cfg);
	if (ret == 0)
		ret = berth__read_flist(s, -1);
	if (ret == 0 && !s->inc)
		berth__lists_eof(s);
	return ret;
}

/* The initial list (before the generator starts). */
static struct berth_flist *first_list(struct berth_session *s)
{
	return s->lists[s->lists_first]->fl;
}

/* Make -p style path components for --mkpath (DEST's parents). */
static int mkpath(const char *dest)
{
	char *p = strdup(dest), *q;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	for (q = p + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, 0777) < 0 && errno != EEXIST) {
			ret = -errno;
			break;
		}
		*q = '/';
	}
	free(p);
	return ret;
}

/*
 * --link-dest / --compare-dest dirs, relative to the destination unless
 * absolute.  They are chosen by whoever runs the server (as with rsync);
 * lookups inside them never follow symlinks.  A missing one is skipped.
 */
static int open_alt_dirs(struct berth_session *s)
{
	int j;

	for (j = 0; j < BERTH_MAX_ALT_DEST; j++)
		s->alt_fd[j] = -1;
	s->nalt = s->opts.n_alt_dest;
	for (j = 0; j < s->nalt; j++) {
		s->alt_fd[j] = openat(s->root_fd, s->opts.alt_dest[j],
				      O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (s->alt_fd[j] < 0)
			berth__session_log(s, BERTH_LOG_WARNING,
					   "%s arg does not exist: %s\n",
					   s->opts.alt_dest_type ==
							   BERTH_ALT_LINK
						   ? "--link-dest"
						   : "--compare-dest",
					   s->opts.alt_dest[j]);
	}
	return 0;
}

/*
 * rsync's "local name" mode: one non-directory item whose DEST is a file
 * or a new name: DEST's directory is the root, the item takes its name.
 */
static int open_local_name(struct berth_session *s, const char *dest)
{
	const char *slash = strrchr(dest, '/');
	char *dir;

	s->local_name = strdup(slash ? slash + 1 : dest);
	dir = slash ? strndup(dest, (size_t)(slash - dest)) : strdup(".");
	if (!s->local_name || !dir) {
		free(dir);
		return -ENOMEM;
	}
	s->root_fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (s->root_fd < 0) {
		berth__session_fatal(s, RERR_FILESELECT,
				     "change_dir#3 \"%s\" failed: %s\n", dest,
				     strerror(errno));
		return -errno;
	}
	first_list(s)->files[0].name = s->local_name;
	first_list(s)->files[0].name_len = (uint32_t)strlen(s->local_name);
	return open_alt_dirs(s);
}

/* §2.1 DEST semantics (an agent may impose the directory instead). */
static int open_dest(struct berth_session *s)
{
	const char *dest = s->sopts.dest_path ? s->sopts.dest_path
					      : s->opts.dest;
	size_t len = strlen(dest);
	struct stat st;
	char shown[4096];

	if (s->sopts.dest_dirfd >= 0) {
		s->root_fd = fcntl(s->sopts.dest_dirfd, F_DUPFD_CLOEXEC, 0);
		return s->root_fd < 0 ? -errno : open_alt_dirs(s);
	}
	if (s->opts.mkpath && mkpath(dest) < 0) {
		berth__session_fatal(s, RERR_FILEIO, "mkpath %s failed: %s\n",
				     dest, strerror(errno));
		return -EIO;
	}
	if (stat(dest, &st) == 0 && !S_ISDIR(st.st_mode)) {
		if (first_list(s)->count > 1 ||
		    S_ISDIR(first_list(s)->files[0].mode)) {
			berth__session_fatal(
				s, RERR_FILESELECT,
				"ERROR: destination must be a directory when "
				"copying more than 1 file\n");
			return -ENOTDIR;
		}
		return open_local_name(s, dest);
	}
	if (stat(dest, &st) < 0) {
		if (errno != ENOENT) {
			berth__session_fatal(s, RERR_FILESELECT,
					     "change_dir#3 \"%s\" failed: %s\n",
					     dest, strerror(errno));
			return -errno;
		}
		if (first_list(s)->count == 1 &&
		    !S_ISDIR(first_list(s)->files[0].mode) &&
		    dest[len - 1] != '/')
			return open_local_name(s, dest);
		if (!s->opts.dry_run && mkdir(dest, 0777) < 0) {
			berth__session_fatal(s, RERR_FILEIO,
					     "mkdir %s failed: %s\n", dest,
					     strerror(errno));
			return -EIO;
		}
		s->dest_created = true;
		snprintf(shown, sizeof(shown), "%.*s", (int)len, dest);
		while (len > 1 && shown[len - 1] == '/')
			shown[--len] = '\0';
		if (s->opts.verbose || s->opts.log_format)
			berth__session_log(s, BERTH_LOG_INFO,
					   "created directory %s\n", shown);
		if (s->opts.dry_run) {
			/* DEST does not exist: everything is new, nothing is
			 * looked up beneath it; any directory fd will do. */
			s->root_fd = open("/",
					  O_PATH | O_DIRECTORY | O_CLOEXEC);
			return s->root_fd < 0 ? -errno : 0;
		}
	}
	s->root_fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		berth__session_fatal(s, RERR_FILESELECT,
				     "change_dir#3 \"%s\" failed: %s\n", dest,
				     strerror(errno));
		return -errno;
	}
	return open_alt_dirs(s);
}

static void on_commit_event(void *arg, const struct berth_commit_event *ev)
{
	struct berth_session *s = arg;
	static const char *const xop[] = {"llistxattr", "lsetxattr",
					  "lremovexattr"};

	if (ev->user == SESSION_QUIET)
		return; /* tidying: an emptied partial dir, a used partial */
	if (ev->kind == BERTH_COMMIT_EV_XATTR) {
		/* rsync's wording (rsync_xal_set), one per attribute. */
		if (ev->xattr)
			berth__session_file_error(
				s, "%s(\"%s\",\"%s\") failed: %s\n",
				xop[ev->xattr_op % 3], ev->path, ev->xattr,
				berth_strerror(ev->err));
		else
			berth__session_file_error(s, "%s(\"%s\") failed: %s\n",
						  xop[ev->xattr_op % 3],
						  ev->path,
						  berth_strerror(ev->err));
		return;
	}
	if (ev->err < 0 && ev->err != -BERTH_ECANCELLED) {
		berth__session_file_error(
			s, "%s \"%s\": %s\n",
			ev->kind == BERTH_COMMIT_EV_FILE ? "write" : "update",
			ev->path ? ev->path : "", berth_strerror(ev->err));
		berth__session_file_failed(s, ev->path ? ev->path : "",
					   ev->err);
	} else if (ev->err == 0 && ev->user) {
		/* meta.user is ndx + 1 for transferred files and for the
		 * nodes and links the generator creates. */
		int32_t ndx = (int32_t)(intptr_t)ev->user - 1;
		struct file_state *st;
		bool delayed = false;

		pthread_mutex_lock(&s->lock);
		st = berth__fst_of(s, ndx);
		if (st) {
			delayed = st->delayed;
			if (ev->kind == BERTH_COMMIT_EV_FILE)
				st->ok = 1;
		}
		pthread_mutex_unlock(&s->lock);
		/* A delayed file is committed when it is renamed into
		 * place (an operation), not when it reached PDIR. */
		if (st && !(delayed && ev->kind == BERTH_COMMIT_EV_FILE)) {
			if (ev->kind == BERTH_COMMIT_EV_FILE || delayed)
				berth__session_committed(s, ndx);
			berth__session_success(s, ndx);
		}
	}
	berth__commit_user_done(s, ev->user);
}

static int start_stages(struct berth_session *s)
{
	struct berth_commit_opts co = {0};
	struct berth_delta_apply_opts ao = {0};
	struct berth_sig_opts so = {0};
	struct berth_tok_config to = {0};
	int ret;

	co.durability = s->opts.fsync && s->durability == BERTH_DURABLE_NONE
				? BERTH_DURABLE_FILE
				: s->durability;
	co.preserve_owner = s->opts.owner || s->opts.group;
	if (s->opts.temp_dir) {
		/* Relative to the destination unless absolute (rsync). */
		s->temp_dirfd = openat(s->root_fd, s->opts.temp_dir,
				       O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (s->temp_dirfd < 0) {
			berth__session_fatal(s, RERR_FILESELECT,
					     "temp-dir %s: %s\n",
					     s->opts.temp_dir, strerror(errno));
			return -errno;
		}
		co.use_temp_dir = true;
		co.temp_dirfd = s->temp_dirfd;
	}
	/* As rsync: the suffix is "~", or nothing with a --backup-dir. */
	if (s->opts.backup || s->opts.backup_dir)
		co.backup_suffix = s->opts.suffix	? s->opts.suffix
				   : s->opts.backup_dir ? ""
							: "~";
	co.use_backup_dir = s->opts.backup_dir != NULL;
	co.tag_base = s->tag + 16;
	co.mem_budget = s->sopts.max_memory ? s->sopts.max_memory
					    : SESSION_COMMIT_BUDGET;
	ret = berth_commit_create(s->pump, s->root_fd, &co, on_commit_event, s,
				  &s->commit);
	if (ret < 0)
		return ret;
	ao.pump = s->pump;
	ao.out = berth__recv_apply_out;
	ao.out_arg = s;
	ao.tag = s->tag + 1;
	ao.mem_limit = SESSION_APPLY_BUDGET;
	ret = berth_delta_apply_create(&ao, &s->apply);
	if (ret < 0)
		return ret;
	so.pump = s->pump;
	so.tag = s->tag + 2;
	so.read_size = SESSION_SIG_READ;
	ret = berth_sig_create(&so, &s->sig);
	if (ret < 0)
		return ret;
	to.compress = s->hs.compress;
	to.csum_type = s->cp.type;
	to.digest_len = (int)s->digest_len;
	return berth_tok_dec_create(&s->tok, &to);
}

/* ------------------------------------------------------------ the end */

/*
 * After a fatal error or a cancel: tell the client (MSG_ERROR_EXIT at
 * proto >= 31), give the writer a bounded time to get it out, then stop
 * it; after a fatal error also read and drop the client's input until it
 * closes (§10.5), so it sees our message and code.  Nothing here can hang:
 * the writer gives up when s->abort_fd is signalled, and the reads are
 * bounded in time.
 */
static void fatal_exit(struct berth_session *s)
{
	int32_t code = s->fatal;
	uint8_t p[4] = {(uint8_t)code, (uint8_t)(code >> 8),
			(uint8_t)(code >> 16), (uint8_t)(code >> 24)};
	bool cancelled = atomic_load(&s->cancelled);
	uint64_t one = 1;

	if (s->out.started && s->proto >= 31)
		berth__out_msg(&s->out, BERTH_MSG_ERROR_EXIT, p, 4);
	if (s->out.started &&
	    berth__out_drain_timed(&s->out, cancelled ? 1000 : 10000) < 0 &&
	    write(s->abort_fd, &one, sizeof(one)) < 0) {
		/* saturated: already signalled */
	}
	if (!cancelled)
		berth__in_discard(&s->in, 10000);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int exit_code(struct berth_session *s)
{
	int io = atomic_load(&s->io_error);

	if (s->fatal)
		return s->fatal;
	if (atomic_load(&s->file_errors) || (io & 1))
		return RERR_PARTIAL;
	if (io & 2)
		return RERR_VANISHED;
	if (io & 4)
		return RERR_DEL_LIMIT;
	return RERR_OK;
}

static int session_run(struct berth_session *s);

/* Run, and record the outcome for berth_session_stats(). */
int berth__session_run(struct berth_session *s)
{
	int code = session_run(s);

	pthread_mutex_lock(&s->lock);
	s->exit_code = code;
	s->t_total = seconds_since(&s->t_start);
	pthread_mutex_unlock(&s->lock);
	return code;
}

static int session_run(struct berth_session *s)
{
	const char *bad;
	int ret;

	ret = berth_opts_parse(&s->opts, s->argc, s->argv);
	if (ret == 0 && s->opts.secluded)
		ret = read_secluded(s);
	if (ret < 0) {
		berth__set_fatal(s, ret == -BERTH_EUNSUPPORTED
					    ? RERR_UNSUPPORTED
					    : RERR_SYNTAX);
		berth__session_log(s, BERTH_LOG_ERROR, "berth: %s: %s\n",
				   s->opts.bad ? s->opts.bad : "argv",
				   ret == -BERTH_EUNSUPPORTED
					   ? "option not supported by berth"
					   : "unknown option");
		return s->fatal;
	}

	ret = handshake(s);
	if (ret < 0) {
		berth__set_fatal(s, berth__exit_code_of(ret));
		berth__session_log(s, BERTH_LOG_ERROR,
				   "berth: handshake failed: %s\n",
				   berth_strerror(ret));
		return s->fatal;
	}
	ret = berth__in_start_mux(&s->in);
	if (s->opts.bwlimit > 0)
		s->out.bwlimit = (uint64_t)s->opts.bwlimit * 1024; /* KiB/s */
	if (s->opts.timeout > 0) {
		s->out.keepalive_ms = s->opts.timeout * 500;
		clock_gettime(CLOCK_MONOTONIC, &s->out.last_write);
	}
	if (ret == 0)
		ret = berth__out_start(&s->out);
	if (ret < 0) {
		return berth__set_fatal(s, RERR_MALLOC);
	}
	/* As rsync: backups in place change directory times, so
	 * --backup without --backup-dir implies --omit-dir-times. */
	if (s->opts.backup_dir)
		s->opts.backup = true; /* --backup-dir implies --backup */
	if (s->opts.backup && !s->opts.backup_dir)
		s->opts.omit_dir_times = true;
	/* As rsync: --delay-updates uses ".~tmp~" unless a --partial-dir is
	 * given, and either one keeps partial files. */
	s->pdir = s->opts.partial_dir	  ? s->opts.partial_dir
		  : s->opts.delay_updates ? ".~tmp~"
					  : NULL;
	if (s->pdir)
		s->opts.partial = true;
	bad = unsupported_option(s);
	if (bad) {
		berth__session_fatal(s, RERR_UNSUPPORTED,
				     "berth: %s is not supported by this "
				     "version of berth\n",
				     bad);
		fatal_exit(s);
		return s->fatal;
	}
	if (berth_opts_want_filters(&s->opts))
		ret = read_filters(s);
	if (ret == 0)
		ret = read_flist(s);
	if (ret == 0)
		ret = berth__xa_create(s);
	if (ret < 0) {
		berth__session_fatal(s, berth__exit_code_of(ret),
				     "berth: receiving the file list: %s\n",
				     berth_strerror(ret));
		fatal_exit(s);
		return s->fatal;
	}
	pthread_mutex_lock(&s->lock);
	s->t_flist = seconds_since(&s->t_start);
	pthread_mutex_unlock(&s->lock);
	ret = open_dest(s);
	if (ret == 0)
		ret = start_stages(s);
	if (ret < 0) {
		if (!s->fatal)
			berth__session_fatal(s, berth__exit_code_of(ret),
					     "berth: %s\n",
					     berth_strerror(ret));
		fatal_exit(s);
		return s->fatal;
	}

	ret = -pthread_create(&s->gen_thread, NULL, berth__gen_main, s);
	if (ret < 0) {
		berth__session_fatal(s, RERR_MALLOC, "berth: no thread\n");
		fatal_exit(s);
		return s->fatal;
	}
	s->gen_started = true;
	ret = berth__recv_loop(s);
	if (ret < 0 && ret != -BERTH_ECANCELLED)
		berth__session_fatal(s, berth__exit_code_of(ret),
				     "berth: receiver: %s\n",
				     berth_strerror(ret));
	pthread_mutex_lock(&s->lock);
	s->recv_finished = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);

	if (s->fatal) {
		/* Remove temp files, complete our commit I/O, then tell the
		 * client; the writer is bounded, so the generator cannot stay
		 * blocked on a full output when it is joined. */
		if (s->opts.partial && !s->opts.dry_run)
			berth_commit_flush(s->commit); /* keep partial files */
		berth_commit_cancel(s->commit);
		fatal_exit(s);
	}
	pthread_join(s->gen_thread, NULL);
	s->gen_started = false;
	return exit_code(s);
}
