// SPDX-License-Identifier: MIT
/*
 * gmap.c - a three-level map of 4K/2M/1G entries, shaped like a page table.
 *
 * A slot at the top (one per GiB) or in a 2M table holds SLOT_EMPTY,
 * SLOT_ENTRY (a leaf at that level) or a pointer to the next level's
 * table; allocations are at least 16-byte aligned, so a pointer never
 * equals either tag.  Each table keeps a bitmap of its non-empty slots
 * and a count of them, so walks over a sparse range skip empty slots a
 * word at a time and a table is freed the moment its count drops to 0.
 *
 * Only gmap_init() and gmap_insert() allocate.  gmap_insert() takes
 * everything it needs before changing anything, so a failure leaves the
 * map as it was; removals never fail.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "gmap.h"

#define SHIFT_4K	12
#define SHIFT_2M	21
#define SHIFT_1G	30
#define SZ_4K		(1ULL << SHIFT_4K)
#define SZ_2M		(1ULL << SHIFT_2M)
#define SZ_1G		(1ULL << SHIFT_1G)

#define NR_SLOTS	512	/* slots per 2M table and per 4K bitmap */
#define SLOT_MASK	(NR_SLOTS - 1)
#define NR_WORDS	(NR_SLOTS / 64)

#define SLOT_EMPTY	((uintptr_t)0)
#define SLOT_ENTRY	((uintptr_t)1)

/* The 4K entries of one 2M block. */
struct gmap_bm {
	uint64_t bits[NR_WORDS];
	uint32_t nr;		/* bits set; never 0 while linked */
};

/* The 2M slots of one GiB. */
struct gmap_pt {
	uintptr_t slot[NR_SLOTS];
	uint64_t used[NR_WORDS];	/* a bit per non-empty slot */
	uint32_t nr_used;		/* non-empty slots; never 0 if linked */
};


/* Entries come and go: bytes mapped now, and entries ever added and
 * removed at each level (each stands for an invalidation or a map in a
 * real stage-2 or IOMMU table). */
/* Entries ever removed, all levels. */
static uint64_t removed_sum(const struct gmap *m)
{
	return m->removed[GMAP_4K] + m->removed[GMAP_2M] + m->removed[GMAP_1G];
}

static void gmap_added(struct gmap *m, int level, uint64_t n)
{
	static const uint64_t sz[GMAP_NR_LEVELS] = { SZ_4K, SZ_2M, SZ_1G };

	m->bytes[level] += n * sz[level];
	m->added[level] += n;
}

static void gmap_removed(struct gmap *m, int level, uint64_t n)
{
	static const uint64_t sz[GMAP_NR_LEVELS] = { SZ_4K, SZ_2M, SZ_1G };

	m->bytes[level] -= n * sz[level];
	m->removed[level] += n;
}

static const unsigned int level_shift[GMAP_NR_LEVELS] = {
	SHIFT_4K, SHIFT_2M, SHIFT_1G,
};

static inline bool slot_is_table(uintptr_t s)
{
	return s > SLOT_ENTRY;
}

static inline struct gmap_pt *slot_pt(uintptr_t s)
{
	return (struct gmap_pt *)s;
}

static inline struct gmap_bm *slot_bm(uintptr_t s)
{
	return (struct gmap_bm *)s;
}

static inline bool test_bit(const uint64_t *w, uint64_t i)
{
	return (w[i / 64] >> (i % 64)) & 1;
}

static inline void set_bit(uint64_t *w, uint64_t i)
{
	w[i / 64] |= 1ULL << (i % 64);
}

static inline void clear_bit(uint64_t *w, uint64_t i)
{
	w[i / 64] &= ~(1ULL << (i % 64));
}

/* Mask of the bits of word @wi that fall in [lo, end). */
static uint64_t word_mask(uint64_t wi, uint64_t lo, uint64_t end)
{
	uint64_t mask = ~0ULL;

	if (lo > wi * 64)
		mask &= ~0ULL << (lo - wi * 64);
	if (end < wi * 64 + 64)
		mask &= ~(~0ULL << (end - wi * 64));
	return mask;
}

