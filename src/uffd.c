// SPDX-License-Identifier: MIT
/*
 * uffd.c - host views enforced by the MMU: a real mapping of a file's
 * memory in this process, whose every first access traps into gmem's
 * fault path through userfaultfd (minor faults on shmem).
 *
 * A view belongs to one mapping (struct gvma: one mm, one file) and covers
 * the file: view address + offset is the byte at that offset.  Each huge
 * page of the file is mapped from where its memory is now, the pool's
 * memfd at the page's frame; a hole maps the view's trap file, a sparse
 * memfd of the file's size that nothing ever writes, so any access there
 * is a MISSING fault.  The whole view is registered with its own
 * userfaultfd for MISSING and MINOR faults: a page of the pool memfd that
 * is in the page cache gives a MINOR fault, one that is not (never
 * touched, or punched by pool_zero()) a MISSING one, and fault-around is
 * off for minor-registered VMAs, so no page is ever mapped without a
 * fault reaching the handler.
 *
 * One server per view reads its faults in order: the view's handler
 * thread (pinned to a CPU if gmem_mm_view_opts() asked), or with
 * GMEM_VIEW_SELF_SERVE no thread of gmem's: the caller polls the
 * userfaultfd (gmem_view_fd()) and serves on its own thread
 * (gmem_view_serve()).  The server resolves each fault
 * through host_fault_locked() (the checks of gmem_fault(): shared, not
 * poisoned, inside the file; a hole gets memory; the software PTE is
 * installed, so host_ptes, refcount and mapcount count the real mapping).
 * Then:
 *  - a hole that just got memory, or a huge page that moved (punched and
 *    allocated again), is mapped again at its new frame (view_map_slot()):
 *    the new mapping is built and registered at a private address, then
 *    moved over the slot by mremap() (view_remap()), so that another
 *    thread touching the slot meanwhile finds a registered mapping, old or
 *    new, and never an inaccessible one (no SIGSEGV on a shared page);
 *  - fallocate(mode 0) puts the 4K page into the memfd's page cache (a
 *    no-op when it is there), so a MISSING fault is answered like a MINOR
 *    one, and
 *  - UFFDIO_CONTINUE installs the real PTE and wakes the thread;
 *  - a private, poisoned or out-of-range page (or one without memory) is
 *    answered with UFFDIO_POISON: the thread retries, meets the marker
 *    and gets SIGBUS from the kernel, as from a private guest_memfd page.
 *
 * The invariant: the real PTEs of a view are a subset of the software PTEs
 * of its mapping, and every page with a poison marker is in @marked.
 * The handler installs the real PTE after the software one with both
 * locks held; every zap of software PTEs (vma_zap()) also zaps the real
 * ones of those pages (view_zap(): MADV_DONTNEED), and drops the markers
 * of the range.  A conversion to shared drops the markers of its range
 * (views_unmark()), so the next access traps again.  gmem_check() reads
 * /proc/self/pagemap to verify the subset against the MMU (views_ok()).
 *
 * A view ends with its file's close (view_detach(), views_reap()) or with
 * gmem_mm_unview(): the range is unmapped under the invalidate lock held
 * exclusively, then, with no lock held (the server may be waiting for the
 * invalidate lock), the server is stopped (view_free()) and only then is
 * the userfaultfd closed.
 *
 * Only plain-memfd pools with huge-page policies have views: a hugetlbfs
 * mapping can be zapped only whole huge pages at a time (MADV_DONTNEED on
 * part of one fails), so a 4K conversion could not unmap the page; policy
 * 4k's arena gives each 4K folio its own frame, so a view would need one
 * VMA per page, past vm.max_map_count (65530) at 256 MiB of file.
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* From Linux 6.6 (include/uapi/linux/userfaultfd.h): Debian 12's uapi
 * headers are 6.1's, which lack UFFDIO_POISON. */
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

/* From Linux 5.18 (include/uapi/asm-generic/mman-common.h). */
#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED 24
#endif

/*
 * EVENT_REMAP keeps a range registered when mremap() moves it: a slot is
 * replaced by moving a registered mapping over it (view_remap_slot()).
 */
#define VIEW_FEATURES (UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_POISON | \
		       UFFD_FEATURE_EVENT_REMAP)
