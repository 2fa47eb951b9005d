#!/usr/bin/env bash
# dstack's encrypted environment both ways with the REAL @phala/dstack-sdk
# 0.5.8 (installed from npm into the build tree, as tests/compat/dstack_sdk.sh
# does), and the KMS's signature over the env public key:
#  - the SDK's encryptEnvVars -> `cvm app decrypt-env` (shell and JSON forms,
#    --allowed-envs naming skipped names without their values); a wrong key,
#    a changed byte and a key file others may read are refused;
#  - `cvm app encrypt-env --pubkey` -> an independent decryption (python3
#    cryptography: X25519 + AES-GCM) gives exactly the env file's list;
#  - GetAppEnvEncryptPubKey answers signed by cvm_envcrypt_pubkey_sign
#    (tests/integration/kms_env_sign.c, with roots from
#    tests/vectors/compat/kms) are accepted by the SDK's
#    verifyEnvEncryptPublicKey(Legacy), which returns the KMS key; a tampered
#    signature, env key or app id is not;
#  - `cvm app encrypt-env --kms URL` against a KMS over HTTPS: a good
#    signature is accepted and what it encrypts opens with the app's
#    env_crypt_key; a wrong --kms-pubkey and a stale timestamp are refused
#    (exit 3, one line), as are a stale or future timestamp, another app's
#    answer and a legacy-only answer (unless --max-age 0); --trust-kms-meta
#    warns; no key at all is a usage error.
# The KMS is start_kms below: the real cvm-kmsd on the same roots; the
# doctored answers (stale, another app's, legacy-only) come from a python3
# stand-in (kms_env_server.py, start_fake_kms) serving kms_env_sign's.
# Needs: $CVM_BIN/cvm, build/tests/kms_env_sign, node + npm (the registry, or
# the SDK already in build/compat), python3 with cryptography, openssl.
set -euo pipefail

bin="${CVM_BIN:-build/bin}"
CVM="$bin/cvm"
build="$(cd "$bin/.." && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
SIGNER="$build/tests/kms_env_sign"
# shellcheck source=tests/common/vectors.sh
. "$here/../common/vectors.sh"
K=compat/kms
vectors_require "$K/dstack-simulator/appkeys.json"

for tool in python3 openssl node npm; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "FAIL: $tool is missing (scripts/setup.sh installs it)" >&2
		exit 1
	}
done
python3 -c 'import cryptography' 2>/dev/null || {
	echo "FAIL: python3's cryptography is missing (scripts/setup.sh installs python3-cryptography)" >&2
	exit 1
}
for t in "$CVM" "$SIGNER"; do
	[ -x "$t" ] || {
		echo "FAIL: $t is missing (build it first)" >&2
		exit 1
	}
done

# The SDK, installed the way tests/compat/dstack_sdk.sh installs it (same
# folder, same packages): it fails, never skips, without npm.
sdk_version=0.5.8
scratch="$build/compat"
mkdir -p "$scratch"
installed="$(node -e 'try{console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).version)}catch{}' \
	"$scratch/node_modules/@phala/dstack-sdk/package.json" 2>/dev/null || true)"
if [ "$installed" != "$sdk_version" ] || [ ! -d "$scratch/node_modules/@noble/curves" ]; then
	[ -f "$scratch/package.json" ] || echo '{"name":"cvmkit-compat","private":true}' >"$scratch/package.json"
	(cd "$scratch" && npm install --no-audit --no-fund --loglevel=error "@phala/dstack-sdk@$sdk_version" \
		"@noble/curves@^1.8.1" "@noble/hashes@^1.6.1") || {
		echo "FAIL: npm install @phala/dstack-sdk@$sdk_version failed" >&2
		exit 1
	}
fi
sdk() { node "$here/kms_env_sdk.mjs" "$scratch/node_modules" "$@"; }

tmp="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }

# expect_rc WANT CMD...: runs CMD, its output in $tmp/out and $tmp/err.
expect_rc() {
	local want="$1" rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "'$*' exited $rc, expected $want: $(head -c 600 "$tmp/err") $(head -c 300 "$tmp/out")"
		return 1
	fi
	pass
}

# one_line FILE: the refusal is exactly one line.
one_line() {
	[ "$(wc -l <"$1")" -eq 1 ] && pass || fail "expected one line on stderr, got: $(cat "$1")"
}

APP=9e8af4fc80bde3bea655a161280910c770c8d561
OTHER_APP=5bb4ff9a3837357f19dc176407a5709c62eb6c56

# The KMS roots: the dstack simulator's KMS CA key and the k256 root 01..20
# (as integration.kms_derive).
roots="$tmp/roots"
mkdir -p "$roots"
python3 - "$VECTORS/$K/dstack-simulator/appkeys.json" "$roots" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
fd = os.open(os.path.join(sys.argv[2], "root-ca.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, d["key_provider"]["None"]["key"].encode())
os.close(fd)
fd = os.open(os.path.join(sys.argv[2], "root-k256.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, bytes(range(1, 33)))
os.close(fd)
PY

# The app's env keys, as the KMS derives them.
"$CVM" kms derive --root-dir "$roots" --app-id "$APP" --json >"$tmp/derive.json"
ENV_KEY="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["env_crypt_key"])' "$tmp/derive.json")"
ENV_PUB="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["env_crypt_public_key"])' "$tmp/derive.json")"
(umask 077 && echo "$ENV_KEY" >"$tmp/env.key")
KMS_PUB="$("$SIGNER" --meta "$roots" | python3 -c 'import json,sys; print(json.load(sys.stdin)["k256_pubkey"])')"
[ ${#ENV_PUB} -eq 64 ] && [ ${#KMS_PUB} -eq 66 ] && pass || fail "derived keys: '$ENV_PUB' '$KMS_PUB'"

# ---- 1. SDK encryptEnvVars -> cvm app decrypt-env --------------------------

envs='[{"key":"PLAIN","value":"v1"},{"key":"SPACED","value":"two words"},{"key":"SPECIAL","value":"a\"b$c`d\ne\\f"},{"key":"SECRET_DROP","value":"DO-NOT-PRINT"},{"key":"UNI","value":"é€"}]'
sdk encrypt "$ENV_PUB" "$envs" >"$tmp/sdk.hex"
expect_rc 0 "$CVM" app decrypt-env --key-file "$tmp/env.key" "$tmp/sdk.hex" &&
	cp "$tmp/out" "$tmp/shell.txt"
# dstack's .decrypted-env: sorted by name, quoted as dstack-util does
printf '%s\n' 'PLAIN=v1' 'SECRET_DROP=DO-NOT-PRINT' 'SPACED="two words"' 'SPECIAL="a\"b\$c\`d\ne\f"' 'UNI=é€' \
	>"$tmp/shell.want"
cmp -s "$tmp/shell.txt" "$tmp/shell.want" && pass ||
	fail "decrypt-env --shell: got $(cat -A "$tmp/shell.txt"), want $(cat -A "$tmp/shell.want")"
expect_rc 0 "$CVM" app decrypt-env --json --key-file "$tmp/env.key" "$tmp/sdk.hex" &&
	python3 - "$tmp/out" "$envs" <<'PY' && pass || fail "decrypt-env --json differs from the SDK's list"
import json, sys
got = json.load(open(sys.argv[1]))
want = {e["key"]: e["value"] for e in json.loads(sys.argv[2])}
sys.exit(0 if got == want and list(got) == sorted(got) else 1)
PY
# the raw blob (what the VMM stores) opens too
python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(open(sys.argv[1]).read().strip()))' "$tmp/sdk.hex" "$tmp/sdk.bin"
expect_rc 0 "$CVM" app decrypt-env --key-file "$tmp/env.key" "$tmp/sdk.bin" &&
	{ cmp -s "$tmp/out" "$tmp/shell.want" && pass || fail "the raw blob decrypted differently"; }
# --allowed-envs: the others are named on stderr, never their values
expect_rc 0 "$CVM" app decrypt-env --allowed-envs PLAIN,UNI --key-file "$tmp/env.key" "$tmp/sdk.hex" &&
	{ [ "$(cat "$tmp/out")" = "$(printf 'PLAIN=v1\nUNI=é€')" ] && pass || fail "allowed-envs output: $(cat "$tmp/out")"; }
grep -q "skipped SECRET_DROP: not in --allowed-envs" "$tmp/err" && pass || fail "no skipped name: $(cat "$tmp/err")"
grep -q "DO-NOT-PRINT" "$tmp/err" "$tmp/out" && fail "a skipped value was printed" || pass
# another app's key, a changed byte, a readable key file
"$CVM" kms derive --root-dir "$roots" --app-id "$OTHER_APP" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["env_crypt_key"])' >"$tmp/other.key"
chmod 600 "$tmp/other.key"
expect_rc 3 "$CVM" app decrypt-env --key-file "$tmp/other.key" "$tmp/sdk.hex" && one_line "$tmp/err"
grep -q "tag does not verify" "$tmp/err" && pass || fail "wrong key message: $(cat "$tmp/err")"
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[50]^=1; open(sys.argv[2],"wb").write(b)' \
	"$tmp/sdk.bin" "$tmp/flipped.bin"
expect_rc 3 "$CVM" app decrypt-env --key-file "$tmp/env.key" "$tmp/flipped.bin"
cp "$tmp/env.key" "$tmp/loose.key"
chmod 644 "$tmp/loose.key"
expect_rc 1 "$CVM" app decrypt-env --key-file "$tmp/loose.key" "$tmp/sdk.hex"
grep -q "loose.key" "$tmp/err" && pass || fail "a readable key file: $(cat "$tmp/err")"

# ---- 2. cvm app encrypt-env --pubkey -> independent decryption -------------

cat >"$tmp/app.env" <<'EOF'
# deployment secrets
DB_URL = postgres://u:p@db/x?a=1&b=2
TOKEN="  spaced token  "
QUOTE='he said "hi"'

EMPTY=
EOF
expect_rc 0 "$CVM" app encrypt-env --pubkey "$ENV_PUB" --out "$tmp/own.bin" "$tmp/app.env"
python3 - "$tmp/own.bin" "$ENV_KEY" <<'PY' && pass || fail "python3 cryptography could not open cvm's blob"
import json, sys
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
blob = open(sys.argv[1], "rb").read()
sk = X25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[2]))
shared = sk.exchange(X25519PublicKey.from_public_bytes(blob[:32]))
plain = AESGCM(shared).decrypt(blob[32:44], blob[44:], None)
want = {"env": [{"key": "DB_URL", "value": "postgres://u:p@db/x?a=1&b=2"},
                {"key": "TOKEN", "value": "  spaced token  "},
                {"key": "QUOTE", "value": 'he said "hi"'},
                {"key": "EMPTY", "value": ""}]}
sys.exit(0 if json.loads(plain) == want else 1)
PY
expect_rc 0 "$CVM" app encrypt-env --pubkey "$ENV_PUB" "$tmp/app.env" &&
	{ grep -qE '^[0-9a-f]+$' "$tmp/out" && pass || fail "--hex output is not hex"; }
printf 'A=1\nA=2\n' >"$tmp/dup.env"
expect_rc 1 "$CVM" app encrypt-env --pubkey "$ENV_PUB" "$tmp/dup.env" && one_line "$tmp/err"
grep -q "line 2: A is set twice" "$tmp/err" && pass || fail "duplicate name: $(cat "$tmp/err")"

# ---- 3. our signatures, the SDK's verifier ---------------------------------

now="$(date +%s)"
"$SIGNER" "$roots" "$APP" "$now" >"$tmp/answer.json"
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/answer.json" "$1"; }
A_PUB="$(field public_key)"
A_SIG="$(field signature)"
A_V1="$(field signature_v1)"
[ "$A_PUB" = "$ENV_PUB" ] && pass || fail "the signed public_key is not the derived env key"
[ "$(sdk verify "$A_PUB" "$A_V1" "$APP" "$now")" = "0x$KMS_PUB" ] && pass ||
	fail "the SDK did not recover the KMS key from signature_v1"
[ "$(sdk verify "$A_PUB" "$A_V1" "0x$APP" "$now")" = "0x$KMS_PUB" ] && pass || fail "0x app id"
[ "$(sdk verify-legacy "$A_PUB" "$A_SIG" "$APP")" = "0x$KMS_PUB" ] && pass ||
	fail "the SDK did not recover the KMS key from the legacy signature"
flip() { python3 -c 'import sys; b=bytearray.fromhex(sys.argv[1]); b[int(sys.argv[2])]^=1; print(b.hex())' "$@"; }
for bad in "verify $A_PUB $(flip "$A_V1" 5) $APP $now" "verify $(flip "$A_PUB" 0) $A_V1 $APP $now" \
	"verify $A_PUB $A_V1 $OTHER_APP $now" "verify $A_PUB $A_V1 $APP $((now - 1))" \
	"verify-legacy $A_PUB $(flip "$A_SIG" 40) $APP"; do
	# shellcheck disable=SC2086
	got="$(sdk $bad)"
	[ "$got" != "0x$KMS_PUB" ] && pass || fail "the SDK accepted a tampered answer: $bad"
done
"$SIGNER" "$roots" "$APP" "$((now - 1000))" >"$tmp/stale.json"
[ "$(sdk verify "$A_PUB" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["signature_v1"])' \
	"$tmp/stale.json")" "$APP" "$((now - 1000))")" = "null" ] && pass || fail "the SDK accepted a stale signature"

# ---- 4. cvm app encrypt-env --kms URL --------------------------------------

# start_fake_kms DIR: the python3 stand-in (kms_env_server.py) on
# 127.0.0.1 over HTTPS, answering GetMeta and, from DIR/answer.json (read per
# request), GetAppEnvEncryptPubKey; sets KMS_URL (no $(...): the server
# would hold the substitution's pipe open). kms_answer DIR TS APP
# makes that answer with cvm_envcrypt_pubkey_sign (kms_env_sign) for the
# roots in $roots.
kms_answer() { "$SIGNER" "$roots" "$3" "$2" >"$1/answer.json"; }
start_fake_kms() {
	local dir="$1"
	mkdir -p "$dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=localhost" \
		-keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null
	"$SIGNER" --meta "$roots" >"$dir/meta.json"
	kms_answer "$dir" "$(date +%s)" "$APP"
	python3 "$here/kms_env_server.py" "$dir" "$dir/tls.crt" "$dir/tls.key" 2>"$dir/server.log" &
	pids+=($!)
	for _ in $(seq 100); do
		[ -s "$dir/port" ] && break
		sleep 0.1
	done
	[ -s "$dir/port" ] || {
		echo "FAIL: the stand-in KMS did not start: $(cat "$dir/server.log")" >&2
		exit 1
	}
	KMS_URL="https://127.0.0.1:$(cat "$dir/port")"
}

# start_kms DIR: the real cvm-kmsd holding the roots in $roots (dstack's
# layout; its root CA certificate made here with openssl), no policy and no
# agent beside it (GetAppEnvEncryptPubKey and GetMeta are public: no
# attestation is involved), on a port it picks; sets KMS_URL. The checks that
# need a doctored answer (stale, another app's, legacy-only) use
# start_fake_kms.
start_kms() {
	local dir="$1"
	mkdir -p "$dir"
	[ -e "$roots/root-ca.crt" ] || openssl req -x509 -key "$roots/root-ca.key" -subj "/O=Dstack/CN=Dstack KMS CA" \
		-days 30 -addext "basicConstraints=critical,CA:TRUE,pathlen:1" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$roots/root-ca.crt" 2>/dev/null
	cat >"$dir/kmsd.conf" <<EOF
[kms]
root_dir = $roots
[rpc]
listen = 127.0.0.1:0
[attestation]
allow_no_self_attestation = true
[audit]
db = $dir/audit.db
EOF
	"$bin/cvm-kmsd" -c "$dir/kmsd.conf" --port-file "$dir/port" >"$dir/kmsd.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		[ -s "$dir/port" ] && break
		sleep 0.1
	done
	[ -s "$dir/port" ] || {
		echo "FAIL: cvm-kmsd did not start: $(cat "$dir/kmsd.log")" >&2
		exit 1
	}
	KMS_URL="https://127.0.0.1:$(cat "$dir/port")"
}

# -- an honest KMS --
start_kms "$tmp/kms"
printf 'GREETING=hello from the deployer\nOTHER=x\n' >"$tmp/deploy.env"
expect_rc 0 "$CVM" app encrypt-env --kms "$KMS_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" \
	--out "$tmp/deploy.bin" "$tmp/deploy.env"
grep -q "env public key checked: signature_v1" "$tmp/err" && pass || fail "no checked note: $(cat "$tmp/err")"
expect_rc 0 "$CVM" app decrypt-env --key-file "$tmp/env.key" "$tmp/deploy.bin" &&
	{ [ "$(cat "$tmp/out")" = "$(printf 'GREETING="hello from the deployer"\nOTHER=x')" ] && pass ||
		fail "the KMS path's blob decrypted to $(cat "$tmp/out")"; }
expect_rc 0 "$CVM" app encrypt-env --json --kms "$KMS_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" "$tmp/deploy.env" &&
	python3 - "$tmp/out" "$ENV_PUB" <<'PY' && pass || fail "--json: $(cat "$tmp/out")"
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if d["kms_signature"] == "signature_v1" and d["env_public_key"] == sys.argv[2] and d["names"] == 2
         and len(d["encrypted_env"]) == 2 * (60 + len('{"env":[{"key":"GREETING","value":"hello from the deployer"},{"key":"OTHER","value":"x"}]}')) else 1)
PY
# another KMS key: refused, one line, exit 3, nothing written
WRONG_PUB="0379be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
expect_rc 3 "$CVM" app encrypt-env --kms "$KMS_URL" --app-id "$APP" --kms-pubkey "$WRONG_PUB" \
	--out "$tmp/wrong.bin" "$tmp/deploy.env" && one_line "$tmp/err"
grep -q "refused: signature_v1 was not made by the KMS key" "$tmp/err" && pass || fail "wrong key: $(cat "$tmp/err")"
[ ! -e "$tmp/wrong.bin" ] && pass || fail "a refused key still produced a blob"
# --trust-kms-meta: works, and says loudly what it trusts
expect_rc 0 "$CVM" app encrypt-env --kms "$KMS_URL" --app-id "$APP" --trust-kms-meta "$tmp/deploy.env"
grep -q "WARNING: --trust-kms-meta.*--kms-pubkey $KMS_PUB" "$tmp/err" && pass || fail "no warning: $(cat "$tmp/err")"
# usage errors
expect_rc 2 "$CVM" app encrypt-env --kms "$KMS_URL" --app-id "$APP" "$tmp/deploy.env"
grep -q "needs --kms-pubkey" "$tmp/err" && pass || fail "no key: $(cat "$tmp/err")"
expect_rc 2 "$CVM" app encrypt-env --kms "$KMS_URL" --app-id 1234 --kms-pubkey "$KMS_PUB" "$tmp/deploy.env"
expect_rc 2 "$CVM" app encrypt-env --kms "$KMS_URL" --app-id "$APP" --kms-pubkey "05${KMS_PUB:2}" "$tmp/deploy.env"
expect_rc 2 "$CVM" app encrypt-env --pubkey "$ENV_PUB" --kms-pubkey "$KMS_PUB" "$tmp/deploy.env"
expect_rc 2 "$CVM" app decrypt-env "$tmp/sdk.hex"
# an unreachable KMS is an error, not a refusal
expect_rc 1 "$CVM" app encrypt-env --kms "http://127.0.0.1:1" --app-id "$APP" --kms-pubkey "$KMS_PUB" \
	"$tmp/deploy.env"

# -- doctored answers, from the stand-in --
fake="$tmp/fake"
start_fake_kms "$fake"
FAKE_URL="$KMS_URL"
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])) == {"app_id": sys.argv[2]} else 1)' \
	"$fake/last-GetAppEnvEncryptPubKey.json" "$APP" 2>/dev/null && fail "no request yet, but a body" || pass
