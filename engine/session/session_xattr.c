/* SPDX-License-Identifier: MIT */
/*
 * -X / --xattrs: see session_xattr.h.  The rules are rsync's receiver's
 * (xattrs.c): which names a receiver keeps (receive_xattr), how a set is
 * compared with a destination item (xattr_diff, walking both lists in
 * name order), which abbreviated values are requested and when (the
 * ABBREV -> TODO -> DONE states of send_xattr_request, kept per set), and
 * what an item ends up with (rsync_xal_set, done by the commit stage).
 *
 * Destination items are read through an O_PATH | O_NOFOLLOW fd opened
 * beneath a directory fd (never through a symlink), via its
 * /proc/self/fd link: the item's own attributes, a symlink's included.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "engine/session/session.h"
#include "engine/session/session_sys.h"
#include "engine/session/session_xattr.h"

#define XA_FULL_MAX 32 /* longer values travel as an MD5 (§7.8) */
#define XA_SUM_LEN 16
#define XA_VALUE_MAX (16u << 20) /* one value the sender echoes */
#define XA_ECHO_MAX (32u << 20) /* all values of one echo */
#define XA_CACHE_MAX ((size_t)64 << 20) /* full values kept per set item */

/* Generator states of an abbreviated item (rsync's XSTATE_*). */
enum { XS_ABBREV = 1, XS_DONE, XS_TODO };

/* One attribute of a received set, as the receiver keeps it. */
struct xa_item {
	const char *name; /* in the file-list decoder's storage, or own */
	char *own; /* "user.rsync." + the sent name (see berth__xa_create) */
	uint32_t name_len; /* with the NUL */
	uint32_t datum_len; /* the real value length */
	const uint8_t *datum; /* the value, or its MD5 when > 32 bytes */
	uint32_t num; /* 1-based position in the set as sent */
	uint8_t gstate; /* generator only */
	bool echoed; /* net-in only: its value came in an echo */
	uint8_t *full; /* under lock: the whole value, once known */
};

struct xa_set {
	uint32_t count;
	struct xa_item *items;
};

struct berth_xa {
	pthread_mutex_t lock; /* leaf: the full values */
	struct xa_set *sets;
	uint32_t nsets;
	struct xa_set empty;
	size_t cache_bytes;
	bool user_only; /* not root (or --fake-super): only user.* */
	bool disguise; /* other names kept as user.rsync.NAME */
	bool filtered; /* the client sent xattr filter rules */
	int level; /* 1 for -X, 2 for -XX */
	struct berth_xattr_val_dec vd; /* net-in only */
	struct berth_session *s;
};

/* A destination item's attributes, in name order. */
struct xa_loc {
	char *name;
	uint8_t *val;
	uint32_t len;
	uint8_t sum[XA_SUM_LEN]; /* MD5 when len > 32 */
};

struct xa_local {
	uint32_t n;
	struct xa_loc *v;
};

static bool has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* The names a receiver reads and removes (rsync: user_only or not
 * system.*). */
static bool in_reach(const struct berth_xa *xa, const char *name)
{
	/* With xattr filter rules the rules alone say (rsync's
	 * saw_xattr_filter). */
	if (xa->filtered)
		return !berth__filter_xattr_excluded(xa->s, name);
	return xa->user_only ? has_prefix(name, "user.")
			     : !has_prefix(name, "system.");
}

/* The commit stage's view of in_reach(). */
static bool reach_cb(const void *arg, const char *name)
{
	return in_reach(arg, name);
}

static void md5_of(const void *p, size_t len, uint8_t out[XA_SUM_LEN])
{
	uint8_t sum[BERTH_CSUM_MAX_DIGEST];

	berth_csum_whole(BERTH_CSUM_MD5, p, len, sum);
	memcpy(out, sum, XA_SUM_LEN);
}

/* ------------------------------------------------------------ sets */

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct xa_item *)a)->name,
		      ((const struct xa_item *)b)->name);
}

/*
 * One received name as the receiver keeps it (rsync's receive_xattr()):
 * *@name unchanged, or a name of another namespace disguised as
 * user.rsync.NAME (*@own, malloc'd), or NULL when it is not kept.
 */
