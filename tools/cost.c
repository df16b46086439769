// SPDX-License-Identifier: MIT
/*
 * cost.c - the unit costs of the kernel operations gmem's events stand
 * for: the documented defaults, their calibration on this host (`gmem
 * calibrate`), and the small JSON file that keeps them.  docs/COSTS.md
 * says what each unit stands for and where each figure comes from.
 *
 * A calibration measures raw figures (struct cost_model's raw[]), then
 * derives the units from them with the same formulas that give the
 * defaults from the published figures: a raw figure that could not be
 * measured keeps its default, and the unit's "how" says which.
 *
 * The hugetlb measurements change vm.hugetlb_optimize_vmemmap, the 2 MiB
 * and 1 GiB nr_hugepages and demote_size.  Each setting is read before
 * its first change and written back when the hugetlb part ends, from a
 * signal handler (SIGINT, SIGTERM, SIGHUP, SIGQUIT: open/write/close
 * only, then the signal again with its default action) and from atexit().
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cost.h"

#define KB 1024ULL
#define MB2 (2ULL << 20)
#define GB1 (1ULL << 30)
#define PAGE 4096ULL

#define HP2_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB"
#define HP1_DIR "/sys/kernel/mm/hugepages/hugepages-1048576kB"
#define HVO_PATH "/proc/sys/vm/hugetlb_optimize_vmemmap"
#define THP_ENABLED "/sys/kernel/mm/transparent_hugepage/enabled"

/* ------------------------------------------------------------ names */

static const char *const unit_names[NR_COST_UNITS] = {
	[CU_SPLIT_1G] = "split_1g",
	[CU_SPLIT_2M] = "split_2m",
	[CU_MERGE_2M] = "merge_2m",
	[CU_MERGE_1G] = "merge_1g",
	[CU_ZERO_4K] = "zero_4k",
	[CU_ZAP_PTE] = "zap_pte",
	[CU_TLB_FLUSH] = "tlb_flush",
	[CU_FAULT] = "fault",
	[CU_S2_INVAL] = "s2_inval",
	[CU_IOMMU_INVAL] = "iommu_inval",
	[CU_IOMMU_MAP] = "iommu_map",
	[CU_S2_FLUSH] = "s2_flush",
	[CU_IOMMU_FLUSH] = "iommu_flush",
};

static const char *const raw_names[NR_COST_RAW] = {
	[CR_ALLOC_2M_OFF] = "alloc_2m_off_ns",
	[CR_ALLOC_2M_ON] = "alloc_2m_on_ns",
	[CR_FREE_2M_OFF] = "free_2m_off_ns",
	[CR_FREE_2M_ON] = "free_2m_on_ns",
	[CR_HVO_OPTIMISE_2M] = "hvo_optimise_2m_ns",
	[CR_HVO_RESTORE_2M] = "hvo_restore_2m_ns",
	[CR_ALLOC_2M_OFF_BATCH] = "alloc_2m_off_batch_ns",
	[CR_ALLOC_2M_ON_BATCH] = "alloc_2m_on_batch_ns",
	[CR_FREE_2M_OFF_BATCH] = "free_2m_off_batch_ns",
	[CR_FREE_2M_ON_BATCH] = "free_2m_on_batch_ns",
	[CR_HVO_OPTIMISE_2M_BATCH] = "hvo_optimise_2m_batch_ns",
	[CR_HVO_RESTORE_2M_BATCH] = "hvo_restore_2m_batch_ns",
	[CR_HVO_PAGES_2M] = "hvo_vmemmap_pages_2m",
	[CR_HVO_FIRST] = "hvo_first_page_ns",
	[CR_ALLOC_1G_OFF] = "alloc_1g_off_ns",
	[CR_ALLOC_1G_ON] = "alloc_1g_on_ns",
	[CR_FREE_1G_OFF] = "free_1g_off_ns",
	[CR_FREE_1G_ON] = "free_1g_on_ns",
	[CR_HVO_OPTIMISE_1G] = "hvo_optimise_1g_ns",
	[CR_HVO_RESTORE_1G] = "hvo_restore_1g_ns",
	[CR_HVO_PAGES_1G] = "hvo_vmemmap_pages_1g",
	[CR_DEMOTE_1G_OFF] = "demote_1g_off_ns",
	[CR_DEMOTE_1G_ON] = "demote_1g_on_ns",
	[CR_THP_SPLIT_2M] = "thp_split_2m_ns",
	[CR_MADV_EMPTY] = "madvise_empty_ns",
	[CR_ZAP_1] = "zap_1_ns",
	[CR_ZAP_512] = "zap_512_ns",
	[CR_ZAP_1_IPI] = "zap_1_ipi_ns",
	[CR_REFAULT] = "refault_ns",
	[CR_ZERO_4K] = "zero_4k_ns",
	[CR_ZERO_2M] = "zero_2m_per_4k_ns",
	[CR_ZERO_1G] = "zero_1g_per_4k_ns",
};

static const char *const source_names[] = {
	[COST_DEFAULT] = "default",
	[COST_MODEL] = "model",
	[COST_MEASURED] = "measured",
};

const char *cost_unit_name(enum cost_unit u)
{
	return (unsigned int)u < NR_COST_UNITS ? unit_names[u] : NULL;
}

const char *cost_raw_name(enum cost_raw r)
{
	return (unsigned int)r < NR_COST_RAW ? raw_names[r] : NULL;
}

const char *cost_source_name(enum cost_source s)
{
	return (unsigned int)s <= COST_MEASURED ? source_names[s] : "?";
}

/* ------------------------------------------------ defaults and model */

/*
 * vmemmap pages HVO frees per huge page, with 4 KiB base pages and a
 * 64-byte struct page: a 2 MiB page's 512 struct pages fill 8 pages, of
 * which HVO keeps 1; a 1 GiB page's fill 4096.
 */
#define HVO_PAGES_2M 7.0
#define HVO_PAGES_1G 4095.0

/*
 * The published figures behind the defaults (docs/COSTS.md).  Mike
 * Kravetz, "Batch hugetlb vmemmap modification operations" v8 (Oct
 * 2023): 500,000 2 MiB pages allocated in 4.1 s without HVO, 29.0 s with
 * HVO one page at a time and 7.3 s batched; freed in 4.5 s, 36.7 s and
 * 13.2 s.  One page at a time is what a conversion's split or merge does.
 *
 * The zap, flush, fault and zeroing defaults have no published figure
 * that fits: they are a reference run of `gmem calibrate` on a 2-vCPU
 * KVM guest (AMD EPYC, Linux 6.18), given in docs/COSTS.md.
 */
struct raw_default {
	double ns;
	const char *src;	/* short, for the unit's "how" */
};

#define KRAVETZ "Kravetz v8"
#define REFRUN "ref. run"
#define KR(s) ((s) * 1e9 / 500000)	/* Kravetz's seconds per 500k pages */

static const struct raw_default raw_defaults[NR_COST_RAW] = {
	[CR_HVO_OPTIMISE_2M] = { KR(29.0 - 4.1), KRAVETZ },
	[CR_HVO_RESTORE_2M] = { KR(36.7 - 4.5), KRAVETZ },
	[CR_ALLOC_2M_OFF_BATCH] = { KR(4.1), KRAVETZ },
	[CR_FREE_2M_OFF_BATCH] = { KR(4.5), KRAVETZ },
	[CR_HVO_OPTIMISE_2M_BATCH] = { KR(7.3 - 4.1), KRAVETZ },
	[CR_HVO_RESTORE_2M_BATCH] = { KR(13.2 - 4.5), KRAVETZ },
	[CR_HVO_PAGES_2M] = { HVO_PAGES_2M, "struct page" },
	[CR_HVO_PAGES_1G] = { HVO_PAGES_1G, "struct page" },
	/* reference run (docs/COSTS.md) */
	[CR_MADV_EMPTY] = { 1142, REFRUN },
	[CR_ZAP_1] = { 5460, REFRUN },
	[CR_ZAP_512] = { 157077, REFRUN },
	[CR_ZAP_1_IPI] = { 38504, REFRUN },
	[CR_REFAULT] = { 7704, REFRUN },
	[CR_ZERO_4K] = { 321, REFRUN },
	[CR_ZERO_2M] = { 239.7, REFRUN },
	[CR_ZERO_1G] = { 98.6, REFRUN },
};

/* One input of a unit's formula: its value and where it came from. */
struct in {
	double v;
	bool here;		/* measured on this host */
	const char *src;	/* the default's source otherwise */
};

