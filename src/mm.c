// SPDX-License-Identifier: MIT
/*
 * mm.c - host address spaces: mappings of files, their 4K page tables,
 * the fault path, and zapping (unmap_mapping_pages()).
 *
 * A mapping (struct gvma) sits on two lists: its mm's (under mm->lock) and
 * its file's (under the file lock).  Its page table is the file's to change,
 * under the file lock.  A mapping goes only when its file closes, with the
 * invalidate lock held exclusively, so a fault holding the lock shared may
 * use the mapping it found.
 */
#include <string.h>

#include "internal.h"

/**
 * vma_find_locked() - @mm's mapping of @f, or NULL, from the file's side: a
 * mapping is on its file's list and its mm's together (both locks held to
 * change them).
 * Context: file lock.
 */
struct gvma *vma_find_locked(struct gfile *f, struct gmm *mm)
{
	struct gvma *v;

	for (v = f->vmas; v; v = v->file_next)
		if (v->mm == mm)
			break;
	return v;
}

/**
 * vma_find_rcu() - as vma_find_locked(), with no lock: a mapping is freed
 * only after a grace period (free_rcu()).  Context: gmem_rcu_read_lock().
 */
struct gvma *vma_find_rcu(struct gfile *f, struct gmm *mm)
{
	struct gvma *v;

	/* acquire: a mapping is published after it is initialised */
	for (v = atomic_load_explicit(&f->vmas, memory_order_acquire); v;
	     v = atomic_load_explicit(&v->file_next, memory_order_acquire))
		if (v->mm == mm)
			break;
	return v;
}

/* ---------------------------------------------------------- page table */

/* Allocate the tables that PTEs for [pg0, pg1) need.  Tables left behind
 * by a failing caller are empty and harmless. */
int pt_prepare(struct gvma *v, uint64_t pg0, uint64_t pg1)
{
	for (uint64_t pg = pg0; pg < pg1;) {
		_Atomic(struct gpt_pmd *) *pmdp = &v->pt.dir[pg >> PUD_ORDER];
		struct gpt_pmd *pmd = atomic_load_explicit(pmdp,
							   memory_order_relaxed);
		struct gpt_pte *pte;

		if (!pmd) {
			pmd = gmem_alloc(sizeof(*pmd));
			if (!pmd)
				return -ENOMEM;
			/* release: published zeroed, to lock-free walkers */
			atomic_store_explicit(pmdp, pmd, memory_order_release);
		}
		_Atomic(struct gpt_pte *) *ptep =
			&pmd->t[(pg >> PMD_ORDER) & (PTRS - 1)];
		pte = atomic_load_explicit(ptep, memory_order_relaxed);
		if (!pte) {
			pte = gmem_alloc(sizeof(*pte));
			if (!pte)
				return -ENOMEM;
			/* release: as above */
			atomic_store_explicit(ptep, pte, memory_order_release);
		}
		pg = ALIGN_DOWN(pg, PTRS) + PTRS;
	}
	return 0;
}

/* The entry for page @pg, or NULL without a table.  Tables are freed only
 * with their mapping, after a grace period: lock-free walkers may use it. */
static _Atomic(struct gfolio *) *pt_slot(struct gvma *v, uint64_t pg)
{
	/* acquire: tables are published zeroed (pt_prepare()) */
	struct gpt_pmd *pmd = atomic_load_explicit(&v->pt.dir[pg >> PUD_ORDER],
						   memory_order_acquire);
	struct gpt_pte *pte;

	if (!pmd)
		return NULL;
	pte = atomic_load_explicit(&pmd->t[(pg >> PMD_ORDER) & (PTRS - 1)],
				   memory_order_acquire);
	return pte ? &pte->pte[pg & (PTRS - 1)] : NULL;
}

/**
 * pt_lookup_rcu() - the folio that page @pg maps through @v, or NULL.
 * Context: gmem_rcu_read_lock() or the file lock.
 */
struct gfolio *pt_lookup_rcu(struct gvma *v, uint64_t pg)
{
	_Atomic(struct gfolio *) *s;

	/* the table's own bound (fixed for the mapping's life): the fast
	 * paths read none of the file's plain fields, which a create that
	 * reuses a closed file's struct may be writing */
	if ((pg >> PUD_ORDER) >= v->pt.nr_gb)
		return NULL;
	s = pt_slot(v, pg);

