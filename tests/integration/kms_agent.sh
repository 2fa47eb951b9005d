#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || fail": fail runs when either fails, as meant
# cvm-agentd with the KMS key provider, against cvm-kmsd, on the simulated
# TEE: a KMS in one simulated CVM, an app in another of the same platform
# whose app-compose sets kms_enabled.
#  - the agent gets its keys at boot, failing over from a dead KMS to the
#    next of its list; the keys equal `cvm kms derive` for the app id and
#    instance id its runtime log names (disk key file, GetKey's k256
#    signature);
#  - the host may name the app id (dstack's .instance_info), as a KMS
#    deployment does with its DstackApp contract address;
#  - GetTlsKey goes through KMS.SignCert: leaf, App CA, root CA, verifying
#    up to the KMS's root CA, the App CA the one derived for the app;
#  - RTMR3's runtime events come in dstack's order with the agent's
#    identity before GetAppKey: system-preparing, app-id, compose-hash,
#    instance-id, boot-mr-done, cvmkit.agent-key, key-provider
#    {"name":"kms","id":hex(root CA SPKI)}, system-ready;
#  - the encrypted environment is decrypted with the KMS's env key and
#    filtered by allowed_envs;
#  - a restart within the boot gets the same keys and records nothing;
#  - fail closed: a KMS whose root CA is not the one app-compose pins, a
#    KMS that refuses the app (no policy), and no KMS reachable: the agent
#    does not start and says why.
# Needs: python3, openssl, curl.
set -euo pipefail

bin="$(cd "${CVM_BIN:-build/bin}" && pwd)"
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$(dirname "$0")/../common/kms.sh"
AGENTS=()
stop_agents() {
	local p
	for p in "${AGENTS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${AGENTS[@]}"; do wait "$p" 2>/dev/null || true; done
	AGENTS=()
}
trap 'stop_agents; kms_cleanup; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT

kms_need kms_agent python3 openssl curl

kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_node kms1 kmsvm kmsvm $'[auth]\ntype = dev'
kms_node nopolicy kmsvm kmsvm $'[auth]\ntype = none'
port="$(cat "$tmp/kms1/port")"
roots="$tmp/kms1/roots/epoch-0"
col="$tmp/kmsvm/sim/collateral"
spki="$(openssl x509 -in "$roots/root-ca.crt" -pubkey -noout | openssl pkey -pubin -outform DER | od -An -v -tx1 | tr -d ' \n')"
# a port nothing listens on: the dead first KMS of the list
dead="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

# app_agent NAME COMPOSE URLS [EXPECT_FAIL]: a simulated CVM on kmsvm's
# platform whose agent takes its keys from URLS; waits for its TLS port, or
# with EXPECT_FAIL for it to exit (its log in NAME/agent.log).
app_agent() {
	local d="$tmp/$1"
	mkdir -p "$d"
	[ -d "$d/sim" ] || cp -a "$tmp/kmsvm/sim.pristine" "$d/sim"
	printf '%s' "$2" >"$d/app-compose.json"
	cat >"$d/agentd.conf" <<EOF
[kms]
collateral = $col
intel_root = $col/tdx/intel_sgx_root_ca.der
amd_root = $col/snp/ark.pem
disk_key_file = $d/disk.key
encrypted_env = $d/encrypted-env
env_file = $d/app.env
timeout = 5
EOF
	# the [boot] hooks (docs/daemons/cvm-agentd.md) when the test set them
	[ -z "${BOOT_HOOKS:-}" ] || printf '[boot]\nstorage_hook = %s\napp_hook = %s\n' \
		"$BOOT_HOOKS/storage.sh" "$BOOT_HOOKS/app.sh" >>"$d/agentd.conf"
	rm -f "$d/tls.port"
	# the host names the app id (dstack's .instance_info) when the test wrote one
	[ -z "${APP_ID_OVERRIDE:-}" ] || printf '{"app_id":"%s"}' "$APP_ID_OVERRIDE" >"$d/sim/instance_info.json"
	# or the whole .instance_info (an earlier boot's seed, kept by the host)
	[ -z "${INSTANCE_INFO:-}" ] || printf '%s' "$INSTANCE_INFO" >"$d/sim/instance_info.json"
	"$bin/cvm-agentd" -c "$d/agentd.conf" --simulator "$d/sim" --listen "unix:$d/dstack.sock" \
		--app-compose "$d/app-compose.json" --runtime-log "$d/runtime.log" --identity-key "$d/identity.pem" \
		--tls 127.0.0.1:0 --tls-port-file "$d/tls.port" --kms "$3" >>"$d/agent.log" 2>&1 &
	local pid=$!
	AGENTS+=("$pid")
	if [ -n "${4:-}" ]; then
		local _
		for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; [ -s "$d/tls.port" ] && break; sleep 0.1; done
		if [ -s "$d/tls.port" ]; then return 1; fi
		wait "$pid" 2>/dev/null && return 1 || return 0
	fi
	kms_wait "$d/tls.port" "cvm-agentd of $1" "$pid" "$d/agent.log"
}

