// SPDX-License-Identifier: MIT
/*
 * test_inject.c - walk every failure point of every operation.
 *
 * For each operation, on each policy and pool size: run it once and count
 * the failure points it passes (allocations, memory set-up); then, for
 * each point in turn, rebuild the same state, make exactly that point
 * fail, and check that the call reports the failure, that the state is as
 * it was (every statistic, the attribute and poison sets, the validators)
 * and that no metadata leaked once the pool is destroyed.  This includes
 * the metadata of splits and merges, where the kernel series only warns.
 *
 * b-adaptive has walks of its own besides: a long-term pin that splits
 * first (one huge page, both levels on 1G; two huge pages; a split that
 * zaps host entries, which a failing pin leaves zapped, as gmem.h says),
 * the merges at a period's end, gmem_file_compact() and
 * gmem_file_set_merge_delay().  Each checks, unfailed, that the call did
 * what the walk is for (the splits, the merges), so that its points are
 * the new paths' ones.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "../../tools/hog.h"

#define PG(n) ((uint64_t)(n) * 4096ULL)

static uint64_t walked, absorbed;

struct env {
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_mm *mm2;
	uint64_t pin;
	enum gmem_policy policy;
	uint64_t psz;
};

struct snap {
	struct gmem_stats pool, file;
	uint64_t shared_units, shared_ranges, poison_units;
	bool have_file;
};

struct scen {
	const char *name;
	int (*setup)(struct env *e);
	int (*op)(struct env *e);
	int fail;		/* the result an injected failure must give */
};

/* A walk of b-adaptive only. */
struct ascen {
	struct scen sc;
	/* the call, unfailed, did what the walk is for */
	bool (*did)(struct env *e, const struct snap *before,
		    const struct snap *after, char *why, size_t len);
	bool zaps;		/* a failure may leave host entries zapped */
	/* after a failure the call absorbed (it succeeded): what must hold */
	bool (*absorbed)(struct env *e, char *why, size_t len);
};

static uint64_t hp(struct env *e, uint64_t n)	/* n huge pages, in bytes */
{
	return n * e->psz;
}

static int mk_pool(struct env *e)
{
	return testpool_create(e->psz, 4, GMEM_BACKING_MEMFD, &e->pool);
}

static int mk_file_of(struct env *e, unsigned int flags, uint64_t huge)
{
	int r = mk_pool(e);

	if (!r)
		r = gmem_file_create(e->pool, hp(e, huge), e->policy, flags,
				     &e->f);
	if (!r)
		r = gmem_mm_create(e->pool, NULL, &e->mm);
	if (!r)
		r = gmem_mmap(e->mm, e->f);
	return r;
}

static int mk_file(struct env *e, unsigned int flags)
{
	return mk_file_of(e, flags, 2);
}

/* ------------------------------------------------------------ setups */

static int s_none(struct env *e) { (void)e; return 0; }
static int s_pool(struct env *e) { return mk_pool(e); }
static int s_shared(struct env *e) { return mk_file(e, GMEM_FILE_INIT_SHARED); }
static int s_private(struct env *e) { return mk_file(e, 0); }

/* A shared file whose first huge page is allocated and host-mapped. */
static int s_shared_touched(struct env *e)
{
	int r = s_shared(e);

	return r ? r : gmem_guest_access(e->f, 0, 0, 0);
}

static int s_private_touched(struct env *e)
{
	int r = s_private(e);

	return r ? r : gmem_guest_access(e->f, 0, 0, 0);
}

/* b-lazy: page 1 shared and split out, then pinned. */
static int s_pinned_split(struct env *e)
{
	int r = s_private_touched(e);

	if (!r)
		r = gmem_convert(e->f, PG(1), PG(1), GMEM_SHARED, 0, 0, NULL);
	if (!r)
		r = gmem_pin(e->mm, e->f, PG(1), PG(1), 0, &e->pin, NULL);
	if (!r)	/* back to private would merge, but the pin stops it */
		r = gmem_convert(e->f, PG(2), PG(1), GMEM_SHARED, 0, 0, NULL);
	return r;
}

