// SPDX-License-Identifier: MIT
/*
 * stress.c - gmem under many threads on real memory, checked by an oracle.
 *
 *   stress [-s SEED] [-t THREADS] [-d SECONDS] [-g 2M|1G] [-P] [-i PERMILLE]
 *          [-A] [-S] [-V] [-b memfd|hugetlb|auto] [-L REFS] [-p POLICIES]
 *
 * THREADS threads share one pool (memfd backing; -b picks another, and
 * GMEM_TEST_BACKING=hugetlb forces hugetlb, with GMEM_TEST_HOG=1 beside a
 * process that takes every free huge page: tools/hog.h), two host mms
 * that map every file, and two files of each policy (4k, a, b-eager,
 * b-lazy, b-adaptive; -p takes a comma-separated list of them instead, so
 * that every thread works on those files only):
 *
 * - a "content" file, whose first huge page holds the content pages.  Each
 *   content page has one owner thread; only the owner writes it, converts
 *   it (single pages) and punches it (partially), and it keeps a model of
 *   the page: attribute and the bytes at offsets 0 and 4095.  Everybody
 *   else may fault, read, pin, guest-access and IOMMU-map any page, and
 *   convert, punch (partially) and write the "free" pages that hold no
 *   content.
 * - a "chaos" file, without a content model: multi-page conversions,
 *   partial and whole-huge-page punches, poison (-P), pins, faults.
 *
 * The oracle:
 * - every result must be one the specification allows for the call, from
 *   what the caller knows (its model, the pins it holds);
 * - an EAGAIN or EBUSY from a conversion (or EBUSY from a pin) needs a pin
 *   that may have existed during the call: pin attempts are counted per
 *   content page and per huge page, before and after, so a refusal with no
 *   pin anywhere in its drain set is caught;
 * - after every owner operation the content reads back as the model says
 *   (through the guest, which sees private and shared pages alike);
 * - at the commit point of every conversion (gmem_test_hooks), walked from
 *   the structures themselves: no host page-table entry, no pin of an
 *   attached folio and no IOMMU entry on a page made private, and no guest
 *   entry left over the range;
 * - before a pin is dropped, its record is still there, its pages are
 *   still shared and still backed by the folios it pinned (no split, merge
 *   or conversion slipped past it), and no other pin overlaps an
 *   exclusive one;
 * - now and then all threads stop: gmem_check(), every content page's
 *   attribute and bytes, the pin count;
 * - at the end: everything unpinned, gmem_check(), every file closed, the
 *   pool back to free == total, and gmem's metadata back to its baseline.
 *
 * -P adds memory-failure injection on the chaos files; -i PERMILLE turns on
 * random allocation-failure injection during the run (then ENOMEM, SIGBUS
 * or a guest fault is allowed where a call may allocate, and nothing else
 * changes).  -A aborts instead of exiting 1 on a failure (for a core).
 * Two out-of-memory results that gmem gives but gmem.h does not document
 * (-ENOMEM from guest accesses and from punch) are tolerated and counted
 * (guest_enomem_undocumented, punch_enomem_undocumented); -S makes them
 * failures.  A SIGSEGV from a view of an open file is always a failure.
 *
 * b-adaptive files start with a merge delay of 0 to 8 conversions, and
 * every thread now and then sets another (0..8) or compacts one
 * (gmem_file_compact()), among its pins, faults, conversions and punches
 * there.  Where the policy promises more, the oracle asks for it:
 * - a conversion's EBUSY needs a long-term pin on the page it reports
 *   (inside its range: a long-term pin splits the huge folios it covers in
 *   part, so that one outside the range is never in the drain set).  Every
 *   pin attempt on a b-adaptive file, chaos files too, is recorded while
 *   in flight or held, and with a stamp of a global clock when it ends:
 *   long-term ones per page, all per 2M block.  A refusal is justified if
 *   the page reported had a long-term one held after the call, or one
 *   that ended after the call began;
 * - a long-term pin may fail with EAGAIN (a folio to split holds another
 *   pin) only there, and only if another pin attempt was held, in flight
 *   or ended during the call in a 2M block of the huge pages it touches;
 * - a long-term pin we hold never holds part of an intact huge folio;
 * - at every stop-the-world check, b-lazy and b-adaptive files are
 *   compacted and then no split block may be left that could merge
 *   (uniform, unpoisoned, and every folio in it holding nothing but the
 *   file's reference).
 *
 * Always, beside the workers: a checker thread runs gmem_check() and both
 * kinds of gmem_stats() without stopping anybody (no violation, no
 * inconsistent snapshot may ever show), and a closer thread creates,
 * maps, touches, pins, converts and closes a file of its own in a loop,
 * closing it with its pins held half the time; every conversion may stall
 * (yield or sleep up to 2 ms) just before it waits for pins, so timeouts
 * of 0, 1 and 2 ms meet deadlines that pass at any point.
 *
 * -L REFS lowers the highest refcount a pin or fault may take a folio to
 * (FOLIO_REF_LIMIT normally), so that pins of one page reach it all the
 * time: a pin may then be -ENOMEM, and a first fault of a shared page
 * SIGBUS, but a refcount never wraps and the oracle holds otherwise.
 *
 * -V adds the real, MMU-enforced host views (gmem_mm_view()): one per mm
 * and file where a view can be had (memfd pool, policies a, b-eager and
 * b-lazy), and loads and stores through them in every thread's mix, each
 * under a SIGBUS handler (sigsetjmp/siglongjmp).  The oracle of a view
 * access reads the page's attribute from a table that only the commit
 * hook writes (view_attr: a generation bumped at every flip, and the
 * attribute), once before the access and once after it:
 * - an access that succeeds on a page the table shows private, unchanged,
 *   before and after, touched a page that was private for the whole
 *   access: a violation;
 * - a SIGBUS (at the page touched, or it fails) needs a page private or
 *   flipped during the access, poisoned, or an allocation failure
 *   injected (a hole without memory; under -i, any failure so far: see
 *   view_access());
 * - at the commit of every conversion to private, no page of the range is
 *   present in any view by the MMU's own account (/proc/self/pagemap);
 * - owners store their content through views too: the bytes read back
 *   through gmem_host_read(), the guest and later view loads, across
 *   in-place conversions; and a view load of a private content page is a
 *   SIGBUS, of a shared one the model's byte;
 * - at every stop-the-world check the table equals gmem's attributes.
 * Without userfaultfd (or its minor-fault and poison features, or the
 * right to use it) -V prints why and exits 77: skipped.
 *
 * Each thread's operations are a function of the seed; their interleaving
 * is not, so a failing seed reproduces often, not always.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gmem.h"
#include "internal.h"
#include "../../tools/hog.h"

#define MAX_THREADS	64
#define MAX_PINS	8		/* pins one thread holds at once */
#define NR_MMS		2
#define NR_POL		5		/* policies: 4k .. b-adaptive */
/* Policy number @p (0 .. NR_POL - 1, as -p's bits and pol_names[]). */
#define POL_OF(p)	((enum gmem_policy)(GMEM_POLICY_4K + (p)))
#define MAX_FILES	(2 * NR_POL)
#define OFF(pg)		((uint64_t)(pg) << PAGE_SHIFT)
#define LAST_BYTE	4095ULL
#define PIN_MAX_PAGES	16
#define ZERO_MAX_PAGES	1024		/* longest zeroing punch or conversion */

/*
 * Pin-attempt counters: low 32 bits attempts in flight or pins held, high
 * 32 bits how many ended; PC_END moves one from the first to the second.
 * Every access is seq_cst: a refusal is justified by comparing two reads
 * around the call, which must be ordered with the pins' own updates.
 */
enum { PC_ANY, PC_LT, PC_EXCL, NR_PC };
#define PC_BEGIN	1ULL
#define PC_END		((1ULL << 32) - 1)

/* ------------------------------------------------------------ options */

static struct {
	uint64_t seed;
	int threads;
	double secs;
	uint64_t psize;
	bool poison;
	unsigned int permille;
	bool abort_on_fail;
	bool strict_docs;
	bool views;
	enum gmem_backing backing;
	int ref_limit;		/* -L: 0 for the real limit */
	unsigned int pols;	/* -p: 1 << policy, for each one with files */
} opt = { 0, 4, 2.0, GMEM_2M, false, 0, false, false, false,
	  GMEM_BACKING_MEMFD, 0, (1U << NR_POL) - 1 };

/* ------------------------------------------------------------- files */

/* The owner's model of one content page. */
struct pmodel {
	bool shared;
	bool alloc;		/* policy 4k: the owner knows it has memory */
	uint8_t v[2];		/* the bytes at offsets 0 and 4095 */
	uint32_t gen;
};

struct sfile {
	struct gmem_file *f;
	struct gfile *gf;
	char name[24];
	enum gmem_policy pol;
	bool content;
	int idx;
	uint64_t nr_pages, nr_slots, nr_2m;
	/* content files only */
	struct pmodel *model;		/* [nr_content] */
	_Atomic uint64_t *pc;		/* [nr_content][NR_PC] */
	_Atomic uint64_t *hc;		/* [nr_slots][NR_PC] */
	atomic_bool *slot_alloc;	/* huge page known to have memory */
	atomic_bool *tables;		/* [NR_MMS][nr_2m] page tables exist */
	/* -V, files with views only */
	uint8_t *view[NR_MMS];		/* gmem_mm_view() through mms[k] */
	/*
	 * Per page: flips << 1 | shared.  Written only by hook_commit() (the
	 * converting thread, invalidate lock exclusive), so it is gmem's
	 * attribute as of the last commit; world checks compare the two.
	 */
	_Atomic uint64_t *view_attr;	/* [nr_pages] */
	atomic_bool *poisoned;		/* [nr_pages] gmem_poison() was called */
	/*
	 * b-adaptive files only: pin attempts in flight or held (begun
	 * before the call, ended after it returned or after the unpin), and
	 * the pin_clock stamp of the last one that ended; long-term ones per
	 * page, all of them per 2M block.
	 */
	_Atomic uint64_t *lt_held, *lt_end;	/* [nr_pages] */
	_Atomic uint64_t *blk_held, *blk_end;	/* [nr_2m] */
};

static struct gmem_pool *pool;
static struct gmem_mm *mms[NR_MMS];
static struct sfile files[MAX_FILES];
static int nr_files;
static struct sfile *content_files[NR_POL], *chaos_files[NR_POL];
static int nr_pols;			/* policies with files (-p) */
static struct sfile *adaptive_files[2];	/* the b-adaptive ones, if any */
static int nr_adaptive;
static atomic_ullong pin_clock;		/* b-adaptive pin ends, as stamps */

static uint64_t hp;			/* pages per huge page */
static uint64_t blocks[4];		/* 2M blocks holding content pages */
static unsigned int nr_blocks;
static uint64_t cpb;			/* content pages per block */
static uint64_t nr_content;

static atomic_bool stop;
static pthread_rwlock_t world;		/* read: a batch of ops; write: checks */
static atomic_uint poisons;
static unsigned int poison_cap;
static atomic_ullong hook_calls, hook_private;
static uint64_t world_checks;
static int pagemap_fd = -1;		/* -V: /proc/self/pagemap */
static atomic_ullong pagemap_pages;	/* view pages read at commits */

/* ----------------------------------------------------------- threads */

struct hpin {
	uint64_t id;
	struct sfile *sf;
	uint64_t pg, n;
	unsigned int flags;
	bool gone;			/* policy 4k: we punched a page of it */
	uint64_t until;			/* now_ns() after which it goes */
};

enum {
	ST_OPS, ST_CONV_OK, ST_CONV_ZERO, ST_EAGAIN, ST_EBUSY, ST_ENOMEM,
	ST_PINS, ST_PIN_EXCL, ST_PIN_LT, ST_PIN_REFUSED, ST_EOPNOTSUPP,
	ST_UNPINS, ST_PUNCH, ST_PUNCH_WHOLE, ST_POISON, ST_GUEST, ST_IOMMU,
	ST_HOST, ST_SIGBUS, ST_CHECKED, ST_EVIDENCE, ST_UNDOC_GUEST,
	ST_UNDOC_PUNCH, ST_VIEW, ST_VIEW_SIGBUS, ST_VIEW_FLIPPED,
	ST_PIN_EAGAIN, ST_EBUSY_IN_RANGE, ST_COMPACT, ST_MERGE_DELAY,
	ST_FAST_PINS, NR_ST
};

static const char *const st_names[NR_ST] = {
	"ops", "converts_ok", "zero_converts", "eagain", "ebusy", "enomem",
	"pins", "excl_pins", "longterm_pins", "pins_refused", "eopnotsupp",
	"unpins", "punches", "whole_punches", "poisons", "guest", "iommu",
	"host", "sigbus", "content_checks", "refusals_justified",
	"guest_enomem_undocumented", "punch_enomem_undocumented",
	"view", "view_sigbus", "view_flipped",
	"pin_split_eagain", "ebusy_pin_in_range", "compacts", "merge_delays",
	"fast_pins_verified",
};

struct thr {
	int id;
	uint64_t rng;
	pthread_t th;
	struct hpin pins[MAX_PINS];
	int nr_pins;
	uint64_t *own;			/* content page indices owned */
	uint64_t nr_own;
	uint64_t st[NR_ST];
};

static struct thr thr[MAX_THREADS];
static _Thread_local int self_id = -1;

/*
 * An owner's conversion of one page it knows to be shared, to private: the
 * commit hook (which runs in the converting thread) checks that page's
 * folio itself and notes that it saw the commit.
 */
static _Thread_local struct {
	struct gfile *f;
	uint64_t pg;
	bool seen;
} expect_commit;

/* ------------------------------------------------------------ helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t rnd(struct thr *t)
{
	t->rng += 0x9e3779b97f4a7c15ULL;
	return mix64(t->rng);
}

static uint64_t rnd_below(struct thr *t, uint64_t n)
{
	return n ? rnd(t) % n : 0;
}

static bool chance(struct thr *t, unsigned int permille)
{
	return rnd_below(t, 1000) < permille;
}

static void __attribute__((format(printf, 1, 2), noreturn))
fail(const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "stress: FAIL seed=%" PRIu64 " thread=%d: %s\n",
		opt.seed, self_id, buf);
	fflush(NULL);
	if (opt.abort_on_fail)
		abort();
	_exit(1);
}

/* A broken safety rule, seen at a conversion's commit point. */
static void __attribute__((format(printf, 1, 2), noreturn))
violation(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "stress: VIOLATION seed=%" PRIu64 " thread=%d: %s\n",
		opt.seed, self_id, buf);
	fflush(NULL);
	abort();
}

static unsigned long long ull(uint64_t x)
{
	return (unsigned long long)x;
}

/* ----------------------------------------------------------- results */

enum {
	RES_OK = 1 << 0, RES_SIGBUS = 1 << 1, RES_GFAULT = 1 << 2,
	RES_GHWPOISON = 1 << 3, RES_EFAULT = 1 << 4, RES_EBUSY = 1 << 5,
	RES_EAGAIN = 1 << 6, RES_ENOMEM = 1 << 7, RES_EHWPOISON = 1 << 8,
	RES_EOPNOTSUPP = 1 << 9, RES_EINVAL = 1 << 10, RES_ENOENT = 1 << 11,
	RES_EBADF = 1 << 12, RES_EEXIST = 1 << 13, NR_RES = 14
};

static const int r_values[NR_RES] = {
	0, GMEM_SIGBUS, GMEM_GUEST_FAULT, GMEM_GUEST_HWPOISON, -EFAULT,
	-EBUSY, -EAGAIN, -ENOMEM, -EHWPOISON, -EOPNOTSUPP, -EINVAL, -ENOENT,
	-EBADF, -EEXIST,
};

