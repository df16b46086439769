// SPDX-License-Identifier: MIT
/*
 * guest.c - the guest's stage-2 map and the file's IOMMU map.
 *
 * Both hold 4K/2M/1G entries by one rule: a block at level L may be mapped
 * when it is L-aligned, lies in one huge page (L no larger than the pool's
 * page; only 4K under policy 4k), has one attribute and no poisoned page.
 * The guest builds entries on access (the largest block allowed around the
 * page); the IOMMU keeps exactly the shared, allocated, unpoisoned pages of
 * the ranges it was given, re-levelled whenever one of those changes.
 * Neither takes folio references: they are invalidated, never waited for.
 */
#include "internal.h"

static const uint64_t level_pages[3] = { 1, 1ULL << PMD_ORDER, 1ULL << PUD_ORDER };

/* The largest level either map may use for @f. */
int guest_level_max(struct gfile *f)
{
	if (f->policy == GMEM_POLICY_4K)
		return GMAP_4K;
	return f->pool->order == PUD_ORDER ? GMAP_1G : GMAP_2M;
}

/* One attribute and no poisoned page over [pg0, pg1). */
static bool block_mappable(struct gfile *f, uint64_t pg0, uint64_t pg1)
{
	uint64_t x;

	return pg1 <= f->nr_pages && block_uniform(f, pg0, pg1, NULL) &&
	       !rs_first_in(&f->poison, pg0, pg1, &x);
}

/* ---------------------------------------------------------------- guest */

/* Map page @pg for the guest.  Context: invalidate lock, file lock. */
static int guest_map_page(struct gfile *f, uint64_t pg)
{
	struct gfolio *fo;
	uint64_t base;
	bool allocated;
	int ret;

	if (pg >= f->nr_pages)
		return GMEM_GUEST_FAULT;
	if (page_is_poisoned(f, pg))
		return GMEM_GUEST_HWPOISON;
	if (gmap_lookup(&f->guest, pg << PAGE_SHIFT, &base) >= 0)
		return 0;
	ret = folio_get_or_alloc(f, pg, &fo, &allocated);
	if (ret)
		return ret;
	for (int l = guest_level_max(f); l >= GMAP_4K; l--) {
		uint64_t s = ALIGN_DOWN(pg, level_pages[l]);

		if (l == GMAP_4K || block_mappable(f, s, s + level_pages[l])) {
			ret = gmap_insert(&f->guest, s << PAGE_SHIFT, l);
			break;
		}
	}
	if (ret && allocated) {
		/* All or nothing for this page: give back its new memory. */
		if (f->policy == GMEM_POLICY_4K)
			small_undo_alloc(f, pg);
		else
			huge_undo_alloc(f, pg >> f->pool->order);
	}
	return ret;
}

int gmem_guest_access(struct gmem_file *file, uint64_t off, uint64_t len,
		      unsigned int flags)
{
	struct gfile *f = to_file(file);
	uint64_t pg, last;
	int ret;

	if (!file || (flags & ~GMEM_WRITE))
		return -EINVAL;
	ret = file_enter_shared(f, handle_gen(file));
	if (ret)
		return ret;
	pg = off >> PAGE_SHIFT;
	/* A range that wraps past 2^64 runs past the end of any file: the
	 * walk stops there with GMEM_GUEST_FAULT. */
	last = !len ? pg : len - 1 > UINT64_MAX - off ? UINT64_MAX >> PAGE_SHIFT :
	       (off + len - 1) >> PAGE_SHIFT;
	pthread_mutex_lock(&f->lock);
	for (; pg <= last && !ret; pg++)
		ret = guest_map_page(f, pg);
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock_shared(f);
	return ret;
}

