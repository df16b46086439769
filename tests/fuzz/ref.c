// SPDX-License-Identifier: MIT
/*
 * ref.c - the naive reference model of gmem (see ref.h).
 *
 * Written from the documents only.  The sentence each rule comes from is
 * quoted where the rule is not obvious, so that a disagreement with
 * libgmem can be decided from the text.  Speed is not a goal beyond
 * keeping a 1 GiB file usable: every scan is linear in the pages it looks
 * at, none is quadratic.
 *
 * State:
 * - per 4 KiB page (struct rpage): attribute, poison, the host entries
 *   (a bit per mm), pins on the page's current memory, the level of the
 *   guest entry covering it, and whether an `iommu` range covered it;
 * - per slot (struct rslot), i.e. per huge page of the file, or per 4 KiB
 *   page under policy 4k: the memory instance allocated there (0: a hole),
 *   whether the file still holds a reservation for it, and the folio
 *   structure (intact, or split; on 1 GiB pages, which 2 MiB pieces are
 *   split to 4 KiB);
 * - content as a list of (offset, byte) written, anything else reads 0;
 * - under b-adaptive, the merge hysteresis: a note per page (a conversion
 *   or an unpin asked for merges there), the file's merge clock and delay,
 *   and per slot when it was last touched and its backoff;
 * - pins as records that remember which memory instance each page was;
 *   memory that left its file while pinned waits in a detached list.
 *
 * Pool figures are recomputed from those on each use: pool_free is the
 * pool's pages minus the allocated and the detached huge pages, pool_resv
 * the reserved slots of open files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

#define PG 4096ULL
#define P2M 512ULL		/* pages in 2 MiB */
#define P1G 262144ULL		/* pages in 1 GiB */
#define MAX_MMS 8		/* the model's limit: a bit per mm in a byte */
#define NAME_MAX_LEN 32

enum { LV_NONE, LV_4K, LV_2M, LV_1G };

static uint64_t lv_pages(int lv)
{
	return lv == LV_1G ? P1G : lv == LV_2M ? P2M : 1;
}

/* Counters, per file and over the run. */
enum { C_SHATTERS, C_COLLAPSES, C_CONVERSIONS, C_EAGAIN, C_EBUSY, C_ZAPS,
       NR_COUNTERS };

struct rpage {
	uint8_t shared;
	uint8_t poison;
	uint8_t glevel;		/* LV_* of the guest entry over this page */
	uint8_t iorange;	/* inside a range given to `iommu` */
	uint8_t ptes;		/* bit i: mm i has a host entry for it */
	uint8_t nexcl;		/* exclusive pins on the current memory */
	uint16_t npin, nlong;	/* pins, long-term pins on it */
};

struct rslot {
	uint64_t inst;		/* memory instance; 0: a hole */
	/*
	 * The file's reservation for this huge page is a token: free in the
	 * slot (@reserved: reserved, not allocated), held by the memory
	 * allocated there (@tok), held by that memory after it left pinned
	 * (rdetached.tok), or gone with a retired page.
	 */
	bool reserved;
	bool tok;
	bool intact;		/* one huge folio */
	bool *piece4k;		/* 1G slots: 2M piece i is split to 4K */
	/* b-adaptive: the merge clock when this memory was last touched
	 * (allocated, or a note over it), and its backoff */
	uint32_t touched;
	uint8_t backoff;
};

struct rbyte {
	uint64_t off;
	uint8_t val;
};

struct rfile {
	char name[NAME_MAX_LEN];
	bool open;
	enum ref_policy pol;
	uint64_t size, npages;
	uint64_t spp;		/* pages per slot */
	uint64_t nslots;
	struct rpage *pg;
	struct rslot *slot;
	struct rbyte *ct;
	size_t nct, capct;
	uint64_t c[NR_COUNTERS];
	/* b-adaptive: the merge delay D, the merge clock (32 bits, as
	 * DECISIONS.md counts it) and the pages noted for a merge */
	uint32_t delay;
	uint32_t clock;
	uint8_t *noted;
};

struct rmm {
	char name[NAME_MAX_LEN];
	struct rfile **maps;
	size_t nmaps;
};

/* Memory that left its file while pinned ("defers both until its last
 * reference drops"). */
struct rdetached {
	uint64_t inst;
	struct rfile *f;
	uint64_t slot;
	uint64_t npins;
	bool poisoned;
	bool tok;		/* it holds the slot's reservation */
};

struct rpin {
	char name[NAME_MAX_LEN];
	struct rfile *f;
	uint64_t p0, n;
	uint64_t *inst;		/* the memory each page was when pinned */
	bool longterm, exclusive;
};

struct ref {
	bool has_pool, no_backing;
	uint64_t psize, hpp, count, retired;
	uint64_t next_inst;
	struct rfile **files;	/* every file ever created, closed ones too */
	size_t nfiles;
	struct rmm *mms;
	size_t nmms;
	struct rdetached *det;
	size_t ndet;
	struct rpin *pins;
	size_t npins;
	uint64_t c[NR_COUNTERS];
	/* the folios a b-adaptive long-term pin zapped entries of, as
	 * (first page, pages): at most two huge pages and two 2M pieces in
	 * each */
	uint64_t zap_p0[6], zap_n[6];
	int nzap;
};

const char *const ref_stat_keys[REF_NR_KEYS] = {
	"collapses", "conversions", "eagain", "ebusy",
	"folios_1g", "folios_2m", "folios_4k",
	"guest_1g", "guest_2m", "guest_4k", "host_ptes",
	"iommu_1g", "iommu_2m", "iommu_4k", "pins",
	"pool_free", "pool_resv", "pool_retired", "pool_total",
	"shatters", "vmemmap_bytes", "zaps",
};

enum { K_COLLAPSES, K_CONVERSIONS, K_EAGAIN, K_EBUSY, K_F1G, K_F2M, K_F4K,
       K_G1G, K_G2M, K_G4K, K_HOST_PTES, K_I1G, K_I2M, K_I4K, K_PINS,
       K_POOL_FREE, K_POOL_RESV, K_POOL_RETIRED, K_POOL_TOTAL, K_SHATTERS,
       K_VMEMMAP, K_ZAPS };

/* ------------------------------------------------------------ results */

static const struct {
	int err;
	const char *name;
} errnames[] = {
	{ EINVAL, "EINVAL" }, { ENOENT, "ENOENT" }, { EEXIST, "EEXIST" },
	{ ENOMEM, "ENOMEM" }, { EFAULT, "EFAULT" }, { EHWPOISON, "EHWPOISON" },
	{ EOPNOTSUPP, "EOPNOTSUPP" }, { EBUSY, "EBUSY" }, { EAGAIN, "EAGAIN" },
	{ ENXIO, "ENXIO" }, { EBADF, "EBADF" },
};

const char *ref_errno_name(int err)
{
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].err == err)
			return errnames[i].name;
	return "E?";
}

void ref_res_str(const struct ref_res *res, char *buf, size_t len)
{
	switch (res->kind) {
	case REF_OK:
		snprintf(buf, len, "ok");
		break;
	case REF_SIGBUS:
		snprintf(buf, len, "sigbus");
		break;
	case REF_FAULT:
		snprintf(buf, len, "fault");
		break;
	case REF_HWPOISON:
		snprintf(buf, len, "hwpoison");
		break;
	case REF_BYTE:
		snprintf(buf, len, "0x%02x", res->byte);
		break;
	case REF_ERR:
		if (res->has_at)
			snprintf(buf, len, "err %s at=0x%" PRIx64,
				 ref_errno_name(res->err), res->at);
		else
			snprintf(buf, len, "err %s", ref_errno_name(res->err));
		break;
	}
}

static struct ref_res ok(void)
{
	return (struct ref_res){ .kind = REF_OK };
}

static struct ref_res err(int e)
{
	return (struct ref_res){ .kind = REF_ERR, .err = e };
}

static struct ref_res err_at(int e, uint64_t at)
{
	return (struct ref_res){ .kind = REF_ERR, .err = e, .has_at = true,
				 .at = at };
}

