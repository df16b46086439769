// SPDX-License-Identifier: MIT
/*
 * test_hostmem.c - gmem_file_hva(), the host address a VMM hands to KVM:
 * under the huge-page policies the file's own host range, one for the
 * whole file (one memory slot) whatever order its pages were taken in,
 * each page the pool's memory mapped at its offset; under policy 4k the
 * 4K frame.  Memory allocated for a hole as a guest access would, the
 * same bytes the guest and the host see through gmem, the address kept
 * across in-place conversions and across a punch and reallocation (the
 * punched page PROT_NONE meanwhile, a poisoned one retired and replaced
 * there), the range gone at close, gmem_check() quiet while other threads
 * remap their files' ranges, private
 * pages answered (the address names memory, not a right to touch it: the
 * VMM hands it to KVM only), no reference taken (a conversion is not
 * blocked), a range changed behind the library's back reported by
 * gmem_check(), and every errno: EINVAL (offset, NULL), EBADF (closed),
 * ENXIO (backing none), ENOMEM (injected, changing nothing).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "alloc.h"

#define PG(n) ((uint64_t)(n) * K4)

/* FINISH() inside a loop over policies: the same checks, no return. */
#define FINISH_NO_RETURN(pool)						\
	do {								\
		CHECK_INVARIANTS(pool);					\
		CHECK_BASELINE(pool);					\
		gmem_pool_destroy(pool);				\
	} while (0)

/* The address of the byte at @off and the bytes up to the end of the
 * file; the guest's write is there, and a write there is what it reads. */
