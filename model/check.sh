#!/bin/bash
# SPDX-License-Identifier: MIT
#
# model/check.sh - check the Promela model of gmem's conversion protocol
# (model/gmem.pml) exhaustively with spin, and show that it can fail.
#
#   model/check.sh            the real model (safety + end states; no
#                             cycles), policy b-lazy and policy b-adaptive
#                             (-DADAPTIVE), b-lazy with the lock-free fast
#                             pin and unpin (-DFAST; with the C's holder
#                             handshake, -DHOLDER_GP), then the broken
#                             variants, each of which must produce a
#                             counterexample
#   model/check.sh --full     also the LTL claims (safety; liveness under
#                             weak fairness), wider configurations and
#                             coverage probes
#   model/check.sh --trail    also print each counterexample's events
#
# Exit 0 only if every real check passed and every broken variant failed;
# 1 otherwise; 77 if spin (or a C compiler) is missing and cannot be
# installed.  Runs two checks at a time.  Needs ~1.5 GB of memory (--full:
# ~4 GB).  The last line is "N passed, N failed".

set -u
cd "$(dirname "$0")"
here=$PWD
model=$here/gmem.pml

full=0
trail=0
for a in "$@"; do
	case $a in
	--full) full=1 ;;
	--trail) trail=1 ;;
	*) echo "usage: $0 [--full] [--trail]" >&2; exit 2 ;;
	esac
done

if ! command -v spin >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "model: installing spin"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q spin >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 &&
		  apt-get install -y -q spin >/dev/null 2>&1; }
	fi
	if ! command -v spin >/dev/null 2>&1; then
		echo "model: skipped: spin is not installed (apt-get install spin)"
		exit 77
	fi
fi
CC=${CC:-gcc}
if ! command -v "$CC" >/dev/null 2>&1; then
	echo "model: skipped: no C compiler ($CC) to build spin's verifier"
	exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gmem-model.XXXXXX")
trap 'rm -rf "$work"' EXIT

# pan's compile-time options common to all runs: room for the state
# vector, a memory bound (MB), no gcc noise about pan's generated code.
PAN_CFLAGS="-O2 -w -DVECTORSZ=512 -DMEMLIM=${MODEL_MEMLIM:-8192}"

# job NAME "SPIN_DEFS" "CC_DEFS" "PAN_ARGS": build and run one verifier
# in $work/NAME; its output goes to $work/NAME/out, its seconds to .../secs.
job() {
	local name=$1 sdefs=$2 cdefs=$3 args=$4 d=$work/$1
	mkdir -p "$d"
	cp "$model" "$d/gmem.pml"
	(
		cd "$d" || exit 1
		# shellcheck disable=SC2086
		if ! spin $sdefs -a gmem.pml >spin.out 2>&1; then
			cat spin.out >out
			exit 1
		fi
		# shellcheck disable=SC2086
		if ! $CC $PAN_CFLAGS $cdefs -o pan pan.c >cc.out 2>&1; then
			cat cc.out >out
			exit 1
		fi
		start=$(date +%s.%N)
		# shellcheck disable=SC2086
		./pan $args >out 2>&1
		end=$(date +%s.%N)
		echo "$start $end" | awk '{ printf "%.1f", $2 - $1 }' >secs
		echo "$sdefs" >sdefs
	)
}

# Up to two jobs at a time.
running=0
spawn() {
	job "$@" &
	running=$((running + 1))
	if [ $running -ge 2 ]; then
		wait -n 2>/dev/null || wait
		running=$((running - 1))
	fi
}

field() {	# field FILE REGEX: the first number after REGEX in FILE
	sed -n "s/.*$2 *\([0-9][0-9.e+]*\).*/\1/p" "$1" | head -n1
}

passed=0
failed=0

