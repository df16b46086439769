// SPDX-License-Identifier: MIT
/*
 * vm.c - `gmem vm`: a real KVM guest whose RAM is a gmem file.
 *
 * The VMM side of what gmem models: a pool of huge pages (hugetlbfs where
 * they can be had, as root with --reserve, a memfd otherwise), one file of
 * guest memory, and a KVM VM of the default type whose one memory slot is
 * the file's host range (gmem_file_hva(): the file's huge pages mapped at
 * their offsets, one range whatever pool pages they are), guest physical
 * address = file offset.  A small 32-bit guest (vm_guest.c) walks a conversion script the
 * host wrote into its memory: it writes and checks data, and asks the host
 * to convert ranges with a hypercall (an `out` to a port), which the host
 * serves with gmem_convert() on the file, so the guest's view and gmem's
 * state move together.  A "device" in the host reads and writes the
 * shared pages through a gmem mm (gmem_host_read/write), where a private
 * page gives SIGBUS.
 *
 * This host's KVM has no software-protected VM type, so nothing in KVM or
 * the hardware keeps the host out of private pages: gmem does, on the
 * host side (its mm refuses them); KVM maps the file's memory whole.
 *
 * At the end it prints KVM's stage-2 page-size statistics (binary stats,
 * KVM_GET_STATS_FD) beside gmem's guest map for the same file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gmem.h"
#include "vm.h"
#include "util.h"
#include "workload.h"

#define EXIT_USAGE 2
#define EXIT_NO_KVM 77		/* KVM is not usable here: "skipped", as in
				 * the tests; the last line says why */

/*
 * Newer than Debian's uapi headers (Linux 6.1): from Linux 6.8
 * (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h), where
 * guest_memfd and VM types were merged.
 */
#ifndef KVM_CAP_MEMORY_ATTRIBUTES
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#endif
#ifndef KVM_CAP_GUEST_MEMFD
#define KVM_CAP_GUEST_MEMFD 234
#endif
#ifndef KVM_CAP_VM_TYPES
#define KVM_CAP_VM_TYPES 235
#endif
#ifndef KVM_X86_DEFAULT_VM
#define KVM_X86_DEFAULT_VM 0
#endif
#ifndef KVM_X86_SW_PROTECTED_VM
#define KVM_X86_SW_PROTECTED_VM 1
#endif

#define K4 ((uint64_t)4096)
#define M1 ((uint64_t)1 << 20)
#define M2 ((uint64_t)2 << 20)
#define G1 ((uint64_t)1 << 30)

/*
 * Guest layout.  [0, VM_BOOT_END) holds the program and the script; the
 * host writes them while the range is shared and converts it back to
 * private in place before the first KVM_RUN, as a confidential VMM
 * populates a guest's initial private memory.  Scenarios use offsets
 * above it.
 */
#define VM_CODE_GPA	0x1000ULL
#define VM_SCRIPT_GPA	0x10000ULL
#define VM_BOOT_END	(4 * M1)
#define VM_SCRIPT_MAX	((VM_BOOT_END - VM_SCRIPT_GPA) / sizeof(struct vm_entry))

/* A FILL or CHECK touches at most this many dwords (but one a page). */
#define VM_SAMPLES	4096

/* A device access through gmem_host_read/write touches at most this. */
#define DEV_WINDOW	(16 * 1024ULL)

struct vm_opts {
	const char *scenario;
	uint64_t size, page, seed, ops;
	enum gmem_policy policy;
	bool reserve, verbose, scatter;
};

/* ------------------------------------------------------ huge pages */

/*
 * What --reserve raised, to give back at the end.  The signal handler
 * gives it back too (SIGINT, SIGTERM, SIGHUP, SIGQUIT): a killed run must
 * not leave the host's huge pages reserved.  Pages still mapped when the
 * count drops become surplus pages and go when the process does.
 */
struct hugepages {
	char dir[96];
	unsigned long long need, free_before, nr_before, nr_raised;
	bool raised;
	char why[200];		/* why hugetlb is not used; "" when it is */
};

static volatile sig_atomic_t hp_armed;
static char hp_sig_path[128], hp_sig_val[32];
static size_t hp_sig_len;

static void hp_signal(int sig)
{
	if (hp_armed) {
		int fd = open(hp_sig_path, O_WRONLY);

		if (fd >= 0) {
			ssize_t n = write(fd, hp_sig_val, hp_sig_len);

			(void)n;
			close(fd);
		}
		hp_armed = 0;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static bool read_ull(const char *dir, const char *name, unsigned long long *v)
{
	char path[160];
	FILE *fp;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "re");
	if (!fp)
		return false;
	ok = fscanf(fp, "%llu", v) == 1;
	fclose(fp);
	return ok;
}

static bool write_ull(const char *dir, const char *name, unsigned long long v)
{
	char path[160];
	FILE *fp;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "we");
	if (!fp)
		return false;
	ok = fprintf(fp, "%llu\n", v) > 0;
	ok = !fclose(fp) && ok;
	return ok;
}

static void hp_arm(struct hugepages *hp)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa;

	snprintf(hp_sig_path, sizeof(hp_sig_path), "%s/nr_hugepages", hp->dir);
	hp_sig_len = (size_t)snprintf(hp_sig_val, sizeof(hp_sig_val), "%llu\n",
				      hp->nr_before);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = hp_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	hp_armed = 1;
}

/* Give back what hp_reserve() raised.  Returns false if that failed. */
static bool hp_release(struct hugepages *hp)
{
	unsigned long long nr = 0;
	bool ok;

	if (!hp->raised)
		return true;
	ok = write_ull(hp->dir, "nr_hugepages", hp->nr_before) &&
	     read_ull(hp->dir, "nr_hugepages", &nr) && nr == hp->nr_before;
	hp_armed = 0;
	hp->raised = false;
	return ok;
}

/*
 * Make @hp->need huge pages of @page free if --reserve allows it.  Sets
 * @hp->why when the pool will not be hugetlb.  Never fails: the fallback
 * is a memfd.
 */
static void hp_reserve(struct hugepages *hp, uint64_t page,
		       unsigned long long need, bool reserve)
{
	unsigned long long free_now = 0;
	const char *what = page == G1 ? "1 GiB" : "2 MiB";

	snprintf(hp->dir, sizeof(hp->dir),
		 "/sys/kernel/mm/hugepages/hugepages-%llukB",
		 (unsigned long long)(page >> 10));
	hp->need = need;
	if (!read_ull(hp->dir, "free_hugepages", &hp->free_before) ||
	    !read_ull(hp->dir, "nr_hugepages", &hp->nr_before)) {
		snprintf(hp->why, sizeof(hp->why),
			 "this kernel offers no %s huge pages (%s)", what,
			 hp->dir);
		return;
	}
	if (hp->free_before >= need)
		return;
	if (!reserve) {
		snprintf(hp->why, sizeof(hp->why),
			 "%llu free %s huge pages, %llu needed (--reserve as "
			 "root reserves them)", hp->free_before, what, need);
		return;
	}
	if (geteuid() != 0) {
		snprintf(hp->why, sizeof(hp->why),
			 "%llu free %s huge pages, %llu needed, and --reserve "
			 "needs root", hp->free_before, what, need);
		return;
	}
	hp_arm(hp);
	hp->raised = true;
	hp->nr_raised = hp->nr_before + (need - hp->free_before);
	if (!write_ull(hp->dir, "nr_hugepages", hp->nr_raised) ||
	    !read_ull(hp->dir, "free_hugepages", &free_now) ||
	    free_now < need) {
		unsigned long long got = 0;

		read_ull(hp->dir, "nr_hugepages", &got);
		snprintf(hp->why, sizeof(hp->why),
			 "--reserve asked the kernel for %llu more %s huge "
			 "pages and it found %llu (memory too fragmented or "
			 "too small at runtime); gave them back",
			 need - hp->free_before, what,
			 got > hp->nr_before ? got - hp->nr_before : 0);
		hp_release(hp);
	}
}

