#!/usr/bin/env bash
# Short libFuzzer runs, one per parser harness, as a CI smoke test
# (CVM_JOBS harnesses at a time, default the cores).
# Builds with clang, CVM_FUZZ=ON and ASan+UBSan into build-fuzz/, then runs each
# build-fuzz/bin/fuzz_<parser> for FUZZ_SECONDS (default 12) on a temporary
# copy of fuzz/corpus/<parser>/ (new inputs are thrown away; the corpus in the
# repository only changes by hand), with a -max_len cap per input format.
# Fails on any crash, leak, timeout or out-of-memory. The timeout is per input:
# FUZZ_TIMEOUT seconds (default 2). Under ASan+UBSan the slowest seed of any
# harness takes 0.27 s (fuzz_http_api's first request; building a P-384 key
# table in fuzz_ecdsa_diff: 0.07 s; docs/cost.md), so 2 s leaves a margin of
# 7x for a loaded CI machine, and it still fails an input like the 20 KB TPM
# quote that took dstack's verifier 4.66 s (several times that
# under ASan). A crashing or slow input is kept
# in build-fuzz/artifacts/: minimise it (fuzz_X -minimize_crash=1 FILE) and add
# it to fuzz/corpus/<parser>/ with the fix. For longer runs, see docs/testing.md.
#   FUZZ_SECONDS=N   seconds per harness      FUZZ_ONLY=name   one harness only
#   FUZZ_BUILD=dir   build folder (build-fuzz)   FUZZ_TIMEOUT=s   per input (2)
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
cd "$src"
seconds="${FUZZ_SECONDS:-12}"
timeout="${FUZZ_TIMEOUT:-2}"
bdir="${FUZZ_BUILD:-$src/build-fuzz}"
jobs="${CVM_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# -max_len per format: the largest input worth mutating.
max_len_for() {
	case "$1" in
	*quote*) echo 16384 ;;
	*tcb_info* | *qe_identity*) echo 65536 ;;
	*policy*) echo 16384 ;;
	*ecdsa*) echo 1024 ;;
	*acme*) echo 65536 ;; # CVM_ACME_JSON_MAX, the cap on an ACME response body
	*app_info*) echo 4096 ;;
	*collateral_item*) echo 65536 ;;    # a TCB info record; PCK CRLs are larger, their parse is the same
	*collateral_bundle*) echo 262144 ;; # a few items
	*osimage*) echo 16384 ;; # CVM_OSIMAGE_TDX_MAX, the cap on measurement.tdx.cbor
	*app_compose*) echo 16384 ;; # real files are 0.5-2 KB; the 256 KiB cap is checked before any parse
	*tdvf*) echo 16384 ;;    # a small whole TDVF image; the metadata sits in an image's last bytes
	*) echo 65536 ;;
	esac
}

if ! compgen -G "$src/fuzz/fuzz_*.c" >/dev/null; then
	echo "fuzz-smoke: no harness in fuzz/ (nothing to run)"
	exit 0
fi

CC="${FUZZ_CC:-clang}" cmake -S "$src" -B "$bdir" -DCVM_FUZZ=ON -DCVM_SANITIZE=address,undefined \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# Only the libFuzzer binaries: the rest is built and tested elsewhere.
targets=()
for h in "$src"/fuzz/fuzz_*.c; do
	targets+=("$(basename "$h" .c)")
done
cmake --build "$bdir" -j "$jobs" --target "${targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
work="$(mktemp -d "${TMPDIR:-/tmp}/cvm-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
rm -rf "$bdir/artifacts"
mkdir -p "$bdir/artifacts"

# one_target T: one harness's run; its verdict goes to $work/result/T
# (ok or failed), so that harnesses can run side by side.
one_target() {
	local t="$1" parser corpus len log t0 rc runs cov
	parser="${t#fuzz_}"
	corpus="$src/fuzz/corpus/$parser"
	if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
		echo "fuzz-smoke: $t: fuzz/corpus/$parser/ is missing or empty" >&2
		echo failed >"$work/result/$t"
		return
	fi
	mkdir -p "$work/$parser"
	cp -R "$corpus/." "$work/$parser/"
	len="$(max_len_for "$parser")"
	log="$bdir/artifacts/$t.log"
	t0=$SECONDS
	rc=0
	"$bdir/bin/$t" -max_total_time="$seconds" -max_len="$len" -timeout="$timeout" -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$bdir/artifacts/$t-" "$work/$parser" >"$log" 2>&1 || rc=$?
	runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
	cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 || true)"
	if [ "$rc" -ne 0 ]; then
		{
			echo "fuzz-smoke: $t FAILED (exit $rc after $((SECONDS - t0)) s); last lines of $log:"
			tail -n 60 "$log"
		} >&2
		echo failed >"$work/result/$t"
	else
		echo "fuzz-smoke: $t ok: ${runs:-?} runs in $((SECONDS - t0)) s, ${cov:-cov: ?}, max_len $len, timeout ${timeout} s"
		echo ok >"$work/result/$t"
	fi
}

# Each harness is one process on one core: $jobs of them run at once
# (CVM_JOBS, the cores), each for its full $seconds.
mkdir -p "$work/result"
running=0
for t in "${targets[@]}"; do
	parser="${t#fuzz_}"
	[ -n "${FUZZ_ONLY:-}" ] && [ "$FUZZ_ONLY" != "$parser" ] && [ "$FUZZ_ONLY" != "$t" ] && continue
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	one_target "$t" &
	running=$((running + 1))
done
wait
failed=()
ran=0
for f in "$work"/result/*; do
	[ -e "$f" ] || continue
	ran=$((ran + 1))
	[ "$(cat "$f")" = ok ] || failed+=("$(basename "$f")")
done

if [ "${#failed[@]}" -ne 0 ]; then
	echo "fuzz-smoke: failed: ${failed[*]} (inputs in $bdir/artifacts/)" >&2
	exit 1
fi
echo "fuzz-smoke: $ran harness(es) ok"
