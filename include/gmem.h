/* SPDX-License-Identifier: MIT */
/*
 * gmem.h - guest memory on gigantic pages with safe in-place
 * shared/private conversion.
 *
 * The objects follow guest_memfd and core-mm: a pool of huge pages
 * (hugetlb hstate + subpool), files of guest memory with a per-4K
 * private/shared attribute (guest_memfd inodes), folios (struct folio),
 * host address spaces with 4K page tables (mm_struct), the guest's
 * stage-2 map and one IOMMU map per file.
 *
 * Conventions:
 * - Every function that can fail returns 0 or a negative errno.
 * - Host and guest accesses return a positive outcome (GMEM_SIGBUS,
 *   GMEM_GUEST_FAULT, GMEM_GUEST_HWPOISON) where the hardware would
 *   deliver a signal or an exit rather than an error to the caller.
 * - Offsets and lengths are bytes.  Ranges must be 4 KiB aligned, inside
 *   the file and non-empty, or the call returns -EINVAL and changes
 *   nothing.  Host and guest accesses take any byte offset.
 * - A failing call changes nothing, except where a function says so.
 * - The library is thread-safe: any function may be called from any
 *   thread on any object.  It never prints and never exits.
 */
#ifndef GMEM_H
#define GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GMEM_VERSION_MAJOR 0
#define GMEM_VERSION_MINOR 1
#define GMEM_VERSION_PATCH 0
#define GMEM_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define GMEM_API __attribute__((visibility("default")))
#else
#define GMEM_API
#endif

#define GMEM_PAGE_SIZE 4096ULL
#define GMEM_2M (2ULL << 20)
#define GMEM_1G (1ULL << 30)

struct gmem_pool;
struct gmem_file;
struct gmem_mm;

/** enum gmem_backing - where a pool's memory comes from. */
enum gmem_backing {
	GMEM_BACKING_AUTO,	/* hugetlb if enough free huge pages, else memfd */
	GMEM_BACKING_HUGETLB,	/* memfd_create(MFD_HUGETLB | size flag); the
				 * pool keeps its pages reserved for its whole
				 * life and clears a used page on reuse */
	GMEM_BACKING_MEMFD,	/* plain memfd mapped at huge-page alignment */
	GMEM_BACKING_NONE,	/* metadata only: content calls give -ENXIO */
};

/** enum gmem_policy - how a file backs its memory with folios. */
enum gmem_policy {
	GMEM_POLICY_DEFAULT = 0, /* the zero value: GMEM_POLICY_B_LAZY */
	GMEM_POLICY_4K = 1,	/* 4K folios from outside the pool */
	GMEM_POLICY_A = 2,	/* huge folios stay intact; no long-term pins */
	GMEM_POLICY_B_EAGER = 3, /* split to 4K at allocation */
	GMEM_POLICY_B_LAZY = 4,	/* split only as needed, merge back */
	GMEM_POLICY_B_ADAPTIVE = 5, /* b-lazy, but a long-term pin splits
				 * first and merges wait
				 * (gmem_file_set_merge_delay) */
};

/* The merge delay a b-adaptive file starts with, in conversions. */
#define GMEM_MERGE_DELAY_DEFAULT 8192

enum gmem_attr {
	GMEM_PRIVATE = 0,
	GMEM_SHARED = 1,
};

/* Outcomes of host and guest accesses (positive: not errors of the call). */
#define GMEM_SIGBUS		1	/* host: private, poisoned or past EOF */
#define GMEM_GUEST_FAULT	2	/* guest: past the end of the file */
#define GMEM_GUEST_HWPOISON	3	/* guest: poisoned page */

/* gmem_file_create() flags */
#define GMEM_FILE_INIT_SHARED	(1U << 0)

/* gmem_fault() / gmem_guest_access() flags */
#define GMEM_WRITE		(1U << 0)

/* gmem_pin() flags */
#define GMEM_PIN_LONGTERM	(1U << 0)	/* FOLL_LONGTERM */
#define GMEM_PIN_EXCLUSIVE	(1U << 1)	/* the seed RFC's FOLL_EXCLUSIVE */

/* gmem_convert() flags */
#define GMEM_CONVERT_ZERO	(1U << 0)	/* zero the pages that change */

/* ---------------------------------------------------------------- pool */

/**
 * gmem_pool_create() - reserve a pool of huge pages.
 * @page_size: GMEM_2M or GMEM_1G.
 * @count: number of huge pages, at least 1 (files of GMEM_POLICY_4K take
 *         their memory outside the pool, but still need a pool).
 * @backing: where the memory comes from.
 * @out: the new pool.
 *
 * The memory is mapped but not touched: a huge page costs real memory only
 * once a file writes to it.
 *
 * Context: may sleep.
 * Return: 0; -EINVAL for a bad size or backing, a count of 0, or a count
 * whose bytes do not fit in 64 bits; -ENOMEM when the memory cannot be
 * had (more than the 128 TiB a process can map, or hugetlb asked for and
 * too few free huge pages).
 */
GMEM_API int gmem_pool_create(uint64_t page_size, uint64_t count,
			      enum gmem_backing backing,
			      struct gmem_pool **out);

/**
 * gmem_pool_destroy() - close every file still open and free the pool.
 * @pool: the pool, or NULL (nothing is done).
 *
 * Pins still held are dropped; the pool's files and mms and their views
 * go with it.
 *
 * Context: may sleep; no other thread may use the pool or its objects any
 * more.
 */
GMEM_API void gmem_pool_destroy(struct gmem_pool *pool);

