/* SPDX-License-Identifier: MIT */
/*
 * The `iocp` backend (Windows): one I/O completion port, owned by the pump
 * thread, which drains it in batches with GetQueuedCompletionStatusEx.
 *
 * A request's OVERLAPPED lives in the request (req->plat) and a completion
 * finds its request again with container_of: no allocation, no lookup.
 * Reads and writes of handles opened for overlapped I/O (every file
 * berth opens, platform_win.c) are issued here, one buffer per attempt
 * (the pump continues a vector as a short transfer); the handle is
 * associated with the port on first use.  Everything else, and handles
 * opened for synchronous I/O, runs on the worker pool, whose results come
 * back through the pump's done queue and a packet posted to the port.
 *
 * Wake-ups and shutdown are packets posted to the port (KEY_WAKE): closing
 * a port does not wake a thread waiting on it under Wine, and a posted
 * packet works the same everywhere.  A request that fails before it is in
 * flight (the call refused it at once) is posted too (KEY_NOW), so that no
 * callback runs inside submit.  A no-op is a posted packet.
 *
 * Cancel is CancelIoEx on the request's own OVERLAPPED: the completion
 * still arrives, with STATUS_CANCELLED, or with the result if the transfer
 * had finished; either way exactly once.  The port and this backend's
 * state outlive the pump thread until berth_pump_free(), so a late wake
 * from another thread never posts to a closed handle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <windows.h>
#include <winternl.h>

#include "engine/platform/platform_win.h"
#include "pump_int.h"

_Static_assert(sizeof(OVERLAPPED) <= sizeof(struct berth_plat_ov),
	       "struct berth_plat_ov must hold an OVERLAPPED");

#define KEY_IO 1 /* an overlapped transfer, or a posted no-op */
#define KEY_NOW 2 /* a result known at submit: req->res_raw */
#define KEY_WAKE 3 /* a wake-up sentinel; no request */

#define BATCH_MIN 64
#define BATCH_MAX 1024

#define NT_FILE_MODE_INFO 16
#define NT_SYNCHRONOUS_IO 0x30 /* FILE_SYNCHRONOUS_IO_ALERT | _NONALERT */
#define NT_STATUS_END_OF_FILE ((LONG)0xC0000011L)
#define NT_STATUS_PIPE_BROKEN ((LONG)0xC000014BL)

struct iocp_be {
	HANDLE port;
	ULONG batch; /* entries asked for per wait */
	OVERLAPPED_ENTRY ents[BATCH_MAX];
};

static struct iocp_be *be_of(struct berth_pump *p)
{
	return p->be;
}

static OVERLAPPED *ov_of(struct berth_req *req)
{
	return (OVERLAPPED *)(void *)&req->plat;
}

static struct berth_req *req_of(OVERLAPPED *ov)
{
	return (struct berth_req *)(void *)((char *)ov -
					    offsetof(struct berth_req, plat));
}

static int iocp_init(struct berth_pump *p, char *reason, size_t len)
{
	struct iocp_be *be = calloc(1, sizeof(*be));

	if (!be) {
		snprintf(reason, len, "out of memory");
		return -ENOMEM;
	}
	/* One thread (the pump) ever waits on it. */
	be->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
	if (!be->port) {
		int ret = berth_plat_err(GetLastError());

		snprintf(reason, len, "CreateIoCompletionPort: %lu",
			 GetLastError());
		free(be);
		return ret;
	}
	be->batch = BATCH_MIN;
	p->be = be;
	snprintf(reason, len,
		 "completion port, batches of %d to %d completions", BATCH_MIN,
		 BATCH_MAX);
	return 0;
}

/* Pump thread, at its end: nothing is in flight any more. */
static void iocp_destroy(struct berth_pump *p)
{
	(void)p; /* the port stays until iocp_release(): late wakes */
}

static void iocp_release(struct berth_pump *p)
{
	struct iocp_be *be = be_of(p);

	if (!be)
		return;
	CloseHandle(be->port);
	free(be);
	p->be = NULL;
}

/* Whether @h was opened for overlapped I/O (else the pool takes it). */
static bool overlapped_handle(HANDLE h)
{
	IO_STATUS_BLOCK io;
	ULONG mode = 0;
	NTSTATUS st;

	st = NtQueryInformationFile(h, &io, &mode, sizeof(mode),
				    (FILE_INFORMATION_CLASS)NT_FILE_MODE_INFO);
	return st >= 0 && !(mode & NT_SYNCHRONOUS_IO);
}

static bool iocp_supports(struct berth_pump *p, struct berth_req *req)
{
	HANDLE h;

	if (req->op == BERTH_OP_NOP)
		return true;
	if (!req_is_rw(req))
		return false;
	h = berth_plat_handle(req->fd);
	if (!h || !overlapped_handle(h))
		return false;
	/*
	 * Associate on first use.  A handle already associated fails (error
	 * 87 on Windows, 0 under Wine); berth associates handles with no
	 * other port, so that means ours.  A handle value can be reused
	 * after a close by a new, unassociated handle, so this is asked per
	 * request rather than remembered.
	 */
	CreateIoCompletionPort(h, be_of(p)->port, KEY_IO, 0);
	return true;
}

