// SPDX-License-Identifier: MIT
/*
 * test_rangeset.c - unit tests for src/rangeset.c.
 *
 * Usage: test_rangeset [seed]
 *
 * Small directed tests, then a randomized differential test against a
 * byte per unit, with rs_ok() after every operation.  Prints the seed,
 * ends with "N passed, N failed" and exits non-zero on any failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rangeset.h"

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", \
				__FILE__, __LINE__, __func__, #cond);	\
			return false;					\
		}							\
	} while (0)

#define CHECK_OK(rs)							\
	do {								\
		char why_[200];						\
		if (!rs_ok((rs), why_, sizeof(why_))) {			\
			fprintf(stderr, "%s:%d: %s: rs_ok: %s\n",	\
				__FILE__, __LINE__, __func__, why_);	\
			return false;					\
		}							\
	} while (0)

static uint64_t seed = 20240601;
static uint64_t rng_state;

/* splitmix64: small, fast and good enough to drive tests */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

/* Size of one node, as rs_meta_bytes() accounts it. */
static size_t node_bytes(void)
{
	struct rangeset rs;
	size_t b;

	rs_init(&rs);
	if (rs_prepare(&rs))
		return 0;
	b = rs_meta_bytes(&rs);
	rs_destroy(&rs);
	return b;
}

/* Whether @rs holds exactly the intervals in @iv (pairs, ascending). */
static bool holds(const struct rangeset *rs, const uint64_t *iv, size_t n)
{
	uint64_t from = 0, s, e, units = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!rs_next(rs, from, &s, &e))
			return false;
		if (s != iv[2 * i] || e != iv[2 * i + 1])
			return false;
		units += e - s;
		from = e;
	}
	return !rs_next(rs, from, &s, &e) && rs->nr_ranges == n &&
	       rs->nr_units == units;
}

static bool test_empty(void)
{
	struct rangeset rs;
	uint64_t x, s, e;

	rs_init(&rs);
	CHECK_OK(&rs);
	CHECK(!rs_test(&rs, 0));
	CHECK(!rs_test(&rs, UINT64_MAX));
	CHECK(rs_count(&rs, 0, UINT64_MAX) == 0);
	CHECK(!rs_first_in(&rs, 0, UINT64_MAX, &x));
	CHECK(rs_first_not_in(&rs, 7, 8, &x) && x == 7);
	CHECK(!rs_first_not_in(&rs, 8, 8, &x));
	CHECK(!rs_next(&rs, 0, &s, &e));
	CHECK(rs_meta_bytes(&rs) == 0);
	CHECK(rs_add(&rs, 5, 5) == 0 && rs.nr_ranges == 0);
	CHECK(rs_add(&rs, 6, 5) == 0 && rs.nr_ranges == 0);
	CHECK(rs_remove(&rs, 0, 100) == 0);
	CHECK_OK(&rs);
	rs_destroy(&rs);
	return true;
}

static bool test_add_coalesce(void)
{
	static const uint64_t a[] = { 10, 20, 30, 40 };
	static const uint64_t b[] = { 10, 40 };
	static const uint64_t c[] = { 5, 40 };
	static const uint64_t d[] = { 5, 40, 41, 42 };
	static const uint64_t f[] = { 0, 100 };
	struct rangeset rs;

	rs_init(&rs);
	CHECK(rs_add(&rs, 10, 20) == 0);
	CHECK(rs_add(&rs, 30, 40) == 0);
	CHECK_OK(&rs);
	CHECK(holds(&rs, a, 2));
	CHECK(rs_add(&rs, 20, 30) == 0);	/* touches both */
	CHECK_OK(&rs);
	CHECK(holds(&rs, b, 1));
	CHECK(rs_add(&rs, 5, 10) == 0);		/* touches on the left */
	CHECK(rs_add(&rs, 12, 38) == 0);	/* inside: no-op */
	CHECK(rs_add(&rs, 10, 40) == 0);	/* exactly: no-op */
	CHECK_OK(&rs);
	CHECK(holds(&rs, c, 1));
	CHECK(rs_add(&rs, 41, 42) == 0);
	CHECK_OK(&rs);
	CHECK(holds(&rs, d, 2));
	CHECK(rs_add(&rs, 0, 100) == 0);	/* swallows everything */
	CHECK_OK(&rs);
	CHECK(holds(&rs, f, 1));
	rs_destroy(&rs);
	CHECK(rs.nr_ranges == 0 && rs_meta_bytes(&rs) == 0);
	return true;
}

