/* SPDX-License-Identifier: MIT */
/*
 * internal.h - libgmem's private structures.
 *
 * Lock order (outermost first); each lock's rules are at its declaration:
 *
 *   pool->files_lock
 *     file->invalidate_lock (rw: shared for faults, pins, guest and IOMMU
 *                            accesses; exclusive for conversion, punch,
 *                            poison, merge, close)
 *       file->lock          (the file's mutable state)
 *         mm->lock          (an mm's list of mappings)
 *           pool->lock      (free huge pages, counters, detached pages,
 *                            the 4K arena)
 *           pool->pin_grow  (growing the pin table)
 *           pool->rcu_lock  (blocks queued for a grace period)
 *
 * A file's host range (hostmem.c) is mapped and unmapped, one huge page at
 * a time, by mmap() under the file lock (allocation: the invalidate lock
 * shared; punch, undo: exclusive), with the page's huge[] entry; close
 * unmaps it whole under both, exclusive.
 *
 * Real views (uffd.c): a view's handler thread takes the invalidate lock
 * shared and the file lock, as a fault does, and makes its system calls
 * on the view (UFFDIO_CONTINUE/POISON, mmap) under both; zaps madvise the
 * view under both too.  No gmem lock is ever taken under a kernel mm
 * lock: a thread faulting on a view waits in the kernel without mmap_lock.
 *
 * gmem_unpin() never takes an invalidate lock, so a conversion can wait
 * for an unpin while holding its file's lock exclusively.  It finds its
 * pin's record from the id with no lock (gup.c), and claims it with a
 * compare-and-swap, under the file's lock or, for a fast-path pin, none.
 *
 * Fast paths take no lock at all: a fault or load whose page-table entry
 * is present (mm.c), a one-page pin of such a page and its unpin (gup.c).
 * They run in RCU read-side sections (rcu.c) and check the file's seq,
 * which every exclusive holder of the invalidate lock makes odd while it
 * is inside; such a holder first waits for the fast paths that began
 * before it (gfile.fast_used, invalidate_lock_mark()).  No lock is taken
 * inside a read-side section, so any lock holder may wait for a grace
 * period.
 */
#ifndef GMEM_INTERNAL_H
#define GMEM_INTERNAL_H

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gmem.h"
#include "alloc.h"
#include "debug.h"
#include "gmap.h"
#include "rangeset.h"

#if defined(__SANITIZE_THREAD__)
#define GMEM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GMEM_TSAN 1
#endif
#endif

/*
 * An acquire fence (a seqcount reader's, between its loads and its
 * re-check).  gcc refuses fences under -fsanitize=thread, which does not
 * model them; that build's re-check is an acquire load instead (x86 keeps
 * loads in order either way).
 */
#ifdef GMEM_TSAN
#define fence_acquire() ((void)0)
#else
#define fence_acquire() atomic_thread_fence(memory_order_acquire)
#endif

#define PAGE_SHIFT 12
#define PAGE_SIZE 4096ULL
#define PMD_ORDER 9			/* 2 MiB = 512 pages */
#define PUD_ORDER 18			/* 1 GiB = 512 * 512 pages */
#define PTRS 512

/* Kernel's GUP_PIN_COUNTING_BIAS (include/linux/mm.h): a pin on an
 * order-0 folio adds this to its refcount. */
#define GUP_PIN_COUNTING_BIAS 1024

/*
 * The highest refcount a pin or a host fault may take a folio to.  The
 * kernel refuses a GUP pin whose reference could overflow (try_grab_folio()
 * fails and GUP returns -ENOMEM); gmem refuses before the int can wrap,
 * keeping GUP_PIN_COUNTING_BIAS of headroom for transient lookup
 * references.  With 1 + 1 (file, PTE), an order-0 folio takes 2,097,150
 * pins.  folio_ref_limit is this, or lower in a test.
 */
#define FOLIO_REF_LIMIT (INT_MAX - GUP_PIN_COUNTING_BIAS)
extern atomic_int folio_ref_limit;
void gmem_test_set_ref_limit(int limit);	/* 0: FOLIO_REF_LIMIT */

