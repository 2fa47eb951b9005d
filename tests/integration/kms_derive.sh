#!/usr/bin/env bash
# cvm kms derive: every key a KMS with given roots releases to an app.
#  - a dstack-layout root folder made from the compat vectors (the dstack
#    simulator's real test KMS CA key and certificate, appkeys.json) plus a
#    k256 root (01..20): --json prints exactly the issue's names; disk, env,
#    env public and App CA public keys equal an independent computation
#    (python3's cryptography: HKDF-SHA256 salt "RATLS", P-256, PKCS#8,
#    X25519); the App CA public key is K-D2's; the k256 values are those
#    @noble/curves gave test_kdf.c; the derived App CA certificate makes
#    `openssl verify` accept the real RA-TLS leaf of compat/ratls
#    (dstack-kvinwang-demo-server), another app's does not;
#  - the text output carries the same values; --instance-id changes the disk
#    key only; 0x before an id is accepted;
#  - partial folders: a missing root is left out with a note naming its file,
#    the other keys are printed; no root at all is an error;
#  - a root key others can read is refused; an epoch comes from its own
#    epoch-N folder (cvmkit's layout) and a missing one is an error;
#  - usage errors exit 2.
# Needs: $CVM_BIN/cvm, python3 with cryptography, openssl.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
K=compat/kms
LEAF_REL=compat/ratls/dstack-kvinwang-demo-server/server.crt
vectors_require "$K/inline-vectors.json" "$K/dstack-simulator/appkeys.json" "$LEAF_REL"

for tool in python3 openssl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool is missing (scripts/setup.sh installs it)" >&2
		exit 1
	fi
done
if ! python3 -c 'import cryptography' 2>/dev/null; then
	echo "FAIL: python3's cryptography is missing (scripts/setup.sh installs python3-cryptography)" >&2
	exit 1
fi
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }

# expect_rc WANT CMD...: runs CMD, records its output in $tmp/out, $tmp/err.
expect_rc() {
	local want="$1" rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "'$*' exited $rc, expected $want: $(head -c 600 "$tmp/err") $(head -c 600 "$tmp/out")"
		return 1
	fi
	pass
}

DEMO_APP=9e8af4fc80bde3bea655a161280910c770c8d561
SIM_APP=5bb4ff9a3837357f19dc176407a5709c62eb6c56
SIM_INST=1691ed1b47506cad7d08834668691d88246f5b1f