static int keep_name(const struct berth_xa *xa, const char **name, char **own)
{
	bool user = has_prefix(*name, "user.");
	size_t len;

	*own = NULL;
	/* With xattr filter rules the rules alone say; else a receiver
	 * that is neither root nor --fake-super keeps only user.*, root
	 * all but system.* (the ACLs'). */
	if (xa->filtered ? berth__filter_xattr_excluded(xa->s, *name)
			 : !user && !xa->disguise && !in_reach(xa, *name)) {
		*name = NULL;
		return 0;
	}
	if (!user && xa->disguise) {
		len = strlen(*name);
		*own = malloc(sizeof("user.rsync.") + len);
		if (!*own)
			return -ENOMEM;
		memcpy(*own, "user.rsync.", sizeof("user.rsync.") - 1);
		memcpy(*own + sizeof("user.rsync.") - 1, *name, len + 1);
		*name = *own;
	}
	/* rsync's own user.rsync.%* attributes only with -XX. */
	if (xa->level < 2 && has_prefix(*name, "user.rsync.%")) {
		free(*own);
		*own = NULL;
		*name = NULL;
	}
	return 0;
}

int berth__xa_create(struct berth_session *s)
{
	struct berth_xa *xa;
	uint32_t n = 0, k;
	int ret;

	if (!s->opts.xattrs)
		return 0;
	xa = calloc(1, sizeof(*xa));
	if (!xa)
		return -ENOMEM;
	pthread_mutex_init(&xa->lock, NULL);
	/* rsync's receiver: --fake-super keeps (and removes) only user.*
	 * names, and so stores the others, as a receiver that is not root
	 * does under xattr filter rules. */
	xa->user_only = !s->dest.am_root || s->opts.fake_super;
	xa->filtered = berth__filter_has_xattr_rules(s);
	xa->disguise = s->opts.fake_super || (xa->filtered && xa->user_only);
	xa->s = s;
	xa->level = s->opts.xattrs;
	s->xa = xa;
	ret = berth_xattr_val_dec_init(&xa->vd, XA_VALUE_MAX, XA_ECHO_MAX);
	if (ret < 0)
		return ret;
	while (berth_flist_dec_xattrs(s->lst.fdec, (int32_t)n))
		n++;
	xa->sets = calloc(n ? n : 1, sizeof(*xa->sets));
	if (!xa->sets)
		return -ENOMEM;
	xa->nsets = n;
	for (uint32_t i = 0; i < n; i++) {
		const struct berth_xattr_set *in = berth_flist_dec_xattrs(
			s->lst.fdec, (int32_t)i);
		struct xa_set *set = &xa->sets[i];

		set->items = calloc(in->count ? in->count : 1,
				    sizeof(*set->items));
		if (!set->items)
			return -ENOMEM;
		bool resort = false;

		for (k = 0; k < in->count; k++) {
			const struct berth_xattr *x = &in->items[k];
			const char *name = x->name;
			struct xa_item *it;
			char *own;

			ret = keep_name(xa, &name, &own);
			if (ret < 0)
				return ret;
			if (!name)
				continue;
			it = &set->items[set->count++];
			it->name = name;
			it->own = own;
			resort |= own != NULL;
			it->name_len = (uint32_t)strlen(name) + 1;
			it->datum_len = x->datum_len;
			it->datum = x->value;
			it->num = k + 1;
			it->gstate = x->datum_len > XA_FULL_MAX ? XS_ABBREV : 0;
		}
		/* Compared with the destination in name order. */
		if (resort && set->count > 1)
			qsort(set->items, set->count, sizeof(*set->items),
			      item_cmp);
	}
	return 0;
}

void berth__xa_free(struct berth_xa *xa)
{
	if (!xa)
		return;
	for (uint32_t i = 0; i < xa->nsets; i++) {
		for (uint32_t k = 0; k < xa->sets[i].count; k++) {
			free(xa->sets[i].items[k].full);
			free(xa->sets[i].items[k].own);
		}
		free(xa->sets[i].items);
	}
	free(xa->sets);
	berth_xattr_val_dec_destroy(&xa->vd);
	pthread_mutex_destroy(&xa->lock);
	free(xa);
}

