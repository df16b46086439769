#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tools/deps.sh PACKAGE... - install the Debian packages named that are
# missing (apt-get, as root or through sudo).  The Makefile calls it for
# the one library the build needs beyond a C toolchain (liburcu-dev), so
# that `make` works on a fresh Debian machine; .ci/run for everything the
# tests use.  Without apt-get, or without the right to use it, it prints
# the command to run and exits 1.

set -u
missing=()
for p in "$@"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	     grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo=sudo
	else
		echo "gmem: missing Debian packages: ${missing[*]}; as root: apt-get install ${missing[*]}" >&2
		exit 1
	fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "gmem: missing packages (not a Debian system?): ${missing[*]}" >&2
	exit 1
fi
echo "gmem: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >&2 || true
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