static struct in raw_in(const struct cost_model *m, enum cost_raw r)
{
	struct in x;

	if (m->raw_ok[r]) {
		x.v = m->raw[r];
		x.here = true;
		x.src = "here";
	} else {
		x.v = raw_defaults[r].ns;
		x.here = false;
		x.src = raw_defaults[r].src ? raw_defaults[r].src : "default";
	}
	return x;
}

static void fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0fns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.1fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.2fms", ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", ns / 1e9);
}

/* "17.4us [here]" or "17.4us [Kravetz v8]" */
static const char *show(char *buf, size_t len, struct in x)
{
	char v[32];

	fmt_ns(v, sizeof(v), x.v);
	snprintf(buf, len, "%s [%s]", v, x.src);
	return buf;
}

static void set_unit(struct cost_model *m, enum cost_unit u, double ns,
		     enum cost_source src, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void set_unit(struct cost_model *m, enum cost_unit u, double ns,
		     enum cost_source src, const char *fmt, ...)
{
	va_list ap;

	m->ns[u] = ns;
	m->src[u] = src;
	m->measured[u] = src == COST_MEASURED;
	va_start(ap, fmt);
	vsnprintf(m->how[u], sizeof(m->how[u]), fmt, ap);
	va_end(ap);
}

/* COST_MODEL if any input was measured here, else COST_DEFAULT. */
static enum cost_source model_src(int n, const struct in *xs)
{
	for (int i = 0; i < n; i++)
		if (xs[i].here)
			return COST_MODEL;
	return COST_DEFAULT;
}

/*
 * The units from the raw figures: measured ones where m->raw_ok, the
 * defaults otherwise.  docs/COSTS.md gives each formula and why.
 */
void cost_derive(struct cost_model *m)
{
	char a[80], b[80], c[80];
	struct in p2 = raw_in(m, CR_HVO_PAGES_2M);
	struct in a2b = raw_in(m, CR_ALLOC_2M_OFF_BATCH);
	struct in o2 = raw_in(m, CR_HVO_OPTIMISE_2M);
	struct in r2 = raw_in(m, CR_HVO_RESTORE_2M);
	struct in o2b = raw_in(m, CR_HVO_OPTIMISE_2M_BATCH);
	struct in r2b = raw_in(m, CR_HVO_RESTORE_2M_BATCH);
	struct in r1, o1, s2, d1off, x[4];
	double scale, ofix, rfix;

	/*
	 * HVO of one page = a part per operation (the TLB flush, locks)
	 * + a part per vmemmap page.  The batch gives the second (its
	 * flush shared by 512 pages), one page at a time the sum.
	 */
	if (p2.v < 1)
		p2.v = HVO_PAGES_2M;
	scale = HVO_PAGES_1G / p2.v;
	ofix = o2.v > o2b.v ? o2.v - o2b.v : 0;
	rfix = r2.v > r2b.v ? r2.v - r2b.v : 0;
	r1 = raw_in(m, CR_HVO_RESTORE_1G);
	if (!r1.here) {
		r1.v = rfix + r2b.v * scale;
		r1.here = r2.here || r2b.here;
		r1.src = r1.here ? "2M, per vmemmap page x4095"
				 : "2M x4095/7, " KRAVETZ;
	}
	o1 = raw_in(m, CR_HVO_OPTIMISE_1G);
	if (!o1.here) {
		o1.v = ofix + o2b.v * scale;
		o1.here = o2.here || o2b.here;
		o1.src = o1.here ? "2M, per vmemmap page x4095"
				 : "2M x4095/7, " KRAVETZ;
	}
	/*
	 * The split of a 2 MiB folio itself, without HVO: the struct-page
	 * work of one 2 MiB piece of a 1 GiB demote, else of a 2 MiB page
	 * allocated in a batch.  Not the mapped THP split (CR_THP_SPLIT_2M):
	 * that is mostly unmapping and remapping 512 PTEs, which gmem counts
	 * apart.
	 */
	if (m->raw_ok[CR_DEMOTE_1G_OFF]) {
		s2.v = m->raw[CR_DEMOTE_1G_OFF] / 512;
		s2.here = true;
		s2.src = "1G demote off /512";
	} else {
		s2 = a2b;
		s2.src = a2b.here ? "2M alloc off" : "2M alloc off, " KRAVETZ;
	}
	/* 1 GiB -> 512 x 2 MiB (or back) without HVO */
	d1off = raw_in(m, CR_DEMOTE_1G_OFF);
	if (!d1off.here) {
		d1off.v = 512 * s2.v;
		d1off.here = s2.here;
		d1off.src = s2.here ? "512 x 2M alloc off"
				    : "512 x 2M alloc off, " KRAVETZ;
	}

	if (m->raw_ok[CR_DEMOTE_1G_ON]) {
		set_unit(m, CU_SPLIT_1G, m->raw[CR_DEMOTE_1G_ON], COST_MEASURED,
			 "hugetlb demote of a free 1G page to 512 x 2M, HVO "
			 "on (off: %.2fms)", m->raw[CR_DEMOTE_1G_OFF] / 1e6);
	} else {
		/* as demote: the 512 pieces optimised in one batch */
		struct in o512 = o2b;

		o512.v = ofix + 512 * o2b.v;
		o512.here = o2.here || o2b.here;
		x[0] = d1off; x[1] = r1; x[2] = o512;
		set_unit(m, CU_SPLIT_1G, d1off.v + r1.v + o512.v,
			 model_src(3, x),
			 "split %s + HVO restore 1G %s + HVO optimise of 512 "
			 "x 2M in a batch %s",
			 show(a, sizeof(a), d1off), show(b, sizeof(b), r1),
			 show(c, sizeof(c), o512));
	}

	x[0] = r2; x[1] = s2;
	set_unit(m, CU_SPLIT_2M, r2.v + s2.v, model_src(2, x),
		 "HVO restore 2M %s + split %s",
		 show(a, sizeof(a), r2), show(b, sizeof(b), s2));

	x[0] = s2; x[1] = o2;
	set_unit(m, CU_MERGE_2M, s2.v + o2.v, model_src(2, x),
		 "merge (as the split) %s + HVO optimise 2M %s",
		 show(a, sizeof(a), s2), show(b, sizeof(b), o2));

	{
		/* the 512 pieces restored in one batch */
		struct in r512 = r2b;

		r512.v = rfix + 512 * r2b.v;
		r512.here = r2.here || r2b.here;
		x[0] = r512; x[1] = d1off; x[2] = o1;
		set_unit(m, CU_MERGE_1G, r512.v + d1off.v + o1.v,
			 model_src(3, x),
			 "HVO restore of 512 x 2M in a batch %s + merge %s + "
			 "HVO optimise 1G %s",
			 show(a, sizeof(a), r512), show(b, sizeof(b), d1off),
			 show(c, sizeof(c), o1));
	}

	/*
	 * Zeroing: the 2 MiB rate.  The kernel clears a huge page 4 KiB at
	 * a time with cached stores, as memset() clears 2 MiB; glibc clears
	 * 1 GiB with non-temporal stores, which the kernel does not use.
	 */
	{
		struct in z = raw_in(m, CR_ZERO_2M);

		if (z.here)
			set_unit(m, CU_ZERO_4K, z.v, COST_MEASURED,
				 "memset of 2 MiB of faulted memory, per 4 KiB "
				 "(4 KiB alone %s, 1 GiB %s per 4 KiB)",
				 show(a, sizeof(a), raw_in(m, CR_ZERO_4K)),
				 show(b, sizeof(b), raw_in(m, CR_ZERO_1G)));
		else
			set_unit(m, CU_ZERO_4K, z.v, COST_DEFAULT,
				 "memset of 2 MiB per 4 KiB %s",
				 show(a, sizeof(a), z));
	}

	/*
	 * Zap: the marginal PTE of madvise(MADV_DONTNEED); the flush: what
	 * a thread on the other CPU adds to a one-page madvise beyond the
	 * system call and the PTE.  A measured difference that is not
	 * positive (noise) is not taken.
	 */
	{
		struct in z1 = raw_in(m, CR_ZAP_1), z512 = raw_in(m, CR_ZAP_512);
		struct in e = raw_in(m, CR_MADV_EMPTY);
		struct in ipi = raw_in(m, CR_ZAP_1_IPI);
		struct in f = raw_in(m, CR_REFAULT);
		const struct raw_default *d = raw_defaults;
		double zap_d = (d[CR_ZAP_512].ns - d[CR_ZAP_1].ns) / 511;
		double flush_d = d[CR_ZAP_1_IPI].ns - d[CR_MADV_EMPTY].ns - zap_d;
		double zap = (z512.v - z1.v) / 511, flush;
		bool zap_here = z1.here && z512.here && zap > 0;
		bool flush_here, fault_here = f.here && f.v > 0;

		if (zap_here)
			set_unit(m, CU_ZAP_PTE, zap, COST_MEASURED,
				 "(MADV_DONTNEED of 512 mapped 4K %s - of 1 %s) "
				 "/ 511, memfd mapping, one thread",
				 show(a, sizeof(a), z512), show(b, sizeof(b), z1));
		else
			set_unit(m, CU_ZAP_PTE, zap = zap_d, COST_DEFAULT,
				 "(MADV_DONTNEED of 512 4K pages - of 1) / 511 "
				 "[" REFRUN "]");

		flush = ipi.v - e.v - zap;
		flush_here = ipi.here && e.here && flush > 0;
		if (flush_here)
			set_unit(m, CU_TLB_FLUSH, flush, COST_MEASURED,
				 "MADV_DONTNEED of 1 page, a thread on the other "
				 "CPU %s - of no PTE %s - zap_pte (no thread: %s)",
				 show(a, sizeof(a), ipi), show(b, sizeof(b), e),
				 show(c, sizeof(c), z1));
		else
			set_unit(m, CU_TLB_FLUSH, flush = flush_d, COST_DEFAULT,
				 "MADV_DONTNEED of 1 page with a thread on the "
				 "other CPU - of no PTE - zap_pte [" REFRUN "]");

		if (fault_here)
			set_unit(m, CU_FAULT, f.v, COST_MEASURED,
				 "write to a memfd page after its zap (minor "
				 "fault installing one PTE)");
		else
			set_unit(m, CU_FAULT, d[CR_REFAULT].ns, COST_DEFAULT,
				 "write to a memfd page after its zap [" REFRUN
				 "]");

		/*
		 * Clearing an entry and flushing are apart, as in KVM
		 * (kvm_unmap_gfn_range() clears the range, then one remote
		 * flush) and in IOMMU drivers (unmap a range, then one
		 * IOTLB invalidation): gmem counts entries and flushes.
		 */
		set_unit(m, CU_S2_INVAL, zap,
			 zap_here ? COST_MODEL : COST_DEFAULT,
			 "model: as zap_pte (clear one stage-2 entry)");
		set_unit(m, CU_IOMMU_INVAL, zap,
			 zap_here ? COST_MODEL : COST_DEFAULT,
			 "model (a guess): as zap_pte (clear one IOPTE)");
		set_unit(m, CU_IOMMU_MAP, zap,
			 zap_here ? COST_MODEL : COST_DEFAULT,
			 "model (a guess): as zap_pte (write one IOPTE; a "
			 "map needs no invalidation)");
		set_unit(m, CU_S2_FLUSH, flush,
			 flush_here ? COST_MODEL : COST_DEFAULT,
			 "model: as tlb_flush (KVM flushes the vCPUs with an "
			 "IPI; TDX and SNP pay more)");
		set_unit(m, CU_IOMMU_FLUSH, flush,
			 flush_here ? COST_MODEL : COST_DEFAULT,
			 "model (a guess): as tlb_flush (a synchronous IOTLB "
			 "invalidation as costly as an IPI)");
	}
}

void cost_published(struct cost_model *m)
{
	memset(m, 0, sizeof(*m));
	cost_derive(m);
}

/* ---------------------------------------------------------- timing */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of @n samples (sorted in place); NAN for none. */
static double median(double *s, size_t n)
{
	if (!n)
		return NAN;
	qsort(s, n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* A memset the compiler cannot drop or merge. */
static void *(*volatile memset_v)(void *, int, size_t) = memset;

static void logf_(FILE *log, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void logf_(FILE *log, const char *fmt, ...)
{
	va_list ap;

	if (!log)
		return;
	fputs("calibrate: ", log);
	va_start(ap, fmt);
	vfprintf(log, fmt, ap);
	va_end(ap);
	fputc('\n', log);
	fflush(log);
}

static void set_raw(struct cost_model *m, enum cost_raw r, double v)
{
	if (isfinite(v)) {
		m->raw[r] = v;
		m->raw_ok[r] = true;
	}
}

/* ------------------------------------------------ settings we change */

/*
 * Each setting is read before its first change and written back by
 * settings_restore(), the signal handler and atexit().  The handler
 * needs only the prepared strings (async-signal-safe: open, write, close).
 */
#define MAX_SETTINGS 8

struct setting {
	char path[128];
	char orig[32];		/* as read, one line without the newline */
	char line[34];		/* orig + "\n" for the handler */
	size_t line_len;
	volatile sig_atomic_t armed;	/* changed, not yet restored */
};

static struct setting settings[MAX_SETTINGS];
static volatile sig_atomic_t nr_settings;
static const int restore_sigs[] = {
	SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2,
	SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT,
};
#define NR_RESTORE_SIGS (sizeof(restore_sigs) / sizeof(restore_sigs[0]))
static struct sigaction old_actions[NR_RESTORE_SIGS];
static bool handlers_on, atexit_on;

static void write_line_raw(const char *path, const char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		ssize_t n = write(fd, buf, len);

		(void)n;
		close(fd);
	}
}

static void restore_signal(int sig)
{
	static const char msg[] = "calibrate: signal: wrote back every "
				  "setting changed\n";
	int saved = errno;
	ssize_t n;

	for (int i = nr_settings - 1; i >= 0; i--) {
		if (settings[i].armed) {
			write_line_raw(settings[i].path, settings[i].line,
				       settings[i].line_len);
			settings[i].armed = 0;
		}
	}
	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	errno = saved;
	signal(sig, SIG_DFL);
	raise(sig);
}

static void restore_atexit(void)
{
	for (int i = nr_settings - 1; i >= 0; i--) {
		if (settings[i].armed) {
			write_line_raw(settings[i].path, settings[i].line,
				       settings[i].line_len);
			settings[i].armed = 0;
		}
	}
}

static bool read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	bool ok;

	if (!f)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static bool read_ull(const char *path, unsigned long long *v)
{
	char buf[64], *end;

	if (!read_line(path, buf, sizeof(buf)))
		return false;
	errno = 0;
	*v = strtoull(buf, &end, 10);
	return !errno && end != buf;
}

/* Writes @val (a line) to @path; -errno on failure. */
static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err = 0;
	size_t len = strlen(val);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	if (close(fd) && !err)
		err = -errno;
	return err;
}

static struct setting *setting_find(const char *path)
{
	for (int i = 0; i < nr_settings; i++)
		if (!strcmp(settings[i].path, path))
			return &settings[i];
	return NULL;
}

static void handlers_install(void)
{
	struct sigaction sa;

	if (handlers_on)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = restore_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NR_RESTORE_SIGS; i++)
		sigaddset(&sa.sa_mask, restore_sigs[i]);
	for (size_t i = 0; i < NR_RESTORE_SIGS; i++)
		sigaction(restore_sigs[i], &sa, &old_actions[i]);
	handlers_on = true;
	if (!atexit_on && !atexit(restore_atexit))
		atexit_on = true;
}

static void handlers_remove(void)
{
	if (!handlers_on)
		return;
	for (size_t i = 0; i < NR_RESTORE_SIGS; i++)
		sigaction(restore_sigs[i], &old_actions[i], NULL);
	handlers_on = false;
}

/*
 * Sets @path to @val, first recording what it was (and saying so on
 * @log the first time).  -errno if it cannot be read or written.
 */
static int setting_set(FILE *log, const char *path, const char *val)
{
	struct setting *s = setting_find(path);
	char line[40];
	int err;

	if (!s) {
		if (nr_settings >= MAX_SETTINGS)
			return -ENOSPC;
		s = &settings[nr_settings];
		memset(s, 0, sizeof(*s));
		snprintf(s->path, sizeof(s->path), "%s", path);
		if (!read_line(path, s->orig, sizeof(s->orig)))
			return errno ? -errno : -EIO;
		s->line_len = strlen(s->orig);	/* < sizeof(orig) */
		memcpy(s->line, s->orig, s->line_len);
		s->line[s->line_len++] = '\n';
		s->line[s->line_len] = '\0';
		handlers_install();
		nr_settings++;
	}
	if (!s->armed) {
		/* block the handler while the entry changes state */
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		s->armed = 1;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		logf_(log, "changing %s (was %s) for the measurement", path,
		      s->orig);
	}
	snprintf(line, sizeof(line), "%s\n", val);
	err = write_str(path, line);
	return err;
}

static int setting_set_ull(FILE *log, const char *path, unsigned long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", v);
	return setting_set(log, path, buf);
}

/*
 * Writes every changed setting back, last changed first, and reads it
 * back.  0, or the first -errno.
 */
static int settings_restore(FILE *log)
{
	int ret = 0;

	for (int i = nr_settings - 1; i >= 0; i--) {
		struct setting *s = &settings[i];
		char now[32];
		int err;

		if (!s->armed)
			continue;
		err = write_str(s->path, s->line);
		if (!err && (!read_line(s->path, now, sizeof(now)) ||
			     strcmp(now, s->orig)))
			err = -EIO;
		if (err) {
			logf_(log, "could not restore %s to %s: %s", s->path,
			      s->orig, strerror(-err));
			if (!ret)
				ret = err;
		} else {
			logf_(log, "restored %s to %s", s->path, s->orig);
		}
		s->armed = 0;
	}
	nr_settings = 0;
	handlers_remove();
	return ret;
}

/* --------------------------------------------------------- hugetlb */

/* vmemmap pages in use (/proc/vmstat), or -1 if the kernel does not say. */
static long long memmap_pages(void)
{
	FILE *f = fopen("/proc/vmstat", "re");
	char name[64];
	unsigned long long v;
	long long sum = 0;
	int found = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %llu", name, &v) == 2) {
		if (!strcmp(name, "nr_memmap_pages") ||
		    !strcmp(name, "nr_memmap_boot_pages")) {
			sum += (long long)v;
			found++;
		}
	}
	fclose(f);
	return found ? sum : -1;
}

