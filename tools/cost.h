/* SPDX-License-Identifier: MIT */
/*
 * cost.h - the unit costs of the kernel operations that gmem's events
 * stand for (cost.c), and `gmem calibrate`, which measures them on the
 * host it runs on.  docs/COSTS.md describes each unit, how it is measured
 * or modelled, the published figures behind the defaults, and the JSON.
 */
#ifndef GMEM_TOOL_COST_H
#define GMEM_TOOL_COST_H

#include <stdbool.h>
#include <stdio.h>

/* Unit costs in ns of the kernel operations gmem's events stand for. */
enum cost_unit {
	CU_SPLIT_1G,	/* a 1G folio split into 2M ones: HVO restore of the
			 * 1G page's vmemmap, the split, the 2M pieces
			 * HVO-optimised again (hugetlb demote with HVO on) */
	CU_SPLIT_2M,	/* a 2M folio split into 4K ones: HVO restore of the
			 * 2M page's vmemmap (7 pages) + the split itself */
	CU_MERGE_2M,	/* 4K folios merged into a 2M folio: the merge + HVO
			 * optimise of the 2M page */
	CU_MERGE_1G,	/* 2M folios merged into a 1G folio: HVO restore of
			 * the 512 2M pieces + the merge + HVO optimise of
			 * the 1G page */
	CU_ZERO_4K,	/* clearing 4 KiB (per 4 KiB of zeroed_bytes) */
	CU_ZAP_PTE,	/* unmapping one 4K PTE (without the flush) */
	CU_TLB_FLUSH,	/* one TLB-flush batch with an IPI to the other CPU */
	CU_FAULT,	/* a host page fault that installs one PTE */
	CU_S2_INVAL,	/* one stage-2 entry cleared (without the flush) */
	CU_IOMMU_INVAL,	/* one IOMMU entry cleared (without the IOTLB
			 * invalidation) */
	CU_IOMMU_MAP,	/* one IOMMU entry written */
	CU_S2_FLUSH,	/* one stage-2 TLB flush of the vCPUs (a batch of
			 * cleared entries: gmem's guest_flushes) */
	CU_IOMMU_FLUSH,	/* one IOTLB invalidation (a re-level's batch:
			 * gmem's iommu_flushes) */
	NR_COST_UNITS
};

/* Where a unit's figure comes from. */
enum cost_source {
	COST_DEFAULT,	/* a documented default: a published figure, or a
			 * model of published figures (cost_published()) */
	COST_MODEL,	/* a model built from figures measured on this host
			 * (and published ones where it says so) */
	COST_MEASURED,	/* measured on this host as the unit itself */
};

/*
 * Raw measurements of a calibration, in ns (zeroing: per 4 KiB; HVO's
 * vmemmap figures: pages per huge page).  Each is present (raw_ok) only
 * where it was measured; the JSON carries the present ones under "raw".
 */
enum cost_raw {
	/* one 2 MiB page at a time (what a conversion's split or merge
	 * does), with another HVO page held so that HVO's static key stays
	 * on */
	CR_ALLOC_2M_OFF,	/* allocate one 2 MiB hugetlb page, HVO off */
	CR_ALLOC_2M_ON,		/* ... HVO on */
	CR_FREE_2M_OFF,		/* free one 2 MiB hugetlb page, HVO off */
	CR_FREE_2M_ON,		/* ... HVO on */
	CR_HVO_OPTIMISE_2M,	/* alloc on - alloc off: one folio */
	CR_HVO_RESTORE_2M,	/* free on - free off: one folio */
	/* per page of a batch of 512 (one TLB flush for the batch) */
	CR_ALLOC_2M_OFF_BATCH,
	CR_ALLOC_2M_ON_BATCH,
	CR_FREE_2M_OFF_BATCH,
	CR_FREE_2M_ON_BATCH,
	CR_HVO_OPTIMISE_2M_BATCH,
	CR_HVO_RESTORE_2M_BATCH,
	CR_HVO_PAGES_2M,	/* vmemmap pages HVO freed per 2 MiB page */
	CR_HVO_FIRST,		/* the first HVO page of the host: turning
				 * HVO's static key on, beyond one optimise */
	/* one 1 GiB page at a time */
	CR_ALLOC_1G_OFF,
	CR_ALLOC_1G_ON,
	CR_FREE_1G_OFF,
	CR_FREE_1G_ON,
	CR_HVO_OPTIMISE_1G,
	CR_HVO_RESTORE_1G,
	CR_HVO_PAGES_1G,
	CR_DEMOTE_1G_OFF,	/* demote one free 1 GiB page to 2 MiB, HVO off */
	CR_DEMOTE_1G_ON,	/* ... HVO on */
	CR_THP_SPLIT_2M,	/* split of a mapped 2 MiB anonymous THP (shown,
				 * not used: mostly PTE work) */
	CR_MADV_EMPTY,		/* madvise(MADV_DONTNEED) of a 4K page with no PTE */
	CR_ZAP_1,		/* ... of one mapped 4K page, no other thread */
	CR_ZAP_512,		/* ... of 512 mapped 4K pages, no other thread */
	CR_ZAP_1_IPI,		/* ... of one page, a thread on the other CPU */
	CR_REFAULT,		/* a write to the page after the zap */
	CR_ZERO_4K,		/* memset of 4 KiB, per 4 KiB */
	CR_ZERO_2M,		/* memset of 2 MiB, per 4 KiB */
	CR_ZERO_1G,		/* memset of 1 GiB, per 4 KiB */
	NR_COST_RAW
};