static int guest_byte(struct gmem_file *file, uint64_t off, uint8_t *val,
		      bool write)
{
	struct gfile *f = to_file(file);
	uint64_t pg = off >> PAGE_SHIFT;
	int ret;

	if (!file || !val)
		return -EINVAL;
	ret = file_enter_shared(f, handle_gen(file));
	if (ret)
		return ret;
	if (f->pool->backing == GMEM_BACKING_NONE) {
		ret = -ENXIO;
		goto out;
	}
	pthread_mutex_lock(&f->lock);
	ret = guest_map_page(f, pg);
	if (!ret) {
		struct gfolio *fo = folio_lookup(f, pg);
		uint8_t *b = fo->data + ((pg - fo->index) << PAGE_SHIFT) +
			     (off & (PAGE_SIZE - 1));

		if (write)
			*b = *val;
		else
			*val = *b;
	}
	pthread_mutex_unlock(&f->lock);
out:
	invalidate_unlock_shared(f);
	return ret;
}

int gmem_guest_read(struct gmem_file *file, uint64_t off, uint8_t *val)
{
	return guest_byte(file, off, val, false);
}

int gmem_guest_write(struct gmem_file *file, uint64_t off, uint8_t val)
{
	return guest_byte(file, off, &val, true);
}

/* ---------------------------------------------------------------- IOMMU */

/* Whether the IOMMU may map [pg0, pg1) as one entry. */
static bool iommu_eligible(struct gfile *f, uint64_t pg0, uint64_t pg1)
{
	uint64_t x;

	if (rs_first_not_in(&f->iommu_ranges, pg0, pg1, &x) ||
	    rs_first_not_in(&f->shared, pg0, pg1, &x) ||
	    rs_first_in(&f->poison, pg0, pg1, &x))
		return false;
	if (f->policy != GMEM_POLICY_4K)
		return file_is_allocated(f, pg0);
	for (uint64_t pg = pg0; pg < pg1; pg++)
		if (!file_is_allocated(f, pg))
			return false;
	return true;
}

/*
 * Make the entries of the 2M block at page @s what the rules allow, adding
 * and removing only entries that change (each stands for an IOMMU map or
 * invalidation: an unchanged entry costs nothing, as in a real table).
 */
static void iommu_rebuild_2m(struct gfile *f, uint64_t s, int maxl)
{
	uint64_t e = MIN(s + PTRS, f->nr_pages), rs_s, rs_e, from = s, base;
	int have = gmap_lookup(&f->iommu, s << PAGE_SHIFT, &base);

	if (maxl >= GMAP_2M && e == s + PTRS && iommu_eligible(f, s, e)) {
		if (have == GMAP_2M)
			return;
		gmap_remove(&f->iommu, s << PAGE_SHIFT, e << PAGE_SHIFT);
		gmap_insert(&f->iommu, s << PAGE_SHIFT, GMAP_2M);
		return;
	}
	/* 4K entries from here on: a larger one over the block goes */
	if (have > GMAP_4K)
		gmap_remove(&f->iommu, s << PAGE_SHIFT, e << PAGE_SHIFT);
	/* Only pages inside the given ranges can be mapped: walk those. */
	while (rs_next(&f->iommu_ranges, from, &rs_s, &rs_e) && rs_s < e) {
		for (uint64_t pg = MAX(rs_s, s); pg < MIN(rs_e, e); pg++) {
			bool want = iommu_eligible(f, pg, pg + 1);
			bool is = gmap_lookup(&f->iommu, pg << PAGE_SHIFT,
					      &base) == GMAP_4K;

			if (want && !is)
				gmap_insert(&f->iommu, pg << PAGE_SHIFT, GMAP_4K);
			else if (!want && is)
				gmap_remove(&f->iommu, pg << PAGE_SHIFT,
					    (pg + 1) << PAGE_SHIFT);
		}
		from = rs_e;
	}
}

/**
 * iommu_relevel() - make the IOMMU entries over [pg0, pg1) exactly what
 * the rules allow now (after a conversion, allocation, punch or poison).
 * Context: file lock.
 */