	/* acquire: an entry is installed after its folio is initialised */
	return s ? atomic_load_explicit(s, memory_order_acquire) : NULL;
}

bool pt_present(struct gvma *v, uint64_t pg)
{
	return pt_lookup_rcu(v, pg) != NULL;
}

/** pt_install() - map page @pg of folio @fo: one reference, one mapcount. */
void pt_install(struct gvma *v, uint64_t pg, struct gfolio *fo)
{
	struct gpt_pmd *pmd = v->pt.dir[pg >> PUD_ORDER];
	struct gpt_pte *pte = pmd->t[(pg >> PMD_ORDER) & (PTRS - 1)];

	GM_BUG_ON(pte->pte[pg & (PTRS - 1)]);
	folio_get(fo);
	atomic_fetch_add_explicit(&fo->mapcount, 1, memory_order_relaxed);
	/* release: the entry's reference is counted before the entry shows */
	atomic_store_explicit(&pte->pte[pg & (PTRS - 1)], fo,
			      memory_order_release);
	pte->nr++;
	pmd->nr++;
	v->pt.nr_ptes++;
	v->file->c.host_ptes++;
	count_kev(v->file, KEV_HOST_FAULTS, 1);
}

/*
 * Zap one mapping's entries in [pg0, pg1); returns how many went.  A real
 * view of the mapping loses the same pages' PTEs (and its markers).
 */
static uint64_t vma_zap(struct gfile *f, struct gvma *v, uint64_t pg0,
			uint64_t pg1)
{
	uint64_t n = 0, lo = UINT64_MAX, hi = 0;

	for (uint64_t pg = pg0; pg < pg1;) {
		struct gpt_pmd *pmd = v->pt.dir[pg >> PUD_ORDER];
		uint64_t gb_end = ALIGN_DOWN(pg, 1ULL << PUD_ORDER) +
				  (1ULL << PUD_ORDER);

		if (!pmd || !pmd->nr) {
			pg = gb_end;
			continue;
		}
		struct gpt_pte *pte = pmd->t[(pg >> PMD_ORDER) & (PTRS - 1)];
		uint64_t end = MIN(pg1, ALIGN_DOWN(pg, PTRS) + PTRS);

		if (!pte || !pte->nr) {
			pg = end;
			continue;
		}
		for (; pg < end; pg++) {
			_Atomic(struct gfolio *) *s = &pte->pte[pg & (PTRS - 1)];
			/* relaxed: only the file lock's holder writes entries;
			 * fast paths re-check the file's seq after reading */
			struct gfolio *fo = atomic_load_explicit(
				s, memory_order_relaxed);

			if (!fo)
				continue;
			atomic_store_explicit(s, NULL, memory_order_relaxed);
			pte->nr--;
			pmd->nr--;
			atomic_fetch_sub_explicit(&fo->mapcount, 1,
						  memory_order_relaxed);
			folio_put(f, fo);
			lo = MIN(lo, pg);
			hi = pg + 1;
			n++;
		}
	}
	v->pt.nr_ptes -= n;
	if (v->view)
		view_zap(v->view, pg0, pg1, lo, hi);
	return n;
}

/**
 * zap_range() - remove every host page-table entry on pages [pg0, pg1) of
 * @f from every mm (unmap_mapping_pages()).  Returns the entries removed.
 * Context: invalidate lock exclusive, file lock.
 */
uint64_t zap_range(struct gfile *f, uint64_t pg0, uint64_t pg1)
{
	uint64_t n = 0;

	assert_invalidate_exclusive(f);
	for (struct gvma *v = f->vmas; v; v = v->file_next) {
		uint64_t k = vma_zap(f, v, pg0, pg1);

		/* one TLB flush (an IPI per other CPU that ran the mm) per mm
		 * that lost entries, or per mm in the whole batch */
		if (k && f->flush_batch)
			v->batch_zapped = true;
		else if (k)
			count_kev(f, KEV_TLB_FLUSHES, 1);
		n += k;
	}
	if (n) {
		f->c.host_ptes -= n;
		pool_count(f->pool, &f->pool->run.zaps, &f->c.zaps, n);
	}
	return n;
}

static uint64_t removed_sum(const struct gmap *m)
{
	return m->removed[GMAP_4K] + m->removed[GMAP_2M] + m->removed[GMAP_1G];
}

