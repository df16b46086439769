// SPDX-License-Identifier: MIT
/*
 * pinloop.c - N pin+unpin pairs of one mapped 4K page of an intact 2M
 * folio (policy b-lazy), for counting instructions per pair under
 * callgrind (bench/instructions.sh), which is stable where times are not.
 *
 *   pinloop [N]     N pairs after one warm-up pair (default 100000)
 */
#include <stdio.h>
#include <stdlib.h>

#include "gmem.h"

static void check(int err, const char *what)
{
	if (err) {
		fprintf(stderr, "pinloop: %s: %s\n", what, gmem_errno_name(err));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	struct gmem_pool *pool;
	struct gmem_file *file;
	struct gmem_mm *mm;
	uint64_t id;
	void *page;

	check(gmem_pool_create(GMEM_2M, 1, GMEM_BACKING_MEMFD, &pool), "pool");
	check(gmem_file_create(pool, GMEM_2M, GMEM_POLICY_B_LAZY,
			       GMEM_FILE_INIT_SHARED, &file), "file");
	check(gmem_mm_create(pool, NULL, &mm), "mm");
	check(gmem_mmap(mm, file), "mmap");
	check(gmem_fault(mm, file, 0, GMEM_WRITE), "fault");
	/* warm-up: the first pin allocates its slot and thread state */
	check(gmem_pin(mm, file, 0, 4096, 0, &id, &page), "pin");
	check(gmem_unpin(pool, id), "unpin");
	for (long i = 0; i < n; i++) {
		check(gmem_pin(mm, file, 0, 4096, 0, &id, &page), "pin");
		check(gmem_unpin(pool, id), "unpin");
	}
	printf("pinloop: %ld pairs\n", n);
	gmem_pool_destroy(pool);
	return 0;
}
