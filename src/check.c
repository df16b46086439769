// SPDX-License-Identifier: MIT
/*
 * check.c - gmem_check(): every invariant validator, from state that the
 * operations did not compute for themselves where that is possible.
 *
 * Per file: the attribute, poison and IOMMU range trees; the folio shape
 * each policy promises; host page tables (the safety rule: no entry on a
 * private or poisoned page); guest and IOMMU maps; every folio's refcount,
 * mapcount, pincount and long-term count recomputed from page tables and
 * pin records; pins only on shared pages; the per-page pin map; the
 * file's host range, as the kernel lists it, mapping each attached huge
 * page at its offset and nothing in a hole.
 * Pool-wide: conservation of huge pages and reservations.
 */
#include <string.h>

#include "internal.h"

/* A folio -> expected counts table (open addressing on the pointer). */
struct expect_ent {
	struct gfolio *fo;
	uint64_t ptes, pinned, longterm;
};

struct expect_map {
	struct expect_ent *t;
	uint64_t cap;
	bool oom;
};

static struct expect_ent *expect_get(struct expect_map *m, struct gfolio *fo)
{
	uint64_t i = ((uintptr_t)fo >> 4) * 0x9e3779b97f4a7c15ULL;

	for (i &= m->cap - 1;; i = (i + 1) & (m->cap - 1)) {
		if (m->t[i].fo == fo)
			return &m->t[i];
		if (!m->t[i].fo) {
			m->t[i].fo = fo;
			return &m->t[i];
		}
	}
}

struct pin_walk {
	struct gfile *f;
	struct expect_map *m;
	char *why;
	size_t len;
	bool ok;
	uint64_t pages;
};

static void pin_visit(void *arg, struct gpin *pin)
{
	struct pin_walk *w = arg;
	uint64_t pg = pin->pg;

	if (pin->file != w->f)
		return;
	w->pages += pin->nr_pages;
	for (uint32_t i = 0; i < pin->nr_segs; i++) {
		struct gpin_seg *s = &pin->segs[i];

		if (!(s->folio->flags & FOLIO_DETACHED)) {
			struct expect_ent *e = expect_get(w->m, s->folio);
			uint64_t x;

			e->pinned += s->nr;
			if (pin->flags & GMEM_PIN_LONGTERM)
				e->longterm += s->nr;
			if (w->ok && rs_first_not_in(&w->f->shared, pg, pg + s->nr,
						     &x)) {
				w->ok = false;
				snprintf(w->why, w->len,
					 "pin %llu holds private page 0x%llx",
					 (unsigned long long)pin->id,
					 (unsigned long long)(x << PAGE_SHIFT));
			}
			/* b-adaptive splits before a long-term pin: such a
			 * pin never holds part of an intact huge folio */
			if (w->ok && w->f->policy == GMEM_POLICY_B_ADAPTIVE &&
			    (pin->flags & GMEM_PIN_LONGTERM) && s->folio->order &&
			    s->nr != folio_nr_pages(s->folio)) {
				w->ok = false;
				snprintf(w->why, w->len,
					 "long-term pin %llu holds %u of %llu pages of the intact folio at 0x%llx",
					 (unsigned long long)pin->id, s->nr,
					 (unsigned long long)folio_nr_pages(s->folio),
					 (unsigned long long)(s->folio->index << PAGE_SHIFT));
			}
		}
		pg += s->nr;
	}
}