/**
 * gmem_pool_backing() - the backing the pool actually uses (AUTO resolved).
 * @pool: the pool (not NULL).
 *
 * Context: takes no lock.
 * Return: GMEM_BACKING_HUGETLB, GMEM_BACKING_MEMFD or GMEM_BACKING_NONE.
 */
GMEM_API enum gmem_backing gmem_pool_backing(const struct gmem_pool *pool);

/**
 * gmem_pool_page_size() - the pool's huge page size in bytes.
 * @pool: the pool (not NULL).
 *
 * Context: takes no lock.
 * Return: GMEM_2M or GMEM_1G.
 */
GMEM_API uint64_t gmem_pool_page_size(const struct gmem_pool *pool);

/* ---------------------------------------------------------------- file */

/**
 * gmem_file_create() - create guest memory.
 * @pool: the pool to draw huge pages from.
 * @size: bytes, a non-zero multiple of the pool's huge page size.
 * @policy: folio policy; GMEM_POLICY_DEFAULT (0) is GMEM_POLICY_B_LAZY.
 * @flags: GMEM_FILE_INIT_SHARED to start with every page shared.
 * @out: the new file.
 *
 * Reserves size / page_size huge pages of the pool at once (nothing for
 * GMEM_POLICY_4K); memory is allocated on first use.  A huge-page file of
 * a pool with memory also reserves @size bytes of the process's address
 * space, its host range (gmem_file_hva()), until it is closed.  The
 * descriptor of a closed file is reused here once no pin refers to it, so
 * a program that creates and closes files for ever holds as many
 * descriptors as it had files open (or closed with pins) at once.
 *
 * Context: may sleep.
 * Return: 0; -EINVAL (size, policy or flags); -ENOMEM (too few unreserved
 * free huge pages, or no memory for descriptors or address space for the
 * host range).
 */
GMEM_API int gmem_file_create(struct gmem_pool *pool, uint64_t size,
			      enum gmem_policy policy, unsigned int flags,
			      struct gmem_file **out);

/**
 * gmem_file_close() - punch the whole file and release its reservation.
 * @file: the file.
 *
 * Every mapping of the file goes (each mm's entries, each view), and with
 * them all memory and descriptors of the file but its fixed-size handle
 * struct, which a later gmem_file_create() of the pool reuses.  Pins still
 * held stay valid until unpinned; their pages return to the pool on the
 * last unpin.
 *
 * A handle carries a generation: after the close, every call with it
 * returns -EBADF (gmem_file_size() 0), also once its struct serves a new
 * file, whose handle differs.  Only after the same struct has served
 * 65,536 files could an old handle name a new one; a handle is not to be
 * used after its pool is destroyed.
 *
 * Context: takes the invalidate lock exclusively; may sleep; waits for the
 * file's views' handler threads to stop.
 * Return: 0; -EINVAL (NULL); -EBADF if already closed.
 */
GMEM_API int gmem_file_close(struct gmem_file *file);

/**
 * gmem_file_size() - the file's size in bytes, fixed at creation.
 * @file: the file.
 * Context: takes no lock.
 * Return: the size; 0 for NULL or a closed file.
 */
GMEM_API uint64_t gmem_file_size(const struct gmem_file *file);

/**
 * gmem_file_policy() - the file's policy, fixed at creation.
 * @file: the file.
 * Context: takes no lock.
 * Return: the policy the file was created with (GMEM_POLICY_B_LAZY for
 * GMEM_POLICY_DEFAULT); GMEM_POLICY_DEFAULT for NULL or a closed file.
 */
GMEM_API enum gmem_policy gmem_file_policy(const struct gmem_file *file);

/**
 * gmem_file_set_merge_delay() - how long a b-adaptive file's blocks wait
 * before they merge.
 * @file: a GMEM_POLICY_B_ADAPTIVE file.
 * @conversions: the period D, in conversions of the file: every call of
 *               gmem_convert() on it that finds pages to change (and
 *               succeeds, or fails with -EAGAIN or -EBUSY) is one.  Every D
 *               of them the file merges the blocks that may merge and that
 *               no conversion and no unpin touched during the last period,
 *               so a block merges at the first period end at which its
 *               huge page's age (conversions since its last touch, the
 *               touching conversion included) reaches D << backoff, where
 *               a huge page's backoff starts at 0 and grows by one with
 *               each such merge in it (to 16).  So with D = 1 a block a
 *               conversion made uniform merges at the end of that
 *               conversion.  0 merges at once, as GMEM_POLICY_B_LAZY
 *               does.  Values above 2^31 count as 2^31, the longest
 *               wait.  A file starts with GMEM_MERGE_DELAY_DEFAULT.
 *
 * Context: takes the invalidate lock exclusively; may sleep.
 * Return: 0; -EINVAL (NULL, or not a b-adaptive file); -EBADF.
 */
GMEM_API int gmem_file_set_merge_delay(struct gmem_file *file,
				       unsigned int conversions);

/**
 * gmem_file_compact() - merge now every split block of @file that may
 * merge: uniform, no poisoned page, no host entry and no pin (4K -> 2M,
 * then 2M -> 1G), whether or not its merge delay has passed.  A file
 * whose policy never merges (4k, a, b-eager) has nothing to do.
 *
 * Context: takes the invalidate lock exclusively; may sleep.
 * Return: 0; -EINVAL (NULL); -EBADF.
 */
GMEM_API int gmem_file_compact(struct gmem_file *file);

/* ------------------------------------------------------------ host mm */

