/* SPDX-License-Identifier: MIT */
/* The filter-rule list a sending client writes before the file list (§6). */
#include <errno.h>
#include <stdlib.h>

#include "protocol/proto_int.h"

static const struct {
	char c;
	unsigned flag;
} modifiers[] = {
	{'/', BERTH_FM_ABS},	  {'!', BERTH_FM_NEGATE},
	{'C', BERTH_FM_CVS},	  {'n', BERTH_FM_NO_INHERIT},
	{'w', BERTH_FM_WORDS},	  {'+', BERTH_FM_DEF_INCL},
	{'-', BERTH_FM_DEF_EXCL}, {'e', BERTH_FM_EXCL_SELF},
	{'x', BERTH_FM_XATTR},	  {'s', BERTH_FM_SENDER},
	{'r', BERTH_FM_RECEIVER}, {'p', BERTH_FM_PERISHABLE},
};

/* The pattern of @rule (a trailing '/' means directories only). */
static int set_pattern(struct berth_filter_rule *rule, const char *p,
		       size_t len)
{
	rule->pattern = p;
	rule->pattern_len = len;
	/* Only a CVS rule ("-C") may come without a pattern. */
	if (!len && !(rule->mods & BERTH_FM_CVS))
		return -BERTH_EPROTO;
	if (memchr(p, '\0', len))
		return -BERTH_EPROTO;
	if (len > 1 && p[len - 1] == '/') {
		rule->dir_only = true;
		rule->pattern_len--;
	}
	return 0;
}

int berth_filter_parse(const char *text, size_t len,
		       struct berth_filter_rule *rule)
{
	size_t i = 1, k;

	memset(rule, 0, sizeof(*rule));
	if (len == 0)
		return -BERTH_EPROTO;
	switch (text[0]) {
	case '-':
		rule->type = BERTH_FILTER_EXCLUDE;
		break;
	case '+':
		rule->type = BERTH_FILTER_INCLUDE;
		break;
	case '!':
		rule->type = BERTH_FILTER_CLEAR;
		break;
	case '.':
		rule->type = BERTH_FILTER_MERGE;
		break;
	case ':':
		rule->type = BERTH_FILTER_DIRMERGE;
		break;
	default:
		return -BERTH_EPROTO;
	}
	for (; i < len && text[i] != ' '; i++) {
		for (k = 0; k < sizeof(modifiers) / sizeof(modifiers[0]); k++)
			if (modifiers[k].c == text[i])
				break;
		if (k == sizeof(modifiers) / sizeof(modifiers[0]))
			return -BERTH_EPROTO;
		rule->mods |= modifiers[k].flag;
	}
	if (rule->type == BERTH_FILTER_CLEAR) {
		/* "!" carries neither modifiers nor a pattern. */
		if (len != 1)
			return -BERTH_EPROTO;
		rule->pattern = text + len;
		return 0;
	}
	if (i < len)
		i++; /* the space */
	return set_pattern(rule, text + i, len - i);
}

int berth_filter_dec_init(struct berth_filter_dec *d, size_t max_len,
			  unsigned max_rules)
{
	memset(d, 0, sizeof(*d));
	d->max_len = max_len;
	d->max_rules = max_rules;
	d->text = malloc(max_len + 1);
	d->stash.cap = max_len + 5;
	d->stash.buf = malloc(d->stash.cap);
	if (!d->text || !d->stash.buf) {
		berth_filter_dec_destroy(d);
		return -ENOMEM;
	}
	return 0;
}

void berth_filter_dec_destroy(struct berth_filter_dec *d)
{
	free(d->text);
	free(d->stash.buf);
	d->text = NULL;
	d->stash.buf = NULL;
}

/* A rule of protocols < 29: only "+ " and "- " prefixes. */
static int parse_old(const char *text, size_t len,
		     struct berth_filter_rule *rule)
{
	if ((len >= 2 && (text[0] == '+' || text[0] == '-') &&
	     text[1] == ' ') ||
	    (len == 1 && text[0] == '!'))
		return berth_filter_parse(text, len, rule);
	/* The whole text is the pattern of an exclude. */
	memset(rule, 0, sizeof(*rule));
	rule->type = BERTH_FILTER_EXCLUDE;
	return set_pattern(rule, text, len);
}

static int unit_rule(void *ctx, struct berth_proto_in *view)
{
	struct berth_filter_dec *d = ctx;
	int32_t len;
	int r = berth_proto_get_int32(view, &len);

	if (r != BERTH_PROTO_DONE)
		return r;
	if (len == 0)
		return BERTH_PROTO_DONE;
	if (len < 0)
		return -BERTH_EPROTO;
	if ((size_t)len > d->max_len)
		return -BERTH_ELIMIT;
	if (in_avail(view) < (size_t)len)
		return BERTH_PROTO_MORE;
	if (d->count >= d->max_rules)
		return -BERTH_ELIMIT;
	memcpy(d->text, view->ptr + view->pos, (size_t)len);
	d->text[len] = '\0';
	view->pos += (size_t)len;
	TRY(d->old_prefixes ? parse_old(d->text, (size_t)len, d->out)
			    : berth_filter_parse(d->text, (size_t)len, d->out));
	d->count++;
	return BERTH_FILTER_RULE;
}

int berth_filter_decode(struct berth_filter_dec *d, struct berth_proto_in *in,
			struct berth_filter_rule *rule)
{
	d->out = rule;
	return berth__stash_run(&d->stash, in, unit_rule, d);
}
