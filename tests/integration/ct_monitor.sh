#!/usr/bin/env bash
# cvm ct monitor against tests/common/ct_log_server.py, a real RFC 6962 log:
#  - a key quoted by the simulated TEE (report_data SHA-512("zt-cert:" || SPKI)) is trusted; a key
#    given with a quote that binds another key is rejected;
#  - a certificate for *.gw.test with the quoted key is ok, one for an unrelated domain is ignored,
#    a precertificate for *.gw.test with a rogue key is an alert naming its serial and SPKI (exit 3);
#  - the state file makes the second run start where the first ended (get-entries pages of 2);
#  - a bad tree head signature and a log that rewrote its history are alerts too.
# Needs: $CVM_BIN/cvm, python3 with cryptography.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
if ! python3 -c 'import cryptography' 2>/dev/null; then
	echo "SKIP: python3-cryptography is needed (the test log and certificates)" >&2
	exit 77
fi
tmp="$(mktemp -d)"
srv=""
cleanup() {
	if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "ct_monitor: FAIL: $*" >&2; exit 1; }

python3 "$SRC/tests/common/ct_log_server.py" --key-out "$tmp/log.pem" --port-file "$tmp/port" --page 2 &
srv=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.1; done
[ -s "$tmp/port" ] || fail "the test log did not start"
url="http://127.0.0.1:$(cat "$tmp/port")"

# Keys and certificates: good (quoted), rogue, other (unrelated domain).
python3 - "$tmp" <<'PY'
import base64, datetime, hashlib, json, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
d = sys.argv[1]
ca = ec.generate_private_key(ec.SECP256R1())
def cert(key, names, serial):
    now = datetime.datetime(2026, 1, 1)
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CT CA")]))
         .public_key(key.public_key()).serial_number(serial).not_valid_before(now)
         .not_valid_after(now + datetime.timedelta(days=90))
         .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False))
    return b.sign(ca, hashes.SHA256())
spki = lambda k: k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
good, rogue, other = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
c_good = cert(good, ["*.gw.test", "gw.test"], 0x1001)
c_rogue = cert(rogue, ["*.gw.test"], 0x7E57BAD)
c_other = cert(other, ["www.other.test"], 0x2002)
b64 = lambda b: base64.b64encode(b).decode()
json.dump({"cert": b64(c_good.public_bytes(serialization.Encoding.DER))}, open(d + "/add_good.json", "w"))
json.dump({"cert": b64(c_other.public_bytes(serialization.Encoding.DER))}, open(d + "/add_other.json", "w"))
json.dump({"tbs": b64(c_rogue.tbs_certificate_bytes), "issuer_key_hash": b64(hashlib.sha256(spki(ca)).digest())},
          open(d + "/add_rogue.json", "w"))
c_many = cert(good, ["n%d.pad.test" % i for i in range(70)] + ["www.gw.test"], 0x3003)
json.dump({"cert": b64(c_many.public_bytes(serialization.Encoding.DER))}, open(d + "/add_many.json", "w"))
open(d + "/good.spki", "w").write(spki(good).hex())
open(d + "/rogue.spki", "w").write(spki(rogue).hex())
open(d + "/good.rd", "w").write(hashlib.sha512(b"zt-cert:" + spki(good)).hexdigest())
open(d + "/rogue.sha256", "w").write(hashlib.sha256(spki(rogue)).hexdigest())
PY

"$CVM" sim init "$tmp/sim" >/dev/null
"$CVM" sim quote "$tmp/sim" --report-data "$(cat "$tmp/good.rd")" --out "$tmp/good.quote" >/dev/null
qhex="$(python3 -c 'import sys; print(open(sys.argv[1],"rb").read().hex())' "$tmp/good.quote")"
# The rogue key comes with the good key's quote: it does not bind it.
cat >"$tmp/acme-info.json" <<EOF
{"account_uri": "https://acme.test/acct/1",
 "quoted_hist_keys": [{"public_key": "$(cat "$tmp/good.spki")", "quote": "$qhex"},
                      {"public_key": "$(cat "$tmp/rogue.spki")", "quote": "$qhex"}]}
EOF
post() { curl -sf -X POST -H 'Content-Type: application/json' --data-binary "@$2" "$url$1" >/dev/null; }
post /test/add "$tmp/add_good.json"
post /test/add "$tmp/add_other.json"
post /test/add "$tmp/add_other.json"