compose='{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}","kms_enabled":true,"allowed_envs":["API_KEY"]}'
app_id="$(printf '%s' "$compose" | sha256sum | cut -c1-40)"

# The encrypted environment, sealed offline to the env public key that the
# KMS's roots give this app (what `cvm app encrypt-env` would fetch).
"$bin/cvm" kms derive --root-dir "$tmp/kms1/roots" --app-id "$app_id" --json >"$tmp/derive0.json"
envpub="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["env_crypt_public_key"])' "$tmp/derive0.json")"
mkdir -p "$tmp/app"
printf 'API_KEY=s3cret-value\nNOT_ALLOWED=dropped\n' >"$tmp/app.env.plain"
"$bin/cvm" app encrypt-env --pubkey "$envpub" --out "$tmp/app/encrypted-env" "$tmp/app.env.plain" >/dev/null

# 1. Keys at boot, with failover from a dead KMS.
check
app_agent app "$compose" "127.0.0.1:$dead,https://127.0.0.1:$port" || fail "the KMS-backed agent did not start: $(cat "$tmp/app/agent.log")"
grep -q "kms_failed.*127.0.0.1:$dead.*next=yes" "$tmp/app/agent.log" || fail "failover: the dead KMS was not logged as skipped"
grep -q "kms_keys.*url=https://127.0.0.1:$port" "$tmp/app/agent.log" || fail "failover: the keys did not come from the second KMS"
inst="$(kms_runtime_hex app instance-id)"
"$bin/cvm" kms derive --root-dir "$tmp/kms1/roots" --app-id "$app_id" --instance-id "$inst" --json >"$tmp/derive.json"
want_disk="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disk_crypt_key"])' "$tmp/derive.json")"
want_sig="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["k256_signature"])' "$tmp/derive.json")"
[ "$(cat "$tmp/app/disk.key")" = "$want_disk" ] || fail "disk key file: not the derived disk key"
[ "$(stat -c %a "$tmp/app/disk.key")" = 600 ] || fail "disk key file: mode $(stat -c %a "$tmp/app/disk.key"), want 600"
got_sig="$(curl -s --unix-socket "$tmp/app/dstack.sock" -X POST -d '{"path":"x"}' http://d/GetKey |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["signature_chain"][1])')"
[ "$got_sig" = "$want_sig" ] || fail "GetKey's signature chain does not end in the KMS's k256 signature ($got_sig != $want_sig)"

# 1b. GetTlsKey through KMS.SignCert: the chain is leaf, App CA, root CA;
# it verifies up to this KMS's root CA, the App CA's key is the one the
# roots derive for this app, and the leaf is for the key returned.
check
curl -s --unix-socket "$tmp/app/dstack.sock" -X POST \
	-d '{"subject":"app.example","alt_names":["app.example"],"usage_server_auth":true,"usage_ra_tls":true}' \
	http://d/GetTlsKey >"$tmp/tls.json"
