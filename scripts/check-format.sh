#!/usr/bin/env bash
# Fails if any C source or header of cvmkit differs from .clang-format.
# Fix with: clang-format -i FILE...   Usage: scripts/check-format.sh [ROOT]
set -euo pipefail

root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"
CLANG_FORMAT="${CLANG_FORMAT:-clang-format}"

dirs=()
for d in include lib cli daemons bench tests fuzz; do
	[ -d "$d" ] && dirs+=("$d")
done
files=()
if [ "${#dirs[@]}" -gt 0 ]; then
	while IFS= read -r -d '' f; do
		files+=("$f")
	done < <(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
fi
if [ "${#files[@]}" -eq 0 ]; then
	echo "check-format: no C files"
	exit 0
fi
if ! "$CLANG_FORMAT" --dry-run -Werror "${files[@]}"; then
	echo "check-format: the files above are not formatted; run: $CLANG_FORMAT -i <file>" >&2
	exit 1
fi
echo "check-format: ${#files[@]} files ok"
