// SPDX-License-Identifier: MIT
/*
 * test_refcount.c - folio reference counting as DESIGN.md "Reference
 * counting" has it: the file holds one reference per folio; each host PTE
 * one reference and one mapcount; a pin GUP_PIN_COUNTING_BIAS on a 4K
 * folio, one reference and one pincount per page on a large one; unpin
 * restores exactly; a lookup's reference is transient.
 *
 * Folios are inspected through internal.h (single-threaded: no file lock).
 */
#include "harness.h"
#include "internal.h"

static struct gfolio *folio_at(struct gmem_file *file, uint64_t off)
{
	return folio_lookup(to_file(file), off >> PAGE_SHIFT);
}

static int ref_at(struct gmem_file *file, uint64_t off)
{
	struct gfolio *fo = folio_at(file, off);

	return fo ? folio_ref_count(fo) : -1;
}

static int map_at(struct gmem_file *file, uint64_t off)
{
	struct gfolio *fo = folio_at(file, off);

	return fo ? folio_mapcount(fo) : -1;
}

static int pinc_at(struct gmem_file *file, uint64_t off)
{
	struct gfolio *fo = folio_at(file, off);

	return fo ? atomic_load(&fo->pincount) : -1;
}

static int order_at(struct gmem_file *file, uint64_t off)
{
	struct gfolio *fo = folio_at(file, off);

	return fo ? fo->order : -1;
}

