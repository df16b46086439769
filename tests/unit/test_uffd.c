// SPDX-License-Identifier: MIT
/*
 * test_uffd.c - real views (gmem_mm_view()): a file's memory mapped in
 * this process, every first access trapping into gmem's fault path
 * through userfaultfd.
 *
 * - threads load and store through a view; gmem sees the same bytes and
 *   counts the real mappings as host entries;
 * - a page converted to private (or poisoned) gives the thread SIGBUS
 *   from the kernel at that page;
 * - an access during a conversion of its range waits in the kernel until
 *   the conversion is over, then gets what the conversion decided;
 * - private -> shared makes the page accessible again, content kept;
 * - punch, close and every errno; every failure point of view creation;
 * - gmem_mm_unview(): the view goes (SIGSEGV after), a new one may come,
 *   and a thousand views made and torn down leave no RSS, descriptor or
 *   thread behind;
 * - the handler pinned to a CPU (gmem_mm_view_opts()), and no handler at
 *   all: faults served from a poll() loop (gmem_view_fd(),
 *   gmem_view_serve()), a server waiting forever released by teardown.
 *
 * The whole program is skipped (exit 77) where this process cannot have a
 * userfaultfd with minor faults on shmem and UFFDIO_POISON.  gmem_check()
 * after each test compares the views' real PTEs (/proc/self/pagemap) with
 * gmem's host entries.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define PG(n) ((uint64_t)(n) * K4)

/* Linux 6.6 (include/uapi/linux/userfaultfd.h); Debian 12's headers are 6.1's. */
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif

/* ------------------------------------------------------------ helpers */

/* Whether this process may have the userfaultfd a view needs; why not. */
static bool uffd_usable(char *why, size_t len)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_POISON,
	};
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0) {
		snprintf(why, len, "userfaultfd: %s%s", strerror(errno),
			 errno == EPERM ? " (needs root or vm.unprivileged_userfaultfd=1)" : "");
		return false;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		snprintf(why, len,
			 "userfaultfd lacks UFFD_FEATURE_MINOR_SHMEM or UFFD_FEATURE_POISON (Linux 6.6)");
		close(fd);
		return false;
	}
	close(fd);
	return true;
}

/* A SIGBUS in a thread that armed itself lands back in its touch(). */
static _Thread_local sigjmp_buf bus_jmp;
static _Thread_local volatile sig_atomic_t bus_armed;
static _Thread_local void *volatile bus_addr;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!bus_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	bus_armed = 0;
	bus_addr = si->si_addr;
	siglongjmp(bus_jmp, 1);
}

/*
 * Load the byte at @p into *@val (or, with @store, store *@val there).
 * Return: 0, or 1 on SIGBUS with *@at the address the kernel reported.
 */
static int touch(volatile uint8_t *p, bool store, uint8_t *val, void **at)
{
	if (sigsetjmp(bus_jmp, 1)) {
		*at = bus_addr;
		return 1;
	}
	bus_armed = 1;
	if (store)
		*p = *val;
	else
		*val = *p;
	bus_armed = 0;
	return 0;
}

static int load(uint8_t *view, uint64_t off, uint8_t *val, void **at)
{
	return touch(view + off, false, val, at);
}

static int store(uint8_t *view, uint64_t off, uint8_t val, void **at)
{
	return touch(view + off, true, &val, at);
}

/* Entries of the directory @path, "." and ".." included; -1 if none. */
static int nr_entries(const char *path)
{
	DIR *d = opendir(path);
	int n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Open descriptors of this process. */
static int nr_fds(void)
{
	return nr_entries("/proc/self/fd");
}

/* Whether [p, p + len) is mapped at all in this process. */
static bool is_mapped(void *p, size_t len)
{
	unsigned char vec[1];

	return mincore(p, MIN(len, 4096), vec) == 0 || errno != ENOMEM;
}

/* A pool, a file and an mm that maps it, and a view of it through the mm. */
static bool setup_view(enum gmem_policy pol, uint64_t count, uint64_t fsize,
		       struct gmem_pool **pool, struct gmem_file **f,
		       struct gmem_mm **mm, uint8_t **view)
{
	void *a = NULL;

	if (!setup(MB2, count, pol, fsize, SHARED, pool, f, mm))
		return false;
	CHECK_EQ(gmem_mm_view(*mm, *f, &a), 0);
	CHECK(a != NULL);
	CHECK_EQ((uintptr_t)a % MB2, 0);
	*view = a;
	return true;
}

/* --------------------------------------- (1) loads and stores, accounting */

struct worker {
	uint8_t *view;
	uint64_t first, nr;		/* pages */
	uint8_t seed;
	int bad;			/* SIGBUS or a wrong value */
};

/* Store a pattern into each page, then load it back. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	void *at;
	uint8_t v;

	for (uint64_t i = 0; i < w->nr; i++)
		if (store(w->view, PG(w->first + i) + i % 4096,
			  (uint8_t)(w->seed + i), &at))
			w->bad++;
	for (uint64_t i = 0; i < w->nr; i++)
		if (load(w->view, PG(w->first + i) + i % 4096, &v, &at) ||
		    v != (uint8_t)(w->seed + i))
			w->bad++;
	return NULL;
}

static bool check_loads_stores(enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	struct worker w[2];
	pthread_t t[2];
	uint8_t *view, v;
	void *pages[4];
	uint64_t id;

	/* two huge pages; the second stays a hole until the view touches it */
	if (!setup_view(pol, 2, 2 * MB2, &pool, &f, &mm, &view))
		return false;
	/* page 0 has a host entry already; the view's access only maps it */
	CHECK_EQ(gmem_host_write(mm, f, PG(0) + 1, 0xa5), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 1);

	/* one thread on the first huge page, one on the hole */
	w[0] = (struct worker){ view, 0, 64, 0x10, 0 };
	w[1] = (struct worker){ view, 512 + 3, 64, 0x80, 0 };
	for (int i = 0; i < 2; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(w[0].bad, 0);
	CHECK_EQ(w[1].bad, 0);

	/* every page touched through the view is a host entry, once */
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 128);
	CHECK_EQ(s.pool_free, 0);		/* the hole got memory */
	CHECK_INVARIANTS(pool);

	/* gmem sees the bytes the thread stored, and the reverse */
	CHECK_EQ(view[PG(0) + 1], 0xa5);
	CHECK_EQ(gmem_host_read(mm, f, PG(0), &v), 0);
	CHECK_EQ(v, 0x10);
	CHECK_EQ(gmem_host_read(mm, f, PG(512 + 3 + 5) + 5, &v), 0);
	CHECK_EQ(v, 0x85);
	CHECK_EQ(gmem_pin(mm, f, PG(62), PG(4), 0, &id, pages), 0);
	CHECK_EQ(((uint8_t *)pages[0])[62], 0x10 + 62);
	CHECK_EQ(((uint8_t *)pages[1])[63], 0x10 + 63);
	((uint8_t *)pages[2])[7] = 0x42;	/* page 64: not touched yet */
	CHECK_EQ(view[PG(64) + 7], 0x42);	/* the view shows it */
	CHECK_EQ(gmem_unpin(pool, id), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 128 + 2);	/* the pin mapped 64, 65 */

	CHECK_EQ(gmem_file_close(f), 0);
	CHECK(!is_mapped(view, 2 * MB2));	/* the view went with it */
	FINISH(pool);
}

