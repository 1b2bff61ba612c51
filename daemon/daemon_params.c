/* SPDX-License-Identifier: MIT */
/*
 * What rsyncd.conf's parameters mean to berth: the known ones with their
 * section, the ones berth does not support (named at start-up, never
 * silently ignored), module lookup, and the loaded configuration shared by
 * the connections begun under it (a SIGHUP loads a new one; running
 * sessions keep theirs until they end).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon_int.h"
#include "engine/commit/commit.h"

#define MAX_CONF_BYTES (4 << 20)
#define DEFAULT_LOG_FORMAT "%o %h [%a] %m (%u) %f %l"

enum { P_GLOBAL = 1, P_MODULE = 2, P_BOTH = 3 };

static const struct {
	const char *name; /* canonical */
	int where;
	const char *unsupported; /* why not, or NULL */
} params[] = {
	{"path", P_BOTH, NULL},
	{"comment", P_BOTH, NULL},
	{"readonly", P_BOTH, NULL},
	{"writeonly", P_BOTH, NULL},
	{"list", P_BOTH, NULL},
	{"authusers", P_BOTH, NULL},
	{"secretsfile", P_BOTH, NULL},
	{"strictmodes", P_BOTH, NULL},
	{"hostsallow", P_BOTH, NULL},
	{"hostsdeny", P_BOTH, NULL},
	{"maxconnections", P_BOTH, NULL},
	{"lockfile", P_BOTH, NULL},
	{"uid", P_BOTH, NULL},
	{"gid", P_BOTH, NULL},
	{"usechroot", P_BOTH, NULL},
	{"numericids", P_BOTH, NULL},
	{"fakesuper", P_BOTH, NULL},
	{"refuseoptions", P_BOTH, NULL},
	{"dontcompress", P_BOTH, NULL},
	{"maxverbosity", P_BOTH, NULL},
	{"timeout", P_BOTH, NULL},
	{"logfile", P_BOTH, NULL},
	{"logformat", P_BOTH, NULL},
	{"transferlogging", P_BOTH, NULL},
	{"tempdir", P_BOTH, NULL},
	{"reverselookup", P_BOTH, NULL},
	{"forwardlookup", P_BOTH, NULL},
	{"ignoreerrors", P_BOTH, NULL},
	{"motdfile", P_GLOBAL, NULL},
	{"pidfile", P_GLOBAL, NULL},
	{"port", P_GLOBAL, NULL},
	{"address", P_GLOBAL, NULL},
	{"proxyprotocol", P_GLOBAL, NULL},
	{"listenbacklog", P_GLOBAL, NULL},
	{"incomingchmod", P_BOTH, NULL},
	{"exclude", P_BOTH, NULL},
	{"include", P_BOTH, NULL},
	{"excludefrom", P_BOTH, NULL},
	{"includefrom", P_BOTH, NULL},
	{"filter", P_BOTH, NULL},
	{"mungesymlinks", P_BOTH, NULL},
	{"outgoingchmod", P_BOTH, "berth's daemon serves no pulls"},
	{"prexferexec", P_BOTH, "berth runs no programs"},
	{"postxferexec", P_BOTH, "berth runs no programs"},
	{"earlyexec", P_BOTH, "berth runs no programs"},
	{"nameconverter", P_BOTH, "berth runs no programs"},
	{"charset", P_BOTH, "not implemented"},
	{"socketoptions", P_GLOBAL, "not implemented"},
	{"syslogfacility", P_BOTH, "berth logs to a file or stderr"},
	{"syslogtag", P_BOTH, "berth logs to a file or stderr"},
	{"daemonchroot", P_GLOBAL, "not implemented"},
	{"daemonuid", P_GLOBAL, "not implemented"},
	{"daemongid", P_GLOBAL, "not implemented"},
	{"ignorenonreadable", P_BOTH, "berth's daemon serves no pulls"},
	{"opennoatime", P_BOTH, "berth's daemon serves no pulls"},
};

#define N_PARAMS (sizeof(params) / sizeof(params[0]))

/* -------------------------------------------------- files for includes */

static int read_all(void *arg, const char *path, char **text, size_t *len);