# The roots: the simulator's KMS CA (key 0600, certificate) and a k256 root.
mkroots() { # DIR [ca] [cert] [k256]
	local dir="$1" what
	shift
	mkdir -p "$dir"
	for what in "$@"; do
		python3 - "$VECTORS/$K/dstack-simulator/appkeys.json" "$dir" "$what" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
out, what = sys.argv[2], sys.argv[3]
if what == "ca":
    fd = os.open(os.path.join(out, "root-ca.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, d["key_provider"]["None"]["key"].encode())
    os.close(fd)
elif what == "cert":
    open(os.path.join(out, "root-ca.crt"), "w").write(d["ca_cert"])
elif what == "k256":
    fd = os.open(os.path.join(out, "root-k256.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, bytes(range(1, 33)))
    os.close(fd)
else:
    raise SystemExit("unknown root " + what)
PY
	done
}

# The independent computation of the root-CA keys (spec §3.2).
cat >"$tmp/expect.py" <<'PY'
import hashlib, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

appkeys, app_hex, inst_hex = sys.argv[1], sys.argv[2], sys.argv[3]
root = serialization.load_pem_private_key(json.load(open(appkeys))["key_provider"]["None"]["key"].encode(), None)
sk = root.private_numbers().private_value.to_bytes(32, "big")
app, inst = bytes.fromhex(app_hex), bytes.fromhex(inst_hex)

def p256(info):
    s = HKDF(hashes.SHA256(), 32, b"RATLS", info).derive(sk)
    return ec.derive_private_key(int.from_bytes(s, "big"), ec.SECP256R1())

def dh(info):
    der = p256(info).private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return hashlib.sha256(der).digest()

env = dh(app + b"env-encrypt-key")
env_pub = x25519.X25519PrivateKey.from_private_bytes(env).public_key().public_bytes(
    serialization.Encoding.Raw, serialization.PublicFormat.Raw)
ca_pub = p256(app + b"app-ca").public_key().public_bytes(serialization.Encoding.X962,
                                                          serialization.PublicFormat.CompressedPoint)
print(json.dumps({"disk_crypt_key": dh(app + inst + b"app-disk-crypt-key").hex(), "env_crypt_key": env.hex(),
                  "env_crypt_public_key": env_pub.hex(), "app_ca_public_key": ca_pub.hex()}))
PY

# check_json OUT EXPECT_JSON NAMES...: the keys of OUT are exactly NAMES plus
# the always-present ones, and every value of EXPECT_JSON matches.
check_json() {
	python3 - "$@" <<'PY' || return 1
import json, sys
got = json.load(open(sys.argv[1]))
want = json.loads(sys.argv[2])
names = set(sys.argv[3].split()) | {"epoch", "app_id", "instance_id", "notes"}
if set(got) != names:
    raise SystemExit("keys %s, expected %s" % (sorted(got), sorted(names)))
for k, v in want.items():
    if got.get(k) != v:
        raise SystemExit("%s = %r, expected %r" % (k, got.get(k), v))
PY
}

ALL="disk_crypt_key env_crypt_key env_crypt_public_key k256_key k256_public_key k256_signature"
ALL="$ALL app_ca_public_key app_ca_key app_ca_cert"
# @noble/curves, for the k256 root 01..20 and SIM_APP (tests/unit/test_kdf.c)
K256_SIM='{"k256_key": "2bb47ea2f92feae0e3c700d9332d5a4c4bb886f2d5d693198653931b19b310aa",
 "k256_public_key": "036ed0aeb938a928b823a68afc1d366894cf5398ccc5cad137e73ff0e5cc501416",
 "k256_signature": "ac1faee283f6c59ad2f38f0ced98c74f3db32f6a7b2696f50f83a526d5bdf9a173991ea4de557b8a53ec5f6400b26a974f1dead4497c1bc1f01f855300ed28f901"}'

# ---- 1. a full dstack-layout folder ---------------------------------------------
full="$tmp/full"
mkroots "$full" ca cert k256
want="$(python3 "$tmp/expect.py" "$VECTORS/$K/dstack-simulator/appkeys.json" "$SIM_APP" "$SIM_INST")"
merged="$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); a.update(json.loads(sys.argv[2]));
a.update({"epoch": 0, "app_id": sys.argv[3], "instance_id": sys.argv[4]}); print(json.dumps(a))' \
	"$want" "$K256_SIM" "$SIM_APP" "$SIM_INST")"
if expect_rc 0 "$CVM" kms derive --root-dir "$full" --app-id "$SIM_APP" --instance-id "$SIM_INST" --json; then
	cp "$tmp/out" "$tmp/full.json"
	if check_json "$tmp/full.json" "$merged" "$ALL" 2>"$tmp/why"; then pass; else
		fail "full folder, --json: $(cat "$tmp/why")"
	fi
	python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["notes"]; sys.exit(0 if n == [] else "notes: %r" % n)' \
		"$tmp/full.json" && pass || fail "a full folder with an instance id gives notes"
fi

# the text output carries the same values
if expect_rc 0 "$CVM" kms derive --root-dir "$full" --app-id "0x$SIM_APP" --instance-id "$SIM_INST"; then
	for name in disk_crypt_key env_crypt_key env_crypt_public_key k256_key k256_public_key k256_signature \
		app_ca_public_key; do
		v="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$tmp/full.json" "$name")"
		if grep -qx "$name: $v" "$tmp/out"; then pass; else fail "text output lacks '$name: $v'"; fi
	done
	grep -q "BEGIN CERTIFICATE" "$tmp/out" && pass || fail "text output lacks app_ca_cert"
	[ ! -s "$tmp/err" ] && pass || fail "text output with every root gives notes: $(cat "$tmp/err")"
fi

# without an instance id: only the disk key changes, and a note says why
want0="$(python3 "$tmp/expect.py" "$VECTORS/$K/dstack-simulator/appkeys.json" "$SIM_APP" "")"
if expect_rc 0 "$CVM" kms derive --root-dir "$full" --app-id "$SIM_APP" --json; then
	if check_json "$tmp/out" "$want0" "$ALL" 2>"$tmp/why"; then pass; else
		fail "no instance id: $(cat "$tmp/why")"
	fi
	grep -q "empty instance id" "$tmp/out" && pass || fail "no note about the empty instance id"
fi

# K-D2: the demo app's App CA is the expected key and verifies the real leaf
awk '/BEGIN CERTIFICATE/{n++} n==1' "$VECTORS/$LEAF_REL" >"$tmp/leaf.pem"
if expect_rc 0 "$CVM" kms derive --root-dir "$full" --app-id "$DEMO_APP" --json; then
	python3 - "$tmp/out" "$VECTORS/$K/inline-vectors.json" "$tmp/appca.pem" <<'PY' && pass || fail "K-D2 App CA"
import json, sys
got = json.load(open(sys.argv[1]))
vec = [v for v in json.load(open(sys.argv[2]))["vectors"] if v["id"] == "kms-app-ca-derivation-verifies-real-cert"][0]
if got["app_ca_public_key"] != vec["expect"]["app_ca_pubkey_compressed_hex"]:
    raise SystemExit("app_ca_public_key %s" % got["app_ca_public_key"])
open(sys.argv[3], "w").write(got["app_ca_cert"])
PY
	if openssl verify -CAfile "$full/root-ca.crt" -untrusted "$tmp/appca.pem" "$tmp/leaf.pem" >"$tmp/v" 2>&1; then
		pass
	else
		fail "openssl verify rejects the real leaf under the derived App CA: $(cat "$tmp/v")"
	fi
fi
other="${DEMO_APP%?}0"
if expect_rc 0 "$CVM" kms derive --root-dir "$full" --app-id "$other" --json; then
	python3 -c 'import json,sys; open(sys.argv[2],"w").write(json.load(open(sys.argv[1]))["app_ca_cert"])' \
		"$tmp/out" "$tmp/other.pem"
	if openssl verify -CAfile "$full/root-ca.crt" -untrusted "$tmp/other.pem" "$tmp/leaf.pem" >"$tmp/v" 2>&1; then
		fail "another app's App CA verifies the demo leaf"
	else
		pass
	fi
fi

# ---- 2. partial folders ----------------------------------------------------------
nok256="$tmp/nok256"
mkroots "$nok256" ca cert
if expect_rc 0 "$CVM" kms derive --root-dir "$nok256" --app-id "$SIM_APP" --instance-id "$SIM_INST" --json; then
	if check_json "$tmp/out" "$want" "disk_crypt_key env_crypt_key env_crypt_public_key app_ca_public_key app_ca_key app_ca_cert" 2>"$tmp/why"; then pass; else
		fail "no k256 root: $(cat "$tmp/why")"
	fi
	grep -q "k256_key, k256_public_key and k256_signature left out: the k256 root key $nok256/root-k256.key is absent" \
		"$tmp/out" && pass || fail "no note names the missing root-k256.key: $(cat "$tmp/out")"
fi
# the same in text: the note goes to stderr, the keys to stdout
if expect_rc 0 "$CVM" kms derive --root-dir "$nok256" --app-id "$SIM_APP"; then
	grep -q "^cvm kms derive: note: k256_key.*root-k256.key is absent" "$tmp/err" && pass ||
		fail "text mode: no note on stderr: $(cat "$tmp/err")"
	grep -q "^k256" "$tmp/out" && fail "text mode prints a k256 key without its root" || pass
fi
onlyk256="$tmp/onlyk256"
mkroots "$onlyk256" k256
if expect_rc 0 "$CVM" kms derive --root-dir "$onlyk256" --app-id "$SIM_APP" --json; then
	if check_json "$tmp/out" "$K256_SIM" "k256_key k256_public_key k256_signature" 2>"$tmp/why"; then pass; else
		fail "only the k256 root: $(cat "$tmp/why")"
	fi
	grep -q "the root CA key $onlyk256/root-ca.key is absent" "$tmp/out" && pass ||
		fail "no note names the missing root-ca.key"
fi
nocert="$tmp/nocert"
mkroots "$nocert" ca
if expect_rc 0 "$CVM" kms derive --root-dir "$nocert" --app-id "$SIM_APP" --json; then
	grep -q "app_ca_cert left out: the root CA certificate $nocert/root-ca.crt is absent" "$tmp/out" && pass ||
		fail "no note names the missing root-ca.crt"
	grep -q '"app_ca_public_key"' "$tmp/out" && pass || fail "no App CA key without the root certificate"
fi
mkdir "$tmp/empty"
if expect_rc 1 "$CVM" kms derive --root-dir "$tmp/empty" --app-id "$SIM_APP"; then
	grep -q "nothing to derive" "$tmp/err" && pass || fail "empty folder: $(cat "$tmp/err")"
	[ ! -s "$tmp/out" ] && pass || fail "empty folder printed something"
fi

# ---- 3. unsafe roots, epochs -------------------------------------------------------
loose="$tmp/loose"
mkroots "$loose" ca k256
chmod 644 "$loose/root-ca.key"
if expect_rc 1 "$CVM" kms derive --root-dir "$loose" --app-id "$SIM_APP"; then
	grep -q "root-ca.key" "$tmp/err" && pass || fail "a readable root key: $(cat "$tmp/err")"
	[ ! -s "$tmp/out" ] && pass || fail "a readable root key still printed keys"
fi

epochs="$tmp/epochs"
mkroots "$epochs" ca cert k256
mkdir "$epochs/epoch-1"
(cd "$epochs/epoch-1" && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out root-ca.key 2>/dev/null &&
	chmod 600 root-ca.key && head -c 32 /dev/urandom >root-k256.key && chmod 600 root-k256.key)
if expect_rc 0 "$CVM" kms derive --root-dir "$epochs" --app-id "$SIM_APP" --epoch 0 --json; then
	cp "$tmp/out" "$tmp/e0.json"
	if expect_rc 0 "$CVM" kms derive --root-dir "$epochs" --app-id "$SIM_APP" --epoch 1 --json; then
		python3 - "$tmp/e0.json" "$tmp/out" "$want0" <<'PY' && pass || fail "epochs"
import json, sys
e0, e1, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), json.loads(sys.argv[3])
if e0["epoch"] != 0 or e1["epoch"] != 1:
    raise SystemExit("epoch fields %r %r" % (e0["epoch"], e1["epoch"]))
if e0["env_crypt_key"] != want["env_crypt_key"]:
    raise SystemExit("epoch 0 is not dstack's key")
for k in ("disk_crypt_key", "env_crypt_key", "k256_key", "app_ca_public_key"):
    if e0[k] == e1[k]:
        raise SystemExit("epoch 1 has epoch 0's " + k)
if "app_ca_cert" in e1 or not any("epoch-1/root-ca.crt" in n for n in e1["notes"]):
    raise SystemExit("epoch 1 has no root certificate: its App CA certificate must be left out with a note")
PY
	fi
fi
if expect_rc 1 "$CVM" kms derive --root-dir "$epochs" --app-id "$SIM_APP" --epoch 2; then
	grep -q "no roots for epoch 2" "$tmp/err" && pass || fail "missing epoch: $(cat "$tmp/err")"
fi

# ---- 4. usage ---------------------------------------------------------------------
expect_rc 2 "$CVM" kms derive --root-dir "$full" || true
expect_rc 2 "$CVM" kms derive --app-id "$SIM_APP" || true
expect_rc 2 "$CVM" kms derive --root-dir "$full" --app-id 5bb4 || true
expect_rc 2 "$CVM" kms derive --root-dir "$full" --app-id "$SIM_APP" --instance-id zz || true
expect_rc 2 "$CVM" kms derive --root-dir "$full" --app-id "$SIM_APP" --epoch -1 || true
expect_rc 2 "$CVM" kms derive --root-dir "$full" --app-id "$SIM_APP" --epoch 01 || true
expect_rc 2 "$CVM" kms derive --root-dir "$full" --app-id "$SIM_APP" extra || true
expect_rc 2 "$CVM" kms || true
expect_rc 0 "$CVM" kms derive --help && grep -q "SECRET" "$tmp/out" && pass || fail "--help does not warn about secrets"

if [ "$failures" -ne 0 ]; then
	echo "kms_derive: $failures failure(s), $checks check(s) passed" >&2
	exit 1
fi
echo "kms_derive: all $checks checks passed"