/* The first set bit of @w in [from, end), or @end if none. */
static uint64_t find_next_bit(const uint64_t *w, uint64_t from, uint64_t end)
{
	uint64_t wi, bits;

	for (wi = from / 64; wi * 64 < end; wi++) {
		bits = w[wi] & word_mask(wi, from, end);
		if (bits) {
			from = wi * 64 + (uint64_t)__builtin_ctzll(bits);
			return from < end ? from : end;
		}
	}
	return end;
}

/* Clear the bits of @w in [lo, end); returns how many were set. */
static unsigned int clear_bits(uint64_t *w, uint64_t lo, uint64_t end)
{
	unsigned int n = 0;
	uint64_t wi, mask;

	for (wi = lo / 64; wi * 64 < end; wi++) {
		mask = word_mask(wi, lo, end);
		n += (unsigned int)__builtin_popcountll(w[wi] & mask);
		w[wi] &= ~mask;
	}
	return n;
}

/*
 * The slots of the table at index @idx of its parent level that the
 * child-level indices [first, last] reach, as [*lo, *end).
 */
static void slot_range(uint64_t idx, uint64_t first, uint64_t last,
		       unsigned int *lo, unsigned int *end)
{
	*lo = (first / NR_SLOTS == idx) ? first % NR_SLOTS : 0;
	*end = (last / NR_SLOTS == idx) ? last % NR_SLOTS + 1 : NR_SLOTS;
}

/*
 * Tables come from the map's spares first.  gmap_reserve() keeps enough
 * spares that inserts inside the reserved span never allocate, so a map
 * that must follow a committed change (the IOMMU's) cannot fail to.
 */
static void *table_new(struct gmap *m, bool pt)
{
	void **spare = pt ? &m->spare_pt : &m->spare_bm;
	size_t sz = pt ? sizeof(struct gmap_pt) : sizeof(struct gmap_bm);
	void *t = *spare;

	if (!t)
		return gmem_alloc(sz);
	*spare = *(void **)t;
	memset(t, 0, sz);
	if (pt)
		m->nr_spare_pt--;
	else
		m->nr_spare_bm--;
	return t;
}

/* Called after nr_pt/nr_bm dropped for @t: keep it while reserved. */
static void table_release(struct gmap *m, void *t, bool pt)
{
	size_t sz = pt ? sizeof(struct gmap_pt) : sizeof(struct gmap_bm);

	if (pt ? m->nr_pt + m->nr_spare_pt < m->want_pt :
		 m->nr_bm + m->nr_spare_bm < m->want_bm) {
		void **spare = pt ? &m->spare_pt : &m->spare_bm;

		*(void **)t = *spare;
		*spare = t;
		if (pt)
			m->nr_spare_pt++;
		else
			m->nr_spare_bm++;
		return;
	}
	gmem_free(t, sz);
}

/**
 * gmap_reserve() - keep room for @pt 2M tables and @bm 4K bitmaps in all.
 * Return: 0, or -ENOMEM with the reservation unchanged.
 */
