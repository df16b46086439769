#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/compare/plot.sh BUILD - `gmem compare --plot DIR` has gnuplot write
# its three PNG plots, each a real PNG with one bar group per run.

set -u
gmem=${1:-build}/gmem
if ! command -v gnuplot >/dev/null 2>&1; then
	echo "skipped: gnuplot is not installed (apt-get install gnuplot-nox)"
	exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/gmem-plot.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT

"$gmem" compare --quiet --workload pkvm-io --guest-size 64M --ops 200 \
	--plot "$dir/p" >/dev/null || exit 1
fails=0
for f in coverage metadata latency; do
	# a PNG starts with the bytes 0x89 'P' 'N' 'G'
	if [ "$(head -c 4 "$dir/p/$f.png" 2>/dev/null | od -An -c | tr -d ' ')" != '211PNG' ]; then
		echo "$f.png is missing or not a PNG"
		fails=$((fails + 1))
	fi
done
rows=$(grep -c '^"pkvm-io/' "$dir/p/compare.dat")
if [ "$rows" != 5 ]; then
	echo "compare.dat has $rows rows, wanted one per policy (5)"
	fails=$((fails + 1))
fi
[ "$fails" -eq 0 ]
