// SPDX-License-Identifier: MIT
/*
 * test_gmap.c - unit tests for src/gmap.c.
 *
 * Usage: test_gmap [seed]
 *
 * Small directed tests, then a randomized differential test against a
 * byte per 4K page (0: unmapped, L + 1: inside a level-L entry), with
 * gmap_ok() after every operation.  Prints the seed, ends with
 * "N passed, N failed" and exits non-zero on any failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gmap.h"

#define SZ_4K	(1ULL << 12)
#define SZ_2M	(1ULL << 21)
#define SZ_1G	(1ULL << 30)

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", \
				__FILE__, __LINE__, __func__, #cond);	\
			return false;					\
		}							\
	} while (0)

#define CHECK_OK(m)							\
	do {								\
		char why_[200];						\
		if (!gmap_ok((m), why_, sizeof(why_))) {		\
			fprintf(stderr, "%s:%d: %s: gmap_ok: %s\n",	\
				__FILE__, __LINE__, __func__, why_);	\
			return false;					\
		}							\
	} while (0)

static const uint64_t level_size[] = { SZ_4K, SZ_2M, SZ_1G };

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

/* Entries seen by gmap_for_each(), checked for order on the way. */
struct collect {
	uint64_t base[64];
	int level[64];
	unsigned int n;		/* entries seen, even past the arrays */
	uint64_t next;		/* the previous entry's end */
	bool disorder;
};

static void collect_fn(void *arg, uint64_t base, int level)
{
	struct collect *c = arg;

	if (base < c->next)
		c->disorder = true;
	c->next = base + level_size[level];
	if (c->n < 64) {
		c->base[c->n] = base;
		c->level[c->n] = level;
	}
	c->n++;
}

static void collect_in(const struct gmap *m, uint64_t start, uint64_t end,
		       struct collect *c)
{
	memset(c, 0, sizeof(*c));
	gmap_for_each(m, start, end, collect_fn, c);
}

static bool is_at(const struct gmap *m, uint64_t off, int level, uint64_t base)
{
	uint64_t b = ~0ULL;

	return gmap_lookup(m, off, &b) == level && (level < 0 || b == base);
}

static bool test_init(void)
{
	struct gmap m;

	CHECK(gmap_init(&m, 3 * SZ_1G + SZ_4K) == -EINVAL);
	CHECK(gmap_init(&m, 0) == 0);
	CHECK_OK(&m);
	CHECK(gmap_meta_bytes(&m) == 0 && !is_at(&m, 0, 0, 0));
	CHECK(gmap_insert(&m, 0, GMAP_4K) == -EINVAL);
	CHECK(gmap_remove(&m, 0, ~0ULL) == 0);
	gmap_destroy(&m);

	CHECK(gmap_init(&m, SZ_1G + SZ_2M) == 0);
	CHECK_OK(&m);
	CHECK(m.nr_gb == 2 && gmap_meta_bytes(&m) == 2 * 8 + 8);
	CHECK(gmap_bytes(&m, GMAP_4K) == 0 && gmap_bytes(&m, 3) == 0);
	gmap_destroy(&m);
	CHECK(gmap_meta_bytes(&m) == 0);
	return true;
}

