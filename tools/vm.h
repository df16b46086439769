/* SPDX-License-Identifier: MIT */
/*
 * vm.h - `gmem vm`, a real KVM guest on a gmem file (vm.c), and the
 * interface between the host and the guest program (vm_guest.c).
 *
 * The guest program walks a script of 32-byte entries that the host wrote
 * into guest memory.  It reaches the host through two I/O ports:
 *
 *   VM_PORT_HCALL  out: a request, eax = VM_HC_*, ebx = offset,
 *                  ecx = length, edx = argument; then in: the answer.
 *   VM_PORT_REPORT out: the outcome of one entry, eax = status (0 ok,
 *                  1 failed), ebx = the entry's guest address, ecx = the
 *                  detail (first bad address, or the hypercall's answer),
 *                  edx = what the guest found (or expected).
 *
 * Guest physical address = file offset.
 */
#ifndef GMEM_VM_H
#define GMEM_VM_H

#include <stddef.h>
#include <stdint.h>

#define VM_PORT_HCALL	0x10
#define VM_PORT_REPORT	0x11

/* Script ops (entry.op). */
enum vm_op {
	VM_OP_END = 0,		/* halt */
	VM_OP_FILL = 1,		/* dword at a := (a & a2) ^ a1, for `count`
				 * dwords from off, `stride` bytes apart */
	VM_OP_CHECK = 2,	/* the same, compared; the first mismatch fails */
	VM_OP_HCALL = 3,	/* hypercall a1 with argument a2; answer == expect */
};

/* Hypercalls (eax of an out to VM_PORT_HCALL). */
enum vm_hcall {
	VM_HC_CONVERT = 1,	/* edx: VM_HC_TO_SHARED | VM_HC_ZERO */
	VM_HC_DEV_READ = 2,	/* the device reads the range: pattern edx */
	VM_HC_DEV_WRITE = 3,	/* the device writes pattern edx there */
};

#define VM_HC_TO_SHARED	(1U << 0)
#define VM_HC_ZERO	(1U << 1)

/* Answers besides 0 and a negative errno. */
#define VM_ANS_SIGBUS	1	/* a host access got SIGBUS (GMEM_SIGBUS) */
#define VM_ANS_MISMATCH	2	/* the device read other data than expected */

/*
 * One script entry, as the guest reads it (little-endian dwords).  FILL
 * and CHECK cover [off, off + len) with count dwords stride bytes apart
 * (stride 4: every dword; at most 4096, so that every page is touched).
 */
struct vm_entry {
	uint32_t op, off, len, a1, a2, expect, stride, count;
};

/* The guest program (vm_guest.c): 32-bit protected mode, flat segments,
 * no paging; it starts with esi = the script's guest address. */
extern const uint8_t vm_guest_code[];
extern const size_t vm_guest_code_len;

/* The subcommand's entry: argv[0] is "vm"; returns the exit code. */
int vm_main(int argc, char **argv);

/* What `gmem vm --help` prints after the usage line. */
extern const char vm_help[];

#endif /* GMEM_VM_H */