static unsigned int res_bit(int r)
{
	for (int i = 0; i < NR_RES; i++)
		if (r_values[i] == r)
			return 1U << i;
	return 0;
}

static const char *res_name(int r)
{
	switch (r) {
	case 0: return "ok";
	case GMEM_SIGBUS: return "sigbus";
	case GMEM_GUEST_FAULT: return "guest-fault";
	case GMEM_GUEST_HWPOISON: return "guest-hwpoison";
	default: return gmem_errno_name(r);
	}
}

/* Results allowed only while allocation failures are injected. */
static unsigned int inj(unsigned int mask)
{
	return opt.permille ? mask : 0;
}

/* What the lowered refcount limit (-L) allows beyond the usual. */
static unsigned int lim(unsigned int mask)
{
	return opt.ref_limit ? mask : 0;
}

/*
 * Out of memory, as gmem does it and gmem.h does not say: guest accesses
 * return -ENOMEM (gmem.h: GMEM_GUEST_FAULT; DECISIONS.md: ENOMEM) and a
 * punch may return -ENOMEM (gmem.h: never).  Counted, and failures with -S.
 */
static unsigned int guest_nomem(void)
{
	return inj(RES_GFAULT) | (opt.strict_docs ? 0 : inj(RES_ENOMEM));
}

static unsigned int punch_nomem(void)
{
	return opt.strict_docs ? 0 : inj(RES_ENOMEM);
}

static void expect_res(int r, unsigned int allowed, const char *what,
		       const struct sfile *sf, uint64_t pg, uint64_t n)
{
	char al[256] = "";
	size_t used = 0;

	if (res_bit(r) & allowed)
		return;
	for (int i = 0; i < NR_RES; i++) {
		if (!(allowed & (1U << i)))
			continue;
		int w = snprintf(al + used, sizeof(al) - used, "%s%s",
				 used ? "|" : "", res_name(r_values[i]));
		if (w > 0 && (size_t)w < sizeof(al) - used)
			used += (size_t)w;
	}
	fail("%s %s off=0x%llx len=0x%llx: got %s (%d), allowed %s", what,
	     sf ? sf->name : "-", ull(OFF(pg)), ull(OFF(n)), res_name(r), r,
	     al);
}

static void count_res(struct thr *t, int r)
{
	if (r == -ENOMEM)
		t->st[ST_ENOMEM]++;
	else if (r == GMEM_SIGBUS)
		t->st[ST_SIGBUS]++;
}

/* ---------------------------------------------------- content layout */

static uint64_t content_pg(uint64_t i)
{
	return blocks[i % nr_blocks] * PTRS + i / nr_blocks;
}

/* The content index of page @pg, or -1 for a free page. */
static int64_t content_idx(uint64_t pg)
{
	uint64_t b = pg / PTRS, j = pg % PTRS;

	if (pg >= hp || j >= cpb)
		return -1;
	for (unsigned int k = 0; k < nr_blocks; k++)
		if (blocks[k] == b)
			return (int64_t)(j * nr_blocks + k);
	return -1;
}

static int owner_of(uint64_t i)
{
	return (int)((i / nr_blocks) % (uint64_t)opt.threads);
}

static uint8_t mkbyte(const struct sfile *sf, uint64_t pg, uint32_t gen,
		      int k)
{
	uint64_t h = mix64(opt.seed ^ ((uint64_t)sf->idx << 56) ^ (pg << 20) ^
			   ((uint64_t)gen << 1) ^ (uint64_t)k);

	return (uint8_t)(1 + h % 255);	/* never 0: zeroing shows */
}

/* ------------------------------------------------ knowledge of memory */

/* After a successful host access or pin of [pg, pg+n) through mm @mi. */
static void note_host(struct sfile *sf, int mi, uint64_t pg, uint64_t n)
{
	if (!sf->content)
		return;
	for (uint64_t r = pg / PTRS; r <= (pg + n - 1) / PTRS; r++)
		atomic_store(&sf->tables[(uint64_t)mi * sf->nr_2m + r], true);
	if (sf->pol != GMEM_POLICY_4K)
		for (uint64_t s = pg / hp; s <= (pg + n - 1) / hp; s++)
			atomic_store(&sf->slot_alloc[s], true);
}

/* After a successful guest access or IOMMU map of [pg, pg+n). */
static void note_alloc(struct sfile *sf, uint64_t pg, uint64_t n)
{
	if (!sf->content || sf->pol == GMEM_POLICY_4K)
		return;
	for (uint64_t s = pg / hp; s <= (pg + n - 1) / hp; s++)
		atomic_store(&sf->slot_alloc[s], true);
}

/*
 * Whether a host access by the owner to content page @i through mm @mi
 * can need no allocation at all: the page has memory (content files never
 * lose a huge page; a policy-4k page only to its owner's punch) and the
 * mm has page tables there (they are freed only at close).
 */
static bool known_mapped(struct sfile *sf, int mi, uint64_t i)
{
	uint64_t pg = content_pg(i);

	if (!atomic_load(&sf->tables[(uint64_t)mi * sf->nr_2m + pg / PTRS]))
		return false;
	if (sf->pol == GMEM_POLICY_4K)
		return sf->model[i].alloc;
	return atomic_load(&sf->slot_alloc[pg / hp]);
}

/* ------------------------------------------------ pin-attempt counters */

static void pc_bump(_Atomic uint64_t *c, unsigned int flags, uint64_t d)
{
	atomic_fetch_add(&c[PC_ANY], d);
	if (flags & GMEM_PIN_LONGTERM)
		atomic_fetch_add(&c[PC_LT], d);
	if (flags & GMEM_PIN_EXCLUSIVE)
		atomic_fetch_add(&c[PC_EXCL], d);
}

/* One unit of a b-adaptive pin record begins or ends (see stamp_pin()). */
static void stamp_one(_Atomic uint64_t *held, _Atomic uint64_t *end,
		      bool begin, uint64_t stamp)
{
	uint64_t old;

	if (begin) {
		atomic_fetch_add(held, 1);
		return;
	}
	old = atomic_load(end);
	while (old < stamp && !atomic_compare_exchange_weak(end, &old, stamp))
		;
	atomic_fetch_sub(held, 1);
}

/*
 * b-adaptive: a pin attempt on [pg, pg+n) begins, or ends (it failed, or
 * it was unpinned).  The end takes a stamp of pin_clock and leaves it on
 * every unit before that unit stops counting it as held, so that whoever
 * sees a unit not held sees the stamp (all seq_cst).
 */
static void stamp_pin(struct sfile *sf, uint64_t pg, uint64_t n,
		      unsigned int flags, bool begin)
{
	uint64_t stamp = begin ? 0 : atomic_fetch_add(&pin_clock, 1) + 1;

	for (uint64_t b = pg / PTRS; b <= (pg + n - 1) / PTRS; b++)
		stamp_one(&sf->blk_held[b], &sf->blk_end[b], begin, stamp);
	if (flags & GMEM_PIN_LONGTERM)
		for (uint64_t p = pg; p < pg + n; p++)
			stamp_one(&sf->lt_held[p], &sf->lt_end[p], begin, stamp);
}

/*
 * Whether a long-term pin attempt on page @pg of a b-adaptive file may
 * have existed during a call that began when pin_clock was @t0 and has
 * returned: one is held (or in flight) now, or one ended since @t0 (a
 * pin that was there during the call is either still held, or ended
 * after the call began).
 */
static bool lt_evidence(struct sfile *sf, uint64_t pg, uint64_t t0)
{
	return atomic_load(&sf->lt_held[pg]) || atomic_load(&sf->lt_end[pg]) > t0;
}

/*
 * b-adaptive: whether a pin other than our own attempt on [pg, pg+n),
 * still in flight, may have held a folio that the attempt had to split,
 * during the call (begun when pin_clock was @t0): one held or in flight
 * in a 2M block of the huge pages of the range (the folios to split lie
 * there, up to the whole huge page), beyond our attempt, or one that
 * ended since @t0.
 */
static bool split_evidence(struct sfile *sf, uint64_t pg, uint64_t n,
			   uint64_t t0)
{
	uint64_t b0 = pg / hp * (hp / PTRS);
	uint64_t b1 = ((pg + n - 1) / hp + 1) * (hp / PTRS);

	for (uint64_t b = b0; b < b1; b++) {
		uint64_t mine = b >= pg / PTRS && b <= (pg + n - 1) / PTRS;

		if (atomic_load(&sf->blk_held[b]) > mine ||
		    atomic_load(&sf->blk_end[b]) > t0)
			return true;
	}
	return false;
}

/*
 * b-adaptive: a conversion failed with EBUSY at page @at; a long-term pin
 * must have been there, since a long-term pin splits every huge folio it
 * covers in part: the folio the drain found pinned (a 4K one, or a huge
 * one the pin covers wholly) holds the pin on page @at itself, and @at is
 * inside the range (checked by the caller).  @t0: pin_clock before the call.
 */
static void ebusy_in_range(struct thr *t, struct sfile *sf, uint64_t at,
			   uint64_t t0)
{
	if (!lt_evidence(sf, at, t0))
		fail("convert %s: EBUSY at 0x%llx, but no long-term pin was on that page during the call (b-adaptive)",
		     sf->name, ull(OFF(at)));
	t->st[ST_EBUSY_IN_RANGE]++;
}

/* Before a pin attempt (begin) and after it failed or was unpinned. */
static void pc_pin(struct sfile *sf, uint64_t pg, uint64_t n,
		   unsigned int flags, bool begin)
{
	uint64_t d = begin ? PC_BEGIN : PC_END;

	if (sf->lt_held)
		stamp_pin(sf, pg, n, flags, begin);
	if (!sf->content)
		return;
	for (uint64_t s = pg / hp; s <= (pg + n - 1) / hp; s++)
		pc_bump(&sf->hc[s * NR_PC], flags, d);
	for (uint64_t p = pg; p < pg + n; p++) {
		int64_t i = content_idx(p);

		if (i >= 0)
			pc_bump(&sf->pc[(uint64_t)i * NR_PC], flags, d);
	}
}

/*
 * Whether a pin may have existed between two reads of its counter: one
 * was held or in flight at either read, or one ended in between (beyond
 * @self, the caller's own attempts that ended in between).
 */
static bool evidence(uint64_t before, uint64_t after, uint64_t self)
{
	return (uint32_t)before || (uint32_t)after ||
	       (after >> 32) - (before >> 32) > self;
}

/* The counters that stand for the drain set of content page @i. */
static _Atomic uint64_t *drain_counters(struct sfile *sf, uint64_t i)
{
	/* 4k and b-eager drain the 4K page; a, b-lazy and b-adaptive may
	 * drain the whole huge folio (b-lazy, b-adaptive: whatever block is
	 * intact; a short-term pin never splits one). */
	if (sf->pol == GMEM_POLICY_4K || sf->pol == GMEM_POLICY_B_EAGER)
		return &sf->pc[i * NR_PC];
	return &sf->hc[(content_pg(i) / hp) * NR_PC];
}

/* --------------------------------------------------- the commit hook */

struct hook_ctx {
	struct gfile *f;
	uint64_t pg0, pg1;
	bool bad;
	uint64_t bad_id, bad_pg;
	uint64_t entries;
};

static void hook_pin(void *arg, struct gpin *pin)
{
	struct hook_ctx *c = arg;
	uint64_t pg = pin->pg;

	if (pin->file != c->f || c->bad)
		return;
	for (uint32_t s = 0; s < pin->nr_segs; pg += pin->segs[s].nr, s++) {
		struct gfolio *fo = pin->segs[s].folio;
		uint64_t a = MAX(pg, c->pg0), b = MIN(pg + pin->segs[s].nr,
						      c->pg1);

		/* A piece of a punched huge page is no longer the file's. */
		if (a >= b || (fo->flags & FOLIO_DETACHED))
			continue;
		c->bad = true;
		c->bad_id = pin->id;
		c->bad_pg = a;
		return;
	}
}

static void hook_entry(void *arg, uint64_t base, int level)
{
	struct hook_ctx *c = arg;

	if (!c->entries++) {
		c->bad_pg = base >> PAGE_SHIFT;
		c->bad_id = (uint64_t)level;
	}
}

/* Any host page-table entry of @v on [pg0, pg1), from the tables. */
static bool pt_any(struct gvma *v, uint64_t pg0, uint64_t pg1, uint64_t *at)
{
	for (uint64_t pg = pg0; pg < pg1;) {
		struct gpt_pmd *pmd = v->pt.dir[pg >> PUD_ORDER];
		uint64_t gend = ALIGN_DOWN(pg, 1ULL << PUD_ORDER) +
				(1ULL << PUD_ORDER);

		if (!pmd) {
			pg = gend;
			continue;
		}
		struct gpt_pte *pte = pmd->t[(pg >> PMD_ORDER) & (PTRS - 1)];
		uint64_t end = MIN(pg1, ALIGN_DOWN(pg, PTRS) + PTRS);

		if (!pte) {
			pg = end;
			continue;
		}
		for (; pg < end; pg++) {
			if (pte->pte[pg & (PTRS - 1)]) {
				*at = pg;
				return true;
			}
		}
	}
	return false;
}

/* ------------------------------------------------------- real views */

static struct sfile *sfile_of(const struct gfile *f)
{
	for (int k = 0; k < nr_files; k++)
		if (files[k].gf == f)
			return &files[k];
	return NULL;
}

/*
 * The MMU's word at the commit of [pg0, pg1) to private: no page of it is
 * present in any view of @sf (/proc/self/pagemap bit 63; a poison marker
 * is not present).  Nothing can map one meanwhile: a view's handler needs
 * the invalidate lock the converter holds.
 */
static void views_absent(struct sfile *sf, uint64_t pg0, uint64_t pg1)
{
	uint64_t ents[512];

	for (int mi = 0; mi < NR_MMS; mi++) {
		uintptr_t vpn = (uintptr_t)sf->view[mi] >> PAGE_SHIFT;

		if (!sf->view[mi])
			continue;
		for (uint64_t pg = pg0; pg < pg1;) {
			uint64_t n = MIN(512, pg1 - pg);
			ssize_t want = (ssize_t)(n * sizeof(ents[0]));

			if (pread(pagemap_fd, ents, (size_t)want,
				  (off_t)((vpn + pg) * sizeof(ents[0]))) != want)
				violation("pagemap of view %d of %s at 0x%llx: %s",
					  mi, sf->name, ull(OFF(pg)),
					  strerror(errno));
			for (uint64_t k = 0; k < n; k++)
				if (ents[k] >> 63)
					violation("view %d of %s maps page 0x%llx (pagemap 0x%016llx) at the commit of [0x%llx, 0x%llx) to private",
						  mi, sf->name, ull(OFF(pg + k)),
						  ull(ents[k]), ull(OFF(pg0)),
						  ull(OFF(pg1)));
			pg += n;
		}
		atomic_fetch_add_explicit(&pagemap_pages, pg1 - pg0,
					  memory_order_relaxed);	/* a count */
	}
}

/* The commit of [pg0, pg1) to @to, published to the view oracle. */
static void view_attr_commit(struct sfile *sf, uint64_t pg0, uint64_t pg1,
			     enum gmem_attr to)
{
	uint64_t want = to == GMEM_SHARED;

	for (uint64_t pg = pg0; pg < pg1; pg++) {
		/* relaxed: only commits write it, ordered by the invalidate lock */
		uint64_t a = atomic_load_explicit(&sf->view_attr[pg],
						  memory_order_relaxed);

		/* seq_cst: ordered with the loads around every view access */
		if ((a & 1) != want)
			atomic_store(&sf->view_attr[pg],
				     (((a >> 1) + 1) << 1) | want);
	}
}