static struct xa_set *set_of(struct berth_xa *xa, const struct berth_file *f)
{
	if (f->ext->xattr_set < 0 || (uint32_t)f->ext->xattr_set >= xa->nsets)
		return &xa->empty;
	return &xa->sets[f->ext->xattr_set];
}

/* The whole value of @it, if known (stable once set). */
static const uint8_t *cache_get(struct berth_xa *xa, struct xa_item *it)
{
	const uint8_t *p;

	pthread_mutex_lock(&xa->lock);
	p = it->full;
	pthread_mutex_unlock(&xa->lock);
	return p;
}

/* Keep @val (datum_len bytes, checked) as @it's whole value. */
static void cache_put(struct berth_xa *xa, struct xa_item *it,
		      const uint8_t *val)
{
	uint8_t *copy;

	pthread_mutex_lock(&xa->lock);
	if (!it->full && xa->cache_bytes + it->datum_len <= XA_CACHE_MAX) {
		copy = malloc(it->datum_len ? it->datum_len : 1);
		if (copy) {
			memcpy(copy, val, it->datum_len);
			it->full = copy;
			xa->cache_bytes += it->datum_len;
		}
	}
	pthread_mutex_unlock(&xa->lock);
}

/* ------------------------------------------------------ destination */

static void local_free(struct xa_local *l)
{
	for (uint32_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].val);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int loc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct xa_loc *)a)->name,
		      ((const struct xa_loc *)b)->name);
}

/* One value of @path's attribute @name: malloc'd into *val. */
static int read_value(const char *path, const char *name, uint8_t **val,
		      uint32_t *len)
{
	for (int tries = 0; tries < 4; tries++) {
		ssize_t n = getxattr(path, name, NULL, 0), m;
		uint8_t *p;

		if (n < 0)
			return -errno;
		if (n > (ssize_t)XA_VALUE_MAX)
			return -E2BIG;
		p = malloc(n ? (size_t)n : 1);
		if (!p)
			return -ENOMEM;
		m = getxattr(path, name, p, (size_t)n);
		if (m >= 0) {
			*val = p;
			*len = (uint32_t)m;
			return 0;
		}
		free(p);
		if (errno != ERANGE)
			return -errno;
	}
	return -ERANGE;
}

/*
 * The attributes in reach of the item @name beneath @dirfd, sorted by
 * name, each with its whole value (rsync's rsync_xal_get).  A filesystem
 * without xattrs has none.  0 or -errno.
 */
struct local_list_arg {
	struct berth_xa *xa;
	int fd;
	struct xa_local *l;
};

static ssize_t local_list(void *arg)
{
	struct local_list_arg *a = arg;
	struct berth_xa *xa = a->xa;
	struct xa_local *l = a->l;
	char path[32], *names = NULL, *p;
	ssize_t n = 0;
	int fd = a->fd, ret = 0;

	(void)berth_plat_fd_path(fd, path, sizeof(path)); /* fits */
	for (int tries = 0; tries < 4; tries++) {
		n = listxattr(path, NULL, 0);
		if (n <= 0)
			break;
		free(names);
		names = malloc((size_t)n + 256);
		if (!names) {
			ret = -ENOMEM;
			goto out;
		}
		n = listxattr(path, names, (size_t)n + 256);
		if (n >= 0 || errno != ERANGE)
			break;
	}
	if (n < 0) {
		ret = errno == EOPNOTSUPP ? 0 : -errno;
		goto out;
	}
	if (n > 0 && names[n - 1] != '\0')
		n--; /* only whole names */
	for (p = names; p && p < names + n; p += strlen(p) + 1) {
		struct xa_loc *v, *e;

		if (!*p || !in_reach(xa, p))
			continue;
		/* --fake-super's own attributes are not the item's. */
		if (xa->s->opts.fake_super && (!strcmp(p, "user.rsync.%stat") ||
					       !strcmp(p, "user.rsync.%aacl") ||
					       !strcmp(p, "user.rsync.%dacl")))
			continue;
		v = realloc(l->v, (l->n + 1) * sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			goto out;
		}
		l->v = v;
		e = &l->v[l->n];
		memset(e, 0, sizeof(*e));
		ret = read_value(path, p, &e->val, &e->len);
		if (ret == -ENODATA) {
			ret = 0; /* gone meanwhile */
			continue;
		}
		if (ret < 0)
			goto out;
		e->name = strdup(p);
		if (!e->name) {
			free(e->val);
			ret = -ENOMEM;
			goto out;
		}
		if (e->len > XA_FULL_MAX)
			md5_of(e->val, e->len, e->sum);
		l->n++;
	}
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), loc_cmp);
out:
	if (ret < 0)
		local_free(l);
	free(names);
	return ret;
}