static bool test_view_loads_stores(void)
{
	return check_loads_stores(GMEM_POLICY_A) &&
	       check_loads_stores(GMEM_POLICY_B_EAGER) &&
	       check_loads_stores(GMEM_POLICY_B_LAZY);
}

/* ------------------------------------------ (2) SIGBUS on a private page */

/* A thread's touch of one page: what it got. */
struct toucher {
	uint8_t *view;
	uint64_t off;
	bool store;
	uint8_t val;
	int sigbus;
	void *at;
	/* (3): start when told, and what the file's stats said right after */
	atomic_int go, started, done;
	struct gmem_pool *pool;
	struct gmem_file *f;
	uint64_t t_done;
	struct gmem_stats after;
};

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;

	while (t->pool && !atomic_load(&t->go))
		sched_yield();
	atomic_store(&t->started, 1);
	t->sigbus = touch(t->view + t->off, t->store, &t->val, &t->at);
	t->t_done = now_ms();
	if (t->pool)
		gmem_stats(t->pool, t->f, &t->after);
	atomic_store(&t->done, 1);
	return NULL;
}

/* Touch @off of @view from a new thread; SIGBUS or not, and where. */
static int touch_in_thread(uint8_t *view, uint64_t off, bool st, uint8_t *val,
			   void **at)
{
	struct toucher t = { .view = view, .off = off, .store = st };
	pthread_t th;

	if (val)
		t.val = *val;
	if (pthread_create(&th, NULL, toucher_main, &t))
		return -1;
	pthread_join(th, NULL);
	if (val)
		*val = t.val;
	*at = t.at;
	return t.sigbus;
}

