#!/usr/bin/env bash
# Issue 12's GAP "unchecked TCB" (specs/cosmian_vm.md: Cosmian VM does not
# evaluate the platform's TCB status). cvm verify evaluates the quote's TCB
# against Intel's TCB info and appraises the status with the policy: a
# platform whose status is not in the accepted set fails the TEE check.
# The simulator has no option for a down-level platform (its quote always
# matches its first TCB level, UpToDate), so the floor is raised instead: a
# policy that accepts only OutOfDate rejects the UpToDate platform. A test
# with a truly down-level simulated platform needs a `cvm sim` option that
# does not exist yet.
# Needs swtpm (else skipped, exit 77), tpm2-tools and python3.
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

sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "$NAME: FAIL: cvm sim init"; exit 1; }
sv_agent_start "$tmp/sim" || { echo "$NAME: FAIL: the agent did not start"; exit 1; }

expect 0 "cvm snapshot" sv_snapshot "$tmp/sim" "$tmp/snap.json" || sv_finish "$NAME"
expect 0 "cvm verify" sv_verify "$tmp/sim" "$tmp/snap.json"
has "[ OK ] tee: TDX quote verified by Intel's rules, TCB UpToDate" "cvm verify"

echo '{"accepted_tcb_statuses": ["OutOfDate"]}' >"$tmp/floor.json"
expect 3 "cvm verify under a raised floor" sv_verify "$tmp/sim" "$tmp/snap.json" --policy "$tmp/floor.json"
grep -q '^\[FAIL\] connection: .*TCB status UpToDate is not accepted' "$tmp/out" && pass || { fail "cvm verify does not fail on the TCB status"; show "$tmp/out"; }
# and cvm snapshot refuses to record a platform below its policy's floor
expect 3 "cvm snapshot under a raised floor" sv_snapshot "$tmp/sim" "$tmp/snap2.json" --policy "$tmp/floor.json"
[ ! -e "$tmp/snap2.json" ] && pass || fail "cvm snapshot wrote a snapshot below the floor"
sv_finish "$NAME"
