// SPDX-License-Identifier: MIT
/*
 * device-iommu.c - a device model that maps a guest's shared pages into
 * its IOMMU domain.
 *
 * gmem's IOMMU map takes no references: it is kept in step with the file by
 * invalidation, as iommufd would be with invalidation callbacks.  So a
 * conversion never waits for the device, and the map always holds exactly
 * the shared pages of the ranges it was given, at the largest level (1G,
 * 2M, 4K) that each aligned block allows.  This program maps a bounce
 * buffer, then watches the levels change as the guest takes a page back
 * and returns it.
 *
 * Build: cc device-iommu.c $(pkg-config --cflags --libs gmem) -o device-iommu
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <gmem.h>

#define GUEST_SIZE	(1ULL << 30)
#define BOUNCE		(64ULL << 20)	/* 64 MiB at 256 MiB */
#define BOUNCE_OFF	(256ULL << 20)

static void show(struct gmem_pool *pool, struct gmem_file *f, const char *when)
{
	struct gmem_stats s;

	if (gmem_stats(pool, f, &s))
		exit(1);
	printf("%-34s iommu 2M=%3" PRIu64 " MiB 4K=%4" PRIu64 " KiB\n",
	       when, s.iommu_2m >> 20, s.iommu_4k >> 10);
}

int main(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	uint64_t at;
	int ret;

	/* metadata only: the IOMMU map needs no memory contents */
	if ((ret = gmem_pool_create(GMEM_2M, GUEST_SIZE / GMEM_2M,
				    GMEM_BACKING_NONE, &pool)) ||
	    (ret = gmem_file_create(pool, GUEST_SIZE, GMEM_POLICY_B_LAZY, 0,
				    &f)))
		goto fail;

	/* a private page cannot be given to a device */
	ret = gmem_iommu_map(f, BOUNCE_OFF, BOUNCE, &at);
	printf("map a private range: %s at 0x%" PRIx64 "\n",
	       gmem_errno_name(ret), at);

	/* the guest shares its bounce buffer; the device maps it */
	if ((ret = gmem_convert(f, BOUNCE_OFF, BOUNCE, GMEM_SHARED, 0, 0, NULL)) ||
	    (ret = gmem_iommu_map(f, BOUNCE_OFF, BOUNCE, &at)))
		goto fail;
	show(pool, f, "bounce buffer mapped");

	/* the guest takes one page back: its 2M entry becomes 511 4K ones */
	if ((ret = gmem_convert(f, BOUNCE_OFF + 0x5000, 0x1000, GMEM_PRIVATE,
				0, 0, NULL)))
		goto fail;
	show(pool, f, "one page taken back (private)");

	/* and returns it: the block is uniform again, mapped at 2M */
	if ((ret = gmem_convert(f, BOUNCE_OFF + 0x5000, 0x1000, GMEM_SHARED,
				0, 0, NULL)))
		goto fail;
	show(pool, f, "page shared again");

	gmem_pool_destroy(pool);
	return 0;
fail:
	fprintf(stderr, "device-iommu: %s\n", gmem_errno_name(ret));
	return 1;
}
