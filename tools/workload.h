/* SPDX-License-Identifier: MIT */
/*
 * workload.h - the built-in workloads of `gmem compare`.
 *
 * A workload is a seeded sequence of guest and host operations on one
 * guest-memory file: conversions, host I/O with short-term pins, long-term
 * pins, IOMMU maps, punch-holes, guest accesses.  The guest's choices come
 * from the seed alone, never from the policy, so every policy runs the same
 * guest; what differs is what the library answers (a failed conversion is
 * retried after the I/O that blocked it has completed).  The same run can
 * write itself down as a self-checking trace (gmem-trace(5)), whose replay
 * reproduces every statistic but the times.
 */
#ifndef GMEM_WORKLOAD_H
#define GMEM_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gmem.h"

struct wl;		/* one run: the executor's state (workload.c) */
struct cost_model;	/* cost.h */

struct wl_params {
	uint64_t guest_size;	/* 0: the workload's default */
	uint64_t seed;
	int backing;		/* an enum gmem_backing, or -1: the workload's */
	uint64_t ops;		/* 0: the workload's default operation count */
	int64_t merge_delay;	/* b-adaptive's, or -1: the library's default */
	/* NULL, or the kernel cost model: each convert call's events are
	 * then priced (wl_result.kconv_*) */
	const struct cost_model *model;
	/* progress: called now and then with done in [0, 1] */
	void (*progress)(void *arg, double done);
	void *progress_arg;
};

/* Everything docs/JSON.md reports for one policy on one workload. */
struct wl_result {
	uint64_t guest_bytes, huge_page_bytes;
	uint64_t guest_at[3];	/* 1g, 2m, 4k bytes mapped at the end */
	uint64_t iommu_at[3];
	uint64_t meta_bytes, vmemmap_bytes;
	/* the most the file held at any moment of the run (prefault included) */
	uint64_t meta_peak_bytes, vmemmap_peak_bytes;
	uint64_t conversions;	/* successful gmem_convert() calls */
	uint64_t convert_calls;	/* all calls, failed ones included */
	uint64_t convert_p50, convert_p99, convert_max;	/* ns, every call */
	uint64_t eagain, ebusy, eopnotsupp;
	uint64_t pin_wait_ns;	/* waiting for in-flight I/O to drop pins */
	uint64_t shatters, collapses, pool_pages_returned;
	uint64_t zaps, ops;
	uint64_t wall_ns, peak_rss_bytes;
	/* events that stand for kernel work, over the workload (before the
	 * final prefault, which is the same for every policy) */
	struct gmem_stats ev;
	/* the modelled kernel cost of each convert call, ns (with a model) */
	uint64_t kconv_p50, kconv_p99, kconv_max;
	int backing;		/* the backing the pool really used */
	int error;		/* 0, or the negative errno that stopped it */
	char what[200];		/* what failed, when error != 0 */
};

struct workload {
	const char *name;
	const char *summary;
	uint64_t huge_page;	/* GMEM_2M or GMEM_1G */
	uint64_t default_size;
	int default_backing;	/* enum gmem_backing */
	uint64_t default_ops;
	/*
	 * Per-4K-metadata policies (4k, b-eager) cannot hold the default
	 * size in reasonable memory: by default they run at max_small_size
	 * instead, and the report says so (0: no limit).  A size asked for
	 * with --guest-size is run as asked.
	 */
	uint64_t max_small_size;
	int (*run)(struct wl *w);
};

extern const struct workload workloads[];
extern const unsigned int nr_workloads;

const struct workload *workload_find(const char *name);

/* The guest size a policy runs @wl at, given the asked-for size (0: none). */
uint64_t workload_size(const struct workload *wl, enum gmem_policy policy,
		       uint64_t asked);

/**
 * workload_run() - run one workload under one policy, in this process.
 * @emit: NULL, or receives the run as a self-checking trace.
 *
 * Return: 0, or a negative errno (then @out->what says what failed).
 */
int workload_run(const struct workload *wl, enum gmem_policy policy,
		 const struct wl_params *par, FILE *emit,
		 struct wl_result *out);

const char *policy_name(enum gmem_policy p);

#endif /* GMEM_WORKLOAD_H */
