// SPDX-License-Identifier: MIT
/*
 * folio.c - folios of a file: lookup, allocation into holes, release,
 * split and merge of huge pages.
 *
 * A huge page in use by a file is a struct ghuge whose root block is
 * either intact (one folio of the pool's order) or split: a 1G block into
 * 512 2M blocks, a 2M block into 512 order-0 folios.  The descriptors of a
 * block's own folio are embedded in the block, so merging never allocates
 * (the kernel series can fail to restore HVO with ENOMEM; gmem cannot).
 *
 * Everything here runs under the file's lock; structural changes (split,
 * merge, release) also need the invalidate lock held exclusively, except
 * for allocation into a hole, which any holder of the invalidate lock may do.
 */
#include <string.h>

#include "internal.h"

static unsigned int file_order(const struct gfile *f)
{
	return f->pool->order;
}

static inline void folio_init(struct gfolio *fo, unsigned int order,
			      uint64_t index, uint8_t *data, struct ghuge *h)
{
	/* The file's own reference. */
	atomic_store_explicit(&fo->refcount, 1, memory_order_relaxed);
	atomic_store_explicit(&fo->mapcount, 0, memory_order_relaxed);
	atomic_store_explicit(&fo->pincount, 0, memory_order_relaxed);
	/* relaxed: a new folio, published later (an entry, a lookup) */
	atomic_store_explicit(&fo->longterm, 0, memory_order_relaxed);
	fo->order = (uint8_t)order;
	atomic_store_explicit(&fo->flags, 0, memory_order_relaxed);
	fo->index = index;
	fo->data = data;
	fo->huge = h;
}

int folio_level(const struct gfolio *fo)
{
	return fo->order == PUD_ORDER ? GMAP_1G :
	       fo->order == PMD_ORDER ? GMAP_2M : GMAP_4K;
}

static struct gfolio *block_folio(struct gblock *b, unsigned int order,
				  uint64_t rel)
{
	if (!b->split)
		return &b->folio;
	if (order == PUD_ORDER)
		return block_folio(&b->child[rel >> PMD_ORDER], PMD_ORDER,
				   rel & (PTRS - 1));
	return &b->small[rel];
}

/**
 * folio_lookup() - the folio holding page @pg of @f, or NULL for a hole.
 * Context: file lock held.
 */
struct gfolio *folio_lookup(struct gfile *f, uint64_t pg)
{
	if (f->policy == GMEM_POLICY_4K) {
		struct gfolio **dir = f->small[pg >> PMD_ORDER];

		return dir ? dir[pg & (PTRS - 1)] : NULL;
	}
	struct ghuge *h = f->huge[pg >> file_order(f)];

	return h ? block_folio(&h->blk, file_order(f), pg - h->index) : NULL;
}

bool file_is_allocated(struct gfile *f, uint64_t pg)
{
	if (f->policy == GMEM_POLICY_4K)
		return folio_lookup(f, pg) != NULL;
	return f->huge[pg >> file_order(f)] != NULL;
}

/* ------------------------------------------------------------- counters */

static void count_folios(struct gfile *f, int level, int64_t n)
{
	uint64_t vm;

	f->c.folios[level] += (uint64_t)n;
	/* the kernel-equivalent vmemmap, as stats.c counts it */
	vm = 4096 * (f->c.folios[GMAP_1G] + f->c.folios[GMAP_2M]) +
	     64 * f->c.folios[GMAP_4K];
	f->c.vmemmap_peak = MAX(f->c.vmemmap_peak, vm);
}

static void count_meta(struct gfile *f, struct ghuge *h, int64_t n)
{
	if (h)
		h->meta += (uint64_t)n;
	f->c.meta_bytes += (uint64_t)n;
	f->c.meta_peak = MAX(f->c.meta_peak, f->c.meta_bytes);
}

static void count_shatter(struct gfile *f)
{
	pool_count(f->pool, &f->pool->run.shatters, &f->c.shatters, 1);
}

static void count_collapse(struct gfile *f)
{
	pool_count(f->pool, &f->pool->run.collapses, &f->c.collapses, 1);
}

/* ---------------------------------------------------------------- split */

/*
 * Split an intact block into its 512 parts.  The block's folio must have no
 * reference but the file's: the parts each take one.  Does not count a
 * shatter (b-eager's 1G -> 4K counts as one).
 */
static int block_split(struct gfile *f, struct ghuge *h, struct gblock *b,
		       unsigned int order, uint64_t index, uint8_t *data)
{
	GM_BUG_ON(b->split);
	GM_BUG_ON(folio_ref_count(&b->folio) != 1 ||
		  folio_mapcount(&b->folio) != 0);
	if (order == PUD_ORDER) {
		struct gblock *c = gmem_alloc(PTRS * sizeof(*c));

		if (!c)
			return -ENOMEM;
		for (unsigned int i = 0; i < PTRS; i++)
			folio_init(&c[i].folio, PMD_ORDER,
				   index + ((uint64_t)i << PMD_ORDER),
				   data ? data + ((uint64_t)i << 21) : NULL, h);
		b->child = c;
		count_meta(f, h, PTRS * sizeof(*c));
		count_folios(f, GMAP_1G, -1);
		count_folios(f, GMAP_2M, PTRS);
	} else {
		struct gfolio *s = gmem_alloc(PTRS * sizeof(*s));

		if (!s)
			return -ENOMEM;
		for (unsigned int i = 0; i < PTRS; i++)
			folio_init(&s[i], 0, index + i,
				   data ? data + ((uint64_t)i << PAGE_SHIFT) : NULL,
				   h);
		b->small = s;
		count_meta(f, h, PTRS * sizeof(*s));
		count_folios(f, GMAP_2M, -1);
		count_folios(f, GMAP_4K, PTRS);
	}
	atomic_store_explicit(&b->folio.refcount, 0, memory_order_relaxed);
	b->split = true;
	/* b-eager splits 1G straight to 4K: its 2M pieces are never folios
	 * (one split_1g stands for the whole, as the kernel's would) */
	if (!(h->alloc_open && f->policy == GMEM_POLICY_B_EAGER &&
	      order == PMD_ORDER && file_order(f) == PUD_ORDER)) {
		count_kev(f, order == PUD_ORDER ? KEV_SPLIT_1G : KEV_SPLIT_2M, 1);
		if (h->alloc_open)
			h->alloc_split[order == PUD_ORDER]++;
	}
	return 0;
}