static int s_two_mms(struct env *e)
{
	int r = s_shared_touched(e);

	return r ? r : gmem_mm_create(e->pool, NULL, &e->mm2);
}

/* b-adaptive: huge page 0 intact and shared, host entries on page 9. */
static int s_shared_mapped(struct env *e)
{
	int r = s_shared_touched(e);

	return r ? r : gmem_fault(e->mm, e->f, PG(9), GMEM_WRITE);
}

/*
 * b-adaptive, merge delay 2, a private file of three huge pages, 0 and 2
 * allocated (their notes never touch, so each takes a node of its own):
 *   1. page 3 of huge page 2 to shared (split; clock 1);
 *   2. page 1 to shared (split; clock 2, a period's end: huge page 2 has
 *      aged, cannot merge, and its note goes; huge page 0's is kept);
 *   3. page 1 back to private (clock 3: huge page 0 uniform, waiting).
 * The next conversion, page 3 of huge page 2 back to private, notes a
 * new range and ends a period: huge page 0 has aged and merges, huge
 * page 2 has not (its note is kept for a later period).
 */
static int s_waiting(struct env *e)
{
	int r = mk_file_of(e, 0, 3);

	if (!r)
		r = gmem_guest_access(e->f, 0, 0, 0);
	if (!r)
		r = gmem_guest_access(e->f, hp(e, 2), 0, 0);
	if (!r)
		r = gmem_file_set_merge_delay(e->f, 2);
	if (!r)
		r = gmem_convert(e->f, hp(e, 2) + PG(3), PG(1), GMEM_SHARED, 0,
				 0, NULL);
	if (!r)
		r = gmem_convert(e->f, PG(1), PG(1), GMEM_SHARED, 0, 0, NULL);
	if (!r)
		r = gmem_convert(e->f, PG(1), PG(1), GMEM_PRIVATE, 0, 0, NULL);
	return r;
}

/* ... and that period ended: huge page 2's split block waits. */
static int s_waited(struct env *e)
{
	int r = s_waiting(e);

	return r ? r : gmem_convert(e->f, hp(e, 2) + PG(3), PG(1),
				    GMEM_PRIVATE, 0, 0, NULL);
}

/* -------------------------------------------------------------- ops */

static int o_pool(struct env *e) { return testpool_create(e->psz, 4, GMEM_BACKING_MEMFD, &e->pool); }
static int o_file(struct env *e) { return gmem_file_create(e->pool, hp(e, 2), e->policy, 0, &e->f); }
static int o_fork(struct env *e) { return gmem_mm_create(e->pool, e->mm, &e->mm2); }
static int o_mmap(struct env *e) { return gmem_mmap(e->mm2, e->f); }
static int o_fault(struct env *e) { return gmem_fault(e->mm, e->f, hp(e, 1) + PG(3), GMEM_WRITE); }
static int o_write(struct env *e) { return gmem_host_write(e->mm, e->f, PG(5), 0x5a); }

static int o_pin_span(struct env *e)
{
	uint64_t id;

	return gmem_pin(e->mm, e->f, hp(e, 1) - PG(2), PG(4), 0, &id, NULL);
}

static int o_to_shared(struct env *e) { return gmem_convert(e->f, PG(7), PG(1), GMEM_SHARED, 0, 0, NULL); }
static int o_to_private(struct env *e) { return gmem_convert(e->f, PG(7), PG(1), GMEM_PRIVATE, 0, 0, NULL); }

/* A range cut by both ends inside two huge pages. */
static int o_span_shared(struct env *e)
{
	return gmem_convert(e->f, hp(e, 1) - PG(3), PG(6), GMEM_SHARED,
			    GMEM_CONVERT_ZERO, 0, NULL);
}

static int o_punch_part(struct env *e) { return gmem_punch(e->f, PG(2), PG(2)); }
static int o_punch_whole(struct env *e) { return gmem_punch(e->f, 0, hp(e, 1)); }
static int o_guest(struct env *e) { return gmem_guest_access(e->f, hp(e, 1) + PG(9), 0, 0); }
static int o_iommu(struct env *e) { return gmem_iommu_map(e->f, hp(e, 1) - PG(4), PG(8), NULL); }
static int o_poison(struct env *e) { return gmem_poison(e->f, hp(e, 1) + PG(1)); }
static int o_unpin(struct env *e) { return gmem_unpin(e->pool, e->pin); }
static int o_close(struct env *e) { return gmem_file_close(e->f); }

