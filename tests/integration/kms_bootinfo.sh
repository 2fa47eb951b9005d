#!/usr/bin/env bash
# shellcheck disable=SC2015 # "a && b || fail": fail runs when either fails, as meant
# The KMS's bootstrap attestation (dstack spec §3.2), end to end on the
# simulated TEE:
#  - `cvm-kmsd bootstrap` with a guest agent writes epoch-0/bootstrap-info.json
#    (0644, dstack's three keys), and `cvm kms bootstrap-info verify` accepts it
#    against the KMS's roots (--root-dir, and --ca root-ca.crt); GetMeta serves
#    it as bootstrap_info;
#  - a file whose ca_pubkey is swapped for another KMS's key is refused (the
#    attestation is over other keys), and so is a genuine file checked
#    against another KMS's roots;
#  - a genuine file from another simulated CVM (other measurements) is
#    refused under a policy that pins the KMS CVM's RTMR3;
#  - with an agent that does not answer, bootstrap fails, says why, and
#    leaves no roots behind; with no agent, the roots are made and the
#    output says they are unattested.
# Needs: python3, openssl.
set -euo pipefail

bin="$(cd "${CVM_BIN:-build/bin}" && pwd)"
tmp="$(mktemp -d)"
# shellcheck source=tests/common/kms.sh
. "$(dirname "$0")/../common/kms.sh"
trap 'kms_cleanup; rm -rf "$tmp"' EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
check() { checks=$((checks + 1)); }

kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}'
kms_cvm othervm '{"manifest_version":2,"name":"other","runner":"docker-compose","docker_compose_file":"x"}' kmsvm
kms_node kms1 kmsvm kmsvm $'[auth]\ntype = dev'
kms_conf kms2 othervm kmsvm $'[auth]\ntype = dev'
"$bin/cvm-kmsd" bootstrap -c "$tmp/kms2/kmsd.conf" >"$tmp/kms2/bootstrap.log" 2>&1 ||
	fail "bootstrap of kms2: $(cat "$tmp/kms2/bootstrap.log")"
bi="$tmp/kms1/roots/epoch-0/bootstrap-info.json"
bi2="$tmp/kms2/roots/epoch-0/bootstrap-info.json"
# shellcheck disable=SC2207
vopts=($(kms_roots_of kmsvm))

verify() { "$bin/cvm" kms bootstrap-info verify "$@" "${vopts[@]}"; }

# 1. The file exists, public, in dstack's shape.
check
[ -f "$bi" ] && [ "$(stat -c %a "$bi")" = 644 ] || fail "no 0644 $bi: $(ls -l "$tmp/kms1/roots/epoch-0")"
grep -q "attested them" "$tmp/kms1/bootstrap.log" || fail "bootstrap did not say the roots are attested"
check
python3 - "$bi" "$tmp/kms1/roots/epoch-0/root-ca.crt" <<'EOF' || fail "the file's shape or ca_pubkey"
import json, subprocess, sys
d = json.load(open(sys.argv[1]))
assert list(d) == ["ca_pubkey", "k256_pubkey", "attestation"], list(d)
spki = subprocess.run("openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform DER" % sys.argv[2],
                      shell=True, check=True, capture_output=True).stdout.hex()
assert d["ca_pubkey"] == spki, "ca_pubkey is not root-ca.crt's SPKI"
assert len(d["k256_pubkey"]) == 66 and d["k256_pubkey"][:2] in ("02", "03")
assert all(c in "0123456789abcdef" for v in d.values() for c in v)
EOF

# 2. It verifies against the KMS's roots, both ways.
check
verify "$bi" --root-dir "$tmp/kms1/roots" >"$tmp/v1.out" 2>&1 || fail "--root-dir: $(cat "$tmp/v1.out")"
grep -q "generated in an attested CVM" "$tmp/v1.out" && grep -q "roots given" "$tmp/v1.out" ||
	fail "the verdict: $(cat "$tmp/v1.out")"
check
verify "$bi" --ca "$tmp/kms1/roots/epoch-0/root-ca.crt" --json >"$tmp/v2.out" 2>&1 || fail "--ca: $(cat "$tmp/v2.out")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["verified"] and d["roots_checked"] and d["simulated"]' \
	"$tmp/v2.out" || fail "--json: $(cat "$tmp/v2.out")"
# the k256 public key it names is the one GetMeta serves, and GetMeta serves the file
check
"$bin/cvm" kms meta "127.0.0.1:$(cat "$tmp/kms1/port")" "${vopts[@]}" --ca "$tmp/kms1/roots/epoch-0/root-ca.crt" \
	>"$tmp/meta.json" 2>"$tmp/meta.err" || fail "GetMeta: $(cat "$tmp/meta.err")"
python3 - "$tmp/meta.json" "$bi" <<'EOF' || fail "GetMeta's bootstrap_info: $(head -c 300 "$tmp/meta.json")"
import json, sys
m = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert m["bootstrap_info"] == b, "bootstrap_info is not the file"
assert m["k256_pubkey"] == b["k256_pubkey"]
EOF

