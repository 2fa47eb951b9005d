#!/usr/bin/env bash
# cvm attestation show|verify on dstack's VersionedAttestation:
#  - show --json on V-D1 (compat/versioned-attestation/dstack-simulator/
#    attestation.bin) gives what its expectations.json states: V0 SCALE,
#    DstackTdx, a 5010-byte quote, 33 events, the 9 runtime events with their
#    payloads, zero report data equal to the quote's, RTMR3 of the quote
#    f28a1490... replayed from the runtime events (checked here with python3's
#    hashlib, not with cvmkit), MRCONFIGID = 01 || compose hash || 15 zero
#    bytes, the config document (its SHA-256 recomputed here); the quote
#    fields under the names of cvm quote show --json;
#  - the same file as hex text decodes to the same JSON, and re-encoded as
#    MessagePack (V1, by a small writer here) to the same content;
#  - verify on V-D1 without collateral exits 3, says the quote cannot be
#    verified, and shows the RTMR3 replay line as OK; --report-data is
#    compared;
#  - a runtime event changed by one byte (storage-fs "zfs" -> "zfz") is
#    caught: the RTMR3 replay differs, verify rejects it on that step;
#  - simulated evidence (TDX with runtime events, SEV-SNP) in V1 attestations
#    verifies with the simulator's collateral and root (first line SIMULATED);
#    a missing runtime event, or an mr_config document HOST_DATA does not
#    bind, is rejected;
#  - a truncated file and a file with a trailing byte are refused with a
#    message; usage errors exit 2.
# Needs: $CVM_BIN/cvm, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
VA_REL=compat/versioned-attestation/dstack-simulator/attestation.bin
vectors_require "$VA_REL" compat/versioned-attestation/expectations.json
VA="$VECTORS/$VA_REL"

if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed to read the JSON output and replay RTMR3" >&2
	exit 77
fi
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
# verify without --collateral takes the cache: an empty one of its own, never the default under
# /var/cache or ~/.cache, and no upstream
export CVM_COLLATERAL_CACHE="$tmp/collateral-cache"
unset CVM_INTEL_URL CVM_AMD_URL

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
		fail "'$*' exited $rc, expected $want: $(head -c 600 "$tmp/err") $(head -c 1200 "$tmp/out")"
		return 1
	fi
	pass
}

# ---- show --json on V-D1 against its expectations ----------------------------
if expect_rc 0 "$CVM" attestation show "$VA" --json; then
	cp "$tmp/out" "$tmp/show.json"
	python3 - "$tmp/show.json" <<'PY' && pass || fail "attestation show --json on V-D1 differs from expectations.json"
import hashlib, json, sys

j = json.load(open(sys.argv[1]))
errs = []


def want(name, got, exp):
    if got != exp:
        errs.append("%s: got %r, expected %r" % (name, got, exp))


# Values from tests/vectors/compat/versioned-attestation/expectations.json.
RTMR3 = "f28a1490ee924e9396c2ccf2d93ad536b83cbe159a1d45024d1fd7acdcc102145efcfcd0cfa209416446c70226affadf"
COMPOSE = "c143116fef3940e7f776bfc0919c256232ae5338a6e948c96b711e0b2383483a"
want("version", j["version"], 0)
want("encoding", j["encoding"], "scale")
want("variant", j["variant"], 0)
want("platform", j["platform"], "dstack-tdx")
want("tee", j["tee"], "tdx")
want("quote_len", j["quote_len"], 5010)
want("event_count", j["event_count"], 33)
want("len(events)", len(j["events"]), 33)
want("runtime_event_count", j["runtime_event_count"], 9)
names = [e["event"] for e in j["runtime_events"]]
want("runtime event names", names, ["system-preparing", "app-id", "compose-hash", "instance-id", "boot-mr-done",
                                    "os-image-hash", "key-provider", "storage-fs", "system-ready"])
rt = {e["event"]: e for e in j["runtime_events"]}
want("app-id", rt["app-id"]["payload"], "5bb4ff9a3837357f19dc176407a5709c62eb6c56")
want("compose-hash", rt["compose-hash"]["payload"], COMPOSE)
want("instance-id", rt["instance-id"]["payload"], "1691ed1b47506cad7d08834668691d88246f5b1f")
want("os-image-hash", rt["os-image-hash"]["payload"],
     "e61be43dd1cc6a6f5edefd7c51b608983780839b0000ce60dd99737dcffe09b9")
