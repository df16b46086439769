#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/vm/tdx-boot.sh BUILD - `gmem vm --scenario tdx-boot` on 1 GiB of
# 2M pages with a short churn: bounce buffer and scattered pages shared,
# I/O buffers churned; every check the guest reports passes; the file is
# one memory slot, also with its pages taken from the pool last first
# (--scatter).  As root it also runs on 1G pages with --reserve (2M pages
# too, with --scatter: hugetlbfs) and checks that the huge pages were
# given back (nr_hugepages as before).

set -u
gmem=${1:-build}/gmem
. "$(dirname "$0")/lib.bash"
need_kvm
out=$(mktemp "${TMPDIR:-/tmp}/gmem-vm.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT

run_vm "$out" --scenario tdx-boot --size 1G --page 2M --ops 48 ||
	{ echo "FAIL: gmem vm exited $?"; exit 1; }
expect_line "$out" '^result: PASS \(0 of [0-9]+ checks failed\)$'
expect_line "$out" '^ +[1-9][0-9]* ok +0 failed +convert private->shared$'
expect_line "$out" '^ +[1-9][0-9]* ok +0 failed +convert shared->private$'
expect_line "$out" '^ +[1-9][0-9]* ok +0 failed +host read of a page just converted to private refused \(SIGBUS\)$'
expect_line "$out" '^ +1 ok +0 failed +private data intact after the churn$'
expect_line "$out" '^memslots: 1 per file, 1 file '
expect_line "$out" '^gmem_check: ok$'

nr=/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages
if [ "$(id -u)" = 0 ] && [ -w "$nr" ]; then
	before=$(cat "$nr")
	run_vm "$out" --scenario tdx-boot --size 1G --page 1G --ops 16 --reserve ||
		{ echo "FAIL: gmem vm --page 1G --reserve exited $?"; exit 1; }
	expect_line "$out" '^result: PASS'
	expect_line "$out" '^memory: 1 GiB file, policy b-lazy, 1G pages, backing (hugetlbfs|memfd)'
	expect_line "$out" '^memslots: 1 per file, 1 file '
	expect_line "$out" '^gmem_check: ok$'
	after=$(cat "$nr")
	if [ "$before" != "$after" ]; then
		echo "FAIL: nr_hugepages was $before, is $after after --reserve"
		exit 1
	fi
fi
nr2=/proc/sys/vm/nr_hugepages
if [ "$(id -u)" = 0 ] && [ -w "$nr2" ]; then
	before=$(cat "$nr2")
	run_vm "$out" --scenario tdx-boot --size 256M --page 2M --ops 16 \
		--reserve --scatter --policy a ||
		{ echo "FAIL: gmem vm --page 2M --reserve --scatter exited $?"; exit 1; }
	expect_line "$out" '^result: PASS'
	expect_line "$out" '^memory: pages taken from the pool last first \(--scatter\)$'
	expect_line "$out" '^memslots: 1 per file, 1 file '
	expect_line "$out" '^gmem_check: ok$'
	after=$(cat "$nr2")
	if [ "$before" != "$after" ]; then
		echo "FAIL: nr_hugepages was $before, is $after after --reserve"
		exit 1
	fi
fi
echo "ok"
