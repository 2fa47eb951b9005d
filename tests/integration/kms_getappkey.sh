#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || fail": fail runs when either fails, as meant
# cvm-kmsd end to end on the simulated TEE: a KMS running in one simulated
# CVM (its agent attests the KMS's TLS key), an app in another.
#  - bootstrap makes the roots once (keys 0600); a second bootstrap is
#    refused (exit 3) and changes nothing;
#  - `cvm kms meta` checks the KMS's RA-TLS certificate (the KMS's own
#    evidence, its root CA pinned with --ca) and prints GetMeta; pinned to
#    another CA it is refused;
#  - GetAppKey over mutual RA-TLS with the app agent's identity key: the
#    keys equal `cvm kms derive` for the app id and instance id the app's
#    runtime log names (read here with python3);
#  - the attacker inside the app's CVM: a key it had quoted through the
#    agent's GetTlsKey (RA-TLS, the same TEE, the same app) gets nothing
#    (403, exit 3, nothing on stdout);
#  - no client certificate: 401; a CVM whose evidence chains to a root the
#    KMS does not trust: the handshake fails, no keys;
#  - without an authorization policy ([auth] type none) nobody gets keys;
#  - privilege separation: the network process never holds a root key (its
#    memory is searched for the root k256 and root CA scalars; the key
#    process's memory, searched the same way, holds them: the search works).
# Needs: python3 with cryptography, openssl, curl.
set -euo pipefail

bin="$(cd "${CVM_BIN:-build/bin}" && pwd)"
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$(dirname "$0")/../common/kms.sh"
trap 'kms_cleanup; rm -rf "$tmp"' EXIT

kms_need kms_getappkey python3 openssl curl

kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_cvm app '{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}"}' kmsvm
kms_cvm stranger '{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}"}'
kms_node kms1 kmsvm app $'[auth]\ntype = dev'
port="$(cat "$tmp/kms1/port")"
roots="$tmp/kms1/roots/epoch-0"
# shellcheck disable=SC2207
kv=($(kms_roots_of kmsvm) --ca "$roots/root-ca.crt")

# 1. The roots.
check
for f in root-ca.key root-k256.key tmp-ca.key; do
	m="$(stat -c %a "$roots/$f")"
	[ "$m" = 600 ] || fail "bootstrap: $f has mode $m, want 600"
done
check
sum_before="$(cat "$roots"/* | sha256sum)"
rc=0
"$bin/cvm-kmsd" bootstrap -c "$tmp/kms1/kmsd.conf" >/dev/null 2>"$tmp/boot2.err" || rc=$?
[ "$rc" -eq 3 ] || fail "a second bootstrap exited $rc, want 3: $(cat "$tmp/boot2.err")"
grep -q "never made twice" "$tmp/boot2.err" || fail "a second bootstrap does not say why: $(cat "$tmp/boot2.err")"
[ "$(cat "$roots"/* | sha256sum)" = "$sum_before" ] || fail "a second bootstrap changed the roots"

# 2. GetMeta, the KMS's certificate checked.
check
rc=0
"$bin/cvm" kms meta "127.0.0.1:$port" "${kv[@]}" >"$tmp/meta.json" 2>"$tmp/meta.err" || rc=$?
if [ "$rc" -ne 0 ]; then
	fail "kms meta exited $rc: $(cat "$tmp/meta.err")"
else
	python3 - "$tmp/meta.json" "$roots" <<'EOF' || fail "GetMeta's answer is not the roots'"
import json, sys
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import serialization
o = json.load(open(sys.argv[1]))
assert o["ca_cert"] == open(sys.argv[2] + "/root-ca.crt").read(), "ca_cert"
k = ec.derive_private_key(int.from_bytes(open(sys.argv[2] + "/root-k256.key", "rb").read(), "big"), ec.SECP256K1())
pub = k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
assert o["k256_pubkey"] == pub.hex(), "k256_pubkey"
assert o["epoch"] == 0 and o["allow_any_upgrade"] is False
EOF
fi
check
rc=0
# shellcheck disable=SC2046
"$bin/cvm" kms meta "127.0.0.1:$port" $(kms_roots_of kmsvm) --ca "$tmp/app/sim/keys/root.pem" \
	>"$tmp/meta2.out" 2>"$tmp/meta2.err" || rc=$?
[ "$rc" -ne 0 ] && [ ! -s "$tmp/meta2.out" ] || fail "kms meta pinned to another CA exited $rc"

# 3. GetAppKey with the agent's identity.
app_id="$(kms_runtime_hex app app-id)"
instance_id="$(kms_runtime_hex app instance-id)"
check
rc=0
"$bin/cvm" kms app-key "127.0.0.1:$port" "${kv[@]}" --cert "$tmp/app/chain.pem" --key "$tmp/app/identity.pem" \
	>"$tmp/keys.json" 2>"$tmp/keys.err" || rc=$?
if [ "$rc" -ne 0 ]; then
	fail "app-key exited $rc: $(cat "$tmp/keys.err")"
