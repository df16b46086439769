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

/*
 * A pin's id is (generation << PIN_SLOT_BITS) | slot.  Generations come
 * from one process-wide counter, taken by each thread in batches of
 * PIN_GEN_BATCH (a thread that ends leaves the rest of its batch unused),
 * so ids are unique in the process until 2^40 generations are used, and
 * an id given to the wrong pool's gmem_unpin() finds nothing there
 * (-ENOENT).  Generation 0 is skipped: id 0 marks a free slot.  A pool
 * holds at most 2^24 pin records at once.
 */
#define PIN_SLOT_BITS	24
#define PIN_SLOT_MASK	((1ULL << PIN_SLOT_BITS) - 1)
#define PIN_CHUNK_BITS	12
#define PIN_CHUNK	(1ULL << PIN_CHUNK_BITS)
#define PIN_NR_CHUNKS	(1ULL << (PIN_SLOT_BITS - PIN_CHUNK_BITS))
#define PIN_GEN_BATCH	64

static atomic_uint_fast64_t pin_gen_next = 1;
static _Thread_local uint64_t pin_gen, pin_gen_end;

static atomic_uint shard_next;
static _Thread_local unsigned int shard_mine = NR_SHARDS;

/* This thread's shard: threads take them in turn. */
static unsigned int thread_shard(void)
{
	if (shard_mine == NR_SHARDS)
		/* relaxed: any spread will do */
		shard_mine = atomic_fetch_add_explicit(&shard_next, 1,
						       memory_order_relaxed) %
			     NR_SHARDS;
	return shard_mine;
}

/*
 * A fast pin is counted in its pinning thread's shard, and its unpin takes
 * it from the same shard, whichever thread unpins: so no shard ever goes
 * below zero, and a sum read while others pin and unpin, though it may
 * count a pin that went or miss one that came, is never negative.
 */
static void shard_add(struct shard_counter *c, unsigned int sh, int64_t n)
{
	/* relaxed: a gauge; readers that need it exact hold the locks that
	 * keep fast paths out (gmem_check()) */
	atomic_fetch_add_explicit(&c->s[sh].v, n, memory_order_relaxed);
}

int64_t shard_sum(struct shard_counter *c)
{
	int64_t n = 0;

	for (unsigned int i = 0; i < NR_SHARDS; i++)
		n += atomic_load_explicit(&c->s[i].v, memory_order_relaxed);
	return n;
}

/** file_pins() - pages pinned in @f now, by either path. */
uint64_t file_pins(struct gfile *f)
{
	return f->c.pins + (uint64_t)shard_sum(&f->fast_pins);
}

static uint64_t pin_new_id(uint64_t slot)
{
	for (;;) {
		uint64_t g;

		if (pin_gen == pin_gen_end) {
			/* relaxed: ids need only be unique */
			pin_gen = atomic_fetch_add_explicit(&pin_gen_next,
							    PIN_GEN_BATCH,
							    memory_order_relaxed);
			pin_gen_end = pin_gen + PIN_GEN_BATCH;
		}
		g = pin_gen++;
		/* the shift keeps 40 bits: one that keeps none could give
		 * id 0, which marks a free slot */
		if (g & ((1ULL << (64 - PIN_SLOT_BITS)) - 1))
			return (g << PIN_SLOT_BITS) | slot;
	}
}

/* A record's field, before its id publishes it. */
#define pin_set(field, v) \
	atomic_store_explicit(field, v, memory_order_relaxed)

/* Slot @i of the table; it must exist (i < pin_hwm). */
static struct gpin *pin_slot(struct gpool *p, uint64_t i)
{
	/* acquire: a chunk is published zeroed (pin_slot_new()) */
	struct gpin *c = atomic_load_explicit(&p->pin_chunks[i >> PIN_CHUNK_BITS],
					      memory_order_acquire);

	return &c[i & (PIN_CHUNK - 1)];
}

int pin_table_init(struct gpool *p)
{
	p->pin_chunks = gmem_alloc(PIN_NR_CHUNKS * sizeof(*p->pin_chunks));
	if (!p->pin_chunks)
		return -ENOMEM;
	pthread_mutex_init(&p->pin_grow, NULL);
	return 0;
}