static int local_read(struct berth_xa *xa, int dirfd, const char *name,
		      struct xa_local *l)
{
	struct local_list_arg a = {xa, -1, l};
	int ret;

	l->n = 0;
	l->v = NULL;
	a.fd = berth__sys_open(xa->s, dirfd, name, O_PATH | O_NOFOLLOW);
	if (a.fd < 0)
		return a.fd;
	/* The listing and the values, in one call the faults can reach. */
	ret = (int)berth__sys_call(xa->s, local_list, &a);
	if (ret < 0)
		local_free(l);
	close(a.fd);
	return ret;
}

/*
 * rsync's xattr_diff(): do @set and @rec (NULL: none) differ?  With
 * @find_all, the whole walk is done and abbreviated items the destination
 * lacks are marked TODO; abbreviated items it has are cached.
 */
static bool set_differs(struct berth_xa *xa, struct xa_set *set,
			const struct xa_local *rec, bool find_all)
{
	uint32_t si = 0, ri = 0, rn = rec ? rec->n : 0;
	bool equal = set->count == rn;

	if (!equal && !find_all)
		return true;
	while (si < set->count) {
		struct xa_item *a = &set->items[si];
		const struct xa_loc *b = ri < rn ? &rec->v[ri] : NULL;
		int cmp = b ? strcmp(a->name, b->name) : -1;
		bool same;

		if (cmp > 0) {
			same = false;
		} else if (a->datum_len > XA_FULL_MAX) {
			same = cmp == 0 && a->datum_len == b->len &&
			       memcmp(a->datum, b->sum, XA_SUM_LEN) == 0;
			if (!same && find_all && a->gstate == XS_ABBREV)
				a->gstate = XS_TODO;
			if (same && find_all)
				cache_put(xa, a, b->val);
		} else {
			same = cmp == 0 && a->datum_len == b->len &&
			       memcmp(a->datum, b->val, b->len) == 0;
		}
		if (!same) {
			if (!find_all)
				return true;
			equal = false;
		}
		if (cmp <= 0)
			si++;
		if (cmp >= 0)
			ri++;
	}
	if (ri < rn)
		equal = false;
	return !equal;
}

/* Read the destination item for a comparison; a failure is reported and
 * the item compares as having none (rsync's get_xattr() failing). */
static bool read_for_compare(struct berth_session *s, int dirfd,
			     const char *name, struct xa_local *l)
{
	int ret = local_read(s->xa, dirfd, name, l);

	if (ret < 0 && ret != -ENOENT)
		berth__session_file_error(s, "reading the xattrs of %s: %s\n",
					  name, berth_strerror(ret));
	return ret == 0;
}

uint32_t berth__xa_gen_itemize(struct berth_session *s,
			       const struct berth_file *f, int dirfd,
			       const char *name)
{
	/* rsync's itemize() looks at the ACLs (-A) first. */
	uint32_t acl = berth__acl_gen_itemize(s, f, dirfd, name);
	struct xa_local l = {0};
	bool differs;

	if (!s->xa)
		return acl;
	if (dirfd < 0)
		return set_differs(s->xa, set_of(s->xa, f), NULL, true)
			       ? BERTH_ITEM_REPORT_XATTR
			       : 0;
	read_for_compare(s, dirfd, name, &l);
	differs = set_differs(s->xa, set_of(s->xa, f), &l, true);
	local_free(&l);
	return acl | (differs ? BERTH_ITEM_REPORT_XATTR : 0);
}

