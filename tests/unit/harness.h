/* SPDX-License-Identifier: MIT */
/*
 * harness.h - the small harness the library's unit tests share.
 *
 * Each tests/unit/test_*.c is a program of its own: a list of
 * `static bool test_x(void)` functions, each building its own pool and
 * leaving it at its baseline, run by run_tests(), which prints one
 * "PASS name" / "FAIL name" line per test and last "N passed, N failed".
 *
 * CHECK(cond) prints file:line and the condition and fails the test;
 * CHECK_EQ(a, b) also prints both values.  FINISH(pool) ends a test: every
 * invariant holds (gmem_check()), every file is closed and every pin
 * dropped (pool_free == pool_total, nothing reserved, held or mapped),
 * then it destroys the pool (testpool_destroy()).
 *
 * Pools: setup() and testpool_create() (tools/hog.h) make a test's pool;
 * with GMEM_TEST_BACKING=hugetlb a memfd or auto pool is made on real
 * hugetlbfs instead, and with GMEM_TEST_HOG=1 another process takes every
 * free huge page meanwhile.  A test that needs a plain memfd (the
 * userfaultfd views) or backing none calls gmem_pool_create().
 *
 * Tests may include internal.h to look at folios; folio_lookup() wants the
 * file lock, which a single-threaded test may skip.
 */
#ifndef GMEM_TEST_HARNESS_H
#define GMEM_TEST_HARNESS_H

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gmem.h"
#include "../../tools/hog.h"

#ifndef EHWPOISON
#define EHWPOISON 133
#endif

#define K4 4096ULL
#define SHARED GMEM_FILE_INIT_SHARED
#define MB2 GMEM_2M
#define GB1 GMEM_1G

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", \
				__FILE__, __LINE__, __func__, #cond);	\
			return false;					\
		}							\
	} while (0)

#define CHECK_EQ(a, b)							\
	do {								\
		long long a_ = (long long)(a), b_ = (long long)(b);	\
		if (a_ != b_) {						\
			fprintf(stderr,					\
				"%s:%d: %s: CHECK(%s == %s) failed: %lld != %lld\n", \
				__FILE__, __LINE__, __func__, #a, #b, a_, b_); \
			return false;					\
		}							\
	} while (0)

/* gmem_check() must hold; print what it found otherwise. */
#define CHECK_INVARIANTS(pool)						\
	do {								\
		char why_[256] = "";					\
		int r_ = gmem_check((pool), why_, sizeof(why_));	\
		if (r_) {						\
			fprintf(stderr, "%s:%d: %s: gmem_check: %d: %s\n", \
				__FILE__, __LINE__, __func__, r_, why_);\
			return false;					\
		}							\
	} while (0)

/* The pool is back at its baseline: nothing of any file is left in it. */
#define CHECK_BASELINE(pool)						\
	do {								\
		struct gmem_stats s_;					\
		CHECK_EQ(gmem_stats((pool), NULL, &s_), 0);		\
		CHECK_EQ(s_.pool_free, s_.pool_total);			\
		CHECK_EQ(s_.pool_resv, 0);				\
		CHECK_EQ(s_.pins, 0);					\
		CHECK_EQ(s_.host_ptes, 0);				\
		CHECK_EQ(s_.folios_1g + s_.folios_2m + s_.folios_4k, 0); \
	} while (0)

/* End a test: invariants, baseline, pool destroyed, success. */
#define FINISH(pool)							\
	do {								\
		CHECK_INVARIANTS(pool);					\
		CHECK_BASELINE(pool);					\
		testpool_destroy(pool);				\
		return true;						\
	} while (0)

/* Pool-wide (file NULL) or per-file statistics; aborts the test on error. */
#define STATS(pool, file, s) CHECK_EQ(gmem_stats((pool), (file), (s)), 0)

struct test {
	const char *name;
	bool (*fn)(void);
};

#define TEST(fn) { #fn, fn }

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static inline const char *policy_name(enum gmem_policy p)
{
	static const char *const names[] = { "default", "4k", "a", "b-eager",
					     "b-lazy", "b-adaptive" };

	return (unsigned int)p < 6 ? names[p] : "?";
}

/*
 * A pool of @count pages of @psize (memfd backing, or hugetlb beside a
 * huge page hog in the test runs that ask for it: testpool_create() in
 * tools/hog.h), one file of @fsize under @pol with @flags, and, if @mm is
 * not NULL, an mm that maps it.
 */
static inline bool setup(uint64_t psize, uint64_t count, enum gmem_policy pol,
			 uint64_t fsize, unsigned int flags,
			 struct gmem_pool **pool, struct gmem_file **file,
			 struct gmem_mm **mm)
{
	CHECK_EQ(testpool_create(psize, count, GMEM_BACKING_MEMFD, pool), 0);
	CHECK_EQ(gmem_file_create(*pool, fsize, pol, flags, file), 0);
	if (mm) {
		CHECK_EQ(gmem_mm_create(*pool, NULL, mm), 0);
		CHECK_EQ(gmem_mmap(*mm, *file), 0);
	}
	return true;
}

/* Run @n tests; print the summary; return the process exit status. */
static inline int run_tests(const struct test *t, size_t n)
{
	unsigned int passed = 0, failed = 0;

	for (size_t i = 0; i < n; i++) {
		bool ok = t[i].fn();

		printf("%s %s\n", ok ? "PASS" : "FAIL", t[i].name);
		fflush(stdout);
		if (ok)
			passed++;
		else
			failed++;
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

#define RUN_TESTS(arr) run_tests((arr), sizeof(arr) / sizeof((arr)[0]))

#endif /* GMEM_TEST_HARNESS_H */