static bool test_levels(void)
{
	struct gmap m;
	size_t base_meta;

	CHECK(gmap_init(&m, 4 * SZ_1G) == 0);
	base_meta = gmap_meta_bytes(&m);
	CHECK(gmap_insert(&m, SZ_1G, GMAP_1G) == 0);
	CHECK(gmap_insert(&m, 2 * SZ_1G + 3 * SZ_2M, GMAP_2M) == 0);
	CHECK(gmap_insert(&m, 3 * SZ_1G + 5 * SZ_4K, GMAP_4K) == 0);
	CHECK_OK(&m);
	CHECK(is_at(&m, SZ_1G + 12345, GMAP_1G, SZ_1G));
	CHECK(is_at(&m, 2 * SZ_1G - 1, GMAP_1G, SZ_1G));
	CHECK(is_at(&m, 2 * SZ_1G + 3 * SZ_2M + 7, GMAP_2M,
		    2 * SZ_1G + 3 * SZ_2M));
	CHECK(is_at(&m, 2 * SZ_1G + 4 * SZ_2M, -1, 0));
	CHECK(is_at(&m, 3 * SZ_1G + 5 * SZ_4K + 4095, GMAP_4K,
		    3 * SZ_1G + 5 * SZ_4K));
	CHECK(is_at(&m, 3 * SZ_1G + 6 * SZ_4K, -1, 0));
	CHECK(is_at(&m, 4 * SZ_1G, -1, 0));		/* past the end */
	CHECK(gmap_bytes(&m, GMAP_1G) == SZ_1G);
	CHECK(gmap_bytes(&m, GMAP_2M) == SZ_2M);
	CHECK(gmap_bytes(&m, GMAP_4K) == SZ_4K);
	CHECK(m.nr_pt == 2 && m.nr_bm == 1);
	/* the same entry again is a no-op */
	CHECK(gmap_insert(&m, 3 * SZ_1G + 5 * SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, 2 * SZ_1G + 3 * SZ_2M, GMAP_2M) == 0);
	CHECK(gmap_insert(&m, SZ_1G, GMAP_1G) == 0);
	CHECK_OK(&m);
	CHECK(gmap_bytes(&m, GMAP_4K) == SZ_4K);
	/* bad arguments */
	CHECK(gmap_insert(&m, SZ_4K + 1, GMAP_4K) == -EINVAL);
	CHECK(gmap_insert(&m, SZ_4K, GMAP_2M) == -EINVAL);
	CHECK(gmap_insert(&m, SZ_2M, GMAP_1G) == -EINVAL);
	CHECK(gmap_insert(&m, 0, 3) == -EINVAL);
	CHECK(gmap_insert(&m, 0, -1) == -EINVAL);
	CHECK(gmap_insert(&m, 4 * SZ_1G, GMAP_4K) == -EINVAL);
	/* covered by a larger entry */
	CHECK(gmap_insert(&m, SZ_1G + SZ_2M, GMAP_2M) == -EEXIST);
	CHECK(gmap_insert(&m, SZ_1G + SZ_4K, GMAP_4K) == -EEXIST);
	CHECK(gmap_insert(&m, 2 * SZ_1G + 3 * SZ_2M + SZ_4K, GMAP_4K) ==
	      -EEXIST);
	CHECK_OK(&m);
	CHECK(gmap_remove(&m, 0, 4 * SZ_1G) == 3);
	CHECK_OK(&m);
	CHECK(gmap_meta_bytes(&m) == base_meta && m.nr_pt == 0);
	gmap_destroy(&m);
	return true;
}

static bool test_replace_smaller(void)
{
	struct gmap m;
	size_t base_meta;
	uint64_t i;

	CHECK(gmap_init(&m, 2 * SZ_1G) == 0);
	base_meta = gmap_meta_bytes(&m);
	for (i = 0; i < 512; i += 3)
		CHECK(gmap_insert(&m, SZ_2M + i * SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, 5 * SZ_2M + SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, 7 * SZ_2M, GMAP_2M) == 0);
	CHECK_OK(&m);
	CHECK(gmap_bytes(&m, GMAP_4K) == 172 * SZ_4K && m.nr_bm == 2);

	CHECK(gmap_insert(&m, SZ_2M, GMAP_2M) == 0);	/* replaces 171 */
	CHECK_OK(&m);
	CHECK(gmap_bytes(&m, GMAP_4K) == SZ_4K && m.nr_bm == 1);
	CHECK(gmap_bytes(&m, GMAP_2M) == 2 * SZ_2M);
	CHECK(is_at(&m, SZ_2M + 3 * SZ_4K, GMAP_2M, SZ_2M));

	CHECK(gmap_insert(&m, 0, GMAP_1G) == 0);	/* replaces the rest */
	CHECK_OK(&m);
	CHECK(gmap_bytes(&m, GMAP_4K) == 0 && gmap_bytes(&m, GMAP_2M) == 0);
	CHECK(m.nr_pt == 0 && m.nr_bm == 0);
	CHECK(gmap_meta_bytes(&m) == base_meta);
	CHECK(is_at(&m, 5 * SZ_2M + SZ_4K, GMAP_1G, 0));
	gmap_destroy(&m);
	return true;
}

