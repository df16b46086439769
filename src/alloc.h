/* SPDX-License-Identifier: MIT */
/*
 * alloc.h - the one allocation hook of gmem's internal metadata.
 *
 * Every internal structure allocates through here so that fault injection
 * can make each allocation failure reachable on purpose.
 */
#ifndef GMEM_ALLOC_H
#define GMEM_ALLOC_H

#include <stddef.h>

/**
 * gmem_alloc() - allocate zeroed metadata.
 * @size: bytes; must be non-zero.
 *
 * Context: any; never sleeps beyond what malloc does.
 * Return: the zeroed block, or NULL on failure (real or injected).
 */
void *gmem_alloc(size_t size);

/**
 * gmem_free() - free a block from gmem_alloc().
 * @p: the block, or NULL (then nothing happens).
 * @size: the size it was allocated with, for accounting.
 */
void gmem_free(void *p, size_t size);

#endif /* GMEM_ALLOC_H */