expect_rc 0 "$CVM" app encrypt-env --kms "$FAKE_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" "$tmp/deploy.env"
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])) == {"app_id": sys.argv[2]} else 1)' \
	"$fake/last-GetAppEnvEncryptPubKey.json" "$APP" && pass || fail "the request body: $(cat "$fake/last-GetAppEnvEncryptPubKey.json")"
# a timestamp as a decimal string (protobuf's JSON form of a u64) is read too
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["timestamp"]=str(d["timestamp"]); json.dump(d, open(sys.argv[1],"w"))' \
	"$fake/answer.json"
expect_rc 0 "$CVM" app encrypt-env --kms "$FAKE_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" "$tmp/deploy.env"
# the answer for another app (a KMS that lies about which app's key it is)
kms_answer "$fake" "$(date +%s)" "$OTHER_APP"
expect_rc 3 "$CVM" app encrypt-env --kms "$FAKE_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" "$tmp/deploy.env" &&
	one_line "$tmp/err"
# stale; accepted with a larger --max-age
kms_answer "$fake" "$(($(date +%s) - 1000))" "$APP"
expect_rc 3 "$CVM" app encrypt-env --kms "$FAKE_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" "$tmp/deploy.env" &&
	one_line "$tmp/err"
grep -q "s old (at most 300 s allowed)" "$tmp/err" && pass || fail "stale: $(cat "$tmp/err")"
expect_rc 0 "$CVM" app encrypt-env --kms "$FAKE_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" --max-age 2000 \
	"$tmp/deploy.env"