/* ------------------------------------------------------------ script */

/* One row of the summary: the outcomes of the entries with one label. */
struct tally {
	const char *what;
	unsigned int ok, failed;
};

#define MAX_TALLIES 48

struct script {
	struct vm_entry *e;
	const char **what;
	uint32_t n, cap;
	bool too_big;
	uint64_t rng;
};

static uint64_t rnd(struct script *s)
{
	/* splitmix64: the guest's choices come from the seed alone */
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A 4K-aligned offset in [lo, hi - len]. */
static uint64_t rnd_range(struct script *s, uint64_t lo, uint64_t hi,
			  uint64_t len)
{
	uint64_t slots = (hi - lo - len) / K4 + 1;

	return lo + rnd(s) % slots * K4;
}

/* A fresh pattern seed (never 0, so no pattern looks like zeroed memory). */
static uint32_t seed(struct script *s)
{
	return (uint32_t)rnd(s) | 0x80000000U;
}

/*
 * Bytes between the dwords a FILL or CHECK of @len bytes touches: every
 * dword up to 16 KiB, then 4096 dwords spread evenly, but at least one a
 * page.  On this host every guest instruction costs microseconds (the
 * guest does not run natively under kvm_pvm, see the vCPU statistics), so
 * a full pass over megabytes would take minutes.
 */
static uint32_t sample_stride(uint64_t len)
{
	uint32_t stride = 4;

	while (len / stride > VM_SAMPLES && stride < K4)
		stride *= 2;
	return stride;
}

static void add(struct script *s, uint32_t op, uint64_t off, uint64_t len,
		uint32_t a1, uint32_t a2, uint32_t expect, const char *what)
{
	if (s->n + 1 >= VM_SCRIPT_MAX) {	/* keep room for END */
		s->too_big = true;
		return;
	}
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? 2 * s->cap : 1024;
		struct vm_entry *e = realloc(s->e, cap * sizeof(*e));
		const char **w;

		if (!e) {
			s->too_big = true;
			return;
		}
		s->e = e;
		w = realloc(s->what, cap * sizeof(*w));
		if (!w) {
			s->too_big = true;
			return;
		}
		s->what = w;
		s->cap = cap;
	}
	/*
	 * The guest runs slowly here (see sample_stride()): FILL and CHECK
	 * sample the range.
	 */
	uint32_t stride = sample_stride(len);

	s->e[s->n] = (struct vm_entry){ op, (uint32_t)off, (uint32_t)len, a1,
					a2, expect, stride,
					(uint32_t)(len / stride) };
	s->what[s->n++] = what;
}

static void fill(struct script *s, uint64_t off, uint64_t len, uint32_t sd,
		 const char *what)
{
	add(s, VM_OP_FILL, off, len, sd, 0xffffffffU, 0, what);
}

static void check(struct script *s, uint64_t off, uint64_t len, uint32_t sd,
		  const char *what)
{
	add(s, VM_OP_CHECK, off, len, sd, 0xffffffffU, 0, what);
}

static void convert(struct script *s, uint64_t off, uint64_t len,
		    uint32_t flags, int expect, const char *what)
{
	add(s, VM_OP_HCALL, off, len, VM_HC_CONVERT, flags, (uint32_t)expect,
	    what);
}

/*
 * The device reads [off, off + len): the dwords that a FILL of @wlen bytes
 * from a @wlen-aligned start wrote there (the same stride), compared with
 * pattern @sd.
 */
static void dev_read(struct script *s, uint64_t off, uint64_t len,
		     uint64_t wlen, uint32_t sd, uint32_t expect,
		     const char *what)
{
	uint32_t stride = sample_stride(wlen);

	add(s, VM_OP_HCALL, off, len, VM_HC_DEV_READ, sd, expect, what);
	if (!s->too_big) {
		s->e[s->n - 1].stride = stride;
		s->e[s->n - 1].count = (uint32_t)(len / stride);
	}
}

static void dev_write(struct script *s, uint64_t off, uint64_t len,
		      uint32_t sd, const char *what)
{
	add(s, VM_OP_HCALL, off, len, VM_HC_DEV_WRITE, sd, 0, what);
}

/* Labels: one summary row each. */
static const char W_KERN_FILL[] = "guest writes its private memory";
static const char W_KERN_CHECK[] = "guest reads its private data back";
static const char W_PRIV_REFUSED[] = "host read of a private page refused (SIGBUS)";
static const char W_JUST_REFUSED[] = "host read of a page just converted to private refused (SIGBUS)";
static const char W_TO_SHARED[] = "convert private->shared";
static const char W_TO_PRIVATE[] = "convert shared->private";
static const char W_GUEST_FILL_SH[] = "guest writes shared pages";
static const char W_DEV_READ[] = "device reads the guest's data (gmem_host_read)";
static const char W_DEV_WRITE[] = "device writes shared pages (gmem_host_write)";
static const char W_GUEST_SEES_DEV[] = "guest reads the device's data";
static const char W_KEPT_TO_SHARED[] = "data kept in place across private->shared";
static const char W_KEPT_TO_PRIVATE[] = "data kept in place across shared->private";
static const char W_BAD_CONVERT[] = "bad conversion range refused (EINVAL)";
static const char W_KEPT_REFUSED[] = "data unchanged by a refused conversion";
static const char W_ZERO_CONVERT[] = "convert with the zero flag";
static const char W_ZEROED_SH[] = "zero flag: zeroed on private->shared";
static const char W_ZEROED_PRIV[] = "zero flag: zeroed on shared->private";
static const char W_KERN_INTACT[] = "private data intact after the churn";

/*
 * tdx-boot, scaled to this guest: a private kernel image, a bounce buffer
 * (1/8 up, 64 MiB or 1/32 of the guest) converted to shared, virtio rings
 * and scattered 4K buffer pages in the upper half, then @ops short-lived
 * I/O buffers (4-16K) churned between shared and private in 16 slots.
 */
