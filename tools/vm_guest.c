// SPDX-License-Identifier: MIT
/*
 * vm_guest.c - the guest program of `gmem vm`, as bytes.
 *
 * x86 32-bit protected-mode code (the host sets flat 4 GiB segments with
 * KVM_SET_SREGS and CR0.PE=1, no paging), hand-assembled: one instruction
 * a line, with its offset and Intel-syntax disassembly in the comment,
 * exactly as `objdump -D -b binary -m i386 -M intel` prints these bytes
 * (tests/vm/guest-code.sh checks that).  Written as bytes rather than
 * assembled by the build, so that building gmem needs no assembler and
 * the program is the same whatever the compiler.
 *
 * It walks the script at esi (struct vm_entry, 32 bytes each, vm.h): FILL
 * writes a dword pattern at every stride-th byte, CHECK compares one,
 * HCALL asks the host (out to
 * VM_PORT_HCALL, then in for the answer) and compares the answer with the
 * entry's expected one.  After every entry it reports to VM_PORT_REPORT;
 * END halts.  It uses no stack and no memory of its own.
 */
#include "vm.h"

const uint8_t vm_guest_code[] = {
	0x8b, 0x06,                    /* 00 mov eax,DWORD PTR [esi] -- op = entry[0] */
	0x8b, 0x5e, 0x04,              /* 02 mov ebx,DWORD PTR [esi+0x4] -- off = entry[1] */
	0x8b, 0x4e, 0x08,              /* 05 mov ecx,DWORD PTR [esi+0x8] -- len = entry[2] */
	0x8b, 0x56, 0x0c,              /* 08 mov edx,DWORD PTR [esi+0xc] -- a1 = entry[3]: seed, or hypercall */
	0x8b, 0x6e, 0x10,              /* 0b mov ebp,DWORD PTR [esi+0x10] -- a2 = entry[4]: mask, or argument */
	0x83, 0xf8, 0x01,              /* 0e cmp eax,0x1 -- op FILL? */
	0x74, 0x0d,                    /* 11 je 0x20 */
	0x83, 0xf8, 0x02,              /* 13 cmp eax,0x2 -- op CHECK? */
	0x74, 0x21,                    /* 16 je 0x39 */
	0x83, 0xf8, 0x03,              /* 18 cmp eax,0x3 -- op HCALL? */
	0x74, 0x42,                    /* 1b je 0x5f */
	0xf4,                          /* 1d hlt -- END (or unknown op): stop */
	0xeb, 0xe0,                    /* 1e jmp 0x0 -- resumed after a halt: go on */
	0x89, 0xdf,                    /* 20 mov edi,ebx -- FILL: edi = off */
	0x8b, 0x5e, 0x18,              /* 22 mov ebx,DWORD PTR [esi+0x18] -- ebx = entry[6]: stride */
	0x8b, 0x4e, 0x1c,              /* 25 mov ecx,DWORD PTR [esi+0x1c] -- ecx = entry[7]: dwords */
	0x89, 0xf8,                    /* 28 mov eax,edi -- value = (addr & mask) ^ seed */
	0x21, 0xe8,                    /* 2a and eax,ebp */
	0x31, 0xd0,                    /* 2c xor eax,edx */
	0x89, 0x07,                    /* 2e mov DWORD PTR [edi],eax -- store it */
	0x01, 0xdf,                    /* 30 add edi,ebx -- next sample */
	0x49,                          /* 32 dec ecx */
	0x75, 0xf3,                    /* 33 jne 0x28 -- until ecx == 0 */
	0x31, 0xc0,                    /* 35 xor eax,eax -- status 0: done */
	0xeb, 0x3a,                    /* 37 jmp 0x73 */
	0x89, 0xdf,                    /* 39 mov edi,ebx -- CHECK: edi = off */
	0x8b, 0x5e, 0x18,              /* 3b mov ebx,DWORD PTR [esi+0x18] -- ebx = entry[6]: stride */
	0x8b, 0x4e, 0x1c,              /* 3e mov ecx,DWORD PTR [esi+0x1c] -- ecx = entry[7]: dwords */
	0x89, 0xf8,                    /* 41 mov eax,edi -- expected = (addr & mask) ^ seed */
	0x21, 0xe8,                    /* 43 and eax,ebp */
	0x31, 0xd0,                    /* 45 xor eax,edx */
	0x39, 0x07,                    /* 47 cmp DWORD PTR [edi],eax -- compare with memory */
	0x75, 0x09,                    /* 49 jne 0x54 -- first mismatch: report it */
	0x01, 0xdf,                    /* 4b add edi,ebx -- next sample */
	0x49,                          /* 4d dec ecx */
	0x75, 0xf1,                    /* 4e jne 0x41 -- until ecx == 0 */
	0x31, 0xc0,                    /* 50 xor eax,eax -- status 0: passed */
	0xeb, 0x1f,                    /* 52 jmp 0x73 */
	0x89, 0xf9,                    /* 54 mov ecx,edi -- detail = the bad address */
	0x8b, 0x17,                    /* 56 mov edx,DWORD PTR [edi] -- got = what memory holds */
	0xb8, 0x01, 0x00, 0x00, 0x00,  /* 58 mov eax,0x1 -- status 1: failed */
	0xeb, 0x14,                    /* 5d jmp 0x73 */
	0x89, 0xd0,                    /* 5f mov eax,edx -- HCALL: eax = hypercall number */
	0x89, 0xea,                    /* 61 mov edx,ebp -- edx = arg (ebx = off, ecx = len) */
	0xe7, 0x10,                    /* 63 out 0x10,eax -- request to the host */
	0xe5, 0x10,                    /* 65 in eax,0x10 -- the host's answer */
	0x89, 0xc1,                    /* 67 mov ecx,eax -- detail = the answer */
	0x8b, 0x56, 0x14,              /* 69 mov edx,DWORD PTR [esi+0x14] -- edx = entry[5], expected */
	0x31, 0xc0,                    /* 6c xor eax,eax -- status 0 ... */
	0x39, 0xd1,                    /* 6e cmp ecx,edx -- ... if the answer is expected */
	0x74, 0x01,                    /* 70 je 0x73 */
	0x40,                          /* 72 inc eax -- status 1 otherwise */
	0x89, 0xf3,                    /* 73 mov ebx,esi -- report: ebx = entry address */
	0xe7, 0x11,                    /* 75 out 0x11,eax -- status in eax */
	0x83, 0xc6, 0x20,              /* 77 add esi,0x20 -- next entry (32 bytes) */
	0xeb, 0x84,                    /* 7a jmp 0x0 -- loop */
};

const size_t vm_guest_code_len = sizeof(vm_guest_code);
