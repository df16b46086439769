# SPDX-License-Identifier: MIT
#
# tests/vm/lib.bash - sourced by tests/vm/*.sh: skip (exit 77, the reason as
# the last line) where `gmem vm` cannot run a KVM guest, and run it.

# need_kvm: /dev/kvm must be there and open for reading and writing.
need_kvm() {
	if [ ! -e /dev/kvm ]; then
		echo "skipped: no /dev/kvm on this host"
		exit 77
	fi
	if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		echo "skipped: /dev/kvm is not accessible to $(id -un) (root or the kvm group)"
		exit 77
	fi
}

# run_vm OUT ARGS...: `gmem vm ARGS` with its output in OUT; exit 77 if
# gmem says KVM is not usable (its exit 77), else return gmem's status.
run_vm() {
	local out=$1 rc
	shift
	"$gmem" vm "$@" >"$out" 2>&1
	rc=$?
	cat "$out"
	if [ "$rc" = 77 ]; then
		echo "skipped: KVM is not usable here: $(tail -n 1 "$out")"
		exit 77
	fi
	return "$rc"
}

# expect_line OUT REGEX: OUT has a line matching REGEX (grep -E).
expect_line() {
	if ! grep -Eq -- "$2" "$1"; then
		echo "FAIL: no line matching: $2"
		exit 1
	fi
}
