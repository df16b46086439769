// SPDX-License-Identifier: MIT
/*
 * bench.c - micro-benchmarks of libgmem, with kernel anchors measured in
 * the same run on the same CPU, so that every gmem figure is read as a
 * ratio to something the kernel does and not as an absolute.
 *
 * Method.  Each figure is the median of R samples; a sample times a batch
 * of B operations with clock_gettime(CLOCK_MONOTONIC) and divides by B
 * (the "runs" column says RxB).  Every benchmark does untimed warm-up
 * iterations first.  The calling thread is pinned to one CPU with
 * sched_setaffinity() (the first CPU of the inherited mask; the second
 * thread of the 2-thread pin benchmark to the next one).  The clock's own
 * cost is measured and printed; it is included in, not subtracted from,
 * the per-operation (B = 1) figures.  Setup, resets and statistics checks
 * between samples are never timed.
 *
 * Kernel anchors (the real kernel, on a memfd or hugetlbfs memfd):
 *   k.zap+refault.4k          madvise(MADV_DONTNEED) of one 4K page of a
 *                             populated MAP_SHARED memfd mapping plus the
 *                             write that faults it back (the page stays in
 *                             the page cache): what the kernel pays to take
 *                             a page away from the host and give it back.
 *   k.refault.4k              the write fault alone, on each of the 512
 *                             pages of a 2 MiB range zapped (untimed) just
 *                             before: the kernel's counterpart of
 *                             gmem_fault() on a page with no PTE.
 *   k.mprotect.4k.none+back   mprotect() of one 4K page in the middle of a
 *                             2 MiB-aligned populated memfd mapping to
 *                             PROT_NONE and back: a VMA split into three and
 *                             merged back, the kernel's nearest analogue of
 *                             gmem's split-then-merge pair.
 *   k.hugetlb.2M.first-touch  the first write to a 2 MiB hugetlbfs page
 *                             (MFD_HUGETLB | MFD_HUGE_2MB): allocation from
 *                             the hugetlb pool, clearing 2 MiB, the PMD.
 *   k.hugetlb.2M.punch        fallocate(PUNCH_HOLE | KEEP_SIZE) of that
 *                             page: unmap and free back to the pool.
 *   The hugetlb anchors need one free 2 MiB huge page.  As root the
 *   program raises /proc/sys/vm/nr_hugepages by a few pages if none is
 *   free and restores the original value as soon as the anchor is done
 *   (also on exit and on SIGINT/SIGTERM); otherwise it skips them with a
 *   one-line reason.
 *
 * gmem (the library as built, backing none unless said otherwise; a
 * conversion without GMEM_CONVERT_ZERO never touches memory, so metadata
 * is all there is to measure and a 1 GiB pool costs no RAM):
 *   conv.4k.split.<policy>.<size>.s2p / .p2s
 *                             gmem_convert() of one 4K page shared->private
 *                             and private->shared, on a block already split
 *                             to 4K; a sample converts pages 2..17 one call
 *                             each to private, then (timed apart) back:
 *                             b-lazy after page 1 was made private (so the
 *                             block stays split; the statistics prove no
 *                             split or merge happened while measuring), or
 *                             b-eager.  The file is mapped by one mm with
 *                             no PTE on the pages and was accessed whole by
 *                             the guest once.  Anchor: k.zap+refault.4k;
 *                             the project's target is ratio <= 1.
 *   conv.4k.intact.b-lazy.<size>.s2p+split / .p2s+merge / .pair
 *                             gmem_convert() of page 0 of an intact shared
 *                             huge page to private (which under b-lazy
 *                             splits it: 2M->4K, or 1G->2M->4K), then back
 *                             to shared (which merges it back: HVO
 *                             restored).  Each half is timed alone; .pair
 *                             is the median of the per-iteration sums.  In
 *                             every measured iteration the file's
 *                             shatters and collapses counters are checked
 *                             to have grown by exactly 1 (2M) or 2 (1G);
 *                             the note column says so.  Anchor of the
 *                             halves: k.zap+refault.4k; of the pair:
 *                             k.mprotect.4k.none+back (split+merge).
 *   split.4k-in-1G-vs-2M      the 1G s2p+split figure against the 2M one:
 *                             the multi-level split should make converting
 *                             one 4K page of a 1 GiB page cost no more than
 *                             in a 2 MiB page plus a constant, taken here
 *                             as at most one more 512-entry level (ratio
 *                             <= 2), not 512 2M->4K splits.
 *   fault.4k.<policy>.2M      gmem_fault(GMEM_WRITE) of a 4K page with no
 *                             PTE (memfd backing).  A sample faults each of
 *                             the 512 pages of a 2 MiB huge page once;
 *                             between samples (untimed) the whole huge page
 *                             is converted to private and back, which zaps
 *                             all 512 PTEs and, being whole-block, neither
 *                             splits nor frees anything.  Page tables stay,
 *                             as MADV_DONTNEED leaves them.  Anchor:
 *                             k.refault.4k.
 *   pin+unpin.4k.<policy>.2M.1t
 *                             gmem_pin() of one 4K shared page (PTE
 *                             present, one page-address output) followed
 *                             by gmem_unpin() of its id, on one thread in
 *                             batches.  Target: >= 20 million pairs per
 *                             second on one core.
 *   scale.<op>.b-lazy.1t.<layout> / scale.<op>.b-lazy.2t.<layout>
 *                             <op> (pin+unpin of one 4K page; gmem_fault()
 *                             of a page whose PTE is present;
 *                             gmem_host_read() of one byte) on one thread,
 *                             then on two threads at once pinned to two
 *                             CPUs, each on its own page in its own 2 MiB
 *                             huge page: of one file through one mm
 *                             (1file), or each of its own file and mm in
 *                             one pool (2files).  The samples alternate in
 *                             one run.  The 2t row's ns/op and ops/s are
 *                             aggregates (wall time / operations of both);
 *                             its ratio is throughput, 2t over 1t (2.0 is
 *                             perfect scaling).  Target: >= 1.8.
 *   view.first-touch.4k.same-cpu / .other-cpu
 *                             the first write to each of the 512 pages of
 *                             a 2 MiB huge page through a view
 *                             (gmem_mm_view_opts(), memfd backing): a
 *                             userfaultfd minor fault that the view's
 *                             handler thread resolves (gmem's fault path,
 *                             UFFDIO_CONTINUE), the handler pinned to the
 *                             toucher's CPU or to the second CPU.  Between
 *                             samples (untimed) the huge page goes private
 *                             and back, zapping every entry.  Anchor:
 *                             k.refault.4k, measured again in the group
 *                             when --filter leaves the anchor out.
 *
 * Usage: bench [--quick] [--json] [--filter SUBSTR]
 *   --quick    few runs (a smoke test; a few seconds)
 *   --json     the results as a JSON array on stdout, comments on stderr
 *   --filter   only benchmarks whose name contains SUBSTR (anchors that do
 *              not match are not run, and ratios to them show "-")
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "gmem.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)	/* log2(2 MiB) << MFD_HUGE_SHIFT */
#endif