#ifndef EHWPOISON
#define EHWPOISON 133
#endif

/* ---------------------------------------------------------------- folio */

#define FOLIO_DETACHED	(1U << 0)	/* left its file (punched while pinned) */
#define FOLIO_NEW_DIR	(1U << 1)	/* policy 4k: its allocation made its
					 * directory (an undo frees both) */
#define FOLIO_REFS_FULL	(1U << 2)	/* a view's fault was refused at the
					 * refcount limit: unmark on unpin */

/*
 * struct gfolio - a folio: 4K, 2M or 1G of memory.
 *
 * refcount: the file's own reference (1 while attached), one per host
 *   page-table entry, GUP_PIN_COUNTING_BIAS per pin on an order-0 folio or
 *   1 per pinned page of a large one, and transient lookup references.
 * mapcount: host page-table entries on any page of the folio.
 * pincount: pinned pages of a large folio (the kernel's _pincount).
 * longterm: long-term pinned pages (gmem bookkeeping for EBUSY).
 *
 * The counts are atomics: every update happens under the owning file's
 * lock, or on a fast path (gup.c) while no holder of the file's
 * invalidate lock exclusively is inside (file.c, struct gfile.seq).
 */
struct gfolio {
	atomic_int refcount;
	atomic_int mapcount;
	atomic_int pincount;
	atomic_int longterm;
	uint8_t order;
	_Atomic uint8_t flags;	/* file lock to change; fast paths read */
	uint64_t index;			/* first page index in the file */
	uint8_t *data;			/* the real bytes; NULL for backing none */
	struct ghuge *huge;		/* containing huge page; NULL for policy 4k */
};

static inline int folio_ref_count(struct gfolio *f)
{
	/* relaxed: callers hold the file lock for decisions */
	return atomic_load_explicit(&f->refcount, memory_order_relaxed);
}

static inline int folio_mapcount(struct gfolio *f)
{
	return atomic_load_explicit(&f->mapcount, memory_order_relaxed);
}

static inline void folio_get(struct gfolio *f)
{
	/* relaxed: the caller already holds a reference or the file lock */
	atomic_fetch_add_explicit(&f->refcount, 1, memory_order_relaxed);
}

static inline uint64_t folio_nr_pages(const struct gfolio *f)
{
	return 1ULL << f->order;
}

/*
 * struct gblock - a 1G or 2M block of a huge page.  While intact, @folio is
 * the block's folio.  Once split, a 1G block has 512 2M @child blocks and a
 * 2M block 512 order-0 folios in @small.  b-eager splits a 1G page straight
 * to 4K: the children are then split blocks whose own folio never existed.
 */
struct gblock {
	struct gfolio folio;
	bool split;
	struct gblock *child;		/* order-18 block, split */
	struct gfolio *small;		/* order-9 block, split */
};

/*
 * struct ghuge - one pool huge page in use by a file (or detached from it,
 * punched while a piece was pinned).
 */
struct ghuge {
	struct gblock blk;		/* the root block, of the pool's order */
	uint64_t pfn;			/* index of the page in the pool */
	uint64_t index;			/* first page index in the file */
	uint8_t *data;
	/* for the reservation: its file, closed or not (pool_return_huge()
	 * checks); never a later file of the struct, which is reused only
	 * once no pin, so no detached page, refers to it */
	struct gfile *owner;
	bool poisoned;			/* retire instead of return */
	bool from_resv;			/* took one of the owner's reservations */
	bool detached;			/* punched while pinned */
	bool alloc_open;		/* being shaped by its allocation */
	uint16_t alloc_split[2];	/* 2M and 1G folios split at its
					 * allocation (a failing call undoes) */
	/* b-adaptive (file lock): its blocks merge once the file's merge
	 * clock is merge_delay << backoff past @touched; each merge in it
	 * doubles the next wait (a page that churns waits longer) */
	uint8_t backoff;
	uint32_t touched;
	uint64_t live;			/* detached: folios still referenced */
	uint64_t meta;			/* descriptor bytes held */
	struct ghuge *next_detached;
};