struct cost_model {
	double ns[NR_COST_UNITS];
	bool measured[NR_COST_UNITS];	/* false: a model or a published figure */
	enum cost_source src[NR_COST_UNITS];
	char how[NR_COST_UNITS][200];	/* one line: what was measured, or the
					 * model and its source */
	char when[32];			/* ISO 8601 UTC of the calibration, ""
					 * for the published defaults */
	char path[256];			/* the file it was loaded from, "" for
					 * defaults */
	char host[128];			/* uname -r and CPUs of the calibration */
	double raw[NR_COST_RAW];
	bool raw_ok[NR_COST_RAW];
};

/* The documented defaults, each with its source (docs/COSTS.md). */
void cost_published(struct cost_model *m);

/*
 * Computes every unit (ns, src, measured, how) from m->raw: the figures
 * marked raw_ok as measured on this host, the defaults for the others.
 * cost_published() is this with no raw figure; docs/COSTS.md gives the
 * formulas.
 */
void cost_derive(struct cost_model *m);

/*
 * Measure on this host.  Needs root for the hugetlb figures; changes
 * vm.hugetlb_optimize_vmemmap and the huge page counts while it runs and
 * restores them before it returns (and on a signal that ends the
 * process, and at exit()).  Units it cannot measure keep a model or the
 * default, saying so in m->how and on @log (NULL: no log).
 * Returns 0, or -errno if a setting could not be restored.
 */
int cost_calibrate(struct cost_model *m, FILE *log);

/* cost_calibrate(), with fewer repetitions if @quick (a few seconds). */
int cost_calibrate_with(struct cost_model *m, FILE *log, bool quick);

/* A small JSON file (docs/COSTS.md); 0 or -errno. */
int cost_save(const char *path, const struct cost_model *m);

/*
 * Reads what cost_save() wrote: 0; -ENOENT (no file); -EINVAL (not such a
 * file, or a unit missing or not a positive number); another -errno when
 * it cannot be read.  On success m->path is @path.
 */
int cost_load(const char *path, struct cost_model *m);

/*
 * $GMEM_CALIBRATION, else $XDG_CACHE_HOME/gmem/calibration.json, else
 * $HOME/.cache/gmem/calibration.json (a static buffer).
 */
const char *cost_default_path(void);

/* "split_1g", ...: the stable JSON key of a unit; NULL out of range. */
const char *cost_unit_name(enum cost_unit u);

/* "alloc_2m_off_ns", ...: the JSON key of a raw figure. */
const char *cost_raw_name(enum cost_raw r);

/* "measured", "model", "default". */
const char *cost_source_name(enum cost_source s);

/* Prints the table: unit, ns, source, how. */
void cost_print(FILE *f, const struct cost_model *m);

/* `gmem calibrate`: argv[0] is "calibrate"; returns the exit code. */
int calibrate_main(int argc, char **argv);

/* What `gmem calibrate --help` prints after the usage line. */
extern const char calibrate_help[];

#endif /* GMEM_TOOL_COST_H */