bool berth__xa_gen_same(struct berth_session *s, const struct berth_file *f,
			int dirfd, const char *name)
{
	struct xa_local l = {0};
	bool same;

	/* rsync's unchanged_attrs(): the ACLs (-A) too. */
	if (berth__acl_gen_itemize(s, f, dirfd, name))
		return false;
	if (!s->xa)
		return true;
	read_for_compare(s, dirfd, name, &l);
	same = !set_differs(s->xa, set_of(s->xa, f), &l, false);
	local_free(&l);
	return same;
}

/* Does a record with @iflags carry a request (and its echo values)? */
static bool carries_values(const struct berth_session *s, uint32_t iflags)
{
	bool optim = s->neg.proto >= 31 &&
		     !(s->neg.hs.compat & BERTH_CF_AVOID_XATTR_OPTIM);

	return s->xa && !s->opts.dry_run &&
	       (iflags & BERTH_ITEM_REPORT_XATTR) &&
	       !(optim && (iflags & BERTH_ITEM_XNAME_FOLLOWS) &&
		 (iflags & BERTH_ITEM_LOCAL_CHANGE));
}

static int num_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int berth__xa_gen_request(struct berth_session *s, int32_t ndx, uint32_t iflags)
{
	struct xa_set *set;
	struct berth_proto_out po;
	uint32_t *nums, n = 0;
	uint8_t *buf;
	bool req = carries_values(s, iflags);
	int ret;

	if (!s->xa || s->opts.dry_run ||
	    !(iflags & (BERTH_ITEM_REPORT_XATTR | BERTH_ITEM_TRANSFER)))
		return 0;
	set = set_of(s->xa, berth__file(s, ndx));
	nums = malloc((set->count + 1) * sizeof(*nums));
	buf = malloc(5 * (size_t)set->count + 1);
	if (!nums || !buf) {
		free(nums);
		free(buf);
		return -ENOMEM;
	}
	/* send_xattr_request(): items left abbreviated matched the
	 * destination (the receiver has their values): done; the ones
	 * marked TODO are asked for, once per set. */
	for (uint32_t i = 0; i < set->count; i++) {
		struct xa_item *it = &set->items[i];

		if (it->datum_len <= XA_FULL_MAX)
			continue;
		if (it->gstate == XS_ABBREV) {
			it->gstate = XS_DONE;
		} else if (it->gstate == XS_TODO && req) {
			it->gstate = XS_DONE;
			nums[n++] = it->num;
		}
	}
	ret = 0;
	/* In the order sent (disguised names sort elsewhere). */
	if (n > 1)
		qsort(nums, n, sizeof(*nums), num_cmp);
	if (req) {
		po = (struct berth_proto_out){buf, 5 * (size_t)set->count + 1,
					      0};
		ret = berth_xattr_req_put(&po, nums, n);
		if (ret == 0)
			ret = berth__out_data(&s->out, buf, po.pos);
	}
	free(nums);
	free(buf);
	return ret;
}

/* A complete set of @n attributes and @bytes of names and values. */
static struct berth_commit_xattrs *blob_new(struct berth_xa *xa, uint32_t n,
					    size_t bytes, char **data)
{
	size_t head = sizeof(struct berth_commit_xattrs) +
		      (size_t)n * sizeof(struct berth_commit_xattr);
	struct berth_commit_xattrs *x = malloc(head + bytes + 1);

	if (!x)
		return NULL;
	x->count = n;
	x->user_only = xa->user_only;
	x->reach = xa->filtered ? reach_cb : NULL;
	x->reach_arg = xa;
	*data = (char *)x + head;
	return x;
}

int berth__xa_gen_copy(struct berth_session *s, int dirfd, const char *name,
		       struct berth_commit_xattrs **out)
{
	struct berth_commit_xattrs *x;
	struct xa_local l = {0};
	size_t bytes = 0;
	char *d;
	int ret;

