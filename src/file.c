// SPDX-License-Identifier: MIT
/*
 * file.c - guest memory files: creation and close, the invalidate lock,
 * the conversion protocol (gmem_convert()), punch-hole and memory failure.
 */
#include <string.h>
#include <time.h>

#include "internal.h"

struct gmem_test_hooks gmem_test_hooks;

/* ------------------------------------------------------ invalidate lock */

void inval_init(struct ginval *l)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	/* Writers first: a stream of faults must not starve a conversion. */
	pthread_rwlockattr_setkind_np(&a,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&l->rw, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&l->q, NULL);
	pthread_cond_init(&l->q_turn, NULL);
	l->next_ticket = l->serving = 0;
	atomic_init(&l->readers, 0);
	atomic_init(&l->writer_held, false);
}

void inval_destroy(struct ginval *l)
{
	pthread_rwlock_destroy(&l->rw);
	pthread_mutex_destroy(&l->q);
	pthread_cond_destroy(&l->q_turn);
}

void invalidate_lock_shared(struct gfile *f)
{
	GM_RACE_YIELD();
	pthread_rwlock_rdlock(&f->inval.rw);
	/* relaxed: assertion bookkeeping only */
	atomic_fetch_add_explicit(&f->inval.readers, 1, memory_order_relaxed);
}

void invalidate_unlock_shared(struct gfile *f)
{
	atomic_fetch_sub_explicit(&f->inval.readers, 1, memory_order_relaxed);
	pthread_rwlock_unlock(&f->inval.rw);
	GM_RACE_YIELD();
	file_kick_merges(f);
}

static void invalidate_lock_mark(struct gfile *f)
{
	/* relaxed: assertion bookkeeping, written by the holder only */
	atomic_store_explicit(&f->inval.writer, pthread_self(),
			      memory_order_relaxed);
	atomic_store_explicit(&f->inval.writer_held, true,
			      memory_order_relaxed);
	/* seq_cst read-modify-write: the odd count is visible before any
	 * change this holder makes (acquire: nothing after it moves before
	 * it), and it is in the single order of the handshake below */
	atomic_fetch_add_explicit(&f->seq, 1, memory_order_seq_cst);
	/*
	 * A fast pin or unpin sets fast_used, then reads seq (both seq_cst);
	 * this holder made seq odd, then reads fast_used.  One of the two
	 * sees the other: either the fast path sees odd and takes the slow
	 * path, or this holder waits here until it has finished.  So no fast
	 * path runs while a holder works, and no holder sees a fast path's
	 * transient reference.
	 */
	if (atomic_load_explicit(&f->fast_used, memory_order_seq_cst)) {
		atomic_store_explicit(&f->fast_used, false,
				      memory_order_seq_cst);
		/* the grace period waits for fast loads too */
		atomic_store_explicit(&f->fast_read_used, false,
				      memory_order_seq_cst);
		gmem_synchronize_rcu();
	}
}

void invalidate_lock(struct gfile *f)
{
	struct ginval *l = &f->inval;
	uint64_t me;

	GM_RACE_YIELD();
	pthread_mutex_lock(&l->q);
	me = l->next_ticket++;
	while (me != l->serving)
		pthread_cond_wait(&l->q_turn, &l->q);
	pthread_mutex_unlock(&l->q);
	pthread_rwlock_wrlock(&l->rw);
	invalidate_lock_mark(f);
}

static void __invalidate_unlock(struct gfile *f)
{
	/* release: every change made inside is visible before the even
	 * count; only the holder writes seq, so a store will do */
	atomic_store_explicit(&f->seq,
			      atomic_load_explicit(&f->seq,
						   memory_order_relaxed) + 1,
			      memory_order_release);
	atomic_store_explicit(&f->inval.writer_held, false,
			      memory_order_relaxed);
	pthread_rwlock_unlock(&f->inval.rw);
}

