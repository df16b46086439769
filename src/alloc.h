/* SPDX-License-Identifier: MIT */
/*
 * alloc.h - the one allocation hook of gmem's internal metadata.
 *
 * Every internal structure allocates through here so that fault injection
 * can make each allocation failure reachable on purpose.
 */
#ifndef GMEM_ALLOC_H
#define GMEM_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * gmem_alloc() - allocate zeroed metadata.
 * @size: bytes; must be non-zero.
 *
 * Context: any; never sleeps beyond what malloc does.
 * Return: the zeroed block, or NULL on failure (real or injected).
 */
void *gmem_alloc(size_t size);

/**
 * gmem_alloc_cacheline() - gmem_alloc() of a block that starts on a cache
 * line: structures whose parts different threads write (per-thread
 * counters, folios pinned from several threads) must not share lines,
 * and calloc() promises only 16 bytes.  Freed with gmem_free().
 */
void *gmem_alloc_cacheline(size_t size);

/**
 * gmem_free() - free a block from gmem_alloc() or gmem_alloc_cacheline().
 * @p: the block, or NULL (then nothing happens).
 * @size: the size it was allocated with, for accounting.
 */
void gmem_free(void *p, size_t size);

/*
 * Test-only fault injection (tests link the static library and include
 * this header).  A failure point is every gmem_alloc() and every system
 * call that sets up memory.
 */
bool gmem_inject_should_fail(void);	/* called at each failure point */
void gmem_inject_reset(void);		/* off; counters to zero */
void gmem_inject_fail_nth(uint64_t n);	/* the n-th point from now fails */
void gmem_inject_fail_random(unsigned int permille, uint64_t seed);
uint64_t gmem_inject_calls(void);	/* points passed since reset/nth */
uint64_t gmem_inject_injected(void);	/* failures injected */
int64_t gmem_alloc_live_bytes(void);	/* metadata bytes held now */

#endif /* GMEM_ALLOC_H */