	*out = NULL;
	if (!s->xa)
		return 0;
	ret = local_read(s->xa, dirfd, name, &l);
	if (ret < 0 || l.n == 0) {
		if (ret < 0 && ret != -ENOENT)
			berth__session_file_error(
				s, "reading the xattrs of %s: %s\n", name,
				berth_strerror(ret));
		return ret == -ENOMEM ? ret : 0;
	}
	for (uint32_t i = 0; i < l.n; i++)
		bytes += strlen(l.v[i].name) + 1 + l.v[i].len;
	x = blob_new(s->xa, l.n, bytes, &d);
	if (!x) {
		local_free(&l);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < l.n; i++) {
		size_t nl = strlen(l.v[i].name) + 1;

		memcpy(d, l.v[i].name, nl);
		x->items[i].name = d;
		d += nl;
		memcpy(d, l.v[i].val, l.v[i].len);
		x->items[i].value = d;
		x->items[i].len = l.v[i].len;
		d += l.v[i].len;
	}
	local_free(&l);
	*out = x;
	return 0;
}

/* ------------------------------------------------------------ net-in */

/* A value of this echo: its item, and the bytes if they check out. */
struct got {
	uint32_t idx;
	bool ok;
	uint8_t *val;
};

struct want_val {
	const uint8_t *p; /* NULL: keep what the item has */
	uint32_t len;
	uint8_t *owned;
};

/* Read the echoed values of @f into @g (one per item at most). */
static int read_values(struct berth_session *s, const struct berth_file *f,
		       struct xa_set *set, struct got *g, uint32_t *ng)
{
	char fpath[BERTH_PATH_BUF];
	const char *fname = berth_file_path(f, fpath);
	struct berth_xa *xa = s->xa;
	struct berth_xattr_val ev;
	struct berth_proto_in v;
	uint8_t sum[XA_SUM_LEN];
	uint32_t k;
	int ret;

	berth_xattr_val_dec_begin(&xa->vd);
	for (;;) {
		v = berth__in_view(&s->in);
		ret = berth_xattr_val_decode(&xa->vd, &v, &ev);
		berth__in_consumed(&s->in, v.pos);
		if (ret == BERTH_PROTO_MORE) {
			ret = berth__in_more(&s->in);
			if (ret < 0)
				return ret;
			continue;
		}
		if (ret == BERTH_PROTO_DONE)
			return 0;
		if (ret < 0) {
			if (ret == -BERTH_ELIMIT)
				berth__session_log(
					s, BERTH_LOG_ERROR,
					"xattr values for %s exceed berth's "
					"limit (%u bytes)\n",
					fname, XA_ECHO_MAX);
			return ret;
		}
		for (k = 0; k < set->count && set->items[k].num != ev.num; k++)
			;
		/* recv_xattr_request(): only abbreviated items, each once. */
		if (k == set->count || set->items[k].datum_len <= XA_FULL_MAX ||
		    set->items[k].echoed) {
			berth__session_log(s, BERTH_LOG_ERROR,
					   "could not find xattr #%u for %s\n",
					   ev.num, fname);
			return -BERTH_EPROTO;
		}
		set->items[k].echoed = true;
		g[*ng].idx = k;
		g[*ng].val = NULL;
		/* rsync stores what comes; berth checks it against the
		 * file list's MD5 (it could have changed since). */
		g[*ng].ok = ev.len == set->items[k].datum_len;
		if (g[*ng].ok) {
			md5_of(ev.ptr, ev.len, sum);
			g[*ng].ok = memcmp(sum, set->items[k].datum,
					   XA_SUM_LEN) == 0;
		}
		if (g[*ng].ok) {
			g[*ng].val = malloc(ev.len ? ev.len : 1);
			if (!g[*ng].val)
				return -ENOMEM;
			memcpy(g[*ng].val, ev.ptr, ev.len);
			cache_put(xa, &set->items[k], g[*ng].val);
		}
		(*ng)++;
	}
}

/* The whole value of abbreviated @it from the item @name beneath @dirfd,
 * if it is the one the file list names. */
static uint8_t *value_from(struct berth_xa *xa, int dirfd, const char *name,
			   struct xa_item *it)
{
	uint8_t sum[XA_SUM_LEN], *val = NULL;
	uint32_t len;
	char path[32];
	int fd;