void invalidate_unlock(struct gfile *f)
{
	struct ginval *l = &f->inval;

	__invalidate_unlock(f);
	pthread_mutex_lock(&l->q);
	l->serving++;
	pthread_cond_broadcast(&l->q_turn);
	pthread_mutex_unlock(&l->q);
	GM_RACE_YIELD();
	file_kick_merges(f);
}

bool invalidate_held_exclusive(struct gfile *f)
{
	return atomic_load_explicit(&f->inval.writer_held,
				    memory_order_relaxed) &&
	       pthread_equal(atomic_load_explicit(&f->inval.writer,
						  memory_order_relaxed),
			     pthread_self());
}

bool invalidate_held(struct gfile *f)
{
	return invalidate_held_exclusive(f) ||
	       atomic_load_explicit(&f->inval.readers, memory_order_relaxed) > 0;
}

/**
 * file_kick_merges() - run merges that an unpin noted while the invalidate
 * lock was taken.  Called after every release of the lock: whoever sees the
 * flag and gets the lock does the work, so a noted merge is never lost.
 */
void file_kick_merges(struct gfile *f)
{
	/*
	 * A store-buffer pattern: the unpinner stores the flag, then reads the
	 * lock word (trylock); the holder writes the lock word (unlock), then
	 * loads the flag.  A release store and a seq_cst load of another
	 * location may pass each other in C11, so both sides could miss the
	 * other's store and the merge be lost.  Every caller gets here after
	 * its store (the note or the unlock): one full fence orders both.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	/* seq_cst: with the fence above, this load sees the other's store */
	while (atomic_load_explicit(&f->merge_pending, memory_order_seq_cst)) {
		if (pthread_rwlock_trywrlock(&f->inval.rw))
			return;		/* the holder runs them on release */
		invalidate_lock_mark(f);
		pthread_mutex_lock(&f->lock);
		file_run_merges(f);
		pthread_mutex_unlock(&f->lock);
		__invalidate_unlock(f);
	}
}

/*
 * Whether @f is open and still the file of generation @gen.  Context:
 * invalidate lock, either mode (gen changes only under it, exclusive).
 */
static bool file_is(struct gfile *f, unsigned int gen)
{
	/* relaxed: the lock orders it */
	return !f->closed &&
	       (atomic_load_explicit(&f->gen, memory_order_relaxed) & 0xffff) ==
	       gen;
}

/**
 * file_enter_shared() - take the invalidate lock shared on an open file.
 * @gen: the generation of the caller's handle (handle_gen()); a closed
 *       file, or one closed and created again since, gives -EBADF.
 */
int file_enter_shared(struct gfile *f, unsigned int gen)
{
	invalidate_lock_shared(f);
	if (!file_is(f, gen)) {
		invalidate_unlock_shared(f);
		return -EBADF;
	}
	return 0;
}

/** file_enter() - as file_enter_shared(), exclusively. */
int file_enter(struct gfile *f, unsigned int gen)
{
	invalidate_lock(f);
	if (!file_is(f, gen)) {
		invalidate_unlock(f);
		return -EBADF;
	}
	return 0;
}

/* ------------------------------------------------------------- helpers */

bool range_ok(struct gfile *f, uint64_t off, uint64_t len)
{
	return len && !(off & (PAGE_SIZE - 1)) && !(len & (PAGE_SIZE - 1)) &&
	       off < f->size && len <= f->size - off;
}

bool page_is_shared(struct gfile *f, uint64_t pg)
{
	return rs_test(&f->shared, pg);
}

bool page_is_poisoned(struct gfile *f, uint64_t pg)
{
	return rs_test(&f->poison, pg);
}

/* The next allocation-unit boundary after page @pg (skips a hole). */
static uint64_t hole_end(struct gfile *f, uint64_t pg)
{
	if (f->policy == GMEM_POLICY_4K)
		return f->small[pg >> PMD_ORDER] ? pg + 1 :
		       ALIGN_DOWN(pg, PTRS) + PTRS;
	return ALIGN_DOWN(pg, 1ULL << f->pool->order) + (1ULL << f->pool->order);
}

