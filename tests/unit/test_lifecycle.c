// SPDX-License-Identifier: MIT
/*
 * test_lifecycle.c - every object ends: files at close (their descriptor
 * reused by the next create once no pin refers to it), mms at
 * gmem_mm_destroy(), mappings at gmem_munmap().  Thousands of each are
 * made and ended with no growth in the process's resident memory and one
 * struct kept for reuse; a handle used after its object ended gets
 * -EBADF, also once its struct serves a new object; pins outlive the
 * mapping and the mm they were taken through.
 */
#include <dirent.h>
#include <pthread.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define PG(n) ((uint64_t)(n) * K4)

#if defined(__SANITIZE_ADDRESS__)
/*
 * AddressSanitizer keeps freed blocks in a quarantine (256 MiB) before it
 * reuses them, which would grow the resident memory however well gmem
 * frees: this test's blocks are reused at once, as without it.
 */
const char *__asan_default_options(void);
__attribute__((visibility("default"), used))
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=0";
}
#endif

/* Resident bytes of this process (/proc/self/statm). */
static uint64_t rss_bytes(void)
{
	unsigned long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* One life of a file: create, map, touch, pin, convert, unpin, close. */
static bool file_life(struct gmem_pool *pool, struct gmem_mm *mm,
		      enum gmem_policy pol, uint64_t i)
{
	struct gmem_file *f;
	uint64_t id, at;
	uint8_t v = 0;

	CHECK_EQ(gmem_file_create(pool, MB2, pol, SHARED, &f), 0);
	CHECK_EQ(gmem_mmap(mm, f), 0);
	CHECK_EQ(gmem_host_write(mm, f, PG(1), (uint8_t)i), 0);
	CHECK_EQ(gmem_host_read(mm, f, PG(1), &v), 0);
	CHECK_EQ(v, (uint8_t)i);
	CHECK_EQ(gmem_convert(f, PG(8), K4, GMEM_PRIVATE, 0, 0, &at), 0);
	CHECK_EQ(gmem_pin(mm, f, PG(2), K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	/* every other life closes with a pin held, dropped after */
	if (i & 1)
		CHECK_EQ(gmem_pin(mm, f, PG(3), K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	if (i & 1)
		CHECK_EQ(gmem_unpin(pool, id), 0);
	return true;
}

/* Closed files' structs kept for reuse, and destroyed mms'. */
static uint64_t nr_kept(struct gmem_pool *pool, bool mms)
{
	struct gpool *p = to_pool(pool);
	uint64_t n = 0;

	pthread_mutex_lock(&p->files_lock);
	if (mms)
		for (struct gmm *m = p->free_mms; m; m = m->next)
			n++;
	else
		for (struct gfile *f = p->zombies; f; f = f->next)
			n++;
	pthread_mutex_unlock(&p->files_lock);
	return n;
}

/*
 * Files made and closed, under each policy in turn: once the deferred
 * frees reached their steady state (6000 files; 3000 are enough but under
 * AddressSanitizer), 6000 more leave the
 * resident memory within 2 MiB, the allocator's own ups and downs (a
 * descriptor kept per file would be 13 MiB, a 4K page per file 23 MiB),
 * and one closed file's struct kept, the next one's to be.
 */
static bool test_file_churn_no_growth(void)
{
	static const enum gmem_policy pols[] = {
		GMEM_POLICY_4K, GMEM_POLICY_A, GMEM_POLICY_B_EAGER,
		GMEM_POLICY_B_LAZY, GMEM_POLICY_B_ADAPTIVE,
	};
	struct gmem_pool *pool;
	struct gmem_mm *mm;
	uint64_t rss0;

	CHECK_EQ(gmem_pool_create(MB2, 4, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
	for (uint64_t i = 0; i < 6000; i++)
		CHECK(file_life(pool, mm, pols[i % 5], i));
	rss0 = rss_bytes();
	for (uint64_t i = 6000; i < 12000; i++)
		CHECK(file_life(pool, mm, pols[i % 5], i));
	CHECK(rss_bytes() < rss0 + (2 << 20));
	CHECK_EQ(nr_kept(pool, false), 1);
	CHECK_EQ(gmem_mm_destroy(mm), 0);
	FINISH(pool);
}

/* A closed handle gets -EBADF, also once its struct serves a new file. */
static bool test_stale_file_handle(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f1, *f2;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id, at;
	uint8_t v;

	CHECK_EQ(gmem_pool_create(MB2, 4, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, SHARED, &f1),
		 0);
	CHECK_EQ(gmem_mmap(mm, f1), 0);
	CHECK_EQ(gmem_host_write(mm, f1, 0, 7), 0);
	CHECK_EQ(gmem_file_close(f1), 0);
	CHECK_EQ(gmem_file_create(pool, 2 * MB2, GMEM_POLICY_A, SHARED, &f2),
		 0);
	/* the same struct, a new handle */
	CHECK(to_file(f1) == to_file(f2));
	CHECK(f1 != f2);
	CHECK_EQ(gmem_mmap(mm, f2), 0);
	CHECK_EQ(gmem_host_write(mm, f2, 0, 9), 0);
	/* the old handle names nothing: every call refuses it */
	CHECK_EQ(gmem_file_close(f1), -EBADF);
	CHECK_EQ(gmem_file_size(f1), 0);
	CHECK_EQ(gmem_file_policy(f1), GMEM_POLICY_DEFAULT);
	CHECK_EQ(gmem_mmap(mm, f1), -EBADF);
	CHECK_EQ(gmem_munmap(mm, f1), -EBADF);
	CHECK_EQ(gmem_fault(mm, f1, 0, 0), -EBADF);
	CHECK_EQ(gmem_host_read(mm, f1, 0, &v), -EBADF);
	CHECK_EQ(gmem_host_write(mm, f1, 0, 1), -EBADF);
	CHECK_EQ(gmem_pin(mm, f1, 0, K4, 0, &id, NULL), -EBADF);
	CHECK_EQ(gmem_convert(f1, 0, K4, GMEM_PRIVATE, 0, 0, &at), -EBADF);
	CHECK_EQ(gmem_punch(f1, 0, K4), -EBADF);
	CHECK_EQ(gmem_poison(f1, 0), -EBADF);
	CHECK_EQ(gmem_guest_read(f1, 0, &v), -EBADF);
	CHECK_EQ(gmem_guest_write(f1, 0, 1), -EBADF);
	CHECK_EQ(gmem_iommu_map(f1, 0, K4, &at), -EBADF);
	CHECK_EQ(gmem_file_compact(f1), -EBADF);
	CHECK_EQ(gmem_file_set_merge_delay(f1, 1), -EBADF);
	CHECK_EQ(gmem_stats(pool, f1, &s), -EBADF);
	/* ... and changed nothing of the new file */
	CHECK_EQ(gmem_host_read(mm, f2, 0, &v), 0);
	CHECK_EQ(v, 9);
	CHECK_EQ(gmem_file_size(f2), 2 * MB2);
	CHECK_EQ(gmem_file_policy(f2), GMEM_POLICY_A);
	STATS(pool, f2, &s);
	CHECK_EQ(s.pins, 0);
	CHECK_EQ(gmem_file_close(f2), 0);
	CHECK_EQ(gmem_mm_destroy(mm), 0);
	FINISH(pool);
}

/*
 * A file closed with a pin held keeps its struct until the unpin (the
 * pin's record names it); then the next create takes it.
 */
static bool test_pinned_close_defers_reuse(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f1, *f2, *f3;
	struct gmem_mm *mm;
	uint64_t id;

	CHECK_EQ(gmem_pool_create(MB2, 4, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_EAGER, SHARED, &f1),
		 0);
	CHECK_EQ(gmem_mmap(mm, f1), 0);
	CHECK_EQ(gmem_pin(mm, f1, PG(5), K4, GMEM_PIN_LONGTERM, &id, NULL), 0);
	CHECK_EQ(gmem_file_close(f1), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_EAGER, SHARED, &f2),
		 0);
	CHECK(to_file(f2) != to_file(f1));
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(gmem_unpin(pool, id), -ENOENT);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_EAGER, SHARED, &f3),
		 0);
	CHECK(to_file(f3) == to_file(f1));
	CHECK_EQ(gmem_file_close(f1), -EBADF);
	CHECK_EQ(gmem_file_close(f3), 0);
	CHECK_EQ(gmem_file_close(f2), 0);
	CHECK_EQ(gmem_mm_destroy(mm), 0);
	FINISH(pool);
}

/*
 * gmem_munmap(): the mapping's entries go with their references, pins
 * stay; a second unmap finds nothing; mapping again works.
 */
static bool test_munmap(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id, at;
	uint8_t v;

	CHECK(setup(MB2, 2, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm));
	CHECK_EQ(gmem_host_write(mm, f, PG(4), 0x5a), 0);
	CHECK_EQ(gmem_fault(mm, f, PG(6), 0), 0);
	CHECK_EQ(gmem_pin(mm, f, PG(6), K4, 0, &id, NULL), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 2);
	CHECK_EQ(gmem_munmap(mm, f), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 0);
	CHECK_EQ(s.pins, 1);
	CHECK_EQ(gmem_munmap(mm, f), -ENOENT);
	CHECK_EQ(gmem_fault(mm, f, PG(4), 0), -EFAULT);
	CHECK_EQ(gmem_host_read(mm, f, PG(4), &v), -EFAULT);
	/* the pin outlived the mapping: a conversion still waits for it */
	CHECK_EQ(gmem_convert(f, PG(6), K4, GMEM_PRIVATE, 0, 0, &at), -EAGAIN);
	CHECK_EQ(at, PG(6));
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(gmem_mmap(mm, f), 0);
	CHECK_EQ(gmem_host_read(mm, f, PG(4), &v), 0);
	CHECK_EQ(v, 0x5a);
	CHECK_EQ(gmem_munmap(NULL, f), -EINVAL);
	CHECK_EQ(gmem_munmap(mm, NULL), -EINVAL);
	CHECK_EQ(gmem_file_close(f), 0);
	CHECK_EQ(gmem_munmap(mm, f), -EBADF);
	CHECK_EQ(gmem_mm_destroy(mm), 0);
	FINISH(pool);
}

/*
 * gmem_mm_destroy(): every mapping goes, pins stay valid; the handle is
 * stale afterwards, also once its struct serves a new mm.
 */
static bool test_mm_destroy(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f, *g;
	struct gmem_mm *mm, *mm2, *child;
	struct gmem_stats s;
	uint64_t id;
	uint8_t v;

	CHECK(setup(MB2, 4, GMEM_POLICY_B_EAGER, MB2, SHARED, &pool, &f, &mm));
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_4K, SHARED, &g), 0);
	CHECK_EQ(gmem_mmap(mm, g), 0);
	CHECK_EQ(gmem_host_write(mm, f, 0, 1), 0);
	CHECK_EQ(gmem_host_write(mm, g, 0, 2), 0);
	CHECK_EQ(gmem_pin(mm, g, 0, K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_mm_destroy(mm), 0);
	STATS(pool, NULL, &s);
	CHECK_EQ(s.host_ptes, 0);
	CHECK_EQ(s.pins, 1);
	CHECK_EQ(gmem_mm_destroy(mm), -EBADF);
	CHECK_EQ(gmem_mmap(mm, f), -EBADF);
	CHECK_EQ(gmem_fault(mm, f, 0, 0), -EBADF);
	CHECK_EQ(gmem_host_read(mm, f, 0, &v), -EBADF);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), -EBADF);
	CHECK_EQ(gmem_mm_create(pool, mm, &child), -EBADF);
	/* a new mm takes the struct; the old handle still names nothing */
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm2), 0);
	CHECK(to_mm(mm2) == to_mm(mm));
	CHECK(mm2 != mm);
	CHECK_EQ(gmem_mmap(mm2, f), 0);
	CHECK_EQ(gmem_host_read(mm, f, 0, &v), -EBADF);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), -EBADF);
	CHECK_EQ(gmem_munmap(mm, f), -EBADF);
	CHECK_EQ(gmem_host_read(mm2, f, 0, &v), 0);
	CHECK_EQ(v, 1);
	/* the pin taken through the destroyed mm is still the caller's */
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(gmem_mm_destroy(NULL), -EINVAL);
	CHECK_EQ(gmem_mm_destroy(mm2), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	CHECK_EQ(gmem_file_close(g), 0);
	FINISH(pool);
}

