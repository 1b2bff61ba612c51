/* SPDX-License-Identifier: MIT */
/*
 * The start of a session: the options berth refuses (and why), the version
 * and checksum/compression negotiation, the secluded arguments (-s) and the
 * filter list (rsync-protocol.md §2, §4, §6).
 *
 * Refusals reach the client as rsync's server makes them.  Before the
 * version exchange, or when the handshake cannot be made, the message goes
 * to the log (stderr, which the remote shell carries to the client) and
 * the client, finding the stream closed, exits 12 after printing it.  An
 * option error is refused after the handshake instead (session_run.c):
 * from protocol 31 the client is then told the exit code (MSG_ERROR_EXIT)
 * and exits with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session/session.h"

#define MAX_SECLUDED_ARGS 1024
#define SECLUDED_BYTES (256 * 1024)

/* The first option this slice does not implement, or NULL. */
const char *berth__unsupported_option(const struct berth_session *s)
{
	const struct berth_opts *o = &s->opts;
	static const struct {
		size_t off;
		const char *name;
	} flags[] = {
#define F(field, name) {offsetof(struct berth_opts, field), name}

		F(crtimes, "--crtimes"),

		F(copy_unsafe_links, "--copy-unsafe-links"),

		F(write_devices, "--write-devices"),
		F(keep_dirlinks, "--keep-dirlinks"),
#undef F
	};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (*(const bool *)((const char *)o + flags[i].off))
			return flags[i].name;
	if (o->files_from)
		return "--files-from with the list on the receiving side "
		       "(host:FILE; a local list works)";
	if (o->atimes && s->neg.proto < 30)
		return "--atimes below protocol 30";
	if (o->fuzzy)
		return "--fuzzy";

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

/* The secluded arguments, parsed on from the command line's options. */
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
	s->neg.secluded = argv;
	s->neg.secluded_buf = buf;
	berth_secluded_init(&sec, buf, SECLUDED_BYTES, argv, MAX_SECLUDED_ARGS);
	ret = IN_DECODE(s, berth_secluded_decode(&sec, &v_));
	if (ret < 0)
		return ret;
	berth_opts_parse_more(&s->opts, sec.argc, argv); /* errors: opts */
	return 0;
}

void berth__refuse_options(struct berth_session *s)
{
	const struct berth_opts *o = &s->opts;
	int code = o->bad_err == -BERTH_EUNSUPPORTED ? RERR_UNSUPPORTED
						     : RERR_SYNTAX;

	if (!o->bad)
		berth__session_fatal(s, code, "berth: %s\n", o->why);
	else if (o->bad_letter)
		berth__session_fatal(s, code, "berth: -%c (in %s): %s\n",
				     o->bad_letter, o->bad, o->why);
	else
		berth__session_fatal(s, code, "berth: %s: %s\n", o->bad,
				     o->why);
}

/* berth --daemon: the front end's checks of the parsed options. */
static void daemon_check(struct berth_session *s)
{
	const struct berth_session_daemon *d = s->cfg.sopts.daemon;
	int code;

	s->neg.daemon_why[0] = '\0';
	code = d->check(d->arg, &s->opts, s->neg.argv, s->neg.secluded,
			s->neg.daemon_why, sizeof(s->neg.daemon_why));
	if (code == 0)
		return;
	/* The module's refusal comes first (rsync's daemon has no other
	 * reason to refuse what berth's parser may refuse, a pull). */
	s->opts.bad_err = code == RERR_SYNTAX ? -EINVAL : -BERTH_EUNSUPPORTED;
	s->opts.bad = NULL;
	s->opts.bad_letter = 0;
	s->opts.why = s->neg.daemon_why;
}

int berth__read_args(struct berth_session *s)
{
	int i, ret;

	berth_opts_parse(&s->opts, s->neg.argc, s->neg.argv);
	for (i = 1; i < s->neg.argc; i++)
		if (strcmp(s->neg.argv[i], "--server") == 0)
			break;
	if (i >= s->neg.argc) {
		/* Not rsync's server command line: no handshake to make. */
		berth__refuse_options(s);
		return s->rep.fatal;
	}
	ret = s->opts.secluded ? read_secluded(s) : 0;
	if (ret < 0) {
		berth__session_fatal(s, berth__exit_code_of(ret),
				     "berth: reading the secluded arguments: "
				     "%s\n",
				     berth_strerror(ret));
		return s->rep.fatal;
	}
	if (s->cfg.sopts.daemon)
		daemon_check(s);
	return 0;
}

