#!/usr/bin/env bash
# Static analysis of cvmkit's own C sources (lib/ and cli/, later daemons/):
# cppcheck over the compile database, then clang-tidy with .clang-tidy
# (every finding is an error). Needs a configured build with
# compile_commands.json: scripts/test.sh makes build/.
#   STATIC_BUILD=dir  build folder (build)    CVM_JOBS=N  clang-tidy processes (nproc)
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd -P)"
cd "$src"
bdir="${STATIC_BUILD:-$src/build}"
jobs="${CVM_JOBS:-$(nproc 2>/dev/null || echo 2)}"
db="$bdir/compile_commands.json"

if [ ! -f "$db" ]; then
	echo "static-analysis: no $db (configure first: scripts/test.sh)" >&2
	exit 1
fi

dirs=()
for d in lib cli daemons; do
	[ -d "$d" ] && dirs+=("$d")
done
files=()
while IFS= read -r -d '' f; do
	# only files the build compiles (a file being written may not be in it yet)
	if grep -qF "\"file\": \"$src/$f\"" "$db"; then
		files+=("$f")
	else
		echo "static-analysis: $f is not in $db: reconfigure (cmake -S . -B $bdir)" >&2
		exit 1
	fi
done < <(find "${dirs[@]}" -type f -name '*.c' -print0 | sort -z)
if [ "${#files[@]}" -eq 0 ]; then
	echo "static-analysis: no C sources in ${dirs[*]}" >&2
	exit 1
fi

echo "static-analysis: cppcheck over ${#files[@]} files"
filters=()
for d in "${dirs[@]}"; do
	filters+=("--file-filter=$d/*") # relative to the source root (cppcheck 2.10 does not match absolute filters)
done
# cppcheck 2.10 matches --file-filter against the paths as the project file is
# named: give it the project relative to the source root, where we are.
cppcheck --project="$(realpath --relative-to="$src" "$db")" "${filters[@]}" --enable=warning,portability,performance --inline-suppr \
	--error-exitcode=1 --quiet -j "$jobs" --suppress=missingIncludeSystem \
	--cppcheck-build-dir="$(mkdir -p "$bdir/cppcheck" && echo "$bdir/cppcheck")"
echo "static-analysis: cppcheck ok"

echo "static-analysis: clang-tidy over ${#files[@]} files"
# One file per process: clang-tidy 14's va_list checker carries state from one
# file to the next and then reports every vsnprintf(..., ap) in later files as
# "uninitialized va_list" (seen here on lib/core/log.c after bytes.c).
# -Wno-unknown-warning-option: the database was written for gcc.
# The "N warnings generated." lines count suppressed, unchecked warnings: noise.
# shellcheck disable=SC2016 # expanded by the bash -c below, not here
tidy_one='out="$(clang-tidy -p "$0" --quiet --extra-arg=-Wno-unknown-warning-option "$1" 2>&1)" && rc=0 || rc=$?
out="$(printf "%s\n" "$out" | grep -v "^[0-9]* warnings\? generated\.$" || true)"
[ -z "$out" ] || printf "%s\n" "$out"
exit "$rc"'
printf '%s\0' "${files[@]}" | xargs -0 -n 1 -P "$jobs" bash -c "$tidy_one" "$bdir" || {
	echo "static-analysis: clang-tidy found problems (see above)" >&2
	exit 1
}
echo "static-analysis: clang-tidy ok"