/*
 * Undo block_split() (@merge false: a failing call's split, uncounted) or
 * merge the parts back (@merge true).  The parts must hold nothing but the
 * file's references.
 */
static void block_unsplit(struct gfile *f, struct ghuge *h, struct gblock *b,
			  unsigned int order, bool merge)
{
	GM_BUG_ON(!b->split);
	if (merge)
		count_kev(f, order == PUD_ORDER ? KEV_MERGE_1G : KEV_MERGE_2M, 1);
	else
		count_kev(f, order == PUD_ORDER ? KEV_SPLIT_1G : KEV_SPLIT_2M, -1);
	if (order == PUD_ORDER) {
		/* fast paths may still look at the parts (rcu.c) */
		free_rcu(f, b->child, PTRS * sizeof(*b->child));
		b->child = NULL;
		count_meta(f, h, -(int64_t)(PTRS * sizeof(struct gblock)));
		count_folios(f, GMAP_2M, -PTRS);
		count_folios(f, GMAP_1G, 1);
	} else {
		free_rcu(f, b->small, PTRS * sizeof(*b->small));
		b->small = NULL;
		count_meta(f, h, -(int64_t)(PTRS * sizeof(struct gfolio)));
		count_folios(f, GMAP_4K, -PTRS);
		count_folios(f, GMAP_2M, 1);
	}
	b->split = false;
	atomic_store_explicit(&b->folio.refcount, 1, memory_order_relaxed);
}

/*
 * block_uniform() - whether pages [pg0, pg1) all have one attribute.
 */
bool block_uniform(struct gfile *f, uint64_t pg0, uint64_t pg1, bool *shared)
{
	uint64_t x;
	bool any_shared = rs_first_in(&f->shared, pg0, pg1, &x);
	bool any_private = rs_first_not_in(&f->shared, pg0, pg1, &x);

	if (shared)
		*shared = any_shared;
	return !(any_shared && any_private);
}

/* b-eager: split a fresh huge page all the way to 4K (one shatter). */
static int huge_shatter_eager(struct gfile *f, struct ghuge *h)
{
	unsigned int order = file_order(f);
	int ret = block_split(f, h, &h->blk, order, h->index, h->data);

	if (ret || order == PMD_ORDER)
		goto out;
	for (unsigned int i = 0; i < PTRS; i++) {
		struct gblock *c = &h->blk.child[i];

		ret = block_split(f, h, c, PMD_ORDER, c->folio.index,
				  c->folio.data);
		if (ret)
			goto out;
	}
out:
	if (!ret)
		count_shatter(f);
	return ret;
}

/* b-lazy: split a fresh huge page as far as its attributes need. */
static int huge_shape_lazy(struct gfile *f, struct ghuge *h)
{
	unsigned int order = file_order(f);
	uint64_t n = 1ULL << order, nr = 1;
	int ret;

	if (block_uniform(f, h->index, h->index + n, NULL))
		return 0;
	ret = block_split(f, h, &h->blk, order, h->index, h->data);
	if (ret)
		return ret;
	for (unsigned int i = 0; order == PUD_ORDER && i < PTRS; i++) {
		struct gblock *c = &h->blk.child[i];
		uint64_t s = c->folio.index;

		if (block_uniform(f, s, s + PTRS, NULL))
			continue;
		ret = block_split(f, h, c, PMD_ORDER, s, c->folio.data);
		if (ret)
			return ret;
		nr++;
	}
	while (nr--)
		count_shatter(f);
	return 0;
}

/* Free a huge page's descriptors (its folios hold no references) once no
 * fast path can look at them (free_rcu()). */
void huge_free_meta(struct gfile *f, struct ghuge *h)
{
	if (h->blk.split) {
		if (h->blk.child) {
			for (unsigned int i = 0; i < PTRS; i++)
				if (h->blk.child[i].split)
					free_rcu(f, h->blk.child[i].small,
						 PTRS * sizeof(struct gfolio));
			free_rcu(f, h->blk.child, PTRS * sizeof(struct gblock));
		} else {
			free_rcu(f, h->blk.small, PTRS * sizeof(struct gfolio));
		}
	}
	free_rcu(f, h, sizeof(*h));
}

/* Count the folios of a huge page by level (for release bookkeeping). */
static void huge_count_folios(struct ghuge *h, unsigned int order,
			      int64_t n[3])
{
	if (!h->blk.split) {
		n[order == PUD_ORDER ? GMAP_1G : GMAP_2M]++;
		return;
	}
	if (order == PMD_ORDER) {
		n[GMAP_4K] += PTRS;
		return;
	}
	for (unsigned int i = 0; i < PTRS; i++)
		n[h->blk.child[i].split ? GMAP_4K : GMAP_2M] +=
			h->blk.child[i].split ? PTRS : 1;
}

/* The shatters a huge page's allocation counted: b-eager's one, or b-lazy's
 * every split. */
static uint64_t alloc_shatters(struct gfile *f, struct ghuge *h)
{
	if (f->policy == GMEM_POLICY_B_EAGER)
		return h->alloc_split[0] || h->alloc_split[1];
	return (uint64_t)h->alloc_split[0] + h->alloc_split[1];
}

/* A failing call's allocation made these splits: they never happened. */
static void uncount_alloc_splits(struct gfile *f, struct ghuge *h)
{
	count_kev(f, KEV_SPLIT_2M, -(int64_t)h->alloc_split[0]);
	count_kev(f, KEV_SPLIT_1G, -(int64_t)h->alloc_split[1]);
}

/*
 * Allocate a huge page into slot @slot: take it from the pool (using the
 * file's reservation) and give it the folio shape the policy wants.  All
 * or nothing.
 */