/* ----------------------------------------------------------------- pool */

/*
 * Events that stand for kernel work (gmem compare's cost model), counted
 * per file under its lock and added to the pool's totals at close; the
 * guest's and the IOMMU's entries added and removed are in their gmaps.
 */
enum kev {
	KEV_SPLIT_2M,		/* a 2M folio split into 4K folios */
	KEV_SPLIT_1G,		/* a 1G folio split into 2M folios */
	KEV_MERGE_2M,		/* 4K folios merged into a 2M folio */
	KEV_MERGE_1G,		/* 2M folios merged into a 1G folio */
	KEV_ZEROED,		/* bytes cleared: allocation, zero, punch */
	KEV_TLB_FLUSHES,	/* zaps of one mm's entries in one call */
	KEV_HOST_FAULTS,	/* host page-table entries installed */
	NR_KEV
};

struct gpin;

/* Threads are spread over this many shards (gup.c: thread_shard()). */
#define NR_SHARDS 16

/* A counter that threads of different shards update without sharing a
 * cache line; its value is the sum. */
struct shard_counter {
	struct {
		_Alignas(64) atomic_int_fast64_t v;
	} s[NR_SHARDS];
};

struct gpool {
	/* files_lock: the list of files; outermost lock. */
	pthread_mutex_t files_lock;
	struct gfile *files;		/* open files */
	/* closed files and destroyed mms, type-stable: reused by the next
	 * create (a closed file once no pin refers to it), freed with the
	 * pool */
	struct gfile *zombies;
	struct gmm *mms;
	struct gmm *free_mms;

	/*
	 * lock: free pages, the pin table, detached pages, the 4K arena and
	 * the run-wide counters.  Innermost: nothing is taken under it but a
	 * try-lock of a file's lock (gmem_unpin()).
	 */
	pthread_mutex_t lock;
	uint64_t page_size;
	unsigned int order;		/* PMD_ORDER or PUD_ORDER */
	enum gmem_backing backing;
	int fd;				/* memfd; -1 for none */
	uint8_t *base;
	size_t map_len;
	void *map_raw;
	uint64_t count;			/* pages created; never changes */
	uint64_t total, free, resv, retired;
	uint64_t held;			/* pages attached to files */
	uint64_t *free_stack;		/* free page numbers */
	/* hugetlb: free pages kept in memory since a file used them, to be
	 * cleared on reuse (a bit per page) */
	uint64_t *dirty;
	uint64_t nr_free_stack;
	struct ghuge *detached;
	uint64_t detached_meta;

	/* the 4K arena: order-0 pages from outside the pool (policy 4k) */
	int arena_fd;
	uint8_t *arena;
	uint64_t arena_frames, arena_next;
	uint64_t *arena_free;
	uint64_t arena_nr_free, arena_cap_free;
	/* set by gmem_pool_destroy(): the arena goes whole, frames need no
	 * punch one by one (no lock: only the destroying thread runs) */
	bool tearing_down;

	/* rcu_lock: blocks waiting for a grace period (rcu.c); innermost */
	pthread_mutex_t rcu_lock;
	struct rcu_deferred *rcu_list;
	uint64_t rcu_nr, rcu_bytes;

	/*
	 * pins: a table of pin records, reached from a pin's id without a
	 * lock (gup.c): chunks of PIN_CHUNK records, allocated under
	 * @pin_grow and never freed before the pool; free records on
	 * lock-free stacks, one per shard of threads.
	 */
	_Atomic(struct gpin *) *pin_chunks;
	atomic_uint_fast64_t pin_hwm;	/* records ever handed out */
	pthread_mutex_t pin_grow;
	struct {
		/* (tag << 32) | (index + 1) */
		_Alignas(64) atomic_uint_fast64_t head;
	} pin_free[NR_SHARDS];
	atomic_uint_fast64_t nr_pins;	/* pinned pages, slow-path pins
					 * (fast ones: per file) */