/**
 * gmem_mm_create() - a new host address space.
 * @pool: the pool.
 * @fork_from: NULL, or an mm of @pool whose mappings (not page-table
 *             entries, not pins) the new one copies, as fork() does for
 *             MAP_SHARED.
 * @out: the new mm.
 *
 * The struct of a destroyed mm is reused here first.
 *
 * Context: takes the locks of @fork_from and, for each file it maps, that
 * file's invalidate lock shared; may sleep.
 * Return: 0; -EINVAL (a NULL argument, or @fork_from of another pool);
 * -EBADF (@fork_from destroyed); -ENOMEM.
 */
GMEM_API int gmem_mm_create(struct gmem_pool *pool, struct gmem_mm *fork_from,
			    struct gmem_mm **out);

/**
 * gmem_mm_destroy() - end a host address space, as exit_mmap() does.
 * @mm: the mm.
 *
 * Unmaps every file it maps (gmem_munmap()), views included; pins taken
 * through it stay valid until unpinned, as GUP pins outlive the process's
 * mappings.  The handle is stale from the start of the call: every later
 * call with it returns -EBADF, also once its struct serves a new mm (as
 * for files, see gmem_file_close()).
 *
 * Context: takes each mapped file's invalidate lock exclusively, in turn;
 * may sleep; waits for the views' handler threads to stop.
 * Return: 0; -EINVAL (NULL); -EBADF (destroyed already).
 */
GMEM_API int gmem_mm_destroy(struct gmem_mm *mm);

/**
 * gmem_mmap() - a shared mapping of the whole file; host address == offset.
 * @mm: the host address space.
 * @file: the file to map, of the same pool.
 *
 * Maps no page: page-table entries come with faults and pins.
 *
 * Context: takes the invalidate lock shared; may sleep.
 * Return: 0; -EINVAL (a NULL argument, or @mm and @file of two pools);
 * -EEXIST if @mm maps @file already; -EBADF; -ENOMEM.
 */
GMEM_API int gmem_mmap(struct gmem_mm *mm, struct gmem_file *file);

/**
 * gmem_munmap() - remove @mm's mapping of @file, as munmap() does.
 * @mm: the mm.
 * @file: a file @mm maps.
 *
 * Zaps the mapping's entries (their references and mapcounts go, one TLB
 * flush), unmaps its view if it has one (a later access to the view gets
 * SIGSEGV) and frees the mapping.  Pins taken through it stay.  A later
 * gmem_mmap() maps the file again.
 *
 * Context: takes the invalidate lock exclusively; may sleep; waits for
 * the view's handler thread to stop.
 * Return: 0; -EINVAL (a NULL argument, or two pools); -EBADF (@file
 * closed or @mm destroyed); -ENOENT (@mm does not map @file).
 */
GMEM_API int gmem_munmap(struct gmem_mm *mm, struct gmem_file *file);

/**
 * gmem_fault() - a host page fault at @off (any byte offset).
 * @mm: a host address space that maps @file (gmem_mmap()).
 * @file: the file.
 * @off: any byte offset.
 * @flags: GMEM_WRITE for a write fault.
 *
 * Installs one page-table entry for the 4K page (a reference and a
 * mapcount on its folio) and allocates memory for a hole.  Blocks while a
 * conversion or punch holds the file's invalidate lock.
 *
 * Context: where @mm already has the page's entry and no conversion,
 * punch, poison, split or merge runs on @file, takes no lock (the fast
 * path: a lock-free walk of the mapping, as the MMU walks page tables);
 * otherwise takes the invalidate lock shared; may sleep.
 * Return: 0; GMEM_SIGBUS (private or poisoned page, past the end, no
 * memory for a hole, or a folio reference that could overflow); -EINVAL
 * (flags, or @mm and @file of two pools); -EFAULT (@mm does not map
 * @file); -EBADF.
 */
GMEM_API int gmem_fault(struct gmem_mm *mm, struct gmem_file *file,
			uint64_t off, unsigned int flags);

/**
 * gmem_host_read() / gmem_host_write() - a host load or store through @mm.
 * @mm: a host address space that maps @file (gmem_mmap()).
 * @file: the file.
 * @off: any byte offset.
 * @val: receives the byte read (gmem_host_read()), or the byte to store
 *       (gmem_host_write()).
 *
 * Fault in as gmem_fault() and access the real byte.  A load takes the
 * fast path as gmem_fault() does, and counts only if nothing changed the
 * file meanwhile; a store always takes the invalidate lock shared (a
 * store cannot be taken back).
 *
 * Context: as gmem_fault() for a load; a store takes the invalidate lock
 * shared; may sleep.
 * Return: as gmem_fault(); -ENXIO for a pool without memory.
 */
GMEM_API int gmem_host_read(struct gmem_mm *mm, struct gmem_file *file,
			    uint64_t off, uint8_t *val);
GMEM_API int gmem_host_write(struct gmem_mm *mm, struct gmem_file *file,
			     uint64_t off, uint8_t val);

