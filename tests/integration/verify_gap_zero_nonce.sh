#!/usr/bin/env bash
# Issue 12's GAP "zero nonce" (specs/cosmian_vm.md: Cosmian VM asks for
# evidence with a zero nonce on most clouds, so one recorded answer can be
# replayed for ever). cvm verify draws a fresh random nonce every time, and
# the evidence must bind it:
#  - two runs send two different nonces, neither zero (--json's "nonce");
#  - the in-guest attacker holding the agent's TLS certificate and key
#    (verify_replay_server.py) answers GetEvidence with a genuine bundle
#    recorded for the zero nonce: cvm verify fails on the nonce (exit 3);
#  - a genuine bundle recorded for another random nonce: the same.
# Needs swtpm (else skipped, exit 77), tpm2-tools, curl and python3.
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=verify_gap_zero_nonce
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verify-nonce.XXXXXX")"
# shellcheck source=tests/common/snapverify.sh
. "$SRC/tests/common/snapverify.sh"
rpid=""
cleanup() {
	if [ -n "$rpid" ]; then kill "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true; fi
	sv_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
sv_need "$NAME"
command -v curl >/dev/null 2>&1 || { echo "$NAME: FAIL: curl is missing"; exit 1; }

sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "$NAME: FAIL: cvm sim init"; exit 1; }
sv_agent_start "$tmp/sim" || { echo "$NAME: FAIL: the agent did not start"; exit 1; }
expect 0 "cvm snapshot" sv_snapshot "$tmp/sim" "$tmp/snap.json" || sv_finish "$NAME"
expect 0 "cvm verify" sv_verify "$tmp/sim" "$tmp/snap.json" --json
cp "$tmp/out" "$tmp/v1.json"
expect 0 "cvm verify again" sv_verify "$tmp/sim" "$tmp/snap.json" --json
python3 -c '
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["verdict"] == b["verdict"] == "accepted", "not accepted"
assert len(a["nonce"]) == 64 and a["nonce"] != b["nonce"], "the same nonce twice"
assert a["nonce"] != "00" * 32 and b["nonce"] != "00" * 32, "a zero nonce"' "$tmp/v1.json" "$tmp/out" \
	&& pass || { fail "two runs of cvm verify: fresh nonces"; show "$tmp/out"; }

# Genuine bundles, recorded from the agent's socket: for the zero nonce and
# for a random one.
zero="$(printf '0%.0s' $(seq 64))"
other="$(python3 -c 'import os; print(os.urandom(32).hex())')"
for n in "$zero" "$other"; do
	code="$(curl -s --max-time 30 --unix-socket "$tmp/d.sock" -o "$tmp/bundle-$n.json" -w '%{http_code}' \
		-H 'Content-Type: application/json' -d "{\"nonce\":\"$n\"}" http://localhost/GetEvidence)"
	[ "$code" = 200 ] && pass || fail "GetEvidence for a recorded bundle: HTTP $code"
done

# The agent's TLS certificate, as any client sees it.
python3 -c '
import ssl, sys
print(ssl.get_server_certificate(("127.0.0.1", int(sys.argv[1]))))' "$SV_PORT" >"$tmp/agent-cert.pem" \
	&& pass || fail "cannot read the agent's certificate"

for n in "$zero" "$other"; do
	rm -f "$tmp/replay-port"
	python3 "$SRC/tests/integration/verify_replay_server.py" "$tmp/agent-cert.pem" \
		"$tmp/sim/agent/cvm-agentd-identity.pem" "$tmp/bundle-$n.json" "$tmp/replay-port" &
	rpid=$!
	for _ in $(seq 100); do [ -s "$tmp/replay-port" ] && break; sleep 0.1; done
	port="$SV_PORT"
	SV_PORT="$(cat "$tmp/replay-port")"
	expect 3 "verify against a replayed bundle (nonce ${n:0:8}...)" sv_verify "$tmp/sim" "$tmp/snap.json"
	has "[FAIL] nonce:" "verify against a replayed bundle"
	grep -q "^\[ OK \] ima:" "$tmp/out" && fail "the replayed bundle was compared with the snapshot" || pass
	SV_PORT="$port"
	kill "$rpid" 2>/dev/null || true
	wait "$rpid" 2>/dev/null || true
	rpid=""
done
sv_finish "$NAME"
