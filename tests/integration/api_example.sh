#!/usr/bin/env bash
# docs/api.md's example program, as a user of the installed library builds it:
# install into a temporary prefix, extract the C block under "## Example",
# compile it with the installed pkg-config file (shared, and static with the
# private dependencies), and run it on a real TDX quote: accepted at the
# vector's own time, rejected (exit 3) two seconds later, when the collateral
# has expired.
set -euo pipefail

build="$(cd "${CVM_BIN:?CVM_BIN is not set}/.." && pwd)"
src="${CVM_SOURCE_DIR:?CVM_SOURCE_DIR is not set}"
# shellcheck source=tests/common/vectors.sh
. "$src/tests/common/vectors.sh"
vectors_require tdx/dcapqvl-tdx-v4-uptodate/quote.bin tdx/dcapqvl-tdx-v4-uptodate/tcb_info.json
vec="$VECTORS/tdx/dcapqvl-tdx-v4-uptodate"
at=1752919234 # the vector's verify_at_unix (its manifest.json)

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log"
pc="$(find "$tmp/prefix" -name cvmkit.pc | head -n 1)"
[ -n "$pc" ] || {
	echo "FAIL: the install put no cvmkit.pc under $tmp/prefix" >&2
	exit 1
}
libdir="$(dirname "$(dirname "$pc")")"
export PKG_CONFIG_PATH="$(dirname "$pc")"

awk '/^## Example/ { f = 1 } f && /^```c$/ { c = 1; next } c && /^```$/ { exit } c { print }' \
	"$src/docs/api.md" >"$tmp/verify_quote.c"
[ "$(wc -l <"$tmp/verify_quote.c")" -gt 20 ] || {
	echo "FAIL: no example program found in docs/api.md" >&2
	exit 1
}
# The example includes only installed headers: the source tree is not on the path.
cflags="$(pkg-config --cflags cvmkit)"
case "$cflags" in *"$src"*) echo "FAIL: pkg-config points into the source tree: $cflags" >&2 && exit 1 ;; esac

# The build's own compiler, and its sanitizers when the library has them.
cc="${CVM_CC:-cc}"
san=()
[ -z "${CVM_SANITIZE:-}" ] || san=("-fsanitize=$CVM_SANITIZE")
"$cc" -std=c11 -Wall -Wextra -Werror "${san[@]}" $cflags "$tmp/verify_quote.c" $(pkg-config --libs cvmkit) \
	-o "$tmp/verify_quote"
"$cc" -std=c11 -Wall -Wextra -Werror "${san[@]}" $cflags "$tmp/verify_quote.c" "$libdir/libcvmkit.a" \
	$(pkg-config --static --libs cvmkit | sed 's/-lcvmkit//') -o "$tmp/verify_quote_static"

for prog in verify_quote verify_quote_static; do
	rc=0
	LD_LIBRARY_PATH="$libdir" "$tmp/$prog" "$vec/quote.bin" "$vec" "$at" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ] || ! grep -q '^verdict: accepted$' "$tmp/out"; then
		echo "FAIL: $prog at $at: exit $rc" >&2
		cat "$tmp/out" >&2
		exit 1
	fi
	rc=0
	LD_LIBRARY_PATH="$libdir" "$tmp/$prog" "$vec/quote.bin" "$vec" "$((at + 2))" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" -ne 3 ] || ! grep -q '^verdict: rejected' "$tmp/out"; then
		echo "FAIL: $prog after the collateral expired: exit $rc (want 3)" >&2
		cat "$tmp/out" >&2
		exit 1
	fi
	echo "ok: $prog: accepted at $at, rejected at $((at + 2)) ($(grep '^verdict' "$tmp/out"))"
done
# The shared program resolves cvmkit from the installed prefix, not the build tree.
deps="$(LD_LIBRARY_PATH="$libdir" ldd "$tmp/verify_quote")"
case "$deps" in *"$libdir/libcvmkit.so"*) ;; *) false ;; esac || {
	echo "FAIL: verify_quote does not load libcvmkit.so from the installed prefix" >&2
	exit 1
}
echo "api_example: docs/api.md's program builds against the installed library and verifies"
