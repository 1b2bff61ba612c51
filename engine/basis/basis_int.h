/* SPDX-License-Identifier: MIT */
/*
 * The basis reader's ring (engine/basis internals; tests may use it too).
 *
 * A ring of equal buffers ("slots") whose entries leave in the order they
 * were queued.  An entry is either a positioned read of a basis file
 * through the pump, or bytes the caller copied in (the literals of token
 * apply).  Up to nslots reads are in flight at once, in any order of
 * completion; entries are handed to the deliver callback from the head
 * only, when complete, so the consumer sees the basis in the order it asked
 * for it.  A slot is recycled as soon as its entry has been delivered.
 *
 * The read at the tail may be left "open" (not yet submitted): a following
 * read of the same fd that starts where it ends and fits the slot extends
 * it (adjacent matched blocks become one read).  It is submitted as soon as
 * anything else is queued, when it is full for reads of its size, or when
 * a wait needs it.
 *
 * Errors are sticky: the first read error, refused submission or error
 * from the deliver callback is returned by every later call; entries after
 * it are waited for and dropped unseen, until berth_basis_cancel().
 *
 * Threads: one caller thread at a time runs every function and the deliver
 * callback (inside them); the pump thread only marks reads complete, under
 * the ring's lock.  Lock order: the ring's lock is a leaf.  Never call
 * these from a pump callback (they wait for pump completions).
 */
#ifndef BERTH_BASIS_INT_H
#define BERTH_BASIS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/basis/basis.h"

/* One delivered entry. */
struct berth_basis_chunk {
	uint8_t *buf; /* the slot's bytes; valid until the callback returns */
	size_t len;
	uint64_t user; /* the caller's word, from the call that queued it */
	int is_read; /* a basis read (else bytes queued by the caller) */
	int short_read; /* the basis ended early: buf is zero-filled */
};

/* Deliver callback: return 0, or a negative error (sticky). */
typedef int (*berth_basis_cb)(void *arg, const struct berth_basis_chunk *c);

struct berth_basis_opts {
	struct berth_pump *pump;
	unsigned nslots; /* buffers in the ring, >= 1 */
	size_t slot_size; /* bytes per buffer, > 0 */
	uint64_t tag; /* pump tag of the reads */
	/* A read is first made on the calling thread, of what the page cache
	 * holds (BERTH_READ_NOWAIT through berth_pump_run_inline(), so
	 * injected faults apply); only one that would wait, or comes back
	 * short, goes to the pump.  Cached data costs a copy either way; the
	 * hop to the pump thread and back costs two wake-ups more. */
	bool cached_inline;
	berth_basis_cb deliver; /* receives every entry, in order */
	void *arg;
};

struct berth_basis;

/* Create a ring.  Its buffers are whole pages from the system
 * (berth_plat_pages_alloc()), each taken when a slot is first used; a
 * buffer that cannot be had is the sticky -ENOMEM.  0 or -errno.  Any
 * thread. */
int berth_basis_create(const struct berth_basis_opts *opts,
		       struct berth_basis **out);
/* Cancel (see below) and free; NULL is a no-op. */
void berth_basis_free(struct berth_basis *b);
/* Give the buffers back to the system while nothing is queued (a no-op
 * otherwise); the next use takes them again.  The caller thread. */
void berth_basis_trim(struct berth_basis *b);

/* Entries queued and not yet delivered or dropped. */
unsigned berth_basis_pending(const struct berth_basis *b);

/* berth_basis_prep_read() flag: leave the read open for extension. */
#define BERTH_BASIS_OPEN 1u

/*
 * Queue a read of @len (<= slot_size) bytes of @fd at @off, tagged @user.
 * With BERTH_BASIS_OPEN it may extend the open read at the tail (same fd
 * and user, adjacent, fits), and stays open while another read of @len
 * bytes would still fit; without it the read is submitted at once.  Taking
 * a slot from a full ring submits the open read and delivers the head,
 * waiting for it.  A read the pump refuses completes at once with the
 * pump's error, which becomes the sticky error.  Returns 0 or the sticky
 * error (nothing is queued then).
 */
int berth_basis_prep_read(struct berth_basis *b, int fd, uint64_t off,
			  size_t len, uint64_t user, unsigned flags);

/*
 * Queue a copy of @len bytes of @buf, tagged @user, after everything
 * queued so far (submits the open read; fills the tail's copy entry
 * before taking new slots).  May deliver and wait as prep_read does.
 * Returns 0 or the sticky error.
 */
int berth_basis_prep_bytes(struct berth_basis *b, const void *buf, size_t len,
			   uint64_t user);

/* Submit the open read at the tail, if any. */
void berth_basis_submit(struct berth_basis *b);

enum {
	BERTH_BASIS_POLL_READY = 0, /* deliver what is complete, no wait */
	BERTH_BASIS_POLL_ONE, /* wait for the head and deliver it, only it */
	BERTH_BASIS_POLL_ALL, /* wait for and deliver everything */
};

/*
 * Deliver complete entries from the head, waiting per @how (an open read
 * at the head is submitted when a wait needs it; POLL_READY stops there).
 * Returns 0 or the sticky error.
 */
int berth_basis_poll(struct berth_basis *b, int how);

/*
 * Drop everything: wait for the submitted reads (they are not cancelled in
 * the pump: basis reads are short), deliver nothing, empty the ring and
 * clear the sticky error.  The ring is then ready for the next file.
 */
void berth_basis_cancel(struct berth_basis *b);

#endif /* BERTH_BASIS_INT_H */
