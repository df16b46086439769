// SPDX-License-Identifier: MIT
/*
 * alloc.c - the allocation hook for internal metadata, with test-only fault
 * injection and accounting of live bytes.
 *
 * Fault injection is process-wide and off unless a test turns it on: either
 * the n-th failure point from now fails (walks every failure point of an
 * operation in turn), or each point fails with a probability (stress).
 * Failure points are gmem_alloc() and the system calls that set up memory.
 *
 * Until a test first calls one of the gmem_inject_*() controls, injection
 * is disarmed: a failure point is one relaxed load of @armed, and does not
 * touch the shared counter (a process-wide cache line every allocating
 * thread would otherwise write).  Once armed, every point counts.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static struct {
	atomic_bool armed;		/* a control was called; never cleared */
	atomic_ullong calls;		/* failure points passed since reset */
	atomic_ullong fail_at;		/* 1-based; 0: off */
	atomic_uint permille;		/* random mode; 0: off */
	atomic_ullong seed;
	atomic_ullong injected;		/* failures injected */
	atomic_llong live;		/* bytes allocated, not yet freed */
} inj;

/* splitmix64: a cheap, well-mixed hash for the random mode */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* relaxed: see gmem_inject_should_fail() */
static void inj_arm(void)
{
	atomic_store_explicit(&inj.armed, true, memory_order_relaxed);
}

bool gmem_inject_should_fail(void)
{
	uint64_t n, at;
	unsigned int pm;
	bool fail;

	/* relaxed: a test arms before it starts the calls it counts (same
	 * thread, or before creating the threads: creation orders it) */
	if (!atomic_load_explicit(&inj.armed, memory_order_relaxed))
		return false;
	/* relaxed: the counters order nothing; tests read them when quiet */
	n = atomic_fetch_add_explicit(&inj.calls, 1, memory_order_relaxed) + 1;
	at = atomic_load_explicit(&inj.fail_at, memory_order_relaxed);
	pm = atomic_load_explicit(&inj.permille, memory_order_relaxed);
	fail = at == n;

	if (!fail && pm) {
		uint64_t s = atomic_load_explicit(&inj.seed,
						  memory_order_relaxed);

		fail = mix(s ^ n) % 1000 < pm;
	}
	if (fail)
		atomic_fetch_add_explicit(&inj.injected, 1,
					  memory_order_relaxed);
	return fail;
}

void gmem_inject_reset(void)
{
	inj_arm();
	atomic_store_explicit(&inj.fail_at, 0, memory_order_relaxed);
	atomic_store_explicit(&inj.permille, 0, memory_order_relaxed);
	atomic_store_explicit(&inj.calls, 0, memory_order_relaxed);
	atomic_store_explicit(&inj.injected, 0, memory_order_relaxed);
}

void gmem_inject_fail_nth(uint64_t n)
{
	inj_arm();
	atomic_store_explicit(&inj.calls, 0, memory_order_relaxed);
	atomic_store_explicit(&inj.fail_at, n, memory_order_relaxed);
}

void gmem_inject_fail_random(unsigned int permille, uint64_t seed)
{
	inj_arm();
	atomic_store_explicit(&inj.seed, seed, memory_order_relaxed);
	atomic_store_explicit(&inj.permille, permille, memory_order_relaxed);
}

uint64_t gmem_inject_calls(void)
{
	return atomic_load_explicit(&inj.calls, memory_order_relaxed);
}

uint64_t gmem_inject_injected(void)
{
	return atomic_load_explicit(&inj.injected, memory_order_relaxed);
}

int64_t gmem_alloc_live_bytes(void)
{
	return atomic_load_explicit(&inj.live, memory_order_relaxed);
}

void *gmem_alloc(size_t size)
{
	void *p;

	if (gmem_inject_should_fail())
		return NULL;
	p = calloc(1, size ? size : 1);
	if (p)
		atomic_fetch_add_explicit(&inj.live, (long long)size,
					  memory_order_relaxed);
	return p;
}

void *gmem_alloc_cacheline(size_t size)
{
	void *p;

	if (gmem_inject_should_fail())
		return NULL;
	p = aligned_alloc(64, (size + 63) & ~(size_t)63);
	if (p) {
		memset(p, 0, size);
		atomic_fetch_add_explicit(&inj.live, (long long)size,
					  memory_order_relaxed);
	}
	return p;
}

void gmem_free(void *p, size_t size)
{
	if (!p)
		return;
	atomic_fetch_sub_explicit(&inj.live, (long long)size,
				  memory_order_relaxed);
	free(p);
}
