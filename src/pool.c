// SPDX-License-Identifier: MIT
/*
 * pool.c - the pool of huge pages (hugetlb hstate + subpool), its real
 * memory, and the 4K arena that policy-4k files draw from (the buddy
 * allocator's part).
 *
 * Counters (TRACE.md): @free counts pages that hold no file's data,
 * reserved or not; @resv the pages files reserved but have not allocated;
 * @total the pages still in the pool (a retired page leaves it).  Always:
 * resv <= free <= total, and once every file is closed and every pin
 * dropped, free == total.
 */
#include <fcntl.h>
#include <linux/memfd.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif
#ifndef MFD_HUGE_1GB
#define MFD_HUGE_1GB (30U << 26)
#endif

/* The 4K arena: a sparse memfd; 64 GiB of address space is plenty for
 * the policy-4k files a pool of this library serves. */
#define ARENA_BYTES (64ULL << 30)

/* A hugetlb counter of @page_size from sysfs, or 0 if unknown. */
static uint64_t host_hugepages(uint64_t page_size, const char *name)
{
	char path[128];
	unsigned long long n = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%llukB/%s",
		 (unsigned long long)(page_size >> 10), name);
	fp = fopen(path, "re");
	if (!fp)
		return 0;
	if (fscanf(fp, "%llu", &n) != 1)
		n = 0;
	fclose(fp);
	return n;
}

/* Free huge pages of @page_size that no mapping has reserved. */
static uint64_t host_free_hugepages(uint64_t page_size)
{
	uint64_t free = host_hugepages(page_size, "free_hugepages");
	uint64_t resv = host_hugepages(page_size, "resv_hugepages");

	return free > resv ? free - resv : 0;
}

static int map_hugetlb(struct gpool *p, size_t len)
{
	unsigned int flags = MFD_CLOEXEC | MFD_HUGETLB |
		(p->order == PUD_ORDER ? MFD_HUGE_1GB : MFD_HUGE_2MB);
	void *m;

	if (gmem_inject_should_fail())
		return -ENOMEM;
	p->fd = memfd_create("gmem-pool", flags);
	if (p->fd < 0)
		return -errno;
	if (ftruncate(p->fd, (off_t)len) < 0)
		return -ENOMEM;
	/* No MAP_NORESERVE: hugetlb reserves the pages now or fails. */
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	p->base = m;
	p->map_raw = m;
	p->map_len = len;
	return 0;
}