/**
 * flush_batch_begin() / flush_batch_end() - the zaps and map removals in
 * between need one flush each: a TLB flush per mm that lost entries, one
 * stage-2 flush and one IOTLB invalidation if any entry went (as the
 * kernel unmaps a whole range, then flushes once).  Only the counts are
 * batched; the zaps happen at once.  Context: file lock; may nest.
 */
void flush_batch_begin(struct gfile *f)
{
	if (f->flush_batch++)
		return;
	f->batch_gflush = f->guest.flushes;
	f->batch_grem = removed_sum(&f->guest);
	f->batch_iflush = f->iommu.flushes;
	f->batch_irem = removed_sum(&f->iommu);
}

void flush_batch_end(struct gfile *f)
{
	if (--f->flush_batch)
		return;
	for (struct gvma *v = f->vmas; v; v = v->file_next) {
		if (v->batch_zapped)
			count_kev(f, KEV_TLB_FLUSHES, 1);
		v->batch_zapped = false;
	}
	f->guest.flushes = f->batch_gflush +
			   (removed_sum(&f->guest) != f->batch_grem);
	f->iommu.flushes = f->batch_iflush +
			   (removed_sum(&f->iommu) != f->batch_irem);
}

/* Free a mapping and its page table once no fast path can walk them
 * (free_rcu()).  Context: not in a read-side section. */
static void vma_free(struct gfile *f, struct gvma *v)
{
	struct gpt *pt = &v->pt;

	for (uint64_t g = 0; g < pt->nr_gb; g++) {
		struct gpt_pmd *pmd = pt->dir[g];

		if (!pmd)
			continue;
		for (unsigned int i = 0; i < PTRS; i++)
			free_rcu(f, pmd->t[i], sizeof(struct gpt_pte));
		free_rcu(f, pmd, sizeof(struct gpt_pmd));
	}
	free_rcu(f, pt->dir, pt->nr_gb * sizeof(*pt->dir));
	free_rcu(f, v, sizeof(*v));
}

/**
 * vma_destroy_all() - remove every mapping of a closing file.
 * Context: invalidate lock exclusive, file lock; entries already zapped.
 */
void vma_destroy_all(struct gfile *f)
{
	while (f->vmas) {
		struct gvma *v = f->vmas;
		struct gmm *mm = v->mm;

		GM_BUG_ON(v->pt.nr_ptes);
		if (v->view)
			view_detach(f, v);
		f->vmas = v->file_next;
		pthread_mutex_lock(&mm->lock);
		for (struct gvma **pp = &mm->vmas; *pp; pp = &(*pp)->mm_next) {
			if (*pp == v) {
				*pp = v->mm_next;
				break;
			}
		}
		pthread_mutex_unlock(&mm->lock);
		vma_free(f, v);
	}
}

/* ------------------------------------------------------------------ mm */

/*
 * Map @f into the mm of handle @mmh.  The handle is checked under
 * mm->lock, where gmem_mm_destroy() advances the generation: a mapping
 * added here is listed before the destroy reads the mm's list, or the
 * handle is found stale (-EBADF).  Context: invalidate lock, file lock.
 */
static int mmap_locked(const struct gmem_mm *mmh, struct gfile *f)
{
	struct gmm *mm = to_mm(mmh);
	struct gvma *v, *x;

	v = gmem_alloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->pt.nr_gb = (f->nr_pages + (1ULL << PUD_ORDER) - 1) >> PUD_ORDER;
	v->pt.dir = gmem_alloc(v->pt.nr_gb * sizeof(*v->pt.dir));
	if (!v->pt.dir) {
		gmem_free(v, sizeof(*v));
		return -ENOMEM;
	}
	v->mm = mm;
	v->file = f;
	pthread_mutex_lock(&mm->lock);
	for (x = mm->vmas; x; x = x->mm_next)
		if (x->file == f)
			break;
	if (x || !mm_handle_live(mmh)) {
		pthread_mutex_unlock(&mm->lock);
		gmem_free(v->pt.dir, v->pt.nr_gb * sizeof(*v->pt.dir));
		gmem_free(v, sizeof(*v));
		return x ? -EEXIST : -EBADF;
	}
	v->file_next = f->vmas;
	/* release: lock-free walkers see it initialised (vma_find_rcu()) */
	atomic_store_explicit(&f->vmas, v, memory_order_release);
	v->mm_next = mm->vmas;
	mm->vmas = v;
	pthread_mutex_unlock(&mm->lock);
	return 0;
}

