#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || fail": fail runs when either fails, as meant
# cvm-kmsd with a real authorization policy and its audit trail (simulated
# TEE, a KMS CVM and an app CVM on one platform):
#  - [auth] type = policy (dstack auth-simple's configuration): the KMS's
#    own node must be allowed (self-authorization: a KMS whose mr_aggregated
#    is not listed refuses to start, and says why); the listed app gets its
#    keys and the policy's gatewayAppId; with its compose hash withdrawn
#    (the file rewritten, no restart) it gets 403 with auth-simple's reason;
#    a malformed policy file is 503 for everyone (fail closed), and fixing
#    it restores service;
#  - [auth] type = webhook (dstack's auth API, a python3 server with
#    auth-simple's rules: kms_auth_webhook_server.py) allows the same app;
#    with the webhook down the KMS answers 503 and releases nothing;
#  - the audit log: every decision is a record; `cvm kms audit verify
#    --expect-head` with the KMS's last event=audit_head line says intact;
#    `audit show` lists the allowed and the denied GetAppKey of the app;
#    one record edited with python3's sqlite3 is found (exit 3).
# Needs: python3, openssl, curl.
set -euo pipefail

bin="$(cd "${CVM_BIN:-build/bin}" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$here/../common/kms.sh"
trap 'kms_cleanup; rm -rf "$tmp"' EXIT

kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_cvm app '{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}"}' kmsvm
app_id="$(kms_runtime_hex app app-id)"
compose="$(kms_runtime_hex app compose-hash)"
kms_mr="$(curl -sf --unix-socket "$tmp/kmsvm/dstack.sock" http://localhost/Info |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["mr_aggregated"])')"

# policy FILE KMS_MR COMPOSE: auth-simple's configuration.
policy() {
	python3 - "$1" "$2" "$app_id" "$3" <<'EOF'
import json, sys
out, kms_mr, app, compose = sys.argv[1:]
cfg = {
    "gatewayAppId": "gw-0001",
    "osImages": ["0x" + "00" * 32],
    "kms": {"mrAggregated": [kms_mr], "devices": [], "allowAnyDevice": True},
    "apps": {app: {"composeHashes": [compose], "devices": [], "allowAnyDevice": True}},
}
json.dump(cfg, open(out + ".tmp", "w"))
json.dump({"policy": cfg}, open(out + ".cases", "w"))
import os
os.rename(out + ".tmp", out)
EOF
}

# shellcheck disable=SC2207
kv=($(kms_roots_of kmsvm) --ca "$tmp/kms1/roots/epoch-0/root-ca.crt")
# shellcheck disable=SC2120,SC2119 # extra arguments are optional
app_key() {
	"$bin/cvm" kms app-key "127.0.0.1:$(cat "$tmp/kms1/port")" "${kv[@]}" --cert "$tmp/app/chain.pem" \
		--key "$tmp/app/identity.pem" "$@"
}

# 1. Self-authorization: a policy that does not list the KMS node.
check
policy "$tmp/policy.json" "0x$(printf 'ab%.0s' $(seq 32))" "$compose"
kms_conf kms1 kmsvm app $'[auth]\ntype = policy\npolicy_file = '"$tmp/policy.json"
"$bin/cvm-kmsd" bootstrap -c "$tmp/kms1/kmsd.conf" >/dev/null
rc=0
timeout 60 "$bin/cvm-kmsd" -c "$tmp/kms1/kmsd.conf" >"$tmp/self.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "self-authorization: the policy does not allow this KMS node" "$tmp/self.out" ||
	fail "a KMS its policy refuses: exit $rc: $(tail -n 3 "$tmp/self.out")"

# 2. The policy allows the node and the app.
check
policy "$tmp/policy.json" "$kms_mr" "$compose"
kms_start kms1
rc=0
app_key >"$tmp/k1.json" 2>"$tmp/k1.err" || rc=$?
if [ "$rc" -eq 0 ]; then
	[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["gateway_app_id"])' "$tmp/k1.json")" = gw-0001 ] ||
		fail "the answer's gateway_app_id is not the policy's"
else
	fail "the allowed app: exit $rc: $(cat "$tmp/k1.err")"
fi

# 3. The compose hash withdrawn: refused with auth-simple's reason, no restart.
check
policy "$tmp/policy.json" "$kms_mr" "0x$(printf 'cd%.0s' $(seq 32))"
rc=0
app_key >"$tmp/k2.json" 2>"$tmp/k2.err" || rc=$?
[ "$rc" -eq 3 ] && [ ! -s "$tmp/k2.json" ] && grep -q "HTTP 403" "$tmp/k2.err" && grep -qi "compose hash" "$tmp/k2.err" ||
	fail "a withdrawn compose hash: exit $rc: $(cat "$tmp/k2.err")"