/* A plain memfd mapped at huge-page alignment, untouched (sparse). */
static int map_memfd(struct gpool *p, size_t len)
{
	void *raw, *m;
	uintptr_t a;

	if (gmem_inject_should_fail())
		return -ENOMEM;
	p->fd = memfd_create("gmem-pool", MFD_CLOEXEC);
	if (p->fd < 0)
		return -errno;
	if (ftruncate(p->fd, (off_t)len) < 0)
		return -ENOMEM;
	raw = mmap(NULL, len + p->page_size, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return -ENOMEM;
	a = ((uintptr_t)raw + p->page_size - 1) & ~(uintptr_t)(p->page_size - 1);
	m = mmap((void *)a, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED | MAP_NORESERVE, p->fd, 0);
	if (m == MAP_FAILED) {
		munmap(raw, len + p->page_size);
		return -ENOMEM;
	}
	p->map_raw = raw;
	p->map_len = len + p->page_size;
	p->base = m;
	return 0;
}

int gmem_pool_create(uint64_t page_size, uint64_t count,
		     enum gmem_backing backing, struct gmem_pool **out)
{
	struct gpool *p;
	size_t len;
	int ret = 0;

	/* a count of 0, or one whose bytes do not fit 64 bits, is ill-formed;
	 * one that fits but passes the 128 TiB of a process's address space
	 * (x86-64, 4-level page tables) cannot be had */
	if (!out || (page_size != GMEM_2M && page_size != GMEM_1G) ||
	    (unsigned int)backing > GMEM_BACKING_NONE || !count ||
	    count > UINT64_MAX / page_size)
		return -EINVAL;
	if (count > (1ULL << 47) / page_size)
		return -ENOMEM;
	p = gmem_alloc_cacheline(sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->page_size = page_size;
	p->order = page_size == GMEM_1G ? PUD_ORDER : PMD_ORDER;
	p->count = p->total = p->free = count;
	p->fd = -1;
	p->arena_fd = -1;
	gmem_rcu_init();
	pthread_mutex_init(&p->files_lock, NULL);
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->rcu_lock, NULL);

	if (backing == GMEM_BACKING_AUTO)
		backing = count && host_free_hugepages(page_size) >= count ?
			GMEM_BACKING_HUGETLB : GMEM_BACKING_MEMFD;
	p->backing = backing;
	len = (size_t)(count * page_size);
	if (backing == GMEM_BACKING_HUGETLB && count)
		ret = map_hugetlb(p, len);
	else if (backing == GMEM_BACKING_MEMFD && count)
		ret = map_memfd(p, len);
	if (ret)
		goto err;

	if (backing == GMEM_BACKING_HUGETLB && count) {
		p->dirty = gmem_alloc((count + 63) / 64 * sizeof(uint64_t));
		if (!p->dirty) {
			ret = -ENOMEM;
			goto err;
		}
	}
	p->free_stack = gmem_alloc((count ? count : 1) * sizeof(uint64_t));
	if (!p->free_stack || pin_table_init(p)) {
		ret = -ENOMEM;
		goto err;
	}
	/* Pop order 0, 1, 2, ...: deterministic placement for traces. */
	for (uint64_t i = 0; i < count; i++)
		p->free_stack[i] = count - 1 - i;
	p->nr_free_stack = count;
	*out = (struct gmem_pool *)p;
	return 0;
err:
	gmem_pool_destroy((struct gmem_pool *)p);
	return ret;
}

enum gmem_backing gmem_pool_backing(const struct gmem_pool *pool)
{
	return ((const struct gpool *)pool)->backing;
}

uint64_t gmem_pool_page_size(const struct gmem_pool *pool)
{
	return ((const struct gpool *)pool)->page_size;
}

void gmem_pool_destroy(struct gmem_pool *pool)
{
	struct gpool *p = to_pool(pool);

	if (!p)
		return;
	p->tearing_down = true;
	for (;;) {
		struct gfile *f;

		pthread_mutex_lock(&p->files_lock);
		f = p->files;
		pthread_mutex_unlock(&p->files_lock);
		if (!f)
			break;
		/* relaxed: only this thread runs now */
		gmem_file_close(handle_make(f, atomic_load_explicit(
				&f->gen, memory_order_relaxed)));
	}
	pins_drop_all(p);
	rcu_flush(p);
	while (p->zombies) {
		struct gfile *f = p->zombies;

		p->zombies = f->next;
		pthread_mutex_destroy(&f->lock);
		pthread_cond_destroy(&f->pin_wait);
		inval_destroy(&f->inval);
		gmem_free(f, sizeof(*f));
	}
	while (p->mms) {
		struct gmm *mm = p->mms;

		p->mms = mm->next;
		pthread_mutex_destroy(&mm->lock);
		gmem_free(mm, sizeof(*mm));
	}
	while (p->free_mms) {
		struct gmm *mm = p->free_mms;

		p->free_mms = mm->next;
		pthread_mutex_destroy(&mm->lock);
		gmem_free(mm, sizeof(*mm));
	}
	if (p->map_raw)
		munmap(p->map_raw, p->map_len);
	if (p->fd >= 0)
		close(p->fd);
	if (p->arena)
		munmap(p->arena, ARENA_BYTES);
	if (p->arena_fd >= 0)
		close(p->arena_fd);
	gmem_free(p->arena_free, p->arena_cap_free * sizeof(uint64_t));
	gmem_free(p->free_stack, (p->count ? p->count : 1) * sizeof(uint64_t));
	gmem_free(p->dirty, (p->count + 63) / 64 * sizeof(uint64_t));
	pin_table_destroy(p);
	pthread_mutex_destroy(&p->files_lock);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->rcu_lock);
	gmem_free(p, sizeof(*p));
}

/**
 * pool_alloc_huge() - take a free huge page for @f, using one of its
 * reservations if it has any, else an unreserved free page.
 * Return: 0 or -ENOMEM.
 */