want("storage-fs", rt["storage-fs"].get("payload_text"), "zfs")
kp = json.loads(bytes.fromhex(rt["key-provider"]["payload"]))
want("key-provider name", kp.get("name"), "kms")
if not kp.get("id", "").startswith("3059"):
    errs.append("key-provider id does not start with an SPKI (3059...): %r" % kp.get("id"))
for e in ("system-preparing", "boot-mr-done", "system-ready"):
    want(e + " payload", rt[e]["payload"], "")
# the 33 events: boot events (imr 0..2, no name) and the RTMR3 runtime events
boot = [e for e in j["events"] if e["imr"] < 3]
want("boot events have no name", sorted({e["event"] for e in boot}), [""])
rt3 = [e["event"] for e in j["events"] if e["imr"] == 3 and e["event_type"] == 0x08000001]
want("RTMR3 events of the log", rt3, names)
want("attestation_report_data", j["attestation_report_data"], "00" * 64)
want("report_data (quote)", j["report_data"], "00" * 64)
want("report_data_matches_quote", j["report_data_matches_quote"], True)
# RTMR3: the quote's, and an independent replay of the runtime events (V1 digest).
want("rtmr3 (quote)", j["rtmr3"], RTMR3)
mr = bytes(48)
for e in j["runtime_events"]:
    d = hashlib.sha384((0x08000001).to_bytes(4, "little") + b":" + e["event"].encode() + b":" +
                       bytes.fromhex(e["payload"])).digest()
    mr = hashlib.sha384(mr + d).digest()
want("independent replay", mr.hex(), RTMR3)
want("runtime_replay.rtmr3", j["runtime_replay"]["rtmr3"], RTMR3)
want("runtime_replay.matches_quote", j["runtime_replay"]["matches_quote"], True)
want("event_log_replay rtmr3", j["event_log_replay"]["registers"]["rtmr3"]["state"], "matches")
want("event_log_replay.ok", j["event_log_replay"]["ok"], True)
# MRCONFIGID = 01 || compose hash || 15 zero bytes
want("mr_config_id", j["mr_config_id"], "01" + COMPOSE + "00" * 15)
want("mr_config.layout", j["mr_config"]["layout"], 1)
want("mr_config.compose_hash", j["mr_config"]["compose_hash"], COMPOSE)
want("mr_config.matches_compose_hash_event", j["mr_config"]["matches_compose_hash_event"], True)
# the config: the whole sys-config JSON of an old image, and its SHA-256
cfg = j["config"]
want("config.len", cfg["len"], len(cfg["text"]))
want("config.sha256", cfg["sha256"], hashlib.sha256(cfg["text"].encode()).hexdigest())
doc = json.loads(cfg["text"])
for k in ("kms_urls", "gateway_urls", "pccs_url", "docker_registry", "host_api_url", "vm_config"):
    if k not in doc:
        errs.append("config lacks %s" % k)
# the quote fields under cvm quote show's names
for k in ("mr_td", "rtmr0", "rtmr1", "rtmr2", "mr_owner", "td_attributes", "xfam", "mr_seam"):
    if not isinstance(j.get(k), str) or len(j[k]) % 2:
        errs.append("quote field %s missing" % k)
want("quote_version", j["quote_version"], 4)
want("verified", j["verified"], False)
if errs:
    print("\n".join(errs), file=sys.stderr)
    sys.exit(1)
PY
fi

# ---- the same attestation as hex text -----------------------------------------
python3 -c 'import sys; open(sys.argv[2], "w").write(open(sys.argv[1], "rb").read().hex() + "\n")' "$VA" "$tmp/va.hex"
if expect_rc 0 "$CVM" attestation show "$tmp/va.hex" --json; then
	python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == json.load(open(sys.argv[2]))' \
		"$tmp/out" "$tmp/show.json" && pass || fail "hex text decodes differently from the binary file"
fi