#define VIEW_DEFERRED 64	/* faults read while a slot is replaced */
#define VIEW_MODES (UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR)
#define VIEW_IOCTLS ((1ULL << _UFFDIO_CONTINUE) | (1ULL << _UFFDIO_POISON) | \
		     (1ULL << _UFFDIO_WAKE))

/*
 * struct gview - one mapping's real view of its file.
 *
 * Set up before the handler starts and constant after: @file, @base,
 * @size, @uffd, @trap_fd, @stop_fd, @thread, @started, @self_serve.
 * Under the file lock: @vma (NULL once the view is torn down and the
 * range unmapped), @slot_pfn, @marked, @nr_marked, @next_dead, @servers.
 * The range's real PTEs are changed only by the server (CONTINUE,
 * POISON, remaps) and by zaps, both with the file lock held.
 *
 * The server is the handler thread, or with @self_serve the callers of
 * gmem_view_serve(), one at a time under @serve_lock.  Lock order:
 * @serve_lock, then the invalidate lock, then the file lock; nothing
 * else takes @serve_lock.  @servers counts the gmem_view_serve() calls
 * that hold a pointer to the view; view_free() waits on @idle (with the
 * file lock) until it drops to 0.
 */
struct gview {
	struct gfile *file;
	struct gvma *vma;
	uint8_t *base;
	uint64_t size;
	int uffd;
	int trap_fd;			/* sparse memfd of @size: holes */
	int stop_fd;			/* eventfd: the server stops */
	pthread_t thread;
	bool started;			/* @thread runs */
	bool self_serve;		/* no thread: gmem_view_serve() */
	bool sync_init;			/* @serve_lock and @idle initialized */
	unsigned int servers;		/* file lock: gmem_view_serve() inside */
	pthread_cond_t idle;		/* with the file lock: @servers is 0 */
	pthread_mutex_t serve_lock;	/* one server at a time (self-serve) */
	uint64_t *slot_pfn;		/* per huge page: frame mapped + 1; 0 trap */
	uint64_t *marked;		/* pages with a poison marker */
	/* the arrays' lengths, from the file at creation: the view may be
	 * freed after its file closed and its struct serves another */
	uint64_t nr_slots, nr_marked_words;
	uint64_t nr_marked;
	struct gview *next_dead;	/* file->dead_views */
	/* the server only: faults read during a slot's replacement,
	 * resolved after it; @wake_all when more came than fit */
	uint64_t deferred[VIEW_DEFERRED];
	unsigned int nr_deferred;
	bool wake_all;
};

static uint64_t bitmap_words(uint64_t nr_pages)
{
	return (nr_pages + 63) / 64;
}

/* ------------------------------------------------------------- mapping */

/*
 * Map [a, a + len) of the view to @fd at @off and register it.  PROT_NONE
 * until registered, then read-write: a failure leaves the range
 * inaccessible, never mapped around the handler (and under
 * mlockall(MCL_FUTURE) a PROT_NONE mapping is not populated before it is
 * registered).  MADV_DONTFORK: a child would lose the registration.
 */