/*
 * gmem_test_hooks.convert_commit: runs with the invalidate lock held
 * exclusively and f->lock held, attributes already flipped.
 */
static void hook_commit(struct gfile *f, uint64_t pg0, uint64_t pg1,
			enum gmem_attr to)
{
	struct hook_ctx c = { f, pg0, pg1, false, 0, 0, 0 };
	struct sfile *sf = sfile_of(f);
	uint64_t x;

	atomic_fetch_add(&hook_calls, 1);
	if (!invalidate_held_exclusive(f))
		violation("commit of [0x%llx, 0x%llx) without the invalidate lock",
			  ull(OFF(pg0)), ull(OFF(pg1)));
	if (to == GMEM_SHARED) {
		if (rs_first_not_in(&f->shared, pg0, pg1, &x))
			violation("page 0x%llx not shared at the commit of a conversion to shared",
				  ull(OFF(x)));
		goto guest;
	}
	atomic_fetch_add(&hook_private, pg1 - pg0);
	if (expect_commit.f == f && expect_commit.pg >= pg0 &&
	    expect_commit.pg < pg1) {
		/* The page changed, so its folio was in the drain set: now it
		 * holds nothing but the file's reference (a b-lazy split after
		 * the drain makes fresh pieces, which hold only that too). */
		struct gfolio *fo = folio_lookup(f, expect_commit.pg);

		expect_commit.seen = true;
		if (fo && (folio_ref_count(fo) != 1 || folio_mapcount(fo) ||
			   atomic_load_explicit(&fo->pincount,
						memory_order_relaxed) ||
			   fo->longterm))
			violation("folio of page 0x%llx (order %u at 0x%llx) has refcount %d mapcount %d pincount %d at the commit of its conversion to private",
				  ull(OFF(expect_commit.pg)), fo->order,
				  ull(OFF(fo->index)), folio_ref_count(fo),
				  folio_mapcount(fo),
				  atomic_load_explicit(&fo->pincount,
						       memory_order_relaxed));
	}
	if (rs_first_in(&f->shared, pg0, pg1, &x))
		violation("page 0x%llx still shared at the commit of a conversion to private",
			  ull(OFF(x)));
	for (struct gvma *v = f->vmas; v; v = v->file_next)
		if (pt_any(v, pg0, pg1, &x))
			violation("host page-table entry on page 0x%llx at the commit of [0x%llx, 0x%llx) to private",
				  ull(OFF(x)), ull(OFF(pg0)), ull(OFF(pg1)));
	pins_for_each(f->pool, hook_pin, &c);
	if (c.bad)
		violation("pin %llu holds page 0x%llx at the commit of [0x%llx, 0x%llx) to private",
			  ull(c.bad_id), ull(OFF(c.bad_pg)), ull(OFF(pg0)),
			  ull(OFF(pg1)));
	gmap_for_each(&f->iommu, OFF(pg0), OFF(pg1), hook_entry, &c);
	if (c.entries)
		violation("IOMMU entry at 0x%llx (level %llu) at the commit of [0x%llx, 0x%llx) to private",
			  ull(OFF(c.bad_pg)), ull(c.bad_id), ull(OFF(pg0)),
			  ull(OFF(pg1)));
	if (sf && sf->view_attr)
		views_absent(sf, pg0, pg1);
guest:
	if (sf && sf->view_attr)
		view_attr_commit(sf, pg0, pg1, to);
	gmap_for_each(&f->guest, OFF(pg0), OFF(pg1), hook_entry, &c);
	if (c.entries)
		violation("guest entry at 0x%llx (level %llu) left over the converted range [0x%llx, 0x%llx)",
			  ull(OFF(c.bad_pg)), ull(c.bad_id), ull(OFF(pg0)),
			  ull(OFF(pg1)));
}

/* ------------------------------------------------------ pin checking */

struct pin_check {
	struct gfile *f;
	const struct hpin *hp;
	bool found;
	char why[200];
	struct gpin *self, *other;	/* our record; an overlapping one */
	uint64_t other_pg;		/* a page where the other is current */
};

static void pin_check_visit(void *arg, struct gpin *pin)
{
	struct pin_check *c = arg;
	const struct hpin *h = c->hp;
	struct gfile *f = c->f;
	uint64_t pg = pin->pg, sum = 0;

	if (pin->file != f || c->why[0])
		return;
	if (pin->id != h->id) {
		/* Exclusivity is a property of the memory: two pins conflict
		 * only on a page where both hold the file's current folio (a
		 * punched page's old memory is no longer that page). */
		if (pin->pg < h->pg + h->n && h->pg < pin->pg + pin->nr_pages &&
		    ((pin->flags | h->flags) & GMEM_PIN_EXCLUSIVE) &&
		    !c->other) {
			uint64_t q = pin->pg;

			for (uint32_t s = 0; s < pin->nr_segs && !c->other; s++) {
				struct gfolio *fo = pin->segs[s].folio;

				for (uint32_t k = 0; k < pin->segs[s].nr; k++, q++) {
					if (q >= h->pg && q < h->pg + h->n &&
					    !(fo->flags & FOLIO_DETACHED) &&
					    folio_lookup(f, q) == fo) {
						c->other = pin;
						c->other_pg = q;
						break;
					}
				}
			}
		}
		return;
	}
	c->found = true;
	c->self = pin;
	if (pin->pg != h->pg || pin->nr_pages != h->n ||
	    (pin->flags & ~GPIN_FAST) != h->flags) {
		snprintf(c->why, sizeof(c->why), "pin %llu record changed",
			 ull(h->id));
		return;
	}
	for (uint32_t s = 0; s < pin->nr_segs; s++) {
		struct gfolio *fo = pin->segs[s].folio;

		for (uint32_t k = 0; k < pin->segs[s].nr; k++, pg++) {
			const char *why = NULL;

			if (pg < fo->index || pg >= fo->index + folio_nr_pages(fo))
				why = "pinned folio does not hold the page";
			else if (fo->flags & FOLIO_DETACHED) {
				if (folio_lookup(f, pg) == fo)
					why = "detached folio still in the file";
			} else if (folio_lookup(f, pg) != fo) {
				why = "pinned folio replaced (split or merged while pinned)";
			} else if (!page_is_shared(f, pg)) {
				why = "pinned page became private";
			}
			if (why) {
				snprintf(c->why, sizeof(c->why),
					 "pin %llu page 0x%llx: %s", ull(h->id),
					 ull(OFF(pg)), why);
				return;
			}
		}
		/* b-adaptive split what a long-term pin covers in part first:
		 * such a pin never holds part of an intact huge folio */
		if ((h->flags & GMEM_PIN_LONGTERM) &&
		    h->sf->pol == GMEM_POLICY_B_ADAPTIVE && fo->order &&
		    pin->segs[s].nr != folio_nr_pages(fo)) {
			snprintf(c->why, sizeof(c->why),
				 "long-term pin %llu holds %u of the %llu pages of the intact folio at 0x%llx",
				 ull(h->id), pin->segs[s].nr,
				 ull(folio_nr_pages(fo)), ull(OFF(fo->index)));
			return;
		}
		sum += pin->segs[s].nr;
	}
	if (sum != pin->nr_pages)
		snprintf(c->why, sizeof(c->why), "pin %llu segments hold %llu pages of %llu",
			 ull(h->id), ull(sum), ull(pin->nr_pages));
}

/* A pin we hold is still what it was, and its pages still shared.
 * Returns whether the library took it on its lock-free fast path. */
static bool verify_pin(const struct hpin *h)
{
	struct pin_check c = { h->sf->gf, h, false, "", NULL, NULL, 0 };

	pthread_mutex_lock(&c.f->lock);
	pins_for_each(c.f->pool, pin_check_visit, &c);
	/* Our record stays put while we hold it (only we unpin it); others
	 * of the file stay put while we hold the file lock (a slow unpin
	 * takes it), but for fast-path ones, which are never exclusive. */
	if (!c.why[0] && c.self && c.other) {
		uint64_t q = c.self->pg;

		for (uint32_t s = 0; s < c.self->nr_segs; s++) {
			struct gfolio *fo = c.self->segs[s].folio;

			for (uint32_t k = 0; k < c.self->segs[s].nr; k++, q++)
				if (q == c.other_pg && folio_lookup(c.f, q) == fo &&
				    !(fo->flags & FOLIO_DETACHED))
					snprintf(c.why, sizeof(c.why),
						 "pins %llu and %llu overlap, one exclusive",
						 ull(h->id), ull(c.other->id));
		}
	}
	pthread_mutex_unlock(&c.f->lock);
	if (c.why[0])
		fail("%s: %s", h->sf->name, c.why);
	if (!c.found)
		fail("%s: held pin %llu (0x%llx+0x%llx) is not in the pin table",
		     h->sf->name, ull(h->id), ull(OFF(h->pg)), ull(OFF(h->n)));
	return c.self->flags & GPIN_FAST;
}

static void release_pin(struct thr *t, int k)
{
	struct hpin h = t->pins[k];
	int r;

	if (verify_pin(&h))
		t->st[ST_FAST_PINS]++;
	r = gmem_unpin(pool, h.id);
	if (r)
		fail("unpin %llu: %s", ull(h.id), res_name(r));
	pc_pin(h.sf, h.pg, h.n, h.flags, false);
	t->pins[k] = t->pins[--t->nr_pins];
	t->st[ST_UNPINS]++;
}

static void pins_step(struct thr *t)
{
	uint64_t now = now_ns();

	for (int k = 0; k < t->nr_pins;) {
		if (now >= t->pins[k].until || chance(t, 20))
			release_pin(t, k);
		else
			k++;
	}
}

/* Whether a pin of [pg, pg+n) must fail because of a pin we hold. */
static bool self_conflict(struct thr *t, struct sfile *sf, uint64_t pg,
			  uint64_t n, unsigned int flags)
{
	for (int k = 0; k < t->nr_pins; k++) {
		struct hpin *h = &t->pins[k];

		if (h->sf == sf && !h->gone && h->pg < pg + n &&
		    pg < h->pg + h->n &&
		    ((h->flags | flags) & GMEM_PIN_EXCLUSIVE))
			return true;
	}
	return false;
}

/*
 * The pins we hold on page @pg of @sf that still hold its folio: 1 for a
 * short-term one, 2 for a long-term one, 0 for none.
 */
static int held_on(struct thr *t, struct sfile *sf, uint64_t pg)
{
	int best = 0;

	for (int k = 0; k < t->nr_pins; k++) {
		struct hpin *h = &t->pins[k];

		if (h->sf == sf && !h->gone && h->pg <= pg && pg < h->pg + h->n)
			best = MAX(best, (h->flags & GMEM_PIN_LONGTERM) ? 2 : 1);
	}
	return best;
}

static unsigned int rnd_pin_flags(struct thr *t)
{
	unsigned int flags = 0;

	if (chance(t, 250))
		flags |= GMEM_PIN_LONGTERM;
	if (chance(t, 200))
		flags |= GMEM_PIN_EXCLUSIVE;
	return flags;
}

/*
 * Pin [pg, pg+n) of @sf through mm @mi and hold it for a while.  @i is the
 * content page when its owner pins it alone (model known), else -1.
 */
static void do_pin(struct thr *t, struct sfile *sf, int mi, uint64_t pg,
		   uint64_t n, unsigned int flags, int64_t i)
{
	bool ex = flags & GMEM_PIN_EXCLUSIVE;
	int kind = ex ? PC_ANY : PC_EXCL;
	uint64_t self = ex ? 1 : 0, id = 0, b[2] = { 0, 0 }, a[2] = { 0, 0 };
	uint64_t s0 = pg / hp, s1 = (pg + n - 1) / hp;
	uint64_t t0 = atomic_load(&pin_clock);
	struct pmodel *m = i >= 0 ? &sf->model[i] : NULL;
	void *pages[PIN_MAX_PAGES];
	unsigned int allowed;
	/* b-adaptive splits for a long-term pin: EAGAIN if it cannot */
	bool split = (flags & GMEM_PIN_LONGTERM) &&
		     sf->pol == GMEM_POLICY_B_ADAPTIVE;
	bool conflict;
	int r;

	if (t->nr_pins == MAX_PINS)
		release_pin(t, (int)rnd_below(t, (uint64_t)t->nr_pins));
	if ((flags & GMEM_PIN_LONGTERM) && sf->pol == GMEM_POLICY_A) {
		/* Refused before any page is looked at. */
		r = gmem_pin(mms[mi], sf->f, OFF(pg), OFF(n), flags, &id, NULL);
		expect_res(r, RES_EOPNOTSUPP, "long-term pin", sf, pg, n);
		t->st[ST_EOPNOTSUPP]++;
		return;
	}
	conflict = self_conflict(t, sf, pg, n, flags);
	if (sf->content) {
		_Atomic uint64_t *c0 = m ? &sf->pc[(uint64_t)i * NR_PC] :
				       &sf->hc[s0 * NR_PC];

		b[0] = atomic_load(&c0[kind]);
		if (!m && s1 != s0)
			b[1] = atomic_load(&sf->hc[s1 * NR_PC + kind]);
	}
	pc_pin(sf, pg, n, flags, true);
	r = gmem_pin(mms[mi], sf->f, OFF(pg), OFF(n), flags, &id,
		     n <= PIN_MAX_PAGES ? pages : NULL);
	/* b-adaptive: a folio to split held another pin (judged while our
	 * attempt still counts as in flight: its end is not another's) */
	if (r == -EAGAIN && split && !split_evidence(sf, pg, n, t0))
		fail("long-term pin %s 0x%llx+0x%llx flags %u: EAGAIN with no other pin on its huge pages during the call",
		     sf->name, ull(OFF(pg)), ull(OFF(n)), flags);
	if (r)
		pc_pin(sf, pg, n, flags, false);

	if (m)
		allowed = m->shared ? RES_OK | RES_EBUSY | inj(RES_ENOMEM) |
				      lim(RES_ENOMEM) : RES_EFAULT;
	else
		allowed = RES_OK | RES_EFAULT | RES_EBUSY | inj(RES_ENOMEM) |
			  lim(RES_ENOMEM) |
			  (!sf->content && opt.poison ? RES_EHWPOISON : 0);
	/* Our exclusive pin rules out another on the same memory; on chaos
	 * files a whole-page punch by another thread may have taken that
	 * memory out of the file meanwhile, so there it proves nothing. */
	if (conflict && sf->content)
		allowed &= ~(unsigned int)RES_OK;
	/* the split comes after every check of the pages: only a pin that
	 * could succeed may find a folio it cannot split */
	if (split && (allowed & RES_OK))
		allowed |= RES_EAGAIN;
	expect_res(r, allowed, conflict ? "pin over our own exclusive" :
		   split ? "long-term pin (b-adaptive)" : "pin", sf, pg, n);
	count_res(t, r);
	if (r == -EAGAIN) {
		t->st[ST_EVIDENCE]++;
		t->st[ST_PIN_EAGAIN]++;
	}
	if (r == -EBUSY && sf->content) {
		_Atomic uint64_t *c0 = m ? &sf->pc[(uint64_t)i * NR_PC] :
				       &sf->hc[s0 * NR_PC];
		bool ev;

		a[0] = atomic_load(&c0[kind]);
		ev = evidence(b[0], a[0], self);
		if (!m && s1 != s0) {
			a[1] = atomic_load(&sf->hc[s1 * NR_PC + kind]);
			ev = ev || evidence(b[1], a[1], self);
		}
		if (!ev)
			fail("pin %s 0x%llx+0x%llx flags %u: EBUSY with no conflicting pin anywhere during the call",
			     sf->name, ull(OFF(pg)), ull(OFF(n)), flags);
		t->st[ST_EVIDENCE]++;
	}
	if (r) {
		t->st[ST_PIN_REFUSED]++;
		return;
	}
	note_host(sf, mi, pg, n);
	if (m) {
		uint8_t *d = pages[0];

		if (sf->pol == GMEM_POLICY_4K)
			m->alloc = true;
		/* The pinned memory is the page's: the owner's bytes. */
		if (d[0] != m->v[0] || d[LAST_BYTE] != m->v[1])
			fail("pin of %s page 0x%llx sees 0x%02x/0x%02x, expected 0x%02x/0x%02x",
			     sf->name, ull(OFF(pg)), d[0], d[LAST_BYTE],
			     m->v[0], m->v[1]);
		t->st[ST_CHECKED]++;
	}
	t->pins[t->nr_pins++] = (struct hpin){
		id, sf, pg, n, flags, false, now_ns() + rnd_below(t, 2000) * 1000,
	};
	t->st[ST_PINS]++;
	if (flags & GMEM_PIN_EXCLUSIVE)
		t->st[ST_PIN_EXCL]++;
	if (flags & GMEM_PIN_LONGTERM)
		t->st[ST_PIN_LT]++;
}