static bool check_sigbus_private(enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint8_t *view, v = 0x55;
	void *at = NULL;

	if (!setup_view(pol, 1, MB2, &pool, &f, &mm, &view))
		return false;
	CHECK_EQ(touch_in_thread(view, PG(5), true, &v, &at), 0);
	CHECK_EQ(touch_in_thread(view, PG(6), true, &v, &at), 0);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 2);

	CHECK_EQ(gmem_convert(f, PG(5), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	STATS(pool, f, &s);
	/* a and b-lazy (intact until now) drain the whole 2M folio: page 6
	 * is zapped too; b-eager's drain set is page 5's 4K folio */
	CHECK_EQ(s.host_ptes, pol == GMEM_POLICY_B_EAGER ? 1 : 0);
	CHECK_INVARIANTS(pool);		/* the MMU agrees */

	/* the kernel raises SIGBUS at the page, and again on a retry */
	CHECK_EQ(touch_in_thread(view, PG(5), false, &v, &at), 1);
	CHECK(at == view + PG(5));
	CHECK_EQ(touch_in_thread(view, PG(5) + 0x123, true, &v, &at), 1);
	CHECK_EQ((uintptr_t)at & ~(uintptr_t)(K4 - 1), (uintptr_t)(view + PG(5)));
	/* page 6 is still shared: it faults back in */
	CHECK_EQ(touch_in_thread(view, PG(6), false, &v, &at), 0);
	CHECK_EQ(v, 0x55);
	/* a poisoned shared page: SIGBUS too */
	CHECK_EQ(gmem_poison(f, PG(6)), 0);
	CHECK_EQ(touch_in_thread(view, PG(6), false, &v, &at), 1);
	CHECK(at == view + PG(6));
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_view_sigbus_private(void)
{
	return check_sigbus_private(GMEM_POLICY_A) &&
	       check_sigbus_private(GMEM_POLICY_B_EAGER) &&
	       check_sigbus_private(GMEM_POLICY_B_LAZY);
}

/* ------------------------- (3) an access waits out a conversion in flight */

struct converter {
	struct gmem_file *f;
	uint64_t off, len;
	int timeout_ms;
	int ret;
};

static void *converter_main(void *arg)
{
	struct converter *c = arg;

	c->ret = gmem_convert(c->f, c->off, c->len, GMEM_PRIVATE, 0,
			      c->timeout_ms, NULL);
	return NULL;
}

/* Spin until the file's invalidate lock is held exclusively (by the
 * converter), up to 5 s. */
static bool wait_exclusive(struct gmem_file *f)
{
	uint64_t end = now_ms() + 5000;

	while (!atomic_load_explicit(&to_file(f)->inval.writer_held,
				     memory_order_relaxed))
		if (now_ms() > end)
			return false;
		else
			sched_yield();
	return true;
}

/*
 * Policy a: a short-term pin on page 100 is in the drain set of a
 * conversion of pages 7-8 (one intact 2M folio), which waits for it while
 * holding the invalidate lock.  A thread loads page 7 through the view
 * meanwhile.  With @unpin the pin goes after ~200 ms and the conversion
 * succeeds: the load ends in SIGBUS; without, the conversion gives up at
 * its 200 ms timeout (EAGAIN) and the load gets the value.  Either way
 * the load completes only after the conversion released the lock: the
 * file's statistics, read by the thread right after, already count it.
 */
static bool check_blocks(bool unpin)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct converter c;
	struct toucher t = { 0 };
	pthread_t tc, tt;
	uint64_t id, t_unpin = 0, t_conv;
	uint8_t *view;

	if (!setup_view(GMEM_POLICY_A, 1, MB2, &pool, &f, &mm, &view))
		return false;
	/* page 7 holds data; no real PTE yet, so the load must trap */
	CHECK_EQ(gmem_host_write(mm, f, PG(7) + 9, 0x77), 0);
	CHECK_EQ(gmem_pin(mm, f, PG(100), K4, 0, &id, NULL), 0);
	c = (struct converter){ f, PG(7), PG(2), unpin ? 10000 : 200, 1 };
	t.view = view;
	t.off = PG(7) + 9;
	t.pool = pool;
	t.f = f;
	CHECK_EQ(pthread_create(&tt, NULL, toucher_main, &t), 0);
	t_conv = now_ms();
	CHECK_EQ(pthread_create(&tc, NULL, converter_main, &c), 0);
	CHECK(wait_exclusive(f));
	atomic_store(&t.go, 1);
	while (!atomic_load(&t.started))
		sched_yield();
	if (unpin) {
		sleep_ms(200);
		CHECK_EQ(atomic_load(&t.done), 0);	/* still held */
		t_unpin = now_ms();
		CHECK_EQ(gmem_unpin(pool, id), 0);
	}
	pthread_join(tc, NULL);
	pthread_join(tt, NULL);

	if (unpin) {
		CHECK_EQ(c.ret, 0);
		CHECK_EQ(t.sigbus, 1);		/* page 7 is private now */
		CHECK(t.at == view + PG(7) + 9);
		CHECK(t.t_done >= t_unpin);
		CHECK_EQ(t.after.conversions, 1);
	} else {
		CHECK_EQ(c.ret, -EAGAIN);
		CHECK_EQ(t.sigbus, 0);		/* still shared: the value */
		CHECK_EQ(t.val, 0x77);
		CHECK(t.t_done >= t_conv + 190);
		CHECK_EQ(t.after.eagain, 1);
		CHECK_EQ(gmem_unpin(pool, id), 0);
	}
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_view_blocks_during_conversion(void)
{
	return check_blocks(true) && check_blocks(false);
}

/* ------------------------------------- (4) private -> shared, in place */

static bool check_private_to_shared(enum gmem_policy pol)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint8_t *view, v;
	void *at;

	if (!setup_view(pol, 1, MB2, &pool, &f, &mm, &view))
		return false;
	v = 0x33;
	CHECK_EQ(touch_in_thread(view, PG(3), true, &v, &at), 0);
	CHECK_EQ(gmem_convert(f, PG(2), PG(4), GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(touch_in_thread(view, PG(3), false, &v, &at), 1);
	CHECK_EQ(touch_in_thread(view, PG(4), false, &v, &at), 1);
	/* the guest writes while the page is private */
	CHECK_EQ(gmem_guest_write(f, PG(3) + 1, 0x44), 0);

	CHECK_EQ(gmem_convert(f, PG(3), K4, GMEM_SHARED, 0, 0, NULL), 0);
	CHECK_EQ(touch_in_thread(view, PG(3), false, &v, &at), 0);
	CHECK_EQ(v, 0x33);
	CHECK_EQ(touch_in_thread(view, PG(3) + 1, false, &v, &at), 0);
	CHECK_EQ(v, 0x44);
	/* page 4 stayed private: still SIGBUS */
	CHECK_EQ(touch_in_thread(view, PG(4), false, &v, &at), 1);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 1);
	CHECK_INVARIANTS(pool);

	/* ZERO on the way back: the page reads zero through the view */
	CHECK_EQ(gmem_guest_write(f, PG(4), 0x66), 0);
	CHECK_EQ(gmem_convert(f, PG(4), K4, GMEM_SHARED, GMEM_CONVERT_ZERO, 0,
			      NULL), 0);
	CHECK_EQ(touch_in_thread(view, PG(4), false, &v, &at), 0);
	CHECK_EQ(v, 0);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_view_private_to_shared(void)
{
	return check_private_to_shared(GMEM_POLICY_A) &&
	       check_private_to_shared(GMEM_POLICY_B_LAZY);
}

/* --------------------------------------------- punch: memory that moves */

/*
 * Punching a whole huge page returns it to the pool; a second file takes
 * it, and the first file's next access through the view gets new memory
 * (zeroed), never the second file's bytes.  A partial punch zeroes pages
 * under the view's entries: they read zero.
 */
static bool test_view_punch(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f, *g;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint8_t *view, v;
	void *at;

	if (!setup_view(GMEM_POLICY_B_LAZY, 2, MB2, &pool, &f, &mm, &view))
		return false;
	v = 0x11;
	CHECK_EQ(touch_in_thread(view, PG(1), true, &v, &at), 0);
	CHECK_EQ(touch_in_thread(view, PG(2), true, &v, &at), 0);
	/* partial punch: zeroed in place, entries kept by gmem */
	CHECK_EQ(gmem_punch(f, PG(2), K4), 0);
	CHECK_EQ(touch_in_thread(view, PG(2), false, &v, &at), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(view[PG(1)], 0x11);

	/* whole punch: the page goes back; g takes it and fills it */
	CHECK_EQ(gmem_punch(f, 0, MB2), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, SHARED, &g), 0);
	CHECK_EQ(gmem_guest_write(g, PG(1), 0x99), 0);
	CHECK_EQ(touch_in_thread(view, PG(1), false, &v, &at), 0);
	CHECK_EQ(v, 0);				/* f's own new memory */
	CHECK_EQ(gmem_guest_read(g, PG(1), &v), 0);
	CHECK_EQ(v, 0x99);
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 1);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_file_close(g), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* --------------------------------------------------- (5) errno, teardown */

/*
 * A pool of @backing refuses views with -EOPNOTSUPP (none: no memory;
 * hugetlb: a 4K page cannot be zapped alone).  False with *@ran false
 * when such a pool cannot be had here.
 */
static bool check_view_refused(enum gmem_backing backing, bool *ran)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	void *a = NULL;

	*ran = false;
	if (gmem_pool_create(MB2, 1, backing, &pool))
		return false;
	*ran = true;
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, SHARED, &f), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
	CHECK_EQ(gmem_mmap(mm, f), 0);
	CHECK_EQ(gmem_mm_view(mm, f, &a), -EOPNOTSUPP);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

static bool test_view_errno(void)
{
	bool ran;

	/* backing none: metadata only, always available */
	return check_view_refused(GMEM_BACKING_NONE, &ran) && ran;
}

static bool test_view_errno_hugetlb(void)
{
	bool ran, ok = check_view_refused(GMEM_BACKING_HUGETLB, &ran);

	if (!ran)
		printf("(no free 2M huge page: hugetlb case not run)\n");
	return ok || !ran;
}

static bool test_view_errno_memfd(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f, *g;
	struct gmem_mm *mm, *other;
	void *a = NULL, *b = NULL;

	if (!setup(MB2, 2, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_mm_view(NULL, f, &a), -EINVAL);
	CHECK_EQ(gmem_mm_view(mm, NULL, &a), -EINVAL);
	CHECK_EQ(gmem_mm_view(mm, f, NULL), -EINVAL);
	/* an mm that does not map the file */
	CHECK_EQ(gmem_mm_create(pool, NULL, &other), 0);
	CHECK_EQ(gmem_mm_view(other, f, &a), -EFAULT);
	/* policy 4k: scattered frames */
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_4K, SHARED, &g), 0);
	CHECK_EQ(gmem_mmap(mm, g), 0);
	CHECK_EQ(gmem_mm_view(mm, g, &a), -EOPNOTSUPP);
	CHECK_EQ(gmem_file_close(g), 0);
	/* one view per mapping; another mm gets its own */
	CHECK_EQ(gmem_mm_view(mm, f, &a), 0);
	CHECK_EQ(gmem_mm_view(mm, f, &b), -EEXIST);
	CHECK_EQ(gmem_mmap(other, f), 0);
	CHECK_EQ(gmem_mm_view(other, f, &b), 0);
	CHECK(a != b);
	((uint8_t *)a)[5] = 5;
	CHECK_EQ(((uint8_t *)b)[5], 5);
	CHECK_EQ(gmem_file_close(f), 0);
	CHECK(!is_mapped(a, MB2));
	CHECK(!is_mapped(b, MB2));
	/* a closed file */
	CHECK_EQ(gmem_mm_view(mm, f, &a), -EBADF);
	FINISH(pool);
}

/*
 * Teardown: views unmapped and threads stopped by gmem_file_close() and
 * by gmem_pool_destroy(); no descriptor outlives them (ASan checks memory).
 */
static bool test_view_teardown(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	uint8_t *view, v = 1;
	void *at;
	int fds0 = nr_fds();

	if (!setup_view(GMEM_POLICY_B_EAGER, 1, MB2, &pool, &f, &mm, &view))
		return false;
	CHECK_EQ(touch_in_thread(view, PG(9), true, &v, &at), 0);
	gmem_pool_destroy(pool);		/* closes f, with its view */
	CHECK(!is_mapped(view, MB2));
	CHECK_EQ(nr_fds(), fds0);
	return true;
}

/* Every failure point of gmem_mm_view(): -ENOMEM, nothing left behind. */
static bool test_view_inject(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint64_t n;
	void *a = NULL;
	int fds0, ret;
	int64_t live0;

	if (!setup(MB2, 3, GMEM_POLICY_B_LAZY, 3 * MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_host_write(mm, f, PG(512) + 3, 3), 0);	/* one slot mapped */
	fds0 = nr_fds();
	live0 = gmem_alloc_live_bytes();
	gmem_inject_reset();
	CHECK_EQ(gmem_mm_view(mm, f, &a), 0);
	n = gmem_inject_calls();
	gmem_inject_reset();
	CHECK(n >= 5);
	CHECK_EQ(gmem_file_close(f), 0);
	gmem_pool_destroy(pool);

	for (uint64_t i = 1; i <= n; i++) {
		if (!setup(MB2, 3, GMEM_POLICY_B_LAZY, 3 * MB2, SHARED, &pool,
			   &f, &mm))
			return false;
		CHECK_EQ(gmem_host_write(mm, f, PG(512) + 3, 3), 0);
		live0 = gmem_alloc_live_bytes();
		fds0 = nr_fds();
		gmem_inject_fail_nth(i);
		ret = gmem_mm_view(mm, f, &a);
		gmem_inject_reset();
		CHECK_EQ(ret, -ENOMEM);
		CHECK_EQ(gmem_alloc_live_bytes(), live0);
		CHECK_EQ(nr_fds(), fds0);
		STATS(pool, f, &s);
		CHECK_EQ(s.host_ptes, 1);
		/* and then it works */
		CHECK_EQ(gmem_mm_view(mm, f, &a), 0);
		CHECK_EQ(((uint8_t *)a)[PG(512) + 3], 3);
		CHECK_INVARIANTS(pool);
		CHECK_EQ(gmem_file_close(f), 0);
		CHECK_INVARIANTS(pool);
		CHECK_BASELINE(pool);
		gmem_pool_destroy(pool);
	}
	return true;
}

/* ------------------------------------ statistics beside a view fault */

struct statter {
	struct gmem_pool *pool;
	atomic_bool stop;
	uint64_t n;
};

static void *stats_loop(void *arg)
{
	struct statter *st = arg;
	struct gmem_stats s;

	while (!atomic_load(&st->stop)) {
		gmem_stats(st->pool, NULL, &s);
		st->n++;
	}
	return NULL;
}

/*
 * A call on one file whose output lies in a view of another file faults
 * in that view while it holds its own file's lock; the view's handler
 * then needs the other file's lock.  Pool-wide statistics on a third
 * thread must not hold the one while waiting for the other.  A deadlock
 * here ends the program (alarm in main()).
 */
static bool test_view_output_beside_stats(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f1, *f2;
	struct gmem_mm *mm;
	struct statter st = { 0 };
	pthread_t t;
	uint8_t *v1;
	void *a;

	/* f2 first, f1 second: the list is newest first */
	CHECK_EQ(gmem_pool_create(MB2, 3, GMEM_BACKING_MEMFD, &pool), 0);
	CHECK_EQ(gmem_file_create(pool, MB2, GMEM_POLICY_B_LAZY, SHARED, &f2),
		 0);
	CHECK_EQ(gmem_file_create(pool, 2 * MB2, GMEM_POLICY_B_LAZY, SHARED,
				  &f1), 0);
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm), 0);
	CHECK_EQ(gmem_mmap(mm, f1), 0);
	CHECK_EQ(gmem_mmap(mm, f2), 0);
	CHECK_EQ(gmem_mm_view(mm, f1, &a), 0);
	v1 = a;
	CHECK_EQ(gmem_host_write(mm, f2, 0, 0x3c), 0);
	st.pool = pool;
	CHECK_EQ(pthread_create(&t, NULL, stats_loop, &st), 0);
	for (int round = 0; round < 8; round++) {
		for (uint64_t pg = 0; pg < 1024; pg++) {
			/* the byte lands in f1's view: a first touch */
			CHECK_EQ(gmem_host_read(mm, f2, 0, v1 + PG(pg) + 5), 0);
			CHECK_EQ(v1[PG(pg) + 5], 0x3c);
		}
		CHECK_EQ(gmem_punch(f1, 0, 2 * MB2), 0);	/* zap, again */
	}
	atomic_store(&st.stop, true);
	pthread_join(t, NULL);
	CHECK(st.n > 0);
	CHECK_EQ(gmem_file_close(f1), 0);
	CHECK_EQ(gmem_file_close(f2), 0);
	FINISH(pool);
}

