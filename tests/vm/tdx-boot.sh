#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/vm/tdx-boot.sh BUILD - `gmem vm --scenario tdx-boot` on 1 GiB of
# 2M pages with a short churn: bounce buffer and scattered pages shared,
# I/O buffers churned; every check the guest reports passes.  As root it
# also runs on 1G pages with --reserve and checks that the huge pages
# were given back (nr_hugepages as before).

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
expect_line "$out" '^gmem_check: ok$'

nr=/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages
if [ "$(id -u)" = 0 ] && [ -w "$nr" ]; then
	before=$(cat "$nr")
	run_vm "$out" --scenario tdx-boot --size 1G --page 1G --ops 16 --reserve ||
		{ echo "FAIL: gmem vm --page 1G --reserve exited $?"; exit 1; }
	expect_line "$out" '^result: PASS'
	expect_line "$out" '^memory: 1 GiB file, policy b-lazy, 1G pages, backing (hugetlbfs|memfd)'
	after=$(cat "$nr")
	if [ "$before" != "$after" ]; then
		echo "FAIL: nr_hugepages was $before, is $after after --reserve"
		exit 1
	fi
fi
echo "ok"