int gmap_reserve(struct gmap *m, uint64_t pt, uint64_t bm)
{
	uint64_t old_pt = m->want_pt, old_bm = m->want_bm;

	m->want_pt = pt > m->want_pt ? pt : m->want_pt;
	m->want_bm = bm > m->want_bm ? bm : m->want_bm;
	while (m->nr_pt + m->nr_spare_pt < m->want_pt ||
	       m->nr_bm + m->nr_spare_bm < m->want_bm) {
		bool is_pt = m->nr_pt + m->nr_spare_pt < m->want_pt;
		void *t = gmem_alloc(is_pt ? sizeof(struct gmap_pt) :
					     sizeof(struct gmap_bm));

		if (!t) {
			m->want_pt = old_pt;
			m->want_bm = old_bm;
			/* Trim spares back to the old reservation. */
			while (m->spare_pt && m->nr_pt + m->nr_spare_pt > old_pt) {
				void *x = m->spare_pt;

				m->spare_pt = *(void **)x;
				m->nr_spare_pt--;
				gmem_free(x, sizeof(struct gmap_pt));
			}
			while (m->spare_bm && m->nr_bm + m->nr_spare_bm > old_bm) {
				void *x = m->spare_bm;

				m->spare_bm = *(void **)x;
				m->nr_spare_bm--;
				gmem_free(x, sizeof(struct gmap_bm));
			}
			return -ENOMEM;
		}
		*(void **)t = is_pt ? m->spare_pt : m->spare_bm;
		if (is_pt) {
			m->spare_pt = t;
			m->nr_spare_pt++;
		} else {
			m->spare_bm = t;
			m->nr_spare_bm++;
		}
	}
	return 0;
}

static void top_set(struct gmap *m, uint64_t gi, uintptr_t s)
{
	m->top[gi] = s;
	set_bit(m->top_used, gi);
}

static void top_clear(struct gmap *m, uint64_t gi)
{
	m->top[gi] = SLOT_EMPTY;
	clear_bit(m->top_used, gi);
}

static void pt_set(struct gmap_pt *pt, unsigned int si, uintptr_t s)
{
	pt->slot[si] = s;
	set_bit(pt->used, si);
	pt->nr_used++;
}

static void pt_clear(struct gmap_pt *pt, unsigned int si)
{
	pt->slot[si] = SLOT_EMPTY;
	clear_bit(pt->used, si);
	pt->nr_used--;
}

/* Free the bitmap in slot @si of @pt with its entries; returns them. */
static uint64_t bm_free(struct gmap *m, struct gmap_pt *pt, unsigned int si)
{
	struct gmap_bm *bm = slot_bm(pt->slot[si]);
	uint64_t n = bm->nr;

	gmap_removed(m, GMAP_4K, n);
	m->nr_bm--;
	table_release(m, bm, false);
	pt_clear(pt, si);
	return n;
}

/* Free the 2M table at top slot @gi with every entry in it; returns them. */
static uint64_t pt_free(struct gmap *m, uint64_t gi)
{
	struct gmap_pt *pt = slot_pt(m->top[gi]);
	uint64_t n = 0;
	unsigned int si;

	for (si = find_next_bit(pt->used, 0, NR_SLOTS); si < NR_SLOTS;
	     si = find_next_bit(pt->used, si + 1, NR_SLOTS)) {
		if (slot_is_table(pt->slot[si])) {
			n += bm_free(m, pt, si);
		} else {
			gmap_removed(m, GMAP_2M, 1);
			pt_clear(pt, si);
			n++;
		}
	}
	m->nr_pt--;
	table_release(m, pt, true);
	top_clear(m, gi);
	return n;
}

static size_t top_words(uint64_t nr_gb)
{
	return (size_t)((nr_gb + 63) / 64);
}

/**
 * gmap_init() - set up an empty map over a file.
 * @m: the map.
 * @size: the file size in bytes, a multiple of 2 MiB (0 is allowed).
 *
 * Allocates the top array, 8 bytes per GiB of file plus a bitmap.
 *
 * Context: the caller serialises updates; allocates through gmem_alloc().
 * Return: 0; -EINVAL if @size is not a multiple of 2 MiB; -ENOMEM.
 */
int gmap_init(struct gmap *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	if (size % SZ_2M)
		return -EINVAL;
	m->size = size;
	m->nr_gb = (size >> SHIFT_1G) + !!(size & (SZ_1G - 1));
	if (!m->nr_gb)
		return 0;
	if (m->nr_gb > SIZE_MAX / sizeof(*m->top))
		return -ENOMEM;

	m->top = gmem_alloc(m->nr_gb * sizeof(*m->top));
	if (!m->top)
		goto err;
	m->top_used = gmem_alloc(top_words(m->nr_gb) * sizeof(uint64_t));
	if (!m->top_used)
		goto err_top;
	return 0;

err_top:
	gmem_free(m->top, m->nr_gb * sizeof(*m->top));
err:
	memset(m, 0, sizeof(*m));
	return -ENOMEM;
}

