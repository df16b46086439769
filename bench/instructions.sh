#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/instructions.sh [BUILD] - instructions per gmem_pin()+gmem_unpin()
# pair of one mapped page (the fast path), counted by callgrind inside
# those two calls only (--toggle-collect), over 100,000 pairs.  A count,
# unlike a time, is the same on every run.  Exit 77 without valgrind.
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
n=100000
if ! command -v valgrind >/dev/null 2>&1; then
	echo "instructions: skipped: valgrind is not installed"
	exit 77
fi
out=$(mktemp "${TMPDIR:-/tmp}/gmem-callgrind.XXXXXX")
trap 'rm -f "$out"' EXIT
valgrind -q --tool=callgrind --callgrind-out-file="$out" \
	--toggle-collect=gmem_pin --toggle-collect=gmem_unpin \
	"$build/bench/pinloop" "$n" >/dev/null
total=$(sed -n 's/^summary: //p' "$out" | awk '{print $1}')
# the warm-up pair is collected too
echo "instructions per pin+unpin: $(( total / (n + 1) )) ($total over $((n + 1)) pairs, callgrind)"
