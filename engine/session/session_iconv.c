/* SPDX-License-Identifier: MIT */
/*
 * --iconv with glibc's iconv, as rsync's receiving server does it: the
 * client sends the charset of this side (the part after the comma of its
 * --iconv=LOCAL,REMOTE, or "." for the locale's); the wire carries UTF-8.
 * Names and link targets are converted strictly (a name that does not
 * convert is an error of that entry); text going back converts what it
 * can and passes the rest through.
 */
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/session/session.h"

#define WIRE_CHARSET "UTF-8"

/* The charset of the environment's LC_CTYPE (what rsync gets after
 * setlocale(LC_CTYPE, "")), without touching the process's locale. */
static void locale_charset(char *buf, size_t cap)
{
	locale_t loc = newlocale(LC_CTYPE_MASK, "", (locale_t)0);

	snprintf(buf, cap, "%s",
		 loc ? nl_langinfo_l(CODESET, loc) : "ANSI_X3.4-1968");
	if (loc)
		freelocale(loc);
}

int berth__iconv_open(struct berth_session *s, char *why, size_t cap)
{
	struct sess_iconv *ic = &s->ic;
	const char *cs = s->opts.iconv, *comma;

	if (!cs)
		return 0;
	/* Both halves given (a local transfer): this side's is the second. */
	comma = strchr(cs, ',');
	if (comma)
		cs = comma + 1;
	if (!*cs || !strcmp(cs, "."))
		locale_charset(ic->charset, sizeof(ic->charset));
	else
		snprintf(ic->charset, sizeof(ic->charset), "%s", cs);
	ic->to_wire = iconv_open(WIRE_CHARSET, ic->charset);
	if (ic->to_wire == (iconv_t)-1) {
		snprintf(why, cap, "iconv_open(\"%s\", \"%s\") failed\n",
			 WIRE_CHARSET, ic->charset);
		return -BERTH_EUNSUPPORTED;
	}
	ic->to_local = iconv_open(ic->charset, WIRE_CHARSET);
	if (ic->to_local == (iconv_t)-1) {
		iconv_close(ic->to_wire);
		snprintf(why, cap, "iconv_open(\"%s\", \"%s\") failed\n",
			 ic->charset, WIRE_CHARSET);
		return -BERTH_EUNSUPPORTED;
	}
	pthread_mutex_init(&ic->lock, NULL);
	ic->on = true;
	return 0;
}

void berth__iconv_close(struct berth_session *s)
{
	struct sess_iconv *ic = &s->ic;

	if (ic->on) {
		iconv_close(ic->to_wire);
		iconv_close(ic->to_local);
		pthread_mutex_destroy(&ic->lock);
		ic->on = false;
	}
	free(ic->link);
	free(ic->sorted_of_tx);
	free(ic->tx_of_sorted);
	ic->link = NULL;
	ic->sorted_of_tx = ic->tx_of_sorted = NULL;
	ic->n = 0;
}

/* iconv() takes a char ** for input it does not write. */
static char *unconst(const char *p)
{
	return (char *)(uintptr_t)p;
}

/*
 * All of @in through @cd into @out (@cap bytes, one kept for the NUL),
 * from the initial shift state; the first byte that does not convert ends
 * it: -errno.  As rsync, no final shift sequence is added.
 */
static int convert_strict(iconv_t cd, const char *in, size_t len, char *out,
			  size_t cap, size_t *out_len)
{
	char *ip = unconst(in), *op = out;
	size_t il = len, ol = cap - 1;

	iconv(cd, NULL, NULL, NULL, NULL);
	while (il > 0) {
		if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
	}
	*op = '\0';
	*out_len = (size_t)(op - out);
	return 0;
}

/* Does the peer convert symlink targets?  rsync's sender does when the
 * server set CF_SYMLINK_ICONV and the client said 's' (protocol >= 30). */
static bool links_converted(const struct berth_session *s)
{
	return s->neg.hs.protocol >= 30 &&
	       (s->neg.hs.compat & BERTH_CF_SYMLINK_ICONV) && s->opts.caps &&
	       strchr(s->opts.caps, 's');
}

