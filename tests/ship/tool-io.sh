#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/ship/tool-io.sh BUILD - the tool at the edges of its input and
# output: a NUL byte in a trace line is a syntax error (exit 2, the line
# and column on stderr), never the end of the line; a command whose
# stdout cannot be written (/dev/full) fails (exit 1, or its own failure
# code) with one line on stderr, and one whose stdout can does not.

set -u
gmem=${1:-build}/gmem
cd "$(dirname "$0")/../.." || exit 2
fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmem-io.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# check WHAT STATUS WANT_STATUS WANT_OUT WANT_ERR: the command that wrote
# $tmp/out and $tmp/err exited WANT_STATUS and wrote exactly WANT_OUT on
# stdout (not compared if "-") and WANT_ERR on stderr.
check() {
	local what=$1 rc=$2 want_rc=$3 want_out=$4 want_err=$5
	if [ "$rc" != "$want_rc" ] ||
		{ [ "$want_out" != - ] && [ "$(cat "$tmp/out")" != "$want_out" ]; } ||
		[ "$(cat "$tmp/err")" != "$want_err" ]; then
		echo "$what: exit $rc, wanted $want_rc; stdout, stderr:"
		sed 's/^/    /' "$tmp/out" | head -n 5
		echo "  --"
		sed 's/^/    /' "$tmp/err" | head -n 5
		echo "  wanted:"
		[ "$want_out" != - ] && printf '%s\n' "$want_out" | sed 's/^/    /'
		echo "  --"
		printf '%s\n' "$want_err" | sed 's/^/    /'
		fails=$((fails + 1))
	fi
}

# nul NAME PRINTF_FORMAT STDOUT STDERR: the trace printf writes replays
# (from a file and from stdin) with exit 2, printing exactly STDOUT and
# STDERR.
nul() {
	local name=$1
	# shellcheck disable=SC2059  # the format is the trace, escapes and all
	printf "$2" >"$tmp/t.trace"
	"$gmem" replay "$tmp/t.trace" >"$tmp/out" 2>"$tmp/err"
	check "replay ($name)" $? 2 "$3" "$4"
	"$gmem" replay - <"$tmp/t.trace" >"$tmp/out" 2>"$tmp/err"
	check "replay - ($name)" $? 2 "$3" "$4"
}

nul "NUL inside a line" 'pool 2M 1 backing=none\nmm m\0 junk\ncheck\n' \
	"1: ok" "2: syntax error: NUL byte at column 5"
nul "NUL alone on a line" 'pool 2M 1 backing=none\n\0\ncheck\n' \
	"1: ok" "2: syntax error: NUL byte at column 1"
nul "NUL in a comment" 'pool 2M 1 backing=none # a\0b\n' \
	"" "1: syntax error: NUL byte at column 27"
nul "NUL on the last line, no newline" 'pool 2M 1 backing=none\nmm m\0' \
	"1: ok" "2: syntax error: NUL byte at column 5"

if [ ! -w /dev/full ]; then
	echo "skipped: no /dev/full to test write errors with"
	[ "$fails" -eq 0 ] && exit 77
	exit 1
fi

# full WANT_STATUS ARGS...: gmem ARGS with stdout on /dev/full exits
# WANT_STATUS with exactly one line on stderr about standard output (or
# the --emit-trace file, which is /dev/full too).
full() {
	local want_rc=$1 rc
	shift
	"$gmem" "$@" >/dev/full 2>"$tmp/err"
	rc=$?
	if [ "$rc" != "$want_rc" ]; then
		echo "gmem $* >/dev/full: exit $rc, wanted $want_rc"
		sed 's/^/    /' "$tmp/err" | head -n 5
		fails=$((fails + 1))
	elif [ "$(wc -l <"$tmp/err")" != 1 ] ||
		! grep -Eq '^gmem: (error writing standard output|compare: /dev/full)' \
			"$tmp/err"; then
		echo "gmem $* >/dev/full: stderr is not one line about the write:"
		sed 's/^/    /' "$tmp/err" | head -n 5
		fails=$((fails + 1))
	fi
}

small=(--quiet --workload pkvm-io --policy a --guest-size 64M --ops 10
	--backing memfd)
full 1 replay examples/tdx-boot.trace
full 1 replay - <examples/tdx-boot.trace
full 1 compare "${small[@]}"
full 1 compare "${small[@]}" --json
full 1 compare "${small[@]}" --emit-trace -
full 1 compare "${small[@]}" --emit-trace /dev/full
full 1 --help
full 1 --version
full 1 replay --help
full 1 compare --help
# a command that failed keeps its own code
printf 'pool 2M 1 backing=none\nexpect err EEXIST\n' >"$tmp/t.trace"
full 1 replay "$tmp/t.trace"
printf 'pool 2M 1 backing=none\nfrob\n' >"$tmp/t.trace"
"$gmem" replay "$tmp/t.trace" >/dev/full 2>"$tmp/err"
rc=$?
if [ "$rc" != 2 ] || ! grep -q '^2: syntax error' "$tmp/err" ||
	! grep -q '^gmem: error writing standard output' "$tmp/err"; then
	echo "a malformed trace with stdout on /dev/full: exit $rc, wanted 2" \
		"with both messages"
	sed 's/^/    /' "$tmp/err" | head -n 5
	fails=$((fails + 1))
fi

# where stdout can be written, nothing is said and the status is the
# command's own
"$gmem" replay examples/tdx-boot.trace >"$tmp/out" 2>"$tmp/err"
check "replay to a file" $? 0 - ""
"$gmem" replay examples/tdx-boot.trace 2>"$tmp/err" | cat >"$tmp/out"
check "replay to a pipe" "${PIPESTATUS[0]}" 0 - ""
"$gmem" compare "${small[@]}" --json >"$tmp/out" 2>"$tmp/err"
check "compare --json to a file" $? 0 - ""
[ "$fails" -eq 0 ]