/* ----------------------------------------------------- content checks */

/* The owner's page reads back as its model says, through the guest. */
static void check_content(struct thr *t, struct sfile *sf, uint64_t i,
			  const char *after)
{
	struct pmodel *m = &sf->model[i];
	uint64_t pg = content_pg(i);

	for (int k = 0; k < 2; k++) {
		uint8_t val = 0xee;
		int r = gmem_guest_read(sf->f, OFF(pg) + (k ? LAST_BYTE : 0),
					&val);

		expect_res(r, RES_OK | guest_nomem(), "guest read", sf,
			   pg, 1);
		if (r == -ENOMEM)
			t->st[ST_UNDOC_GUEST]++;
		count_res(t, r);
		if (r)
			continue;
		if (sf->pol == GMEM_POLICY_4K)
			m->alloc = true;
		note_alloc(sf, pg, 1);
		if (val != m->v[k])
			fail("after %s: %s page 0x%llx byte 0x%llx: guest reads 0x%02x, expected 0x%02x (%s, gen %u)",
			     after, sf->name, ull(OFF(pg)),
			     ull(k ? LAST_BYTE : 0), val, m->v[k],
			     m->shared ? "shared" : "private", m->gen);
	}
	t->st[ST_CHECKED]++;
}

/* The host sees the owner's page as its model says: bytes or SIGBUS. */
static void check_host(struct thr *t, struct sfile *sf, uint64_t i,
		       const char *after)
{
	struct pmodel *m = &sf->model[i];
	uint64_t pg = content_pg(i);
	int mi = (int)rnd_below(t, NR_MMS), k = (int)rnd_below(t, 2);
	uint8_t val = 0xee;
	int r;

	r = gmem_host_read(mms[mi], sf->f, OFF(pg) + (k ? LAST_BYTE : 0), &val);
	if (!m->shared)
		expect_res(r, RES_SIGBUS, "host read of a private page", sf, pg, 1);
	else
		expect_res(r, RES_OK | ((opt.permille || opt.ref_limit) && !known_mapped(sf, mi, i) ?
				      RES_SIGBUS : 0),
			   "host read of a shared page", sf, pg, 1);
	count_res(t, r);
	t->st[ST_HOST]++;
	if (r)
		return;
	note_host(sf, mi, pg, 1);
	if (sf->pol == GMEM_POLICY_4K)
		m->alloc = true;
	if (val != m->v[k])
		fail("after %s: %s page 0x%llx byte 0x%llx: host reads 0x%02x, expected 0x%02x (gen %u)",
		     after, sf->name, ull(OFF(pg)), ull(k ? LAST_BYTE : 0), val,
		     m->v[k], m->gen);
	t->st[ST_CHECKED]++;
}

/* ------------------------------------------------------ view accesses */

/*
 * A SIGBUS or SIGSEGV in a thread that armed itself lands back in its
 * view_touch(); anywhere else it kills the process, as it would have.
 * volatile sig_atomic_t: what a signal handler may share with its thread.
 */
static _Thread_local sigjmp_buf touch_jmp;
static _Thread_local volatile sig_atomic_t touch_armed, touch_sig;
static _Thread_local void *volatile touch_addr;

static void on_fault_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!touch_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	touch_armed = 0;
	touch_sig = sig;
	touch_addr = si->si_addr;
	siglongjmp(touch_jmp, 1);
}

static void install_fault_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) || sigaction(SIGSEGV, &sa, NULL))
		fail("setup: sigaction: %s", strerror(errno));
}

/*
 * Load the byte at @p into *@val or, with @store, store *@val there.
 * Return: 0, or the signal that stopped it (SIGBUS, SIGSEGV), *@at its
 * si_addr.
 */
