#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/vm/guest-code.sh BUILD - the guest program's bytes are what their
# comments in tools/vm_guest.c say: objdump's disassembly of `gmem vm
# --dump-guest` equals the "OFFSET INSTRUCTION" of each comment.  Needs
# no KVM; needs objdump (binutils).

set -u
gmem=${1:-build}/gmem
src=$(dirname "$0")/../../tools/vm_guest.c
if ! command -v objdump >/dev/null 2>&1; then
	echo "skipped: objdump (binutils) is needed to disassemble the guest"
	exit 77
fi
bin=$(mktemp "${TMPDIR:-/tmp}/gmem-guest.XXXXXX") || exit 2
trap 'rm -f "$bin" "$bin".want "$bin".got' EXIT
"$gmem" vm --dump-guest >"$bin" || { echo "FAIL: --dump-guest"; exit 1; }

# "   1e:	eb e0                	jmp    0x0" -> "1e jmp 0x0"
objdump -D -b binary -m i386 -M intel "$bin" |
	sed -n 's/^ *\([0-9a-f]*\):\t[0-9a-f ]*\t\(.*\)$/\1 \2/p' |
	awk '{ if (length($1) < 2) $1 = "0" $1; gsub(/ +/, " "); print }' |
	sed 's/ *$//' >"$bin".got
# "	0xeb, 0xe0,   /* 1e jmp 0x0 -- loop */" -> "1e jmp 0x0"
sed -n 's#^\t0x.*/\* \([0-9a-f][0-9a-f] [^*]*\) \*/$#\1#p' "$src" |
	sed 's/ -- .*$//; s/  */ /g; s/ *$//' >"$bin".want
if [ ! -s "$bin".want ] || ! diff -u "$bin".want "$bin".got; then
	echo "FAIL: tools/vm_guest.c's comments do not match its bytes"
	exit 1
fi
echo "ok: $(wc -l <"$bin".want) instructions"