void iommu_relevel(struct gfile *f, uint64_t pg0, uint64_t pg1)
{
	int maxl = guest_level_max(f);
	uint64_t unit = maxl == GMAP_1G ? level_pages[GMAP_1G] : PTRS;
	uint64_t from = ALIGN_DOWN(pg0, unit), s, e;

	uint64_t flushes = f->iommu.flushes;
	uint64_t removed = f->iommu.removed[GMAP_4K] + f->iommu.removed[GMAP_2M] +
			   f->iommu.removed[GMAP_1G];

	if (!f->iommu_ranges.nr_ranges && !gmap_bytes(&f->iommu, GMAP_4K) &&
	    !gmap_bytes(&f->iommu, GMAP_2M) && !gmap_bytes(&f->iommu, GMAP_1G))
		return;
	/* Visit only the regions that hold given ranges. */
	while (from < pg1 && rs_next(&f->iommu_ranges, from, &s, &e) &&
	       s < pg1) {
		uint64_t r = ALIGN_DOWN(MAX(s, pg0), unit);
		uint64_t r_end = MIN(MIN(e, pg1), f->nr_pages);

		for (; r < r_end; r += unit) {
			uint64_t a = MAX(pg0, r), b = MIN(pg1, r + unit), base;

			if (maxl != GMAP_1G) {
				iommu_rebuild_2m(f, r, maxl);
				continue;
			}
			if (r + unit <= f->nr_pages &&
			    iommu_eligible(f, r, r + unit)) {
				if (gmap_lookup(&f->iommu, r << PAGE_SHIFT,
						&base) == GMAP_1G)
					continue;	/* unchanged */
				gmap_remove(&f->iommu, r << PAGE_SHIFT,
					    (r + unit) << PAGE_SHIFT);
				gmap_insert(&f->iommu, r << PAGE_SHIFT, GMAP_1G);
				continue;
			}
			if (gmap_lookup(&f->iommu, r << PAGE_SHIFT, &base) ==
			    GMAP_1G) {
				a = r;
				b = r + unit;
			}
			for (uint64_t c = ALIGN_DOWN(a, PTRS); c < b; c += PTRS)
				iommu_rebuild_2m(f, c, maxl);
		}
		from = ALIGN_DOWN(r_end - 1, unit) + unit;
	}
	/* one IOTLB invalidation for the whole re-level, as an IOMMU driver
	 * batches the unmaps of one call */
	f->iommu.flushes = flushes + (f->iommu.removed[GMAP_4K] +
				      f->iommu.removed[GMAP_2M] +
				      f->iommu.removed[GMAP_1G] != removed);
}

int gmem_iommu_map(struct gmem_file *file, uint64_t off, uint64_t len,
		   uint64_t *error_offset)
{
	struct gfile *f = to_file(file);
	uint64_t pg0, pg1, priv = UINT64_MAX, pois = UINT64_MAX, x;
	uint64_t *undo = NULL, nr_undo = 0, nr;
	int ret;

	if (!file)
		return -EINVAL;
	ret = file_enter_shared(f, handle_gen(file));
	if (ret)
		return ret;
	if (!range_ok(f, off, len)) {
		ret = -EINVAL;
		goto out;
	}
	pg0 = off >> PAGE_SHIFT;
	nr = len >> PAGE_SHIFT;
	pg1 = pg0 + nr;
	pthread_mutex_lock(&f->lock);
	if (rs_first_not_in(&f->shared, pg0, pg1, &x))
		priv = x;
	if (rs_first_in(&f->poison, pg0, pg1, &x))
		pois = x;
	if (priv != UINT64_MAX || pois != UINT64_MAX) {
		ret = priv <= pois ? -EFAULT : -EHWPOISON;
		if (error_offset)
			*error_offset = MIN(priv, pois) << PAGE_SHIFT;
		goto unlock;
	}
	ret = rs_prepare(&f->iommu_ranges);
	if (ret)
		goto unlock;
	ret = -ENOMEM;
	undo = gmem_alloc(nr * sizeof(*undo));
	if (!undo)
		goto unlock;
	for (uint64_t pg = pg0; pg < pg1; pg++) {
		struct gfolio *fo;
		bool allocated;

		if (folio_get_or_alloc(f, pg, &fo, &allocated))
			goto undo;
		if (allocated)
			undo[nr_undo++] = f->policy == GMEM_POLICY_4K ? pg :
					  pg >> f->pool->order;
		if (f->policy != GMEM_POLICY_4K)	/* skip the rest of it */
			pg = fo->huge->index + (1ULL << f->pool->order) - 1;
	}
	/* Tables for every entry the range may ever need: re-levelling
	 * after a committed change then never allocates. */
	if (gmap_reserve(&f->iommu, f->iommu.want_pt +
			 ((pg1 - 1) >> PUD_ORDER) - (pg0 >> PUD_ORDER) + 1,
			 f->iommu.want_bm +
			 ((pg1 - 1) >> PMD_ORDER) - (pg0 >> PMD_ORDER) + 1))
		goto undo;
	rs_add(&f->iommu_ranges, pg0, pg1);
	iommu_relevel(f, pg0, pg1);
	ret = 0;
	goto unlock;
undo:
	while (nr_undo--) {
		if (f->policy == GMEM_POLICY_4K)
			small_undo_alloc(f, undo[nr_undo]);
		else
			huge_undo_alloc(f, undo[nr_undo]);
	}
unlock:
	gmem_free(undo, nr * sizeof(*undo));
	pthread_mutex_unlock(&f->lock);
out:
	invalidate_unlock_shared(f);
	return ret;
}

