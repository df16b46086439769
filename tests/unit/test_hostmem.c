// SPDX-License-Identifier: MIT
/*
 * test_hostmem.c - gmem_file_hva(), the host address a VMM hands to KVM:
 * the address of the real byte at an offset and the contiguous run to the
 * end of its huge page (its 4K frame under policy 4k), memory allocated
 * for a hole as a guest access would, the same bytes the guest and the
 * host see through gmem, the address kept across in-place conversions,
 * private pages answered (the address names memory, not a right to touch
 * it: the VMM hands it to KVM only), no reference taken (a conversion is
 * not blocked), and every errno: EINVAL (offset, NULL), EBADF (closed),
 * ENXIO (backing none), ENOMEM (injected, changing nothing).
 */
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

/* The address of the byte at @off and the bytes up to the end of its huge
 * page; the guest's write is there, and a write there is what it reads. */
static bool test_hva_huge_page(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_stats s;
	uint8_t *a, *b, v;
	void *p;
	uint64_t len;

	CHECK(setup(MB2, 2, GMEM_POLICY_B_LAZY, 2 * MB2, 0, &pool, &f, NULL));
	STATS(pool, NULL, &s);
	CHECK_EQ(s.pool_free, 2);
	CHECK_EQ(gmem_file_hva(f, MB2 + 5000, &p, &len), 0);
	CHECK_EQ(len, MB2 - 5000);
	a = p;
	/* the hole got memory, as a guest access would; no guest entry */
	STATS(pool, NULL, &s);
	CHECK_EQ(s.pool_free, 1);
	CHECK_EQ(s.folios_2m, 1);
	CHECK_EQ(s.guest_2m + s.guest_4k, 0);
	CHECK_EQ(gmem_guest_write(f, MB2 + 5000, 0x5a), 0);
	CHECK_EQ(*a, 0x5a);
	a[1] = 0xa5;
	CHECK_EQ(gmem_guest_read(f, MB2 + 5001, &v), 0);
	CHECK_EQ(v, 0xa5);
	/* the piece is contiguous: the huge page's first byte lies below */
	CHECK_EQ(gmem_file_hva(f, MB2, &p, &len), 0);
	b = p;
	CHECK_EQ(len, MB2);
	CHECK(b + 5000 == a);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* 1 GiB pages: the run goes to the end of the 1 GiB page. */
static bool test_hva_1g(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	void *p, *q;
	uint64_t len;

	CHECK(setup(GB1, 1, GMEM_POLICY_B_LAZY, GB1, SHARED, &pool, &f, NULL));
	CHECK_EQ(gmem_file_hva(f, 0, &p, &len), 0);
	CHECK_EQ(len, GB1);
	CHECK_EQ(gmem_file_hva(f, GB1 - 1, &q, &len), 0);
	CHECK_EQ(len, 1);
	CHECK((uint8_t *)q == (uint8_t *)p + GB1 - 1);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* Every policy: huge ones to the end of the huge page, 4k to its frame. */
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

/* A whole-page punch gives the memory back; a later call gets memory
 * again (the address may differ). */
static bool test_hva_punch(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_stats s;
	uint64_t len;
	void *p;

	CHECK(setup(MB2, 2, GMEM_POLICY_A, MB2, 0, &pool, &f, NULL));
	CHECK_EQ(gmem_file_hva(f, 0, &p, &len), 0);
	*(uint8_t *)p = 1;
	CHECK_EQ(gmem_punch(f, 0, MB2), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_2m, 0);
	CHECK_EQ(gmem_file_hva(f, 0, &p, &len), 0);
	CHECK_EQ(*(uint8_t *)p, 0);	/* fresh memory */
	STATS(pool, f, &s);
	CHECK_EQ(s.folios_2m, 1);
	CHECK_EQ(gmem_file_close(f), 0);
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
		TEST(test_hva_errors),
		TEST(test_hva_enomem),
	};

	return RUN_TESTS(tests);
}
