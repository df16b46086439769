/* SPDX-License-Identifier: MIT */
/*
 * hog.h - test runs on real hugetlbfs, beside a neighbour that takes every
 * free huge page the host has.
 *
 * The tests create their pools with testpool_create() and destroy them
 * with testpool_destroy().  Without the variables below these are
 * gmem_pool_create() and gmem_pool_destroy().  With them (test runs only):
 *
 *   GMEM_TEST_BACKING=hugetlb     a pool of either size that asks for
 *                                 backing auto or memfd is created on
 *                                 hugetlb, with no fallback;
 *   GMEM_TEST_BACKING=hugetlb:2M  only 2 MiB pools (hugetlb:1G: only 1 GiB
 *                                 pools; the others keep what they ask);
 *   GMEM_TEST_HOG=1               while a hugetlb pool made here exists, a
 *                                 child process (the hog) takes every free
 *                                 huge page of its size that nobody has
 *                                 reserved, every HOG_INTERVAL_US and at
 *                                 once after every hole this process
 *                                 punches in a hugetlbfs file (hog.c's
 *                                 fallocate()), and holds them.
 *
 * backing=none is never forced.  A forced pool that cannot be had because
 * the host has too few free huge pages ends the process with status 3 and
 * a message: a run that asked for hugetlb must not go on with something
 * else.  Tests that need a plain memfd call gmem_pool_create() instead.
 */
#ifndef GMEM_TOOL_HOG_H
#define GMEM_TOOL_HOG_H

#include <stdint.h>

#include "gmem.h"

/* How often the hog looks for free huge pages (microseconds). */
#define HOG_INTERVAL_US 200

/* Exit status of a process whose forced hugetlb pool could not be had. */
#define HOG_EXIT_NO_PAGES 3

/**
 * testpool_create() - gmem_pool_create(), with @backing forced to hugetlb
 * and the hog started as GMEM_TEST_BACKING and GMEM_TEST_HOG say.
 * Stops any hog running first (one hog at a time: its pages must come
 * back before a new pool can reserve them).
 * Return: gmem_pool_create()'s result, or -EINVAL (with a message) for a
 * malformed variable, or a negative errno when the hog cannot start (the
 * pool is destroyed then).
 */
int testpool_create(uint64_t page_size, uint64_t count,
		     enum gmem_backing backing, struct gmem_pool **out);

/* gmem_pool_destroy(@pool), then stop the hog, if any. */
void testpool_destroy(struct gmem_pool *pool);

/*
 * Start a hog for huge pages of @page_size now (stopping any other first);
 * it has taken every free unreserved page when this returns.  0 or a
 * negative errno.
 */
int hog_start(uint64_t page_size);

/* Stop the hog, if one runs, and wait until its pages are back. */
void hog_stop(void);

/* Make the hog take every free unreserved page now, and wait for it. */
void hog_sweep(void);

#endif /* GMEM_TOOL_HOG_H */