/*
 * Zero the memory of pages [a, b) that is allocated and not poisoned
 * (a poisoned page is never touched, as the kernel never touches one).
 */
static void zero_pages(struct gfile *f, uint64_t a, uint64_t b)
{
	uint64_t pg = a;

	/* backing none: nothing to clear, but the kernel would (counted) */
	while (pg < b) {
		struct gfolio *fo = folio_lookup(f, pg);
		uint64_t x, end;

		if (!fo) {
			pg = MIN(b, hole_end(f, pg));
			continue;
		}
		end = MIN(b, fo->index + folio_nr_pages(fo));
		/* Pieces of one huge page are contiguous: zero them in one go. */
		while (fo->huge && end < b) {
			struct gfolio *nx = folio_lookup(f, end);

			if (!nx || nx->huge != fo->huge)
				break;
			end = MIN(b, nx->index + folio_nr_pages(nx));
		}
		if (rs_first_in(&f->poison, pg, end, &x)) {
			if (x == pg) {
				pg++;
				continue;
			}
			end = x;
		}
		if (fo->data) {
			uint8_t *d = fo->data + ((pg - fo->index) << PAGE_SHIFT);

			if (fo->huge)
				pool_zero(f->pool, d, (end - pg) << PAGE_SHIFT);
			else
				memset(d, 0, (end - pg) << PAGE_SHIFT);
		}
		count_kev(f, KEV_ZEROED, (int64_t)((end - pg) << PAGE_SHIFT));
		pg = end;
	}
}

/* ---------------------------------------------------------- file create */

/*
 * A closed file's struct, if one is free to reuse: no pin refers to it
 * any more (its pins hold its address in their records), and no view of
 * it is left to stop or being stopped (views_reap()).  Its locks, seq,
 * fast-path flags and gen stay as they are; file_reset() clears the rest.
 * Context: pool->files_lock.
 */
static struct gfile *zombie_take(struct gpool *p)
{
	for (struct gfile **pp = &p->zombies; *pp; pp = &(*pp)->next) {
		struct gfile *f = *pp;
		bool idle;

		pthread_mutex_lock(&f->lock);
		idle = !file_pins(f) && !f->dead_views && !f->reaping;
		pthread_mutex_unlock(&f->lock);
		if (idle) {
			*pp = f->next;
			return f;
		}
	}
	return NULL;
}

/*
 * Clear one life of a reused struct, the fields from @size to @fast_used,
 * inside the invalidate lock held exclusively and the file lock: a thread
 * with a stale handle that gets the locks after this sees a file of
 * another generation (-EBADF); a fast path sees seq change.  The struct
 * stays closed while gmem_file_create() sets it up with no lock: a
 * gmem_check() that copied the list of files before the last close skips
 * it until the create opens it, all set (file_set_closed()).
 */
static void file_reset(struct gfile *f)
{
	invalidate_lock(f);
	pthread_mutex_lock(&f->lock);
	/* all but merge_pending, which file_kick_merges() reads with no
	 * lock, also with a stale handle (after a failed file_enter(), or
	 * after an unpin that dropped the lock): an atomic store for it */
	memset(&f->size, 0, offsetof(struct gfile, merge_pending) -
			    offsetof(struct gfile, size));
	atomic_store_explicit(&f->merge_pending, false, memory_order_relaxed);
	memset(&f->merge_pending + 1, 0, offsetof(struct gfile, fast_used) -
	       (offsetof(struct gfile, merge_pending) +
		sizeof(f->merge_pending)));
	f->closed = true;
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock(f);
}

/* Set @f's closed flag under its locks, where every reader of the flag
 * but the struct's creator looks at it. */
static void file_set_closed(struct gfile *f, bool closed)
{
	invalidate_lock(f);
	pthread_mutex_lock(&f->lock);
	f->closed = closed;
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock(f);
}