static int huge_alloc(struct gfile *f, uint64_t slot)
{
	struct gpool *p = f->pool;
	unsigned int order = file_order(f);
	struct ghuge *h;
	int64_t n[3] = { 0, 0, 0 };
	int ret;

	h = gmem_alloc_cacheline(sizeof(*h));	/* its folio: pinned from any thread */
	if (!h)
		return -ENOMEM;
	h->index = slot << order;
	ret = pool_alloc_huge(p, f, h);
	if (ret) {
		gmem_free(h, sizeof(*h));
		return ret;
	}
	h->index = slot << order;
	h->data = p->base ? p->base + h->pfn * p->page_size : NULL;
	ret = hva_map(f, h);
	if (ret) {
		pool_return_huge(p, h, f, true);
		gmem_free(h, sizeof(*h));
		return ret;
	}
	h->owner = f;
	h->touched = f->merge_clock;
	folio_init(&h->blk.folio, order, h->index, h->data, h);
	f->huge[slot] = h;
	count_meta(f, h, sizeof(*h));
	count_folios(f, order == PUD_ORDER ? GMAP_1G : GMAP_2M, 1);

	h->alloc_open = true;
	if (f->policy == GMEM_POLICY_B_EAGER)
		ret = huge_shatter_eager(f, h);
	else if (policy_lazy(f))
		ret = huge_shape_lazy(f, h);
	h->alloc_open = false;
	if (ret) {
		uncount_alloc_splits(f, h);
		/* Roll back: uncount what the shape built, give the page back. */
		huge_count_folios(h, order, n);
		for (int l = 0; l < 3; l++)
			count_folios(f, l, -n[l]);
		count_meta(f, NULL, -(int64_t)h->meta);
		f->huge[slot] = NULL;
		hva_unmap(f, h);
		pool_return_huge(p, h, f, true);
		huge_free_meta(f, h);
		return ret;
	}
	/* the kernel clears a huge page when it is first faulted in */
	count_kev(f, KEV_ZEROED, (int64_t)p->page_size);
	iommu_relevel(f, h->index, h->index + (1ULL << order));
	return 0;
}

/*
 * huge_undo_alloc() - give back a huge page that a failing call allocated
 * (nothing references it but the file).
 */
void huge_undo_alloc(struct gfile *f, uint64_t slot)
{
	struct ghuge *h = f->huge[slot];
	unsigned int order = file_order(f);
	int64_t n[3] = { 0, 0, 0 };

	huge_count_folios(h, order, n);
	for (int l = 0; l < 3; l++)
		count_folios(f, l, -n[l]);
	count_meta(f, NULL, -(int64_t)h->meta);
	pool_count(f->pool, &f->pool->run.shatters, &f->c.shatters,
		   -(uint64_t)alloc_shatters(f, h));
	uncount_alloc_splits(f, h);
	count_kev(f, KEV_ZEROED, -(int64_t)f->pool->page_size);
	f->huge[slot] = NULL;
	hva_unmap(f, h);
	iommu_relevel(f, h->index, h->index + (1ULL << order));
	pool_return_huge(f->pool, h, f, true);
	huge_free_meta(f, h);
}

/* Give back a 4K folio that a failing call allocated. */
void small_undo_alloc(struct gfile *f, uint64_t pg)
{
	struct gfolio **dir = f->small[pg >> PMD_ORDER];
	struct gfolio *fo = dir[pg & (PTRS - 1)];

	GM_BUG_ON(folio_ref_count(fo) != 1);
	dir[pg & (PTRS - 1)] = NULL;
	count_folios(f, GMAP_4K, -1);
	count_meta(f, NULL, -(int64_t)sizeof(*fo));
	count_kev(f, KEV_ZEROED, -(int64_t)PAGE_SIZE);
	iommu_relevel(f, pg, pg + 1);
	arena_free(f->pool, fo->data);
	/* The directory came with this page (and so with this call): it
	 * goes too.  One that was there before stays, empty or not. */
	if (!(fo->flags & FOLIO_NEW_DIR)) {
		free_rcu(f, fo, sizeof(*fo));
		return;
	}
	free_rcu(f, fo, sizeof(*fo));
	for (unsigned int i = 0; i < PTRS; i++)
		GM_BUG_ON(dir[i]);
	free_rcu(f, dir, PTRS * sizeof(struct gfolio *));
	f->small[pg >> PMD_ORDER] = NULL;
	count_meta(f, NULL, -(int64_t)(PTRS * sizeof(struct gfolio *)));
}

static int small_alloc(struct gfile *f, uint64_t pg, struct gfolio **out)
{
	struct gfolio ***dirp = &f->small[pg >> PMD_ORDER];
	struct gfolio *fo;
	uint8_t *data = NULL;
	bool new_dir = false;
	int ret;

	if (!*dirp) {
		*dirp = gmem_alloc(PTRS * sizeof(struct gfolio *));
		if (!*dirp)
			return -ENOMEM;
		new_dir = true;
		count_meta(f, NULL, PTRS * sizeof(struct gfolio *));
	}
	fo = gmem_alloc(sizeof(*fo));
	if (!fo) {
		ret = -ENOMEM;
		goto err_dir;
	}
	ret = arena_alloc(f->pool, &data);
	if (ret)
		goto err_folio;
	folio_init(fo, 0, pg, data, NULL);
	if (new_dir)
		fo->flags |= FOLIO_NEW_DIR;
	(*dirp)[pg & (PTRS - 1)] = fo;
	count_meta(f, NULL, sizeof(*fo));
	count_folios(f, GMAP_4K, 1);
	count_kev(f, KEV_ZEROED, PAGE_SIZE);
	*out = fo;
	iommu_relevel(f, pg, pg + 1);
	return 0;

err_folio:
	gmem_free(fo, sizeof(*fo));
err_dir:
	if (new_dir) {
		gmem_free(*dirp, PTRS * sizeof(struct gfolio *));
		*dirp = NULL;
		count_meta(f, NULL, -(int64_t)(PTRS * sizeof(struct gfolio *)));
	}
	return ret;
}