python3 - "$tmp/tls.json" "$tmp" <<'PY' || fail "GetTlsKey with KMS keys: $(head -c 300 "$tmp/tls.json")"
import json, sys
o = json.load(open(sys.argv[1]))
chain = o["certificate_chain"]
assert len(chain) == 3, len(chain)
open(sys.argv[2] + "/leaf.pem", "w").write(chain[0])
open(sys.argv[2] + "/appca.pem", "w").write(chain[1])
open(sys.argv[2] + "/tlskey.pem", "w").write(o["key"])
PY
openssl verify -CAfile "$roots/root-ca.crt" -untrusted "$tmp/appca.pem" "$tmp/leaf.pem" >/dev/null 2>&1 ||
	fail "GetTlsKey: the chain does not verify to the KMS root: $(openssl verify -CAfile "$roots/root-ca.crt" -untrusted "$tmp/appca.pem" "$tmp/leaf.pem" 2>&1 | tail -2)"
want_ca="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["app_ca_public_key"])' "$tmp/derive.json")"
got_ca="$(openssl x509 -in "$tmp/appca.pem" -pubkey -noout | openssl pkey -pubin -outform DER | od -An -v -tx1 | tr -d ' \n')"
# the SPKI's point, compressed (SEC1), as derive prints it
got_ca="$(python3 -c 'import sys; d=bytes.fromhex(sys.argv[1])[-65:]; print(("02" if d[64] % 2 == 0 else "03") + d[1:33].hex())' "$got_ca")"
[ "$got_ca" = "$want_ca" ] || fail "GetTlsKey: the App CA ($got_ca) is not the one derived for this app ($want_ca)"
[ "$(openssl x509 -in "$tmp/leaf.pem" -pubkey -noout)" = "$(openssl pkey -in "$tmp/tlskey.pem" -pubout)" ] || fail "GetTlsKey: the leaf is not for the returned key"
openssl x509 -in "$tmp/leaf.pem" -noout -subject | grep -q "app.example" || fail "GetTlsKey: the subject was not kept"
# with_app_info: the KMS adds dstack's AppInfo (1.9) from the attestation it verified
curl -s --unix-socket "$tmp/app/dstack.sock" -X POST -d '{"subject":"app.example","with_app_info":true}' \
	http://d/GetTlsKey | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificate_chain"][0])' >"$tmp/leaf-info.pem" ||
	fail "GetTlsKey with_app_info: no certificate"
"$bin/cvm" cert ratls show --json "$tmp/leaf-info.pem" >"$tmp/leaf-info.json" 2>&1 || true
python3 - "$tmp/leaf-info.json" "$app_id" "$inst" <<'PY' || fail "GetTlsKey with_app_info: $(head -c 400 "$tmp/leaf-info.json")"
import json, sys
o = json.load(open(sys.argv[1]))
ai = (o.get("extensions") or {}).get("app_info") or {}
assert ai.get("app_id") == sys.argv[2], ai
assert ai.get("instance_id") == sys.argv[3], ai
assert len(ai.get("mr_aggregated", "")) == 64 and len(ai.get("device_id", "")) == 64, ai
PY

# 1c. The host names the app id (.instance_info: a KMS deployment's
# DstackApp contract address): RTMR3's app-id is that one, and so are the keys.
check
named=00112233445566778899aabbccddeeff00112233
APP_ID_OVERRIDE=0x$named app_agent named "$compose" "127.0.0.1:$port" || fail "the agent with a named app id did not start"
[ "$(kms_runtime_hex named app-id)" = "$named" ] || fail ".instance_info: RTMR3's app-id is $(kms_runtime_hex named app-id), not $named"
"$bin/cvm" kms derive --root-dir "$tmp/kms1/roots" --app-id "$named" --instance-id "$(kms_runtime_hex named instance-id)" --json >"$tmp/derive-named.json"
[ "$(cat "$tmp/named/disk.key")" = "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disk_crypt_key"])' "$tmp/derive-named.json")" ] ||
	fail ".instance_info: the disk key is not the named app's"