static struct ref_res kind(enum ref_kind k)
{
	return (struct ref_res){ .kind = k };
}

static struct ref_res byte(uint8_t b)
{
	return (struct ref_res){ .kind = REF_BYTE, .byte = b };
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p) {
		fprintf(stderr, "ref: out of memory\n");
		abort();
	}
	return p;
}

static void *xrealloc(void *p, size_t sz)
{
	p = realloc(p, sz ? sz : 1);
	if (!p) {
		fprintf(stderr, "ref: out of memory\n");
		abort();
	}
	return p;
}

/* ------------------------------------------------------------- lookups */

static struct rfile *file_find(struct ref *r, const char *name)
{
	for (size_t i = 0; i < r->nfiles; i++)
		if (r->files[i]->open && !strcmp(r->files[i]->name, name))
			return r->files[i];
	return NULL;
}

static int mm_find(struct ref *r, const char *name)
{
	for (size_t i = 0; i < r->nmms; i++)
		if (!strcmp(r->mms[i].name, name))
			return (int)i;
	return -1;
}

static struct rpin *pin_find(struct ref *r, const char *name)
{
	for (size_t i = 0; i < r->npins; i++)
		if (!strcmp(r->pins[i].name, name))
			return &r->pins[i];
	return NULL;
}

static bool mapped(struct ref *r, int mm, struct rfile *f)
{
	for (size_t i = 0; i < r->mms[mm].nmaps; i++)
		if (r->mms[mm].maps[i] == f)
			return true;
	return false;
}

static bool huge(const struct rfile *f)
{
	return f->pol != REF_4K;
}

/* "`b-adaptive` is `b-lazy` ... with two changes" (DECISIONS.md): it
 * splits the same way. */
static bool lazy(const struct rfile *f)
{
	return f->pol == REF_B_LAZY || f->pol == REF_B_ADAPTIVE;
}

/* "Offsets and lengths must be 4K-aligned and inside the file" (non-empty). */
static bool range_ok(const struct rfile *f, uint64_t off, uint64_t len)
{
	return off % PG == 0 && len % PG == 0 && len && off < f->size &&
	       len <= f->size - off;
}

static uint64_t slot_of(const struct rfile *f, uint64_t p)
{
	return p / f->spp;
}

static bool allocated(const struct rfile *f, uint64_t p)
{
	return f->slot[slot_of(f, p)].inst != 0;
}

static void count(struct ref *r, struct rfile *f, int c, uint64_t n)
{
	f->c[c] += n;
	r->c[c] += n;
}

/* ---------------------------------------------------------------- pool */

static uint64_t pool_total(const struct ref *r)
{
	return r->count - r->retired;
}

/* "pool_free counts huge pages that hold no file's data (reserved or not)" */
static uint64_t pool_free(const struct ref *r)
{
	uint64_t used = 0;

	for (size_t i = 0; i < r->nfiles; i++) {
		const struct rfile *f = r->files[i];

		if (!f->open || !huge(f))
			continue;
		for (uint64_t s = 0; s < f->nslots; s++)
			used += f->slot[s].inst != 0;
	}
	for (size_t i = 0; i < r->ndet; i++)
		used += huge(r->det[i].f);
	if (used > pool_total(r)) {
		fprintf(stderr, "ref: more pages used than the pool has\n");
		abort();
	}
	return pool_total(r) - used;
}

/* "pool_resv those reserved by files but not yet allocated" */
static uint64_t pool_resv(const struct ref *r)
{
	uint64_t n = 0;

	for (size_t i = 0; i < r->nfiles; i++) {
		const struct rfile *f = r->files[i];

		if (!f->open || !huge(f))
			continue;
		for (uint64_t s = 0; s < f->nslots; s++)
			n += f->slot[s].reserved;
	}
	return n;
}

/* Free pages that no file has reserved. */
static uint64_t pool_unreserved(const struct ref *r)
{
	uint64_t free = pool_free(r), resv = pool_resv(r);

	if (resv > free) {
		fprintf(stderr, "ref: more pages reserved than free\n");
		abort();
	}
	return free - resv;
}

/* ------------------------------------------------------------- content */

static uint8_t ct_get(const struct rfile *f, uint64_t off)
{
	for (size_t i = 0; i < f->nct; i++)
		if (f->ct[i].off == off)
			return f->ct[i].val;
	return 0;
}

static void ct_set(struct rfile *f, uint64_t off, uint8_t val)
{
	for (size_t i = 0; i < f->nct; i++) {
		if (f->ct[i].off == off) {
			f->ct[i].val = val;
			return;
		}
	}
	if (f->nct == f->capct) {
		f->capct = f->capct ? 2 * f->capct : 16;
		f->ct = xrealloc(f->ct, f->capct * sizeof(*f->ct));
	}
	f->ct[f->nct++] = (struct rbyte){ off, val };
}

/* Zeroes the pages [p0, p1). */
static void ct_zero(struct rfile *f, uint64_t p0, uint64_t p1)
{
	size_t j = 0;

	for (size_t i = 0; i < f->nct; i++) {
		uint64_t p = f->ct[i].off / PG;

		if (p >= p0 && p < p1)
			continue;
		f->ct[j++] = f->ct[i];
	}
	f->nct = j;
}

/* ---------------------------------------------------------- predicates */

/* Every page of [p0, p0 + n) has the attribute of the first. */
static bool one_attr(const struct rfile *f, uint64_t p0, uint64_t n)
{
	for (uint64_t p = p0; p < p0 + n; p++)
		if (f->pg[p].shared != f->pg[p0].shared)
			return false;
	return true;
}

static bool no_poison(const struct rfile *f, uint64_t p0, uint64_t n)
{
	for (uint64_t p = p0; p < p0 + n; p++)
		if (f->pg[p].poison)
			return false;
	return true;
}

/* "one attribute, no poisoned page, no host entry and no pin" */
static bool mergeable(const struct rfile *f, uint64_t p0, uint64_t n)
{
	if (!one_attr(f, p0, n))
		return false;
	for (uint64_t p = p0; p < p0 + n; p++)
		if (f->pg[p].poison || f->pg[p].ptes || f->pg[p].npin)
			return false;
	return true;
}

/* ------------------------------------------------------ guest entries */

/* Removes the guest entry covering @p, whole (a 1G entry goes whole). */
static void guest_drop_at(struct rfile *f, uint64_t p)
{
	int lv = f->pg[p].glevel;
	uint64_t n, b;

	if (!lv)
		return;
	n = lv_pages(lv);
	b = p / n * n;
	for (uint64_t q = b; q < b + n; q++)
		f->pg[q].glevel = LV_NONE;
}

/* Removes every guest entry that overlaps [p0, p1). */
static void guest_drop_range(struct rfile *f, uint64_t p0, uint64_t p1)
{
	for (uint64_t p = p0; p < p1; p++)
		guest_drop_at(f, p);
}

/* A merge "removes the smaller guest mappings inside the merged block". */
static void guest_drop_below(struct rfile *f, uint64_t p0, uint64_t n, int lv)
{
	for (uint64_t p = p0; p < p0 + n; p++)
		if (f->pg[p].glevel && f->pg[p].glevel < lv)
			f->pg[p].glevel = LV_NONE;
}

/*
 * A cache of block checks valid for one command (a `guest off len` over a
 * 1 GiB file would otherwise check the same 1 GiB block for every page);
 * attributes and poison do not change while a guest access runs.
 */
struct blkmemo {
	uint64_t start[4];
	bool valid[4], ok[4];
};

static bool guest_block_ok(const struct rfile *f, int lv, uint64_t b,
			   struct blkmemo *m)
{
	uint64_t n = lv_pages(lv);
	bool ok;

	if (m->valid[lv] && m->start[lv] == b)
		return m->ok[lv];
	ok = one_attr(f, b, n) && no_poison(f, b, n);
	m->valid[lv] = true;
	m->start[lv] = b;
	m->ok[lv] = ok;
	return ok;
}

