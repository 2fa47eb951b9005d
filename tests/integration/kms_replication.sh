#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || fail": fail runs when either fails, as meant
# Three cvm-kmsd nodes on loopback, each in its own simulated CVM (one
# platform), and an app CVM:
#  - kms2 and kms3 onboard from kms1 over mutual RA-TLS (`cvm-kmsd onboard`,
#    GetKmsKey): each presents its agent's identity, checks kms1's RA-TLS
#    certificate, and ends up with kms1's roots and epoch table; all three
#    answer GetMeta with one root CA and give the app identical keys;
#  - a node that the source's policy does not allow gets nothing (exit 3,
#    no root written); a node that has roots does not onboard again;
#  - traffic: the app asks for its keys over and over with the list
#    kms1 kms2 kms3 (a CVM's kms_urls); kms1 is killed in the middle; every
#    request still gets the same keys, the later ones from kms2.
# Needs: python3, openssl.
set -euo pipefail

bin="$(cd "${CVM_BIN:-build/bin}" && pwd)"
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$(dirname "$0")/../common/kms.sh"
trap 'kms_cleanup; rm -rf "$tmp"' EXIT

compose='{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_cvm kvm1 "$compose"
kms_cvm kvm2 "$compose" kvm1
kms_cvm kvm3 "$compose" kvm1
kms_cvm kvm4 "$compose" kvm1
kms_cvm app '{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}"}' kvm1
dev=$'[auth]\ntype = dev'
kms_node kms1 kvm1 app "$dev"
p1="$(cat "$tmp/kms1/port")"

# onboard NAME CVM: `cvm-kmsd onboard --from kms1`; the exit code.
onboard() {
	local rc=0
	kms_conf "$1" "$2" app "$dev"
	"$bin/cvm-kmsd" onboard --from "127.0.0.1:$p1" -c "$tmp/$1/kmsd.conf" >"$tmp/$1.onboard" 2>&1 || rc=$?
	return "$rc"
}

check
onboard kms2 kvm2 || fail "kms2 did not onboard: $(cat "$tmp/kms2.onboard")"
onboard kms3 kvm3 || fail "kms3 did not onboard: $(cat "$tmp/kms3.onboard")"
check
for n in kms2 kms3; do
	cmp -s "$tmp/kms1/roots/epoch-0/root-ca.key" "$tmp/$n/roots/epoch-0/root-ca.key" &&
		cmp -s "$tmp/kms1/roots/epoch-0/root-k256.key" "$tmp/$n/roots/epoch-0/root-k256.key" ||
		fail "$n's roots are not kms1's"
	[ "$(stat -c %a "$tmp/$n/roots/epoch-0/root-ca.key")" = 600 ] || fail "$n's root CA key is not mode 600"
done
check
rc=0
"$bin/cvm-kmsd" onboard --from "127.0.0.1:$p1" -c "$tmp/kms2/kmsd.conf" >"$tmp/again.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] && grep -q "already holds roots" "$tmp/again.out" || fail "onboarding twice: exit $rc: $(cat "$tmp/again.out")"

# A source whose policy allows no KMS node.
check
kms_stop kms1
kms_node kms1 kvm1 app $'[auth]\ntype = none'
p1="$(cat "$tmp/kms1/port")"
rc=0
kms_conf kms4 kvm4 app "$dev"
"$bin/cvm-kmsd" onboard --from "127.0.0.1:$p1" -c "$tmp/kms4/kmsd.conf" >"$tmp/kms4.onboard" 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "a node the policy does not allow: exit $rc, want 3: $(cat "$tmp/kms4.onboard")"
grep -q "HTTP 403" "$tmp/kms4.onboard" || fail "the refusal does not say why: $(cat "$tmp/kms4.onboard")"
[ ! -e "$tmp/kms4/roots/epoch-0/root-ca.key" ] || fail "a refused node has a root CA key"
kms_stop kms1
kms_node kms1 kvm1 app "$dev"
kms_start kms2
kms_start kms3
p1="$(cat "$tmp/kms1/port")"
p2="$(cat "$tmp/kms2/port")"
p3="$(cat "$tmp/kms3/port")"

# shellcheck disable=SC2207
kv=($(kms_roots_of kvm1) --ca "$tmp/kms1/roots/epoch-0/root-ca.crt")
check
for p in "$p1" "$p2" "$p3"; do
	"$bin/cvm" kms meta "127.0.0.1:$p" "${kv[@]}" >"$tmp/meta.$p" 2>&1 || fail "GetMeta of port $p: $(cat "$tmp/meta.$p")"
done
[ "$(python3 -c 'import json,sys; print(len({json.load(open(f))["ca_cert"] for f in sys.argv[1:]}))' \
	"$tmp/meta.$p1" "$tmp/meta.$p2" "$tmp/meta.$p3")" = 1 ] || fail "the three nodes have different root CAs"

app_key() {
	"$bin/cvm" kms app-key "$@" "${kv[@]}" --cert "$tmp/app/chain.pem" --key "$tmp/app/identity.pem"
}
check
for p in "$p1" "$p2" "$p3"; do
	app_key "127.0.0.1:$p" >"$tmp/keys.$p" 2>&1 || fail "GetAppKey of port $p: $(cat "$tmp/keys.$p")"
done
[ "$(python3 -c 'import json,sys; print(len({json.load(open(f))["disk_crypt_key"] for f in sys.argv[1:]}))' \
	"$tmp/keys.$p1" "$tmp/keys.$p2" "$tmp/keys.$p3")" = 1 ] || fail "the three nodes give different keys"

# Traffic with kms1 killed in the middle.
check
n=24
(
	for i in $(seq 1 "$n"); do
		rc=0
		app_key "127.0.0.1:$p1" "127.0.0.1:$p2" "127.0.0.1:$p3" >"$tmp/t.$i.json" 2>"$tmp/t.$i.err" || rc=$?
		echo "$rc" >"$tmp/t.$i.rc"
	done
) &
loop=$!
for _ in $(seq 1 100); do
	[ -e "$tmp/t.8.rc" ] && break
	sleep 0.1
done
kill -KILL "${KMS_PID[kms1]}"
wait "$loop"
bad=0
for i in $(seq 1 "$n"); do
	if [ "$(cat "$tmp/t.$i.rc")" != 0 ] || ! cmp -s <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disk_crypt_key"])' "$tmp/t.$i.json" 2>/dev/null) \
		<(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disk_crypt_key"])' "$tmp/keys.$p1"); then
		bad=$((bad + 1))
		echo "request $i: exit $(cat "$tmp/t.$i.rc"): $(cat "$tmp/t.$i.err")" >&2
	fi
done
[ "$bad" -eq 0 ] || fail "$bad of $n requests failed or got other keys while kms1 died"
check
grep -l "trying the next KMS" "$tmp"/t.*.err >/dev/null 2>&1 || fail "no request failed over (kms1 was never down?)"
grep -q "decision=allowed" "$tmp/kms2/kmsd.log" || fail "kms2 answered nothing"

if [ "$failures" -ne 0 ]; then
	echo "kms_replication: $failures of $checks checks failed" >&2
	exit 1
fi
echo "kms_replication: $checks checks passed ($n requests, kms1 killed after 8)"