/**
 * gmap_destroy() - free every table and the top array.
 * @m: the map; afterwards it is empty with size 0.
 */
void gmap_destroy(struct gmap *m)
{
	uint64_t gi;

	m->want_pt = m->want_bm = 0;	/* free tables, do not keep them */
	for (gi = find_next_bit(m->top_used, 0, m->nr_gb); gi < m->nr_gb;
	     gi = find_next_bit(m->top_used, gi + 1, m->nr_gb)) {
		if (slot_is_table(m->top[gi]))
			pt_free(m, gi);
	}
	while (m->spare_pt) {
		void *x = m->spare_pt;

		m->spare_pt = *(void **)x;
		gmem_free(x, sizeof(struct gmap_pt));
	}
	while (m->spare_bm) {
		void *x = m->spare_bm;

		m->spare_bm = *(void **)x;
		gmem_free(x, sizeof(struct gmap_bm));
	}
	m->nr_spare_pt = m->nr_spare_bm = 0;
	if (m->nr_gb) {
		gmem_free(m->top, m->nr_gb * sizeof(*m->top));
		gmem_free(m->top_used, top_words(m->nr_gb) * sizeof(uint64_t));
	}
	memset(m, 0, sizeof(*m));
}

/**
 * gmap_lookup() - find the entry covering a byte.
 * @m: the map.
 * @off: byte offset in the file.
 * @base: receives the entry's base offset when there is one.
 *
 * Return: the entry's level (GMAP_4K, GMAP_2M or GMAP_1G), or -1 if no
 * entry covers @off (or @off is past the end of the file).
 */
int gmap_lookup(const struct gmap *m, uint64_t off, uint64_t *base)
{
	const struct gmap_pt *pt;
	const struct gmap_bm *bm;
	uintptr_t s;
	int level;

	if (off >= m->size)
		return -1;
	s = m->top[off >> SHIFT_1G];
	if (s == SLOT_EMPTY)
		return -1;
	if (s == SLOT_ENTRY) {
		level = GMAP_1G;
		goto found;
	}
	pt = slot_pt(s);
	s = pt->slot[(off >> SHIFT_2M) & SLOT_MASK];
	if (s == SLOT_EMPTY)
		return -1;
	if (s == SLOT_ENTRY) {
		level = GMAP_2M;
		goto found;
	}
	bm = slot_bm(s);
	if (!test_bit(bm->bits, (off >> SHIFT_4K) & SLOT_MASK))
		return -1;
	level = GMAP_4K;
found:
	*base = off & ~((1ULL << level_shift[level]) - 1);
	return level;
}

/* Whether [base, base + level size) is an aligned block inside the file. */
static bool block_ok(const struct gmap *m, uint64_t base, int level)
{
	uint64_t sz;

	if (level < GMAP_4K || level > GMAP_1G)
		return false;
	sz = 1ULL << level_shift[level];
	return !(base & (sz - 1)) && base < m->size && m->size - base >= sz;
}

/**
 * gmap_insert() - insert an entry, replacing the smaller ones it covers.
 * @m: the map.
 * @base: the entry's base offset, aligned to @level.
 * @level: GMAP_4K, GMAP_2M or GMAP_1G.
 *
 * Every smaller entry inside the block is removed first.  Inserting an
 * entry that is already there does nothing.  The caller guarantees that
 * no larger entry covers the block.
 *
 * Context: the caller serialises updates; allocates through gmem_alloc().
 * Return: 0; -ENOMEM with the map unchanged; -EINVAL if @level is not a
 * level, @base is misaligned or the block does not lie wholly inside the
 * file (so a 1G entry needs the whole GiB); -EEXIST, with the map
 * unchanged, if a larger entry covers the block after all.
 */