/*
 * "a guest access to a page with no entry maps the largest aligned block
 * (1G, 2M, 4K; 4K only under policy=4k; at most the pool's page size) that
 * holds the page, lies in one huge page, has one attribute and no poisoned
 * page; smaller entries inside it are replaced; a page that already has an
 * entry keeps it."
 */
static void guest_map(struct ref *r, struct rfile *f, uint64_t p,
		      struct blkmemo *m)
{
	int top, lv;

	if (f->pg[p].glevel)
		return;
	top = f->pol == REF_4K ? LV_4K : r->hpp == P1G ? LV_1G : LV_2M;
	for (lv = top; lv > LV_4K; lv--) {
		uint64_t n = lv_pages(lv), b = p / n * n;

		if (guest_block_ok(f, lv, b, m))
			break;
	}
	{
		uint64_t n = lv_pages(lv), b = p / n * n;

		for (uint64_t q = b; q < b + n; q++)
			f->pg[q].glevel = (uint8_t)lv;
	}
}

/* ------------------------------------------------------ folio structure */

/* b-lazy splits "only as far as needed (1G -> 2M pieces, then each mixed
 * 2M -> 4K)"; "an intact huge folio always has one attribute". */
static void lazy_split(struct ref *r, struct rfile *f, uint64_t s)
{
	struct rslot *sl = &f->slot[s];
	uint64_t p0 = s * f->spp;

	if (!sl->inst || !lazy(f))
		return;
	if (f->spp == P2M) {
		if (sl->intact && !one_attr(f, p0, P2M)) {
			sl->intact = false;
			count(r, f, C_SHATTERS, 1);
		}
		return;
	}
	if (sl->intact) {
		if (one_attr(f, p0, P1G))
			return;
		sl->intact = false;
		count(r, f, C_SHATTERS, 1);
		for (uint64_t i = 0; i < P1G / P2M; i++)
			sl->piece4k[i] = false;
	}
	for (uint64_t i = 0; i < P1G / P2M; i++) {
		if (!sl->piece4k[i] && !one_attr(f, p0 + i * P2M, P2M)) {
			sl->piece4k[i] = true;
			count(r, f, C_SHATTERS, 1);
		}
	}
}

/*
 * The merges of slot @s's blocks over pages [a, b) of it: each split 2M
 * piece there (the slot itself on 2M pages) that "has one attribute, no
 * poisoned page, no host entry and no pin" merges (4K -> 2M first), then
 * the 1G page if all its pieces are intact and the same holds for it; a
 * merge "removes the smaller guest mappings inside the merged block".
 * Return: whether anything merged.
 */
static bool merge_in(struct ref *r, struct rfile *f, uint64_t s, uint64_t a,
		     uint64_t b)
{
	struct rslot *sl = &f->slot[s];
	uint64_t p0 = s * f->spp;
	bool merged = false, all2m = true;

	if (!sl->inst || sl->intact)
		return false;
	if (f->spp == P2M) {
		if (!mergeable(f, p0, P2M))
			return false;
		sl->intact = true;
		count(r, f, C_COLLAPSES, 1);
		guest_drop_below(f, p0, P2M, LV_2M);
		return true;
	}
	for (uint64_t i = (a - p0) / P2M; i <= (b - 1 - p0) / P2M; i++) {
		uint64_t q = p0 + i * P2M;

		if (sl->piece4k[i] && mergeable(f, q, P2M)) {
			sl->piece4k[i] = false;
			count(r, f, C_COLLAPSES, 1);
			guest_drop_below(f, q, P2M, LV_2M);
			merged = true;
		}
	}
	for (uint64_t i = 0; i < P1G / P2M; i++)
		all2m = all2m && !sl->piece4k[i];
	if (all2m && mergeable(f, p0, P1G)) {
		sl->intact = true;
		count(r, f, C_COLLAPSES, 1);
		guest_drop_below(f, p0, P1G, LV_1G);
		merged = true;
	}
	return merged;
}

/*
 * b-lazy "merges a split block (4K -> 2M first, then 2M -> 1G) as soon as
 * it has one attribute, no poisoned page, no host entry and no pin -- at
 * the end of any command, an unpin included".
 */
static void lazy_merge(struct ref *r, struct rfile *f)
{
	for (uint64_t s = 0; s < f->nslots; s++)
		merge_in(r, f, s, s * f->spp, (s + 1) * f->spp);
}

/* ---------------------------------------------------------- b-adaptive */

/*
 * DECISIONS.md, "Policy b-adaptive": "Each huge page remembers when it was
 * last touched: by a conversion whose range overlaps it, or by an unpin of
 * a page in a split block of it (the events after which b-lazy would try a
 * merge)", and the file looks at "the blocks noted since (those b-lazy
 * would have tried)": a conversion's whole range, an unpin's whole range.
 * While merges wait (D > 0) a huge page ages as one ("merges them where
 * their huge page has not been touched"), and its noted blocks are looked
 * at as one: a note covers the huge pages it touches (the documents leave
 * the grain open; libgmem notes whole huge pages then, and so does the
 * model).  @touch: the note is a touch, which restarts the wait of the
 * memory there (a hole has none).
 */
static void adaptive_note(struct rfile *f, uint64_t p0, uint64_t p1,
			  bool touch)
{
	if (f->delay) {
		p0 = slot_of(f, p0) * f->spp;
		p1 = (slot_of(f, p1 - 1) + 1) * f->spp;
	}
	memset(f->noted + p0, 1, p1 - p0);
	if (!f->delay || !touch)
		return;
	for (uint64_t s = slot_of(f, p0); s <= slot_of(f, p1 - 1); s++)
		if (f->slot[s].inst)
			f->slot[s].touched = f->clock;
}

/* The most a page's wait doubles ("up to 16"). */
#define BACKOFF_MAX 16

/* "merges them where their huge page has not been touched for
 * D << backoff ticks", and "a wait is at most 2^31 conversions (ages are
 * 32-bit)": the 32-bit clock's difference is the age. */
static bool adaptive_aged(const struct rfile *f, const struct rslot *sl)
{
	uint32_t age = f->clock - sl->touched;
	uint64_t wait = (uint64_t)f->delay << sl->backoff;

	return age >= (wait < 1ULL << 31 ? wait : 1ULL << 31);
}

/*
 * Merges over the noted pages, one maximal run of noted pages inside a
 * slot at a time, in offset order (a note names a range of pages, and
 * touching ranges are one).  Notes on holes and on intact slots go:
 * nothing there can merge.
 *
 * @period, a period's end: a run in memory that has not aged keeps its
 * note for a later period; one in memory that has aged is looked at (and
 * its note goes, merged or not), and "Each merge in a huge page adds one
 * to its backoff (up to 16)": one per huge page and period end that
 * merged anything there.  Whether a period end that merges several blocks
 * of a 1 GiB page adds one or several the documents leave open ("a page
 * whose blocks merge and split again and again waits twice as long each
 * time"); libgmem adds one, and so does the model.
 *
 * Otherwise (D = 0: "merges at once, as b-lazy") every run is looked at,
 * and the backoff stays.
 */
static void adaptive_merge_noted(struct ref *r, struct rfile *f, bool period)
{
	for (uint64_t s = 0; s < f->nslots; s++) {
		struct rslot *sl = &f->slot[s];
		uint64_t end = (s + 1) * f->spp, a = s * f->spp, b;

		for (;; a = b) {
			while (a < end && !f->noted[a])
				a++;
			if (a == end)
				break;
			for (b = a; b < end && f->noted[b]; b++)
				;
			if (!sl->inst || sl->intact) {
				memset(f->noted + a, 0, b - a);
				continue;
			}
			if (period && !adaptive_aged(f, sl))
				continue;
			memset(f->noted + a, 0, b - a);
			if (merge_in(r, f, s, a, b) && period &&
			    sl->backoff < BACKOFF_MAX)
				sl->backoff++;
		}
	}
}