static bool test_remove_split(void)
{
	static const uint64_t a[] = { 0, 10, 20, 100 };
	static const uint64_t b[] = { 5, 10, 20, 50 };
	static const uint64_t c[] = { 5, 8, 30, 50 };
	struct rangeset rs;

	rs_init(&rs);
	CHECK(rs_add(&rs, 0, 100) == 0);
	CHECK(rs_remove(&rs, 10, 20) == 0);	/* middle: split */
	CHECK_OK(&rs);
	CHECK(holds(&rs, a, 2));
	CHECK(rs_remove(&rs, 0, 5) == 0);	/* left edge */
	CHECK(rs_remove(&rs, 50, 200) == 0);	/* right edge and beyond */
	CHECK(rs_remove(&rs, 10, 20) == 0);	/* a hole: no-op */
	CHECK_OK(&rs);
	CHECK(holds(&rs, b, 2));
	CHECK(rs_remove(&rs, 8, 30) == 0);	/* across the hole */
	CHECK_OK(&rs);
	CHECK(holds(&rs, c, 2));
	CHECK(rs_remove(&rs, 0, 1000) == 0);
	CHECK_OK(&rs);
	CHECK(holds(&rs, NULL, 0));
	rs_destroy(&rs);
	return true;
}

/* One update swallowing or removing many intervals at once. */
static bool test_long_runs(void)
{
	struct rangeset rs;
	uint64_t i, x;

	rs_init(&rs);
	for (i = 0; i < 1000; i++)
		CHECK(rs_add(&rs, 4 * i, 4 * i + 2) == 0);
	CHECK_OK(&rs);
	CHECK(rs.nr_ranges == 1000 && rs.nr_units == 2000);
	CHECK(rs_count(&rs, 1, 3999) == 1999);
	/* merges [400, 402) .. [3596, 3598) */
	CHECK(rs_add(&rs, 401, 3598) == 0);
	CHECK_OK(&rs);
	CHECK(rs.nr_ranges == 100 + 1 + 100);
	CHECK(rs_first_not_in(&rs, 400, 4000, &x) && x == 3598);
	CHECK(rs_remove(&rs, 1, 3997) == 0);	/* trims both ends */
	CHECK_OK(&rs);
	CHECK(rs.nr_ranges == 2 && rs.nr_units == 2);
	CHECK(rs_test(&rs, 0) && rs_test(&rs, 3997) && !rs_test(&rs, 1));
	rs_destroy(&rs);
	return true;
}

static bool test_extremes(void)
{
	static const uint64_t a[] = { 0, 1, UINT64_MAX - 1, UINT64_MAX };
	struct rangeset rs;
	uint64_t x, s, e;

	rs_init(&rs);
	CHECK(rs_add(&rs, UINT64_MAX - 10, UINT64_MAX) == 0);
	CHECK_OK(&rs);
	CHECK(rs_test(&rs, UINT64_MAX - 1) && !rs_test(&rs, UINT64_MAX));
	CHECK(rs_first_not_in(&rs, UINT64_MAX - 10, UINT64_MAX, &x) == false);
	CHECK(rs_add(&rs, 0, UINT64_MAX) == 0);
	CHECK_OK(&rs);
	CHECK(rs.nr_ranges == 1 && rs.nr_units == UINT64_MAX);
	CHECK(rs_count(&rs, 0, UINT64_MAX) == UINT64_MAX);
	CHECK(rs_remove(&rs, 1, UINT64_MAX - 1) == 0);
	CHECK_OK(&rs);
	CHECK(holds(&rs, a, 2));
	CHECK(rs_next(&rs, 1, &s, &e) && s == UINT64_MAX - 1 &&
	      e == UINT64_MAX);
	CHECK(rs_first_in(&rs, 1, UINT64_MAX, &x) && x == UINT64_MAX - 1);
	CHECK(rs_remove(&rs, 0, UINT64_MAX) == 0);
	CHECK_OK(&rs);
	CHECK(rs.nr_ranges == 0 && rs.nr_units == 0);
	rs_destroy(&rs);
	return true;
}

