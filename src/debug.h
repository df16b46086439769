/* SPDX-License-Identifier: MIT */
/*
 * debug.h - assertion tiers.
 *
 * GM_BUG_ON(cond): an invariant whose violation would make going on unsafe
 *   (a private page could reach the host): report and abort.
 * GM_WARN_ON_ONCE(cond): unexpected but survivable; reported once per site,
 *   evaluates to cond so callers can bail out.
 * GM_DEBUG_CHECK(level, cond): expensive validators, compiled in only when
 *   GMEM_DEBUG >= level.  Disabled checks still type-check their expression.
 *
 * The library never prints in normal operation; these fire only on a bug.
 */
#ifndef GMEM_DEBUG_H
#define GMEM_DEBUG_H

#include <stdio.h>
#include <stdlib.h>

#ifndef GMEM_DEBUG
#define GMEM_DEBUG 1
#endif

#define GM_BUG_ON(cond)							\
	do {								\
		if (__builtin_expect(!!(cond), 0)) {			\
			fprintf(stderr, "gmem: BUG at %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

#define GM_WARN_ON_ONCE(cond)						\
	({								\
		static int __warned;					\
		int __c = !!(cond);					\
		if (__builtin_expect(__c, 0) && !__warned) {		\
			__warned = 1;					\
			fprintf(stderr, "gmem: WARNING at %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
		}							\
		__c;							\
	})

#define GM_DEBUG_CHECK(level, cond)					\
	do {								\
		if (GMEM_DEBUG >= (level))				\
			GM_BUG_ON(!(cond));				\
		else							\
			(void)sizeof(!(cond));				\
	} while (0)

/*
 * GM_RACE_YIELD(): with -DGMEM_RACE_YIELD (stress builds), give up the CPU
 * now and then at lock boundaries, to widen race windows.  GM_RACE_COIN():
 * in those builds, true now and then (a fast path skipped), else 0.
 */
#ifdef GMEM_RACE_YIELD
#include <sched.h>
static inline void gm_race_yield(void)
{
	static _Thread_local unsigned int x = 2463534242U;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	if ((x & 7) == 0)
		sched_yield();
}
#define GM_RACE_YIELD() gm_race_yield()
/* GM_RACE_COIN(): true now and then, to take a fast path's fallback. */
static inline int gm_race_coin(void)
{
	static _Thread_local unsigned int x = 88675123U;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return (x & 3) == 0;
}
#define GM_RACE_COIN() gm_race_coin()
#else
#define GM_RACE_YIELD() do { } while (0)
#define GM_RACE_COIN() 0
#endif

#endif /* GMEM_DEBUG_H */