static int __gmap_insert(struct gmap *m, uint64_t base, int level)
{
	struct gmap_pt *pt = NULL, *new_pt = NULL;
	struct gmap_bm *bm = NULL;
	uint64_t gi = base >> SHIFT_1G;
	unsigned int si, bi;
	uintptr_t s;

	if (!block_ok(m, base, level))
		return -EINVAL;

	s = m->top[gi];
	if (level == GMAP_1G) {
		if (s == SLOT_ENTRY)
			return 0;
		if (s != SLOT_EMPTY)
			pt_free(m, gi);
		top_set(m, gi, SLOT_ENTRY);
		gmap_added(m, GMAP_1G, 1);
		return 0;
	}
	if (s == SLOT_ENTRY)
		return -EEXIST;

	si = (base >> SHIFT_2M) & SLOT_MASK;
	if (s != SLOT_EMPTY) {
		pt = slot_pt(s);
		s = pt->slot[si];
	} else {
		pt = new_pt = table_new(m, true);
		if (!pt)
			return -ENOMEM;
	}

	if (level == GMAP_2M) {
		if (s == SLOT_ENTRY)
			return 0;
		if (s != SLOT_EMPTY)
			bm_free(m, pt, si);
		pt_set(pt, si, SLOT_ENTRY);
		gmap_added(m, GMAP_2M, 1);
		goto link_pt;
	}

	if (s == SLOT_ENTRY)
		return -EEXIST;	/* new_pt is NULL: s came from a table */
	if (s != SLOT_EMPTY) {
		bm = slot_bm(s);
	} else {
		bm = table_new(m, false);
		if (!bm)
			goto err_pt;
		pt_set(pt, si, (uintptr_t)bm);
		m->nr_bm++;
	}
	bi = (base >> SHIFT_4K) & SLOT_MASK;
	if (!test_bit(bm->bits, bi)) {
		set_bit(bm->bits, bi);
		bm->nr++;
		gmap_added(m, GMAP_4K, 1);
	}

link_pt:
	if (new_pt) {
		top_set(m, gi, (uintptr_t)new_pt);
		m->nr_pt++;
	}
	return 0;

err_pt:
	if (new_pt)
		table_release(m, new_pt, true);
	return -ENOMEM;
}

/* gmap_insert(), counting one flush when it removed entries. */
int gmap_insert(struct gmap *m, uint64_t base, int level)
{
	uint64_t r0 = removed_sum(m);
	int ret = __gmap_insert(m, base, level);

	if (removed_sum(m) != r0)
		m->flushes++;
	return ret;
}

/*
 * Remove the entries of the 2M table at top slot @gi that overlap the 4K
 * pages [first, last], and free the table if that empties it.
 */
static uint64_t pt_remove(struct gmap *m, uint64_t gi, uint64_t first,
			  uint64_t last)
{
	struct gmap_pt *pt = slot_pt(m->top[gi]);
	uint64_t n = 0, g2;
	unsigned int si, end, lo4, end4, cleared;
	struct gmap_bm *bm;

	slot_range(gi, first / NR_SLOTS, last / NR_SLOTS, &si, &end);
	for (si = find_next_bit(pt->used, si, end); si < end;
	     si = find_next_bit(pt->used, si + 1, end)) {
		if (!slot_is_table(pt->slot[si])) {
			gmap_removed(m, GMAP_2M, 1);
			pt_clear(pt, si);
			n++;
			continue;
		}
		bm = slot_bm(pt->slot[si]);
		g2 = gi * NR_SLOTS + si;
		slot_range(g2, first, last, &lo4, &end4);
		cleared = clear_bits(bm->bits, lo4, end4);
		bm->nr -= cleared;
		gmap_removed(m, GMAP_4K, cleared);
		n += cleared;
		if (!bm->nr)
			bm_free(m, pt, si);
	}
	if (!pt->nr_used)
		pt_free(m, gi);
	return n;
}

