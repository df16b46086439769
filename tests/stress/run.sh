#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/stress/run.sh [BUILD_DIR [SECONDS]] - build the stress program and
# run a short, bounded set of stress runs.
#
# Builds BUILD_DIR/stress (default build/stress) from the library sources
# and tests/stress/stress.c, with -DGMEM_RACE_YIELD (random yields at the
# library's lock boundaries), then runs it on a 2M and a 1G pool, with
# memory-failure injection (-P) and with allocation-failure injection
# (-i 5), and with loads and stores through real host views (-V), then
# with every thread on b-adaptive files only (-p b-adaptive), each for
# SECONDS (default 2).  One PASS/FAIL/SKIP line per run (a failure's
# output indented below it; a run that exits 77 is skipped, its last line
# the reason), last "N passed, N failed" (", N skipped" when some were);
# exit 1 if any run failed.
#
# Environment:
#   CC       compiler (default gcc)
#   CFLAGS   more compiler flags
#   SAN      sanitizer flags, e.g. SAN=-fsanitize=thread or
#            SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
#   THREADS  threads per run (default 4)
#   SEED     the first run's seed (default: from the time); run k uses
#            SEED + k, and each line shows its seed for a rerun:
#            BUILD_DIR/stress -s SEED -t THREADS -d SECONDS ARGS

set -u
cd "$(dirname "$0")/../.." || exit 2

build=${1:-build/stress}
secs=${2:-2}
cc=${CC:-gcc}
cflags=${CFLAGS:-}
san=${SAN:-}
threads=${THREADS:-4}
seed=${SEED:-$(( $(date +%s) % 1000000000 ))}

# Sanitizers: stack traces for UB, and a sanitizer report fails the run.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

passed=0
failed=0
skipped=0
log=$(mktemp "${TMPDIR:-/tmp}/gmem-stress.XXXXXX") || exit 2
trap 'rm -f "$log"' EXIT

mkdir -p "$build" || exit 2
extra=()
[ -n "$san" ] && extra=(-fno-omit-frame-pointer)
# shellcheck disable=SC2086  # CFLAGS and SAN are lists of flags
if ! $cc -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -O1 -g -pthread \
	-DGMEM_RACE_YIELD $san "${extra[@]}" $cflags -Iinclude -Isrc \
	src/*.c tests/stress/stress.c tools/hog.c -o "$build/stress" >"$log" 2>&1; then
	echo "FAIL build ($cc $san $cflags)"
	tail -n 30 "$log" | sed 's/^/    /'
	echo "0 passed, 1 failed"
	exit 1
fi

have_timeout=false
command -v timeout >/dev/null 2>&1 && have_timeout=true
# A run may take its duration, the final checks, and sanitizer slowdown.
limit=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 5 + 120 }')

k=0
# run NAME ARGS...: one stress run, one line.
run() {
	local name=$1 rc s=$((seed + k)) ops
	shift
	k=$((k + 1))
	local cmd=("$build/stress" -s "$s" -t "$threads" -d "$secs" "$@")
	if $have_timeout; then
		timeout "$limit" "${cmd[@]}" >"$log" 2>&1 </dev/null
	else
		"${cmd[@]}" >"$log" 2>&1 </dev/null
	fi
	rc=$?
	ops=$(sed -n 's/^stress: seed=[0-9]* ops=\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	if [ "$rc" = 0 ] && [ -n "$ops" ] && ! grep -q 'WARNING: \|ERROR: \|runtime error\|gmem: WARNING' "$log"; then
		echo "PASS $name (seed=$s, ops=$ops)"
		passed=$((passed + 1))
	elif [ "$rc" = 77 ]; then
		echo "SKIP $name: $(grep -v '^[[:space:]]*$' "$log" | tail -n 1)"
		skipped=$((skipped + 1))
	else
		if $have_timeout && [ "$rc" = 124 ]; then
			echo "FAIL $name (seed=$s, timed out after ${limit}s): ${cmd[*]}"
		else
			echo "FAIL $name (seed=$s, exit $rc): ${cmd[*]}"
		fi
		tail -n 40 "$log" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
}

run "stress 2M pool"			-g 2M
run "stress 1G pool"			-g 1G
run "stress 2M pool, poison"		-g 2M -P
run "stress 1G pool, poison"		-g 1G -P
run "stress 2M pool, injection 5/1000"	-g 2M -i 5
run "stress 1G pool, injection + poison"	-g 1G -i 5 -P
run "stress 2M pool, refcount limit 4096"	-g 2M -L 4096
run "stress 1G pool, refcount limit 20000, poison"	-g 1G -L 20000 -P
run "stress 2M pool, host views"	-g 2M -V
run "stress 1G pool, host views, injection + poison"	-g 1G -V -i 5 -P
run "stress 2M pool, b-adaptive only, injection + poison"	-g 2M -p b-adaptive -i 5 -P
run "stress 1G pool, b-adaptive only"	-g 1G -p b-adaptive
run "stress 1G pool, b-adaptive only, host views, injection"	-g 1G -p b-adaptive -V -i 5
run "stress 2M pool, b-adaptive only, refcount limit 4096"	-g 2M -p b-adaptive -L 4096

if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