/* Recompute every folio's counts and compare. */
static bool refcounts_ok(struct gfile *f, char *why, size_t len)
{
	struct expect_map m = { 0 };
	struct pin_walk w = { f, &m, why, len, true, 0 };
	uint64_t need = f->c.host_ptes + f->c.folios[0] + f->c.folios[1] +
			f->c.folios[2] + file_pins(f) + 16;
	bool ok = true;

	m.cap = 64;
	while (m.cap < need * 2)
		m.cap *= 2;
	m.t = gmem_alloc(m.cap * sizeof(*m.t));
	if (!m.t)
		return true;	/* cannot check without memory: not a violation */

	for (struct gvma *v = f->vmas; v; v = v->file_next) {
		for (uint64_t g = 0; g < v->pt.nr_gb; g++) {
			struct gpt_pmd *pmd = v->pt.dir[g];

			for (unsigned int i = 0; pmd && i < PTRS; i++) {
				struct gpt_pte *pte = pmd->t[i];

				for (unsigned int j = 0; pte && pte->nr && j < PTRS; j++)
					if (pte->pte[j])
						expect_get(&m, pte->pte[j])->ptes++;
			}
		}
	}
	pins_for_each(f->pool, pin_visit, &w);
	if (!w.ok) {
		ok = false;
		goto out;
	}
	if (w.pages != file_pins(f)) {
		snprintf(why, len, "file pins %llu, pin records hold %llu",
			 (unsigned long long)file_pins(f),
			 (unsigned long long)w.pages);
		ok = false;
		goto out;
	}
	/* Every folio of the file against its expected counts. */
	for (uint64_t pg = 0; pg < f->nr_pages;) {
		struct gfolio *fo = folio_lookup(f, pg);

		if (!fo) {
			pg = f->policy == GMEM_POLICY_4K ? pg + 1 :
			     ALIGN_DOWN(pg, 1ULL << f->pool->order) +
			     (1ULL << f->pool->order);
			continue;
		}
		struct expect_ent *e = expect_get(&m, fo);
		int64_t want_ref = 1 + (int64_t)e->ptes +
			(fo->order ? (int64_t)e->pinned :
				     (int64_t)e->pinned * GUP_PIN_COUNTING_BIAS);
		int64_t want_pin = fo->order ? (int64_t)e->pinned : 0;

		if (folio_ref_count(fo) != want_ref ||
		    folio_mapcount(fo) != (int64_t)e->ptes ||
		    atomic_load_explicit(&fo->pincount, memory_order_relaxed) !=
		    want_pin || fo->longterm != (int64_t)e->longterm) {
			snprintf(why, len,
				 "folio at 0x%llx: refcount %d mapcount %d pincount %d longterm %d, expected %lld %llu %lld %llu",
				 (unsigned long long)(fo->index << PAGE_SHIFT),
				 folio_ref_count(fo), folio_mapcount(fo),
				 atomic_load_explicit(&fo->pincount,
						      memory_order_relaxed),
				 fo->longterm, (long long)want_ref,
				 (unsigned long long)e->ptes, (long long)want_pin,
				 (unsigned long long)e->longterm);
			ok = false;
			goto out;
		}
		pg = fo->index + folio_nr_pages(fo);
	}
out:
	gmem_free(m.t, m.cap * sizeof(*m.t));
	return ok;
}

static bool file_ok(struct gfile *f, char *why, size_t len)
{
	return rs_ok(&f->shared, why, len) && rs_ok(&f->poison, why, len) &&
	       rs_ok(&f->iommu_ranges, why, len) &&
	       rs_ok(&f->merge_todo, why, len) &&
	       folio_structure_ok(f, why, len) && mm_ok(f, why, len) &&
	       gmaps_ok(f, why, len) && refcounts_ok(f, why, len) &&
	       hva_ok(f, why, len);
}

/*
 * Huge pages: free + held by files + detached == total, and the files'
 * reservations and holdings add up.  Every figure here changes only under
 * the pool lock, so one pass under it is a consistent snapshot however
 * many threads allocate, punch or unpin meanwhile.
 * Context: files_lock (the list), takes the pool lock.
 */