# report_real NAME LABEL: 0 errors and a complete search expected
report_real() {
	local d=$work/$1 out=$work/$1/out states errs secs
	states=$(sed -n 's/^ *\([0-9][0-9.e+]*\) states, stored.*/\1/p' "$out" 2>/dev/null | head -n1)
	errs=$(field "$out" "errors:")
	secs=$(cat "$d/secs" 2>/dev/null || echo "?")
	if [ -n "$errs" ] && [ "$errs" = 0 ] && [ -n "$states" ] &&
	   ! grep -q "reached -DMEMLIM bound\|max search depth too small\|error: max search depth" "$out"; then
		echo "model: $2: $states states, 0 errors (${secs} s)"
		passed=$((passed + 1))
	else
		echo "model: $2: FAILED (${errs:-no result} errors, ${states:-?} states)"
		grep -E "^pan:|^spin:|error" "$out" 2>/dev/null | head -n5 | sed 's/^/model:   /'
		failed=$((failed + 1))
	fi
}

# report_broken NAME LABEL [reach [EXPECT]]: a counterexample expected
# (reach: a coverage probe, whose "counterexample" shows the behaviour
# happens; EXPECT: a fixed string that pan's error line must contain, so
# that the variant fails for its own reason)
report_broken() {
	local d=$work/$1 out=$work/$1/out errs depth what steps reach=${3:-}
	local expect=${4:-}
	errs=$(field "$out" "errors:")
	if [ -n "$expect" ] && [ -n "$errs" ] && [ "$errs" != 0 ] &&
	   ! grep "^pan:1: " "$out" | grep -qF -- "$expect"; then
		echo "model: $2: WRONG counterexample (expected one containing '$expect')"
		grep "^pan:1: " "$out" | head -n1 | cut -c1-200 | sed 's/^/model:   /'
		failed=$((failed + 1))
		return
	fi
	if [ -n "$errs" ] && [ "$errs" != 0 ] && [ -f "$d/gmem.pml.trail" ]; then
		depth=$(sed -n 's/.*(at depth \([0-9]*\)).*/\1/p' "$out" | head -n1)
		what=$(sed -n 's/^pan:1: \(.*\) (at depth.*/\1/p' "$out" | head -n1 |
		       sed 's/^assertion violated .*/assertion violated/')
		# shellcheck disable=SC2046
		steps=$(cd "$d" && spin $(cat sdefs) -t -T -B gmem.pml 2>&1 |
			sed -n 's/^spin: trail ends after \([0-9]*\) steps.*/\1/p')
		if [ -n "$reach" ]; then
			echo "model: $2: reached (depth ${depth:-?})"
		else
			echo "model: $2: counterexample found (depth ${depth:-?}, ${steps:-?} steps): $what"
		fi
		if [ "$trail" = 1 ]; then
			# shellcheck disable=SC2046
			(cd "$d" && spin $(cat sdefs) -t -T -B gmem.pml 2>&1) |
			grep -v "^ltl \|^spin: text of failed\|trail ends\|couldn.t find claim" |
			sed 's/^/model:     /'
		fi
		passed=$((passed + 1))
	else
		if [ -n "$reach" ]; then
			echo "model: $2: NOT reached - the model does not exercise it"
		else
			echo "model: $2: NO counterexample (errors: ${errs:-none}) - the check is vacuous"
		fi
		grep -E "^pan:|^spin:" "$out" 2>/dev/null | head -n3 | sed 's/^/model:   /'
		failed=$((failed + 1))
	fi
}

SAFETY="-DSAFETY -DNOCLAIM"
# The coverage probes: REACHED(n) in gmem.pml.
reach_names=([1]="EBUSY" [2]="EAGAIN" [3]="drain woken by an unpin, then ok"
	[4]="kick: trylock fails, a fault/pin holds the lock"
	[5]="kick: trylock fails, a writer is queued"
	[6]="kick runs a noted merge"
	[7]="private->shared splits an intact private block"
	[8]="merge into an intact private block"
	[9]="pin of a private page: EFAULT"
	[10]="fault on a private page: SIGBUS")