	/* run-wide counters, under lock */
	struct {
		uint64_t shatters, collapses, conversions, eagain, ebusy;
		uint64_t zaps, eopnotsupp, pool_returned, pin_wait_ns;
		/* closed files' kernel events and map entries (open files'
		 * are theirs: stats add both) */
		uint64_t kev[NR_KEV];
		uint64_t guest_added[3], guest_removed[3];
		uint64_t iommu_added[3], iommu_removed[3];
		uint64_t guest_flushes, iommu_flushes;
	} run;
};

/* ------------------------------------------------------------------ mm */

/*
 * Page table of one mapping, as the hardware's: per GiB of the file a
 * table of 512 PMD-level tables, each of 512 PTEs.  A PTE points at the
 * folio whose page it maps.  @nr counts live entries below, so walks skip
 * empty tables.
 */
struct gpt_pte {
	uint32_t nr;
	_Atomic(struct gfolio *) pte[PTRS];
};

struct gpt_pmd {
	uint32_t nr;
	_Atomic(struct gpt_pte *) t[PTRS];
};

/*
 * The entries and table pointers are atomics: the fast paths (mm.c, gup.c)
 * walk them under gmem_rcu_read_lock() with no lock while the file's lock
 * holder changes them.  Tables are published with a release store after
 * they are zeroed, and freed only after a grace period (free_rcu()).
 */
struct gpt {
	_Atomic(struct gpt_pmd *) *dir;
	uint64_t nr_gb;
	uint64_t nr_ptes;
};

struct gview;

struct gvma {
	struct gmm *mm;
	struct gfile *file;
	struct gvma *mm_next;		/* mm->lock */
	/* file->lock to change; read by the fast paths under RCU */
	_Atomic(struct gvma *) file_next;
	struct gpt pt;			/* file->lock */
	bool batch_zapped;		/* lost entries in a flush batch */
	struct gview *view;		/* file->lock: gmem_mm_view(), or NULL */
};

struct gmm {
	struct gpool *pool;
	/* lock: the list of mappings; taken after file->lock. */
	pthread_mutex_t lock;
	struct gvma *vmas;
	/* as gfile.gen: advanced by gmem_mm_destroy() before it unmaps; the
	 * struct is reused by a later gmem_mm_create() (pool->free_mms) */
	atomic_uint gen;
	bool dead;			/* pool->files_lock */
	struct gmm *next;		/* pool->files_lock */
};

/* ---------------------------------------------------------------- pins */

/* Atomics, as struct gpin's fields (a validator may read a record that
 * a fast path of another file is writing). */
struct gpin_seg {
	_Atomic(struct gfolio *) folio;
	atomic_uint nr;			/* pages of this folio pinned */
};

/* gpin.flags beyond the GMEM_PIN_* ones: taken on the fast path (counted
 * in the file's fast_pins, not in its pin map) */
#define GPIN_FAST	(1U << 30)

/*
 * struct gpin - a pin record: a slot of the pool's table.  @id is 0 while
 * the slot is free; a pin is claimed (unpinned) by the one thread whose
 * compare-and-swap takes @id from its value to 0.  The other fields are
 * written before @id is published (release) and read after it is
 * (acquire); they are atomics because a thread holding a stale id may
 * read a slot that is being reused (and then fails its claim).  @segs
 * points at @seg1 (one segment) or at an array; a fast pin's one folio is
 * also in @seg1_folio, which its lock-free unpin reads.
 */
struct gpin {
	/* its own cache lines: threads pinning at once take neighbouring
	 * slots, which must not share a line */
	_Alignas(64) atomic_uint_fast64_t id;
	_Atomic(struct gfile *) file;
	atomic_uint_fast64_t pg, nr_pages;
	atomic_uint flags;
	atomic_uint nr_segs;
	_Atomic(struct gpin_seg *) segs;
	_Atomic(struct gfolio *) seg1_folio;
	atomic_uint shard;			/* fast: the shard counting it */
	atomic_uint next_free;			/* free stack: index + 1 */
	struct gpin_seg seg1;
};

/* Per-page pin bookkeeping: open addressing, for exclusive pins. */
struct pinmap_ent {
	uint64_t pg;			/* page index + 1; 0 = empty */
	uint32_t count;
	uint32_t excl;
};