/**
 * vma_lookup() - @mm's mapping of @f for a call that came with @mm's
 * handle: NULL if there is none or the handle is stale (gmem_mm_destroy()
 * advances the generation before it unmaps, and a mapping is added only
 * under the file lock, so a live generation here means the mapping found
 * is the handle's mm's).  Context: invalidate lock, file lock.
 */
struct gvma *vma_lookup(struct gfile *f, const struct gmem_mm *mmh)
{
	struct gvma *v = vma_find_locked(f, to_mm(mmh));

	return v && mm_handle_live(mmh) ? v : NULL;
}

int gmem_mmap(struct gmem_mm *mmp, struct gmem_file *file)
{
	struct gfile *f = to_file(file);
	int ret;

	if (!mmp || !file || to_mm(mmp)->pool != f->pool)
		return -EINVAL;
	ret = file_enter_shared(f, handle_gen(file));
	if (ret)
		return ret;
	pthread_mutex_lock(&f->lock);
	/* checked again under mm->lock (mmap_locked()) */
	ret = mm_handle_live(mmp) ? mmap_locked(mmp, f) : -EBADF;
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock_shared(f);
	return ret;
}

/*
 * Remove @mm's mapping of @f, if any: zap its entries (references and
 * mapcounts dropped, one TLB flush), unmap its view, free it after a grace
 * period.  Pins taken through it stay.  @mmh, if not NULL, is the
 * caller's handle to @mm: a stale one (a destroy advanced the generation,
 * under mm->lock, and unmaps after it) gets -EBADF, so a mapping of a new
 * mm in the same struct is never removed.  Return: 0, -EBADF, or -ENOENT
 * (no such mapping).  Context: invalidate lock exclusive, file lock.
 */
static int vma_unmap(struct gmm *mm, const struct gmem_mm *mmh,
		     struct gfile *f)
{
	struct gvma *v;
	uint64_t n;

	if (mmh && !mm_handle_live(mmh))
		return -EBADF;
	for (_Atomic(struct gvma *) *pp = &f->vmas; (v = *pp);
	     pp = &v->file_next) {
		if (v->mm == mm) {
			/* relaxed: fast paths are out (exclusive holder) */
			atomic_store_explicit(pp, v->file_next,
					      memory_order_relaxed);
			break;
		}
	}
	if (!v)
		return -ENOENT;
	n = vma_zap(f, v, 0, f->nr_pages);
	if (n) {
		f->c.host_ptes -= n;
		count_kev(f, KEV_TLB_FLUSHES, 1);
		pool_count(f->pool, &f->pool->run.zaps, &f->c.zaps, n);
	}
	if (v->view)
		view_detach(f, v);
	pthread_mutex_lock(&mm->lock);
	for (struct gvma **pp = &mm->vmas; *pp; pp = &(*pp)->mm_next) {
		if (*pp == v) {
			*pp = v->mm_next;
			break;
		}
	}
	pthread_mutex_unlock(&mm->lock);
	vma_free(f, v);
	return 0;
}

/* Unmap @f (of generation @gen) from @mm: file_enter() and vma_unmap(). */
static int unmap_file(struct gmm *mm, const struct gmem_mm *mmh,
		      struct gfile *f, unsigned int gen)
{
	int ret = file_enter(f, gen);

	if (ret)
		return ret;
	pthread_mutex_lock(&f->lock);
	ret = vma_unmap(mm, mmh, f);
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock(f);
	views_reap(f);
	return ret;
}

int gmem_munmap(struct gmem_mm *mmp, struct gmem_file *file)
{
	struct gfile *f = to_file(file);

	if (!mmp || !file || to_mm(mmp)->pool != f->pool)
		return -EINVAL;
	if (!mm_handle_live(mmp))
		return -EBADF;
	return unmap_file(to_mm(mmp), mmp, f, handle_gen(file));
}

/*
 * Unmap everything @mm maps.  Each file's generation is read under
 * mm->lock while its mapping is listed, so it is the generation before
 * any close (close advances it after removing its mappings).
 */