struct hp_run {
	const char *what;		/* "2 MiB", "1 GiB" */
	const char *nr_path;
	unsigned long long base;	/* nr_hugepages to come back to */
	uint64_t limit_ns;		/* give up after a round slower than this */
	bool slow;			/* a round was */
};

/* Per-page figures of rounds with HVO off and on (medians). */
struct hp_figs {
	double alloc_off, alloc_on, free_off, free_on;
	double vmemmap;		/* vmemmap pages HVO freed per page, or NAN */
	int n;			/* rounds that got pages */
};

/*
 * One round: allocate @want pages and free them again.  Per-page ns in
 * @alloc and @freed, vmemmap pages freed per page in @vmm (NAN if
 * unknown).  Returns the pages the kernel found (0 on an error).
 */
static unsigned long long hp_round(FILE *log, struct hp_run *r,
				   unsigned long long want, double *alloc,
				   double *freed, double *vmm)
{
	unsigned long long nr = 0, got;
	long long m0, m1;
	uint64_t t0, t1, t2, t3;

	m0 = memmap_pages();
	t0 = now_ns();
	if (setting_set_ull(log, r->nr_path, r->base + want))
		return 0;
	t1 = now_ns();
	if (!read_ull(r->nr_path, &nr) || nr <= r->base)
		got = 0;
	else
		got = nr - r->base;
	m1 = memmap_pages();
	t2 = now_ns();
	if (setting_set_ull(log, r->nr_path, r->base))
		return 0;
	t3 = now_ns();
	if (t1 - t0 > r->limit_ns)
		r->slow = true;
	if (!got)
		return 0;
	*alloc = (double)(t1 - t0) / (double)got;
	*freed = (double)(t3 - t2) / (double)got;
	/* the pages' own struct pages are not counted: only HVO moves it */
	*vmm = m0 >= 0 && m1 >= 0 ? (double)(m0 - m1) / (double)got : NAN;
	return got;
}

