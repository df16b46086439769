// SPDX-License-Identifier: MIT
/*
 * stats.c - reading libgmem's statistics: one snapshot, every key by name.
 *
 * gmem_stats() takes a consistent snapshot; gmem_stat_keys lists every key
 * (the first gmem_stat_nr_listed are the trace language's default set) and
 * gmem_stat_get() reads one by name, as `gmem replay`'s `stats` does.  Here:
 * the metadata a 1 GiB guest costs under each policy after one 4K page has
 * been shared, and the pool after the files are gone.
 *
 * Build: cc stats.c $(pkg-config --cflags --libs gmem) -o stats
 */
#include <inttypes.h>
#include <stdio.h>

#include <gmem.h>

int main(void)
{
	static const enum gmem_policy policies[] = {
		GMEM_POLICY_4K, GMEM_POLICY_A, GMEM_POLICY_B_EAGER,
		GMEM_POLICY_B_LAZY };
	static const char *const names[] = { "4k", "a", "b-eager", "b-lazy" };
	struct gmem_pool *pool;
	struct gmem_stats s;
	int ret;

	ret = gmem_pool_create(GMEM_1G, 4, GMEM_BACKING_NONE, &pool);
	if (ret)
		return 1;
	for (int i = 0; i < 4; i++) {
		struct gmem_file *f;

		if (gmem_file_create(pool, GMEM_1G, policies[i], 0, &f) ||
		    gmem_guest_access(f, 0, GMEM_1G, 0) ||
		    gmem_convert(f, 0x1000, 0x1000, GMEM_SHARED, 0, 0, NULL) ||
		    gmem_stats(pool, f, &s))
			return 1;
		printf("%-8s meta_bytes=%-9" PRIu64 " vmemmap_bytes=%-9" PRIu64
		       " folios 1G/2M/4K=%" PRIu64 "/%" PRIu64 "/%" PRIu64 "\n",
		       names[i], s.meta_bytes, s.vmemmap_bytes, s.folios_1g,
		       s.folios_2m, s.folios_4k);
		if (gmem_file_close(f))
			return 1;
	}

	/* every key of the pool-wide snapshot, by name */
	if (gmem_stats(pool, NULL, &s))
		return 1;
	for (unsigned int k = 0; gmem_stat_keys[k]; k++) {
		uint64_t v;

		if (gmem_stat_get(&s, gmem_stat_keys[k], &v))
			return 1;
		printf("%s=%" PRIu64 "%s", gmem_stat_keys[k], v,
		       gmem_stat_keys[k + 1] ? " " : "\n");
	}
	gmem_pool_destroy(pool);
	return 0;
}