static int view_map(struct gview *w, uint8_t *a, uint64_t len, int fd,
		    uint64_t off)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)a, .len = len },
		.mode = VIEW_MODES,
	};

	/*
	 * The raw system call: ThreadSanitizer's mmap interceptor would take
	 * the range as memory the handler wrote, ordered with the faulting
	 * thread's access only through the kernel (the userfaultfd wake),
	 * which it cannot see.  The remap writes no byte of it.
	 */
	if (gmem_inject_should_fail() ||
	    syscall(SYS_mmap, a, len, PROT_NONE,
		    MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, (off_t)off) ==
	    (long)MAP_FAILED)
		return -ENOMEM;
	if (ioctl(w->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	if ((reg.ioctls & VIEW_IOCTLS) != VIEW_IOCTLS)
		return -EOPNOTSUPP;
	if (madvise(a, len, MADV_DONTFORK) ||
	    mprotect(a, len, PROT_READ | PROT_WRITE))
		return -ENOMEM;
	return 0;
}

/* Clear the marks of [pg0, pg1); widen [*lo, *hi) over those found. */
static void marks_take(struct gview *w, uint64_t pg0, uint64_t pg1,
		       uint64_t *lo, uint64_t *hi)
{
	for (uint64_t pg = pg0; pg < pg1 && w->nr_marked;) {
		uint64_t *word = &w->marked[pg / 64], bit = 1ULL << (pg % 64);

		if (!*word) {
			pg = ALIGN_DOWN(pg, 64) + 64;
			continue;
		}
		if (*word & bit) {
			*word &= ~bit;
			w->nr_marked--;
			*lo = MIN(*lo, pg);
			*hi = MAX(*hi, pg + 1);
		}
		pg++;
	}
}

/* Zap the real PTEs and markers of pages [lo, hi) of the view. */
static void view_dontneed(struct gview *w, uint64_t lo, uint64_t hi)
{
	uint8_t *a = w->base + (lo << PAGE_SHIFT);
	size_t len = (size_t)(hi - lo) << PAGE_SHIFT;

	/* _LOCKED: also under mlock(); kernels before 5.18 lack it */
	if (madvise(a, len, MADV_DONTNEED_LOCKED) && errno == EINVAL)
		madvise(a, len, MADV_DONTNEED);
}

static uint8_t *reserve(uint64_t size, uint64_t align);

/* Remember a fault read while a slot is replaced, for the server. */
static void view_defer(struct gview *w, uint64_t addr)
{
	if (w->nr_deferred < VIEW_DEFERRED)
		w->deferred[w->nr_deferred++] = addr;
	else
		w->wake_all = true;	/* its thread retries and faults again */
}

struct remap_req {
	struct gview *w;
	void *from, *to;
	uint64_t len;
	int error;
	int done_fd;		/* eventfd: the move returned */
};

/*
 * The mover: mremap() of a range registered with EVENT_REMAP returns only
 * once the handler has read the event, so it cannot be the handler.
 */
static void *view_mover(void *arg)
{
	struct remap_req *r = arg;
	uint64_t one = 1;
	ssize_t n;

	/* raw system call: see view_map() on ThreadSanitizer */
	if (syscall(SYS_mremap, r->from, r->len, r->len,
		    MREMAP_MAYMOVE | MREMAP_FIXED, r->to) == (long)MAP_FAILED)
		r->error = -errno;
	n = write(r->done_fd, &one, sizeof(one));
	GM_WARN_ON_ONCE(n != (ssize_t)sizeof(one));
	return NULL;
}

/*
 * Replace the mapping at @a (one huge page of a live view) by one of @fd
 * at @off, atomically for every other thread: the new mapping is built
 * and registered at an address nobody knows, made accessible, then moved
 * over @a by mremap(), which swaps the two under the mm's write lock.  A
 * thread touching @a meanwhile meets the old mapping or the new one,
 * registered either way (the move keeps the registration: EVENT_REMAP),
 * never an unregistered or inaccessible one.  Faults read while the
 * mover waits for its event are deferred to view_serve_pending().
 * Context: the server; invalidate lock shared, file lock.
 */
static int view_remap(struct gview *w, uint8_t *a, uint64_t len, int fd,
		      uint64_t off)
{
	struct remap_req r = { .w = w, .to = a, .len = len, .done_fd = -1 };
	struct pollfd pfd[2];
	struct uffd_msg msg[16];
	pthread_t mover;
	sigset_t all, old;
	void *tmp;
	int ret;

	/* A temporary place, aligned as @a so the move keeps alignment. */
	tmp = reserve(len, len);
	if (!tmp)
		return -ENOMEM;
	ret = view_map(w, tmp, len, fd, off);
	if (ret)
		goto unmap;
	ret = -ENOMEM;
	r.from = tmp;
	r.done_fd = eventfd(0, EFD_CLOEXEC);
	if (r.done_fd < 0)
		goto unmap;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&mover, NULL, view_mover, &r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		goto close_done;

	pfd[0] = (struct pollfd){ .fd = w->uffd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = r.done_fd, .events = POLLIN };
	for (;;) {
		ssize_t n;

		if (poll(pfd, 2, -1) < 0)
			continue;	/* EINTR */
		if (pfd[0].revents & POLLIN) {
			n = read(w->uffd, msg, sizeof(msg));
			/* reading the REMAP event lets the move return */
			for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++)
				if (msg[i].event == UFFD_EVENT_PAGEFAULT)
					view_defer(w, msg[i].arg.pagefault.address &
						   ~(PAGE_SIZE - 1));
		}
		if (pfd[1].revents & POLLIN)
			break;
	}
	pthread_join(mover, NULL);
	ret = r.error;
close_done:
	close(r.done_fd);
unmap:
	/* after a move, nothing is left at @tmp; after a failure, all of it */
	if (ret)
		munmap(tmp, len);
	return ret;
}