/**
 * folio_get_or_alloc() - the folio of page @pg, allocating memory for a
 * hole.  No reference is taken: the caller holds the file lock.
 * @allocated: set when this call allocated (so a failing caller can undo).
 * Return: 0 or -ENOMEM.
 */
int folio_get_or_alloc(struct gfile *f, uint64_t pg, struct gfolio **out,
		       bool *allocated)
{
	struct gfolio *fo = folio_lookup(f, pg);
	int ret;

	if (allocated)
		*allocated = false;
	if (fo) {
		*out = fo;
		return 0;
	}
	if (f->policy == GMEM_POLICY_4K)
		ret = small_alloc(f, pg, out);
	else {
		ret = huge_alloc(f, pg >> file_order(f));
		if (!ret)
			*out = folio_lookup(f, pg);
	}
	if (!ret && allocated)
		*allocated = true;
	return ret;
}

/* ------------------------------------------------------------- release */

/* A detached folio's last reference went: free it, maybe its huge page. */
static void folio_free(struct gfile *f, struct gfolio *fo)
{
	struct gpool *p = f->pool;

	GM_BUG_ON(!(fo->flags & FOLIO_DETACHED));
	if (!fo->huge) {
		arena_free(p, fo->data);
		pthread_mutex_lock(&p->lock);
		p->detached_meta -= sizeof(*fo);
		pthread_mutex_unlock(&p->lock);
		free_rcu(f, fo, sizeof(*fo));
		return;
	}
	struct ghuge *h = fo->huge;

	GM_BUG_ON(h->live == 0);
	if (--h->live == 0) {
		pool_return_huge(p, h, h->owner, false);
		huge_free_meta(f, h);
	}
}

/**
 * folio_put() - drop a reference; a detached folio is freed on its last.
 * Context: file lock held.
 */
void folio_put(struct gfile *f, struct gfolio *fo)
{
	/* acq_rel: the freeing path must see every earlier use complete */
	int old = atomic_fetch_sub_explicit(&fo->refcount, 1,
					    memory_order_acq_rel);

	GM_BUG_ON(old <= 0);
	if (old == 1)
		folio_free(f, fo);
}

atomic_int folio_ref_limit = FOLIO_REF_LIMIT;

void gmem_test_set_ref_limit(int limit)
{
	/* relaxed: set before the threads that pin start */
	atomic_store_explicit(&folio_ref_limit,
			      limit > 0 ? limit : FOLIO_REF_LIMIT,
			      memory_order_relaxed);
}

/**
 * folio_pin_room() - whether @nr more pinned pages of @fo, and @ptes new
 * host entries on it, keep its refcount and pincount within the limit.
 * Context: file lock (the counts change only under it).
 */
bool folio_pin_room(struct gfolio *fo, uint64_t nr, uint64_t ptes)
{
	int64_t limit = atomic_load_explicit(&folio_ref_limit,
					     memory_order_relaxed);
	int64_t refs = fo->order ? (int64_t)nr :
				   (int64_t)nr * GUP_PIN_COUNTING_BIAS;
	int64_t pins = atomic_load_explicit(&fo->pincount,
					    memory_order_relaxed);

	return folio_ref_count(fo) + refs + (int64_t)ptes <= limit &&
	       pins + (fo->order ? (int64_t)nr : 0) <= limit;
}

void folio_pin(struct gfolio *fo, uint32_t nr, bool longterm)
{
	if (fo->order == 0) {
		atomic_fetch_add_explicit(&fo->refcount,
					  (int)nr * GUP_PIN_COUNTING_BIAS,
					  memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&fo->refcount, (int)nr,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&fo->pincount, (int)nr,
					  memory_order_relaxed);
	}
	if (longterm)
		atomic_fetch_add_explicit(&fo->longterm, (int)nr,
					  memory_order_relaxed);
}

void folio_unpin(struct gfile *f, struct gfolio *fo, uint32_t nr,
		 bool longterm)
{
	int drop = fo->order == 0 ? (int)nr * GUP_PIN_COUNTING_BIAS : (int)nr;
	int old;

	if (longterm)
		atomic_fetch_sub_explicit(&fo->longterm, (int)nr,
					  memory_order_relaxed);
	/* A fault refused for want of room: a view marked the page to give
	 * SIGBUS; now there is room, let its next access trap again. */
	if ((fo->flags & FOLIO_REFS_FULL) && !(fo->flags & FOLIO_DETACHED)) {
		fo->flags &= (uint8_t)~FOLIO_REFS_FULL;
		views_unmark(f, fo->index, fo->index + folio_nr_pages(fo));
	}
	if (fo->order)
		atomic_fetch_sub_explicit(&fo->pincount, (int)nr,
					  memory_order_relaxed);
	/* acq_rel: as folio_put() */
	old = atomic_fetch_sub_explicit(&fo->refcount, drop,
					memory_order_acq_rel);
	GM_BUG_ON(old < drop);
	if (old == drop)
		folio_free(f, fo);
}

/*
 * folio_has_unexpected_refs() - the conversion safety test.  Takes a
 * lookup reference as the kernel's caller would, so the safe value is the
 * file's reference plus ours; any host mapping is unexpected too.
 */
bool folio_has_unexpected_refs(struct gfolio *fo)
{
	bool bad;

	folio_get(fo);
	bad = folio_mapcount(fo) != 0 || folio_ref_count(fo) != 1 + 1;
	atomic_fetch_sub_explicit(&fo->refcount, 1, memory_order_relaxed);
	return bad;
}

/* Drop the file's reference on one folio of a leaving huge page. */
static void detach_one(struct ghuge *h, struct gfolio *fo)
{
	fo->flags |= FOLIO_DETACHED;
	/* acq_rel: pairs with the unpin that later drops the last ref */
	if (atomic_fetch_sub_explicit(&fo->refcount, 1,
				      memory_order_acq_rel) > 1)
		h->live++;
}

/*
 * A split huge page goes back to the pool whole: the kernel rebuilds the
 * huge folio and re-optimises its vmemmap (hugetlb frees only whole
 * pages), a merge of each split level.
 */