/* A file ending inside a GiB: no 1G entry there, smaller ones fine. */
static bool test_partial_gib(void)
{
	const uint64_t size = SZ_1G + 4 * SZ_2M;
	struct gmap m;

	CHECK(gmap_init(&m, size) == 0);
	CHECK(gmap_insert(&m, SZ_1G, GMAP_1G) == -EINVAL);
	CHECK(gmap_insert(&m, 0, GMAP_1G) == 0);
	CHECK(gmap_insert(&m, SZ_1G + 3 * SZ_2M, GMAP_2M) == 0);
	CHECK(gmap_insert(&m, SZ_1G + 4 * SZ_2M, GMAP_2M) == -EINVAL);
	CHECK(gmap_insert(&m, size - SZ_4K, GMAP_4K) == -EEXIST);
	CHECK(gmap_insert(&m, SZ_1G + SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, size, GMAP_4K) == -EINVAL);
	CHECK_OK(&m);
	CHECK(is_at(&m, size - 1, GMAP_2M, SZ_1G + 3 * SZ_2M));
	CHECK(is_at(&m, size, -1, 0));
	CHECK(gmap_remove_smaller(&m, SZ_1G, GMAP_1G) == 2);
	CHECK_OK(&m);
	CHECK(m.nr_pt == 0 && gmap_bytes(&m, GMAP_1G) == SZ_1G);
	CHECK(gmap_remove(&m, 0, ~0ULL) == 1);
	CHECK_OK(&m);
	gmap_destroy(&m);
	return true;
}

