#!/usr/bin/env bash
# cvm app hash against the real app-compose files (compat/app-compose: A-D1
# compact, A-D2 vmm-cli indent 4, A-D3's app_compose string written out
# here), text and --json:
#  - compose_hash is what expectations.json states; the app id is its first
#    20 bytes unless --app-id gives one;
#  - MRCONFIGID v1, v2 and v3, the MrConfigV3 document, QEMU's base64 and
#    SEV-SNP HOST_DATA equal what Python computes here on its own (hashlib,
#    json.dumps with sorted keys for JCS, and a Keccak-256 written here and
#    checked against the empty-string vector first);
#  - A-D2's v1 is the MRCONFIGID of its real quote (quote.json);
#  - the layout is named; a trailing newline and a non-vmm-cli layout are
#    warned about on stderr; the text output names every value;
#  - a bad file exits 1 naming the key ("kms_enable", with the hint and
#    --lax), --lax accepts an unknown key, a missing file exits 1, usage
#    errors exit 2.
# Needs: $CVM_BIN/cvm, tests/vectors/compat/app-compose, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
V="$VECTORS/compat/app-compose"
vectors_require compat/app-compose/expectations.json compat/app-compose/near-mpc-test-utils/quote.json
if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to compute the expected values" >&2
	exit 77
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

# expect_rc WANT DESC CMD...: runs CMD (stdout to $tmp/out, stderr to $tmp/err).
expect_rc() {
	local want="$1" desc="$2" rc=0
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$desc: exit $rc, expected $want; stderr: $(head -c 400 "$tmp/err")"
		return 1
	fi
	pass
}

python3 - "$V/near-mpc-attestation/tcb_info_dev.json" "$tmp/dev.json" <<'EOF'
import json, sys
open(sys.argv[2], "wb").write(json.load(open(sys.argv[1]))["app_compose"].encode())
EOF

# The independent computation: check.py FILE JSON_OUTPUT ITEM LAYOUT [APP_ID]
cat >"$tmp/check.py" <<'EOF'
import base64, hashlib, json, sys

