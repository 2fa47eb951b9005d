#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || fail": fail runs when either fails, as meant
# cvm-kmsd's Onboard service (dstack spec §3.6) on the simulated TEE: with
# [onboard] enabled and no roots, a node serves only Onboard.* over RA-TLS
# until Onboard.Finish, then the KMS RPC.
#  - GetAttestationInfo gives the node's BootInfo values (what an operator
#    registers) and whether its own policy allows it;
#  - Finish before any roots is refused; Bootstrap with another domain is
#    refused; Bootstrap makes the roots (its ca_pubkey is root-ca.crt's
#    key), attested by the guest agent (bootstrap-info.json verifies), and
#    a second Bootstrap is refused and changes nothing;
#  - after Finish the node serves GetMeta with those roots;
#  - a second node onboards from the first with Onboard{source_url}: both
#    then have the same roots (GetMeta); an unreachable source is a clear
#    error, and the node keeps onboarding;
#  - [onboard] auto_bootstrap makes attested roots at the first start,
#    unattended, and keeps them afterwards;
#  - the network process never holds a root key (its memory is searched
#    after Bootstrap, and after Onboard and Finish, when the key process
#    holds them: the search works).
# Needs: python3 with cryptography, curl, openssl.
set -euo pipefail

bin="$(cd "${CVM_BIN:-build/bin}" && pwd)"
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$(dirname "$0")/../common/kms.sh"
trap 'kms_cleanup; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT

kms_need kms_onboard_service python3 curl

# call NODE METHOD BODY: POST Onboard.METHOD to the node's onboarding port;
# the body goes to $tmp/out, the status is printed. The certificate is
# RA-TLS (checked by `cvm kms meta` once the node serves); curl -k here.
call() {
	curl -sk -o "$tmp/out" -w '%{http_code}' -X POST -H 'content-type: application/json' \
		-d "$3" "https://127.0.0.1:$(cat "$tmp/$1/port")/prpc/Onboard.$2?json"
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' "$tmp/out" "$1"; }
spki_hex() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER | od -An -v -tx1 | tr -d ' \n'; }

kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_cvm kmsvm2 '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}' kmsvm
extra=$'[auth]\ntype = dev\n[onboard]\nenabled = true'
kms_conf n1 kmsvm kmsvm "$extra"
KMS_NO_BOOTSTRAP=1 kms_start n1

# 1. What an operator registers first.
check
st="$(call n1 GetAttestationInfo '{}')"
[ "$st" = 200 ] || fail "GetAttestationInfo: HTTP $st: $(cat "$tmp/out")"
for f in device_id mr_aggregated os_image_hash mr_system; do
	[ "$(field "$f" | wc -c)" = 65 ] || fail "GetAttestationInfo: $f is not 32 bytes of hex: $(cat "$tmp/out")"
done
[ "$(field site_name)" = n1 ] || fail "GetAttestationInfo: site_name"
[ "$(field self_allowed)" = True ] || fail "GetAttestationInfo: the dev policy does not allow the node: $(cat "$tmp/out")"

# 2. Bootstrap, once.
check
st="$(call n1 Finish '{}')"
[ "$st" = 400 ] && grep -q "no roots yet" "$tmp/out" || fail "Finish without roots: HTTP $st $(cat "$tmp/out")"
st="$(call n1 Bootstrap '{"domain":"other.example"}')"
[ "$st" = 400 ] || fail "Bootstrap with another domain: HTTP $st"
[ -e "$tmp/n1/roots" ] && [ -n "$(ls -A "$tmp/n1/roots" 2>/dev/null)" ] && fail "a refused Bootstrap left files" || true
st="$(call n1 Bootstrap '{"domain":"localhost"}')"
[ "$st" = 200 ] || fail "Bootstrap: HTTP $st: $(cat "$tmp/out")"
ca="$(field ca_pubkey)"
[ "$ca" = "$(spki_hex "$tmp/n1/roots/epoch-0/root-ca.crt")" ] || fail "Bootstrap's ca_pubkey is not root-ca.crt's key"
[ "$(field k256_pubkey | wc -c)" = 67 ] || fail "Bootstrap's k256_pubkey is not 33 bytes"
# the new roots are attested (dstack's BootstrapResponse.attestation, and
# bootstrap-info.json beside them, which verifies)
[ "$(field attestation | wc -c)" -gt 1000 ] || fail "Bootstrap's answer carries no attestation"
# shellcheck disable=SC2046
"$bin/cvm" kms bootstrap-info verify "$tmp/n1/roots/epoch-0/bootstrap-info.json" --root-dir "$tmp/n1/roots" \
	$(kms_roots_of kmsvm) >"$tmp/bi.out" 2>&1 || fail "the Onboard service's bootstrap-info does not verify: $(cat "$tmp/bi.out")"
sum="$(cat "$tmp/n1/roots/epoch-0"/* | sha256sum)"
st="$(call n1 Bootstrap '{}')"
[ "$st" = 403 ] && grep -q "already holds roots" "$tmp/out" || fail "a second Bootstrap: HTTP $st $(cat "$tmp/out")"
[ "$(cat "$tmp/n1/roots/epoch-0"/* | sha256sum)" = "$sum" ] || fail "a second Bootstrap changed the roots"