/**
 * gmem_host_copy_out() / gmem_host_copy_in() - bulk host copies through @mm.
 * @mm: a host address space that maps @file (gmem_mmap()).
 * @file: the file.
 * @off: any byte offset; the copy may cross pages and folios.
 * @buf: the caller's buffer: gmem_host_copy_out() copies into it,
 *       gmem_host_copy_in() from it.
 * @len: bytes to copy.
 * @done: NULL, or receives the bytes copied (all of @len on success).
 *
 * gmem_host_copy_out() copies @len bytes of @file from @off, through @mm,
 * into @buf, as a device model's copy out of guest memory does;
 * gmem_host_copy_in() copies @len bytes from @buf into @file at @off.
 *
 * Page by page, in order, each as gmem_host_read() / gmem_host_write()
 * would access it: the page is faulted in (a host page-table entry), a
 * mapped page's load takes the lock-free path, and the copy stops at the
 * first page that cannot be accessed, as a CPU's copy stops at the
 * faulting page: *@done then counts the bytes before that page (the whole
 * pages and the part of the first page copied so far), and those bytes
 * are copied; nothing after them is touched.  @buf is touched only
 * between pages, with no gmem lock held, through a 4 KiB bounce buffer:
 * it may lie in a gmem_mm_view() of another file (not of @file).  A
 * length of 0 copies nothing and returns 0.
 *
 * Context: as gmem_host_read() / gmem_host_write() for each page; may
 * sleep.
 * Return: 0; GMEM_SIGBUS (a page is private or poisoned, lies past the
 * end of the file, or cannot get memory: the copy stopped there);
 * -EINVAL (@mm or @file NULL, @buf NULL with a length, @off + @len
 * overflows, or @mm and @file of two pools); -EFAULT (@mm does not map
 * @file); -ENXIO (a pool without memory); -EBADF.  An error on the first
 * page leaves *@done 0.
 */
GMEM_API int gmem_host_copy_out(struct gmem_mm *mm, struct gmem_file *file,
				uint64_t off, void *buf, size_t len,
				size_t *done);
GMEM_API int gmem_host_copy_in(struct gmem_mm *mm, struct gmem_file *file,
			       uint64_t off, const void *buf, size_t len,
			       size_t *done);

/**
 * gmem_mm_view() - a real view of @file through @mm, enforced by the MMU.
 * @mm: an mm that maps @file (gmem_mmap()).
 * @file: a file of a pool with GMEM_BACKING_MEMFD, under a huge-page policy.
 * @addr: receives the view's address: @addr + off is the byte at offset
 *        off, for off below gmem_file_size(); the thread loads and stores
 *        there directly.
 *
 * The view maps the file's memory in this process and registers it with
 * userfaultfd (minor and missing faults), served by a handler thread of
 * the view's own (gmem_mm_view_opts(): pinned to a CPU, or none).  A page's first access traps into gmem's fault path, as
 * gmem_fault() through @mm: a shared page is mapped (a host page-table
 * entry of @mm, counted in host_ptes, a reference and a mapcount on its
 * folio) and a hole gets memory; a private or poisoned page, or a hole
 * without memory, gives the thread SIGBUS (si_code BUS_MCEERR_AR, si_addr
 * the byte the access faulted on, not its page: round it down to 4 KiB),
 * as a private guest_memfd page does.  While a conversion, punch or poison
 * holds the file's invalidate lock the faulting thread waits in the
 * kernel until it is done.  Every zap of @mm's entries (conversion to
 * private, punch, poison, close) zaps the view's real entries with them;
 * a conversion to shared lets the pages trap again.
 *
 * The view lives until gmem_mm_unview(), or until @file is closed (or the
 * pool destroyed): then it is unmapped and its thread stopped; a later
 * access gets SIGSEGV.  Do not munmap, mremap or mprotect it, and do not
 * pass pointers into it to gmem calls on @file (the call would wait for
 * itself).  A child of fork() does not inherit it (MADV_DONTFORK).
 *
 * Needs userfaultfd with UFFD_FEATURE_MINOR_SHMEM and UFFDIO_POISON
 * (Linux 6.6), and the right to use it: root (CAP_SYS_PTRACE) or
 * vm.unprivileged_userfaultfd=1.
 *
 * Context: takes the invalidate lock shared; may sleep; starts a thread.
 * Return: 0; -EINVAL (a NULL argument); -EBADF (closed); -EOPNOTSUPP
 * (backing hugetlb, where only whole huge pages can be unmapped, or none;
 * policy 4k, whose scattered 4K frames would need a mapping per page; or
 * the kernel lacks a userfaultfd feature); -EFAULT (@mm does not map
 * @file); -EEXIST (@mm has a view of @file already); -ENOSYS or -EPERM
 * (no userfaultfd, or not allowed to use it); -EAGAIN (no thread);
 * -ENOMEM.
 */
GMEM_API int gmem_mm_view(struct gmem_mm *mm, struct gmem_file *file,
			  void **addr);

/* gmem_mm_view_opts() flags */
#define GMEM_VIEW_SELF_SERVE	(1U << 0)	/* no handler thread */

/**
 * gmem_mm_view_opts() - gmem_mm_view() with a choice of who serves faults.
 * @flags: 0, or GMEM_VIEW_SELF_SERVE: the view has no handler thread; its
 *         faults wait until some thread calls gmem_view_serve().
 * @cpu: the CPU the handler thread runs on (its affinity), or -1 for the
 *       process's mask; -1 with GMEM_VIEW_SELF_SERVE.
 *
 * Where faults are served is most of a first touch's cost: a handler on
 * the toucher's CPU answers in microseconds, one that must wake another
 * CPU takes the wake-up's latency (RESULTS.md in the documentation
 * directory has figures).  A VMM that knows where its vCPU and device
 * threads run pins the handler there, or serves faults from its own event
 * loop (GMEM_VIEW_SELF_SERVE, gmem_view_fd()).
 *
 * With GMEM_VIEW_SELF_SERVE a thread that touches the view waits in the
 * kernel until its fault is served: the thread that calls
 * gmem_view_serve() must never touch the view itself (it would wait for
 * itself), and some thread must serve for as long as others touch it.
 *
 * Context: as gmem_mm_view().
 * Return: as gmem_mm_view(); -EINVAL also for unknown @flags, @cpu below
 * -1 or past CPU_SETSIZE, @cpu with GMEM_VIEW_SELF_SERVE, or a @cpu this
 * process may not run on.
 */
