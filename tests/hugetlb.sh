#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/hugetlb.sh [BUILD] - the tests again on real hugetlbfs, beside a
# process that takes every free huge page (make check-hugetlb).
#
# Runs the unit tests, the traces (tests/traces and examples/) and short
# 2 MiB stress runs through tests/run.sh with
#   GMEM_TEST_BACKING=hugetlb   every pool that asks for backing memfd or
#                               auto is made on hugetlbfs, no fallback
#                               (backing none, and the userfaultfd views,
#                               which need a plain memfd, stay as they are);
#   GMEM_TEST_HOG=1             while such a pool exists, a hog process
#                               takes every free huge page of its size that
#                               nobody reserved (tools/hog.h), so that a
#                               page the pool gives back to the host is
#                               gone at once and the pool's next use of it
#                               dies with SIGBUS.
# One line per test as tests/run.sh prints them, last "N passed, N
# failed" (", N skipped" when some were).  Exit 1 if any test failed.
#
# Huge pages: HUGETLB_2M (default 128) free 2 MiB pages and HUGETLB_1G
# (default 4) free 1 GiB pages; the tests need at most 70 and 4.  As root
# the script raises nr_hugepages by what is missing, sets
# nr_overcommit_hugepages to 0 (a surplus page would hide a lost one), and
# puts both back when it ends, however it ends (EXIT, INT, TERM).  If the
# kernel gives fewer pages than asked, it says so and runs anyway: a test
# whose pool needs more fails (exit 3, with the counts); for 1 GiB pages,
# which need a contiguous GiB of physical memory that a long-running host
# may no longer have, it says so in one line and forces 2 MiB pools only
# instead.  Without 1 GiB hugetlb (no hugepages-1048576kB in sysfs), or
# not root and fewer 1 GiB pages reserved than asked, the same.  Without
# 2 MiB hugetlb, or not root and too few 2 MiB pages, the
# whole run is skipped with a one-line reason.  The stress program runs on
# 2 MiB pages only: its pool has 54 huge pages (70 with -P; 58 for the
# b-adaptive run with -P), 54 GiB in 1 GiB pages.
#
# While it runs, the hog takes every free huge page of the host: do not
# run it beside anything that needs them.

set -u
cd "$(dirname "$0")/.." || exit 2

build=${1:-${BUILD:-build}}
want_2m=${HUGETLB_2M:-128}
want_1g=${HUGETLB_1G:-4}
sysfs=/sys/kernel/mm/hugepages
dir_2m=$sysfs/hugepages-2048kB
dir_1g=$sysfs/hugepages-1048576kB
root=false
[ "$(id -u)" -eq 0 ] && root=true

# ------------------------------------------------ host settings, restored

saved=()	# "FILE=VALUE" to write back at exit
restore() {
	local e f v
	for e in ${saved[@]+"${saved[@]}"}; do
		f=${e%%=*}
		v=${e#*=}
		[ "$(cat "$f" 2>/dev/null)" = "$v" ] || echo "$v" >"$f" 2>/dev/null ||
			echo "hugetlb: could not restore $f to $v" >&2
	done
}
# The runs go in the background (see part()), so that a signal is seen at
# once: the tests it leaves finish on their own, with their hogs.
running=
stop() {
	[ -n "$running" ] && kill "$running" 2>/dev/null
	exit "$1"
}
trap restore EXIT
trap 'stop 130' INT
trap 'stop 143' TERM

# set FILE VALUE: write VALUE, remembering the old one once.
set_value() {
	local f=$1 v=$2 old
	old=$(cat "$f") || return 1
	[ "$old" = "$v" ] && return 0
	saved+=("$f=$old")
	echo "$v" >"$f"
}

# available DIR: free huge pages nobody has reserved.
available() {
	local free resv
	free=$(cat "$1/free_hugepages") || return 1
	resv=$(cat "$1/resv_hugepages") || return 1
	echo $((free > resv ? free - resv : 0))
}

# reserve DIR WANT NAME: as root, raise nr_hugepages by what is missing
# for WANT free pages and turn overcommit off; print what there is.
# Returns 1 if fewer than WANT are free.
reserve() {
	local d=$1 want=$2 name=$3 have nr
	have=$(available "$d") || return 1
	if $root; then
		set_value "$d/nr_overcommit_hugepages" 0
		if [ "$have" -lt "$want" ]; then
			nr=$(cat "$d/nr_hugepages")
			if [ "$name" = 1G ]; then
				# Gigantic pages need 1 GiB of contiguous memory.
				sync
				echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
				echo 1 >/proc/sys/vm/compact_memory 2>/dev/null
			fi
			set_value "$d/nr_hugepages" $((nr + want - have))
			have=$(available "$d")
		fi
	elif [ "$(cat "$d/nr_overcommit_hugepages")" != 0 ]; then
		echo "hugetlb: warning: $name nr_overcommit_hugepages is not 0 (not root: left so); a lost page may come back as a surplus one"
	fi
	echo "hugetlb: $have of $want $name pages free"
	[ "$have" -ge "$want" ]
}

# A one-line skip of the whole run.
skip() {
	echo "SKIP hugetlb: $*"
	echo "0 passed, 0 failed, 1 skipped"
	exit 0
}

[ -d "$dir_2m" ] || skip "no 2 MiB hugetlb on this host ($dir_2m missing)"
if ! $root && [ "$(available "$dir_2m")" -lt "$want_2m" ]; then
	skip "not root, and fewer than $want_2m free 2 MiB huge pages (echo N > /proc/sys/vm/nr_hugepages as root)"
fi

sizes=
if [ -d "$dir_1g" ]; then
	if reserve "$dir_1g" "$want_1g" 1G; then
		sizes=1G
	elif $root; then
		# Physical memory too fragmented for more gigantic pages (a
		# long-running host): the 1 GiB tests cannot have their part.
		echo "hugetlb: the kernel gave fewer than $want_1g 1 GiB pages (no contiguous GiB left): 1 GiB pools stay as they ask"
	else
		echo "hugetlb: not root and too few 1 GiB pages: 1 GiB pools stay as they ask"
	fi
else
	echo "hugetlb: no 1 GiB hugetlb on this host ($dir_1g missing): 2 MiB only"
fi
reserve "$dir_2m" "$want_2m" 2M
if [ -n "$sizes" ]; then
	backing=hugetlb
else
	backing=hugetlb:2M
fi

# ------------------------------------------------------------ the runs

passed=0
failed=0
skipped=0
out=$(mktemp "${TMPDIR:-/tmp}/gmem-hugetlb.XXXXXX") || exit 2
trap 'rm -f "$out"; restore' EXIT

# part BACKING FILTER: tests/run.sh's tests whose name holds FILTER; its
# lines but the summary, whose counts are added up.
part() {
	local line n
	GMEM_TEST_BACKING=$1 GMEM_TEST_HOG=1 tests/run.sh "$build" "$2" |
		tee "$out" | grep -Ev '^[0-9]+ passed, [0-9]+ failed' &
	running=$!
	wait "$running"
	running=
	line=$(tail -n 1 "$out")
	if [[ ! $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
		echo "FAIL $2: tests/run.sh ended without its summary"
		failed=$((failed + 1))
		return
	fi
	passed=$((passed + BASH_REMATCH[1]))
	failed=$((failed + BASH_REMATCH[2]))
	n=${BASH_REMATCH[4]:-0}
	skipped=$((skipped + n))
}

echo "hugetlb: GMEM_TEST_BACKING=$backing GMEM_TEST_HOG=1"
part "$backing" unit/
part "$backing" .trace
part hugetlb:2M stress/2M

if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
