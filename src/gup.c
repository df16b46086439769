// SPDX-License-Identifier: MIT
/*
 * gup.c - pins (pin_user_pages() and unpin_user_pages()), long-term and
 * exclusive, and the pool's table of pins by id.
 *
 * A pin faults its pages in through an mm (page-table entries, memory for
 * holes) and takes, per page, GUP_PIN_COUNTING_BIAS on an order-0 folio or
 * one reference and one pincount on a large folio.  The per-page pin map
 * answers the exclusive-pin questions exactly; the folio counts answer the
 * conversion's.
 */
#include <string.h>

#include "internal.h"

/* ---------------------------------------------------------------- pinmap */

static uint64_t hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

static struct pinmap_ent *pinmap_find(struct pinmap *m, uint64_t pg)
{
	if (!m->cap)
		return NULL;
	for (uint64_t i = hash64(pg) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->t[i].pg == pg + 1)
			return &m->t[i];
		if (!m->t[i].pg)
			return NULL;
	}
}

static void pinmap_put_ent(struct pinmap *m, struct pinmap_ent e)
{
	uint64_t i = hash64(e.pg - 1) & (m->cap - 1);

	while (m->t[i].pg)
		i = (i + 1) & (m->cap - 1);
	m->t[i] = e;
}

/* Room for @extra more pages, so the commit phase cannot fail. */
static int pinmap_reserve(struct pinmap *m, uint64_t extra)
{
	uint64_t need = m->used + extra, cap = m->cap ? m->cap : 64;
	struct pinmap_ent *old = m->t, *t;
	uint64_t old_cap = m->cap;

	if (need * 4 <= m->cap * 3)
		return 0;
	while (need * 4 > cap * 3)
		cap *= 2;
	t = gmem_alloc(cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	m->t = t;
	m->cap = cap;
	for (uint64_t i = 0; i < old_cap; i++)
		if (old[i].pg)
			pinmap_put_ent(m, old[i]);
	gmem_free(old, old_cap * sizeof(*old));
	return 0;
}

static void pinmap_inc(struct pinmap *m, uint64_t pg, bool excl)
{
	struct pinmap_ent *e = pinmap_find(m, pg);

	if (!e) {
		pinmap_put_ent(m, (struct pinmap_ent){ pg + 1, 0, 0 });
		m->used++;
		e = pinmap_find(m, pg);
	}
	e->count++;
	e->excl += excl;
}

/* Remove slot @i and shift the probe chain after it back (no tombstones). */
static void pinmap_delete(struct pinmap *m, uint64_t i)
{
	uint64_t j = i;

	m->t[i].pg = 0;
	for (;;) {
		j = (j + 1) & (m->cap - 1);
		if (!m->t[j].pg)
			break;
		uint64_t home = hash64(m->t[j].pg - 1) & (m->cap - 1);

		/* Move j back to i unless its home lies in (i, j]. */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			m->t[i] = m->t[j];
			m->t[j].pg = 0;
			i = j;
		}
	}
	m->used--;
}

static void pinmap_dec(struct pinmap *m, uint64_t pg, bool excl)
{
	struct pinmap_ent *e = pinmap_find(m, pg);

	GM_BUG_ON(!e || !e->count || (excl && !e->excl));
	e->excl -= excl;
	if (--e->count == 0)
		pinmap_delete(m, (uint64_t)(e - m->t));
}

/**
 * pinmap_forget() - pages [pg0, pg1) leave the file (punch): the pins on
 * their old memory no longer concern the new memory that may come there.
 */
void pinmap_forget(struct pinmap *m, uint64_t pg0, uint64_t pg1)
{
	for (uint64_t i = 0; i < m->cap;) {
		uint64_t pg = m->t[i].pg - 1;

		/* A deletion shifts a later entry into slot i: look again. */
		if (m->t[i].pg && pg >= pg0 && pg < pg1)
			pinmap_delete(m, i);
		else
			i++;
	}
}