/* Removal takes whole any entry the range overlaps, however little. */
static bool test_remove_overlap(void)
{
	struct gmap m;

	CHECK(gmap_init(&m, 2 * SZ_1G) == 0);
	CHECK(gmap_insert(&m, SZ_2M, GMAP_2M) == 0);
	CHECK(gmap_remove(&m, SZ_2M + SZ_4K, SZ_2M + 2 * SZ_4K) == 1);
	CHECK(gmap_insert(&m, SZ_1G, GMAP_1G) == 0);
	CHECK(gmap_remove(&m, 2 * SZ_1G - 1, 2 * SZ_1G) == 1);
	CHECK(gmap_remove(&m, 0, 0) == 0);
	CHECK_OK(&m);
	CHECK(gmap_bytes(&m, GMAP_1G) == 0 && gmap_bytes(&m, GMAP_2M) == 0);

	/* unaligned edges: pages 1 and 2 overlap [4K + 1, 8K + 1) */
	CHECK(gmap_insert(&m, 0, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, 2 * SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, 3 * SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_remove(&m, SZ_4K + 1, 2 * SZ_4K + 1) == 2);
	CHECK_OK(&m);
	CHECK(is_at(&m, 0, GMAP_4K, 0) && is_at(&m, 3 * SZ_4K, GMAP_4K,
						3 * SZ_4K));
	CHECK(is_at(&m, SZ_4K, -1, 0) && is_at(&m, 2 * SZ_4K, -1, 0));

	/* across 2M and GiB boundaries, with mixed levels */
	CHECK(gmap_insert(&m, SZ_1G - SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, SZ_1G, GMAP_2M) == 0);
	CHECK(gmap_insert(&m, SZ_1G + SZ_2M, GMAP_4K) == 0);
	CHECK(gmap_remove(&m, SZ_1G - 1, SZ_1G + SZ_2M + 1) == 3);
	CHECK_OK(&m);
	CHECK(m.nr_pt == 1 && m.nr_bm == 1);
	CHECK(gmap_remove(&m, 0, 2 * SZ_1G) == 2);
	CHECK_OK(&m);
	CHECK(m.nr_pt == 0 && m.nr_bm == 0);
	gmap_destroy(&m);
	return true;
}

static bool test_remove_smaller(void)
{
	struct gmap m;

	CHECK(gmap_init(&m, 2 * SZ_1G) == 0);
	CHECK(gmap_insert(&m, 0, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, SZ_2M, GMAP_2M) == 0);
	CHECK(gmap_insert(&m, 2 * SZ_2M + SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_remove_smaller(&m, 0, GMAP_4K) == 0);
	CHECK(gmap_remove_smaller(&m, SZ_2M, GMAP_2M) == 0);	/* a 2M entry */
	CHECK(gmap_remove_smaller(&m, 0, GMAP_2M) == 2);
	CHECK_OK(&m);
	CHECK(m.nr_bm == 1 && is_at(&m, SZ_2M, GMAP_2M, SZ_2M));
	CHECK(gmap_remove_smaller(&m, SZ_4K, GMAP_2M) == 0);	/* misaligned */
	CHECK(gmap_remove_smaller(&m, 0, GMAP_1G) == 2);
	CHECK_OK(&m);
	CHECK(m.nr_pt == 0 && gmap_bytes(&m, GMAP_2M) == 0);
	CHECK(gmap_insert(&m, SZ_1G, GMAP_1G) == 0);
	CHECK(gmap_remove_smaller(&m, SZ_1G, GMAP_1G) == 0);	/* a 1G entry */
	CHECK(gmap_remove_smaller(&m, 2 * SZ_1G, GMAP_1G) == 0); /* past EOF */
	CHECK_OK(&m);
	CHECK(gmap_bytes(&m, GMAP_1G) == SZ_1G);
	gmap_destroy(&m);
	return true;
}

static bool test_for_each(void)
{
	struct collect c;
	struct gmap m;

	CHECK(gmap_init(&m, 3 * SZ_1G) == 0);
	CHECK(gmap_insert(&m, 2 * SZ_1G, GMAP_1G) == 0);
	CHECK(gmap_insert(&m, SZ_1G + SZ_2M, GMAP_2M) == 0);
	CHECK(gmap_insert(&m, SZ_1G + 7 * SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, SZ_1G + 3 * SZ_4K, GMAP_4K) == 0);
	CHECK(gmap_insert(&m, 100 * SZ_4K, GMAP_4K) == 0);

	collect_in(&m, 0, ~0ULL, &c);
	CHECK(c.n == 5 && !c.disorder);
	CHECK(c.base[0] == 100 * SZ_4K && c.level[0] == GMAP_4K);
	CHECK(c.base[1] == SZ_1G + 3 * SZ_4K && c.level[1] == GMAP_4K);
	CHECK(c.base[2] == SZ_1G + 7 * SZ_4K && c.level[2] == GMAP_4K);
	CHECK(c.base[3] == SZ_1G + SZ_2M && c.level[3] == GMAP_2M);
	CHECK(c.base[4] == 2 * SZ_1G && c.level[4] == GMAP_1G);

	collect_in(&m, SZ_1G + 3 * SZ_4K + 1, SZ_1G + SZ_2M + 1, &c);
	CHECK(c.n == 3 && c.base[0] == SZ_1G + 3 * SZ_4K &&
	      c.base[2] == SZ_1G + SZ_2M);
	collect_in(&m, 3 * SZ_1G - 1, 3 * SZ_1G, &c);
	CHECK(c.n == 1 && c.level[0] == GMAP_1G);
	collect_in(&m, 101 * SZ_4K, SZ_1G + 3 * SZ_4K, &c);
	CHECK(c.n == 0);
	collect_in(&m, 5, 5, &c);
	CHECK(c.n == 0);
	gmap_destroy(&m);
	return true;
}

/* A 1 TiB file (2^28 pages): sparse work must not walk pages or slots. */
static bool test_huge_file(void)
{
	const uint64_t size = 1ULL << 40;
	struct collect c;
	struct gmap m;
	size_t base_meta;
	uint64_t i, n = 0;

	CHECK(gmap_init(&m, size) == 0);
	base_meta = gmap_meta_bytes(&m);
	CHECK(base_meta == 1024 * 8 + 16 * 8);
	for (i = 0; i < 1000; i++) {
		uint64_t off = rnd_below(size / SZ_4K) * SZ_4K;

		if (gmap_lookup(&m, off, &(uint64_t){ 0 }) < 0) {
			CHECK(gmap_insert(&m, off, GMAP_4K) == 0);
			n++;
		}
	}
	CHECK(gmap_insert(&m, size - SZ_1G, GMAP_1G) == 0);
	CHECK_OK(&m);
	collect_in(&m, 0, size, &c);
	CHECK(!c.disorder && c.n <= n + 1);
	CHECK(gmap_bytes(&m, GMAP_4K) == (c.n - 1) * SZ_4K);
	CHECK(gmap_remove(&m, 0, size - SZ_1G) == c.n - 1);
	CHECK_OK(&m);
	CHECK(gmap_remove(&m, 0, size) == 1);
	CHECK_OK(&m);
	CHECK(gmap_meta_bytes(&m) == base_meta);
	gmap_destroy(&m);
	return true;
}

/* --- randomized differential test -------------------------------------- */

struct ref {
	uint8_t *lv;		/* per page: 0 unmapped, else level + 1 */
	uint8_t *scratch;	/* rebuilt from gmap_for_each() */
	uint64_t filled[3];	/* bytes per level seen rebuilding it */
	uint64_t pages;
};

static const uint64_t level_pages[] = { 1, 512, 512 * 512 };

/* Remove the reference entry covering page @p; returns its end page. */
static uint64_t ref_drop(struct ref *r, uint64_t p)
{
	uint64_t np = level_pages[r->lv[p] - 1];
	uint64_t bp = p & ~(np - 1);

	memset(r->lv + bp, 0, np);
	return bp + np;
}

static uint64_t ref_remove(struct ref *r, uint64_t start, uint64_t end)
{
	uint64_t p, n = 0;

	if (end > r->pages * SZ_4K)
		end = r->pages * SZ_4K;
	if (start >= end)
		return 0;
	for (p = start / SZ_4K; p <= (end - 1) / SZ_4K;) {
		if (r->lv[p]) {
			p = ref_drop(r, p);
			n++;
		} else {
			p++;
		}
	}
	return n;
}

static uint64_t ref_remove_smaller(struct ref *r, uint64_t base, int level)
{
	uint64_t p, end, n = 0;

	if (level <= GMAP_4K || level > GMAP_1G || base % level_size[level] ||
	    base >= r->pages * SZ_4K)
		return 0;
	p = base / SZ_4K;
	end = p + level_pages[level];
	if (end > r->pages)
		end = r->pages;
	while (p < end) {
		if (r->lv[p] && r->lv[p] - 1 < level) {
			p = ref_drop(r, p);
			n++;
		} else {
			p++;
		}
	}
	return n;
}

/* The expected result of gmap_insert(), applied to the reference on success. */
static int ref_insert(struct ref *r, uint64_t base, int level)
{
	uint64_t np, p, i;

	if (level < 0 || level > GMAP_1G || base % level_size[level] ||
	    base >= r->pages * SZ_4K ||
	    r->pages - base / SZ_4K < level_pages[level])
		return -EINVAL;
	np = level_pages[level];
	p = base / SZ_4K;
	for (i = 0; i < np; i += level ? np / 512 : 1)
		if (r->lv[p + i] > level + 1)
			return -EEXIST;
	memset(r->lv + p, level + 1, np);
	return 0;
}

static void fill_fn(void *arg, uint64_t base, int level)
{
	struct ref *r = arg;

	memset(r->scratch + base / SZ_4K, level + 1, level_pages[level]);
	r->filled[level] += level_size[level];
}

struct order {
	uint64_t next;
	bool bad;
};

static void order_fn(void *arg, uint64_t base, int level)
{
	struct order *o = arg;

	if (base < o->next || base % level_size[level])
		o->bad = true;
	o->next = base + level_size[level];
}

static bool same_as_ref(const struct gmap *m, struct ref *r)
{
	uint64_t p, off, base, q;
	struct order o = { 0 };
	struct collect c;
	int level;

	/* the entries rebuild the reference exactly, so their sizes count it */
	memset(r->scratch, 0, r->pages);
	memset(r->filled, 0, sizeof(r->filled));
	gmap_for_each(m, 0, ~0ULL, fill_fn, r);
	CHECK(memcmp(r->scratch, r->lv, r->pages) == 0);
	gmap_for_each(m, 0, ~0ULL, order_fn, &o);
	CHECK(!o.bad);
	for (level = 0; level < 3; level++)
		CHECK(gmap_bytes(m, level) == r->filled[level]);

	for (q = 0; q < 8; q++) {
		off = rnd_below(r->pages * SZ_4K + SZ_2M);
		p = off / SZ_4K;
		level = gmap_lookup(m, off, &base);
		if (p >= r->pages || !r->lv[p]) {
			CHECK(level == -1);
			continue;
		}
		CHECK(level == r->lv[p] - 1);
		CHECK(base == off - off % level_size[level]);
	}

	/* a sub-range walk sees exactly the entries overlapping it */
	off = rnd_below(r->pages * SZ_4K);
	q = off + rnd_below(4 * SZ_2M);
	collect_in(m, off, q, &c);
	CHECK(!c.disorder);
	if (c.n <= 64) {
		uint64_t seen = 0, i;

		/* count each entry at its first page inside the range */
		for (p = off / SZ_4K; off < q && p < r->pages &&
		     p * SZ_4K < q; p++)
			if (r->lv[p] && (p == off / SZ_4K ||
					 p % level_pages[r->lv[p] - 1] == 0))
				seen++;
		CHECK(seen == c.n);
		for (i = 0; i < c.n; i++)
			CHECK(r->lv[c.base[i] / SZ_4K] == c.level[i] + 1);
	}
	return true;
}

/* A 4K or 2M base, mostly in a few hot 2M blocks so bitmaps fill up. */
static uint64_t random_base(uint64_t size, int level)
{
	uint64_t blocks = size / SZ_2M, b;

	if (level == GMAP_1G)
		return rnd_below((size + SZ_1G - 1) / SZ_1G) * SZ_1G;
	b = rnd_below(4) ? (rnd_below(6) * 97) % blocks : rnd_below(blocks);
	if (level == GMAP_2M)
		return b * SZ_2M;
	return b * SZ_2M + rnd_below(512) * SZ_4K;
}

static bool random_diff(uint64_t size, uint64_t ops)
{
	struct ref r = { .pages = size / SZ_4K };
	uint64_t op, base, start, len, got, want, nr_enomem = 0;
	struct gmap m;
	char why[200];
	int level, ret, x;

	r.lv = calloc(r.pages, 1);
	r.scratch = calloc(r.pages, 1);
	CHECK(r.lv && r.scratch);
	CHECK(gmap_init(&m, size) == 0);
	for (op = 0; op < ops; op++) {
		x = (int)rnd_below(100);
		if (x < 60) {
			x = (int)rnd_below(100);
			level = x < 70 ? GMAP_4K : x < 95 ? GMAP_2M : GMAP_1G;
			base = random_base(size, level);
			if (rnd_below(50) == 0)
				base += SZ_4K * (1 + rnd_below(3)) / 2;
			ret = gmap_insert(&m, base, level);
			if (ret == -ENOMEM) {
				nr_enomem++;
			} else if (ret != ref_insert(&r, base, level)) {
				fprintf(stderr, "op %" PRIu64 ": insert %#" PRIx64
					" level %d gave %d\n", op, base, level, ret);
				return false;
			}
		} else if (x < 92) {
			start = rnd_below(size + SZ_2M);
			switch (rnd_below(3)) {
			case 0:
				len = rnd_below(16 * SZ_4K);
				break;
			case 1:
				len = rnd_below(8 * SZ_2M);
				break;
			default:
				len = rnd_below(size);
				break;
			}
			got = gmap_remove(&m, start, start + len);
			want = ref_remove(&r, start, start + len);
			if (got != want) {
				fprintf(stderr, "op %" PRIu64 ": remove [%#" PRIx64
					", +%#" PRIx64 ") gave %" PRIu64
					", want %" PRIu64 "\n",
					op, start, len, got, want);
				return false;
			}
		} else {
			level = 1 + (int)rnd_below(2);
			base = random_base(size, level);
			got = gmap_remove_smaller(&m, base, level);
			want = ref_remove_smaller(&r, base, level);
			if (got != want) {
				fprintf(stderr, "op %" PRIu64 ": remove_smaller %#"
					PRIx64 " level %d gave %" PRIu64
					", want %" PRIu64 "\n",
					op, base, level, got, want);
				return false;
			}
		}
		if (!gmap_ok(&m, why, sizeof(why))) {
			fprintf(stderr, "op %" PRIu64 ": gmap_ok: %s\n", op, why);
			return false;
		}
		if (!same_as_ref(&m, &r)) {
			fprintf(stderr, "op %" PRIu64 ": differs from reference\n",
				op);
			return false;
		}
	}
	if (nr_enomem)
		printf("  (%" PRIu64 " inserts failed with -ENOMEM)\n", nr_enomem);
	gmap_remove(&m, 0, size);
	CHECK(m.nr_pt == 0 && m.nr_bm == 0);
	gmap_destroy(&m);
	free(r.lv);
	free(r.scratch);
	return true;
}

static bool test_random(void)
{
	/* one whole GiB and a partial one */
	return random_diff(SZ_1G + 6 * SZ_2M, 6000);
}

static bool test_random_small(void)
{
	/* no whole GiB at all: 1G inserts must always fail */
	return random_diff(8 * SZ_2M, 8000);
}

struct test {
	const char *name;
	bool (*fn)(void);
};

#define TEST(fn) { #fn, fn }

static const struct test tests[] = {
	TEST(test_init),
	TEST(test_levels),
	TEST(test_replace_smaller),
	TEST(test_partial_gib),
	TEST(test_remove_overlap),
	TEST(test_remove_smaller),
	TEST(test_for_each),
	TEST(test_huge_file),
	TEST(test_random),
	TEST(test_random_small),
};

int main(int argc, char **argv)
{
	unsigned int passed = 0, failed = 0;
	size_t i;

	if (argc > 1)
		seed = strtoull(argv[1], NULL, 0);
	printf("test_gmap: seed %" PRIu64 "\n", seed);
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
