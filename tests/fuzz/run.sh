#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/fuzz/run.sh [SECONDS] - differential fuzzing of libgmem against the
# reference model (tests/fuzz/ref.c).
#
# 1. Builds the replay driver (tests/fuzz/fuzz.c without libFuzzer) and
#    libgmem with gcc, ASan+UBSan, and replays the regression corpus
#    tests/fuzz/corpus/: each input is one test.
# 2. If clang can build a libFuzzer target (clang -fsanitize=fuzzer; on
#    Debian, clang 14 needs libclang-rt-14-dev, installed with apt-get when
#    run as root), builds libgmem with coverage and fuzzes for SECONDS
#    (default 60), starting from the corpus, and prints the number of
#    executions and the coverage reached: one test, passed when no
#    difference, violation or sanitizer report turned up.  If libFuzzer
#    cannot be built, that test is skipped (not passed), with the reason.
#
# Ends with "N passed, N failed" (", N skipped" when something was).
# Exit status 1 if anything failed.
#
# FUZZ_BUILD (default tests/fuzz/build) is where the programs, the working
# corpus and any crash artifact go.  New inputs the fuzzer finds are not
# added to tests/fuzz/corpus/; to refresh it, see tests/fuzz/README.md.

set -u
cd "$(dirname "$0")/../.." || exit 2

secs=${1:-60}
case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac
out=${FUZZ_BUILD:-tests/fuzz/build}
mkdir -p "$out" || exit 2

passed=0
failed=0
skipped=0

export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

SAN='-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer'
CFLAGS_COMMON='-std=c11 -D_GNU_SOURCE -O1 -g -pthread -Wall -Wextra -Werror'

# ------------------------------------------------ 1. corpus replay (gcc)

echo "building $out/fuzz-replay (gcc, ASan+UBSan)"
# shellcheck disable=SC2086  # flag lists
if ! gcc $CFLAGS_COMMON $SAN -Iinclude -Isrc src/*.c tests/fuzz/ref.c \
	tests/fuzz/fuzz.c -lurcu-bp -o "$out/fuzz-replay"; then
	echo "FAIL fuzz-replay does not build"
	echo "0 passed, 1 failed"
	exit 1
fi

log="$out/replay.log"
"$out/fuzz-replay" tests/fuzz/corpus >"$log" 2>&1
rc=$?
last=$(tail -n 1 "$log")
if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
	passed=$((passed + BASH_REMATCH[1]))
	failed=$((failed + BASH_REMATCH[2]))
	echo "corpus replay: $last"
	if [ "${BASH_REMATCH[2]}" != 0 ]; then
		grep -v ' passed, ' "$log" | tail -n 60 | sed 's/^/    /'
	fi
else
	echo "FAIL corpus replay (exit $rc)"
	tail -n 60 "$log" | sed 's/^/    /'
	failed=$((failed + 1))
fi

# Open disagreements (tests/fuzz/known/README.md): replayed for information,
# counted neither way.  One that passes means libgmem was fixed (or the model
# changed): move it to corpus/.
if compgen -G 'tests/fuzz/known/k-*' >/dev/null; then
	for k in tests/fuzz/known/k-*; do
		if "$out/fuzz-replay" "$k" >/dev/null 2>&1; then
			echo "XPASS $k: libgmem agrees now; move it to tests/fuzz/corpus/"
		else
			echo "XFAIL $k (open disagreement, see tests/fuzz/known/README.md)"
		fi
	done
fi

# --------------------------------------------------- 2. libFuzzer (clang)

finish() {
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
	[ "$failed" -eq 0 ]
	exit
}

# can_fuzz: succeeds if clang links a trivial libFuzzer target.
can_fuzz() {
	command -v clang >/dev/null 2>&1 || return 1
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
		'{ (void)d; (void)n; return 0; }' >"$out/probe.c"
	clang -fsanitize=fuzzer,address,undefined "$out/probe.c" \
		-o "$out/probe" >/dev/null 2>&1
}

if ! can_fuzz && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "libFuzzer not usable; trying apt-get install clang libclang-rt-14-dev"
	apt-get install -y -q clang libclang-rt-14-dev >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 &&
		  apt-get install -y -q clang libclang-rt-14-dev >/dev/null 2>&1; }
fi
if ! can_fuzz; then
	echo "SKIP libfuzzer: clang -fsanitize=fuzzer does not link here (no clang or no libclang_rt.fuzzer)"
	skipped=$((skipped + 1))
	finish
fi

echo "building $out/fuzzer (clang, libFuzzer, ASan+UBSan)"
mkdir -p "$out/obj"
objs=()
for src in src/*.c; do
	obj="$out/obj/$(basename "$src" .c).o"
	# shellcheck disable=SC2086
	if ! clang $CFLAGS_COMMON -Wno-unknown-warning-option \
		-fsanitize=fuzzer-no-link,address,undefined \
		-fno-sanitize-recover=all -fno-omit-frame-pointer \
		-Iinclude -Isrc -c "$src" -o "$obj"; then
		echo "FAIL libgmem does not build with clang for libFuzzer"
		failed=$((failed + 1))
		finish
	fi
	objs+=("$obj")
done
# shellcheck disable=SC2086
if ! clang $CFLAGS_COMMON -DFUZZ_LIBFUZZER \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Iinclude tests/fuzz/fuzz.c tests/fuzz/ref.c "${objs[@]}" \
	-lurcu-bp -o "$out/fuzzer"; then
	echo "FAIL the libFuzzer target does not build"
	failed=$((failed + 1))
	finish
fi

# The fuzzer writes new inputs to a working copy, never to the corpus.
work="$out/work-corpus"
rm -rf "$work"
mkdir -p "$work"
rm -f "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-*
log="$out/fuzz.log"
echo "fuzzing for ${secs}s"
"$out/fuzzer" -max_total_time="$secs" -max_len=1024 -timeout=300 \
	-rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$out/" \
	"$work" tests/fuzz/corpus >"$log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
cov=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" |
	tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')
echo "fuzz: ${execs:-?} executions in ${secs}s, ${cov:-coverage not printed}"
if [ "$rc" = 0 ]; then
	echo "PASS libfuzzer"
	passed=$((passed + 1))
else
	echo "FAIL libfuzzer (exit $rc); the input is in $out/, the log in $log:"
	sed -n '/^# gmem differential fuzz/,/ERROR: libFuzzer/p' "$log" |
		tail -n 80 | sed 's/^/    /'
	grep -m 5 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' \
		"$log" | sed 's/^/    /'
	failed=$((failed + 1))
fi
finish