void pinmap_destroy(struct pinmap *m)
{
	gmem_free(m->t, m->cap * sizeof(*m->t));
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------ pin table */

static void pin_table_insert(struct gpool *p, struct gpin *pin)
{
	struct gpin **b = &p->pin_hash[hash64(pin->id) & (p->pin_hash_size - 1)];

	pin->hash_next = *b;
	*b = pin;
}

/* The link that points at pin @id, or at the NULL ending its chain. */
static struct gpin **pin_table_link(struct gpool *p, uint64_t id)
{
	struct gpin **pp = &p->pin_hash[hash64(id) & (p->pin_hash_size - 1)];

	while (*pp && (*pp)->id != id)
		pp = &(*pp)->hash_next;
	return pp;
}

static struct gpin *pin_table_remove(struct gpool *p, uint64_t id)
{
	struct gpin **pp = pin_table_link(p, id);
	struct gpin *pin = *pp;

	if (pin)
		*pp = pin->hash_next;
	return pin;
}

static size_t pin_bytes(uint32_t nr_segs)
{
	return sizeof(struct gpin) + nr_segs * sizeof(struct gpin_seg);
}

/*
 * Pin records of one segment (the common case: a 4K pin, or a few pages of
 * one folio) are kept for reuse on their file, up to PIN_CACHE_MAX, so a
 * pin+unpin loop allocates nothing.  Context: file lock.
 */
#define PIN_CACHE_MAX 8

static struct gpin *pin_alloc(struct gfile *f, uint32_t nr_segs)
{
	struct gpin *pin = f->pin_cache;

	if (nr_segs != 1 || !pin)
		return gmem_alloc(pin_bytes(nr_segs));
	f->pin_cache = pin->hash_next;
	f->nr_pin_cache--;
	memset(pin, 0, pin_bytes(1));
	return pin;
}

/* A record leaves use: keep it on an open file, else free it (after the
 * file lock is dropped: returns true if the caller must free it). */
static bool pin_release(struct gfile *f, struct gpin *pin)
{
	if (pin->nr_segs != 1 || f->closed || f->nr_pin_cache >= PIN_CACHE_MAX)
		return true;
	pin->hash_next = f->pin_cache;
	f->pin_cache = pin;
	f->nr_pin_cache++;
	return false;
}

/** pin_cache_destroy() - free a closing file's spare pin records. */
void pin_cache_destroy(struct gfile *f)
{
	while (f->pin_cache) {
		struct gpin *pin = f->pin_cache;

		f->pin_cache = pin->hash_next;
		gmem_free(pin, pin_bytes(1));
	}
	f->nr_pin_cache = 0;
}

/* ---------------------------------------------------------------- pin */

/*
 * Pin ids are unique in the process, not only in a pool, so that an id
 * given to the wrong pool's gmem_unpin() finds nothing (-ENOENT) instead
 * of another pool's pin.  64 bits do not wrap.
 */
static atomic_uint_fast64_t pin_next_id = 1;

/* The first page of [pg0, pg1) that cannot be pinned, and why. */
static int pin_check(struct gfile *f, uint64_t pg0, uint64_t pg1, bool excl)
{
	uint64_t priv = pg1, pois = pg1, busy = pg1, x;

	if (rs_first_not_in(&f->shared, pg0, pg1, &x))
		priv = x;
	if (rs_first_in(&f->poison, pg0, MIN(pg1, priv + 1), &x))
		pois = x;
	if (f->pinmap.used) {
		for (uint64_t pg = pg0; pg < MIN(pg1, MIN(priv, pois) + 1); pg++) {
			struct pinmap_ent *e = pinmap_find(&f->pinmap, pg);

			if (e && (e->excl || excl)) {
				busy = pg;
				break;
			}
		}
	}
	if (priv == pg1 && pois == pg1 && busy == pg1)
		return 0;
	if (priv <= pois && priv <= busy)
		return -EFAULT;
	if (pois <= busy)
		return -EHWPOISON;
	return -EBUSY;
}

/* Undo the memory a failing pin allocated. */
static void pin_undo_alloc(struct gfile *f, uint64_t *undo, uint64_t nr)
{
	while (nr--) {
		if (f->policy == GMEM_POLICY_4K)
			small_undo_alloc(f, undo[nr]);
		else
			huge_undo_alloc(f, undo[nr]);
	}
}

/* Pins of up to this many pages keep their undo list on the stack. */
#define PIN_UNDO_SMALL 16

int gmem_pin(struct gmem_mm *mmp, struct gmem_file *file, uint64_t off,
	     uint64_t len, unsigned int flags, uint64_t *id, void **pages)
{
	struct gfile *f = to_file(file);
	struct gpool *p;
	bool longterm = flags & GMEM_PIN_LONGTERM;
	bool excl = flags & GMEM_PIN_EXCLUSIVE;
	uint64_t pg0, pg1, nr = 0, nr_undo = 0, *undo = NULL;
	uint64_t undo_small[PIN_UNDO_SMALL];
	uint32_t nr_segs = 0;
	struct gpin *pin = NULL;
	struct gvma *v;
	struct split_list splits = { .nr = 0 };
	bool split;
	int ret;

	if (!mmp || !file || !id ||
	    (flags & ~(GMEM_PIN_LONGTERM | GMEM_PIN_EXCLUSIVE)) ||
	    to_mm(mmp)->pool != f->pool)
		return -EINVAL;
	/* b-adaptive: a long-term pin may split folios, a structural change
	 * (the policy never changes: read without a lock) */
	split = longterm && f->policy == GMEM_POLICY_B_ADAPTIVE;
	ret = split ? file_enter(f) : file_enter_shared(f);
	if (ret)
		return ret;
	p = f->pool;
	/* A pin is a host access: alignment and length are the caller's
	 * error, pages past the end the mapping's (EFAULT, below). */
	if (!len || (off & (PAGE_SIZE - 1)) || (len & (PAGE_SIZE - 1))) {
		ret = -EINVAL;
		goto out;
	}
	pthread_mutex_lock(&f->lock);
	v = vma_find_locked(f, to_mm(mmp));
	if (!v) {
		ret = -EFAULT;
		goto unlock;
	}
	if (longterm && f->policy == GMEM_POLICY_A) {
		pool_count(p, &p->run.eopnotsupp, &f->c.eopnotsupp, 1);
		ret = -EOPNOTSUPP;
		goto unlock;
	}
	/* [pg0, pg1) lies in the file; pages from pg1 on (if @len reaches
	 * past the end) come after every page of it in offset order. */
	pg0 = off >> PAGE_SHIFT;
	if (pg0 >= f->nr_pages) {
		ret = -EFAULT;
		goto unlock;
	}
	nr = MIN(len >> PAGE_SHIFT, f->nr_pages - pg0);
	pg1 = pg0 + nr;
	ret = pin_check(f, pg0, pg1, excl);
	if (!ret && nr != len >> PAGE_SHIFT)
		ret = -EFAULT;
	if (ret)
		goto unlock;
	nr_segs = 0;

	/* Prepare: everything that allocates, undoable. */
	ret = -ENOMEM;
	if (pinmap_reserve(&f->pinmap, nr) || pt_prepare(v, pg0, pg1))
		goto unlock;
	undo = nr <= PIN_UNDO_SMALL ? undo_small :
				      gmem_alloc(nr * sizeof(*undo));
	if (!undo)
		goto unlock;
	for (uint64_t pg = pg0; pg < pg1; pg++) {
		struct gfolio *fo;
		bool allocated;

		if (folio_get_or_alloc(f, pg, &fo, &allocated))
			goto undo;
		if (allocated)
			undo[nr_undo++] = f->policy == GMEM_POLICY_4K ? pg :
					  pg >> p->order;
		/* skip the rest of an allocated huge folio */
		pg = MIN(pg1, fo->index + folio_nr_pages(fo)) - 1;
	}
	if (split) {
		ret = file_split_for_pin(f, pg0, pg1, &splits);
		if (ret)
			goto undo_ret;
	}
	for (uint64_t pg = pg0, seg = 0, ptes = 0; pg < pg1; pg++) {
		struct gfolio *fo = folio_lookup(f, pg);

		if (pg == pg0 || fo != folio_lookup(f, pg - 1)) {
			nr_segs++;
			seg = ptes = 0;
		}
		seg++;
		ptes += !pt_present(v, pg);
		/* A folio's pages are contiguous: its segment ends here. */
		if ((pg + 1 == pg1 || pg + 1 == fo->index + folio_nr_pages(fo)) &&
		    !folio_pin_room(fo, seg, ptes)) {
			ret = -ENOMEM;
			goto undo_ret;
		}
	}
	pin = pin_alloc(f, nr_segs);
	if (!pin)
		goto undo;

	/* Commit: cannot fail. */
	nr_segs = 0;
	for (uint64_t pg = pg0; pg < pg1; pg++) {
		struct gfolio *fo = folio_lookup(f, pg);

		if (!pt_present(v, pg))
			pt_install(v, pg, fo);
		if (pg == pg0 || fo != pin->segs[nr_segs - 1].folio)
			pin->segs[nr_segs++] = (struct gpin_seg){ fo, 0 };
		pin->segs[nr_segs - 1].nr++;
		pinmap_inc(&f->pinmap, pg, excl);
		if (pages)
			pages[pg - pg0] = fo->data ? fo->data +
				((pg - fo->index) << PAGE_SHIFT) : NULL;
	}
	for (uint32_t i = 0; i < nr_segs; i++)
		folio_pin(pin->segs[i].folio, pin->segs[i].nr, longterm);
	pin->file = f;
	pin->pg = pg0;
	pin->nr_pages = nr;
	pin->flags = flags;
	pin->nr_segs = nr_segs;
	f->c.pins += nr;
	/* relaxed: ids need only be unique; the table is under p->lock */
	pin->id = atomic_fetch_add_explicit(&pin_next_id, 1,
					    memory_order_relaxed);
	pthread_mutex_lock(&p->lock);
	pin_table_insert(p, pin);
	p->nr_pins += nr;
	pthread_mutex_unlock(&p->lock);
	*id = pin->id;
	ret = 0;
	goto unlock;

undo:
	ret = -ENOMEM;
undo_ret:
	file_unsplit(f, &splits);
	/* zapped entries stay zapped: what they kept split may merge now,
	 * as after a failing conversion */
	for (unsigned int i = 0; i < splits.nr_zap; i++)
		file_note_merge_quiet(f, splits.zap_pg[i],
				      splits.zap_pg[i] + splits.zap_nr[i]);
	pin_undo_alloc(f, undo, nr_undo);
unlock:
	if (undo != undo_small)
		gmem_free(undo, nr * sizeof(*undo));
	pthread_mutex_unlock(&f->lock);
out:
	if (split)
		invalidate_unlock(f);
	else
		invalidate_unlock_shared(f);
	return ret;
}

/*
 * Whether an unpin may let a block merge: b-lazy, and a segment lies in a
 * split block (a folio smaller than the huge page) or left the file (then
 * note as before: its range may hold new memory).  An intact huge folio
 * is its slot's whole, unsplit block: nothing there can merge.
 * Context: file lock.
 */
static bool pin_may_merge(struct gfile *f, const struct gpin *pin)
{
	if (!policy_lazy(f))
		return false;
	for (uint32_t i = 0; i < pin->nr_segs; i++) {
		const struct gfolio *fo = pin->segs[i].folio;

		if (fo->order < f->pool->order || (fo->flags & FOLIO_DETACHED))
			return true;
	}
	return false;
}

/*
 * Take the lock of pin @id's file and remove the record from the pool's
 * table, under both locks, so that no validator sees the record without
 * the folios' pins or the reverse.  Return: the record, its file's lock
 * held; NULL if no such pin is held (no lock held).
 */
static struct gpin *pin_take(struct gpool *p, uint64_t id)
{
	struct gpin **pp, *pin;
	struct gfile *f;

	pthread_mutex_lock(&p->lock);
	pp = pin_table_link(p, id);
	pin = *pp;
	f = pin ? pin->file : NULL;	/* files are freed only with the pool */
	/*
	 * The file lock nests outside the pool's.  A try-lock out of that
	 * order cannot deadlock; when it succeeds (uncontended: the common
	 * case) the record leaves at once and the pool lock is taken once.
	 */
	if (f && !GM_RACE_COIN() && pthread_mutex_trylock(&f->lock) == 0) {
		*pp = pin->hash_next;
		p->nr_pins -= pin->nr_pages;
		pthread_mutex_unlock(&p->lock);
		return pin;
	}
	pthread_mutex_unlock(&p->lock);
	if (!f)
		return NULL;
	/* In order: the file's lock, then the pool's, and look again. */
	GM_RACE_YIELD();
	pthread_mutex_lock(&f->lock);
	pthread_mutex_lock(&p->lock);
	pin = pin_table_remove(p, id);	/* gone if another unpin won */
	if (pin)
		p->nr_pins -= pin->nr_pages;
	pthread_mutex_unlock(&p->lock);
	if (!pin)
		pthread_mutex_unlock(&f->lock);
	return pin;
}

/**
 * gmem_unpin() - see gmem.h.  Takes the pin's file lock (never its
 * invalidate lock); the merges an unpin makes possible run now if the
 * invalidate lock is free, else when its holder releases it.  An unpin
 * that can make no merge possible (pins only on intact huge folios, or a
 * policy that never merges) notes none and does not kick.
 */
int gmem_unpin(struct gmem_pool *pool, uint64_t id)
{
	struct gpool *p = to_pool(pool);
	struct gpin *pin;
	struct gfile *f;
	bool longterm, excl, merge = false, free_pin;

	if (!pool)
		return -EINVAL;
	pin = pin_take(p, id);
	if (!pin)
		return -ENOENT;
	f = pin->file;
	longterm = pin->flags & GMEM_PIN_LONGTERM;
	excl = pin->flags & GMEM_PIN_EXCLUSIVE;
	if (!f->closed) {
		/* Pages that left the file took their pin-map entries along
		 * (pinmap_forget()): only attached ones are in the map. */
		uint64_t pg = pin->pg;

		for (uint32_t i = 0; i < pin->nr_segs; i++) {
			bool gone = pin->segs[i].folio->flags & FOLIO_DETACHED;

			for (uint32_t j = 0; j < pin->segs[i].nr; j++, pg++)
				if (!gone)
					pinmap_dec(&f->pinmap, pg, excl);
		}
		/* before folio_unpin(): a detached folio may be freed there */
		merge = pin_may_merge(f, pin);
	}
	for (uint32_t i = 0; i < pin->nr_segs; i++)
		folio_unpin(f, pin->segs[i].folio, pin->segs[i].nr, longterm);
	if (!f->closed) {
		f->c.pins -= pin->nr_pages;
		if (merge)
			file_note_merge(f, pin->pg, pin->pg + pin->nr_pages);
	}
	pthread_cond_broadcast(&f->pin_wait);
	free_pin = pin_release(f, pin);
	pthread_mutex_unlock(&f->lock);
	GM_RACE_YIELD();
	if (free_pin)
		gmem_free(pin, pin_bytes(pin->nr_segs));
	/* Only a noter kicks: any other note's maker kicks itself, and every
	 * holder of the invalidate lock kicks on release. */
	if (merge)
		file_kick_merges(f);
	return 0;
}

/** pins_drop_all() - unpin everything (pool destruction). */
void pins_drop_all(struct gpool *p)
{
	for (uint64_t b = 0; p->pin_hash && b < p->pin_hash_size; b++)
		while (p->pin_hash[b])
			gmem_unpin((struct gmem_pool *)p, p->pin_hash[b]->id);
}

/**
 * pins_collect() - call @fn for every pinned page segment of the pool.
 * Context: pool lock taken here; the callback must not take it.
 */
void pins_for_each(struct gpool *p,
		   void (*fn)(void *arg, struct gpin *pin), void *arg)
{
	pthread_mutex_lock(&p->lock);
	for (uint64_t b = 0; b < p->pin_hash_size; b++)
		for (struct gpin *pin = p->pin_hash[b]; pin; pin = pin->hash_next)
			fn(arg, pin);
	pthread_mutex_unlock(&p->lock);
}

/* Per-page pin map entries for [pg0, pg1): pinned pages counted. */
uint64_t pinmap_count(struct pinmap *m, uint64_t pg)
{
	struct pinmap_ent *e = pinmap_find(m, pg);

	return e ? e->count : 0;
}