GMEM_API int gmem_mm_view_opts(struct gmem_mm *mm, struct gmem_file *file,
			       unsigned int flags, int cpu, void **addr);

/**
 * gmem_mm_unview() - tear down @mm's view of @file.
 *
 * Unmaps the view and stops its server: the handler thread is joined, or
 * the gmem_view_serve() calls in progress return (-ENOENT if they were
 * waiting); the view's descriptor (gmem_view_fd()) is closed.  A thread
 * waiting in a fault on the view wakes and gets SIGSEGV, as does every
 * later access; @mm's host entries stay (they are @mm's, as gmem_fault()
 * made them).  A new view of @file through @mm may then be made; it
 * usually lies elsewhere.
 *
 * Context: takes the invalidate lock exclusively (waits for conversions,
 * faults being served), then waits for the server with no lock held; may
 * sleep.  Not from the view's own server (a gmem_view_serve() caller
 * whose call is in progress cannot be inside it anyway).
 * Return: 0; -EINVAL (a NULL argument, or @mm and @file of two pools);
 * -EBADF (@file closed, its views gone with it, or @mm destroyed);
 * -ENOENT (@mm has no view of @file, or does not map it).
 */
GMEM_API int gmem_mm_unview(struct gmem_mm *mm, struct gmem_file *file);

/**
 * gmem_view_fd() - the userfaultfd of @mm's self-served view of @file.
 *
 * For an event loop: poll() it for POLLIN and call gmem_view_serve() with
 * a timeout of 0 when it is readable.  Do not read, close or ioctl() it.
 * It stays open until gmem_mm_unview() or the file's close: take it out
 * of the poll set first.  Non-blocking (O_NONBLOCK), close-on-exec.
 *
 * Context: takes the invalidate lock shared and the file lock, briefly.
 * Return: the descriptor (>= 0); -EINVAL (a NULL argument, @mm and @file
 * of two pools, or a view with a handler thread, which owns the
 * descriptor); -EBADF; -ENOENT (no view).
 */
GMEM_API int gmem_view_fd(struct gmem_mm *mm, struct gmem_file *file);

/**
 * gmem_view_serve() - serve the faults of @mm's self-served view of @file
 * on the calling thread.
 * @timeout_ms: how long to wait for a fault (0: not at all; negative:
 *              until one comes or the view is torn down).
 *
 * Waits up to @timeout_ms for the view's descriptor to be readable, then
 * reads every fault pending and resolves each as the handler thread of a
 * gmem_mm_view() would (the page mapped, or SIGBUS for the faulting
 * thread), in the order they came.  Calls on one view from several threads
 * serve one at a time.
 *
 * Context: the calling thread must not touch the view (it would wait for
 * itself); waits without a lock, then takes the invalidate lock shared
 * and the file lock per fault (a fault waits for a conversion in
 * progress); may sleep.
 * Return: the number of faults served (0 after the timeout); -EINVAL (a
 * NULL argument, @mm and @file of two pools, or a view with a handler
 * thread); -EBADF; -ENOENT (no view, or it was torn down during the
 * wait); -EINTR (a signal during the wait).
 */
GMEM_API int gmem_view_serve(struct gmem_mm *mm, struct gmem_file *file,
			     int timeout_ms);

/* ---------------------------------------------------------------- pins */

/**
 * gmem_pin() - pin [@off, @off + @len) through @mm, as pin_user_pages().
 * @mm: a host address space that maps @file (gmem_mmap()).
 * @file: the file.
 * @off: the first byte, 4 KiB aligned.
 * @len: bytes, a non-zero multiple of 4 KiB.
 * @flags: GMEM_PIN_LONGTERM, GMEM_PIN_EXCLUSIVE.
 * @id: receives the pin's id, never 0: unique in the process (never the
 *       id of another pool's pin) until 2^40 ids have been handed out
 *       (each thread takes them 64 at a time).  A pool holds at most 2^24
 *       pins at once (then -ENOMEM).
 * @pages: NULL, or an array of @len / 4096 pointers that receives the
 *         address of each page's real bytes (NULL for backing NONE).
 *
 * All or nothing.  Faults each page in (page-table entries and memory for
 * holes) and takes a pin on its folio: GUP_PIN_COUNTING_BIAS on a 4K folio,
 * one reference and one pincount on a huge one.
 *
 * Under GMEM_POLICY_B_ADAPTIVE a long-term pin first splits every intact
 * huge folio that the range covers only in part (1G -> 2M, then 2M -> 4K,
 * as far as needed), zapping the folio's host entries as a split must; if
 * another pin holds such a folio it cannot be split and the call fails
 * with -EAGAIN (found before that folio is zapped).  A pin that fails
 * after it zapped a folio to split it (-EAGAIN for a folio in a second
 * huge page of the range, -ENOMEM) undoes the splits, but the zapped
 * entries stay zapped, as after a failing conversion; they refault.
 *
 * A pin is a host access: @off and @len must be 4 KiB aligned and @len
 * non-zero, but pages past the end of the file are -EFAULT, as
 * pin_user_pages() answers for an address the mapping cannot back.
 *
 * Context: a one-page pin, not exclusive, of a page that @mm already maps,
 * on a file with no exclusive pin, while no conversion, punch, poison,
 * split or merge runs on it, takes no lock (the fast path, as GUP-fast: a
 * lock-free walk, a speculative reference, a re-check); any other pin
 * takes the invalidate lock shared (exclusively for an exclusive pin, and
 * for a long-term pin under GMEM_POLICY_B_ADAPTIVE); may sleep.
 * Return: 0; -EINVAL (alignment, zero length, flags, or @mm and @file of
 * two pools); -EFAULT (@mm does not map @file, a page is private, or the
 * range runs past the end); -EHWPOISON (a page is poisoned); -EOPNOTSUPP
 * (long-term under GMEM_POLICY_A); -EBUSY (an exclusive pin exists on a
 * page, or @flags has GMEM_PIN_EXCLUSIVE and another pin exists); -EAGAIN
 * (GMEM_POLICY_B_ADAPTIVE, long-term: a folio to split holds another pin);
 * -ENOMEM
 * (no memory, or a folio's refcount or pincount would pass INT_MAX - 1024,
 * as the kernel's GUP refuses a reference that could overflow: an order-0
 * folio takes about 2^21 pins); -EBADF.  The first page of the range that
 * cannot be pinned decides between -EFAULT, -EHWPOISON and -EBUSY.
 */