/* The file holds one reference on each folio it owns; nothing else yet. */
static bool check_file_ref(uint64_t psize, enum gmem_policy pol,
			   int want_order)
{
	struct gmem_pool *pool;
	struct gmem_file *f;

	if (!setup(psize, 2, pol, 2 * psize, SHARED, &pool, &f, NULL))
		return false;
	CHECK(folio_at(f, 0) == NULL);		/* lazy: a hole */
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	CHECK(folio_at(f, 0) != NULL);
	CHECK_EQ(order_at(f, 0), want_order);
	CHECK_EQ(ref_at(f, 0), 1);
	CHECK_EQ(map_at(f, 0), 0);
	CHECK_EQ(pinc_at(f, 0), 0);
	if (want_order)
		CHECK(folio_at(f, K4) == folio_at(f, 0));
	else if (pol == GMEM_POLICY_4K)
		CHECK(folio_at(f, K4) == NULL);
	else
		CHECK_EQ(ref_at(f, K4), 1);	/* b-eager: its own 4K folio */
	CHECK(folio_at(f, psize) == NULL);	/* second huge page: a hole */
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_file_holds_one_ref(void)
{
	return check_file_ref(MB2, GMEM_POLICY_4K, 0) &&
	       check_file_ref(MB2, GMEM_POLICY_A, PMD_ORDER) &&
	       check_file_ref(MB2, GMEM_POLICY_B_EAGER, 0) &&
	       check_file_ref(MB2, GMEM_POLICY_B_LAZY, PMD_ORDER) &&
	       check_file_ref(GB1, GMEM_POLICY_A, PUD_ORDER) &&
	       check_file_ref(GB1, GMEM_POLICY_B_LAZY, PUD_ORDER);
}

/* Faulting the same page twice through one mm adds one PTE, once. */
static bool check_pte_same_mm(enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	bool large = pol == GMEM_POLICY_A || pol == GMEM_POLICY_B_LAZY;

	if (!setup(MB2, 1, pol, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_fault(mm, f, 0, 0), 0);
	CHECK_EQ(ref_at(f, 0), 2);
	CHECK_EQ(map_at(f, 0), 1);
	CHECK_EQ(gmem_fault(mm, f, 0, GMEM_WRITE), 0);
	CHECK_EQ(gmem_fault(mm, f, 0x123, 0), 0);	/* same page */
	CHECK_EQ(gmem_host_write(mm, f, 0x7, 0x42), 0);
	CHECK_EQ(ref_at(f, 0), 2);
	CHECK_EQ(map_at(f, 0), 1);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 1);

	/* A second page: its own PTE, on the same folio if it is large. */
	CHECK_EQ(gmem_fault(mm, f, K4, 0), 0);
	if (large) {
		CHECK_EQ(ref_at(f, 0), 3);
		CHECK_EQ(map_at(f, 0), 2);
	} else {
		CHECK_EQ(ref_at(f, 0), 2);
		CHECK_EQ(ref_at(f, K4), 2);
		CHECK_EQ(map_at(f, K4), 1);
	}
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 2);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_pte_same_mm_once(void)
{
	return check_pte_same_mm(GMEM_POLICY_4K) &&
	       check_pte_same_mm(GMEM_POLICY_A) &&
	       check_pte_same_mm(GMEM_POLICY_B_EAGER) &&
	       check_pte_same_mm(GMEM_POLICY_B_LAZY);
}

/* Two mms: two PTEs.  A fork copies the mapping, not the PTEs. */
static bool check_pte_two_mms(enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm1, *mm2, *child;
	struct gmem_stats s;

	if (!setup(MB2, 1, pol, MB2, SHARED, &pool, &f, &mm1))
		return false;
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm2), 0);
	CHECK_EQ(gmem_mmap(mm2, f), 0);
	CHECK_EQ(gmem_fault(mm1, f, 0, 0), 0);
	CHECK_EQ(gmem_fault(mm2, f, 0, 0), 0);
	CHECK_EQ(gmem_fault(mm2, f, 0, GMEM_WRITE), 0);
	CHECK_EQ(ref_at(f, 0), 3);
	CHECK_EQ(map_at(f, 0), 2);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 2);

	CHECK_EQ(gmem_mm_create(pool, mm1, &child), 0);
	CHECK_EQ(ref_at(f, 0), 3);
	CHECK_EQ(map_at(f, 0), 2);
	CHECK_EQ(gmem_mmap(child, f), -EEXIST);	/* the mapping was copied */
	CHECK_EQ(gmem_fault(child, f, 0, 0), 0);
	CHECK_EQ(ref_at(f, 0), 4);
	CHECK_EQ(map_at(f, 0), 3);

	/* A conversion zaps them all: back to the file's own reference. */
	CHECK_EQ(gmem_convert(f, 0, pol == GMEM_POLICY_4K ||
				     pol == GMEM_POLICY_B_EAGER ? K4 : MB2,
			      GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(ref_at(f, 0), 1);
	CHECK_EQ(map_at(f, 0), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 0);
	CHECK_EQ(s.zaps, 3);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_pte_two_mms_twice(void)
{
	return check_pte_two_mms(GMEM_POLICY_4K) &&
	       check_pte_two_mms(GMEM_POLICY_A) &&
	       check_pte_two_mms(GMEM_POLICY_B_EAGER) &&
	       check_pte_two_mms(GMEM_POLICY_B_LAZY);
}

/* A pin on a 4K folio: GUP_PIN_COUNTING_BIAS, plus the PTE it faults in. */
static bool check_pin_small(enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id1, id2, id3, id4;

	if (!setup(MB2, 1, pol, MB2, SHARED, &pool, &f, &mm))
		return false;
	if (pol == GMEM_POLICY_B_LAZY) {
		/* split the block to 4K folios first */
		CHECK_EQ(gmem_convert(f, 100 * K4, K4, GMEM_PRIVATE, 0, 0,
				      NULL), 0);
		CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	}
	CHECK_EQ(GUP_PIN_COUNTING_BIAS, 1024);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id1, NULL), 0);
	CHECK_EQ(order_at(f, 0), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 1 + 1024);
	CHECK_EQ(map_at(f, 0), 1);
	CHECK_EQ(pinc_at(f, 0), 0);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id2, NULL), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 1 + 2048);
	CHECK_EQ(map_at(f, 0), 1);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, GMEM_PIN_LONGTERM, &id3, NULL), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 1 + 3072);
	CHECK_EQ(pinc_at(f, 0), 0);

	/* Three pages at once: each 4K folio gets the bias once. */
	CHECK_EQ(gmem_pin(mm, f, K4, 3 * K4, 0, &id4, NULL), 0);
	for (uint64_t pg = 1; pg < 4; pg++) {
		CHECK_EQ(ref_at(f, pg * K4), 1 + 1 + 1024);
		CHECK_EQ(map_at(f, pg * K4), 1);
	}
	CHECK_EQ(ref_at(f, 0), 1 + 1 + 3072);
	STATS(pool, f, &s);
	CHECK_EQ(s.pins, 6);
	CHECK_EQ(s.host_ptes, 4);
	CHECK_INVARIANTS(pool);

	CHECK_EQ(gmem_unpin(pool, id2), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 1 + 2048);
	CHECK_EQ(gmem_unpin(pool, id3), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 1 + 1024);
	CHECK_EQ(gmem_unpin(pool, id1), 0);
	CHECK_EQ(ref_at(f, 0), 2);		/* the PTE stays */
	CHECK_EQ(map_at(f, 0), 1);
	CHECK_EQ(gmem_unpin(pool, id4), 0);
	for (uint64_t pg = 1; pg < 4; pg++)
		CHECK_EQ(ref_at(f, pg * K4), 2);
	STATS(pool, f, &s);
	CHECK_EQ(s.pins, 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_pin_small_bias(void)
{
	return check_pin_small(GMEM_POLICY_4K) &&
	       check_pin_small(GMEM_POLICY_B_EAGER) &&
	       check_pin_small(GMEM_POLICY_B_LAZY);
}

/* A pin on a large folio: one reference and one pincount per page. */
static bool check_pin_large(uint64_t psize, enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t id1, id2;

	if (!setup(psize, 1, pol, psize, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id1, NULL), 0);
	CHECK_EQ(order_at(f, 0), psize == GB1 ? PUD_ORDER : PMD_ORDER);
	CHECK_EQ(ref_at(f, 0), 1 + 1 + 1);
	CHECK_EQ(map_at(f, 0), 1);
	CHECK_EQ(pinc_at(f, 0), 1);

	/* 8 pages, page 0 already mapped: 7 more PTEs, 8 more pins. */
	CHECK_EQ(gmem_pin(mm, f, 0, 8 * K4, 0, &id2, NULL), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 8 + 9);
	CHECK_EQ(map_at(f, 0), 8);
	CHECK_EQ(pinc_at(f, 0), 9);
	CHECK_INVARIANTS(pool);

	CHECK_EQ(gmem_unpin(pool, id2), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 8 + 1);
	CHECK_EQ(pinc_at(f, 0), 1);
	CHECK_EQ(map_at(f, 0), 8);
	CHECK_EQ(gmem_unpin(pool, id1), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 8);
	CHECK_EQ(pinc_at(f, 0), 0);
	CHECK_EQ(map_at(f, 0), 8);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_pin_large_per_page(void)
{
	return check_pin_large(MB2, GMEM_POLICY_A) &&
	       check_pin_large(MB2, GMEM_POLICY_B_LAZY) &&
	       check_pin_large(GB1, GMEM_POLICY_A) &&
	       check_pin_large(GB1, GMEM_POLICY_B_LAZY);
}

/* A pin across two huge folios takes its share on each. */
static bool test_pin_across_folios(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t id;

	if (!setup(MB2, 2, GMEM_POLICY_A, 2 * MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_pin(mm, f, MB2 - 2 * K4, 3 * K4, 0, &id, NULL), 0);
	CHECK(folio_at(f, 0) != folio_at(f, MB2));
	CHECK_EQ(ref_at(f, 0), 1 + 2 + 2);
	CHECK_EQ(pinc_at(f, 0), 2);
	CHECK_EQ(map_at(f, 0), 2);
	CHECK_EQ(ref_at(f, MB2), 1 + 1 + 1);
	CHECK_EQ(pinc_at(f, MB2), 1);
	CHECK_EQ(map_at(f, MB2), 1);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 2);
	CHECK_EQ(ref_at(f, MB2), 1 + 1);
	CHECK_EQ(pinc_at(f, 0), 0);
	CHECK_EQ(pinc_at(f, MB2), 0);
	CHECK_EQ(gmem_unpin(pool, id), -ENOENT);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/*
 * The safety test takes a transient lookup reference: the safe value is
 * the file's plus the caller's, and the count is unchanged afterwards.
 */
static bool test_lookup_ref_transient(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gfolio *fo;
	uint64_t id;

	if (!setup(MB2, 1, GMEM_POLICY_4K, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_guest_access(f, 0, 0, 0), 0);
	fo = folio_at(f, 0);
	CHECK(fo);
	CHECK(!folio_has_unexpected_refs(fo));
	CHECK_EQ(folio_ref_count(fo), 1);
	CHECK_EQ(gmem_fault(mm, f, 0, 0), 0);
	CHECK(folio_has_unexpected_refs(fo));	/* a host mapping */
	CHECK_EQ(folio_ref_count(fo), 2);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), 0);
	CHECK(folio_has_unexpected_refs(fo));
	CHECK_EQ(folio_ref_count(fo), 1026);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(folio_ref_count(fo), 2);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/*
 * A failing conversion zaps the drain set's PTEs (their references go) but
 * leaves pins alone; refaults take the references again.
 */
static bool test_refs_after_failed_convert(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t id, at = 0;

	/* 4K folio: PTE + pin, then EAGAIN. */
	if (!setup(MB2, 1, GMEM_POLICY_4K, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), 0);
	CHECK_EQ(ref_at(f, 0), 1026);
	CHECK_EQ(gmem_convert(f, 0, K4, GMEM_PRIVATE, 0, 0, &at), -EAGAIN);
	CHECK_EQ(at, 0);
	CHECK_EQ(ref_at(f, 0), 1 + 1024);
	CHECK_EQ(map_at(f, 0), 0);
	CHECK_EQ(gmem_fault(mm, f, 0, 0), 0);
	CHECK_EQ(ref_at(f, 0), 1026);
	CHECK_EQ(map_at(f, 0), 1);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(ref_at(f, 0), 2);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_refs_after_failed_convert_large(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t id, at = 0;

	if (!setup(MB2, 1, GMEM_POLICY_A, MB2, SHARED, &pool, &f, &mm))
		return false;
	for (uint64_t pg = 0; pg < 4; pg++)
		CHECK_EQ(gmem_fault(mm, f, pg * K4, 0), 0);
	CHECK_EQ(gmem_pin(mm, f, 5 * K4, K4, 0, &id, NULL), 0);
	CHECK_EQ(ref_at(f, 0), 1 + 5 + 1);
	CHECK_EQ(gmem_convert(f, K4, K4, GMEM_PRIVATE, 0, 0, &at), -EAGAIN);
	CHECK_EQ(at, K4);
	/* the whole folio was zapped; the pin stays */
	CHECK_EQ(ref_at(f, 0), 1 + 1);
	CHECK_EQ(map_at(f, 0), 0);
	CHECK_EQ(pinc_at(f, 0), 1);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(ref_at(f, 0), 1);
	CHECK_EQ(pinc_at(f, 0), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* b-lazy: a split gives each 4K folio the file's reference, and no more. */
static bool test_refs_across_split(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t id;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_fault(mm, f, 0, 0), 0);
	CHECK_EQ(gmem_fault(mm, f, 7 * K4, 0), 0);
	CHECK_EQ(order_at(f, 0), PMD_ORDER);
	CHECK_EQ(ref_at(f, 0), 3);
	CHECK_EQ(gmem_convert(f, 5 * K4, K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	for (uint64_t pg = 0; pg < 512; pg++) {
		CHECK_EQ(order_at(f, pg * K4), 0);
		CHECK_EQ(ref_at(f, pg * K4), 1);
		CHECK_EQ(map_at(f, pg * K4), 0);
	}
	CHECK_EQ(gmem_fault(mm, f, 0, 0), 0);
	CHECK_EQ(ref_at(f, 0), 2);
	CHECK_EQ(ref_at(f, K4), 1);
	CHECK_EQ(gmem_pin(mm, f, K4, K4, 0, &id, NULL), 0);
	CHECK_EQ(ref_at(f, K4), 1026);
	CHECK_EQ(pinc_at(f, K4), 0);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(ref_at(f, K4), 2);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_file_holds_one_ref),
		TEST(test_pte_same_mm_once),
		TEST(test_pte_two_mms_twice),
		TEST(test_pin_small_bias),
		TEST(test_pin_large_per_page),
		TEST(test_pin_across_folios),
		TEST(test_lookup_ref_transient),
		TEST(test_refs_after_failed_convert),
		TEST(test_refs_after_failed_convert_large),
		TEST(test_refs_across_split),
	};

	return RUN_TESTS(tests);
}