#define PG 4096ULL
#define PTRS 512

/* ------------------------------------------------------------- options */

static struct {
	bool quick, json;
	const char *filter;
	unsigned int runs;	/* samples of single operations */
	unsigned int bruns;	/* samples of batched operations */
	unsigned int warm;	/* untimed warm-up iterations */
	unsigned int pin_batch;	/* pin+unpin pairs per sample */
	int cpu[2];		/* CPUs for thread 0 and 1; -1: not pinned */
	double clock_ns;	/* cost of one clock_gettime() */
} opt;

/* -------------------------------------------------------------- output */

static void info(const char *fmt, ...)
{
	FILE *out = opt.json ? stderr : stdout;
	va_list ap;

	fputs("# ", out);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

static void __attribute__((noreturn)) die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A libgmem call must return exactly 0; anything else fails loudly. */
#define G(call)								\
	do {								\
		int __r = (call);					\
		if (__r)						\
			die("%s:%d: %s returned %d (%s)", __FILE__,	\
			    __LINE__, #call, __r,			\
			    __r < 0 ? gmem_errno_name(__r) : "positive"); \
	} while (0)

/* A system call must not return -1. */
#define S(call)								\
	do {								\
		if ((long)(call) == -1L)				\
			die("%s:%d: %s: %s", __FILE__, __LINE__, #call,	\
			    strerror(errno));				\
	} while (0)

/* -------------------------------------------------------------- results */

enum target_kind {
	T_NONE,
	T_RATIO_MAX,	/* ratio to the anchor <= value */
	T_OPS_MIN,	/* operations per second >= value */
	T_SCALE_MIN,	/* throughput over the anchor's (1 thread) >= value */
};

struct result {
	char name[64];
	double ns;		/* median ns per operation */
	unsigned int runs;	/* samples */
	unsigned int batch;	/* operations per sample */
	const char *anchor;	/* name of the anchor result, or NULL */
	char anchor_name[64];	/* its copy (the caller's may not live on) */
	double anchor_ns;	/* the anchor's figure if it is not a result */
	enum target_kind tk;
	double tv;
	char note[96];
};

#define MAX_RESULTS 64
static struct result results[MAX_RESULTS];
static unsigned int nr_results;
static struct result scratch;	/* for results the filter drops */

static bool wanted(const char *name)
{
	return !opt.filter || strstr(name, opt.filter);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of @n samples; sorts them in place. */
static double median(double *s, unsigned int n)
{
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static struct result *report(const char *name, double *samples,
			     unsigned int n, unsigned int batch,
			     const char *anchor)
{
	struct result *r;

	if (!wanted(name)) {
		memset(&scratch, 0, sizeof(scratch));
		return &scratch;
	}
	if (nr_results == MAX_RESULTS)
		die("too many results");
	r = &results[nr_results++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->ns = median(samples, n);
	r->runs = n;
	r->batch = batch;
	if (anchor) {
		snprintf(r->anchor_name, sizeof(r->anchor_name), "%s", anchor);
		r->anchor = r->anchor_name;
	}
	return r;
}

static const struct result *find_result(const char *name)
{
	for (unsigned int i = 0; name && i < nr_results; i++)
		if (!strcmp(results[i].name, name))
			return &results[i];
	return NULL;
}

static double ratio_of(const struct result *r)
{
	const struct result *a = find_result(r->anchor);

	/* a scaling row's ratio is throughput: the anchor's time over its */
	if (a && a->ns > 0 && r->tk == T_SCALE_MIN)
		return a->ns / r->ns;
	if (a && a->ns > 0)
		return r->ns / a->ns;
	return r->anchor_ns > 0 ? r->ns / r->anchor_ns : -1;
}

/* 1: met, 0: not met, -1: no target or no anchor to judge by. */
static int target_met(const struct result *r)
{
	double ratio = ratio_of(r);

	switch (r->tk) {
	case T_RATIO_MAX:
		return ratio < 0 ? -1 : ratio <= r->tv;
	case T_OPS_MIN:
		return 1e9 / r->ns >= r->tv;
	case T_SCALE_MIN:
		return ratio < 0 ? -1 : ratio >= r->tv;
	default:
		return -1;
	}
}

static void target_text(const struct result *r, char *buf, size_t len)
{
	switch (r->tk) {
	case T_RATIO_MAX:
		snprintf(buf, len, "ratio <= %.2g", r->tv);
		break;
	case T_OPS_MIN:
		snprintf(buf, len, ">= %.0f Mops/s", r->tv / 1e6);
		break;
	case T_SCALE_MIN:
		snprintf(buf, len, "thr. >= %.2gx", r->tv);
		break;
	default:
		snprintf(buf, len, "-");
	}
}

static const char *met_text(int met)
{
	return met < 0 ? "-" : met ? "yes" : "NO";
}

static void print_table(void)
{
	printf("%-36s %10s %9s %10s %-26s %7s %-16s %-4s %s\n", "name",
	       "ns/op", "Mops/s", "runs", "anchor", "ratio", "target", "met",
	       "note");
	for (unsigned int i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];
		char runs[24], ratio[16], target[32];
		double q = ratio_of(r);

		snprintf(runs, sizeof(runs), "%ux%u", r->runs, r->batch);
		if (q < 0)
			snprintf(ratio, sizeof(ratio), "-");
		else
			snprintf(ratio, sizeof(ratio), "%.2fx", q);
		target_text(r, target, sizeof(target));
		printf("%-36s %10.1f %9.3f %10s %-26s %7s %-16s %-4s %s\n",
		       r->name, r->ns, 1e3 / r->ns, runs,
		       r->anchor ? r->anchor : "-", ratio, target,
		       met_text(target_met(r)), r->note);
	}
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			putchar('\\');
		putchar(*s);
	}
	putchar('"');
}

static void print_json(void)
{
	printf("[\n");
	for (unsigned int i = 0; i < nr_results; i++) {
		const struct result *r = &results[i];
		char target[32];
		double q = ratio_of(r);
		int met = target_met(r);

		target_text(r, target, sizeof(target));
		printf("  {\"name\": ");
		json_string(r->name);
		printf(", \"median_ns\": %.1f, \"ops_per_sec\": %.0f, "
		       "\"runs\": %u, \"batch\": %u, \"anchor\": ",
		       r->ns, 1e9 / r->ns, r->runs, r->batch);
		if (r->anchor)
			json_string(r->anchor);
		else
			printf("null");
		if (q < 0)
			printf(", \"ratio\": null");
		else
			printf(", \"ratio\": %.3f", q);
		printf(", \"target\": ");
		json_string(target);
		printf(", \"met\": %s, \"note\": ",
		       met < 0 ? "null" : met ? "true" : "false");
		json_string(r->note);
		printf("}%s\n", i + 1 < nr_results ? "," : "");
	}
	printf("]\n");
}

/* --------------------------------------------------------------- timing */

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static double *samples_alloc(unsigned int n)
{
	double *s = calloc(n, sizeof(*s));

	if (!s)
		die("out of memory for %u samples", n);
	return s;
}

/* The cost of one clock_gettime(), for the header: median of batches. */
static void measure_clock(void)
{
	double s[101];

	for (unsigned int r = 0; r < 101; r++) {
		uint64_t t0 = now_ns();

		for (unsigned int i = 0; i < 1000; i++)
			(void)now_ns();
		s[r] = (double)(now_ns() - t0) / 1000;
	}
	opt.clock_ns = median(s, 101);
}

/* ------------------------------------------------------------ CPU pins */

static void pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	S(sched_setaffinity(0, sizeof(set), &set));
}

/* The first two CPUs of the inherited affinity mask. */
static void choose_cpus(void)
{
	cpu_set_t set;
	int n = 0;

	opt.cpu[0] = opt.cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			opt.cpu[n++] = c;
}

/* ------------------------------------------------------ kernel helpers */

/* Map @len bytes of @fd shared at a 2 MiB-aligned address. */
static uint8_t *map_aligned(int fd, size_t len)
{
	size_t span = len + (2U << 20);
	uint8_t *p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		die("mmap of %zu bytes: %s", span, strerror(errno));
	a = ((uintptr_t)p + (2U << 20) - 1) & ~(uintptr_t)((2U << 20) - 1);
	if (mmap((void *)a, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 fd, 0) == MAP_FAILED)
		die("mmap of a memfd at %#lx: %s", (unsigned long)a,
		    strerror(errno));
	/* Trim the reservation around the mapping. */
	if (a > (uintptr_t)p)
		S(munmap(p, a - (uintptr_t)p));
	if ((uintptr_t)p + span > a + len)
		S(munmap((void *)(a + len), (uintptr_t)p + span - (a + len)));
	return (uint8_t *)a;
}

/* A populated 2 MiB memfd mapping, 2 MiB aligned. */
static uint8_t *memfd_2m(int *fdp)
{
	int fd = memfd_create("gmem-bench", 0);
	uint8_t *p;

	S(fd);
	S(ftruncate(fd, 2U << 20));
	p = map_aligned(fd, 2U << 20);
	for (unsigned int i = 0; i < PTRS; i++)
		p[i * PG] = 1;
	*fdp = fd;
	return p;
}

static void memfd_2m_free(int fd, uint8_t *p)
{
	S(munmap(p, 2U << 20));
	S(close(fd));
}

/* ------------------------------------------------------ kernel anchors */

/*
 * k.refault.4k's samples into @s (opt.bruns of them): each of the 512
 * pages of the 2 MiB memfd mapping @p, zapped by MADV_DONTNEED, written
 * again; ns per page.
 */
static void refault_samples(uint8_t *p, double *s)
{
	volatile uint8_t *v = p;

	for (unsigned int r = 0; r < opt.warm + opt.bruns; r++) {
		uint64_t t0;

		S(madvise(p, 2U << 20, MADV_DONTNEED));
		t0 = now_ns();
		for (unsigned int i = 0; i < PTRS; i++)
			v[i * PG] = (uint8_t)r;
		if (r >= opt.warm)
			s[r - opt.warm] = (double)(now_ns() - t0) / PTRS;
	}
}

static void anchor_zap_refault(void)
{
	const unsigned int batch = 16;
	volatile uint8_t *v;
	double *s = samples_alloc(opt.runs);
	uint8_t *p;
	int fd;

	p = memfd_2m(&fd);
	v = p;
	if (wanted("k.zap+refault.4k")) {
		for (unsigned int r = 0; r < opt.warm + opt.runs; r++) {
			uint64_t t0 = now_ns();

			for (unsigned int i = 0; i < batch; i++) {
				S(madvise(p, PG, MADV_DONTNEED));
				v[0] = (uint8_t)i;
			}
			if (r >= opt.warm)
				s[r - opt.warm] = (double)(now_ns() - t0) / batch;
		}
		report("k.zap+refault.4k", s, opt.runs, batch, NULL);
	}
	if (wanted("k.refault.4k")) {
		refault_samples(p, s);
		report("k.refault.4k", s, opt.bruns, PTRS, NULL);
	}
	memfd_2m_free(fd, p);
	free(s);
}

static void anchor_mprotect(void)
{
	const unsigned int batch = 16;
	double *s = samples_alloc(opt.runs);
	uint8_t *p, *mid;
	int fd;

	p = memfd_2m(&fd);
	mid = p + (1U << 20);	/* in the middle: a split into three VMAs */
	for (unsigned int r = 0; r < opt.warm + opt.runs; r++) {
		uint64_t t0 = now_ns();

		for (unsigned int i = 0; i < batch; i++) {
			S(mprotect(mid, PG, PROT_NONE));
			S(mprotect(mid, PG, PROT_READ | PROT_WRITE));
		}
		if (r >= opt.warm)
			s[r - opt.warm] = (double)(now_ns() - t0) / batch;
	}
	report("k.mprotect.4k.none+back", s, opt.runs, batch, NULL);
	memfd_2m_free(fd, p);
	free(s);
}

/* --- hugetlb: borrow huge pages from the kernel, always give them back */

static const char nr_hugepages_path[] = "/proc/sys/vm/nr_hugepages";
static const char hp2m_dir[] = "/sys/kernel/mm/hugepages/hugepages-2048kB";
static char hugepages_orig[32];		/* the value to restore, or "" */

static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "r");
	bool ok;

	if (!fp)
		return false;
	ok = fgets(buf, (int)len, fp) != NULL;
	fclose(fp);
	return ok;
}