# from the future
kms_answer "$fake" "$(($(date +%s) + 600))" "$APP"
expect_rc 3 "$CVM" app encrypt-env --kms "$FAKE_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" "$tmp/deploy.env" &&
	one_line "$tmp/err"
grep -q "in the future" "$tmp/err" && pass || fail "future: $(cat "$tmp/err")"
# legacy-only: refused unless --max-age 0
kms_answer "$fake" "$(date +%s)" "$APP"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); del d["signature_v1"]; del d["timestamp"]; json.dump(d, open(sys.argv[1],"w"))' \
	"$fake/answer.json"
expect_rc 3 "$CVM" app encrypt-env --kms "$FAKE_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" "$tmp/deploy.env" &&
	one_line "$tmp/err"
grep -q "no signature_v1" "$tmp/err" && pass || fail "legacy-only: $(cat "$tmp/err")"
expect_rc 0 "$CVM" app encrypt-env --kms "$FAKE_URL" --app-id "$APP" --kms-pubkey "$KMS_PUB" --max-age 0 \
	"$tmp/deploy.env"
grep -q "legacy signature" "$tmp/err" && pass || fail "legacy note: $(cat "$tmp/err")"

if [ "$failures" -ne 0 ]; then
	echo "kms_env_sdk: $failures failure(s), $checks check(s) passed" >&2
	exit 1
fi
echo "kms_env_sdk: all $checks checks passed (@phala/dstack-sdk $sdk_version)"