struct pinmap {
	struct pinmap_ent *t;
	uint64_t cap, used;
};

/* ---------------------------------------------------------------- file */

struct gfile_counters {
	uint64_t kev[NR_KEV];
	uint64_t folios[3];		/* by level: 4K, 2M, 1G */
	uint64_t meta_bytes;
	uint64_t meta_peak, vmemmap_peak;	/* the most ever held */
	uint64_t host_ptes;
	uint64_t pins;
	uint64_t shatters, collapses, conversions, eagain, ebusy, zaps;
	uint64_t eopnotsupp, pool_returned, pin_wait_ns;
};

/*
 * Invalidate lock with assertions: a writer-preferring rwlock (a stream of
 * faults must not starve a conversion) that records its writer.
 */
struct ginval {
	pthread_rwlock_t rw;
	/*
	 * Exclusive holders queue in ticket order (the rwlock alone lets a
	 * newcomer overtake a waiting writer, and a converter in a loop could
	 * starve another for seconds).  @q guards the tickets.
	 */
	pthread_mutex_t q;
	pthread_cond_t q_turn;
	uint64_t next_ticket, serving;
	atomic_int readers;		/* for assertions only */
	_Atomic(pthread_t) writer;	/* for assertions only */
	atomic_bool writer_held;
};

struct gfile {
	struct gpool *pool;

	/*
	 * invalidate_lock: shared while a fault, pin or guest/IOMMU access
	 * looks up and maps pages; exclusive while a conversion, punch,
	 * poison, merge or close changes what pages are or where they live.
	 */
	struct ginval inval;
	/*
	 * seq: odd while a holder of the invalidate lock exclusively is
	 * inside, advanced when it enters and when it leaves.  Every change
	 * of what a page is or where it lives (conversion, punch, poison,
	 * split, merge, close) happens inside, so a fast path that saw the
	 * same even value before and after its lock-free reads saw no
	 * change (a seqcount, as the kernel's mmu_invalidate_seq).
	 */
	atomic_uint seq;

	/*
	 * lock: everything below, under either mode of the invalidate lock.
	 * @pin_wait is signalled under it when a pin goes.
	 */
	pthread_mutex_t lock;
	pthread_cond_t pin_wait;

	/*
	 * From @size to @fast_used: one life of the struct, zeroed when a
	 * later gmem_file_create() reuses it (file_reset(); @merge_pending
	 * by an atomic store, as file_kick_merges() reads it with no lock),
	 * which keeps it @closed until it is set up.  The fields outside
	 * (locks, @seq, the fast-path flags and counters, @reaping, @gen)
	 * live as long as the pool.
	 */
	uint64_t size;
	uint64_t nr_pages;
	enum gmem_policy policy;
	bool closed;
	struct rangeset shared;		/* page indices that are shared */
	struct rangeset poison;		/* poisoned page indices */
	struct rangeset iommu_ranges;	/* ranges given to gmem_iommu_map */
	struct rangeset merge_todo;	/* ranges to try merging */
	atomic_bool merge_pending;	/* merges to run when the invalidate
					 * lock is next released */
	bool merge_all;			/* a note could not be recorded:
					 * look at every block */
	/* b-adaptive: merge hysteresis (file_run_merges()) */
	unsigned int merge_delay;	/* period, in conversions; 0: none */
	uint32_t merge_clock;		/* conversions that found work */
	bool merge_now;			/* a period ended */
	bool merge_compact;		/* gmem_file_compact(): all blocks */
	struct ghuge **huge;		/* huge policies: per huge page */
	/*
	 * hva: the file's host range (hostmem.c), huge policies with memory
	 * only, else NULL: @size bytes reserved PROT_NONE at creation,
	 * aligned to the pool's page size, unmapped at close.  Each huge page
	 * in huge[] is mapped at its file offset from the pool's fd at its
	 * frame (a detached one is not); mapped and unmapped under this lock
	 * with the page's huge[] entry, so a holder of this lock sees
	 * the range as huge[] says.  The pointer is set before the file is
	 * listed and cleared at close under this lock.
	 */
	uint8_t *hva;
	uint64_t nr_huge;
	struct gfolio ***small;		/* policy 4k: per 2M, 512 folios */
	uint64_t nr_small_dirs;
	uint64_t resv;			/* reserved, not yet allocated */
	uint64_t held;			/* huge pages in huge[] (pool->lock
					 * and this lock to change) */
	uint64_t *unreserved;		/* per huge page: reservation gone
					 * with a retired page (pool->lock) */
	_Atomic(struct gvma *) vmas;	/* as gvma.file_next */
	struct gview *dead_views;	/* closed: view handlers to stop */
	struct gmap guest;
	struct gmap iommu;
	struct pinmap pinmap;		/* slow-path pins only */
	struct gfile_counters c;
	/* flush_batch_begin/end(): one flush per mm, one stage-2 and one
	 * IOTLB flush for the batch, however many zaps it makes */
	unsigned int flush_batch;
	uint64_t batch_gflush, batch_grem, batch_iflush, batch_irem;
	atomic_uint nr_excl;		/* exclusive pins held */