static long read_long(const char *path)
{
	char buf[32];

	return read_line(path, buf, sizeof(buf)) ? strtol(buf, NULL, 10) : -1;
}

/* Async-signal-safe: open, write, close. */
static bool write_hugepages(const char *val)
{
	int fd = open(nr_hugepages_path, O_WRONLY);
	size_t n = strlen(val);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, val, n) == (ssize_t)n;
	close(fd);
	return ok;
}

static void hugepages_restore(void)
{
	if (!hugepages_orig[0])
		return;
	if (!write_hugepages(hugepages_orig)) {
		static const char msg[] = "bench: could not restore "
					  "/proc/sys/vm/nr_hugepages\n";

		/* Async-signal-safe report; the value to restore is lost. */
		(void)!write(2, msg, sizeof(msg) - 1);
	}
	hugepages_orig[0] = '\0';
}

static void on_signal(int sig)
{
	hugepages_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Free, unreserved 2 MiB huge pages. */
static long hugepages_available(void)
{
	char path[128];
	long free_hp, resv;

	snprintf(path, sizeof(path), "%s/free_hugepages", hp2m_dir);
	free_hp = read_long(path);
	snprintf(path, sizeof(path), "%s/resv_hugepages", hp2m_dir);
	resv = read_long(path);
	return free_hp < 0 || resv < 0 ? -1 : free_hp - resv;
}

/* Make one 2 MiB huge page available; NULL, or why it cannot be. */
static const char *hugepages_borrow(void)
{
	char buf[32];
	long orig;

	if (hugepages_available() < 0)
		return "no 2 MiB hugetlb pages (no hugepages-2048kB in sysfs)";
	if (hugepages_available() >= 1)
		return NULL;
	if (geteuid() != 0)
		return "no free 2 MiB huge page and not root to reserve one";
	if (!read_line(nr_hugepages_path, buf, sizeof(buf)))
		return "cannot read /proc/sys/vm/nr_hugepages";
	buf[strcspn(buf, "\n")] = '\0';
	orig = strtol(buf, NULL, 10);
	snprintf(hugepages_orig, sizeof(hugepages_orig), "%s", buf);
	snprintf(buf, sizeof(buf), "%ld", orig + 2);
	if (!write_hugepages(buf)) {
		hugepages_orig[0] = '\0';
		return "cannot write /proc/sys/vm/nr_hugepages";
	}
	info("raised %s from %s to %s for the hugetlb anchors (restored after)",
	     nr_hugepages_path, hugepages_orig, buf);
	if (hugepages_available() < 1) {
		hugepages_restore();
		return "the kernel could not allocate a 2 MiB huge page";
	}
	return NULL;
}

static void anchor_hugetlb(void)
{
	double *touch = samples_alloc(opt.bruns), *punch = samples_alloc(opt.bruns);
	const char *why = hugepages_borrow();
	volatile uint8_t *v;
	uint8_t *p;
	int fd;

	if (why) {
		info("skipping the hugetlb anchors: %s", why);
		goto out;
	}
	fd = memfd_create("gmem-bench-hugetlb", MFD_HUGETLB | MFD_HUGE_2MB);
	if (fd < 0) {
		info("skipping the hugetlb anchors: memfd_create(MFD_HUGETLB): %s",
		     strerror(errno));
		goto restore;
	}
	S(ftruncate(fd, 2U << 20));
	p = mmap(NULL, 2U << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		info("skipping the hugetlb anchors: mmap of a hugetlb memfd: %s",
		     strerror(errno));
		close(fd);
		goto restore;
	}
	v = p;
	for (unsigned int r = 0; r < opt.warm + opt.bruns; r++) {
		uint64_t t0 = now_ns(), t1, t2;

		v[0] = 1;
		t1 = now_ns();
		S(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			    2U << 20));
		t2 = now_ns();
		if (r >= opt.warm) {
			touch[r - opt.warm] = (double)(t1 - t0);
			punch[r - opt.warm] = (double)(t2 - t1);
		}
	}
	report("k.hugetlb.2M.first-touch", touch, opt.bruns, 1, NULL);
	report("k.hugetlb.2M.punch", punch, opt.bruns, 1, NULL);
	S(munmap(p, 2U << 20));
	S(close(fd));
restore:
	if (hugepages_orig[0]) {
		hugepages_restore();
		if (read_long(nr_hugepages_path) >= 0)
			info("restored %s to %ld", nr_hugepages_path,
			     read_long(nr_hugepages_path));
	}
out:
	free(touch);
	free(punch);
}

