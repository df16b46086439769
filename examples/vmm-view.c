// SPDX-License-Identifier: MIT
/*
 * vmm-view.c - a device model and a vCPU sharing guest memory through a
 * view (gmem_mm_view()), with conversions racing the device's I/O.
 *
 * The vCPU thread stands for the guest: it converts pages between private
 * and shared (its "hypercalls") and writes a secret into each page while
 * it is private.  The device thread stands for an emulated device: it
 * loads and stores guest memory directly through the view, as a VMM's
 * device model does through its mapping of guest RAM, and it pins the
 * pages of its I/O (gmem_pin(), short-term) while the I/O is in flight.
 *
 * What the program shows:
 *  - a load of a private page through the view is SIGBUS, raised by the
 *    MMU; the device catches it (sigsetjmp()/siglongjmp() in a SIGBUS
 *    handler) and drops the I/O.  si_addr is the byte the load faulted
 *    on, not the start of its page;
 *  - a conversion to private that meets a pin in flight fails with
 *    -EAGAIN (timeout 0: the vCPU does not wait); the vCPU retries, as a
 *    VMM retries the hypercall once the I/O completes;
 *  - a conversion to shared zeroes the page (GMEM_CONVERT_ZERO), so the
 *    device never sees what the guest wrote while the page was private.
 * It prints one line and exits 0 only if there was no violation: the
 * secret read by the device, a SIGBUS on a pinned page or at the wrong
 * address, a load that succeeded on a page that is private.
 *
 * Views need a pool of plain memfd memory: a hugetlbfs mapping can only
 * be unmapped whole huge pages at a time, so one 4K page cannot be taken
 * away from the view.  The pool asks for GMEM_BACKING_MEMFD explicitly:
 * GMEM_BACKING_AUTO takes hugetlb when enough huge pages are reserved
 * (vm.nr_hugepages), and then gmem_mm_view() fails with -EOPNOTSUPP.
 * Views also need userfaultfd (minor faults on shmem, UFFDIO_POISON:
 * Linux 6.6) and the right to use it (root, or
 * vm.unprivileged_userfaultfd=1); without it the program says why and
 * exits 77 (skipped).
 *
 * Build: cc vmm-view.c $(pkg-config --cflags --libs gmem) -o vmm-view
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmem.h>

#define GUEST_SIZE	(2 * GMEM_2M)
#define NR_PAGES	64		/* the pages both threads work on */
#define SPREAD		(GUEST_SIZE / GMEM_PAGE_SIZE / NR_PAGES)
#define CONVERSIONS	2000
#define SECRET		0xa5		/* the guest's private data */
#define DEVICE		0x5d		/* what the device stores */

static struct gmem_pool *pool;
static struct gmem_file *guest;
static struct gmem_mm *vmm;
static volatile uint8_t *view;

/* the page's offset in the guest: spread over both huge pages */
static uint64_t page_off(unsigned int i)
{
	return (uint64_t)i * SPREAD * GMEM_PAGE_SIZE;
}

static atomic_int vcpu_done;
static atomic_ulong violations;
static char why[160];			/* the first violation */

static void violation(const char *what, uint64_t off)
{
	if (atomic_fetch_add(&violations, 1) == 0)
		snprintf(why, sizeof(why), "%s at 0x%llx", what,
			 (unsigned long long)off);
}

/* ------------------------------------------------- SIGBUS on the view */

static _Thread_local sigjmp_buf bus_jmp;
static _Thread_local volatile sig_atomic_t bus_armed;
static _Thread_local void *volatile bus_addr;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!bus_armed) {		/* not ours: die of it */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	bus_armed = 0;
	bus_addr = si->si_addr;
	siglongjmp(bus_jmp, 1);
}

/* Load the byte at @p; 1 on SIGBUS, with the address the kernel gave. */
static int view_load(volatile uint8_t *p, uint8_t *val, void **at)
{
	if (sigsetjmp(bus_jmp, 1)) {
		*at = bus_addr;
		return 1;
	}
	bus_armed = 1;
	*val = *p;
	bus_armed = 0;
	return 0;
}

static int view_store(volatile uint8_t *p, uint8_t val, void **at)
{
	if (sigsetjmp(bus_jmp, 1)) {
		*at = bus_addr;
		return 1;
	}
	bus_armed = 1;
	*p = val;
	bus_armed = 0;
	return 0;
}

/* ------------------------------------------------------------- vCPU */

static unsigned long eagain, converted;