static void mm_unmap_all(struct gmm *mm)
{
	for (;;) {
		struct gfile *f = NULL;
		unsigned int gen = 0;

		pthread_mutex_lock(&mm->lock);
		if (mm->vmas) {
			f = mm->vmas->file;
			/* relaxed: ordered by mm->lock (see above) */
			gen = atomic_load_explicit(&f->gen,
						   memory_order_relaxed) & 0xffff;
		}
		pthread_mutex_unlock(&mm->lock);
		if (!f)
			return;
		/* -EBADF: the file closed meanwhile and took the mapping */
		unmap_file(mm, NULL, f, gen);
	}
}

int gmem_mm_create(struct gmem_pool *pool, struct gmem_mm *fork_from,
		   struct gmem_mm **out)
{
	struct gpool *p = to_pool(pool);
	struct gmem_mm *h;
	struct gmm *mm;
	struct gmem_file **files = NULL;
	uint64_t nr = 0, i;
	int ret = 0;

	if (!pool || !out || (fork_from && to_mm(fork_from)->pool != p))
		return -EINVAL;
	if (fork_from && !mm_handle_live(fork_from))
		return -EBADF;
	/* a destroyed mm's struct first (type-stable, its lock kept) */
	pthread_mutex_lock(&p->files_lock);
	mm = p->free_mms;
	if (mm) {
		p->free_mms = mm->next;
		mm->dead = false;
	}
	pthread_mutex_unlock(&p->files_lock);
	if (!mm) {
		mm = gmem_alloc(sizeof(*mm));
		if (!mm)
			return -ENOMEM;
		mm->pool = p;
		pthread_mutex_init(&mm->lock, NULL);
	}
	h = handle_make(mm, atomic_load_explicit(&mm->gen,
						 memory_order_relaxed));
	if (fork_from) {
		/* Snapshot the parent's files without holding file locks
		 * (mm->lock nests inside them), then map each again. */
		struct gmm *parent = to_mm(fork_from);
		struct gvma *v;

		pthread_mutex_lock(&parent->lock);
		/* again under its lock, where a destroy advances it: a
		 * parent destroyed meanwhile, its struct maybe serving a new
		 * mm, lends nothing */
		if (!mm_handle_live(fork_from)) {
			pthread_mutex_unlock(&parent->lock);
			ret = -EBADF;
			goto err;
		}
		for (v = parent->vmas; v; v = v->mm_next)
			nr++;
		files = gmem_alloc((nr ? nr : 1) * sizeof(*files));
		if (files) {
			i = 0;
			/* as mm_unmap_all(): the generation while listed */
			for (v = parent->vmas; v; v = v->mm_next)
				files[i++] = handle_make(v->file,
					atomic_load_explicit(&v->file->gen,
						memory_order_relaxed));
		}
		pthread_mutex_unlock(&parent->lock);
		if (!files) {
			ret = -ENOMEM;
			goto err;
		}
		/* Parent's list is newest first: map oldest first. */
		for (i = nr; i-- > 0;) {
			ret = gmem_mmap(h, files[i]);
			if (ret == -EBADF)
				ret = 0;	/* closed meanwhile */
			if (ret)
				goto err;
		}
		gmem_free(files, (nr ? nr : 1) * sizeof(*files));
	}
	pthread_mutex_lock(&p->files_lock);
	mm->next = p->mms;
	p->mms = mm;
	pthread_mutex_unlock(&p->files_lock);
	*out = h;
	return 0;
err:
	/* Undo the mappings made so far (no entries yet: nobody else has
	 * the handle). */
	mm_unmap_all(mm);
	gmem_free(files, (nr ? nr : 1) * sizeof(*files));
	pthread_mutex_lock(&p->files_lock);
	mm->next = p->free_mms;
	p->free_mms = mm;
	pthread_mutex_unlock(&p->files_lock);
	return ret;
}