# The roots were made in a child: the network process never held them.
check
python3 "$(dirname "$0")/../common/kms_memsearch.py" "$tmp/n1/roots/epoch-0" "${KMS_PID[n1]}:none" ||
	fail "privilege separation: the onboarding process holds a root key after Bootstrap"

# 3. Finish: the node serves the KMS RPC with those roots.
check
old="$(cat "$tmp/n1/port")"
rm -f "$tmp/n1/port"
st="$(curl -sk -o "$tmp/out" -w '%{http_code}' -X POST -d '{}' "https://127.0.0.1:$old/prpc/Onboard.Finish?json")"
[ "$st" = 200 ] || fail "Finish: HTTP $st: $(cat "$tmp/out")"
kms_wait "$tmp/n1/port" "cvm-kmsd n1 after Finish" "${KMS_PID[n1]}" "$tmp/n1/kmsd.log" || fail "n1 does not serve after Finish"
# shellcheck disable=SC2046
"$bin/cvm" kms meta $(kms_roots_of kmsvm) --ca "$tmp/n1/roots/epoch-0/root-ca.crt" "127.0.0.1:$(cat "$tmp/n1/port")" >"$tmp/meta1.json" ||
	fail "GetMeta after Finish"

# 4. A second node onboards from the first.
check
kms_conf n2 kmsvm2 kmsvm "$extra"
KMS_NO_BOOTSTRAP=1 kms_start n2
dead="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
st="$(call n2 Onboard "{\"source_url\":\"127.0.0.1:$dead\"}")"
[ "$st" != 200 ] && grep -q "cannot connect" "$tmp/out" || fail "Onboard from nothing: HTTP $st $(cat "$tmp/out")"
st="$(call n2 Onboard "{\"source_url\":\"https://127.0.0.1:$(cat "$tmp/n1/port")\"}")"
[ "$st" = 200 ] || fail "Onboard: HTTP $st: $(cat "$tmp/out")"
[ "$(field ca_pubkey)" = "$ca" ] || fail "Onboard: n2's root CA is not n1's"
old="$(cat "$tmp/n2/port")"
rm -f "$tmp/n2/port"
curl -sk -o /dev/null -X POST -d '{}' "https://127.0.0.1:$old/prpc/Onboard.Finish?json"
kms_wait "$tmp/n2/port" "cvm-kmsd n2 after Finish" "${KMS_PID[n2]}" "$tmp/n2/kmsd.log" || fail "n2 does not serve after Finish"
# shellcheck disable=SC2046
"$bin/cvm" kms meta $(kms_roots_of kmsvm) --ca "$tmp/n1/roots/epoch-0/root-ca.crt" "127.0.0.1:$(cat "$tmp/n2/port")" >"$tmp/meta2.json" ||
	fail "GetMeta of n2 (pinned to n1's root CA)"
k1="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["k256_pubkey"])' "$tmp/meta1.json")"
k2="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["k256_pubkey"])' "$tmp/meta2.json")"
[ -n "$k1" ] && [ "$k1" = "$k2" ] || fail "n1 and n2 have different k256 roots ($k1, $k2)"
# after Finish: the key process holds the roots (the search works), the
# network process, which ran Onboard, does not
check
key_pid="$(pgrep -P "${KMS_PID[n2]}" | head -n1 || true)"
python3 "$(dirname "$0")/../common/kms_memsearch.py" "$tmp/n2/roots/epoch-0" "$key_pid:all" "${KMS_PID[n2]}:none" ||
	fail "privilege separation after Onboard and Finish: see above"

# 5. Unattended: [onboard] auto_bootstrap makes attested roots at the first
# start and serves at once; the next start uses them.
check
kms_conf n3 kmsvm kmsvm $'[auth]\ntype = dev\n[onboard]\nauto_bootstrap = true'
KMS_NO_BOOTSTRAP=1 kms_start n3 || fail "auto_bootstrap: n3 did not start"
[ -s "$tmp/n3/roots/epoch-0/root-ca.crt" ] || fail "auto_bootstrap: no roots"
# shellcheck disable=SC2046
"$bin/cvm" kms bootstrap-info verify "$tmp/n3/roots/epoch-0/bootstrap-info.json" --root-dir "$tmp/n3/roots" \
	$(kms_roots_of kmsvm) >/dev/null 2>&1 || fail "auto_bootstrap: the roots are not attested"
# shellcheck disable=SC2046
"$bin/cvm" kms meta $(kms_roots_of kmsvm) --ca "$tmp/n3/roots/epoch-0/root-ca.crt" "127.0.0.1:$(cat "$tmp/n3/port")" \
	>/dev/null || fail "auto_bootstrap: GetMeta"
python3 "$(dirname "$0")/../common/kms_memsearch.py" "$tmp/n3/roots/epoch-0" "${KMS_PID[n3]}:none" ||
	fail "auto_bootstrap: the network process holds a root key"
sum="$(cat "$tmp/n3/roots/epoch-0"/* | sha256sum)"
kms_stop n3
kms_start n3 || fail "auto_bootstrap: n3 did not start again"
[ "$(cat "$tmp/n3/roots/epoch-0"/* | sha256sum)" = "$sum" ] || fail "auto_bootstrap: a second start changed the roots"

kms_report kms_onboard_service