static void count_return_merges(struct gfile *f, struct ghuge *h)
{
	if (!h->blk.split)
		return;
	if (file_order(f) == PMD_ORDER) {
		count_kev(f, KEV_MERGE_2M, 1);
		return;
	}
	count_kev(f, KEV_MERGE_1G, 1);
	if (f->policy == GMEM_POLICY_B_EAGER)
		return;		/* its 2M pieces were never folios */
	for (unsigned int i = 0; i < PTRS; i++)
		if (h->blk.child[i].split)
			count_kev(f, KEV_MERGE_2M, 1);
}

/**
 * file_release_huge() - a whole huge page leaves the file (punch, close).
 * Zaps host, guest and IOMMU entries; returns the page to the pool, or
 * leaves it detached until its pinned pieces are unpinned.
 * Context: invalidate lock exclusive, file lock.
 */
void file_release_huge(struct gfile *f, uint64_t slot)
{
	struct ghuge *h = f->huge[slot];
	unsigned int order = file_order(f);
	uint64_t n = 1ULL << order, x;
	int64_t cnt[3] = { 0, 0, 0 };

	if (!h)
		return;
	assert_invalidate_exclusive(f);
	zap_range(f, h->index, h->index + n);
	gmap_remove(&f->guest, h->index << PAGE_SHIFT,
		    (h->index + n) << PAGE_SHIFT);
	h->poisoned = rs_first_in(&f->poison, h->index, h->index + n, &x);
	if (f->pinmap.used)
		pinmap_forget(&f->pinmap, h->index, h->index + n);
	f->huge[slot] = NULL;
	hva_unmap(f, h);
	iommu_relevel(f, h->index, h->index + n);

	huge_count_folios(h, order, cnt);
	for (int l = 0; l < 3; l++)
		count_folios(f, l, -cnt[l]);
	count_meta(f, NULL, -(int64_t)h->meta);
	count_return_merges(f, h);

	h->live = 0;
	if (!h->blk.split) {
		detach_one(h, &h->blk.folio);
	} else if (order == PMD_ORDER) {
		for (unsigned int i = 0; i < PTRS; i++)
			detach_one(h, &h->blk.small[i]);
	} else {
		for (unsigned int i = 0; i < PTRS; i++) {
			struct gblock *c = &h->blk.child[i];

			if (!c->split) {
				detach_one(h, &c->folio);
				continue;
			}
			for (unsigned int j = 0; j < PTRS; j++)
				detach_one(h, &c->small[j]);
		}
	}
	if (h->live == 0) {
		pool_return_huge(f->pool, h, f, false);
		huge_free_meta(f, h);
	} else {
		pool_detach(f->pool, h);
	}
}

/**
 * file_release_small() - a 4K folio of a policy-4k file leaves the file.
 * Context: invalidate lock exclusive, file lock.
 */
void file_release_small(struct gfile *f, uint64_t pg)
{
	struct gfolio **dir = f->small[pg >> PMD_ORDER];
	struct gfolio *fo = dir ? dir[pg & (PTRS - 1)] : NULL;

	if (!fo)
		return;
	zap_range(f, pg, pg + 1);
	gmap_remove(&f->guest, pg << PAGE_SHIFT, (pg + 1) << PAGE_SHIFT);
	dir[pg & (PTRS - 1)] = NULL;
	if (folio_ref_count(fo) > 1 && f->pinmap.used)
		pinmap_forget(&f->pinmap, pg, pg + 1);
	iommu_relevel(f, pg, pg + 1);
	count_folios(f, GMAP_4K, -1);
	count_meta(f, NULL, -(int64_t)sizeof(*fo));
	fo->flags |= FOLIO_DETACHED;
	pthread_mutex_lock(&f->pool->lock);
	f->pool->detached_meta += sizeof(*fo);
	pthread_mutex_unlock(&f->pool->lock);
	folio_put(f, fo);
}

/** file_free_folios() - release everything (close). */
void file_free_folios(struct gfile *f)
{
	if (f->policy == GMEM_POLICY_4K) {
		for (uint64_t d = 0; d < f->nr_small_dirs; d++) {
			if (!f->small[d])
				continue;
			for (unsigned int i = 0; i < PTRS; i++)
				file_release_small(f, (d << PMD_ORDER) + i);
			free_rcu(f, f->small[d],
				 PTRS * sizeof(struct gfolio *));
			f->small[d] = NULL;
			count_meta(f, NULL,
				   -(int64_t)(PTRS * sizeof(struct gfolio *)));
		}
		return;
	}
	for (uint64_t s = 0; s < f->nr_huge; s++)
		file_release_huge(f, s);
}

/* ----------------------------------------------- split for conversion */

/* Whether converting [a, b) to @to changes any page there. */
static bool range_changes(struct gfile *f, uint64_t a, uint64_t b,
			  enum gmem_attr to)
{
	uint64_t x;

	if (to == GMEM_SHARED)
		return rs_first_not_in(&f->shared, a, b, &x);
	return rs_first_in(&f->shared, a, b, &x);
}

static int block_split_for_pin(struct gfile *f, struct ghuge *h,
			       struct gblock *b, unsigned int order,
			       uint64_t index, uint8_t *data,
			       struct split_list *sl);

/*
 * Split the intact blocks that [pg0, pg1) cuts (covers in part): at most
 * two huge pages, and in each at most two 2M blocks, at the range's ends.
 * For a conversion (@to set), only where pages of the cut part change,
 * with block_split(); for a long-term pin (@to NULL), every cut block,
 * with block_split_for_pin().  All or nothing: a failure undoes the
 * splits made.  Counts one shatter per split on success.
 */