/* ------------------------------------------------------------ validator */

struct gmap_check {
	struct gfile *f;
	bool iommu;
	bool ok;
	char *why;
	size_t len;
};

static void check_entry(void *arg, uint64_t base, int level)
{
	struct gmap_check *c = arg;
	struct gfile *f = c->f;
	uint64_t pg0 = base >> PAGE_SHIFT, pg1 = pg0 + level_pages[level];
	const char *what = NULL;

	if (!c->ok)
		return;
	if (level > guest_level_max(f))
		what = "level above the policy's largest";
	else if (!block_mappable(f, pg0, pg1))
		what = "block not uniform or poisoned";
	else if (!file_is_allocated(f, pg0))
		what = "block not allocated";
	else if (c->iommu && !iommu_eligible(f, pg0, pg1))
		what = "block not shared in the given ranges";
	else if (c->iommu && level < guest_level_max(f)) {
		uint64_t up = level_pages[level + 1];
		uint64_t s = ALIGN_DOWN(pg0, up);

		if (s + up <= f->nr_pages && iommu_eligible(f, s, s + up))
			what = "entry could be one level larger";
	}
	if (what) {
		c->ok = false;
		snprintf(c->why, c->len, "%s entry at 0x%llx level %d: %s",
			 c->iommu ? "iommu" : "guest", (unsigned long long)base,
			 level, what);
	}
}

/**
 * gmaps_ok() - every guest entry obeys the mapping rule; the IOMMU map is
 * exactly the eligible pages of its ranges at the largest level.
 */
bool gmaps_ok(struct gfile *f, char *why, size_t len)
{
	struct gmap_check c = { f, false, true, why, len };
	uint64_t s, e, from = 0, base;

	if (!gmap_ok(&f->guest, why, len) || !gmap_ok(&f->iommu, why, len))
		return false;
	gmap_for_each(&f->guest, 0, f->size, check_entry, &c);
	c.iommu = true;
	if (c.ok)
		gmap_for_each(&f->iommu, 0, f->size, check_entry, &c);
	if (!c.ok)
		return false;
	while (rs_next(&f->iommu_ranges, from, &s, &e)) {
		for (uint64_t pg = s; pg < e; pg++) {
			bool want = iommu_eligible(f, pg, pg + 1);
			bool have = gmap_lookup(&f->iommu, pg << PAGE_SHIFT,
						&base) >= 0;

			if (want != have) {
				snprintf(why, len, "iommu page 0x%llx %s",
					 (unsigned long long)(pg << PAGE_SHIFT),
					 want ? "missing" : "mapped but not eligible");
				return false;
			}
		}
		from = e;
	}
	return true;
}