/* The whole text of @fd (closed here), a regular file of bounded size. */
static int read_fd(int fd, char **text, size_t *len)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MAX_CONF_BYTES) {
		close(fd);
		return -EINVAL;
	}
	*text = malloc((size_t)st.st_size + 1);
	if (!*text) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size &&
	       (n = read(fd, *text + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	(*text)[got] = '\0';
	*len = got;
	return 0;
}

static int read_all(void *arg, const char *path, char **text, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	(void)arg;
	if (fd < 0)
		return -errno;
	return read_fd(fd, text, len);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_files(void *arg, const char *path, const char *suffix,
		      char ***names, size_t *n)
{
	struct stat st;
	struct dirent *e;
	size_t cap = 0, sl = strlen(suffix);
	DIR *d;

	(void)arg;
	*names = NULL;
	*n = 0;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		*names = malloc(sizeof(char *));
		if (!*names || !((*names)[0] = strdup(path)))
			return -ENOMEM;
		*n = 1;
		return 0;
	}
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		char *full;

		if (l <= sl || strcmp(e->d_name + l - sl, suffix) ||
		    e->d_name[0] == '.')
			continue;
		if (*n == cap) {
			void *p = realloc(*names,
					  (cap = cap * 2 + 8) * sizeof(char *));
			if (!p)
				break;
			*names = p;
		}
		full = malloc(strlen(path) + l + 2);
		if (!full)
			break;
		sprintf(full, "%s/%s", path, e->d_name);
		(*names)[(*n)++] = full;
	}
	closedir(d);
	if (*n)
		qsort(*names, *n, sizeof(char *), cmp_names);
	return 0;
}

/* ------------------------------------------------------------ values */

static const char *get(const struct berth_dconf *c, size_t i, const char *k)
{
	const struct berth_dconf_param *p = berth_dconf_find(&c->sect[i], k);

	if (!p && i)
		p = berth_dconf_find(&c->sect[0], k);
	return p ? p->val : NULL;
}

static int boolean(const char *v, int dflt)
{
	if (!v)
		return dflt;
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "1") || !strcasecmp(v, "on"))
		return 1;
	if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
	    !strcasecmp(v, "0") || !strcasecmp(v, "off"))
		return 0;
	return -1;
}

static int integer(const char *v, int dflt, int *out)
{
	char *end;
	long x;

	if (!v || !*v) {
		*out = dflt;
		return 0;
	}
	x = strtol(v, &end, 10);
	if (*end || x < INT_MIN || x > INT_MAX)
		return -1;
	*out = (int)x;
	return 0;
}