	/*
	 * Fast paths (gup.c): @fast_used is set by a fast pin or unpin
	 * before it reads @seq; a holder of the invalidate lock that finds
	 * it set clears it and waits for a grace period, so no fast path
	 * runs while a holder works.  @nr_excl counts exclusive pins (a
	 * fast pin needs none).  @fast_pins counts fast-path pinned pages.
	 */
	atomic_bool fast_used;
	/* set by a fast fault or load before it reads @seq: a holder that
	 * frees what one may look at waits for a grace period first */
	atomic_bool fast_read_used;
	struct shard_counter fast_pins;
	/* views_reap() calls freeing views of this struct (file lock): it
	 * is not reused meanwhile; outlives a life, as a reap may */
	unsigned int reaping;

	/*
	 * gen: the handle generation.  A handle is this struct's address
	 * with gen in its top bits (handle_make()); close advances gen inside
	 * the invalidate lock held exclusively (so under seq), which makes
	 * every handle to the closed file stale.  The struct is type-stable:
	 * it is never freed before the pool, only reused by a later
	 * gmem_file_create() once no pin refers to it (pool->zombies).
	 */
	atomic_uint gen;
	struct gfile *next;		/* pool->files_lock */
};

/* rcu.c: read-side sections of the fast paths; deferred frees */
struct rcu_deferred;
void gmem_rcu_init(void);
void gmem_rcu_read_lock(void);
void gmem_rcu_read_unlock(void);
void gmem_synchronize_rcu(void);
void free_rcu(struct gfile *f, void *ptr, size_t size);
void rcu_flush(struct gpool *p);

/* invalidate lock */
void inval_init(struct ginval *l);
void inval_destroy(struct ginval *l);
void invalidate_lock_shared(struct gfile *f);
void invalidate_unlock_shared(struct gfile *f);
void invalidate_lock(struct gfile *f);
void invalidate_unlock(struct gfile *f);
bool invalidate_held_exclusive(struct gfile *f);
bool invalidate_held(struct gfile *f);
#define assert_invalidate_exclusive(f) GM_BUG_ON(!invalidate_held_exclusive(f))
#define assert_invalidate_held(f) GM_BUG_ON(!invalidate_held(f))

/* pool.c */
int pool_alloc_huge(struct gpool *p, struct gfile *f, struct ghuge *h);
void pool_return_huge(struct gpool *p, struct ghuge *h, struct gfile *owner,
		      bool undo);
int arena_alloc(struct gpool *p, uint8_t **data);
void arena_free(struct gpool *p, uint8_t *data);
void pool_zero(struct gpool *p, uint8_t *data, uint64_t len);
void pool_detach(struct gpool *p, struct ghuge *h);
void pool_count(struct gpool *p, uint64_t *field_run, uint64_t *field_file,
		uint64_t n);

/* folio.c */
struct gfolio *folio_lookup(struct gfile *f, uint64_t pg);
int folio_get_or_alloc(struct gfile *f, uint64_t pg, struct gfolio **out,
		       bool *allocated);
