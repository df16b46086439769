// SPDX-License-Identifier: MIT
/*
 * compare.c - `gmem compare`: the policies side by side on the built-in
 * workloads (workload.c).
 *
 * Each (workload, policy) pair runs in a child process of its own, so that
 * its peak RSS (wait4()'s ru_maxrss) and its wall time are its own and a
 * crash of one run cannot take the others down.  The child sends its
 * struct wl_result back through a pipe.  Output: a table on stdout, or
 * the JSON of docs/JSON.md with --json; --plot DIR has gnuplot draw PNG plots.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compare.h"
#include "cost.h"
#include "kcost.h"
#include "workload.h"
#include "util.h"

#define EXIT_USAGE 2

struct run {
	const struct workload *wl;
	enum gmem_policy policy;
	struct wl_result res;
};

struct opts {
	bool json, quiet, wide;
	const char *plot_dir, *emit_path, *calib_path;
	struct cost_model model;
	bool calibrated;		/* model loaded from a calibration */
	unsigned int wl_mask, pol_mask;
	struct wl_params par;
};

/* Progress on stderr: only on a terminal, and only after two seconds. */
struct progress {
	bool on;
	uint64_t start_ns;
	unsigned int index, total;
	const char *label;
	bool shown;
};

static const enum gmem_policy all_policies[] = {
	GMEM_POLICY_4K, GMEM_POLICY_A, GMEM_POLICY_B_EAGER, GMEM_POLICY_B_LAZY,
	GMEM_POLICY_B_ADAPTIVE,
};
#define NR_POLICIES 5

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void progress_cb(void *arg, double done)
{
	struct progress *p = arg;
	int width = 30, fill;

	if (!p->on || now_ns() - p->start_ns < 2000000000ULL)
		return;
	fill = (int)(done * width);
	fill = fill < 0 ? 0 : fill > width ? width : fill;
	fprintf(stderr, "\r[%2u/%-2u] %-24s [%.*s%*s] %3d%%", p->index + 1,
		p->total, p->label, fill,
		"##############################", width - fill, "",
		(int)(done * 100));
	p->shown = true;
}

static void progress_end(struct progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r%*s\r", 72, "");
	p->shown = false;
}

/* ------------------------------------------------------- parsing words */

static bool parse_policy(const char *s, enum gmem_policy *p)
{
	for (unsigned int i = 0; i < NR_POLICIES; i++)
		if (!strcmp(s, policy_name(all_policies[i]))) {
			*p = all_policies[i];
			return true;
		}
	return false;
}

/* Comma-separated names into a bit mask; false on an unknown one. */
static bool parse_list(char *arg, bool policies, unsigned int *mask)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(arg, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (policies) {
			enum gmem_policy p;

			if (!parse_policy(tok, &p)) {
				fprintf(stderr, "gmem: compare: unknown policy "
					"'%s' (4k, a, b-eager, b-lazy, b-adaptive)\n", tok);
				return false;
			}
			for (unsigned int i = 0; i < NR_POLICIES; i++)
				if (all_policies[i] == p)
					*mask |= 1U << i;
		} else {
			const struct workload *wl = workload_find(tok);

			if (!wl) {
				fprintf(stderr, "gmem: compare: unknown "
					"workload '%s'\n", tok);
				return false;
			}
			*mask |= 1U << (wl - workloads);
		}
	}
	return true;
}

/* ------------------------------------------------------------- running */

