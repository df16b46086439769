#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/compare/calibrate.sh BUILD - `gmem calibrate`: as root, --quick
# writes a JSON that --show reads back with every unit present and
# positive, and every setting it touches (the HVO sysctl, each huge page
# size's nr_hugepages, nr_overcommit_hugepages and demote_size) is as it
# was afterwards, also when the run is ended by SIGTERM in the middle;
# without root (nobody, through setpriv or su) it falls back to the
# published figures for the hugetlb units and says so.  Exits 77 with the
# reason where it cannot run at all.

set -u
build=${1:-build}
gmem=$build/gmem
fails=0

if [ ! -x "$gmem" ]; then
	echo "not built: $gmem"
	exit 1
fi
if [ ! -d /proc/sys/vm ]; then
	echo "skipped: no /proc/sys/vm (gmem calibrate measures Linux)"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmem-calibrate.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# every setting gmem calibrate may change, one "path=value" a line
settings() {
	local f
	for f in /proc/sys/vm/hugetlb_optimize_vmemmap \
		 /sys/kernel/mm/hugepages/hugepages-*/nr_hugepages \
		 /sys/kernel/mm/hugepages/hugepages-*/nr_overcommit_hugepages \
		 /sys/kernel/mm/hugepages/hugepages-*/demote_size; do
		[ -r "$f" ] && echo "$f=$(cat "$f")"
	done
}

units=(split_1g split_2m merge_2m merge_1g zero_4k zap_pte tlb_flush fault
       s2_inval iommu_inval iommu_map)

# check_show FILE: --show reads FILE back, every unit with a positive ns
check_show() {
	local file=$1 out=$tmp/show.out u ns
	if ! "$gmem" calibrate --show --out "$file" >"$out" 2>&1; then
		fail "calibrate --show --out $file failed"
		sed 's/^/    /' "$out"
		return
	fi
	grep -q "^file: $file\$" "$out" || fail "--show did not name $file"
	for u in "${units[@]}"; do
		ns=$(awk -v u="$u" '$1 == u { print $2 }' "$out")
		if [ -z "$ns" ]; then
			fail "--show of $file: no unit $u"
		elif ! awk -v n="$ns" 'BEGIN { exit !(n + 0 > 0) }'; then
			fail "--show of $file: $u is $ns"
		fi
	done
	# the same through the environment variable
	GMEM_CALIBRATION=$file "$gmem" calibrate --show >"$out.env" 2>&1
	cmp -s "$out" "$out.env" || fail "GMEM_CALIBRATION=$file --show differs"
}

# JSON shape, where python3 is at hand
check_json() {
	command -v python3 >/dev/null 2>&1 || return 0
	python3 - "$1" "${units[@]}" <<'PY' || fail "$1: JSON shape"
import json, math, sys
d = json.load(open(sys.argv[1]))
assert d["gmem_calibration"] == 1, "version"
assert isinstance(d["when"], str) and d["when"].endswith("Z"), "when"
for u in sys.argv[2:]:
    e = d["units"][u]
    assert math.isfinite(e["ns"]) and e["ns"] > 0, u
    assert e["source"] in ("measured", "model", "default"), u
    assert e["how"], u
for k, v in d["raw"].items():
    assert k.endswith("_ns") or k.startswith("hvo_vmemmap_pages"), k
    assert isinstance(v, (int, float)), k
PY
}

ran=0