/* ------------------------------------------------------- gmem helpers */

struct gctx {
	struct gmem_pool *pool;
	struct gmem_file *file;
	struct gmem_mm *mm;
	uint64_t size;
};

static const char *policy_name(enum gmem_policy pol)
{
	switch (pol) {
	case GMEM_POLICY_4K:
		return "4k";
	case GMEM_POLICY_A:
		return "a";
	case GMEM_POLICY_B_EAGER:
		return "b-eager";
	default:
		return "b-lazy";
	}
}

/* One pool of @count huge pages, one all-shared file over all of it, one
 * mm that maps it. */
static void gctx_init(struct gctx *c, uint64_t page_size, uint64_t count,
		      enum gmem_backing backing, enum gmem_policy pol)
{
	memset(c, 0, sizeof(*c));
	c->size = page_size * count;
	G(gmem_pool_create(page_size, count, backing, &c->pool));
	G(gmem_file_create(c->pool, c->size, pol, GMEM_FILE_INIT_SHARED,
			   &c->file));
	G(gmem_mm_create(c->pool, NULL, &c->mm));
	G(gmem_mmap(c->mm, c->file));
}

/* Validate every invariant, close the file, check the pool came back. */
static void gctx_fini(struct gctx *c)
{
	struct gmem_stats st;
	char why[256];

	if (gmem_check(c->pool, why, sizeof(why)))
		die("gmem_check: %s", why);
	G(gmem_file_close(c->file));
	G(gmem_stats(c->pool, NULL, &st));
	if (st.pool_free != st.pool_total || st.pins)
		die("pool not back at its baseline: free %llu of %llu, pins %llu",
		    (unsigned long long)st.pool_free,
		    (unsigned long long)st.pool_total,
		    (unsigned long long)st.pins);
	gmem_pool_destroy(c->pool);
}

static void file_stats(struct gctx *c, struct gmem_stats *st)
{
	G(gmem_stats(c->pool, c->file, st));
}

static const char *size_name(uint64_t page_size)
{
	return page_size == GMEM_1G ? "1G" : "2M";
}

/* ------------------------------------------- conversion on a split block */