static int split_cut_blocks(struct gfile *f, uint64_t pg0, uint64_t pg1,
			    const enum gmem_attr *to, struct split_list *sl)
{
	unsigned int order = file_order(f);
	uint64_t n = 1ULL << order;
	uint64_t ends[2] = { pg0, pg1 - 1 };
	int ret = 0;

	sl->nr = 0;
	sl->nr_zap = 0;
	for (int e = 0; e < 2; e++) {
		uint64_t slot = ends[e] >> order;
		struct ghuge *h = f->huge[slot];
		uint64_t hs = slot << order, he = hs + n;
		uint64_t a = MAX(pg0, hs), b = MIN(pg1, he);

		if (e == 1 && (pg0 >> order) == slot)
			break;		/* one huge page: done with the first */
		if (!h || (a == hs && b == he) ||
		    (to && !range_changes(f, a, b, *to)))
			continue;
		if (!h->blk.split) {
			ret = to ? block_split(f, h, &h->blk, order, hs, h->data) :
				   block_split_for_pin(f, h, &h->blk, order, hs,
						       h->data, sl);
			if (ret)
				goto undo;
			sl->e[sl->nr++] = (struct split_undo){ h, &h->blk, order };
		}
		if (order == PMD_ORDER)
			continue;
		uint64_t cends[2] = { a, b - 1 };

		for (int ce = 0; ce < 2; ce++) {
			uint64_t ci = (cends[ce] - hs) >> PMD_ORDER;
			struct gblock *c = &h->blk.child[ci];
			uint64_t cs = hs + (ci << PMD_ORDER), cend = cs + PTRS;
			uint64_t ca = MAX(a, cs), cb = MIN(b, cend);

			if (ce == 1 && ((cends[0] - hs) >> PMD_ORDER) == ci)
				break;
			if (c->split || (ca == cs && cb == cend) ||
			    (to && !range_changes(f, ca, cb, *to)))
				continue;
			ret = to ? block_split(f, h, c, PMD_ORDER, cs,
					       c->folio.data) :
				   block_split_for_pin(f, h, c, PMD_ORDER, cs,
						       c->folio.data, sl);
			if (ret)
				goto undo;
			sl->e[sl->nr++] = (struct split_undo){ h, c, PMD_ORDER };
		}
	}
	for (unsigned int i = 0; i < sl->nr; i++)
		count_shatter(f);
	return 0;

undo:
	while (sl->nr--)
		block_unsplit(f, sl->e[sl->nr].h, sl->e[sl->nr].b,
			      sl->e[sl->nr].order, false);
	sl->nr = 0;
	return ret;
}

/*
 * Split the intact blocks that [pg0, pg1) covers in part and whose pages
 * change, so that every intact folio keeps one attribute (b-lazy,
 * b-adaptive).  Blocks wholly inside the range stay intact.  All or
 * nothing.
 */
int file_split_for(struct gfile *f, uint64_t pg0, uint64_t pg1,
		   enum gmem_attr to)
{
	struct split_list sl;

	if (!policy_lazy(f))
		return 0;
	return split_cut_blocks(f, pg0, pg1, &to, &sl);
}

/*
 * Split @b for a long-term pin, as the kernel's split would: the folio may
 * hold its host entries (zapped first: a split unmaps) but no other
 * reference; a pin on it gives -EAGAIN, checked before anything changes.
 */
static int block_split_for_pin(struct gfile *f, struct ghuge *h,
			       struct gblock *b, unsigned int order,
			       uint64_t index, uint8_t *data,
			       struct split_list *sl)
{
	struct gfolio *fo = &b->folio;

	if (folio_ref_count(fo) - folio_mapcount(fo) != 1)
		return -EAGAIN;
	if (folio_mapcount(fo)) {
		zap_range(f, fo->index, fo->index + folio_nr_pages(fo));
		sl->zap_pg[sl->nr_zap] = fo->index;
		sl->zap_nr[sl->nr_zap++] = folio_nr_pages(fo);
	}
	/* a zap removes every entry and the references they held, so only
	 * the file's is left (block_split() asserts it) */
	return block_split(f, h, b, order, index, data);
}

/**
 * file_split_for_pin() - b-adaptive: before a long-term pin of [pg0, pg1),
 * split every intact huge folio that the range covers only in part (the
 * huge page 1G -> 2M, then each 2M block cut by an end of the range
 * -> 4K), so that no long-term pin holds part of an intact folio and a
 * later conversion of a neighbour never meets one (DESIGN: a folio can be
 * split only without unexpected references, so it must happen now).
 * The range's memory is allocated.  All or nothing, but for host entries
 * zapped on the way (they refault; @sl lists them).
 * Context: invalidate lock exclusive, file lock.
 * Return: 0; -EAGAIN (a folio to split holds another pin); -ENOMEM.
 */
int file_split_for_pin(struct gfile *f, uint64_t pg0, uint64_t pg1,
		       struct split_list *sl)
{
	int ret;

	assert_invalidate_exclusive(f);
	sl->nr = 0;
	sl->nr_zap = 0;
	if (f->policy != GMEM_POLICY_B_ADAPTIVE)
		return 0;
	/* one unmap of the folios it zaps: one flush per mm */
	flush_batch_begin(f);
	ret = split_cut_blocks(f, pg0, pg1, NULL, sl);
	flush_batch_end(f);
	return ret;
}

/**
 * file_unsplit() - undo the splits of a call that fails after making them
 * (their parts hold nothing but the file's references).
 * Context: invalidate lock exclusive, file lock.
 */
void file_unsplit(struct gfile *f, struct split_list *sl)
{
	pool_count(f->pool, &f->pool->run.shatters, &f->c.shatters,
		   -(uint64_t)sl->nr);
	while (sl->nr--)
		block_unsplit(f, sl->e[sl->nr].h, sl->e[sl->nr].b,
			      sl->e[sl->nr].order, false);
	sl->nr = 0;
}

/* ---------------------------------------------------------------- merge */

/* Whether every folio of a split 2M block holds only the file's ref. */
static bool small_quiet(struct gfolio *s)
{
	for (unsigned int i = 0; i < PTRS; i++)
		if (folio_ref_count(&s[i]) != 1 || folio_mapcount(&s[i]) != 0)
			return false;
	return true;
}

static bool block_mergeable(struct gfile *f, uint64_t s, uint64_t n)
{
	uint64_t x;

	return block_uniform(f, s, s + n, NULL) &&
	       !rs_first_in(&f->poison, s, s + n, &x);
}

