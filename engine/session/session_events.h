/* SPDX-License-Identifier: MIT */
/*
 * The embedder's events (session_events.c): committed, failed, deleted,
 * progress; and MSG_SUCCESS for --remove-source-files.
 */
#ifndef BERTH_SESSION_EVENTS_H
#define BERTH_SESSION_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

struct berth_session;

/* A file reached its final name / failed / was deleted: events. */
void berth__session_committed(struct berth_session *s, int32_t ndx);
void berth__session_file_failed(struct berth_session *s, const char *path,
				int err);
void berth__session_deleted(struct berth_session *s, const char *path,
			    bool is_dir);
void berth__session_progress(struct berth_session *s);
/* --remove-source-files: @ndx is safely on the receiver (MSG_SUCCESS). */
void berth__session_success(struct berth_session *s, int32_t ndx);

#endif /* BERTH_SESSION_EVENTS_H */