/*
 * @reps rounds of @want pages, each with HVO off then on.  Stops early
 * when the kernel finds no page or a round is slower than r->limit_ns.
 */
static void hp_rounds(FILE *log, struct hp_run *r, unsigned long long want,
		      int reps, struct hp_figs *f)
{
	double *s = calloc((size_t)reps * 5, sizeof(double));
	double *aoff = s, *aon = s + reps, *foff = s + 2 * reps,
	       *fon = s + 3 * reps, *vm = s + 4 * reps;
	int nvm = 0;

	memset(f, 0, sizeof(*f));
	f->vmemmap = NAN;
	if (!s)
		return;
	for (int i = 0; i < reps && !r->slow; i++) {
		double a0, f0, v0, a1, f1, v1;
		unsigned long long g0, g1;

		if (setting_set(log, HVO_PATH, "0"))
			break;
		g0 = hp_round(log, r, want, &a0, &f0, &v0);
		if (setting_set(log, HVO_PATH, "1"))
			break;
		g1 = hp_round(log, r, want, &a1, &f1, &v1);
		if (!g0 || !g1 || g0 * 4 < want || g1 * 4 < want) {
			logf_(log, "%s hugetlb: the kernel found %llu and %llu "
			      "of %llu pages", r->what, g0, g1, want);
			if (!g0 || !g1)
				break;
		}
		aoff[f->n] = a0;
		foff[f->n] = f0;
		aon[f->n] = a1;
		fon[f->n] = f1;
		f->n++;
		if (!isnan(v1))
			vm[nvm++] = v1;
	}
	if (r->slow)
		logf_(log, "%s hugetlb: a round took over %.0f s; no more "
		      "rounds", r->what, (double)r->limit_ns / 1e9);
	if (f->n) {
		f->alloc_off = median(aoff, f->n);
		f->alloc_on = median(aon, f->n);
		f->free_off = median(foff, f->n);
		f->free_on = median(fon, f->n);
	}
	if (nvm)
		f->vmemmap = median(vm, nvm);
	free(s);
}

/*
 * Stores @f's figures from @first on (alloc off, alloc on, free off,
 * free on, optimise, restore: enum cost_raw's order) if HVO did its work:
 * vmemmap freed (where the kernel counts it) and on slower than off.
 */
static void hp_store(struct cost_model *m, FILE *log, const char *what,
		     const struct hp_figs *f, enum cost_raw first)
{
	char b1[32], b2[32], b3[32], b4[32];

	if (!f->n)
		return;
	fmt_ns(b1, sizeof(b1), f->alloc_off);
	fmt_ns(b2, sizeof(b2), f->alloc_on);
	fmt_ns(b3, sizeof(b3), f->free_off);
	fmt_ns(b4, sizeof(b4), f->free_on);
	logf_(log, "%s, per page (median of %d): alloc %s HVO off, %s on; "
	      "free %s off, %s on", what, f->n, b1, b2, b3, b4);
	set_raw(m, first, f->alloc_off);
	set_raw(m, (enum cost_raw)(first + 1), f->alloc_on);
	set_raw(m, (enum cost_raw)(first + 2), f->free_off);
	set_raw(m, (enum cost_raw)(first + 3), f->free_on);
	if (!isnan(f->vmemmap) && f->vmemmap < 0.5)
		logf_(log, "%s: HVO freed no vmemmap with %s=1: the on/off "
		      "difference is not HVO's; HVO not measured", what,
		      HVO_PATH);
	else if (f->alloc_on <= f->alloc_off || f->free_on <= f->free_off)
		logf_(log, "%s: HVO on was not slower than off (noise?); HVO "
		      "not measured", what);
	else {
		set_raw(m, (enum cost_raw)(first + 4), f->alloc_on - f->alloc_off);
		set_raw(m, (enum cost_raw)(first + 5), f->free_on - f->free_off);
	}
}

/*
 * hugetlb demote of one free 1 GiB page into 512 x 2 MiB, @reps pages
 * with HVO off and @reps on.  @r is the 1 GiB run; @r2 the 2 MiB one,
 * whose base count the 2 MiB pieces are freed back to.
 */