/*
 * Map huge page @slot of the view where its memory is now (the trap file
 * for a hole).  The old mapping's PTEs and markers go with it.  @live: the
 * handler runs and other threads may touch the slot (view_remap()); else
 * the view is being built and nobody knows its address.
 * Context: file lock (f->huge[] and @slot_pfn).
 */
static int view_map_slot(struct gview *w, uint64_t slot, bool live)
{
	struct gfile *f = w->file;
	struct gpool *p = f->pool;
	struct ghuge *h = f->huge[slot];
	uint64_t ps = p->page_size, lo = UINT64_MAX, hi = 0;
	int fd = h ? p->fd : w->trap_fd;
	uint64_t off = h ? h->pfn * ps : slot * ps;
	int ret;

	ret = live ? view_remap(w, w->base + slot * ps, ps, fd, off) :
		     view_map(w, w->base + slot * ps, ps, fd, off);
	if (ret)
		return ret;
	w->slot_pfn[slot] = h ? h->pfn + 1 : 0;
	/* the old mapping's markers went with it */
	marks_take(w, slot << p->order, (slot + 1) << p->order, &lo, &hi);
	return 0;
}

/* ------------------------------------------------------------- faults */

static void view_wake(struct gview *w, uint64_t addr)
{
	struct uffdio_range r = { .start = addr, .len = PAGE_SIZE };

	ioctl(w->uffd, UFFDIO_WAKE, &r);
}

/* SIGBUS for the thread at @addr: a poison marker (or, if the PTE is not
 * empty, a wake: the thread retries on what is there). */
static void view_sigbus(struct gview *w, uint64_t pg, uint64_t addr)
{
	struct uffdio_poison po = { .range = { .start = addr, .len = PAGE_SIZE } };

	if (ioctl(w->uffd, UFFDIO_POISON, &po)) {
		view_wake(w, addr);
		return;
	}
	if (pg < w->file->nr_pages && !(w->marked[pg / 64] & (1ULL << (pg % 64)))) {
		w->marked[pg / 64] |= 1ULL << (pg % 64);
		w->nr_marked++;
	}
}

/*
 * Install the real PTE of page @pg (folio @fo, software PTE in place).
 * Context: invalidate lock shared, file lock.
 */
static int view_continue(struct gview *w, struct gfolio *fo, uint64_t pg,
			 uint64_t addr)
{
	struct gpool *p = w->file->pool;
	uint64_t slot = pg >> p->order;
	struct uffdio_continue c = { .range = { .start = addr, .len = PAGE_SIZE } };
	uint8_t *data = fo->data + ((pg - fo->index) << PAGE_SHIFT);
	int ret;

	if (w->slot_pfn[slot] != fo->huge->pfn + 1) {
		ret = view_map_slot(w, slot, true);
		if (ret)
			return ret;
	}
	if (fallocate(p->fd, 0, (off_t)(data - p->base), (off_t)PAGE_SIZE))
		return -errno;
	while (ioctl(w->uffd, UFFDIO_CONTINUE, &c)) {
		/* EAGAIN: a move's event not yet complete; it is (joined) */
		if (errno == EAGAIN)
			continue;
		if (errno != EEXIST)
			return -errno;
		view_wake(w, addr);	/* mapped by an earlier fault */
		break;
	}
	return 0;
}

/*
 * view_fault() - resolve one fault at @addr in the view.
 *
 * Why no conversion can slip between the check and the real PTE: the
 * invalidate lock is held shared, and the file lock, from
 * host_fault_locked()'s check of the attribute until UFFDIO_CONTINUE has
 * installed the real PTE.  A conversion to private, punch, poison or
 * close takes the invalidate lock exclusively, so it runs entirely before
 * (the check sees its result) or entirely after (it finds the software
 * PTE, and vma_zap() zaps the real one with it before the flip).  While a
 * conversion holds the lock, this blocks in invalidate_lock_shared(), and
 * the faulting thread stays stopped in the kernel until it ends.
 */
