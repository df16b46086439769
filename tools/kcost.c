// SPDX-License-Identifier: MIT
/*
 * kcost.c - the kernel cost model of gmem compare: event counts times
 * unit costs (kcost.h).
 */
#include "kcost.h"

#define EV_FIELDS(X)							\
	X(split_2m) X(split_1g) X(merge_2m) X(merge_1g) X(zeroed_bytes)	\
	X(tlb_flushes) X(host_faults) X(zaps)				\
	X(guest_map_4k) X(guest_map_2m) X(guest_map_1g)			\
	X(guest_unmap_4k) X(guest_unmap_2m) X(guest_unmap_1g)		\
	X(iommu_map_4k) X(iommu_map_2m) X(iommu_map_1g)			\
	X(iommu_unmap_4k) X(iommu_unmap_2m) X(iommu_unmap_1g)		\
	X(guest_flushes) X(iommu_flushes)

void kcost_events_diff(struct gmem_stats *d, const struct gmem_stats *b,
		       const struct gmem_stats *a)
{
#define DIFF(f) d->f = b->f - a->f;
	EV_FIELDS(DIFF)
#undef DIFF
}

void kcost_of(const struct cost_model *m, const struct gmem_stats *ev,
	      struct kcost *k)
{
	const double *u = m->ns;

	k->split = (double)ev->split_1g * u[CU_SPLIT_1G] +
		   (double)ev->split_2m * u[CU_SPLIT_2M];
	k->merge = (double)ev->merge_1g * u[CU_MERGE_1G] +
		   (double)ev->merge_2m * u[CU_MERGE_2M];
	k->zap = (double)ev->zaps * u[CU_ZAP_PTE] +
		 (double)ev->tlb_flushes * u[CU_TLB_FLUSH] +
		 (double)ev->host_faults * u[CU_FAULT];
	k->zero = (double)(ev->zeroed_bytes / GMEM_PAGE_SIZE) * u[CU_ZERO_4K];
	k->inval = (double)(ev->guest_unmap_4k + ev->guest_unmap_2m +
			    ev->guest_unmap_1g) * u[CU_S2_INVAL] +
		   (double)ev->guest_flushes * u[CU_S2_FLUSH] +
		   (double)(ev->iommu_unmap_4k + ev->iommu_unmap_2m +
			    ev->iommu_unmap_1g) * u[CU_IOMMU_INVAL] +
		   (double)ev->iommu_flushes * u[CU_IOMMU_FLUSH] +
		   (double)(ev->iommu_map_4k + ev->iommu_map_2m +
			    ev->iommu_map_1g) * u[CU_IOMMU_MAP];
	k->total = k->split + k->merge + k->zap + k->zero + k->inval;
}

const char *kcost_dominant(const struct kcost *k)
{
	const char *name = "split";
	double v = k->split;

	if (k->merge > v) {
		name = "merge";
		v = k->merge;
	}
	if (k->zap > v) {
		name = "zap";
		v = k->zap;
	}
	if (k->zero > v) {
		name = "zero";
		v = k->zero;
	}
	if (k->inval > v)
		name = "inval";
	return name;
}
