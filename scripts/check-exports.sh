#!/usr/bin/env bash
# Checks that libcvmkit.so exports exactly the public API.
# Usage: scripts/check-exports.sh BUILD_DIR   (the ctest test build.exports)
#
# The library is built with -fvisibility=hidden; a symbol is exported only
# when a header in include/cvmkit/ declares it with CVM_API (the name on the
# same line as the marker). This compares `nm -D` of the shared library with
# those declarations, both ways: an exported symbol that no public header
# declares is a leak of an internal function; a declared one that is not
# exported has no definition (or lost its marker).
set -euo pipefail

build="${1:?usage: check-exports.sh BUILD_DIR}"
src="$(cd "$(dirname "$0")/.." && pwd)"
so="$build/lib/libcvmkit.so"
[ -f "$so" ] || {
	echo "check-exports: $so is missing (build the project first)" >&2
	exit 1
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$so" | awk 'NF == 3 { print $3 }' | grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' |
	sort -u >"$tmp/exported"
grep -ohP 'CVM_API\b[^(;\[]*?\b\Kcvm_\w+(?=\s*[\(\[;])' "$src"/include/cvmkit/*.h | sort -u >"$tmp/declared"

bad=0
while read -r s; do
	echo "check-exports: $s is exported but no header in include/cvmkit/ declares it with CVM_API"
	bad=1
done < <(comm -23 "$tmp/exported" "$tmp/declared")
while read -r s; do
	echo "check-exports: $s is declared with CVM_API in include/cvmkit/ but the library does not export it"
	bad=1
done < <(comm -13 "$tmp/exported" "$tmp/declared")
# A function declared at the top level of a public header without the
# marker would be neither exported nor usable.
while IFS= read -r l; do
	echo "check-exports: declared without CVM_API: $l"
	bad=1
done < <(grep -nE '^[A-Za-z_][A-Za-z0-9_ *]*\bcvm_[A-Za-z0-9_]+[[:space:]]*\(' "$src"/include/cvmkit/*.h |
	grep -vE ':(CVM_API|typedef|static|extern CVM_API)\b' | sed "s|^$src/||" || true)
# Every name the shared library exports carries the project prefix.
if grep -v '^cvm_' "$tmp/exported" >/dev/null; then
	echo "check-exports: exported without the cvm_ prefix: $(grep -v '^cvm_' "$tmp/exported" | tr '\n' ' ')"
	bad=1
fi
[ "$bad" -eq 0 ] || exit 1
echo "check-exports: $(wc -l <"$tmp/exported") symbols exported, each declared in include/cvmkit/"