else
	"$bin/cvm" kms derive --root-dir "$tmp/kms1/roots" --app-id "$app_id" --instance-id "$instance_id" --json \
		>"$tmp/derive.json"
	python3 - "$tmp/keys.json" "$tmp/derive.json" "$roots" <<'EOF' || fail "GetAppKey's keys are not cvm kms derive's"
import json, sys
k, d = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for n in ("disk_crypt_key", "env_crypt_key", "k256_key", "k256_signature"):
    assert k[n] == d[n], n
assert len(k["disk_crypt_key"]) == 64 and k["epoch"] == 0
assert k["ca_cert"] == open(sys.argv[3] + "/root-ca.crt").read()
EOF
fi
check
grep -q "event=decision .*method=GetAppKey .*app_id=$app_id decision=allowed" "$tmp/kms1/kmsd.log" ||
	fail "no app_key line for the allowed request"
check
if grep -q "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disk_crypt_key"])' "$tmp/keys.json")" \
	"$tmp/kms1/kmsd.log"; then
	fail "a released key reached the KMS's log"
fi

# 4. The attacker inside the app's CVM: its own key, quoted by the agent.
check
curl -sf --unix-socket "$tmp/app/dstack.sock" -d '{"subject":"x","usage_ra_tls":true,"usage_client_auth":true}' \
	http://localhost/GetTlsKey >"$tmp/tk.json"
python3 - "$tmp/tk.json" "$tmp/tk" <<'EOF'
import json, os, sys
o = json.load(open(sys.argv[1]))
open(sys.argv[2] + ".pem", "w").write("".join(o["certificate_chain"]))
fd = os.open(sys.argv[2] + ".key", os.O_WRONLY | os.O_CREAT, 0o600)
os.write(fd, o["key"].encode())
os.close(fd)
EOF
rc=0
"$bin/cvm" kms app-key "127.0.0.1:$port" "${kv[@]}" --cert "$tmp/tk.pem" --key "$tmp/tk.key" \
	>"$tmp/atk.out" 2>"$tmp/atk.err" || rc=$?
[ "$rc" -eq 3 ] || fail "the attacker's key: exit $rc, want 3: $(cat "$tmp/atk.err")"
[ ! -s "$tmp/atk.out" ] || fail "the attacker's key got an answer"
grep -q "not the key cvm-agentd recorded" "$tmp/atk.err" || fail "the attacker's refusal does not say why: $(cat "$tmp/atk.err")"

# 5. No client certificate; a CVM the KMS does not trust.
check
code="$(curl -sk -o "$tmp/nocert.json" -w '%{http_code}' --tlsv1.3 -X POST -d '{}' \
	"https://127.0.0.1:$port/prpc/KMS.GetAppKey?json" || true)"
[ "$code" = 401 ] || fail "GetAppKey without a client certificate: HTTP $code, want 401"
grep -q "mutual RA-TLS" "$tmp/nocert.json" || fail "the 401 does not say what is needed"
check
rc=0
"$bin/cvm" kms app-key "127.0.0.1:$port" "${kv[@]}" --cert "$tmp/stranger/chain.pem" \
	--key "$tmp/stranger/identity.pem" >"$tmp/str.out" 2>"$tmp/str.err" || rc=$?
[ "$rc" -ne 0 ] && [ ! -s "$tmp/str.out" ] || fail "an untrusted CVM got an answer (exit $rc)"

# 6. Privilege separation: the root keys live in the key process only.
check
net_pid="${KMS_PID[kms1]}"
key_pid="$(pgrep -P "$net_pid" | head -n1 || true)"
if [ -z "$key_pid" ] || [ "$(cat "/proc/$key_pid/comm")" != cvm-kmsd-keys ]; then
	fail "no key process (cvm-kmsd-keys) under the network process $net_pid"
else
	python3 "$(dirname "$0")/../common/kms_memsearch.py" "$roots" "$key_pid:all" "$net_pid:none" ||
		fail "privilege separation: see above"
fi

# 7. No authorization policy: nobody gets keys.
check
kill -TERM "${KMS_PID[kms1]}"
wait "${KMS_PID[kms1]}" 2>/dev/null || true
kms_node kms1 kmsvm app $'[auth]\ntype = none'
port="$(cat "$tmp/kms1/port")"
rc=0
"$bin/cvm" kms app-key "127.0.0.1:$port" "${kv[@]}" --cert "$tmp/app/chain.pem" --key "$tmp/app/identity.pem" \
	>"$tmp/noauth.out" 2>"$tmp/noauth.err" || rc=$?
[ "$rc" -eq 3 ] && [ ! -s "$tmp/noauth.out" ] || fail "without a policy: exit $rc, want 3 and no keys"

if [ "$failures" -ne 0 ]; then
	echo "kms_getappkey: $failures of $checks checks failed" >&2
	exit 1
fi
echo "kms_getappkey: $checks checks passed"