static void *vcpu_main(void *arg)
{
	bool private[NR_PAGES] = { false };	/* the file starts shared */
	unsigned int seed = 1;

	(void)arg;
	for (unsigned int n = 0; n < CONVERSIONS; n++) {
		unsigned int i = (unsigned int)rand_r(&seed) % NR_PAGES;
		uint64_t off = page_off(i);
		enum gmem_attr to = private[i] ? GMEM_SHARED : GMEM_PRIVATE;
		unsigned int flags = to == GMEM_SHARED ? GMEM_CONVERT_ZERO : 0;
		int ret;

		/* timeout 0: a pin in flight is -EAGAIN now; retry */
		while ((ret = gmem_convert(guest, off, GMEM_PAGE_SIZE, to,
					   flags, 0, NULL)) == -EAGAIN) {
			eagain++;
			sched_yield();
		}
		if (ret) {
			violation("conversion failed", off);
			break;
		}
		converted++;
		private[i] = to == GMEM_PRIVATE;
		if (private[i]) {
			/* the guest's secret, in its private page */
			gmem_guest_write(guest, off, SECRET);
			gmem_guest_write(guest, off + 2048, SECRET);
		}
		for (int k = 0; k < 10; k++)	/* the guest runs a while */
			sched_yield();
	}
	atomic_store(&vcpu_done, 1);
	return NULL;
}

/* ----------------------------------------------------------- device */

static unsigned long ios, loads, sigbus, pin_refused;

static void *device_main(void *arg)
{
	unsigned int seed = 2;

	(void)arg;
	while (!atomic_load(&vcpu_done)) {
		unsigned int i = (unsigned int)rand_r(&seed) % NR_PAGES;
		uint64_t off = page_off(i), id;
		uint8_t v;
		void *at;

		/* a load with no pin: shared (zeroes or the device's own
		 * bytes), or SIGBUS at exactly that byte */
		loads++;
		if (view_load(view + off + 2048, &v, &at)) {
			sigbus++;
			if (at != (void *)(view + off + 2048))
				violation("SIGBUS at the wrong address", off);
		} else if (v == SECRET) {
			violation("private data read by the device", off);
		}

		/* an I/O: pin, store and load through the view, unpin */
		if (gmem_pin(vmm, guest, off, GMEM_PAGE_SIZE, 0, &id, NULL)) {
			pin_refused++;		/* private now: -EFAULT */
			continue;
		}
		ios++;
		if (view_store(view + off + 100, DEVICE, &at) ||
		    view_load(view + off, &v, &at))
			violation("SIGBUS on a pinned page", off);
		else if (v == SECRET)
			violation("private data read under a pin", off);
		for (int k = 0; k < 20; k++)	/* the I/O in flight */
			sched_yield();
		gmem_unpin(pool, id);
	}
	return NULL;
}

/* -------------------------------------------------------------- main */

static _Noreturn void die(const char *what, int err)
{
	fprintf(stderr, "vmm-view: %s: %s\n", what, gmem_errno_name(err));
	exit(1);
}

int main(void)
{
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO };
	pthread_t vcpu, device;
	void *addr;
	int ret;

	/* plain memfd, not AUTO: a view cannot live on hugetlbfs */
	ret = gmem_pool_create(GMEM_2M, GUEST_SIZE / GMEM_2M,
			       GMEM_BACKING_MEMFD, &pool);
	if (ret)
		die("pool", ret);
	ret = gmem_file_create(pool, GUEST_SIZE, GMEM_POLICY_B_LAZY,
			       GMEM_FILE_INIT_SHARED, &guest);
	if (ret)
		die("file", ret);
	if ((ret = gmem_mm_create(pool, NULL, &vmm)) ||
	    (ret = gmem_mmap(vmm, guest)))
		die("mm", ret);
	ret = gmem_mm_view(vmm, guest, &addr);
	if (ret == -ENOSYS || ret == -EPERM || ret == -EOPNOTSUPP) {
		printf("skipped: no userfaultfd for a view (%s; needs Linux 6.6 "
		       "and root or vm.unprivileged_userfaultfd=1)\n",
		       gmem_errno_name(ret));
		gmem_pool_destroy(pool);
		return 77;
	}
	if (ret)
		die("view", ret);
	view = addr;
	if (sigaction(SIGBUS, &sa, NULL))
		die("sigaction", -errno);

	if (pthread_create(&vcpu, NULL, vcpu_main, NULL) ||
	    pthread_create(&device, NULL, device_main, NULL))
		die("threads", -EAGAIN);
	pthread_join(vcpu, NULL);
	pthread_join(device, NULL);

	ret = gmem_mm_unview(vmm, guest);
	if (ret)
		die("unview", ret);
	printf("vmm-view: %lu conversions (%lu EAGAIN retries on pins in "
	       "flight); device: %lu loads, %lu SIGBUS, %lu pinned I/Os, %lu "
	       "pins refused; %lu violations%s%s\n", converted, eagain, loads,
	       sigbus, ios, pin_refused, atomic_load(&violations),
	       atomic_load(&violations) ? ": first " : "", why);
	gmem_pool_destroy(pool);
	return atomic_load(&violations) ? 1 : 0;
}