/* Why the handshake failed, as the client should read it. */
static void handshake_failed(struct berth_session *s, int err, int32_t version)
{
	const struct berth_opts *o = &s->opts;

	if (o->bad_err) {
		/* The option error comes first: it may be the cause. */
		berth__refuse_options(s);
		return;
	}
	if (err == -BERTH_EUNSUPPORTED && version && version < BERTH_PROTO_MIN)
		berth__session_fatal(s, RERR_PROTOCOL,
				     "berth: the client speaks rsync protocol "
				     "version %d; berth speaks versions %d to "
				     "%d\n",
				     (int)version, BERTH_PROTO_MIN,
				     BERTH_PROTO_MAX);
	else if (err == -BERTH_EPROTO && (version < 20 || version > 40))
		berth__session_fatal(s, RERR_PROTOCOL,
				     "berth: protocol version mismatch: the "
				     "client sent %d (is the remote shell "
				     "clean?)\n",
				     (int)version);
	else if (err == -BERTH_EUNSUPPORTED && o->checksum_choice)
		berth__session_fatal(s, RERR_UNSUPPORTED,
				     "berth: --checksum-choice=%s: not "
				     "supported by berth (it offers %s)\n",
				     o->checksum_choice,
				     BERTH_HS_CHECKSUM_LIST);
	else if (err == -BERTH_EUNSUPPORTED && o->compress_choice)
		berth__session_fatal(s, RERR_UNSUPPORTED,
				     "berth: --compress-choice=%s: not "
				     "supported by berth\n",
				     o->compress_choice);
	else if (err == -BERTH_EUNSUPPORTED)
		berth__session_fatal(s, RERR_UNSUPPORTED,
				     "berth: no checksum or compression in "
				     "common with the client (berth offers "
				     "checksums %s)\n",
				     BERTH_HS_CHECKSUM_LIST);
	else
		berth__session_fatal(s, berth__exit_code_of(err),
				     "berth: handshake failed: %s\n",
				     berth_strerror(err));
}

/* Is every name of a --checksum-choice ("X" or "X,Y") one berth offers? */
static bool csum_choice_offered(const char *choice)
{
	static const char offered[] = " " BERTH_HS_CHECKSUM_LIST " auto ";
	char word[32];
	size_t len;

	while (*choice) {
		len = strcspn(choice, ",");
		if (len == 0 || len > sizeof(word) - 3)
			return false;
		snprintf(word, sizeof(word), " %.*s ", (int)len, choice);
		if (!strstr(offered, word))
			return false;
		choice += len + (choice[len] == ',');
	}
	return true;
}

/*
 * What the options mean below protocol 30, as rsync's server decides
 * after the version exchange: a plain --delete deletes before the
 * transfer, --append verifies; and what those protocols cannot carry.
 */
static int old_protocol_opts(struct berth_session *s)
{
	struct berth_opts *o = &s->opts;
	const char *why = NULL;

	if (o->delete_plain && o->delete_mode == BERTH_DELETE_DURING)
		o->delete_mode = BERTH_DELETE_BEFORE;
	if (o->append == 1)
		o->append = 2;
	s->neg.sum_seed_first = !o->checksum_choice;
	if (o->xattrs)
		why = "--xattrs";
	else if (o->acls)
		why = "--acls";
	else if (s->neg.proto < 29 && o->n_alt_dest > 1)
		why = "Using more than one --compare-dest/--copy-dest/"
		      "--link-dest option";
	else if (s->neg.proto < 29 && o->n_alt_dest && o->inplace)
		why = "--compare-dest/--copy-dest/--link-dest with --inplace";
	if (!why)
		return 0;
	/* As rsync's server: before multiplexing, so on stderr. */
	berth__session_fatal(s, RERR_PROTOCOL,
			     "%s requires protocol %d or higher (negotiated "
			     "%d).\n",
			     why, o->xattrs || o->acls ? 30 : 29, s->neg.proto);
	return s->rep.fatal;
}

/*
 * berth --daemon: the versions were exchanged in the text greeting, so
 * none goes over the wire; the handshake state takes the agreed one as
 * if both had been sent.
 */