void pin_table_destroy(struct gpool *p)
{
	if (!p->pin_chunks)
		return;
	for (uint64_t c = 0; c < PIN_NR_CHUNKS; c++)
		gmem_free(p->pin_chunks[c], PIN_CHUNK * sizeof(struct gpin));
	gmem_free(p->pin_chunks, PIN_NR_CHUNKS * sizeof(*p->pin_chunks));
	pthread_mutex_destroy(&p->pin_grow);
}

/* Pop a free slot from shard @sh's stack; -1 if it is empty.  Slots are
 * never freed, so reading a popped one's link is safe; the tag in the
 * head defeats ABA. */
static int64_t pin_slot_pop(struct gpool *p, unsigned int sh)
{
	atomic_uint_fast64_t *head = &p->pin_free[sh].head;
	/* acquire: the slot's link was written before it was pushed */
	uint64_t h = atomic_load_explicit(head, memory_order_acquire);

	while (h & 0xffffffffULL) {
		uint64_t i = (h & 0xffffffffULL) - 1;
		uint64_t next = atomic_load_explicit(&pin_slot(p, i)->next_free,
						     memory_order_relaxed);
		uint64_t nh = (((h >> 32) + 1) << 32) | next;

		if (atomic_compare_exchange_weak_explicit(head, &h, nh,
							  memory_order_acquire,
							  memory_order_acquire))
			return (int64_t)i;
	}
	return -1;
}

static void pin_slot_push(struct gpool *p, uint64_t i)
{
	atomic_uint_fast64_t *head;
	uint64_t h;

	head = &p->pin_free[thread_shard()].head;
	h = atomic_load_explicit(head, memory_order_relaxed);

	do {
		atomic_store_explicit(&pin_slot(p, i)->next_free,
				      (unsigned int)(h & 0xffffffffULL),
				      memory_order_relaxed);
	/* release: the link is written before the slot shows */
	} while (!atomic_compare_exchange_weak_explicit(
			head, &h, (((h >> 32) + 1) << 32) | (i + 1),
			memory_order_release, memory_order_relaxed));
}

/* A slot never used before: the table grows under its own lock. */
static int64_t pin_slot_new(struct gpool *p)
{
	int64_t ret = -1;
	uint64_t i;

	pthread_mutex_lock(&p->pin_grow);
	i = atomic_load_explicit(&p->pin_hwm, memory_order_relaxed);
	if (i <= PIN_SLOT_MASK) {
		_Atomic(struct gpin *) *cp = &p->pin_chunks[i >> PIN_CHUNK_BITS];

		if (!atomic_load_explicit(cp, memory_order_relaxed)) {
			struct gpin *c = gmem_alloc_cacheline(PIN_CHUNK *
							      sizeof(*c));

			if (!c)
				goto out;
			/* release: the chunk shows zeroed */
			atomic_store_explicit(cp, c, memory_order_release);
		}
		/* release: readers of the mark see the chunk */
		atomic_store_explicit(&p->pin_hwm, i + 1, memory_order_release);
		ret = (int64_t)i;
	}
out:
	pthread_mutex_unlock(&p->pin_grow);
	return ret;
}

/* A free slot: this thread's shard first, then the others, then a new
 * one.  Return: the slot index, or -1 without memory. */
static int64_t pin_slot_get(struct gpool *p)
{
	unsigned int sh = thread_shard();
	int64_t i;

	for (unsigned int k = 0; k < NR_SHARDS; k++) {
		i = pin_slot_pop(p, (sh + k) % NR_SHARDS);
		if (i >= 0)
			return i;
	}
	return pin_slot_new(p);
}

/* The record of pin @id if it is held now (a hint: claim it to be sure). */
static struct gpin *pin_find(struct gpool *p, uint64_t id)
{
	uint64_t i = id & PIN_SLOT_MASK;
	struct gpin *pin;

	if (!id || i >= atomic_load_explicit(&p->pin_hwm, memory_order_acquire))
		return NULL;
	pin = pin_slot(p, i);
	/* acquire: the record's fields were written before its id */
	return atomic_load_explicit(&pin->id, memory_order_acquire) == id ?
	       pin : NULL;
}