# 1d. The next boot: the host hands back the instance id seed an earlier
# boot reported (dstack's .instance_info); with KMS keys (they outlive the
# boot) the instance id is SHA-256(seed || app_id)[:20] again, and so is the
# disk key: the data disk opens.
check
seed=a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4
want_inst="$(python3 -c 'import hashlib,sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1]) + bytes.fromhex(sys.argv[2])).digest()[:20].hex())' "$seed" "$app_id")"
for b in boot1 boot2; do
	INSTANCE_INFO="{\"app_id\":\"$app_id\",\"instance_id_seed\":\"$seed\"}" app_agent "$b" "$compose" "127.0.0.1:$port" ||
		fail "$b: the agent with a kept seed did not start"
	[ "$(kms_runtime_hex "$b" instance-id)" = "$want_inst" ] || fail "$b: the instance id is not the kept seed's"
done
[ -s "$tmp/boot1/disk.key" ] && [ "$(cat "$tmp/boot1/disk.key")" = "$(cat "$tmp/boot2/disk.key" 2>/dev/null)" ] ||
	fail "the kept seed does not give the same disk key at the next boot"
INSTANCE_INFO='{"instance_id_seed":"12"}' app_agent badseed "$compose" "127.0.0.1:$port" expect-fail &&
	grep -q "instance_id_seed is not 20 bytes of hex" "$tmp/badseed/agent.log" || fail "a malformed seed was not refused by name"

# 2. RTMR3's events.
check
names="$(python3 -c '
import json, sys
print(" ".join(json.loads(l)["event"] for l in open(sys.argv[1])))' "$tmp/app/runtime.log")"
want_names="system-preparing app-id compose-hash instance-id boot-mr-done cvmkit.agent-key key-provider system-ready"
[ "$names" = "$want_names" ] || fail "runtime events: '$names', want '$want_names'"
kp="$(kms_runtime_hex app key-provider | xxd -r -p)"
[ "$kp" = "{\"name\":\"kms\",\"id\":\"$spki\"}" ] || fail "key-provider event: $kp"
[ "$(kms_runtime_hex app app-id)" = "$app_id" ] || fail "app-id event is not the compose hash's"

# 3. The environment.
check
[ -f "$tmp/app/app.env" ] || fail "no decrypted environment"
grep -q "API_KEY" "$tmp/app/app.env" && grep -q "s3cret-value" "$tmp/app/app.env" || fail "the environment lacks API_KEY: $(cat "$tmp/app/app.env" 2>/dev/null)"
grep -q "NOT_ALLOWED" "$tmp/app/app.env" && fail "allowed_envs: NOT_ALLOWED was kept" || true
[ "$(stat -c %a "$tmp/app/app.env")" = 600 ] || fail "env file: mode is not 600"
grep -q "s3cret-value\|$want_disk" "$tmp/app/agent.log" "$tmp/kms1/kmsd.log" && fail "a secret reached a log" || true

# 4. A restart within the boot: the same keys, nothing recorded again.
check
lines="$(wc -l <"$tmp/app/runtime.log")"
stop_agents
rm -f "$tmp/app/disk.key"
app_agent app "$compose" "https://127.0.0.1:$port" || fail "restart: the agent did not start: $(tail -3 "$tmp/app/agent.log")"
[ "$(wc -l <"$tmp/app/runtime.log")" = "$lines" ] || fail "restart: the runtime log grew"
[ "$(cat "$tmp/app/disk.key" 2>/dev/null)" = "$want_disk" ] || fail "restart: another disk key"
grep -q "kms_keys.*recorded=earlier" "$tmp/app/agent.log" || fail "restart: the recorded key provider was not checked"
stop_agents