# A small MessagePack writer (maps, strings, bytes, unsigned integers, arrays)
# for the attestations this test makes.
cat >"$tmp/mp.py" <<'PY'
def pack(v):
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        assert 0 <= v < 2**32
        return bytes([v]) if v < 128 else b"\xce" + v.to_bytes(4, "big")
    if isinstance(v, str):
        e = v.encode()
        return (bytes([0xA0 | len(e)]) if len(e) < 32 else b"\xdb" + len(e).to_bytes(4, "big")) + e
    if isinstance(v, bytes):
        return b"\xc6" + len(v).to_bytes(4, "big") + v
    if isinstance(v, list):
        return b"\xdd" + len(v).to_bytes(4, "big") + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(pack(k) + pack(x) for k, x in v.items())
    raise TypeError(v)
PY

# ---- the same attestation as MessagePack (V1) ------------------------------------
# Re-encoded here from the V0 file (its quote at bytes 4.., a SCALE compact
# length of 5010 before it) and show's JSON (events, runtime events, report
# data, config) with a small MessagePack writer, in dstack's V1 layout
# {version, platform {kind, data {quote, event_log}}, stack {kind, data
# {report_data, runtime_events, config}}}: it must decode to the same content.
PYTHONPATH="$tmp" python3 - "$VA" "$tmp/show.json" "$tmp/va1.bin" <<'PY'
import json, sys


from mp import pack


b = open(sys.argv[1], "rb").read()
assert b[:2] == b"\x00\x00" and b[2:4] == ((5010 << 2) | 1).to_bytes(2, "little")
quote = b[4:4 + 5010]
j = json.load(open(sys.argv[2]))
events = [{"imr": e["imr"], "event_type": e["event_type"], "digest": bytes.fromhex(e["digest"]),
           "event": e["event"], "event_payload": bytes.fromhex(e["event_payload"])} for e in j["events"]]
rt = [{"event": e["event"], "payload": bytes.fromhex(e["payload"])} for e in j["runtime_events"]]
doc = {"version": 1,
       "platform": {"kind": "tdx", "data": {"quote": quote, "event_log": events}},
       "stack": {"kind": "dstack", "data": {"report_data": bytes.fromhex(j["attestation_report_data"]),
                                            "runtime_events": rt, "config": j["config"]["text"]}}}
open(sys.argv[3], "wb").write(pack(doc))
PY
if expect_rc 0 "$CVM" attestation show "$tmp/va1.bin" --json; then
	python3 - "$tmp/out" "$tmp/show.json" <<'PY' && pass || fail "the V1 (MessagePack) form decodes to other content than V0"
import json, sys
v1, v0 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert v1["version"] == 1 and v1["encoding"] == "msgpack", (v1["version"], v1["encoding"])
for k in ("version", "encoding"):
    del v1[k], v0[k]
diff = [k for k in set(v0) | set(v1) if v0.get(k) != v1.get(k)]
assert not diff, diff
PY
fi

# ---- attestations over simulated evidence, verified with its collateral ---------
# A TDX quote from the simulator whose RTMR3 holds two runtime events, in a V1
# attestation with those events: accepted with the simulator's root (first
# line SIMULATED); one event fewer: rejected on the RTMR3 replay. An SEV-SNP
# report in V1 with an empty mr_config document: accepted; with a document
# whose hash is not the report's HOST_DATA (zero in the simulator): rejected
# on that step.
D="$tmp/platform"
expect_rc 0 "$CVM" sim init "$D"
RD=$(python3 -c 'print("".join("%02x" % ((3 * i + 7) & 255) for i in range(64)))')
python3 - >"$tmp/digests" <<'PY'
import hashlib
for name, payload in (("app-id", bytes(20)), ("system-ready", b"")):
    print(hashlib.sha384((0x08000001).to_bytes(4, "little") + b":" + name.encode() + b":" + payload).hexdigest())
PY
while read -r d; do
	expect_rc 0 "$CVM" sim extend "$D" --rtmr 3 --digest "$d"
