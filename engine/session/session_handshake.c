/* SPDX-License-Identifier: MIT */
/*
 * The start of a session: the options berth refuses (and why), the version
 * and checksum/compression negotiation, the secluded arguments (-s) and the
 * filter list (rsync-protocol.md §2, §4, §6).
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
		F(acls, "--acls"),

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
	if (o->fuzzy)
		return "--fuzzy";

	if (s->neg.hs.compress != BERTH_COMPRESS_NONE &&
	    s->neg.hs.compress != BERTH_COMPRESS_ZSTD)
		return s->neg.hs.compress == BERTH_COMPRESS_LZ4
			       ? "lz4 compression"
		       : s->neg.hs.compress == BERTH_COMPRESS_ZLIBX
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
	else if (s->neg.proto < 29 && o->delay_updates)
		why = "--delay-updates";
	if (!why)
		return 0;
	berth__session_log(s, BERTH_LOG_ERROR,
			   "%s requires protocol %d or higher (negotiated "
			   "%d).\n",
			   why, o->xattrs || o->acls ? 30 : 29, s->neg.proto);
	return -BERTH_EUNSUPPORTED;
}

int berth__handshake(struct berth_session *s)
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
	s->neg.hs = hs.res;
	s->neg.proto = hs.res.protocol;
	s->neg.digest_len = berth_csum_digest_len(hs.res.xfer_csum);
	s->neg.symlink_times = s->neg.proto < 30 ||
			       (hs.res.compat & BERTH_CF_SYMLINK_TIMES);
	berth_ndx_set_protocol(&s->in.ndx, s->neg.proto);
	berth_ndx_set_protocol(&s->out.ndx, s->neg.proto);
	if (s->neg.proto < 30) {
		ret = old_protocol_opts(s);
		if (ret < 0)
			return ret;
	}
	return berth_csum_params_init(&s->neg.cp, hs.res.xfer_csum,
				      (uint32_t)hs.res.seed, s->neg.proto,
				      hs.res.compat);
}

int berth__read_secluded(struct berth_session *s)
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
	return berth_opts_parse_more(&s->opts, sec.argc, argv);
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

void berth__neg_free(struct sess_neg *n)
{
	free(n->secluded);
	free(n->secluded_buf);
	n->secluded = NULL;
	n->secluded_buf = NULL;
}
