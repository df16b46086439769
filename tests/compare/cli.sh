#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/compare/cli.sh BUILD - `gmem compare`'s options: bad input gets a
# clear message and exit 2 before anything runs; a run that fails is
# reported in its row and makes the exit status 1; --help and the
# subcommand table agree.

set -u
gmem=${1:-build}/gmem
fails=0
out=$(mktemp "${TMPDIR:-/tmp}/gmem-cli.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT

# want STATUS REGEX ARGS...: gmem compare ARGS exits STATUS and prints a
# line (stdout or stderr) matching REGEX.
want() {
	local status=$1 regex=$2 rc
	shift 2
	"$gmem" compare --quiet "$@" >"$out" 2>&1
	rc=$?
	if [ "$rc" != "$status" ]; then
		echo "gmem compare $*: exit $rc, wanted $status"
		sed 's/^/    /' "$out" | tail -n 5
		fails=$((fails + 1))
	elif ! grep -Eq -- "$regex" "$out"; then
		echo "gmem compare $*: no line matching '$regex'"
		sed 's/^/    /' "$out" | tail -n 5
		fails=$((fails + 1))
	fi
}

want 2 "unknown workload 'nope'" --workload nope
want 2 "unknown policy 'c'" --policy a,c
want 2 "bad size '3Q'" --guest-size 3Q
want 2 "bad size '0'" --guest-size 0
want 2 "bad count '-1'" --ops -1
want 2 "unknown backing 'disk'" --backing disk
want 2 "unknown option '--frobnicate'" --frobnicate
want 2 "needs a value" --seed
want 2 "needs one --workload and one --policy" --emit-trace - \
	--workload pkvm-io
want 0 "^usage: gmem compare" --help
# 3 MiB is no multiple of a 2 MiB page: the run fails in its row
want 1 "^a +failed: guest size 0x300000 is not a multiple" \
	--workload pkvm-io --policy a --guest-size 3M --ops 10
# the same failure in JSON keeps the document whole
want 1 '"error": "EINVAL"' --workload pkvm-io --policy a --guest-size 3M \
	--ops 10 --json
# a narrowed run prints exactly the rows asked for, in 100 columns, and
# a verdict that names only policies that ran
"$gmem" compare --quiet --workload pkvm-io --policy b-lazy,a \
	--guest-size 64M --ops 50 >"$out" 2>&1
rows=$(grep -Ec '^(a|b-lazy) +[0-9]' "$out")
if [ "$rows" != 2 ] || grep -Eq '^(4k|b-eager|b-adaptive) ' "$out"; then
	echo "--policy b-lazy,a printed $rows of its 2 rows, or others"
	fails=$((fails + 1))
fi
wide=$(awk 'length($0) > 100' "$out" | wc -l)
if [ "$wide" != 0 ]; then
	echo "the default table has $wide lines over 100 columns"
	fails=$((fails + 1))
fi
if ! grep -Eq '^verdict: least metadata \(meta \+ vmem\): ' "$out" ||
   ! grep -Eq '^ +fewest failures: ' "$out" ||
   ! grep -Eq '^ +lowest modelled kernel time: (a|b-lazy) ' "$out"; then
	echo "no three-line verdict naming a policy that ran"
	fails=$((fails + 1))
fi
# --wide keeps the full rows (the size column among them)
"$gmem" compare --quiet --wide --workload pkvm-io --policy b-lazy,a \
	--guest-size 64M --ops 50 >"$out" 2>&1
rows=$(grep -Ec '^(a|b-lazy) +64M' "$out")
if [ "$rows" != 2 ]; then
	echo "--wide printed $rows full rows, wanted 2"
	fails=$((fails + 1))
fi
[ "$fails" -eq 0 ]