int gmem_mm_destroy(struct gmem_mm *mmp)
{
	struct gmm *mm = to_mm(mmp);
	struct gpool *p;

	if (!mmp)
		return -EINVAL;
	p = mm->pool;
	pthread_mutex_lock(&p->files_lock);
	if (mm->dead || !mm_handle_live(mmp)) {
		pthread_mutex_unlock(&p->files_lock);
		return -EBADF;
	}
	mm->dead = true;
	/* release: before any mapping goes, every handle is stale.  Under
	 * mm->lock, where gmem_mmap() checks the handle as it lists a
	 * mapping (mmap_locked()): a mapping is listed before this, and
	 * mm_unmap_all() below finds it, or its call gets -EBADF */
	pthread_mutex_lock(&mm->lock);
	atomic_store_explicit(&mm->gen,
			      atomic_load_explicit(&mm->gen,
						   memory_order_relaxed) + 1,
			      memory_order_release);
	pthread_mutex_unlock(&mm->lock);
	for (struct gmm **pp = &p->mms; *pp; pp = &(*pp)->next) {
		if (*pp == mm) {
			*pp = mm->next;
			break;
		}
	}
	pthread_mutex_unlock(&p->files_lock);
	mm_unmap_all(mm);
	pthread_mutex_lock(&p->files_lock);
	mm->next = p->free_mms;
	p->free_mms = mm;
	pthread_mutex_unlock(&p->files_lock);
	return 0;
}

/* ---------------------------------------------------------------- fault */

/**
 * host_fault_locked() - fault page @pg in through mapping @v.
 * Return: 0 with *@out the folio; GMEM_SIGBUS for a private or poisoned
 * page, or when memory for a hole cannot be had.
 * Context: invalidate lock (either mode), file lock.
 */
int host_fault_locked(struct gvma *v, struct gfile *f, uint64_t pg,
		      struct gfolio **out)
{
	struct gfolio *fo = pt_lookup_rcu(v, pg);
	bool allocated;

	if (!page_is_shared(f, pg) || page_is_poisoned(f, pg))
		return GMEM_SIGBUS;
	if (fo) {
		*out = fo;
		return 0;
	}
	if (pt_prepare(v, pg, pg + 1))
		return GMEM_SIGBUS;
	if (folio_get_or_alloc(f, pg, &fo, &allocated))
		return GMEM_SIGBUS;
	/* A reference that could overflow is refused, as for a pin; a new
	 * folio (refcount 1) always has room. */
	if (!folio_pin_room(fo, 0, 1)) {
		/* a view marks the page to SIGBUS: unmark when room comes */
		fo->flags |= FOLIO_REFS_FULL;
		/*
		 * Look again after marking (both seq_cst): a fast unpin, which
		 * takes no lock, drops its references and then reads the flag,
		 * so either it sees the mark and unmarks, or this sees the
		 * room it made.
		 */
		if (atomic_load_explicit(&fo->refcount, memory_order_seq_cst) >=
		    atomic_load_explicit(&folio_ref_limit,
					 memory_order_relaxed))
			return GMEM_SIGBUS;
		/* room came (a large folio's pincount is below its
		 * refcount: it has room too) */
		fo->flags &= (uint8_t)~FOLIO_REFS_FULL;
	}
	pt_install(v, pg, fo);
	*out = fo;
	return 0;
}

/*
 * A load from guest memory that another thread may store to at the same
 * moment, as another CPU may: the bytes are the pool's memory, not gmem's
 * state, and the fast path's re-check decides whether the value counts.
 */
#ifdef GMEM_TSAN
__attribute__((no_sanitize("thread"), noinline))
#endif
static void guest_load(uint8_t *dst, const uint8_t *src, size_t n)
{
	if (n == 1)
		*dst = *src;
	else
		memcpy(dst, src, n);
}

/*
 * host_access_fast() - a fault, or a load of @n bytes at @off (one page)
 * into @buf, whose page-table entry is present, with no lock, as the
 * hardware walks page tables: look the mapping and the entry up under
 * RCU, and count the result only if the file's seq was even and unchanged
 * around it (no conversion, punch, poison, split or merge ran meanwhile:
 * the page was shared and mapped throughout).  @buf is gmem's own memory,
 * never the caller's (host_access()).  Stores take the slow path: a store
 * cannot be taken back after a failed re-check.
 * Return: 0 done, 1 take the slow path.
 */