/*
 * "every gmem_convert() call on the file that finds pages to change (it
 * succeeds, or fails with EAGAIN or EBUSY) is one tick of the file's merge
 * clock ... Every D ticks the file looks at the blocks noted since".  The
 * conversion notes (and touches) its range first.
 */
static void adaptive_converted(struct ref *r, struct rfile *f, uint64_t p0,
			       uint64_t p1)
{
	if (f->pol != REF_B_ADAPTIVE)
		return;
	adaptive_note(f, p0, p1, true);
	if (f->delay && ++f->clock % f->delay == 0)
		adaptive_merge_noted(r, f, true);
}

/* Runs at the end of every command. */
static void end_command(struct ref *r)
{
	for (size_t i = 0; i < r->nfiles; i++) {
		struct rfile *f = r->files[i];

		if (!f->open)
			continue;
		if (f->pol == REF_B_LAZY)
			lazy_merge(r, f);
		else if (f->pol == REF_B_ADAPTIVE && !f->delay)
			adaptive_merge_noted(r, f, false);
	}
}

/* The folio holding page @p of an allocated slot, as [*start, +*n). */
static void folio_of(const struct rfile *f, uint64_t p, uint64_t *start,
		     uint64_t *n)
{
	const struct rslot *sl = &f->slot[slot_of(f, p)];
	uint64_t p0 = slot_of(f, p) * f->spp;

	if (f->pol == REF_4K || (!sl->intact && f->spp == P2M)) {
		*start = p;
		*n = 1;
	} else if (sl->intact) {
		*start = p0;
		*n = f->spp;
	} else if (!sl->piece4k[(p - p0) / P2M]) {
		*start = p0 + (p - p0) / P2M * P2M;
		*n = P2M;
	} else {
		*start = p;
		*n = 1;
	}
}

/* ---------------------------------------------------------- allocation */

/*
 * "Huge-page policies allocate whole huge pages, using the file's
 * reservation"; "Retired pages ... take the file's reservation for them
 * along: a later first use of that range draws from the unreserved free
 * pages, and gets ENOMEM ... if there are none" (DECISIONS.md).  The same
 * holds while a pinned piece is out: it has the reservation until it
 * returns.  Policy 4k "takes 4 KiB pages from outside the pool".
 */
static int alloc_slot(struct ref *r, struct rfile *f, uint64_t s)
{
	struct rslot *sl = &f->slot[s];

	if (sl->inst)
		return 0;
	if (huge(f)) {
		if (sl->reserved) {
			sl->reserved = false;
			sl->tok = true;
		} else if (!pool_unreserved(r)) {
			return -ENOMEM;
		} else {
			sl->tok = false;
		}
	}
	sl->inst = ++r->next_inst;
	switch (f->pol) {
	case REF_4K:
		break;
	case REF_A:
		sl->intact = true;
		break;
	case REF_B_EAGER:
		/* "splits each huge page to 4K when it is allocated (one
		 * shatter per huge page)"; 1G straight to 4K (DECISIONS.md) */
		sl->intact = false;
		if (sl->piece4k)
			for (uint64_t i = 0; i < P1G / P2M; i++)
				sl->piece4k[i] = true;
		count(r, f, C_SHATTERS, 1);
		break;
	case REF_B_LAZY:
	case REF_B_ADAPTIVE:
		/* "also when memory is allocated into an already mixed range" */
		sl->intact = true;
		lazy_split(r, f, s);
		/* new memory starts its wait now, with no backoff */
		sl->touched = f->clock;
		sl->backoff = 0;
		break;
	}
	return 0;
}

/* How many slots of [p0, p1) are holes that need an unreserved page. */
static uint64_t unreserved_needed(const struct rfile *f, uint64_t p0,
				  uint64_t p1)
{
	uint64_t n = 0;

	if (!huge(f))
		return 0;
	for (uint64_t s = slot_of(f, p0); s <= slot_of(f, p1 - 1); s++)
		n += !f->slot[s].inst && !f->slot[s].reserved;
	return n;
}

static void zap_page(struct ref *r, struct rfile *f, uint64_t p)
{
	uint64_t n = (uint64_t)__builtin_popcount(f->pg[p].ptes);

	if (n)
		count(r, f, C_ZAPS, n);
	f->pg[p].ptes = 0;
}

/* A detached page's last pin went: it returns to the pool, or retires. */
static void det_release(struct ref *r, size_t i)
{
	struct rdetached d = r->det[i];

	r->det[i] = r->det[--r->ndet];
	if (!huge(d.f))
		return;
	if (d.poisoned) {
		/* "on truncation its huge page is retired instead of
		 * returned" */
		r->retired++;
		return;
	}
	/* "the file keeps its reservation for it ... a piece that is still
	 * pinned defers both" (a closed file has released its reservation):
	 * the token goes back to the slot; if the slot was allocated again
	 * meanwhile (from the unreserved pages), to that memory. */
	if (d.tok && d.f->open) {
		struct rslot *sl = &d.f->slot[d.slot];

		if (sl->reserved || sl->tok) {
			fprintf(stderr, "ref: a slot with two reservations\n");
			abort();
		}
		if (sl->inst)
			sl->tok = true;
		else
			sl->reserved = true;
	}
}

/*
 * "Punching whole huge pages zaps every host, guest and IOMMU entry in them
 * and returns them; a pinned piece makes its huge page leave the file at
 * once (a hole) and return on the last unpin."  Poison goes with the memory
 * (DECISIONS.md); a poisoned huge page retires, taking its reservation.
 */
static void free_slot(struct ref *r, struct rfile *f, uint64_t s)
{
	struct rslot *sl = &f->slot[s];
	uint64_t p0 = s * f->spp, p1 = p0 + f->spp, npins = 0;
	bool poisoned = false;

	if (!sl->inst)
		return;
	for (uint64_t p = p0; p < p1; p++) {
		zap_page(r, f, p);
		guest_drop_at(f, p);
		poisoned = poisoned || f->pg[p].poison;
		f->pg[p].poison = 0;
		npins += f->pg[p].npin;
		f->pg[p].npin = f->pg[p].nlong = f->pg[p].nexcl = 0;
	}
	ct_zero(f, p0, p1);
	if (npins) {
		r->det = xrealloc(r->det, (r->ndet + 1) * sizeof(*r->det));
		r->det[r->ndet++] = (struct rdetached){
			.inst = sl->inst, .f = f, .slot = s, .npins = npins,
			.poisoned = poisoned, .tok = sl->tok,
		};
	} else if (huge(f)) {
		if (poisoned)
			r->retired++;		/* the token goes with it */
		else
			sl->reserved = sl->tok;	/* "the file keeps its
						 * reservation for it" */
	}
	sl->inst = 0;
	sl->tok = false;
	sl->intact = false;
	if (sl->piece4k)
		memset(sl->piece4k, 0, P1G / P2M * sizeof(bool));
}

/* ---------------------------------------------------------------- api */

struct ref *ref_new(void)
{
	return xcalloc(1, sizeof(struct ref));
}

static void file_free(struct rfile *f)
{
	if (f->slot)
		for (uint64_t s = 0; s < f->nslots; s++)
			free(f->slot[s].piece4k);
	free(f->slot);
	free(f->pg);
	free(f->ct);
	free(f->noted);
	free(f);
}

void ref_free(struct ref *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nfiles; i++)
		file_free(r->files[i]);
	free(r->files);
	for (size_t i = 0; i < r->nmms; i++)
		free(r->mms[i].maps);
	free(r->mms);
	for (size_t i = 0; i < r->npins; i++)
		free(r->pins[i].inst);
	free(r->pins);
	free(r->det);
	free(r);
}

struct ref_res ref_pool(struct ref *r, uint64_t page_size, uint64_t count,
			bool no_backing)
{
	if (r->has_pool)
		return err(EEXIST);
	if (page_size != 2 * 1024 * 1024ULL && page_size != 1ULL << 30)
		return err(EINVAL);
	r->has_pool = true;
	r->psize = page_size;
	r->hpp = page_size / PG;
	r->count = count;
	r->no_backing = no_backing;
	return ok();
}

