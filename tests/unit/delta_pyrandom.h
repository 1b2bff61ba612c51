/* SPDX-License-Identifier: MIT */
/*
 * Test helper: Python's random.Random(seed).randbytes(n) in C (MT19937 with
 * CPython's init_by_array seeding), so tests can rebuild the capture bases
 * of shared/captures/tools/make_captures.py without checked-in binaries.
 */
#ifndef BERTH_TEST_DELTA_PYRANDOM_H
#define BERTH_TEST_DELTA_PYRANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fill @out with random.Random(@seed).randbytes(@n) (seed < 2^32). */
void pyrandom_bytes(uint32_t seed, uint8_t *out, size_t n);

#endif