GMEM_API int gmem_pin(struct gmem_mm *mm, struct gmem_file *file,
		      uint64_t off, uint64_t len, unsigned int flags,
		      uint64_t *id, void **pages);

/**
 * gmem_unpin() - drop a pin, wake conversions waiting for it.
 * @pool: the pool of the pin's file.
 * @id: the id gmem_pin() gave.
 *
 * A pin taken on the fast path is dropped with no lock at all when
 * nothing but its counts is to be undone (its folio is still the file's,
 * no merge can follow, no conversion is running); otherwise the file's
 * lock is taken.
 *
 * Context: never takes the invalidate lock, so it never waits for a
 * conversion; may take the file's lock.
 * Return: 0; -EINVAL (@pool NULL); -ENOENT if @pool holds no pin with
 * @id now (also for an id of another pool's pin).
 */
GMEM_API int gmem_unpin(struct gmem_pool *pool, uint64_t id);

/* ---------------------------------------------------------- conversion */

/**
 * gmem_convert() - convert [@off, @off + @len) to @to, all or nothing.
 * @file: the file.
 * @off: the first byte, 4 KiB aligned.
 * @len: bytes, a non-zero multiple of 4 KiB.
 * @to: GMEM_PRIVATE or GMEM_SHARED.
 * @flags: GMEM_CONVERT_ZERO zeroes the pages that change.
 * @timeout_ms: how long to wait for short-term pins to go (0: not at all;
 *              negative: forever).  While it waits the call holds the
 *              invalidate lock, so every fault, pin, guest access and
 *              conversion on the file blocks behind it: with a negative
 *              timeout, a thread that holds a short-term pin on the file
 *              and enters the file before unpinning deadlocks with it
 *              (the project's model checker finds this interleaving).
 *              A finite timeout turns that into -EAGAIN.
 * @error_offset: NULL, or receives the first offending page on -EAGAIN or
 *                -EBUSY.
 *
 * Shared to private: takes the invalidate lock exclusively, zaps the drain
 * set (the folios holding a page that changes) from every host mm, fails
 * with -EBUSY at once on a long-term pin, waits up to @timeout_ms for
 * short-term pins, then flips the attribute, zaps guest entries over the
 * range and re-levels the IOMMU map.  Private to shared needs no reference
 * check.  On failure no attribute and no content has changed; host
 * entries zapped stay zapped (refaults restore them), and under
 * GMEM_POLICY_B_LAZY a split block that the zap left uniform and
 * unreferenced merges, as after any call (its smaller guest entries go).
 * A failure before the drain (-EINVAL, -EBADF) changes nothing at all.
 *
 * Context: takes the invalidate lock exclusively; may sleep.
 * Return: 0; -EINVAL (@file NULL, @to, @flags, or the range); -EBUSY (a
 * long-term pin on a page of the drain set); -EAGAIN (short-term pins
 * still held when @timeout_ms ran out); -ENOMEM (no memory for a split or
 * for the attribute ranges); -EBADF (closed).
 */
GMEM_API int gmem_convert(struct gmem_file *file, uint64_t off, uint64_t len,
			  enum gmem_attr to, unsigned int flags, int timeout_ms,
			  uint64_t *error_offset);

/**
 * gmem_punch() - punch a hole in [@off, @off + @len).
 * @file: the file.
 * @off: the first byte, 4 KiB aligned.
 * @len: bytes, a non-zero multiple of 4 KiB.
 *
 * Parts of huge pages are zeroed; whole huge pages are unmapped everywhere
 * and returned to the pool (deferred while a piece is pinned).  Attributes
 * stay.
 *
 * Context: takes the invalidate lock exclusively; may sleep.
 * Return: 0; -EINVAL; -ENOMEM (no node for the poison set); -EBADF.
 */
GMEM_API int gmem_punch(struct gmem_file *file, uint64_t off, uint64_t len);

/* --------------------------------------------------------------- guest */