int gmem_file_create(struct gmem_pool *pool, uint64_t size,
		     enum gmem_policy policy, unsigned int flags,
		     struct gmem_file **out)
{
	struct gpool *p = to_pool(pool);
	pthread_condattr_t ca;
	struct gfile *f;
	uint64_t need = 0;
	int ret = -ENOMEM;

	if (policy == GMEM_POLICY_DEFAULT)
		policy = GMEM_POLICY_B_LAZY;
	if (!pool || !out || !size || size % p->page_size ||
	    (unsigned int)policy > GMEM_POLICY_B_ADAPTIVE ||
	    (flags & ~GMEM_FILE_INIT_SHARED))
		return -EINVAL;
	/* Larger than the whole pool: no descriptors for it (checked again
	 * against the free pages below, under the lock). */
	if (policy != GMEM_POLICY_4K && size / p->page_size > p->count)
		return -ENOMEM;
	pthread_mutex_lock(&p->files_lock);
	f = zombie_take(p);
	pthread_mutex_unlock(&p->files_lock);
	if (f) {
		file_reset(f);
	} else {
		f = gmem_alloc_cacheline(sizeof(*f));
		if (!f)
			return -ENOMEM;
		f->pool = p;
		inval_init(&f->inval);
		pthread_mutex_init(&f->lock, NULL);
		pthread_condattr_init(&ca);
		/* drain()'s deadline is on the monotonic clock: a change of
		 * the wall clock neither cuts nor stretches a conversion's
		 * wait */
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&f->pin_wait, &ca);
		pthread_condattr_destroy(&ca);
		f->closed = true;	/* until set up (file_reset()) */
	}
	/* Nobody can reach the struct now but a stale handle, which the
	 * generation turns away (file_enter()). */
	f->size = size;
	f->nr_pages = size >> PAGE_SHIFT;
	f->policy = policy;
	rs_init(&f->shared);
	rs_init(&f->poison);
	rs_init(&f->iommu_ranges);
	rs_init(&f->merge_todo);
	if (policy == GMEM_POLICY_B_ADAPTIVE)
		f->merge_delay = GMEM_MERGE_DELAY_DEFAULT;
	if (gmap_init(&f->guest, size) || gmap_init(&f->iommu, size))
		goto err;
	if ((flags & GMEM_FILE_INIT_SHARED) &&
	    rs_add(&f->shared, 0, f->nr_pages))
		goto err;
	if (policy == GMEM_POLICY_4K) {
		f->nr_small_dirs = size >> 21;
		f->small = gmem_alloc(f->nr_small_dirs * sizeof(*f->small));
		if (!f->small)
			goto err;
	} else {
		f->nr_huge = size / p->page_size;
		f->huge = gmem_alloc(f->nr_huge * sizeof(*f->huge));
		f->unreserved = gmem_alloc((f->nr_huge + 63) / 64 *
					   sizeof(uint64_t));
		if (!f->huge || !f->unreserved || hva_reserve(f))
			goto err;
		need = f->nr_huge;
	}
	pthread_mutex_lock(&p->files_lock);
	pthread_mutex_lock(&p->lock);
	if (p->free - p->resv < need) {
		pthread_mutex_unlock(&p->lock);
		pthread_mutex_unlock(&p->files_lock);
		goto err;
	}
	p->resv += need;
	f->resv = need;
	pthread_mutex_unlock(&p->lock);
	/* open: every field is set; a validator that holds the struct from
	 * an earlier life's listing checks it from now on */
	file_set_closed(f, false);
	f->next = p->files;
	p->files = f;
	pthread_mutex_unlock(&p->files_lock);
	*out = handle_make(f, atomic_load_explicit(&f->gen,
						   memory_order_relaxed));
	return 0;
