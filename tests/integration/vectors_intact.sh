#!/usr/bin/env bash
# The repository's own vectors are whole, so that the tests and the README's
# commands need nothing outside the repository:
#  - every file tests/vectors/SHA256SUMS lists is there, byte for byte (no
#    line-ending conversion, no Git LFS pointer, no edit);
#  - every file under tests/vectors is listed (besides README.md, SOURCES.md,
#    SHA256SUMS and .gitattributes): a vector added without its sum fails;
#  - every vector folder (tdx/<x>, sgx/<x>, snp/<x>, eventlog/<x>, ima/<x>,
#    compat/<topic>) and every file at a kind's top (tdx/manifest.json, ...)
#    is named in tests/vectors/SOURCES.md, which gives its origin and licence.
# Needs: sha256sum (coreutils).
set -euo pipefail

# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
vectors_require SHA256SUMS SOURCES.md README.md

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# --- the bytes ------------------------------------------------------------------
listed=0
bad=0
while IFS= read -r line; do
	want="${line%% *}"
	rel="${line#*  }"
	listed=$((listed + 1))
	if [ ! -f "$VECTORS/$rel" ]; then
		fail "tests/vectors/$rel is missing"
		bad=$((bad + 1))
		continue
	fi
	got="$(sha256sum <"$VECTORS/$rel")"
	got="${got%% *}"
	if [ "$got" != "$want" ]; then
		fail "tests/vectors/$rel has changed: sha256 $got, SHA256SUMS says $want"
		bad=$((bad + 1))
	fi
done <"$VECTORS/SHA256SUMS"
[ "$listed" -gt 0 ] || fail "tests/vectors/SHA256SUMS lists no file"
echo "vectors_intact: $listed files listed in tests/vectors/SHA256SUMS, $bad missing or changed"

# --- nothing unlisted -----------------------------------------------------------
listed_paths="$(sed 's/^[0-9a-f]*  //' "$VECTORS/SHA256SUMS")"
found_paths="$(find "$VECTORS" -type f -printf '%P\n' | { grep -vxE 'SHA256SUMS|README\.md|SOURCES\.md|\.gitattributes' || true; })"
while IFS= read -r rel; do
	grep -qxF -- "$rel" <<<"$listed_paths" ||
		fail "tests/vectors/$rel is not in tests/vectors/SHA256SUMS (add its sum and its origin in SOURCES.md)"
done <<<"$found_paths"

# --- every folder has its origin in SOURCES.md -------------------------------------
named=0
while IFS= read -r item; do
	named=$((named + 1))
	grep -qF "\`$item\`" "$VECTORS/SOURCES.md" ||
		fail "tests/vectors/SOURCES.md does not name \`$item\` (say where it comes from and under what licence)"
done < <(printf '%s\n%s\n' "$listed_paths" "$found_paths" | awk -F/ 'NF { print (NF > 2) ? $1 "/" $2 : $0 }' | sort -u)
echo "vectors_intact: $named folders and top-level files, each named in tests/vectors/SOURCES.md"

if [ "$failures" -ne 0 ]; then
	echo "vectors_intact: $failures problem(s); git checkout -- tests/vectors restores a clone's vectors" >&2
	exit 1
fi
echo "vectors_intact: ok"