/*
 * The lock-free paths (a load or a one-page pin of a mapped page) write
 * their results to the caller's memory: here a page of another file's view
 * that is not present yet, so the store traps to that view's handler,
 * which needs that file's invalidate lock.  Meanwhile another thread makes
 * fast pins on that file and converts it, so its conversions wait for a
 * grace period.  The stores must come after the read-side section, or the
 * three wait on each other for ever (alarm in main()).
 */
struct view_out {
	struct gmem_pool *pool;
	struct gmem_file *b;
	struct gmem_mm *mm;
	atomic_bool stop;
	uint64_t rounds;
};

static void *view_out_converter(void *arg)
{
	struct view_out *w = arg;

	while (!atomic_load(&w->stop)) {
		uint64_t id;

		if (!gmem_pin(w->mm, w->b, MB2, K4, 0, &id, NULL))
			gmem_unpin(w->pool, id);
		gmem_convert(w->b, MB2 + PG(8), K4, GMEM_PRIVATE, 0, 0, NULL);
		gmem_convert(w->b, MB2 + PG(8), K4, GMEM_SHARED, 0, 0, NULL);
		w->rounds++;
	}
	return NULL;
}

static bool test_view_output_fast_path(void)
{
	struct view_out w = { 0 };
	struct gmem_file *a;
	uint64_t t0, reads = 0;
	pthread_t t;
	uint8_t *vb;
	void *addr;

	CHECK_EQ(gmem_pool_create(MB2, 4, GMEM_BACKING_MEMFD, &w.pool), 0);
	CHECK_EQ(gmem_file_create(w.pool, MB2, GMEM_POLICY_A, SHARED, &a), 0);
	CHECK_EQ(gmem_file_create(w.pool, 2 * MB2, GMEM_POLICY_A, SHARED, &w.b),
		 0);
	CHECK_EQ(gmem_mm_create(w.pool, NULL, &w.mm), 0);
	CHECK_EQ(gmem_mmap(w.mm, a), 0);
	CHECK_EQ(gmem_mmap(w.mm, w.b), 0);
	CHECK_EQ(gmem_mm_view(w.mm, w.b, &addr), 0);
	vb = addr;
	CHECK_EQ(gmem_host_write(w.mm, a, 0, 0x5a), 0);	/* a's page mapped */
	CHECK_EQ(gmem_fault(w.mm, w.b, MB2, 0), 0);
	CHECK_EQ(pthread_create(&t, NULL, view_out_converter, &w), 0);
	t0 = now_ms();
	while (now_ms() - t0 < 400) {
		for (uint64_t k = 0; k < 512; k++, reads++) {
			uint64_t *idp = (uint64_t *)(vb + PG(k) + 64);

			CHECK_EQ(gmem_host_read(w.mm, a, 0, vb + PG(k)), 0);
			CHECK_EQ(vb[PG(k)], 0x5a);
			CHECK_EQ(gmem_pin(w.mm, a, 0, K4, 0, idp, NULL), 0);
			CHECK_EQ(gmem_unpin(w.pool, *idp), 0);
		}
		/* make b's first huge page trap again */
		CHECK_EQ(gmem_convert(w.b, 0, MB2, GMEM_PRIVATE, 0, -1, NULL), 0);
		CHECK_EQ(gmem_convert(w.b, 0, MB2, GMEM_SHARED, 0, -1, NULL), 0);
	}
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	CHECK(reads > 0 && w.rounds > 0);
	CHECK_EQ(gmem_file_close(a), 0);
	CHECK_EQ(gmem_file_close(w.b), 0);
	FINISH(w.pool);
}