	if (dirfd < 0)
		return NULL;
	fd = berth_plat_open_beneath(dirfd, name, O_PATH | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	(void)berth_plat_fd_path(fd, path, sizeof(path)); /* fits */
	if (read_value(path, it->name, &val, &len) == 0) {
		if (len == it->datum_len) {
			md5_of(val, len, sum);
			if (memcmp(sum, it->datum, XA_SUM_LEN) == 0) {
				cache_put(xa, it, val);
				close(fd);
				return val;
			}
		}
		free(val);
	}
	close(fd);
	return NULL;
}

int berth__xa_recv(struct berth_session *s, int32_t ndx, uint32_t iflags,
		   int basis_dirfd, struct berth_commit_xattrs **out)
{
	struct berth_xa *xa = s->xa;
	const struct berth_file *f = xa ? berth__file(s, ndx) : NULL;
	char fpath[BERTH_PATH_BUF];
	bool vals = carries_values(s, iflags);
	bool transfer = iflags & BERTH_ITEM_TRANSFER;
	struct berth_commit_xattrs *x = NULL;
	struct xa_set *set;
	struct want_val *w = NULL;
	struct got *g = NULL;
	uint32_t ng = 0, i, k;
	size_t bytes = 0;
	char *d;
	int ret = 0;

	*out = NULL;
	if (!xa || s->opts.dry_run)
		return 0;
	set = set_of(xa, f);
	g = calloc(set->count + 1, sizeof(*g));
	w = calloc(set->count + 1, sizeof(*w));
	if (!g || !w) {
		ret = -ENOMEM;
		goto out;
	}
	if (vals) {
		ret = read_values(s, f, set, g, &ng);
		if (ret < 0)
			goto out;
	}
	/* rsync's receiver: every received file gets its set; another item
	 * only when its echo says the xattrs differ. */
	if (!transfer && !vals)
		goto out;
	for (i = 0; i < set->count; i++) {
		struct xa_item *it = &set->items[i];
		const uint8_t *p;

		bytes += it->name_len;
		if (it->datum_len <= XA_FULL_MAX) {
			w[i].p = it->datum;
			w[i].len = it->datum_len;
			bytes += it->datum_len;
			continue;
		}
		for (k = 0; k < ng && g[k].idx != i; k++)
			;
		if (k < ng && !g[k].ok) {
			berth__session_file_error(
				s,
				"xattr %s of %s: the value sent does not match "
				"the file list (changed during the transfer?)\n",
				it->name, berth_file_path(f, fpath));
			continue; /* kept as it is */
		}
		p = k < ng ? g[k].val : cache_get(xa, it);
		if (!p) {
			/* Neither sent nor known: the basis may have it
			 * (rsync looks in fnamecmp); an item updated in place
			 * that has it keeps it. */
			w[i].owned = value_from(
				xa, transfer ? basis_dirfd : s->dest.root_fd,
				berth_file_path(f, fpath), it);
			if (w[i].owned && !transfer)
				continue; /* already there */
			p = w[i].owned;
		}
		if (!p) {
			berth__session_file_error(
				s,
				"Missing abbreviated xattr value, %s, for %s\n",
				it->name, berth_file_path(f, fpath));
			continue;
		}
		w[i].p = p;
		w[i].len = it->datum_len;
		bytes += it->datum_len;
	}
	x = blob_new(xa, set->count, bytes, &d);
	if (!x) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < set->count; i++) {
		memcpy(d, set->items[i].name, set->items[i].name_len);
		x->items[i].name = d;
		d += set->items[i].name_len;
		x->items[i].value = NULL;
		x->items[i].len = 0;
		if (w[i].p) {
			memcpy(d, w[i].p, w[i].len);
			x->items[i].value = d;
			x->items[i].len = w[i].len;
			d += w[i].len;
		}
	}
	*out = x;
out:
	for (i = 0; g && i < ng; i++)
		free(g[i].val);
	for (i = 0; w && i < set->count; i++)
		free(w[i].owned);
	free(g);
	free(w);
	return ret;
}