# 4. A malformed policy file: 503, nothing released; fixed: served again.
check
echo '{"apps": ' >"$tmp/policy.json"
rc=0
app_key >"$tmp/k3.json" 2>"$tmp/k3.err" || rc=$?
[ "$rc" -ne 0 ] && [ ! -s "$tmp/k3.json" ] && grep -q "HTTP 503" "$tmp/k3.err" ||
	fail "a malformed policy: exit $rc: $(cat "$tmp/k3.err")"
policy "$tmp/policy.json" "$kms_mr" "$compose"
app_key >"$tmp/k4.json" 2>"$tmp/k4.err" || fail "the policy fixed: $(cat "$tmp/k4.err")"

# 5. The audit log.
check
head_line="$(grep -o 'event=audit_head seq=[0-9]* head=[0-9a-f]*' "$tmp/kms1/kmsd.log" | tail -n 1)"
seq="$(printf '%s' "$head_line" | sed 's/.*seq=\([0-9]*\).*/\1/')"
head="$(printf '%s' "$head_line" | sed 's/.*head=//')"
db="$tmp/kms1/roots/audit.db"
rc=0
"$bin/cvm" kms audit verify "$db" --expect-head "$seq:$head" >"$tmp/av.out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "audit verify: exit $rc: $(cat "$tmp/av.out")"
check
"$bin/cvm" --json kms audit show "$db" --app-id "$app_id" >"$tmp/show.json" 2>"$tmp/show.err" ||
	fail "audit show: $(cat "$tmp/show.err")"
python3 - "$tmp/show.json" <<'EOF' || fail "audit show: $(head -c 600 "$tmp/show.json")"
import json, sys
text = open(sys.argv[1]).read()
try:
    recs = json.loads(text)
    recs = recs.get("records", recs) if isinstance(recs, dict) else recs
except ValueError:
    recs = [json.loads(l) for l in text.splitlines() if l.strip()]
d = [(r["method"], r["decision"]) for r in recs]
assert ("GetAppKey", "allowed") in d and ("GetAppKey", "denied") in d, d
assert any(r["decision"] == "error" for r in recs), d
assert all(r["keys"] in ("", "disk,env,k256") for r in recs)
EOF
check
kms_stop kms1
python3 - "$db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
t = [r[0] for r in c.execute("select name from sqlite_master where type='table'")][0]
cols = [r[1] for r in c.execute(f"pragma table_info({t})")]
col = "decision" if "decision" in cols else cols[-2]
c.execute(f"update {t} set {col} = 'allowed' where rowid = (select min(rowid) from {t} where {col} = 'denied')")
c.commit()
EOF
rc=0
"$bin/cvm" kms audit verify "$db" >"$tmp/av2.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "an edited audit record: exit $rc, want 3: $(cat "$tmp/av2.out")"

# 6. The webhook: the same rules over dstack's auth API; then the webhook down.
check
rm -f "$tmp/kms1/roots/audit.db"*
python3 "$here/kms_auth_webhook_server.py" "$tmp/policy.json.cases" "$tmp/wh.port" 2>"$tmp/wh.log" &
wh=$!
KMS_PIDS+=("$wh")
kms_wait "$tmp/wh.port" webhook "$wh" "$tmp/wh.log"
kms_conf kms1 kmsvm app $'[auth]\ntype = webhook\ntimeout_ms = 2000\nwebhook_url = http://127.0.0.1:'"$(cat "$tmp/wh.port")"'/ok'
kms_start kms1
app_key >"$tmp/k5.json" 2>"$tmp/k5.err" || fail "the webhook's allowed app: $(cat "$tmp/k5.err")"
check
kill "$wh"
wait "$wh" 2>/dev/null || true
rc=0
app_key >"$tmp/k6.json" 2>"$tmp/k6.err" || rc=$?
[ "$rc" -ne 0 ] && [ ! -s "$tmp/k6.json" ] && grep -q "HTTP 503" "$tmp/k6.err" ||
	fail "the webhook down: exit $rc: $(cat "$tmp/k6.err")"

if [ "$failures" -ne 0 ]; then
	echo "kms_policy: $failures of $checks checks failed" >&2
	exit 1
fi
echo "kms_policy: $checks checks passed"
