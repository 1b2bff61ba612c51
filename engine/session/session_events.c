/* SPDX-License-Identifier: MIT */
/*
 * The embedder's events (include/berth.h): a file committed, failed or
 * deleted, progress; and MSG_SUCCESS for --remove-source-files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/session/session.h"

void berth__session_committed(struct berth_session *s, int32_t ndx)
{
	const struct berth_session_events *ev = s->cfg.sopts.events;
	const struct berth_file *f;
	struct berth_file_event fe;
	struct berth_commit_meta m;
	struct file_state st;
	struct file_side *side;
	char path[BERTH_PATH_BUF];
	uint8_t sum[sizeof(side->sum)] = {0};
	uint64_t wire = 0;

	if (!ev || !ev->file_committed)
		return;
	/* The commit work holds a reference on the list. */
	f = berth__file(s, ndx);
	if (!f)
		return;
	st = berth__fst_get(s, ndx);
	pthread_mutex_lock(&s->sync.lock);
	side = berth__fst_side(s, ndx, false);
	if (side) {
		memcpy(sum, side->sum, sizeof(sum));
		wire = side->wire_bytes;
	}
	pthread_mutex_unlock(&s->sync.lock);
	berth__session_meta(s, f, st.exists, st.cur_mode, &m);
	memset(&fe, 0, sizeof(fe));
	fe.path = berth_file_path(f, path);
	fe.size = (uint64_t)f->size;
	fe.mode = (m.mode & 07777) | S_IFREG;
	fe.mtime_sec = f->mtime;
	fe.mtime_nsec = f->nsec;
	fe.checksum_type = s->neg.cp.type;
	fe.checksum_name = berth_csum_name(s->neg.cp.type);
	fe.checksum = sum;
	fe.checksum_len = s->neg.digest_len;
	fe.wire_bytes = wire;
	ev->file_committed(s->cfg.sopts.event_arg, &fe);
}

void berth__session_file_failed(struct berth_session *s, const char *path,
				int err)
{
	const struct berth_session_events *ev = s->cfg.sopts.events;

	if (ev && ev->file_error)
		ev->file_error(s->cfg.sopts.event_arg, path, err);
}

void berth__session_deleted(struct berth_session *s, const char *path,
			    bool is_dir)
{
	const struct berth_session_events *ev = s->cfg.sopts.events;

	if (ev && ev->file_deleted)
		ev->file_deleted(s->cfg.sopts.event_arg, path, is_dir);
}

void berth__session_success(struct berth_session *s, int32_t entry)
{
	int32_t ndx = berth__ndx_to_wire(s, entry); /* --iconv: as sent */
	uint8_t p[4] = {(uint8_t)ndx, (uint8_t)(ndx >> 8), (uint8_t)(ndx >> 16),
			(uint8_t)(ndx >> 24)};

	if (s->opts.remove_source_files)
		berth__out_msg(&s->out, BERTH_MSG_SUCCESS, p, sizeof(p));
}

void berth__session_progress(struct berth_session *s)
{
	const struct berth_session_events *ev = s->cfg.sopts.events;
	struct berth_progress p;

	if (!ev || !ev->progress)
		return;
	pthread_mutex_lock(&s->sync.lock);
	p.files_total = s->lst.files_total;
	pthread_mutex_unlock(&s->sync.lock);
	p.files_done = atomic_load(&s->rep.files_written);
	p.bytes_literal = atomic_load(&s->rep.literal_bytes);
	p.bytes_matched = atomic_load(&s->rep.matched_bytes);
	ev->progress(s->cfg.sopts.event_arg, &p);
}
