#!/usr/bin/env bash
# KMS authorization (issue 13 point 5, docs/kms-auth.md): the policy-file and
# webhook authorizers of lib/kmsauth on the same cases, through
# build/tests/kmsauth_decide.
#  - every case of tests/kmsauth/cases.json (auth-simple's order of checks,
#    each refusal's reason) gives the wanted answer from the policy file and
#    from a webhook (kms_auth_webhook_server.py, auth-simple's semantics
#    written independently in Python over the same configuration), and the
#    two print the same lines: they agree;
#  - the webhook's info (GET {url}) reads the configuration's fields;
#  - a simulated TEE is refused by both unless the authorizer opts in;
#  - every misbehaviour of the webhook is an error, never an allow: an answer
#    after the deadline, HTTP 500, a body that is not JSON, isAllowed as the
#    string "true", as the number 1 or missing, a 10 MiB body, a redirect,
#    and a webhook that is down; errors name the host, never the URL's path
#    or credentials; a proxy set in the environment is not used;
#  - the policy file on disk decides; a malformed one is an error with its
#    reason (unit.kms_auth covers the re-read under a running authorizer).
set -euo pipefail

BIN="${CVM_BIN:-build/bin}"
D="$BIN/../tests/kmsauth_decide"
HERE="$(cd "$(dirname "$0")" && pwd)"
CASES="$HERE/../kmsauth/cases.json"

[ -x "$D" ] || {
	echo "FAIL: $D is missing (build the tests; set CVM_BIN)" >&2
	exit 1
}
command -v python3 >/dev/null || {
	echo "FAIL: python3 is required" >&2
	exit 1
}
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-kms-auth-webhook.XXXXXX")"
srv_pid=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	if [ -n "$srv_pid" ]; then
		kill "$srv_pid" 2>/dev/null || true
		wait "$srv_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

fail=0
bad() {
	echo "FAIL: $*" >&2
	fail=1
}

python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["policy"], open(sys.argv[2], "w"), indent=1)' \
	"$CASES" "$tmp/policy.json"

python3 "$HERE/kms_auth_webhook_server.py" "$CASES" "$tmp/port" 5 2>"$tmp/server.log" &
srv_pid=$!
for _ in $(seq 1 100); do
	[ -s "$tmp/port" ] && break
	kill -0 "$srv_pid" 2>/dev/null || break
	sleep 0.05
done
[ -s "$tmp/port" ] || {
	echo "FAIL: the test webhook did not start" >&2
	cat "$tmp/server.log" >&2
	exit 1
}
PORT="$(cat "$tmp/port")"
W="http://127.0.0.1:$PORT"
echo "webhook: listening at $W"

# The same cases through both authorizers.
if ! "$D" --policy "$tmp/policy.json" cases "$CASES" >"$tmp/policy.out"; then
	bad "the policy file does not give every wanted answer"
fi
if ! "$D" --webhook "$W/ok" --timeout 3000 cases "$CASES" >"$tmp/webhook.out"; then
	bad "the webhook does not give every wanted answer"
fi
cat "$tmp/webhook.out"
if ! cmp -s "$tmp/policy.out" "$tmp/webhook.out"; then
	bad "the policy file and the webhook disagree:"
	diff "$tmp/policy.out" "$tmp/webhook.out" >&2 || true
fi
n="$(grep -c '^ok: ' "$tmp/webhook.out" || true)"
want_n="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cases"]))' "$CASES")"
[ "$n" = "$want_n" ] || bad "$n of $want_n cases agree"
echo "ok: the policy file and the webhook agree on all $n cases"

# One BootInfo, written from the cases' base with some fields set.
bootinfo() { # FILE [KEY VALUE]...
	python3 - "$CASES" "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))["base"]
a = sys.argv[3:]
for k, v in zip(a[::2], a[1::2]):
    d[k] = v
json.dump(d, open(sys.argv[2], "w"))
EOF
}
bootinfo "$tmp/good.json"
bootinfo "$tmp/sim.json" teeVariant cvmkit-sim-tdx

# expect WANT_RC WANT_GLOB WHAT ARGS...
expect() {
	local want_rc="$1" want="$2" what="$3" rc=0 out
	shift 3
	out="$("$D" "$@" 2>&1)" || rc=$?
	# shellcheck disable=SC2053 # $want is a glob pattern
	if [ "$rc" != "$want_rc" ] || [[ "$out" != $want ]]; then
		bad "$what: got rc $rc, '$out'; want rc $want_rc, '$want'"
	else
		echo "ok: $what: $out"
	fi
}

expect 0 "status=ok kmsContractAddr=0x000000000000000000000000000000000000004b gatewayAppId=gateway-app-0001 *chainId=31337" \
	"the webhook's info" --webhook "$W/ok" info