static int view_touch(uint8_t *p, bool store, uint8_t *val, void **at)
{
	/* Atomic, relaxed: other threads load and store the same byte through
	 * their views at the same time; what orders an access with the
	 * conversions is the kernel (a fault waits for gmem's handler). */
	_Atomic uint8_t *a = (_Atomic uint8_t *)p;

	if (sigsetjmp(touch_jmp, 1)) {
		*at = touch_addr;
		return touch_sig;
	}
	touch_armed = 1;
	/* signal fences: the access stays between arming and disarming */
	atomic_signal_fence(memory_order_seq_cst);
	if (store)
		atomic_store_explicit(a, *val, memory_order_relaxed);
	else
		*val = atomic_load_explicit(a, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	touch_armed = 0;
	return 0;
}

/* What one view access got, and what its page was around it. */
struct vacc {
	int sig;			/* 0 or SIGBUS */
	uint64_t a0, a1;		/* view_attr[] before and after */
};

/*
 * Load or store (@store, *@val) byte @off of @sf through mms[@mi]'s view,
 * judged by the page's view_attr[] read before and after it (seq_cst, the
 * access fenced in between), its poison flag and the injection count:
 * - success on a page private and unflipped all along is a violation:
 *   its real PTE was zapped before the commit that made it private (or
 *   never made), and no fault can map it until a commit flips it back;
 * - a SIGBUS needs the page private or flipped meanwhile, poisoned, or an
 *   allocation failure injected (a hole without memory: a file's
 *   reservation covers every hole otherwise), and it must be reported at
 *   the page touched.  Without -i no failure is ever injected; with it,
 *   any failure injected so far counts, not only during this access: the
 *   SIGBUS of a fault that could not allocate leaves a marker that stays
 *   until the page is zapped or converted (DECISIONS.md), and a failed
 *   fault of another thread may have left it.
 */
static struct vacc view_access(struct thr *t, struct sfile *sf, int mi,
			       uint64_t off, bool store, uint8_t *val)
{
	uint64_t pg = off >> PAGE_SHIFT, inj0, inj1;
	uint8_t *p = sf->view[mi] + off;
	const char *what = store ? "store" : "load";
	struct vacc r;
	void *at = NULL;

	r.a0 = atomic_load(&sf->view_attr[pg]);
	inj0 = gmem_inject_injected();
	r.sig = view_touch(p, store, val, &at);
	/* seq_cst: the access is over before the second look */
	atomic_thread_fence(memory_order_seq_cst);
	r.a1 = atomic_load(&sf->view_attr[pg]);
	inj1 = gmem_inject_injected();

	t->st[ST_VIEW]++;
	if (r.a0 != r.a1)
		t->st[ST_VIEW_FLIPPED]++;
	/* a view of an open file never gives SIGSEGV (gmem.h) */
	if (r.sig && r.sig != SIGBUS)
		fail("%s through view %d of %s at 0x%llx: signal %d (%s) at %p",
		     what, mi, sf->name, ull(off), r.sig, strsignal(r.sig), at);
	if (!r.sig && r.a0 == r.a1 && !(r.a0 & 1))
		violation("%s through view %d of %s at 0x%llx succeeded on a page private for the whole access (%llu flips)",
			  what, mi, sf->name, ull(off), ull(r.a0 >> 1));
	if (!r.sig)
		return r;
	t->st[ST_VIEW_SIGBUS]++;
	if (((uintptr_t)at >> PAGE_SHIFT) != ((uintptr_t)p >> PAGE_SHIFT))
		fail("%s through view %d of %s at 0x%llx (%p): SIGBUS at %p, not the page touched",
		     what, mi, sf->name, ull(off), (void *)p, at);
	if (r.a0 == r.a1 && (r.a0 & 1) && !atomic_load(&sf->poisoned[pg]) &&
	    inj0 == inj1 && !(opt.permille && inj1))
		fail("%s through view %d of %s at 0x%llx: SIGBUS on a page shared for the whole access, never poisoned, no allocation failure injected (%llu flips)",
		     what, mi, sf->name, ull(off), ull(r.a0 >> 1));
	return r;
}

/* The owner's content page @i: only the owner converts it, so the table
 * says what the model says, and nothing flips it during the access. */
static void own_view_attr(struct sfile *sf, uint64_t i, const struct vacc *r)
{
	const struct pmodel *m = &sf->model[i];

	if (r->a0 != r->a1 || (r->a0 & 1) != m->shared)
		fail("%s page 0x%llx: view table 0x%llx then 0x%llx, model says %s",
		     sf->name, ull(OFF(content_pg(i))), ull(r->a0), ull(r->a1),
		     m->shared ? "shared" : "private");
}

/* The owner's page through a view: the model's byte, or SIGBUS if private. */
static void check_view(struct thr *t, struct sfile *sf, uint64_t i,
		       const char *after)
{
	struct pmodel *m = &sf->model[i];
	uint64_t pg = content_pg(i);
	int mi = (int)rnd_below(t, NR_MMS), k = (int)rnd_below(t, 2);
	uint8_t val = 0xee;
	struct vacc r;

	r = view_access(t, sf, mi, OFF(pg) + (k ? LAST_BYTE : 0), false, &val);
	own_view_attr(sf, i, &r);
	if (r.sig)
		return;
	note_host(sf, mi, pg, 1);
	if (val != m->v[k])
		fail("after %s: %s page 0x%llx byte 0x%llx: view %d reads 0x%02x, expected 0x%02x (gen %u)",
		     after, sf->name, ull(OFF(pg)), ull(k ? LAST_BYTE : 0), mi,
		     val, m->v[k], m->gen);
	t->st[ST_CHECKED]++;
}

/* The owner stores new content through a view, then reads it back through
 * gmem (host and guest) and a view. */
static void own_view(struct thr *t, struct sfile *sf, uint64_t i)
{
	struct pmodel *m = &sf->model[i];
	uint64_t pg = content_pg(i);
	int which = (int)rnd_below(t, 3);	/* offset 0, 4095 or both */
	int mi = (int)rnd_below(t, NR_MMS);

	if (chance(t, 300)) {
		check_view(t, sf, i, "nothing");
		return;
	}
	m->gen++;
	for (int k = 0; k < 2; k++) {
		uint8_t nb = mkbyte(sf, pg, m->gen, k);
		struct vacc r;

		if (which != 2 && which != k)
			continue;
		r = view_access(t, sf, mi, OFF(pg) + (k ? LAST_BYTE : 0), true,
				&nb);
		own_view_attr(sf, i, &r);
		if (r.sig)
			continue;
		m->v[k] = nb;
		note_host(sf, mi, pg, 1);
	}
	check_host(t, sf, i, "a store through a view");
	check_content(t, sf, i, "a store through a view");
	check_view(t, sf, i, "a store through a view");
}

/* Anyone's load or store through a view, anywhere (stores not on content
 * pages: their owners' models hold them). */
static void view_op(struct thr *t)
{
	struct sfile *sf;
	int mi = (int)rnd_below(t, NR_MMS);
	uint8_t val = (uint8_t)rnd(t);
	uint64_t pg;
	bool store;
	struct vacc r;

	do
		sf = &files[rnd_below(t, (uint64_t)nr_files)];
	while (!sf->view_attr);
	if (sf->content && chance(t, 500))
		pg = content_pg(rnd_below(t, nr_content));
	else
		pg = rnd_below(t, sf->nr_pages);
	store = chance(t, 500) && !(sf->content && content_idx(pg) >= 0);
	r = view_access(t, sf, mi, OFF(pg) + rnd_below(t, PAGE_SIZE), store,
			&val);
	if (!r.sig)
		note_host(sf, mi, pg, 1);
}

/* --------------------------------------------------------- owner ops */

static void own_write(struct thr *t, struct sfile *sf, uint64_t i, bool guest)
{
	struct pmodel *m = &sf->model[i];
	uint64_t pg = content_pg(i);
	int which = (int)rnd_below(t, 3);	/* offset 0, 4095 or both */
	int mi = (int)rnd_below(t, NR_MMS);

	m->gen++;
	for (int k = 0; k < 2; k++) {
		uint8_t nb = mkbyte(sf, pg, m->gen, k);
		uint64_t off = OFF(pg) + (k ? LAST_BYTE : 0);
		int r;

		if (which != 2 && which != k)
			continue;
		if (guest) {
			r = gmem_guest_write(sf->f, off, nb);
			expect_res(r, RES_OK | guest_nomem(),
				   "guest write", sf, pg, 1);
			if (r == -ENOMEM)
				t->st[ST_UNDOC_GUEST]++;
			t->st[ST_GUEST]++;
		} else {
			unsigned int allowed = RES_SIGBUS;

			if (m->shared)
				allowed = RES_OK | ((opt.permille || opt.ref_limit) &&
						  !known_mapped(sf, mi, i) ?
						  RES_SIGBUS : 0);
			r = gmem_host_write(mms[mi], sf->f, off, nb);
			expect_res(r, allowed, m->shared ?
				   "host write of a shared page" :
				   "host write of a private page", sf, pg, 1);
			t->st[ST_HOST]++;
			if (!r)
				note_host(sf, mi, pg, 1);
		}
		count_res(t, r);
		if (r)
			continue;
		m->v[k] = nb;
		if (sf->pol == GMEM_POLICY_4K)
			m->alloc = true;
		note_alloc(sf, pg, 1);
	}
}

static void own_convert(struct thr *t, struct sfile *sf, uint64_t i)
{
	struct pmodel *m = &sf->model[i];
	uint64_t pg = content_pg(i), at = UINT64_MAX, b[NR_PC], a[NR_PC];
	bool same = chance(t, 100);
	enum gmem_attr to = (m->shared != same) ? GMEM_PRIVATE : GMEM_SHARED;
	unsigned int flags = chance(t, 250) ? GMEM_CONVERT_ZERO : 0;
	int timeout = (int)rnd_below(t, 3);
	_Atomic uint64_t *c = drain_counters(sf, i);
	int held = held_on(t, sf, pg);
	unsigned int allowed;
	uint64_t t0 = atomic_load(&pin_clock);
	int r;

	for (int k = 0; k < NR_PC; k++)
		b[k] = atomic_load(&c[k]);
	if (to == GMEM_PRIVATE && !same)
		expect_commit.f = sf->gf;
	expect_commit.pg = pg;
	expect_commit.seen = false;
	r = gmem_convert(sf->f, OFF(pg), PAGE_SIZE, to, flags, timeout, &at);
	expect_commit.f = NULL;
	for (int k = 0; k < NR_PC; k++)
		a[k] = atomic_load(&c[k]);
	if (to == GMEM_PRIVATE && !same && (r == 0) != expect_commit.seen)
		fail("convert %s page 0x%llx to private: %s, but the commit hook %s",
		     sf->name, ull(OFF(pg)), res_name(r),
		     expect_commit.seen ? "ran" : "did not run");

	if (same)
		allowed = RES_OK;		/* changes nothing, allocates nothing */
	else if (to == GMEM_SHARED)
		allowed = RES_OK | inj(RES_ENOMEM);
	else if (held == 2)		/* our long-term pin: refused at once */
		allowed = RES_EBUSY;
	else if (held == 1)		/* our pin: waited for, in vain */
		allowed = RES_EAGAIN | (sf->pol != GMEM_POLICY_A ? RES_EBUSY : 0);
	else
		allowed = RES_OK | RES_EAGAIN | inj(RES_ENOMEM) |
			  (sf->pol != GMEM_POLICY_A ? RES_EBUSY : 0);
	expect_res(r, allowed, same ? "convert to the same attribute" :
		   to == GMEM_SHARED ? "convert to shared" :
		   held == 2 ? "convert to private under our long-term pin" :
		   held ? "convert to private under our pin" :
		   "convert to private", sf, pg, 1);
	count_res(t, r);
	if (r == -EAGAIN || r == -EBUSY) {
		if (at != OFF(pg))
			fail("convert %s page 0x%llx: %s at=0x%llx",
			     sf->name, ull(OFF(pg)), res_name(r), ull(at));
		if (!evidence(b[r == -EBUSY ? PC_LT : PC_ANY],
			      a[r == -EBUSY ? PC_LT : PC_ANY], 0))
			fail("convert %s page 0x%llx to private: %s with no %spin in its drain set during the call",
			     sf->name, ull(OFF(pg)), res_name(r),
			     r == -EBUSY ? "long-term " : "");
		if (r == -EBUSY && sf->lt_held)
			ebusy_in_range(t, sf, pg, t0);
		t->st[ST_EVIDENCE]++;
		t->st[r == -EAGAIN ? ST_EAGAIN : ST_EBUSY]++;
	}
	if (!r) {
		t->st[ST_CONV_OK]++;
		if (!same) {
			m->shared = to == GMEM_SHARED;
			if (flags & GMEM_CONVERT_ZERO) {
				m->v[0] = m->v[1] = 0;
				t->st[ST_CONV_ZERO]++;
			}
		}
	}
	/* Success or not, the content is what the model says now. */
	check_content(t, sf, i, r ? "a failed conversion" :
		      (flags & GMEM_CONVERT_ZERO) ? "a zeroing conversion" :
		      "an in-place conversion");
	check_host(t, sf, i, r ? "a failed conversion" : "a conversion");
	if (sf->view_attr)
		check_view(t, sf, i, r ? "a failed conversion" :
			   (flags & GMEM_CONVERT_ZERO) ? "a zeroing conversion" :
			   "an in-place conversion");
}

static void own_punch(struct thr *t, struct sfile *sf, uint64_t i)
{
	struct pmodel *m = &sf->model[i];
	uint64_t pg = content_pg(i);
	int r = gmem_punch(sf->f, OFF(pg), PAGE_SIZE);

	expect_res(r, RES_OK | punch_nomem(), "punch of one page", sf, pg, 1);
	if (r == -ENOMEM)
		t->st[ST_UNDOC_PUNCH]++;
	count_res(t, r);
	t->st[ST_PUNCH]++;
	if (!r) {
		m->v[0] = m->v[1] = 0;
		if (sf->pol == GMEM_POLICY_4K) {
			m->alloc = false;
			/* Our pins there now hold a folio the file let go. */
			for (int k = 0; k < t->nr_pins; k++)
				if (t->pins[k].sf == sf && t->pins[k].pg <= pg &&
				    pg < t->pins[k].pg + t->pins[k].n)
					t->pins[k].gone = true;
		}
	}
	check_content(t, sf, i, r ? "a failed punch" : "a punch");
}

static void own_op(struct thr *t)
{
	struct sfile *sf = content_files[rnd_below(t, (uint64_t)nr_pols)];
	uint64_t i = t->own[rnd_below(t, t->nr_own)];
	struct pmodel *m = &sf->model[i];
	uint64_t pg = content_pg(i), at = UINT64_MAX;
	int mi = (int)rnd_below(t, NR_MMS), r;
	uint64_t x = rnd_below(t, 100);

	if (opt.views && sf->view_attr && chance(t, 250)) {
		own_view(t, sf, i);
		return;
	}
	if (x < 15) {
		own_write(t, sf, i, false);
	} else if (x < 22) {
		own_write(t, sf, i, true);
	} else if (x < 30) {
		check_host(t, sf, i, "nothing");
	} else if (x < 38) {
		check_content(t, sf, i, "nothing");
	} else if (x < 62) {
		own_convert(t, sf, i);
	} else if (x < 67) {
		own_punch(t, sf, i);
	} else if (x < 80) {
		do_pin(t, sf, mi, pg, 1, rnd_pin_flags(t), (int64_t)i);
	} else if (x < 87) {
		r = gmem_iommu_map(sf->f, OFF(pg), PAGE_SIZE, &at);
		expect_res(r, m->shared ? RES_OK | inj(RES_ENOMEM) : RES_EFAULT,
			   "iommu map of one page", sf, pg, 1);
		if (r == -EFAULT && at != OFF(pg))
			fail("iommu %s 0x%llx: EFAULT at=0x%llx", sf->name,
			     ull(OFF(pg)), ull(at));
		count_res(t, r);
		t->st[ST_IOMMU]++;
		if (!r) {
			note_alloc(sf, pg, 1);
			if (sf->pol == GMEM_POLICY_4K)
				m->alloc = true;
		}
	} else {
		unsigned int allowed = RES_SIGBUS;

		if (m->shared)
			allowed = RES_OK | ((opt.permille || opt.ref_limit) && !known_mapped(sf, mi, i) ?
					  RES_SIGBUS : 0);
		r = gmem_fault(mms[mi], sf->f, OFF(pg) + rnd_below(t, PAGE_SIZE),
			       chance(t, 500) ? GMEM_WRITE : 0);
		expect_res(r, allowed, "fault", sf, pg, 1);
		count_res(t, r);
		t->st[ST_HOST]++;
		if (!r) {
			note_host(sf, mi, pg, 1);
			if (sf->pol == GMEM_POLICY_4K)
				m->alloc = true;
		}
	}
}

/* ------------------------------------------------------------ ranges */

static uint64_t clamp_start(int64_t s, uint64_t len, uint64_t np)
{
	if (s < 0)
		return 0;
	if ((uint64_t)s + len > np)
		return np - len;
	return (uint64_t)s;
}

/* A random range of @sf of at most @maxn pages, often near a boundary. */
static void pick_range(struct thr *t, struct sfile *sf, uint64_t maxn,
		       uint64_t *pg, uint64_t *n)
{
	uint64_t np = sf->nr_pages, len, start;
	bool align = false;

	switch (rnd_below(t, 10)) {
	case 0: case 1: case 2:
		len = 1;
		break;
	case 3: case 4:
		len = 1 + rnd_below(t, 16);
		break;
	case 5: case 6:
		len = 1 + rnd_below(t, 1024);
		break;
	case 7:
		len = 1 + rnd_below(t, np);
		break;
	case 8:
		len = PTRS;
		align = true;
		break;
	default:
		len = hp;
		align = true;
		break;
	}
	len = MIN(len, MIN(maxn, np));
	if (rnd_below(t, 3) == 0) {
		uint64_t unit = rnd_below(t, 2) ? PTRS : hp;
		int64_t bnd = (int64_t)(unit * rnd_below(t, np / unit + 1));
		int64_t d = (int64_t)rnd_below(t, 9) - 4;

		if (rnd_below(t, 2))
			d -= (int64_t)len;
		start = clamp_start(bnd + d, len, np);
	} else {
		start = rnd_below(t, np - len + 1);
	}
	if (align)
		start = clamp_start((int64_t)ALIGN_DOWN(start, len), len, np);
	*pg = start;
	*n = len;
}

/* Cut [*pg, *pg + *n) of a content file before its first content page. */
static bool clip_free(uint64_t *pg, uint64_t *n)
{
	for (uint64_t p = *pg; p < *pg + *n && p < hp; p++) {
		if (content_idx(p) >= 0) {
			*n = p - *pg;
			break;
		}
	}
	return *n > 0;
}

static void check_at(const char *what, const struct sfile *sf, uint64_t pg,
		     uint64_t n, int r, uint64_t at)
{
	if (at < OFF(pg) || at >= OFF(pg + n) || (at & (PAGE_SIZE - 1)))
		fail("%s %s 0x%llx+0x%llx: %s at=0x%llx outside the range", what,
		     sf->name, ull(OFF(pg)), ull(OFF(n)), res_name(r), ull(at));
}

/* A multi-page conversion by anyone (chaos files, free content pages). */
static void range_convert(struct thr *t, struct sfile *sf, uint64_t pg,
			  uint64_t n)
{
	enum gmem_attr to = rnd_below(t, 2) ? GMEM_SHARED : GMEM_PRIVATE;
	/* Zeroing costs a syscall per folio of split memory: keep it short. */
	unsigned int flags = n <= ZERO_MAX_PAGES && chance(t, 250) ?
			     GMEM_CONVERT_ZERO : 0;
	uint64_t at = UINT64_MAX, t0 = atomic_load(&pin_clock);
	int r;

	r = gmem_convert(sf->f, OFF(pg), OFF(n), to, flags,
			 (int)rnd_below(t, 3), &at);
	expect_res(r, RES_OK | inj(RES_ENOMEM) |
		   (to == GMEM_PRIVATE ? RES_EAGAIN : 0) |
		   (to == GMEM_PRIVATE && sf->pol != GMEM_POLICY_A ? RES_EBUSY : 0),
		   to == GMEM_SHARED ? "range convert to shared" :
		   "range convert to private", sf, pg, n);
	count_res(t, r);
	if (r == -EAGAIN || r == -EBUSY) {
		check_at("convert", sf, pg, n, r, at);
		if (r == -EBUSY && sf->lt_held)
			ebusy_in_range(t, sf, at >> PAGE_SHIFT, t0);
		t->st[r == -EAGAIN ? ST_EAGAIN : ST_EBUSY]++;
	}
	if (!r)
		t->st[ST_CONV_OK]++;
}

/* ----------------------------------------------- others' content ops */

static void peek_op(struct thr *t)
{
	struct sfile *sf = content_files[rnd_below(t, (uint64_t)nr_pols)];
	uint64_t pg, n, at = UINT64_MAX, x = rnd_below(t, 100);
	int mi = (int)rnd_below(t, NR_MMS), r;
	uint8_t val;

	pg = chance(t, 700) ? content_pg(rnd_below(t, nr_content)) :
			      rnd_below(t, sf->nr_pages);
	if (x < 30) {
		if (rnd_below(t, 2))
			r = gmem_host_read(mms[mi], sf->f,
					   OFF(pg) + rnd_below(t, PAGE_SIZE), &val);
		else
			r = gmem_fault(mms[mi], sf->f,
				       OFF(pg) + rnd_below(t, PAGE_SIZE), 0);
		expect_res(r, RES_OK | RES_SIGBUS, "host read", sf, pg, 1);
		count_res(t, r);
		t->st[ST_HOST]++;
		if (!r)
			note_host(sf, mi, pg, 1);
	} else if (x < 55) {
		n = chance(t, 700) ? 1 : 1 + rnd_below(t, 8);
		n = MIN(n, sf->nr_pages - pg);
		do_pin(t, sf, mi, pg, n, rnd_pin_flags(t), -1);
	} else if (x < 70) {
		r = gmem_guest_read(sf->f, OFF(pg) + rnd_below(t, PAGE_SIZE), &val);
		expect_res(r, RES_OK | guest_nomem(), "guest read", sf,
			   pg, 1);
		if (r == -ENOMEM)
			t->st[ST_UNDOC_GUEST]++;
		count_res(t, r);
		t->st[ST_GUEST]++;
		if (!r)
			note_alloc(sf, pg, 1);
	} else if (x < 85) {
		n = 1 + rnd_below(t, 64);
		n = MIN(n, sf->nr_pages - pg);
		r = gmem_guest_access(sf->f, OFF(pg), rnd_below(t, 4) ? OFF(n) : 0,
				      chance(t, 500) ? GMEM_WRITE : 0);
		expect_res(r, RES_OK | guest_nomem(), "guest access",
			   sf, pg, n);
		if (r == -ENOMEM)
			t->st[ST_UNDOC_GUEST]++;
		count_res(t, r);
		t->st[ST_GUEST]++;
		if (!r)
			note_alloc(sf, pg, n);
	} else {
		n = 1 + rnd_below(t, 64);
		n = MIN(n, sf->nr_pages - pg);
		r = gmem_iommu_map(sf->f, OFF(pg), OFF(n), &at);
		expect_res(r, RES_OK | RES_EFAULT | inj(RES_ENOMEM), "iommu map", sf,
			   pg, n);
		if (r == -EFAULT)
			check_at("iommu map", sf, pg, n, r, at);
		count_res(t, r);
		t->st[ST_IOMMU]++;
		if (!r)
			note_alloc(sf, pg, n);
	}
}

/* Anyone may convert, punch (in part) and write free content-file pages. */
static void free_op(struct thr *t)
{
	struct sfile *sf = content_files[rnd_below(t, (uint64_t)nr_pols)];
	uint64_t pg, n, x = rnd_below(t, 100);
	int mi = (int)rnd_below(t, NR_MMS), r;

	/* Shorter than a huge page: never a whole-huge-page punch here. */
	pick_range(t, sf, MIN(hp - 1, 1024), &pg, &n);
	if (!clip_free(&pg, &n))
		return;
	if (x < 35) {
		range_convert(t, sf, pg, n);
	} else if (x < 50) {
		r = gmem_punch(sf->f, OFF(pg), OFF(n));
		expect_res(r, RES_OK | punch_nomem(), "partial punch", sf, pg, n);
		if (r == -ENOMEM)
			t->st[ST_UNDOC_PUNCH]++;
		count_res(t, r);
		t->st[ST_PUNCH]++;
	} else {
		uint64_t p = pg + rnd_below(t, n);
		uint64_t off = OFF(p) + rnd_below(t, PAGE_SIZE);
		uint8_t b = (uint8_t)rnd(t);

		if (x < 75) {
			r = gmem_host_write(mms[mi], sf->f, off, b);
			expect_res(r, RES_OK | RES_SIGBUS, "host write", sf, p, 1);
			t->st[ST_HOST]++;
			if (!r)
				note_host(sf, mi, p, 1);
		} else {
			r = gmem_guest_write(sf->f, off, b);
			expect_res(r, RES_OK | guest_nomem(),
				   "guest write", sf, p, 1);
			if (r == -ENOMEM)
				t->st[ST_UNDOC_GUEST]++;
			t->st[ST_GUEST]++;
			if (!r)
				note_alloc(sf, p, 1);
		}
		count_res(t, r);
	}
}

/* --------------------------------------------------------- chaos ops */

static void chaos_op(struct thr *t)
{
	struct sfile *sf = chaos_files[rnd_below(t, (uint64_t)nr_pols)];
	uint64_t pg, n, at = UINT64_MAX, x = rnd_below(t, 100);
	unsigned int hwp = opt.poison ? RES_GHWPOISON : 0;
	int mi = (int)rnd_below(t, NR_MMS), r;
	uint8_t val;

	pick_range(t, sf, sf->nr_pages, &pg, &n);
	if (x < 15) {
		uint64_t off = OFF(pg) + rnd_below(t, PAGE_SIZE);

		switch (rnd_below(t, 3)) {
		case 0:
			r = gmem_host_read(mms[mi], sf->f, off, &val);
			break;
		case 1:
			r = gmem_host_write(mms[mi], sf->f, off, (uint8_t)rnd(t));
			break;
		default:
			r = gmem_fault(mms[mi], sf->f, off,
				       chance(t, 500) ? GMEM_WRITE : 0);
			break;
		}
		expect_res(r, RES_OK | RES_SIGBUS, "host access", sf, pg, 1);
		count_res(t, r);
		t->st[ST_HOST]++;
	} else if (x < 30) {
		/* Within one huge page: a punched one stays detached while
		 * pinned, and the pool is sized for one per pin held. */
		n = MIN(n, PIN_MAX_PAGES);
		n = MIN(n, hp - pg % hp);
		do_pin(t, sf, mi, pg, n, rnd_pin_flags(t), -1);
	} else if (x < 48) {
		range_convert(t, sf, pg, n);
	} else if (x < 58) {
		n = MIN(n, 1024);
		r = gmem_guest_access(sf->f, OFF(pg), rnd_below(t, 4) ? OFF(n) : 0,
				      chance(t, 500) ? GMEM_WRITE : 0);
		expect_res(r, RES_OK | hwp | guest_nomem(),
			   "guest access", sf, pg, n);
		if (r == -ENOMEM)
			t->st[ST_UNDOC_GUEST]++;
		count_res(t, r);
		t->st[ST_GUEST]++;
	} else if (x < 66) {
		uint64_t off = OFF(pg) + rnd_below(t, PAGE_SIZE);

		if (rnd_below(t, 2))
			r = gmem_guest_read(sf->f, off, &val);
		else
			r = gmem_guest_write(sf->f, off, (uint8_t)rnd(t));
		expect_res(r, RES_OK | hwp | guest_nomem(),
			   "guest byte", sf, pg, 1);
		if (r == -ENOMEM)
			t->st[ST_UNDOC_GUEST]++;
		count_res(t, r);
		t->st[ST_GUEST]++;
	} else if (x < 76) {
		n = MIN(n, 1024);
		r = gmem_iommu_map(sf->f, OFF(pg), OFF(n), &at);
		expect_res(r, RES_OK | RES_EFAULT | inj(RES_ENOMEM) |
			   (opt.poison ? RES_EHWPOISON : 0), "iommu map", sf, pg, n);
		if (r == -EFAULT || r == -EHWPOISON)
			check_at("iommu map", sf, pg, n, r, at);
		count_res(t, r);
		t->st[ST_IOMMU]++;
	} else if (x < 90 || (x < 93 && !opt.poison)) {
		bool whole = x >= 87;

		if (whole) {
			/* One or two whole huge pages. */
			pg = ALIGN_DOWN(pg, hp);
			n = hp * (1 + rnd_below(t, 2));
			n = MIN(n, sf->nr_pages - pg);
		} else if (n > ZERO_MAX_PAGES) {
			/* Partial (a punch zeroes): the end of a huge page. */
			n = ZERO_MAX_PAGES - rnd_below(t, 8);
			pg = ALIGN_DOWN(pg, hp) + hp - n - rnd_below(t, 2);
		}
		r = gmem_punch(sf->f, OFF(pg), OFF(n));
		expect_res(r, RES_OK | punch_nomem(), whole ? "whole punch" :
			   "punch", sf, pg, n);
		if (r == -ENOMEM)
			t->st[ST_UNDOC_PUNCH]++;
		count_res(t, r);
		t->st[whole ? ST_PUNCH_WHOLE : ST_PUNCH]++;
	} else if (opt.poison && x >= 93) {
		/* Each poison may retire a huge page for good: capped. */
		if (atomic_fetch_add(&poisons, 1) >= poison_cap)
			return;
		if (sf->poisoned)	/* before: a view's SIGBUS may follow */
			atomic_store(&sf->poisoned[pg], true);
		r = gmem_poison(sf->f, OFF(pg));
		expect_res(r, RES_OK | inj(RES_ENOMEM), "poison", sf, pg, 1);
		count_res(t, r);
		t->st[ST_POISON]++;
	} else {
		r = gmem_stats(pool, sf->f, &(struct gmem_stats){ 0 });
		expect_res(r, RES_OK, "stats", sf, 0, 0);
	}
}

/* ------------------------------------------------------- b-adaptive */

/*
 * A b-adaptive file's merges: compact it (every block that may merge does,
 * now), or give it another merge delay, 0 (merge at once) to 8
 * conversions.  Neither allocates nor fails on an open file.
 */
static void adaptive_op(struct thr *t)
{
	struct sfile *sf = adaptive_files[rnd_below(t, (uint64_t)nr_adaptive)];
	int r;

	if (chance(t, 600)) {
		r = gmem_file_compact(sf->f);
		expect_res(r, RES_OK, "compact", sf, 0, 0);
		t->st[ST_COMPACT]++;
	} else {
		unsigned int d = (unsigned int)rnd_below(t, 9);

		r = gmem_file_set_merge_delay(sf->f, d);
		expect_res(r, RES_OK, "set merge delay", sf, 0, 0);
		t->st[ST_MERGE_DELAY]++;
	}
}

/* ----------------------------------------------------- misc checks */

static void misc_op(struct thr *t)
{
	struct sfile *sf = &files[rnd_below(t, (uint64_t)nr_files)];
	uint64_t size = OFF(sf->nr_pages), id = 0, at;
	struct gmem_stats s;
	uint8_t val;
	int r;

	switch (rnd_below(t, 9)) {
	case 0:
		r = gmem_host_read(mms[rnd_below(t, NR_MMS)], sf->f,
				   size + rnd_below(t, 3 * PAGE_SIZE), &val);
		expect_res(r, RES_SIGBUS, "host read past the end", sf, 0, 0);
		break;
	case 1:
		r = gmem_guest_access(sf->f, size + OFF(rnd_below(t, 3)), 0, 0);
		expect_res(r, RES_GFAULT, "guest access past the end", sf, 0, 0);
		r = gmem_guest_read(sf->f, size + rnd_below(t, PAGE_SIZE), &val);
		expect_res(r, RES_GFAULT, "guest read past the end", sf, 0, 0);
		break;
	case 2:
		r = gmem_convert(sf->f, OFF(rnd_below(t, sf->nr_pages)) + 512,
				 PAGE_SIZE, GMEM_PRIVATE, 0, 0, &at);
		expect_res(r, RES_EINVAL, "unaligned convert", sf, 0, 0);
		r = gmem_convert(sf->f, size - PAGE_SIZE, 2 * PAGE_SIZE,
				 GMEM_SHARED, 0, 0, &at);
		expect_res(r, RES_EINVAL, "convert past the end", sf, 0, 0);
		break;
	case 3:
		r = gmem_pin(mms[0], sf->f, 0, 0, 0, &id, NULL);
		expect_res(r, RES_EINVAL, "empty pin", sf, 0, 0);
		break;
	case 4:
		r = gmem_unpin(pool, UINT64_MAX - rnd_below(t, 1000));
		expect_res(r, RES_ENOENT, "unpin of no pin", sf, 0, 0);
		break;
	case 5:
		r = gmem_stats(pool, NULL, &s);
		expect_res(r, RES_OK, "stats", NULL, 0, 0);
		if (s.pool_resv > s.pool_free || s.pool_free > s.pool_total)
			fail("stats: resv %llu free %llu total %llu",
			     ull(s.pool_resv), ull(s.pool_free),
			     ull(s.pool_total));
		break;
	case 6:
		r = gmem_punch(sf->f, 0, 0);
		expect_res(r, RES_EINVAL, "empty punch", sf, 0, 0);
		break;
	case 7:
		/* every policy compacts (those that never merge: nothing to
		 * do); only b-adaptive has a merge delay */
		r = gmem_file_compact(sf->f);
		expect_res(r, RES_OK, "compact", sf, 0, 0);
		r = gmem_file_set_merge_delay(sf->f, (unsigned int)rnd_below(t, 9));
		expect_res(r, sf->pol == GMEM_POLICY_B_ADAPTIVE ? RES_OK : RES_EINVAL,
			   "set merge delay", sf, 0, 0);
		r = gmem_file_set_merge_delay(NULL, 0);
		expect_res(r, RES_EINVAL, "set merge delay of no file", NULL, 0, 0);
		r = gmem_file_compact(NULL);
		expect_res(r, RES_EINVAL, "compact of no file", NULL, 0, 0);
		break;
	default:
		r = gmem_iommu_map(sf->f, size, PAGE_SIZE, &at);
		expect_res(r, RES_EINVAL, "iommu map past the end", sf, 0, 0);
		break;
	}
}

/* ------------------------------------------------------------ worker */

static void step(struct thr *t)
{
	uint64_t x = rnd_below(t, 100);

	pins_step(t);
	if (opt.views && chance(t, 150))
		view_op(t);
	else if (x < 35 && t->nr_own)
		own_op(t);
	else if (x < 55)
		peek_op(t);
	else if (x < 65)
		free_op(t);
	else if (x < 95 || (x < 97 && !nr_adaptive))
		chaos_op(t);
	else if (x < 97)
		adaptive_op(t);
	else
		misc_op(t);
	t->st[ST_OPS]++;
}

static void *worker(void *arg)
{
	struct thr *t = arg;

	self_id = t->id;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		pthread_rwlock_rdlock(&world);
		for (int k = 0; k < 8; k++)
			step(t);
		pthread_rwlock_unlock(&world);
	}
	return NULL;
}