coll=(--collateral "$tmp/sim/collateral/tdx" --root "$tmp/sim/collateral/tdx/intel_sgx_root_ca.der")
mon() {
	"$CVM" ct monitor --log "$url" --log-key "$tmp/log.pem" --domain gw.test --acme-info "$tmp/acme-info.json" \
		--state "$tmp/state.json" --allow-insecure-http --once "${coll[@]}" "$@"
}

# 1: from 0, three entries over two pages: the good one ok, the others ignored.
rc=0; mon --from 0 >"$tmp/1.out" 2>"$tmp/1.err" || rc=$?
[ "$rc" = 0 ] || { cat "$tmp/1.out" "$tmp/1.err"; fail "first run: exit $rc, wanted 0"; }
grep -q "key 0: SPKI SHA-256 .*: trusted" "$tmp/1.out" || fail "the quoted key is not trusted"
grep -q "key 1 .*NOT trusted" "$tmp/1.err" || { cat "$tmp/1.err"; fail "the key whose quote binds another key is trusted"; }
grep -q "ok: log index 0: \*.gw.test,gw.test, serial 1001" "$tmp/1.out" || { cat "$tmp/1.out"; fail "the good certificate is not ok"; }
grep -q "3 entries read, 1 for the domains, 1 with a quoted key, 0 alerts" "$tmp/1.out" || { cat "$tmp/1.out"; fail "first run's counts"; }
grep -q '"tree_size": 3' "$tmp/state.json" || fail "the state file does not hold tree size 3"

# 2: the rogue precertificate: an alert naming the serial and the SPKI; only the new entry is read.
post /test/add "$tmp/add_rogue.json"
rc=0; mon --json >"$tmp/2.json" 2>"$tmp/2.err" || rc=$?
[ "$rc" = 3 ] || { cat "$tmp/2.json" "$tmp/2.err"; fail "rogue run: exit $rc, wanted 3"; }
grep -q "ALERT: log index 3 .*precertificate for \*.gw.test, serial 07E57BAD.*$(cat "$tmp/rogue.sha256")" "$tmp/2.err" ||
	{ cat "$tmp/2.err"; fail "the alert does not name the serial and the SPKI"; }
python3 - "$tmp/2.json" "$(cat "$tmp/rogue.sha256")" <<'PY' || fail "rogue run's JSON"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["checked"] == 1, o
assert len(o["alerts"]) == 1 and o["alerts"][0]["kind"] == "unquoted_key", o
assert o["alerts"][0]["spki_sha256"] == sys.argv[2] and o["alerts"][0]["serial"] == "07E57BAD", o
assert [k["trusted"] for k in o["keys"]] == [True, False], o
PY

# 3: nothing new: exit 0. The AcmeInfo comes from a "gateway" this time (GET /prpc/Gateway.AcmeInfo).
mkdir -p "$tmp/gw/prpc"
cp "$tmp/acme-info.json" "$tmp/gw/prpc/Gateway.AcmeInfo"
python3 -m http.server --bind 127.0.0.1 --directory "$tmp/gw" 0 >"$tmp/gw.log" 2>&1 &
gw=$!
for _ in $(seq 100); do grep -q "port" "$tmp/gw.log" && break; sleep 0.1; done
gwport="$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$tmp/gw.log" | head -n 1)"
[ -n "$gwport" ] || fail "the stand-in gateway did not start"
rc=0
"$CVM" ct monitor --log "$url" --log-key "$tmp/log.pem" --domain gw.test --gateway "http://127.0.0.1:$gwport" \
	--state "$tmp/state.json" --allow-insecure-http --once "${coll[@]}" >"$tmp/3.out" 2>&1 || rc=$?
kill "$gw" 2>/dev/null || true
wait "$gw" 2>/dev/null || true
[ "$rc" = 0 ] || { cat "$tmp/3.out"; fail "quiet run: exit $rc"; }
grep -q "0 entries read" "$tmp/3.out" || fail "the quiet run read entries again"
grep -q "key 0: .*trusted" "$tmp/3.out" || fail "--gateway: the quoted key is not trusted"

# 4: a tree head signed by another key.
post /test/add "$tmp/add_other.json"
echo '{"mode": "badsig"}' >"$tmp/m.json"; post /test/misbehave "$tmp/m.json"
rc=0; mon >"$tmp/4.out" 2>"$tmp/4.err" || rc=$?
if [ "$rc" != 3 ] || ! grep -q "ALERT: .*signature that does not verify" "$tmp/4.err"; then
	cat "$tmp/4.out" "$tmp/4.err"; fail "a bad STH signature: exit $rc, wanted 3 and an alert"