done <"$tmp/digests"
expect_rc 0 "$CVM" sim quote "$D" --report-data "$RD" --out "$tmp/sim-tdx.quote"
expect_rc 0 "$CVM" sim quote "$D" --snp --report-data "$RD" --out "$tmp/sim-snp.report"
PYTHONPATH="$tmp" python3 - "$tmp" "$RD" <<'PY'
import sys
from mp import pack
t, rd = sys.argv[1], bytes.fromhex(sys.argv[2])
rt = [{"event": "app-id", "payload": bytes(20)}, {"event": "system-ready", "payload": b""}]
ev = [{"imr": 3, "event_type": 0x08000001, "digest": b"", "event": e["event"], "event_payload": e["payload"]}
      for e in rt]


def va(platform, events):
    return pack({"version": 1, "platform": platform,
                 "stack": {"kind": "dstack", "data": {"report_data": rd, "runtime_events": events, "config": "{}"}}})


q = open(t + "/sim-tdx.quote", "rb").read()
open(t + "/sim-tdx.va", "wb").write(va({"kind": "tdx", "data": {"quote": q, "event_log": ev}}, rt))
open(t + "/sim-tdx-short.va", "wb").write(va({"kind": "tdx", "data": {"quote": q, "event_log": ev[:1]}}, rt[:1]))
r = open(t + "/sim-snp.report", "rb").read()
for name, doc in (("sim-snp.va", ""), ("sim-snp-doc.va", '{"version":3,"compose_hash":"00"}')):
    open(t + "/" + name, "wb").write(va({"kind": "sev-snp", "data": {"report": r, "cert_chain": [], "mr_config": doc}}, rt))
PY
SIMLINE="SIMULATED TEE: this evidence comes from cvmkit's simulator, not from hardware"
TDXC=(--collateral "$D/collateral/tdx" --root "$D/collateral/tdx/intel_sgx_root_ca.der")
SNPC=(--collateral "$D/collateral/snp" --root "$D/collateral/snp/ark.pem")
if expect_rc 0 "$CVM" attestation verify "$tmp/sim-tdx.va" "${TDXC[@]}" --report-data "$RD"; then
	[ "$(head -1 "$tmp/out")" = "$SIMLINE" ] && pass || fail "simulated TDX attestation: first line $(head -1 "$tmp/out")"
	grep -q "^  OK    rtmr3: 2 runtime events replay to the quote's RTMR3" "$tmp/out" && pass ||
		fail "simulated TDX attestation: no RTMR3 line: $(cat "$tmp/out")"
	grep -q "^verdict: accepted (dstack-tdx, TCB UpToDate, RTMR3 replayed)" "$tmp/out" && pass ||
		fail "simulated TDX attestation: $(tail -1 "$tmp/out")"
fi
if expect_rc 3 "$CVM" attestation verify "$tmp/sim-tdx-short.va" "${TDXC[@]}"; then
	grep -q "FAIL  rtmr3: 1 runtime events replay to a value that is NOT the quote's RTMR3" "$tmp/out" && pass ||
		fail "an attestation missing an event is not rejected on RTMR3: $(cat "$tmp/out")"
fi
if expect_rc 3 "$CVM" attestation verify "$tmp/sim-tdx.va" --collateral "$D/collateral/tdx"; then
	[ "$(head -1 "$tmp/out")" = "$SIMLINE" ] && pass || fail "simulated TDX without --root: first line $(head -1 "$tmp/out")"
fi
if expect_rc 0 "$CVM" attestation verify "$tmp/sim-snp.va" "${SNPC[@]}" --json; then
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["simulated"] and j["verdict"] == "accepted" and j["tee"] == "snp", j' \
		"$tmp/out" && pass || fail "simulated SNP attestation: $(head -c 400 "$tmp/out")"
fi
if expect_rc 3 "$CVM" attestation verify "$tmp/sim-snp-doc.va" "${SNPC[@]}"; then
	grep -q 'FAIL  mr_config: SHA-256("dstack-mr-config-v3:" || 00 || the mr_config document) is NOT what HOST_DATA holds' \
		"$tmp/out" && pass || fail "an mr_config document that HOST_DATA does not bind is not rejected: $(cat "$tmp/out")"
fi