/* b-adaptive: a long-term pin of pages 5-6, inside one 2M block. */
static int o_pin_lt(struct env *e)
{
	uint64_t id;

	return gmem_pin(e->mm, e->f, PG(5), PG(2), GMEM_PIN_LONGTERM, &id, NULL);
}

/* b-adaptive: a long-term pin over the end of huge page 0 (allocating 1). */
static int o_pin_lt_span(struct env *e)
{
	uint64_t id;

	return gmem_pin(e->mm, e->f, hp(e, 1) - PG(2), PG(4), GMEM_PIN_LONGTERM,
			&id, NULL);
}

/* The conversion that ends a merge period (s_waiting). */
static int o_period_end(struct env *e)
{
	return gmem_convert(e->f, hp(e, 2) + PG(3), PG(1), GMEM_PRIVATE, 0, 0,
			    NULL);
}

static int o_compact(struct env *e) { return gmem_file_compact(e->f); }
static int o_no_delay(struct env *e) { return gmem_file_set_merge_delay(e->f, 0); }

/* ------------------------------------------------ what the calls did */

static void take(struct env *e, struct snap *s);

static uint64_t delta(const struct snap *a, const struct snap *b,
		      const char *key)
{
	uint64_t x = 0, y = 0;

	gmem_stat_get(&a->file, key, &x);
	gmem_stat_get(&b->file, key, &y);
	return y - x;
}

static uint64_t stat_of(const struct snap *s, const char *key)
{
	uint64_t x = 0;

	gmem_stat_get(&s->file, key, &x);
	return x;
}

/* The splits a long-term pin made before it pinned: @blocks 2M blocks
 * cut (and on 1 GiB pages, as many 1G folios). */
static bool did_split(struct env *e, const struct snap *b,
		      const struct snap *a, uint64_t blocks, char *why,
		      size_t len)
{
	uint64_t want_1g = e->psz == GMEM_1G ? blocks : 0;

	if (delta(b, a, "split_2m") == blocks &&
	    delta(b, a, "split_1g") == want_1g && delta(b, a, "pins") > 0)
		return true;
	snprintf(why, len, "split_2m +%llu split_1g +%llu pins +%llu, want +%llu +%llu and a pin",
		 (unsigned long long)delta(b, a, "split_2m"),
		 (unsigned long long)delta(b, a, "split_1g"),
		 (unsigned long long)delta(b, a, "pins"),
		 (unsigned long long)blocks, (unsigned long long)want_1g);
	return false;
}

static bool did_split_one(struct env *e, const struct snap *b,
			  const struct snap *a, char *why, size_t len)
{
	return did_split(e, b, a, 1, why, len);
}

static bool did_split_two(struct env *e, const struct snap *b,
			  const struct snap *a, char *why, size_t len)
{
	return did_split(e, b, a, 2, why, len);
}

static bool did_split_zap(struct env *e, const struct snap *b,
			  const struct snap *a, char *why, size_t len)
{
	if (!delta(b, a, "zaps")) {
		snprintf(why, len, "the split zapped nothing");
		return false;
	}
	return did_split(e, b, a, 1, why, len);
}

/*
 * After a period's end, failed allocations included: no note was lost.
 * With the delay gone, everything that waits merges at once: nothing is
 * left split (the file is uniform and unpinned).
 */
static bool merges_later(struct env *e, char *why, size_t len)
{
	struct snap c;

	if (gmem_file_set_merge_delay(e->f, 0)) {
		snprintf(why, len, "set_merge_delay(0) failed");
		return false;
	}
	take(e, &c);
	if (stat_of(&c, "folios_4k") || (e->psz == GMEM_1G &&
					 stat_of(&c, "folios_2m"))) {
		snprintf(why, len, "a note was lost: %llu 4K and %llu 2M folios left once the delay was gone",
			 (unsigned long long)stat_of(&c, "folios_4k"),
			 (unsigned long long)stat_of(&c, "folios_2m"));
		return false;
	}
	return true;
}