static int bad(char *err, size_t len, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int bad(char *err, size_t len, const char *where, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(err, len, "%s: %s", where, what);
	return -EINVAL;
}

/* Every parameter known, in its place, and supported. */
static int check_known(const struct berth_dconf *c, char *err, size_t len)
{
	size_t i, j, k;

	for (i = 0; i < c->n; i++) {
		for (j = 0; j < c->sect[i].n; j++) {
			const struct berth_dconf_param *p = &c->sect[i].p[j];

			for (k = 0; k < N_PARAMS; k++)
				if (!strcmp(params[k].name, p->key))
					break;
			if (k == N_PARAMS)
				return bad(err, len, p->where,
					   "unknown parameter '%s'", p->key);
			if (params[k].unsupported) {
				snprintf(err, len,
					 "%s: parameter '%s' is not supported "
					 "by berth (%s)",
					 p->where, p->key,
					 params[k].unsupported);
				return -EINVAL;
			}
			if (i > 0 && !c->sect[i].hidden &&
			    params[k].where == P_GLOBAL)
				return bad(err, len, p->where,
					   "'%s' belongs in the global section",
					   p->key);
		}
	}
	return 0;
}

/* uid/gid: the credentials of a module's sessions, rsync's way.  As
 * root: the module's uid (default nobody) and its groups (default
 * nogroup), run in a worker process of those credentials unless they are
 * the daemon's own.  Not root: only the daemon's own ids can be honoured;
 * others refuse each connection with rsync's message.  A name that does
 * not resolve refuses each connection too (rsync's "invalid uid"). */
static bool name_uid(const char *s, uid_t *u)
{
	struct passwd *pw = getpwnam(s);
	char *end;
	unsigned long v;

	if (pw) {
		*u = pw->pw_uid;
		return true;
	}
	v = strtoul(s, &end, 10);
	if (end == s || *end || v > 0xfffffffeUL)
		return false;
	*u = (uid_t)v;
	return true;
}

static bool name_gid(const char *s, gid_t *g)
{
	struct group *gr = getgrnam(s);
	char *end;
	unsigned long v;

	if (gr) {
		*g = gr->gr_gid;
		return true;
	}
	v = strtoul(s, &end, 10);
	if (end == s || *end || v > 0xfffffffeUL)
		return false;
	*g = (gid_t)v;
	return true;
}

static int gid_cmp(const void *a, const void *b)
{
	gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;

	return x < y ? -1 : x > y;
}

/* Sort @cr's groups, drop duplicates, add its gid. */
static void groups_norm(struct berth_dcred *cr)
{
	int i, n = 0;
	bool has = false;

	for (i = 0; i < cr->ngroups; i++)
		has |= cr->groups[i] == cr->gid;
	if (!has && cr->ngroups < BERTH_DCRED_GROUPS)
		cr->groups[cr->ngroups++] = cr->gid;
	qsort(cr->groups, (size_t)cr->ngroups, sizeof(gid_t), gid_cmp);
	for (i = 0; i < cr->ngroups; i++)
		if (!n || cr->groups[n - 1] != cr->groups[i])
			cr->groups[n++] = cr->groups[i];
	cr->ngroups = n;
}

static void refuse_ids(struct berth_dmod *m, const char *log, const char *err)
{
	m->run = BERTH_DRUN_REFUSE;
	snprintf(m->run_log, sizeof(m->run_log), "%s", log);
	snprintf(m->run_err, sizeof(m->run_err), "%s", err);
}

static void resolve_ids(struct berth_dmod *m, const char *uid, const char *gid)
{
	struct berth_dcred own = {geteuid(), getegid(), 0, {0}};
	struct berth_dcred *cr = &m->cred;
	bool root = own.uid == 0, set_uid = false;
	char list[512], msg[192], *save = NULL, *tok;
	int n;

	n = getgroups(BERTH_DCRED_GROUPS, own.groups);
	own.ngroups = n < 0 ? 0 : n;
	groups_norm(&own);
	*cr = own;
	m->run = BERTH_DRUN_MAIN;
	if (uid && !*uid)
		uid = NULL;
	if (gid && !*gid)
		gid = NULL;
	if (!uid && root)
		uid = "nobody";
	if (uid) {
		if (!name_uid(uid, &cr->uid)) {
			snprintf(msg, sizeof(msg), "invalid uid %s", uid);
			return refuse_ids(m, msg, msg);
		}
		set_uid = true;
	}
	if (!gid && root)
		gid = "nogroup";
	if (gid) {
		snprintf(list, sizeof(list), "%s", gid);
		cr->ngroups = 0;
		for (tok = strtok_r(list, " \t,", &save); tok;
		     tok = strtok_r(NULL, " \t,", &save)) {
			gid_t g;

			if (!strcmp(tok, "*") && cr->ngroups == 0) {
				struct passwd *pw = getpwuid(cr->uid);
				int k = BERTH_DCRED_GROUPS;

				if (!pw || getgrouplist(pw->pw_name, pw->pw_gid,
							cr->groups, &k) < 0) {
					snprintf(msg, sizeof(msg),
						 "getgrouplist failed for uid "
						 "%ld",
						 (long)cr->uid);
					return refuse_ids(
						m, msg, "invalid gid setting.");
				}
				cr->ngroups = k;
				continue;
			}
			if (!name_gid(tok, &g)) {
				snprintf(msg, sizeof(msg), "invalid gid %s",
					 tok);
				return refuse_ids(m, msg, msg);
			}
			if (cr->ngroups == BERTH_DCRED_GROUPS)
				return refuse_ids(m, "too many groups in gid",
						  "invalid gid setting.");
			cr->groups[cr->ngroups++] = g;
		}
		if (cr->ngroups == 0)
			return refuse_ids(m, "empty gid",
					  "invalid gid setting.");
		cr->gid = cr->groups[0];
		groups_norm(cr);
	}
	if (cr->uid == own.uid && cr->gid == own.gid &&
	    cr->ngroups == own.ngroups &&
	    !memcmp(cr->groups, own.groups,
		    sizeof(gid_t) * (size_t)own.ngroups))
		return;
	if (root) {
		m->run = BERTH_DRUN_WORKER;
		return;
	}
	/* Not root: what rsync's setgid/setgroups/setuid would refuse. */
	if (cr->gid != own.gid) {
		snprintf(msg, sizeof(msg),
			 "setgid %ld failed: Operation not permitted (1)",
			 (long)cr->gid);
		return refuse_ids(m, msg, "setgid failed");
	}
	for (n = 0; n < cr->ngroups; n++)
		if (!bsearch(&cr->groups[n], own.groups, (size_t)own.ngroups,
			     sizeof(gid_t), gid_cmp))
			return refuse_ids(m,
					  "setgroups failed: Operation not "
					  "permitted (1)",
					  "setgroups failed");
	if (set_uid && cr->uid != own.uid) {
		snprintf(msg, sizeof(msg),
			 "setuid %ld failed: Operation not permitted (1)",
			 (long)cr->uid);
		return refuse_ids(m, msg, "setuid failed");
	}
	/* Its own user and group (berth takes them; rsync's setgroups
	 * would fail): the daemon's own credentials. */
	*cr = own;
}

static int module_of(struct berth_dcfg *c, size_t i, struct berth_dmod *m,
		     char *err, size_t len)
{
	const struct berth_dconf *f = &c->conf;
	const char *name = f->sect[i].name;
	const char *path = get(f, i, "path");
	int b;

	memset(m, 0, sizeof(*m));
	m->name = name;
	if (!path || !*path)
		return bad(err, len, "rsyncd.conf", "module [%s] has no path",
			   name);
	if (path[0] != '/')
		return bad(err, len, "rsyncd.conf",
			   "module [%s]: path must be absolute", name);
	if (strchr(name, '/'))
		return bad(err, len, "rsyncd.conf",
			   "module name [%s] has a '/'", name);
	m->path = path;
	m->root = path;
	m->comment = get(f, i, "comment");
	if (!m->comment)
		m->comment = "";
#define BOOL(field, key, dflt)                                              \
	do {                                                                \
		b = boolean(get(f, i, key), dflt);                          \
		if (b < 0)                                                  \
			return bad(err, len, name, "'%s' is not yes or no", \
				   key);                                    \
		m->field = b;                                               \
	} while (0)
	BOOL(read_only, "readonly", 1);
	BOOL(write_only, "writeonly", 0);
	BOOL(list, "list", 1);
	BOOL(use_chroot, "usechroot", 1);
	BOOL(strict_modes, "strictmodes", 1);
	BOOL(transfer_logging, "transferlogging", 0);
	BOOL(reverse_lookup, "reverselookup", 1);
	BOOL(ignore_errors, "ignoreerrors", 0);
	BOOL(fake_super, "fakesuper", 0);
#undef BOOL
	b = boolean(get(f, i, "numericids"), -1);
	m->numeric_ids = get(f, i, "numericids") ? b : -1;
	if (get(f, i, "numericids") && b < 0)
		return bad(err, len, name, "'%s' is not yes or no",
			   "numeric ids");
	if (integer(get(f, i, "maxverbosity"), 1, &m->max_verbosity) ||
	    integer(get(f, i, "timeout"), 0, &m->timeout) ||
	    integer(get(f, i, "maxconnections"), 0, &m->max_connections) ||
	    m->timeout < 0)
		return bad(err, len, name, "%s",
			   "a number parameter is not a number");
	m->auth_users = get(f, i, "authusers");
	m->secrets_file = get(f, i, "secretsfile");
	m->hosts_allow = get(f, i, "hostsallow");
	m->hosts_deny = get(f, i, "hostsdeny");
	m->lock_file = get(f, i, "lockfile");
	m->refuse_options = get(f, i, "refuseoptions");
	m->dont_compress = get(f, i, "dontcompress");
	m->temp_dir = get(f, i, "tempdir");
	m->log_format = get(f, i, "logformat");
	if (!m->log_format)
		m->log_format = DEFAULT_LOG_FORMAT;
	b = boolean(get(f, i, "mungesymlinks"), -1);
	m->munge_symlinks = get(f, i, "mungesymlinks") ? b : -1;
	if (get(f, i, "mungesymlinks") && b < 0)
		return bad(err, len, name, "'%s' is not yes or no",
			   "munge symlinks");
	m->filter = get(f, i, "filter");
	m->include_from = get(f, i, "includefrom");
	m->include = get(f, i, "include");
	m->exclude_from = get(f, i, "excludefrom");
	m->exclude = get(f, i, "exclude");
	if (get(f, i, "incomingchmod") && *get(f, i, "incomingchmod")) {
		mode_t um = umask(0);

		umask(um);
		if (berth_chmod_parse(get(f, i, "incomingchmod"), um,
				      &m->chmod) < 0)
			return bad(err, len, name,
				   "invalid \"incoming chmod\" directive: %s",
				   get(f, i, "incomingchmod"));
	}
	{
		struct berth_dfilter *flt = NULL;
		char why[256];

		if (berth__dmod_filter(m, NULL, &flt, why, sizeof(why)) < 0)
			return bad(err, len, name, "%s", why);
		berth__dfilter_free(flt);
	}
	if (m->temp_dir && m->temp_dir[0] != '/')
		return bad(err, len, name, "%s",
			   "temp dir must be an absolute path");
	resolve_ids(m, get(f, i, "uid"), get(f, i, "gid"));
	return 0;
}

static int apply_overrides(struct berth_dcfg *c,
			   const struct berth_doverride *ov, char *err,
			   size_t len)
{
	struct berth_dconf tmp;
	int i, ret;

	/* --dparam NAME=VALUE: global lines after the file's. */
	for (i = 0; ov && i < ov->nparams; i++) {
		char *text = malloc(strlen(ov->params[i]) + 16);

		if (!text)
			return -ENOMEM;
		sprintf(text, "%s\n", ov->params[i]);
		if (!strchr(ov->params[i], '=')) {
			free(text);
			return bad(err, len, "--dparam",
				   "'%s' is not NAME=VALUE", ov->params[i]);
		}
		ret = berth_dconf_parse(&tmp, "--dparam", text, strlen(text),
					NULL);
		free(text);
		if (ret < 0) {
			snprintf(err, len, "%s", tmp.err);
			berth_dconf_free(&tmp);
			return ret;
		}
		/* Move its one global line into ours. */
		for (size_t j = 0; j < tmp.sect[0].n; j++) {
			struct berth_dconf_sect *g = &c->conf.sect[0];
			void *p = realloc(g->p, (g->n + 1) * sizeof(*g->p));

			if (!p) {
				berth_dconf_free(&tmp);
				return -ENOMEM;
			}
			g->p = p;
			g->cap = g->n + 1;
			g->p[g->n++] = tmp.sect[0].p[j];
		}
		tmp.sect[0].n = 0;
		berth_dconf_free(&tmp);
	}
	return 0;
}

int berth_dcfg_load(const char *path, const struct berth_doverride *ov,
		    struct berth_dcfg **out, char *err, size_t errlen)
{
	struct berth_dconf_io io = {list_files, read_all, NULL};
	struct berth_dcfg *c = calloc(1, sizeof(*c));
	const struct berth_dconf *f;
	char *text = NULL;
	size_t len = 0, i, n;
	int ret, b;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	ret = read_all(NULL, path, &text, &len);
	if (ret < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(-ret));
		free(c);
		return ret;
	}
	ret = berth_dconf_parse(&c->conf, path, text, len, &io);
	free(text);
	if (ret < 0)
		snprintf(err, errlen, "%s", c->conf.err);
	if (ret == 0)
		ret = apply_overrides(c, ov, err, errlen);
	if (ret == 0)
		ret = check_known(&c->conf, err, errlen);
	f = &c->conf;
	for (i = 1, n = 0; ret == 0 && i < f->n; i++)
		n += !f->sect[i].hidden;
	if (ret == 0 && !(c->mods = calloc(n + 1, sizeof(*c->mods))))
		ret = -ENOMEM;
	for (i = 1; ret == 0 && i < f->n; i++) {
		if (f->sect[i].hidden)
			continue;
		if (berth_dcfg_module(c, f->sect[i].name))
			ret = bad(err, errlen, "rsyncd.conf",
				  "module [%s] defined twice", f->sect[i].name);
		else
			ret = module_of(c, i, &c->mods[c->n_mods++], err,
					errlen);
	}
	if (ret == 0) {
		c->motd_file = get(f, 0, "motdfile");
		c->pid_file = get(f, 0, "pidfile");
		c->log_file = ov && ov->log_file ? ov->log_file
						 : get(f, 0, "logfile");
		c->address = ov && ov->address ? ov->address
					       : get(f, 0, "address");
		b = boolean(get(f, 0, "proxyprotocol"), 0);
		c->proxy_protocol = b;
		if (b < 0 || integer(get(f, 0, "port"), 873, &c->port) ||
		    integer(get(f, 0, "timeout"), 0, &c->timeout))
			ret = bad(err, errlen, "global", "%s",
				  "a bad port, timeout or proxy protocol");
		if (ov && ov->port)
			c->port = ov->port;
		b = boolean(get(f, 0, "reverselookup"), 1);
		c->reverse_lookup = b != 0;
		if (integer(get(f, 0, "listenbacklog"), 64, &c->listen_backlog))
			ret = bad(err, errlen, "global", "%s",
				  "a bad listen backlog");
	}
	if (ret < 0) {
		berth_dcfg_unref(c);
		return ret;
	}
	*out = c;
	return 0;
}