/* ------------------------------------------------ stop-the-world checks */

static void run_gmem_check(const char *when)
{
	char why[512] = "";
	int r = gmem_check(pool, why, sizeof(why));

	if (r) {
		fprintf(stderr, "stress: FAIL seed=%" PRIu64 ": gmem_check %s: %s: %s\n",
			opt.seed, when, res_name(r), why);
		fflush(NULL);
		abort();
	}
}

/* Every content page's attribute and bytes, as its owner's model says. */
static void check_models(const char *when)
{
	for (int p = 0; p < nr_pols; p++) {
		struct sfile *sf = content_files[p];

		for (uint64_t i = 0; i < nr_content; i++) {
			struct pmodel *m = &sf->model[i];
			uint64_t pg = content_pg(i);
			bool sh;

			pthread_mutex_lock(&sf->gf->lock);
			sh = page_is_shared(sf->gf, pg);
			pthread_mutex_unlock(&sf->gf->lock);
			if (sh != m->shared)
				fail("%s: %s page 0x%llx (owner %d) is %s, model says %s",
				     when, sf->name, ull(OFF(pg)), owner_of(i),
				     sh ? "shared" : "private",
				     m->shared ? "shared" : "private");
			for (int k = 0; k < 2; k++) {
				uint8_t val = 0xee;
				int r = gmem_guest_read(sf->f, OFF(pg) +
							(k ? LAST_BYTE : 0), &val);

				expect_res(r, RES_OK, "guest read (check)", sf, pg, 1);
				if (val != m->v[k])
					fail("%s: %s page 0x%llx (owner %d) byte 0x%llx: 0x%02x, model 0x%02x (gen %u)",
					     when, sf->name, ull(OFF(pg)),
					     owner_of(i), ull(k ? LAST_BYTE : 0),
					     val, m->v[k], m->gen);
			}
		}
	}
}

/* The view oracle's table says what gmem's attributes say. */
static void check_view_attrs(const char *when)
{
	for (int k = 0; k < nr_files; k++) {
		struct sfile *sf = &files[k];
		uint64_t np = sf->nr_pages, cur = 0, s, e, bad = UINT64_MAX;

		if (!sf->view_attr)
			continue;
		pthread_mutex_lock(&sf->gf->lock);
		while (cur < np && bad == UINT64_MAX) {
			if (!rs_next(&sf->gf->shared, cur, &s, &e) || s >= np)
				s = e = np;
			e = MIN(e, np);
			for (uint64_t pg = cur; pg < e && bad == UINT64_MAX; pg++)
				if ((atomic_load(&sf->view_attr[pg]) & 1) != (pg >= s))
					bad = pg;
			cur = e;
		}
		pthread_mutex_unlock(&sf->gf->lock);
		if (bad != UINT64_MAX)
			fail("%s: %s page 0x%llx: view table 0x%llx, gmem says %s",
			     when, sf->name, ull(OFF(bad)),
			     ull(atomic_load(&sf->view_attr[bad])),
			     atomic_load(&sf->view_attr[bad]) & 1 ? "private" :
			     "shared");
	}
}

/* Every pin held is intact; the pool counts exactly the pages held. */
static void check_pins(const char *when)
{
	struct gmem_stats s;
	uint64_t held = 0;

	for (int t = 0; t < opt.threads; t++) {
		for (int k = 0; k < thr[t].nr_pins; k++) {
			verify_pin(&thr[t].pins[k]);
			held += thr[t].pins[k].n;
		}
	}
	if (gmem_stats(pool, NULL, &s))
		fail("%s: stats", when);
	if (s.pins != held)
		fail("%s: stats pins %llu, threads hold %llu pinned pages", when,
		     ull(s.pins), ull(held));
}

/* Whether every folio of a split 2M block holds only the file's reference. */
static bool small_quiet(struct gfolio *s)
{
	for (unsigned int k = 0; k < PTRS; k++)
		if (folio_ref_count(&s[k]) != 1 || folio_mapcount(&s[k]))
			return false;
	return true;
}

/* Whether [pg, pg+n) of @f has one attribute and no poisoned page. */
static bool may_merge(struct gfile *f, uint64_t pg, uint64_t n)
{
	uint64_t x;

	return block_uniform(f, pg, pg + n, NULL) &&
	       !rs_first_in(&f->poison, pg, pg + n, &x);
}

/*
 * b-lazy and b-adaptive, nobody else at work: convert a 2M block that
 * holds no content to private (its drain zaps its host entries; pins
 * refuse it), so that there is something to merge, typically: a block
 * kept split is mixed, mapped or pinned most of the time.  Then compact
 * @sf, and no split block may be left that could merge (gmem.h: uniform,
 * no poisoned page, no host entry and no pin), 2M nor (1G pools) 1G.
 */
static void check_compacted(struct sfile *sf, const char *when)
{
	struct gfile *f = sf->gf;
	uint64_t bad = UINT64_MAX, at = 0;
	uint64_t b = mix64(opt.seed ^ world_checks ^ ((uint64_t)sf->idx << 40)) %
		     sf->nr_2m;
	bool content = false;
	int r;

	for (unsigned int k = 0; sf->content && k < nr_blocks; k++)
		content = content || b == blocks[k];
	if (!content) {
		r = gmem_convert(sf->f, OFF(b * PTRS), OFF(PTRS), GMEM_PRIVATE,
				 0, 0, &at);
		expect_res(r, RES_OK | RES_EAGAIN |
			   (sf->pol != GMEM_POLICY_A ? RES_EBUSY : 0),
			   "convert a block to private (check)", sf, b * PTRS,
			   PTRS);
		/* nobody else pins now: our records are the truth */
		if (r == -EBUSY && sf->lt_held &&
		    !atomic_load(&sf->lt_held[at >> PAGE_SHIFT]))
			fail("%s: convert %s block 0x%llx: EBUSY at 0x%llx, no long-term pin there (b-adaptive)",
			     when, sf->name, ull(OFF(b * PTRS)), ull(at));
	}
	r = gmem_file_compact(sf->f);
	if (r)
		fail("%s: compact %s: %s", when, sf->name, res_name(r));
	pthread_mutex_lock(&f->lock);
	for (uint64_t slot = 0; slot < sf->nr_slots && bad == UINT64_MAX; slot++) {
		struct ghuge *h = f->huge[slot];
		bool quiet = true;

		if (!h || !h->blk.split)
			continue;
		if (hp == PTRS) {
			if (small_quiet(h->blk.small) && may_merge(f, h->index, PTRS))
				bad = h->index;
			continue;
		}
		for (unsigned int ci = 0; ci < PTRS && bad == UINT64_MAX; ci++) {
			struct gblock *c = &h->blk.child[ci];
			uint64_t cs = h->index + ci * (uint64_t)PTRS;

			if (!c->split) {
				quiet = quiet && folio_ref_count(&c->folio) == 1 &&
					!folio_mapcount(&c->folio);
				continue;
			}
			quiet = false;
			if (small_quiet(c->small) && may_merge(f, cs, PTRS))
				bad = cs;
		}
		if (bad == UINT64_MAX && quiet && may_merge(f, h->index, hp))
			bad = h->index;
	}
	pthread_mutex_unlock(&f->lock);
	if (bad != UINT64_MAX)
		fail("%s: %s: after gmem_file_compact() the split block at 0x%llx could still merge",
		     when, sf->name, ull(OFF(bad)));
}