# --- as root: measures, restores every setting -----------------------
if [ "$(id -u)" = 0 ]; then
	ran=1
	before=$(settings)
	if ! "$gmem" calibrate --quick --out "$tmp/root.json" \
		>"$tmp/root.out" 2>"$tmp/root.err"; then
		fail "calibrate --quick as root failed"
		sed 's/^/    /' "$tmp/root.err" "$tmp/root.out" | tail -n 20
	fi
	after=$(settings)
	if [ "$before" != "$after" ]; then
		fail "settings changed by calibrate:"
		diff <(echo "$before") <(echo "$after") | sed 's/^/    /'
	fi
	grep -q "^saved to $tmp/root.json" "$tmp/root.out" ||
		fail "calibrate did not say where it saved"
	check_show "$tmp/root.json"
	check_json "$tmp/root.json"
	# every setting it changed, it says it restored
	while read -r f; do
		grep -q "^calibrate: restored $f to " "$tmp/root.err" ||
			fail "changed $f and did not say it restored it"
	done < <(sed -n 's/^calibrate: changing \([^ ]*\) .*/\1/p' \
		 "$tmp/root.err")
	if [ -w /proc/sys/vm/hugetlb_optimize_vmemmap ] &&
	   [ -w /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages ]; then
		grep -q "^calibrate: changing /proc/sys/vm/hugetlb_optimize_vmemmap" \
			"$tmp/root.err" || fail "as root, HVO was not measured"
		grep -Eq '"split_2m": \{ "ns": [0-9.]+, "source": "model"' \
			"$tmp/root.json" || fail "split_2m not modelled from this host"
	fi

	# ended by SIGTERM in the middle of the hugetlb part
	if [ -w /proc/sys/vm/hugetlb_optimize_vmemmap ]; then
		before=$(settings)
		"$gmem" calibrate --out "$tmp/term.json" >/dev/null \
			2>"$tmp/term.err" &
		pid=$!
		for _ in $(seq 500); do
			grep -q '^calibrate: changing' "$tmp/term.err" && break
			sleep 0.01
		done
		kill -TERM "$pid" 2>/dev/null
		wait "$pid"
		rc=$?
		after=$(settings)
		if [ "$before" != "$after" ]; then
			fail "settings changed by calibrate ended by SIGTERM:"
			diff <(echo "$before") <(echo "$after") | sed 's/^/    /'
		fi
		if [ "$rc" = 143 ] &&
		   ! grep -q 'signal: wrote back' "$tmp/term.err"; then
			fail "SIGTERM: no word of the settings written back"
		fi
	fi
fi

# --- without root: the published figures, said so ---------------------
# run_user CMD...: CMD as a user other than root (nobody when root)
user_mode=
if [ "$(id -u)" != 0 ]; then
	user_mode=self
elif command -v setpriv >/dev/null 2>&1 &&
     setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null; then
	user_mode=setpriv
elif command -v su >/dev/null 2>&1 &&
     su nobody -s /bin/sh -c true 2>/dev/null; then
	user_mode=su
fi
run_user() {
	case $user_mode in
	self) "$@" ;;
	setpriv) setpriv --reuid=65534 --regid=65534 --clear-groups "$@" ;;
	su) su nobody -s /bin/sh -c "$(printf '%q ' "$@")" ;;
	esac
}
bin=$(readlink -f "$gmem")
if [ -z "$user_mode" ]; then
	echo "note: neither setpriv nor su can run as nobody: no non-root run"
elif ! run_user test -x "$bin" 2>/dev/null; then
	echo "note: $bin is not executable by nobody: no non-root run"
else
	ran=1
	mkdir -m 777 "$tmp/user"
	out=$tmp/user/c.json
	run_user "$bin" calibrate --quick --out "$out" >"$tmp/user.out" \
		2>"$tmp/user.err"
	rc=$?
	if [ "$rc" != 0 ]; then
		fail "calibrate --quick without root: exit $rc"
		sed 's/^/    /' "$tmp/user.err" | tail -n 10
	fi
	grep -q "^calibrate: not root: HVO and demote not measured.*published" \
		"$tmp/user.err" || fail "without root it did not say so"
	grep -q '^calibrate: changing' "$tmp/user.err" &&
		fail "without root it changed a setting"
	grep -Eq '"split_1g": \{ "ns": [0-9.]+, "source": "default", "how": "[^"]*Kravetz' \
		"$out" || fail "without root split_1g is not the published default"
	check_show "$out"
	check_json "$out"
fi

if [ "$ran" = 0 ]; then
	echo "skipped: neither as root nor as another user could it run"
	exit 77
fi

# --- no file: --show gives the defaults with a note ----------------------
"$gmem" calibrate --show --out "$tmp/none.json" >"$tmp/none.out" 2>&1 ||
	fail "--show without a file failed"
grep -q "^no calibration at $tmp/none.json" "$tmp/none.out" ||
	fail "--show without a file did not say so"
grep -q "^split_1g .* default " "$tmp/none.out" ||
	fail "--show without a file did not print the defaults"
# a file that is no calibration
echo '{"gmem_calibration": 1}' >"$tmp/bad.json"
"$gmem" calibrate --show --out "$tmp/bad.json" >/dev/null 2>"$tmp/bad.err"
[ $? = 1 ] || fail "--show of a broken file did not exit 1"
grep -q "not a gmem calibration" "$tmp/bad.err" ||
	fail "--show of a broken file did not say why"
# usage
"$gmem" calibrate --bogus >/dev/null 2>&1
[ $? = 2 ] || fail "an unknown option did not exit 2"
"$gmem" calibrate --help | grep -q '^usage: gmem calibrate' ||
	fail "--help has no usage line"

[ "$fails" -eq 0 ]