# b-adaptive's probes (run with $ADAPTIVE)
areach_names=([11]="b-adaptive: a long-term pin splits the block"
	[12]="b-adaptive: a long-term pin fails with EAGAIN (another pin)"
	[13]="b-adaptive: a period end merges the block"
	[14]="b-adaptive: compact merges the block"
	[15]="b-adaptive: a period end keeps the note of a page not aged")
# FAST's probes (run with -DFAST; 17 also in the default run)
freach_names=([16]="fast: a fast pin keeps its references"
	[17]="fast: a try_get after a conversion's check, undone by the re-check"
	[18]="fast: drain() waits for a grace period for a speculative reference"
	[19]="fast: an unpin wakes a waiting conversion"
	[20]="fast: a split waits for a grace period"
	[21]="fast: a re-check fails (seq has changed)")
BFS="-DSAFETY -DNOCLAIM -DBFS"
# Searches of a few thousand states: compiling pan.c at -O2 (2.5 s of CPU)
# would take longer than the search, so these compile at -O0.
QUICK="-O0"

# The real model.  safety: assertions in every step (no PTE or pin on a
# private page, structure, error semantics, all-or-nothing; no lost merge
# at the end) and invalid end states (deadlock).  cycles: every cycle of
# the state graph is a non-progress cycle (there is no progress label),
# so none means every execution is finite.
spawn real-cycles "" "-DNP -DNOCLAIM" "-l -w25"
spawn real-safety "" "$SAFETY" "-w24"
# Policy b-adaptive, the same checks plus its own (README.md), in a smaller
# configuration (the budget of CI): host 0 makes one call (with two, 1.7e7
# states: --full), the merge delay is 1; the cycle search has converters
# of one call each (with two, 1.0e7 states: --full).  COLLAPSE halves the
# memory at about the same time.
ADAPTIVE="-DADAPTIVE -DHOST0_OPS=1"
spawn adaptive-safety "$ADAPTIVE" "$SAFETY -DCOLLAPSE" "-w24"
spawn adaptive-cycles "$ADAPTIVE -DCONV_OPS=1" "-DNP -DNOCLAIM -DCOLLAPSE" "-l -w24"
# The broken variants, each one step removed from the same source:
# shortest counterexamples (breadth-first).
#   no-refcheck   drain() skips the refcount check: a pin on a private page
#   no-inval      faults and pins skip the invalidate lock: a refault during
#                 the drain makes it EAGAIN with a PTE, not a short pin
#   kick-no-loop  file_kick_merges() does not test the flag again after
#                 its release: a noted merge is lost and the block stays
#                 split (shown on that consequence, not on the lost flag;
#                 host 0 makes one call, to keep the breadth-first search
#                 small)
#   kick-spins    file_kick_merges() retries a failed trylock: a busy-wait,
#                 which the cycle search reports
#   infinite      timeout_ms < 0 (allowed by the API): a deadlock (see
#                 README.md, "What the model found")
spawn kick-no-loop "-DBROKEN_KICK_NO_LOOP -DNO_MERGE_FLAG_CHECK -DHOST0_OPS=1" "$BFS" ""
spawn no-refcheck "-DBROKEN_NO_REFCHECK" "$BFS $QUICK" ""
spawn no-inval "-DBROKEN_NO_INVALIDATE_LOCK" "$BFS $QUICK" ""
spawn infinite "-DWITH_INFINITE_TIMEOUT" "$BFS $QUICK" ""
spawn kick-spins "-DBROKEN_KICK_SPINS" "-DNP -DNOCLAIM $QUICK" "-l"
# b-adaptive's broken variants:
#   no-split-before-pin  a long-term pin of part of an intact block does
#                 not split it: a conversion of the other page gets EBUSY
#                 (check.c's "no long-term pin on part of an intact folio"
#                 is off, or it would catch the pin itself first)
#   split-no-refcheck  the pin splits the block although a short-term pin
#                 holds it: block_split()'s GM_BUG_ON
#   merge-ignores-age  a period end merges a noted block whatever its
#                 page's age: too early (D = 2: with D = 1 the first wait
#                 is one tick, which every merge has had)
# (--full adds two more, whose shortest counterexamples need a second
# merge: merge-drops-waiting and merge-no-backoff, below.)
spawn no-split-before-pin "$ADAPTIVE -DBROKEN_NO_SPLIT_BEFORE_PIN -DNO_LT_PART_CHECK" "$BFS $QUICK" ""
spawn split-no-refcheck "$ADAPTIVE -DBROKEN_SPLIT_NO_REFCHECK" "$BFS $QUICK" ""
spawn merge-ignores-age "$ADAPTIVE -DBROKEN_MERGE_IGNORES_AGE -DMERGE_DELAY=2" "$BFS $QUICK" ""
# The fast path (-DFAST, README.md "The fast path"): safety + deadlock in
# the default configuration; no cycles with converters of one call each
# (with two, 1.2e7 states: --full); no lost wakeup: converters may wait
# without a deadline, and a host that holds a pin makes no call but its
# unpin, so that the hazard above cannot block it (host 0: one call;
# with two: --full); converters in either direction, host 1 idle (the
# configuration of fast-undo-no-note).
FASTWAKE="-DFAST -DWITH_INFINITE_TIMEOUT -DNO_CALL_WHILE_PINNED -DHOST0_OPS=1"
FASTANY="-DFAST -DCONV_ANY_DIRECTION -DHOST1_OPS=0"
spawn fast-safety "-DFAST" "$SAFETY -DCOLLAPSE" "-w24"
spawn fast-cycles "-DFAST -DCONV_OPS=1" "-DNP -DNOCLAIM -DCOLLAPSE" "-l -w24"
spawn fast-wake "$FASTWAKE" "$SAFETY" "-w24"
spawn fast-any "$FASTANY" "$SAFETY" "-w24"
# Its broken variants:
#   fast-no-recheck  the fast pin keeps its references without the
#                 re-check: a pin on a private page
#   fast-unpin-no-wake  the unpin reads seq before it drops its
#                 references: a lost wakeup, the conversion waits forever
#   fast-no-grace-period  drain() acts on a speculative reference without
#                 waiting for a grace period: EAGAIN with no pin
#   fast-split-no-grace-period  a split of an intact private block does
#                 not wait for one: block_split()'s GM_BUG_ON
#   fast-undo-no-note  an undone fast pin on a split block notes no merge:
#                 the merge it made fail is lost
spawn fast-no-recheck "-DFAST -DBROKEN_FAST_NO_RECHECK" "$BFS $QUICK" ""
spawn fast-unpin-no-wake "$FASTWAKE -DBROKEN_FAST_UNPIN_NO_WAKE" "$BFS $QUICK" ""
spawn fast-no-grace-period "-DFAST -DBROKEN_FAST_NO_GRACE_PERIOD" "$BFS $QUICK" ""
spawn fast-split-no-grace-period "-DFAST -DBROKEN_FAST_SPLIT_NO_GRACE_PERIOD" "$BFS" ""
spawn fast-undo-no-note "$FASTANY -DBROKEN_FAST_UNDO_NO_NOTE" "$BFS" ""
# The interleaving the re-check is for happens in the real model: a fast
# pin reads the PTE before a conversion's zap and takes its reference
# after the conversion's check.
spawn freach-17 "-DFAST -DREACH=17" "$BFS $QUICK" ""
# The C's handshake (-DFAST -DHOLDER_GP): a holder waits for a grace
# period after making seq odd if a fast path announced itself.  Safety +
# deadlock; no lost wakeup (converters: one call).  Broken:
#   holder-mark-first  the conversion reads fast_used before it makes seq
#                 odd: its drain sees a speculative reference
#   holder-mark-first-no-recheck  and the fast pin does not re-check
#                 (error semantics off, which also drops the check that
#                 fails above): a pin on a private page; with the
#                 re-check (--full) none
#   holder-unpin-no-announce  the fast unpin does not set fast_used: the
#                 holder does not wait for it, and a conversion waits
#                 forever
HOLDER="-DFAST -DHOLDER_GP"
HOLDERWAKE="$HOLDER -DWITH_INFINITE_TIMEOUT -DNO_CALL_WHILE_PINNED -DCONV_OPS=1"
spawn holder-safety "$HOLDER" "$SAFETY -DCOLLAPSE" "-w24"
spawn holder-wake "$HOLDERWAKE" "$SAFETY" "-w24"
spawn holder-mark-first "$HOLDER -DBROKEN_HOLDER_MARK_FIRST" "$BFS $QUICK" ""
spawn holder-mark-first-no-recheck "$HOLDER -DBROKEN_HOLDER_MARK_FIRST -DBROKEN_FAST_NO_RECHECK -DNO_ERROR_SEMANTICS" "$BFS $QUICK" ""
spawn holder-unpin-no-announce "$HOLDERWAKE -DBROKEN_HOLDER_UNPIN_NO_ANNOUNCE" "$BFS" ""
if [ "$full" = 1 ]; then
	spawn ltl-safety "" "-DSAFETY -DCOLLAPSE" "-N safety -w24"
	spawn ltl-live "" "-DNFAIR=3 -DCOLLAPSE" "-a -f -N conv_ends -w24"
	spawn wide-safety "-DHOST1_OPS=2 -DCONV1_ANY" "$SAFETY" "-w26"
	# Without the invalidate lock only the error semantics break:
	# f->lock and drain()'s re-check under it keep the safety rule.
	spawn noinval-safe "-DBROKEN_NO_INVALIDATE_LOCK -DNO_ERROR_SEMANTICS" "$SAFETY" "-w24"
	# Coverage: each REACHED(n) point of gmem.pml is reached.
	for n in "${!reach_names[@]}"; do
		spawn "reach-$n" "-DREACH=$n" "$BFS" ""
	done
	# b-adaptive: host 0 makes two calls; long- or short-term pins
	# by either host; a merge delay of 2; none (D = 0, as b-lazy)
	spawn adaptive-wide "-DADAPTIVE" "$SAFETY -DCOLLAPSE" "-w25"
	spawn adaptive-cycles2 "$ADAPTIVE" "-DNP -DNOCLAIM -DCOLLAPSE" "-l -w24"
	spawn adaptive-anypin "$ADAPTIVE -DHOST_ANY_PIN" "$SAFETY -DCOLLAPSE" "-w24"
	spawn adaptive-d2 "$ADAPTIVE -DMERGE_DELAY=2" "$SAFETY -DCOLLAPSE" "-w24"
	spawn adaptive-d0 "$ADAPTIVE -DMERGE_DELAY=0" "$SAFETY -DCOLLAPSE" "-w24"
	for n in "${!areach_names[@]}"; do
		spawn "areach-$n" "$ADAPTIVE -DREACH=$n" "$BFS" ""
	done
	# merge-drops-waiting: a period end drops the note of a block whose
	# page has not aged: once aged, the block stays split.  merge-no-backoff:
	# a merge does not lengthen the page's next wait: the second merge
	# comes too early.
	spawn merge-drops-waiting "$ADAPTIVE -DBROKEN_MERGE_DROPS_WAITING" "$BFS" ""
	spawn merge-no-backoff "$ADAPTIVE -DBROKEN_MERGE_NO_BACKOFF" "$BFS" ""
	# FAST: cycles with converters of two calls; no lost wakeup with
	# host 0 making two calls (a fast pin among them); b-adaptive with
	# the fast path (host 0: one call; converters: one call each, so
	# that host 0 can fault and fast-pin), its long-term pin's split
	# without a grace period; the probes.
	spawn fast-cycles2 "-DFAST" "-DNP -DNOCLAIM -DCOLLAPSE" "-l -w25"
	spawn fast-wake2 "-DFAST -DWITH_INFINITE_TIMEOUT -DNO_CALL_WHILE_PINNED" "$SAFETY -DCOLLAPSE" "-w24"
	spawn fast-adaptive "-DFAST $ADAPTIVE" "$SAFETY -DCOLLAPSE" "-w24"
	spawn fast-adaptive-conv1 "-DFAST -DADAPTIVE -DCONV_OPS=1" "$SAFETY -DCOLLAPSE" "-w24"
	spawn fast-adaptive-split-no-gp "-DFAST -DADAPTIVE -DCONV_OPS=1 -DBROKEN_FAST_SPLIT_NO_GRACE_PERIOD" "$BFS" ""
	for n in "${!freach_names[@]}"; do
		[ "$n" = 17 ] && continue
		spawn "freach-$n" "-DFAST -DREACH=$n" "$BFS" ""
	done
	# HOLDER_GP: cycles; no lost wakeup with converters of two calls;
	# either direction; without the re-check (the handshake alone keeps
	# every decision exact); with the conversion's handshake broken, the
	# re-check alone keeps the safety rule (error semantics off)
	spawn holder-cycles "$HOLDER -DCONV_OPS=1" "-DNP -DNOCLAIM -DCOLLAPSE" "-l -w24"
	spawn holder-wake2 "$HOLDER -DWITH_INFINITE_TIMEOUT -DNO_CALL_WHILE_PINNED" "$SAFETY -DCOLLAPSE" "-w24"
	spawn holder-any "$HOLDER -DCONV_ANY_DIRECTION -DHOST1_OPS=0" "$SAFETY" "-w24"
	spawn holder-no-recheck "$HOLDER -DBROKEN_FAST_NO_RECHECK" "$SAFETY -DCOLLAPSE" "-w24"
	spawn holder-mark-first-safe "$HOLDER -DBROKEN_HOLDER_MARK_FIRST -DNO_ERROR_SEMANTICS" "$SAFETY -DCOLLAPSE" "-w24"
	# the re-check still fails at times: a holder has made seq odd and
	# waits for this fast pin
	spawn hreach-21 "$HOLDER -DREACH=21" "$BFS" ""