/**
 * gmap_remove() - remove every entry overlapping a range.
 * @m: the map.
 * @start: first byte.
 * @end: first byte after the range; clipped to the file size.
 *
 * An entry overlapping the range only in part goes whole.  Costs
 * O(tables reached + words of their slot bitmaps), never a walk over
 * empty 4K pages.
 *
 * Return: the number of entries removed.
 */
static uint64_t __gmap_remove(struct gmap *m, uint64_t start, uint64_t end)
{
	uint64_t gi, gend, first, last, n = 0;

	if (end > m->size)
		end = m->size;
	if (start >= end)
		return 0;
	first = start >> SHIFT_4K;
	last = (end - 1) >> SHIFT_4K;
	gend = ((end - 1) >> SHIFT_1G) + 1;

	for (gi = find_next_bit(m->top_used, start >> SHIFT_1G, gend);
	     gi < gend; gi = find_next_bit(m->top_used, gi + 1, gend)) {
		if (m->top[gi] == SLOT_ENTRY) {
			top_clear(m, gi);
			gmap_removed(m, GMAP_1G, 1);
			n++;
		} else {
			n += pt_remove(m, gi, first, last);
		}
	}
	return n;
}

/* gmap_remove(), counting one flush when it removed entries. */
uint64_t gmap_remove(struct gmap *m, uint64_t start, uint64_t end)
{
	uint64_t r0 = removed_sum(m);
	uint64_t ret = __gmap_remove(m, start, end);

	if (removed_sum(m) != r0)
		m->flushes++;
	return ret;
}

/**
 * gmap_remove_smaller() - remove the entries smaller than a block.
 * @m: the map.
 * @base: the block's base, aligned to @level and inside the file.
 * @level: the block's level.
 *
 * Used before installing a @level entry by hand, or to drop the pieces
 * of a split entry.  A block in a partial last GiB is allowed.
 *
 * Return: the number of entries removed; 0 for a bad @base or @level.
 */
static uint64_t __gmap_remove_smaller(struct gmap *m, uint64_t base, int level)
{
	uint64_t gi = base >> SHIFT_1G;
	struct gmap_pt *pt;
	unsigned int si;

	if (level <= GMAP_4K || level > GMAP_1G || base >= m->size ||
	    (base & ((1ULL << level_shift[level]) - 1)))
		return 0;
	if (!slot_is_table(m->top[gi]))
		return 0;
	if (level == GMAP_1G)
		return pt_free(m, gi);

	pt = slot_pt(m->top[gi]);
	si = (base >> SHIFT_2M) & SLOT_MASK;
	if (!slot_is_table(pt->slot[si]))
		return 0;
	return pt_remove(m, gi, base >> SHIFT_4K,
			 ((base + SZ_2M) >> SHIFT_4K) - 1);
}

/* gmap_remove_smaller(), counting one flush when it removed entries. */
uint64_t gmap_remove_smaller(struct gmap *m, uint64_t base, int level)
{
	uint64_t r0 = removed_sum(m);
	uint64_t ret = __gmap_remove_smaller(m, base, level);

	if (removed_sum(m) != r0)
		m->flushes++;
	return ret;
}

/**
 * gmap_bytes() - bytes mapped by entries of one level.
 * @m: the map.
 * @level: GMAP_4K, GMAP_2M or GMAP_1G; anything else gives 0.
 *
 * Costs O(1).
 */
uint64_t gmap_bytes(const struct gmap *m, int level)
{
	if (level < GMAP_4K || level > GMAP_1G)
		return 0;
	return m->bytes[level];
}

/**
 * gmap_for_each() - call a function for each entry overlapping a range.
 * @m: the map.
 * @start: first byte.
 * @end: first byte after the range.
 * @fn: called with @arg, the entry's base and level, in offset order.
 *      It must not change the map.
 * @arg: passed to @fn.
 */
