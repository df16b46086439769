// SPDX-License-Identifier: MIT
/*
 * hostmem.c - the host address of a file's memory, for a VMM.
 *
 * A VMM that runs a real guest on a gmem file (`gmem vm`) hands KVM the
 * host addresses of the file's memory as memory slots, as a VMM hands KVM
 * the userspace address of a guest_memfd-less memslot.  gmem_file_hva()
 * gives the address of the real bytes behind an offset and how far they
 * run contiguously: to the end of the huge page (a 4K frame of the arena
 * under policy 4k).  It allocates a hole as a guest access does, so that
 * the address exists before the guest first touches the page, and it
 * takes no folio reference: like KVM's stage-2 map it is invalidated, not
 * waited for (the address stays good while the memory stays in the file).
 */
#include "internal.h"

/*
 * The piece of page @pg's memory that starts at @off: up to the end of its
 * huge page, or of its 4K frame under policy 4k.  Context: file lock.
 */
static void hva_piece(struct gfile *f, struct gfolio *fo, uint64_t off,
		      void **addr, uint64_t *len)
{
	if (!fo->huge) {
		uint64_t in = off & (PAGE_SIZE - 1);

		*addr = fo->data + in;
		*len = PAGE_SIZE - in;
		return;
	}
	uint64_t in = off - (fo->huge->index << PAGE_SHIFT);

	*addr = fo->huge->data + in;
	*len = f->pool->page_size - in;
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
	if (!ret)
		hva_piece(f, fo, off, addr, len);
	pthread_mutex_unlock(&f->lock);
out:
	invalidate_unlock_shared(f);
	return ret;
}