/*
 * A first touch refused because the folio's refcount is at its limit is
 * SIGBUS that time only: once a pin goes, the next touch maps the page.
 */
static bool test_view_refcount_limit(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm, *mm2;
	uint64_t ids[3];
	uint8_t *view, v = 0;
	void *at;

	if (!setup_view(GMEM_POLICY_B_EAGER, 1, MB2, &pool, &f, &mm, &view))
		return false;
	CHECK_EQ(gmem_mm_create(pool, NULL, &mm2), 0);
	CHECK_EQ(gmem_mmap(mm2, f), 0);
	CHECK_EQ(gmem_host_write(mm2, f, 0, 0x44), 0);
	/* file 1 + mm2's entry 1 + three pins: the limit exactly */
	gmem_test_set_ref_limit(2 + 3 * GUP_PIN_COUNTING_BIAS);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(gmem_pin(mm2, f, 0, K4, 0, &ids[i], NULL), 0);
	CHECK_EQ(touch_in_thread(view, 0, false, &v, &at), 1);
	CHECK_EQ(touch_in_thread(view, 0, false, &v, &at), 1);
	CHECK_EQ(gmem_unpin(pool, ids[2]), 0);
	CHECK_EQ(touch_in_thread(view, 0, false, &v, &at), 0);
	CHECK_EQ(v, 0x44);
	gmem_test_set_ref_limit(0);
	CHECK_EQ(gmem_unpin(pool, ids[1]), 0);
	CHECK_EQ(gmem_unpin(pool, ids[0]), 0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* ---------------------------------- (N) teardown, handler placement, serve */

/* Threads of this process (/proc/self/task). */
static int nr_tasks(void)
{
	return nr_entries("/proc/self/task");
}

/*
 * nr_tasks() once the threads that ended are gone: a joined thread leaves
 * /proc/self/task a moment after the join returns (the kernel releases it
 * after it clears its tid), so wait up to 2 s for no more than @want.
 */
static int nr_tasks_settled(int want)
{
	int n = nr_tasks();

	for (int i = 0; i < 200 && n > want; i++) {
		usleep(10000);
		n = nr_tasks();
	}
	return n;
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(UNDER_ASAN)
/* sanitizer/allocator_interface.h, not installed with every compiler */
void __sanitizer_purge_allocator(void);
#define purge_allocator() __sanitizer_purge_allocator()
#define UNDER_SAN 1
#else
#define purge_allocator() ((void)0)
#define UNDER_SAN 0
#endif

/* Resident pages of this process (/proc/self/statm, second field).  Under
 * ASan, its quarantine of freed blocks is emptied first: memory that a
 * free() gave back is not a leak. */
static long rss_pages(void)
{
	FILE *fp;
	long size = -1, res = -1;

	purge_allocator();
	fp = fopen("/proc/self/statm", "r");
	if (!fp)
		return -1;
	if (fscanf(fp, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(fp);
	return res;
}

/*
 * Whether the access at @p gets SIGSEGV (the view is gone), in a child:
 * a fault on an unmapped address cannot be caught and resumed here.
 */
static bool segv_in_child(volatile uint8_t *p)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		(void)*p;
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return false;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV;
}

static bool test_view_unview(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct gmem_stats s;
	uint8_t *view, v = 0x3d;
	void *at, *a = NULL;
	int fds0, tasks0 = nr_tasks();

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	fds0 = nr_fds();
	CHECK_EQ(gmem_mm_view(mm, f, &a), 0);
	view = a;
	CHECK_EQ(nr_tasks(), tasks0 + 1);	/* the handler */
	CHECK_EQ(touch_in_thread(view, PG(4) + 7, true, &v, &at), 0);
	CHECK_EQ(gmem_mm_unview(NULL, f), -EINVAL);
	CHECK_EQ(gmem_mm_unview(mm, NULL), -EINVAL);
	CHECK_EQ(gmem_mm_unview(mm, f), 0);
	CHECK(!is_mapped(view, MB2));
	CHECK(segv_in_child(view + PG(4)));
	CHECK_EQ(nr_tasks_settled(tasks0), tasks0);
	CHECK_EQ(nr_fds(), fds0);
	CHECK_EQ(gmem_mm_unview(mm, f), -ENOENT);
	/* the entry the view made is @mm's and stays; the bytes too */
	STATS(pool, f, &s);
	CHECK_EQ(s.host_ptes, 1);
	CHECK_INVARIANTS(pool);
	CHECK_EQ(gmem_host_read(mm, f, PG(4) + 7, &v), 0);
	CHECK_EQ(v, 0x3d);

	/* a new view shows the same bytes */
	CHECK_EQ(gmem_mm_view(mm, f, &a), 0);
	view = a;
	CHECK_EQ(touch_in_thread(view, PG(4) + 7, false, &v, &at), 0);
	CHECK_EQ(v, 0x3d);
	CHECK_EQ(gmem_mm_view(mm, f, &a), -EEXIST);
	CHECK_EQ(gmem_file_close(f), 0);
	CHECK_EQ(gmem_mm_unview(mm, f), -EBADF);
	CHECK(!is_mapped(view, MB2));
	CHECK_EQ(nr_fds(), fds0);
	CHECK_EQ(nr_tasks_settled(tasks0), tasks0);
	FINISH(pool);
}

static void *nothing(void *arg)
{
	return arg;
}

/* One view made, touched (a fault served), torn down. */
static bool view_cycle(struct gmem_mm *mm, struct gmem_file *f, unsigned int i)
{
	uint8_t v = (uint8_t)i;
	void *a;

	CHECK_EQ(gmem_mm_view(mm, f, &a), 0);
	((volatile uint8_t *)a)[PG(i % 512) + 1] = v;
	CHECK_EQ(gmem_mm_unview(mm, f), 0);
	return true;
}

static bool test_view_unview_loop(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	long rss0, rss1, threads_rss;
	int fds0, tasks0;

	if (!setup(MB2, 1, GMEM_POLICY_B_LAZY, MB2, SHARED, &pool, &f, &mm))
		return false;
	/* warm-up: every page of the file in memory and in this process's
	 * RSS, the allocator's arenas, thread stacks, page tables */
	for (unsigned int pg = 0; pg < 512; pg++)
		CHECK_EQ(gmem_host_write(mm, f, PG(pg), 1), 0);
	for (unsigned int i = 0; i < 50; i++)
		if (!view_cycle(mm, f, i))
			return false;
	/* ASan's bookkeeping of threads grows by about 1.4 KiB a thread over
	 * its first thousand, then much less: past that before measuring */
	for (unsigned int i = 0; i < 1000 && UNDER_SAN; i++) {
		pthread_t t;

		CHECK_EQ(pthread_create(&t, NULL, nothing, NULL), 0);
		pthread_join(t, NULL);
	}
	rss0 = rss_pages();
	fds0 = nr_fds();
	tasks0 = nr_tasks();
	for (unsigned int i = 0; i < 1000; i++)
		if (!view_cycle(mm, f, i))
			return false;
	rss1 = rss_pages();
	CHECK(rss0 > 0 && rss1 > 0);
	/* and what it still grows by: as many bare threads show how much,
	 * added to the slack */
	threads_rss = rss1;
	for (unsigned int i = 0; i < 1000 && UNDER_SAN; i++) {
		pthread_t t;

		CHECK_EQ(pthread_create(&t, NULL, nothing, NULL), 0);
		pthread_join(t, NULL);
	}
	threads_rss = rss_pages() - threads_rss;
	/* slack: 1 MiB (about a page per view would show) */
	if (getenv("GMEM_TEST_VERBOSE") || rss1 > rss0 + threads_rss + 256)
		printf("RSS %ld -> %ld pages over 1000 views (threads alone: +%ld)\n",
		       rss0, rss1, threads_rss);
	CHECK(rss1 <= rss0 + threads_rss + 256);
	CHECK_EQ(nr_fds(), fds0);
	CHECK_EQ(nr_tasks_settled(tasks0), tasks0);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* The CPUs thread @tid may run on, as /proc shows them ("3", "0-1"). */
static bool task_cpus(long tid, char *buf, size_t len)
{
	char path[64], line[256];
	bool ok = false;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/status", tid);
	fp = fopen(path, "r");
	if (!fp)
		return false;
	while (fgets(line, sizeof(line), fp))
		if (!strncmp(line, "Cpus_allowed_list:", 18)) {
			snprintf(buf, len, "%s", line + 18 + strspn(line + 18, " \t"));
			buf[strcspn(buf, "\n")] = 0;
			ok = true;
		}
	fclose(fp);
	return ok;
}

/* The one thread in /proc/self/task whose id is not in @known. */
static bool new_task(const long *known, int n, long *tid)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while ((e = readdir(d))) {
		long id = atol(e->d_name);
		bool old = id <= 0;

		for (int i = 0; i < n && !old; i++)
			old = known[i] == id;
		if (!old) {
			*tid = id;
			found = true;
		}
	}
	closedir(d);
	return found;
}

static int list_tasks(long *ids, int max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) && n < max)
		if (atol(e->d_name) > 0)
			ids[n++] = atol(e->d_name);
	closedir(d);
	return n;
}

static bool test_view_handler_cpu(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	cpu_set_t set;
	long ids[64];
	char cpus[64], want[16];
	long tid;
	uint8_t v = 9;
	void *a = NULL, *at;
	int cpu = -1, absent = -1, n;

	CHECK_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &set) && cpu < 0)
			cpu = c;
		if (!CPU_ISSET(c, &set))
			absent = c;
	}
	if (!setup(MB2, 1, GMEM_POLICY_A, MB2, SHARED, &pool, &f, &mm))
		return false;
	CHECK_EQ(gmem_mm_view_opts(mm, f, 0, -2, &a), -EINVAL);
	CHECK_EQ(gmem_mm_view_opts(mm, f, 0, CPU_SETSIZE, &a), -EINVAL);
	CHECK_EQ(gmem_mm_view_opts(mm, f, 2, -1, &a), -EINVAL);
	CHECK_EQ(gmem_mm_view_opts(mm, f, GMEM_VIEW_SELF_SERVE, cpu, &a), -EINVAL);
	if (absent >= 0)	/* a CPU this process may not run on */
		CHECK_EQ(gmem_mm_view_opts(mm, f, 0, absent, &a), -EINVAL);
	CHECK(a == NULL);

	n = list_tasks(ids, 64);
	CHECK_EQ(gmem_mm_view_opts(mm, f, 0, cpu, &a), 0);
	CHECK(new_task(ids, n, &tid));
	CHECK(task_cpus(tid, cpus, sizeof(cpus)));
	snprintf(want, sizeof(want), "%d", cpu);
	CHECK(!strcmp(cpus, want));
	CHECK_EQ(touch_in_thread(a, PG(3), true, &v, &at), 0);
	CHECK_EQ(gmem_view_fd(mm, f), -EINVAL);	/* the handler's own */
	CHECK_EQ(gmem_view_serve(mm, f, 0), -EINVAL);
	CHECK_EQ(gmem_file_close(f), 0);
	FINISH(pool);
}

