// SPDX-License-Identifier: MIT
/*
 * hostmem.c - the host address of a file's memory, for a VMM.
 *
 * A VMM that runs a real guest on a gmem file (`gmem vm`) hands KVM the
 * host addresses of the file's memory as memory slots, as a VMM hands KVM
 * the userspace address of a guest_memfd-less memslot.  It wants one slot
 * per file, but the pool hands out its huge pages in whatever order they
 * are free, so the pool's own mapping of a file's pages is scattered.
 *
 * So each file of a huge-page policy has a host range of its own (the
 * file's hva): @size bytes of address space reserved PROT_NONE when the
 * file is created, aligned to the pool's page size.  A huge page that the
 * file gets is mapped into it at its file offset, MAP_SHARED | MAP_FIXED
 * from the pool's fd at the page's frame (a frame offset is a multiple of
 * the huge page size, as hugetlbfs wants); a page that leaves the file
 * (punch, retirement after poison, a failing call's undo) goes back to
 * PROT_NONE, and at close the whole range goes.  The range is an alias: the library's own accesses
 * go through the pool's mapping, and both name the same memory.
 *
 * Policy 4k has no range: its 4K frames come from the arena, and a range
 * mapping each frame at its offset would cost a kernel mapping per frame
 * (the process's map count is limited: 65530 by default).  gmem_file_hva()
 * gives it the frame, as before.  A pool without memory (backing none) has
 * no fd to map: no range, and gmem_file_hva() says -ENXIO.
 *
 * gmem_file_hva() allocates a hole at the offset asked, as a guest access
 * does, so that the address exists before the guest first touches the
 * page, and it takes no folio reference: like KVM's stage-2 map it is
 * invalidated, not waited for.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

/**
 * hva_reserve() - reserve @f's host range (huge policies, a pool with
 * memory; nothing otherwise).
 * Context: file creation, before the file is listed.
 * Return: 0 or -ENOMEM (no address space).
 */
