/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocol/protocol.h"
#include "proto_testutil.h"

static const char *captures_dir(char *buf, size_t cap)
{
	const char *s = getenv("BERTH_SHARED");

	if (!s)
		return NULL;
	snprintf(buf, cap, "%s/captures", s);
	return buf;
}

bool pt_have_captures(void)
{
	char d[4096];
	struct stat st;

	return captures_dir(d, sizeof(d)) && stat(d, &st) == 0 &&
	       S_ISDIR(st.st_mode);
}

uint8_t *pt_load(const char *case_name, const char *file, size_t *len)
{
	char d[4096], p[8192];
	uint8_t *buf;
	FILE *f;
	long n;

	if (!captures_dir(d, sizeof(d)))
		return NULL;
	snprintf(p, sizeof(p), "%s/%s/%s", d, case_name, file);
	f = fopen(p, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = 0;
		*len = (size_t)n;
	}
	return buf;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **pt_cases(int *n)
{
	char d[4096];
	char **v = NULL;
	struct dirent *e;
	DIR *dir;
	int k = 0;

	*n = 0;
	if (!captures_dir(d, sizeof(d)))
		return NULL;
	dir = opendir(d);
	if (!dir)
		return NULL;
	while ((e = readdir(dir))) {
		if (strncmp(e->d_name, "case", 4) != 0)
			continue;
		v = realloc(v, sizeof(*v) * (size_t)(k + 1));
		v[k++] = strdup(e->d_name);
	}
	closedir(dir);
	qsort(v, (size_t)k, sizeof(*v), cmp_str);
	*n = k;
	return v;
}

void pt_free_list(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

char **pt_argv(const char *case_name, int *argc)
{
	size_t len;
	char *txt = (char *)pt_load(case_name, "argv.txt", &len);
	char **v = NULL, *p, *save = NULL;
	int k = 0;

	if (!txt)
		return NULL;
	for (p = strtok_r(txt, "\n", &save); p;
	     p = strtok_r(NULL, "\n", &save)) {
		v = realloc(v, sizeof(*v) * (size_t)(k + 2));
		v[k++] = strdup(p);
	}
	v[k] = NULL;
	free(txt);
	*argc = k;
	return v;
}

bool pt_mux_start(const char *case_name, size_t *s2c, size_t *c2s)
{
	size_t len;
	char *t = (char *)pt_load(case_name, "README.md", &len);
	char *p;
	bool ok = false;

	if (!t)
		return false;
	p = strstr(t, "server->client is multiplexed from @");
	if (p &&
	    sscanf(p,
		   "server->client is multiplexed from @%zx; client->server from @%zx",
		   s2c, c2s) == 2)
		ok = true;
	free(t);
	return ok;
}

uint8_t *pt_demux_all(const uint8_t *raw, size_t len, size_t start, int dir,
		      size_t *out_len)
{
	struct berth_demux d;
	struct berth_demux_event ev;
	struct berth_proto_in in = {raw, len, start};
	uint8_t *buf = malloc(len + 1);
	size_t n = 0;
	int r;

	berth_demux_init(&d, dir, 1 << 16);
	while ((r = berth_demux_poll(&d, &in, &ev)) > 0) {
		if (r == BERTH_DEMUX_DATA) {
			memcpy(buf + n, ev.ptr, ev.len);
			n += ev.len;
		}
	}
	berth_demux_destroy(&d);
	if (r < 0) {
		free(buf);
		return NULL;
	}
	*out_len = n;
	return buf;
}

int pt_session_open(struct pt_session *s, const char *cs)
{
	struct berth_hs hs;
	struct berth_hs_config cfg = {0};
	uint8_t out_buf[4096];
	struct berth_proto_out out = {out_buf, sizeof(out_buf), 0};
	struct berth_proto_in in;
	size_t s2c_at, c2s_at;

	memset(s, 0, sizeof(*s));
	if (!pt_mux_start(cs, &s2c_at, &c2s_at))
		return -1;
	s->c2s = pt_load(cs, "client_to_server.bin", &s->c2s_len);
	s->s2c = pt_load(cs, "server_to_client.bin", &s->s2c_len);
	s->argv = pt_argv(cs, &s->argc);
	if (!s->c2s || !s->s2c || !s->argv)
		return -1;
	if (berth_opts_parse(&s->o, s->argc, s->argv))
		return -1;
	in = (struct berth_proto_in){s->c2s, s->c2s_len, 0};
	if (s->o.secluded) {
		struct berth_secluded sd;

		berth_secluded_init(&sd, s->sbuf, sizeof(s->sbuf), s->sargv,
				    64);
		if (berth_secluded_decode(&sd, &in) != BERTH_PROTO_DONE ||
		    berth_opts_parse_more(&s->o, sd.argc, sd.argv))
			return -1;
	}
	berth_opts_hs_config(&s->o, &cfg);
	cfg.checksum_list = "xxh128 xxh3 xxh64 md5 md4 sha1 none";
	cfg.compress_list = "zstd lz4 zlibx zlib none";
	cfg.allow_inc_recurse = s->o.recursive && !s->o.prune_empty_dirs &&
				!s->o.delay_updates &&
				s->o.delete_mode != BERTH_DELETE_BEFORE &&
				s->o.delete_mode != BERTH_DELETE_AFTER;
	if (berth_hs_init(&hs, &cfg) || berth_hs_put_version(&hs, &out) ||
	    berth_hs_get_version(&hs, &in) != 1 ||
	    berth_hs_put_setup(&hs, &out) ||
	    berth_hs_get_lists(&hs, &in) != 1 || berth_hs_put_seed(&hs, &out))
		return -1;
	if (in.pos != c2s_at || out.pos != s2c_at)
		return -1;
	s->hs = hs.res;
	s->data = pt_demux_all(s->c2s, s->c2s_len, c2s_at, BERTH_DEMUX_C2S,
			       &s->data_len);
	s->sdata = pt_demux_all(s->s2c, s->s2c_len, s2c_at, BERTH_DEMUX_S2C,
				&s->sdata_len);
	return s->data && s->sdata ? 0 : -1;
}

void pt_session_close(struct pt_session *s)
{
	free(s->c2s);
	free(s->s2c);
	free(s->data);
	free(s->sdata);
	if (s->argv)
		pt_free_list(s->argv, s->argc);
	memset(s, 0, sizeof(*s));
}