static bool test_hva_huge_page(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_stats s;
	uint8_t *a, *b, v;
	void *p;
	uint64_t len;

	CHECK(setup(MB2, 3, GMEM_POLICY_B_LAZY, 3 * MB2, 0, &pool, &f, NULL));
	STATS(pool, NULL, &s);
	CHECK_EQ(s.pool_free, 3);
	CHECK_EQ(gmem_file_hva(f, MB2 + 5000, &p, &len), 0);
	CHECK_EQ(len, 2 * MB2 - 5000);
	a = p;
	/* the hole got memory, as a guest access would; no guest entry */
	STATS(pool, NULL, &s);
	CHECK_EQ(s.pool_free, 2);
	CHECK_EQ(s.folios_2m, 1);
	CHECK_EQ(s.guest_2m + s.guest_4k, 0);
	CHECK_EQ(gmem_guest_write(f, MB2 + 5000, 0x5a), 0);
	CHECK_EQ(*a, 0x5a);
	a[1] = 0xa5;
	CHECK_EQ(gmem_guest_read(f, MB2 + 5001, &v), 0);
	CHECK_EQ(v, 0xa5);
	/* one range: the page's first byte lies below, the file's first
	 * byte a page below that */
	CHECK_EQ(gmem_file_hva(f, MB2, &p, &len), 0);
	b = p;
	CHECK_EQ(len, 2 * MB2);
	CHECK(b + 5000 == a);
	CHECK_EQ(gmem_file_hva(f, 0, &p, &len), 0);
	CHECK((uint8_t *)p + MB2 == b);
	CHECK_EQ(len, 3 * MB2);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* 1 GiB pages: the range is aligned to 1 GiB and runs to the file's end. */
static bool test_hva_1g(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	void *p, *q;
	uint64_t len;

	CHECK(setup(GB1, 1, GMEM_POLICY_B_LAZY, GB1, SHARED, &pool, &f, NULL));
	CHECK_EQ(gmem_file_hva(f, 0, &p, &len), 0);
	CHECK_EQ(len, GB1);
	CHECK(((uintptr_t)p & (GB1 - 1)) == 0);
	CHECK_EQ(gmem_file_hva(f, GB1 - 1, &q, &len), 0);
	CHECK_EQ(len, 1);
	CHECK((uint8_t *)q == (uint8_t *)p + GB1 - 1);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* Every policy: huge ones to the end of the file, 4k to its frame. */
static bool test_hva_policies(void)
{
	static const enum gmem_policy pols[] = {
		GMEM_POLICY_4K, GMEM_POLICY_A, GMEM_POLICY_B_EAGER,
		GMEM_POLICY_B_LAZY,
	};

	for (size_t i = 0; i < sizeof(pols) / sizeof(pols[0]); i++) {
		struct gmem_pool *pool;
		struct gmem_file *f;
		uint64_t len, want;
		uint8_t v;
		void *p;

		CHECK(setup(MB2, 2, pols[i], 2 * MB2, 0, &pool, &f, NULL));
		CHECK_EQ(gmem_file_hva(f, PG(700) + 12, &p, &len), 0);
		want = pols[i] == GMEM_POLICY_4K ? K4 - 12 :
		       2 * MB2 - PG(700) - 12;
		if (len != want)
			fprintf(stderr, "policy %s:\n", policy_name(pols[i]));
		CHECK_EQ(len, want);
		*(uint8_t *)p = 0x77;
		CHECK_EQ(gmem_guest_read(f, PG(700) + 12, &v), 0);
		CHECK_EQ(v, 0x77);
		CHECK_EQ(gmem_file_close(f), 0);
		FINISH_NO_RETURN(pool);
	}
	return true;
}

/*
 * Private pages are answered (decided: the address is for KVM, which maps
 * private and shared alike; the host's own accesses go through an mm and
 * get SIGBUS).  Conversions are in place: the address stays, the data
 * with it, and the address holds no reference, so a conversion to
 * private is not blocked.
 */
static bool test_hva_private_and_conversion(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	void *p, *q;
	uint64_t len;
	uint8_t v;

	CHECK(setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, 0, &pool, &f, &mm));
	CHECK_EQ(gmem_file_hva(f, PG(3), &p, &len), 0);
	*(uint8_t *)p = 0x33;		/* as the guest, through KVM */
	CHECK_EQ(gmem_host_read(mm, f, PG(3), &v), GMEM_SIGBUS);
	CHECK_EQ(gmem_convert(f, PG(3), K4, GMEM_SHARED, 0, 0, NULL), 0);
	CHECK_EQ(gmem_host_read(mm, f, PG(3), &v), 0);
	CHECK_EQ(v, 0x33);
	CHECK_EQ(gmem_file_hva(f, PG(3), &q, &len), 0);
	CHECK(p == q);			/* split in place: same memory */
	CHECK_EQ(gmem_convert(f, PG(3), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(gmem_host_read(mm, f, PG(3), &v), GMEM_SIGBUS);
	CHECK_EQ(*(uint8_t *)p, 0x33);
	CHECK_EQ(gmem_file_hva(f, PG(3), &q, &len), 0);
	CHECK(p == q);			/* merged back: same memory */
	CHECK_EQ(len, MB2 - PG(3));
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* Whether the host can read the byte at @a: a pipe's write copies from
 * it, and fails with EFAULT where nothing readable is mapped. */
static bool readable(const void *a)
{
	int fds[2];
	bool ok;

	if (pipe(fds))
		return false;
	ok = write(fds[1], a, 1) == 1;
	close(fds[0]);
	close(fds[1]);
	return ok;
}

/* Whether anything at all is mapped at [a, a + len) (mincore() says
 * ENOMEM where a part is not). */
static bool mapped(void *a, uint64_t len)
{
	static unsigned char vec[(4 * MB2) / K4];

	if (len > sizeof(vec) * K4)
		len = sizeof(vec) * K4;
	return mincore(a, len, vec) == 0;
}

/*
 * A whole-page punch gives the memory back and leaves the page's part of
 * the range PROT_NONE; a later call gets memory again at the same
 * address, though another file took the old page meanwhile.
 */
static bool test_hva_punch(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f, *g;
	struct gmem_stats s;
	uint64_t len;
	uint8_t *base;
	void *p;

	CHECK(setup(MB2, 3, GMEM_POLICY_A, 2 * MB2, 0, &pool, &f, NULL));
	CHECK_EQ(gmem_file_hva(f, 0, &p, &len), 0);
	base = p;
	CHECK_EQ(gmem_file_hva(f, MB2, &p, &len), 0);
	*(uint8_t *)p = 1;
	base[0] = 2;
	CHECK_EQ(gmem_punch(f, MB2, MB2), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_2m, 1);
	CHECK(!readable(base + MB2));	/* PROT_NONE, still reserved */
	CHECK(mapped(base, 2 * MB2));
	CHECK(readable(base));
	CHECK_EQ(base[0], 2);
	CHECK_INVARIANTS(pool);
	/* another file takes the free page the punch left first */
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_A, 0, &g), 0);
	CHECK_EQ(gmem_guest_write(g, 0, 0x66), 0);
	CHECK_EQ(gmem_file_hva(f, MB2, &p, &len), 0);
	CHECK((uint8_t *)p == base + MB2);	/* the same address */
	CHECK_EQ(len, MB2);
	CHECK_EQ(*(uint8_t *)p, 0);	/* fresh memory */
	CHECK_EQ(gmem_guest_write(f, MB2 + 1, 0x77), 0);
	CHECK_EQ(base[MB2 + 1], 0x77);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(g), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_2m, 2);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* A poisoned page stays mapped while the file holds it; punched, it is
 * retired and its part of the range PROT_NONE; used again, the range maps
 * another page there. */
static bool test_hva_poison_retire(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_stats s;
	uint64_t len;
	uint8_t *base;
	void *p;

	CHECK(setup(MB2, 3, GMEM_POLICY_B_LAZY, 2 * MB2, 0, &pool, &f, NULL));
	CHECK_EQ(gmem_file_hva(f, MB2, &p, &len), 0);
	base = (uint8_t *)p - MB2;
	CHECK_EQ(gmem_poison(f, MB2 + K4), 0);
	CHECK(readable(base + MB2));
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_punch(f, MB2, MB2), 0);
	STATS(pool, NULL, &s);
	CHECK_EQ(s.pool_retired, 1);
	CHECK(!readable(base + MB2));
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_hva(f, MB2 + 5, &p, &len), 0);
	CHECK((uint8_t *)p == base + MB2 + 5);
	CHECK_EQ(*(uint8_t *)p, 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	STATS(pool, NULL, &s);
	CHECK_EQ(s.pool_free, 2);
	gmem_pool_destroy(pool);
	return true;
}

/*
 * Two files taking pages in turn: each has one range of its size (one
 * memory slot), each offset at the same distance from its start, and the
 * bytes there are those the guest and the host read and write through
 * gmem, which go through the pool's own mapping.  The pool hands out its
 * frames 0, 1, 2, ... in the order asked: the first file's pages are
 * frames 0, 3, 4 and 6, the second's 1, 2, 5 and 7, scattered in the
 * pool's mapping but one run in each file's range.
 */
static bool test_hva_one_range_interleaved(void)
{
	static const uint8_t turn[] = { 0, 1, 1, 0, 0, 1, 0, 1 };
	struct gmem_file *fs[2];
	struct gmem_pool *pool;
	struct gmem_mm *mm;
	uint8_t *base[2];
	uint64_t next[2] = { 0, 0 }, len;
	uint8_t v;
	void *p;

	CHECK(setup(MB2, 8, GMEM_POLICY_B_LAZY, 4 * MB2, SHARED, &pool, &fs[0],
		    &mm));
	CHECK_EQ(gmem_file_create(pool, 4 * MB2, GMEM_POLICY_B_LAZY, SHARED,
				  &fs[1]), 0);
	CHECK_EQ(gmem_mmap(mm, fs[1]), 0);
	for (size_t i = 0; i < sizeof(turn); i++) {
		int w = turn[i];

		CHECK_EQ(gmem_guest_write(fs[w], next[w] + 7,
					  (uint8_t)(0x10 * (w + 1) +
						    next[w] / MB2)), 0);
		next[w] += MB2;
	}
	for (int w = 0; w < 2; w++) {
		CHECK_EQ(gmem_file_hva(fs[w], 0, &p, &len), 0);
		base[w] = p;
		CHECK_EQ(len, 4 * MB2);
		CHECK(((uintptr_t)p & (MB2 - 1)) == 0);
		for (uint64_t i = 0; i < 4; i++) {
			uint64_t off = i * MB2 + 7;

			CHECK_EQ(gmem_file_hva(fs[w], off, &p, &len), 0);
			CHECK((uint8_t *)p == base[w] + off);
			CHECK_EQ(len, 4 * MB2 - off);
			/* the guest's write (the pool's mapping) is here */
			CHECK_EQ(base[w][off], 0x10 * (w + 1) + i);
			/* a write here is what the host and guest read */
			base[w][off + 1] = (uint8_t)(0x80 + 0x10 * w + i);
			CHECK_EQ(gmem_host_read(mm, fs[w], off + 1, &v), 0);
			CHECK_EQ(v, 0x80 + 0x10 * w + i);
			CHECK_EQ(gmem_guest_read(fs[w], off + 1, &v), 0);
			CHECK_EQ(v, 0x80 + 0x10 * w + i);
			CHECK_EQ(gmem_host_write(mm, fs[w], off + 2, 0x99), 0);
			CHECK_EQ(base[w][off + 2], 0x99);
		}
	}
	/* the ranges do not overlap */
	CHECK(base[0] + 4 * MB2 <= base[1] || base[1] + 4 * MB2 <= base[0]);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(fs[0]), 0);
	CHECK_EQ(gmem_file_close(fs[1]), 0);
	FINISH(pool);
}