void folio_put(struct gfile *f, struct gfolio *fo);
void folio_pin(struct gfolio *fo, uint32_t nr, bool longterm);
void folio_unpin(struct gfile *f, struct gfolio *fo, uint32_t nr,
		 bool longterm);
bool folio_has_unexpected_refs(struct gfolio *fo);
bool folio_pin_room(struct gfolio *fo, uint64_t nr, uint64_t ptes);
int folio_level(const struct gfolio *fo);
void huge_undo_alloc(struct gfile *f, uint64_t slot);
void small_undo_alloc(struct gfile *f, uint64_t pg);
void file_release_huge(struct gfile *f, uint64_t slot);
void file_release_small(struct gfile *f, uint64_t pg);
int file_split_for(struct gfile *f, uint64_t pg0, uint64_t pg1,
		   enum gmem_attr to);
void file_note_merge(struct gfile *f, uint64_t pg0, uint64_t pg1);
void file_note_merge_quiet(struct gfile *f, uint64_t pg0, uint64_t pg1);
void file_merge_tick(struct gfile *f);
void file_run_merges(struct gfile *f);
/* The splits a call made, to undo if it fails later (at most two huge
 * pages and two 2M blocks in each). */
struct split_undo {
	struct ghuge *h;
	struct gblock *b;
	unsigned int order;
};
struct split_list {
	struct split_undo e[8];
	unsigned int nr;
	/* the folios whose host entries it zapped, by first page and size */
	uint64_t zap_pg[8], zap_nr[8];
	unsigned int nr_zap;
};
int file_split_for_pin(struct gfile *f, uint64_t pg0, uint64_t pg1,
		       struct split_list *sl);
void file_unsplit(struct gfile *f, struct split_list *sl);
void file_free_folios(struct gfile *f);
bool folio_structure_ok(struct gfile *f, char *why, size_t len);
void huge_free_meta(struct gfile *f, struct ghuge *h);
bool block_uniform(struct gfile *f, uint64_t pg0, uint64_t pg1, bool *shared);

/* mm.c */
struct gvma *vma_find_locked(struct gfile *f, struct gmm *mm);
struct gvma *vma_lookup(struct gfile *f, const struct gmem_mm *mmh);
struct gvma *vma_find_rcu(struct gfile *f, struct gmm *mm);
struct gfolio *pt_lookup_rcu(struct gvma *v, uint64_t pg);
int pt_prepare(struct gvma *v, uint64_t pg0, uint64_t pg1);
bool pt_present(struct gvma *v, uint64_t pg);
void pt_install(struct gvma *v, uint64_t pg, struct gfolio *fo);
uint64_t zap_range(struct gfile *f, uint64_t pg0, uint64_t pg1);
void flush_batch_begin(struct gfile *f);
void flush_batch_end(struct gfile *f);
void vma_destroy_all(struct gfile *f);
bool mm_ok(struct gfile *f, char *why, size_t len);
int host_fault_locked(struct gvma *v, struct gfile *f, uint64_t pg,
		      struct gfolio **out);

/* hostmem.c: the file's host range */
int hva_reserve(struct gfile *f);
void hva_release(struct gfile *f);
int hva_map(struct gfile *f, struct ghuge *h);
void hva_unmap(struct gfile *f, struct ghuge *h);
bool hva_ok(struct gfile *f, char *why, size_t len);

/* uffd.c: real views (gmem_mm_view()) */
void view_zap(struct gview *w, uint64_t pg0, uint64_t pg1, uint64_t lo,
	      uint64_t hi);
void views_unmark(struct gfile *f, uint64_t pg0, uint64_t pg1);
void view_detach(struct gfile *f, struct gvma *v);
void views_reap(struct gfile *f);
bool views_ok(struct gfile *f, char *why, size_t len);