expect 0 "allowed: gateway=gateway-app-0001" "a simulated TEE through a webhook that opts in" \
	--webhook "$W/ok" --allow-sim one app "$tmp/sim.json"
expect 0 "allowed: gateway=gateway-app-0001" "a simulated TEE through a policy file that opts in" \
	--policy "$tmp/policy.json" --allow-sim one app "$tmp/sim.json"

# A proxy from the environment does not get the question: the configured
# webhook is asked directly (a proxy at a port where nothing listens would
# make it an error).
out="$(http_proxy=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 \
	"$D" --webhook "$W/ok" one app "$tmp/good.json" 2>&1)" || true
if [ "$out" != "allowed: gateway=gateway-app-0001" ]; then
	bad "with http_proxy set in the environment: '$out'"
else
	echo "ok: the environment's proxy is not used: $out"
fi

# Misbehaviours: each would allow if read leniently; each must be an error.
# The URL carries credentials and a secret path: errors must not show them.
SECRET_W="http://user:pa55word@127.0.0.1:$PORT"
t0=$(date +%s%N)
expect 1 "error: the webhook http://127.0.0.1:$PORT did not answer within 1000 ms" "an answer after the deadline" \
	--webhook "$W/delay" --timeout 1000 one app "$tmp/good.json"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 3000 ] || bad "the deadline of 1000 ms took $ms ms"
echo "ok: the 1000 ms deadline ended the request after $ms ms"
expect 1 "error: the webhook http://127.0.0.1:$PORT answered HTTP 500" "HTTP 500" \
	--webhook "$SECRET_W/status500" one app "$tmp/good.json"
expect 1 "error: the webhook's answer is not a JSON object*" "a body that is not JSON" \
	--webhook "$W/nonjson" one app "$tmp/good.json"
expect 1 "error: the webhook's answer has no JSON boolean \"isAllowed\"" "isAllowed as the string \"true\"" \
	--webhook "$W/string" one app "$tmp/good.json"
expect 1 "error: the webhook's answer has no JSON boolean \"isAllowed\"" "isAllowed as the number 1" \
	--webhook "$W/number" one kms "$tmp/good.json"
expect 1 "error: the webhook's answer has no JSON boolean \"isAllowed\"" "no isAllowed" \
	--webhook "$W/missing" one app "$tmp/good.json"
expect 1 "error: the webhook http://127.0.0.1:$PORT answered more than 65536 bytes" "a 10 MiB body" \
	--webhook "$SECRET_W/huge" one app "$tmp/good.json"
expect 1 "error: the webhook http://127.0.0.1:$PORT answered HTTP 307 (a redirect: not followed)" "a redirect" \
	--webhook "$SECRET_W/redirect" one app "$tmp/good.json"
expect 1 "error: the webhook http://127.0.0.1:$PORT answered HTTP 404" "a wrong base path" \
	--webhook "$W/nosuchmode" one app "$tmp/good.json"
if grep -q -e pa55word -e /huge -e /redirect -e /status500 <<<"$("$D" --webhook "$SECRET_W/huge" one app "$tmp/good.json" 2>&1
	"$D" --webhook "$SECRET_W/redirect" one app "$tmp/good.json" 2>&1
	"$D" --webhook "$SECRET_W/status500" one app "$tmp/good.json" 2>&1)"; then
	bad "an error message shows the webhook URL's credentials or path"
fi

# The policy file on disk is what decides (unit.kms_auth re-reads a changed
# file under one running authorizer; here each run reads it afresh).
python3 - "$tmp/policy.json" "$tmp/policy2.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["osImages"] = ["0x" + "06".rjust(64, "0")]
json.dump(p, open(sys.argv[2], "w"))
EOF
cp "$tmp/policy.json" "$tmp/live.json"
expect 0 "allowed: *" "the live policy before the change" --policy "$tmp/live.json" one app "$tmp/good.json"
cp "$tmp/policy2.json" "$tmp/live.json"
expect 3 "denied: OS image is not allowed" "the live policy after its OS image changed" \
	--policy "$tmp/live.json" one app "$tmp/good.json"
echo '{"osImages": [' >"$tmp/live.json"
expect 1 "error: $tmp/live.json: the policy file is malformed (the policy is not JSON*" \
	"a malformed policy file at start" --policy "$tmp/live.json" one app "$tmp/good.json"

# The webhook goes away: an error naming the host.
kill "$srv_pid"
wait "$srv_pid" 2>/dev/null || true
srv_pid=""
expect 1 "error: the webhook http://127.0.0.1:$PORT cannot be reached*" "a webhook that is down" \
	--webhook "$SECRET_W/ok" one app "$tmp/good.json"

exit "$fail"