/*
 * Close gives the range back: created and closed 300 times, each file's
 * range is mapped while it is open and not at all once it is closed, and
 * the process has as many mappings at the end as at the start.
 */
static int nr_mappings(void)
{
	FILE *fp = fopen("/proc/self/maps", "re");
	int n = 0, c;

	if (!fp)
		return -1;
	while ((c = fgetc(fp)) != EOF)
		n += c == '\n';
	fclose(fp);
	return n;
}

static bool test_hva_close_unmaps(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	uint64_t len;
	int before;
	void *p;

	CHECK_EQ(gmem_pool_create(MB2, 4, GMEM_BACKING_MEMFD, &pool), 0);
	before = nr_mappings();
	CHECK(before > 0);
	for (int i = 0; i < 300; i++) {
		CHECK_EQ(gmem_file_create(pool, 4 * MB2,
					  i % 2 ? GMEM_POLICY_A :
						  GMEM_POLICY_B_LAZY, 0, &f), 0);
		CHECK_EQ(gmem_file_hva(f, (uint64_t)(i % 4) * MB2, &p, &len),
			 0);
		*(uint8_t *)p = (uint8_t)i;
		p = (uint8_t *)p - (i % 4) * MB2;
		CHECK(mapped(p, 4 * MB2));
		CHECK_EQ(gmem_file_close(f), 0);
		CHECK(!mapped(p, MB2));
		CHECK(!mapped((uint8_t *)p + 3 * MB2, MB2));
	}
	CHECK_EQ(nr_mappings(), before);
	FINISH(pool);
}