/*
 * The trace's `merge_delay=N` "applies to b-adaptive only" (EINVAL before
 * the file is created); a b-adaptive file "starts with
 * GMEM_MERGE_DELAY_DEFAULT" (gmem.h).
 */
struct ref_res ref_file(struct ref *r, const char *name, uint64_t size,
			enum ref_policy pol, bool shared, int64_t merge_delay)
{
	struct rfile *f;

	if (!r->has_pool)
		return err(ENOENT);
	if (file_find(r, name))
		return err(EEXIST);
	if (merge_delay >= 0 && pol != REF_B_ADAPTIVE)
		return err(EINVAL);
	if (!size || size % r->psize)
		return err(EINVAL);
	if (pol != REF_4K && pool_unreserved(r) < size / r->psize)
		return err(ENOMEM);
	if (strlen(name) >= NAME_MAX_LEN)
		abort();

	f = xcalloc(1, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->open = true;
	f->pol = pol;
	f->size = size;
	f->npages = size / PG;
	f->spp = pol == REF_4K ? 1 : r->hpp;
	f->nslots = f->npages / f->spp;
	f->pg = xcalloc(f->npages, sizeof(*f->pg));
	f->slot = xcalloc(f->nslots, sizeof(*f->slot));
	if (pol == REF_B_ADAPTIVE) {
		f->noted = xcalloc(f->npages, 1);
		f->delay = merge_delay >= 0 ? (uint32_t)merge_delay :
					      REF_MERGE_DELAY_DEFAULT;
	}
	for (uint64_t p = 0; p < f->npages; p++)
		f->pg[p].shared = shared;
	for (uint64_t s = 0; s < f->nslots; s++) {
		f->slot[s].reserved = huge(f);
		if (huge(f) && r->hpp == P1G)
			f->slot[s].piece4k = xcalloc(P1G / P2M, sizeof(bool));
	}
	r->files = xrealloc(r->files, (r->nfiles + 1) * sizeof(*r->files));
	r->files[r->nfiles++] = f;
	end_command(r);
	return ok();
}

/* "close: ok (punches the whole file, then forgets the name)" and
 * "close also releases the file's reservation". */
struct ref_res ref_close(struct ref *r, const char *name)
{
	struct rfile *f = file_find(r, name);

	if (!f)
		return err(ENOENT);
	for (uint64_t s = 0; s < f->nslots; s++) {
		free_slot(r, f, s);
		f->slot[s].reserved = false;
		f->slot[s].tok = false;
	}
	for (uint64_t p = 0; p < f->npages; p++)
		f->pg[p].iorange = 0;
	f->open = false;
	end_command(r);
	return ok();
}

struct ref_res ref_mm(struct ref *r, const char *name, const char *fork)
{
	int from = -1;
	struct rmm *mm;

	if (fork && (from = mm_find(r, fork)) < 0)
		return err(ENOENT);
	if (!r->has_pool)
		return err(ENOENT);
	if (mm_find(r, name) >= 0)
		return err(EEXIST);
	if (r->nmms == MAX_MMS || strlen(name) >= NAME_MAX_LEN)
		abort();	/* beyond the model's limits */
	r->mms = xrealloc(r->mms, (r->nmms + 1) * sizeof(*r->mms));
	mm = &r->mms[r->nmms++];
	memset(mm, 0, sizeof(*mm));
	snprintf(mm->name, sizeof(mm->name), "%s", name);
	/* "fork copies the mappings, not the page-table entries ... and no
	 * pins" */
	if (from >= 0) {
		struct rmm *src = &r->mms[from];

		mm->maps = xcalloc(src->nmaps, sizeof(*mm->maps));
		for (size_t i = 0; i < src->nmaps; i++)
			if (src->maps[i]->open)
				mm->maps[mm->nmaps++] = src->maps[i];
	}
	end_command(r);
	return ok();
}

struct ref_res ref_mmap(struct ref *r, const char *mmname, const char *name)
{
	int mm = mm_find(r, mmname);
	struct rfile *f;
	struct rmm *m;