/* All of @len bytes through @fd, as read() or write(); false on EOF or error. */
static bool xfer_all(int fd, void *buf, size_t len, bool out)
{
	char *p = buf;

	while (len) {
		ssize_t n = out ? write(fd, p, len) : read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/* Runs one pair in a child; fills r->res, with ru_maxrss as peak RSS. */
static void run_one(struct run *r, const struct opts *o, struct progress *pg)
{
	struct wl_params par = o->par;
	struct rusage ru;
	int fds[2], status = 0;
	pid_t pid;

	par.progress = progress_cb;
	par.progress_arg = pg;
	if (pipe(fds)) {
		r->res.error = -errno;
		snprintf(r->res.what, sizeof(r->res.what), "pipe: %s",
			 strerror(errno));
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		r->res.error = -errno;
		snprintf(r->res.what, sizeof(r->res.what), "fork: %s",
			 strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0) {
		struct wl_result res;

		close(fds[0]);
		workload_run(r->wl, r->policy, &par, NULL, &res);
		_exit(xfer_all(fds[1], &res, sizeof(res), true) ? 0 : 1);
	}
	close(fds[1]);
	if (!xfer_all(fds[0], &r->res, sizeof(r->res), false)) {
		memset(&r->res, 0, sizeof(r->res));
		r->res.error = -EPIPE;
	}
	close(fds[0]);
	while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR)
		;
	if (r->res.error == -EPIPE) {
		if (WIFSIGNALED(status))
			snprintf(r->res.what, sizeof(r->res.what),
				 "the run died of signal %d",
				 WTERMSIG(status));
		else
			snprintf(r->res.what, sizeof(r->res.what),
				 "the run exited %d without a result",
				 WEXITSTATUS(status));
	}
	r->res.peak_rss_bytes = (uint64_t)ru.ru_maxrss * 1024;
}

/* ------------------------------------------------------------- output */

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static double per_gib(uint64_t v, uint64_t guest)
{
	return guest ? (double)v * (double)(1ULL << 30) / (double)guest : 0.0;
}

/* A size with its unit: "14.0 MiB", "4.1 KiB", "512 B". */
static void human_bytes(char *buf, size_t len, double v)
{
	if (v >= 1 << 30)
		snprintf(buf, len, "%.1f GiB", v / (1 << 30));
	else if (v >= 1 << 20)
		snprintf(buf, len, "%.1f MiB", v / (1 << 20));
	else if (v >= 1 << 10)
		snprintf(buf, len, "%.1f KiB", v / (1 << 10));
	else
		snprintf(buf, len, "%.0f B", v);
}

static void human_size(char *buf, size_t len, uint64_t v)
{
	if (v >= 1ULL << 40 && !(v % (1ULL << 40)))
		snprintf(buf, len, "%" PRIu64 "T", v >> 40);
	else if (v >= 1ULL << 30 && !(v % (1ULL << 30)))
		snprintf(buf, len, "%" PRIu64 "G", v >> 30);
	else
		snprintf(buf, len, "%" PRIu64 "M", v >> 20);
}

static const char *backing_name(int b)
{
	switch (b) {
	case GMEM_BACKING_HUGETLB:
		return "hugetlb";
	case GMEM_BACKING_MEMFD:
		return "memfd";
	case GMEM_BACKING_NONE:
		return "none";
	}
	return "auto";
}

static void print_table(const struct run *runs, unsigned int n, FILE *f)
{
	const struct workload *last = NULL;

	for (unsigned int i = 0; i < n; i++) {
		const struct run *r = &runs[i];
		const struct wl_result *x = &r->res;
		char meta[16], vmm[16], size[16];

		if (r->wl != last) {
			fprintf(f, "%s%s: %s\n", last ? "\n" : "", r->wl->name,
				r->wl->summary);
			fprintf(f, "%-10s %5s %-7s %-17s %-17s %10s %10s %8s "
				"%7s %7s %8s %6s %5s %5s %8s %7s %7s %5s %8s %7s\n",
				"policy", "guest", "backing",
				"guest 1G/2M/4K %", "iommu 1G/2M/4K %",
				"meta/GiB", "vmem/GiB", "convs", "p50 us",
				"p99 us", "max us", "eagain", "ebusy",
				"eopns", "wait ms", "splits", "merges",
				"ret", "wall ms", "rss MiB");
			last = r->wl;
		}
		if (x->error) {
			fprintf(f, "%-10s failed: %s (%s)\n",
				policy_name(r->policy), x->what,
				gmem_errno_name(x->error));
			continue;
		}
		human_size(size, sizeof(size), x->guest_bytes);
		human_bytes(meta, sizeof(meta),
			    per_gib(x->meta_bytes, x->guest_bytes));
		human_bytes(vmm, sizeof(vmm),
			    per_gib(x->vmemmap_bytes, x->guest_bytes));
		fprintf(f, "%-10s %5s %-7s %5.1f/%5.1f/%5.1f %5.1f/%5.1f/%5.1f "
			"%10s %10s %8" PRIu64 " %7.1f %7.1f %8.1f %6" PRIu64
			" %5" PRIu64 " %5" PRIu64 " %8.1f %7" PRIu64 " %7"
			PRIu64 " %5" PRIu64 " %8.0f %7.0f\n",
			policy_name(r->policy), size,
			backing_name(x->backing),
			pct(x->guest_at[0], x->guest_bytes),
			pct(x->guest_at[1], x->guest_bytes),
			pct(x->guest_at[2], x->guest_bytes),
			pct(x->iommu_at[0], x->guest_bytes),
			pct(x->iommu_at[1], x->guest_bytes),
			pct(x->iommu_at[2], x->guest_bytes), meta, vmm,
			x->conversions, x->convert_p50 / 1e3,
			x->convert_p99 / 1e3, x->convert_max / 1e3,
			x->eagain, x->ebusy, x->eopnotsupp,
			x->pin_wait_ns / 1e6, x->shatters, x->collapses,
			x->pool_pages_returned, x->wall_ns / 1e6,
			x->peak_rss_bytes / 1048576.0);
	}
	fprintf(f, "\n"
		"guest, backing: guest memory size and where the pool's memory came from\n"
		"guest/iommu 1G/2M/4K %%: %% of guest memory the guest (after a prefault of all\n"
		"  of it) and the IOMMU map at each level at the end\n"
		"meta/GiB: gmem's own descriptors per GiB of guest, at the end\n"
		"vmem/GiB: the kernel's vmemmap for the same folios (64 B per 4K page, 4 KiB\n"
		"  per huge page under HVO)\n"
		"convs: successful conversions; p50/p99/max us: gmem's own measured time of\n"
		"  every convert call, failed ones included (not the kernel's: next table)\n"
		"eagain, ebusy: conversions failed on a short-term, a long-term pin\n"
		"eopns: long-term pins refused (EOPNOTSUPP, policy a)\n"
		"wait ms: time conversions waited for in-flight I/O to drop its pins\n"
		"splits, merges: folios split and merged; ret: huge pages returned to the pool\n"
		"wall ms, rss MiB: the run's wall time and peak resident memory\n");
}

/* The verdict of one workload, from its rows [i0, i1). */
static void print_verdict(const struct run *runs, unsigned int i0,
			  unsigned int i1, const struct opts *o, FILE *f)
{
	double best_meta = -1, best_k = -1;
	int64_t best_fail = -1;
	char buf[32];

	for (int pass = 0; pass < 2; pass++) {
		char meta[256] = "", fail[256] = "", kern[256] = "";

		for (unsigned int i = i0; i < i1; i++) {
			const struct wl_result *x = &runs[i].res;
			const char *nm = policy_name(runs[i].policy);
			double m, kt;
			int64_t fl;
			struct kcost k;

			if (x->error)
				continue;
			m = per_gib(x->meta_bytes + x->vmemmap_bytes,
				    x->guest_bytes);
			fl = (int64_t)(x->eagain + x->ebusy + x->eopnotsupp);
			kcost_of(&o->model, &x->ev, &k);
			kt = k.total;
			if (!pass) {
				if (best_meta < 0 || m < best_meta)
					best_meta = m;
				if (best_fail < 0 || fl < best_fail)
					best_fail = fl;
				if (best_k < 0 || kt < best_k)
					best_k = kt;
				continue;
			}
			/* ties within 1%: the figures are not that exact */
			if (m <= best_meta * 1.01)
				snprintf(meta + strlen(meta), sizeof(meta) - strlen(meta),
					 "%s%s", meta[0] ? ", " : "", nm);
			if (fl == best_fail)
				snprintf(fail + strlen(fail), sizeof(fail) - strlen(fail),
					 "%s%s", fail[0] ? ", " : "", nm);
			if (kt <= best_k * 1.01)
				snprintf(kern + strlen(kern), sizeof(kern) - strlen(kern),
					 "%s%s", kern[0] ? ", " : "", nm);
		}
		if (!pass)
			continue;
		if (best_meta < 0) {
			fprintf(f, "verdict: no run completed\n");
			return;
		}
		human_bytes(buf, sizeof(buf), best_meta);
		fprintf(f, "verdict: least metadata (meta + vmem): %s (%s/GiB)\n",
			meta, buf);
		fprintf(f, "         fewest failures: %s (%" PRId64 ")\n", fail,
			best_fail);
		fprintf(f, "         lowest modelled kernel time: %s (%.1f ms)\n",
			kern, best_k / 1e6);
	}
}

/*
 * Print @text on lines of at most @width columns, broken at spaces; the
 * lines after the first are indented by two.
 */
static void print_wrapped(FILE *f, const char *text, size_t width)
{
	const char *p = text;
	size_t room = width;

	while (strlen(p) > room) {
		size_t cut = room;

		while (cut > 0 && p[cut] != ' ')
			cut--;
		if (cut == 0)
			break;
		fprintf(f, "%.*s\n  ", (int)cut, p);
		p += cut + 1;
		room = width - 2;
	}
	fprintf(f, "%s\n", p);
}

static void model_note(const struct opts *o, FILE *f);

/*
 * The default table: what a reader compares first, in 100 columns, then
 * the verdict; --wide prints every figure instead (print_table() and
 * print_kernel_table()).
 */
static void print_compact(const struct run *runs, unsigned int n,
			  const struct opts *o, FILE *f)
{
	const struct workload *last = NULL;
	unsigned int first = 0;

	for (unsigned int i = 0; i <= n; i++) {
		const struct run *r = i < n ? &runs[i] : NULL;
		const struct wl_result *x = r ? &r->res : NULL;
		char meta[16], vmm[16], size[16];
		struct kcost k;

		if (last && (!r || r->wl != last))
			print_verdict(runs, first, i, o, f);
		if (!r)
			break;
		if (r->wl != last) {
			human_size(size, sizeof(size), x->guest_bytes ?
				   x->guest_bytes : r->wl->default_size);
			char head[512];

			snprintf(head, sizeof(head), "%s (%s on %s pages): %s",
				 r->wl->name, size,
				 r->wl->huge_page == GMEM_1G ? "1G" : "2M",
				 r->wl->summary);
			if (last)
				fputc('\n', f);
			print_wrapped(f, head, 100);
			fprintf(f, "%-10s %6s %6s %10s %10s %8s %7s %7s %10s  %-6s "
				"%8s\n", "policy", "guest%", "iommu%", "meta/GiB",
				"vmem/GiB", "convs", "failed", "refused",
				"kernel ms", "most", "wall ms");
			last = r->wl;
			first = i;
		}
		if (x->error) {
			fprintf(f, "%-10s failed: %s (%s)\n",
				policy_name(r->policy), x->what,
				gmem_errno_name(x->error));
			continue;
		}
		human_bytes(meta, sizeof(meta),
			    per_gib(x->meta_bytes, x->guest_bytes));
		human_bytes(vmm, sizeof(vmm),
			    per_gib(x->vmemmap_bytes, x->guest_bytes));
		kcost_of(&o->model, &x->ev, &k);
		fprintf(f, "%-10s %6.1f %6.1f %10s %10s %8" PRIu64 " %7" PRIu64
			" %7" PRIu64 " %10.1f  %-6s %8.0f\n",
			policy_name(r->policy),
			pct(x->guest_at[0] + x->guest_at[1], x->guest_bytes),
			pct(x->iommu_at[0] + x->iommu_at[1], x->guest_bytes),
			meta, vmm, x->conversions, x->eagain + x->ebusy,
			x->eopnotsupp, k.total / 1e6, kcost_dominant(&k),
			x->wall_ns / 1e6);
	}
	fprintf(f, "\n"
		"guest%%, iommu%%: %% of guest memory the guest (after touching all of it) and\n"
		"  the IOMMU map with huge entries (1G and 2M) at the end\n"
		"meta/GiB: gmem's own descriptors per GiB of guest, at the end (after the\n"
		"  guest goes idle)\n"
		"vmem/GiB: the kernel's vmemmap for the same folios (64 B per 4K page,\n"
		"  4 KiB per huge page under HVO)\n"
		"convs: successful conversions; failed: conversions failed with EAGAIN (a\n"
		"  short-term pin in the way) or EBUSY (a long-term one)\n"
		"refused: long-term pins refused with EOPNOTSUPP (policy a)\n"
		"kernel ms: modelled kernel time, the run's events times the unit costs of\n"
		"  the kernel operations they stand for; most: its largest part (split,\n"
		"  merge, zap = zaps and TLB flushes, zero, inval = stage-2 and IOMMU)\n"
		"wall ms: the run's own wall time in gmem (not the kernel's)\n");
	model_note(o, f);
	fprintf(f, "--wide: every figure (levels, latencies, waits, splits, memory)\n");
}

/* Where the unit costs come from, wrapped to the table's width. */
static void model_note(const struct opts *o, FILE *f)
{
	char line[PATH_MAX + 256];

	if (o->calibrated)
		snprintf(line, sizeof(line), "kernel unit costs: measured on "
			 "this host %s (%s)", o->model.when, o->model.path);
	else
		snprintf(line, sizeof(line), "kernel unit costs: published "
			 "figures and models (COSTS.md); no calibration "
			 "at %s: run `gmem calibrate` as root", o->calib_path);
	print_wrapped(f, line, 100);
}

/*
 * The second table: what each policy's events would cost in a kernel
 * (event counts times unit costs), beside nothing of gmem's own time.
 */
static void print_kernel_table(const struct run *runs, unsigned int n,
			       const struct opts *o, FILE *f)
{
	const struct workload *last = NULL;

	fprintf(f, "\nModelled kernel time (the workload's events times the unit "
		   "costs of the kernel operations they stand for):\n");
	model_note(o, f);
	for (unsigned int i = 0; i < n; i++) {
		const struct run *r = &runs[i];
		const struct wl_result *x = &r->res;
		struct kcost k;

		if (r->wl != last) {
			fprintf(f, "\n%s\n%-10s %10s %9s %9s %9s %9s %9s  %-6s "
				"%9s %9s %9s\n", r->wl->name, "policy",
				"kernel ms", "split", "merge", "zap/tlb",
				"zero", "inval", "most", "conv p50",
				"p99 us", "max us");
			last = r->wl;
		}
		if (x->error) {
			fprintf(f, "%-10s failed\n", policy_name(r->policy));
			continue;
		}
		kcost_of(&o->model, &x->ev, &k);
		fprintf(f, "%-10s %10.1f %9.1f %9.1f %9.1f %9.1f %9.1f  %-6s "
			"%9.1f %9.1f %9.1f\n", policy_name(r->policy),
			k.total / 1e6, k.split / 1e6, k.merge / 1e6,
			k.zap / 1e6, k.zero / 1e6, k.inval / 1e6,
			kcost_dominant(&k), x->kconv_p50 / 1e3,
			x->kconv_p99 / 1e3, x->kconv_max / 1e3);
	}
	fprintf(f, "\nkernel ms and its parts (ms): split = folio splits with "
		   "HVO restore; merge = merges with HVO optimise; zap/tlb = "
		   "host PTEs\nzapped, TLB-flush IPIs and refaults; zero = "
		   "memory cleared; inval = stage-2 and IOMMU invalidations "
		   "and IOMMU maps; most = the\nlargest part; conv = the "
		   "modelled cost of one convert call (p50/p99/max, us).\n"
		   "Modelled, not measured: see COSTS.md in gmem's documentation "
		   "directory.\n");
}

static void json_levels(FILE *f, const char *key, const uint64_t v[3])
{
	fprintf(f, "\"%s\": {\"1g\": %" PRIu64 ", \"2m\": %" PRIu64
		", \"4k\": %" PRIu64 "}", key, v[0], v[1], v[2]);
}

/*
 * A policy's kernel keys: the workload's events (kernel_events), their
 * modelled cost and its parts (kernel_ns: total = the parts' sum = each
 * event count times its unit), and one convert call's modelled cost.
 */
static void json_kernel(FILE *f, const struct cost_model *m,
			const struct wl_result *x)
{
	static const char *const keys[] = {
		"split_2m", "split_1g", "merge_2m", "merge_1g", "zeroed_bytes",
		"zaps", "tlb_flushes", "host_faults", "guest_unmap_4k",
		"guest_unmap_2m", "guest_unmap_1g", "iommu_map_4k",
		"iommu_map_2m", "iommu_map_1g", "iommu_unmap_4k",
		"iommu_unmap_2m", "iommu_unmap_1g", "guest_flushes",
		"iommu_flushes",
	};
	struct kcost k;
	uint64_t v;

	kcost_of(m, &x->ev, &k);
	fprintf(f, ",\n          \"kernel_events\": {");
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		gmem_stat_get(&x->ev, keys[i], &v);
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", keys[i], v);
	}
	fprintf(f, "},\n          \"kernel_ns\": {\"total\": %.0f, "
		"\"split\": %.0f, \"merge\": %.0f, \"zap_tlb\": %.0f, "
		"\"zero\": %.0f, \"inval\": %.0f}", k.total, k.split, k.merge,
		k.zap, k.zero, k.inval);
	fprintf(f, ",\n          \"kernel_convert_ns\": {\"p50\": %" PRIu64
		", \"p99\": %" PRIu64 ", \"max\": %" PRIu64 "}",
		x->kconv_p50, x->kconv_p99, x->kconv_max);
}

static void print_json(const struct run *runs, unsigned int n,
		       const struct opts *o, FILE *f)
{
	const struct workload *last = NULL;

	fprintf(f, "{\n  \"gmem_version\": \"%s\",\n  \"seed\": %" PRIu64
		",\n  \"kernel_model\": {\"source\": \"%s\", \"path\": \"%s\", "
		"\"measured_at\": \"%s\", \"units_ns\": {",
		GMEM_VERSION_STRING, o->par.seed,
		o->calibrated ? "calibrated" : "published",
		o->calibrated ? o->model.path : "", o->model.when);
	for (int u = 0; u < NR_COST_UNITS; u++)
		fprintf(f, "%s\"%s\": %.1f", u ? ", " : "",
			cost_unit_name((enum cost_unit)u), o->model.ns[u]);
	fprintf(f, "}},\n  \"workloads\": [");
	for (unsigned int i = 0; i < n; i++) {
		const struct run *r = &runs[i];
		const struct wl_result *x = &r->res;

		if (r->wl != last) {
			if (last)
				fprintf(f, "\n      ]\n    },");
			fprintf(f, "\n    {\n      \"name\": \"%s\",\n"
				"      \"guest_bytes\": %" PRIu64 ",\n"
				"      \"huge_page_bytes\": %" PRIu64 ",\n"
				"      \"policies\": [", r->wl->name,
				workload_size(r->wl, GMEM_POLICY_B_LAZY,
					      o->par.guest_size),
				r->wl->huge_page);
		} else {
			fprintf(f, ",");
		}
		last = r->wl;
		fprintf(f, "\n        {\n          \"policy\": \"%s\",\n"
			"          \"guest_bytes\": %" PRIu64 ",\n"
			"          \"backing\": \"%s\",\n          ",
			policy_name(r->policy), x->guest_bytes,
			backing_name(x->backing));
		if (x->error) {
			fprintf(f, "\"error\": \"%s\",\n          "
				"\"error_what\": \"", gmem_errno_name(x->error));
			for (const char *c = x->what; *c; c++)
				fprintf(f, *c == '"' || *c == '\\' ? "\\%c" :
					"%c", *c);
			fprintf(f, "\"\n        }");
			continue;
		}
		json_levels(f, "guest_bytes_at", x->guest_at);
		fprintf(f, ",\n          ");
		json_levels(f, "iommu_bytes_at", x->iommu_at);
		fprintf(f, ",\n          \"meta_bytes\": %" PRIu64
			",\n          \"vmemmap_bytes\": %" PRIu64
			",\n          \"meta_peak_bytes\": %" PRIu64
			",\n          \"vmemmap_peak_bytes\": %" PRIu64
			",\n          \"conversions\": %" PRIu64
			",\n          \"convert_calls\": %" PRIu64
			",\n          \"convert_ns\": {\"p50\": %" PRIu64
			", \"p99\": %" PRIu64 ", \"max\": %" PRIu64 "}"
			",\n          \"failed\": {\"eagain\": %" PRIu64
			", \"ebusy\": %" PRIu64 ", \"eopnotsupp\": %" PRIu64
			"},\n          \"pin_wait_ns\": %" PRIu64
			",\n          \"shatters\": %" PRIu64
			",\n          \"collapses\": %" PRIu64
			",\n          \"pool_pages_returned\": %" PRIu64
			",\n          \"zaps\": %" PRIu64
			",\n          \"wall_ns\": %" PRIu64
			",\n          \"peak_rss_bytes\": %" PRIu64,
			x->meta_bytes, x->vmemmap_bytes, x->meta_peak_bytes,
			x->vmemmap_peak_bytes, x->conversions, x->convert_calls, x->convert_p50,
			x->convert_p99, x->convert_max, x->eagain, x->ebusy,
			x->eopnotsupp, x->pin_wait_ns, x->shatters,
			x->collapses, x->pool_pages_returned, x->zaps,
			x->wall_ns, x->peak_rss_bytes);
		json_kernel(f, &o->model, x);
		fprintf(f, "\n        }");
	}
	if (last)
		fprintf(f, "\n      ]\n    }\n  ");
	fprintf(f, "]\n}\n");
}

/* ---------------------------------------------------------------- plots */

static int plot(const struct run *runs, unsigned int n, const struct opts *o,
		const char *dir)
{
	const struct workload *last = NULL;
	char path[4096];
	int rc, nr_wl = 0;
	FILE *f;

	if (mkdir(dir, 0777) && errno != EEXIST) {
		fprintf(stderr, "gmem: compare: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/compare.dat", dir);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "gmem: compare: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "# run guest1g%% guest2m%% guest4k%% meta/GiB vmemmap/GiB "
		   "p50us p99us maxus kernel_ms failed workload# policy\n");
	for (unsigned int i = 0; i < n; i++) {
		const struct wl_result *x = &runs[i].res;
		struct kcost k;

		if (x->error)
			continue;
		if (runs[i].wl != last) {
			last = runs[i].wl;
			nr_wl++;
		}
		kcost_of(&o->model, &x->ev, &k);
		fprintf(f, "\"%s/%s\" %.3f %.3f %.3f %.1f %.1f %.3f %.3f "
			"%.3f %.3f %" PRIu64 " %d \"%s\"\n", runs[i].wl->name,
			policy_name(runs[i].policy),
			pct(x->guest_at[0], x->guest_bytes),
			pct(x->guest_at[1], x->guest_bytes),
			pct(x->guest_at[2], x->guest_bytes),
			per_gib(x->meta_bytes, x->guest_bytes),
			per_gib(x->vmemmap_bytes, x->guest_bytes),
			x->convert_p50 / 1e3, x->convert_p99 / 1e3,
			x->convert_max / 1e3, k.total / 1e6,
			x->eagain + x->ebusy + x->eopnotsupp, nr_wl - 1,
			policy_name(runs[i].policy));
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/compare.gp", dir);
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "gmem: compare: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f,
		"set terminal pngcairo size 1200,600 font 'sans,10'\n"
		"set datafile separator whitespace\n"
		"set style data histograms\n"
		"set style fill solid 0.85 border -1\n"
		"set xtics rotate by 35 right nomirror\n"
		"set bmargin 9\n"
		"set key outside right top\n"
		"set grid ytics\n"
		"set output 'coverage.png'\n"
		"set title 'Guest memory mapped at each level (%%, after a full prefault)'\n"
		"set style histogram rowstacked\n"
		"set yrange [0:100]\n"
		"plot 'compare.dat' using 2:xtic(1) title '1G', '' using 3 title '2M', '' using 4 title '4K'\n"
		"set output 'metadata.png'\n"
		"set title 'Metadata per GiB of guest memory (bytes, log scale)'\n"
		"set style histogram clustered gap 1\n"
		"set yrange [1:*]\n"
		"set logscale y\n"
		"plot 'compare.dat' using ($5+1):xtic(1) title 'gmem descriptors', '' using ($6+1) title 'kernel vmemmap'\n"
		"set output 'latency.png'\n"
		"set title 'Conversion latency, every call (ns, log scale)'\n"
		"set yrange [10:*]\n"
		"plot 'compare.dat' using ($7*1000):xtic(1) title 'p50', '' using ($8*1000) title 'p99', '' using ($9*1000) title 'max'\n");
	/* the trade-off: a panel per workload, metadata against modelled
	 * kernel time, runs with failed conversions or refused pins marked */
	fprintf(f,
		"reset\n"
		"set terminal pngcairo size 1400,%d font 'sans,10'\n"
		"set output 'tradeoff.png'\n"
		"set multiplot layout %d,1 title 'Metadata per GiB (gmem + vmemmap) against modelled kernel time; "
		"X = failed conversions or refused pins'\n"
		"set logscale xy\n"
		"set grid\n"
		"set xlabel 'metadata bytes per GiB'\n"
		"set ylabel 'kernel ms (model)'\n"
		"set key off\n"
		"wl = \"",
		260 * (nr_wl ? nr_wl : 1), nr_wl ? nr_wl : 1);
	last = NULL;
	for (unsigned int i = 0; i < n; i++)
		if (!runs[i].res.error && runs[i].wl != last) {
			last = runs[i].wl;
			fprintf(f, "%s%s", i ? " " : "", last->name);
		}
	fprintf(f, "\"\n"
		"do for [k=0:%d] {\n"
		"  set title word(wl, k + 1)\n"
		"  plot 'compare.dat' using ($12 == k ? $5 + $6 + 1 : 1/0):($10 + 1e-3):13 "
		"with labels point pt 7 ps 1.5 offset char 1,0.6, "
		"'' using ($12 == k && $11 > 0 ? $5 + $6 + 1 : 1/0):($10 + 1e-3) with points pt 2 ps 3 lw 2\n"
		"}\n"
		"unset multiplot\n", nr_wl ? nr_wl - 1 : 0);
	fclose(f);
	snprintf(path, sizeof(path), "cd '%s' && gnuplot compare.gp", dir);
	rc = system(path);
	if (rc != 0) {
		fprintf(stderr, "gmem: compare: gnuplot failed (is it installed? "
			"apt-get install gnuplot-nox); data left in %s\n", dir);
		return -1;
	}
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "gmem: compare: wrote %s/coverage.png, "
			"metadata.png, latency.png, tradeoff.png\n", dir);
	return 0;
}