static void demote_measure(struct cost_model *m, FILE *log, struct hp_run *r,
			   const struct hp_run *r2, int reps)
{
	double *s = calloc((size_t)reps * 2, sizeof(double));
	int n[2] = { 0, 0 };
	char size[32];

	if (!s)
		return;
	if (!read_line(HP1_DIR "/demote_size", size, sizeof(size))) {
		logf_(log, "no %s/demote_size: demote not measured", HP1_DIR);
		free(s);
		return;
	}
	if (strcmp(size, "2048kB") &&
	    setting_set(log, HP1_DIR "/demote_size", "2048kB")) {
		logf_(log, "cannot set demote_size to 2048kB: demote not "
		      "measured");
		free(s);
		return;
	}
	for (int hvo = 0; hvo < 2; hvo++) {
		unsigned long long nr = 0, got;
		uint64_t t0;

		if (setting_set(log, HVO_PATH, hvo ? "1" : "0"))
			break;
		t0 = now_ns();
		if (setting_set_ull(log, r->nr_path, r->base + (unsigned)reps))
			break;
		if (now_ns() - t0 > r->limit_ns)
			r->slow = true;
		if (!read_ull(r->nr_path, &nr) || nr <= r->base) {
			logf_(log, "1 GiB demote: no free 1 GiB page");
			setting_set_ull(log, r->nr_path, r->base);
			break;
		}
		got = nr - r->base;
		for (unsigned long long i = 0; i < got; i++) {
			int err;

			t0 = now_ns();
			err = write_str(HP1_DIR "/demote", "1\n");
			if (err) {
				logf_(log, "1 GiB demote: %s", strerror(-err));
				break;
			}
			s[hvo * reps + n[hvo]++] = (double)(now_ns() - t0);
		}
		setting_set_ull(log, r->nr_path, r->base);
		setting_set_ull(log, r2->nr_path, r2->base);
		if (r->slow)
			break;
	}
	if (n[0] && n[1]) {
		double off = median(s, n[0]), on = median(s + reps, n[1]);
		char b1[32], b2[32];

		fmt_ns(b1, sizeof(b1), off);
		fmt_ns(b2, sizeof(b2), on);
		logf_(log, "1 GiB demote to 2 MiB (median of %d, %d): %s HVO "
		      "off, %s on", n[0], n[1], b1, b2);
		set_raw(m, CR_DEMOTE_1G_OFF, off);
		set_raw(m, CR_DEMOTE_1G_ON, on);
	}
	free(s);
}

/* Why hugetlb cannot be measured here, or NULL. */
static const char *hugetlb_unusable(char *buf, size_t len)
{
	if (geteuid() != 0)
		return "not root";
	if (access(HP2_DIR "/nr_hugepages", W_OK)) {
		snprintf(buf, len, "no 2 MiB hugetlb (%s)", HP2_DIR);
		return buf;
	}
	if (access(HVO_PATH, W_OK)) {
		snprintf(buf, len, "no HVO sysctl (%s: %s)", HVO_PATH,
			 strerror(errno));
		return buf;
	}
	return NULL;
}

/*
 * HVO per 2 MiB page, one page at a time and in a batch, per 1 GiB page,
 * and the 1 GiB demote.  A first HVO page (the "keeper", allocated with
 * HVO on and held throughout) keeps HVO's static key on: without it every
 * round would also pay for turning the key on and off, a text patch that
 * costs tens of ms here and that a host with HVO pages in use never pays.
 */
static void measure_hugetlb(struct cost_model *m, FILE *log, bool quick)
{
	char why[160];
	const char *no = hugetlb_unusable(why, sizeof(why));
	struct hp_run r2 = { "2 MiB", HP2_DIR "/nr_hugepages", 0,
			     5000000000ULL, false };
	struct hp_run r1 = { "1 GiB", HP1_DIR "/nr_hugepages", 0,
			     quick ? 3000000000ULL : 8000000000ULL, false };
	unsigned long long nr = 0;
	struct hp_figs one, batch;
	uint64_t t0, keeper;

	if (no) {
		logf_(log, "%s: HVO and demote not measured; split_1g, "
		      "split_2m, merge_2m and merge_1g use the published "
		      "figures (%s) for those parts", no, KRAVETZ);
		return;
	}
	if (!read_ull(r2.nr_path, &r2.base)) {
		logf_(log, "cannot read %s: hugetlb not measured", r2.nr_path);
		return;
	}
	if (setting_set(log, HVO_PATH, "1"))
		return;
	t0 = now_ns();
	if (setting_set_ull(log, r2.nr_path, r2.base + 1) ||
	    !read_ull(r2.nr_path, &nr) || nr != r2.base + 1) {
		logf_(log, "2 MiB hugetlb: no page could be allocated: "
		      "hugetlb not measured");
		return;
	}
	keeper = now_ns() - t0;
	r2.base++;	/* the keeper stays until the settings are restored */

	hp_rounds(log, &r2, 1, quick ? 9 : 31, &one);
	hp_store(m, log, "2 MiB hugetlb, one page at a time", &one,
		 CR_ALLOC_2M_OFF);
	if (m->raw_ok[CR_ALLOC_2M_ON] && keeper > m->raw[CR_ALLOC_2M_ON]) {
		char b[32];

		set_raw(m, CR_HVO_FIRST, (double)keeper - m->raw[CR_ALLOC_2M_ON]);
		fmt_ns(b, sizeof(b), m->raw[CR_HVO_FIRST]);
		logf_(log, "the first HVO page cost %s more (HVO's static key "
		      "turned on, if no page had it on)", b);
	}
	hp_rounds(log, &r2, quick ? 128 : 512, quick ? 2 : 5, &batch);
	hp_store(m, log, quick ? "2 MiB hugetlb, batches of 128"
			       : "2 MiB hugetlb, batches of 512", &batch,
		 CR_ALLOC_2M_OFF_BATCH);
	if (!isnan(batch.vmemmap)) {
		logf_(log, "2 MiB hugetlb: HVO freed %.1f vmemmap pages per "
		      "page", batch.vmemmap);
		set_raw(m, CR_HVO_PAGES_2M, batch.vmemmap);
	}

	if (access(r1.nr_path, W_OK)) {
		logf_(log, "no 1 GiB hugetlb (%s): HVO of a 1 GiB page is the "
		      "2 MiB figures scaled by vmemmap pages (4095/7), the "
		      "demote a model", HP1_DIR);
		return;
	}
	if (!read_ull(r1.nr_path, &r1.base))
		return;
	hp_rounds(log, &r1, 1, quick ? 1 : 3, &one);
	if (!one.n) {
		logf_(log, "1 GiB hugetlb: no page could be allocated (memory "
		      "too fragmented?): modelled from 2 MiB");
		return;
	}
	hp_store(m, log, "1 GiB hugetlb, one page at a time", &one,
		 CR_ALLOC_1G_OFF);
	if (!isnan(one.vmemmap)) {
		logf_(log, "1 GiB hugetlb: HVO freed %.1f vmemmap pages per "
		      "page", one.vmemmap);
		set_raw(m, CR_HVO_PAGES_1G, one.vmemmap);
	}
	if (r1.slow)
		logf_(log, "1 GiB hugetlb: allocation too slow for the "
		      "demote: split_1g is a model");
	else
		demote_measure(m, log, &r1, &r2, quick ? 1 : 3);
}

/* ------------------------------------------------ THP split (no root) */

/* AnonHugePages of this process in kB, or -1. */
static long long anon_huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "re");
	char line[256];
	long long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %lld", &v) == 1)
			break;
	fclose(f);
	return v;
}