static void bench_conv_split(enum gmem_policy pol, uint64_t page_size)
{
	const unsigned int batch = 16;
	double *s2p = samples_alloc(opt.runs), *p2s = samples_alloc(opt.runs);
	char n1[48], n2[48];
	struct gmem_stats a, b;
	struct gctx c;
	struct result *r;

	snprintf(n1, sizeof(n1), "conv.4k.split.%s.%s.s2p", policy_name(pol),
		 size_name(page_size));
	snprintf(n2, sizeof(n2), "conv.4k.split.%s.%s.p2s", policy_name(pol),
		 size_name(page_size));
	if (!wanted(n1) && !wanted(n2))
		goto out;
	gctx_init(&c, page_size, 1, GMEM_BACKING_NONE, pol);
	G(gmem_guest_access(c.file, 0, c.size, 0));
	if (pol == GMEM_POLICY_B_LAZY)	/* split it: page 1 private */
		G(gmem_convert(c.file, PG, PG, GMEM_PRIVATE, 0, 0, NULL));
	file_stats(&c, &a);
	if (!a.folios_4k)
		die("%s: the block is not split (no 4K folio)", n1);
	for (unsigned int r = 0; r < opt.warm + opt.runs; r++) {
		uint64_t t0 = now_ns(), t1, t2;

		for (uint64_t pg = 2; pg < 2 + batch; pg++)
			G(gmem_convert(c.file, pg * PG, PG, GMEM_PRIVATE, 0, 0,
				       NULL));
		t1 = now_ns();
		for (uint64_t pg = 2; pg < 2 + batch; pg++)
			G(gmem_convert(c.file, pg * PG, PG, GMEM_SHARED, 0, 0,
				       NULL));
		t2 = now_ns();
		if (r == opt.warm)
			file_stats(&c, &a);
		if (r >= opt.warm) {
			s2p[r - opt.warm] = (double)(t1 - t0) / batch;
			p2s[r - opt.warm] = (double)(t2 - t1) / batch;
		}
	}
	file_stats(&c, &b);
	/* Stats at the first measured iteration's end; none split or merged
	 * from then on (the first one is covered by the folio check above). */
	if (b.shatters != a.shatters || b.collapses != a.collapses)
		die("%s: a split or merge happened while measuring", n1);
	r = report(n1, s2p, opt.runs, batch, "k.zap+refault.4k");
	r->tk = T_RATIO_MAX;
	r->tv = 1.0;
	snprintf(r->note, sizeof(r->note), "no split/merge while measured");
	r = report(n2, p2s, opt.runs, batch, "k.zap+refault.4k");
	r->tk = T_RATIO_MAX;
	r->tv = 1.0;
	snprintf(r->note, sizeof(r->note), "no split/merge while measured");
	gctx_fini(&c);
out:
	free(s2p);
	free(p2s);
}

static void bench_conv_split_all(void)
{
	bench_conv_split(GMEM_POLICY_B_LAZY, GMEM_2M);
	bench_conv_split(GMEM_POLICY_B_LAZY, GMEM_1G);
	bench_conv_split(GMEM_POLICY_B_EAGER, GMEM_2M);
}

/* ----------------------------- conversion on an intact page: split, merge */

/* Returns the median ns of the s2p+split half, or -1 if not measured. */
static double bench_conv_intact(uint64_t page_size)
{
	const char *sz = size_name(page_size);
	/* 2M: 2M->4K; 1G: 1G->2M and 2M->4K (and the merges back) */
	const uint64_t levels = page_size == GMEM_1G ? 2 : 1;
	double *s2p = samples_alloc(opt.runs), *p2s = samples_alloc(opt.runs);
	double *pair = samples_alloc(opt.runs), split_ns = -1;
	char n1[48], n2[48], n3[48];
	struct gmem_stats a, b;
	struct gctx c;
	struct result *r;

	snprintf(n1, sizeof(n1), "conv.4k.intact.b-lazy.%s.s2p+split", sz);
	snprintf(n2, sizeof(n2), "conv.4k.intact.b-lazy.%s.p2s+merge", sz);
	snprintf(n3, sizeof(n3), "conv.4k.intact.b-lazy.%s.pair", sz);
	if (!wanted(n1) && !wanted(n2) && !wanted(n3) &&
	    !wanted("split.4k-in-1G-vs-2M"))
		goto out;
	gctx_init(&c, page_size, 1, GMEM_BACKING_NONE, GMEM_POLICY_B_LAZY);
	G(gmem_guest_access(c.file, 0, c.size, 0));
	for (unsigned int r = 0; r < opt.warm + opt.runs; r++) {
		uint64_t t0, t1, t2, t3;

		file_stats(&c, &a);
		if (a.folios_4k || a.folios_2m != (page_size == GMEM_2M))
			die("%s: the huge page is not intact", n1);
		t0 = now_ns();
		G(gmem_convert(c.file, 0, PG, GMEM_PRIVATE, 0, 0, NULL));
		t1 = now_ns();
		file_stats(&c, &b);
		if (b.shatters - a.shatters != levels)
			die("%s: %llu shatters, expected %llu", n1,
			    (unsigned long long)(b.shatters - a.shatters),
			    (unsigned long long)levels);
		t2 = now_ns();
		G(gmem_convert(c.file, 0, PG, GMEM_SHARED, 0, 0, NULL));
		t3 = now_ns();
		file_stats(&c, &a);
		if (a.collapses - b.collapses != levels)
			die("%s: %llu collapses, expected %llu", n2,
			    (unsigned long long)(a.collapses - b.collapses),
			    (unsigned long long)levels);
		if (r >= opt.warm) {
			s2p[r - opt.warm] = (double)(t1 - t0);
			p2s[r - opt.warm] = (double)(t3 - t2);
			pair[r - opt.warm] = (double)(t1 - t0 + t3 - t2);
		}
	}
	r = report(n1, s2p, opt.runs, 1, "k.zap+refault.4k");
	snprintf(r->note, sizeof(r->note), "shatters +%llu every run",
		 (unsigned long long)levels);
	split_ns = r->ns;
	if (!split_ns)	/* dropped by the filter: still needed below */
		split_ns = median(s2p, opt.runs);
	r = report(n2, p2s, opt.runs, 1, "k.zap+refault.4k");
	snprintf(r->note, sizeof(r->note), "collapses +%llu every run",
		 (unsigned long long)levels);
	r = report(n3, pair, opt.runs, 1, "k.mprotect.4k.none+back");
	snprintf(r->note, sizeof(r->note),
		 "shatters +%llu, collapses +%llu every run",
		 (unsigned long long)levels, (unsigned long long)levels);
	gctx_fini(&c);
out:
	free(s2p);
	free(p2s);
	free(pair);
	return split_ns;
}

