#!/usr/bin/env bash
# Issue 12's GAP "debug guest" (specs/cosmian_vm.md: Cosmian VM accepts a TD
# whose DEBUG attribute is set, i.e. one the host can read and change). On a
# debug TD (cvm sim init --debug):
#  - cvm snapshot refuses it under the default policy (exit 3, no file);
#  - the evidence check itself rejects it, not only the RA-TLS handshake: a
#    bundle from the agent's socket fails `cvm evidence verify` naming DEBUG
#    and passes under a policy with allow_debug (DEBUG is the only reason);
#  - a snapshot taken under a policy that allows debug records that policy,
#    and cvm verify with the strict policy (--policy) fails naming DEBUG (the
#    agent's RA-TLS certificate, a quote of the same TD, is refused first)
#    and compares nothing with the snapshot (exit 3).
# Needs swtpm (else skipped, exit 77), tpm2-tools, curl and python3.
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=verify_gap_debug_guest
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verify-debug.XXXXXX")"
# shellcheck source=tests/common/snapverify.sh
. "$SRC/tests/common/snapverify.sh"
cleanup() {
	sv_cleanup
	rm -rf "$tmp"
}
trap cleanup EXIT
sv_need "$NAME"
command -v curl >/dev/null 2>&1 || { echo "$NAME: FAIL: curl is missing"; exit 1; }

sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$tmp/sim" --debug >/dev/null || { echo "$NAME: FAIL: cvm sim init --debug"; exit 1; }
sv_agent_start "$tmp/sim" || { echo "$NAME: FAIL: the agent did not start"; exit 1; }

expect 3 "cvm snapshot of a debug TD" sv_snapshot "$tmp/sim" "$tmp/snap.json"
grep -qi "debug" "$tmp/out" && pass || { fail "cvm snapshot: the refusal does not name DEBUG"; show "$tmp/out"; }
[ ! -e "$tmp/snap.json" ] && pass || fail "cvm snapshot wrote a snapshot of a rejected TD"

echo '{"allow_debug": true}' >"$tmp/debug-ok.json"
echo '{}' >"$tmp/strict.json"

# The evidence check itself, not only the handshake: a bundle from the
# agent's socket fails on DEBUG, and passes once the policy allows it.
nonce="$(python3 -c 'import os; print(os.urandom(32).hex())')"
code="$(curl -s --max-time 30 --unix-socket "$tmp/d.sock" -o "$tmp/bundle.json" -w '%{http_code}' \
	-H 'Content-Type: application/json' -d "{\"nonce\":\"$nonce\"}" http://localhost/GetEvidence)"
[ "$code" = 200 ] && pass || fail "GetEvidence on the socket: HTTP $code"
ev() { "$bin/cvm" evidence verify "$tmp/bundle.json" --nonce "$nonce" --collateral "$tmp/sim/collateral/tdx" \
	--root "$tmp/sim/collateral/tdx/intel_sgx_root_ca.der" --require-tpm --require-ima "$@"; }
expect 3 "cvm evidence verify of a debug TD's bundle" ev
grep -q "DEBUG attribute .* is set" "$tmp/out" && pass ||
	{ fail "cvm evidence verify: the refusal does not name DEBUG"; show "$tmp/out"; }
expect 0 "cvm evidence verify under allow_debug" ev --policy "$tmp/debug-ok.json"
expect 0 "cvm snapshot --policy allow_debug" sv_snapshot "$tmp/sim" "$tmp/snap.json" --policy "$tmp/debug-ok.json"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["tcb"]["policy"] == {"allow_debug": True}' \
	"$tmp/snap.json" && pass || fail "the snapshot does not record the policy used"
expect 3 "cvm verify --policy strict" sv_verify "$tmp/sim" "$tmp/snap.json" --policy "$tmp/strict.json"
# The RA-TLS certificate carries a quote of the same TD: the handshake's
# check (the same policy) already rejects it, before any evidence is asked.
grep -q '^\[FAIL\] connection: .*DEBUG attribute .* is set' "$tmp/out" && pass || { fail "the connection check does not fail on DEBUG"; show "$tmp/out"; }
has "[FAIL] snapshot: not compared" "cvm verify --policy strict"
sv_finish "$NAME"