# 4b. The [boot] hooks with KMS keys: the storage hook gets the KMS's disk
# key before system-ready, RTMR3 records key-provider (the KMS), storage-fs,
# system-ready; the app hook gets the decrypted environment.
check
mkdir -p "$tmp/hooks"
cat >"$tmp/hooks/storage.sh" <<'EOF'
#!/bin/sh
cat "$1" >"$(dirname "$0")/key.seen"
echo ext4
EOF
cat >"$tmp/hooks/app.sh" <<'EOF'
#!/bin/sh
cat "$CVM_ENV_FILE" >"$(dirname "$0")/env.seen"
EOF
chmod 0755 "$tmp/hooks/storage.sh" "$tmp/hooks/app.sh"
mkdir -p "$tmp/hooked"
cp "$tmp/app/encrypted-env" "$tmp/hooked/encrypted-env"
BOOT_HOOKS="$tmp/hooks" app_agent hooked "$compose" "https://127.0.0.1:$port" ||
	fail "hooks: the agent did not start: $(tail -3 "$tmp/hooked/agent.log")"
[ -s "$tmp/hooks/key.seen" ] && [ "$(cat "$tmp/hooks/key.seen")" = "$(cat "$tmp/hooked/disk.key")" ] ||
	fail "hooks: the storage hook did not get the KMS's disk key"
order="$(python3 -c '
import json, sys
print(" ".join(e["event"] for e in map(json.loads, open(sys.argv[1])) if e["event"] in ("key-provider", "storage-fs", "system-ready")))
' "$tmp/hooked/runtime.log")"
[ "$order" = "key-provider storage-fs system-ready" ] || fail "hooks: RTMR3's order with a KMS: '$order'"
[ "$(kms_runtime_hex hooked storage-fs)" = "65787434" ] || fail "hooks: storage-fs is not ext4"
for _ in $(seq 50); do [ -s "$tmp/hooks/env.seen" ] && break; sleep 0.1; done
[ "$(cat "$tmp/hooks/env.seen" 2>/dev/null)" = "API_KEY=s3cret-value" ] ||
	fail "hooks: the app hook did not get the decrypted environment: $(cat "$tmp/hooks/env.seen" 2>/dev/null)"
stop_agents

# 5. Fail closed.
check
other="$(openssl ecparam -name prime256v1 -genkey -noout | openssl pkey -pubout -outform DER | od -An -v -tx1 | tr -d ' \n')"
pinned='{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}","kms_enabled":true,"key_provider_id":"'"$other"'"}'
asked="$(grep -c "GetAppKey" "$tmp/kms1/kmsd.log" || true)"
app_agent pin "$pinned" "127.0.0.1:$port" fail || fail "a KMS with another root CA than the pinned one was accepted"
[ "$(grep -c "GetAppKey" "$tmp/kms1/kmsd.log" || true)" = "$asked" ] || fail "pin: the KMS of another root CA was asked for the keys"
grep -q "not the one app-compose pins (key_provider_id): refused, nothing asked" "$tmp/pin/agent.log" || fail "pin: no clear reason: $(tail -2 "$tmp/pin/agent.log")"
[ -e "$tmp/pin/disk.key" ] && fail "pin: a disk key was written" || true
check
app_agent refused "$compose" "127.0.0.1:$(cat "$tmp/nopolicy/port")" fail || fail "a KMS without a policy gave keys"
grep -q "refused GetAppKey (HTTP 403)" "$tmp/refused/agent.log" || fail "refused: no clear reason: $(tail -2 "$tmp/refused/agent.log")"
check
app_agent nokms "$compose" "127.0.0.1:$dead" fail || fail "the agent started with no KMS reachable"
grep -q "no KMS of the 1 listed gave the app keys" "$tmp/nokms/agent.log" || fail "no KMS: no clear reason: $(tail -2 "$tmp/nokms/agent.log")"

kms_report kms_agent
