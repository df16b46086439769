// SPDX-License-Identifier: MIT
/*
 * test_edges.c - the library at its edges: reference counts at their
 * limit, offsets and lengths near 2^64, objects of two pools mixed, a
 * convert timeout whose deadline passes while it decides to wait, a merge
 * note that cannot allocate, and checkers and statistics racing close and
 * punch on other threads.
 *
 * Some tests look at folios through internal.h (single-threaded there).
 */
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"
#include "../../tools/trace.h"

static struct gfolio *folio_at(struct gmem_file *file, uint64_t off)
{
	return folio_lookup(to_file(file), off >> PAGE_SHIFT);
}

/* ----------------------------------------------------- refcount limit */

/*
 * The real limit on an order-0 folio: every pin up to FOLIO_REF_LIMIT
 * succeeds, the next is -ENOMEM and changes nothing; the refcount never
 * wraps, so the page cannot be converted while the pins are held.
 */
static bool pin_limit_order0(enum gmem_policy pol)
{
	/* refcount 1 (file) + 1 (the first pin's PTE) + n * bias <= limit */
	const uint64_t max = (FOLIO_REF_LIMIT - 2) / GUP_PIN_COUNTING_BIAS;
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t *ids, id = 0, at = 0;
	int ret = 0;

	if (!setup(MB2, 1, pol, MB2, SHARED, &pool, &f, &mm))
		return false;
	ids = calloc(max, sizeof(*ids));
	CHECK(ids);
	for (uint64_t i = 0; i < max && !ret; i++)
		ret = gmem_pin(mm, f, 0, K4, 0, &ids[i], NULL);
	CHECK_EQ(ret, 0);
	CHECK_EQ(folio_at(f, 0)->order, 0);
	CHECK_EQ(folio_ref_count(folio_at(f, 0)),
		 2 + max * GUP_PIN_COUNTING_BIAS);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), -ENOMEM);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, GMEM_PIN_LONGTERM, &id, NULL), -ENOMEM);
	/* a range whose last page has no room fails whole */
	CHECK_EQ(gmem_pin(mm, f, 0, 2 * K4, 0, &id, NULL), -ENOMEM);
	STATS(pool, f, &s);
	CHECK_EQ(s.pins, max);
	CHECK_EQ(s.host_ptes, 1);
	CHECK(folio_ref_count(folio_at(f, 0)) > 0);
	CHECK_EQ(gmem_convert(f, 0, K4, GMEM_PRIVATE, 0, 0, &at), -EAGAIN);
	CHECK_EQ(at, 0);
	CHECK_INVARIANTS(pool);
	/* newest first: each is at the head of its hash chain */
	for (uint64_t i = max; i-- > 0;)
		CHECK_EQ(gmem_unpin(pool, ids[i]), 0);
	free(ids);
	CHECK_EQ(gmem_convert(f, 0, K4, GMEM_PRIVATE, 0, 0, &at), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_pin_limit_beager(void)
{
	return pin_limit_order0(GMEM_POLICY_B_EAGER);
}

static bool test_pin_limit_4k(void)
{
	return pin_limit_order0(GMEM_POLICY_4K);
}

/*
 * A large folio takes one reference and one pincount per pinned page, so
 * 2^31 pinned pages would take hours: the real limit is reached by
 * standing in for most of the references (added and removed here), then
 * a lowered limit is reached by real pins, refcount and pincount both.
 */
static bool test_pin_limit_large(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gfolio *fo;
	uint64_t id, ids[16], n = 0;
	int extra, ret = 0;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_fault(mm, f, 0, 0), 0);
	fo = folio_at(f, 0);
	CHECK_EQ(fo->order, PMD_ORDER);
	/* 2 refs (file, PTE); stand in for enough to leave room for 100 */
	extra = FOLIO_REF_LIMIT - 100 - folio_ref_count(fo);
	atomic_fetch_add(&fo->refcount, extra);
	CHECK_EQ(gmem_pin(mm, f, 0, MB2, 0, &id, NULL), -ENOMEM);
	CHECK_EQ(gmem_pin(mm, f, K4, 100 * K4, 0, &id, NULL), -ENOMEM);
	/* one page already mapped: one reference, fits */
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), 0);
	CHECK_EQ(folio_ref_count(fo), FOLIO_REF_LIMIT - 99);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	atomic_fetch_sub(&fo->refcount, extra);
	CHECK_INVARIANTS(pool);

	/* a lowered limit, reached by real pins of the whole 2M folio: the
	 * first takes 511 new PTEs and 512 pins: 2 + 511 + 512 = 1025 */
	gmem_test_set_ref_limit(5000);
	while (!ret && n < 16) {
		ret = gmem_pin(mm, f, 0, MB2, 0, &ids[n], NULL);
		n += !ret;
	}
	gmem_test_set_ref_limit(0);
	CHECK_EQ(ret, -ENOMEM);
	CHECK_EQ(n, 8);			/* 1025 + 7 * 512 = 4609 <= 5000 */
	CHECK_EQ(atomic_load(&fo->pincount), 8 * 512);
	CHECK_EQ(folio_ref_count(fo), 1 + 512 + 8 * 512);
	CHECK_INVARIANTS(pool);
	while (n--)
		CHECK_EQ(gmem_unpin(pool, ids[n]), 0);
	/* a fault that would pass the limit is refused too */
	gmem_test_set_ref_limit(folio_ref_count(fo));
	{
		struct gmem_mm *mm2;

		CHECK_EQ(gmem_mm_create(pool, mm, &mm2), 0);
		CHECK_EQ(gmem_fault(mm2, f, 0, 0), GMEM_SIGBUS);
		gmem_test_set_ref_limit(0);
		CHECK_EQ(gmem_fault(mm2, f, 0, 0), 0);
	}
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* The trace language shows it, with the limit lowered. */
static bool test_pin_limit_trace(void)
{
	static const char trace[] =
		"pool 2M 1\n"
		"file f 2M policy=b-eager shared\n"
		"mm vmm\n"
		"mmap vmm f\n"
		"pin p1 vmm f 0\n"
		"pin p2 vmm f 0\n"
		"pin p3 vmm f 0\n"
		"pin p4 vmm f 0\n"
		"expect err ENOMEM\n"
		"stats f pins\n"
		"expect pins=3\n"
		"convert f 0 4K private\n"
		"expect err EAGAIN at=0x0\n"
		"check\n"
		"expect ok\n"
		"unpin p1\n"
		"unpin p2\n"
		"unpin p3\n"
		"convert f 0 4K private\n"
		"expect ok\n";
	char *out = NULL, *err = NULL;
	size_t ol = 0, el = 0;
	FILE *in = fmemopen((void *)trace, sizeof(trace) - 1, "r");
	FILE *o = open_memstream(&out, &ol), *e = open_memstream(&err, &el);
	int status;

	CHECK(in && o && e);
	/* 1 + 1 + 3 * 1024 = 3074 fits; a fourth pin would make 4098 */
	gmem_test_set_ref_limit(4096);
	status = trace_replay(in, "limit", o, e);
	gmem_test_set_ref_limit(0);
	fclose(in);
	fclose(o);
	fclose(e);
	if (status)
		fprintf(stderr, "%s%s", out, err);
	CHECK_EQ(status, 0);
	CHECK(strstr(out, "8: err ENOMEM\n"));
	free(out);
	free(err);
	return true;
}