static void bench_conv_intact_all(void)
{
	double t2m = bench_conv_intact(GMEM_2M);
	double t1g = bench_conv_intact(GMEM_1G);
	struct result *r;

	if (t2m < 0 || t1g < 0)
		return;
	/* One "sample" each side: the two medians. */
	r = report("split.4k-in-1G-vs-2M", &t1g, 1, 1,
		   "conv.4k.intact.b-lazy.2M.s2p+split");
	r->anchor_ns = t2m;	/* also when the filter dropped that row */
	r->tk = T_RATIO_MAX;
	r->tv = 2.0;
	snprintf(r->note, sizeof(r->note), "1G = 2M (%.0f ns) + %.0f ns",
		 t2m, t1g - t2m);
}

/* ----------------------------------------------------------- host fault */

static void bench_fault(enum gmem_policy pol)
{
	double *s = samples_alloc(opt.bruns);
	struct gmem_stats st;
	struct gctx c;
	char n[48];
	struct result *r;

	snprintf(n, sizeof(n), "fault.4k.%s.2M", policy_name(pol));
	if (!wanted(n))
		goto out;
	gctx_init(&c, GMEM_2M, 1, GMEM_BACKING_MEMFD, pol);
	for (unsigned int r = 0; r < opt.warm + opt.bruns; r++) {
		uint64_t t0;

		/* Zap all 512 PTEs: whole-block round trip, no split. */
		G(gmem_convert(c.file, 0, GMEM_2M, GMEM_PRIVATE, 0, 0, NULL));
		G(gmem_convert(c.file, 0, GMEM_2M, GMEM_SHARED, 0, 0, NULL));
		file_stats(&c, &st);
		if (st.host_ptes)
			die("%s: %llu PTEs left before faulting", n,
			    (unsigned long long)st.host_ptes);
		t0 = now_ns();
		for (uint64_t pg = 0; pg < PTRS; pg++)
			G(gmem_fault(c.mm, c.file, pg * PG, GMEM_WRITE));
		if (r >= opt.warm)
			s[r - opt.warm] = (double)(now_ns() - t0) / PTRS;
		file_stats(&c, &st);
		if (st.host_ptes != PTRS)
			die("%s: %llu PTEs after faulting 512 pages", n,
			    (unsigned long long)st.host_ptes);
	}
	r = report(n, s, opt.bruns, PTRS, "k.refault.4k");
	snprintf(r->note, sizeof(r->note),
		 "each page faulted with no PTE; memfd backing");
	gctx_fini(&c);
out:
	free(s);
}

static void bench_fault_all(void)
{
	bench_fault(GMEM_POLICY_B_LAZY);
	bench_fault(GMEM_POLICY_B_EAGER);
}

/* ------------------------------------------------------------ pin+unpin */

static void pin_unpin_loop(struct gctx *c, uint64_t off, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		void *page;
		uint64_t id;

		G(gmem_pin(c->mm, c->file, off, PG, 0, &id, &page));
		G(gmem_unpin(c->pool, id));
	}
}

static void bench_pin1(enum gmem_policy pol)
{
	double *s = samples_alloc(opt.bruns);
	struct gctx c;
	char n[48];
	struct result *r;

	snprintf(n, sizeof(n), "pin+unpin.4k.%s.2M.1t", policy_name(pol));
	if (!wanted(n))
		goto out;
	gctx_init(&c, GMEM_2M, 1, GMEM_BACKING_MEMFD, pol);
	pin_unpin_loop(&c, 0, opt.pin_batch);	/* warm-up, faults page 0 in */
	for (unsigned int r = 0; r < opt.bruns; r++) {
		uint64_t t0 = now_ns();

		pin_unpin_loop(&c, 0, opt.pin_batch);
		s[r] = (double)(now_ns() - t0) / opt.pin_batch;
	}
	r = report(n, s, opt.bruns, opt.pin_batch, NULL);
	r->tk = T_OPS_MIN;
	r->tv = 20e6;
	snprintf(r->note, sizeof(r->note), "1 thread on CPU %d", opt.cpu[0]);
	gctx_fini(&c);
out:
	free(s);
}

/* --------------------------------------------------- 2-thread scaling */

/*
 * One thread's view of a scaling benchmark: its own context (the same
 * pool, file and mm as the other thread's, or its own file and mm in the
 * same pool) and its own page, in a huge page of its own.
 */
struct scale_side {
	struct gmem_pool *pool;
	struct gmem_file *file;
	struct gmem_mm *mm;
	uint64_t off;
};

enum scale_op { SCALE_PIN, SCALE_FAULT, SCALE_READ, NR_SCALE_OPS };

static const char *const scale_op_name[NR_SCALE_OPS] = {
	"pin+unpin", "fault", "host-read",
};

static void scale_loop(const struct scale_side *x, enum scale_op op,
		       unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		void *page;
		uint64_t id;
		uint8_t v;

		switch (op) {
		case SCALE_PIN:
			G(gmem_pin(x->mm, x->file, x->off, PG, 0, &id, &page));
			G(gmem_unpin(x->pool, id));
			break;
		case SCALE_FAULT:
			G(gmem_fault(x->mm, x->file, x->off, 0));
			break;
		default:
			G(gmem_host_read(x->mm, x->file, x->off, &v));
			break;
		}
	}
}

/*
 * A barrier of two threads that spin: a thread asleep in a futex takes
 * tens of microseconds or more to wake on this machine kind (a nested
 * virtual CPU), which a pthread barrier would add to every two-thread
 * sample.  The waiting thread spins on its own CPU.
 */
struct spin_barrier {
	atomic_uint arrived;
	atomic_uint generation;
};

static void spin_barrier_wait(struct spin_barrier *b)
{
	/* acquire/release: what each did before arriving is seen after */
	unsigned int gen = atomic_load_explicit(&b->generation,
						memory_order_acquire);

	if (atomic_fetch_add_explicit(&b->arrived, 1,
				      memory_order_acq_rel) == 1) {
		atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
		atomic_store_explicit(&b->generation, gen + 1,
				      memory_order_release);
		return;
	}
	while (atomic_load_explicit(&b->generation,
				    memory_order_acquire) == gen)
		__builtin_ia32_pause();
}

struct scale_worker {
	const struct scale_side *side;
	enum scale_op op;
	struct spin_barrier *bar;
	unsigned int rounds;
};

