#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/ship/man.sh - every man page renders with `man -l` without a
# warning, gmem(1) names every subcommand that `gmem --help` lists, and
# gmem-trace(5) every command of the trace language (tools/trace.c's
# table of commands).

set -u
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 2
if ! command -v man >/dev/null 2>&1; then
	echo "skipped: man is not installed (apt-get install man-db)"
	exit 77
fi
fails=0
for page in man/*.[1-8]; do
	warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
	if [ -n "$warn" ]; then
		echo "$page:"
		echo "$warn"
		fails=$((fails + 1))
	fi
	if [ "$(MANWIDTH=80 man -l "$page" 2>/dev/null | wc -l)" -lt 20 ]; then
		echo "$page renders to almost nothing"
		fails=$((fails + 1))
	fi
done
for cmd in $("$build/gmem" --help | awk '/^commands:/ { on = 1; next }
	on && /^  [a-z]/ { print $1 }'); do
	if ! grep -q "^\.SS $cmd\$" man/gmem.1; then
		echo "gmem(1) does not describe '$cmd'"
		fails=$((fails + 1))
	fi
done
for cmd in $(grep -oP '^\t\{ "\K[a-z]+(?=",( "|$))' tools/trace.c) expect; do
	if ! grep -q "^\.BI\? \"\?$cmd\b" man/gmem-trace.5; then
		echo "gmem-trace(5) does not describe '$cmd'"
		fails=$((fails + 1))
	fi
done
[ "$fails" -eq 0 ]