/* Merge a split 2M block back into one folio if it may. */
static bool try_merge_2m(struct gfile *f, struct ghuge *h, struct gblock *b,
			 uint64_t s)
{
	if (!b->split || !b->small || !block_mergeable(f, s, PTRS) ||
	    !small_quiet(b->small))
		return false;
	block_unsplit(f, h, b, PMD_ORDER, true);
	count_collapse(f);
	gmap_remove_smaller(&f->guest, s << PAGE_SHIFT, GMAP_2M);
	return true;
}

static bool try_merge_1g(struct gfile *f, struct ghuge *h)
{
	uint64_t s = h->index;

	if (!h->blk.split || !block_mergeable(f, s, 1ULL << PUD_ORDER))
		return false;
	for (unsigned int i = 0; i < PTRS; i++) {
		struct gblock *c = &h->blk.child[i];

		if (c->split || folio_ref_count(&c->folio) != 1 ||
		    folio_mapcount(&c->folio) != 0)
			return false;
	}
	block_unsplit(f, h, &h->blk, PUD_ORDER, true);
	count_collapse(f);
	gmap_remove_smaller(&f->guest, s << PAGE_SHIFT, GMAP_1G);
	return true;
}

/* The most a b-adaptive huge page's merge wait doubles: 2^16 periods. */
#define MERGE_BACKOFF_MAX 16

/* b-adaptive with a delay: merges wait for their huge page's age. */
static bool merges_wait(const struct gfile *f)
{
	return f->policy == GMEM_POLICY_B_ADAPTIVE && f->merge_delay;
}

/**
 * file_note_merge() - remember that blocks over [pg0, pg1) may merge.
 * Under b-adaptive this is also a touch: the huge pages over the range
 * start their wait again.
 * Context: file lock.  A range that cannot be recorded (no memory for a
 * node) is not lost: the file is marked to look at every block instead,
 * which needs no memory.
 */
static void __file_note_merge(struct gfile *f, uint64_t pg0, uint64_t pg1,
			      bool touch)
{
	unsigned int order = file_order(f);

	if (!policy_lazy(f) || f->closed)
		return;
	/* waiting notes cover whole huge pages: a page ages as one, and the
	 * notes stay few however scattered the touches */
	if (merges_wait(f)) {
		pg0 = ALIGN_DOWN(pg0, 1ULL << order);
		pg1 = ALIGN_DOWN(pg1 - 1, 1ULL << order) + (1ULL << order);
	}
	if (rs_add(&f->merge_todo, pg0, pg1))
		f->merge_all = true;
	if (merges_wait(f)) {
		for (uint64_t slot = pg0 >> order;
		     touch && slot <= (pg1 - 1) >> order; slot++)
			if (f->huge[slot])
				f->huge[slot]->touched = f->merge_clock;
		return;		/* merges wait for a period's end */
	}
	/* release: pairs with the acquire in the unlock paths */
	atomic_store_explicit(&f->merge_pending, true, memory_order_release);
}

void file_note_merge(struct gfile *f, uint64_t pg0, uint64_t pg1)
{
	__file_note_merge(f, pg0, pg1, true);
}

/**
 * file_note_merge_quiet() - as file_note_merge(), but not a touch: a
 * failing long-term pin's zaps may let a block merge (a host entry kept
 * it split), and the pin did not use the memory.  Context: file lock.
 */
void file_note_merge_quiet(struct gfile *f, uint64_t pg0, uint64_t pg1)
{
	__file_note_merge(f, pg0, pg1, false);
}

/**
 * file_merge_tick() - b-adaptive: a conversion that found pages to change
 * ends; every merge_delay of them a merge period ends.  Context: file lock.
 */
void file_merge_tick(struct gfile *f)
{
	if (!merges_wait(f))
		return;
	if (++f->merge_clock % f->merge_delay == 0)
		f->merge_now = true;
}

/*
 * Merge what may merge in the huge pages over [s, e).  Return: whether
 * anything merged in the last huge page looked at (callers pass one).
 * Context: as below.
 */
static bool run_merges_in(struct gfile *f, uint64_t s, uint64_t e)
{
	unsigned int order = file_order(f);
	bool merged = false;

	for (uint64_t slot = s >> order; slot <= (e - 1) >> order; slot++) {
		struct ghuge *h = f->huge[slot];

		merged = false;
		if (!h || !h->blk.split)
			continue;
		if (order == PMD_ORDER) {
			merged = try_merge_2m(f, h, &h->blk, h->index);
			continue;
		}
		uint64_t a = MAX(s, h->index), b = MIN(e, h->index +
					(1ULL << PUD_ORDER));

		for (uint64_t ci = (a - h->index) >> PMD_ORDER;
		     ci <= (b - 1 - h->index) >> PMD_ORDER; ci++)
			merged |= try_merge_2m(f, h, &h->blk.child[ci],
					       h->index + (ci << PMD_ORDER));
		merged |= try_merge_1g(f, h);
	}
	return merged;
}

/* The longest wait: ages are 32-bit, so a longer one would never end. */
#define MERGE_WAIT_MAX (1ULL << 31)

/* Whether b-adaptive huge page @h has waited long enough to merge. */
static bool huge_aged(const struct gfile *f, const struct ghuge *h)
{
	/* unsigned: the 32-bit clock's wrap gives the right age */
	uint64_t age = (uint32_t)(f->merge_clock - h->touched);

	return age >= MIN((uint64_t)f->merge_delay << h->backoff,
			  MERGE_WAIT_MAX);
}

/*
 * A b-adaptive period ends: in each noted range, merge in the huge pages
 * that have aged (each merge there doubles their next wait); keep the
 * others' notes for a later period.  A note that cannot be kept marks the
 * file to look at every block next time.
 */
static void run_merges_aged(struct gfile *f, uint64_t s, uint64_t e,
			    struct rangeset *keep)
{
	unsigned int order = file_order(f);