	if (mm < 0)
		return err(ENOENT);
	f = file_find(r, name);
	if (!f)
		return err(ENOENT);
	if (mapped(r, mm, f))
		return err(EEXIST);
	m = &r->mms[mm];
	m->maps = xrealloc(m->maps, (m->nmaps + 1) * sizeof(*m->maps));
	m->maps[m->nmaps++] = f;
	end_command(r);
	return ok();
}

enum host_op { HOST_FAULT, HOST_READ, HOST_WRITE };

/*
 * Host accesses: "EBADF, then ENXIO (no memory backing), then EFAULT (the
 * mm has not mapped the file), then sigbus (past the end, private,
 * poisoned, or no memory for a hole)" (DECISIONS.md); "a fault on a
 * private or poisoned page allocates nothing"; one entry per mm per page.
 */
static struct ref_res host(struct ref *r, const char *mmname, const char *name,
			   uint64_t off, enum host_op op, uint8_t val)
{
	int mm = mm_find(r, mmname);
	struct rfile *f;
	struct ref_res res = ok();
	uint64_t p;

	if (mm < 0)
		return err(ENOENT);
	f = file_find(r, name);
	if (!f)
		return err(ENOENT);
	if (op != HOST_FAULT && r->no_backing)
		return err(ENXIO);
	if (!mapped(r, mm, f))
		return err(EFAULT);
	if (off >= f->size)
		return kind(REF_SIGBUS);
	p = off / PG;
	if (!f->pg[p].shared || f->pg[p].poison)
		return kind(REF_SIGBUS);
	if (alloc_slot(r, f, slot_of(f, p)))
		return kind(REF_SIGBUS);
	f->pg[p].ptes |= (uint8_t)(1U << mm);
	if (op == HOST_READ)
		res = byte(ct_get(f, off));
	else if (op == HOST_WRITE)
		ct_set(f, off, val);
	end_command(r);
	return res;
}

struct ref_res ref_fault(struct ref *r, const char *mm, const char *file,
			 uint64_t off, bool w)
{
	(void)w;
	return host(r, mm, file, off, HOST_FAULT, 0);
}

struct ref_res ref_write(struct ref *r, const char *mm, const char *file,
			 uint64_t off, uint8_t val)
{
	return host(r, mm, file, off, HOST_WRITE, val);
}

struct ref_res ref_read(struct ref *r, const char *mm, const char *file,
			uint64_t off)
{
	return host(r, mm, file, off, HOST_READ, 0);
}

/* Whether a page of [p0, p0 + n) is pinned (a folio holds those pins). */
static bool any_pin(const struct rfile *f, uint64_t p0, uint64_t n)
{
	for (uint64_t p = p0; p < p0 + n; p++)
		if (f->pg[p].npin)
			return true;
	return false;
}

/*
 * The folios a b-adaptive long-term pin of [p0, p1) splits: "Each intact
 * huge folio that the pinned range covers only in part is split, 1G -> 2M
 * and then the 2M blocks the range covers in part -> 4K ... A folio the
 * range covers wholly stays intact" (DECISIONS.md).  As the range is one
 * piece, only the huge pages of its first and last page, and in each only
 * the 2M pieces of the range's ends there, can be covered in part.  In
 * offset order: the first end's huge page, its 2M pieces, then the last
 * end's.  @fn is called on each, with @fresh when the folio was made by a
 * split of this call (it holds nothing); it returns false to stop.
 */
typedef bool (*pin_split_fn)(struct ref *r, struct rfile *f, uint64_t s,
			     int piece, bool fresh);

static bool adaptive_pin_walk(struct ref *r, struct rfile *f, uint64_t p0,
			      uint64_t p1, pin_split_fn fn)
{
	for (int e = 0; e < 2; e++) {
		uint64_t s = slot_of(f, e ? p1 - 1 : p0);
		uint64_t s0 = s * f->spp, s1 = s0 + f->spp;
		uint64_t a = p0 > s0 ? p0 : s0, b = p1 < s1 ? p1 : s1;
		struct rslot *sl = &f->slot[s];
		bool fresh = false;

		if (e == 1 && s == slot_of(f, p0))
			break;
		if (a == s0 && b == s1)
			continue;
		if (sl->intact) {
			if (!fn(r, f, s, -1, false))
				return false;
			fresh = true;
		}
		if (f->spp == P2M)
			continue;
		for (int ce = 0; ce < 2; ce++) {
			uint64_t i = ((ce ? b - 1 : a) - s0) / P2M;
			uint64_t c0 = s0 + i * P2M;

			if (ce == 1 && i == (a - s0) / P2M)
				break;
			if ((!fresh && sl->piece4k[i]) ||
			    (a <= c0 && b >= c0 + P2M))
				continue;
			if (!fn(r, f, s, (int)i, fresh))
				return false;
		}
	}
	return true;
}

/*
 * Before the split: "the folio's host entries are zapped first", but "A
 * folio that another pin holds (a short-term pin of another page) cannot
 * be split: that is tested before its entries are zapped, and the
 * long-term pin fails with EAGAIN.  A pin whose range cuts two huge pages
 * may have split and zapped the first before it finds the second held: it
 * undoes the split, and only those zapped entries stay zapped, as after a
 * failing conversion" (DECISIONS.md).  Memory this pin allocates, and
 * folios an earlier split of the call made, hold neither.
 */
static bool pin_split_check(struct ref *r, struct rfile *f, uint64_t s,
			    int piece, bool fresh)
{
	uint64_t p0 = s * f->spp, n = f->spp;

	if (fresh || !f->slot[s].inst)
		return true;
	if (piece >= 0) {
		p0 += (uint64_t)piece * P2M;
		n = P2M;
	}
	if (any_pin(f, p0, n))
		return false;
	for (uint64_t p = p0; p < p0 + n; p++) {
		if (!f->pg[p].ptes)
			continue;
		if (!r->nzap || r->zap_p0[r->nzap - 1] != p0) {
			r->zap_p0[r->nzap] = p0;
			r->zap_n[r->nzap++] = n;
		}
		zap_page(r, f, p);
	}
	return true;
}

/* The split itself, each counted as a shatter (the memory is there now). */
static bool pin_split_do(struct ref *r, struct rfile *f, uint64_t s,
			 int piece, bool fresh)
{
	struct rslot *sl = &f->slot[s];

	(void)fresh;
	if (piece < 0) {
		sl->intact = false;
		if (sl->piece4k)
			memset(sl->piece4k, 0, P1G / P2M * sizeof(bool));
	} else {
		sl->piece4k[piece] = true;
	}
	count(r, f, C_SHATTERS, 1);
	return true;
}

/*
 * Pins: "EINVAL, EFAULT (no mapping), EOPNOTSUPP (long-term under a), then
 * the first page of the range that cannot be pinned decides; at one page,
 * private (EFAULT) before poisoned (EHWPOISON) before an exclusive
 * conflict (EBUSY); a page past the end of the file is EFAULT ... and
 * comes after every page of the file.  Then ENOMEM" (DECISIONS.md); all
 * or nothing; faults each page in.
 */
struct ref_res ref_pin(struct ref *r, const char *id, const char *mmname,
		       const char *name, uint64_t off, uint64_t len,
		       bool longterm, bool exclusive)
{
	int mm = mm_find(r, mmname);
	struct rfile *f;
	struct rpin *pin;
	uint64_t p0, p1, avail, last_slot = UINT64_MAX;

	if (mm < 0)
		return err(ENOENT);
	f = file_find(r, name);
	if (!f)
		return err(ENOENT);
	if (pin_find(r, id))
		return err(EEXIST);
	/* a pin is a host access: a page past the end is EFAULT, after
	 * every page of the file in the range (TRACE.md) */
	if (off % PG || len % PG || !len)
		return err(EINVAL);
	if (!mapped(r, mm, f))
		return err(EFAULT);
	if (longterm && f->pol == REF_A)
		return err(EOPNOTSUPP);
	p0 = off / PG;
	p1 = p0 + len / PG;
	for (uint64_t p = p0; p < p1; p++) {
		if (p >= f->npages)
			return err(EFAULT);
		const struct rpage *pg = &f->pg[p];

		if (!pg->shared)
			return err(EFAULT);
		if (pg->poison)
			return err(EHWPOISON);
		if (pg->nexcl || (exclusive && pg->npin))
			return err(EBUSY);
	}
	/* "Then ENOMEM: no memory" -- after every page's check, the page
	 * past the end included (DECISIONS.md) */
	avail = huge(f) ? pool_unreserved(r) : UINT64_MAX;
	for (uint64_t p = p0; p < p1; p++) {
		uint64_t s = slot_of(f, p);

		if (s != last_slot && !f->slot[s].inst &&
		    !f->slot[s].reserved && huge(f)) {
			if (!avail)
				return err(ENOMEM);
			avail--;
		}
		last_slot = s;
	}
	/* b-adaptive: "A long-term pin splits before it pins", after every
	 * check above (the memory of the range is there first): EAGAIN if
	 * a folio to split holds a pin */
	r->nzap = 0;
	if (longterm && f->pol == REF_B_ADAPTIVE &&
	    !adaptive_pin_walk(r, f, p0, p1, pin_split_check)) {
		/*
		 * It fails "as after a failing conversion", which leaves
		 * "the zaps of a failed conversion and the merges that
		 * follow it (the merge rule applies after every call)"
		 * (DECISIONS.md): a zapped folio may be what kept its 1 GiB
		 * page from merging, and "b-lazy merges a block the moment
		 * it is uniform and unreferenced" ("D = 0 merges at once, as
		 * b-lazy"; with D > 0 the blocks b-lazy would have tried wait
		 * for a period's end).  The blocks there are noted; a pin is
		 * not a touch, so no wait restarts (libgmem's
		 * file_note_merge_quiet(); corpus/adaptive-failed-pin-merges).
		 */
		for (int i = 0; i < r->nzap; i++)
			adaptive_note(f, r->zap_p0[i],
				      r->zap_p0[i] + r->zap_n[i], false);
		end_command(r);
		return err(EAGAIN);
	}
	if (strlen(id) >= NAME_MAX_LEN)
		abort();
	r->pins = xrealloc(r->pins, (r->npins + 1) * sizeof(*r->pins));
	pin = &r->pins[r->npins++];
	memset(pin, 0, sizeof(*pin));
	snprintf(pin->name, sizeof(pin->name), "%s", id);
	pin->f = f;
	pin->p0 = p0;
	pin->n = p1 - p0;
	pin->longterm = longterm;
	pin->exclusive = exclusive;
	pin->inst = xcalloc(pin->n, sizeof(*pin->inst));
	for (uint64_t s = slot_of(f, p0); s <= slot_of(f, p1 - 1); s++) {
		if (alloc_slot(r, f, s)) {
			fprintf(stderr, "ref: pin allocation failed\n");
			abort();
		}
	}
	if (longterm && f->pol == REF_B_ADAPTIVE)
		adaptive_pin_walk(r, f, p0, p1, pin_split_do);
	for (uint64_t p = p0; p < p1; p++) {
		struct rpage *pg = &f->pg[p];

		pg->ptes |= (uint8_t)(1U << mm);
		pg->npin++;
		pg->nlong += longterm;
		pg->nexcl += exclusive;
		pin->inst[p - p0] = f->slot[slot_of(f, p)].inst;
	}
	end_command(r);
	return ok();
}

/*
 * b-adaptive: whether an unpin is "an unpin of a page in a split block" of
 * an open file, i.e. one after which b-lazy would try a merge: a page of
 * it is in a folio smaller than its huge page, or its memory left the file
 * (the range may hold new memory).  Pins never sit on a folio that splits
 * or merges, so the page's folio now is the one it pinned.
 */
static bool unpin_notes(const struct rfile *f, const struct rpin *pin)
{
	if (!f->open || f->pol != REF_B_ADAPTIVE)
		return false;
	for (uint64_t i = 0; i < pin->n; i++) {
		const struct rslot *sl = &f->slot[slot_of(f, pin->p0 + i)];

		if (sl->inst != pin->inst[i] || !sl->intact)
			return true;
	}
	return false;
}

struct ref_res ref_unpin(struct ref *r, const char *id)
{
	struct rpin *pin = pin_find(r, id), dead;
	struct rfile *f;
	bool note;

