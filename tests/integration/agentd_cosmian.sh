#!/usr/bin/env bash
# integration.agentd_cosmian: cvm-agentd answers Cosmian VM's read endpoints
# on its TLS listener as Cosmian's client expects them (the shapes of
# docs/daemons/cvm-agentd.md "Cosmian VM's endpoints"), each checked here by
# an independent tool:
#  - GET /quote/tee?nonce=B64: a JSON array of bytes that is a TDX quote
#    `cvm quote verify` accepts, whose report_data is the nonce followed by
#    SHA-256 of the certificate this very connection was served;
#  - GET /quote/tpm?nonce=B64: {"pcr_value_hash_method", "quote",
#    "signature", "public_key"} in that order, base64 without padding;
#    tpm2_checkquote (tpm2-tools, not cvmkit) verifies the signature by that
#    public key over the nonce and PCR 10 as tpm2_pcrread reads it;
#  - GET /ima/binary and /ima/ascii: the kernel lists byte for byte;
#  - GET /snapshot: 202 null while its file walk (of the agent's [snapshot]
#    mount_root) runs, then Cosmian's snapshot: the TDX policy of a quote
#    over zero report data (mr_td the simulator's), the TPM clock, the
#    walked files' and every IMA entry's (path, digest) once each; `cvm
#    snapshot show` reads it and `cvm snapshot --cosmian` carries it into a
#    snapshot of the same VM; DELETE clears it and the next GET walks again;
#  - bad requests: a 31-byte and a missing nonce (400), a 65-byte TPM nonce
#    (500 "Nonce too long"), POST (405); with [tls] cosmian_api = false the
#    paths are 404 and GetEvidence still answers; on SEV-SNP /quote/tee is
#    refused (501: no raw caller report data in an SNP report).
# Needs swtpm, tpm2-tools, python3.
# shellcheck disable=SC2015
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-cosmian.XXXXXX")"
# shellcheck source=tests/common/snapverify.sh
. "$SRC/tests/common/snapverify.sh"
trap 'sv_cleanup; rm -rf "$tmp"' EXIT
sv_need agentd_cosmian
command -v tpm2_checkquote >/dev/null 2>&1 || { echo "agentd_cosmian: FAIL: tpm2_checkquote is missing"; exit 1; }

"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "agentd_cosmian: FAIL: cvm sim init"; exit 1; }
sv_tpm_start "$tmp/tpm" || { echo "agentd_cosmian: FAIL: swtpm did not start"; exit 1; }
sv_agent_start "$tmp/sim" || { echo "agentd_cosmian: FAIL: cvm-agentd did not start"; exit 1; }

# get PATH [METHOD]: one request on a fresh TLS connection; writes the
# status to $tmp/status, the body to $tmp/body and the certificate the
# connection was served (DER) to $tmp/cert.der.
get() {
	python3 - "$SV_PORT" "$1" "${2:-GET}" "$tmp" <<'EOF'
import http.client, ssl, sys
port, path, method, d = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx, timeout=60)
c.request(method, path, body=b"" if method == "POST" else None)
r = c.getresponse()
open(d + "/cert.der", "wb").write(c.sock.getpeercert(binary_form=True))
open(d + "/body", "wb").write(r.read())
open(d + "/status", "w").write("%d %s" % (r.status, r.getheader("Content-Type", "")))
EOF
}
status() { cut -d' ' -f1 "$tmp/status"; }
# b64url N: N random bytes, as hex in $tmp/nonce.hex, printed as the
# urlencoded base64 without padding that Cosmian's client sends.
b64url() {
	python3 - "$1" "$tmp/nonce.hex" <<'EOF'
import base64, os, sys, urllib.parse
n = os.urandom(int(sys.argv[1]))
open(sys.argv[2], "w").write(n.hex())
print(urllib.parse.quote(base64.b64encode(n).decode().rstrip("="), safe=""))
EOF
}
# bytes_of OUT: $tmp/body, a JSON array of byte values, into OUT.
bytes_of() {
	python3 -c 'import json,sys; open(sys.argv[2],"wb").write(bytes(json.load(open(sys.argv[1]))))' "$tmp/body" "$1"
}

# --- /quote/tee ---
get "/quote/tee?nonce=$(b64url 32)"
if [ "$(status)" = 200 ] && bytes_of "$tmp/quote.bin"; then
	pass
	want="$(cat "$tmp/nonce.hex")$(sha256sum "$tmp/cert.der" | cut -d' ' -f1)"
	expect 0 "cvm quote verify of /quote/tee's quote" "$bin/cvm" quote verify "$tmp/quote.bin" \
		--collateral "$tmp/sim/collateral/tdx" --root "$tmp/sim/collateral/tdx/intel_sgx_root_ca.der" --json
	"$bin/cvm" quote verify "$tmp/quote.bin" --collateral "$tmp/sim/collateral/tdx" \
		--root "$tmp/sim/collateral/tdx/intel_sgx_root_ca.der" --json 2>/dev/null >"$tmp/verdict.json"
	got="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["report_data"])' "$tmp/verdict.json" 2>/dev/null)"
	[ "$got" = "$want" ] && pass ||
		fail "/quote/tee: report_data is '$got', expected nonce || SHA-256(this connection's certificate) = $want"