/**
 * gmem_guest_access() - the guest touches every page of [@off, @off+@len).
 * @file: the file.
 * @off: any byte offset.
 * @len: bytes (rounded up to pages); 0 means one page.  A range that runs
 *       past the end of the file, also one whose end wraps past 2^64,
 *       maps the pages up to the end and returns GMEM_GUEST_FAULT.
 * @flags: GMEM_WRITE for a write access, or 0.
 *
 * Each page without a guest entry gets the largest aligned block that holds
 * it, lies in one huge page, has one attribute and no poisoned page.
 * Stops at the first failure, keeping what it mapped before.
 *
 * Context: takes the invalidate lock shared; may sleep.
 * Return: 0; GMEM_GUEST_FAULT (past the end); GMEM_GUEST_HWPOISON;
 * -ENOMEM (no memory for a hole or an entry; the page is left as it was);
 * -EINVAL (@file NULL, or flags); -EBADF.
 */
GMEM_API int gmem_guest_access(struct gmem_file *file, uint64_t off,
			       uint64_t len, unsigned int flags);

/**
 * gmem_guest_read() / gmem_guest_write() - a guest load or store of the
 * byte at @off.
 * @file: the file.
 * @off: any byte offset.
 * @val: receives the byte read (gmem_guest_read()), or the byte to store
 *       (gmem_guest_write()).
 *
 * The page is mapped as gmem_guest_access() maps it, then the real byte is
 * read or written, private or shared: the guest may touch both.
 *
 * Context: takes the invalidate lock shared; may sleep.
 * Return: as gmem_guest_access(); -EINVAL also for @val NULL; -ENXIO for a
 * pool without memory.
 */
GMEM_API int gmem_guest_read(struct gmem_file *file, uint64_t off,
			     uint8_t *val);
GMEM_API int gmem_guest_write(struct gmem_file *file, uint64_t off,
			      uint8_t val);

/**
 * gmem_iommu_map() - map [@off, @off + @len) of shared pages for a device.
 * @file: the file.
 * @off: the first byte, 4 KiB aligned.
 * @len: bytes, a non-zero multiple of 4 KiB.
 * @error_offset: NULL, or receives the first private or poisoned page on
 *                -EFAULT or -EHWPOISON.
 *
 * Holes in the range get memory.  From then on the file's IOMMU map holds exactly the shared, allocated,
 * unpoisoned pages of its ranges, at the largest level allowed.
 *
 * Context: takes the invalidate lock shared; may sleep.
 * Return: 0; -EINVAL (@file NULL, or the range); -EFAULT (a private page, at @error_offset);
 * -EHWPOISON (a poisoned page, at @error_offset); -ENOMEM; -EBADF.
 */
GMEM_API int gmem_iommu_map(struct gmem_file *file, uint64_t off, uint64_t len,
			    uint64_t *error_offset);

/**
 * gmem_poison() - memory-failure injection on the 4K page at @off.
 * @file: the file.
 * @off: the page, 4 KiB aligned.
 *
 * As memory_failure(): the page is unmapped from every host mm, its guest
 * entries go and the IOMMU map is re-levelled; a hole gets memory first.
 * Later host accesses give GMEM_SIGBUS, guest accesses GMEM_GUEST_HWPOISON,
 * pins -EHWPOISON.  Poisoning a poisoned page does nothing.
 *
 * Context: takes the invalidate lock exclusively; may sleep.
 * Return: 0; -EINVAL (@file NULL, or @off); -ENOMEM; -EBADF.
 */
GMEM_API int gmem_poison(struct gmem_file *file, uint64_t off);

/* ----------------------------------------------------------- inspection */

struct gmem_stats {
	uint64_t pool_total, pool_free, pool_resv, pool_retired;
	uint64_t folios_1g, folios_2m, folios_4k;
	uint64_t shatters, collapses;
	uint64_t meta_bytes, vmemmap_bytes;
	uint64_t guest_1g, guest_2m, guest_4k;
	uint64_t iommu_1g, iommu_2m, iommu_4k;
	uint64_t host_ptes, pins, conversions, eagain, ebusy, zaps;
	/* beyond the listed keys (gmem-trace(5)), printed only when named */
	uint64_t eopnotsupp;	/* long-term pins refused (policy a) */
	uint64_t pool_returned;	/* huge pages given back to the pool */
	uint64_t pin_wait_ns;	/* time conversions waited for pins */
	/*
	 * Events that stand for kernel work, counted over the run (pool-wide:
	 * closed files included): folios split and merged by the level of the
	 * larger folio (split_1g: a 1G folio split into 2M ones); bytes the
	 * kernel would clear (each allocation, GMEM_CONVERT_ZERO, a partial
	 * punch); TLB-flush batches (one per mm that lost entries in a zap);
	 * host page-table entries installed; guest (stage-2) and IOMMU
	 * entries added and removed, by level.
	 */
	uint64_t split_2m, split_1g, merge_2m, merge_1g;
	uint64_t zeroed_bytes, tlb_flushes, host_faults;
	uint64_t guest_map_4k, guest_map_2m, guest_map_1g;
	uint64_t guest_unmap_4k, guest_unmap_2m, guest_unmap_1g;
	uint64_t iommu_map_4k, iommu_map_2m, iommu_map_1g;
	uint64_t iommu_unmap_4k, iommu_unmap_2m, iommu_unmap_1g;
	/* flushes the removals need: a stage-2 TLB flush per call that
	 * removed guest entries, an IOTLB invalidation per IOMMU re-level
	 * that removed entries */
	uint64_t guest_flushes, iommu_flushes;
	/* the most meta_bytes and vmemmap_bytes a file held at any moment
	 * (pool-wide: the sum over the open files' peaks) */
	uint64_t meta_peak_bytes, vmemmap_peak_bytes;
};

