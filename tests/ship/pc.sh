#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/ship/pc.sh BUILD - the installed gmem.pc follows the install
# variables of each `make install`: installs one after another with other
# PREFIX, LIBDIR and INCLUDEDIR values (as `make install` to /usr/local
# then tests/ship/install.sh's staged install do) each get a .pc of their
# own, and an install with the same values does not make it again.
# The default build only, as install.sh.

set -u
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 2
if [ "$build" != build ]; then
	echo "skipped: installs the default build only (this is $build)"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmem-pc.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
fails=0

# install_as N PREFIX LIBDIR INCLUDEDIR [MAKE VARIABLES...]: make install into
# $tmp/N; the installed .pc must name PREFIX, LIBDIR and INCLUDEDIR.
install_as() {
	local n=$1 prefix=$2 libdir=$3 includedir=$4 pc got want
	shift 4
	if ! make -s install DESTDIR="$tmp/$n" PREFIX="$prefix" "$@" \
		>"$tmp/log" 2>&1; then
		echo "make install PREFIX=$prefix $* failed:"
		tail -n 20 "$tmp/log"
		exit 1
	fi
	pc=$tmp/$n$libdir/pkgconfig/gmem.pc
	if [ ! -f "$pc" ]; then
		echo "make install PREFIX=$prefix $*: no $libdir/pkgconfig/gmem.pc"
		fails=$((fails + 1))
		return
	fi
	got=$(grep -E '^(prefix|libdir|includedir)=' "$pc")
	want=$(printf 'prefix=%s\nlibdir=%s\nincludedir=%s' "$prefix" \
		"$libdir" "$includedir")
	if [ "$got" != "$want" ]; then
		echo "make install PREFIX=$prefix $*: gmem.pc says"
		printf '%s\n' "$got" | sed 's/^/    /'
		echo "  wanted"
		printf '%s\n' "$want" | sed 's/^/    /'
		fails=$((fails + 1))
	fi
}

install_as 1 /opt/gmem-a /opt/gmem-a/lib /opt/gmem-a/include
install_as 2 /opt/gmem-b /opt/gmem-b/lib /opt/gmem-b/include
install_as 3 /opt/gmem-b /opt/gmem-b/lib64 /opt/gmem-b/include \
	LIBDIR=/opt/gmem-b/lib64
install_as 4 /opt/gmem-b /opt/gmem-b/lib64 /opt/gmem-b/inc \
	LIBDIR=/opt/gmem-b/lib64 INCLUDEDIR=/opt/gmem-b/inc
before=$(stat -c %y "$build/gmem.pc")
install_as 5 /opt/gmem-b /opt/gmem-b/lib64 /opt/gmem-b/inc \
	LIBDIR=/opt/gmem-b/lib64 INCLUDEDIR=/opt/gmem-b/inc
if [ "$(stat -c %y "$build/gmem.pc")" != "$before" ]; then
	echo "an install with the same variables made gmem.pc again"
	fails=$((fails + 1))
fi
# and back to the first prefix
install_as 6 /opt/gmem-a /opt/gmem-a/lib /opt/gmem-a/include
[ "$fails" -eq 0 ]