/* A range changed behind the library's back is reported; a punch that
 * makes it what the file says again clears the report. */
static bool test_hva_check_reports(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	uint64_t len;
	char why[256];
	void *p;

	CHECK(setup(MB2, 2, GMEM_POLICY_A, 2 * MB2, 0, &pool, &f, NULL));
	CHECK_EQ(gmem_file_hva(f, MB2, &p, &len), 0);
	CHECK_EQ(gmem_check(pool, why, sizeof(why)), 0);
	CHECK(mmap(p, MB2, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		   -1, 0) == p);
	CHECK_EQ(gmem_check(pool, why, sizeof(why)), -EUCLEAN);
	CHECK(strstr(why, "hva: offset 0x200000") != NULL);
	CHECK_EQ(gmem_punch(f, MB2, MB2), 0);
	CHECK_EQ(gmem_check(pool, why, sizeof(why)), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* A file's pages taken and punched in a loop, each through its range. */
struct churn {
	struct gmem_file *f;
	atomic_bool *stop;
	unsigned int seed;
	bool ok;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	uint8_t *base;
	uint64_t len;
	void *p;

	c->ok = gmem_file_hva(c->f, 0, &p, &len) == 0;
	base = p;
	while (c->ok && !atomic_load(c->stop)) {
		uint64_t pg;

		c->seed = c->seed * 1103515245 + 12345;
		pg = (c->seed >> 16) % 4;
		if ((c->seed >> 20) & 1) {
			c->ok = gmem_file_hva(c->f, pg * MB2, &p, &len) == 0 &&
				(uint8_t *)p == base + pg * MB2;
			if (c->ok)
				base[pg * MB2 + 1] = 1;
		} else {
			c->ok = gmem_punch(c->f, pg * MB2, MB2) == 0;
		}
	}
	return NULL;
}

/* gmem_check() while two other threads map and unmap their files' ranges:
 * no violation reported (each file is read under its own locks). */
static bool test_hva_check_while_others_work(void)
{
	struct gmem_pool *pool;
	struct churn c[2];
	pthread_t t[2];
	atomic_bool stop = false;
	char why[256];
	uint64_t end;
	int checks = 0;

	CHECK_EQ(gmem_pool_create(MB2, 8, GMEM_BACKING_MEMFD, &pool), 0);
	for (int i = 0; i < 2; i++) {
		c[i] = (struct churn){ .stop = &stop, .seed = 7u + (unsigned)i };
		CHECK_EQ(gmem_file_create(pool, 4 * MB2, i ? GMEM_POLICY_A :
					  GMEM_POLICY_B_LAZY, 0, &c[i].f), 0);
		CHECK_EQ(pthread_create(&t[i], NULL, churn_thread, &c[i]), 0);
	}
	end = now_ms() + 300;
	while (now_ms() < end) {
		int ret = gmem_check(pool, why, sizeof(why));

		if (ret)
			fprintf(stderr, "gmem_check: %s\n", why);
		CHECK_EQ(ret, 0);
		checks++;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CHECK(c[i].ok);
		CHECK_EQ(gmem_file_close(c[i].f), 0);
	}
	CHECK(checks > 0);
	FINISH(pool);
}

/* EINVAL, EBADF, ENXIO. */
static bool test_hva_errors(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	uint64_t len = 7;
	void *p = &p;

	CHECK(setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, 0, &pool, &f, NULL));
	CHECK_EQ(gmem_file_hva(f, MB2, &p, &len), -EINVAL);
	CHECK_EQ(gmem_file_hva(f, UINT64_MAX, &p, &len), -EINVAL);
	CHECK_EQ(gmem_file_hva(f, 0, NULL, &len), -EINVAL);
	CHECK_EQ(gmem_file_hva(f, 0, &p, NULL), -EINVAL);
	CHECK_EQ(gmem_file_hva(NULL, 0, &p, &len), -EINVAL);
	CHECK(p == &p && len == 7);	/* untouched on error */
	CHECK_EQ(gmem_file_close(f), 0);
	CHECK_EQ(gmem_file_hva(f, 0, &p, &len), -EBADF);
	gmem_pool_destroy(pool);

	CHECK_EQ(gmem_pool_create(MB2, 1, GMEM_BACKING_NONE, &pool), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, 0, &f), 0);
	CHECK_EQ(gmem_file_hva(f, 0, &p, &len), -ENXIO);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* Every failure point of allocating a hole: -ENOMEM, nothing changed. */
static bool test_hva_enomem(void)
{
	static const enum gmem_policy pols[] = {
		GMEM_POLICY_4K, GMEM_POLICY_B_EAGER, GMEM_POLICY_B_LAZY,
	};

	for (size_t i = 0; i < sizeof(pols) / sizeof(pols[0]); i++) {
		struct gmem_pool *pool;
		struct gmem_file *f;
		struct gmem_stats s;
		uint64_t len, n;
		void *p;
		int ret;

		CHECK(setup(MB2, 1, pols[i], MB2, 0, &pool, &f, NULL));
		for (n = 1;; n++) {
			gmem_inject_fail_nth(n);
			ret = gmem_file_hva(f, PG(9), &p, &len);
			gmem_inject_reset();
			if (!ret)
				break;
			CHECK_EQ(ret, -ENOMEM);
			STATS(pool, f, &s);
			CHECK_EQ(s.folios_1g + s.folios_2m + s.folios_4k, 0);
			CHECK_EQ(s.pool_free, 1);
			CHECK_INVARIANTS(pool);
			CHECK(n < 100);
		}
		CHECK(n > 1);		/* at least one failure was injected */
		CHECK_EQ(gmem_file_close(f), 0);
		FINISH_NO_RETURN(pool);
	}
	return true;
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_hva_huge_page),
		TEST(test_hva_1g),
		TEST(test_hva_policies),
		TEST(test_hva_private_and_conversion),
		TEST(test_hva_punch),
		TEST(test_hva_poison_retire),
		TEST(test_hva_one_range_interleaved),
		TEST(test_hva_close_unmaps),
		TEST(test_hva_check_reports),
		TEST(test_hva_check_while_others_work),
		TEST(test_hva_errors),
		TEST(test_hva_enomem),
	};

	return RUN_TESTS(tests);
}