/* As test_file_churn_no_growth(), for mms mapped, faulted and destroyed. */
static bool test_mm_churn_no_growth(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t rss0 = 0;

	CHECK_EQ(gmem_pool_create(MB2, 2, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, SHARED, &f), 0);
	for (uint64_t i = 0; i < 6000; i++) {
		uint64_t id;

		if (i == 3000)
			rss0 = rss_bytes();
		CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
		CHECK_EQ(gmem_mmap(mm, f), 0);
		CHECK_EQ(gmem_fault(mm, f, PG(i % 512), GMEM_WRITE), 0);
		CHECK_EQ(gmem_pin(mm, f, PG(i % 512), K4, 0, &id, NULL), 0);
		CHECK_EQ(gmem_mm_destroy(mm), 0);
		CHECK_EQ(gmem_unpin(pool, id), 0);
	}
	CHECK(rss_bytes() < rss0 + (2 << 20));
	CHECK_EQ(nr_kept(pool, true), 1);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* GMEM_POLICY_DEFAULT, the zero value, is b-lazy. */
static bool test_policy_default(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	enum gmem_policy zero = 0;

	CHECK_EQ(gmem_pool_create(MB2, 1, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, zero, 0, &f), 0);
	CHECK_EQ(gmem_file_policy(f), GMEM_POLICY_B_LAZY);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/*
 * Readers on the fast path and the slow one while another thread unmaps
 * and maps the file again, and closes and recreates a second file whose
 * struct the readers' stale handle names: each read returns 0 (the byte
 * written), -EFAULT (unmapped) or -EBADF (stale), never anything else.
 */
struct churn {
	struct gmem_pool *pool;
	struct gmem_mm *mm;
	struct gmem_file *f, *stale;
	atomic_bool stop;
	atomic_uint bad;
	atomic_uint_fast64_t reads;
};

static void *churn_reader(void *arg)
{
	struct churn *c = arg;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		uint8_t v = 0;
		uint64_t id;
		int r = gmem_host_read(c->mm, c->f, PG(3), &v);

		if (!(r == 0 && v == 0x33) && r != -EFAULT)
			atomic_fetch_add(&c->bad, 1);
		r = gmem_pin(c->mm, c->f, PG(3), K4, 0, &id, NULL);
		if (r == 0)
			r = gmem_unpin(c->pool, id);
		if (r != 0 && r != -EFAULT)
			atomic_fetch_add(&c->bad, 1);
		r = gmem_host_read(c->mm, c->stale, 0, &v);
		if (r != -EBADF)
			atomic_fetch_add(&c->bad, 1);
		atomic_fetch_add_explicit(&c->reads, 1, memory_order_relaxed);
	}
	return NULL;
}

static bool test_unmap_close_under_readers(void)
{
	struct churn c = { .bad = 0 };
	struct gmem_file *g;
	pthread_t th[2];

	CHECK_EQ(gmem_pool_create(MB2, 4, GMEM_BACKING_MEMFD, &c.pool), 0);
	CHECK_EQ(gmem_mm_create(c.pool, NULL, &c.mm), 0);
	CHECK_EQ(gmem_file_create(c.pool, MB2, GMEM_POLICY_B_LAZY, SHARED,
				  &c.f), 0);
	CHECK_EQ(gmem_mmap(c.mm, c.f), 0);
	CHECK_EQ(gmem_host_write(c.mm, c.f, PG(3), 0x33), 0);
	CHECK_EQ(gmem_file_create(c.pool, MB2, GMEM_POLICY_B_LAZY, SHARED,
				  &c.stale), 0);
	CHECK_EQ(gmem_file_close(c.stale), 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&th[i], NULL, churn_reader, &c), 0);
	for (int i = 0; i < 300; i++) {
		/* the stale handle's struct serves g, mapped in the same mm */
		CHECK_EQ(gmem_file_create(c.pool, MB2, GMEM_POLICY_B_LAZY,
					  SHARED, &g), 0);
		CHECK_EQ(gmem_mmap(c.mm, g), 0);
		CHECK_EQ(gmem_host_write(c.mm, g, 0, 1), 0);
		CHECK_EQ(gmem_munmap(c.mm, c.f), 0);
		CHECK_EQ(gmem_mmap(c.mm, c.f), 0);
		CHECK_EQ(gmem_file_close(g), 0);
	}
	atomic_store(&c.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(atomic_load(&c.bad), 0);
	CHECK(atomic_load(&c.reads) > 0);
	CHECK_EQ(gmem_file_close(c.f), 0);
	CHECK_EQ(gmem_mm_destroy(c.mm), 0);
	FINISH(c.pool);
}

/*
 * gmem_mm_destroy() while another thread maps a file into the same mm:
 * the mapping either lands before the destroy, which then removes it, or
 * is refused with -EBADF.  It never survives on the destroyed mm's struct
 * for the next mm to inherit.
 */
struct map_race {
	struct gmem_mm *mm;
	struct gmem_file *f;
	atomic_int go;
	int ret;
};

static void *map_racer(void *arg)
{
	struct map_race *r = arg;

	atomic_store(&r->go, 1);
	for (;;) {
		r->ret = gmem_mmap(r->mm, r->f);
		if (r->ret)
			break;
		r->ret = gmem_munmap(r->mm, r->f);
		if (r->ret)
			break;
	}
	return NULL;
}

static bool test_mm_destroy_races_mmap(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm2;
	struct map_race r;
	pthread_t th;

	CHECK_EQ(gmem_pool_create(MB2, 2, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, SHARED, &f), 0);
	for (int i = 0; i < 4000; i++) {
		r = (struct map_race){ .f = f };
		CHECK_EQ(gmem_mm_create(pool, NULL, &r.mm), 0);
		CHECK_EQ(pthread_create(&th, NULL, map_racer, &r), 0);
		while (!atomic_load(&r.go))
			;
		for (int k = 0; k < (i & 63) * 64; k++)
			__asm__ volatile("" ::: "memory");
		CHECK_EQ(gmem_mm_destroy(r.mm), 0);
		pthread_join(th, NULL);
		CHECK_EQ(r.ret, -EBADF);
		/* the next mm takes the struct: it maps nothing */
		CHECK_EQ(gmem_mm_create(pool, NULL, &mm2), 0);
		CHECK(to_mm(mm2) == to_mm(r.mm));
		CHECK_EQ(gmem_munmap(mm2, f), -ENOENT);
		CHECK_EQ(gmem_mm_destroy(mm2), 0);
	}
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/*
 * A stale handle used through every kind of entry point (the invalidate
 * lock exclusive or shared, the file lock, no lock) while another thread
 * creates files in its struct, some of them failing for want of pages:
 * every call gets -EBADF, and the sanitizer build sees no data race.
 */
struct stale_user {
	struct gmem_pool *pool;
	struct gmem_mm *mm;
	struct gmem_file *stale;
	atomic_bool stop;
	atomic_uint bad;
};

static void *stale_caller(void *arg)
{
	struct stale_user *u = arg;
	struct gmem_stats s;
	uint64_t at, id;
	uint8_t v;

	while (!atomic_load_explicit(&u->stop, memory_order_relaxed)) {
		int r[] = {
			gmem_file_close(u->stale),
			gmem_convert(u->stale, 0, K4, GMEM_PRIVATE, 0, 0, &at),
			gmem_punch(u->stale, 0, K4),
			gmem_mmap(u->mm, u->stale),
			gmem_munmap(u->mm, u->stale),
			gmem_file_compact(u->stale),
			gmem_stats(u->pool, u->stale, &s),
			gmem_guest_read(u->stale, 0, &v),
			gmem_host_read(u->mm, u->stale, 0, &v),
			gmem_pin(u->mm, u->stale, 0, K4, 0, &id, NULL),
		};

		for (unsigned int i = 0; i < sizeof(r) / sizeof(r[0]); i++)
			if (r[i] != -EBADF)
				atomic_fetch_add(&u->bad, 1);
		if (gmem_file_size(u->stale))
			atomic_fetch_add(&u->bad, 1);
	}
	return NULL;
}

static bool test_stale_handle_under_create(void)
{
	struct stale_user u = { .bad = 0 };
	struct gmem_file *g, *h;
	pthread_t th;

	CHECK_EQ(gmem_pool_create(MB2, 2, GMEM_BACKING_MEMFD, &u.pool), 0);
	CHECK_EQ(gmem_mm_create(u.pool, NULL, &u.mm), 0);
	/* h holds one of the two pages throughout */
	CHECK_EQ(gmem_file_create(u.pool, MB2, GMEM_POLICY_B_LAZY, SHARED, &h),
		 0);
	CHECK_EQ(gmem_file_create(u.pool, MB2, GMEM_POLICY_B_LAZY, SHARED,
				  &u.stale), 0);
	CHECK_EQ(gmem_file_close(u.stale), 0);
	CHECK_EQ(pthread_create(&th, NULL, stale_caller, &u), 0);
	for (int i = 0; i < 2000; i++) {
		uint64_t at;

		/* the stale handle's struct, set up and given back: -ENOMEM
		 * (one page free, two wanted) */
		CHECK_EQ(gmem_file_create(u.pool, 2 * MB2, GMEM_POLICY_B_LAZY,
					  SHARED, &g), -ENOMEM);
		CHECK_EQ(gmem_file_create(u.pool, MB2, GMEM_POLICY_B_LAZY,
					  SHARED, &g), 0);
		CHECK(to_file(g) == to_file(u.stale));
		CHECK_EQ(gmem_mmap(u.mm, g), 0);
		CHECK_EQ(gmem_host_write(u.mm, g, 0, 1), 0);
		CHECK_EQ(gmem_convert(g, K4, K4, GMEM_PRIVATE, 0, 0, &at), 0);
		CHECK_EQ(gmem_file_close(g), 0);
	}
	atomic_store(&u.stop, true);
	pthread_join(th, NULL);
	CHECK_EQ(atomic_load(&u.bad), 0);
	CHECK_EQ(gmem_file_close(h), 0);
	CHECK_EQ(gmem_mm_destroy(u.mm), 0);
	FINISH(u.pool);
}

/* Open descriptors of this process. */
static int nr_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/*
 * A mapping with a real view unmapped by one thread while another closes
 * the file and creates the next one in its struct: the view's handler
 * stops and its descriptors close, whichever of the two reaps it, and
 * the struct is not reused while a view of its last life is still being
 * freed (the view's sizes are its file's of that life).  Every byte gmem
 * allocated is freed with the pool.
 */
struct view_unmapper {
	struct gmem_mm *mm;
	struct gmem_file *f;
	int ret;
};

static void *view_unmap_thread(void *arg)
{
	struct view_unmapper *u = arg;

	u->ret = gmem_munmap(u->mm, u->f);
	return NULL;
}

static bool test_view_unmap_close_reuse(void)
{
	struct gmem_pool *pool;
	struct gmem_mm *mm;
	int64_t live0 = gmem_alloc_live_bytes();
	int fds0;

	CHECK_EQ(gmem_pool_create(MB2, 4, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
	fds0 = nr_fds();
	for (int i = 0; i < 300; i++) {
		struct view_unmapper u = { .mm = mm };
		struct gmem_file *g;
		volatile uint8_t *a;
		void *addr;
		pthread_t th;

		/* sizes alternate: a view freed with its file's next life's
		 * sizes would free the wrong amounts */
		CHECK_EQ(gmem_file_create(pool, (i & 1 ? 1 : 2) * MB2,
					  GMEM_POLICY_B_LAZY, SHARED, &u.f), 0);
		CHECK_EQ(gmem_mmap(mm, u.f), 0);
		CHECK_EQ(gmem_mm_view(mm, u.f, &addr), 0);
		a = addr;
		a[K4] = 7;
		CHECK_EQ(pthread_create(&th, NULL, view_unmap_thread, &u), 0);
		CHECK_EQ(gmem_file_close(u.f), 0);
		CHECK_EQ(gmem_file_create(pool, (i & 1 ? 2 : 1) * MB2,
					  GMEM_POLICY_B_LAZY, SHARED, &g), 0);
		CHECK_EQ(gmem_file_close(g), 0);
		pthread_join(th, NULL);
		CHECK(u.ret == 0 || u.ret == -EBADF);
	}
	CHECK_EQ(gmem_mm_destroy(mm), 0);
	CHECK_EQ(nr_fds(), fds0);
	CHECK_INVARIANTS(pool);
	CHECK_BASELINE(pool);
	gmem_pool_destroy(pool);
	CHECK_EQ(gmem_alloc_live_bytes(), live0);
	return true;
}

/*
 * Views end with their mapping and their mm: no handler thread and no
 * descriptor outlives gmem_munmap() or gmem_mm_destroy().
 */
static int nr_threads(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool test_view_ends_with_mapping(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	volatile uint8_t *a;
	void *addr;
	int fds0, th0 = nr_threads();

	CHECK_EQ(gmem_pool_create(MB2, 2, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, SHARED, &f), 0);
	fds0 = nr_fds();
	for (int i = 0; i < 50; i++) {
		CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
		CHECK_EQ(gmem_mmap(mm, f), 0);
		CHECK_EQ(gmem_mm_view(mm, f, &addr), 0);
		a = addr;
		a[i * K4] = (uint8_t)i;
		CHECK_EQ(a[i * K4], (uint8_t)i);
		if (i & 1)
			CHECK_EQ(gmem_munmap(mm, f), 0);
		CHECK_EQ(gmem_mm_destroy(mm), 0);
		/* a joined thread may stay listed a moment */
		for (int k = 0; k < 1000 && nr_threads() != th0; k++)
			usleep(100);
		CHECK_EQ(nr_threads(), th0);
		CHECK_EQ(nr_fds(), fds0);
	}
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/*
 * gmem_check() walks a copy of the list of files, one file at a time, so
 * a file may be closed, and its struct taken by a create, between the
 * copy and its turn: it must skip a struct being set up (its fields are
 * being written, its arrays not there yet), not check it.
 */
struct checker {
	struct gmem_pool *pool;
	atomic_bool stop;
	atomic_uint bad;
	char why[256];
};

static void *check_thread(void *arg)
{
	struct checker *c = arg;

	while (!atomic_load_explicit(&c->stop, memory_order_relaxed))
		if (gmem_check(c->pool, c->why, sizeof(c->why)))
			atomic_fetch_add(&c->bad, 1);
	return NULL;
}

static bool test_check_under_reuse(void)
{
	struct checker c = { .bad = 0 };
	struct gmem_file *f;
	pthread_t th;

	CHECK_EQ(gmem_pool_create(MB2, 64, GMEM_BACKING_MEMFD, &c.pool), 0);
	CHECK_EQ(pthread_create(&th, NULL, check_thread, &c), 0);
	for (int i = 0; i < 3000; i++) {
		CHECK_EQ(gmem_file_create(c.pool, (i & 1 ? 64 : 32) * MB2,
					  i & 2 ? GMEM_POLICY_4K :
					  GMEM_POLICY_B_LAZY, SHARED, &f), 0);
		CHECK_EQ(gmem_file_close(f), 0);
	}
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	if (atomic_load(&c.bad))
		fprintf(stderr, "gmem_check: %s\n", c.why);
	CHECK_EQ(atomic_load(&c.bad), 0);
	FINISH(c.pool);
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_stale_file_handle),
		TEST(test_pinned_close_defers_reuse),
		TEST(test_munmap),
		TEST(test_mm_destroy),
		TEST(test_policy_default),
		TEST(test_unmap_close_under_readers),
		TEST(test_mm_destroy_races_mmap),
		TEST(test_stale_handle_under_create),
		TEST(test_view_ends_with_mapping),
		TEST(test_view_unmap_close_reuse),
		TEST(test_check_under_reuse),
		TEST(test_file_churn_no_growth),
		TEST(test_mm_churn_no_growth),
	};

	return RUN_TESTS(tests);
}
