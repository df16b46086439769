// SPDX-License-Identifier: MIT
/*
 * rcu.c - read-side critical sections for the lock-free fast paths, and
 * the deferred frees that let them run: liburcu's "bulletproof" flavour
 * (urcu-bp), whose readers register themselves on first use, because a
 * library cannot ask its callers to register their threads.
 *
 * A fast path (a fault or read whose PTE is present, a pin of such a page,
 * an unpin) walks a file's mappings, page tables and folios under
 * gmem_rcu_read_lock() and takes no lock.  Whatever it may still be
 * looking at is freed only after a grace period (free_rcu()): at once by
 * a holder of the file's invalidate lock, which waits for one first if
 * fast paths ran; else queued on the pool and freed in batches after
 * synchronize_rcu(), and when the pool is destroyed.
 * No gmem lock is ever taken inside a read-side section, so a thread may
 * wait for a grace period while holding any gmem lock.
 *
 * ThreadSanitizer cannot see a grace period: it would report a reader's
 * load against the free that follows synchronize_rcu().  Under TSan every
 * read-side section ends with a release on one sync object, and every
 * grace period ends with an acquire on it, which is what the grace period
 * guarantees: each reader's section happens before the free.
 */
#include <stdlib.h>
#include <urcu/urcu-bp.h>

#include "internal.h"

#ifdef GMEM_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char rcu_tsan_sync;
#endif

/* Queue at most this many blocks, or bytes, before a grace period. */
#define RCU_BATCH_NR	256
#define RCU_BATCH_BYTES	(8ULL << 20)

struct rcu_deferred {
	struct rcu_deferred *next;
	void *ptr;
	size_t size;
};

static pthread_once_t rcu_once = PTHREAD_ONCE_INIT;

/* urcu-bp keeps a registry of reader threads: a child of fork() that does
 * not exec must have it fixed, or its first grace period waits forever for
 * threads that do not exist there. */
static void rcu_setup(void)
{
	pthread_atfork(urcu_bp_before_fork, urcu_bp_after_fork_parent,
		       urcu_bp_after_fork_child);
}

/** gmem_rcu_init() - once per process, before the first fast path. */
void gmem_rcu_init(void)
{
	pthread_once(&rcu_once, rcu_setup);
}

void gmem_rcu_read_lock(void)
{
	urcu_bp_read_lock();
}

void gmem_rcu_read_unlock(void)
{
#ifdef GMEM_TSAN
	__tsan_release(&rcu_tsan_sync);
#endif
	urcu_bp_read_unlock();
}

/**
 * gmem_synchronize_rcu() - wait until every read-side section that began
 * before this call has ended.  Context: not in a read-side section; may
 * sleep.
 */
void gmem_synchronize_rcu(void)
{
	urcu_bp_synchronize_rcu();
#ifdef GMEM_TSAN
	__tsan_acquire(&rcu_tsan_sync);
#endif
}

static void rcu_free_list(struct rcu_deferred *d)
{
	while (d) {
		struct rcu_deferred *next = d->next;

		gmem_free(d->ptr, d->size);
		free(d);
		d = next;
	}
}

/**
 * rcu_flush() - free every block queued on @p, after a grace period.
 * Context: not in a read-side section; any gmem lock but p->rcu_lock.
 */
void rcu_flush(struct gpool *p)
{
	struct rcu_deferred *d;

	pthread_mutex_lock(&p->rcu_lock);
	d = p->rcu_list;
	p->rcu_list = NULL;
	p->rcu_nr = 0;
	p->rcu_bytes = 0;
	pthread_mutex_unlock(&p->rcu_lock);
	if (!d)
		return;
	gmem_synchronize_rcu();
	rcu_free_list(d);
}

/**
 * free_rcu() - gmem_free() @ptr once no fast path of @f can look at it.
 *
 * Inside @f's invalidate lock held exclusively (a merge, punch or close),
 * no fast path starts to look (they read seq first, and it is odd), and
 * none that began before is still looking once one grace period has
 * passed since it announced itself: wait for one if a fast fault or load
 * announced itself since the last (invalidate_lock_mark() has waited
 * already for fast pins), then free at once.  Elsewhere (a detached
 * folio's last unpin, an undo), queue the block on the pool, freed after
 * a grace period in batches.  Never fails: without memory for the queue
 * entry it waits for a grace period here.  The entry comes from malloc(),
 * not gmem_alloc(): it is no metadata of gmem's and no failure point.
 * Context: not in a read-side section; may sleep.
 */
void free_rcu(struct gfile *f, void *ptr, size_t size)
{
	struct gpool *p = f->pool;
	struct rcu_deferred *d;
	bool flush;

	if (!ptr)
		return;
	if (invalidate_held_exclusive(f)) {
		/* seq_cst: against the announcement (host_access_fast()) */
		if (atomic_load_explicit(&f->fast_read_used,
					 memory_order_seq_cst)) {
			atomic_store_explicit(&f->fast_read_used, false,
					      memory_order_seq_cst);
			gmem_synchronize_rcu();
		}
		gmem_free(ptr, size);
		return;
	}
	d = malloc(sizeof(*d));
	if (!d) {
		gmem_synchronize_rcu();
		gmem_free(ptr, size);
		return;
	}
	d->ptr = ptr;
	d->size = size;
	pthread_mutex_lock(&p->rcu_lock);
	d->next = p->rcu_list;
	p->rcu_list = d;
	p->rcu_nr++;
	p->rcu_bytes += size;
	flush = p->rcu_nr >= RCU_BATCH_NR || p->rcu_bytes >= RCU_BATCH_BYTES;
	pthread_mutex_unlock(&p->rcu_lock);
	if (flush)
		rcu_flush(p);
}