err:
	hva_release(f);
	gmem_free(f->small, f->nr_small_dirs * sizeof(*f->small));
	gmem_free(f->huge, f->nr_huge * sizeof(*f->huge));
	gmem_free(f->unreserved, (f->nr_huge + 63) / 64 * sizeof(uint64_t));
	gmap_destroy(&f->guest);
	gmap_destroy(&f->iommu);
	rs_destroy(&f->shared);
	f->small = NULL;
	f->huge = NULL;
	f->unreserved = NULL;
	/* closed, and never handed out: a later create takes it.  Under
	 * the locks, where a stale handle's call reads it (file_is(),
	 * gmem_stats()) */
	file_set_closed(f, true);
	pthread_mutex_lock(&p->files_lock);
	f->next = p->zombies;
	p->zombies = f;
	pthread_mutex_unlock(&p->files_lock);
	return ret;
}

/* The fields of a stale handle's struct may be another file's, being
 * set up: they are read only after the generation is checked. */
uint64_t gmem_file_size(const struct gmem_file *file)
{
	return file && file_handle_live(file) ? to_file(file)->size : 0;
}

enum gmem_policy gmem_file_policy(const struct gmem_file *file)
{
	return file && file_handle_live(file) ? to_file(file)->policy :
						GMEM_POLICY_DEFAULT;
}

/*
 * Under the file's locks: set the merge delay (@delay non-NULL), then run
 * the merges that are due: all of them for @compact, or what waited if the
 * delay became 0 (as under b-lazy).
 */
static int file_merge_request(struct gmem_file *file,
			      const unsigned int *delay, bool compact)
{
	struct gfile *f = to_file(file);
	int ret = file_enter(f, handle_gen(file));

	if (ret)
		return ret;
	pthread_mutex_lock(&f->lock);
	/* the longest wait an age can reach (ages are 32-bit) */
	if (delay)
		f->merge_delay = MIN(*delay, 1U << 31);
	f->merge_compact = compact;
	if (compact || (delay && !*delay))
		file_run_merges(f);
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock(f);
	return 0;
}

int gmem_file_set_merge_delay(struct gmem_file *file, unsigned int conversions)
{
	if (!file)
		return -EINVAL;
	if (!file_handle_live(file))
		return -EBADF;
	/* a close meanwhile: -EBADF from file_enter() */
	if (to_file(file)->policy != GMEM_POLICY_B_ADAPTIVE)
		return -EINVAL;
	return file_merge_request(file, &conversions, false);
}

int gmem_file_compact(struct gmem_file *file)
{
	if (!file)
		return -EINVAL;
	return file_merge_request(file, NULL, true);
}