static void sc_tdx_boot(struct script *s, uint64_t size, uint64_t ops)
{
	uint64_t kern = VM_BOOT_END, kern_len = 8 * M1;
	uint64_t bounce = size / 8, blen = size / 32 < 64 * M1 ? size / 32 :
					   64 * M1;
	uint64_t virtio = size / 2, churn = bounce + blen;
	uint64_t lane = (virtio - churn) / 16 / K4 * K4;
	uint64_t live[16] = { 0 }, live_len[16] = { 0 };
	uint32_t live_seed[16] = { 0 }, ksd = seed(s), sd, sd2;

	fill(s, kern, kern_len, ksd, W_KERN_FILL);
	check(s, kern, kern_len, ksd, W_KERN_CHECK);
	dev_read(s, kern, K4, K4, ksd, VM_ANS_SIGBUS, W_PRIV_REFUSED);

	/* the SWIOTLB bounce buffer */
	convert(s, bounce, blen, VM_HC_TO_SHARED, 0, W_TO_SHARED);
	sd = seed(s);
	fill(s, bounce, blen, sd, W_GUEST_FILL_SH);
	dev_read(s, bounce, DEV_WINDOW, blen, sd, 0, W_DEV_READ);
	dev_read(s, bounce + blen / 2, DEV_WINDOW, blen, sd, 0, W_DEV_READ);
	dev_read(s, bounce + blen - DEV_WINDOW, DEV_WINDOW, blen, sd, 0,
		 W_DEV_READ);
	sd = seed(s);
	dev_write(s, bounce + DEV_WINDOW, DEV_WINDOW, sd, W_DEV_WRITE);
	check(s, bounce + DEV_WINDOW, DEV_WINDOW, sd, W_GUEST_SEES_DEV);

	/* three devices: a 16K ring and 16 scattered 4K buffer pages each */
	for (unsigned int d = 0; d < 3; d++) {
		uint64_t ring = rnd_range(s, virtio, size, 4 * K4);

		convert(s, ring, 4 * K4, VM_HC_TO_SHARED, 0, W_TO_SHARED);
		sd = seed(s);
		fill(s, ring, 4 * K4, sd, W_GUEST_FILL_SH);
		dev_read(s, ring, 4 * K4, 4 * K4, sd, 0, W_DEV_READ);
		for (unsigned int i = 0; i < 16; i++) {
			uint64_t pg = rnd_range(s, virtio, size, K4);

			convert(s, pg, K4, VM_HC_TO_SHARED, 0, W_TO_SHARED);
			sd = seed(s);
			dev_write(s, pg, K4, sd, W_DEV_WRITE);
			check(s, pg, K4, sd, W_GUEST_SEES_DEV);
		}
	}

	/* churn: each slot's buffer lives in its own lane (no overlaps) */
	for (uint64_t i = 0; i < ops && !s->too_big; i++) {
		unsigned int k = (unsigned int)(rnd(s) % 16);
		uint64_t base = churn + k * lane, len = (1 + rnd(s) % 4) * K4;

		if (live_len[k]) {
			convert(s, live[k], live_len[k], 0, 0, W_TO_PRIVATE);
			check(s, live[k], live_len[k], live_seed[k],
			      W_KEPT_TO_PRIVATE);
			dev_read(s, live[k], K4, K4, live_seed[k], VM_ANS_SIGBUS,
				 W_JUST_REFUSED);
		}
		live[k] = rnd_range(s, base, base + lane, len);
		live_len[k] = len;
		convert(s, live[k], len, VM_HC_TO_SHARED, 0, W_TO_SHARED);
		sd = seed(s);
		fill(s, live[k], len, sd, W_GUEST_FILL_SH);
		dev_read(s, live[k], len, len, sd, 0, W_DEV_READ);
		sd2 = seed(s);
		dev_write(s, live[k], len, sd2, W_DEV_WRITE);
		check(s, live[k], len, sd2, W_GUEST_SEES_DEV);
		live_seed[k] = sd2;
	}
	for (unsigned int k = 0; k < 16; k++) {
		if (!live_len[k])
			continue;
		convert(s, live[k], live_len[k], 0, 0, W_TO_PRIVATE);
		check(s, live[k], live_len[k], live_seed[k], W_KEPT_TO_PRIVATE);
		dev_read(s, live[k], K4, K4, live_seed[k], VM_ANS_SIGBUS,
			 W_JUST_REFUSED);
	}
	check(s, kern, kern_len, ksd, W_KERN_INTACT);
}

/*
 * inplace: regions of different shapes go private -> shared -> private
 * with their data checked at each step, then both ways again with the
 * zero flag.  A region's guest windows are what the guest writes and
 * checks (all of it, but for a 1 GiB region its first and last 2 MiB).
 */
struct region {
	uint64_t off, len;
	uint64_t win[2][2];	/* guest windows: off, len (len 0: none) */
};

static void each_win(struct script *s, const struct region *r, uint32_t op,
		     uint32_t sd, uint32_t mask, const char *what)
{
	for (int w = 0; w < 2; w++)
		if (r->win[w][1])
			add(s, op, r->win[w][0], r->win[w][1], sd, mask, 0,
			    what);
}

static void inplace_region(struct script *s, const struct region *r,
			   uint64_t size, bool first)
{
	uint64_t dlen = r->len < DEV_WINDOW ? r->len : DEV_WINDOW;
	uint64_t dend = r->off + r->len - dlen, wlen = r->win[0][1];
	uint32_t p1 = seed(s), p2 = seed(s), p3 = seed(s), p4 = seed(s);

	each_win(s, r, VM_OP_FILL, p1, ~0U, W_KERN_FILL);
	each_win(s, r, VM_OP_CHECK, p1, ~0U, W_KERN_CHECK);
	dev_read(s, r->off, K4, K4, p1, VM_ANS_SIGBUS, W_PRIV_REFUSED);

	convert(s, r->off, r->len, VM_HC_TO_SHARED, 0, W_TO_SHARED);
	each_win(s, r, VM_OP_CHECK, p1, ~0U, W_KEPT_TO_SHARED);
	dev_read(s, r->off, dlen, wlen, p1, 0, W_DEV_READ);
	dev_read(s, dend, dlen, wlen, p1, 0, W_DEV_READ);
	dev_write(s, r->off, dlen, p2, W_DEV_WRITE);
	check(s, r->off, dlen, p2, W_GUEST_SEES_DEV);

	each_win(s, r, VM_OP_FILL, p3, ~0U, W_GUEST_FILL_SH);
	convert(s, r->off, r->len, 0, 0, W_TO_PRIVATE);
	each_win(s, r, VM_OP_CHECK, p3, ~0U, W_KEPT_TO_PRIVATE);
	dev_read(s, r->off, K4, K4, p3, VM_ANS_SIGBUS, W_JUST_REFUSED);
	dev_read(s, dend, dlen, K4, p3, VM_ANS_SIGBUS, W_JUST_REFUSED);

	/* refused conversions change nothing */
	convert(s, r->off + 2048, r->len, VM_HC_TO_SHARED, -EINVAL,
		W_BAD_CONVERT);
	if (first)
		convert(s, size - K4, 2 * K4, VM_HC_TO_SHARED, -EINVAL,
			W_BAD_CONVERT);
	each_win(s, r, VM_OP_CHECK, p3, ~0U, W_KEPT_REFUSED);
	dev_read(s, r->off, K4, K4, p3, VM_ANS_SIGBUS, W_PRIV_REFUSED);

	/* the zero flag, both ways */
	convert(s, r->off, r->len, VM_HC_TO_SHARED | VM_HC_ZERO, 0,
		W_ZERO_CONVERT);
	each_win(s, r, VM_OP_CHECK, 0, 0, W_ZEROED_SH);
	each_win(s, r, VM_OP_FILL, p4, ~0U, W_GUEST_FILL_SH);
	dev_read(s, r->off, dlen, wlen, p4, 0, W_DEV_READ);
	convert(s, r->off, r->len, VM_HC_ZERO, 0, W_ZERO_CONVERT);
	each_win(s, r, VM_OP_CHECK, 0, 0, W_ZEROED_PRIV);
	dev_read(s, r->off, K4, K4, 0, VM_ANS_SIGBUS, W_JUST_REFUSED);
}

static void sc_inplace(struct script *s, uint64_t size, uint64_t page)
{
	struct region r[4] = {
		/* one 4K page inside a huge page */
		{ 3 * M2 + 5 * K4, K4, { { 3 * M2 + 5 * K4, K4 }, { 0, 0 } } },
		/* 64K across a 2M boundary */
		{ 5 * M2 - 32 * 1024, 64 * 1024,
		  { { 5 * M2 - 32 * 1024, 64 * 1024 }, { 0, 0 } } },
		/* one whole 2M page */
		{ 8 * M2, M2, { { 8 * M2, M2 }, { 0, 0 } } },
		/* 16M of whole 2M pages */
		{ 16 * M2, 16 * M1, { { 16 * M2, 16 * M1 }, { 0, 0 } } },
	};

	if (page == G1 && size >= 2 * G1) {
		/* a whole 1G page: the guest touches its ends */
		r[3] = (struct region){ G1, G1, { { G1, M2 },
						  { 2 * G1 - M2, M2 } } };
	}
	for (int i = 0; i < 4; i++)
		inplace_region(s, &r[i], size, i == 0);
}