	if (!pin)
		return err(ENOENT);
	dead = *pin;
	*pin = r->pins[--r->npins];
	f = dead.f;
	note = unpin_notes(f, &dead);
	for (uint64_t i = 0; i < dead.n; i++) {
		uint64_t p = dead.p0 + i;
		struct rpage *pg = &f->pg[p];

		if (f->open && f->slot[slot_of(f, p)].inst == dead.inst[i]) {
			pg->npin--;
			pg->nlong -= dead.longterm;
			pg->nexcl -= dead.exclusive;
			continue;
		}
		for (size_t j = 0; j < r->ndet; j++) {
			if (r->det[j].inst == dead.inst[i]) {
				if (!--r->det[j].npins)
					det_release(r, j);
				break;
			}
		}
	}
	if (note)
		adaptive_note(f, dead.p0, dead.p0 + dead.n, true);
	free(dead.inst);
	end_command(r);
	return ok();
}

/*
 * The conversion protocol (DESIGN.md) with TRACE.md's finer rules: "a range
 * already wholly at the target attribute is ok and changes nothing.
 * Otherwise the drain set is every folio holding a page that changes; its
 * host entries are zapped in every mm first (they stay zapped even if the
 * call then fails ...), then pins are checked: a long-term pin anywhere in
 * the drain set gives EBUSY, else a short-term pin gives EAGAIN; at= is,
 * for the first offending folio in offset order, the first page of the
 * range inside it.  On success the pages flip, zero zeroes those that
 * changed, guest entries overlapping the range go."  Private -> shared
 * "needs no refcount check".
 */
struct ref_res ref_convert(struct ref *r, const char *name, uint64_t off,
			   uint64_t len, bool to_shared, bool zero)
{
	struct rfile *f = file_find(r, name);
	uint64_t p0, p1;
	bool changes = false;

	if (!f)
		return err(ENOENT);
	if (!range_ok(f, off, len))
		return err(EINVAL);
	p0 = off / PG;
	p1 = p0 + len / PG;
	for (uint64_t p = p0; p < p1 && !changes; p++)
		changes = f->pg[p].shared != to_shared;
	if (!changes) {
		/* counts: "a convert call that succeeded" (DECISIONS.md) */
		count(r, f, C_CONVERSIONS, 1);
		end_command(r);
		return ok();
	}
	if (!to_shared) {
		uint64_t last = UINT64_MAX, busy = UINT64_MAX;
		uint64_t again = UINT64_MAX;

		for (uint64_t p = p0; p < p1; p++) {
			uint64_t start, n;

			if (!f->pg[p].shared || !allocated(f, p))
				continue;
			folio_of(f, p, &start, &n);
			if (start == last)
				continue;
			last = start;
			for (uint64_t q = start; q < start + n; q++) {
				zap_page(r, f, q);
				if (f->pg[q].nlong && busy == UINT64_MAX)
					busy = start > p0 ? start : p0;
				if (f->pg[q].npin && again == UINT64_MAX)
					again = start > p0 ? start : p0;
			}
		}
		if (busy != UINT64_MAX) {
			count(r, f, C_EBUSY, 1);
			adaptive_converted(r, f, p0, p1);
			end_command(r);
			return err_at(EBUSY, busy * PG);
		}
		if (again != UINT64_MAX) {
			count(r, f, C_EAGAIN, 1);
			adaptive_converted(r, f, p0, p1);
			end_command(r);
			return err_at(EAGAIN, again * PG);
		}
	}
	for (uint64_t p = p0; p < p1; p++) {
		if (f->pg[p].shared == to_shared)
			continue;
		f->pg[p].shared = to_shared;
		if (zero)
			ct_zero(f, p, p + 1);
	}
	guest_drop_range(f, p0, p1);
	for (uint64_t s = slot_of(f, p0); s <= slot_of(f, p1 - 1); s++)
		lazy_split(r, f, s);
	count(r, f, C_CONVERSIONS, 1);
	adaptive_converted(r, f, p0, p1);
	end_command(r);
	return ok();
}

/*
 * Punch: whole slots are freed (free_slot()); "A partial punch zeroes the
 * memory of the range ..., removes guest entries over the range, and keeps
 * host entries and IOMMU entries" (DECISIONS.md); "Under policy=4k a punch
 * frees the 4K folios of its range" (every slot there is one page).
 */
struct ref_res ref_punch(struct ref *r, const char *name, uint64_t off,
			 uint64_t len)
{
	struct rfile *f = file_find(r, name);
	uint64_t p0, p1;

	if (!f)
		return err(ENOENT);
	if (!range_ok(f, off, len))
		return err(EINVAL);
	p0 = off / PG;
	p1 = p0 + len / PG;
	for (uint64_t s = slot_of(f, p0); s <= slot_of(f, p1 - 1); s++) {
		uint64_t s0 = s * f->spp, s1 = s0 + f->spp;
		uint64_t a = p0 > s0 ? p0 : s0, b = p1 < s1 ? p1 : s1;

		if (!f->slot[s].inst)
			continue;
		if (a == s0 && b == s1) {
			free_slot(r, f, s);
			continue;
		}
		ct_zero(f, a, b);
		guest_drop_range(f, a, b);
	}
	end_command(r);
	return ok();
}

/*
 * Guest accesses: "fault" past the end, "hwpoison" on a poisoned page,
 * else allocate (ENOMEM if that fails, DECISIONS.md) and map; `guest off
 * len` "visits the pages in order and stops at the first failure, keeping
 * what it mapped before".
 */
static struct ref_res guest_one(struct ref *r, struct rfile *f, uint64_t p,
				struct blkmemo *m)
{
	if (p >= f->npages)
		return kind(REF_FAULT);
	if (f->pg[p].poison)
		return kind(REF_HWPOISON);
	if (alloc_slot(r, f, slot_of(f, p)))
		return err(ENOMEM);
	guest_map(r, f, p, m);
	return ok();
}

/*
 * gmem.h: "the guest touches every page of [@off, @off+@len)" (any byte
 * offset: an unaligned range touches every page it overlaps); "0 means
 * one page"; "A range that runs past the end of the file, also one whose
 * end wraps past 2^64, maps the pages up to the end and returns
 * GMEM_GUEST_FAULT".  Page indices stay below 2^52, so the walk below
 * cannot wrap: it meets the end of the file first.
 */
struct ref_res ref_guest(struct ref *r, const char *name, uint64_t off,
			 uint64_t len, bool w)
{
	struct rfile *f = file_find(r, name);
	struct blkmemo m = { 0 };
	struct ref_res res = ok();
	uint64_t last;

	(void)w;
	if (!f)
		return err(ENOENT);
	if (!len)
		last = off / PG;
	else if (len - 1 > UINT64_MAX - off)
		last = UINT64_MAX / PG;		/* wraps: runs past any end */
	else
		last = (off + len - 1) / PG;
	for (uint64_t p = off / PG; p <= last; p++) {
		res = guest_one(r, f, p, &m);
		if (res.kind != REF_OK)
			break;
	}
	end_command(r);
	return res;
}

static struct ref_res gaccess(struct ref *r, const char *name, uint64_t off,
			      bool write, uint8_t val)
{
	struct rfile *f = file_find(r, name);
	struct blkmemo m = { 0 };
	struct ref_res res;

	if (!f)
		return err(ENOENT);
	if (r->no_backing)
		return err(ENXIO);
	res = off >= f->size ? kind(REF_FAULT) : guest_one(r, f, off / PG, &m);
	if (res.kind == REF_OK) {
		if (write)
			ct_set(f, off, val);
		else
			res = byte(ct_get(f, off));
	}
	end_command(r);
	return res;
}

struct ref_res ref_gread(struct ref *r, const char *file, uint64_t off)
{
	return gaccess(r, file, off, false, 0);
}

struct ref_res ref_gwrite(struct ref *r, const char *file, uint64_t off,
			  uint8_t val)
{
	return gaccess(r, file, off, true, val);
}

/*
 * iommu: "maps a range of shared pages for a device, all or nothing";
 * "the first private or poisoned page of the range decides between EFAULT
 * and EHWPOISON" (DECISIONS.md); allocates "its whole range".  The map
 * itself is recomputed from the pages in ref_stats().
 */
struct ref_res ref_iommu(struct ref *r, const char *name, uint64_t off,
			 uint64_t len)
{
	struct rfile *f = file_find(r, name);
	uint64_t p0, p1;

	if (!f)
		return err(ENOENT);
	if (!range_ok(f, off, len))
		return err(EINVAL);
	p0 = off / PG;
	p1 = p0 + len / PG;
	for (uint64_t p = p0; p < p1; p++) {
		if (!f->pg[p].shared)
			return err_at(EFAULT, p * PG);
		if (f->pg[p].poison)
			return err_at(EHWPOISON, p * PG);
	}
	if (unreserved_needed(f, p0, p1) > (huge(f) ? pool_unreserved(r) : 0))
		return err(ENOMEM);
	for (uint64_t s = slot_of(f, p0); s <= slot_of(f, p1 - 1); s++)
		if (alloc_slot(r, f, s))
			abort();
	for (uint64_t p = p0; p < p1; p++)
		f->pg[p].iorange = 1;
	end_command(r);
	return ok();
}

/*
 * Poison "allocates memory for a hole ..., does not split an intact folio,
 * zaps the page's host entries from every mm (counted in zaps), drops the
 * guest entries that cover it (a 1G entry goes whole) ... Poisoning a page
 * twice is ok" (DECISIONS.md).
 */
struct ref_res ref_poison(struct ref *r, const char *name, uint64_t off)
{
	struct rfile *f = file_find(r, name);
	uint64_t p;