/* Take pin @id for unpinning: the one caller that succeeds owns it. */
static bool pin_claim(struct gpin *pin, uint64_t id)
{
	/* acq_rel: after the claim the record is ours; the next owner of
	 * the slot sees it released */
	return atomic_compare_exchange_strong_explicit(&pin->id, &id, 0,
						       memory_order_acq_rel,
						       memory_order_relaxed);
}

/* Give a claimed record's slot back (and a segment array). */
static void pin_free(struct gpool *p, struct gpin *pin, uint64_t id)
{
	struct gpin_seg *segs = pin->segs;

	if (segs != &pin->seg1)
		gmem_free(segs, pin->nr_segs * sizeof(*segs));
	pin_slot_push(p, id & PIN_SLOT_MASK);
}

/* ---------------------------------------------------------------- pin */

/*
 * Whether a fast-path pin of @f holds a page of [pg0, pg1) (an exclusive
 * pin needs none).  Fast pins are not in the pin map: look at the table.
 * Context: invalidate lock exclusive (no fast path runs), file lock.
 */
static bool fast_pin_in(struct gfile *f, uint64_t pg0, uint64_t pg1,
			uint64_t *at)
{
	struct gpool *p = f->pool;
	uint64_t hwm = atomic_load_explicit(&p->pin_hwm, memory_order_acquire);
	bool found = false;

	if (!shard_sum(&f->fast_pins))
		return false;
	for (uint64_t i = 0; i < hwm; i++) {
		struct gpin *pin = pin_slot(p, i);
		uint64_t pg;

		if (!atomic_load_explicit(&pin->id, memory_order_acquire) ||
		    pin->file != f || !(pin->flags & GPIN_FAST))
			continue;
		pg = pin->pg;
		/* a page that left the file took its pins along */
		if (pg < pg0 || pg >= pg1 ||
		    (pin->seg1.folio->flags & FOLIO_DETACHED))
			continue;
		if (!found || pg < *at)
			*at = pg;
		found = true;
	}
	return found;
}

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
	if (excl && fast_pin_in(f, pg0, MIN(busy, MIN(priv, pois) + 1), &x))
		busy = MIN(busy, x);
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

/*
 * pin_fast() - pin one page whose host entry is present, with no lock, as
 * GUP-fast does: under RCU, announce the fast path (f->fast_used), check
 * that no holder of the invalidate lock is inside (seq even) and that the
 * file has no exclusive pin, find the entry, take the pin's reference on
 * its folio speculatively (only if the folio is live and within the
 * reference limit), then re-check that seq and the entry are unchanged;
 * otherwise drop the reference and let the slow path decide.
 *
 * A holder that makes seq odd after this path read it waits for it to
 * end (invalidate_lock_mark()); the re-check then sees seq changed and
 * backs out, so the holder never acts on a speculative reference.  The
 * re-check alone would keep pins off private pages, as the kernel's
 * re-check of the PTE does: model/gmem.pml checks the path with the
 * handshake (FAST, HOLDER_GP) and without it (FAST).
 * Return: 0 pinned (*@id, @pages[0] set), 1 take the slow path.
 */