/**
 * gmem_stats() - a consistent snapshot of the statistics.
 * @pool: the pool.
 * @file: NULL for the pool-wide figures.
 * @out: receives the figures.
 *
 * For a file, every figure is taken at one moment, however many threads
 * work meanwhile: its own figures and the pool_* keys together (so
 * pool_free plus the huge pages of the only file add up).  Pool-wide, each
 * file's figures are one snapshot and the pool_* keys and counters are
 * one, taken one after another: while other threads allocate or give
 * back pages, the sums over files may differ from the pool_* keys by what
 * moved meanwhile.
 *
 * Context: takes the file's lock (each open file's lock in turn) and the
 * pool's lock, never an invalidate lock: a thread that holds a pin may
 * call it while a conversion waits for that pin; may sleep.
 * Return: 0; -EINVAL (a NULL argument, or @file of another pool); -EBADF.
 */
GMEM_API int gmem_stats(struct gmem_pool *pool, struct gmem_file *file,
			struct gmem_stats *out);

/**
 * gmem_stat_keys / gmem_stat_nr_listed - the names of the statistics.
 *
 * gmem_stat_keys are the keys of struct gmem_stats by name, for
 * gmem_stat_get(), NULL-terminated; its first gmem_stat_nr_listed are the
 * ones a trace's stats command prints by default (gmem-trace(5)), the
 * others are printed only when named.
 */
GMEM_API extern const char *const gmem_stat_keys[];
GMEM_API extern const unsigned int gmem_stat_nr_listed;

/**
 * gmem_stat_get() - a statistic by name.
 * @s: figures from gmem_stats().
 * @key: one of gmem_stat_keys, e.g. "conversions".
 * @val: receives the value.
 *
 * Context: takes no lock.
 * Return: 0; -ENOENT for an unknown key.
 */
GMEM_API int gmem_stat_get(const struct gmem_stats *s, const char *key,
			   uint64_t *val);

/**
 * gmem_check() - run every invariant validator.
 * @pool: the pool.
 * @buf, @len: receives a one-line description of the first violation.
 *
 * Safe while other threads use the pool: each file is checked under its
 * own locks, the pool's conservation from one snapshot, so it never
 * reports a violation that does not exist.  Files being closed are
 * skipped.
 *
 * Context: takes every open file's invalidate lock exclusively, in turn,
 * and the pool's lock.
 * Return: 0 when every invariant holds; -EUCLEAN otherwise; -EINVAL
 * (@pool NULL).
 */
GMEM_API int gmem_check(struct gmem_pool *pool, char *buf, size_t len);

/**
 * gmem_errno_name() - the name of an errno value.
 * @err: an errno value, negative (as gmem returns it) or positive.
 *
 * Context: takes no lock.
 * Return: a static string: "OK" for 0, "EAGAIN" for -EAGAIN or EAGAIN, and
 * so on for each errno gmem returns and a few more; "EUNKNOWN" for others.
 */
GMEM_API const char *gmem_errno_name(int err);

/* ------------------------------------------------------------- for a VMM */

/**
 * gmem_file_hva() - the host address of the memory behind @off, for a VMM
 * to hand to KVM (a memory slot's userspace_addr).
 * @file: the file.
 * @off: any byte offset inside the file.
 * @addr: receives the address of the real byte at @off.
 * @len: receives how many bytes from @addr on the address is good for:
 *       to the end of the file under the huge-page policies (the file's
 *       range, below: one memory slot for the whole file); to the end of
 *       @off's 4 KiB page under GMEM_POLICY_4K, whose frames are scattered
 *       (the next piece may or may not follow in the host's address space;
 *       a VMM merges the pieces that do).
 *
 * Under the huge-page policies each file has one host range of its size,
 * reserved when the file is created (aligned to the pool's page size) and
 * fixed for the file's life: the address of an offset never changes.
 * Each huge page the file holds is mapped there at its offset (the pool's
 * memory itself, shared: a write through the range is what the guest and
 * the host read through gmem, and the reverse); a page the file does not
 * hold (a hole, never allocated, or punched whole) is PROT_NONE there,
 * reserved, until the file gets it again, at the same address.  The range
 * goes at close.
 *
 * The page that holds @off gets memory if it is a hole, as a guest access
 * would (no guest entry is made); other holes stay holes: a VMM asks for
 * each huge page (or touches it through gmem) before the guest may use it.
 * Neither the attribute nor poison of the pages is checked: the address
 * names memory, not a right to touch it, and it outlives conversions
 * (conversion is in place).  The memory behind it stays until the range
 * is punched (a whole huge page punched goes back to the pool and the
 * range's page to PROT_NONE; a later use maps a fresh one there) or the
 * file is closed.  The host must not touch private pages through it: a
 * VMM hands it to KVM only, and reaches shared pages through a gmem mm
 * (gmem_host_read(), gmem_pin()), where a private page gives SIGBUS.  No
 * folio reference is taken, so the address never blocks a conversion;
 * KVM learns of a punch through the kernel's MMU notifiers, as the range
 * is remapped.  Under GMEM_POLICY_4K there is no range: the address is
 * the 4K frame's, good until the page is punched or the file closed.
 *
 * Context: takes the invalidate lock shared; may sleep.
 * Return: 0; -EINVAL (@off past the end, or a NULL argument); -ENXIO (a
 * pool without memory: no range either); -ENOMEM (no memory for a hole,
 * or no room to map it); -EBADF (closed).
 */
GMEM_API int gmem_file_hva(struct gmem_file *file, uint64_t off, void **addr,
			   uint64_t *len);

#ifdef __cplusplus
}
#endif
#endif /* GMEM_H */
