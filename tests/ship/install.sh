#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/ship/install.sh BUILD - `make install` into a temporary prefix (with
# DESTDIR), then build every examples/*.c against the installed library
# with `pkg-config --cflags --libs gmem`, run each (exit 77: skipped, its
# first line says why), check the installed tool, the man pages (one per
# exported function: `man gmem_convert`) and the documents, and
# `make uninstall` leaves no file behind.
# The default build only: a sanitizer build's library needs its runtime
# linked into every program that uses it.

set -u
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 2
if [ "$build" != build ]; then
	echo "skipped: installs the default build only (this is $build)"
	exit 77
fi
if ! command -v pkg-config >/dev/null 2>&1; then
	echo "skipped: pkg-config is not installed (apt-get install pkgconf)"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmem-install.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
prefix=/opt/gmem-test
dest=$tmp/dest
fails=0

if ! make -s install PREFIX=$prefix DESTDIR="$dest" >"$tmp/log" 2>&1; then
	echo "make install failed:"
	tail -n 20 "$tmp/log"
	exit 1
fi
root=$dest$prefix
for f in bin/gmem include/gmem.h lib/libgmem.a lib/libgmem.so \
	lib/libgmem.so.0 lib/pkgconfig/gmem.pc share/man/man1/gmem.1 \
	share/man/man3/libgmem.3 share/man/man5/gmem-trace.5 \
	share/doc/gmem/COSTS.md share/doc/gmem/JSON.md \
	share/doc/gmem/compare.schema.json share/doc/gmem/examples/vmm-loop.c \
	$(grep -v '^#' tests/ship/symbols.txt | sed 's|.*|share/man/man3/&.3|'); do
	if [ ! -e "$root/$f" ]; then
		echo "not installed: $f"
		fails=$((fails + 1))
	fi
done
# `man gmem_convert` finds the installed page (and a .so link's target).
if command -v man >/dev/null 2>&1; then
	for fn in gmem_convert gmem_host_copy_in; do
		if ! MANWIDTH=80 man -M "$root/share/man" "$fn" 2>/dev/null |
			grep -q "^NAME"; then
			echo "man -M $root/share/man $fn finds no page"
			fails=$((fails + 1))
		fi
	done
fi
soname=$(objdump -p "$root/lib/libgmem.so" 2>/dev/null |
	awk '$1 == "SONAME" { print $2 }')
if [ "$soname" != libgmem.so.0 ]; then
	echo "soname is '$soname', wanted libgmem.so.0"
	fails=$((fails + 1))
fi

# pkg-config reads the .pc as installed; its prefix is where the files
# would be without DESTDIR, so point it at the staged tree.
export PKG_CONFIG_PATH=$root/lib/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dest
flags=$(pkg-config --cflags --libs gmem) || { echo "pkg-config failed"; exit 1; }
version=$(pkg-config --modversion gmem)
want=$(sed -n 's/.*GMEM_VERSION_STRING "\(.*\)".*/\1/p' include/gmem.h)
if [ "$version" != "$want" ]; then
	echo "pkg-config says version $version, gmem.h $want"
	fails=$((fails + 1))
fi
for src in examples/*.c; do
	name=$(basename "$src" .c)
	# shellcheck disable=SC2086  # flags are words
	if ! cc -std=c11 -Wall -Wextra -Werror "$src" $flags -o "$tmp/$name" \
		>"$tmp/cc.log" 2>&1; then
		echo "example $name does not build against the installed library:"
		cat "$tmp/cc.log"
		fails=$((fails + 1))
		continue
	fi
	LD_LIBRARY_PATH=$root/lib "$tmp/$name" >"$tmp/run.log" 2>&1
	rc=$?
	if [ "$rc" = 77 ]; then
		# an example that needs what this machine lacks (vmm-view:
		# userfaultfd) says so in one line
		echo "example $name $(head -n 1 "$tmp/run.log")"
	elif [ "$rc" != 0 ]; then
		echo "example $name failed:"
		tail -n 10 "$tmp/run.log"
		fails=$((fails + 1))
	elif ! LD_LIBRARY_PATH=$root/lib ldd "$tmp/$name" |
		grep -q "$root/lib/libgmem.so.0"; then
		echo "example $name is not linked with the installed libgmem.so.0"
		fails=$((fails + 1))
	fi
done
if [ "$("$root/bin/gmem" --version)" != "gmem $want" ]; then
	echo "the installed tool's --version is wrong"
	fails=$((fails + 1))
fi

make -s uninstall PREFIX=$prefix DESTDIR="$dest" >/dev/null 2>&1
left=$(find "$dest" -type f | wc -l)
if [ "$left" != 0 ]; then
	echo "make uninstall left $left files:"
	find "$dest" -type f | head
	fails=$((fails + 1))
fi
[ "$fails" -eq 0 ]
