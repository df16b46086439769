#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/ship/links.sh BUILD - every reference in the documents resolves.
#
# README.md and docs/*.md are read in the source tree: their relative
# markdown links, paths of the tree (docs/X.md, examples/x.c, tests/...,
# globs too), bare X.md names (beside the document, else at the top) and
# man page references of gmem's own (gmem-trace(5), libgmem(3),
# gmem_convert(3)) must name a file or page of the tree.
#
# The man pages, include/gmem.h and the output of `gmem --help` and of
# each subcommand's --help are read as `make install DESTDIR=` installs
# them, where the source tree is gone: their man page references and
# gmem_*() names must be installed pages, their paths and X.md names files
# installed in the documentation directory (DOCDIR: X.md, examples/x.c),
# so that docs/X.md or tests/... there fails.
#
# Prints every reference that does not resolve, as FILE:LINE: REF.

set -u
build=${1:-build}
cd "$(dirname "$0")/../.." || exit 2
if [ "$build" != build ]; then
	echo "skipped: checks the default build's install only (this is $build)"
	exit 77
fi
if ! echo x | grep -qP 'x' 2>/dev/null; then
	echo "skipped: grep has no -P (GNU grep needed)"
	exit 77
fi
if ! command -v man >/dev/null 2>&1; then
	echo "skipped: man is not installed (apt-get install man-db)"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmem-links.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
bad=$tmp/bad
: >"$bad"

# The tree's top-level directories (not the build's): a path that starts
# with one of them is a reference.
tops=$(for d in */ .ci/; do
	d=${d%/}
	case $d in build*|'*') continue ;; esac
	[ -d "$d" ] && printf '%s\n' "$d"
done | sed 's/\./\\./g' | paste -sd'|')
path_re="(?<![\\w./~\$-])(?:$tops)/[\\w.*/-]*"
md_re='(?<![\w./-])[\w-]+\.md\b|(?<![\w./-])compare\.schema\.json\b'
page_re='\b(?:lib)?gmem[\w-]*\([1-8]\)'
func_re='\bgmem_\w+(?=\(\))'

# refs FILE REGEX: LINE<TAB>REF for each match, trailing dots and commas off.
refs() {
	grep -onP "$2" "$1" | sed -e 's/^\([0-9]*\):/\1\t/' -e 's/[.,:]*$//'
}

# fail WHERE REF
fail() {
	printf '%s: %s\n' "$1" "$2" >>"$bad"
}

# ---- the source tree: README.md, docs/*.md
for f in README.md docs/*.md; do
	dir=$(dirname "$f")
	while IFS=$'\t' read -r line ref; do
		compgen -G "$ref" >/dev/null || fail "$f:$line" "$ref"
	done < <(refs "$f" "$path_re")
	while IFS=$'\t' read -r line ref; do
		[ -e "$dir/$ref" ] || [ -e "$ref" ] || fail "$f:$line" "$ref"
	done < <(refs "$f" "$md_re")
	while IFS=$'\t' read -r line ref; do
		case $ref in
		http:*|https:*|mailto:*) continue ;;
		esac
		[ -e "$dir/$ref" ] || fail "$f:$line" "$ref"
	done < <(refs "$f" '\]\(\K[^)\s#]+')
	while IFS=$'\t' read -r line ref; do
		name=${ref%(*} sec=${ref#*(} sec=${sec%)}
		[ -e "man/$name.$sec" ] || [ -e "man/man$sec/$name.$sec" ] ||
			fail "$f:$line" "$ref"
	done < <(refs "$f" "$page_re")
done

# ---- what make install installs
prefix=/usr/local
dest=$tmp/dest
if ! make -s install PREFIX=$prefix DESTDIR="$dest" >"$tmp/log" 2>&1; then
	echo "make install failed:"
	tail -n 20 "$tmp/log"
	exit 1
fi
root=$dest$prefix
mandir=$root/share/man
docdir=$root/share/doc/gmem
texts=$tmp/texts
mkdir -p "$texts"
# Each page as the reader sees it (a .so link is its target's page), wide
# enough that no reference is broken over two lines.
for page in "$mandir"/man*/*; do
	grep -q '^\.so ' "$page" && continue
	rel=${page#"$mandir"/}
	(cd "$mandir" && MANWIDTH=1000 man -l "$rel" 2>/dev/null) | col -b \
		>"$texts/${rel//\//_}"
done
cp "$root/include/gmem.h" "$texts/gmem.h"
tool=$root/bin/gmem
"$tool" --help >"$texts/gmem--help" 2>&1
for cmd in $("$tool" --help | awk '/^commands:/ { on = 1; next }
	on && /^  [a-z]/ { print $1 }'); do
	"$tool" "$cmd" --help >"$texts/gmem-$cmd--help" 2>&1
done
for f in "$texts"/*; do
	name=${f##*/}
	while IFS=$'\t' read -r line ref; do
		name_=${ref%(*} sec=${ref#*(} sec=${sec%)}
		[ -e "$mandir/man$sec/$name_.$sec" ] || fail "$name:$line" "$ref"
	done < <(refs "$f" "$page_re")
	while IFS=$'\t' read -r line ref; do
		[ -e "$mandir/man3/$ref.3" ] || fail "$name:$line" "$ref()"
	done < <(refs "$f" "$func_re")
	while IFS=$'\t' read -r line ref; do
		(cd "$docdir" && compgen -G "$ref" >/dev/null) ||
			fail "$name:$line" "$ref (not installed)"
	done < <(refs "$f" "$path_re")
	while IFS=$'\t' read -r line ref; do
		[ -e "$docdir/$ref" ] || fail "$name:$line" "$ref (not installed)"
	done < <(refs "$f" "$md_re")
done

if [ -s "$bad" ]; then
	awk '!seen[$0]++' "$bad" >"$bad.u"
	echo "references that do not resolve ($(wc -l <"$bad.u")):"
	cat "$bad.u"
	exit 1
fi
echo "every reference resolves"