static bool test_queries(void)
{
	struct rangeset rs;
	uint64_t x, s, e;

	rs_init(&rs);
	CHECK(rs_add(&rs, 10, 20) == 0);
	CHECK(rs_add(&rs, 30, 40) == 0);
	CHECK(rs_add(&rs, 50, 60) == 0);
	CHECK(!rs_test(&rs, 9) && rs_test(&rs, 10) && rs_test(&rs, 19));
	CHECK(!rs_test(&rs, 20) && !rs_test(&rs, 29) && rs_test(&rs, 30));
	CHECK(rs_count(&rs, 15, 55) == 5 + 10 + 5);
	CHECK(rs_count(&rs, 20, 30) == 0);
	CHECK(rs_count(&rs, 0, 100) == 30);
	CHECK(rs_count(&rs, 35, 35) == 0);
	CHECK(rs_first_in(&rs, 0, 100, &x) && x == 10);
	CHECK(rs_first_in(&rs, 15, 100, &x) && x == 15);
	CHECK(rs_first_in(&rs, 20, 100, &x) && x == 30);
	CHECK(!rs_first_in(&rs, 20, 30, &x));
	CHECK(!rs_first_in(&rs, 60, 1000, &x));
	CHECK(rs_first_not_in(&rs, 10, 100, &x) && x == 20);
	CHECK(rs_first_not_in(&rs, 5, 100, &x) && x == 5);
	CHECK(!rs_first_not_in(&rs, 12, 20, &x));
	CHECK(rs_first_not_in(&rs, 12, 21, &x) && x == 20);
	CHECK(rs_next(&rs, 0, &s, &e) && s == 10 && e == 20);
	CHECK(rs_next(&rs, 15, &s, &e) && s == 15 && e == 20);
	CHECK(rs_next(&rs, 20, &s, &e) && s == 30 && e == 40);
	CHECK(!rs_next(&rs, 60, &s, &e));
	rs_destroy(&rs);
	return true;
}

static bool test_prepare_spare(void)
{
	size_t nb = node_bytes();
	struct rangeset rs;

	CHECK(nb > 0);
	rs_init(&rs);
	CHECK(rs_prepare(&rs) == 0);
	CHECK(rs.spare && rs_meta_bytes(&rs) == nb);
	CHECK(rs_prepare(&rs) == 0);		/* idempotent */
	CHECK(rs_meta_bytes(&rs) == nb);
	CHECK(rs_add(&rs, 0, 100) == 0);	/* takes the spare */
	CHECK(!rs.spare && rs_meta_bytes(&rs) == nb);
	CHECK(rs_prepare(&rs) == 0);
	CHECK(rs_remove(&rs, 10, 20) == 0);	/* the split takes it */
	CHECK(!rs.spare && rs_meta_bytes(&rs) == 2 * nb);
	CHECK(rs_add(&rs, 10, 20) == 0);	/* frees one: kept as spare */
	CHECK_OK(&rs);
	CHECK(rs.spare && rs.nr_ranges == 1 && rs_meta_bytes(&rs) == 2 * nb);
	rs_destroy(&rs);
	CHECK(!rs.spare && !rs.root && rs_meta_bytes(&rs) == 0);
	return true;
}

