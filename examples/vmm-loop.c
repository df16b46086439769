// SPDX-License-Identifier: MIT
/*
 * vmm-loop.c - a VMM's conversion loop on libgmem.
 *
 * A confidential guest asks its VMM, by hypercall, to convert ranges of its
 * memory between private and shared; the VMM does I/O on the shared pages
 * by pinning them.  Here the "hypercalls" are a fixed list, and the I/O is
 * a write through the pin's page pointers.  It shows the three answers a
 * VMM must handle:
 *   0        the range is converted;
 *   -EAGAIN  a short-term pin (I/O in flight) is in the way: finish the I/O
 *            (unpin), then retry; error_offset says where;
 *   -EBUSY   a long-term pin is in the way: tell the guest it failed.
 *
 * Build: cc vmm-loop.c $(pkg-config --cflags --libs gmem) -o vmm-loop
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmem.h>

#define GUEST_SIZE	(64ULL << 20)	/* 32 huge pages of 2 MiB */

struct request {
	uint64_t off, len;
	enum gmem_attr to;
};

/* What the guest asks for, in order (a virtio driver's buffers). */
static const struct request script[] = {
	{ 0x200000, 0x10000, GMEM_SHARED },	/* a 64K I/O buffer */
	{ 0x200000, 0x1000, GMEM_PRIVATE },	/* takes one page back early */
	{ 0x201000, 0xf000, GMEM_PRIVATE },	/* and the rest */
};

static int die(const char *what, int err)
{
	fprintf(stderr, "vmm-loop: %s: %s\n", what, gmem_errno_name(err));
	exit(1);
}

int main(void)
{
	struct gmem_pool *pool;
	struct gmem_file *guest;
	struct gmem_mm *vmm;
	uint64_t pin = 0, at;
	int ret, pinned = 0;
	void *pages[16];

	ret = gmem_pool_create(GMEM_2M, GUEST_SIZE / GMEM_2M,
			       GMEM_BACKING_AUTO, &pool);
	if (ret)
		die("pool", ret);
	/* a private guest; policy b-lazy splits only as far as needed */
	ret = gmem_file_create(pool, GUEST_SIZE, GMEM_POLICY_B_LAZY, 0, &guest);
	if (ret)
		die("file", ret);
	/* the VMM's own address space, mapping the guest's memory */
	if ((ret = gmem_mm_create(pool, NULL, &vmm)) ||
	    (ret = gmem_mmap(vmm, guest)))
		die("mm", ret);

	for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
		const struct request *r = &script[i];

		ret = gmem_convert(guest, r->off, r->len, r->to, 0, 0, &at);
		if (ret == -EAGAIN && pinned) {
			printf("convert 0x%" PRIx64 ": EAGAIN at 0x%" PRIx64
			       " (I/O in flight): completing it, retrying\n",
			       r->off, at);
			gmem_unpin(pool, pin);
			pinned = 0;
			ret = gmem_convert(guest, r->off, r->len, r->to, 0, 0,
					   &at);
		}
		if (ret)
			die("convert", ret);
		printf("convert 0x%" PRIx64 "+0x%" PRIx64 " to %s: ok\n",
		       r->off, r->len, r->to == GMEM_SHARED ? "shared" : "private");

		if (r->to == GMEM_SHARED) {
			/* the device's I/O: a short-term pin, then DMA */
			ret = gmem_pin(vmm, guest, r->off, r->len, 0, &pin, pages);
			if (ret)
				die("pin", ret);
			pinned = 1;
			for (uint64_t p = 0; p < r->len / GMEM_PAGE_SIZE; p++)
				if (pages[p])	/* NULL without real memory */
					memset(pages[p], 0xab, GMEM_PAGE_SIZE);
			printf("pinned 0x%" PRIx64 "+0x%" PRIx64
			       " for I/O; the I/O is still in flight\n",
			       r->off, r->len);
		}
	}
	if (pinned)
		gmem_unpin(pool, pin);

	/* a private page is never the host's: its access is SIGBUS */
	uint8_t byte;

	ret = gmem_host_read(vmm, guest, 0x200000, &byte);
	printf("host read of a private page: %s\n",
	       ret == GMEM_SIGBUS ? "SIGBUS" : "allowed (a bug!)");
	gmem_pool_destroy(pool);
	return ret == GMEM_SIGBUS ? 0 : 1;
}
