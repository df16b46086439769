#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/vm/inplace.sh BUILD - `gmem vm --scenario inplace` on 1 GiB of 2M
# pages under each huge-page policy: a real KVM guest's data survives
# in-place conversions both ways, the zero flag zeroes, bad ranges are
# refused, a host read of a page just converted to private gets SIGBUS,
# gmem_check() holds, and KVM's page-size statistics are printed beside
# gmem's (as read, with a reason when they are 0).  The file is one memory
# slot, also with its pages taken from the pool last first (--scatter).

set -u
gmem=${1:-build}/gmem
. "$(dirname "$0")/lib.bash"
need_kvm
out=$(mktemp "${TMPDIR:-/tmp}/gmem-vm.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT

for policy in b-lazy a b-eager; do
	scatter=
	[ "$policy" = a ] && scatter=--scatter
	run_vm "$out" --scenario inplace --size 1G --page 2M --policy "$policy" \
		$scatter ||
		{ echo "FAIL: gmem vm --policy $policy $scatter exited $?"; exit 1; }
	expect_line "$out" '^memslots: 1 per file, 1 file '
	if [ -n "$scatter" ]; then
		expect_line "$out" '^memory: pages taken from the pool last first \(--scatter\)$'
	fi
	expect_line "$out" '^result: PASS \(0 of [0-9]+ checks failed\)$'
	expect_line "$out" '^ +[1-9][0-9]* ok +0 failed +data kept in place across private->shared$'
	expect_line "$out" '^ +[1-9][0-9]* ok +0 failed +data kept in place across shared->private$'
	expect_line "$out" '^ +[1-9][0-9]* ok +0 failed +zero flag: zeroed on private->shared$'
	expect_line "$out" '^ +[1-9][0-9]* ok +0 failed +zero flag: zeroed on shared->private$'
	expect_line "$out" '^ +[1-9][0-9]* ok +0 failed +host read of a page just converted to private refused \(SIGBUS\)$'
	expect_line "$out" '^ +[1-9][0-9]* ok +0 failed +bad conversion range refused \(EINVAL\)$'
	expect_line "$out" 'private/shared split is enforced by gmem on the host side'
	expect_line "$out" '^  KVM pages_1g/2m/4k \(KVM_GET_STATS_FD\) '
	expect_line "$out" '^  gmem guest_1g/2m/4k, pages the guest touched '
	expect_line "$out" '^gmem_check: ok$'
	if grep -q '^FAIL' "$out"; then
		echo "FAIL: a check failed"
		exit 1
	fi
done

# policy 4k is refused with a reason, as a usage error
"$gmem" vm --policy 4k >"$out" 2>&1
rc=$?
[ "$rc" = 2 ] || { echo "FAIL: --policy 4k exited $rc, wanted 2"; exit 1; }
expect_line "$out" 'policy 4k is refused'
echo "ok"