/* gup.c */
void pinmap_destroy(struct pinmap *m);
int pin_table_init(struct gpool *p);
void pin_table_destroy(struct gpool *p);
int64_t shard_sum(struct shard_counter *c);
uint64_t file_pins(struct gfile *f);
void pinmap_forget(struct pinmap *m, uint64_t pg0, uint64_t pg1);
void pins_drop_all(struct gpool *p);
void pins_for_each(struct gpool *p,
		   void (*fn)(void *arg, struct gpin *pin), void *arg);
uint64_t pinmap_count(struct pinmap *m, uint64_t pg);

/* guest.c */
int guest_level_max(struct gfile *f);
void iommu_relevel(struct gfile *f, uint64_t pg0, uint64_t pg1);
bool gmaps_ok(struct gfile *f, char *why, size_t len);

/* file.c */
bool page_is_shared(struct gfile *f, uint64_t pg);
bool page_is_poisoned(struct gfile *f, uint64_t pg);
bool range_ok(struct gfile *f, uint64_t off, uint64_t len);
bool file_is_allocated(struct gfile *f, uint64_t pg);
int file_enter_shared(struct gfile *f, unsigned int gen);
int file_enter(struct gfile *f, unsigned int gen);
void file_kick_merges(struct gfile *f);

/* Whether @f's policy splits lazily and merges back (b-lazy, b-adaptive). */
static inline bool policy_lazy(const struct gfile *f)
{
	return f->policy == GMEM_POLICY_B_LAZY ||
	       f->policy == GMEM_POLICY_B_ADAPTIVE;
}

/* Count @n kernel events of @kind on @f.  Context: file lock. */
static inline void count_kev(struct gfile *f, enum kev kind, int64_t n)
{
	f->c.kev[kind] += (uint64_t)n;
}

/*
 * Handles: the object's address (below 2^47 in a process's user half)
 * with its generation in the top 16 bits.  A call with a handle whose
 * generation is not the object's current one gets -EBADF; the generation
 * repeats after 65,536 reuses of one struct.
 */
#define HANDLE_GEN_SHIFT 48
#define HANDLE_ADDR_MASK ((1ULL << HANDLE_GEN_SHIFT) - 1)

static inline unsigned int handle_gen(const void *h)
{
	return (unsigned int)((uintptr_t)h >> HANDLE_GEN_SHIFT);
}

static inline void *handle_make(void *obj, unsigned int gen)
{
	return (void *)((uintptr_t)obj |
			((uintptr_t)(gen & 0xffff) << HANDLE_GEN_SHIFT));
}

static inline struct gfile *to_file(const struct gmem_file *f)
{
	return (struct gfile *)((uintptr_t)f & HANDLE_ADDR_MASK);
}

/* Whether @h names the file now (not closed); a hint, rechecked under the
 * invalidate lock by file_enter(). acquire: close's changes happen before
 * its advance of gen. */
static inline bool file_handle_live(const struct gmem_file *h)
{
	return (atomic_load_explicit(&to_file(h)->gen, memory_order_acquire) &
		0xffff) == handle_gen(h);
}

static inline struct gpool *to_pool(struct gmem_pool *p)
{
	return (struct gpool *)p;
}

static inline struct gmm *to_mm(const struct gmem_mm *m)
{
	return (struct gmm *)((uintptr_t)m & HANDLE_ADDR_MASK);
}

/* Whether @h names the mm now (not destroyed).  acquire: as above. */
static inline bool mm_handle_live(const struct gmem_mm *h)
{
	return (atomic_load_explicit(&to_mm(h)->gen, memory_order_acquire) &
		0xffff) == handle_gen(h);
}

/*
 * Test hooks: NULL in normal use.  convert_commit runs at the commit point
 * of every successful conversion (attributes flipped, both locks still
 * held), so a test can verify the safety rule from state the conversion
 * did not compute.
 */
struct gmem_test_hooks {
	void (*convert_commit)(struct gfile *f, uint64_t pg0, uint64_t pg1,
			       enum gmem_attr to);
	/* drain() is about to wait for pins until its deadline (file lock
	 * held): a test stalls here to pass the deadline first */
	void (*drain_wait)(struct gfile *f);
};
extern struct gmem_test_hooks gmem_test_hooks;

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))

#endif /* GMEM_INTERNAL_H */