fi

# 5: a log that rewrote entry 0: its new tree is not consistent with the state's.
echo '{"mode": "fork"}' >"$tmp/m.json"; post /test/misbehave "$tmp/m.json"
rc=0; mon >"$tmp/5.out" 2>"$tmp/5.err" || rc=$?
if [ "$rc" != 3 ] || ! grep -q "ALERT: .*not consistent" "$tmp/5.err"; then
	cat "$tmp/5.out" "$tmp/5.err"; fail "a forked log: exit $rc, wanted 3 and an alert"
fi
grep -q '"tree_size": 4' "$tmp/state.json" || fail "an alert moved the state file"

# 6: back to honest: the state moves on to 5 entries.
echo '{"mode": "none"}' >"$tmp/m.json"; post /test/misbehave "$tmp/m.json"
rc=0; mon >"$tmp/6.out" 2>&1 || rc=$?
if [ "$rc" != 0 ] || ! grep -q '"tree_size": 5' "$tmp/state.json"; then
	cat "$tmp/6.out"; fail "honest run after the alerts: exit $rc"
fi
# 7: without --once, a pass every --interval, each with its own summary.
post /test/add "$tmp/add_good.json"
timeout 4 "$CVM" ct monitor --log "$url" --log-key "$tmp/log.pem" --domain gw.test --acme-info "$tmp/acme-info.json" \
	--state "$tmp/state.json" --allow-insecure-http --interval 1 "${coll[@]}" >"$tmp/7.out" 2>&1 || true
passes="$(grep -c "entries read" "$tmp/7.out" || true)"
[ "$passes" -ge 2 ] || { cat "$tmp/7.out"; fail "--interval 1 for 4 s: $passes passes, wanted 2 or more"; }
grep -q "^1 entries read, 1 for the domains, 1 with a quoted key, 0 alerts" "$tmp/7.out" ||
	{ cat "$tmp/7.out"; fail "the first periodic pass did not read the new entry"; }
grep -q "^0 entries read" "$tmp/7.out" || { cat "$tmp/7.out"; fail "a later periodic pass read it again"; }

# 8: a walk that stopped half way (the state's "next" below its tree size) resumes there.
python3 - "$tmp/state.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["next"] == s["tree_size"] == 6, s
s["next"] = 4
json.dump(s, open(sys.argv[1], "w"))
PY
rc=0; mon >"$tmp/8.out" 2>&1 || rc=$?
if [ "$rc" != 0 ] || ! grep -q "^2 entries read, 1 for the domains, 1 with a quoted key" "$tmp/8.out"; then
	cat "$tmp/8.out"; fail "resuming at next=4 of 6: exit $rc"
fi
grep -q '"next": 6' "$tmp/state.json" || fail "the resumed walk did not move next to 6"

# 9: a certificate padded with more names than are kept is an alert, whatever its key: the domain
# could be among the names past the cap.
post /test/add "$tmp/add_many.json"
rc=0; mon >"$tmp/9.out" 2>"$tmp/9.err" || rc=$?
if [ "$rc" != 3 ] || ! grep -q "ALERT: log index 6: a certificate with more than 64 names" "$tmp/9.err"; then
	cat "$tmp/9.out" "$tmp/9.err"; fail "71 names: exit $rc, wanted 3 and an alert"
fi

# The outputs docs/cli/cvm-ct.md quotes, on request.
if [ -n "${CT_EXAMPLE_OUT:-}" ]; then
	for f in 1.out 1.err 2.err 4.err 5.err; do echo "== $f"; cat "$tmp/$f"; done >"$CT_EXAMPLE_OUT"
fi

# Usage errors exit 2: no domain; an http:// log without --allow-insecure-http.
rc=0; "$CVM" ct monitor --log "$url" --log-key "$tmp/log.pem" --acme-info "$tmp/acme-info.json" --once 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "no --domain: exit $rc, wanted 2"
rc=0; "$CVM" ct monitor --log "$url" --log-key "$tmp/log.pem" --domain gw.test --acme-info "$tmp/acme-info.json" \
	--once 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "http:// without --allow-insecure-http: exit $rc, wanted 2"
echo "ct_monitor: ok"