/* -------------------------------------------------- ranges near 2^64 */

static bool same_stats(struct gmem_pool *pool, const struct gmem_stats *a)
{
	struct gmem_stats b;

	STATS(pool, NULL, &b);
	CHECK(!memcmp(a, &b, sizeof(b)));
	return true;
}

/*
 * Every entry point with offsets and lengths near 2^64: the documented
 * error or outcome, nothing changed.  A guest access over a range that
 * wraps touches the file up to its end and faults there.
 */
static bool test_ranges_near_2_64(void)
{
	const uint64_t size = 2 * MB2, top = UINT64_MAX & ~(K4 - 1);
	const uint64_t offs[] = { top, top - K4, UINT64_MAX, size, size - K4,
				  0, 1ULL << 63 };
	const uint64_t lens[] = { top, UINT64_MAX, K4, top - size + K4,
				  1ULL << 63, 2 * K4 };
	struct gmem_pool *pool;
	struct gmem_file *f, *g;
	struct gmem_mm *mm;
	struct gmem_stats s0, s;
	uint64_t id, at, hlen;
	uint8_t b;
	void *addr;

	if (!setup(MB2, 2, GMEM_POLICY_B_LAZY, size, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_guest_access(f, 0, K4, 0), 0);
	STATS(pool, NULL, &s0);
	for (unsigned int i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		for (unsigned int j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			uint64_t off = offs[i], len = lens[j];
			bool wraps = len - 1 > UINT64_MAX - off;
			/* a pin is a host access: misaligned is EINVAL,
			 * pages past the end EFAULT */
			int pin_want = off % K4 || len % K4 ? -EINVAL : -EFAULT;

			if (off < size && !wraps && len <= size - off)
				continue;	/* a valid range: not this test */
			CHECK_EQ(gmem_convert(f, off, len, GMEM_PRIVATE, 0, 0,
					      &at), -EINVAL);
			CHECK_EQ(gmem_convert(f, off, len, GMEM_SHARED, 0, 0,
					      &at), -EINVAL);
			CHECK_EQ(gmem_punch(f, off, len), -EINVAL);
			CHECK_EQ(gmem_iommu_map(f, off, len, &at), -EINVAL);
			CHECK_EQ(gmem_pin(mm, f, off, len, 0, &id, NULL),
				 pin_want);
			if (off >= size)
				CHECK_EQ(gmem_guest_access(f, off, len, 0),
					 GMEM_GUEST_FAULT);
			if (!same_stats(pool, &s0))
				return false;
		}
		if (offs[i] >= size) {
			CHECK_EQ(gmem_fault(mm, f, offs[i], 0), GMEM_SIGBUS);
			CHECK_EQ(gmem_host_read(mm, f, offs[i], &b), GMEM_SIGBUS);
			CHECK_EQ(gmem_host_write(mm, f, offs[i], 1), GMEM_SIGBUS);
			CHECK_EQ(gmem_guest_read(f, offs[i], &b),
				 GMEM_GUEST_FAULT);
			CHECK_EQ(gmem_guest_write(f, offs[i], 1),
				 GMEM_GUEST_FAULT);
			CHECK_EQ(gmem_poison(f, offs[i] & ~(K4 - 1)), -EINVAL);
			CHECK_EQ(gmem_file_hva(f, offs[i], &addr, &hlen),
				 -EINVAL);
			if (!same_stats(pool, &s0))
				return false;
		}
	}
	/* wrapping ranges that start inside: the guest maps to the end */
	CHECK_EQ(gmem_guest_access(f, size - K4, UINT64_MAX, 0),
		 GMEM_GUEST_FAULT);
	CHECK_EQ(gmem_guest_access(f, 0, UINT64_MAX, 0), GMEM_GUEST_FAULT);
	STATS(pool, f, &s);
	CHECK_EQ(s.guest_2m, size);
	CHECK_EQ(gmem_guest_access(f, K4, top, 0), GMEM_GUEST_FAULT);
	/* sizes and counts near 2^64 */
	CHECK_EQ(gmem_file_create(pool, top & ~(MB2 - 1), GMEM_POLICY_B_LAZY,
				  0, &g), -ENOMEM);
	CHECK_EQ(gmem_file_create(pool, UINT64_MAX, GMEM_POLICY_B_LAZY, 0, &g),
		 -EINVAL);
	{
		struct gmem_pool *p2;

		CHECK_EQ(gmem_pool_create(MB2, UINT64_MAX, GMEM_BACKING_NONE,
					  &p2), -EINVAL);
		CHECK_EQ(gmem_pool_create(GB1, UINT64_MAX / GB1 + 1,
					  GMEM_BACKING_NONE, &p2), -EINVAL);
		/* an empty pool is refused; one past what a process can map
		 * (1 PiB) cannot be had */
		CHECK_EQ(gmem_pool_create(MB2, 0, GMEM_BACKING_MEMFD, &p2),
			 -EINVAL);
		CHECK_EQ(gmem_pool_create(GB1, 1ULL << 20, GMEM_BACKING_MEMFD,
					  &p2), -ENOMEM);
		CHECK_EQ(gmem_pool_create(GB1, 1ULL << 20, GMEM_BACKING_NONE,
					  &p2), -ENOMEM);
	}
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* --------------------------------------------------------- two pools */

/* Objects of two pools are refused together; pin ids do not collide. */
static bool test_two_pools(void)
{
	struct gmem_pool *p1, *p2;
	struct gmem_file *f1, *f2;
	struct gmem_mm *m1, *m2, *x;
	struct gmem_stats s;
	uint64_t id1, id2;
	uint8_t b;
	void *addr;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &p1, &f1, &m1) ||
	    !setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &p2, &f2, &m2))
		return false;
	CHECK_EQ(gmem_mm_create(p2, m1, &x), -EINVAL);
	CHECK_EQ(gmem_mmap(m1, f2), -EINVAL);
	CHECK_EQ(gmem_pin(m1, f2, 0, K4, 0, &id1, NULL), -EINVAL);
	CHECK_EQ(gmem_fault(m1, f2, 0, 0), -EINVAL);
	CHECK_EQ(gmem_host_read(m1, f2, 0, &b), -EINVAL);
	CHECK_EQ(gmem_host_write(m1, f2, 0, 1), -EINVAL);
	CHECK_EQ(gmem_mm_view(m1, f2, &addr), -EINVAL);
	CHECK_EQ(gmem_stats(p1, f2, &s), -EINVAL);

	CHECK_EQ(gmem_pin(m1, f1, 0, K4, 0, &id1, NULL), 0);
	CHECK_EQ(gmem_pin(m2, f2, 0, K4, 0, &id2, NULL), 0);
	CHECK(id1 != id2);
	CHECK_EQ(gmem_unpin(p2, id1), -ENOENT);
	CHECK_EQ(gmem_unpin(p1, id2), -ENOENT);
	STATS(p1, NULL, &s);
	CHECK_EQ(s.pins, 1);
	STATS(p2, NULL, &s);
	CHECK_EQ(s.pins, 1);
	CHECK_EQ(gmem_unpin(p1, id1), 0);
	CHECK_EQ(gmem_unpin(p2, id2), 0);
	CHECK_EQ(gmem_file_close(f1), 0);
	CHECK_EQ(gmem_file_close(f2), 0);
	/* destroying the pools in either order uses nothing of the other */
	CHECK_INVARIANTS(p1);
	CHECK_BASELINE(p1);
	gmem_pool_destroy(p1);
	FINISH(p2);
}