void gmap_for_each(const struct gmap *m, uint64_t start, uint64_t end,
		   void (*fn)(void *arg, uint64_t base, int level), void *arg)
{
	uint64_t gi, gend, g2, first, last, bi;
	const struct gmap_pt *pt;
	const struct gmap_bm *bm;
	unsigned int si, send, lo4, end4;

	if (end > m->size)
		end = m->size;
	if (start >= end)
		return;
	first = start >> SHIFT_4K;
	last = (end - 1) >> SHIFT_4K;
	gend = ((end - 1) >> SHIFT_1G) + 1;

	for (gi = find_next_bit(m->top_used, start >> SHIFT_1G, gend);
	     gi < gend; gi = find_next_bit(m->top_used, gi + 1, gend)) {
		if (m->top[gi] == SLOT_ENTRY) {
			fn(arg, gi << SHIFT_1G, GMAP_1G);
			continue;
		}
		pt = slot_pt(m->top[gi]);
		slot_range(gi, first / NR_SLOTS, last / NR_SLOTS, &si, &send);
		for (si = find_next_bit(pt->used, si, send); si < send;
		     si = find_next_bit(pt->used, si + 1, send)) {
			g2 = gi * NR_SLOTS + si;
			if (!slot_is_table(pt->slot[si])) {
				fn(arg, g2 << SHIFT_2M, GMAP_2M);
				continue;
			}
			bm = slot_bm(pt->slot[si]);
			slot_range(g2, first, last, &lo4, &end4);
			for (bi = find_next_bit(bm->bits, lo4, end4); bi < end4;
			     bi = find_next_bit(bm->bits, bi + 1, end4))
				fn(arg, (g2 * NR_SLOTS + bi) << SHIFT_4K,
				   GMAP_4K);
		}
	}
}

/**
 * gmap_meta_bytes() - bytes of tables held, the top array included.
 * @m: the map.
 */
size_t gmap_meta_bytes(const struct gmap *m)
{
	if (!m->nr_gb)
		return 0;
	return m->nr_gb * sizeof(*m->top) +
	       top_words(m->nr_gb) * sizeof(uint64_t) +
	       (m->nr_pt + m->nr_spare_pt) * sizeof(struct gmap_pt) +
	       (m->nr_bm + m->nr_spare_bm) * sizeof(struct gmap_bm);
}

static bool __attribute__((format(printf, 3, 4)))
check_fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* A 2M slot's index in the file, for messages. */
#define G2(gi, si)	((unsigned long long)((gi) * NR_SLOTS + (si)))

/*
 * Check the 2M table of GiB @gi and add what it holds to @bytes, @nr_bm.
 * Slots past the end of the file must be empty.
 */
static bool pt_ok(const struct gmap *m, uint64_t gi, uint64_t *bytes,
		  uint64_t *nr_bm, char *why, size_t len)
{
	const struct gmap_pt *pt = slot_pt(m->top[gi]);
	uint64_t limit = m->size >> SHIFT_2M;	/* 2M blocks in the file */
	unsigned int si, used = 0, nr, w;
	const struct gmap_bm *bm;
	uintptr_t s;

	for (si = 0; si < NR_SLOTS; si++) {
		s = pt->slot[si];
		if (test_bit(pt->used, si) != (s != SLOT_EMPTY))
			return check_fail(why, len, "2M slot %llu: used bit %d, slot %#lx",
					  G2(gi, si), test_bit(pt->used, si),
					  (unsigned long)s);
		if (s == SLOT_EMPTY)
			continue;
		used++;
		if (gi * NR_SLOTS + si >= limit)
			return check_fail(why, len, "2M slot %llu past EOF",
					  G2(gi, si));
		if (s == SLOT_ENTRY) {
			bytes[GMAP_2M] += SZ_2M;
			continue;
		}
		bm = slot_bm(s);
		for (w = 0, nr = 0; w < NR_WORDS; w++)
			nr += (unsigned int)__builtin_popcountll(bm->bits[w]);
		if (!nr || nr != bm->nr)
			return check_fail(why, len, "2M slot %llu: bitmap nr %u, %u bits",
					  G2(gi, si), bm->nr, nr);
		bytes[GMAP_4K] += nr * SZ_4K;
		(*nr_bm)++;
	}
	if (!used || used != pt->nr_used)
		return check_fail(why, len, "GiB %llu: nr_used %u, %u slots used",
				  (unsigned long long)gi, pt->nr_used, used);
	return true;
}