static void *scale_worker_fn(void *arg)
{
	struct scale_worker *w = arg;

	pin_self(opt.cpu[1]);
	for (unsigned int r = 0; r < w->rounds; r++) {
		spin_barrier_wait(w->bar);
		scale_loop(w->side, w->op, opt.pin_batch);
		spin_barrier_wait(w->bar);
	}
	return NULL;
}

/*
 * One operation on one layout: samples of one thread alone and of two
 * threads at once alternate in the same run, so the ratio of their
 * throughputs is taken under the same conditions.
 */
static void bench_scale(enum scale_op op, bool two_files)
{
	double *s1 = samples_alloc(opt.bruns), *s2 = samples_alloc(opt.bruns);
	const char *layout = two_files ? "2files" : "1file";
	struct scale_side side[2];
	struct gmem_file *f2 = NULL;
	struct gmem_mm *mm2 = NULL;
	struct scale_worker w;
	struct spin_barrier bar = { 0, 0 };
	struct result *r;
	struct gctx c;
	char n1[64], n2[64];
	pthread_t t;
	int err;

	snprintf(n1, sizeof(n1), "scale.%s.b-lazy.1t.%s", scale_op_name[op],
		 layout);
	snprintf(n2, sizeof(n2), "scale.%s.b-lazy.2t.%s", scale_op_name[op],
		 layout);
	if (!wanted(n1) && !wanted(n2))
		goto out;
	if (two_files) {
		/* one pool of two huge pages, a file of one page each */
		memset(&c, 0, sizeof(c));
		c.size = GMEM_2M;
		G(gmem_pool_create(GMEM_2M, 2, GMEM_BACKING_MEMFD, &c.pool));
		G(gmem_file_create(c.pool, GMEM_2M, GMEM_POLICY_B_LAZY,
				   GMEM_FILE_INIT_SHARED, &c.file));
		G(gmem_mm_create(c.pool, NULL, &c.mm));
		G(gmem_mmap(c.mm, c.file));
		G(gmem_file_create(c.pool, GMEM_2M, GMEM_POLICY_B_LAZY,
				   GMEM_FILE_INIT_SHARED, &f2));
		G(gmem_mm_create(c.pool, NULL, &mm2));
		G(gmem_mmap(mm2, f2));
		side[1] = (struct scale_side){ c.pool, f2, mm2, 0 };
	} else {
		gctx_init(&c, GMEM_2M, 2, GMEM_BACKING_MEMFD, GMEM_POLICY_B_LAZY);
		side[1] = (struct scale_side){ c.pool, c.file, c.mm, GMEM_2M };
	}
	side[0] = (struct scale_side){ c.pool, c.file, c.mm, 0 };
	/* fault both pages in: the fault and read loops find PTEs present */
	for (int i = 0; i < 2; i++)
		G(gmem_fault(side[i].mm, side[i].file, side[i].off, GMEM_WRITE));
	w = (struct scale_worker){ &side[1], op, &bar, 1 + opt.bruns };
	err = pthread_create(&t, NULL, scale_worker_fn, &w);
	if (err)
		die("pthread_create: %s", strerror(err));
	for (unsigned int i = 0; i < 1 + opt.bruns; i++) {
		uint64_t t0 = now_ns(), t1;

		/* one thread alone (the other waits at the barrier) */
		scale_loop(&side[0], op, opt.pin_batch);
		t1 = now_ns();
		if (i)		/* round 0 is the warm-up */
			s1[i - 1] = (double)(t1 - t0) / opt.pin_batch;
		/* both at once */
		spin_barrier_wait(&bar);
		t0 = now_ns();
		scale_loop(&side[0], op, opt.pin_batch);
		spin_barrier_wait(&bar);
		if (i)
			s2[i - 1] = (double)(now_ns() - t0) /
				    (2.0 * opt.pin_batch);
	}
	pthread_join(t, NULL);
	r = report(n1, s1, opt.bruns, opt.pin_batch, NULL);
	snprintf(r->note, sizeof(r->note), "1 thread (CPU %d), %s",
		 opt.cpu[0], two_files ? "its own file and mm" :
		 "one file, one mm");
	r = report(n2, s2, opt.bruns, 2 * opt.pin_batch, n1);
	r->tk = T_SCALE_MIN;
	r->tv = 1.8;
	snprintf(r->note, sizeof(r->note),
		 "throughput of 2 threads (CPUs %d,%d) / 1; pages in 2 huge pages",
		 opt.cpu[0], opt.cpu[1]);
	if (f2) {
		G(gmem_file_close(f2));
	}
	gctx_fini(&c);
out:
	free(s1);
	free(s2);
}

static void bench_scale_all(void)
{
	if (opt.cpu[1] < 0)
		info("scale: only one CPU in the affinity mask; threads share it");
	for (int op = 0; op < NR_SCALE_OPS; op++) {
		bench_scale((enum scale_op)op, false);
		bench_scale((enum scale_op)op, true);
	}
}

static void bench_pin_all(void)
{
	bench_pin1(GMEM_POLICY_B_LAZY);
	bench_pin1(GMEM_POLICY_B_EAGER);
}

/* ------------------------------------------------- view: first touch */

/* The kernel's refault of each of 512 memfd pages zapped just before
 * (k.refault.4k), measured here too, for a ratio even when --filter
 * leaves the anchor's own group out. */
static double refault_local(void)
{
	double *s = samples_alloc(opt.bruns), ns;
	uint8_t *p;
	int fd;

	p = memfd_2m(&fd);
	refault_samples(p, s);
	ns = median(s, opt.bruns);
	memfd_2m_free(fd, p);
	free(s);
	return ns;
}

/*
 * First touch through a view (gmem_mm_view_opts()) whose handler thread
 * runs on @cpu, from this thread (on opt.cpu[0]): each of the 512 pages
 * of a 2 MiB huge page written once, every write a userfaultfd minor
 * fault resolved by the handler (gmem's fault path, UFFDIO_CONTINUE).
 * Between samples (untimed) the huge page goes private and back, which
 * zaps gmem's entries and the view's real ones.
 */
