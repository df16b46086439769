/* SPDX-License-Identifier: MIT */
/*
 * gmap.h - a map of 4K, 2M and 1G entries over a file: the shape of a
 * stage-2 or IOMMU page table.
 *
 * Entries are keyed by byte offset in a file of @size bytes.  An entry at
 * level L covers the L-aligned block around its base.  The structure is
 * a page table: a top array with one slot per GiB, holding nothing, a 1G
 * entry or a table of 512 2M slots; a 2M slot holds nothing, a 2M entry
 * or a 512-bit bitmap of 4K entries.  Tables are freed when they empty.
 *
 * Context: a gmap has no lock of its own; its owner serialises updates
 * and may let readers run concurrently only with other readers.
 */
#ifndef GMEM_GMAP_H
#define GMEM_GMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GMAP_4K		0
#define GMAP_2M		1
#define GMAP_1G		2
#define GMAP_NR_LEVELS	3

struct gmap {
	uint64_t size;		/* bytes, a multiple of 2 MiB */
	uint64_t nr_gb;		/* top slots: GiBs the file reaches */
	uintptr_t *top;		/* per GiB: empty, a 1G entry or a 2M table */
	uint64_t *top_used;	/* a bit per non-empty top slot */
	uint64_t bytes[GMAP_NR_LEVELS];	/* bytes mapped at each level */
	uint64_t added[GMAP_NR_LEVELS];	/* entries ever added, by level */
	uint64_t removed[GMAP_NR_LEVELS];	/* entries ever removed */
	uint64_t flushes;	/* removals that need a TLB/IOTLB flush: each
				 * call that removed entries (a caller may
				 * batch several calls into one) */
	uint64_t nr_pt;		/* 2M tables allocated */
	uint64_t nr_bm;		/* 4K bitmaps allocated */
	void *spare_pt, *spare_bm;	/* kept for gmap_reserve() */
	uint64_t nr_spare_pt, nr_spare_bm;
	uint64_t want_pt, want_bm;	/* tables to keep, in use + spare */
};

int gmap_init(struct gmap *m, uint64_t size);
void gmap_destroy(struct gmap *m);
int gmap_lookup(const struct gmap *m, uint64_t off, uint64_t *base);
int gmap_insert(struct gmap *m, uint64_t base, int level);
int gmap_reserve(struct gmap *m, uint64_t pt, uint64_t bm);
uint64_t gmap_remove(struct gmap *m, uint64_t start, uint64_t end);
uint64_t gmap_remove_smaller(struct gmap *m, uint64_t base, int level);
uint64_t gmap_bytes(const struct gmap *m, int level);
void gmap_for_each(const struct gmap *m, uint64_t start, uint64_t end,
		   void (*fn)(void *arg, uint64_t base, int level), void *arg);
size_t gmap_meta_bytes(const struct gmap *m);
bool gmap_ok(const struct gmap *m, char *why, size_t len);

#endif /* GMEM_GMAP_H */
