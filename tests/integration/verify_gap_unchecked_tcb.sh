#!/usr/bin/env bash
# Issue 12's GAP "unchecked TCB" (specs/cosmian_vm.md §7.4: Cosmian VM never
# evaluates the platform's TCB status; a platform Intel lists as OutOfDate,
# with advisories, passes it). On a simulated TDX platform whose TCB level is
# OutOfDate with two advisories (cvm sim init --tcb-out-of-date: a PCE SVN
# only the OutOfDate level meets):
#  - cvm snapshot refuses it under the default policy (exit 3, naming the
#    status, no file written);
#  - the evidence check itself evaluates the TCB, not only the RA-TLS
#    handshake: a bundle from the agent's socket fails `cvm evidence verify`
#    on the status, and passes once a policy accepts OutOfDate and its
#    advisories (so the status is the only reason);
#  - a snapshot taken under that lenient policy records it, and cvm verify
#    with the strict policy (--policy) fails naming the status and compares
#    nothing with the snapshot;
#  - an UpToDate platform passes under the default policy (the check is not
#    a blanket refusal).
# Needs swtpm (else skipped, exit 77), tpm2-tools, curl and python3.
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=verify_gap_unchecked_tcb
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-verify-tcb.XXXXXX")"
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
"$bin/cvm" sim init "$tmp/old" --tcb-out-of-date >/dev/null || { echo "$NAME: FAIL: cvm sim init --tcb-out-of-date"; exit 1; }
sv_agent_start "$tmp/old" || { echo "$NAME: FAIL: the agent did not start"; exit 1; }

expect 3 "cvm snapshot of an OutOfDate platform" sv_snapshot "$tmp/old" "$tmp/snap.json"
grep -q "TCB status OutOfDate is not accepted" "$tmp/out" && pass ||
	{ fail "cvm snapshot: the refusal does not name the TCB status"; show "$tmp/out"; }
[ ! -e "$tmp/snap.json" ] && pass || fail "cvm snapshot wrote a snapshot of a rejected platform"

# The bundle on its own, from the agent's socket.
nonce="$(python3 -c 'import os; print(os.urandom(32).hex())')"
code="$(curl -s --max-time 30 --unix-socket "$tmp/d.sock" -o "$tmp/bundle.json" -w '%{http_code}' \
	-H 'Content-Type: application/json' -d "{\"nonce\":\"$nonce\"}" http://localhost/GetEvidence)"
[ "$code" = 200 ] && pass || fail "GetEvidence on the socket: HTTP $code"
ev() { "$bin/cvm" evidence verify "$tmp/bundle.json" --nonce "$nonce" --collateral "$tmp/old/collateral/tdx" \
	--root "$tmp/old/collateral/tdx/intel_sgx_root_ca.der" --require-tpm --require-ima "$@"; }
expect 3 "cvm evidence verify of the OutOfDate platform's bundle" ev
grep -q "TCB status OutOfDate is not accepted" "$tmp/out" && pass ||
	{ fail "cvm evidence verify: the refusal does not name the TCB status"; show "$tmp/out"; }
cat >"$tmp/lenient.json" <<'POLICY'
{"accepted_tcb_statuses": ["UpToDate", "OutOfDate"], "accepted_advisory_ids": ["INTEL-SA-00837", "INTEL-SA-00960"]}
POLICY
expect 0 "cvm evidence verify under a policy that accepts OutOfDate" ev --policy "$tmp/lenient.json"

echo '{}' >"$tmp/strict.json"
expect 0 "cvm snapshot under the lenient policy" sv_snapshot "$tmp/old" "$tmp/snap.json" --policy "$tmp/lenient.json"
python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); assert d["tcb"]["status"] == "OutOfDate", d["tcb"]' \
	"$tmp/snap.json" && pass || fail "the snapshot does not record the OutOfDate status"
expect 0 "cvm verify under the snapshot's (lenient) policy" sv_verify "$tmp/old" "$tmp/snap.json"
expect 3 "cvm verify --policy strict" sv_verify "$tmp/old" "$tmp/snap.json" --policy "$tmp/strict.json"
grep -q '^\[FAIL\] connection: .*TCB status OutOfDate is not accepted' "$tmp/out" && pass ||
	{ fail "cvm verify does not fail on the TCB status"; show "$tmp/out"; }
has "[FAIL] snapshot: not compared" "cvm verify --policy strict"

# An UpToDate platform passes the default policy.
sv_agent_stop
"$bin/cvm" sim init "$tmp/new" >/dev/null || fail "cvm sim init"
sv_agent_start "$tmp/new" || fail "the agent on the UpToDate platform did not start"
expect 0 "cvm snapshot of an UpToDate platform" sv_snapshot "$tmp/new" "$tmp/snap-new.json"
expect 0 "cvm verify of an UpToDate platform" sv_verify "$tmp/new" "$tmp/snap-new.json"
has "[ OK ] tee: TDX quote verified by Intel's rules, TCB UpToDate" "cvm verify"
sv_finish "$NAME"
