// SPDX-License-Identifier: MIT
/*
 * test_policy.c - the four folio policies (DESIGN.md "Policies", TRACE.md
 * "Split and merge", "Statistics"): which pin blocks a 4K shared->private
 * conversion (the drain set), b-lazy's 1G -> 2M -> 4K split and its merge
 * back (deferred while a host PTE or pin remains, done at the unpin),
 * b-eager's one shatter per huge page and no merge, a's intact folios and
 * refused long-term pins, and the metadata figures (meta_bytes O(1) for an
 * intact b-lazy page; vmemmap_bytes 4096 per intact huge folio + 64 per 4K
 * folio).
 */
#include "harness.h"

#define PG(n) ((uint64_t)(n) * K4)
#define BLK(n) ((uint64_t)(n) * 512)		/* first page of 2M block n */

static const enum gmem_policy all_policies[] = {
	GMEM_POLICY_4K, GMEM_POLICY_A, GMEM_POLICY_B_EAGER, GMEM_POLICY_B_LAZY,
};

/*
 * Pin page @pin, convert page @conv (same huge page) to private with no
 * wait: @blocked says whether the pin is in @conv's drain set.  On success
 * the page is converted back.
 */
static bool pin_blocks(struct gmem_pool *pool, struct gmem_file *f,
		       struct gmem_mm *mm, uint64_t pin, uint64_t conv,
		       bool blocked)
{
	uint64_t id, at = ~0ULL;
	int r;

	CHECK_EQ(gmem_pin(mm, f, PG(pin), K4, 0, &id, NULL), 0);
	r = gmem_convert(f, PG(conv), K4, GMEM_PRIVATE, 0, 0, &at);
	if (blocked) {
		CHECK_EQ(r, -EAGAIN);
		CHECK_EQ(at, PG(conv));
	} else {
		CHECK_EQ(r, 0);
		CHECK_EQ(at, ~0ULL);
	}
	/* the pinned page itself is always blocked */
	CHECK_EQ(gmem_convert(f, PG(pin), K4, GMEM_PRIVATE, 0, 0, &at),
		 -EAGAIN);
	CHECK_EQ(at, PG(pin));
	CHECK_EQ(gmem_unpin(pool, id), 0);
	if (!blocked)
		CHECK_EQ(gmem_convert(f, PG(conv), K4, GMEM_SHARED, 0, 0, NULL),
			 0);
	CHECK_INVARIANTS(pool);
	return true;
}