/* ------------------------------------------------- convert deadline */

static unsigned int stall_ms;

static void stall(struct gfile *f)
{
	(void)f;
	sleep_ms(stall_ms);
}

struct conv_arg {
	struct gmem_file *f;
	int timeout_ms, ret;
	atomic_bool done;
};

static void *conv_thread(void *p)
{
	struct conv_arg *a = p;
	uint64_t at;

	a->ret = gmem_convert(a->f, 0, K4, GMEM_PRIVATE, 0, a->timeout_ms, &at);
	atomic_store(&a->done, true);
	return NULL;
}

/*
 * The deadline passes while the converter decides to wait (a stall at the
 * wait): it must still give -EAGAIN, not wait for a remainder that wrapped.
 * A converter stuck for 30 s fails the test program at once.
 */
static bool test_convert_deadline_passes(void)
{
	static const int timeouts[] = { 1, 2, 5 };
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint64_t id;

	if (!setup(MB2, 1, GMEM_POLICY_B_EAGER, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), 0);
	gmem_test_hooks.drain_wait = stall;
	for (unsigned int i = 0; i < 3; i++) {
		struct conv_arg a = { f, timeouts[i], 0, false };
		pthread_t t;
		uint64_t t0 = now_ms();

		stall_ms = (unsigned int)timeouts[i] + 3;
		CHECK_EQ(pthread_create(&t, NULL, conv_thread, &a), 0);
		while (!atomic_load(&a.done)) {
			if (now_ms() - t0 > 30000) {
				fprintf(stderr, "convert with timeout %d ms still "
					"waiting after 30 s\n", timeouts[i]);
				fflush(stderr);
				_exit(1);
			}
			sleep_ms(1);
		}
		pthread_join(t, NULL);
		CHECK_EQ(a.ret, -EAGAIN);
	}
	gmem_test_hooks.drain_wait = NULL;
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* ------------------------------------------------ merge note, no memory */

/*
 * An unpin that lets a split block merge notes the range; when the note
 * cannot allocate, the merge must still happen.
 */
static bool test_merge_note_enomem(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t id;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_convert(f, K4, K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_convert(f, K4, K4, GMEM_SHARED, 0, 0, NULL), 0);
	/* uniform again but pinned (and mapped by the pin): still split */
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_4k, 512);
	/* drop the host entry, so the unpin is the last thing in the way */
	CHECK_EQ(gmem_convert(f, 0, K4, GMEM_PRIVATE, 0, 0, NULL), -EAGAIN);
	CHECK_EQ(gmem_convert(f, 0, K4, GMEM_SHARED, 0, 0, NULL), 0);
	gmem_inject_fail_nth(1);	/* the note's allocation */
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK(gmem_inject_injected() >= 1);
	gmem_inject_reset();
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_4k, 0);
	CHECK_EQ(s.folios_2m, 1);
	CHECK_EQ(s.collapses, 1);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* ------------------------------------- checkers racing close and punch */