/* Ascending and descending inserts, then removal in random order. */
static bool test_balance(void)
{
	enum { N = 20000 };
	struct rangeset rs;
	uint64_t *order;
	uint64_t i, j, t;

	order = malloc(N * sizeof(*order));
	CHECK(order);
	rs_init(&rs);
	for (i = 0; i < N / 2; i++)
		CHECK(rs_add(&rs, 3 * i, 3 * i + 1) == 0);
	for (i = N; i > N / 2; i--)
		CHECK(rs_add(&rs, 3 * (i - 1), 3 * (i - 1) + 1) == 0);
	CHECK_OK(&rs);
	CHECK(rs.nr_ranges == N);
	for (i = 0; i < N; i++)
		order[i] = i;
	for (i = N - 1; i > 0; i--) {
		j = rnd_below(i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < N; i++) {
		CHECK(rs_remove(&rs, 3 * order[i], 3 * order[i] + 1) == 0);
		if (i % 1000 == 0)
			CHECK_OK(&rs);
	}
	CHECK_OK(&rs);
	CHECK(rs.nr_ranges == 0 && rs.nr_units == 0);
	rs_destroy(&rs);
	free(order);
	return true;
}

/* 2^28 pages: updates must not walk units. */
static bool test_huge_file(void)
{
	const uint64_t pages = 1ULL << 28;
	struct rangeset rs;
	uint64_t i, x, removed = 0;
	clock_t t0 = clock();

	rs_init(&rs);
	CHECK(rs_add(&rs, 0, pages) == 0);
	for (i = 0; i < 100000; i++) {
		x = rnd_below(pages);
		if (rs_test(&rs, x))
			removed++;
		CHECK(rs_remove(&rs, x, x + 1) == 0);
	}
	CHECK_OK(&rs);
	CHECK(rs.nr_units == pages - removed);
	CHECK(rs_count(&rs, 0, pages) == pages - removed);
	CHECK(rs_add(&rs, 0, pages) == 0);	/* merges ~100000 intervals */
	CHECK_OK(&rs);
	CHECK(rs.nr_ranges == 1 && rs.nr_units == pages);
	CHECK(rs_remove(&rs, 1, pages - 1) == 0);
	CHECK(rs.nr_units == 2);
	rs_destroy(&rs);
	/* generous: a walk over 2^28 units per op would take minutes */
	CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 10.0);
	return true;
}

/*
 * Compare @rs with @ref, one byte per unit of [base, base + n), and run
 * a few random queries against it.
 */
static bool same_as_ref(const struct rangeset *rs, const uint8_t *ref,
			uint8_t *scratch, uint64_t base, uint64_t n)
{
	uint64_t from = base, s, e, i, units = 0, runs = 0, q, lo, hi, x, c;
	uint64_t want;
	bool found;

	memset(scratch, 0, n);
	while (rs_next(rs, from, &s, &e)) {
		CHECK(s >= base && e <= base + n && s < e);
		memset(scratch + (s - base), 1, e - s);
		from = e;
	}
	CHECK(memcmp(scratch, ref, n) == 0);
	for (i = 0; i < n; i++) {
		units += ref[i];
		runs += ref[i] && (i == 0 || !ref[i - 1]);
	}
	CHECK(rs->nr_units == units && rs->nr_ranges == runs);

	for (q = 0; q < 4; q++) {
		lo = rnd_below(n + 1);
		hi = lo + rnd_below(n + 1 - lo);
		c = 0;
		for (i = lo; i < hi; i++)
			c += ref[i];
		CHECK(rs_count(rs, base + lo, base + hi) == c);

		for (i = lo; i < hi && !ref[i]; i++)
			;
		found = rs_first_in(rs, base + lo, base + hi, &x);
		CHECK(found == (i < hi) && (!found || x == base + i));

		for (i = lo; i < hi && ref[i]; i++)
			;
		found = rs_first_not_in(rs, base + lo, base + hi, &x);
		CHECK(found == (i < hi) && (!found || x == base + i));

		if (lo < n) {
			CHECK(rs_test(rs, base + lo) == !!ref[lo]);
			for (i = lo; i < n && !ref[i]; i++)
				;
			found = rs_next(rs, base + lo, &s, &e);
			CHECK(found == (i < n));
			if (found) {
				for (want = i; want < n && ref[want]; want++)
					;
				CHECK(s == base + i && e == base + want);
			}
		}
	}
	return true;
}