else
	fail "GET /quote/tee: $(cat "$tmp/status"), expected 200 and a JSON array"
	show "$tmp/body"
fi
get "/quote/tee?nonce=$(b64url 31)"
[ "$(status)" = 400 ] && grep -q '32 bytes' "$tmp/body" && grep -q 'text/plain' "$tmp/status" && pass ||
	fail "GET /quote/tee with a 31-byte nonce: $(cat "$tmp/status") '$(cat "$tmp/body")', expected a 400 saying 32 bytes, text/plain"
get "/quote/tee"
[ "$(status)" = 400 ] && pass || fail "GET /quote/tee without a nonce: $(cat "$tmp/status"), expected 400"
get "/quote/tee?nonce=$(b64url 32)" POST
[ "$(status)" = 405 ] && pass || fail "POST /quote/tee: $(cat "$tmp/status"), expected 405"

# --- /quote/tpm ---
get "/quote/tpm?nonce=$(b64url 48)"
if [ "$(status)" = 200 ] && python3 - "$tmp/body" "$tmp" <<'EOF'; then
import base64, json, struct, sys
o = json.load(open(sys.argv[1]))
assert list(o) == ["pcr_value_hash_method", "quote", "signature", "public_key"], list(o)
assert o["pcr_value_hash_method"] == "Sha256", o["pcr_value_hash_method"]
def d(s):
    assert "=" not in s, "padded base64"
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
open(sys.argv[2] + "/attest.bin", "wb").write(d(o["quote"]))
open(sys.argv[2] + "/sig.bin", "wb").write(d(o["signature"]))
pub = d(o["public_key"])
open(sys.argv[2] + "/ak.pub", "wb").write(struct.pack(">H", len(pub)) + pub)
EOF
	pass
	tpm2_pcrread sha256:10 -o "$tmp/pcrs.bin" >/dev/null 2>&1 || fail "tpm2_pcrread of PCR 10"
	if tpm2_checkquote -u "$tmp/ak.pub" -m "$tmp/attest.bin" -s "$tmp/sig.bin" -f "$tmp/pcrs.bin" \
		-l sha256:10 -g sha256 -q "$(cat "$tmp/nonce.hex")" >"$tmp/out" 2>&1; then
		pass
	else
		fail "tpm2_checkquote rejects /quote/tpm's quote (AK, nonce, PCR 10):"
		show "$tmp/out"
	fi
	# the same quote checked against another nonce must fail (the check is real)
	if tpm2_checkquote -u "$tmp/ak.pub" -m "$tmp/attest.bin" -s "$tmp/sig.bin" -f "$tmp/pcrs.bin" \
		-l sha256:10 -g sha256 -q "00$(cut -c3- "$tmp/nonce.hex")" >"$tmp/out" 2>&1; then
		fail "tpm2_checkquote accepts /quote/tpm's quote for another nonce"
	else
		pass
	fi
else
	fail "GET /quote/tpm: $(cat "$tmp/status"), expected 200 and Cosmian's four fields in order"
	show "$tmp/body"
fi
get "/quote/tpm?nonce=$(b64url 65)"
[ "$(status)" = 500 ] && grep -q 'Nonce too long' "$tmp/body" && pass ||
	fail "GET /quote/tpm with 65 bytes: $(cat "$tmp/status") '$(cat "$tmp/body")', expected 500 Nonce too long"

# --- /ima/binary, /ima/ascii ---
get /ima/binary
[ "$(status)" = 200 ] && bytes_of "$tmp/ima.bin" && cmp -s "$tmp/ima.bin" "$SV_IMA" && pass ||
	fail "GET /ima/binary is not the binary list byte for byte ($(cat "$tmp/status"))"
get /ima/ascii
[ "$(status)" = 200 ] &&
	python3 -c 'import json,sys; open(sys.argv[2],"wb").write(json.load(open(sys.argv[1])).encode())' \
		"$tmp/body" "$tmp/ima.ascii" &&
	cmp -s "$tmp/ima.ascii" "$(dirname "$SV_IMA")/ascii_runtime_measurements" && pass ||
	fail "GET /ima/ascii is not the ascii list ($(cat "$tmp/status"))"