struct race {
	struct gmem_pool *pool;
	struct gmem_file *l;
	atomic_bool stop;
	atomic_int bad;
	char why[320];
	uint64_t checks;
};

/*
 * gmem_check() and gmem_stats() never see a lie: the long-lived policy-a
 * file @l is the only one with pool pages (the short-lived files are
 * policy 4k), so every snapshot of it has pool_free + its folios ==
 * pool_total, whatever the punching thread is doing.
 */
static void *checker(void *p)
{
	struct race *r = p;

	while (!atomic_load(&r->stop)) {
		struct gmem_stats s;
		char why[256];

		if (gmem_check(r->pool, why, sizeof(why))) {
			snprintf(r->why, sizeof(r->why), "check: %s", why);
			atomic_store(&r->bad, 1);
			break;
		}
		if (gmem_stats(r->pool, r->l, &s) ||
		    s.pool_free + s.folios_2m != s.pool_total) {
			snprintf(r->why, sizeof(r->why),
				 "stats: free %llu + folios %llu != total %llu",
				 (unsigned long long)s.pool_free,
				 (unsigned long long)s.folios_2m,
				 (unsigned long long)s.pool_total);
			atomic_store(&r->bad, 1);
			break;
		}
		gmem_stats(r->pool, NULL, &s);
		if (s.pool_resv > s.pool_free || s.pool_free > s.pool_total) {
			snprintf(r->why, sizeof(r->why), "pool stats: resv %llu free %llu total %llu",
				 (unsigned long long)s.pool_resv,
				 (unsigned long long)s.pool_free,
				 (unsigned long long)s.pool_total);
			atomic_store(&r->bad, 1);
			break;
		}
		r->checks++;
	}
	return NULL;
}

