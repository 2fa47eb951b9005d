#!/usr/bin/env bash
# Runs every unit test binary (build/tests/test_*) under valgrind memcheck:
# invalid reads/writes, uninitialised values and leaks fail the run. Cheaper
# and different from the ASan build (it checks the uninstrumented binary and
# sees uninitialised reads ASan does not). Exit 77 from a test means skipped.
# Memcheck slows crypto-heavy tests 50-100 times (measured: a 1.9 s cmocka
# binary took 176 s), so tests see CVM_UNDER_VALGRIND=1 (or RUNNING_ON_VALGRIND
# from <valgrind/valgrind.h>) and may sample exhaustive loops (every bit flip,
# every truncation) instead of running all of them; the normal and ASan runs
# stay exhaustive.
#   VALGRIND_BUILD=dir  build folder (build)    CVM_JOBS=N  binaries at once (2)
#   VALGRIND_TIMEOUT=s  limit per binary (900)
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
bdir="${VALGRIND_BUILD:-$src/build}"
jobs="${CVM_JOBS:-2}"

if [ ! -d "$bdir/tests" ]; then
	echo "valgrind-unit: no $bdir/tests (build first: scripts/test.sh)" >&2
	exit 1
fi
# The slowest binaries under memcheck go first (measured: test_tee about 300 s,
# test_issue about 220 s), so that the two slots end together instead of one
# of them running a long binary alone at the end.
slow=(test_tee test_issue test_kms test_ratls test_kdf)
bins=()
for n in "${slow[@]}"; do
	[ -f "$bdir/tests/$n" ] && [ -x "$bdir/tests/$n" ] && bins+=("$bdir/tests/$n")
done
for b in "$bdir"/tests/test_*; do
	case " ${slow[*]} " in *" $(basename "$b") "*) continue ;; esac
	[ -f "$b" ] && [ -x "$b" ] && bins+=("$b")
done
if [ "${#bins[@]}" -eq 0 ]; then
	echo "valgrind-unit: no unit test binaries in $bdir/tests" >&2
	exit 1
fi

# The tests find the vectors the same way ctest gives them.
if [ -z "${CVM_VECTORS_DIR:-}" ]; then
	v="$(sed -n 's/^CVM_VECTORS_DIR:[A-Z]*=//p' "$bdir/CMakeCache.txt" 2>/dev/null || true)"
	[ -n "$v" ] && export CVM_VECTORS_DIR="$v"
fi

export CVM_UNDER_VALGRIND=1
tmo="${VALGRIND_TIMEOUT:-900}"
logs="$bdir/valgrind"
mkdir -p "$logs"
one() { # one BIN: runs it under memcheck, prints one line, returns 0/1
	local b="$1" name rc=0 t0=$SECONDS
	name="$(basename "$b")"
	(cd "$bdir/tests" && timeout -k 10 "$tmo" valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
		--error-exitcode=1 --track-origins=yes "$b") >"$logs/$name.log" 2>&1 || rc=$?
	if [ "$rc" -eq 77 ]; then
		echo "valgrind-unit: $name skipped"
		return 0
	fi
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "valgrind-unit: $name TIMED OUT after $tmo s (VALGRIND_TIMEOUT); $logs/$name.log:" >&2
		tail -n 20 "$logs/$name.log" >&2
		return 1
	fi
	if [ "$rc" -ne 0 ]; then
		echo "valgrind-unit: $name FAILED (exit $rc); $logs/$name.log:" >&2
		tail -n 80 "$logs/$name.log" >&2
		return 1
	fi
	echo "valgrind-unit: $name ok ($((SECONDS - t0)) s)"
}

failed=0
running=0
for b in "${bins[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || failed=$((failed + 1))
		running=$((running - 1))
	fi
	one "$b" &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	wait -n || failed=$((failed + 1))
	running=$((running - 1))
done

if [ "$failed" -ne 0 ]; then
	echo "valgrind-unit: $failed of ${#bins[@]} binaries failed" >&2
	exit 1
fi
echo "valgrind-unit: ${#bins[@]} binaries clean"