static const struct scenario {
	const char *name, *summary;
	uint64_t min_size;
} scenarios[] = {
	{ "tdx-boot", "bounce buffer and scattered virtio pages shared, "
	  "I/O buffers churned between shared and private", 256 * M1 },
	{ "inplace", "data kept across private->shared->private in place; "
	  "the zero flag zeroes", 64 * M1 },
};

/* ------------------------------------------------------------ KVM */

struct kvm {
	int kvm_fd, vm_fd, vcpu_fd;
	struct kvm_run *run;
	size_t run_size;
	int api, max_slots, nr_slots;
	int vm_types;		/* KVM_CAP_VM_TYPES: bit per type, 0 if absent */
	int mem_attrs;		/* KVM_CAP_MEMORY_ATTRIBUTES */
	int guest_memfd;	/* KVM_CAP_GUEST_MEMFD */
	const char *vendor;
};

static const char *kvm_vendor(void)
{
	static const char *const mods[] = { "kvm_intel", "kvm_amd", "kvm_pvm" };
	struct stat st;
	char path[64];

	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		snprintf(path, sizeof(path), "/sys/module/%s", mods[i]);
		if (!stat(path, &st))
			return mods[i];
	}
	return "unknown";
}

static int cap(int fd, long c)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, c);

	return r < 0 ? 0 : r;
}

/* Open /dev/kvm and create a VM of the default type.  EXIT_NO_KVM when
 * this host cannot (no device, no permission, an unknown API). */
static int kvm_open(struct kvm *k)
{
	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		fprintf(stderr, "gmem: vm: /dev/kvm: %s\n", strerror(errno));
		return EXIT_NO_KVM;
	}
	k->api = ioctl(k->kvm_fd, KVM_GET_API_VERSION, 0);
	if (k->api != KVM_API_VERSION) {
		fprintf(stderr, "gmem: vm: KVM API %d, not %d\n", k->api,
			KVM_API_VERSION);
		return EXIT_NO_KVM;
	}
	if (!cap(k->kvm_fd, KVM_CAP_USER_MEMORY)) {
		fprintf(stderr, "gmem: vm: KVM lacks KVM_CAP_USER_MEMORY\n");
		return EXIT_NO_KVM;
	}
	k->vm_types = cap(k->kvm_fd, KVM_CAP_VM_TYPES);
	k->mem_attrs = cap(k->kvm_fd, KVM_CAP_MEMORY_ATTRIBUTES);
	k->guest_memfd = cap(k->kvm_fd, KVM_CAP_GUEST_MEMFD);
	k->vendor = kvm_vendor();
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, KVM_X86_DEFAULT_VM);
	if (k->vm_fd < 0) {
		fprintf(stderr, "gmem: vm: KVM_CREATE_VM: %s\n",
			strerror(errno));
		return EXIT_NO_KVM;
	}
	k->max_slots = cap(k->vm_fd, KVM_CAP_NR_MEMSLOTS);
	if (k->max_slots <= 0)
		k->max_slots = 32;
	return 0;
}

static void kvm_close(struct kvm *k)
{
	if (k->run)
		munmap(k->run, k->run_size);
	if (k->vcpu_fd >= 0)
		close(k->vcpu_fd);
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
}

static int kvm_slot(struct kvm *k, uint64_t gpa, uint64_t hva, uint64_t len)
{
	struct kvm_userspace_memory_region r = {
		.slot = (uint32_t)k->nr_slots,
		.guest_phys_addr = gpa,
		.memory_size = len,
		.userspace_addr = hva,
	};

	if (k->nr_slots >= k->max_slots) {
		fprintf(stderr, "gmem: vm: more than %d memory slots needed\n",
			k->max_slots);
		return -1;
	}
	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		fprintf(stderr, "gmem: vm: KVM_SET_USER_MEMORY_REGION slot %d "
			"gpa 0x%" PRIx64 " len 0x%" PRIx64 ": %s\n",
			k->nr_slots, gpa, len, strerror(errno));
		return -1;
	}
	k->nr_slots++;
	return 0;
}

/*
 * The file's memory as memory slots, GPA = offset.  Each huge page is
 * asked for (gmem_file_hva() gives a hole memory, so that the guest
 * never meets one); one slot per run of addresses that follow each other
 * in the host.  A huge-page file's range is one run: one slot.
 */
static int kvm_map_file(struct kvm *k, struct gmem_file *file, uint64_t size,
			uint64_t page)
{
	uint64_t off = 0, gpa = 0, run_len = 0;
	uintptr_t hva = 0;

	while (off < size) {
		void *a;
		uint64_t len;
		int ret = gmem_file_hva(file, off, &a, &len);

		if (ret) {
			fprintf(stderr, "gmem: vm: gmem_file_hva(0x%" PRIx64
				"): %s\n", off, gmem_errno_name(ret));
			return -1;
		}
		/* to the end of this huge page: the next one is asked too */
		len = len < page - off % page ? len : page - off % page;
		if (run_len && hva + run_len == (uintptr_t)a) {
			run_len += len;
		} else {
			if (run_len && kvm_slot(k, gpa, hva, run_len))
				return -1;
			gpa = off;
			hva = (uintptr_t)a;
			run_len = len;
		}
		off += len;
	}
	return kvm_slot(k, gpa, hva, run_len);
}

static void flat_segment(struct kvm_segment *sg, uint16_t sel, uint8_t type)
{
	memset(sg, 0, sizeof(*sg));
	sg->base = 0;
	sg->limit = 0xffffffffU;
	sg->selector = sel;
	sg->type = type;
	sg->present = 1;
	sg->db = 1;		/* 32-bit */
	sg->s = 1;		/* code or data */
	sg->g = 1;		/* 4K granularity: 4 GiB */
}

/* One vCPU in 32-bit protected mode, flat segments, no paging. */
static int kvm_vcpu(struct kvm *k, uint64_t rip, uint64_t rsi)
{
	struct kvm_sregs sr;
	struct kvm_regs r;
	int sz;

	k->vcpu_fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, 0);
	if (k->vcpu_fd < 0) {
		fprintf(stderr, "gmem: vm: KVM_CREATE_VCPU: %s\n",
			strerror(errno));
		return -1;
	}
	sz = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz <= 0)
		goto err;
	k->run_size = (size_t)sz;
	k->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		      k->vcpu_fd, 0);
	if (k->run == MAP_FAILED) {
		k->run = NULL;
		goto err;
	}
	if (ioctl(k->vcpu_fd, KVM_GET_SREGS, &sr) < 0)
		goto err;
	flat_segment(&sr.cs, 0x08, 0xb);	/* execute/read, accessed */
	flat_segment(&sr.ds, 0x10, 0x3);	/* read/write, accessed */
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	sr.cr0 = (sr.cr0 | 1) & ~(1ULL << 31);	/* PE, no PG */
	sr.cr4 = 0;
	sr.efer = 0;
	if (ioctl(k->vcpu_fd, KVM_SET_SREGS, &sr) < 0)
		goto err;
	memset(&r, 0, sizeof(r));
	r.rflags = 2;
	r.rip = rip;
	r.rsi = rsi;
	if (ioctl(k->vcpu_fd, KVM_SET_REGS, &r) < 0)
		goto err;
	return 0;
err:
	fprintf(stderr, "gmem: vm: setting up the vCPU: %s\n", strerror(errno));
	return -1;
}

/*
 * KVM's binary statistics of a VM or vCPU (@obj_fd): the values of @names
 * (NULL-terminated list); found[i] tells which exist.  Returns false if
 * the statistics cannot be read at all.
 */