/* A period's end merged huge page 0 (one level on 2M pages, both on 1G)
 * and kept huge page 2's note: it merges once the delay is gone. */
static bool did_period_merge(struct env *e, const struct snap *b,
			     const struct snap *a, char *why, size_t len)
{
	struct gfile *f = to_file(e->f);
	uint64_t want = e->psz == GMEM_1G ? 2 : 1;
	bool kept = f->merge_todo.nr_units || f->merge_all;

	if (delta(b, a, "collapses") != want || !kept) {
		snprintf(why, len, "collapses +%llu (want +%llu), a note %s",
			 (unsigned long long)delta(b, a, "collapses"),
			 (unsigned long long)want, kept ? "kept" : "lost");
		return false;
	}
	return merges_later(e, why, len);
}

/* Everything split merged now: 4K (and on 1G pages 2M) folios are gone. */
static bool did_merge_all(struct env *e, const struct snap *b,
			  const struct snap *a, char *why, size_t len)
{
	(void)e;
	if (delta(b, a, "collapses") && !stat_of(a, "folios_4k") &&
	    (e->psz != GMEM_1G || !stat_of(a, "folios_2m")))
		return true;
	snprintf(why, len, "collapses +%llu, folios_4k %llu folios_2m %llu after",
		 (unsigned long long)delta(b, a, "collapses"),
		 (unsigned long long)stat_of(a, "folios_4k"),
		 (unsigned long long)stat_of(a, "folios_2m"));
	return false;
}

static const struct scen scens[] = {
	{ "pool_create", s_none, o_pool, -ENOMEM },
	{ "file_create", s_pool, o_file, -ENOMEM },
	{ "mm_fork", s_shared, o_fork, -ENOMEM },
	{ "mmap", s_two_mms, o_mmap, -ENOMEM },
	{ "fault_hole", s_shared_touched, o_fault, GMEM_SIGBUS },
	{ "host_write_hole", s_shared, o_write, GMEM_SIGBUS },
	{ "pin_span", s_shared_touched, o_pin_span, -ENOMEM },
	{ "convert_to_shared", s_private_touched, o_to_shared, -ENOMEM },
	{ "convert_to_private", s_shared_touched, o_to_private, -ENOMEM },
	{ "convert_span", s_private_touched, o_span_shared, -ENOMEM },
	{ "punch_partial", s_shared_touched, o_punch_part, -ENOMEM },
	{ "punch_whole_pinned", s_pinned_split, o_punch_whole, -ENOMEM },
	{ "guest_hole", s_private_touched, o_guest, -ENOMEM },
	{ "iommu_span", s_shared_touched, o_iommu, -ENOMEM },
	{ "poison_hole", s_private_touched, o_poison, -ENOMEM },
	{ "unpin_merge", s_pinned_split, o_unpin, -ENOMEM },
	{ "close", s_pinned_split, o_close, -ENOMEM },
};

/* compact and set_merge_delay allocate nothing today: their walks are
 * empty but for the unfailed call's check, and cover any point added. */
static const struct ascen ascens[] = {
	{ { "adaptive_pin_longterm_split", s_shared_touched, o_pin_lt, -ENOMEM },
	  did_split_one, false, NULL },
	{ { "adaptive_pin_longterm_span", s_shared_touched, o_pin_lt_span,
	    -ENOMEM }, did_split_two, false, NULL },
	{ { "adaptive_pin_longterm_zap", s_shared_mapped, o_pin_lt, -ENOMEM },
	  did_split_zap, true, NULL },
	{ { "adaptive_merge_period_end", s_waiting, o_period_end, -ENOMEM },
	  did_period_merge, false, merges_later },
	{ { "adaptive_compact", s_waited, o_compact, -ENOMEM }, did_merge_all,
	  false, NULL },
	{ { "adaptive_set_merge_delay", s_waited, o_no_delay, -ENOMEM },
	  did_merge_all, false, NULL },
};

/* ------------------------------------------------------------- walk */