# --- /snapshot: Cosmian's snapshot of this VM, read back by cvm ---
# The agent walks a small guest tree (its [snapshot] mount_root).
sv_agent_stop
g="$tmp/guest"
mkdir -p "$g/usr/bin" "$g/etc"
printf 'hello\n' >"$g/usr/bin/hello"
printf 'x = 1\n' >"$g/etc/app.conf"
printf '[snapshot]\nmount_root = %s\n' "$g" >"$tmp/walk.conf"
sv_agent_start "$tmp/sim" --config "$tmp/walk.conf" || fail "cvm-agentd with a [snapshot] mount_root did not start"
get /snapshot
[ "$(status)" = 202 ] && [ "$(cat "$tmp/body")" = null ] && pass ||
	fail "the first GET /snapshot: $(cat "$tmp/status") '$(cat "$tmp/body")', expected 202 null (ordered)"
for _ in $(seq 100); do
	get /snapshot
	[ "$(status)" = 202 ] || break
	sleep 0.2
done
if [ "$(status)" = 200 ] && cp "$tmp/body" "$tmp/cosmian.json" &&
	python3 - "$tmp/cosmian.json" "$g" "$SV_IMA" "$tmp/sim" <<'EOF'; then
import hashlib, json, struct, sys
d = json.load(open(sys.argv[1]))
assert list(d) == ["cloud_type", "tee_policy", "tpm_policy", "filehashes"], list(d)
assert d["cloud_type"] is None
body = d["tee_policy"]["Tdx"]["body"]
assert body["report_data"] == "00" * 64, "the snapshot's quote is over zero report data"
mrtd = json.load(open(sys.argv[4] + "/sim.json"))["tdx"]["mrtd"]
assert body["mr_td"] == mrtd, (body["mr_td"], mrtd)
assert isinstance(d["tpm_policy"]["reset_count"], int) and isinstance(d["tpm_policy"]["restart_count"], int)
pairs = {tuple(p) for p in d["filehashes"]}
assert len(pairs) == len(d["filehashes"]), "a pair twice"
for rel in ("usr/bin/hello", "etc/app.conf"):
    h = hashlib.sha256(open(sys.argv[2] + "/" + rel, "rb").read()).hexdigest()
    assert ("/" + rel, h) in pairs, ("/" + rel, h)
# every IMA entry's (name, file digest) is in the set
ima, i, n = open(sys.argv[3], "rb").read(), 0, 0
while i < len(ima):
    i += 24
    nl, = struct.unpack_from("<I", ima, i); i += 4 + nl
    dl, = struct.unpack_from("<I", ima, i); i += 4
    data = ima[i:i + dl]; i += dl
    l1, = struct.unpack_from("<I", data, 0)
    l2, = struct.unpack_from("<I", data, 4 + l1)
    dig = data[4:4 + l1].split(b"\0", 1)[1].hex()
    name = data[8 + l1:8 + l1 + l2].rstrip(b"\0").decode()
    assert (name, dig) in pairs, (name, dig)
    n += 1
assert n > 500
EOF
	pass
else
	fail "GET /snapshot after the walk: $(cat "$tmp/status"), expected 200 and Cosmian's snapshot of this VM"
	head -c 600 "$tmp/body" >&2
fi
# cvm reads it, and carries it into a snapshot of this very VM
expect 0 "cvm snapshot show of the agent's Cosmian snapshot" "$bin/cvm" snapshot show "$tmp/cosmian.json"
has "tee policy: TDX" "cvm snapshot show of the agent's Cosmian snapshot"
expect 0 "cvm snapshot --cosmian of the agent's own Cosmian snapshot" sv_snapshot "$tmp/sim" "$tmp/carried.json" \
	--cosmian "$tmp/cosmian.json"
get /snapshot DELETE
[ "$(status)" = 200 ] && [ "$(cat "$tmp/body")" = null ] && pass ||
	fail "DELETE /snapshot: $(cat "$tmp/status") '$(cat "$tmp/body")', expected 200 null"
get /snapshot
[ "$(status)" = 202 ] && pass || fail "GET /snapshot after DELETE: $(cat "$tmp/status"), expected 202 (a new walk)"

# --- off by config: 404, and GetEvidence still answers ---
sv_agent_stop
printf '[tls]\ncosmian_api = false\n' >"$tmp/agent.conf"
sv_agent_start "$tmp/sim" --config "$tmp/agent.conf" || fail "cvm-agentd with cosmian_api = false did not start"
get /ima/binary
[ "$(status)" = 404 ] && pass || fail "GET /ima/binary with cosmian_api = false: $(cat "$tmp/status"), expected 404"
get "/GetEvidence?nonce=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
[ "$(status)" = 200 ] && pass || fail "GetEvidence beside the Cosmian paths: $(cat "$tmp/status"), expected 200"

# --- SEV-SNP: no raw caller report data ---
sv_agent_stop
sv_agent_start "$tmp/sim" --platform snp || fail "cvm-agentd on the simulated SEV-SNP did not start"
get "/quote/tee?nonce=$(b64url 32)"
[ "$(status)" = 501 ] && grep -q 'TDX only' "$tmp/body" && pass ||
	fail "GET /quote/tee on SEV-SNP: $(cat "$tmp/status") '$(cat "$tmp/body")', expected 501 (TDX only)"

sv_finish agentd_cosmian