static int host_access_fast(struct gfile *f, unsigned int gen,
			    const struct gmem_mm *mmh, uint64_t off, int op,
			    uint8_t *buf, size_t n)
{
	struct gfolio *fo;
	struct gvma *v;
	unsigned int seq;
	int ret = 1;

	/* no check of off against the file's size: pt_lookup_rcu() bounds
	 * the walk, and a page past the end has no entry */
	gmem_rcu_read_lock();
	/* seq_cst: announce, then read seq (free_rcu()); acquire would do
	 * for what follows, but not for the announcement */
	if (!atomic_load_explicit(&f->fast_read_used, memory_order_seq_cst))
		atomic_store_explicit(&f->fast_read_used, true,
				      memory_order_seq_cst);
	seq = atomic_load_explicit(&f->seq, memory_order_seq_cst);
	/* relaxed: gen changes only while seq is odd (the re-check) */
	if ((seq & 1) ||
	    (atomic_load_explicit(&f->gen, memory_order_relaxed) & 0xffff) !=
	    gen)
		goto out;
	v = vma_find_rcu(f, to_mm(mmh));
	/* after the mapping's acquire: a destroy before it shows here */
	fo = v && mm_handle_live(mmh) ? pt_lookup_rcu(v, off >> PAGE_SHIFT) :
					NULL;
	if (!fo)
		goto out;
	if (op) {
		/* index and data are set before the entry is published */
		if (!fo->data)
			goto out;
		guest_load(buf, fo->data +
			   (((off >> PAGE_SHIFT) - fo->index) << PAGE_SHIFT) +
			   (off & (PAGE_SIZE - 1)), n);
	}
	/* acquire fence: the reads above happen before the re-check */
	fence_acquire();
	/* acquire: only for the sanitizer build, whose fence is a no-op */
	if (atomic_load_explicit(&f->seq, memory_order_acquire) != seq)
		goto out;
	ret = 0;
out:
	gmem_rcu_read_unlock();
	return ret;
}

/*
 * Fault the page of @off in and, with @op, load (-1) or store (+1) @n
 * bytes at @off, within that page, from or to @buf.  @buf is gmem's own
 * memory (a local or a bounce buffer), never the caller's: the caller's
 * memory may lie in a view of another file, whose fault handler needs
 * that file's locks, and must not be touched under these (or inside a
 * read-side section, whose holder may be waited for).
 */
static int host_access(struct gmem_mm *mmp, struct gmem_file *file,
		       uint64_t off, int op, uint8_t *buf, size_t n)
{
	struct gfile *f = to_file(file);
	struct gfolio *fo;
	struct gvma *v;
	uint64_t pg = off >> PAGE_SHIFT;
	int ret;

	if (!mmp || !file || to_mm(mmp)->pool != f->pool)
		return -EINVAL;
	/* before any field of the file (as gmem_pin()) */
	if (!mm_handle_live(mmp) || !file_handle_live(file))
		return -EBADF;
	if (op <= 0 &&
	    !host_access_fast(f, handle_gen(file), mmp, off, op, buf, n))
		return 0;
	ret = file_enter_shared(f, handle_gen(file));
	if (ret)
		return ret;
	if (op && f->pool->backing == GMEM_BACKING_NONE) {
		ret = -ENXIO;
		goto out;
	}
	pthread_mutex_lock(&f->lock);
	/* the file's own list: no mm-wide lock on the access path */
	v = vma_lookup(f, mmp);
	if (!v) {
		ret = -EFAULT;
		goto unlock;
	}
	if (off >= f->size) {
		ret = GMEM_SIGBUS;
		goto unlock;
	}
	ret = host_fault_locked(v, f, pg, &fo);
	if (!ret && op) {
		uint8_t *b = fo->data + ((pg - fo->index) << PAGE_SHIFT) +
			     (off & (PAGE_SIZE - 1));

		if (op > 0)
			memcpy(b, buf, n);
		else
			memcpy(buf, b, n);
	}
unlock:
	pthread_mutex_unlock(&f->lock);
out:
	invalidate_unlock_shared(f);
	return ret;
}

int gmem_fault(struct gmem_mm *mm, struct gmem_file *file, uint64_t off,
	       unsigned int flags)
{
	if (flags & ~GMEM_WRITE)
		return -EINVAL;
	return host_access(mm, file, off, 0, NULL, 0);
}

int gmem_host_read(struct gmem_mm *mm, struct gmem_file *file, uint64_t off,
		   uint8_t *val)
{
	uint8_t b;
	int ret;

	if (!val)
		return -EINVAL;
	ret = host_access(mm, file, off, -1, &b, 1);
	if (!ret)
		*val = b;
	return ret;
}