	if (!f)
		return err(ENOENT);
	if (!range_ok(f, off, PG))
		return err(EINVAL);
	p = off / PG;
	if (alloc_slot(r, f, slot_of(f, p)))
		return err(ENOMEM);
	f->pg[p].poison = 1;
	zap_page(r, f, p);
	guest_drop_at(f, p);
	end_command(r);
	return ok();
}

/*
 * compact: "gmem_file_compact() (the trace's compact) merges every block
 * that may merge now, whatever its age"; gmem.h: "A file whose policy
 * never merges (4k, a, b-eager) has nothing to do".  The documents do not
 * say what becomes of the notes of blocks that could not merge; the model
 * drops them, as libgmem does (a block that could not merge now waits for
 * a new note).
 */
struct ref_res ref_compact(struct ref *r, const char *name)
{
	struct rfile *f = file_find(r, name);

	if (!f)
		return err(ENOENT);
	if (f->pol == REF_B_ADAPTIVE) {
		/* "and leaves the backoff alone" */
		for (uint64_t s = 0; s < f->nslots; s++)
			merge_in(r, f, s, s * f->spp, (s + 1) * f->spp);
		memset(f->noted, 0, f->npages);
	}
	end_command(r);
	return ok();
}

/* ------------------------------------------------------------- stats */

/* "exactly the shared, allocated, unpoisoned pages of the ranges given to
 * iommu, at the largest level the same rules allow" */
static bool io_ok(const struct rfile *f, uint64_t p)
{
	return f->pg[p].iorange && f->pg[p].shared && !f->pg[p].poison &&
	       allocated(f, p);
}

static bool io_block(const struct rfile *f, uint64_t p0, uint64_t n)
{
	for (uint64_t p = p0; p < p0 + n; p++)
		if (!io_ok(f, p))
			return false;
	return true;
}

static void io_count(const struct rfile *f, uint64_t p0, uint64_t n,
		     uint64_t *v)
{
	if (f->pol != REF_4K && !allocated(f, p0))
		return;		/* a hole: nothing of it is mapped */
	if (f->pol != REF_4K && n == P1G && io_block(f, p0, n)) {
		v[K_I1G] += P1G * PG;
		return;
	}
	if (n == P1G) {
		for (uint64_t q = p0; q < p0 + n; q += P2M)
			io_count(f, q, P2M, v);
		return;
	}
	if (f->pol != REF_4K && n == P2M && io_block(f, p0, n)) {
		v[K_I2M] += P2M * PG;
		return;
	}
	for (uint64_t p = p0; p < p0 + n; p++)
		if (io_ok(f, p))
			v[K_I4K] += PG;
}

static void file_stats(const struct rfile *f, uint64_t *v)
{
	for (uint64_t s = 0; s < f->nslots; s++) {
		const struct rslot *sl = &f->slot[s];

		if (!sl->inst)
			continue;
		if (f->pol == REF_4K)
			v[K_F4K]++;
		else if (sl->intact)
			v[f->spp == P1G ? K_F1G : K_F2M]++;
		else if (f->spp == P2M)
			v[K_F4K] += P2M;
		else
			for (uint64_t i = 0; i < P1G / P2M; i++) {
				if (sl->piece4k[i])
					v[K_F4K] += P2M;
				else
					v[K_F2M]++;
			}
	}
	for (uint64_t p = 0; p < f->npages; p++) {
		const struct rpage *pg = &f->pg[p];

		if (pg->ptes)
			v[K_HOST_PTES] += (uint64_t)__builtin_popcount(pg->ptes);
		if (!pg->glevel)
			continue;
		if (pg->glevel == LV_1G)
			v[K_G1G] += PG;
		else if (pg->glevel == LV_2M)
			v[K_G2M] += PG;
		else if (pg->glevel == LV_4K)
			v[K_G4K] += PG;
	}
	if (f->pol == REF_4K) {
		io_count(f, 0, f->npages, v);
	} else {
		for (uint64_t s = 0; s < f->nslots; s++)
			io_count(f, s * f->spp, f->spp, v);
	}
}

int ref_stats(struct ref *r, const char *name, struct ref_stats *out)
{
	static const int counter_key[NR_COUNTERS] = {
		[C_SHATTERS] = K_SHATTERS, [C_COLLAPSES] = K_COLLAPSES,
		[C_CONVERSIONS] = K_CONVERSIONS, [C_EAGAIN] = K_EAGAIN,
		[C_EBUSY] = K_EBUSY, [C_ZAPS] = K_ZAPS,
	};
	struct rfile *f = NULL;
	uint64_t *v = out->v;
	const uint64_t *c;

	memset(out, 0, sizeof(*out));
	if (!r->has_pool)
		return -ENOENT;
	if (name) {
		f = file_find(r, name);
		if (!f)
			return -ENOENT;
		file_stats(f, v);
		c = f->c;
	} else {
		for (size_t i = 0; i < r->nfiles; i++)
			if (r->files[i]->open)
				file_stats(r->files[i], v);
		c = r->c;
	}
	for (int i = 0; i < NR_COUNTERS; i++)
		v[counter_key[i]] = c[i];
	/* "pins counts page pins held now (a pin of n pages counts n)" */
	for (size_t i = 0; i < r->npins; i++)
		if (!f || r->pins[i].f == f)
			v[K_PINS] += r->pins[i].n;
	v[K_POOL_TOTAL] = pool_total(r);
	v[K_POOL_FREE] = pool_free(r);
	v[K_POOL_RESV] = pool_resv(r);
	v[K_POOL_RETIRED] = r->retired;
	/* "4096 for each intact huge folio, 64 for each 4 KiB folio; the
	 * pool-wide figure adds 4096 for each free huge page" */
	v[K_VMEMMAP] = 4096 * (v[K_F1G] + v[K_F2M]) + 64 * v[K_F4K];
	if (!f)
		v[K_VMEMMAP] += 4096 * v[K_POOL_FREE];
	return 0;
}