static char *map_aligned(void **raw, size_t len)
{
	char *p = mmap(NULL, len + MB2, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	*raw = p;
	return (char *)(((uintptr_t)p + MB2 - 1) & ~(uintptr_t)(MB2 - 1));
}

/*
 * A split of a mapped 2 MiB anonymous THP into 4K folios: madvise
 * (MADV_FREE) of one 4K page of it splits the folio (the kernel splits a
 * partly freed THP), less the same madvise on a 4K page.  Each round
 * checks in smaps_rollup that the THP was there and was split.
 */
static void measure_thp(struct cost_model *m, FILE *log, bool quick)
{
	char mode[128];
	int reps = quick ? 10 : 40, n = 0, nb = 0;
	double *s = calloc((size_t)reps * 2, sizeof(double));
	double *base = s + reps;

	if (!s)
		return;
	if (!read_line(THP_ENABLED, mode, sizeof(mode)) ||
	    strstr(mode, "[never]")) {
		logf_(log, "no transparent huge pages (%s): no mapped THP "
		      "split to show", THP_ENABLED);
		free(s);
		return;
	}
	for (int i = 0; i < reps; i++) {
		void *raw;
		volatile char *p = map_aligned(&raw, MB2);
		long long k0, k1, k2;
		uint64_t t0, t1;

		if (!p)
			break;
		madvise((char *)p, MB2, MADV_HUGEPAGE);
		k0 = anon_huge_kb();
		p[0] = 1;
		k1 = anon_huge_kb();
		t0 = now_ns();
		madvise((char *)p + PAGE, PAGE, MADV_FREE);
		t1 = now_ns();
		k2 = anon_huge_kb();
		munmap(raw, 2 * MB2);
		if (k1 - k0 == 2048 && k1 - k2 == 2048)
			s[n++] = (double)(t1 - t0);
	}
	/* the same madvise on a 4K page that is no THP */
	for (int i = 0; i < reps; i++) {
		void *raw;
		volatile char *p = map_aligned(&raw, MB2);
		uint64_t t0, t1;

		if (!p)
			break;
		madvise((char *)p, MB2, MADV_NOHUGEPAGE);
		p[0] = 1;
		p[PAGE] = 1;
		t0 = now_ns();
		madvise((char *)p + PAGE, PAGE, MADV_FREE);
		t1 = now_ns();
		munmap(raw, 2 * MB2);
		base[nb++] = (double)(t1 - t0);
	}
	if (n * 2 < reps) {
		logf_(log, "THP: only %d of %d rounds got a 2 MiB THP that "
		      "MADV_FREE split: no mapped THP split to show", n, reps);
	} else {
		double v = median(s, n) - median(base, nb);
		char b[32];

		fmt_ns(b, sizeof(b), v);
		logf_(log, "THP split of a mapped 2 MiB folio (median of %d): %s "
		      "(not in the units: mostly unmapping and remapping 512 "
		      "PTEs, which gmem counts apart)", n, b);
		if (v > 0)
			set_raw(m, CR_THP_SPLIT_2M, v);
	}
	free(s);
}

/* ------------------------------------- zap, flush, fault (no root) */

struct spinner {
	int cpu;
	atomic_int started, stop;
};

static void *spin_main(void *arg)
{
	struct spinner *sp = arg;
	cpu_set_t set;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	CPU_ZERO(&set);
	CPU_SET(sp->cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
	atomic_store(&sp->started, 1);
	while (!atomic_load_explicit(&sp->stop, memory_order_relaxed))
		;
	return NULL;
}

static double clock_overhead(void)
{
	double s[64];

	for (int i = 0; i < 64; i++) {
		uint64_t t0 = now_ns(), t1 = now_ns();

		s[i] = (double)(t1 - t0);
	}
	return median(s, 64);
}

/* madvise(MADV_DONTNEED) of @len at @p, in ns. */
static double zap_ns(char *p, size_t len)
{
	uint64_t t0 = now_ns();

	madvise(p, len, MADV_DONTNEED);
	return (double)(now_ns() - t0);
}

static void measure_zap(struct cost_model *m, FILE *log, bool quick)
{
	int reps = quick ? 100 : 1000, reps512 = quick ? 20 : 200;
	double *s = calloc((size_t)reps * 5, sizeof(double));
	double *empty = s, *z1 = s + reps, *fault = s + 2 * reps,
	       *ipi = s + 3 * reps, *z512 = s + 4 * reps;
	cpu_set_t old, set;
	int cpus[2], ncpu = 0, fd = -1;
	char *p = MAP_FAILED;
	volatile char *vp;
	double ovh;

	if (!s)
		return;
	if (sched_getaffinity(0, sizeof(old), &old)) {
		free(s);
		return;
	}
	for (int c = 0; c < CPU_SETSIZE && ncpu < 2; c++)
		if (CPU_ISSET(c, &old))
			cpus[ncpu++] = c;
	fd = memfd_create("gmem-calibrate", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)MB2)) {
		logf_(log, "memfd: %s: zap, flush and fault not measured",
		      strerror(errno));
		goto out;
	}
	p = mmap(NULL, MB2, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		logf_(log, "mmap: %s: zap, flush and fault not measured",
		      strerror(errno));
		goto out;
	}
	vp = p;
	CPU_ZERO(&set);
	CPU_SET(cpus[0], &set);
	sched_setaffinity(0, sizeof(set), &set);
	ovh = clock_overhead();

	memset(p, 1, MB2);
	zap_ns(p, PAGE);
	for (int i = 0; i < reps; i++) {
		uint64_t t0;

		empty[i] = zap_ns(p, PAGE);	/* page 0 has no PTE */
		t0 = now_ns();
		vp[0] = (char)i;
		fault[i] = (double)(now_ns() - t0) - ovh;
		z1[i] = zap_ns(p, PAGE);
	}
	for (int i = 0; i < reps512; i++) {
		for (size_t o = 0; o < MB2; o += PAGE)
			vp[o] = (char)i;
		z512[i] = zap_ns(p, MB2);
	}
	set_raw(m, CR_MADV_EMPTY, median(empty, reps));
	set_raw(m, CR_ZAP_1, median(z1, reps));
	set_raw(m, CR_REFAULT, median(fault, reps));
	set_raw(m, CR_ZAP_512, median(z512, reps512));

	if (ncpu < 2) {
		logf_(log, "one CPU: the TLB-flush IPI is not measured");
	} else {
		struct spinner sp = { .cpu = cpus[1] };
		pthread_t th;

		atomic_init(&sp.started, 0);
		atomic_init(&sp.stop, 0);
		if (pthread_create(&th, NULL, spin_main, &sp)) {
			logf_(log, "no thread: the TLB-flush IPI is not measured");
		} else {
			while (!atomic_load(&sp.started))
				sched_yield();
			usleep(1000);
			for (int i = 0; i < reps; i++) {
				vp[0] = (char)i;
				ipi[i] = zap_ns(p, PAGE);
			}
			atomic_store(&sp.stop, 1);
			pthread_join(th, NULL);
			set_raw(m, CR_ZAP_1_IPI, median(ipi, reps));
		}
	}
	{
		char a[32], b[32], c[32], d[32], e[32];

		fmt_ns(a, sizeof(a), m->raw[CR_MADV_EMPTY]);
		fmt_ns(b, sizeof(b), m->raw[CR_ZAP_1]);
		fmt_ns(c, sizeof(c), m->raw[CR_ZAP_512]);
		fmt_ns(d, sizeof(d), m->raw_ok[CR_ZAP_1_IPI] ?
					     m->raw[CR_ZAP_1_IPI] : NAN);
		fmt_ns(e, sizeof(e), m->raw[CR_REFAULT]);
		logf_(log, "MADV_DONTNEED (median of %d): no PTE %s, 1 page %s, "
		      "512 pages %s, 1 page with a thread on CPU %d %s; "
		      "refault %s", reps, a, b, c, ncpu > 1 ? cpus[1] : -1,
		      m->raw_ok[CR_ZAP_1_IPI] ? d : "-", e);
	}
	sched_setaffinity(0, sizeof(old), &old);
out:
	if (p != MAP_FAILED)
		munmap(p, MB2);
	if (fd >= 0)
		close(fd);
	free(s);
}

/* ------------------------------------------------ zeroing (no root) */

static void measure_zero(struct cost_model *m, FILE *log, bool quick)
{
	size_t big = quick ? 256 << 20 : GB1;
	int reps4 = quick ? 500 : 4000, reps2 = quick ? 20 : 100;
	int reps1 = quick ? 2 : 5;
	double *s = calloc((size_t)reps4, sizeof(double));
	void *raw;
	char *p;
	double ovh = clock_overhead();
	char a[32], b[32], c[32];

	if (!s)
		return;
	p = mmap(NULL, big + MB2, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		logf_(log, "zeroing: no %zu MiB of memory: not measured",
		      big >> 20);
		free(s);
		return;
	}
	raw = p;
	p = (char *)(((uintptr_t)p + MB2 - 1) & ~(uintptr_t)(MB2 - 1));
	madvise(p, big, MADV_HUGEPAGE);
	memset_v(p, 1, big);	/* fault it all in */

	/* 4 KiB pages spread over the buffer, so rarely in a cache */
	for (int i = 0; i < reps4; i++) {
		size_t off = ((size_t)i * 7919 * PAGE) % big;
		uint64_t t0 = now_ns();

		memset_v(p + off, 0, PAGE);
		s[i] = (double)(now_ns() - t0) - ovh;
	}
	set_raw(m, CR_ZERO_4K, median(s, reps4));
	for (int i = 0; i < reps2; i++) {
		size_t off = ((size_t)i * 97 * MB2) % big;
		uint64_t t0 = now_ns();

		memset_v(p + off, 0, MB2);
		s[i] = (double)(now_ns() - t0) / (MB2 / PAGE);
	}
	set_raw(m, CR_ZERO_2M, median(s, reps2));
	for (int i = 0; i < reps1; i++) {
		uint64_t t0 = now_ns();

		memset_v(p, 0, big);
		s[i] = (double)(now_ns() - t0) / (double)(big / PAGE);
	}
	set_raw(m, CR_ZERO_1G, median(s, reps1));
	munmap(raw, big + MB2);
	fmt_ns(a, sizeof(a), m->raw[CR_ZERO_4K]);
	fmt_ns(b, sizeof(b), m->raw[CR_ZERO_2M]);
	fmt_ns(c, sizeof(c), m->raw[CR_ZERO_1G]);
	logf_(log, "memset per 4 KiB: 4 KiB alone %s, 2 MiB %s, %s %s",
	      a, b, big == GB1 ? "1 GiB" : "256 MiB (--quick)", c);
	free(s);
}

