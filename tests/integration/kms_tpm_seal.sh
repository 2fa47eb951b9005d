#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || fail": fail runs when either fails, as meant
# cvm-kmsd's roots sealed to a TPM ([kms] tpm_tcti; swtpm stands in for the
# TPM), end to end on the simulated TEE:
#  - `cvm-kmsd bootstrap` with tpm_tcti writes root-ca.key.tpm,
#    root-k256.key.tpm and tmp-ca.key.tpm (mode 0600, the blob's magic) and
#    no plaintext key: no root-ca.key/root-k256.key/tmp-ca.key, and no
#    "PRIVATE KEY" PEM anywhere in the root folder (that the sealed k256
#    file does not hold the root's bytes is unit.tpm_seal's check, which can
#    read the root through the library);
#  - the daemon logs which roots are sealed, with no key bytes;
#  - a simulated CVM's GetAppKey answer equals `cvm kms derive --tpm`, and
#    a second derivation gives the same keys; `cvm kms derive` without
#    --tpm refuses, naming the setting;
#  - after a restart the CVM gets the same keys;
#  - a second node that onboards from the first writes its roots sealed,
#    and they give the same keys;
#  - `cvm kms rotate --tpm` seals the new epoch too;
#  - with swtpm's state gone (a new TPM) the daemon refuses to start, saying
#    it cannot unseal; a config without tpm_tcti refuses too, naming it.
# Needs: swtpm (skipped with exit 77 without it), python3, openssl.
set -euo pipefail

if ! command -v swtpm >/dev/null 2>&1; then
	echo "SKIP: swtpm is not installed (Debian package swtpm, installed by scripts/setup.sh)"
	exit 77
fi

bin="$(cd "${CVM_BIN:-build/bin}" && pwd)"
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$(dirname "$0")/../common/kms.sh"
# shellcheck source=tests/common/swtpm.sh
. "$(dirname "$0")/../common/swtpm.sh"
trap 'kms_cleanup; swtpm_stop; rm -rf "$tmp"' EXIT
export TSS2_LOG=all+none

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
check() { checks=$((checks + 1)); }

swtpm_start "$tmp/tpm" || exit 1
tpm_conf() { printf '[kms]\ntpm_tcti = %s\n[auth]\ntype = dev\n' "$SWTPM_TCTI"; }

kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_cvm app '{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}"}' kmsvm
# kms_conf's [kms] section comes first; a second [kms] section adds tpm_tcti.
kms_conf kms1 kmsvm app "$(tpm_conf)"
rd="$tmp/kms1/roots"
app_id="$(kms_runtime_hex app app-id)"
iid="$(kms_runtime_hex app instance-id)"

check
"$bin/cvm-kmsd" bootstrap -c "$tmp/kms1/kmsd.conf" >"$tmp/kms1/bootstrap.log" 2>&1 ||
	fail "bootstrap with tpm_tcti: $(cat "$tmp/kms1/bootstrap.log")"
ep="$rd/epoch-0"
for f in root-ca.key.tpm root-k256.key.tpm tmp-ca.key.tpm root-ca.crt tmp-ca.crt; do
	[ -s "$ep/$f" ] || fail "bootstrap did not write $f"
done
check
for f in root-ca.key root-k256.key tmp-ca.key; do
	[ ! -e "$ep/$f" ] || fail "a plaintext $f was written beside the sealed roots"
done
check
if grep -rl "PRIVATE KEY" "$rd" >"$tmp/pem-hits"; then
	fail "a private key PEM is in the root folder: $(cat "$tmp/pem-hits")"
fi
check
for f in "$ep"/*.tpm; do
	[ "$(stat -c %a "$f")" = 600 ] || fail "$f has mode $(stat -c %a "$f"), want 600"
	[ "$(head -c 8 "$f")" = "cvmseal" ] || fail "$f does not start with the sealed blob's magic"
done

kms_start kms1 || exit 1
check
grep -q "event=roots_loaded .*tpm=on sealed=root-ca.key,root-k256.key,tmp-ca.key plain=none" "$tmp/kms1/kmsd.log" ||
	fail "the start log does not say which roots are sealed: $(grep roots_loaded "$tmp/kms1/kmsd.log" || true)"

# app_key OUT: GetAppKey as the app; the exit code.
app_key() {
	local out="$1" rc=0 cas=() f
	for f in "$rd"/epoch-*/root-ca.crt; do cas+=(--ca "$f"); done
	# shellcheck disable=SC2046
	"$bin/cvm" kms app-key "127.0.0.1:$(cat "$tmp/kms1/port")" $(kms_roots_of kmsvm) "${cas[@]}" \
		--cert "$tmp/app/chain.pem" --key "$tmp/app/identity.pem" >"$out" 2>"$out.err" || rc=$?
	return "$rc"
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
keys="disk_crypt_key env_crypt_key k256_key k256_signature"