/* All workers stopped between batches: check everything.  Returns ns. */
static uint64_t world_check(const char *when)
{
	uint64_t t0 = now_ns();

	pthread_rwlock_wrlock(&world);
	gmem_inject_fail_random(0, opt.seed);
	run_gmem_check(when);
	check_models(when);
	check_view_attrs(when);
	check_pins(when);
	for (int k = 0; k < nr_files; k++)
		if (files[k].pol == GMEM_POLICY_B_LAZY ||
		    files[k].pol == GMEM_POLICY_B_ADAPTIVE)
			check_compacted(&files[k], when);
	if (opt.permille)
		gmem_inject_fail_random(opt.permille, opt.seed);
	world_checks++;
	pthread_rwlock_unlock(&world);
	return now_ns() - t0;
}

static void must(int r, const char *what)
{
	if (r)
		fail("setup: %s: %s", what, res_name(r));
}

/* -------------------------------------------- beside the workers */

/*
 * gmem_test_hooks.drain_wait: a conversion is about to wait for pins until
 * its deadline.  Stall now and then (a yield, or a sleep of up to 2 ms), so
 * that deadlines of 0, 1 and 2 ms pass at every point of the decision.
 */
static void hook_drain_wait(struct gfile *f)
{
	static atomic_uint_fast64_t n;
	uint64_t x = mix64(atomic_fetch_add(&n, 1) ^ opt.seed);

	(void)f;
	if (x % 4 == 0) {
		sched_yield();
	} else if (x % 4 == 1) {
		struct timespec ts = { 0, (long)((x >> 8) % 2000000) };

		nanosleep(&ts, NULL);
	}
}

/*
 * Sleep for @ns, or until the run stops: a round of 1G pages can take
 * seconds under load, and the end of the run waits for these threads.
 */
static void nap(uint64_t ns)
{
	for (uint64_t end = now_ns() + ns, now = now_ns();
	     now < end && !atomic_load_explicit(&stop, memory_order_relaxed);
	     now = now_ns()) {
		struct timespec ts = { 0, (long)MIN(end - now, 10000000ULL) };

		nanosleep(&ts, NULL);
	}
}

static struct sfile closer_sf = { .name = "closer" };
static struct gmem_mm *closer_mm;
static pthread_t checker_th, closer_th;
static uint64_t checker_runs, closer_runs, closer_pinned_closes;

/*
 * gmem_check() and gmem_stats() while every other thread works: gmem_check
 * must never see a violation, a snapshot never a pool that does not add up.
 */
static void *checker(void *arg)
{
	(void)arg;
	self_id = 1000;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		struct gmem_stats s;
		int k = (int)(checker_runs % (uint64_t)nr_files);
		uint64_t t0 = now_ns(), took;

		run_gmem_check("on the checker thread");
		must(gmem_stats(pool, NULL, &s), "stats on the checker thread");
		if (s.pool_resv > s.pool_free || s.pool_free > s.pool_total)
			fail("checker: stats resv %llu free %llu total %llu",
			     ull(s.pool_resv), ull(s.pool_free),
			     ull(s.pool_total));
		must(gmem_stats(pool, files[k].f, &s),
		     "file stats on the checker thread");
		if (s.pool_resv > s.pool_free || s.pool_free > s.pool_total)
			fail("checker: file stats resv %llu free %llu total %llu",
			     ull(s.pool_resv), ull(s.pool_free),
			     ull(s.pool_total));
		checker_runs++;
		/* a check takes every file's invalidate lock in turn: keep
		 * it to about a fifth of the time */
		took = now_ns() - t0;
		nap(4 * took);
	}
	return NULL;
}

/*
 * -L: pin page 2 of the closer's file (nobody else's) until the limit
 * refuses: on a 4K folio that is after exactly (limit - 2) / bias pins
 * (the file's reference and one PTE), on a huge folio after up to 256;
 * then the page converts only once every pin is gone.  @split: a
 * b-adaptive long-term pin of page 0 or 1 split page 2's block to 4K.
 */
static void closer_hammer(struct gmem_file *f, enum gmem_policy pol,
			  bool split)
{
	bool small = pol == GMEM_POLICY_4K || pol == GMEM_POLICY_B_EAGER ||
		     split;
	uint64_t want = (uint64_t)(opt.ref_limit - 2) / GUP_PIN_COUNTING_BIAS;
	uint64_t ids[256], n = 0, at;
	int r = 0;

	while (n < 256) {
		r = gmem_pin(closer_mm, f, OFF(2), PAGE_SIZE, 0, &ids[n], NULL);
		if (r)
			break;
		n++;
	}
	if (opt.permille && r == -ENOMEM)
		;	/* an injected failure may come first */
	else if (small && (r != -ENOMEM || n != want))
		fail("closer: %llu pins of a 4K page under limit %d, then %s; wanted %llu then ENOMEM",
		     ull(n), opt.ref_limit, res_name(r), ull(want));
	else if (!small && r && r != -ENOMEM)
		fail("closer: pin of a huge folio: %s", res_name(r));
	r = gmem_convert(f, OFF(2), PAGE_SIZE, GMEM_PRIVATE, 0, 0, &at);
	expect_res(r, n ? RES_EAGAIN | RES_EBUSY : RES_OK | RES_EAGAIN |
		   RES_EBUSY | inj(RES_ENOMEM), "closer: convert hammered",
		   &closer_sf, 2, 1);
	while (n)
		expect_res(gmem_unpin(pool, ids[--n]), RES_OK, "closer: unpin",
			   &closer_sf, 2, 1);
	r = gmem_convert(f, OFF(2), PAGE_SIZE, GMEM_SHARED, 0, 0, &at);
	expect_res(r, RES_OK | inj(RES_ENOMEM), "closer: convert back",
		   &closer_sf, 2, 1);
}

/*
 * A file of the closer's own, made and closed over and over while the
 * checker and the workers run: one huge page, a policy in turn (of those
 * with files), touched, pinned, converted, compacted, then closed, with
 * its pins still held half the time (they stay valid and are dropped
 * after the close).  Nobody else pins it, so under b-adaptive a
 * long-term pin always splits first, and its conversions' results are
 * known exactly.  Under the world lock
 * like a worker, and holding no pin between rounds, so that the world
 * checks count only the workers' pins.
 */
static void closer_round(uint64_t round)
{
	enum gmem_policy pol = content_files[round % (uint64_t)nr_pols]->pol;
	bool pinned_close = round & 4, pinned0 = false;
	bool adaptive = pol == GMEM_POLICY_B_ADAPTIVE;
	struct gmem_file *f;
	uint64_t ids[2], nr = 0, at;
	unsigned int flags = pol != GMEM_POLICY_A && (round & 8) ?
			     GMEM_PIN_LONGTERM : 0;
	int r;

	r = gmem_file_create(pool, opt.psize, pol, GMEM_FILE_INIT_SHARED, &f);
	expect_res(r, RES_OK | inj(RES_ENOMEM), "closer: file create",
		   &closer_sf, 0, 0);
	if (r)
		return;
	closer_sf.f = f;
	/* b-adaptive: a short merge delay, or none */
	r = gmem_file_set_merge_delay(f, (unsigned int)(round >> 4) % 9);
	expect_res(r, adaptive ? RES_OK : RES_EINVAL, "closer: set merge delay",
		   &closer_sf, 0, 0);
	r = gmem_mmap(closer_mm, f);
	expect_res(r, RES_OK | inj(RES_ENOMEM), "closer: mmap", &closer_sf, 0, 0);
	if (!r) {
		r = gmem_host_write(closer_mm, f, OFF(1), (uint8_t)round);
		expect_res(r, RES_OK | inj(RES_SIGBUS), "closer: host write",
			   &closer_sf, 1, 1);
		for (uint64_t pg = 0; pg < 2; pg++) {
			/* b-adaptive, long-term: nobody else pins this file,
			 * so the split it makes first cannot fail but for
			 * memory */
			r = gmem_pin(closer_mm, f, OFF(pg), PAGE_SIZE, flags,
				     &ids[nr], NULL);
			expect_res(r, RES_OK | inj(RES_ENOMEM), "closer: pin",
				   &closer_sf, pg, 1);
			if (!r && pg == 0)
				pinned0 = true;
			nr += !r;
		}
		/* b-adaptive: a long-term pin split pages 0..3 out to 4K */
		bool split = adaptive && nr && flags;

		if (opt.ref_limit)
			closer_hammer(f, pol, split);
		r = gmem_convert(f, OFF(3), PAGE_SIZE, GMEM_PRIVATE, 0,
				 (int)(round % 3), &at);
		/* a and an intact b-lazy folio drain the whole huge page,
		 * pinned pages 0 and 1 with it; so does an intact b-adaptive
		 * one (short-term pins: EAGAIN only), but a long-term pin
		 * split it first: page 3 is a 4K folio of its own */
		if (adaptive)
			expect_res(r, nr && !flags ? RES_EAGAIN :
				   RES_OK | inj(RES_ENOMEM),
				   "closer: convert (b-adaptive)", &closer_sf, 3, 1);
		else
			expect_res(r, RES_OK | inj(RES_ENOMEM) |
				   (nr && (pol == GMEM_POLICY_A ||
					   pol == GMEM_POLICY_B_LAZY) ?
				    RES_EAGAIN | RES_EBUSY : 0),
				   "closer: convert", &closer_sf, 3, 1);
		r = gmem_convert(f, 0, PAGE_SIZE, GMEM_PRIVATE, 0,
				 (int)(round % 3), &at);
		if (adaptive && pinned0)
			expect_res(r, flags ? RES_EBUSY : RES_EAGAIN,
				   "closer: convert pinned (b-adaptive)",
				   &closer_sf, 0, 1);
		else
			expect_res(r, pinned0 ? RES_EAGAIN | RES_EBUSY | inj(RES_ENOMEM) :
				   RES_OK | RES_EAGAIN | RES_EBUSY | inj(RES_ENOMEM),
				   "closer: convert pinned", &closer_sf, 0, 1);
		r = gmem_file_compact(f);
		expect_res(r, RES_OK, "closer: compact", &closer_sf, 0, 0);
	}
	if (!pinned_close)
		while (nr)
			expect_res(gmem_unpin(pool, ids[--nr]), RES_OK,
				   "closer: unpin", &closer_sf, 0, 1);
	must(gmem_file_close(f), "closer: close");
	if (nr)
		closer_pinned_closes++;
	while (nr)
		expect_res(gmem_unpin(pool, ids[--nr]), RES_OK,
			   "closer: unpin after close", &closer_sf, 0, 1);
	expect_res(gmem_file_close(f), RES_EBADF, "closer: second close",
		   &closer_sf, 0, 0);
	expect_res(gmem_file_compact(f), RES_EBADF, "closer: compact after close",
		   &closer_sf, 0, 0);
	expect_res(gmem_file_set_merge_delay(f, 1), RES_EBADF,
		   "closer: set merge delay after close", &closer_sf, 0, 0);
}

static void *closer(void *arg)
{
	(void)arg;
	self_id = 1001;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t t0 = now_ns(), took;

		pthread_rwlock_rdlock(&world);
		closer_round(closer_runs++);
		pthread_rwlock_unlock(&world);
		/* a fifth of a CPU at most: a round of 1G pages is long */
		took = now_ns() - t0;
		nap(4 * took);
	}
	return NULL;
}

/* ------------------------------------------------------------- setup */

static const char *const pol_names[NR_POL] = {
	"4k", "a", "b-eager", "b-lazy", "b-adaptive",
};

static void file_setup(struct sfile *sf, enum gmem_policy pol, bool content,
		       bool shared)
{
	sf->pol = pol;
	sf->content = content;
	sf->idx = (int)(sf - files);
	snprintf(sf->name, sizeof(sf->name), "%s-%s", content ? "content" : "chaos",
		 pol_names[pol - GMEM_POLICY_4K]);
	sf->nr_slots = 2;
	sf->nr_pages = 2 * hp;
	sf->nr_2m = sf->nr_pages / PTRS;
	must(gmem_file_create(pool, OFF(sf->nr_pages), pol,
			      shared ? GMEM_FILE_INIT_SHARED : 0, &sf->f),
	     "file create");
	sf->gf = to_file(sf->f);
	if (pol == GMEM_POLICY_B_ADAPTIVE) {
		/* a short merge delay (the default, 64, would merge seldom
		 * in a run of seconds), or none; threads change it */
		must(gmem_file_set_merge_delay(sf->f, (unsigned int)
				(mix64(opt.seed ^ (uint64_t)sf->idx) % 9)),
		     "set merge delay");
		sf->lt_held = calloc(sf->nr_pages, sizeof(*sf->lt_held));
		sf->lt_end = calloc(sf->nr_pages, sizeof(*sf->lt_end));
		sf->blk_held = calloc(sf->nr_2m, sizeof(*sf->blk_held));
		sf->blk_end = calloc(sf->nr_2m, sizeof(*sf->blk_end));
		if (!sf->lt_held || !sf->lt_end || !sf->blk_held || !sf->blk_end)
			fail("setup: out of memory");
		for (uint64_t i = 0; i < sf->nr_pages; i++) {
			atomic_init(&sf->lt_held[i], 0);
			atomic_init(&sf->lt_end[i], 0);
		}
		for (uint64_t i = 0; i < sf->nr_2m; i++) {
			atomic_init(&sf->blk_held[i], 0);
			atomic_init(&sf->blk_end[i], 0);
		}
		adaptive_files[nr_adaptive++] = sf;
	}
	if (!content)
		return;
	sf->model = calloc(nr_content, sizeof(*sf->model));
	sf->pc = calloc(nr_content * NR_PC, sizeof(*sf->pc));
	sf->hc = calloc(sf->nr_slots * NR_PC, sizeof(*sf->hc));
	sf->slot_alloc = calloc(sf->nr_slots, sizeof(*sf->slot_alloc));
	sf->tables = calloc(NR_MMS * sf->nr_2m, sizeof(*sf->tables));
	if (!sf->model || !sf->pc || !sf->hc || !sf->slot_alloc || !sf->tables)
		fail("setup: out of memory");
	for (uint64_t i = 0; i < nr_content * NR_PC; i++)
		atomic_init(&sf->pc[i], 0);
	for (uint64_t i = 0; i < sf->nr_slots * NR_PC; i++)
		atomic_init(&sf->hc[i], 0);
	for (uint64_t i = 0; i < sf->nr_slots; i++)
		atomic_init(&sf->slot_alloc[i], false);
	for (uint64_t i = 0; i < NR_MMS * sf->nr_2m; i++)
		atomic_init(&sf->tables[i], false);
	for (uint64_t i = 0; i < nr_content; i++)
		sf->model[i].shared = shared;
}

/*
 * -V: a view of @sf through every mm, where the policy allows one.
 * Return: 0, or the error of gmem_mm_view() that means no views here.
 */