static void take(struct env *e, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	if (!e->pool)
		return;
	gmem_stats(e->pool, NULL, &s->pool);
	if (e->f && gmem_stats(e->pool, e->f, &s->file) == 0) {
		struct gfile *f = to_file(e->f);

		s->have_file = true;
		s->shared_units = f->shared.nr_units;
		s->shared_ranges = f->shared.nr_ranges;
		s->poison_units = f->poison.nr_units;
	}
}

/* What zapping host entries changes (a failing b-adaptive long-term pin
 * leaves the entries its split zapped zapped, as a failing conversion). */
static bool zap_key(const char *key)
{
	return !strcmp(key, "host_ptes") || !strcmp(key, "zaps") ||
	       !strcmp(key, "tlb_flushes");
}

static bool same(const struct snap *a, const struct snap *b, bool zaps,
		 char *why, size_t len)
{
	for (unsigned int i = 0; gmem_stat_keys[i]; i++) {
		uint64_t x, y;

		if (zaps && zap_key(gmem_stat_keys[i]))
			continue;

		/* a peak may keep what a failing call held for a moment */
		if (strstr(gmem_stat_keys[i], "_peak_"))
			continue;
		gmem_stat_get(&a->pool, gmem_stat_keys[i], &x);
		gmem_stat_get(&b->pool, gmem_stat_keys[i], &y);
		if (x != y) {
			snprintf(why, len, "pool-wide %s %llu -> %llu",
				 gmem_stat_keys[i], (unsigned long long)x,
				 (unsigned long long)y);
			return false;
		}
		gmem_stat_get(&a->file, gmem_stat_keys[i], &x);
		gmem_stat_get(&b->file, gmem_stat_keys[i], &y);
		if (x != y) {
			snprintf(why, len, "file %s %llu -> %llu",
				 gmem_stat_keys[i], (unsigned long long)x,
				 (unsigned long long)y);
			return false;
		}
	}
	if (a->have_file != b->have_file || a->shared_units != b->shared_units ||
	    a->shared_ranges != b->shared_ranges ||
	    a->poison_units != b->poison_units) {
		snprintf(why, len, "attributes or poison changed");
		return false;
	}
	return true;
}

static void teardown(struct env *e)
{
	if (e->pool)
		gmem_pool_destroy(e->pool);
	memset(e, 0, sizeof(*e));
}