check
app_key "$tmp/k1.json" || fail "GetAppKey: $(cat "$tmp/k1.json.err")"
# cvm kms derive talks to the same swtpm: the daemon closed its TPM
# connection once the roots were loaded.
derive() { "$bin/cvm" kms derive --root-dir "$rd" --app-id "$app_id" --instance-id "$iid" "$@"; }
check
derive --tpm "$SWTPM_TCTI" --json >"$tmp/d1.json" 2>"$tmp/d1.err" || fail "derive --tpm: $(cat "$tmp/d1.err")"
derive --tpm "$SWTPM_TCTI" --json >"$tmp/d2.json" 2>"$tmp/d2.err" || fail "second derive --tpm: $(cat "$tmp/d2.err")"
if [ -s "$tmp/k1.json" ] && [ -s "$tmp/d1.json" ]; then
	for n in $keys; do
		[ "$(field "$tmp/k1.json" "$n")" = "$(field "$tmp/d1.json" "$n")" ] || fail "GetAppKey's $n is not cvm kms derive --tpm's"
		[ "$(field "$tmp/d1.json" "$n")" = "$(field "$tmp/d2.json" "$n")" ] || fail "two derivations give two ${n}s"
	done
fi
check
rc=0
derive --json >/dev/null 2>"$tmp/d0.err" || rc=$?
[ "$rc" -ne 0 ] && grep -q "root-ca.key.tpm is sealed to a TPM: set \[kms\] tpm_tcti" "$tmp/d0.err" ||
	fail "derive without --tpm: exit $rc: $(cat "$tmp/d0.err")"

check
kms_stop kms1
kms_start kms1 || exit 1
app_key "$tmp/k2.json" || fail "GetAppKey after a restart: $(cat "$tmp/k2.json.err")"
if [ -s "$tmp/k1.json" ] && [ -s "$tmp/k2.json" ]; then
	for n in $keys; do
		[ "$(field "$tmp/k1.json" "$n")" = "$(field "$tmp/k2.json" "$n")" ] || fail "$n changed across a restart"
	done
fi
# A second node onboards from the first: its copy of the roots is sealed
# too (to the same swtpm here; each node has its own TPM in production),
# and derives the same keys.
check
kms_cvm kmsvm2 '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}' kmsvm
kms_conf kms2 kmsvm2 app "$(tpm_conf)"
"$bin/cvm-kmsd" onboard --from "127.0.0.1:$(cat "$tmp/kms1/port")" -c "$tmp/kms2/kmsd.conf" >"$tmp/kms2.onboard" 2>&1 ||
	fail "onboarding with tpm_tcti: $(cat "$tmp/kms2.onboard")"
[ -s "$tmp/kms2/roots/epoch-0/root-k256.key.tpm" ] && [ ! -e "$tmp/kms2/roots/epoch-0/root-k256.key" ] &&
	[ ! -e "$tmp/kms2/roots/epoch-0/root-ca.key" ] ||
	fail "onboarding did not seal the roots: $(ls "$tmp/kms2/roots/epoch-0" 2>&1)"
if "$bin/cvm" kms derive --root-dir "$tmp/kms2/roots" --app-id "$app_id" --instance-id "$iid" --tpm "$SWTPM_TCTI" \
	--json >"$tmp/d3.json" 2>"$tmp/d3.err"; then
	for n in $keys; do
		[ "$(field "$tmp/d1.json" "$n")" = "$(field "$tmp/d3.json" "$n")" ] || fail "the onboarded node's $n differs"
	done
else
	fail "derive on the onboarded node's roots: $(cat "$tmp/d3.err")"
fi
kms_stop kms1

check
"$bin/cvm" kms rotate --root-dir "$rd" --tpm "$SWTPM_TCTI" --grace 3600 >"$tmp/rot.out" 2>&1 ||
	fail "rotate --tpm: $(cat "$tmp/rot.out")"
[ -s "$rd/epoch-1/root-k256.key.tpm" ] && [ ! -e "$rd/epoch-1/root-k256.key" ] ||
	fail "rotate --tpm did not seal epoch 1: $(ls "$rd/epoch-1")"
grep -rl "PRIVATE KEY" "$rd" >/dev/null && fail "a private key PEM is in the root folder after rotate"

# The same config without tpm_tcti: refused, naming the setting.
check
kms_conf kms1 kmsvm app $'[auth]\ntype = dev'
rc=0
timeout 20 "$bin/cvm-kmsd" -c "$tmp/kms1/kmsd.conf" >"$tmp/notpm.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "is sealed to a TPM: set \[kms\] tpm_tcti" "$tmp/notpm.log" ||
	fail "start without tpm_tcti: exit $rc: $(cat "$tmp/notpm.log")"

# A new TPM: swtpm's state is gone. The roots cannot be unsealed.
check
swtpm_stop
rm -rf "$tmp/tpm"
swtpm_start "$tmp/tpm" || exit 1
kms_conf kms1 kmsvm app "$(tpm_conf)"
rc=0
timeout 20 "$bin/cvm-kmsd" -c "$tmp/kms1/kmsd.conf" >"$tmp/newtpm.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && grep -q "cannot unseal .*root-ca.key.tpm with this TPM" "$tmp/newtpm.log" ||
	fail "start with a new TPM: exit $rc: $(cat "$tmp/newtpm.log")"
# and no log line of any run carries a released key
check
if [ -s "$tmp/k1.json" ]; then
	for n in $keys; do
		v="$(field "$tmp/k1.json" "$n")"
		! grep -q -F "$v" "$tmp/kms1/kmsd.log" "$tmp/notpm.log" "$tmp/newtpm.log" "$tmp/kms1/bootstrap.log" ||
			fail "a log holds the app's $n"
	done
fi

if [ "$failures" -ne 0 ]; then
	echo "kms_tpm_seal: $failures of $checks checks failed" >&2
	exit 1
fi
echo "kms_tpm_seal: $checks checks passed"