/* An event loop's thread: poll() the view's fd, serve what comes. */
struct server {
	struct gmem_mm *mm;
	struct gmem_file *f;
	int fd;
	atomic_int stop;
	int served, last;
};

static void *server_main(void *arg)
{
	struct server *sv = arg;

	while (!atomic_load(&sv->stop)) {
		struct pollfd pfd = { .fd = sv->fd, .events = POLLIN };
		int ret;

		if (poll(&pfd, 1, 10) <= 0)
			continue;
		ret = gmem_view_serve(sv->mm, sv->f, 0);
		if (ret < 0) {
			sv->last = ret;
			break;
		}
		sv->served += ret;
	}
	return NULL;
}

/* Blocks in gmem_view_serve() until the view is torn down. */
static void *waiter_main(void *arg)
{
	struct server *sv = arg;

	sv->last = gmem_view_serve(sv->mm, sv->f, -1);
	return NULL;
}

static bool test_view_self_serve(void)
{
	struct gmem_pool *pool;
	struct gmem_file *f;
	struct gmem_mm *mm;
	struct server sv = { 0 };
	pthread_t th;
	uint8_t *view, v = 0x6e;
	void *a = NULL, *at;
	int fds0, tasks0 = nr_tasks(), fd;
	uint64_t t0;

	/* two huge pages: the second a hole until the view touches it */
	if (!setup(MB2, 2, GMEM_POLICY_B_EAGER, 2 * MB2, SHARED, &pool, &f, &mm))
		return false;
	fds0 = nr_fds();
	CHECK_EQ(gmem_view_fd(mm, f), -ENOENT);
	CHECK_EQ(gmem_view_serve(mm, f, 0), -ENOENT);
	CHECK_EQ(gmem_view_serve(NULL, f, 0), -EINVAL);
	CHECK_EQ(gmem_mm_view_opts(mm, f, GMEM_VIEW_SELF_SERVE, -1, &a), 0);
	view = a;
	CHECK_EQ(nr_tasks_settled(tasks0), tasks0);		/* no handler thread */
	fd = gmem_view_fd(mm, f);
	CHECK(fd >= 0);
	CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
	t0 = now_ms();
	CHECK_EQ(gmem_view_serve(mm, f, 20), 0);	/* nothing pending */
	CHECK(now_ms() - t0 >= 15);

	sv = (struct server){ .mm = mm, .f = f, .fd = fd };
	CHECK_EQ(pthread_create(&th, NULL, server_main, &sv), 0);
	CHECK_EQ(touch_in_thread(view, PG(5) + 3, true, &v, &at), 0);
	CHECK_EQ(touch_in_thread(view, PG(512) + 9, true, &v, &at), 0);
	CHECK_EQ(gmem_convert(f, PG(6), K4, GMEM_PRIVATE, 0, 0, NULL), 0);
	CHECK_EQ(touch_in_thread(view, PG(6) + 0x45, false, &v, &at), 1);
	CHECK(at == view + PG(6) + 0x45);	/* the byte, not the page */
	CHECK_EQ(touch_in_thread(view, PG(5) + 3, false, &v, &at), 0);
	CHECK_EQ(v, 0x6e);
	atomic_store(&sv.stop, 1);
	pthread_join(th, NULL);
	CHECK_EQ(sv.last, 0);
	CHECK(sv.served >= 3);		/* a retry may fault twice */
	CHECK_EQ(gmem_host_read(mm, f, PG(512) + 9, &v), 0);
	CHECK_EQ(v, 0x6e);
	CHECK_INVARIANTS(pool);

	/* a server waiting forever returns when the view goes */
	sv.last = 1;
	CHECK_EQ(pthread_create(&th, NULL, waiter_main, &sv), 0);
	usleep(20000);
	CHECK_EQ(gmem_mm_unview(mm, f), 0);
	pthread_join(th, NULL);
	CHECK(sv.last == -ENOENT || sv.last == 0);
	CHECK_EQ(nr_fds(), fds0);
	CHECK(!is_mapped(view, 2 * MB2));
	CHECK_EQ(gmem_file_close(f), 0);
	CHECK_EQ(nr_fds(), fds0);
	CHECK_EQ(nr_tasks_settled(tasks0), tasks0);
	FINISH(pool);
}