static void bench_view_touch(const char *name, int cpu, double anchor_ns)
{
	double *s = samples_alloc(opt.bruns);
	volatile uint8_t *v;
	struct gmem_stats st;
	struct result *r;
	struct gctx c;
	void *a;
	int ret;

	gctx_init(&c, GMEM_2M, 1, GMEM_BACKING_MEMFD, GMEM_POLICY_B_LAZY);
	ret = gmem_mm_view_opts(c.mm, c.file, 0, cpu, &a);
	if (ret == -ENOSYS || ret == -EPERM || ret == -EOPNOTSUPP) {
		info("%s skipped: no userfaultfd for a view (%s)", name,
		     gmem_errno_name(ret));
		gctx_fini(&c);
		free(s);
		return;
	}
	G(ret);
	v = a;
	for (unsigned int r = 0; r < opt.warm + opt.bruns; r++) {
		uint64_t t0;

		G(gmem_convert(c.file, 0, GMEM_2M, GMEM_PRIVATE, 0, 0, NULL));
		G(gmem_convert(c.file, 0, GMEM_2M, GMEM_SHARED, 0, 0, NULL));
		t0 = now_ns();
		for (unsigned int i = 0; i < PTRS; i++)
			v[i * PG] = (uint8_t)r;
		if (r >= opt.warm)
			s[r - opt.warm] = (double)(now_ns() - t0) / PTRS;
		file_stats(&c, &st);
		if (st.host_ptes != PTRS)
			die("%s: %llu host entries after touching 512 pages",
			    name, (unsigned long long)st.host_ptes);
	}
	r = report(name, s, opt.bruns, PTRS, "k.refault.4k");
	r->anchor_ns = anchor_ns;
	snprintf(r->note, sizeof(r->note),
		 "handler on CPU %d, toucher on CPU %d; memfd", cpu,
		 opt.cpu[0]);
	G(gmem_mm_unview(c.mm, c.file));
	gctx_fini(&c);
	free(s);
}

static void bench_view_all(void)
{
	const char *same = "view.first-touch.4k.same-cpu";
	const char *other = "view.first-touch.4k.other-cpu";
	double anchor;

	if (opt.cpu[0] < 0) {
		info("view first touch skipped: no CPU to pin to");
		return;
	}
	anchor = refault_local();
	info("view first touch: k.refault.4k measured again here: %.1f ns",
	     anchor);
	if (wanted(same))
		bench_view_touch(same, opt.cpu[0], anchor);
	if (!wanted(other))
		return;
	if (opt.cpu[1] < 0)
		info("%s skipped: one CPU only", other);
	else
		bench_view_touch(other, opt.cpu[1], anchor);
}

/* ---------------------------------------------------------------- main */

struct group {
	const char *title;
	void (*fn)(void);
	const char *names[8];	/* the results it can report */
};

static const struct group groups[] = {
	{ "kernel: zap+refault", anchor_zap_refault,
	  { "k.zap+refault.4k", "k.refault.4k" } },
	{ "kernel: mprotect", anchor_mprotect, { "k.mprotect.4k.none+back" } },
	{ "kernel: hugetlb", anchor_hugetlb,
	  { "k.hugetlb.2M.first-touch", "k.hugetlb.2M.punch" } },
	{ "gmem: conversion on a split block", bench_conv_split_all,
	  { "conv.4k.split.b-lazy.2M.s2p", "conv.4k.split.b-lazy.2M.p2s",
	    "conv.4k.split.b-lazy.1G.s2p", "conv.4k.split.b-lazy.1G.p2s",
	    "conv.4k.split.b-eager.2M.s2p", "conv.4k.split.b-eager.2M.p2s" } },
	{ "gmem: conversion on an intact page", bench_conv_intact_all,
	  { "conv.4k.intact.b-lazy.2M.s2p+split",
	    "conv.4k.intact.b-lazy.2M.p2s+merge",
	    "conv.4k.intact.b-lazy.2M.pair",
	    "conv.4k.intact.b-lazy.1G.s2p+split",
	    "conv.4k.intact.b-lazy.1G.p2s+merge",
	    "conv.4k.intact.b-lazy.1G.pair", "split.4k-in-1G-vs-2M" } },
	{ "gmem: host fault", bench_fault_all,
	  { "fault.4k.b-lazy.2M", "fault.4k.b-eager.2M" } },
	{ "gmem: pin+unpin", bench_pin_all,
	  { "pin+unpin.4k.b-lazy.2M.1t", "pin+unpin.4k.b-eager.2M.1t" } },
	{ "gmem: 2-thread scaling", bench_scale_all,
	  { "scale.pin+unpin", "scale.fault", "scale.host-read" } },
	{ "gmem: view first touch", bench_view_all,
	  { "view.first-touch.4k.same-cpu", "view.first-touch.4k.other-cpu" } },
};

static bool group_wanted(const struct group *g)
{
	for (unsigned int i = 0; i < 8 && g->names[i]; i++)
		if (wanted(g->names[i]))
			return true;
	return false;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: bench [--quick] [--json] [--filter SUBSTR]\n"
		"  --quick          few runs, a smoke test\n"
		"  --json           results as JSON on stdout, comments on stderr\n"
		"  --filter SUBSTR  only results whose name contains SUBSTR\n");
}

static void parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			opt.quick = true;
		} else if (!strcmp(argv[i], "--json")) {
			opt.json = true;
		} else if (!strcmp(argv[i], "--filter") && i + 1 < argc) {
			opt.filter = argv[++i];
		} else if (!strncmp(argv[i], "--filter=", 9)) {
			opt.filter = argv[i] + 9;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		} else {
			usage(stderr);
			exit(2);
		}
	}
	if (opt.quick) {
		opt.runs = 31;
		opt.bruns = 11;
		opt.warm = 3;
		opt.pin_batch = 2000;
	} else {
		opt.runs = 2001;
		opt.bruns = 201;
		opt.warm = 100;
		opt.pin_batch = 20000;
	}
}

int main(int argc, char **argv)
{
	uint64_t t0 = now_ns();

	parse_args(argc, argv);
	atexit(hugepages_restore);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	choose_cpus();
	pin_self(opt.cpu[0]);
	measure_clock();

	info("gmem %s micro-benchmarks%s: median of R samples of B operations "
	     "each (runs = RxB), after warm-up", GMEM_VERSION_STRING,
	     opt.quick ? " (--quick)" : "");
	if (opt.cpu[0] >= 0)
		info("main thread pinned to CPU %d with sched_setaffinity(); "
		     "second pin thread to CPU %d", opt.cpu[0], opt.cpu[1]);
	info("CLOCK_MONOTONIC: clock_gettime() costs %.1f ns, included in "
	     "B=1 figures", opt.clock_ns);
	if (opt.filter)
		info("filter: %s", opt.filter);

	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		if (group_wanted(&groups[i]))
			groups[i].fn();

	if (opt.json)
		print_json();
	else
		print_table();
	info("done in %.1f s", (double)(now_ns() - t0) / 1e9);
	return 0;
}