static void view_fault(struct gview *w, uint64_t addr)
{
	struct gfile *f = w->file;
	uint64_t pg = (addr - (uintptr_t)w->base) >> PAGE_SHIFT;
	struct gfolio *fo;
	int ret;

	invalidate_lock_shared(f);
	pthread_mutex_lock(&f->lock);
	if (!w->vma) {
		/* torn down: the range is unmapped, the retry gets SIGSEGV */
		view_wake(w, addr);
		goto out;
	}
	ret = pg < f->nr_pages ? host_fault_locked(w->vma, f, pg, &fo) :
				 GMEM_SIGBUS;
	if (!ret)
		ret = view_continue(w, fo, pg, addr);
	if (ret)
		view_sigbus(w, pg, addr);
out:
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock_shared(f);
}

/*
 * Read the faults pending on the view's userfaultfd (non-blocking) and
 * resolve them in the order they came.  Return: the faults read.
 * Context: the server (the handler thread, or @serve_lock held); no lock.
 */
static unsigned int view_serve_pending(struct gview *w)
{
	struct uffd_msg msg[16];
	unsigned int nr = 0;
	ssize_t n;

	do {
		n = read(w->uffd, msg, sizeof(msg));
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msg[0]); i++)
			if (msg[i].event == UFFD_EVENT_PAGEFAULT)
				view_defer(w, msg[i].arg.pagefault.address &
					      ~(PAGE_SIZE - 1));
		/* in order; a fault may replace a slot and defer more */
		for (unsigned int i = 0; i < w->nr_deferred; i++)
			view_fault(w, w->deferred[i]);
		nr += w->nr_deferred;
		w->nr_deferred = 0;
		if (w->wake_all) {
			struct uffdio_range r = {
				.start = (uintptr_t)w->base, .len = w->size };

			w->wake_all = false;
			ioctl(w->uffd, UFFDIO_WAKE, &r);
		}
	} while (n == (ssize_t)sizeof(msg));	/* maybe more queued */
	return nr;
}

