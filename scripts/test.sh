#!/usr/bin/env bash
# The README's second command: installs what is missing, builds cvmkit with
# warnings as errors into build/, and runs the whole ctest suite (unit,
# integration, fuzz corpus replay). Exits non-zero on any failure.
# Extra arguments go to ctest (e.g. scripts/test.sh -L unit).
# The tests read the repository's tests/vectors. CVM_VECTORS_DIR may name an
# extra folder of vectors in the same layout (tests/vectors/README.md); the
# build is configured with exactly what the environment says (unset or empty:
# none), whatever an earlier configuration of build/ had.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
cd "$src"
build_jobs="${CVM_JOBS:-$(nproc 2>/dev/null || echo 2)}"
test_jobs="${CVM_TEST_JOBS:-2}"

"$src/scripts/setup.sh"

cfg=(-DCVM_WERROR=ON -DCVM_VECTORS_DIR=)
if [ -n "${CVM_VECTORS_DIR:-}" ]; then
	if [ ! -d "$CVM_VECTORS_DIR" ]; then
		echo "test.sh: CVM_VECTORS_DIR=$CVM_VECTORS_DIR is not a folder: name a folder of extra vectors" \
			"in the layout of tests/vectors, or unset it" >&2
		exit 2
	fi
	cfg[1]=-DCVM_VECTORS_DIR="$(cd "$CVM_VECTORS_DIR" && pwd)"
fi
cmake -S "$src" -B "$src/build" "${cfg[@]}"
cmake --build "$src/build" -j "$build_jobs"
ctest --test-dir "$src/build" --output-on-failure --no-tests=error -j "$test_jobs" "$@"