static void post(struct berth_pump *p, struct berth_req *req, ULONG_PTR key,
		 DWORD bytes)
{
	/* Posting to our own port fails only when memory is gone; the
	 * request would then never complete, which we do not allow. */
	while (!PostQueuedCompletionStatus(be_of(p)->port, bytes, key,
					   ov_of(req)))
		Sleep(1);
}

static void iocp_submit(struct berth_pump *p, struct berth_req *req)
{
	OVERLAPPED *ov = ov_of(req);
	HANDLE h = berth_plat_handle(req->fd);
	uint64_t off = req->cur_off == BERTH_OFF_STREAM ? 0 : req->cur_off;
	size_t len;
	DWORD want, err;
	BOOL ok;

	memset(ov, 0, sizeof(*ov));
	if (req->op == BERTH_OP_NOP) {
		post(p, req, KEY_IO, 0);
		return;
	}
	/* Beyond what off_t holds: refused, as Linux does.  The top values
	 * are also Windows' "append" and "at the file pointer". */
	if (off > INT64_MAX) {
		req->res_raw = -EINVAL;
		post(p, req, KEY_NOW, 0);
		return;
	}
	len = req->cur_iov[0].iov_len;
	want = len > 0x40000000 ? 0x40000000 : (DWORD)len;
	ov->Offset = (DWORD)off;
	ov->OffsetHigh = (DWORD)(off >> 32);
	ok = req->op == BERTH_OP_READ
		     ? ReadFile(h, req->cur_iov[0].iov_base, want, NULL, ov)
		     : WriteFile(h, req->cur_iov[0].iov_base, want, NULL, ov);
	/* Done at once or pending: the port gets the completion either way
	 * (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is never set). */
	if (ok)
		return;
	err = GetLastError();
	if (err == ERROR_IO_PENDING)
		return;
	/* Refused at once: no packet will come; post the result. */
	if (err == ERROR_HANDLE_EOF || err == ERROR_BROKEN_PIPE)
		req->res_raw = 0;
	else
		req->res_raw = berth_plat_err(err);
	post(p, req, KEY_NOW, 0);
}

static void iocp_cancel(struct berth_pump *p, struct berth_req *req)
{
	HANDLE h;

	(void)p;
	if (req->op == BERTH_OP_NOP)
		return; /* already posted: it completes with 0 */
	h = berth_plat_handle(req->fd);
	/* ERROR_NOT_FOUND: finished already, its packet is on the way. */
	if (h)
		CancelIoEx(h, ov_of(req));
}

static ssize_t result_of(const OVERLAPPED_ENTRY *e)
{
	struct berth_req *req = req_of(e->lpOverlapped);
	LONG st = (LONG)e->lpOverlapped->Internal;

	if (e->lpCompletionKey == KEY_NOW)
		return req->res_raw;
	if (st >= 0)
		return (ssize_t)e->dwNumberOfBytesTransferred;
	if (st == NT_STATUS_END_OF_FILE || st == NT_STATUS_PIPE_BROKEN)
		return 0;
	return berth_plat_nterr(st);
}

static void iocp_wait(struct berth_pump *p, bool block)
{
	struct iocp_be *be = be_of(p);
	ULONG n = 0, i;

	if (!GetQueuedCompletionStatusEx(be->port, be->ents, be->batch, &n,
					 block ? INFINITE : 0, FALSE))
		return; /* WAIT_TIMEOUT: nothing there */
	for (i = 0; i < n; i++) {
		const OVERLAPPED_ENTRY *e = &be->ents[i];

		if (e->lpCompletionKey == KEY_WAKE || !e->lpOverlapped)
			continue; /* the loop looks at its queues next */
		berth__pump_result(p, req_of(e->lpOverlapped), result_of(e));
	}
	/* A full batch means more are waiting: take more next time. */
	if (n == be->batch && be->batch < BATCH_MAX)
		be->batch *= 2;
	else if (n < be->batch / 4 && be->batch > BATCH_MIN)
		be->batch /= 2;
}

static void iocp_wake(struct berth_pump *p)
{
	PostQueuedCompletionStatus(be_of(p)->port, 0, KEY_WAKE, NULL);
}

const struct berth_pump_backend berth__pump_iocp = {
	.name = "iocp",
	.id = BERTH_PUMP_IOCP,
	.init = iocp_init,
	.destroy = iocp_destroy,
	.supports = iocp_supports,
	.submit = iocp_submit,
	.cancel = iocp_cancel,
	.wait = iocp_wait,
	.wake = iocp_wake,
	.release = iocp_release,
};
