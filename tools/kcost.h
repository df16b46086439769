/* SPDX-License-Identifier: MIT */
/*
 * kcost.h - what a run's events would cost in a kernel: the events gmem
 * counts (struct gmem_stats) times the unit costs of the operations they
 * stand for (cost.h: measured on the host by gmem calibrate, or the
 * documented published figures).
 */
#ifndef GMEM_KCOST_H
#define GMEM_KCOST_H

#include "gmem.h"
#include "cost.h"

/* Modelled kernel time in ns, by what it is spent on. */
struct kcost {
	double split;	/* folio splits: HVO restore + split */
	double merge;	/* folio merges: merge + HVO optimise */
	double zap;	/* host PTEs zapped, TLB-flush batches, refaults */
	double zero;	/* memory cleared */
	double inval;	/* stage-2 and IOMMU entries invalidated, IOMMU maps */
	double total;
};

/* The events of @b minus those of @a (counters only). */
void kcost_events_diff(struct gmem_stats *d, const struct gmem_stats *b,
		       const struct gmem_stats *a);

/* The modelled cost of the events in @ev under @m. */
void kcost_of(const struct cost_model *m, const struct gmem_stats *ev,
	      struct kcost *out);

/* The component that dominates @k: "split", "merge", ... */
const char *kcost_dominant(const struct kcost *k);

#endif /* GMEM_KCOST_H */