struct berth_dcfg *berth_dcfg_ref(struct berth_dcfg *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void berth_dcfg_unref(struct berth_dcfg *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (size_t i = 0; i < c->n_mods; i++)
		berth_chmod_free(c->mods[i].chmod);
	berth_dconf_free(&c->conf);
	free(c->mods);
	free(c);
}

const struct berth_dmod *berth_dcfg_module(const struct berth_dcfg *c,
					   const char *name)
{
	size_t i;

	for (i = 0; i < c->n_mods; i++)
		if (!strcmp(c->mods[i].name, name))
			return &c->mods[i];
	return NULL;
}

int berth__dmod_filter(const struct berth_dmod *m, int *from_fd,
		       struct berth_dfilter **out, char *why, size_t len)
{
	/* rsync's order: filter, include from, include, exclude from,
	 * exclude. */
	const struct {
		const char *name, *val;
		int kind;
	} parts[] = {
		{"filter", m->filter, BERTH_DF_FILTER},
		{"include from", m->include_from, BERTH_DF_INCLUDE_FILE},
		{"include", m->include, BERTH_DF_INCLUDE},
		{"exclude from", m->exclude_from, BERTH_DF_EXCLUDE_FILE},
		{"exclude", m->exclude, BERTH_DF_EXCLUDE},
	};
	char what[200];
	int ret = 0;

	*out = NULL;
	for (size_t i = 0; ret == 0 && i < sizeof(parts) / sizeof(parts[0]);
	     i++) {
		const char *v = parts[i].val;
		char *text = NULL;
		size_t n;

		if (!v || !*v)
			continue;
		if (parts[i].kind == BERTH_DF_INCLUDE_FILE ||
		    parts[i].kind == BERTH_DF_EXCLUDE_FILE) {
			int *fd = !from_fd ? NULL
				  : parts[i].kind == BERTH_DF_INCLUDE_FILE
					  ? &from_fd[0]
					  : &from_fd[1];

			if (fd && *fd >= 0) {
				ret = read_fd(*fd, &text, &n);
				*fd = -1;
			} else {
				ret = read_all(NULL, v, &text, &n);
			}
			if (ret < 0) {
				snprintf(why, len, "%s = %s: %s", parts[i].name,
					 v, strerror(-ret));
				break;
			}
			if (memchr(text, '\0', n)) {
				free(text);
				snprintf(why, len, "%s = %s: a NUL byte",
					 parts[i].name, v);
				ret = -EINVAL;
				break;
			}
			v = text;
		}
		ret = berth__dfilter_add(out, parts[i].kind, v, what,
					 sizeof(what));
		free(text);
		if (ret == -EINVAL)
			snprintf(why, len, "%s: %s", parts[i].name, what);
		else if (ret < 0)
			snprintf(why, len, "%s: %s", parts[i].name,
				 strerror(-ret));
	}
	if (ret < 0) {
		berth__dfilter_free(*out);
		*out = NULL;
	}
	return ret;
}