# ---- show, text ---------------------------------------------------------------
if expect_rc 0 "$CVM" attestation show "$VA"; then
	grep -q "^attestation: VersionedAttestation V0, dstack-tdx, tdx" "$tmp/out" && pass ||
		fail "show: first line: $(head -1 "$tmp/out")"
	grep -q "equals the compose-hash event" "$tmp/out" && pass || fail "show: MRCONFIGID not decoded"
	grep -q "RTMR3 matches the quote" "$tmp/out" && pass || fail "show: no RTMR3 replay line"
fi

# ---- verify without collateral --------------------------------------------------
if expect_rc 3 "$CVM" attestation verify "$VA"; then
	grep -q "FAIL  quote: no --collateral given" "$tmp/out" && pass ||
		fail "verify without collateral does not say the quote cannot be verified: $(cat "$tmp/out")"
	grep -q "^  OK    rtmr3: 9 runtime events replay to the quote's RTMR3" "$tmp/out" && pass ||
		fail "verify without collateral shows no RTMR3 replay line: $(cat "$tmp/out")"
	grep -q "^verdict: rejected: no --collateral given" "$tmp/out" && pass ||
		fail "verdict line: $(tail -1 "$tmp/out")"
fi
ZERO64=$(python3 -c 'print("00" * 64)')
ONE64=$(python3 -c 'print("00" * 63 + "01")')
if expect_rc 3 "$CVM" attestation verify "$VA" --report-data "$ZERO64" --json; then
	python3 - "$tmp/out" <<'PY' && pass || fail "verify --json with the right --report-data"
import json, sys
j = json.load(open(sys.argv[1]))
steps = {s["name"]: s for s in j["steps"]}
assert j["verdict"] == "rejected", j["verdict"]
assert j["simulated"] is False
assert j["quote_verified"] is False
assert steps["quote"]["ok"] is False
assert steps["report_data_expected"]["ok"] is True
assert steps["rtmr3"]["ok"] is True and j["rtmr3_replayed"] is True
assert steps["event_log"]["ok"] is True
PY
fi
if expect_rc 3 "$CVM" attestation verify "$VA" --report-data "$ONE64"; then
	grep -q "FAIL  report_data_expected: report_data differs from --report-data" "$tmp/out" && pass ||
		fail "a wrong --report-data is not reported: $(cat "$tmp/out")"
fi

# ---- one runtime event changed --------------------------------------------------
# The last "storage-fs" with a 3-byte payload (SCALE compact length 0x0c) is in
# the runtime_events list, which follows the event log.
python3 - "$VA" "$tmp/tampered.bin" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.rfind(b"storage-fs\x0czfs")
assert i > 0
b[i + len(b"storage-fs\x0czf")] = ord("z")
open(sys.argv[2], "wb").write(bytes(b))
PY
if expect_rc 0 "$CVM" attestation show "$tmp/tampered.bin" --json; then
	python3 - "$tmp/out" <<'PY' && pass || fail "a changed runtime event still replays to the quote's RTMR3"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["runtime_replay"]["matches_quote"] is False
assert [e for e in j["runtime_events"] if e["event"] == "storage-fs"][0]["payload_text"] == "zfz"
PY
fi
if expect_rc 3 "$CVM" attestation verify "$tmp/tampered.bin"; then
	grep -q "FAIL  rtmr3: 9 runtime events replay to a value that is NOT the quote's RTMR3" "$tmp/out" && pass ||
		fail "verify does not name the RTMR3 mismatch: $(cat "$tmp/out")"
fi

# The same change in the event log's copy of the event (the first one): its
# logged digest no longer fits its payload. With that digest recomputed too,
# the log no longer replays to the quote's RTMR3. The runtime events still do.
python3 - "$VA" "$tmp/tampered-log.bin" "$tmp/tampered-log2.bin" <<'PY'
import hashlib, sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.find(b"storage-fs\x0czfs")
assert 0 < i < b.rfind(b"storage-fs\x0czfs")
# TdxEvent: u32 imr, u32 type, Vec digest (0xc0 = 48), String event (0x28 = 10), Vec payload
assert b[i - 1] == 0x28 and b[i - 50] == 0xC0
b[i + len(b"storage-fs\x0czf")] = ord("z")
open(sys.argv[2], "wb").write(bytes(b))
d = hashlib.sha384((0x08000001).to_bytes(4, "little") + b":storage-fs:zfz").digest()
b[i - 49:i - 1] = d
open(sys.argv[3], "wb").write(bytes(b))
PY
if expect_rc 3 "$CVM" attestation verify "$tmp/tampered-log.bin"; then
	grep -q "FAIL  event_log: 33 events: cannot replay: event 31: the logged digest is not the digest of its name and payload" \
		"$tmp/out" && pass || fail "a changed event payload under its old digest is not caught: $(cat "$tmp/out")"