static int views_setup(struct sfile *sf)
{
	int r;

	if (sf->pol == GMEM_POLICY_4K)
		return 0;
	sf->view_attr = calloc(sf->nr_pages, sizeof(*sf->view_attr));
	sf->poisoned = calloc(sf->nr_pages, sizeof(*sf->poisoned));
	if (!sf->view_attr || !sf->poisoned)
		fail("setup: out of memory");
	for (uint64_t pg = 0; pg < sf->nr_pages; pg++) {
		pthread_mutex_lock(&sf->gf->lock);
		atomic_init(&sf->view_attr[pg], page_is_shared(sf->gf, pg));
		pthread_mutex_unlock(&sf->gf->lock);
		atomic_init(&sf->poisoned[pg], false);
	}
	for (int mi = 0; mi < NR_MMS; mi++) {
		void *a = NULL;

		r = gmem_mm_view(mms[mi], sf->f, &a);
		if (r == -ENOSYS || r == -EPERM || r == -EOPNOTSUPP)
			return r;
		must(r, "view");
		sf->view[mi] = a;
	}
	return 0;
}

static void file_free(struct sfile *sf)
{
	free(sf->model);
	free(sf->pc);
	free(sf->hc);
	free(sf->slot_alloc);
	free(sf->tables);
	free(sf->view_attr);
	free(sf->poisoned);
	free(sf->lt_held);
	free(sf->lt_end);
	free(sf->blk_held);
	free(sf->blk_end);
}

/*
 * -V: views of every file that can have them, and the means to judge
 * their accesses; or, where this process cannot have views, exit 77
 * (skipped) with the reason, everything released first.
 */
static void views_start(void)
{
	const char *why = NULL;
	int r = 0;

	pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		why = "cannot read /proc/self/pagemap";
	for (int k = 0; !why && k < nr_files; k++)
		r = views_setup(&files[k]);
	if (!why && r)
		why = "no userfaultfd with minor faults on shmem and UFFDIO_POISON (Linux 6.6), or not allowed (root or vm.unprivileged_userfaultfd=1)";
	if (why) {
		printf("stress: -V: host views unavailable: %s%s%s\n", why,
		       r ? ": gmem_mm_view: " : "", r ? res_name(r) : "");
		fflush(stdout);
		gmem_pool_destroy(pool);
		for (int k = 0; k < nr_files; k++)
			file_free(&files[k]);
		if (pagemap_fd >= 0)
			close(pagemap_fd);
		exit(77);
	}
	install_fault_handlers();
}

static void usage(void)
{
	fprintf(stderr,
		"usage: stress [-s SEED] [-t THREADS] [-d SECONDS] [-g 2M|1G] [-P] [-i PERMILLE] [-A] [-S] [-V] [-b memfd|hugetlb|auto] [-L REFS] [-p POLICY[,POLICY...]]\n"
		"       policies: 4k, a, b-eager, b-lazy, b-adaptive (default: all)\n");
	exit(2);
}

/* -p: a comma-separated list of policy names.  Return: 0, or -1. */
static int parse_pols(const char *arg)
{
	char buf[128], *save = NULL;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	opt.pols = 0;
	for (char *w = strtok_r(buf, ",", &save); w;
	     w = strtok_r(NULL, ",", &save)) {
		int p = 0;

		while (p < NR_POL && strcmp(w, pol_names[p]))
			p++;
		if (p == NR_POL)
			return -1;
		opt.pols |= 1U << p;
	}
	return opt.pols ? 0 : -1;
}

static void parse(int argc, char **argv)
{
	bool have_seed = false;
	char *end;
	int c;

	while ((c = getopt(argc, argv, "s:t:d:g:Pi:ASVb:L:p:h")) != -1) {
		switch (c) {
		case 's':
			opt.seed = strtoull(optarg, &end, 0);
			if (*end)
				usage();
			have_seed = true;
			break;
		case 't':
			opt.threads = atoi(optarg);
			if (opt.threads < 1 || opt.threads > MAX_THREADS)
				usage();
			break;
		case 'd':
			opt.secs = strtod(optarg, &end);
			if (*end || opt.secs < 0)
				usage();
			break;
		case 'g':
			if (!strcmp(optarg, "2M") || !strcmp(optarg, "2m"))
				opt.psize = GMEM_2M;
			else if (!strcmp(optarg, "1G") || !strcmp(optarg, "1g"))
				opt.psize = GMEM_1G;
			else
				usage();
			break;
		case 'P':
			opt.poison = true;
			break;
		case 'i':
			opt.permille = (unsigned int)strtoul(optarg, &end, 0);
			if (*end || opt.permille > 1000)
				usage();
			break;
		case 'A':
			opt.abort_on_fail = true;
			break;
		case 'S':
			opt.strict_docs = true;
			break;
		case 'V':
			opt.views = true;
			break;
		case 'L':
			opt.ref_limit = atoi(optarg);
			if (opt.ref_limit < 4 * GUP_PIN_COUNTING_BIAS)
				usage();
			break;
		case 'p':
			if (parse_pols(optarg))
				usage();
			break;
		case 'b':
			if (!strcmp(optarg, "memfd"))
				opt.backing = GMEM_BACKING_MEMFD;
			else if (!strcmp(optarg, "hugetlb"))
				opt.backing = GMEM_BACKING_HUGETLB;
			else if (!strcmp(optarg, "auto"))
				opt.backing = GMEM_BACKING_AUTO;
			else
				usage();
			break;
		default:
			usage();
		}
	}
	/* a view's first touch past the limit would be a real SIGBUS */
	if (optind != argc || (opt.ref_limit && opt.views))
		usage();
	if (!have_seed)
		opt.seed = mix64((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32)) %
			   1000000000ULL;
}

int main(int argc, char **argv)
{
	pthread_rwlockattr_t ra;
	struct gmem_stats s;
	int64_t live0;
	uint64_t total = 0, reserved = 0, sum[NR_ST] = { 0 }, t_end, next;
	uint64_t interval = 200000000ULL, injected = 0;
	int r;

	parse(argc, argv);
	printf("stress: seed=%" PRIu64 " threads=%d duration=%g\n", opt.seed,
	       opt.threads, opt.secs);
	fflush(stdout);

	hp = opt.psize >> PAGE_SHIFT;
	if (opt.psize == GMEM_2M) {
		nr_blocks = 1;
		blocks[0] = 0;
		cpb = 192;
	} else {
		nr_blocks = 4;
		blocks[0] = 0;
		blocks[1] = 1;
		blocks[2] = 2;
		blocks[3] = PTRS - 1;	/* the last 2M block of the 1G page */
		cpb = 96;
	}
	nr_content = nr_blocks * cpb;
	poison_cap = opt.poison ? 8 + 2 * (unsigned int)opt.threads : 0;

	live0 = gmem_alloc_live_bytes();
	/* Two huge pages for each huge-policy file, plus room for the
	 * pinned pieces of punched pages and for pages poison retires. */
	for (int p = 0; p < NR_POL; p++)
		if ((opt.pols & (1U << p)) && POL_OF(p) != GMEM_POLICY_4K)
			reserved += 2 * 2;
	/* + 2: the closer thread's file of one huge page, which may leave
	 * detached (closed while pinned) before its pins go */
	total = reserved + (uint64_t)opt.threads * MAX_PINS + poison_cap + 4 + 2;
	/* Views need a plain memfd: no forced hugetlb under -V. */
	must(opt.views ? gmem_pool_create(opt.psize, total, opt.backing, &pool) :
	     testpool_create(opt.psize, total, opt.backing, &pool),
	     "pool create");
	printf("stress: pool of %" PRIu64 " %s pages on %s\n", total,
	       opt.psize == GMEM_1G ? "1G" : "2M",
	       gmem_pool_backing(pool) == GMEM_BACKING_HUGETLB ? "hugetlb" :
	       "memfd");
	fflush(stdout);
	for (int p = 0; p < NR_POL; p++) {
		if (!(opt.pols & (1U << p)))
			continue;
		content_files[nr_pols++] = &files[nr_files++];
		file_setup(&files[nr_files - 1], POL_OF(p), true,
			   ((opt.seed >> (2 * p)) & 3) != 0);
	}
	for (int p = 0, k = 0; p < NR_POL; p++) {
		if (!(opt.pols & (1U << p)))
			continue;
		chaos_files[k++] = &files[nr_files++];
		file_setup(&files[nr_files - 1], POL_OF(p), false,
			   ((opt.seed >> (2 * p + 10)) & 1) != 0);
	}
	must(gmem_mm_create(pool, NULL, &mms[0]), "mm create");
	for (int k = 0; k < nr_files; k++)
		must(gmem_mmap(mms[0], files[k].f), "mmap");
	/* The second mm inherits the mappings, as after fork(). */
	must(gmem_mm_create(pool, mms[0], &mms[1]), "mm fork");
	r = gmem_mmap(mms[1], files[0].f);
	expect_res(r, RES_EEXIST, "second mmap", &files[0], 0, 0);
	if (opt.views)
		views_start();

	for (int t = 0; t < opt.threads; t++) {
		struct thr *th = &thr[t];

		th->id = t;
		th->rng = mix64(opt.seed * 0x100000001b3ULL + (uint64_t)t);
		th->own = calloc(nr_content, sizeof(*th->own));
		if (!th->own)
			fail("setup: out of memory");
		for (uint64_t i = 0; i < nr_content; i++)
			if (owner_of(i) == t)
				th->own[th->nr_own++] = i;
	}

	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra,
			PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&world, &ra);
	pthread_rwlockattr_destroy(&ra);

	gmem_test_hooks.convert_commit = hook_commit;
	gmem_test_hooks.drain_wait = hook_drain_wait;
	if (opt.ref_limit)
		gmem_test_set_ref_limit(opt.ref_limit);
	must(gmem_mm_create(pool, NULL, &closer_mm), "closer mm");
	if (opt.permille)
		gmem_inject_fail_random(opt.permille, opt.seed);

	for (int t = 0; t < opt.threads; t++)
		if (pthread_create(&thr[t].th, NULL, worker, &thr[t]))
			fail("pthread_create");
	if (pthread_create(&checker_th, NULL, checker, NULL) ||
	    pthread_create(&closer_th, NULL, closer, NULL))
		fail("pthread_create");
	t_end = now_ns() + (uint64_t)(opt.secs * 1e9);
	next = now_ns() + interval;
	for (uint64_t now = now_ns(); now < t_end; now = now_ns()) {
		uint64_t left = MIN(t_end, next) - now;
		struct timespec ts = { 0, (long)MIN(left, 10000000ULL) };

		nanosleep(&ts, NULL);
		if (now_ns() >= next && now_ns() < t_end) {
			uint64_t took = world_check("during the run");

			/* Checks take at most a fifth of the run. */
			interval = MAX(200000000ULL, 4 * took);
			next = now_ns() + interval;
		}
	}
	atomic_store(&stop, true);
	for (int t = 0; t < opt.threads; t++)
		pthread_join(thr[t].th, NULL);
	pthread_join(checker_th, NULL);
	pthread_join(closer_th, NULL);
	gmem_test_hooks.drain_wait = NULL;
	gmem_test_set_ref_limit(0);
	self_id = -1;
	injected = gmem_inject_injected();
	gmem_inject_reset();
	opt.permille = 0;	/* from here on, every allocation succeeds */

	/* The threads stopped: check, unpin everything, check again. */
	world_check("at the end");
	for (int t = 0; t < opt.threads; t++)
		while (thr[t].nr_pins)
			release_pin(&thr[t], thr[t].nr_pins - 1);
	run_gmem_check("after unpinning everything");
	check_models("after unpinning everything");
	must(gmem_stats(pool, NULL, &s), "stats");
	if (s.pins)
		fail("%llu pages still pinned after unpinning everything",
		     ull(s.pins));

	/* Close every file: everything goes back to the pool. */
	for (int k = 0; k < nr_files; k++) {
		struct sfile *sf = &files[k];
		uint64_t id;
		uint8_t val;

		must(gmem_file_close(sf->f), "close");
		expect_res(gmem_file_close(sf->f), RES_EBADF, "second close", sf, 0, 0);
		expect_res(gmem_convert(sf->f, 0, PAGE_SIZE, GMEM_PRIVATE, 0, 0, NULL),
			   RES_EBADF, "convert after close", sf, 0, 1);
		expect_res(gmem_pin(mms[0], sf->f, 0, PAGE_SIZE, 0, &id, NULL),
			   RES_EBADF, "pin after close", sf, 0, 1);
		expect_res(gmem_host_read(mms[1], sf->f, 0, &val), RES_EBADF,
			   "host read after close", sf, 0, 1);
	}
	run_gmem_check("after closing every file");
	must(gmem_stats(pool, NULL, &s), "stats");
	if (s.pool_free != s.pool_total || s.pool_resv || s.pins || s.host_ptes ||
	    s.folios_1g || s.folios_2m || s.folios_4k || s.guest_1g ||
	    s.guest_2m || s.guest_4k || s.iommu_1g || s.iommu_2m || s.iommu_4k)
		fail("after closing every file: pool_free %llu pool_total %llu resv %llu pins %llu host_ptes %llu folios %llu/%llu/%llu guest %llu iommu %llu",
		     ull(s.pool_free), ull(s.pool_total), ull(s.pool_resv),
		     ull(s.pins), ull(s.host_ptes), ull(s.folios_1g),
		     ull(s.folios_2m), ull(s.folios_4k),
		     ull(s.guest_1g + s.guest_2m + s.guest_4k),
		     ull(s.iommu_1g + s.iommu_2m + s.iommu_4k));
	if (s.pool_total + s.pool_retired != total)
		fail("pool_total %llu + retired %llu != %llu", ull(s.pool_total),
		     ull(s.pool_retired), ull(total));
	testpool_destroy(pool);
	if (pagemap_fd >= 0)
		close(pagemap_fd);
	if (gmem_alloc_live_bytes() != live0)
		fail("gmem metadata: %lld bytes live after the pool went, %lld before it",
		     (long long)gmem_alloc_live_bytes(), (long long)live0);

	for (int t = 0; t < opt.threads; t++) {
		for (int k = 0; k < NR_ST; k++)
			sum[k] += thr[t].st[k];
		free(thr[t].own);
	}
	for (int k = 0; k < nr_files; k++)
		file_free(&files[k]);
	pthread_rwlock_destroy(&world);

	/* the lock-free pin path must have been exercised, not only the
	 * locked one (a pin of one mapped page takes it) */
	if (sum[ST_UNPINS] >= 200 && !sum[ST_FAST_PINS])
		fail("%llu pins unpinned, none taken on the fast path",
		     ull(sum[ST_UNPINS]));
	printf("stress: seed=%" PRIu64 " %s=%llu threads=%d", opt.seed,
	       st_names[ST_OPS], ull(sum[ST_OPS]), opt.threads);
	for (int k = 1; k < NR_ST; k++)
		printf(" %s=%llu", st_names[k], ull(sum[k]));
	printf(" commits=%llu private_pages_committed=%llu shatters=%llu collapses=%llu zaps=%llu retired=%llu returned=%llu injected=%llu world_checks=%llu pagemap_pages_checked=%llu checker_runs=%llu closer_rounds=%llu closed_while_pinned=%llu\n",
	       ull(atomic_load(&hook_calls)), ull(atomic_load(&hook_private)),
	       ull(s.shatters), ull(s.collapses), ull(s.zaps),
	       ull(s.pool_retired), ull(s.pool_returned), ull(injected),
	       ull(world_checks), ull(atomic_load(&pagemap_pages)),
	       ull(checker_runs), ull(closer_runs), ull(closer_pinned_closes));
	return 0;
}