int pool_alloc_huge(struct gpool *p, struct gfile *f, struct ghuge *h)
{
	uint64_t slot = h->index >> p->order;
	bool unreserved, dirty = false;
	int ret = 0;

	pthread_mutex_lock(&p->lock);
	unreserved = f->unreserved[slot / 64] & (1ULL << (slot % 64));
	if (!unreserved && f->resv) {
		f->resv--;
		p->resv--;
		h->from_resv = true;
	} else if (p->free > p->resv) {
		h->from_resv = false;
	} else {
		ret = -ENOMEM;
		goto out;
	}
	GM_BUG_ON(p->nr_free_stack == 0);
	h->pfn = p->free_stack[--p->nr_free_stack];
	p->free--;
	p->held++;
	f->held++;
	dirty = p->dirty && (p->dirty[h->pfn / 64] & (1ULL << (h->pfn % 64)));
	if (dirty)
		p->dirty[h->pfn / 64] &= ~(1ULL << (h->pfn % 64));
out:
	pthread_mutex_unlock(&p->lock);
	/* A kept hugetlb page is cleared on reuse, as the kernel clears a
	 * huge page when it is faulted in.  Outside the pool lock: only
	 * this caller owns the page now. */
	if (dirty)
		memset(p->base + h->pfn * p->page_size, 0, p->page_size);
	return ret;
}

/* Drop a range of pool memory: the kernel frees it and reads give zero. */
void pool_zero(struct gpool *p, uint8_t *data, uint64_t len)
{
	if (!data || !len)
		return;
	if (p->backing == GMEM_BACKING_MEMFD &&
	    fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(data - p->base), (off_t)len) == 0)
		return;
	memset(data, 0, len);
}

/**
 * pool_return_huge() - a huge page no longer holds data: free it, or retire
 * it if poisoned.  The owner, if still open, keeps the reservation the page
 * was allocated under.  The caller frees the descriptors.  @undo: the
 * page goes back because the call that allocated it failed (not counted).
 */
void pool_return_huge(struct gpool *p, struct ghuge *h, struct gfile *owner,
		      bool undo)
{
	bool keep = false;

	if (h->data && p->backing == GMEM_BACKING_HUGETLB) {
		/*
		 * Punching a hugetlbfs file gives the page's reservation back
		 * to the host, and another process may take the page: the
		 * pool's next fault there would get SIGBUS.  So the pool keeps
		 * its pages for its whole life and clears a kept page when it
		 * is used again; only a retired page goes back to the host.
		 */
		/*
		 * Whether the page holds data cannot be read off the mapping
		 * (mincore() shows this process's page-table entries, which a
		 * madvise() or a fork() takes away): a page a file held is
		 * cleared on reuse, always.
		 */
		if (h->poisoned)
			fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)(h->data - p->base), (off_t)p->page_size);
		else
			keep = true;
	} else if (h->data) {
		pool_zero(p, h->data, p->page_size);
	}
	pthread_mutex_lock(&p->lock);
	if (keep)
		p->dirty[h->pfn / 64] |= 1ULL << (h->pfn % 64);
	if (!h->detached) {
		p->held--;
		if (owner)
			owner->held--;
	}
	for (struct ghuge **pp = &p->detached; *pp; pp = &(*pp)->next_detached) {
		if (*pp == h) {
			*pp = h->next_detached;
			p->detached_meta -= h->meta;
			break;
		}
	}
	uint64_t slot = h->index >> p->order, bit = 1ULL << (slot % 64);
	bool mine = owner && !owner->closed && h->from_resv;

	if (h->poisoned) {
		p->total--;
		p->retired++;
		/* The reservation this page was drawn under retires with it
		 * (a detached page's range lost it at the punch already). */
		if (mine)
			owner->unreserved[slot / 64] |= bit;
	} else {
		p->free_stack[p->nr_free_stack++] = h->pfn;
		p->free++;
		if (mine && h->detached) {
			/* The range's deferred reservation comes back: to the
			 * hole, or to the page allocated there meanwhile
			 * without one.  Owner's file lock held: huge[] holds. */
			struct ghuge *cur = owner->huge[slot];

			if (!cur) {
				owner->unreserved[slot / 64] &= ~bit;
				owner->resv++;
				p->resv++;
			} else if (!cur->from_resv) {
				owner->unreserved[slot / 64] &= ~bit;
				cur->from_resv = true;
			}
		} else if (mine) {
			owner->resv++;
			p->resv++;
		}
	}
	if (!undo) {
		p->run.pool_returned++;
		if (owner && !owner->closed)
			owner->c.pool_returned++;
	}
	pthread_mutex_unlock(&p->lock);
}