fi
if expect_rc 3 "$CVM" attestation verify "$tmp/tampered-log2.bin" --json; then
	python3 - "$tmp/out" <<'PY' && pass || fail "a changed event of the event log still replays to the quote"
import json, sys
j = json.load(open(sys.argv[1]))
steps = {s["name"]: s for s in j["steps"]}
assert steps["event_log"]["ok"] is False and "RTMR3 DIFFERS from the quote" in steps["event_log"]["detail"], steps
assert steps["rtmr3"]["ok"] is True, steps
assert j["event_log_replay"]["registers"]["rtmr3"]["state"] == "differs"
assert j["event_log_replay"]["registers"]["rtmr0"]["state"] == "matches"
PY
fi

# A boot event's digest changed: RTMR0 no longer replays, which is shown but
# not required (dstack strips its logs; RTMR0..2 are compared with values
# computed from the image instead), while RTMR3 still decides.
python3 - "$VA" "$tmp/show.json" "$tmp/rtmr0.bin" <<'PY'
import json, sys
b = bytearray(open(sys.argv[1], "rb").read())
d = bytes.fromhex([e for e in json.load(open(sys.argv[2]))["events"] if e["imr"] == 0][0]["digest"])
i = b.find(d)
assert i > 0 and b.find(d, i + 1) < 0
b[i] ^= 1
open(sys.argv[3], "wb").write(bytes(b))
PY
if expect_rc 3 "$CVM" attestation verify "$tmp/rtmr0.bin" --json; then
	python3 - "$tmp/out" <<'PY' && pass || fail "a boot event that does not replay to RTMR0"
import json, sys
j = json.load(open(sys.argv[1]))
steps = {s["name"]: s for s in j["steps"]}
regs = j["event_log_replay"]["registers"]
assert regs["rtmr0"]["state"] == "differs" and regs["rtmr3"]["state"] == "matches", regs
assert steps["event_log"]["ok"] is True and "RTMR0 differs from the quote (a stripped log?)" in steps["event_log"]["detail"], steps
assert [s["name"] for s in j["steps"] if not s["ok"]] == ["quote"], j["steps"]
PY
fi

# ---- malformed files --------------------------------------------------------------
head -c 4000 "$VA" >"$tmp/short.bin"
if expect_rc 1 "$CVM" attestation show "$tmp/short.bin"; then
	grep -q "is not a VersionedAttestation cvm can decode" "$tmp/err" && pass || fail "truncated: $(cat "$tmp/err")"
fi
{
	cat "$VA"
	printf '\x00'
} >"$tmp/long.bin"
if expect_rc 3 "$CVM" attestation verify "$tmp/long.bin"; then
	grep -q "is not a VersionedAttestation cvm can decode" "$tmp/err" && pass || fail "trailing byte: $(cat "$tmp/err")"
	grep -q "^verdict: rejected" "$tmp/out" && pass || fail "trailing byte: no verdict line"
fi
printf '0x12345' >"$tmp/odd.hex"
expect_rc 1 "$CVM" attestation show "$tmp/odd.hex" || true

# ---- usage ----------------------------------------------------------------------
expect_rc 2 "$CVM" attestation show || true
expect_rc 2 "$CVM" attestation show "$VA" "$VA" || true
expect_rc 2 "$CVM" attestation verify "$VA" --report-data 00 || true
expect_rc 2 "$CVM" attestation verify "$VA" --at yesterday || true
expect_rc 2 "$CVM" attestation verify "$VA" --bogus || true
expect_rc 2 "$CVM" attestation frobnicate || true
expect_rc 0 "$CVM" attestation verify --help || true

if [ "$failures" -ne 0 ]; then
	echo "cli_attestation: $failures of $((checks + failures)) checks failed" >&2
	exit 1
fi
echo "cli_attestation: all $checks checks passed"