static bool kvm_stats(int obj_fd, const char *const *names, uint64_t *vals,
		      bool *found)
{
	struct kvm_stats_header h;
	struct kvm_stats_desc *d;
	size_t dsz;
	bool ok = false;
	int fd;

	fd = ioctl(obj_fd, KVM_GET_STATS_FD, NULL);
	if (fd < 0)
		return false;
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
		goto out;
	dsz = sizeof(*d) + h.name_size;
	d = malloc(dsz);
	if (!d)
		goto out;
	for (uint32_t i = 0; i < h.num_desc; i++) {
		if (pread(fd, d, dsz, (off_t)(h.desc_offset + i * dsz)) !=
		    (ssize_t)dsz)
			goto free;
		d->name[h.name_size - 1] = '\0';
		for (int n = 0; names[n]; n++) {
			uint64_t v;

			if (strcmp(d->name, names[n]) || d->size != 1)
				continue;
			if (pread(fd, &v, sizeof(v),
				  (off_t)(h.data_offset + d->offset)) !=
			    (ssize_t)sizeof(v))
				goto free;
			vals[n] = v;
			found[n] = true;
		}
	}
	ok = true;
free:
	free(d);
out:
	close(fd);
	return ok;
}

/* ------------------------------------------------------------ the run */

struct vm {
	const struct vm_opts *o;
	struct kvm k;
	struct gmem_pool *pool;
	struct gmem_file *file;
	struct gmem_mm *mm;
	struct script s;
	struct tally t[MAX_TALLIES];
	unsigned int nr_t;
	uint32_t next;		/* the entry the guest must report next */
	bool hc_pending;
	uint32_t hc_nr, hc_off, hc_len, hc_arg;
	uint64_t exits, hcalls, to_shared, to_private, refused, failed;
	uint64_t mirror_err;
};

static struct tally *tally_of(struct vm *v, const char *what)
{
	for (unsigned int i = 0; i < v->nr_t; i++)
		if (!strcmp(v->t[i].what, what))
			return &v->t[i];
	if (v->nr_t == MAX_TALLIES)
		return NULL;
	v->t[v->nr_t].what = what;
	return &v->t[v->nr_t++];
}

/* The byte at @a of pattern @sd: dword (a & ~3) ^ sd, little-endian. */
static uint8_t pattern_byte(uint64_t a, uint32_t sd)
{
	uint32_t dw = (uint32_t)(a & ~3ULL) ^ sd;

	return (uint8_t)(dw >> (8 * (a & 3)));
}

/*
 * The device: writes every byte of [off, off+len), or reads the dwords
 * @stride bytes apart there, through the VMM's gmem mm.
 */
static int32_t dev_access(struct vm *v, bool write, uint64_t off,
			  uint64_t len, uint32_t sd, uint32_t stride)
{
	uint64_t size = gmem_file_size(v->file);

	if (!len || off >= size || len > size - off || stride < 4)
		return -EINVAL;
	for (uint64_t d = off; d < off + len; d += write ? 4 : stride) {
		for (uint64_t a = d; a < d + 4; a++) {
			uint8_t b = pattern_byte(a, sd), got;
			int ret = write ? gmem_host_write(v->mm, v->file, a, b) :
				  gmem_host_read(v->mm, v->file, a, &got);

			if (ret == GMEM_SIGBUS)
				return VM_ANS_SIGBUS;
			if (ret)
				return ret;
			if (!write && got != b) {
				fprintf(stderr, "gmem: vm: device read 0x%02x "
					"at 0x%" PRIx64 ", the guest wrote "
					"0x%02x\n", got, a, b);
				return VM_ANS_MISMATCH;
			}
		}
	}
	return 0;
}

static int32_t hcall(struct vm *v)
{
	int ret;

	v->hcalls++;
	switch (v->hc_nr) {
	case VM_HC_CONVERT: {
		enum gmem_attr to = v->hc_arg & VM_HC_TO_SHARED ? GMEM_SHARED :
				    GMEM_PRIVATE;
		unsigned int flags = v->hc_arg & VM_HC_ZERO ?
				     GMEM_CONVERT_ZERO : 0;

		ret = gmem_convert(v->file, v->hc_off, v->hc_len, to, flags,
				   0, NULL);
		if (!ret && to == GMEM_SHARED)
			v->to_shared++;
		else if (!ret)
			v->to_private++;
		return ret;
	}
	case VM_HC_DEV_READ:
	case VM_HC_DEV_WRITE:
		/* the entry being run is the one the guest reports next */
		ret = dev_access(v, v->hc_nr == VM_HC_DEV_WRITE, v->hc_off,
				 v->hc_len, v->hc_arg, v->s.e[v->next].stride);
		if (ret == VM_ANS_SIGBUS)
			v->refused++;
		return ret;
	}
	return -ENOSYS;
}

static const char *op_name(uint32_t op, uint32_t a1)
{
	if (op == VM_OP_FILL)
		return "fill";
	if (op == VM_OP_CHECK)
		return "check";
	if (op != VM_OP_HCALL)
		return "?";
	return a1 == VM_HC_CONVERT ? "convert" : a1 == VM_HC_DEV_READ ?
	       "device-read" : a1 == VM_HC_DEV_WRITE ? "device-write" : "hcall";
}

/* The answer as the guest compares it: an errno name or a number. */
static void answer_str(char *buf, size_t len, uint32_t ans)
{
	int32_t a = (int32_t)ans;

	if (a < 0)
		snprintf(buf, len, "%s", gmem_errno_name(a));
	else if (a == VM_ANS_SIGBUS)
		snprintf(buf, len, "SIGBUS");
	else if (a == VM_ANS_MISMATCH)
		snprintf(buf, len, "mismatch");
	else
		snprintf(buf, len, "%d", a);
}

/* The guest reported entry @gpa's outcome. */
static int report(struct vm *v, uint32_t status, uint64_t gpa, uint32_t detail,
		  uint32_t got)
{
	uint64_t i = (gpa - VM_SCRIPT_GPA) / sizeof(struct vm_entry);
	const struct vm_entry *e;
	struct tally *t;

	if (gpa < VM_SCRIPT_GPA || i != v->next ||
	    (gpa - VM_SCRIPT_GPA) % sizeof(struct vm_entry)) {
		fprintf(stderr, "gmem: vm: the guest reported entry at 0x%"
			PRIx64 ", expected entry #%u\n", gpa, v->next);
		return -1;
	}
	v->next++;
	e = &v->s.e[i];
	t = tally_of(v, v->s.what[i]);
	if (status) {
		char a[24], b[24];

		v->failed++;
		if (t)
			t->failed++;
		if (e->op == VM_OP_HCALL) {
			answer_str(a, sizeof(a), detail);
			answer_str(b, sizeof(b), got);
			printf("FAIL #%" PRIu64 " %s: %s 0x%x+0x%x: answer %s, "
			       "expected %s\n", i, v->s.what[i],
			       op_name(e->op, e->a1), e->off, e->len, a, b);
		} else {
			printf("FAIL #%" PRIu64 " %s: %s 0x%x+0x%x: at 0x%x the "
			       "guest read 0x%08x, expected 0x%08x\n", i,
			       v->s.what[i], op_name(e->op, e->a1), e->off,
			       e->len, detail, got,
			       (detail & e->a2) ^ e->a1);
		}
	} else if (t) {
		t->ok++;
	}
	if (v->o->verbose && !status)
		printf("ok   #%" PRIu64 " %s: %s 0x%x+0x%x\n", i, v->s.what[i],
		       op_name(e->op, e->a1), e->off, e->len);
	/* Mirror the guest's accesses into gmem's guest map. */
	if (e->op == VM_OP_FILL || e->op == VM_OP_CHECK) {
		int ret = gmem_guest_access(v->file, e->off, e->len,
					    e->op == VM_OP_FILL ? GMEM_WRITE : 0);

		if (ret && !v->mirror_err++)
			fprintf(stderr, "gmem: vm: gmem_guest_access(0x%x+0x%x)"
				": %s\n", e->off, e->len,
				ret > 0 ? "guest fault" : gmem_errno_name(ret));
	}
	return 0;
}

