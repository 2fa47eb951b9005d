#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || fail": fail runs when either fails, as meant
# Key epochs end to end (cvm-kmsd on the simulated TEE, cvm kms rotate,
# revoke-epoch, epochs):
#  - after `cvm kms rotate` the app gets new keys (epoch 1's, equal to
#    `cvm kms derive --epoch 1`), while epoch 0's keys (the old disk key)
#    are still released on request during the grace period, so the disk can
#    be opened and re-keyed;
#  - a revoked epoch is never released again (403, exit 3); the current
#    epoch cannot be revoked;
#  - a grace period ends by itself: after it, the epoch is refused without
#    any restart;
#  - `cvm kms epochs --json` lists the states.
# Needs: python3, openssl.
set -euo pipefail

bin="$(cd "${CVM_BIN:-build/bin}" && pwd)"
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$(dirname "$0")/../common/kms.sh"
trap 'kms_cleanup; rm -rf "$tmp"' EXIT

kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_cvm app '{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}"}' kmsvm
kms_node kms1 kmsvm app $'[auth]\ntype = dev'
rd="$tmp/kms1/roots"
app_id="$(kms_runtime_hex app app-id)"
iid="$(kms_runtime_hex app instance-id)"

restart() {
	kill -TERM "${KMS_PID[kms1]}"
	wait "${KMS_PID[kms1]}" 2>/dev/null || true
	kms_node kms1 kmsvm app $'[auth]\ntype = dev'
}

# app_key OUT [--epoch N]: GetAppKey as the app; the exit code.
app_key() {
	local out="$1" rc=0
	shift
	local cas=() f
	# the KMS's certificate comes from the current epoch's root CA
	for f in "$rd"/epoch-*/root-ca.crt; do cas+=(--ca "$f"); done
	# shellcheck disable=SC2046
	"$bin/cvm" kms app-key "127.0.0.1:$(cat "$tmp/kms1/port")" $(kms_roots_of kmsvm) "${cas[@]}" \
		--cert "$tmp/app/chain.pem" --key "$tmp/app/identity.pem" "$@" >"$out" 2>"$out.err" || rc=$?
	return "$rc"
}

field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

check
app_key "$tmp/k0.json" || fail "epoch 0: $(cat "$tmp/k0.json.err")"

check
"$bin/cvm" kms rotate --root-dir "$rd" --grace 3600 >"$tmp/rot.out" || fail "rotate failed"
grep -q "epoch 1 is current" "$tmp/rot.out" || fail "rotate says: $(cat "$tmp/rot.out")"
restart

check
if app_key "$tmp/k1.json"; then
	[ "$(field "$tmp/k1.json" epoch)" = 1 ] || fail "after rotate the answer's epoch is $(field "$tmp/k1.json" epoch)"
	[ "$(field "$tmp/k1.json" disk_crypt_key)" != "$(field "$tmp/k0.json" disk_crypt_key)" ] ||
		fail "epoch 1's disk key is epoch 0's"
	"$bin/cvm" kms derive --root-dir "$rd" --app-id "$app_id" --instance-id "$iid" --epoch 1 --json >"$tmp/d1.json"
	for n in disk_crypt_key env_crypt_key k256_key k256_signature; do
		[ "$(field "$tmp/k1.json" $n)" = "$(field "$tmp/d1.json" $n)" ] || fail "epoch 1's $n is not cvm kms derive's"
	done
else
	fail "epoch 1: $(cat "$tmp/k1.json.err")"
fi
check
if app_key "$tmp/k0b.json" --epoch 0; then
	[ "$(field "$tmp/k0b.json" disk_crypt_key)" = "$(field "$tmp/k0.json" disk_crypt_key)" ] ||
		fail "epoch 0 during its grace period gives another disk key"
	[ "$(field "$tmp/k0b.json" epoch)" = 0 ] || fail "epoch 0's answer names epoch $(field "$tmp/k0b.json" epoch)"
else
	fail "epoch 0 in its grace period: $(cat "$tmp/k0b.json.err")"
fi

check
rc=0
"$bin/cvm" kms revoke-epoch --root-dir "$rd" 1 >/dev/null 2>"$tmp/rev1.err" || rc=$?
[ "$rc" -eq 3 ] && grep -q "current one" "$tmp/rev1.err" || fail "revoking the current epoch: exit $rc: $(cat "$tmp/rev1.err")"
check
"$bin/cvm" kms revoke-epoch --root-dir "$rd" 0 >/dev/null || fail "revoke-epoch 0 failed"
restart
rc=0
app_key "$tmp/k0c.json" --epoch 0 || rc=$?
[ "$rc" -eq 3 ] && [ ! -s "$tmp/k0c.json" ] || fail "a revoked epoch: exit $rc, want 3 and nothing"
grep -q "not readable" "$tmp/k0c.json.err" || fail "the refusal does not say why: $(cat "$tmp/k0c.json.err")"
check
app_key "$tmp/k1b.json" || fail "the current epoch after a revocation: $(cat "$tmp/k1b.json.err")"

# A grace period that ends while the KMS runs.
check
"$bin/cvm" kms rotate --root-dir "$rd" --grace 2 >/dev/null || fail "the second rotate failed"
restart
app_key "$tmp/k1c.json" --epoch 1 || fail "epoch 1 right after its rotation: $(cat "$tmp/k1c.json.err")"
sleep 3
rc=0
app_key "$tmp/k1d.json" --epoch 1 || rc=$?
[ "$rc" -eq 3 ] || fail "epoch 1 after its grace period: exit $rc, want 3"

check
"$bin/cvm" kms epochs --root-dir "$rd" --json >"$tmp/epochs.json"
python3 - "$tmp/epochs.json" <<'EOF' || fail "cvm kms epochs: $(cat "$tmp/epochs.json")"
import json, sys
o = json.load(open(sys.argv[1]))
s = {e["epoch"]: (e["state"], e["readable"]) for e in o["epochs"]}
assert o["current"] == 2, o
assert s == {0: ("revoked", False), 1: ("grace", False), 2: ("current", True)}, s
EOF

if [ "$failures" -ne 0 ]; then
	echo "kms_epochs: $failures of $checks checks failed" >&2
	exit 1
fi
echo "kms_epochs: $checks checks passed"