static bool walk(const struct scen *sc, enum gmem_policy pol, uint64_t psz,
		 const struct ascen *as)
{
	static const char *pname[] = { "default", "4k", "a", "b-eager", "b-lazy",
				       "b-adaptive" };
	struct env e = { .policy = pol, .psz = psz };
	int64_t live0 = gmem_alloc_live_bytes();
	struct snap b0, a0;
	uint64_t n;
	int ret0, ret;
	char why[256];

	if (sc->setup(&e)) {
		fprintf(stderr, "%s/%s: setup failed\n", sc->name, pname[pol]);
		teardown(&e);
		return false;
	}
	take(&e, &b0);
	gmem_inject_reset();
	ret0 = sc->op(&e);
	n = gmem_inject_calls();
	gmem_inject_reset();
	take(&e, &a0);
	if (as && (ret0 || !as->did(&e, &b0, &a0, why, sizeof(why)))) {
		fprintf(stderr, "%s/%s/%lluM: without injection: %s\n",
			sc->name, pname[pol], (unsigned long long)(psz >> 20),
			ret0 ? gmem_errno_name(ret0) : why);
		teardown(&e);
		return false;
	}
	teardown(&e);
	if (gmem_alloc_live_bytes() != live0) {
		fprintf(stderr, "%s/%s: leaked %lld bytes without injection\n",
			sc->name, pname[pol],
			(long long)(gmem_alloc_live_bytes() - live0));
		return false;
	}
	/* Long walks (b-eager on 1 GiB: one point per 2M table) are
	 * sampled: the first and last 32 points and 64 between. */
	uint64_t stride = n > 128 ? n / 64 : 1;

	for (uint64_t i = 1; i <= n; i += (i < 32 || i + 32 > n) ? 1 : stride) {
		struct snap before, after;

		e = (struct env){ .policy = pol, .psz = psz };
		if (sc->setup(&e)) {
			fprintf(stderr, "%s: setup failed\n", sc->name);
			teardown(&e);
			return false;
		}
		take(&e, &before);
		gmem_inject_fail_nth(i);
		ret = sc->op(&e);
		gmem_inject_reset();
		if (ret == ret0) {
			/* The point was optional (a merge note): the call did
			 * its work anyway.  The state must still be valid. */
			absorbed++;
			if (as && as->absorbed &&
			    !as->absorbed(&e, why, sizeof(why))) {
				fprintf(stderr, "%s/%s/%lluM point %llu (absorbed): %s\n",
					sc->name, pname[pol],
					(unsigned long long)(psz >> 20),
					(unsigned long long)i, why);
				teardown(&e);
				return false;
			}
		} else if (ret != sc->fail) {
			fprintf(stderr, "%s/%s/%lluM point %llu: returned %d, want %d\n",
				sc->name, pname[pol],
				(unsigned long long)(psz >> 20),
				(unsigned long long)i, ret, sc->fail);
			teardown(&e);
			return false;
		} else {
			take(&e, &after);
			if (!same(&before, &after, as && as->zaps, why,
				  sizeof(why))) {
				fprintf(stderr, "%s/%s/%lluM point %llu: %s\n",
					sc->name, pname[pol],
					(unsigned long long)(psz >> 20),
					(unsigned long long)i, why);
				teardown(&e);
				return false;
			}
		}
		if (e.pool && gmem_check(e.pool, why, sizeof(why))) {
			fprintf(stderr, "%s/%s point %llu: check: %s\n", sc->name,
				pname[pol], (unsigned long long)i, why);
			teardown(&e);
			return false;
		}
		teardown(&e);
		if (gmem_alloc_live_bytes() != live0) {
			fprintf(stderr, "%s/%s point %llu: leaked %lld bytes\n",
				sc->name, pname[pol], (unsigned long long)i,
				(long long)(gmem_alloc_live_bytes() - live0));
			return false;
		}
		walked++;
	}
	return true;
}

/* test_inject [NAME]: every walk, or those whose name holds NAME. */
int main(int argc, char **argv)
{
	static const uint64_t sizes[] = { GMEM_2M, GMEM_1G };
	unsigned int passed = 0, failed = 0;
	const char *only = argc > 1 ? argv[1] : NULL;

	for (size_t s = 0; s < sizeof(scens) / sizeof(scens[0]); s++) {
		bool ok = true;

		if (only && !strstr(scens[s].name, only))
			continue;
		for (int pol = GMEM_POLICY_4K; pol <= GMEM_POLICY_B_ADAPTIVE; pol++) {
			for (size_t z = 0; z < 2; z++) {
				/* 1 GiB b-eager costs 12 MiB of descriptors a
				 * setup: walk its own allocation path only;
				 * 4k does not depend on the pool's size. */
				if (sizes[z] == GMEM_1G &&
				    (pol == GMEM_POLICY_4K ||
				     (pol == GMEM_POLICY_B_EAGER &&
				      scens[s].op != o_fault)))
					continue;
				ok = walk(&scens[s], (enum gmem_policy)pol,
					  sizes[z], NULL) && ok;
			}
		}
		printf("%s %s\n", ok ? "PASS" : "FAIL", scens[s].name);
		fflush(stdout);
		ok ? passed++ : failed++;
	}
	for (size_t s = 0; s < sizeof(ascens) / sizeof(ascens[0]); s++) {
		bool ok = true;

		if (only && !strstr(ascens[s].sc.name, only))
			continue;
		for (size_t z = 0; z < 2; z++)
			ok = walk(&ascens[s].sc, GMEM_POLICY_B_ADAPTIVE, sizes[z],
				  &ascens[s]) && ok;
		printf("%s %s\n", ok ? "PASS" : "FAIL", ascens[s].sc.name);
		fflush(stdout);
		ok ? passed++ : failed++;
	}
	printf("failure points walked: %llu (absorbed: %llu)\n",
	       (unsigned long long)walked, (unsigned long long)absorbed);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