static bool pool_ok(struct gpool *p, char *why, size_t len)
{
	uint64_t detached = 0, held = 0, resv = 0;
	bool ok = false;

	pthread_mutex_lock(&p->lock);
	for (struct ghuge *h = p->detached; h; h = h->next_detached)
		detached++;
	for (struct gfile *f = p->files; f; f = f->next) {
		held += f->held;
		resv += f->resv;
		/* A file never holds more than its size in memory and
		 * reservations together. */
		if (f->held + f->resv > f->nr_huge) {
			snprintf(why, len,
				 "file holds %llu huge pages and reserves %llu, size %llu",
				 (unsigned long long)f->held,
				 (unsigned long long)f->resv,
				 (unsigned long long)f->nr_huge);
			goto out;
		}
	}
	if (p->free + p->held + detached != p->total) {
		snprintf(why, len,
			 "pool: free %llu + held %llu + detached %llu != total %llu",
			 (unsigned long long)p->free, (unsigned long long)p->held,
			 (unsigned long long)detached,
			 (unsigned long long)p->total);
	} else if (held != p->held) {
		snprintf(why, len, "pool: held %llu, files hold %llu",
			 (unsigned long long)p->held, (unsigned long long)held);
	} else if (p->nr_free_stack != p->free) {
		snprintf(why, len, "pool: free list %llu, free %llu",
			 (unsigned long long)p->nr_free_stack,
			 (unsigned long long)p->free);
	} else if (p->resv != resv || p->resv > p->free) {
		snprintf(why, len, "pool: resv %llu, files reserve %llu, free %llu",
			 (unsigned long long)p->resv, (unsigned long long)resv,
			 (unsigned long long)p->free);
	} else {
		ok = true;
	}
out:
	pthread_mutex_unlock(&p->lock);
	return ok;
}

/* A file's huge pages are those its counter says.  Context: file lock. */
static bool file_held_ok(struct gfile *f, char *why, size_t len)
{
	uint64_t mine = 0;

	for (uint64_t s = 0; s < f->nr_huge; s++)
		mine += f->huge[s] != NULL;
	if (mine == f->held)
		return true;
	snprintf(why, len, "file holds %llu huge pages, counted %llu",
		 (unsigned long long)mine, (unsigned long long)f->held);
	return false;
}

/* Check one file under its own locks; a file close emptied is skipped. */
static bool file_check(struct gfile *f, char *buf, size_t len)
{
	bool ok = true;

	invalidate_lock(f);
	pthread_mutex_lock(&f->lock);
	if (!f->closed)
		ok = file_ok(f, buf, len) && file_held_ok(f, buf, len);
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock(f);
	return ok;
}

/*
 * gmem_check() - each open file under its own locks (its invalidate lock
 * exclusively and its file lock: nothing of it can change meanwhile), in
 * turn; then the pool's conservation from counters that change only under
 * the pool lock.  The files are walked from a copy of the list, so files
 * can be created and closed meanwhile (a file's struct lives as long as
 * its pool; one that close has emptied is skipped); without memory for the
 * copy, the walk holds the list's lock.
 */
int gmem_check(struct gmem_pool *pool, char *buf, size_t len)
{
	struct gpool *p = to_pool(pool);
	struct gfile **list = NULL;
	uint64_t nr = 0, i = 0;
	char tmp[256];
	bool ok = true;

	if (!pool)
		return -EINVAL;
	if (!buf || !len) {
		buf = tmp;
		len = sizeof(tmp);
	}
	buf[0] = 0;
	pthread_mutex_lock(&p->files_lock);
	for (struct gfile *f = p->files; f; f = f->next)
		nr++;
	if (nr)
		list = gmem_alloc(nr * sizeof(*list));
	if (list) {
		for (struct gfile *f = p->files; f; f = f->next)
			list[i++] = f;
		pthread_mutex_unlock(&p->files_lock);
		for (i = 0; i < nr && ok; i++)
			ok = file_check(list[i], buf, len);
		gmem_free(list, nr * sizeof(*list));
		pthread_mutex_lock(&p->files_lock);
	} else {
		for (struct gfile *f = p->files; f && ok; f = f->next)
			ok = file_check(f, buf, len);
	}
	if (ok)
		ok = pool_ok(p, buf, len);
	pthread_mutex_unlock(&p->files_lock);
	return ok ? 0 : -EUCLEAN;
}