/*
 * One thread punches and refaults a file and creates, touches and closes
 * others; another checks and takes statistics all the while.  Iterations,
 * not time.
 */
static bool test_check_races_close_and_punch(void)
{
	struct race r = { 0 };
	pthread_t t;

	CHECK_EQ(gmem_pool_create(MB2, 4, GMEM_BACKING_MEMFD, &r.pool), 0);
	CHECK_EQ(gmem_file_create(r.pool, 2 * MB2, GMEM_POLICY_A, 0, &r.l), 0);
	CHECK_EQ(pthread_create(&t, NULL, checker, &r), 0);
	for (int i = 0; i < 3000 && !atomic_load(&r.bad); i++) {
		struct gmem_file *f;

		CHECK_EQ(gmem_file_create(r.pool, MB2, GMEM_POLICY_4K, 0, &f), 0);
		CHECK_EQ(gmem_guest_access(f, 0, 4 * K4, 0), 0);
		CHECK_EQ(gmem_guest_access(r.l, 0, 2 * MB2, 0), 0);
		CHECK_EQ(gmem_punch(r.l, (uint64_t)(i % 2) * MB2, MB2), 0);
		CHECK_EQ(gmem_file_close(f), 0);
		if (i % 8 == 0)
			sched_yield();
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	if (atomic_load(&r.bad))
		fprintf(stderr, "%s\n", r.why);
	CHECK_EQ(atomic_load(&r.bad), 0);
	CHECK(r.checks > 0);
	CHECK_EQ(gmem_file_close(r.l), 0);
	FINISH(r.pool);
}

/* ------------------------------- a pin holder while a convert waits */

struct waiter {
	struct gmem_file *f;
	struct gmem_pool *pool;
	atomic_int phase;
	int ret;
};

static void *forever_convert(void *p)
{
	struct waiter *w = p;
	uint64_t at;

	atomic_store(&w->phase, 1);
	w->ret = gmem_convert(w->f, 0, K4, GMEM_PRIVATE, 0, -1, &at);
	atomic_store(&w->phase, 2);
	return NULL;
}

static void *check_thread(void *p)
{
	struct waiter *w = p;

	gmem_check(w->pool, NULL, 0);
	return NULL;
}

/*
 * A conversion waits (no timeout) for a pin while gmem_check() waits for
 * that conversion's file.  The pin's holder may still create files and
 * mms and take statistics, of the pool and of that very file, before it
 * unpins: none of those may wait for the conversion or the check.
 */
static bool test_pin_holder_while_convert_waits(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f, *g;
	struct gmem_mm *mm, *mm2;
	struct gmem_stats s;
	struct waiter w = { 0 };
	pthread_t tc, tk;
	uint64_t id, t0;

	if (!setup(MB2, 2, GMEM_POLICY_B_EAGER, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_pin(mm, f, 0, K4, 0, &id, NULL), 0);
	w.f = f;
	w.pool = pool;
	CHECK_EQ(pthread_create(&tc, NULL, forever_convert, &w), 0);
	while (atomic_load(&w.phase) == 0)
		sched_yield();
	sleep_ms(20);			/* the convert is waiting for the pin */
	CHECK_EQ(pthread_create(&tk, NULL, check_thread, &w), 0);
	sleep_ms(20);			/* the check waits for the file */
	t0 = now_ms();
	/* each of these used to hang behind the check's list lock */
	CHECK_EQ(gmem_stats(pool, NULL, &s), 0);
	CHECK_EQ(gmem_stats(pool, f, &s), 0);
	CHECK_EQ(s.pins, 1);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, 0, &g), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm2), 0);
	CHECK_EQ(gmem_file_close(g), 0);
	CHECK(now_ms() - t0 < 10000);
	CHECK_EQ(atomic_load(&w.phase), 1);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	pthread_join(tc, NULL);
	pthread_join(tk, NULL);
	CHECK_EQ(w.ret, 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* -------------------------------------------- undo under policy 4k */

/*
 * A failing pin gives back the memory it allocated, and only that: a
 * directory of 4K folios that was there before (emptied by a punch)
 * stays.  Every failure point of the call, in turn.
 */
static bool test_failed_pin_keeps_directory(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s0, s;
	uint64_t id;
	int ret = -1;

	if (!setup(MB2, 1, GMEM_POLICY_4K, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_pin(mm, f, 0, 2 * K4, 0, &id, NULL), 0);
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(gmem_punch(f, 0, 2 * K4), 0);
	STATS(pool, f, &s0);
	CHECK_EQ(s0.folios_4k, 0);
	CHECK(s0.meta_bytes > 0);	/* the directory, empty */
	for (uint64_t n = 1; ret; n++) {
		CHECK(n < 64);
		gmem_inject_fail_nth(n);
		ret = gmem_pin(mm, f, 0, 2 * K4, 0, &id, NULL);
		gmem_inject_reset();
		if (!ret)
			break;
		CHECK_EQ(ret, -ENOMEM);
		STATS(pool, f, &s);
		CHECK_EQ(s.meta_bytes, s0.meta_bytes);
		CHECK_EQ(s.folios_4k, 0);
		CHECK_INVARIANTS(pool);
	}
	CHECK_EQ(gmem_unpin(pool, id), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_pin_limit_beager),
		TEST(test_pin_limit_4k),
		TEST(test_pin_limit_large),
		TEST(test_pin_limit_trace),
		TEST(test_ranges_near_2_64),
		TEST(test_two_pools),
		TEST(test_convert_deadline_passes),
		TEST(test_merge_note_enomem),
		TEST(test_check_races_close_and_punch),
		TEST(test_pin_holder_while_convert_waits),
		TEST(test_failed_pin_keeps_directory),
	};

	/* a test that hangs (a deadlock) fails the program */
	alarm(300);
	return RUN_TESTS(tests);
}
