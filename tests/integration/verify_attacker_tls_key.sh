#!/usr/bin/env bash
# The in-guest attacker of issue 12 who cannot pass its own TLS key off as the
# VM's. Any process in the guest may use the agent's dstack socket: it gets
# an RA-TLS certificate for a key of its own with a genuine quote of this VM
# (GetTlsKey with usage_ra_tls), serves it on its own listener and relays
# each GetEvidence to the agent's socket, so the verifier receives the VM's
# genuine bundle for its own fresh nonce. Cosmian VM's client would accept
# that peer (it checks the quote in the certificate, not which key the system
# vouched for). cvm verify must not:
#  - control: the attacker's certificate is a valid RA-TLS certificate of
#    this VM (`cvm cert ratls verify` accepts it: quote, binding to its key),
#    and the relayed bundle for a nonce of ours verifies (`cvm evidence
#    verify`): only the key binding stands between the attacker and success;
#  - `cvm verify` against the attacker fails (exit 3) on the connection,
#    saying the key is not the one the agent recorded in RTMR3, and compares
#    nothing with the snapshot; `cvm snapshot` refuses it too;
#  - the genuine listener still verifies.
# Needs swtpm (else skipped, exit 77), tpm2-tools, curl and python3.
# shellcheck disable=SC2015
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=verify_attacker_tls_key
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verify-tlskey.XXXXXX")"
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
COLL="$tmp/sim/collateral"
ROOT="$COLL/tdx/intel_sgx_root_ca.der"
expect 0 "cvm snapshot of the genuine listener" sv_snapshot "$tmp/sim" "$tmp/snap.json" || sv_finish "$NAME"

# The attacker's key and RA-TLS certificate, from the agent's socket.
curl -s --max-time 30 --unix-socket "$tmp/d.sock" -H 'Content-Type: application/json' \
	-d '{"subject":"cvm-agentd","usage_ra_tls":true,"usage_server_auth":true}' \
	http://localhost/GetTlsKey >"$tmp/tlskey.json"
if python3 - "$tmp/tlskey.json" "$tmp" <<'EOF'; then
import json, sys
o = json.load(open(sys.argv[1]))
open(sys.argv[2] + "/attacker-key.pem", "w").write(o["key"])
open(sys.argv[2] + "/attacker-chain.pem", "w").write("".join(o["certificate_chain"]))
EOF
	pass
else
	fail "GetTlsKey for the attacker's own RA-TLS key"
	show "$tmp/tlskey.json"
	sv_finish "$NAME"
fi

# The relay passes the agent's bundle on unchanged (no certificate table: "-").
python3 "$SRC/tests/integration/verify_foreign_chain_server.py" "$tmp/attacker-chain.pem" "$tmp/attacker-key.pem" \
	"$tmp/d.sock" - "$tmp/relay-port" &
rpid=$!
for _ in $(seq 100); do [ -s "$tmp/relay-port" ] && break; sleep 0.1; done
[ -s "$tmp/relay-port" ] || { fail "the attacker's listener did not start"; sv_finish "$NAME"; }
aport="$(cat "$tmp/relay-port")"

# Control 1: a genuine RA-TLS certificate of this VM, for the attacker's key.
python3 -c '
import ssl, sys
print(ssl.get_server_certificate(("127.0.0.1", int(sys.argv[1]))))' "$aport" >"$tmp/served.pem" ||
	fail "cannot read the attacker's certificate"
expect 0 "cvm cert ratls verify of the certificate the attacker serves" \
	"$bin/cvm" cert ratls verify "$tmp/served.pem" --collateral "$COLL/tdx" --root "$ROOT"
# Control 2: the relay hands out the VM's genuine bundle for our nonce.
nonce="$(python3 -c 'import os; print(os.urandom(32).hex())')"
code="$(curl -sk --max-time 30 -o "$tmp/relayed.json" -w '%{http_code}' -H 'Content-Type: application/json' \
	-d "{\"nonce\":\"$nonce\"}" "https://127.0.0.1:$aport/GetEvidence")"
[ "$code" = 200 ] && pass || fail "the relay's GetEvidence: HTTP $code"
expect 0 "cvm evidence verify of the relayed bundle" "$bin/cvm" evidence verify "$tmp/relayed.json" \
	--nonce "$nonce" --collateral "$COLL/tdx" --root "$ROOT" --require-tpm --require-ima

# The attack: rejected on the connection, nothing compared.
port="$SV_PORT"
SV_PORT="$aport"
expect 3 "cvm verify against the attacker's own TLS key" sv_verify "$tmp/sim" "$tmp/snap.json"
has "[FAIL] connection:" "cvm verify against the attacker's own TLS key"
grep -q "RTMR3" "$tmp/out" && pass || { fail "the connection failure does not name the RTMR3 key binding"; show "$tmp/out"; }
grep -q "^\[ OK \] ima:\|^\[ OK \] tee measurements:" "$tmp/out" &&
	fail "the attacker's evidence was compared with the snapshot" || pass
expect 3 "cvm snapshot of the attacker's listener" sv_snapshot "$tmp/sim" "$tmp/snap2.json"
[ ! -e "$tmp/snap2.json" ] && pass || fail "cvm snapshot wrote a snapshot of the attacker's listener"
SV_PORT="$port"

# The genuine listener still verifies.
expect 0 "cvm verify against the genuine listener" sv_verify "$tmp/sim" "$tmp/snap.json"
sv_finish "$NAME"