/*
 * A huge page punched while pinned waits on the pool's list, and the
 * reservation it was drawn under waits with it (TRACE.md: "a piece that is
 * still pinned defers both until its last reference drops").
 */
void pool_detach(struct gpool *p, struct ghuge *h)
{
	uint64_t slot = h->index >> p->order;

	pthread_mutex_lock(&p->lock);
	/* Its range has no reservation until the page comes back. */
	h->detached = true;
	if (h->from_resv && h->owner)
		h->owner->unreserved[slot / 64] |= 1ULL << (slot % 64);
	h->next_detached = p->detached;
	p->detached = h;
	p->held--;
	if (h->owner)
		h->owner->held--;
	p->detached_meta += h->meta;
	pthread_mutex_unlock(&p->lock);
}

/* Count an event both run-wide (pool lock) and for the file (file lock). */
void pool_count(struct gpool *p, uint64_t *field_run, uint64_t *field_file,
		uint64_t n)
{
	pthread_mutex_lock(&p->lock);
	*field_run += n;
	pthread_mutex_unlock(&p->lock);
	if (field_file)
		*field_file += n;
}

/* ---------------------------------------------------------------- arena */

static int arena_init(struct gpool *p)
{
	void *m;

	if (gmem_inject_should_fail())
		return -ENOMEM;
	p->arena_fd = memfd_create("gmem-4k", MFD_CLOEXEC);
	if (p->arena_fd < 0)
		return -ENOMEM;
	if (ftruncate(p->arena_fd, (off_t)ARENA_BYTES) < 0)
		goto err;
	m = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_NORESERVE, p->arena_fd, 0);
	if (m == MAP_FAILED)
		goto err;
	p->arena = m;
	p->arena_frames = ARENA_BYTES >> PAGE_SHIFT;
	return 0;
err:
	close(p->arena_fd);
	p->arena_fd = -1;
	return -ENOMEM;
}

/**
 * arena_alloc() - one zeroed 4K page from outside the pool (policy 4k).
 * @data: receives its address (NULL for backing none).
 * Return: 0 or -ENOMEM.
 */
int arena_alloc(struct gpool *p, uint8_t **data)
{
	int ret = 0;

	*data = NULL;
	if (p->backing == GMEM_BACKING_NONE)
		return 0;
	pthread_mutex_lock(&p->lock);
	if (!p->arena && (ret = arena_init(p)))
		goto out;
	if (p->arena_nr_free) {
		*data = p->arena + (p->arena_free[--p->arena_nr_free] << PAGE_SHIFT);
		goto out;
	}
	if (p->arena_next == p->arena_frames) {
		ret = -ENOMEM;
		goto out;
	}
	/* Room on the free stack for every frame handed out, so freeing
	 * never needs memory. */
	if (p->arena_next == p->arena_cap_free) {
		uint64_t cap = p->arena_cap_free ? p->arena_cap_free * 2 : 1024;
		uint64_t *n = gmem_alloc(cap * sizeof(uint64_t));

		if (!n) {
			ret = -ENOMEM;
			goto out;
		}
		if (p->arena_free)
			memcpy(n, p->arena_free, p->arena_nr_free * sizeof(uint64_t));
		gmem_free(p->arena_free, p->arena_cap_free * sizeof(uint64_t));
		p->arena_free = n;
		p->arena_cap_free = cap;
	}
	*data = p->arena + (p->arena_next++ << PAGE_SHIFT);
out:
	pthread_mutex_unlock(&p->lock);
	return ret;
}

void arena_free(struct gpool *p, uint8_t *data)
{
	if (!data)
		return;
	/* a freed frame must read zero when reused, and its memory go back */
	if (!p->tearing_down)
		fallocate(p->arena_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)(data - p->arena), (off_t)PAGE_SIZE);
	pthread_mutex_lock(&p->lock);
	p->arena_free[p->arena_nr_free++] = (uint64_t)(data - p->arena) >> PAGE_SHIFT;
	pthread_mutex_unlock(&p->lock);
}