int gmem_file_close(struct gmem_file *file)
{
	struct gfile *f = to_file(file);
	struct gpool *p;
	int ret;

	if (!file)
		return -EINVAL;
	ret = file_enter(f, handle_gen(file));
	if (ret)
		return ret;
	p = f->pool;
	pthread_mutex_lock(&f->lock);
	/* the host range goes whole: its pages need no PROT_NONE one by one */
	hva_release(f);
	flush_batch_begin(f);
	file_free_folios(f);
	flush_batch_end(f);
	vma_destroy_all(f);
	pthread_mutex_lock(&p->lock);
	p->resv -= f->resv;
	f->resv = 0;
	f->closed = true;
	/* release: a handle found stale (file_handle_live()) sees the close
	 * done; every handle to this file is stale from here */
	atomic_store_explicit(&f->gen,
			      atomic_load_explicit(&f->gen,
						   memory_order_relaxed) + 1,
			      memory_order_release);
	/* the pool's totals keep what the file's counters and maps saw */
	for (int k = 0; k < NR_KEV; k++)
		p->run.kev[k] += f->c.kev[k];
	for (int l = 0; l < GMAP_NR_LEVELS; l++) {
		p->run.guest_added[l] += f->guest.added[l];
		p->run.guest_removed[l] += f->guest.removed[l];
		p->run.iommu_added[l] += f->iommu.added[l];
		p->run.iommu_removed[l] += f->iommu.removed[l];
	}
	p->run.guest_flushes += f->guest.flushes;
	p->run.iommu_flushes += f->iommu.flushes;
	pthread_mutex_unlock(&p->lock);
	rs_destroy(&f->shared);
	rs_destroy(&f->poison);
	rs_destroy(&f->iommu_ranges);
	rs_destroy(&f->merge_todo);
	rs_init(&f->merge_todo);
	gmap_destroy(&f->guest);
	gmap_destroy(&f->iommu);
	pinmap_destroy(&f->pinmap);
	gmem_free(f->huge, f->nr_huge * sizeof(*f->huge));
	gmem_free(f->small, f->nr_small_dirs * sizeof(*f->small));
	gmem_free(f->unreserved, (f->nr_huge + 63) / 64 * sizeof(uint64_t));
	f->unreserved = NULL;
	f->huge = NULL;
	f->small = NULL;
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock(f);
	views_reap(f);

	pthread_mutex_lock(&p->files_lock);
	for (struct gfile **pp = &p->files; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	f->next = p->zombies;
	p->zombies = f;
	pthread_mutex_unlock(&p->files_lock);
	return 0;
}

/* ----------------------------------------------------------- conversion */

/*
 * The drain set, in offset order: each folio holding a shared page of
 * [*pg, pg1).  Advances *pg past the folio returned.
 */
static struct gfolio *drain_next(struct gfile *f, uint64_t *pg, uint64_t pg1)
{
	uint64_t s, e;

	while (*pg < pg1 && rs_next(&f->shared, *pg, &s, &e) && s < pg1) {
		e = MIN(e, pg1);
		for (uint64_t p = s; p < e;) {
			struct gfolio *fo = folio_lookup(f, p);

			if (fo) {
				*pg = fo->index + folio_nr_pages(fo);
				return fo;
			}
			p = hole_end(f, p);
		}
		*pg = e;
	}
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * drain() - prove that no host reference to the drain set of a shared to
 * private conversion of [pg0, pg1) remains: zap it from every mm, fail at
 * once on a long-term pin, wait up to @timeout_ms for short-term pins.
 * Context: invalidate lock exclusive (no new fault or pin can start), file
 * lock (dropped while waiting, so unpins can run).
 */
static int drain(struct gfile *f, uint64_t pg0, uint64_t pg1, int timeout_ms,
		 uint64_t *at)
{
	uint64_t pg, start = 0;
	struct gfolio *fo;
	struct timespec deadline;
	int ret = 0;

	assert_invalidate_exclusive(f);
	/* one unmap_mapping_range() over the drain set: one flush per mm */
	flush_batch_begin(f);
	for (pg = pg0; (fo = drain_next(f, &pg, pg1));)
		zap_range(f, fo->index, fo->index + folio_nr_pages(fo));
	flush_batch_end(f);
	for (pg = pg0; (fo = drain_next(f, &pg, pg1));) {
		if (fo->longterm) {
			*at = MAX(fo->index, pg0);
			return -EBUSY;
		}
	}
	if (timeout_ms) {
		/* One absolute deadline on the condition's clock (monotonic),
		 * computed once: every wait and every test uses it, so no
		 * remainder is ever computed from a second reading. */
		start = now_ns();
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	for (;;) {
		for (pg = pg0; (fo = drain_next(f, &pg, pg1));)
			if (folio_has_unexpected_refs(fo))
				break;
		if (!fo)
			break;
		*at = MAX(fo->index, pg0);
		if (!timeout_ms) {
			ret = -EAGAIN;
			break;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&f->pin_wait, &f->lock);
			continue;
		}
		/* a test may stall here, past the deadline */
		if (gmem_test_hooks.drain_wait)
			gmem_test_hooks.drain_wait(f);
		if (pthread_cond_timedwait(&f->pin_wait, &f->lock,
					   &deadline) == ETIMEDOUT) {
			/* one last look: an unpin may have come with the time */
			for (pg = pg0; (fo = drain_next(f, &pg, pg1));)
				if (folio_has_unexpected_refs(fo))
					break;
			if (fo) {
				*at = MAX(fo->index, pg0);
				ret = -EAGAIN;
			}
			break;
		}
	}
	if (start)
		pool_count(f->pool, &f->pool->run.pin_wait_ns, &f->c.pin_wait_ns,
			   now_ns() - start);
	return ret;
}

/* Whether converting [pg0, pg1) to @to changes any page. */
static bool convert_changes(struct gfile *f, uint64_t pg0, uint64_t pg1,
			    enum gmem_attr to)
{
	uint64_t x;

	return to == GMEM_SHARED ? rs_first_not_in(&f->shared, pg0, pg1, &x) :
				   rs_first_in(&f->shared, pg0, pg1, &x);
}

/* Zero the pages of [pg0, pg1) whose attribute is not @to yet. */
static void zero_changing(struct gfile *f, uint64_t pg0, uint64_t pg1,
			  enum gmem_attr to)
{
	uint64_t cur = pg0, s, e;

	while (cur < pg1) {
		bool more = rs_next(&f->shared, cur, &s, &e) && s < pg1;

		if (!more) {
			s = e = pg1;
		}
		e = MIN(e, pg1);
		if (to == GMEM_PRIVATE && more)
			zero_pages(f, s, e);
		else if (to == GMEM_SHARED && s > cur)
			zero_pages(f, cur, s);
		cur = more ? e : pg1;
	}
}

/**
 * gmem_convert() - the conversion protocol; see gmem.h and DESIGN.md.
 *
 * 1. invalidate lock exclusive: faults and pins on the file wait;
 * 2. shared -> private: drain() zaps the drain set, refuses long-term
 *    pins (EBUSY), waits out short-term pins (EAGAIN on timeout);
 * 3. prepare everything that allocates (attribute node, b-lazy splits),
 *    undoing on failure;
 * 4. commit: zero if asked, flip, zap guest entries, re-level the IOMMU;
 * 5. b-lazy: merge blocks that became uniform; release the lock.
 */
int gmem_convert(struct gmem_file *file, uint64_t off, uint64_t len,
		 enum gmem_attr to, unsigned int flags, int timeout_ms,
		 uint64_t *error_offset)
{
	struct gfile *f = to_file(file);
	struct gpool *p;
	uint64_t pg0, pg1, at = 0;
	int ret;

	if (!file || (to != GMEM_PRIVATE && to != GMEM_SHARED) ||
	    (flags & ~GMEM_CONVERT_ZERO))
		return -EINVAL;
	ret = file_enter(f, handle_gen(file));
	if (ret)
		return ret;
	p = f->pool;
	if (!range_ok(f, off, len)) {
		ret = -EINVAL;
		goto out;
	}
	pg0 = off >> PAGE_SHIFT;
	pg1 = pg0 + (len >> PAGE_SHIFT);
	pthread_mutex_lock(&f->lock);
	if (!convert_changes(f, pg0, pg1, to))
		goto done;
	if (to == GMEM_PRIVATE) {
		ret = drain(f, pg0, pg1, timeout_ms, &at);
		if (ret) {
			pool_count(p, ret == -EBUSY ? &p->run.ebusy : &p->run.eagain,
				   ret == -EBUSY ? &f->c.ebusy : &f->c.eagain, 1);
			if (error_offset)
				*error_offset = at << PAGE_SHIFT;
			goto merge;	/* zapped entries may allow merges */
		}
	}
	ret = rs_prepare(&f->shared);
	if (!ret)
		ret = file_split_for(f, pg0, pg1, to);
	if (ret)
		goto unlock;

	if (flags & GMEM_CONVERT_ZERO)
		zero_changing(f, pg0, pg1, to);
	if (to == GMEM_SHARED)
		ret = rs_add(&f->shared, pg0, pg1);
	else
		ret = rs_remove(&f->shared, pg0, pg1);
	GM_BUG_ON(ret);		/* prepared above */
	if (to == GMEM_SHARED)
		views_unmark(f, pg0, pg1);	/* real views trap again */
	gmap_remove(&f->guest, off, off + len);
	iommu_relevel(f, pg0, pg1);
	if (gmem_test_hooks.convert_commit)
		gmem_test_hooks.convert_commit(f, pg0, pg1, to);
	pool_count(p, &p->run.conversions, &f->c.conversions, 1);
merge:
	file_note_merge(f, pg0, pg1);
	file_merge_tick(f);
	file_run_merges(f);
	goto unlock;
done:
	pool_count(p, &p->run.conversions, &f->c.conversions, 1);
unlock:
	pthread_mutex_unlock(&f->lock);
out:
	invalidate_unlock(f);
	return ret;
}

/* ---------------------------------------------------------------- punch */

int gmem_punch(struct gmem_file *file, uint64_t off, uint64_t len)
{
	struct gfile *f = to_file(file);
	uint64_t pg0, pg1;
	int ret;

	if (!file)
		return -EINVAL;
	ret = file_enter(f, handle_gen(file));
	if (ret)
		return ret;
	if (!range_ok(f, off, len)) {
		ret = -EINVAL;
		goto out;
	}
	pg0 = off >> PAGE_SHIFT;
	pg1 = pg0 + (len >> PAGE_SHIFT);
	pthread_mutex_lock(&f->lock);
	ret = rs_prepare(&f->poison);
	if (ret)
		goto unlock;
	/* Guest entries over the hole go (kvm_gmem_invalidate_begin()); host
	 * entries on parts of a huge page stay: the memory stays.  One
	 * flush of each kind for the whole punch. */
	flush_batch_begin(f);
	gmap_remove(&f->guest, off, off + len);
	if (f->policy == GMEM_POLICY_4K) {
		for (uint64_t pg = pg0; pg < pg1;) {
			if (!f->small[pg >> PMD_ORDER]) {
				pg = ALIGN_DOWN(pg, PTRS) + PTRS;
				continue;
			}
			file_release_small(f, pg++);
		}
		/* The poisoned memory left the file with its folios. */
		rs_remove(&f->poison, pg0, pg1);
		flush_batch_end(f);
		goto unlock;
	}
	unsigned int order = f->pool->order;
	uint64_t n = 1ULL << order;
	uint64_t ws = (pg0 + n - 1) & ~(n - 1), we = ALIGN_DOWN(pg1, n);

	for (uint64_t slot = pg0 >> order; slot <= (pg1 - 1) >> order; slot++) {
		uint64_t hs = slot << order, he = hs + n;
		uint64_t a = MAX(pg0, hs), b = MIN(pg1, he);

		if (a == hs && b == he)
			file_release_huge(f, slot);
		else if (f->huge[slot])
			zero_pages(f, a, b);
	}
	if (ws < we)
		rs_remove(&f->poison, ws, we);
	flush_batch_end(f);
unlock:
	pthread_mutex_unlock(&f->lock);
out:
	invalidate_unlock(f);
	return ret;
}

/* --------------------------------------------------------------- poison */

int gmem_poison(struct gmem_file *file, uint64_t off)
{
	struct gfile *f = to_file(file);
	struct gfolio *fo;
	uint64_t pg = off >> PAGE_SHIFT;
	int ret;

	if (!file)
		return -EINVAL;
	ret = file_enter(f, handle_gen(file));
	if (ret)
		return ret;
	if (!range_ok(f, off, PAGE_SIZE)) {
		ret = -EINVAL;
		goto out;
	}
	pthread_mutex_lock(&f->lock);
	if (page_is_poisoned(f, pg))
		goto unlock;
	ret = rs_prepare(&f->poison);
	if (!ret)
		ret = folio_get_or_alloc(f, pg, &fo, NULL);
	if (ret)
		goto unlock;
	rs_add(&f->poison, pg, pg + 1);
	/* memory_failure(): unmap from every host mm, drop guest entries. */
	zap_range(f, pg, pg + 1);
	gmap_remove(&f->guest, pg << PAGE_SHIFT, (pg + 1) << PAGE_SHIFT);
	iommu_relevel(f, pg, pg + 1);
unlock:
	pthread_mutex_unlock(&f->lock);
out:
	invalidate_unlock(f);
	return ret;
}
