#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/ship/symbols.sh BUILD - the shared library exports exactly the
# public API: the symbols listed in tests/ship/symbols.txt, no more and no
# fewer (everything else is hidden by -fvisibility=hidden).  An API change
# updates the list on purpose; an accidental export fails here.

set -u
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 2
lib=$build/libgmem.so
if [ ! -e "$lib" ]; then
	echo "not built: $lib"
	exit 1
fi
# ASan adds one __odr_asan.<name> symbol per global: the runtime's, not ours.
got=$(nm -D --defined-only "$lib" | awk '{ print $3 }' |
	grep -v '^__odr_asan' | sort)
want=$(grep -v '^#' tests/ship/symbols.txt | sort)
if [ "$got" != "$want" ]; then
	echo "exported symbols differ from tests/ship/symbols.txt (< exported, > listed):"
	diff <(echo "$got") <(echo "$want") | grep '^[<>]'
	exit 1
fi
# every exported function is declared in the public header
for s in $got; do
	if ! grep -q "\b$s\b" include/gmem.h; then
		echo "$s is exported but not in include/gmem.h"
		exit 1
	fi
done
echo "$(echo "$got" | wc -l) symbols exported, as listed"