/* ------------------------------------------------------ calibration */

static void host_line(char *buf, size_t len)
{
	struct utsname u;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "?");
	snprintf(buf, len, "Linux %s, %ld CPUs", u.release, cpus);
}

int cost_calibrate_with(struct cost_model *m, FILE *log, bool quick)
{
	time_t t = time(NULL);
	struct tm tm;
	int ret;

	memset(m, 0, sizeof(*m));
	gmtime_r(&t, &tm);
	strftime(m->when, sizeof(m->when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	host_line(m->host, sizeof(m->host));

	measure_hugetlb(m, log, quick);
	ret = settings_restore(log);
	measure_thp(m, log, quick);
	measure_zap(m, log, quick);
	measure_zero(m, log, quick);
	cost_derive(m);
	for (int u = 0; u < NR_COST_UNITS; u++)
		if (m->src[u] == COST_DEFAULT)
			logf_(log, "%s: not measured here; the default: %s",
			      unit_names[u], m->how[u]);
	return ret;
}

int cost_calibrate(struct cost_model *m, FILE *log)
{
	return cost_calibrate_with(m, log, false);
}

/* -------------------------------------------------------- the file */

const char *cost_default_path(void)
{
	static char buf[512];
	const char *v = getenv("GMEM_CALIBRATION");

	if (v && *v)
		return v;
	v = getenv("XDG_CACHE_HOME");
	if (v && *v == '/') {
		snprintf(buf, sizeof(buf), "%s/gmem/calibration.json", v);
		return buf;
	}
	v = getenv("HOME");
	if (!v || !*v) {
		struct passwd *pw = getpwuid(getuid());

		v = pw && pw->pw_dir ? pw->pw_dir : "/tmp";
	}
	snprintf(buf, sizeof(buf), "%s/.cache/gmem/calibration.json", v);
	return buf;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* mkdir -p of @path's directory. */
static int make_parent(const char *path)
{
	char dir[512];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	for (char *q = dir + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*q = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

int cost_save(const char *path, const struct cost_model *m)
{
	char tmp[600];
	FILE *f;
	int err, fd;

	err = make_parent(path);
	if (err)
		return err;
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	fchmod(fd, 0644);
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	fprintf(f, "{\n  \"gmem_calibration\": 1,\n  \"when\": ");
	json_str(f, m->when);
	fprintf(f, ",\n  \"host\": ");
	json_str(f, m->host);
	fprintf(f, ",\n  \"units\": {\n");
	for (int u = 0; u < NR_COST_UNITS; u++) {
		fprintf(f, "    \"%s\": { \"ns\": %.1f, \"source\": \"%s\", "
			"\"how\": ", unit_names[u], m->ns[u],
			cost_source_name(m->src[u]));
		json_str(f, m->how[u]);
		fprintf(f, " }%s\n", u + 1 < NR_COST_UNITS ? "," : "");
	}
	fprintf(f, "  },\n  \"raw\": {");
	{
		bool first = true;

		for (int r = 0; r < NR_COST_RAW; r++) {
			if (!m->raw_ok[r])
				continue;
			fprintf(f, "%s\n    \"%s\": %.1f", first ? "" : ",",
				raw_names[r], m->raw[r]);
			first = false;
		}
		fprintf(f, "%s}\n}\n", first ? "" : "\n  ");
	}
	err = ferror(f) ? -EIO : 0;
	if (fflush(f) && !err)
		err = -errno;
	if (!err && fsync(fileno(f)))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* ------------------------------------------- a small JSON reader */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	enum jtype t;
	double num;
	char *str;
	size_t n;
	char **keys;		/* J_OBJ */
	struct jv *kids;	/* J_ARR, J_OBJ */
};

struct jp {
	const char *p, *end;
	int depth;
};

static void jv_free(struct jv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		if (v->keys)
			free(v->keys[i]);
		jv_free(&v->kids[i]);
	}
	free(v->keys);
	free(v->kids);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
				 *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool jp_lit(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
		return false;
	j->p += n;
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool jp_string(struct jp *j, char **out)
{
	size_t cap = 32, len = 0;
	char *s;

	if (j->p >= j->end || *j->p != '"')
		return false;
	j->p++;
	s = malloc(cap);
	if (!s)
		return false;
	while (j->p < j->end && *j->p != '"') {
		unsigned long c = (unsigned char)*j->p++;
		bool esc = c == '\\';

		if (c < 0x20)
			goto bad;
		if (esc) {
			if (j->p >= j->end)
				goto bad;
			c = (unsigned char)*j->p++;
			switch (c) {
			case '"': case '\\': case '/': break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u':
				c = 0;
				for (int i = 0; i < 4; i++) {
					int h = j->p < j->end ? hexval(*j->p) : -1;

					if (h < 0)
						goto bad;
					c = c * 16 + (unsigned long)h;
					j->p++;
				}
				if (c >= 0xd800 && c < 0xe000)
					c = '?';	/* no surrogates here */
				break;
			default:
				goto bad;
			}
		}
		if (len + 4 >= cap) {
			char *ns = realloc(s, cap *= 2);

			if (!ns)
				goto bad;
			s = ns;
		}
		if (c < 0x80 || !esc) {	/* raw bytes are kept as they are */
			s[len++] = (char)c;
		} else if (c < 0x800) {
			s[len++] = (char)(0xc0 | (c >> 6));
			s[len++] = (char)(0x80 | (c & 0x3f));
		} else {
			s[len++] = (char)(0xe0 | (c >> 12));
			s[len++] = (char)(0x80 | ((c >> 6) & 0x3f));
			s[len++] = (char)(0x80 | (c & 0x3f));
		}
	}
	if (j->p >= j->end)
		goto bad;
	j->p++;
	s[len] = '\0';
	*out = s;
	return true;
bad:
	free(s);
	return false;
}

static bool jp_value(struct jp *j, struct jv *v);

static bool jp_push(struct jv *v, char *key, struct jv *kid)
{
	struct jv *nk = realloc(v->kids, (v->n + 1) * sizeof(*nk));

	if (!nk)
		return false;
	v->kids = nk;
	if (v->t == J_OBJ) {
		char **keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));

		if (!keys)
			return false;
		v->keys = keys;
		v->keys[v->n] = key;
	}
	v->kids[v->n++] = *kid;
	return true;
}

static bool jp_container(struct jp *j, struct jv *v, bool obj)
{
	v->t = obj ? J_OBJ : J_ARR;
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
		j->p++;
		return true;
	}
	for (;;) {
		char *key = NULL;
		struct jv kid;

		memset(&kid, 0, sizeof(kid));
		jp_ws(j);
		if (obj) {
			if (!jp_string(j, &key))
				return false;
			jp_ws(j);
			if (j->p >= j->end || *j->p != ':') {
				free(key);
				return false;
			}
			j->p++;
		}
		if (!jp_value(j, &kid) || !jp_push(v, key, &kid)) {
			free(key);
			jv_free(&kid);
			return false;
		}
		jp_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == (obj ? '}' : ']')) {
			j->p++;
			return true;
		}
		return false;
	}
}

static bool jp_number(struct jp *j, struct jv *v)
{
	const char *q = j->p;
	char buf[64], *end;
	size_t n;

	if (q < j->end && *q == '-')
		q++;
	if (q >= j->end || *q < '0' || *q > '9')
		return false;
	while (q < j->end && ((*q >= '0' && *q <= '9') || *q == '.' ||
			      *q == 'e' || *q == 'E' || *q == '+' || *q == '-'))
		q++;
	n = (size_t)(q - j->p);
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, j->p, n);
	buf[n] = '\0';
	v->num = strtod(buf, &end);
	if (*end)
		return false;
	v->t = J_NUM;
	j->p = q;
	return true;
}

static bool jp_value(struct jp *j, struct jv *v)
{
	bool ok;

	jp_ws(j);
	if (j->p >= j->end || ++j->depth > 16)
		return false;
	switch (*j->p) {
	case '{': ok = jp_container(j, v, true); break;
	case '[': ok = jp_container(j, v, false); break;
	case '"': v->t = J_STR; ok = jp_string(j, &v->str); break;
	case 't': v->t = J_BOOL; v->num = 1; ok = jp_lit(j, "true"); break;
	case 'f': v->t = J_BOOL; ok = jp_lit(j, "false"); break;
	case 'n': v->t = J_NULL; ok = jp_lit(j, "null"); break;
	default: ok = jp_number(j, v); break;
	}
	j->depth--;
	return ok;
}

static const struct jv *jv_get(const struct jv *o, const char *key,
			       enum jtype t)
{
	if (!o || o->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return o->kids[i].t == t ? &o->kids[i] : NULL;
	return NULL;
}

static void copy_str(char *dst, size_t len, const struct jv *v)
{
	snprintf(dst, len, "%s", v && v->str ? v->str : "");
}

int cost_load(const char *path, struct cost_model *m)
{
	struct cost_model tmp;
	const struct jv *ver, *units, *raw;
	struct jv root;
	struct jp j;
	char *buf;
	size_t len = 0, cap = 1 << 16;
	FILE *f = fopen(path, "re");
	int ret = -EINVAL;

	if (!f)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	len = fread(buf, 1, cap, f);
	if (ferror(f)) {
		ret = -EIO;
		fclose(f);
		free(buf);
		return ret;
	}
	if (len == cap) {	/* no calibration is that large */
		fclose(f);
		free(buf);
		return -EINVAL;
	}
	fclose(f);

	memset(&root, 0, sizeof(root));
	j.p = buf;
	j.end = buf + len;
	j.depth = 0;
	if (!jp_value(&j, &root))
		goto out;
	jp_ws(&j);
	if (j.p != j.end || root.t != J_OBJ)
		goto out;
	ver = jv_get(&root, "gmem_calibration", J_NUM);
	units = jv_get(&root, "units", J_OBJ);
	if (!ver || ver->num != 1 || !units)
		goto out;
	memset(&tmp, 0, sizeof(tmp));
	for (int u = 0; u < NR_COST_UNITS; u++) {
		const struct jv *e = jv_get(units, unit_names[u], J_OBJ);
		const struct jv *ns = jv_get(e, "ns", J_NUM);
		const struct jv *src = jv_get(e, "source", J_STR);
		int s;

		if (!ns || !isfinite(ns->num) || ns->num <= 0 || !src)
			goto out;
		for (s = 0; s <= COST_MEASURED; s++)
			if (!strcmp(src->str, source_names[s]))
				break;
		if (s > COST_MEASURED)
			goto out;
		tmp.ns[u] = ns->num;
		tmp.src[u] = (enum cost_source)s;
		tmp.measured[u] = s == COST_MEASURED;
		copy_str(tmp.how[u], sizeof(tmp.how[u]),
			 jv_get(e, "how", J_STR));
	}
	copy_str(tmp.when, sizeof(tmp.when), jv_get(&root, "when", J_STR));
	copy_str(tmp.host, sizeof(tmp.host), jv_get(&root, "host", J_STR));
	raw = jv_get(&root, "raw", J_OBJ);
	for (int r = 0; r < NR_COST_RAW; r++) {
		const struct jv *v = jv_get(raw, raw_names[r], J_NUM);

		if (v && isfinite(v->num)) {
			tmp.raw[r] = v->num;
			tmp.raw_ok[r] = true;
		}
	}
	snprintf(tmp.path, sizeof(tmp.path), "%s", path);
	*m = tmp;
	ret = 0;
out:
	jv_free(&root);
	free(buf);
	return ret;
}

/* ------------------------------------------------------- the table */

void cost_print(FILE *f, const struct cost_model *m)
{
	fprintf(f, "%-12s %14s  %-8s  %s\n", "unit", "ns", "source", "how");
	for (int u = 0; u < NR_COST_UNITS; u++) {
		char ns[32];

		if (m->ns[u] >= 100)
			snprintf(ns, sizeof(ns), "%.0f", m->ns[u]);
		else
			snprintf(ns, sizeof(ns), "%.1f", m->ns[u]);
		fprintf(f, "%-12s %14s  %-8s  %s\n", unit_names[u], ns,
			cost_source_name(m->src[u]), m->how[u]);
	}
}

/* ---------------------------------------------------- gmem calibrate */

#define EXIT_USAGE 2

const char calibrate_help[] =
	"Measures, on this host, what the kernel operations that gmem's events\n"
	"stand for cost (COSTS.md), prints a table (unit, ns, where the\n"
	"figure comes from, how) and saves it as JSON for `gmem compare`.\n"
	"\n"
	"  --out FILE   save to FILE (default: $GMEM_CALIBRATION, else\n"
	"               $XDG_CACHE_HOME/gmem/calibration.json, else\n"
	"               ~/.cache/gmem/calibration.json)\n"
	"  --quick      fewer repetitions: about a second instead of a few\n"
	"  --show       print the saved calibration (--out FILE or the default\n"
	"               path) without measuring; the published defaults, with a\n"
	"               note, when there is none\n"
	"\n"
	"As root it measures HVO (vmemmap optimisation) by allocating and\n"
	"freeing 2 MiB and 1 GiB hugetlb pages with vm.hugetlb_optimize_vmemmap\n"
	"off and on, and a 1 GiB -> 2 MiB hugetlb demote; it changes\n"
	"/proc/sys/vm/hugetlb_optimize_vmemmap, the nr_hugepages and\n"
	"demote_size of /sys/kernel/mm/hugepages/*, says so on stderr, and writes\n"
	"every one back when it is done, on SIGINT, SIGTERM and other signals\n"
	"that end it, and at exit.  Without root, hugetlb or the HVO sysctl,\n"
	"those units take the published figures, and stderr says so.  Zeroing,\n"
	"PTE zaps, TLB-flush IPIs and faults are measured as any user; stage-2\n"
	"and IOMMU entries are a model.  COSTS.md in gmem's documentation\n"
	"directory (/usr/local/share/doc/gmem by default) gives every formula.\n"
	"\n"
	"Exit status: 0 done; 1 a setting could not be restored, the file\n"
	"could not be written, or --show found a file that is no calibration;\n"
	"2 a usage error.\n";

static void print_header(FILE *f, const struct cost_model *m)
{
	if (m->when[0])
		fprintf(f, "calibration: measured %s on %s\n", m->when,
			m->host[0] ? m->host : "an unnamed host");
	else
		fprintf(f, "calibration: the published defaults (COSTS.md)\n");
}

int calibrate_main(int argc, char **argv)
{
	const char *out = NULL;
	bool quick = false, showit = false;
	struct cost_model m;
	uint64_t t0;
	int err, rc = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("usage: gmem calibrate [--out FILE] [--quick] "
			       "| --show\n\n%s", calibrate_help);
			return 0;
		} else if (!strcmp(a, "--quick")) {
			quick = true;
		} else if (!strcmp(a, "--show")) {
			showit = true;
		} else if (!strcmp(a, "--out")) {
			if (i + 1 >= argc) {
				fprintf(stderr, "gmem: calibrate: --out needs a "
					"value\n");
				return EXIT_USAGE;
			}
			out = argv[++i];
		} else {
			fprintf(stderr, "gmem: calibrate: unknown option '%s'\n",
				a);
			fprintf(stderr, "usage: gmem calibrate [--out FILE] "
				"[--quick] | --show\n");
			return EXIT_USAGE;
		}
	}
	if (showit && quick) {
		fprintf(stderr, "gmem: calibrate: --show measures nothing; "
			"--quick does not go with it\n");
		return EXIT_USAGE;
	}
	if (!out)
		out = cost_default_path();

	if (showit) {
		err = cost_load(out, &m);
		if (err == -ENOENT) {
			cost_published(&m);
			printf("no calibration at %s (`gmem calibrate` makes "
			       "one): the published defaults\n", out);
		} else if (err) {
			fprintf(stderr, "gmem: %s: %s\n", out,
				err == -EINVAL ? "not a gmem calibration "
						 "(or a unit is missing)"
					       : strerror(-err));
			return 1;
		} else {
			printf("file: %s\n", m.path);
		}
		print_header(stdout, &m);
		cost_print(stdout, &m);
		return 0;
	}

	t0 = now_ns();
	err = cost_calibrate_with(&m, stderr, quick);
	if (err) {
		fprintf(stderr, "gmem: calibrate: a setting could not be "
			"restored (above): check it by hand\n");
		rc = 1;
	}
	print_header(stdout, &m);
	cost_print(stdout, &m);
	err = cost_save(out, &m);
	if (err) {
		fprintf(stderr, "gmem: calibrate: cannot save %s: %s\n", out,
			strerror(-err));
		return 1;
	}
	printf("saved to %s (%.1f s)\n", out, (double)(now_ns() - t0) / 1e9);
	return rc;
}
