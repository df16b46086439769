#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/ship/man3.sh BUILD - the per-function pages man/man3/ are what
# `make man` (man/kdoc2man.py on include/gmem.h) makes now, so they never
# go stale; every exported symbol (tests/ship/symbols.txt) has a page or a
# .so link to one; each renders with `man -l` without a warning.

set -u
cd "$(dirname "$0")/../.." || exit 2
if ! command -v python3 >/dev/null 2>&1; then
	echo "skipped: python3 is not installed (it makes the pages)"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmem-man3.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
fails=0

if ! python3 man/kdoc2man.py include/gmem.h "$tmp/man3" >"$tmp/log" 2>&1; then
	echo "man/kdoc2man.py failed:"
	cat "$tmp/log"
	exit 1
fi
if ! diff -r "$tmp/man3" man/man3 >"$tmp/diff" 2>&1; then
	echo "man/man3/ differs from what gmem.h makes now (run make man):"
	head -n 40 "$tmp/diff"
	fails=$((fails + 1))
fi
while read -r s; do
	page=man/man3/$s.3
	if [ ! -e "$page" ]; then
		echo "$s has no page ($page)"
		fails=$((fails + 1))
		continue
	fi
	target=$(sed -n 's/^\.so man3\/\(.*\)$/\1/p' "$page")
	if [ -n "$target" ] && [ ! -e "man/man3/$target" ]; then
		echo "$page links to man3/$target, which does not exist"
		fails=$((fails + 1))
	fi
done < <(grep -v '^#' tests/ship/symbols.txt)
if command -v man >/dev/null 2>&1; then
	for page in man/man3/*.3; do
		# from man/, where a .so link's man3/ path resolves
		warn=$(cd man && MANWIDTH=80 man --warnings -l "man3/${page##*/}" \
			2>&1 >/dev/null)
		if [ -n "$warn" ]; then
			echo "$page:"
			echo "$warn"
			fails=$((fails + 1))
		fi
	done
fi
[ "$fails" -eq 0 ]
