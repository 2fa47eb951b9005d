#!/usr/bin/env bash
# scripts/bench-verifierd.sh for a few seconds: the whole harness (import,
# cvm-verifierd with 2 workers, wrk with bench/verifierd/verify.lua on the
# three request forms, the memory sampler, the summary and verdict) runs and
# exits 0 with zero errors on a real quote; the same quote with one byte of
# its signature flipped makes it report errors and exit 1; and the wrk script
# counts an answer that is not a 200 as an error. The figures of so short a
# run on a test machine mean nothing, so the verdict's targets are not checked.
set -euo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
src="${CVM_SOURCE_DIR:?CVM_SOURCE_DIR must point at the source tree}"
# shellcheck source=tests/common/vectors.sh
. "$src/tests/common/vectors.sh"
for t in wrk curl node python3; do
	command -v "$t" >/dev/null || {
		echo "bench_verifierd_smoke: FAIL: $t is missing (scripts/setup.sh installs it)" >&2
		exit 1
	}
done
vectors_require tdx/dcapqvl-tdx-v4-uptodate
vec="$VECTORS/tdx/dcapqvl-tdx-v4-uptodate"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-bench-verifierd-smoke.XXXXXX")"
stub=""
cleanup() {
	if [ -n "$stub" ]; then
		kill "$stub" 2>/dev/null || true
		wait "$stub" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

export CVM_BUILD_DIR="${bin%/bin}"
export CVM_BENCH_WARM_COUNT=2000 CVM_BENCH_FORM_SECONDS=2

fail() {
	echo "bench_verifierd_smoke: FAIL: $*" >&2
	exit 1
}

# 1. A real quote: exit 0, zero errors, a rate, memory sampled.
rc=0
bash "$src/scripts/bench-verifierd.sh" --duration 3 "$vec" >"$tmp/good.out" 2>"$tmp/good.err" || rc=$?
cat "$tmp/good.out" "$tmp/good.err"
[ "$rc" -eq 0 ] || fail "the benchmark of a good quote exited $rc"
summary="$(grep '^{"type":"verifierd"' "$tmp/good.out")" || fail "no summary line"
grep -q '^verdict: ' "$tmp/good.out" || fail "no verdict line"
node -e 'const s = JSON.parse(process.argv[1]);
	const bad = [];
	if (s.errors !== 0) bad.push("errors " + s.errors);
	for (const [n, x] of [["raw", s], ["json", s.json], ["dstack", s.dstack]])
		if (!x || !(x.per_second > 0)) bad.push(n + ": no rate");
	if (!(s.inprocess_warm_per_second > 0)) bad.push("no in-process warm rate");
	if (!(s.p99_ms > 0) || !(s.p50_ms > 0) || s.p50_ms > s.p99_ms) bad.push("latency p50 " + s.p50_ms + " p99 " + s.p99_ms);
	if (!s.memory || !(s.memory.samples >= 4) || !(s.memory.max_kib > 0) || typeof s.memory.flat !== "boolean")
		bad.push("memory " + JSON.stringify(s.memory));
	if (bad.length) { console.error(bad.join("; ")); process.exit(1); }' "$summary" ||
	fail "the summary of a good quote is wrong: $summary"

# 2. The same vector with one byte of the quote's signature flipped (a v4
# quote: 48-byte header, 584-byte TD report, 4-byte length, then the
# signature): every answer says the quote failed, so the run must report
# errors and exit 1. --no-inprocess: bench_quote_verify would stop on it first.
mkdir "$tmp/bad"
cp "$vec"/* "$tmp/bad/"
printf '\xff' | dd of="$tmp/bad/quote.bin" bs=1 seek=640 conv=notrunc status=none
cmp -s "$vec/quote.bin" "$tmp/bad/quote.bin" && fail "the flipped quote equals the good one"
rc=0
bash "$src/scripts/bench-verifierd.sh" --duration 2 --no-inprocess "$tmp/bad" >"$tmp/bad.out" 2>"$tmp/bad.err" || rc=$?
cat "$tmp/bad.out" "$tmp/bad.err"
[ "$rc" -eq 1 ] || fail "the benchmark of a broken quote exited $rc, not 1"
grep -q 'the raw run had errors' "$tmp/bad.err" || fail "the raw run's errors were not reported"
grep -q '^verdict: MISSED:.* errors' "$tmp/bad.out" || fail "the verdict does not name the errors"

# 3. The wrk script alone against a server that answers POST with 501
# (python3's http.server): every answer is a bad_status error.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server --bind 127.0.0.1 --directory "$tmp" "$port" >/dev/null 2>&1 &
stub=$!
for _ in $(seq 50); do
	curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
	sleep 0.1
done
line="$(wrk -t1 -c2 -d1s -s "$src/bench/verifierd/verify.lua" "http://127.0.0.1:$port" -- /cvmkit/v1/verify \
	"$vec/quote.bin" application/octet-stream ok | sed -n 's/^wrk-result: //p')"
echo "501 server: $line"
node -e 'const r = JSON.parse(process.argv[1]);
	process.exit(r.requests > 0 && r.good === 0 && r.bad_status === r.requests && r.errors >= r.requests &&
		r.first_bad.startsWith("501 ") ? 0 : 1)' "$line" || fail "the wrk script did not count the 501 answers"
echo "bench_verifierd_smoke: ok"