int gmem_host_write(struct gmem_mm *mm, struct gmem_file *file, uint64_t off,
		    uint8_t val)
{
	return host_access(mm, file, off, 1, &val, 1);
}

/*
 * A copy page by page through a bounce buffer: each page's access is one
 * host_access() (its own fault, fast path or locks), and the caller's
 * buffer is touched only between them, with no lock held.
 */
static int host_copy(struct gmem_mm *mm, struct gmem_file *file,
		     uint64_t off, uint8_t *buf, size_t len, size_t *done,
		     int op)
{
	uint8_t bounce[PAGE_SIZE];
	size_t n = 0;
	int ret = 0;

	if (done)
		*done = 0;
	if (!mm || !file || (!buf && len) || off + len < off)
		return -EINVAL;
	while (n < len) {
		uint64_t at = off + n;
		size_t chunk = MIN(len - n, PAGE_SIZE - (at & (PAGE_SIZE - 1)));

		if (op > 0)
			memcpy(bounce, buf + n, chunk);
		ret = host_access(mm, file, at, op, bounce, chunk);
		if (ret)
			break;
		if (op < 0)
			memcpy(buf + n, bounce, chunk);
		n += chunk;
		if (done)
			*done = n;
	}
	return ret;
}

int gmem_host_copy_out(struct gmem_mm *mm, struct gmem_file *file,
		       uint64_t off, void *buf, size_t len, size_t *done)
{
	return host_copy(mm, file, off, buf, len, done, -1);
}

int gmem_host_copy_in(struct gmem_mm *mm, struct gmem_file *file,
		      uint64_t off, const void *buf, size_t len, size_t *done)
{
	/* only read through: host_copy() stores to @buf only for op < 0 */
	return host_copy(mm, file, off, (uint8_t *)(uintptr_t)buf, len, done,
			 1);
}

/* ----------------------------------------------------------- validator */

/**
 * mm_ok() - every host entry maps a shared, unpoisoned page through the
 * file's own folio for it; entry counts and every folio's mapcount match.
 * This is the safety rule: no private page is mapped by the host.
 */
bool mm_ok(struct gfile *f, char *why, size_t len)
{
	uint64_t total = 0;

	for (struct gvma *v = f->vmas; v; v = v->file_next) {
		uint64_t n = 0;

		for (uint64_t g = 0; g < v->pt.nr_gb; g++) {
			struct gpt_pmd *pmd = v->pt.dir[g];
			uint32_t pmd_n = 0;

			if (!pmd)
				continue;
			for (unsigned int i = 0; i < PTRS; i++) {
				struct gpt_pte *pte = pmd->t[i];
				uint32_t pte_n = 0;

				if (!pte)
					continue;
				for (unsigned int j = 0; j < PTRS; j++) {
					struct gfolio *fo = pte->pte[j];
					uint64_t pg = (g << PUD_ORDER) +
						      ((uint64_t)i << PMD_ORDER) + j;

					if (!fo)
						continue;
					pte_n++;
					if (!page_is_shared(f, pg) ||
					    page_is_poisoned(f, pg)) {
						snprintf(why, len,
							 "host maps %s page 0x%llx",
							 page_is_shared(f, pg) ?
							 "poisoned" : "private",
							 (unsigned long long)(pg << PAGE_SHIFT));
						return false;
					}
					if (fo != folio_lookup(f, pg)) {
						snprintf(why, len,
							 "host entry at 0x%llx maps a stale folio",
							 (unsigned long long)(pg << PAGE_SHIFT));
						return false;
					}
				}
				if (pte_n != pte->nr) {
					snprintf(why, len, "pte table count");
					return false;
				}
				pmd_n += pte_n;
			}
			if (pmd_n != pmd->nr) {
				snprintf(why, len, "pmd table count");
				return false;
			}
			n += pmd_n;
		}
		if (n != v->pt.nr_ptes) {
			snprintf(why, len, "mapping entry count %llu, kept %llu",
				 (unsigned long long)n,
				 (unsigned long long)v->pt.nr_ptes);
			return false;
		}
		total += n;
	}
	if (total != f->c.host_ptes) {
		snprintf(why, len, "host_ptes %llu, counted %llu",
			 (unsigned long long)f->c.host_ptes,
			 (unsigned long long)total);
		return false;
	}
	return views_ok(f, why, len);
}
