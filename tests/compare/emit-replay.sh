#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/compare/emit-replay.sh BUILD - every workload under every policy,
# written as a trace by `gmem compare --emit-trace` (small sizes), must
# replay with every `expect` holding: the trace ends with the run's
# statistics and `check`, so the run and its trace agree on every counter.
# Metadata only (--backing none): no workload's trace reads content.

set -u
gmem=${1:-build}/gmem
if grep -qs fsanitize=thread "${1:-build}/.flags"; then
	echo "skipped: under ThreadSanitizer: each emit and each replay is one thread of one process, nothing for it to check (make check and make asan run this)"
	exit 77
fi
fails=0
runs=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmem-emit.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

for w in tdx-boot snp-boot vfio-snp io-churn pkvm-io vfio-longterm balloon \
	scale; do
	case $w in
	pkvm-io | balloon) size=64M ;;
	io-churn) size=2G ;;
	snp-boot) size=3G ;;	# RAM above 4 GiB, accepted lazily
	*) size=1G ;;
	esac
	# b-adaptive:N runs with merge delay N, so that merges wait and
	# happen within the short run too
	for pd in 4k a b-eager b-lazy b-adaptive b-adaptive:4; do
		p=${pd%%:*}
		delay=()
		[ "$p" != "$pd" ] && delay=(--merge-delay "${pd#*:}")
		t=$tmp/$w-$pd.trace
		runs=$((runs + 1))
		if ! "$gmem" compare --workload "$w" --policy "$p" \
			--guest-size "$size" --ops 400 --seed 7 --backing none \
			"${delay[@]}" --emit-trace "$t"; then
			echo "emit failed: $w $pd"
			fails=$((fails + 1))
			continue
		fi
		if ! grep -q '^stats g ' "$t"; then
			echo "no stats line in the trace of $w $pd"
			fails=$((fails + 1))
			continue
		fi
		if ! "$gmem" replay "$t" >"$tmp/out" 2>&1; then
			echo "replay of $w $pd failed:"
			tail -n 3 "$tmp/out"
			fails=$((fails + 1))
		fi
	done
done
echo "$((runs - fails)) of $runs emitted traces replay"
[ "$fails" -eq 0 ]
