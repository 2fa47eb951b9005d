#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || fail": fail runs when either fails, as meant
# SignCert end to end (cvm-kmsd on the simulated TEE): `cvm kms sign-cert`
# makes a key, has the app CVM's agent attest it (Attest), sends a V2 CSR;
#  - the answer is [leaf, App CA, root CA]; `openssl verify` accepts the
#    leaf under that App CA and the KMS's root CA, and refuses it under
#    another KMS's root; the leaf carries the app id the app's runtime log
#    names (read here with python3), the special usage app:custom, and the
#    key written to --out-key;
#  - the App CA's public key is `cvm kms derive`'s app_ca_public_key;
#  - a CSR whose signature does not verify is refused (400);
#  - without an authorization policy nobody gets a certificate.
# Needs: python3 with cryptography, openssl.
set -euo pipefail

bin="$(cd "${CVM_BIN:-build/bin}" && pwd)"
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$(dirname "$0")/../common/kms.sh"
trap 'kms_cleanup; rm -rf "$tmp"' EXIT

kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_cvm app '{"manifest_version":2,"name":"app","runner":"docker-compose","docker_compose_file":"services: {}"}' kmsvm
kms_cvm other '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}' kmsvm
kms_node kms1 kmsvm app $'[auth]\ntype = dev'
roots="$tmp/kms1/roots/epoch-0"
# shellcheck disable=SC2207
kv=($(kms_roots_of kmsvm) --ca "$roots/root-ca.crt")
app_id="$(kms_runtime_hex app app-id)"

check
rc=0
"$bin/cvm" kms sign-cert "127.0.0.1:$(cat "$tmp/kms1/port")" "${kv[@]}" --agent "unix:$tmp/app/dstack.sock" \
	--subject my-app --out-key "$tmp/leaf.key" >"$tmp/chain.json" 2>"$tmp/sign.err" || rc=$?
if [ "$rc" -ne 0 ]; then
	fail "sign-cert exited $rc: $(cat "$tmp/sign.err")"
else
	python3 - "$tmp/chain.json" "$tmp" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["certificate_chain"]
assert len(c) == 3, len(c)
for i, n in enumerate(("leaf.pem", "appca.pem", "root.pem")):
    open(sys.argv[2] + "/" + n, "w").write(c[i])
EOF
	check
	cmp -s "$tmp/root.pem" "$roots/root-ca.crt" || fail "the chain's root is not the KMS's root CA"
	openssl verify -CAfile "$tmp/root.pem" -untrusted "$tmp/appca.pem" "$tmp/leaf.pem" >/dev/null 2>&1 ||
		fail "openssl does not verify the leaf under the App CA and the root"
	"$bin/cvm-kmsd" bootstrap -c <(sed "s|$tmp/kms1/roots|$tmp/otherroots|" "$tmp/kms1/kmsd.conf") >/dev/null
	! openssl verify -CAfile "$tmp/otherroots/epoch-0/root-ca.crt" -untrusted "$tmp/appca.pem" "$tmp/leaf.pem" \
		>/dev/null 2>&1 || fail "the leaf verifies under another KMS's root"
	check
	python3 - "$tmp" "$app_id" <<'EOF' || fail "the leaf's contents: see above"
import sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
d, app_id = sys.argv[1], sys.argv[2]
leaf = x509.load_pem_x509_certificate(open(d + "/leaf.pem", "rb").read())
key = serialization.load_pem_private_key(open(d + "/leaf.key", "rb").read(), None)
spki = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
assert spki(leaf.public_key()) == spki(key.public_key()), "the leaf is not for --out-key's key"
assert leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "my-app"
ext = {e.oid.dotted_string: e.value.value for e in leaf.extensions if e.oid.dotted_string.startswith("1.3.6.1.4.1.62397.")}
# dstack wraps each value as DER OCTET STRING
assert ext["1.3.6.1.4.1.62397.1.3"][2:].hex() == app_id, "app id"
assert ext["1.3.6.1.4.1.62397.1.4"][2:] == b"app:custom", "usage"
assert "1.3.6.1.4.1.62397.1.8" in ext, "the attestation extension (ext_quote)"
EOF
	check
	"$bin/cvm" kms derive --root-dir "$tmp/kms1/roots" --app-id "$app_id" --json >"$tmp/derive.json"
	python3 - "$tmp/appca.pem" "$tmp/derive.json" <<'EOF' || fail "the App CA is not cvm kms derive's"
import json, sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
ca = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
pub = ca.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
assert pub.hex() == json.load(open(sys.argv[2]))["app_ca_public_key"]
EOF
fi

# A CSR whose signature does not verify.
check
csr="$(printf '%s' 'please sign cert:' | xxd -p | tr -d '\n')"
code="$(curl -sk -o "$tmp/bad.json" -w '%{http_code}' --tlsv1.3 -X POST \
	-d "{\"api_version\": 2, \"csr\": \"44$csr\", \"signature\": \"3006020101020101\"}" \
	"https://127.0.0.1:$(cat "$tmp/kms1/port")/prpc/KMS.SignCert?json" || true)"
[ "$code" = 400 ] || fail "a malformed CSR: HTTP $code, want 400: $(cat "$tmp/bad.json")"

# Without a policy.
check
kms_stop kms1
kms_node kms1 kmsvm app $'[auth]\ntype = none'
rc=0
"$bin/cvm" kms sign-cert "127.0.0.1:$(cat "$tmp/kms1/port")" "${kv[@]}" --agent "unix:$tmp/app/dstack.sock" \
	--out-key "$tmp/leaf2.key" >"$tmp/chain2.json" 2>"$tmp/sign2.err" || rc=$?
[ "$rc" -eq 3 ] && [ ! -s "$tmp/chain2.json" ] || fail "without a policy: exit $rc, want 3: $(cat "$tmp/sign2.err")"

if [ "$failures" -ne 0 ]; then
	echo "kms_signcert: $failures of $checks checks failed" >&2
	exit 1
fi
echo "kms_signcert: $checks checks passed"