int main(void)
{
	static const struct test tests[] = {
		TEST(test_view_loads_stores),
		TEST(test_view_output_fast_path),
		TEST(test_view_sigbus_private),
		TEST(test_view_blocks_during_conversion),
		TEST(test_view_private_to_shared),
		TEST(test_view_punch),
		TEST(test_view_errno),
		TEST(test_view_errno_hugetlb),
		TEST(test_view_errno_memfd),
		TEST(test_view_teardown),
		TEST(test_view_inject),
		TEST(test_view_output_beside_stats),
		TEST(test_view_refcount_limit),
		TEST(test_view_unview),
		TEST(test_view_unview_loop),
		TEST(test_view_handler_cpu),
		TEST(test_view_self_serve),
	};
	struct sigaction sa = { .sa_sigaction = on_sigbus,
				.sa_flags = SA_SIGINFO };
	char why[160];

	/* Views need a plain memfd: setup()'s pools stay memfd here even in
	 * a test run that forces hugetlb (tools/hog.h). */
	unsetenv("GMEM_TEST_BACKING");
	if (!uffd_usable(why, sizeof(why))) {
		printf("skipped: %s\n", why);
		return 77;
	}
	if (sigaction(SIGBUS, &sa, NULL)) {
		printf("sigaction: %s\n", strerror(errno));
		return 1;
	}
	alarm(300);	/* a deadlock fails the program */
	return RUN_TESTS(tests);
}