/* ----------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fprintf(f, "usage: gmem compare [--workload W[,W...]] [--policy P[,P...]]\n"
		   "                    [--guest-size S] [--seed N] [--ops N]\n"
		   "                    [--backing auto|hugetlb|memfd|none]\n"
		   "                    [--json | --wide] [--plot DIR]\n"
		   "                    [--emit-trace FILE|-]\n"
		   "                    [--calibration FILE]\n");
}

const char compare_help[] =
	"Runs built-in workloads under each policy (4k, a, b-eager, b-lazy,\n"
	"b-adaptive), each run in a process of its own, and prints per\n"
	"workload one table in 100 columns: guest and IOMMU memory mapped\n"
	"with huge entries, metadata per GiB (gmem's descriptors and the\n"
	"kernel's vmemmap), conversions, failed conversions and refused\n"
	"long-term pins, the modelled kernel time and its largest part, and\n"
	"the wall time; then a verdict (least metadata, fewest failures,\n"
	"lowest modelled kernel time) and a legend.  --wide prints every\n"
	"figure instead: mapping levels 1G/2M/4K, conversion latency\n"
	"p50/p99/max, pin waits, splits, merges, pages returned, peak RSS,\n"
	"and the modelled kernel time by part.\n"
	"\n"
	"Workloads (the first three follow published guest behaviour, the\n"
	"others are synthetic; WORKLOADS.md gives the sources):\n"
	"  tdx-boot       4 GiB on 1G pages: firmware bounce pages flipped up\n"
	"                 to 1000 times, SWIOTLB shared in 2 MiB MapGPA\n"
	"                 chunks, 2,700 4K driver pages\n"
	"  snp-boot       4 GiB on 1G pages: SWIOTLB shared by page state\n"
	"                 changes, RAM above 4 GiB accepted lazily 4 MiB at a\n"
	"                 time\n"
	"  vfio-snp       4 GiB on 1G pages: 7.75% shared, each shared 4K page\n"
	"                 pinned and IOMMU-mapped by the VMM, DMA buffers\n"
	"                 reallocated\n"
	"  io-churn       2 GiB on 1G pages: bounce buffer, virtio pages,\n"
	"                 I/O buffer churn under in-flight host I/O\n"
	"  pkvm-io        2 GiB on 2M pages: share/pin/unpin/unshare per I/O\n"
	"  vfio-longterm  4 GiB on 1G pages: long-term pinned DMA buffers\n"
	"                 beside converting pages\n"
	"  balloon        4 GiB on 2M pages: punch whole and partial huge\n"
	"                 pages, touch again\n"
	"  scale          1 TiB (metadata only) on 1G pages, 10^6 conversions;\n"
	"                 4k and b-eager run at 16 GiB (their per-4K\n"
	"                 metadata is the cost compared; it is linear in size)\n"
	"\n"
	"Options:\n"
	"  --workload W,...   only these workloads (default: all)\n"
	"  --policy P,...     only these policies (default: all five)\n"
	"  --guest-size S     guest memory size (e.g. 4G; a multiple of the\n"
	"                     workload's huge page size)\n"
	"  --seed N           the guest's choices (default 1): every policy\n"
	"                     runs the same guest\n"
	"  --ops N            the workload's operation count (firmware\n"
	"                     rounds, 4 MiB chunks accepted after boot,\n"
	"                     buffers reallocated, I/Os, conversions,\n"
	"                     balloon rounds)\n"
	"  --merge-delay N    b-adaptive's merge delay, in conversions of the\n"
	"                     file (default 8192; 0 merges at once)\n"
	"  --backing B        the pool's memory (default: the workload's, auto\n"
	"                     = hugetlbfs where enough huge pages are free)\n"
	"  --json             the JSON of JSON.md (compare.schema.json) on\n"
	"                     stdout, not the table\n"
	"  --wide             every figure, in two wide tables\n"
	"  --plot DIR         also write coverage.png, metadata.png and\n"
	"                     latency.png into DIR (needs gnuplot)\n"
	"  --calibration F    the kernel unit costs measured by `gmem\n"
	"                     calibrate` (default: $GMEM_CALIBRATION, else\n"
	"                     ~/.cache/gmem/calibration.json); without one,\n"
	"                     published figures (COSTS.md)\n"
	"  --emit-trace FILE  run one workload under one policy in this\n"
	"                     process and write it as a self-checking trace\n"
	"                     (- for stdout); `gmem replay FILE` reproduces\n"
	"                     every statistic but the times\n"
	"\n"
	"COSTS.md, WORKLOADS.md, JSON.md and compare.schema.json are in gmem's\n"
	"documentation directory (/usr/local/share/doc/gmem by default).\n"
	"\n"
	"Exit status: 0 every run completed; 1 a run failed (its row says\n"
	"why), or the results could not be written; 2 a usage error.\n";

static int emit_trace(const struct opts *o)
{
	const struct workload *wl = NULL;
	enum gmem_policy policy = GMEM_POLICY_B_LAZY;
	struct wl_result res;
	unsigned int nw = 0, np = 0;
	FILE *f;
	int ret;

	for (unsigned int i = 0; i < nr_workloads; i++)
		if (o->wl_mask & (1U << i)) {
			wl = &workloads[i];
			nw++;
		}
	for (unsigned int i = 0; i < NR_POLICIES; i++)
		if (o->pol_mask & (1U << i)) {
			policy = all_policies[i];
			np++;
		}
	if (nw != 1 || np != 1) {
		fprintf(stderr, "gmem: compare: --emit-trace needs one "
			"--workload and one --policy\n");
		return EXIT_USAGE;
	}
	if (!strcmp(o->emit_path, "-")) {
		f = stdout;
	} else {
		f = fopen(o->emit_path, "w");
		if (!f) {
			fprintf(stderr, "gmem: compare: %s: %s\n", o->emit_path,
				strerror(errno));
			return EXIT_USAGE;
		}
	}
	ret = workload_run(wl, policy, &o->par, f, &res);
	if (f != stdout) {
		/* a write that failed before the close counts too */
		bool lost = ferror(f);

		errno = 0;
		if (fclose(f) || lost) {
			fprintf(stderr, "gmem: compare: %s: %s\n", o->emit_path,
				errno ? strerror(errno) : "write error");
			return EXIT_FAILURE;
		}
	}
	if (ret) {
		fprintf(stderr, "gmem: compare: %s under %s failed: %s (%s)\n",
			wl->name, policy_name(policy), res.what,
			gmem_errno_name(ret));
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

/* The options that take a value (the next argument). */
static bool takes_value(const char *a)
{
	static const char *const names[] = {
		"--workload", "--policy", "--guest-size", "--seed", "--ops",
		"--backing", "--plot", "--emit-trace", "--calibration",
		"--merge-delay",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(a, names[i]))
			return true;
	return false;
}

int compare_main(int argc, char **argv)
{
	struct opts o = { .par = { .seed = 1, .backing = -1,
				   .merge_delay = -1 } };
	struct progress pg = { 0 };
	struct run *runs;
	unsigned int n = 0, failed = 0;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			printf("\n%s", compare_help);
			return EXIT_SUCCESS;
		} else if (!strcmp(a, "--json")) {
			o.json = true;
			takes = false;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			o.quiet = true;
			takes = false;
		} else if (!strcmp(a, "--wide")) {
			o.wide = true;
			takes = false;
		}
		if (!takes)
			continue;
		if (!takes_value(a)) {
			fprintf(stderr, "gmem: compare: unknown option '%s'\n", a);
			usage(stderr);
			return EXIT_USAGE;
		}
		if (!v) {
			fprintf(stderr, "gmem: compare: %s needs a value\n", a);
			usage(stderr);
			return EXIT_USAGE;
		}
		if (!strcmp(a, "--workload")) {
			if (!parse_list(v, false, &o.wl_mask))
				return EXIT_USAGE;
		} else if (!strcmp(a, "--policy")) {
			if (!parse_list(v, true, &o.pol_mask))
				return EXIT_USAGE;
		} else if (!strcmp(a, "--guest-size")) {
			if (!parse_size(v, &o.par.guest_size) ||
			    !o.par.guest_size) {
				fprintf(stderr, "gmem: compare: bad size '%s'\n", v);
				return EXIT_USAGE;
			}
		} else if (!strcmp(a, "--seed")) {
			if (!parse_size(v, &o.par.seed)) {
				fprintf(stderr, "gmem: compare: bad seed '%s'\n", v);
				return EXIT_USAGE;
			}
		} else if (!strcmp(a, "--ops")) {
			if (!parse_size(v, &o.par.ops) || !o.par.ops) {
				fprintf(stderr, "gmem: compare: bad count '%s'\n", v);
				return EXIT_USAGE;
			}
		} else if (!strcmp(a, "--merge-delay")) {
			uint64_t d;

			if (!parse_size(v, &d) || d > UINT_MAX) {
				fprintf(stderr, "gmem: compare: bad merge delay "
					"'%s'\n", v);
				return EXIT_USAGE;
			}
			o.par.merge_delay = (int64_t)d;
		} else if (!strcmp(a, "--backing")) {
			static const char *const names[] = {
				"auto", "hugetlb", "memfd", "none" };
			o.par.backing = -1;
			for (int b = 0; b < 4; b++)
				if (!strcmp(v, names[b]))
					o.par.backing = b;
			if (o.par.backing < 0) {
				fprintf(stderr, "gmem: compare: unknown backing "
					"'%s'\n", v);
				return EXIT_USAGE;
			}
		} else if (!strcmp(a, "--plot")) {
			o.plot_dir = v;
		} else if (!strcmp(a, "--emit-trace")) {
			o.emit_path = v;
		} else if (!strcmp(a, "--calibration")) {
			o.calib_path = v;
		} else {
			fprintf(stderr, "gmem: compare: unknown option '%s'\n", a);
			usage(stderr);
			return EXIT_USAGE;
		}
		i++;
	}
	if (!o.wl_mask)
		o.wl_mask = (1U << nr_workloads) - 1;
	if (!o.pol_mask)
		o.pol_mask = (1U << NR_POLICIES) - 1;
	if (o.emit_path)
		return emit_trace(&o);
	/* the kernel cost model: a saved calibration, else published */
	if (!o.calib_path)
		o.calib_path = cost_default_path();
	if (cost_load(o.calib_path, &o.model) == 0) {
		o.calibrated = true;
	} else {
		cost_published(&o.model);
		o.model.when[0] = 0;
	}
	o.par.model = &o.model;

	runs = calloc((size_t)nr_workloads * NR_POLICIES, sizeof(*runs));
	if (!runs) {
		fprintf(stderr, "gmem: compare: out of memory\n");
		return EXIT_FAILURE;
	}
	for (unsigned int w = 0; w < nr_workloads; w++)
		for (unsigned int p = 0; p < NR_POLICIES; p++)
			if ((o.wl_mask & (1U << w)) && (o.pol_mask & (1U << p))) {
				runs[n].wl = &workloads[w];
				runs[n].policy = all_policies[p];
				n++;
			}
	pg.on = !o.quiet && isatty(STDERR_FILENO);
	pg.start_ns = now_ns();
	pg.total = n;
	for (unsigned int k = 0; k < n; k++) {
		char label[64];

		snprintf(label, sizeof(label), "%s %s", runs[k].wl->name,
			 policy_name(runs[k].policy));
		pg.index = k;
		pg.label = label;
		progress_cb(&pg, 0);
		run_one(&runs[k], &o, &pg);
		failed += runs[k].res.error != 0;
	}
	progress_end(&pg);
	if (o.json) {
		print_json(runs, n, &o, stdout);
	} else if (o.wide) {
		print_table(runs, n, stdout);
		print_kernel_table(runs, n, &o, stdout);
	} else {
		print_compact(runs, n, &o, stdout);
	}
	if (o.plot_dir && plot(runs, n, &o, o.plot_dir))
		failed++;
	free(runs);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