def keccak256(data):
    rc = [0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
          0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
          0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
          0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
          0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
          0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008]
    rot = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61],
           [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]]
    mask = (1 << 64) - 1
    rol = lambda v, n: ((v << n) | (v >> (64 - n))) & mask if n else v
    def perm(a):
        for c in rc:
            col = [a[x][0] ^ a[x][1] ^ a[x][2] ^ a[x][3] ^ a[x][4] for x in range(5)]
            d = [col[(x - 1) % 5] ^ rol(col[(x + 1) % 5], 1) for x in range(5)]
            a = [[a[x][y] ^ d[x] for y in range(5)] for x in range(5)]
            b = [[0] * 5 for _ in range(5)]
            for x in range(5):
                for y in range(5):
                    b[y][(2 * x + 3 * y) % 5] = rol(a[x][y], rot[x][y])
            a = [[b[x][y] ^ ((~b[(x + 1) % 5][y]) & b[(x + 2) % 5][y]) for y in range(5)] for x in range(5)]
            a[0][0] ^= c
        return a
    msg = bytearray(data) + b"\x01"
    while len(msg) % 136:
        msg += b"\x00"
    msg[-1] |= 0x80
    a = [[0] * 5 for _ in range(5)]
    for off in range(0, len(msg), 136):
        for i in range(17):
            a[i % 5][i // 5] ^= int.from_bytes(msg[off + 8 * i:off + 8 * i + 8], "little")
        a = perm(a)
    return b"".join(a[i % 5][i // 5].to_bytes(8, "little") for i in range(4))

assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"

path, out, item, layout = sys.argv[1:5]
raw = open(path, "rb").read()
got = json.load(open(out))
exp = json.load(open(sys.argv[5]))["items"][int(item)]["expect"]
stated = next(v for k, v in exp.items() if k.startswith("compose_hash") or k.startswith("sha256(app_compose"))[:64]
h = hashlib.sha256(raw).digest()
assert h.hex() == stated, (h.hex(), stated)
assert got["compose_hash"] == stated
app_id = bytes.fromhex(sys.argv[6]) if len(sys.argv) > 6 else h[:20]
assert got["app_id"] == app_id.hex(), got["app_id"]
assert got["app_id_source"] == ("given" if len(sys.argv) > 6 else "default")
assert got["layout"] == layout, got["layout"]
assert got["bytes"] == len(raw)
doc = json.loads(raw)
kp = doc.get("key_provider") or ("kms" if doc.get("kms_enabled") else
                                 "local" if doc.get("local_key_provider_enabled") else "none")
assert got["key_provider"] == kp
kpid = bytes.fromhex(doc.get("key_provider_id", ""))
v1 = b"\x01" + h + bytes(15)
kbyte = {"none": 0, "local": 1, "kms": 2, "tpm": 3}[kp]
v2 = b"\x02" + keccak256(h + app_id + bytes([kbyte]) + kpid) + bytes(15)
m = {"app_id": app_id.hex(), "compose_hash": h.hex(), "key_provider": kp, "version": 3}
if kpid:
    m["key_provider_id"] = kpid.hex()
text = json.dumps(m, sort_keys=True, separators=(",", ":"))
assert got["mr_config_v3"] == text, (got["mr_config_v3"], text)
hd = hashlib.sha256(b"dstack-mr-config-v3:\x00" + text.encode()).digest()
v3 = b"\x03" + hd + bytes(15)
for name, want in (("v1", v1), ("v2", v2), ("v3", v3)):
    assert got["mrconfigid"][name] == want.hex(), name
    assert base64.b64decode(got["mrconfigid_base64"][name]) == want, name
assert got["snp_host_data"] == hd.hex()
assert base64.b64decode(got["snp_host_data_base64"]) == hd
q = (v1, v2, v3)[got["qemu_layout"] - 1]
assert got["qemu_layout"] == (1 if not kpid else 3)
assert base64.b64decode(got["qemu_mrconfigid"]) == q
assert got["gpu_policy_hash"] == hashlib.sha256(b"{}").hexdigest()
print("ok")
EOF

files=("$V/dstack-examples-rtmr3-based/app-compose.json" "$V/near-mpc-test-utils/app_compose.json" "$tmp/dev.json")
layouts=(compact vmm-cli vmm-cli)
for i in 0 1 2; do
	f="${files[$i]}"
	expect_rc 0 "hash --json item $i" "$CVM" app hash --json "$f" || continue
	cp "$tmp/out" "$tmp/j$i.json"
	if python3 "$tmp/check.py" "$f" "$tmp/j$i.json" "$i" "${layouts[$i]}" "$V/expectations.json" >"$tmp/py" 2>&1; then
		pass
	else
		fail "item $i: $(cat "$tmp/py")"
	fi
	if [ "${layouts[$i]}" = compact ]; then
		grep -q "not in the layout dstack's vmm-cli.py writes" "$tmp/err" && pass || fail "item $i: no layout warning"
	else
		[ ! -s "$tmp/err" ] && pass || fail "item $i: unexpected stderr: $(cat "$tmp/err")"
	fi
	# --app-id (a KMS deployment's contract address) changes v2 and v3, not v1
	aid=00112233445566778899aabbccddeeff00112233
	expect_rc 0 "hash --app-id item $i" "$CVM" app hash --json --app-id "0x$aid" "$f" || continue
	python3 "$tmp/check.py" "$f" "$tmp/out" "$i" "${layouts[$i]}" "$V/expectations.json" "$aid" >"$tmp/py" 2>&1 &&
		pass || fail "item $i --app-id: $(cat "$tmp/py")"
	# the text form names every value
	expect_rc 0 "hash text item $i" "$CVM" app hash "$f" || continue
	for k in compose_hash app_id key_provider mrconfigid_v1 mrconfigid_v2 mrconfigid_v3 mr_config_v3 \
		qemu_mrconfigid snp_host_data gpu_policy_hash; do
		grep -q "^$k " "$tmp/out" && pass || fail "item $i text: no $k line"
	done
	python3 - "$tmp/out" "$tmp/j$i.json" >"$tmp/py" 2>&1 <<'EOF' && pass || fail "item $i text/json differ: $(cat "$tmp/py")"
import json, sys
text = {l.split()[0]: l.split()[1] for l in open(sys.argv[1]) if l[:1] not in (" ", "") and len(l.split()) > 1}
j = json.load(open(sys.argv[2]))
assert text["compose_hash"] == j["compose_hash"]
assert text["mrconfigid_v2"] == j["mrconfigid"]["v2"]
assert text["mr_config_v3"] == j["mr_config_v3"]
EOF
done

# A-D2's layout 1 is the MRCONFIGID of its real TDX quote.
python3 - "$V/near-mpc-test-utils/quote.json" "$tmp/j1.json" >"$tmp/py" 2>&1 <<'EOF' && pass || fail "quote MRCONFIGID: $(cat "$tmp/py")"
import json, sys
q = bytes(json.load(open(sys.argv[1])))
assert q[48 + 184:48 + 232].hex() == json.load(open(sys.argv[2]))["mrconfigid"]["v1"]
EOF

# A trailing newline: warned, and another hash.
cp "$V/near-mpc-test-utils/app_compose.json" "$tmp/nl.json"
echo >>"$tmp/nl.json"
expect_rc 0 "trailing newline" "$CVM" app hash --json "$tmp/nl.json" &&
	grep -q "trailing newline" "$tmp/err" && pass || fail "no trailing-newline warning: $(cat "$tmp/err")"
python3 - "$tmp/out" "$tmp/j1.json" <<'EOF' && pass || fail "trailing newline: same hash"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["compose_hash"] != b["compose_hash"] and a["trailing_newline"] and not b["trailing_newline"]
EOF
expect_rc 0 "quiet" "$CVM" app hash -q "$tmp/nl.json" && [ ! -s "$tmp/err" ] && pass || fail "-q still warns"

# Bad files: exit 1, the message names the key.
sed 's/"kms_enabled"/"kms_enable"/' "$V/dstack-examples-rtmr3-based/app-compose.json" >"$tmp/typo.json"
expect_rc 1 "unknown key" "$CVM" app hash "$tmp/typo.json" &&
	grep -q 'key "kms_enable" is not an app-compose key (did you mean "kms_enabled"?)' "$tmp/err" &&
	grep -q -- "--lax" "$tmp/err" && pass || fail "unknown key message: $(cat "$tmp/err")"
expect_rc 0 "--lax" "$CVM" app hash --lax "$tmp/typo.json" && grep -q "not in dstack's schema" "$tmp/err" &&
	pass || fail "--lax warning: $(cat "$tmp/err")"
sed 's/"public_logs": true/"public_logs": "yes"/' "$V/near-mpc-test-utils/app_compose.json" >"$tmp/type.json"
expect_rc 1 "wrong type" "$CVM" app hash --json "$tmp/type.json" &&
	grep -q 'key "public_logs" must be true or false, not a string' "$tmp/err" && [ ! -s "$tmp/out" ] &&
	pass || fail "wrong type message: $(cat "$tmp/err")"
printf '{"manifest_version":2,"name":"a","name":"b","runner":"bash","bash_script":""}' >"$tmp/dup.json"
expect_rc 1 "duplicate key" "$CVM" app hash "$tmp/dup.json" && grep -q "duplicate" "$tmp/err" && pass ||
	fail "duplicate message: $(cat "$tmp/err")"
expect_rc 1 "missing file" "$CVM" app hash "$tmp/nonexistent.json" || true
head -c 300000 /dev/zero | tr '\0' ' ' >"$tmp/big.json"
expect_rc 1 "oversize file" "$CVM" app hash "$tmp/big.json" || true

# Usage.
expect_rc 2 "no FILE" "$CVM" app hash || true
expect_rc 2 "two FILEs" "$CVM" app hash "$tmp/dev.json" "$tmp/dev.json" || true
expect_rc 2 "bad --app-id" "$CVM" app hash --app-id 1234 "$tmp/dev.json" || true
expect_rc 2 "bad --instance-id" "$CVM" app hash --instance-id zz "$tmp/dev.json" || true
expect_rc 2 "unknown option" "$CVM" app hash --bogus "$tmp/dev.json" || true
expect_rc 0 "help" "$CVM" app hash --help && grep -q "cvm app hash" "$tmp/out" && pass || fail "help text"
# --instance-id and --gpu reach the document
expect_rc 0 "instance id" "$CVM" app hash --json --gpu --instance-id 4444444444444444444444444444444444444444 \
	"$tmp/dev.json" &&
	python3 -c 'import json,sys; d=json.loads(json.load(open(sys.argv[1]))["mr_config_v3"]); assert d["instance_id"]=="44"*20 and len(d["gpu_policy_hash"])==64' \
		"$tmp/out" && pass || fail "--instance-id/--gpu not in the document"

if [ "$failures" -ne 0 ]; then
	echo "app_hash: $failures failure(s), $checks checks passed" >&2
	exit 1
fi
echo "app_hash: all $checks checks passed"