int hva_reserve(struct gfile *f)
{
	struct gpool *p = f->pool;
	size_t len = (size_t)f->size, ps = (size_t)p->page_size;
	uint8_t *raw, *a;

	if (f->policy == GMEM_POLICY_4K || p->fd < 0)
		return 0;
	if (gmem_inject_should_fail())
		return -ENOMEM;
	raw = mmap(NULL, len + ps, PROT_NONE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (raw == MAP_FAILED)
		return -ENOMEM;
	a = (uint8_t *)(((uintptr_t)raw + ps - 1) & ~(uintptr_t)(ps - 1));
	if (a > raw)
		munmap(raw, (size_t)(a - raw));
	if (raw + len + ps > a + len)
		munmap(a + len, (size_t)(raw + len + ps - (a + len)));
	f->hva = a;
	return 0;
}

/**
 * hva_release() - give @f's host range back: at close, before its pages
 * leave (so none is remapped PROT_NONE one by one), or when creation fails.
 * Context: invalidate lock exclusive and file lock, or a file not listed.
 */
void hva_release(struct gfile *f)
{
	if (!f->hva)
		return;
	munmap(f->hva, (size_t)f->size);
	f->hva = NULL;
}

/* Back to PROT_NONE: the bytes of @h's range name no memory. */
static void hva_reset(struct gfile *f, struct ghuge *h)
{
	uint8_t *a = f->hva + (h->index << PAGE_SHIFT);
	size_t ps = (size_t)f->pool->page_size;

	if (mmap(a, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
		/* no memory for the new mapping (the map count): at least
		 * no access; gmem_check() reports what is left */
		mprotect(a, ps, PROT_NONE);
}

/**
 * hva_map() - map huge page @h, which the file is getting, at its offset
 * in the file's range.
 * Context: file lock, @h not yet in huge[] (or just put there).
 * Return: 0 or -ENOMEM (nothing mapped).
 */
int hva_map(struct gfile *f, struct ghuge *h)
{
	struct gpool *p = f->pool;
	void *m;

	if (!f->hva)
		return 0;
	if (gmem_inject_should_fail())
		return -ENOMEM;
	m = mmap(f->hva + (h->index << PAGE_SHIFT), (size_t)p->page_size,
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE,
		 p->fd, (off_t)(h->pfn * p->page_size));
	if (m == MAP_FAILED) {
		/* a failing MAP_FIXED may have taken the reservation away */
		hva_reset(f, h);
		return -ENOMEM;
	}
	return 0;
}

/**
 * hva_unmap() - huge page @h leaves the file: its part of the range goes
 * back to PROT_NONE (KVM, told by the kernel's MMU notifier, drops what
 * it mapped there).
 * Context: invalidate lock exclusive (or the allocating call's own undo),
 * file lock.
 */
void hva_unmap(struct gfile *f, struct ghuge *h)
{
	if (f->hva)
		hva_reset(f, h);
}

/* The maps line's fields that hva_ok() needs. */
struct maps_line {
	uintptr_t start, end;
	char perms[8];
	uint64_t off;
	unsigned int maj, min;
	uint64_t ino;
};

/*
 * One line of /proc/self/maps against @f's range: every huge page in
 * huge[] is the pool's fd at its frame, read-write shared; every hole is
 * PROT_NONE and no file's.  @next: where the range is covered up to.
 */
static bool hva_line_ok(struct gfile *f, const struct maps_line *l,
			const struct stat *st, uintptr_t *next, char *why,
			size_t len)
{
	uintptr_t lo = (uintptr_t)f->hva, hi = lo + f->size;
	uint64_t ps = f->pool->page_size;
	uintptr_t s = MAX(l->start, lo), e = MIN(l->end, hi);

	if (l->end <= lo || l->start >= hi)
		return true;
	if (s != *next) {
		snprintf(why, len, "hva: range offset 0x%llx unmapped",
			 (unsigned long long)(*next - lo));
		return false;
	}
	if ((s - lo) % ps || (e - lo) % ps) {
		snprintf(why, len, "hva: a mapping ends inside the huge page "
			 "at 0x%llx", (unsigned long long)(ALIGN_DOWN(
			 ((s - lo) % ps ? s : e) - lo, ps)));
		return false;
	}
	for (uintptr_t a = s; a < e; a += ps) {
		struct ghuge *h = f->huge[(a - lo) / ps];
		bool ok;

		if (h)
			ok = !strcmp(l->perms, "rw-s") && l->ino == st->st_ino &&
			     l->maj == major(st->st_dev) &&
			     l->min == minor(st->st_dev) &&
			     l->off + (a - l->start) == h->pfn * ps;
		else
			ok = !strcmp(l->perms, "---p") && l->ino == 0;
		if (!ok) {
			snprintf(why, len, "hva: offset 0x%llx maps %s 0x%llx "
				 "(%s), wanted %s", (unsigned long long)(a - lo),
				 l->ino ? "file offset" : "anonymous",
				 (unsigned long long)(l->off + (a - l->start)),
				 l->perms, h ? "the pool's page" : "PROT_NONE");
			return false;
		}
	}
	*next = e;
	return true;
}

/**
 * hva_ok() - the validator of the file's range, from the kernel's own
 * account (/proc/self/maps): the whole range is there, each attached huge
 * page mapped at its offset from the pool's fd at its frame, each hole
 * PROT_NONE.  Only this file's range is read: other files' ranges change
 * meanwhile, and the kernel lists the mappings in address order, resuming
 * by address between reads.  Without /proc it checks nothing.
 * Context: invalidate lock exclusive, file lock (the range cannot change).
 */
bool hva_ok(struct gfile *f, char *why, size_t len)
{
	uintptr_t lo = (uintptr_t)f->hva, next = lo;
	char buf[4096];
	size_t have = 0;
	struct stat st;
	bool ok = true, eof = false;
	int fd;

	if (!f->hva)
		return true;
	if (fstat(f->pool->fd, &st) < 0)
		return true;
	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	while (ok && !eof) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);
		char *line = buf, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			eof = true;
			if (!have)
				break;
			buf[have++] = '\n';	/* the last line, unterminated */
		} else {
			have += (size_t)n;
		}
		buf[have] = 0;
		while (ok && (nl = strchr(line, '\n'))) {
			struct maps_line l;
			unsigned long long st_, en, off, ino;

			*nl = 0;
			if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &st_,
				   &en, l.perms, &off, &l.maj, &l.min,
				   &ino) == 7) {
				l.start = (uintptr_t)st_;
				l.end = (uintptr_t)en;
				l.off = off;
				l.ino = ino;
				if (l.start >= lo + f->size)
					eof = true;	/* past the range */
				else
					ok = hva_line_ok(f, &l, &st, &next,
							 why, len);
			}
			line = nl + 1;
			if (eof)
				break;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (have == sizeof(buf) - 1)
			have = 0;	/* no line is this long */
	}
	close(fd);
	if (ok && next != lo + f->size) {
		snprintf(why, len, "hva: range offset 0x%llx unmapped",
			 (unsigned long long)(next - lo));
		ok = false;
	}
	return ok;
}

int gmem_file_hva(struct gmem_file *file, uint64_t off, void **addr,
		  uint64_t *len)
{
	struct gfile *f = to_file(file);
	struct gfolio *fo;
	int ret;

	if (!file || !addr || !len)
		return -EINVAL;
	ret = file_enter_shared(f, handle_gen(file));
	if (ret)
		return ret;
	if (off >= f->size) {
		ret = -EINVAL;
		goto out;
	}
	if (f->pool->backing == GMEM_BACKING_NONE) {
		ret = -ENXIO;
		goto out;
	}
	pthread_mutex_lock(&f->lock);
	ret = folio_get_or_alloc(f, off >> PAGE_SHIFT, &fo, NULL);
	if (!ret && f->hva) {
		*addr = f->hva + off;
		*len = f->size - off;
	} else if (!ret) {
		/* policy 4k: the 4K frame */
		*addr = fo->data + (off & (PAGE_SIZE - 1));
		*len = PAGE_SIZE - (off & (PAGE_SIZE - 1));
	}
	pthread_mutex_unlock(&f->lock);
out:
	invalidate_unlock_shared(f);
	return ret;
}
