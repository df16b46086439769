#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/run.sh [BUILD [FILTER]] - run every test against one build.
#
# Runs each unit test program BUILD/tests/unit/test_* (one per
# tests/unit/test_*.c), replays each tests/traces/*.trace with BUILD/gmem,
# runs tests/compare/*.sh, tests/ship/*.sh and tests/vm/*.sh BUILD, and
# short stress runs.  A program passes when it exits 0 and is skipped when
# it exits 77 (its last line of output is the reason); a trace passes when
# replay exits 0, or N if it has a line "# exit: N" (tests/traces/bad/).
# One line per test, PASS/FAIL/SKIP, the output of a failure indented below
# it, and last "N passed, N failed" (", N skipped" when some were).
# FILTER, if given, runs only the tests whose name contains it.
#
# BUILD defaults to $BUILD, else build.  GMEM_TEST_TIMEOUT (seconds, 600 by
# default) bounds each test.  Exit status 1 if any test failed.

set -u
cd "$(dirname "$0")/.." || exit 2

build=${1:-${BUILD:-build}}
filter=${2:-}
limit=${GMEM_TEST_TIMEOUT:-600}

# Sanitizer builds: stack traces for UB, and stop at the first report.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
skipped=0
log=$(mktemp "${TMPDIR:-/tmp}/gmem-test.XXXXXX") || exit 2
trap 'rm -f "$log"' EXIT

have_timeout=false
command -v timeout >/dev/null 2>&1 && have_timeout=true

# run NAME COMMAND...: runs one test and prints its line.
run() {
	local name=$1 rc reason
	shift
	if [ -n "$filter" ] && [[ $name != *"$filter"* ]]; then
		return
	fi
	if $have_timeout; then
		timeout "$limit" "$@" >"$log" 2>&1 </dev/null
	else
		"$@" >"$log" 2>&1 </dev/null
	fi
	rc=$?
	case $rc in
	0)
		echo "PASS $name"
		passed=$((passed + 1))
		;;
	77)
		reason=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1)
		echo "SKIP $name: ${reason:-no reason given}"
		skipped=$((skipped + 1))
		;;
	*)
		if $have_timeout && [ "$rc" = 124 ]; then
			echo "FAIL $name (timed out after ${limit}s)"
		elif [ "$rc" -gt 128 ] && reason=$(kill -l "$rc" 2>/dev/null); then
			echo "FAIL $name (exit $rc: killed by SIG$reason)"
		else
			echo "FAIL $name (exit $rc)"
		fi
		tail -n 30 "$log" | sed 's/^/    /'
		failed=$((failed + 1))
		;;
	esac
}

# A test whose program is missing fails (a command, so that timeout runs it).
# shellcheck disable=SC2016  # expanded by the inner bash
not_built=(bash -c 'echo "not built: $0"; exit 1')

for src in tests/unit/test_*.c; do
	[ -e "$src" ] || continue
	name=${src#tests/}
	name=${name%.c}
	bin=$build/tests/unit/$(basename "$src" .c)
	if [ -x "$bin" ]; then
		run "$name" "$bin"
	else
		run "$name" "${not_built[@]}" "$bin"
	fi
done

# replay_exits TOOL TRACE WANT: succeeds if replaying TRACE exits WANT
# (a command, not a function, so that timeout can run it).
# shellcheck disable=SC2016
replay_exits=(bash -c '"$0" replay "$1"; rc=$?; [ "$rc" = "$2" ] && exit 0
	echo "replay exited $rc, wanted $2"; exit 1')

# A trace passes when replay exits 0, or the N of its "# exit: N" line
# (tests/traces/bad/ holds traces that must fail so).  The examples' traces
# (examples/*.trace) are checked the same way.
tool=$build/gmem
for trace in tests/traces/*.trace tests/traces/bad/*.trace examples/*.trace; do
	[ -e "$trace" ] || continue
	name=${trace#tests/}
	want=$(sed -n 's/^#[[:space:]]*exit:[[:space:]]*\([0-9][0-9]*\).*/\1/p' \
		"$trace" | head -n 1)
	if [ ! -x "$tool" ]; then
		run "$name" "${not_built[@]}" "$tool"
	elif [ -n "$want" ] && [ "$want" != 0 ]; then
		run "$name" "${replay_exits[@]}" "$tool" "$trace" "$want"
	else
		run "$name" "$tool" replay "$trace"
	fi
done

# Script tests, each run as SCRIPT BUILD: `gmem compare` (its traces
# replay, its JSON has COMPARE.md's shape, the policies differ as the
# design says, the plots are drawn) and shipping (install and build the
# examples with pkg-config, the exported symbols, the man pages, every
# reference of the documents resolving).
for script in tests/compare/*.sh tests/ship/*.sh; do
	[ -e "$script" ] || continue
	name=${script#tests/}
	run "$name" "$script" "$build"
done

# `gmem vm`: a real KVM guest on a gmem file (tests/vm/*.sh BUILD; they
# skip, exit 77, where /dev/kvm cannot be used).
for script in tests/vm/*.sh; do
	[ -e "$script" ] || continue
	name=${script#tests/}
	run "$name" "$script" "$build"
done

# Short bounded stress runs (make stress runs longer ones): real threads on
# real memory, the safety oracle at every conversion's commit point; "-V"
# adds loads and stores through real MMU-enforced views (it skips, exit
# 77, where userfaultfd cannot be had).
stress=$build/tests/stress/stress
seed=${STRESS_SEED:-$(( $(date +%s) % 1000000 ))}
secs=${STRESS_SECONDS:-1}
# "-L 4096" lowers the refcount limit so that pins of one page reach it;
# "-p b-adaptive" puts every thread on b-adaptive files only (splits for
# long-term pins, merge periods, compaction, all at once).
for cfg in "2M" "1G -P" "2M -P -i 5" "2M -V" "2M -L 4096" \
	"2M -p b-adaptive -P -i 5" "1G -p b-adaptive"; do
	name="stress/${cfg// /}"
	if [ -x "$stress" ]; then
		# shellcheck disable=SC2086  # cfg is words
		run "$name" "$stress" -s "$seed" -t 4 -d "$secs" -g $cfg
	else
		run "$name" "${not_built[@]}" "$stress"
	fi
done

if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
