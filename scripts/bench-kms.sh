#!/usr/bin/env bash
# cvm-kmsd's GetAppKey, end to end, in one run (bench/bench_kms.c): a KMS in
# one simulated CVM, an app in another (tests/common/kms.sh sets them up);
# every request a new connection with a mutual RA-TLS handshake (the client
# checks the KMS's evidence, the KMS checks the client's with its warm
# verifier), the policy, the key process's derivation, the answer. Side by
# side in the same run:
#   - GetAppKey, one client at a time: the latency (p50, p99);
#   - GetAppKey, 4 clients at once: keys per second on this machine;
#   - GetMeta over server-authenticated TLS only (no client certificate, no
#     derivation): the plain-TLS request rate of the same daemon, the peer;
#   - cvm_kms_app_keys in process: the derivation alone;
#   - GetAppKey again, with dstack's webhook deciding (a second node).
# Targets (issue 13): p50 under 5 ms, at least 300 keys per second on 2 cores.
#
# Usage: scripts/bench-kms.sh
# Environment: CVM_BUILD_DIR (default build), CVM_BENCH_COUNT (requests per
# run, default 2000), CVM_BENCH_AUTH (dev, or the [auth] section to use).
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${CVM_BUILD_DIR:-$src/build}"
case "$build" in
/*) ;;
*) build="$src/$build" ;;
esac
n="${CVM_BENCH_COUNT:-2000}"
case "$n" in '' | *[!0-9]* | 0) echo "bench-kms: CVM_BENCH_COUNT must be a positive integer" >&2; exit 1 ;; esac
bin="$build/bin"
for p in cvm cvm-agentd cvm-kmsd bench_kms; do
	[ -x "$bin/$p" ] || { echo "bench-kms: $bin/$p is missing (build first)" >&2; exit 1; }
done
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$src/tests/common/kms.sh"
trap 'kms_cleanup; rm -rf "$tmp"' EXIT

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
echo "bench-kms: ${cpu:-unknown CPU}, $(nproc 2>/dev/null || echo '?') CPUs," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
if [ -f "$build/CMakeCache.txt" ]; then
	btype="$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	san="$(sed -n 's/^CVM_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")"
	echo "bench-kms: cvmkit build $build (${btype:-no build type}${san:+, sanitizers $san})"
fi

kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_cvm app '{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}"}' kmsvm
kms_node kms1 kmsvm app "${CVM_BENCH_AUTH:-$'[auth]\ntype = dev'}"
col="$tmp/kmsvm/sim/collateral"
common=(--target "127.0.0.1:$(cat "$tmp/kms1/port")" --collateral "$col" --root "$col/tdx/intel_sgx_root_ca.der"
	--root "$col/snp/ark.pem" --ca "$tmp/kms1/roots/epoch-0/root-ca.crt")
client=(--cert "$tmp/app/chain.pem" --key "$tmp/app/identity.pem")

lat="$("$bin/bench_kms" "${common[@]}" "${client[@]}" --count "$n" --threads 1)"
echo "$lat"
rate="$("$bin/bench_kms" "${common[@]}" "${client[@]}" --count "$n" --threads 4)"
echo "$rate"
plain="$("$bin/bench_kms" "${common[@]}" --method GetMeta --count "$n" --threads 4)"
echo "$plain"
inproc="$("$bin/bench_kms" --in-process "$tmp/kms1/roots" --count "$n")"
echo "$inproc"

# The same GetAppKey with dstack's webhook deciding (a python3 server with
# auth-simple's rules, tests/integration/kms_auth_webhook_server.py, one new
# HTTP connection per decision): a second node on the same roots.
app_id="$(kms_runtime_hex app app-id)"
compose="$(kms_runtime_hex app compose-hash)"
kms_mr="$(curl -sf --unix-socket "$tmp/kmsvm/dstack.sock" http://localhost/Info |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["mr_aggregated"])')"
python3 - "$tmp/cases.json" "$kms_mr" "$app_id" "$compose" <<'EOF'
import json, sys
out, kms_mr, app, compose = sys.argv[1:]
json.dump({"policy": {"gatewayAppId": "gw", "osImages": ["0x" + "00" * 32],
                      "kms": {"mrAggregated": [kms_mr], "devices": [], "allowAnyDevice": True},
                      "apps": {app: {"composeHashes": [compose], "devices": [], "allowAnyDevice": True}}}},
          open(out, "w"))
EOF
python3 "$src/tests/integration/kms_auth_webhook_server.py" "$tmp/cases.json" "$tmp/wh.port" 2>"$tmp/wh.log" &
KMS_PIDS+=("$!")
kms_wait "$tmp/wh.port" webhook "$!" "$tmp/wh.log"
mkdir -p "$tmp/kms2"
cp -a "$tmp/kms1/roots" "$tmp/kms2/roots"
rm -f "$tmp/kms2/roots/audit.db"*
kms_node kms2 kmsvm app $'[auth]\ntype = webhook\nwebhook_url = http://127.0.0.1:'"$(cat "$tmp/wh.port")"'/ok'
common2=(--target "127.0.0.1:$(cat "$tmp/kms2/port")" "${common[@]:2}")
wh1="$("$bin/bench_kms" "${common2[@]}" "${client[@]}" --count "$n" --threads 1)"
printf '%s\n' "$wh1" | sed 's/"run": "GetAppKey"/"run": "GetAppKey (webhook)"/'
wh4="$("$bin/bench_kms" "${common2[@]}" "${client[@]}" --count "$n" --threads 4)"
printf '%s\n' "$wh4" | sed 's/"run": "GetAppKey"/"run": "GetAppKey (webhook)"/'

val() { printf '%s' "$1" | sed -n "s/.*\"$2\": \\([0-9.]*\\).*/\\1/p"; }
p50="$(val "$lat" p50_ms)"
ps="$(val "$rate" per_second)"
echo "bench-kms: GetAppKey p50 ${p50} ms, p99 $(val "$lat" p99_ms) ms (one client);" \
	"${ps} keys/s with 4 clients; plain-TLS GetMeta $(val "$plain" per_second)/s;" \
	"in-process derivation $(val "$inproc" per_second)/s"
echo "bench-kms: with the webhook: p50 $(val "$wh1" p50_ms) ms, p99 $(val "$wh1" p99_ms) ms;" \
	"$(val "$wh4" per_second) keys/s with 4 clients"
if awk -v p="$p50" -v r="$ps" 'BEGIN { exit !(p < 5 && r >= 300) }'; then
	echo "bench-kms: targets (p50 < 5 ms, >= 300 keys/s) met"
else
	echo "bench-kms: targets (p50 < 5 ms, >= 300 keys/s) MISSED"
fi