	for (uint64_t slot = s >> order; slot <= (e - 1) >> order; slot++) {
		struct ghuge *h = f->huge[slot];
		uint64_t hs = slot << order;
		uint64_t a = MAX(s, hs), b = MIN(e, hs + (1ULL << order));

		if (!h || !h->blk.split)
			continue;
		if (!huge_aged(f, h)) {
			if (rs_add(keep, a, b))
				f->merge_all = true;
			continue;
		}
		if (run_merges_in(f, a, b) && h->backoff < MERGE_BACKOFF_MAX)
			h->backoff++;
	}
}

/**
 * file_run_merges() - merge the noted blocks that may merge (4K -> 2M
 * first, then 2M -> 1G): uniform, no poisoned page, no host entry, no
 * pin.  b-lazy (and b-adaptive without a delay): every noted block, now.
 * b-adaptive: at a period's end, the noted blocks of huge pages that
 * nothing touched for merge_delay << backoff conversions.
 * gmem_file_compact(): every block of the file, now.
 * Context: invalidate lock exclusive, file lock.
 */
void file_run_merges(struct gfile *f)
{
	uint64_t s, e, from = 0;
	struct rangeset keep;
	bool all = f->merge_all;

	assert_invalidate_exclusive(f);
	atomic_store_explicit(&f->merge_pending, false, memory_order_relaxed);
	if (!f->closed && policy_lazy(f) && merges_wait(f) && !f->merge_now &&
	    !f->merge_compact)
		return;
	rs_init(&keep);
	f->merge_all = false;
	if (f->closed || !policy_lazy(f)) {
		/* nothing merges */
	} else if (f->merge_compact || (all && !merges_wait(f))) {
		run_merges_in(f, 0, f->nr_pages);
	} else if (!merges_wait(f)) {
		while (rs_next(&f->merge_todo, from, &s, &e)) {
			from = e;
			run_merges_in(f, s, e);
		}
	} else if (all) {
		run_merges_aged(f, 0, f->nr_pages, &keep);
	} else {
		while (rs_next(&f->merge_todo, from, &s, &e)) {
			from = e;
			run_merges_aged(f, s, e, &keep);
		}
	}
	rs_destroy(&f->merge_todo);
	f->merge_todo = keep;
	f->merge_now = false;
	f->merge_compact = false;
}

/* ----------------------------------------------------------- validator */

static bool folio_ok(struct gfile *f, struct gfolio *fo, char *why,
		     size_t len)
{
	int ref = folio_ref_count(fo), map = folio_mapcount(fo);
	int pins = atomic_load_explicit(&fo->pincount, memory_order_relaxed);

	if (ref < 1 + map + pins || map < 0 || pins < 0 || fo->longterm < 0 ||
	    (fo->order == 0 && pins != 0) || (fo->flags & FOLIO_DETACHED)) {
		snprintf(why, len,
			 "folio at page 0x%llx order %u: refcount %d mapcount %d pincount %d flags %u",
			 (unsigned long long)fo->index, fo->order, ref, map, pins,
			 fo->flags);
		return false;
	}
	if (policy_lazy(f) && fo->order) {
		bool sh;

		if (!block_uniform(f, fo->index, fo->index + folio_nr_pages(fo),
				   &sh)) {
			snprintf(why, len,
				 "intact folio at 0x%llx has mixed attributes",
				 (unsigned long long)(fo->index << PAGE_SHIFT));
			return false;
		}
	}
	return true;
}

/**
 * folio_structure_ok() - every folio well formed; the policy's shape holds
 * (a: intact; b-eager: all 4K; b-lazy: intact folios uniform); the folio
 * counters match.
 */
bool folio_structure_ok(struct gfile *f, char *why, size_t len)
{
	unsigned int order = file_order(f);
	uint64_t cnt[3] = { 0, 0, 0 };

	if (f->policy == GMEM_POLICY_4K) {
		for (uint64_t d = 0; d < f->nr_small_dirs; d++) {
			if (!f->small[d])
				continue;
			for (unsigned int i = 0; i < PTRS; i++) {
				struct gfolio *fo = f->small[d][i];

				if (!fo)
					continue;
				cnt[GMAP_4K]++;
				if (fo->index != (d << PMD_ORDER) + i ||
				    !folio_ok(f, fo, why, len))
					return false;
			}
		}
		goto counters;
	}
	for (uint64_t s = 0; s < f->nr_huge; s++) {
		struct ghuge *h = f->huge[s];

		if (!h)
			continue;
		if (h->index != s << order) {
			snprintf(why, len, "huge page index mismatch");
			return false;
		}
		if (f->policy == GMEM_POLICY_A && h->blk.split) {
			snprintf(why, len, "policy a huge page split");
			return false;
		}
		if (!h->blk.split) {
			cnt[order == PUD_ORDER ? GMAP_1G : GMAP_2M]++;
			if (!folio_ok(f, &h->blk.folio, why, len))
				return false;
			if (f->policy == GMEM_POLICY_B_EAGER) {
				snprintf(why, len, "b-eager huge page intact");
				return false;
			}
			continue;
		}
		if (order == PMD_ORDER) {
			for (unsigned int i = 0; i < PTRS; i++)
				if (!folio_ok(f, &h->blk.small[i], why, len))
					return false;
			cnt[GMAP_4K] += PTRS;
			continue;
		}
		for (unsigned int i = 0; i < PTRS; i++) {
			struct gblock *c = &h->blk.child[i];

			if (!c->split) {
				cnt[GMAP_2M]++;
				if (!folio_ok(f, &c->folio, why, len))
					return false;
				if (f->policy == GMEM_POLICY_B_EAGER) {
					snprintf(why, len, "b-eager 2M intact");
					return false;
				}
				continue;
			}
			cnt[GMAP_4K] += PTRS;
			for (unsigned int j = 0; j < PTRS; j++)
				if (!folio_ok(f, &c->small[j], why, len))
					return false;
		}
	}
counters:
	for (int l = 0; l < 3; l++) {
		if (cnt[l] != f->c.folios[l]) {
			snprintf(why, len,
				 "folio counter level %d: counted %llu, kept %llu",
				 l, (unsigned long long)cnt[l],
				 (unsigned long long)f->c.folios[l]);
			return false;
		}
	}
	return true;
}