fi
wait

report_real real-safety "real: safety+deadlock"
report_real real-cycles "real: no cycles (every run ends)"
report_real adaptive-safety "b-adaptive: safety+deadlock"
report_real adaptive-cycles "b-adaptive(converters: 1 call): no cycles (every run ends)"
if [ "$full" = 1 ]; then
	report_real ltl-safety "real: ltl [] no private access"
	report_real ltl-live "real: ltl <> all conversions returned (weak fairness)"
	report_real wide-safety "real(wide): safety+deadlock"
	report_real noinval-safe "variant(no-invalidate-lock, no EAGAIN check): safety+deadlock"
	report_real adaptive-wide "b-adaptive(host 0: 2 calls): safety+deadlock"
	report_real adaptive-cycles2 "b-adaptive(converters: 2 calls): no cycles"
	report_real adaptive-anypin "b-adaptive(any pin): safety+deadlock"
	report_real adaptive-d2 "b-adaptive(D=2): safety+deadlock"
	report_real adaptive-d0 "b-adaptive(D=0): safety+deadlock"
fi
report_real fast-safety "fast: safety+deadlock"
report_real fast-cycles "fast(converters: 1 call): no cycles (every run ends)"
report_real fast-wake "fast(no deadline, host 0: 1 call): no lost wakeup (deadlock check)"
report_real fast-any "fast(either direction, host 1 idle): safety+deadlock"
report_real holder-safety "fast, holder waits: safety+deadlock"
report_real holder-wake "fast, holder waits(no deadline, converters: 1 call): no lost wakeup"
if [ "$full" = 1 ]; then
	report_real fast-cycles2 "fast(converters: 2 calls): no cycles"
	report_real fast-wake2 "fast(no deadline, host 0: 2 calls): no lost wakeup"
	report_real fast-adaptive "fast + b-adaptive(host 0: 1 call): safety+deadlock"
	report_real fast-adaptive-conv1 "fast + b-adaptive(converters: 1 call): safety+deadlock"
	report_real holder-cycles "fast, holder waits(converters: 1 call): no cycles"
	report_real holder-wake2 "fast, holder waits(no deadline, converters: 2 calls): no lost wakeup"
	report_real holder-any "fast, holder waits(either direction, host 1 idle): safety+deadlock"
	report_real holder-no-recheck "variant(fast, holder waits, no re-check): safety+deadlock"
	report_real holder-mark-first-safe "variant(fast, holder-mark-first, no EAGAIN check): safety+deadlock"