/* Drain sets with every block intact (b-lazy: nothing split yet). */
static bool check_drain_intact(uint64_t psize, enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	/* a and intact b-lazy: the whole huge folio; the others: the page */
	bool whole = pol == GMEM_POLICY_A || pol == GMEM_POLICY_B_LAZY;

	if (!setup(psize, 1, pol, psize, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	if (!pin_blocks(pool, f, mm, 3, 4, whole) ||
	    !pin_blocks(pool, f, mm, 3, 300, whole) ||
	    !pin_blocks(pool, f, mm, 511, 0, whole))
		return false;
	if (psize == GB1 &&
	    (!pin_blocks(pool, f, mm, BLK(7) + 3, 1, whole) ||
	     !pin_blocks(pool, f, mm, 0, BLK(511) + 511, whole)))
		return false;
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_drain_set_intact(void)
{
	for (unsigned int i = 0; i < 4; i++)
		if (!check_drain_intact(MB2, all_policies[i]) ||
		    !check_drain_intact(GB1, all_policies[i]))
			return false;
	return true;
}

/*
 * b-lazy once split (1G pool): a 4K-split 2M block drains per page; an
 * intact 2M piece drains whole; a pin in another piece does not matter.
 */
static bool test_drain_set_blazy_split_1g(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;

	if (!setup(GB1, 1, GMEM_POLICY_B_LAZY, GB1, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	CHECK_EQ(gmem_convert(f, PG(BLK(2) + 7), K4, GMEM_PRIVATE, 0, 0, NULL),
		 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_2m, 511);
	CHECK_EQ(s.folios_4k, 512);
	/* split 2M block 2: only the page itself */
	if (!pin_blocks(pool, f, mm, BLK(2) + 3, BLK(2) + 9, false))
		return false;
	/* intact 2M block 5: the whole 2M piece */
	if (!pin_blocks(pool, f, mm, BLK(5) + 1, BLK(5) + 100, true))
		return false;
	/* a pin in block 5 does not reach block 6 or the split block 2 */
	if (!pin_blocks(pool, f, mm, BLK(5) + 1, BLK(6), false) ||
	    !pin_blocks(pool, f, mm, BLK(5) + 1, BLK(2) + 20, false))
		return false;
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_2m, 511);		/* nothing else split */
	CHECK_EQ(s.folios_4k, 512);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_drain_set_blazy_split_2m(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;

	if (!setup(MB2, 2, GMEM_POLICY_B_LAZY, 2 * MB2, SHARED, &pool, &f,
		   &mm))
		return false;
	CHECK_EQ(gmem_guest_access(f, 0, 2 * MB2, 0), 0);
	CHECK_EQ(gmem_convert(f, PG(100), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	if (!pin_blocks(pool, f, mm, 3, 4, false) ||
	    !pin_blocks(pool, f, mm, 511, 0, false) ||
	    /* the second huge page is still intact */
	    !pin_blocks(pool, f, mm, 512 + 3, 512 + 4, true))
		return false;
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/*
 * b-lazy 1G: one 4K conversion splits 1G -> 511 2M + 512 4K (two
 * shatters); converting back merges 4K -> 2M -> 1G (two collapses).
 */
static bool test_blazy_split_merge_1g(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;

	if (!setup(GB1, 1, GMEM_POLICY_B_LAZY, GB1, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_host_write(mm, f, PG(5), 0x5a), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_1g, 1);
	CHECK_EQ(s.shatters, 0);
	CHECK_EQ(s.vmemmap_bytes, 4096);

	CHECK_EQ(gmem_convert(f, PG(1), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, 2);
	CHECK_EQ(s.folios_1g, 0);
	CHECK_EQ(s.folios_2m, 511);
	CHECK_EQ(s.folios_4k, 512);
	CHECK_EQ(s.vmemmap_bytes, 511 * 4096 + 512 * 64);
	CHECK_INVARIANTS(pool);

	/* a second 2M block mixed: one more shatter */
	CHECK_EQ(gmem_convert(f, PG(BLK(9) + 4), K4, GMEM_PRIVATE, 0, 0, NULL),
		 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, 3);
	CHECK_EQ(s.folios_2m, 510);
	CHECK_EQ(s.folios_4k, 1024);

	/* back: block 9 merges to 2M, the 1G page still has block 0 mixed */
	CHECK_EQ(gmem_convert(f, PG(BLK(9) + 4), K4, GMEM_SHARED, 0, 0, NULL),
		 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 1);
	CHECK_EQ(s.folios_2m, 511);
	CHECK_EQ(s.folios_4k, 512);
	CHECK_EQ(s.folios_1g, 0);

	CHECK_EQ(gmem_convert(f, PG(1), K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 3);
	CHECK_EQ(s.folios_1g, 1);
	CHECK_EQ(s.folios_2m, 0);
	CHECK_EQ(s.folios_4k, 0);
	CHECK_EQ(s.vmemmap_bytes, 4096);
	CHECK_INVARIANTS(pool);
	uint8_t v;

	CHECK_EQ(gmem_host_read(mm, f, PG(5), &v), 0);
	CHECK_EQ(v, 0x5a);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* The minimal round trip the brief names: shatters=2, then collapses=2. */
static bool test_blazy_one_convert_round_trip(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_stats s;

	if (!setup(GB1, 1, GMEM_POLICY_B_LAZY, GB1, 0, &pool, &f, NULL))
		return false;
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	CHECK_EQ(gmem_convert(f, PG(BLK(300) + 17), K4, GMEM_SHARED, 0, 0,
			      NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, 2);
	CHECK_EQ(s.folios_2m, 511);
	CHECK_EQ(s.folios_4k, 512);
	CHECK_EQ(gmem_convert(f, PG(BLK(300) + 17), K4, GMEM_PRIVATE, 0, 0,
			      NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 2);
	CHECK_EQ(s.folios_1g, 1);
	CHECK_EQ(s.folios_2m + s.folios_4k, 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/*
 * A range splits only as far as its ends need: over [2M - 4K, 4M + 4K) of
 * a 1G page, 2M block 1 is wholly inside and stays intact; blocks 0 and 2
 * go to 4K.  Across two huge pages, each end splits its own page.
 */
static bool test_blazy_split_only_ends(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_stats s;

	if (!setup(GB1, 2, GMEM_POLICY_B_LAZY, 2 * GB1, SHARED, &pool, &f,
		   NULL))
		return false;
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	CHECK_EQ(gmem_guest_access(f, GB1, 0, 0), 0);
	CHECK_EQ(gmem_convert(f, MB2 - K4, MB2 + 2 * K4, GMEM_PRIVATE, 0, 0,
			      NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, 3);
	CHECK_EQ(s.folios_1g, 1);
	CHECK_EQ(s.folios_2m, 510);
	CHECK_EQ(s.folios_4k, 1024);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_convert(f, MB2 - K4, MB2 + 2 * K4, GMEM_SHARED, 0, 0,
			      NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 3);
	CHECK_EQ(s.folios_1g, 2);

	/* the last page of one huge page and the first of the next */
	CHECK_EQ(gmem_convert(f, GB1 - K4, 2 * K4, GMEM_PRIVATE, 0, 0, NULL),
		 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, 3 + 4);
	CHECK_EQ(s.folios_1g, 0);
	CHECK_EQ(s.folios_2m, 2 * 511);
	CHECK_EQ(s.folios_4k, 2 * 512);
	CHECK_EQ(gmem_convert(f, GB1 - K4, 2 * K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 3 + 4);
	CHECK_EQ(s.folios_1g, 2);
	CHECK_EQ(s.folios_2m + s.folios_4k, 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* Allocating into an already mixed range splits as far as needed. */
static bool test_blazy_alloc_mixed(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_stats s;

	if (!setup(GB1, 1, GMEM_POLICY_B_LAZY, GB1, 0, &pool, &f, NULL))
		return false;
	CHECK_EQ(gmem_convert(f, PG(3), K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, 0);
	CHECK_EQ(s.folios_1g + s.folios_2m + s.folios_4k, 0);
	CHECK_EQ(gmem_guest_access(f, PG(BLK(100)), 0, 0), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, 2);
	CHECK_EQ(s.folios_2m, 511);
	CHECK_EQ(s.folios_4k, 512);
	CHECK_EQ(gmem_convert(f, PG(3), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 2);
	CHECK_EQ(s.folios_1g, 1);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* A host PTE in a uniform split block defers its merge until it is zapped. */
static bool check_merge_deferred_pte(uint64_t psize)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t full = psize == GB1 ? 2 : 1;	/* collapses for a full merge */

	if (!setup(psize, 1, GMEM_POLICY_B_LAZY, psize, SHARED, &pool, &f,
		   &mm))
		return false;
	CHECK_EQ(gmem_convert(f, PG(1), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(gmem_host_write(mm, f, PG(2), 0x22), 0);	/* allocates */
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_4k, 512);
	CHECK_EQ(gmem_convert(f, PG(1), K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 0);
	CHECK_EQ(s.folios_4k, 512);
	CHECK_EQ(s.host_ptes, 1);
	CHECK_INVARIANTS(pool);
	/* zap the PTE by converting its page; back to uniform: merge */
	CHECK_EQ(gmem_convert(f, PG(2), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 0);
	CHECK_EQ(gmem_convert(f, PG(2), K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, full);
	CHECK_EQ(s.folios_4k, 0);
	CHECK_EQ(psize == GB1 ? s.folios_1g : s.folios_2m, 1);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_merge_deferred_by_pte(void)
{
	return check_merge_deferred_pte(MB2) && check_merge_deferred_pte(GB1);
}

/*
 * A pin (with its PTE zapped by a failed conversion) defers the merge;
 * the merge happens at the unpin.
 */
static bool check_merge_at_unpin(uint64_t psize)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id, at;
	uint64_t full = psize == GB1 ? 2 : 1;

	if (!setup(psize, 1, GMEM_POLICY_B_LAZY, psize, SHARED, &pool, &f,
		   &mm))
		return false;
	CHECK_EQ(gmem_host_write(mm, f, 0, 0x11), 0);
	CHECK_EQ(gmem_convert(f, PG(1), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(gmem_pin(mm, f, PG(2), K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_convert(f, PG(2), K4, GMEM_PRIVATE, 0, 0, &at), -EAGAIN);
	CHECK_EQ(at, PG(2));
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 0);
	CHECK_EQ(s.pins, 1);
	CHECK_EQ(gmem_convert(f, PG(1), K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 0);
	CHECK_EQ(s.folios_4k, 512);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, full);
	CHECK_EQ(s.folios_4k, 0);
	CHECK_EQ(psize == GB1 ? s.folios_1g : s.folios_2m, 1);
	CHECK_EQ(s.vmemmap_bytes, 4096);
	CHECK_INVARIANTS(pool);
	uint8_t v;

	CHECK_EQ(gmem_host_read(mm, f, 0, &v), 0);
	CHECK_EQ(v, 0x11);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_merge_at_unpin(void)
{
	return check_merge_at_unpin(MB2) && check_merge_at_unpin(GB1);
}

/*
 * 1G: a pin in an intact 2M piece lets the split 2M block merge but holds
 * the 1G merge until its unpin.
 */
static bool test_merge_1g_waits_for_piece(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id, at;

	if (!setup(GB1, 1, GMEM_POLICY_B_LAZY, GB1, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_convert(f, PG(1), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(gmem_pin(mm, f, PG(BLK(3)), K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_convert(f, PG(BLK(3)), K4, GMEM_PRIVATE, 0, 0, &at),
		 -EAGAIN);
	CHECK_EQ(gmem_convert(f, PG(1), K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 1);
	CHECK_EQ(s.folios_2m, 512);
	CHECK_EQ(s.folios_1g, 0);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 2);
	CHECK_EQ(s.folios_1g, 1);
	CHECK_EQ(s.folios_2m, 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* b-eager: one shatter per huge page at allocation; never merges. */
static bool check_beager(uint64_t psize, uint64_t count)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t per = psize / K4;

	if (!setup(psize, count, GMEM_POLICY_B_EAGER, count * psize, SHARED,
		   &pool, &f, &mm))
		return false;
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, 0);
	for (uint64_t i = 0; i < count; i++)
		CHECK_EQ(gmem_fault(mm, f, i * psize + PG(7), 0), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, count);
	CHECK_EQ(s.folios_4k, count * per);
	CHECK_EQ(s.folios_2m + s.folios_1g, 0);
	CHECK_EQ(s.vmemmap_bytes, count * per * 64);
	/* converting never splits or merges */
	CHECK_EQ(gmem_convert(f, PG(3), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(gmem_convert(f, PG(3), K4, GMEM_SHARED, 0, 0, NULL), 0);
	CHECK_EQ(gmem_convert(f, 0, psize, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, count);
	CHECK_EQ(s.collapses, 0);
	CHECK_EQ(s.folios_4k, count * per);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_beager_never_merges(void)
{
	return check_beager(MB2, 2) && check_beager(GB1, 1);
}

/* a: never splits, whatever the conversions. */
static bool check_a_never_splits(uint64_t psize)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;

	if (!setup(psize, 1, GMEM_POLICY_A, psize, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_fault(mm, f, 0, 0), 0);
	for (uint64_t pg = 1; pg < 40; pg += 3)
		CHECK_EQ(gmem_convert(f, PG(pg * 7), K4, GMEM_PRIVATE, 0, 0,
				      NULL), 0);
	CHECK_EQ(gmem_convert(f, PG(BLK(1)), MB2, GMEM_PRIVATE, 0, 0, NULL),
		 psize == GB1 ? 0 : -EINVAL);
	STATS(pool, f, &s);
	CHECK_EQ(s.shatters, 0);
	CHECK_EQ(psize == GB1 ? s.folios_1g : s.folios_2m, 1);
	CHECK_EQ(s.folios_4k, 0);
	CHECK_EQ(s.vmemmap_bytes, 4096);
	CHECK_EQ(gmem_convert(f, 0, psize, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.collapses, 0);
	CHECK_EQ(s.shatters, 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_a_never_splits(void)
{
	return check_a_never_splits(MB2) && check_a_never_splits(GB1);
}

/* a: long-term pins are refused with EOPNOTSUPP; nothing changes. */
static bool check_a_longterm(uint64_t psize)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s0, s;
	uint64_t id = 77;

	if (!setup(psize, 2, GMEM_POLICY_A, psize, SHARED, &pool, &f, &mm))
		return false;
	STATS(pool, NULL, &s0);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, GMEM_PIN_LONGTERM, &id, NULL),
		 -EOPNOTSUPP);
	CHECK_EQ(gmem_pin(mm, f, K4, 4 * K4,
			  GMEM_PIN_LONGTERM | GMEM_PIN_EXCLUSIVE, &id, NULL),
		 -EOPNOTSUPP);
	CHECK_EQ(id, 77);
	STATS(pool, NULL, &s);
	CHECK_EQ(s.eopnotsupp, s0.eopnotsupp + 2);
	s.eopnotsupp = s0.eopnotsupp;
	CHECK(memcmp(&s, &s0, sizeof(s)) == 0);	/* nothing allocated */
	/* short-term pins are fine, and so are long-term ones elsewhere */
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_a_longterm_eopnotsupp(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t id;

	if (!check_a_longterm(MB2) || !check_a_longterm(GB1))
		return false;
	/* every other policy takes long-term pins */
	for (unsigned int i = 0; i < 4; i++) {
		if (all_policies[i] == GMEM_POLICY_A)
			continue;
		if (!setup(MB2, 1, all_policies[i], MB2, SHARED, &pool, &f,
			   &mm))
			return false;
		CHECK_EQ(gmem_pin(mm, f, 0, K4, GMEM_PIN_LONGTERM, &id, NULL),
			 0);
		CHECK_EQ(gmem_unpin(pool, id), 0);
		CHECK_EQ(gmem_file_close(f), 0);
		CHECK_INVARIANTS(pool);
		CHECK_BASELINE(pool);
		gmem_pool_destroy(pool);
	}
	return true;
}

/*
 * meta_bytes: an intact 1G b-lazy page costs the same however much of it
 * is touched (O(1)), and far less than b-eager's for the same file.
 */
static bool test_meta_bytes(void)
{
	struct gmem_pool *pool;
	struct gmem_file *lazy, *eager;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t m_lazy, m_lazy_split, m_eager;

	CHECK_EQ(testpool_create(GB1, 3, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_file_create(pool, GB1, GMEM_POLICY_B_LAZY, SHARED,
				  &lazy), 0);
	CHECK_EQ(gmem_file_create(pool, GB1, GMEM_POLICY_B_EAGER, SHARED,
				  &eager), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
	CHECK_EQ(gmem_mmap(mm, lazy), 0);
	STATS(pool, lazy, &s);
	CHECK_EQ(s.meta_bytes, 0);			/* nothing allocated */
	CHECK_EQ(gmem_guest_access(lazy, 0, 0, 0), 0);
	STATS(pool, lazy, &s);
	m_lazy = s.meta_bytes;
	CHECK(m_lazy > 0);
	CHECK(m_lazy < 4096);
	for (uint64_t pg = 0; pg < 1000; pg += 7)
		CHECK_EQ(gmem_fault(mm, lazy, PG(pg * 37), 0), 0);
	CHECK_EQ(gmem_guest_access(lazy, 0, GB1, 0), 0);
	STATS(pool, lazy, &s);
	CHECK_EQ(s.meta_bytes, m_lazy);

	CHECK_EQ(gmem_guest_access(eager, 0, 0, 0), 0);
	CHECK_EQ(gmem_convert(eager, PG(1), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, eager, &s);
	m_eager = s.meta_bytes;
	CHECK(m_eager >= 262144ULL * 16);	/* a descriptor per 4K page */
	CHECK(m_eager > 1000 * m_lazy);

	/* after one conversion b-lazy pays for one 2M block's worth */
	CHECK_EQ(gmem_convert(lazy, PG(1), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, lazy, &s);
	m_lazy_split = s.meta_bytes;
	CHECK(m_lazy_split > m_lazy);
	CHECK(m_lazy_split * 100 < m_eager);
	/* and gets it back when it merges */
	CHECK_EQ(gmem_convert(lazy, PG(1), K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, lazy, &s);
	CHECK_EQ(s.folios_1g, 1);
	CHECK_EQ(s.meta_bytes, m_lazy);

	/* pool-wide: the sum of the files */
	STATS(pool, NULL, &s);
	CHECK_EQ(s.meta_bytes, m_lazy + m_eager);
	CHECK_EQ(gmem_file_close(lazy), 0);
	CHECK_EQ(gmem_file_close(eager), 0);
	STATS(pool, NULL, &s);
	CHECK_EQ(s.meta_bytes, 0);
	FINISH(pool);
}

/*
 * vmemmap_bytes: 4096 per intact huge folio, 64 per 4K folio; pool-wide
 * adds 4096 per free huge page.
 */
static bool test_vmemmap_bytes(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f4k, *fa, *fe, *fl;
	struct gmem_mm *mm;
	struct gmem_stats s;

	CHECK_EQ(testpool_create(MB2, 6, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
	CHECK_EQ(gmem_file_create(pool, 2 * MB2, GMEM_POLICY_4K, SHARED,
				  &f4k), 0);
	CHECK_EQ(gmem_file_create(pool, 2 * MB2, GMEM_POLICY_A, SHARED, &fa),
		 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_EAGER, SHARED, &fe),
		 0);
	CHECK_EQ(gmem_file_create(pool, 2 * MB2, GMEM_POLICY_B_LAZY, SHARED,
				  &fl), 0);
	STATS(pool, NULL, &s);
	CHECK_EQ(s.vmemmap_bytes, 6 * 4096);		/* all free */

	CHECK_EQ(gmem_guest_access(f4k, 0, 10 * K4, 0), 0);
	STATS(pool, f4k, &s);
	CHECK_EQ(s.vmemmap_bytes, 10 * 64);
	CHECK_EQ(gmem_guest_access(fa, 0, 2 * MB2, 0), 0);
	STATS(pool, fa, &s);
	CHECK_EQ(s.vmemmap_bytes, 2 * 4096);
	CHECK_EQ(gmem_guest_access(fe, 0, 0, 0), 0);
	STATS(pool, fe, &s);
	CHECK_EQ(s.vmemmap_bytes, 512 * 64);
	CHECK_EQ(gmem_guest_access(fl, 0, 2 * MB2, 0), 0);
	CHECK_EQ(gmem_convert(fl, MB2, K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, fl, &s);
	CHECK_EQ(s.vmemmap_bytes, 4096 + 512 * 64);

	/* pool: the files plus one free page (6 - 2 - 1 - 2) */
	STATS(pool, NULL, &s);
	CHECK_EQ(s.pool_free, 1);
	CHECK_EQ(s.vmemmap_bytes,
		 10 * 64 + 2 * 4096 + 512 * 64 + 4096 + 512 * 64 + 4096);
	CHECK_EQ(gmem_file_close(f4k), 0);
	CHECK_EQ(gmem_file_close(fa), 0);
	CHECK_EQ(gmem_file_close(fe), 0);
	CHECK_EQ(gmem_file_close(fl), 0);
	STATS(pool, NULL, &s);
	CHECK_EQ(s.vmemmap_bytes, 6 * 4096);
	FINISH(pool);
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_drain_set_intact),
		TEST(test_drain_set_blazy_split_1g),
		TEST(test_drain_set_blazy_split_2m),
		TEST(test_blazy_split_merge_1g),
		TEST(test_blazy_one_convert_round_trip),
		TEST(test_blazy_split_only_ends),
		TEST(test_blazy_alloc_mixed),
		TEST(test_merge_deferred_by_pte),
		TEST(test_merge_at_unpin),
		TEST(test_merge_1g_waits_for_piece),
		TEST(test_beager_never_merges),
		TEST(test_a_never_splits),
		TEST(test_a_longterm_eopnotsupp),
		TEST(test_meta_bytes),
		TEST(test_vmemmap_bytes),
	};

	return RUN_TESTS(tests);
}
