// SPDX-License-Identifier: MIT
/*
 * test_convert.c - the conversion protocol (DESIGN.md "Conversion
 * protocol", TRACE.md "Conversion"): all or nothing; EAGAIN for a
 * short-term pin, EBUSY for a long-term one, with error_offset the first
 * page of the range inside the first offending folio; host PTEs of the
 * drain set zapped even on failure; content preserved unless
 * GMEM_CONVERT_ZERO, which zeroes exactly the pages that change; a no-op
 * conversion changes nothing; private->shared needs no reference check;
 * guest entries over the range go; the IOMMU map re-levels.
 */
#include "harness.h"

#define PG_(n) ((uint64_t)(n) * K4)

static const enum gmem_policy all_policies[] = {
	GMEM_POLICY_4K, GMEM_POLICY_A, GMEM_POLICY_B_EAGER, GMEM_POLICY_B_LAZY,
};

/* Shared pages read back through @mm; private ones through the guest. */
static int byte_at(struct gmem_mm *mm, struct gmem_file *f, uint64_t off,
		   bool shared)
{
	uint8_t v = 0;
	int r = shared ? gmem_host_read(mm, f, off, &v) :
			 gmem_guest_read(f, off, &v);

	return r ? -1000 - r : v;
}

/* EAGAIN on a short-term pin; nothing changes but the zapped PTEs. */
static bool test_eagain_all_or_nothing(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s0, s;
	uint64_t id, at = 0;
	uint8_t v;

	if (!setup(MB2, 1, GMEM_POLICY_4K, MB2, SHARED, &pool, &f, &mm))
		return false;
	for (uint64_t pg = 0; pg < 4; pg++)
		CHECK_EQ(gmem_host_write(mm, f, pg * K4 + 9, 0xa0 + pg), 0);
	CHECK_EQ(gmem_pin(mm, f, 2 * K4, K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_guest_access(f, 0, 4 * K4, 0), 0);
	STATS(pool, f, &s0);
	CHECK_EQ(s0.host_ptes, 4);
	CHECK_EQ(s0.guest_4k, 4 * K4);

	CHECK_EQ(gmem_convert(f, 0, 4 * K4, GMEM_PRIVATE, 0, 0, &at), -EAGAIN);
	CHECK_EQ(at, 2 * K4);
	STATS(pool, f, &s);
	CHECK_EQ(s.eagain, s0.eagain + 1);
	CHECK_EQ(s.conversions, s0.conversions);
	CHECK_EQ(s.host_ptes, 0);		/* zapped even on failure */
	CHECK_EQ(s.zaps, s0.zaps + 4);
	CHECK_EQ(s.pins, 1);
	CHECK_EQ(s.guest_4k, 4 * K4);		/* guest entries untouched */
	CHECK_INVARIANTS(pool);
	/* still shared, content intact; refaults restore the PTEs */
	for (uint64_t pg = 0; pg < 4; pg++) {
		CHECK_EQ(gmem_host_read(mm, f, pg * K4 + 9, &v), 0);
		CHECK_EQ(v, 0xa0 + pg);
	}
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 4);

	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(gmem_convert(f, 0, 4 * K4, GMEM_PRIVATE, 0, 0, &at), 0);
	CHECK_EQ(gmem_host_read(mm, f, 0, &v), GMEM_SIGBUS);
	for (uint64_t pg = 0; pg < 4; pg++)
		CHECK_EQ(byte_at(mm, f, pg * K4 + 9, false), 0xa0 + pg);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* EBUSY on a long-term pin, even when a short-term pin comes first. */
static bool check_ebusy(enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s0, s;
	uint64_t id1, id2, at = 0;

	if (!setup(MB2, 1, pol, MB2, SHARED, &pool, &f, &mm))
		return false;
	for (uint64_t pg = 0; pg < 8; pg++)
		CHECK_EQ(gmem_host_write(mm, f, pg * K4, 0x10 + pg), 0);
	CHECK_EQ(gmem_pin(mm, f, 1 * K4, K4, 0, &id1, NULL), 0);
	CHECK_EQ(gmem_pin(mm, f, 3 * K4, K4, GMEM_PIN_LONGTERM, &id2, NULL), 0);
	STATS(pool, f, &s0);
	CHECK_EQ(gmem_convert(f, 0, 8 * K4, GMEM_PRIVATE, 0, 1000, &at),
		 -EBUSY);
	CHECK_EQ(at, 3 * K4);
	STATS(pool, f, &s);
	CHECK_EQ(s.ebusy, s0.ebusy + 1);
	CHECK_EQ(s.eagain, s0.eagain);
	CHECK_EQ(s.host_ptes, 0);
	CHECK_EQ(s.conversions, s0.conversions);
	for (uint64_t pg = 0; pg < 8; pg++)
		CHECK_EQ(byte_at(mm, f, pg * K4, true), 0x10 + pg);

	/* The long-term pin alone, off the range start: EBUSY at its page. */
	CHECK_EQ(gmem_unpin(pool, id1), 0);
	CHECK_EQ(gmem_convert(f, 2 * K4, 4 * K4, GMEM_PRIVATE, 0, 0, &at),
		 -EBUSY);
	CHECK_EQ(at, 3 * K4);
	/* Outside the pinned page the 4K drain sets are free. */
	CHECK_EQ(gmem_convert(f, 4 * K4, 4 * K4, GMEM_PRIVATE, 0, 0, &at), 0);
	CHECK_EQ(gmem_unpin(pool, id2), 0);
	CHECK_EQ(gmem_convert(f, 0, 8 * K4, GMEM_PRIVATE, 0, 0, &at), 0);
	for (uint64_t pg = 0; pg < 8; pg++)
		CHECK_EQ(byte_at(mm, f, pg * K4, false), 0x10 + pg);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/*
 * EBUSY in an intact b-lazy folio: the long-term pin anywhere in it fails
 * the call at once (no waiting), at the first page of the range in it.
 */
static bool check_ebusy_huge(uint64_t psize)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id, at = 0;

	if (!setup(psize, 1, GMEM_POLICY_B_LAZY, psize, SHARED, &pool, &f,
		   &mm))
		return false;
	CHECK_EQ(gmem_pin(mm, f, PG_(5), K4, GMEM_PIN_LONGTERM, &id, NULL), 0);
	CHECK_EQ(gmem_convert(f, PG_(9), PG_(2), GMEM_PRIVATE, 0, 5000, &at),
		 -EBUSY);
	CHECK_EQ(at, PG_(9));
	CHECK_EQ(gmem_convert(f, 0, PG_(8), GMEM_PRIVATE, 0, -1, &at), -EBUSY);
	CHECK_EQ(at, 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.ebusy, 2);
	CHECK_EQ(s.pin_wait_ns, 0);		/* no wait for a long-term pin */
	CHECK_EQ(s.shatters, 0);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(gmem_convert(f, PG_(9), PG_(2), GMEM_PRIVATE, 0, 0, &at), 0);
	/* split now: a long-term pin holds only its own page */
	CHECK_EQ(gmem_pin(mm, f, PG_(5), K4, GMEM_PIN_LONGTERM, &id, NULL), 0);
	CHECK_EQ(gmem_convert(f, PG_(6), K4, GMEM_PRIVATE, 0, 0, &at), 0);
	CHECK_EQ(gmem_convert(f, PG_(4), PG_(2), GMEM_PRIVATE, 0, 0, &at),
		 -EBUSY);
	CHECK_EQ(at, PG_(5));
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_ebusy_longterm(void)
{
	return check_ebusy(GMEM_POLICY_4K) &&
	       check_ebusy(GMEM_POLICY_B_EAGER) &&
	       check_ebusy_huge(MB2) && check_ebusy_huge(GB1);
}

/*
 * Intact huge folios: the drain set is the whole folio, and error_offset
 * is the first page of the range inside the first offending folio.
 */
static bool check_error_offset_huge(uint64_t psize, enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id, at = 0;

	if (!setup(psize, 2, pol, 2 * psize, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_host_write(mm, f, 0, 1), 0);
	CHECK_EQ(gmem_pin(mm, f, psize + 5 * K4, K4, 0, &id, NULL), 0);

	/* inside the pinned folio, pages after the pin */
	CHECK_EQ(gmem_convert(f, psize + 16 * K4, 16 * K4, GMEM_PRIVATE, 0, 0,
			      &at), -EAGAIN);
	CHECK_EQ(at, psize + 16 * K4);
	/* inside, pages before the pin */
	CHECK_EQ(gmem_convert(f, psize + K4, K4, GMEM_PRIVATE, 0, 0, &at),
		 -EAGAIN);
	CHECK_EQ(at, psize + K4);
	/* from the first folio (free) into the pinned one */
	at = 0;
	CHECK_EQ(gmem_convert(f, psize - 4 * K4, 8 * K4, GMEM_PRIVATE, 0, 0,
			      &at), -EAGAIN);
	CHECK_EQ(at, psize);
	/* nothing flipped: the first folio's pages are still shared */
	CHECK_EQ(byte_at(mm, f, 0, true), 1);
	CHECK_EQ(byte_at(mm, f, psize - 4 * K4, true), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.eagain, 3);
	CHECK_EQ(s.conversions, 0);
	CHECK_EQ(s.shatters, 0);
	CHECK_EQ(psize == GB1 ? s.folios_1g : s.folios_2m, 2);
	/* the first folio alone converts */
	CHECK_EQ(gmem_convert(f, psize - 4 * K4, 4 * K4, GMEM_PRIVATE, 0, 0,
			      &at), 0);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(gmem_convert(f, psize - 4 * K4, 8 * K4, GMEM_PRIVATE, 0, 0,
			      &at), 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_error_offset_huge(void)
{
	return check_error_offset_huge(MB2, GMEM_POLICY_A) &&
	       check_error_offset_huge(MB2, GMEM_POLICY_B_LAZY) &&
	       check_error_offset_huge(GB1, GMEM_POLICY_A) &&
	       check_error_offset_huge(GB1, GMEM_POLICY_B_LAZY);
}

/* error_offset among 4K folios: the first pinned page of the range. */
static bool test_error_offset_small(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t id1, id2, at = 0;

	if (!setup(MB2, 1, GMEM_POLICY_B_EAGER, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_pin(mm, f, 9 * K4, K4, 0, &id1, NULL), 0);
	CHECK_EQ(gmem_pin(mm, f, 6 * K4, 2 * K4, 0, &id2, NULL), 0);
	CHECK_EQ(gmem_convert(f, 0, 16 * K4, GMEM_PRIVATE, 0, 0, &at),
		 -EAGAIN);
	CHECK_EQ(at, 6 * K4);
	CHECK_EQ(gmem_convert(f, 7 * K4, 16 * K4, GMEM_PRIVATE, 0, 0, &at),
		 -EAGAIN);
	CHECK_EQ(at, 7 * K4);
	CHECK_EQ(gmem_unpin(pool, id2), 0);
	CHECK_EQ(gmem_convert(f, 0, 16 * K4, GMEM_PRIVATE, 0, 0, &at),
		 -EAGAIN);
	CHECK_EQ(at, 9 * K4);
	CHECK_EQ(gmem_unpin(pool, id1), 0);
	CHECK_EQ(gmem_convert(f, 0, 16 * K4, GMEM_PRIVATE, 0, 0, &at), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* Content survives shared -> private -> shared under every policy. */
static bool check_content_preserved(uint64_t psize, enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	const uint64_t offs[] = { 0, K4 + 17, 100 * K4 + 4095, psize - 1 };
	const unsigned int n = sizeof(offs) / sizeof(offs[0]);

	if (!setup(psize, 1, pol, psize, SHARED, &pool, &f, &mm))
		return false;
	for (unsigned int i = 0; i < n; i++)
		CHECK_EQ(gmem_host_write(mm, f, offs[i], 0x31 + i), 0);
	/* a few pages, then the rest */
	CHECK_EQ(gmem_convert(f, K4, 100 * K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(gmem_convert(f, 0, psize, GMEM_PRIVATE, 0, 0, NULL), 0);
	for (unsigned int i = 0; i < n; i++)
		CHECK_EQ(byte_at(mm, f, offs[i], false), 0x31 + i);
	CHECK_EQ(gmem_guest_write(f, 2 * K4, 0x77), 0);
	CHECK_EQ(gmem_convert(f, 0, 4 * K4, GMEM_SHARED, 0, 0, NULL), 0);
	CHECK_EQ(gmem_convert(f, 0, psize, GMEM_SHARED, 0, 0, NULL), 0);
	for (unsigned int i = 0; i < n; i++)
		CHECK_EQ(byte_at(mm, f, offs[i], true), 0x31 + i);
	CHECK_EQ(byte_at(mm, f, 2 * K4, true), 0x77);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_content_preserved(void)
{
	for (unsigned int i = 0; i < 4; i++)
		if (!check_content_preserved(MB2, all_policies[i]))
			return false;
	return check_content_preserved(GB1, GMEM_POLICY_A) &&
	       check_content_preserved(GB1, GMEM_POLICY_B_LAZY);
}

/* GMEM_CONVERT_ZERO zeroes exactly the pages whose attribute changes. */
static bool check_convert_zero(enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	/* pages 2, 3 and 9 private, the rest shared */
	const bool priv[12] = { [2] = true, [3] = true, [9] = true };

	if (!setup(MB2, 1, pol, MB2, SHARED, &pool, &f, &mm))
		return false;
	for (uint64_t pg = 0; pg < 12; pg++)
		CHECK_EQ(gmem_host_write(mm, f, pg * K4 + 5, 0x40 + pg), 0);
	CHECK_EQ(gmem_convert(f, 2 * K4, 2 * K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(gmem_convert(f, 9 * K4, K4, GMEM_PRIVATE, 0, 0, NULL), 0);

	/* [1, 11) to private with zero: 1, 4..8, 10 change; 2, 3, 9 stay. */
	CHECK_EQ(gmem_convert(f, K4, 10 * K4, GMEM_PRIVATE, GMEM_CONVERT_ZERO,
			      0, NULL), 0);
	for (uint64_t pg = 0; pg < 12; pg++) {
		bool inside = pg >= 1 && pg < 11;
		int want = inside && !priv[pg] ? 0 : 0x40 + (int)pg;

		CHECK_EQ(byte_at(mm, f, pg * K4 + 5, !inside), want);
	}
	/* refill, then make [0, 6) shared with zero: 1..5 change. */
	for (uint64_t pg = 1; pg < 11; pg++)
		CHECK_EQ(gmem_guest_write(f, pg * K4 + 5, 0x60 + pg), 0);
	CHECK_EQ(gmem_convert(f, 0, 6 * K4, GMEM_SHARED, GMEM_CONVERT_ZERO, 0,
			      NULL), 0);
	CHECK_EQ(byte_at(mm, f, 5, true), 0x40);
	for (uint64_t pg = 1; pg < 6; pg++)
		CHECK_EQ(byte_at(mm, f, pg * K4 + 5, true), 0);
	for (uint64_t pg = 6; pg < 11; pg++)
		CHECK_EQ(byte_at(mm, f, pg * K4 + 5, false), 0x60 + (int)pg);
	CHECK_EQ(byte_at(mm, f, 11 * K4 + 5, true), 0x4b);
	/* a no-op conversion with zero zeroes nothing */
	CHECK_EQ(gmem_convert(f, 0, 6 * K4, GMEM_SHARED, GMEM_CONVERT_ZERO, 0,
			      NULL), 0);
	CHECK_EQ(byte_at(mm, f, 5, true), 0x40);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_convert_zero_exact(void)
{
	for (unsigned int i = 0; i < 4; i++)
		if (!check_convert_zero(all_policies[i]))
			return false;
	return true;
}

/*
 * Converting to the attribute already held succeeds and changes nothing:
 * no zap, no wait, no guest entry lost, no split, pins ignored.
 */
static bool check_same_attr(uint64_t psize, enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s0, s;
	uint64_t id, at = 0x1234;

	if (!setup(psize, 1, pol, psize, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_convert(f, 8 * K4, K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(gmem_host_write(mm, f, 0, 0x99), 0);
	CHECK_EQ(gmem_pin(mm, f, K4, K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	CHECK_EQ(gmem_guest_access(f, 8 * K4, 0, 0), 0);
	STATS(pool, f, &s0);

	/* shared to shared, over the pin and the PTEs */
	CHECK_EQ(gmem_convert(f, 0, 8 * K4, GMEM_SHARED, 0, 0, &at), 0);
	/* private to private, next to the pin (same huge folio under a) */
	CHECK_EQ(gmem_convert(f, 8 * K4, K4, GMEM_PRIVATE, 0, 0, &at), 0);
	CHECK_EQ(at, 0x1234);
	STATS(pool, f, &s);
	CHECK_EQ(s.conversions, s0.conversions + 2);
	s.conversions = s0.conversions;
	CHECK(memcmp(&s, &s0, sizeof(s)) == 0);
	CHECK_EQ(byte_at(mm, f, 0, true), 0x99);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_same_attr_noop(void)
{
	for (unsigned int i = 0; i < 4; i++)
		if (!check_same_attr(MB2, all_policies[i]))
			return false;
	return check_same_attr(GB1, GMEM_POLICY_B_LAZY);
}

/*
 * Private -> shared needs no reference check: it succeeds while other
 * shared pages of the same intact huge folio are pinned (policy a), even
 * long-term elsewhere, and leaves their PTEs and pins alone.
 */
static bool check_to_shared_no_refcheck(uint64_t psize)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s0, s;
	uint64_t id, at = 0;

	if (!setup(psize, 1, GMEM_POLICY_A, psize, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_convert(f, 10 * K4, 2 * K4, GMEM_PRIVATE, 0, 0, NULL),
		 0);
	CHECK_EQ(gmem_guest_write(f, 10 * K4, 0xee), 0);
	CHECK_EQ(gmem_host_write(mm, f, 3 * K4, 0x33), 0);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), 0);
	/* the other way is blocked by the pin (whole-folio drain set) */
	CHECK_EQ(gmem_convert(f, 20 * K4, K4, GMEM_PRIVATE, 0, 0, &at),
		 -EAGAIN);
	CHECK_EQ(at, 20 * K4);
	CHECK_EQ(gmem_fault(mm, f, 0, 0), 0);
	CHECK_EQ(gmem_fault(mm, f, 3 * K4, 0), 0);
	STATS(pool, f, &s0);
	CHECK_EQ(s0.host_ptes, 2);

	CHECK_EQ(gmem_convert(f, 10 * K4, 2 * K4, GMEM_SHARED, 0, 0, &at), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 2);		/* nothing zapped */
	CHECK_EQ(s.zaps, s0.zaps);
	CHECK_EQ(s.pins, 1);
	CHECK_EQ(s.conversions, s0.conversions + 1);
	CHECK_EQ(byte_at(mm, f, 10 * K4, true), 0xee);
	CHECK_EQ(byte_at(mm, f, 3 * K4, true), 0x33);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_to_shared_no_refcheck(void)
{
	return check_to_shared_no_refcheck(MB2) &&
	       check_to_shared_no_refcheck(GB1);
}

/* Guest entries overlapping the range go, others stay (policy a). */
static bool test_guest_entries_go(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id, at;

	if (!setup(MB2, 2, GMEM_POLICY_A, 2 * MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	CHECK_EQ(gmem_guest_access(f, MB2, 0, 0), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.guest_2m, 2 * MB2);
	CHECK_EQ(s.guest_4k, 0);

	CHECK_EQ(gmem_convert(f, 5 * K4, K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.guest_2m, MB2);		/* the second huge page's */
	CHECK_EQ(s.guest_4k, 0);
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	CHECK_EQ(gmem_guest_access(f, 5 * K4, 0, 0), 0);
	CHECK_EQ(gmem_guest_access(f, 7 * K4, 0, 0), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.guest_4k, 3 * K4);

	/* a conversion elsewhere leaves these entries */
	CHECK_EQ(gmem_convert(f, 100 * K4, K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.guest_4k, 3 * K4);
	CHECK_EQ(s.guest_2m, MB2);
	/* only the entry over page 5 goes */
	CHECK_EQ(gmem_convert(f, 5 * K4, K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.guest_4k, 2 * K4);
	/* a failing conversion leaves guest entries alone */
	CHECK_EQ(gmem_pin(mm, f, MB2, K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_convert(f, MB2 + K4, K4, GMEM_PRIVATE, 0, 0, &at),
		 -EAGAIN);
	STATS(pool, f, &s);
	CHECK_EQ(s.guest_2m, MB2);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	/* a range over both huge pages takes the 2M entry too */
	CHECK_EQ(gmem_convert(f, MB2 - K4, 2 * K4, GMEM_PRIVATE, 0, 0, NULL),
		 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.guest_2m, 0);
	CHECK_EQ(s.guest_4k, 2 * K4);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* IOMMU entries re-level on every conversion (b-lazy, 1G pool). */
static bool test_iommu_relevel_1g(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t at = 0;

	if (!setup(GB1, 1, GMEM_POLICY_B_LAZY, GB1, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_iommu_map(f, 0, GB1, &at), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.iommu_1g, GB1);
	CHECK_EQ(s.iommu_2m + s.iommu_4k, 0);

	CHECK_EQ(gmem_convert(f, K4, K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.iommu_1g, 0);
	CHECK_EQ(s.iommu_2m, 511 * MB2);
	CHECK_EQ(s.iommu_4k, 511 * K4);
	CHECK_INVARIANTS(pool);

	/* a whole 2M block private: its entry goes, nothing else moves */
	CHECK_EQ(gmem_convert(f, MB2, MB2, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.iommu_2m, 510 * MB2);
	CHECK_EQ(s.iommu_4k, 511 * K4);

	CHECK_EQ(gmem_convert(f, 0, 2 * MB2, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.iommu_1g, GB1);
	CHECK_EQ(s.iommu_2m + s.iommu_4k, 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/*
 * IOMMU on a 2M pool under policy a: the IOMMU takes no references, so it
 * never blocks a conversion; its entries follow the attributes.
 */
static bool test_iommu_relevel_2m(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_stats s;
	uint64_t at = 0;

	if (!setup(MB2, 2, GMEM_POLICY_A, 2 * MB2, SHARED, &pool, &f, NULL))
		return false;
	CHECK_EQ(gmem_iommu_map(f, 0, 2 * MB2, &at), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.iommu_2m, 2 * MB2);
	CHECK_EQ(s.iommu_4k, 0);
	CHECK_EQ(gmem_convert(f, MB2 + 3 * K4, 2 * K4, GMEM_PRIVATE, 0, 0,
			      NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.iommu_2m, MB2);
	CHECK_EQ(s.iommu_4k, 510 * K4);
	CHECK_EQ(gmem_convert(f, MB2 + 3 * K4, K4, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.iommu_4k, 511 * K4);
	CHECK_EQ(gmem_convert(f, MB2, MB2, GMEM_SHARED, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.iommu_2m, 2 * MB2);
	CHECK_EQ(s.iommu_4k, 0);
	CHECK_EQ(gmem_convert(f, 0, 2 * MB2, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.iommu_2m + s.iommu_4k + s.iommu_1g, 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* A failing conversion leaves the IOMMU map and the folios as they were. */
static bool test_failure_keeps_maps(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s0, s;
	uint64_t id, at = 0;

	if (!setup(GB1, 1, GMEM_POLICY_B_LAZY, GB1, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_iommu_map(f, 0, 4 * MB2, &at), 0);
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	CHECK_EQ(gmem_pin(mm, f, 300 * MB2, K4, 0, &id, NULL), 0);
	STATS(pool, f, &s0);
	CHECK_EQ(s0.iommu_2m, 4 * MB2);
	CHECK_EQ(s0.guest_1g, GB1);
	CHECK_EQ(gmem_convert(f, K4, K4, GMEM_PRIVATE, GMEM_CONVERT_ZERO, 0,
			      &at), -EAGAIN);
	CHECK_EQ(at, K4);
	STATS(pool, f, &s);
	/* only the PTEs and the failure counters may differ */
	CHECK_EQ(s.host_ptes, 0);
	CHECK_EQ(s.eagain, s0.eagain + 1);
	s.host_ptes = s0.host_ptes;
	s.eagain = s0.eagain;
	s.zaps = s0.zaps;
	CHECK_EQ(s.tlb_flushes, s0.tlb_flushes + 1);	/* the zap's */
	s.tlb_flushes = s0.tlb_flushes;
	CHECK(memcmp(&s, &s0, sizeof(s)) == 0);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* Converting a hole allocates nothing; the attribute still flips. */
static bool test_convert_hole(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s0, s;
	uint8_t v;

	for (unsigned int i = 0; i < 4; i++) {
		if (!setup(MB2, 2, all_policies[i], 2 * MB2, 0, &pool, &f, &mm))
			return false;
		STATS(pool, NULL, &s0);
		CHECK_EQ(gmem_convert(f, MB2, 8 * K4, GMEM_SHARED, 0, 0, NULL),
			 0);
		CHECK_EQ(gmem_convert(f, MB2, 4 * K4, GMEM_PRIVATE, 0, 0, NULL),
			 0);
		STATS(pool, NULL, &s);
		CHECK_EQ(s.pool_free, s0.pool_free);
		CHECK_EQ(s.pool_resv, s0.pool_resv);
		CHECK_EQ(s.folios_1g + s.folios_2m + s.folios_4k, 0);
		CHECK_EQ(gmem_host_read(mm, f, MB2, &v), GMEM_SIGBUS);
		CHECK_EQ(gmem_host_read(mm, f, MB2 + 4 * K4, &v), 0);
		CHECK_EQ(v, 0);
		CHECK_EQ(gmem_file_close(f), 0);
		CHECK_INVARIANTS(pool);
		CHECK_BASELINE(pool);
		gmem_pool_destroy(pool);
	}
	return true;
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_eagain_all_or_nothing),
		TEST(test_ebusy_longterm),
		TEST(test_error_offset_huge),
		TEST(test_error_offset_small),
		TEST(test_content_preserved),
		TEST(test_convert_zero_exact),
		TEST(test_same_attr_noop),
		TEST(test_to_shared_no_refcheck),
		TEST(test_guest_entries_go),
		TEST(test_iommu_relevel_1g),
		TEST(test_iommu_relevel_2m),
		TEST(test_failure_keeps_maps),
		TEST(test_convert_hole),
	};

	return RUN_TESTS(tests);
}