fi
report_broken no-refcheck "broken(no-refcheck)"
report_broken no-inval "broken(no-invalidate-lock)"
report_broken kick-no-loop "broken(kick-no-loop)"
report_broken kick-spins "broken(kick-spins)"
report_broken infinite "hazard(infinite-timeout)"
report_broken no-split-before-pin "broken(b-adaptive, no-split-before-pin)" "" "pinlt["
report_broken split-no-refcheck "broken(b-adaptive, split-no-refcheck)" "" "((ref[2]==1)&&(map[2]==0))"
report_broken merge-ignores-age "broken(b-adaptive, merge-ignores-age)" "" "violated (gage>=("
report_broken fast-no-recheck "broken(fast, no-recheck)" "" "&& !(((pinf[3]!=0)&&(attr["
report_broken fast-unpin-no-wake "broken(fast, unpin-no-wake)" "" "invalid end state"
report_broken fast-no-grace-period "broken(fast, no-grace-period)" "" "(pinc[(bad-1)]>0)"
report_broken fast-split-no-grace-period "broken(fast, split-no-grace-period)" "" "((ref[2]==1)&&(map[2]==0))"
report_broken fast-undo-no-note "broken(fast, undo-no-note)" "" "!((((split&&(attr[0]==attr[1]))"
report_broken freach-17 "reach(17: ${freach_names[17]})" reach
report_broken holder-mark-first "broken(fast, holder-mark-first)" "" "(fref[3]==0))"
report_broken holder-mark-first-no-recheck "broken(fast, holder-mark-first, no-recheck)" "" "&& !(((pinf[3]!=0)&&(attr["
report_broken holder-unpin-no-announce "broken(fast, holder waits, unpin-no-announce)" "" "invalid end state"
if [ "$full" = 1 ]; then
	report_broken fast-adaptive-split-no-gp "broken(fast + b-adaptive, split-no-grace-period)" "" "(pinc[2]>0)"
	for n in "${!freach_names[@]}"; do
		[ "$n" = 17 ] && continue
		report_broken "freach-$n" "reach($n: ${freach_names[$n]})" reach
	done
	report_broken hreach-21 "reach(21, holder waits: a re-check fails while the holder waits for it)" reach
	report_broken merge-drops-waiting "broken(b-adaptive, merge-drops-waiting)" "" "&&(gage>=("
	report_broken merge-no-backoff "broken(b-adaptive, merge-no-backoff)" "" "violated (gage>=("
	for n in "${!reach_names[@]}"; do
		report_broken "reach-$n" "reach($n: ${reach_names[$n]})" reach
	done
	for n in "${!areach_names[@]}"; do
		report_broken "areach-$n" "reach($n: ${areach_names[$n]})" reach
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