/* The handler thread: one per view, faults in the order they come. */
static void *view_main(void *arg)
{
	struct gview *w = arg;
	struct pollfd pfd[2] = {
		{ .fd = w->uffd, .events = POLLIN },
		{ .fd = w->stop_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			continue;	/* EINTR; ENOMEM passes */
		if (pfd[1].revents)
			break;
		view_serve_pending(w);
	}
	return NULL;
}

/* ------------------------------------------------------------ hooks */

/**
 * view_zap() - the software PTEs of pages [lo, hi) of @w's mapping went
 * (empty if lo >= hi), in a zap of [pg0, pg1): zap their real PTEs and
 * every marker of [pg0, pg1), so that the next access traps.
 * Context: invalidate lock exclusive, file lock.
 */
void view_zap(struct gview *w, uint64_t pg0, uint64_t pg1, uint64_t lo,
	      uint64_t hi)
{
	if (w->nr_marked)
		marks_take(w, pg0, pg1, &lo, &hi);
	if (lo < hi)
		view_dontneed(w, lo, hi);
}

/**
 * views_unmark() - pages [pg0, pg1) became shared: drop their poison
 * markers in every view of @f, so that the next access traps again.
 * Context: invalidate lock exclusive, file lock.
 */
void views_unmark(struct gfile *f, uint64_t pg0, uint64_t pg1)
{
	for (struct gvma *v = f->vmas; v; v = v->file_next) {
		uint64_t lo = UINT64_MAX, hi = 0;

		if (!v->view || !v->view->nr_marked)
			continue;
		marks_take(v->view, pg0, pg1, &lo, &hi);
		if (lo < hi)
			view_dontneed(v->view, lo, hi);
	}
}

/**
 * view_detach() - @v's view goes (gmem_mm_unview(), or its mapping goes:
 * munmap, mm destroy, close): unmap it at once (its real PTEs with it)
 * and queue it on the file for views_reap(), which stops its thread once
 * no lock is held (the thread may be waiting for the invalidate lock).
 * Context: invalidate lock exclusive, file lock.
 */
void view_detach(struct gfile *f, struct gvma *v)
{
	struct gview *w = v->view;

	munmap(w->base, w->size);
	w->vma = NULL;
	v->view = NULL;
	w->next_dead = f->dead_views;
	f->dead_views = w;
}

static void view_release(struct gview *w);

/*
 * Stop the server (the handler thread, or wait for gmem_view_serve()
 * calls inside), close the descriptors, free.
 * Context: no lock; the view is unmapped and detached (@vma NULL).
 */
static void view_free(struct gview *w)
{
	uint64_t one = 1;

	if (w->stop_fd >= 0) {
		/* cannot fail: one write to a fresh eventfd, never read: it
		 * stays readable for every server's poll() */
		ssize_t n = write(w->stop_fd, &one, sizeof(one));

		GM_WARN_ON_ONCE(n != (ssize_t)sizeof(one));
	}
	if (w->started)
		pthread_join(w->thread, NULL);
	if (w->self_serve) {
		pthread_mutex_lock(&w->file->lock);
		while (w->servers)
			pthread_cond_wait(&w->idle, &w->file->lock);
		pthread_mutex_unlock(&w->file->lock);
	}
	view_release(w);
}

/*
 * Close the descriptors and free: a view with no server left (or never
 * started).  Context: any; takes no lock.
 */
static void view_release(struct gview *w)
{
	if (w->sync_init) {
		pthread_cond_destroy(&w->idle);
		pthread_mutex_destroy(&w->serve_lock);
	}
	/* After the munmap: closing the uffd first would unregister the
	 * range and let accesses map the memory directly.  Threads still
	 * waiting in a fault wake now and retry on nothing (SIGSEGV). */
	if (w->uffd >= 0)
		close(w->uffd);
	if (w->trap_fd >= 0)
		close(w->trap_fd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	gmem_free(w->marked, w->nr_marked_words * sizeof(uint64_t));
	gmem_free(w->slot_pfn, w->nr_slots * sizeof(uint64_t));
	gmem_free(w, sizeof(*w));
}

/**
 * views_reap() - stop the handlers of the views view_detach() queued.
 * While it does, @f->reaping keeps the struct from reuse (zombie_take()):
 * a handler may still be in view_fault() on it, and a reap started by
 * gmem_munmap() may outlast a close by another thread.
 * Context: no lock held (gmem_file_close(), after releasing them).
 */
void views_reap(struct gfile *f)
{
	struct gview *w;

	pthread_mutex_lock(&f->lock);
	w = f->dead_views;
	f->dead_views = NULL;
	if (w)
		f->reaping++;
	pthread_mutex_unlock(&f->lock);
	if (!w)
		return;
	while (w) {
		struct gview *next = w->next_dead;

		view_free(w);
		w = next;
	}
	pthread_mutex_lock(&f->lock);
	f->reaping--;
	pthread_mutex_unlock(&f->lock);
}

/* ------------------------------------------------------------- create */

/* A userfaultfd with the features a view needs. */
static int uffd_open(int *out)
{
	struct uffdio_api api = { .api = UFFD_API, .features = VIEW_FEATURES };
	int fd, ret;

	if (gmem_inject_should_fail())
		return -ENOMEM;
	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		/* EINVAL: a feature asked for is not offered */
		ret = errno == EINVAL ? -EOPNOTSUPP : -errno;
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

/* Reserve @size bytes of address space aligned to @align. */
static uint8_t *reserve(uint64_t size, uint64_t align)
{
	uint8_t *raw, *a;

	if (gmem_inject_should_fail())
		return NULL;
	raw = mmap(NULL, size + align, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	a = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
	if (a > raw)
		munmap(raw, (size_t)(a - raw));
	if (a + size < raw + size + align)
		munmap(a + size, (size_t)(raw + size + align - (a + size)));
	return a;
}

/*
 * Build @v's view: descriptors, the address range mapped slot by slot,
 * registered, and the handler thread.  All or nothing.
 * Context: invalidate lock shared, file lock (f->huge[] holds still).
 */
static int view_create(struct gfile *f, struct gvma *v, unsigned int flags,
		       int cpu, struct gview **out)
{
	struct gpool *p = f->pool;
	struct gview *w;
	pthread_attr_t attr;
	sigset_t all, old;
	int ret = -ENOMEM;

	w = gmem_alloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->file = f;
	w->vma = v;
	w->size = f->size;
	w->uffd = w->trap_fd = w->stop_fd = -1;
	w->self_serve = flags & GMEM_VIEW_SELF_SERVE;
	if (pthread_mutex_init(&w->serve_lock, NULL)) {
		gmem_free(w, sizeof(*w));
		return -ENOMEM;
	}
	if (pthread_cond_init(&w->idle, NULL)) {
		pthread_mutex_destroy(&w->serve_lock);
		gmem_free(w, sizeof(*w));
		return -ENOMEM;
	}
	w->sync_init = true;
	w->nr_slots = f->nr_huge;
	w->nr_marked_words = bitmap_words(f->nr_pages);
	w->slot_pfn = gmem_alloc(w->nr_slots * sizeof(uint64_t));
	w->marked = gmem_alloc(w->nr_marked_words * sizeof(uint64_t));
	if (!w->slot_pfn || !w->marked)
		goto err;
	ret = uffd_open(&w->uffd);
	if (ret)
		goto err;
	ret = -ENOMEM;
	if (gmem_inject_should_fail())
		goto err;
	w->trap_fd = memfd_create("gmem-view-hole", MFD_CLOEXEC);
	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (w->trap_fd < 0 || w->stop_fd < 0 ||
	    ftruncate(w->trap_fd, (off_t)f->size))
		goto err;
	w->base = reserve(f->size, p->page_size);
	if (!w->base)
		goto err;
	ret = view_map(w, w->base, f->size, w->trap_fd, 0);
	for (uint64_t s = 0; !ret && s < f->nr_huge; s++)
		if (f->huge[s])
			ret = view_map_slot(w, s, false);
	if (ret)
		goto err_unmap;

	if (w->self_serve) {
		*out = w;
		return 0;
	}
	if (pthread_attr_init(&attr)) {
		ret = -ENOMEM;
		goto err_unmap;
	}
	if (cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		ret = -pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	/* The handler takes no signal meant for the application. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* EINVAL: @cpu is not one this process may run on */
	if (!ret)
		ret = -pthread_create(&w->thread, &attr, view_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (ret)
		goto err_unmap;
	w->started = true;
	*out = w;
	return 0;

err_unmap:
	munmap(w->base, f->size);
err:
	view_release(w);	/* no server ever ran: nothing to stop */
	return ret;
}

int gmem_mm_view_opts(struct gmem_mm *mmp, struct gmem_file *file,
		      unsigned int flags, int cpu, void **addr)
{
	struct gfile *f = to_file(file);
	struct gview *w;
	struct gvma *v;
	int ret;

	if (!mmp || !file || !addr || to_mm(mmp)->pool != f->pool ||
	    (flags & ~GMEM_VIEW_SELF_SERVE) || cpu < -1 ||
	    cpu >= CPU_SETSIZE || ((flags & GMEM_VIEW_SELF_SERVE) && cpu >= 0))
		return -EINVAL;
	if (!mm_handle_live(mmp))
		return -EBADF;
	ret = file_enter_shared(f, handle_gen(file));
	if (ret)
		return ret;
	if (f->pool->backing != GMEM_BACKING_MEMFD ||
	    f->policy == GMEM_POLICY_4K) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	pthread_mutex_lock(&f->lock);
	v = vma_lookup(f, mmp);
	if (!v)
		ret = -EFAULT;
	else if (v->view)
		ret = -EEXIST;
	else
		ret = view_create(f, v, flags, cpu, &w);
	if (!ret) {
		v->view = w;
		*addr = w->base;
	}
	pthread_mutex_unlock(&f->lock);
out:
	invalidate_unlock_shared(f);
	return ret;
}

int gmem_mm_view(struct gmem_mm *mmp, struct gmem_file *file, void **addr)
{
	return gmem_mm_view_opts(mmp, file, 0, -1, addr);
}

/* ------------------------------------------------------------ teardown */

/*
 * The common start of a call on @mmp's view of @file: the arguments, the
 * mm's handle, the invalidate lock (exclusive with @excl) and the file
 * lock, and *@v, @mmp's mapping of @file or NULL.  Return: 0 with both
 * locks held; -EINVAL or -EBADF with none.
 */
static int view_enter(struct gmem_mm *mmp, struct gmem_file *file, bool excl,
		      struct gvma **v)
{
	struct gfile *f = to_file(file);
	int ret;

	if (!mmp || !file || to_mm(mmp)->pool != f->pool)
		return -EINVAL;
	if (!mm_handle_live(mmp))
		return -EBADF;
	ret = excl ? file_enter(f, handle_gen(file)) :
		     file_enter_shared(f, handle_gen(file));
	if (ret)
		return ret;
	pthread_mutex_lock(&f->lock);
	*v = vma_lookup(f, mmp);
	return 0;
}

int gmem_mm_unview(struct gmem_mm *mmp, struct gmem_file *file)
{
	struct gfile *f = to_file(file);
	struct gvma *v;
	/* exclusive: no zap, conversion or fault runs on the view */
	int ret = view_enter(mmp, file, true, &v);

	if (ret)
		return ret;
	if (!v || !v->view)
		ret = -ENOENT;
	else
		view_detach(f, v);
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock(f);
	/* no lock: the server may be waiting for the invalidate lock */
	views_reap(f);
	return ret;
}

/* ------------------------------------------------------ serving faults */

/*
 * Find @mmp's self-served view of @file and count the caller as one of
 * its servers (view_put() undoes it).
 * Context: takes the invalidate lock shared and the file lock, briefly.
 */
static int view_get(struct gmem_mm *mmp, struct gmem_file *file,
		    struct gview **out)
{
	struct gfile *f = to_file(file);
	struct gvma *v;
	int ret = view_enter(mmp, file, false, &v);

	if (ret)
		return ret;
	if (!v || !v->view) {
		ret = -ENOENT;
	} else if (!v->view->self_serve) {
		ret = -EINVAL;		/* its handler thread owns the fd */
	} else {
		v->view->servers++;
		*out = v->view;
	}
	pthread_mutex_unlock(&f->lock);
	invalidate_unlock_shared(f);
	return ret;
}

static void view_put(struct gview *w)
{
	pthread_mutex_lock(&w->file->lock);
	if (!--w->servers)
		pthread_cond_broadcast(&w->idle);
	pthread_mutex_unlock(&w->file->lock);
}

int gmem_view_fd(struct gmem_mm *mmp, struct gmem_file *file)
{
	struct gview *w;
	int ret = view_get(mmp, file, &w);

	if (ret)
		return ret;
	ret = w->uffd;
	view_put(w);
	return ret;
}

int gmem_view_serve(struct gmem_mm *mmp, struct gmem_file *file,
		    int timeout_ms)
{
	struct gview *w;
	struct pollfd pfd[2];
	int ret = view_get(mmp, file, &w);

	if (ret)
		return ret;
	pfd[0] = (struct pollfd){ .fd = w->uffd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = w->stop_fd, .events = POLLIN };
	ret = poll(pfd, 2, timeout_ms < 0 ? -1 : timeout_ms);
	if (ret < 0) {
		ret = -errno;		/* EINTR: a signal; ENOMEM */
	} else if (pfd[1].revents) {
		ret = -ENOENT;		/* torn down while waiting */
	} else {
		/* serve what is pending even after a timeout: poll() said
		 * nothing, but a fault may have come since */
		unsigned int nr;

		pthread_mutex_lock(&w->serve_lock);
		nr = view_serve_pending(w);
		pthread_mutex_unlock(&w->serve_lock);
		ret = (int)MIN(nr, (unsigned int)INT_MAX);
	}
	view_put(w);
	return ret;
}

/* ----------------------------------------------------------- validator */

/*
 * views_ok() - the MMU agrees: every page of a view with a real PTE
 * present (/proc/self/pagemap bit 63) has a software PTE in its mapping,
 * so no private or poisoned page is mapped (mm_ok() checks those).
 * Without a readable pagemap there is nothing to compare: true.
 * Context: invalidate lock exclusive, file lock.
 */
bool views_ok(struct gfile *f, char *why, size_t len)
{
	uint64_t ents[512];
	bool ok = true;
	int fd = -1;

	for (struct gvma *v = f->vmas; v && ok; v = v->file_next) {
		struct gview *w = v->view;

		if (!w)
			continue;
		if (fd < 0 && (fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0)
			return true;
		for (uint64_t pg = 0; pg < f->nr_pages && ok; pg += 512) {
			uint64_t n = MIN(512, f->nr_pages - pg);
			off_t at = (off_t)(((uintptr_t)w->base >> PAGE_SHIFT) + pg) * 8;

			if (pread(fd, ents, n * 8, at) != (ssize_t)(n * 8))
				break;
			for (uint64_t i = 0; i < n; i++) {
				if (!(ents[i] >> 63) || pt_present(v, pg + i))
					continue;
				snprintf(why, len, "view maps 0x%llx without a host entry",
					 (unsigned long long)((pg + i) << PAGE_SHIFT));
				ok = false;
				break;
			}
		}
	}
	if (fd >= 0)
		close(fd);
	return ok;
}