static int get_regs(struct vm *v, struct kvm_regs *r)
{
	if (ioctl(v->k.vcpu_fd, KVM_GET_REGS, r) < 0) {
		fprintf(stderr, "gmem: vm: KVM_GET_REGS: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int handle_io(struct vm *v)
{
	struct kvm_run *run = v->k.run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	struct kvm_regs r;
	uint32_t val;

	if (run->io.size != 4 || run->io.count != 1)
		goto bad;
	memcpy(&val, data, 4);
	if (run->io.port == VM_PORT_HCALL &&
	    run->io.direction == KVM_EXIT_IO_OUT) {
		if (get_regs(v, &r))
			return -1;
		if (v->next >= v->s.n)
			goto bad;
		v->hc_nr = val;
		v->hc_off = (uint32_t)r.rbx;
		v->hc_len = (uint32_t)r.rcx;
		v->hc_arg = (uint32_t)r.rdx;
		v->hc_pending = true;
		return 0;
	}
	if (run->io.port == VM_PORT_HCALL &&
	    run->io.direction == KVM_EXIT_IO_IN && v->hc_pending) {
		int32_t ans = hcall(v);

		memcpy(data, &ans, 4);
		v->hc_pending = false;
		return 0;
	}
	if (run->io.port == VM_PORT_REPORT &&
	    run->io.direction == KVM_EXIT_IO_OUT) {
		if (get_regs(v, &r))
			return -1;
		return report(v, val, (uint32_t)r.rbx, (uint32_t)r.rcx,
			      (uint32_t)r.rdx);
	}
bad:
	fprintf(stderr, "gmem: vm: unexpected I/O: port 0x%x %s size %u "
		"count %u\n", run->io.port,
		run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
		run->io.size, run->io.count);
	return -1;
}

static int vm_run(struct vm *v)
{
	struct kvm_run *run = v->k.run;

	for (;;) {
		if (ioctl(v->k.vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "gmem: vm: KVM_RUN: %s\n",
				strerror(errno));
			return -1;
		}
		v->exits++;
		switch (run->exit_reason) {
		case KVM_EXIT_HLT:
			if (v->next + 1 != v->s.n) {
				fprintf(stderr, "gmem: vm: the guest halted "
					"after entry #%u of %u\n", v->next,
					v->s.n);
				return -1;
			}
			return 0;
		case KVM_EXIT_IO:
			if (handle_io(v))
				return -1;
			break;
		case KVM_EXIT_MMIO:
			fprintf(stderr, "gmem: vm: the guest accessed 0x%llx, "
				"outside its memory\n",
				(unsigned long long)run->mmio.phys_addr);
			return -1;
		case KVM_EXIT_FAIL_ENTRY:
			fprintf(stderr, "gmem: vm: KVM could not enter the "
				"guest (hardware reason 0x%llx)\n",
				(unsigned long long)
				run->fail_entry.hardware_entry_failure_reason);
			return -1;
		case KVM_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "gmem: vm: KVM internal error, "
				"suberror %u\n", run->internal.suberror);
			return -1;
		default:
			fprintf(stderr, "gmem: vm: unexpected exit reason %u\n",
				run->exit_reason);
			return -1;
		}
	}
}

/*
 * Write the program and the script into guest memory as a confidential
 * VMM populates a guest's initial private memory: through shared pages,
 * converted back to private in place before the guest runs.
 */
static int load_boot_image(struct vm *v)
{
	const uint8_t *sb = (const uint8_t *)v->s.e;
	uint64_t sbytes = (uint64_t)v->s.n * sizeof(struct vm_entry);
	int ret;

	ret = gmem_convert(v->file, 0, VM_BOOT_END, GMEM_SHARED, 0, 0, NULL);
	for (uint64_t i = 0; !ret && i < vm_guest_code_len; i++)
		ret = gmem_host_write(v->mm, v->file, VM_CODE_GPA + i,
				      vm_guest_code[i]);
	for (uint64_t i = 0; !ret && i < sbytes; i++)
		ret = gmem_host_write(v->mm, v->file, VM_SCRIPT_GPA + i, sb[i]);
	if (!ret)
		ret = gmem_convert(v->file, 0, VM_BOOT_END, GMEM_PRIVATE, 0, 0,
				   NULL);
	/* the guest reads its program and script: mirror that */
	if (!ret)
		ret = gmem_guest_access(v->file, VM_CODE_GPA,
					vm_guest_code_len, 0);
	if (!ret)
		ret = gmem_guest_access(v->file, VM_SCRIPT_GPA, sbytes, 0);
	if (ret)
		fprintf(stderr, "gmem: vm: loading the guest: %s\n",
			ret > 0 ? "SIGBUS" : gmem_errno_name(ret));
	return ret ? -1 : 0;
}

/* ------------------------------------------------------------ output */

static const char *backing_str(enum gmem_backing b)
{
	return b == GMEM_BACKING_HUGETLB ? "hugetlbfs" :
	       b == GMEM_BACKING_MEMFD ? "memfd" : "none";
}

static void size_str(char *buf, size_t len, uint64_t v)
{
	if (v >= G1 && !(v % G1))
		snprintf(buf, len, "%" PRIu64 " GiB", v / G1);
	else if (v >= M1 && !(v % M1))
		snprintf(buf, len, "%" PRIu64 " MiB", v / M1);
	else
		snprintf(buf, len, "%" PRIu64 " KiB", v >> 10);
}

static void print_kvm(const struct vm *v)
{
	const struct kvm *k = &v->k;
	bool sw = k->vm_types & (1 << KVM_X86_SW_PROTECTED_VM);

	printf("kvm: API %d, module %s, VM type %d (default); VM types offered "
	       "0x%x, KVM_CAP_MEMORY_ATTRIBUTES 0x%x, KVM_CAP_GUEST_MEMFD %d\n",
	       k->api, k->vendor, KVM_X86_DEFAULT_VM, k->vm_types,
	       k->mem_attrs, k->guest_memfd);
	if (!sw)
		printf("kvm: no software-protected VM type on this host: the "
		       "private/shared split is enforced by gmem on the host "
		       "side, not by hardware or KVM\n");
	else
		printf("kvm: this host offers KVM_X86_SW_PROTECTED_VM, but gmem "
		       "vm runs a default VM: the private/shared split is "
		       "enforced by gmem on the host side\n");
}

static void print_row(const char *label, const uint64_t e[3], const char *tail)
{
	printf("  %-44s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "%s\n", label,
	       e[0], e[1], e[2], tail);
}

/* The vCPU's own counters: what running this guest cost KVM. */
static void print_vcpu_stats(struct vm *v)
{
	static const char *const names[] = { "exits", "io_exits",
					     "insn_emulation", "pf_fixed",
					     "halt_exits", NULL };
	uint64_t val[5] = { 0 };
	bool found[5] = { false };

	if (!kvm_stats(v->k.vcpu_fd, names, val, found)) {
		printf("kvm vcpu: no binary statistics (%s)\n", strerror(errno));
		return;
	}
	printf("kvm vcpu:");
	for (int i = 0; names[i]; i++) {
		if (found[i])
			printf(" %s %" PRIu64, names[i], val[i]);
		else
			printf(" %s absent", names[i]);
	}
	printf("\n");
}

/* gmem's guest map as entries, 1G/2M/4K. */
static void gmem_entries(const struct gmem_stats *st, uint64_t e[3])
{
	e[0] = st->guest_1g / G1;
	e[1] = st->guest_2m / M2;
	e[2] = st->guest_4k / K4;
}

static void print_pagesizes(struct vm *v)
{
	static const char *const names[] = { "pages_1g", "pages_2m",
					     "pages_4k", NULL };
	uint64_t kv[3] = { 0, 0, 0 }, ge[3], pe[3];
	bool found[3] = { false, false, false }, have;
	struct gmem_stats st, pf;
	int ret;

	have = kvm_stats(v->k.vm_fd, names, kv, found);
	gmem_stats(v->pool, v->file, &st);
	gmem_entries(&st, ge);
	ret = gmem_guest_access(v->file, 0, gmem_file_size(v->file), 0);
	gmem_stats(v->pool, v->file, &pf);
	gmem_entries(&pf, pe);

	printf("\nstage-2 mappings after the guest ran (entries):      "
	       "        1G         2M         4K\n");
	if (have && found[0] && found[1] && found[2]) {
		print_row("KVM pages_1g/2m/4k (KVM_GET_STATS_FD)", kv, "");
	} else {
		printf("  %-44s %10s %10s %10s\n",
		       "KVM pages_1g/2m/4k (KVM_GET_STATS_FD)",
		       have && found[0] ? "" : "absent",
		       have && found[1] ? "" : "absent",
		       have && found[2] ? "" : "absent");
	}
	print_row("gmem guest_1g/2m/4k, pages the guest touched", ge, "");
	print_row("gmem guest_1g/2m/4k, whole file prefaulted", pe,
		  ret ? " (prefault failed)" : "");
	if (!have)
		printf("KVM: no binary statistics on this VM "
		       "(KVM_GET_STATS_FD: %s).\n", strerror(errno));
	else if (!found[0] || !found[1] || !found[2])
		printf("KVM: this kernel's binary statistics have no "
		       "pages_1g/pages_2m/pages_4k for the VM.\n");
	else if (!kv[0] && !kv[1] && !kv[2])
		printf("KVM: all three read 0: %s\n",
		       !strcmp(v->k.vendor, "kvm_pvm") ?
		       "this host's kvm_pvm MMU (shadow paging) does not count "
		       "stage-2 page sizes; printed as read." :
		       "this KVM's MMU counted no stage-2 entries; printed as "
		       "read.");
	printf("gmem: \"touched\" mirrors each guest fill/check with "
	       "gmem_guest_access() after the guest reported it (entries over "
	       "converted ranges are zapped, as KVM zaps them); \"prefaulted\" "
	       "is gmem_guest_access() over the whole file at the end.\n");
}

/* ------------------------------------------------------------ main */

const char vm_help[] =
	"Runs a real KVM guest whose RAM is a gmem file: a VM of the default\n"
	"type whose one memory slot is the file's host range (gmem_file_hva()),\n"
	"guest physical address = file offset.  A 32-bit protected-mode guest\n"
	"walks a conversion script: it writes and checks data in private and\n"
	"shared pages and asks the host to convert ranges with a hypercall\n"
	"(out to port 0x10), which the host serves with gmem_convert().  A\n"
	"device in the host reads and writes shared pages through a gmem mm,\n"
	"where a private page gives SIGBUS.  Every check the guest makes is\n"
	"reported to the host (port 0x11) and counted; then KVM's stage-2\n"
	"page-size statistics are printed beside gmem's guest map.\n"
	"\n"
	"This host's KVM has no software-protected VM type: the private/shared\n"
	"split is enforced by gmem on the host side, not by hardware.\n"
	"\n"
	"Scenarios:\n"
	"  tdx-boot   bounce buffer converted to shared, scattered 4K virtio\n"
	"             pages shared, I/O buffers churned shared <-> private\n"
	"  inplace    data kept across private->shared->private conversions\n"
	"             in place; the zero flag zeroes; bad ranges refused\n"
	"\n"
	"Options:\n"
	"  --scenario NAME  tdx-boot (default) or inplace\n"
	"  --size S         guest memory (default 2G, at most 4G: the guest\n"
	"                   is 32-bit), a multiple of the page size\n"
	"  --page 1G|2M     the pool's huge page size (default 2M)\n"
	"  --policy P       a, b-eager or b-lazy (default); 4k is refused\n"
	"  --reserve        as root, raise the host's huge pages to what the\n"
	"                   guest needs and give them back at the end (also\n"
	"                   on error or SIGINT/SIGTERM)\n"
	"  --seed N         the script's choices (default 1)\n"
	"  --ops N          tdx-boot: I/O buffers churned (default 128 per\n"
	"                   GiB)\n"
	"  --scatter        take the file's huge pages from the pool last\n"
	"                   first, so that the pool's pages run against the\n"
	"                   file's order (the file's range is still one slot)\n"
	"  --verbose        print every check, not only failures\n"
	"  --dump-guest     write the guest program's bytes to stdout\n"
	"\n"
	"Memory: hugetlbfs where enough huge pages of the size are free (see\n"
	"--reserve), a memfd otherwise.\n"
	"\n"
	"Exit status: 0 every check passed; 1 a check failed or the run broke;\n"
	"2 a usage error; 77 KVM is not usable here (no /dev/kvm, no access;\n"
	"the last line says why).\n";


static int usage_err(const char *fmt, const char *arg)
{
	fprintf(stderr, "gmem: vm: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: gmem vm [OPTIONS]; gmem vm --help\n");
	return EXIT_USAGE;
}

static int parse_opts(int argc, char **argv, struct vm_opts *o, bool *dump)
{
	o->scenario = "tdx-boot";
	o->size = 2 * G1;
	o->page = M2;
	o->policy = GMEM_POLICY_B_LAZY;
	o->seed = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = !strcmp(a, "--scenario") || !strcmp(a, "--size") ||
			     !strcmp(a, "--page") || !strcmp(a, "--policy") ||
			     !strcmp(a, "--seed") || !strcmp(a, "--ops");

		if (takes && !val)
			return usage_err("%s needs a value", a);
		if (!strcmp(a, "--scenario")) {
			o->scenario = val;
		} else if (!strcmp(a, "--size")) {
			if (!parse_size(val, &o->size))
				return usage_err("bad size '%s'", val);
		} else if (!strcmp(a, "--page")) {
			if (!strcmp(val, "1G"))
				o->page = G1;
			else if (!strcmp(val, "2M"))
				o->page = M2;
			else
				return usage_err("--page is 1G or 2M, not '%s'",
						 val);
		} else if (!strcmp(a, "--policy")) {
			if (!strcmp(val, "a"))
				o->policy = GMEM_POLICY_A;
			else if (!strcmp(val, "b-eager"))
				o->policy = GMEM_POLICY_B_EAGER;
			else if (!strcmp(val, "b-lazy"))
				o->policy = GMEM_POLICY_B_LAZY;
			else if (!strcmp(val, "4k"))
				return usage_err("%s", "policy 4k is refused: its "
						 "4K frames are scattered, and a "
						 "KVM memory slot per 4K page is "
						 "not practical");
			else
				return usage_err("unknown policy '%s' (a, "
						 "b-eager, b-lazy)", val);
		} else if (!strcmp(a, "--seed")) {
			if (!parse_size(val, &o->seed))
				return usage_err("bad seed '%s'", val);
		} else if (!strcmp(a, "--ops")) {
			if (!parse_size(val, &o->ops))
				return usage_err("bad --ops '%s'", val);
		} else if (!strcmp(a, "--reserve")) {
			o->reserve = true;
		} else if (!strcmp(a, "--scatter")) {
			o->scatter = true;
		} else if (!strcmp(a, "--verbose")) {
			o->verbose = true;
		} else if (!strcmp(a, "--dump-guest")) {
			*dump = true;
		} else {
			return usage_err("unknown option '%s'", a);
		}
		if (takes)
			i++;
	}
	return 0;
}

static const struct scenario *find_scenario(const char *name)
{
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(scenarios[i].name, name))
			return &scenarios[i];
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_summary(const struct vm *v)
{
	uint64_t ok = 0;

	printf("\nchecks the guest reported (%u entries):\n", v->next);
	for (unsigned int i = 0; i < v->nr_t; i++) {
		printf("  %6u ok %4u failed  %s\n", v->t[i].ok, v->t[i].failed,
		       v->t[i].what);
		ok += v->t[i].ok;
	}
	printf("  %6" PRIu64 " ok %4" PRIu64 " failed  in all\n", ok, v->failed);
	printf("conversions: %" PRIu64 " to shared, %" PRIu64 " to private; "
	       "hypercalls %" PRIu64 "; host accesses refused with SIGBUS %"
	       PRIu64 "; exits to the VMM %" PRIu64 "\n", v->to_shared, v->to_private,
	       v->hcalls, v->refused, v->exits);
}

int vm_main(int argc, char **argv)
{
	struct vm v;
	struct vm_opts o;
	struct hugepages hp;
	const struct scenario *sc;
	char sz[32], why[256];
	bool dump = false, hp_ok = true;
	double t0;
	int ret, rc = EXIT_FAILURE;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: gmem vm [OPTIONS]\n\n%s", vm_help);
		return EXIT_SUCCESS;
	}
	memset(&o, 0, sizeof(o));
	ret = parse_opts(argc, argv, &o, &dump);
	if (ret)
		return ret;
	if (dump)
		return fwrite(vm_guest_code, 1, vm_guest_code_len, stdout) ==
		       vm_guest_code_len ? EXIT_SUCCESS : EXIT_FAILURE;
	sc = find_scenario(o.scenario);
	if (!sc)
		return usage_err("unknown scenario '%s' (tdx-boot, inplace)",
				 o.scenario);
	if (o.size % o.page || o.size > 4 * G1 || o.size < sc->min_size) {
		snprintf(why, sizeof(why), "--size must be a multiple of the "
			 "page size, at least %" PRIu64 " MiB for %s and at "
			 "most 4G (a 32-bit guest)", sc->min_size / M1,
			 sc->name);
		return usage_err("%s", why);
	}
	if (!o.ops)
		o.ops = 128 * (o.size / G1 ? o.size / G1 : 1);
	setvbuf(stdout, NULL, _IOLBF, 0);

	memset(&v, 0, sizeof(v));
	memset(&hp, 0, sizeof(hp));
	v.o = &o;
	v.k.kvm_fd = v.k.vm_fd = v.k.vcpu_fd = -1;
	v.s.rng = o.seed;

	/* the script first: it is the guest's, whatever the host has */
	if (!strcmp(sc->name, "tdx-boot"))
		sc_tdx_boot(&v.s, o.size, o.ops);
	else
		sc_inplace(&v.s, o.size, o.page);
	add(&v.s, VM_OP_END, 0, 0, 0, 0, 0, "end");
	if (v.s.too_big) {
		fprintf(stderr, "gmem: vm: the script does not fit in %llu "
			"entries (fewer --ops)\n",
			(unsigned long long)VM_SCRIPT_MAX);
		goto out;
	}

	ret = kvm_open(&v.k);
	if (ret) {
		rc = ret;
		goto out;
	}
	hp_reserve(&hp, o.page, o.size / o.page, o.reserve);
	ret = gmem_pool_create(o.page, o.size / o.page, GMEM_BACKING_AUTO,
			       &v.pool);
	if (ret) {
		fprintf(stderr, "gmem: vm: pool: %s\n", gmem_errno_name(ret));
		goto out;
	}
	ret = gmem_file_create(v.pool, o.size, o.policy, 0, &v.file);
	if (!ret)
		ret = gmem_mm_create(v.pool, NULL, &v.mm);
	if (!ret)
		ret = gmem_mmap(v.mm, v.file);
	if (ret) {
		fprintf(stderr, "gmem: vm: file: %s\n", gmem_errno_name(ret));
		goto out;
	}

	size_str(sz, sizeof(sz), o.size);
	printf("gmem vm: scenario %s (%s)\n", sc->name, sc->summary);
	print_kvm(&v);
	printf("memory: %s file, policy %s, %s pages, backing %s", sz,
	       policy_name(o.policy), o.page == G1 ? "1G" : "2M",
	       backing_str(gmem_pool_backing(v.pool)));
	if (hp.raised)
		printf(" (--reserve raised nr_hugepages %llu -> %llu)",
		       hp.nr_before, hp.nr_raised);
	printf("\n");
	if (hp.why[0])
		printf("memory: not hugetlbfs: %s\n", hp.why);
	if (o.scatter) {
		/* the last page first: pool frames against the file's order */
		for (uint64_t off = o.size; off; off -= o.page) {
			void *a;
			uint64_t len;

			ret = gmem_file_hva(v.file, off - o.page, &a, &len);
			if (ret) {
				fprintf(stderr, "gmem: vm: gmem_file_hva(0x%"
					PRIx64 "): %s\n", off - o.page,
					gmem_errno_name(ret));
				goto out;
			}
		}
		printf("memory: pages taken from the pool last first "
		       "(--scatter)\n");
	}
	if (kvm_map_file(&v.k, v.file, o.size, o.page))
		goto out;
	printf("memslots: %d per file, 1 file (%d of %d slots), guest "
	       "physical address = file offset\n", v.k.nr_slots, v.k.nr_slots,
	       v.k.max_slots);
	printf("guest: 32-bit protected mode, flat segments, no paging; "
	       "program %zu bytes at 0x%llx (hand-assembled, tools/vm_guest.c), "
	       "script %u entries at 0x%llx\n", vm_guest_code_len,
	       (unsigned long long)VM_CODE_GPA, v.s.n,
	       (unsigned long long)VM_SCRIPT_GPA);
	if (load_boot_image(&v) ||
	    kvm_vcpu(&v.k, VM_CODE_GPA, VM_SCRIPT_GPA))
		goto out;

	t0 = now_s();
	ret = vm_run(&v);
	print_summary(&v);
	printf("guest ran %.2f s\n", now_s() - t0);
	print_vcpu_stats(&v);
	if (ret)
		goto out;
	if (v.mirror_err)
		printf("gmem: %" PRIu64 " mirrored guest accesses failed\n",
		       v.mirror_err);
	print_pagesizes(&v);
	ret = gmem_check(v.pool, why, sizeof(why));
	printf("gmem_check: %s\n", ret ? why : "ok");
	if (!ret && !v.failed && !v.mirror_err)
		rc = EXIT_SUCCESS;
out:
	kvm_close(&v.k);
	gmem_pool_destroy(v.pool);
	if (hp.raised) {
		hp_ok = hp_release(&hp);
		printf("memory: --reserve gave the huge pages back: "
		       "nr_hugepages %llu -> %llu%s\n", hp.nr_raised,
		       hp.nr_before, hp_ok ? "" : " FAILED");
		if (!hp_ok)
			rc = EXIT_FAILURE;
	}
	free(v.s.e);
	free(v.s.what);
	if (rc != EXIT_NO_KVM)
		printf("result: %s (%" PRIu64 " of %u checks failed)\n",
		       rc == EXIT_SUCCESS ? "PASS" : "FAIL", v.failed, v.next);
	return rc;
}