static int pin_fast(struct gfile *f, unsigned int gen,
		    const struct gmem_mm *mmh, uint64_t pg, unsigned int flags,
		    uint64_t *id, void **pages)
{
	struct gpool *p = f->pool;
	bool longterm = flags & GMEM_PIN_LONGTERM;
	unsigned int seq, sh = thread_shard();
	uint64_t new_id;
	struct gfolio *fo;
	struct gpin *pin;
	struct gvma *v;
	uint8_t *data;
	int64_t slot, limit;
	int old, drop;

	/* pg is not checked against the file's size: pt_lookup_rcu() bounds
	 * the walk, and a page past the end has no entry */
	slot = pin_slot_get(p);
	if (slot < 0)
		return 1;
	pin = pin_slot(p, (uint64_t)slot);
	gmem_rcu_read_lock();
	/* seq_cst: announce, then read seq (invalidate_lock_mark()) */
	if (!atomic_load_explicit(&f->fast_used, memory_order_seq_cst))
		atomic_store_explicit(&f->fast_used, true,
				      memory_order_seq_cst);
	seq = atomic_load_explicit(&f->seq, memory_order_seq_cst);
	/* relaxed: gen changes only while seq is odd (the re-check) */
	/* gen before any field of one life (nr_excl): a create that reuses
	 * the struct clears them, after waiting for this section */
	if ((seq & 1) ||
	    (atomic_load_explicit(&f->gen, memory_order_relaxed) & 0xffff) !=
	    gen ||
	    atomic_load_explicit(&f->nr_excl, memory_order_relaxed))
		goto slow;
	v = vma_find_rcu(f, to_mm(mmh));
	/* after the mapping's acquire: a destroy before it shows here */
	fo = v && mm_handle_live(mmh) ? pt_lookup_rcu(v, pg) : NULL;
	if (!fo)
		goto slow;
	/* folio_try_get(): only a live folio, and never past the limit */
	drop = fo->order ? 1 : GUP_PIN_COUNTING_BIAS;
	limit = atomic_load_explicit(&folio_ref_limit, memory_order_relaxed);
	old = atomic_load_explicit(&fo->refcount, memory_order_relaxed);
	do {
		if (old <= 0 || (int64_t)old + drop > limit)
			goto slow;
	/* seq_cst: the reference is visible before the re-check below */
	} while (!atomic_compare_exchange_weak_explicit(&fo->refcount, &old,
							old + drop,
							memory_order_seq_cst,
							memory_order_relaxed));
	if (fo->order)
		atomic_fetch_add_explicit(&fo->pincount, 1, memory_order_relaxed);
	if (longterm)
		atomic_fetch_add_explicit(&fo->longterm, 1, memory_order_relaxed);
	/* seq_cst: re-check after the reference is taken */
	if (atomic_load_explicit(&f->seq, memory_order_seq_cst) != seq ||
	    pt_lookup_rcu(v, pg) != fo) {
		if (longterm)
			atomic_fetch_sub_explicit(&fo->longterm, 1,
						  memory_order_relaxed);
		if (fo->order)
			atomic_fetch_sub_explicit(&fo->pincount, 1,
						  memory_order_relaxed);
		/* the entry's reference is still held: never the last */
		atomic_fetch_sub_explicit(&fo->refcount, drop,
					  memory_order_release);
		goto slow;
	}
	/* relaxed: the id's release store below publishes them all */
	pin_set(&pin->file, f);
	pin_set(&pin->pg, pg);
	pin_set(&pin->nr_pages, 1);
	pin_set(&pin->flags, flags | GPIN_FAST);
	pin_set(&pin->nr_segs, 1);
	pin_set(&pin->seg1.folio, fo);
	pin_set(&pin->seg1.nr, 1);
	pin_set(&pin->segs, &pin->seg1);
	pin_set(&pin->seg1_folio, fo);
	pin_set(&pin->shard, sh);
	shard_add(&f->fast_pins, sh, 1);
	data = fo->data ? fo->data + ((pg - fo->index) << PAGE_SHIFT) : NULL;
	new_id = pin_new_id((uint64_t)slot);
	/* release: the record is whole before its id shows */
	atomic_store_explicit(&pin->id, new_id, memory_order_release);
	gmem_rcu_read_unlock();
	/* The caller's memory only now: it may lie in a view of another
	 * file, whose fault handler may wait for a holder that waits for
	 * this read-side section. */
	if (pages)
		pages[0] = data;
	*id = new_id;
	return 0;
slow:
	gmem_rcu_read_unlock();
	pin_slot_push(p, (uint64_t)slot);
	return 1;
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
	struct gpin_seg *segs = NULL;
	int64_t slot;
	struct gvma *v;
	/* its counts only: the arrays are written as entries are added, and
	 * zeroing them all cost the fast path 47 instructions a pin */
	struct split_list splits;
	bool split;
	int ret;

	if (!mmp || !file || !id ||
	    (flags & ~(GMEM_PIN_LONGTERM | GMEM_PIN_EXCLUSIVE)) ||
	    to_mm(mmp)->pool != f->pool)
		return -EINVAL;
	/* before any field of the file: a stale handle's struct may be
	 * another file's, being set up (file_enter() checks again) */
	if (!mm_handle_live(mmp) || !file_handle_live(file))
		return -EBADF;
	/* b-adaptive: a long-term pin may split folios, a structural change
	 * (fixed for the file's life, the handle checked: read without a lock) */
	split = longterm && f->policy == GMEM_POLICY_B_ADAPTIVE;
	if (len == PAGE_SIZE && !excl && !split && !(off & (PAGE_SIZE - 1)) &&
	    !(longterm && f->policy == GMEM_POLICY_A)) {
		ret = pin_fast(f, handle_gen(file), mmp, off >> PAGE_SHIFT,
			       flags, id, pages);
		if (ret <= 0)
			return ret;
	}
	splits.nr = 0;
	splits.nr_zap = 0;
	/* An exclusive pin looks for fast-path pins in the table: no fast
	 * path may run meanwhile (file_enter() waits them out). */
	ret = split || excl ? file_enter(f, handle_gen(file)) :
			      file_enter_shared(f, handle_gen(file));
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
	v = vma_lookup(f, mmp);
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
	segs = nr_segs == 1 ? NULL : gmem_alloc(nr_segs * sizeof(*segs));
	if (nr_segs != 1 && !segs)
		goto undo;
	slot = pin_slot_get(p);
	if (slot < 0) {
		gmem_free(segs, nr_segs * sizeof(*segs));
		goto undo;
	}
	pin = pin_slot(p, (uint64_t)slot);
	if (!segs)
		segs = &pin->seg1;

	/* Commit: cannot fail. */
	nr_segs = 0;
	for (uint64_t pg = pg0; pg < pg1; pg++) {
		struct gfolio *fo = folio_lookup(f, pg);

		if (!pt_present(v, pg))
			pt_install(v, pg, fo);
		/* relaxed: published with the record's id */
		if (pg == pg0 || fo != segs[nr_segs - 1].folio) {
			pin_set(&segs[nr_segs].folio, fo);
			pin_set(&segs[nr_segs++].nr, 0);
		}
		atomic_fetch_add_explicit(&segs[nr_segs - 1].nr, 1,
					  memory_order_relaxed);
		pinmap_inc(&f->pinmap, pg, excl);
		if (pages)
			pages[pg - pg0] = fo->data ? fo->data +
				((pg - fo->index) << PAGE_SHIFT) : NULL;
	}
	for (uint32_t i = 0; i < nr_segs; i++)
		folio_pin(segs[i].folio, segs[i].nr, longterm);
	/* relaxed: the id's release store below publishes them all */
	pin_set(&pin->file, f);
	pin_set(&pin->pg, pg0);
	pin_set(&pin->nr_pages, nr);
	pin_set(&pin->flags, flags);
	pin_set(&pin->nr_segs, nr_segs);
	pin_set(&pin->segs, segs);
	pin_set(&pin->seg1_folio, segs[0].folio);
	f->c.pins += nr;
	if (excl)
		atomic_fetch_add_explicit(&f->nr_excl, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->nr_pins, nr, memory_order_relaxed);
	*id = pin_new_id((uint64_t)slot);
	/* release: the record is whole before its id shows */
	atomic_store_explicit(&pin->id, *id, memory_order_release);
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
	if (split || excl)
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
 * unpin_fast() - drop a fast-path pin with no lock: under RCU, announce
 * the fast path, check that no holder of the invalidate lock is inside,
 * claim the record and drop the folio's counts.  Only a pin whose unpin
 * needs nothing else: its folio still in the file, no merge to note, no
 * view to tell.  Return: 0 done, -ENOENT no such pin, 1 take the slow
 * path (nothing done).
 */
static int unpin_fast(struct gpool *p, uint64_t id)
{
	struct gpin *pin;
	struct gfolio *fo;
	struct gfile *f;
	unsigned int fl, gen = 0;
	uint64_t pg = 0;
	bool refs_full = false;
	int ret = 1;

	gmem_rcu_read_lock();
	pin = pin_find(p, id);
	if (!pin) {
		ret = -ENOENT;
		goto out;
	}
	/* relaxed: after pin_find()'s acquire of the id */
	fl = atomic_load_explicit(&pin->flags, memory_order_relaxed);
	f = atomic_load_explicit(&pin->file, memory_order_relaxed);
	fo = atomic_load_explicit(&pin->seg1_folio, memory_order_relaxed);
	if (!(fl & GPIN_FAST) || !f || !fo)
		goto out;
	/* seq_cst: announce, then read seq (invalidate_lock_mark()) */
	if (!atomic_load_explicit(&f->fast_used, memory_order_seq_cst))
		atomic_store_explicit(&f->fast_used, true,
				      memory_order_seq_cst);
	if (atomic_load_explicit(&f->seq, memory_order_seq_cst) & 1)
		goto out;
	/* relaxed: gen changes only while seq is odd, and no holder is
	 * inside until this ends; the life of the file this unpin is in */
	gen = atomic_load_explicit(&f->gen, memory_order_relaxed);
	/* no holder is inside until this ends: the folio stays in the file
	 * with its order (the record may be another's by now: then the
	 * claim fails) */
	if ((fo->flags & (FOLIO_DETACHED | FOLIO_REFS_FULL)) ||
	    (policy_lazy(f) && fo->order < p->order))
		goto out;
	if (!pin_claim(pin, id)) {
		ret = -ENOENT;
		goto out;
	}
	pg = atomic_load_explicit(&pin->pg, memory_order_relaxed);
	if (fl & GMEM_PIN_LONGTERM)
		atomic_fetch_sub_explicit(&fo->longterm, 1, memory_order_relaxed);
	if (fo->order)
		atomic_fetch_sub_explicit(&fo->pincount, 1, memory_order_relaxed);
	/* seq_cst: the references go before the flag is read below, against
	 * a view's refused fault, which marks the folio and then looks at
	 * the refcount again (host_fault_locked()).  The file's and the
	 * entry's references remain: never the last. */
	atomic_fetch_sub_explicit(&fo->refcount,
				  fo->order ? 1 : GUP_PIN_COUNTING_BIAS,
				  memory_order_seq_cst);
	refs_full = atomic_load_explicit(&fo->flags, memory_order_seq_cst) &
		    FOLIO_REFS_FULL;
	shard_add(&f->fast_pins,
		  atomic_load_explicit(&pin->shard, memory_order_relaxed), -1);
	ret = 0;
out:
	gmem_rcu_read_unlock();
	if (ret)
		return ret;
	pin_free(p, pin, id);
	/* A view's fault refused for want of room came in meanwhile: now
	 * there is room, let its next access trap again (folio_unpin()).
	 * The pin no longer counts in the file: it may have closed since,
	 * and its struct serve a new file (gen changed, under this lock),
	 * whose pages are not this pin's. */
	if (refs_full) {
		pthread_mutex_lock(&f->lock);
		fo = f->closed || atomic_load_explicit(&f->gen,
						       memory_order_relaxed) !=
				  gen ? NULL : folio_lookup(f, pg);
		if (fo && (fo->flags & FOLIO_REFS_FULL) &&
		    !(fo->flags & FOLIO_DETACHED)) {
			fo->flags &= (uint8_t)~FOLIO_REFS_FULL;
			views_unmark(f, fo->index,
				     fo->index + folio_nr_pages(fo));
		}
		pthread_mutex_unlock(&f->lock);
	}
	return 0;
}

/*
 * Take pin @id's file lock and claim the record, so that no validator
 * sees the record without the folios' pins or the reverse.  Return: the
 * record, its file's lock held; NULL if no such pin is held (no lock).
 */
static struct gpin *pin_take(struct gpool *p, uint64_t id)
{
	for (;;) {
		struct gpin *pin = pin_find(p, id);
		struct gfile *f;

		if (!pin)
			return NULL;
		f = pin->file;	/* files are freed only with the pool */
		GM_RACE_YIELD();
		pthread_mutex_lock(&f->lock);
		if (pin->file == f && pin_claim(pin, id))
			return pin;
		pthread_mutex_unlock(&f->lock);
		/* gone (another unpin won), or the slot was reused */
		if (!pin_find(p, id))
			return NULL;
	}
}

/**
 * gmem_unpin() - see gmem.h.  A fast-path pin is dropped with no lock
 * when nothing else is to be done (unpin_fast()); otherwise this takes
 * the pin's file lock (never its invalidate lock); the merges an unpin
 * makes possible run now if the invalidate lock is free, else when its
 * holder releases it.  An unpin that can make no merge possible (pins
 * only on intact huge folios, or a policy that never merges) notes none
 * and does not kick.
 */
int gmem_unpin(struct gmem_pool *pool, uint64_t id)
{
	struct gpool *p = to_pool(pool);
	struct gpin *pin;
	struct gfile *f;
	bool longterm, excl, fast, merge = false;
	int ret;

	if (!pool)
		return -EINVAL;
	ret = unpin_fast(p, id);
	if (ret <= 0)
		return ret;
	pin = pin_take(p, id);
	if (!pin)
		return -ENOENT;
	f = pin->file;
	longterm = pin->flags & GMEM_PIN_LONGTERM;
	excl = pin->flags & GMEM_PIN_EXCLUSIVE;
	fast = pin->flags & GPIN_FAST;
	if (!f->closed) {
		/* Pages that left the file took their pin-map entries along
		 * (pinmap_forget()): only attached ones are in the map; fast
		 * pins never are. */
		uint64_t pg = pin->pg;

		for (uint32_t i = 0; i < pin->nr_segs && !fast; i++) {
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
	if (fast) {
		shard_add(&f->fast_pins, pin->shard, -(int64_t)pin->nr_pages);
	} else {
		/* a closed file's too: its struct is reused only once no pin
		 * refers to it (zombie_take()) */
		f->c.pins -= pin->nr_pages;
		atomic_fetch_sub_explicit(&p->nr_pins, pin->nr_pages,
					  memory_order_relaxed);
	}
	if (excl)
		atomic_fetch_sub_explicit(&f->nr_excl, 1, memory_order_relaxed);
	if (merge && !f->closed)
		file_note_merge(f, pin->pg, pin->pg + pin->nr_pages);
	pthread_cond_broadcast(&f->pin_wait);
	pthread_mutex_unlock(&f->lock);
	GM_RACE_YIELD();
	pin_free(p, pin, id);
	/* Only a noter kicks: any other note's maker kicks itself, and every
	 * holder of the invalidate lock kicks on release. */
	if (merge)
		file_kick_merges(f);
	return 0;
}

/** pins_drop_all() - unpin everything (pool destruction). */
void pins_drop_all(struct gpool *p)
{
	uint64_t hwm = atomic_load_explicit(&p->pin_hwm, memory_order_acquire);

	for (uint64_t i = 0; i < hwm; i++) {
		uint64_t id = atomic_load_explicit(&pin_slot(p, i)->id,
						   memory_order_acquire);

		if (id)
			gmem_unpin((struct gmem_pool *)p, id);
	}
}

/**
 * pins_for_each() - call @fn for every pin record of the pool.  Records
 * of a file are stable while its file lock is held and no fast path runs
 * (its invalidate lock held exclusively); others may come and go.
 */
void pins_for_each(struct gpool *p,
		   void (*fn)(void *arg, struct gpin *pin), void *arg)
{
	uint64_t hwm = atomic_load_explicit(&p->pin_hwm, memory_order_acquire);

	for (uint64_t i = 0; i < hwm; i++) {
		struct gpin *pin = pin_slot(p, i);

		if (atomic_load_explicit(&pin->id, memory_order_acquire))
			fn(arg, pin);
	}
}

/* Per-page pin map entries for [pg0, pg1): pinned pages counted. */
uint64_t pinmap_count(struct pinmap *m, uint64_t pg)
{
	struct pinmap_ent *e = pinmap_find(m, pg);

	return e ? e->count : 0;
}