/* Random ranges over [base, base + n), mostly short, some long. */
static void random_range(uint64_t n, uint64_t *lo, uint64_t *hi)
{
	uint64_t len;

	switch (rnd_below(4)) {
	case 0:
		len = 1 + rnd_below(4);
		break;
	case 1:
		len = 1 + rnd_below(32);
		break;
	case 2:
		len = 1 + rnd_below(n / 4);
		break;
	default:
		len = rnd_below(n + 1);	/* may be 0: a no-op */
		break;
	}
	*lo = rnd_below(n);
	*hi = *lo + len > n ? n : *lo + len;
}

static bool random_diff(uint64_t base, uint64_t n, uint64_t ops)
{
	struct rangeset rs;
	uint8_t *ref, *scratch;
	uint64_t op, lo, hi, nr_enomem = 0;
	int add_bias = 55, ret;
	char why[200];

	ref = calloc(n, 1);
	scratch = calloc(n, 1);
	CHECK(ref && scratch);
	rs_init(&rs);
	for (op = 0; op < ops; op++) {
		/* drift the density so both sparse and dense sets occur */
		if (op % 2000 == 0)
			add_bias = 20 + (int)rnd_below(61);
		random_range(n, &lo, &hi);
		if (rnd_below(10) == 0)
			CHECK(rs_prepare(&rs) == 0 || rs.spare == NULL);
		if ((int)rnd_below(100) < add_bias) {
			ret = rs_add(&rs, base + lo, base + hi);
			if (ret == 0 && hi > lo)
				memset(ref + lo, 1, hi - lo);
		} else {
			ret = rs_remove(&rs, base + lo, base + hi);
			if (ret == 0 && hi > lo)
				memset(ref + lo, 0, hi - lo);
		}
		/* -ENOMEM must leave the set as it was: ref is untouched */
		CHECK(ret == 0 || ret == -ENOMEM);
		nr_enomem += ret == -ENOMEM;
		if (!rs_ok(&rs, why, sizeof(why))) {
			fprintf(stderr, "op %" PRIu64 ": rs_ok: %s\n", op, why);
			return false;
		}
		if (!same_as_ref(&rs, ref, scratch, base, n)) {
			fprintf(stderr, "op %" PRIu64 ": differs from reference\n",
				op);
			return false;
		}
	}
	if (nr_enomem)
		printf("  (%" PRIu64 " updates failed with -ENOMEM)\n", nr_enomem);
	rs_destroy(&rs);
	free(ref);
	free(scratch);
	return true;
}

static bool test_random_low(void)
{
	return random_diff(0, 2048, 15000);
}

static bool test_random_top(void)
{
	/* the last unit is UINT64_MAX - 1, so ends reach UINT64_MAX */
	return random_diff(UINT64_MAX - 1024, 1024, 10000);
}

static bool test_random_small(void)
{
	/* a tiny universe makes every coalescing corner case common */
	return random_diff(100, 24, 20000);
}

struct test {
	const char *name;
	bool (*fn)(void);
};

#define TEST(fn) { #fn, fn }

static const struct test tests[] = {
	TEST(test_empty),
	TEST(test_add_coalesce),
	TEST(test_remove_split),
	TEST(test_long_runs),
	TEST(test_extremes),
	TEST(test_queries),
	TEST(test_prepare_spare),
	TEST(test_balance),
	TEST(test_huge_file),
	TEST(test_random_low),
	TEST(test_random_top),
	TEST(test_random_small),
};

int main(int argc, char **argv)
{
	unsigned int passed = 0, failed = 0;
	size_t i;

	if (argc > 1)
		seed = strtoull(argv[1], NULL, 0);
	printf("test_rangeset: seed %" PRIu64 "\n", seed);
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		rng_state = seed + i;	/* each test reproducible alone */
		if (tests[i].fn()) {
			passed++;
		} else {
			failed++;
			printf("FAIL %s\n", tests[i].name);
		}
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
