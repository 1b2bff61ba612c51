/* SPDX-License-Identifier: MIT */
/* rsyncd.conf text: sections, parameters, continuations, directives
 * (&include/&merge read the input again, a bounded number of levels). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon_int.h"

static const uint8_t *g_data;
static size_t g_size;

static int list_self(void *arg, const char *path, const char *suffix,
		     char ***names, size_t *n)
{
	(void)arg;
	(void)suffix;
	*names = malloc(sizeof(char *));
	(*names)[0] = strdup(path);
	*n = 1;
	return 0;
}

static int read_self(void *arg, const char *path, char **text, size_t *len)
{
	(void)arg;
	(void)path;
	*text = malloc(g_size + 1);
	memcpy(*text, g_data, g_size);
	(*text)[g_size] = '\0';
	*len = g_size;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct berth_dconf_io io = {list_self, read_self, NULL};
	struct berth_dconf c;

	g_data = data;
	g_size = size;
	(void)berth_dconf_parse(&c, "fuzz", (const char *)data, size, &io);
	for (size_t i = 0; i < c.n; i++)
		(void)berth_dconf_find(&c.sect[i], "path");
	berth_dconf_free(&c);
	return 0;
}
