// SPDX-License-Identifier: MIT
/*
 * alloc.c - allocation hook for internal metadata (no fault injection yet).
 */
#include <stdlib.h>

#include "alloc.h"

void *gmem_alloc(size_t size)
{
	return calloc(1, size);
}

void gmem_free(void *p, size_t size)
{
	(void)size;
	free(p);
}