# 3. A file whose ca_pubkey is another KMS's: the attestation is over other keys.
check
python3 - "$bi" "$bi2" "$tmp/swapped.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); d["ca_pubkey"] = json.load(open(sys.argv[2]))["ca_pubkey"]
json.dump(d, open(sys.argv[3], "w"), separators=(",", ":"))
EOF
rc=0
verify "$tmp/swapped.json" >"$tmp/v3.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] && grep -q "not the one expected" "$tmp/v3.out" || fail "a swapped ca_pubkey: exit $rc: $(cat "$tmp/v3.out")"
check
rc=0
verify "$tmp/swapped.json" --ca "$tmp/kms2/roots/epoch-0/root-ca.crt" >"$tmp/v3b.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "a swapped ca_pubkey with kms2's CA: exit $rc: $(cat "$tmp/v3b.out")"
# a genuine file, but of another KMS than the one named
check
rc=0
verify "$bi2" --root-dir "$tmp/kms1/roots" >"$tmp/v4.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] && grep -q "another KMS's roots" "$tmp/v4.out" || fail "kms2's file for kms1: exit $rc: $(cat "$tmp/v4.out")"
# each key is checked on its own: the root CA alone (--ca), then roots with
# kms1's root CA and kms2's k256 root
check
rc=0
verify "$bi" --ca "$tmp/kms2/roots/epoch-0/root-ca.crt" >"$tmp/v4b.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] && grep -q "ca_pubkey is not the SPKI" "$tmp/v4b.out" ||
	fail "kms1's file with kms2's root CA: exit $rc: $(cat "$tmp/v4b.out")"
mkdir -m 700 -p "$tmp/mixed/epoch-0"
cp -p "$tmp/kms1/roots/epoch-0/root-ca.key" "$tmp/kms1/roots/epoch-0/root-ca.crt" "$tmp/kms2/roots/epoch-0/root-k256.key" \
	"$tmp/mixed/epoch-0/"
check
rc=0
verify "$bi" --root-dir "$tmp/mixed" >"$tmp/v4c.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] && grep -q "k256_pubkey is not the k256 root" "$tmp/v4c.out" ||
	fail "kms1's file with another k256 root: exit $rc: $(cat "$tmp/v4c.out")"

# 4. Another simulated CVM (other measurements) under a policy pinning the KMS CVM's RTMR3.
"$bin/cvm" cert ratls show --json "$tmp/kmsvm/chain.pem" >"$tmp/show.json"
rtmr3="$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["rtmr3"])' "$tmp/show.json")"
printf '{"tdx": {"rtmr3": "%s"}}' "$rtmr3" >"$tmp/policy.json"
check
verify "$bi" --policy "$tmp/policy.json" >"$tmp/v5.out" 2>&1 || fail "kms1 under its own policy: $(cat "$tmp/v5.out")"
check
rc=0
verify "$bi2" --ca "$tmp/kms2/roots/epoch-0/root-ca.crt" --policy "$tmp/policy.json" >"$tmp/v6.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] || fail "another CVM's file under kms1's policy: exit $rc: $(cat "$tmp/v6.out")"
# the same file without the policy verifies: the policy made the difference
check
verify "$bi2" --ca "$tmp/kms2/roots/epoch-0/root-ca.crt" >"$tmp/v7.out" 2>&1 || fail "kms2's own file: $(cat "$tmp/v7.out")"

# 5. A damaged file is refused with a reason; a missing one is an error.
check
head -c 100 "$bi" >"$tmp/cut.json"
rc=0
verify "$tmp/cut.json" >"$tmp/v8.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] && grep -q "not a bootstrap-info.json" "$tmp/v8.out" || fail "a cut file: exit $rc: $(cat "$tmp/v8.out")"
check
rc=0
verify "$tmp/none.json" >"$tmp/v9.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "a missing file: exit $rc: $(cat "$tmp/v9.out")"

# 6. A second bootstrap changes nothing, the file included.
check
sum_before="$(cat "$tmp/kms1/roots/epoch-0"/* | sha256sum)"
rc=0
"$bin/cvm-kmsd" bootstrap -c "$tmp/kms1/kmsd.conf" >"$tmp/b2.out" 2>&1 || rc=$?
[ "$rc" -eq 3 ] && grep -q "never made twice" "$tmp/b2.out" || fail "a second bootstrap: exit $rc: $(cat "$tmp/b2.out")"
[ "$(cat "$tmp/kms1/roots/epoch-0"/* | sha256sum)" = "$sum_before" ] || fail "a second bootstrap changed epoch 0"
[ -z "$(find "$tmp/kms1/roots" -maxdepth 1 -name '.bootstrap-*')" ] || fail "a second bootstrap left a staging folder"

# 7. An agent that does not answer: bootstrap fails, says why, leaves no roots.
kms_conf kms3 kmsvm kmsvm
sed -i "s|^agent = .*|agent = unix:$tmp/nobody.sock|" "$tmp/kms3/kmsd.conf"
check
rc=0
"$bin/cvm-kmsd" bootstrap -c "$tmp/kms3/kmsd.conf" >"$tmp/b3.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "did not attest the new roots" "$tmp/b3.out" ||
	fail "bootstrap with a dead agent: exit $rc: $(cat "$tmp/b3.out")"
[ -z "$(ls -A "$tmp/kms3/roots" 2>/dev/null)" ] || fail "a failed bootstrap left: $(ls -A "$tmp/kms3/roots")"

# 8. No agent: roots made, said to be unattested, no file.
kms_conf kms4 kmsvm kmsvm
sed -i "/^agent = /d" "$tmp/kms4/kmsd.conf"
check
"$bin/cvm-kmsd" bootstrap -c "$tmp/kms4/kmsd.conf" >"$tmp/b4.out" 2>&1 || fail "bootstrap without an agent: $(cat "$tmp/b4.out")"
grep -q "unattested" "$tmp/b4.out" && [ -f "$tmp/kms4/roots/epoch-0/root-ca.key" ] &&
	[ ! -e "$tmp/kms4/roots/epoch-0/bootstrap-info.json" ] || fail "no agent: $(cat "$tmp/b4.out")"

if [ "$failures" -ne 0 ]; then
	echo "kms_bootinfo: $failures of $checks checks failed" >&2
	exit 1
fi
echo "kms_bootinfo: all $checks checks passed"
