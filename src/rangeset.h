/* SPDX-License-Identifier: MIT */
/*
 * rangeset.h - a set of uint64_t held as disjoint half-open intervals.
 *
 * The set is an AVL tree of intervals [start, end) keyed by start.  The
 * intervals are always coalesced: no two of them overlap or touch, so
 * each maximal run of members is exactly one node.  Updates split and
 * join the tree around the affected run, so they cost O(log n + k) for
 * n intervals and k intervals changed, never a walk over the units.
 *
 * UINT64_MAX itself can never be a member (ends are exclusive).
 *
 * Context: a rangeset has no lock of its own; its owner serialises
 * updates and may let readers run concurrently only with other readers.
 */
#ifndef GMEM_RANGESET_H
#define GMEM_RANGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rs_node;

struct rangeset {
	struct rs_node *root;
	struct rs_node *spare;	/* preallocated node, see rs_prepare() */
	uint64_t nr_ranges;	/* intervals in the set */
	uint64_t nr_units;	/* total units covered */
};

void rs_init(struct rangeset *rs);
void rs_destroy(struct rangeset *rs);
int rs_prepare(struct rangeset *rs);
int rs_add(struct rangeset *rs, uint64_t start, uint64_t end);
int rs_remove(struct rangeset *rs, uint64_t start, uint64_t end);
bool rs_test(const struct rangeset *rs, uint64_t x);
uint64_t rs_count(const struct rangeset *rs, uint64_t start, uint64_t end);
bool rs_first_in(const struct rangeset *rs, uint64_t start, uint64_t end,
		 uint64_t *x);
bool rs_first_not_in(const struct rangeset *rs, uint64_t start, uint64_t end,
		     uint64_t *x);
bool rs_next(const struct rangeset *rs, uint64_t from, uint64_t *start,
	     uint64_t *end);
size_t rs_meta_bytes(const struct rangeset *rs);
bool rs_ok(const struct rangeset *rs, char *why, size_t len);

#endif /* GMEM_RANGESET_H */
