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

struct scen {
	const char *name;
	int (*setup)(struct env *e);
	int (*op)(struct env *e);
	int fail;		/* the result an injected failure must give */
};

static uint64_t hp(struct env *e, uint64_t n)	/* n huge pages, in bytes */
{
	return n * e->psz;
}

static int mk_pool(struct env *e)
{
	return testpool_create(e->psz, 4, GMEM_BACKING_MEMFD, &e->pool);
}

static int mk_file(struct env *e, unsigned int flags)
{
	int r = mk_pool(e);

	if (!r)
		r = gmem_file_create(e->pool, hp(e, 2), e->policy, flags, &e->f);
	if (!r)
		r = gmem_mm_create(e->pool, NULL, &e->mm);
	if (!r)
		r = gmem_mmap(e->mm, e->f);
	return r;
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

/* ------------------------------------------------------------- walk */

struct snap {
	struct gmem_stats pool, file;
	uint64_t shared_units, shared_ranges, poison_units;
	bool have_file;
};

static void take(struct env *e, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	if (!e->pool)
		return;
	gmem_stats(e->pool, NULL, &s->pool);
	if (e->f && gmem_stats(e->pool, e->f, &s->file) == 0) {
		struct gfile *f = (struct gfile *)e->f;

		s->have_file = true;
		s->shared_units = f->shared.nr_units;
		s->shared_ranges = f->shared.nr_ranges;
		s->poison_units = f->poison.nr_units;
	}
}

static bool same(const struct snap *a, const struct snap *b, char *why,
		 size_t len)
{
	for (unsigned int i = 0; gmem_stat_keys[i]; i++) {
		uint64_t x, y;

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

static bool walk(const struct scen *sc, enum gmem_policy pol, uint64_t psz)
{
	static const char *pname[] = { "4k", "a", "b-eager", "b-lazy" };
	struct env e = { .policy = pol, .psz = psz };
	int64_t live0 = gmem_alloc_live_bytes();
	uint64_t n;
	int ret0, ret;
	char why[256];

	if (sc->setup(&e)) {
		fprintf(stderr, "%s/%s: setup failed\n", sc->name, pname[pol]);
		teardown(&e);
		return false;
	}
	gmem_inject_reset();
	ret0 = sc->op(&e);
	n = gmem_inject_calls();
	gmem_inject_reset();
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
		} else if (ret != sc->fail) {
			fprintf(stderr, "%s/%s/%lluM point %llu: returned %d, want %d\n",
				sc->name, pname[pol],
				(unsigned long long)(psz >> 20),
				(unsigned long long)i, ret, sc->fail);
			teardown(&e);
			return false;
		} else {
			take(&e, &after);
			if (!same(&before, &after, why, sizeof(why))) {
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

int main(void)
{
	static const uint64_t sizes[] = { GMEM_2M, GMEM_1G };
	unsigned int passed = 0, failed = 0;

	for (size_t s = 0; s < sizeof(scens) / sizeof(scens[0]); s++) {
		bool ok = true;

		for (int pol = GMEM_POLICY_4K; pol <= GMEM_POLICY_B_LAZY; pol++) {
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
					  sizes[z]) && ok;
			}
		}
		printf("%s %s\n", ok ? "PASS" : "FAIL", scens[s].name);
		fflush(stdout);
		ok ? passed++ : failed++;
	}
	printf("failure points walked: %llu (absorbed: %llu)\n",
	       (unsigned long long)walked, (unsigned long long)absorbed);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