/*
 * Check the top slots against their bitmap, and the tables under them,
 * adding what they hold to @bytes, @nr_pt and @nr_bm.
 */
static bool top_ok(const struct gmap *m, uint64_t *bytes, uint64_t *nr_pt,
		   uint64_t *nr_bm, char *why, size_t len)
{
	uint64_t gi;
	uintptr_t s;

	for (gi = 0; gi < m->nr_gb; gi++) {
		s = m->top[gi];
		if (test_bit(m->top_used, gi) != (s != SLOT_EMPTY))
			return check_fail(why, len, "GiB %llu: used bit %d, slot %#lx",
					  (unsigned long long)gi,
					  test_bit(m->top_used, gi),
					  (unsigned long)s);
		if (s == SLOT_EMPTY)
			continue;
		if (s == SLOT_ENTRY) {
			if (m->size - (gi << SHIFT_1G) < SZ_1G)
				return check_fail(why, len, "1G entry at GiB %llu past EOF",
						  (unsigned long long)gi);
			bytes[GMAP_1G] += SZ_1G;
			continue;
		}
		if (!pt_ok(m, gi, bytes, nr_bm, why, len))
			return false;
		(*nr_pt)++;
	}
	for (; gi < top_words(m->nr_gb) * 64; gi++)
		if (test_bit(m->top_used, gi))
			return check_fail(why, len, "used bit %llu past the top",
					  (unsigned long long)gi);
	return true;
}

/**
 * gmap_ok() - validate the whole map.
 * @m: the map.
 * @why: receives a one-line reason on failure; may be NULL.
 * @len: size of @why.
 *
 * Checks that the slot bitmaps and per-table counts match the slots, that
 * no table is kept empty, that no entry lies past the end of the file
 * (a 1G entry needs its whole GiB), and that the byte and table counters
 * match the contents.  Entries cannot overlap by construction: a slot
 * holds one thing.  Costs O(tables).
 *
 * Return: true if the map is consistent.
 */
bool gmap_ok(const struct gmap *m, char *why, size_t len)
{
	uint64_t bytes[GMAP_NR_LEVELS] = { 0 }, nr_pt = 0, nr_bm = 0;
	int level;

	if (m->size % SZ_2M ||
	    m->nr_gb != (m->size >> SHIFT_1G) + !!(m->size & (SZ_1G - 1)))
		return check_fail(why, len, "size %llu with %llu top slots",
				  (unsigned long long)m->size,
				  (unsigned long long)m->nr_gb);
	if (!top_ok(m, bytes, &nr_pt, &nr_bm, why, len))
		return false;
	for (level = 0; level < GMAP_NR_LEVELS; level++)
		if (bytes[level] != m->bytes[level])
			return check_fail(why, len, "level %d: counter %llu, found %llu bytes",
					  level,
					  (unsigned long long)m->bytes[level],
					  (unsigned long long)bytes[level]);
	if (nr_pt != m->nr_pt || nr_bm != m->nr_bm)
		return check_fail(why, len, "tables: counters %llu+%llu, found %llu+%llu",
				  (unsigned long long)m->nr_pt,
				  (unsigned long long)m->nr_bm,
				  (unsigned long long)nr_pt,
				  (unsigned long long)nr_bm);
	return true;
}