int berth__iconv_name(struct berth_session *s, bool link, const char *in,
		      size_t len, const char **out, size_t *out_len)
{
	struct sess_iconv *ic = &s->ic;
	char *buf = ic->name;
	size_t cap = sizeof(ic->name);
	int ret;

	if (link) {
		/* rsync's room for a converted target: twice the wire
		 * length, and its NUL. */
		cap = 2 * len + 2;
		if (cap > ic->link_cap) {
			char *p = realloc(ic->link, cap);

			if (!p)
				return -ENOMEM;
			ic->link = p;
			ic->link_cap = cap;
		}
		buf = ic->link;
		if (!links_converted(s)) {
			memcpy(buf, in, len);
			buf[len] = '\0';
			*out = buf;
			*out_len = len;
			return 0;
		}
	}
	pthread_mutex_lock(&ic->lock);
	ret = convert_strict(ic->to_local, in, len, buf, cap, out_len);
	pthread_mutex_unlock(&ic->lock);
	if (ret < 0)
		ic->dropped++;
	*out = buf;
	return ret;
}

char *berth__iconv_msg(struct berth_session *s, bool to_local, const char *in,
		       size_t len, size_t *out_len)
{
	struct sess_iconv *ic = &s->ic;
	/* Any charset at most quadruples a byte; an escape is 5 bytes. */
	size_t cap = 6 * len + 16, ol = cap - 1, il = len;
	char *out, *op, *ip = unconst(in);
	iconv_t cd;

	if (!ic->on)
		return NULL;
	out = malloc(cap);
	if (!out)
		return NULL;
	op = out;
	cd = to_local ? ic->to_local : ic->to_wire;
	pthread_mutex_lock(&ic->lock);
	iconv(cd, NULL, NULL, NULL, NULL);
	while (il > 0) {
		if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1)
			break;
		if (errno == EINTR)
			continue;
		if ((errno != EILSEQ && errno != EINVAL) || ol < 5)
			break; /* E2BIG: cannot happen with this room */
		/* As rsync: a bad byte goes through (to the peer) or is
		 * shown as \#ooo (locally). */
		if (to_local) {
			snprintf(op, ol + 1, "\\#%03o", (unsigned char)*ip);
			op += 5;
			ol -= 5;
		} else {
			*op++ = *ip;
			ol--;
		}
		ip++;
		il--;
	}
	pthread_mutex_unlock(&ic->lock);
	*op = '\0';
	*out_len = (size_t)(op - out);
	return out;
}

int berth__iconv_map_list(struct berth_session *s, const struct berth_flist *fl)
{
	struct sess_iconv *ic = &s->ic;

	if (!ic->on)
		return 0;
	if (ic->sorted_of_tx || fl->ndx_start != 0)
		return -BERTH_EPROTO;
	if (!fl->tx_of && fl->count) /* kept with a conv hook (not empty) */
		return -EINVAL;
	ic->n = fl->count;
	ic->sorted_of_tx = malloc(((size_t)fl->count + 1) * sizeof(uint32_t));
	ic->tx_of_sorted = malloc(((size_t)fl->count + 1) * sizeof(uint32_t));
	if (!ic->sorted_of_tx || !ic->tx_of_sorted)
		return -ENOMEM;
	for (uint32_t i = 0; i < fl->count; i++) {
		ic->tx_of_sorted[i] = fl->tx_of[i];
		ic->sorted_of_tx[fl->tx_of[i]] = i;
	}
	return 0;
}

int32_t berth__ndx_from_wire(const struct berth_session *s, int32_t ndx)
{
	const struct sess_iconv *ic = &s->ic;

	if (!ic->sorted_of_tx || ndx < 0 || (uint32_t)ndx >= ic->n)
		return ndx;
	return (int32_t)ic->sorted_of_tx[ndx];
}

int32_t berth__ndx_to_wire(const struct berth_session *s, int32_t ndx)
{
	const struct sess_iconv *ic = &s->ic;

	if (!ic->tx_of_sorted || ndx < 0 || (uint32_t)ndx >= ic->n)
		return ndx;
	return (int32_t)ic->tx_of_sorted[ndx];
}