static int daemon_version(struct berth_hs *hs, int protocol)
{
	uint8_t scratch[8];
	uint8_t v[4] = {(uint8_t)protocol, (uint8_t)(protocol >> 8),
			(uint8_t)(protocol >> 16), (uint8_t)(protocol >> 24)};
	struct berth_proto_out po = {scratch, sizeof(scratch), 0};
	struct berth_proto_in pi = {v, sizeof(v), 0};
	int ret = berth_hs_put_version(hs, &po);

	return ret < 0 ? ret : berth_hs_get_version(hs, &pi);
}

int berth__handshake(struct berth_session *s)
{
	struct berth_hs_config cfg = {0};
	struct berth_hs hs;
	int32_t version = 0;
	int ret;

	berth_opts_hs_config(&s->opts, &cfg);
	if (cfg.checksum_choice && !csum_choice_offered(cfg.checksum_choice)) {
		/* Refused after the handshake, made as with a choice the
		 * wire treats alike (a fixed one: no lists), so a client of
		 * protocol 31 or newer gets the code. */
		if (!s->opts.bad_err) {
			s->opts.bad_err = -BERTH_EUNSUPPORTED;
			s->opts.bad = NULL;
			s->opts.why =
				"--checksum-choice: a checksum berth does "
				"not offer (it offers " BERTH_HS_CHECKSUM_LIST
				")";
		}
		cfg.checksum_choice = "md5";
	}
	if (!s->opts.have_seed)
		cfg.seed = (int32_t)(time(NULL) ^ ((long)getpid() << 6));
	if (s->cfg.sopts.daemon)
		cfg.max_protocol = s->cfg.sopts.daemon->protocol;
	ret = berth_hs_init(&hs, &cfg);
	if (ret == 0 && s->cfg.sopts.daemon) {
		ret = daemon_version(&hs, cfg.max_protocol);
		version = cfg.max_protocol;
	} else {
		if (ret == 0)
			ret = out_raw_item(s, &hs, berth_hs_put_version);
		/* The client's version, for the message if it is refused. */
		if (ret == 0)
			ret = berth__in_need(&s->in, 4);
	}
	if (ret == 0 && !s->cfg.sopts.daemon) {
		const uint8_t *p = s->in.data + s->in.data_pos;

		version = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
				    (uint32_t)p[2] << 16 |
				    (uint32_t)p[3] << 24);
		ret = IN_DECODE(s, berth_hs_get_version(&hs, &v_));
	}
	if (ret >= 0)
		ret = out_raw_item(s, &hs, berth_hs_put_setup);
	if (ret >= 0)
		ret = IN_DECODE(s, berth_hs_get_lists(&hs, &v_));
	if (ret >= 0)
		ret = out_raw_item(s, &hs, berth_hs_put_seed);
	if (ret < 0) {
		handshake_failed(s, ret, version);
		return s->rep.fatal;
	}
	s->neg.hs = hs.res;
	s->neg.proto = hs.res.protocol;
	s->neg.digest_len = berth_csum_digest_len(hs.res.xfer_csum);
	s->neg.symlink_times = s->neg.proto < 30 ||
			       (hs.res.compat & BERTH_CF_SYMLINK_TIMES);
	berth_ndx_set_protocol(&s->in.ndx, s->neg.proto);
	berth_ndx_set_protocol(&s->out.ndx, s->neg.proto);
	ret = berth_csum_params_init(&s->neg.cp, hs.res.xfer_csum,
				     (uint32_t)hs.res.seed, s->neg.proto,
				     hs.res.compat);
	if (ret < 0) {
		handshake_failed(s, ret, version);
		return s->rep.fatal;
	}
	if (s->neg.proto < 30 && !s->opts.bad_err)
		return old_protocol_opts(s);
	return 0;
}

int berth__read_filters(struct berth_session *s)
{
	struct berth_filter_dec d;
	struct berth_filter_rule rule;
	int ret;

	ret = berth_filter_dec_init(&d, 4096, 10000);
	if (ret < 0)
		return ret;
	d.old_prefixes = s->neg.proto < 29;
	do {
		ret = IN_DECODE(s, berth_filter_decode(&d, &v_, &rule));
		if (ret == BERTH_FILTER_RULE) {
			int r = berth__filter_add_wire(s, &rule);

			if (r < 0)
				ret = r;
		}
	} while (ret == BERTH_FILTER_RULE);
	berth_filter_dec_destroy(&d);
	return ret < 0 ? ret : 0;
}

void berth__neg_free(struct sess_neg *n)
{
	free(n->secluded);
	free(n->secluded_buf);
	n->secluded = NULL;
	n->secluded_buf = NULL;
}
