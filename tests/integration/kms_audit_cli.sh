#!/usr/bin/env bash
# cvm kms audit verify / show on the KMS audit log (lib/audit):
#  - a log written through lib/audit (kms_audit_append, which prints the
#    `event=audit_head seq=N head=HEX` lines cvm-kmsd logs): python3's
#    hashlib and sqlite3 recompute every hash from the columns with the
#    encoding include/cvmkit/audit.h documents, independently of lib/audit;
#  - verify: exit 0 with the head, --expect-head with the logged head, --json;
#    show: every record once, the filters, --json;
#  - tampering with the sqlite3 command-line tool: an edited field, a deleted
#    middle record, swapped records, a forged record (exit 3 with the first
#    bad record and what is wrong); a removed tail is intact without a head
#    and exit 3 with --expect-head; show stops before the bad record;
#  - a log rewritten from record 2 on with recomputed hashes (python) is a
#    valid chain: only the head finds it, and a signed checkpoint (the KMS
#    key's signature over the head, checked against its certificate made by
#    openssl) cannot be moved to the forged head;
#  - verify and show read the live log while a writer appends;
#  - errors exit 1 (no file, not a log), usage errors exit 2.
# Needs: $CVM_BIN/cvm, build/tests/kms_audit_append, sqlite3, python3, openssl.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
APPEND="$(dirname "$CVM")/../tests/kms_audit_append"

for tool in python3 sqlite3 openssl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool is missing (scripts/setup.sh installs it)" >&2
		exit 1
	fi
done
for bin in "$CVM" "$APPEND"; do
	if [ ! -x "$bin" ]; then
		echo "FAIL: $bin is missing or not executable (set CVM_BIN, build the tree)" >&2
		exit 1
	fi
done

tmp="$(mktemp -d)"
writer=""
cleanup() {
	if [ -n "$writer" ]; then
		kill "$writer" 2>/dev/null || true
		wait "$writer" 2>/dev/null || true
	fi
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
# has TEXT FILE: FILE contains TEXT (fixed string).
has() {
	if grep -qF -- "$1" "$2"; then
		pass
	else
		fail "$2 does not contain '$1': $(head -c 600 "$2")"
	fi
}

# ---- 1. a log, and an independent check of its chain ------------------------------
db="$tmp/audit.db"
"$APPEND" "$db" 6 >"$tmp/heads"
head_line="$(tail -n 1 "$tmp/heads")"
head="${head_line#event=audit_head seq=}"
head="${head/ head=/:}"
case "$head" in
6:????????????????????????????????????????????????????????????????) pass ;;
*) fail "the last head line is '$head_line'" ;;
esac
mode="$(stat -c %a "$db")"
[ "$mode" = 600 ] && pass || fail "the log has mode $mode, expected 600"

cat >"$tmp/chain.py" <<'PY'
# Recomputes the chain of an audit log from its columns, as
# include/cvmkit/audit.h defines it, without lib/audit.
import hashlib, sqlite3, struct, sys
TAG = b"cvmkit kms audit v1" + b"\0" * 5
TEXT = ["node", "method", "peer", "tee", "app_id", "instance_id", "compose_hash", "device_id",
        "mr_aggregated", "os_image_hash", "decision", "reason", "keys"]
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
db.row_factory = sqlite3.Row
prev = bytes(32)
n = 0
for row in db.execute("SELECT * FROM audit ORDER BY seq"):
    n += 1
    if row["seq"] != n or row["prev"] != prev:
        raise SystemExit("record %d: seq or prev" % n)
    enc = TAG + struct.pack(">Q", n) + prev + struct.pack(">QI", row["time"], row["epoch"])
    for name in TEXT:
        v = row[name].encode("ascii")
        enc += struct.pack(">H", len(v)) + v
    h = hashlib.sha256(enc).digest()
    if h != row["hash"]:
        raise SystemExit("record %d: hash %s, recomputed %s" % (n, row["hash"].hex(), h.hex()))
    prev = h
(app_id,) = db.execute("PRAGMA application_id").fetchone()
(mode,) = db.execute("PRAGMA journal_mode").fetchone()
if app_id != 0x63766D61 or mode != "wal":
    raise SystemExit("application_id %#x, journal mode %s" % (app_id, mode))
print("%d:%s" % (n, prev.hex()))
PY
if python3 "$tmp/chain.py" "$db" >"$tmp/py" 2>"$tmp/pyerr"; then
	[ "$(cat "$tmp/py")" = "$head" ] && pass || fail "python's head $(cat "$tmp/py") is not the logged $head"
else
	fail "the independent recomputation: $(cat "$tmp/pyerr")"
fi

# ---- 2. verify and show on the intact log -----------------------------------------
if expect_rc 0 "$CVM" kms audit verify "$db"; then
	has "verdict: intact (6 records)" "$tmp/out"
	has "head: $head" "$tmp/out"
fi
if expect_rc 0 "$CVM" kms audit verify "$db" --expect-head "$head"; then
	has "ending at the expected head" "$tmp/out"
fi
if expect_rc 0 "$CVM" kms audit verify --json "$db" --expect-head "$head"; then
	python3 - "$tmp/out" "$head" <<'PY' && pass || fail "verify --json: $(cat "$tmp/out")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o == {"verdict": "intact", "records": 6, "head": sys.argv[2]}, o
PY
fi
if expect_rc 0 "$CVM" kms audit verify -q "$db"; then
	[ "$(wc -l <"$tmp/out")" -eq 1 ] && pass || fail "-q printed more than the verdict: $(cat "$tmp/out")"
fi
if expect_rc 0 "$CVM" kms audit show "$db"; then
	[ "$(grep -c '^seq=' "$tmp/out")" -eq 6 ] && pass || fail "show printed $(grep -c '^seq=' "$tmp/out") records"
	has 'seq=3 time=2025-12-06T05:46:43Z node=kms-test method=GetAppKey peer=10.0.0.1:443 tee=sim-tdx decision=denied' "$tmp/out"
	has 'keys="" reason="compose hash \"' "$tmp/out"
	grep "^seq=6 " "$tmp/out" | grep -qF "hash=${head#6:}" && pass || fail "record 6's hash is not the head"
fi
if expect_rc 0 "$CVM" kms audit show "$db" --decision denied; then
	[ "$(grep -o '^seq=[0-9]*' "$tmp/out" | tr '\n' ' ')" = "seq=3 seq=6 " ] && pass ||
		fail "--decision denied: $(cat "$tmp/out")"
fi
if expect_rc 0 "$CVM" kms audit show "$db" --app-id 0x0000000000000000000000000000000000000004; then
	[ "$(grep -o '^seq=[0-9]*' "$tmp/out")" = "seq=4" ] && pass || fail "--app-id: $(cat "$tmp/out")"
fi
if expect_rc 0 "$CVM" kms audit show "$db" --since 1765000005 --json; then
	python3 - "$tmp/out" "$head" <<'PY' && pass || fail "show --json: $(cat "$tmp/out")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["verdict"] == "intact" and o["count"] == 2, o
assert [r["seq"] for r in o["records"]] == [5, 6], o
r = o["records"][1]
assert r["decision"] == "denied" and r["keys"] == "" and r["reason"].startswith('compose hash "'), r
assert "%d:%s" % (r["seq"], r["hash"]) == sys.argv[2], r
assert r["time"] == 1765000006 and r["time_utc"] == "2025-12-06T05:46:46Z", r
PY
fi

# ---- 3. tampered with the sqlite3 tool --------------------------------------------
# tamper NAME SQL: a copy of the log with SQL applied.
tamper() {
	cp "$db" "$tmp/$1.db"
	sqlite3 "$tmp/$1.db" "$2"
}
# expect_tampered DB BAD TEXT [ARGS...]: verify exits 3 naming record BAD and TEXT.
expect_tampered() {
	local file="$1" bad="$2" text="$3"
	shift 3
	if expect_rc 3 "$CVM" kms audit verify "$file" "$@"; then
		has "first bad record: $bad" "$tmp/out"
		has "$text" "$tmp/out"
	fi
}

tamper edited "UPDATE audit SET decision = 'allowed', reason = '' WHERE seq = 3"
expect_tampered "$tmp/edited.db" 3 "record 3: its fields do not match its hash"
if expect_rc 3 "$CVM" kms audit verify --json "$tmp/edited.db"; then
	python3 - "$tmp/out" <<'PY' && pass || fail "verify --json on a tampered log: $(cat "$tmp/out")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["verdict"] == "tampered" and o["bad_record"] == 3 and o["records"] == 2, o
assert "record 3" in o["reason"], o
PY
fi
if expect_rc 3 "$CVM" kms audit show "$tmp/edited.db"; then
	[ "$(grep -o '^seq=[0-9]*' "$tmp/out" | tr '\n' ' ')" = "seq=1 seq=2 " ] && pass ||
		fail "show went past the bad record: $(cat "$tmp/out")"
	has "tampered or damaged" "$tmp/err"
fi
if expect_rc 3 "$CVM" kms audit show --json "$tmp/edited.db"; then
	python3 - "$tmp/out" <<'PY' && pass || fail "show --json on a tampered log: $(cat "$tmp/out")"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["verdict"] == "tampered" and o["count"] == 2 and "record 3" in o["reason"], o
PY
fi

tamper deleted "DELETE FROM audit WHERE seq = 2"
expect_tampered "$tmp/deleted.db" 2 "record 2 is missing"

tamper swapped "UPDATE audit SET seq = 100 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 5;
	UPDATE audit SET seq = 5 WHERE seq = 100"
expect_tampered "$tmp/swapped.db" 4 "record 4"

tamper forged "INSERT INTO audit SELECT 7, time + 1, node, method, '10.6.6.6:1', tee, app_id, instance_id,
	compose_hash, device_id, mr_aggregated, os_image_hash, 'allowed', '', 'disk_crypt_key', epoch, hash,
	randomblob(32) FROM audit WHERE seq = 6"
expect_tampered "$tmp/forged.db" 7 "record 7: its fields do not match its hash"

tamper nonascii "UPDATE audit SET peer = 'evil' || char(10) || 'event=audit_head seq=1' WHERE seq = 5"
expect_tampered "$tmp/nonascii.db" 5 "record 5: peer has the byte 0x0a"

tamper trigger "CREATE TRIGGER wipe AFTER INSERT ON audit BEGIN DELETE FROM audit; END"
if expect_rc 3 "$CVM" kms audit verify "$tmp/trigger.db"; then
	has "trigger 'wipe'" "$tmp/out"
fi

tamper truncated "DELETE FROM audit WHERE seq > 4"
if expect_rc 0 "$CVM" kms audit verify "$tmp/truncated.db"; then
	has "verdict: intact (4 records)" "$tmp/out" # the chain alone cannot see it ...
fi
expect_tampered "$tmp/truncated.db" 5 "records 5 to 6 were removed" --expect-head "$head" # ... the head can

# a head from another log (the right seq, another hash), and an older head
expect_tampered "$db" 6 "not the expected" --expect-head "6:$(printf '%064d' 0)"
older="$(sed -n 5p "$tmp/heads")"
older="${older#event=audit_head seq=}"
expect_tampered "$db" 6 "records were added after it" --expect-head "${older/ head=/:}"

# ---- 4. signed checkpoints, and a log rewritten with recomputed hashes ----------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/kms.key" \
	-out "$tmp/kms.crt" -subj "/O=cvmkit test/CN=kms-test audit" -days 30 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/other.key" \
	-out "$tmp/other.crt" -subj "/CN=someone else" -days 30 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/rsa.key" -out "$tmp/rsa.crt" -subj "/CN=rsa" \
	-days 30 2>/dev/null
signed="$tmp/signed.db"
CVM_AUDIT_SIGN_KEY="$tmp/kms.key" "$APPEND" "$signed" 4 >"$tmp/signed-heads"
# head_of LINE / sig_of LINE: SEQ:HEX and the signature of an audit_head line
head_of() { sed -E 's/^event=audit_head seq=([0-9]+) head=([0-9a-f]+).*/\1:\2/' <<<"$1"; }
sig_of() { sed -E 's/.* sig=([0-9a-f]+)$/\1/' <<<"$1"; }
l3="$(sed -n 3p "$tmp/signed-heads")"
l4="$(sed -n 4p "$tmp/signed-heads")"
h4="$(head_of "$l4")"
s4="$(sig_of "$l4")"
[ "${#s4}" -eq 128 ] && pass || fail "no signature in '$l4'"
if expect_rc 0 "$CVM" kms audit verify "$signed" --expect-head "$h4" --checkpoint "$s4" \
	--checkpoint-cert "$tmp/kms.crt"; then
	has "which the checkpoint signs" "$tmp/out"
	has "checkpoint signed by: " "$tmp/out"
	has "kms-test audit" "$tmp/out"
fi
if expect_rc 0 "$CVM" kms audit verify --json "$signed" --expect-head "$h4" --checkpoint "$s4" \
	--checkpoint-cert "$tmp/kms.crt"; then
	has '"checkpoint_signer"' "$tmp/out"
fi
# another key's certificate; another head's signature; an RSA certificate
if expect_rc 3 "$CVM" kms audit verify "$signed" --expect-head "$h4" --checkpoint "$s4" \
	--checkpoint-cert "$tmp/other.crt"; then
	has "signature does not verify" "$tmp/out"
fi
expect_rc 3 "$CVM" kms audit verify "$signed" --expect-head "$h4" --checkpoint "$(sig_of "$l3")" \
	--checkpoint-cert "$tmp/kms.crt" || true
expect_rc 1 "$CVM" kms audit verify "$signed" --expect-head "$h4" --checkpoint "$s4" \
	--checkpoint-cert "$tmp/rsa.crt" || true
# the tail removed: the signed head is genuine, the log does not reach it
cp "$signed" "$tmp/signed-cut.db"
sqlite3 "$tmp/signed-cut.db" "DELETE FROM audit WHERE seq = 4"
if expect_rc 3 "$CVM" kms audit verify "$tmp/signed-cut.db" --expect-head "$h4" --checkpoint "$s4" \
	--checkpoint-cert "$tmp/kms.crt"; then
	has "first bad record: 4" "$tmp/out"
fi
# a forger without the key rewrites record 2 and every hash after it
cp "$signed" "$tmp/rewritten.db"
cat >"$tmp/rewrite.py" <<'PY'
import hashlib, sqlite3, struct, sys
TAG = b"cvmkit kms audit v1" + b"\0" * 5
TEXT = ["node", "method", "peer", "tee", "app_id", "instance_id", "compose_hash", "device_id",
        "mr_aggregated", "os_image_hash", "decision", "reason", "keys"]
db = sqlite3.connect(sys.argv[1])
db.row_factory = sqlite3.Row
db.execute("UPDATE audit SET peer = '10.6.6.6:1' WHERE seq = 2")
prev = bytes(32)
for row in db.execute("SELECT * FROM audit ORDER BY seq").fetchall():
    enc = TAG + struct.pack(">Q", row["seq"]) + prev + struct.pack(">QI", row["time"], row["epoch"])
    for name in TEXT:
        v = row[name].encode("ascii")
        enc += struct.pack(">H", len(v)) + v
    h = hashlib.sha256(enc).digest()
    db.execute("UPDATE audit SET prev = ?, hash = ? WHERE seq = ?", (prev, h, row["seq"]))
    prev = h
db.commit()
print("%d:%s" % (row["seq"], prev.hex()))
PY
forged_head="$(python3 "$tmp/rewrite.py" "$tmp/rewritten.db")"
if expect_rc 0 "$CVM" kms audit verify "$tmp/rewritten.db"; then
	has "head: $forged_head" "$tmp/out" # a valid chain: the chain alone cannot tell
fi
expect_tampered "$tmp/rewritten.db" 4 "not the expected" --expect-head "$h4"
if expect_rc 3 "$CVM" kms audit verify "$tmp/rewritten.db" --expect-head "$forged_head" --checkpoint "$s4" \
	--checkpoint-cert "$tmp/kms.crt"; then
	has "signature does not verify" "$tmp/out"
fi
expect_rc 2 "$CVM" kms audit verify "$signed" --expect-head "$h4" --checkpoint "$s4" || true
expect_rc 2 "$CVM" kms audit verify "$signed" --checkpoint "$s4" --checkpoint-cert "$tmp/kms.crt" || true
expect_rc 2 "$CVM" kms audit verify "$signed" --expect-head "$h4" --checkpoint "${s4:2}" \
	--checkpoint-cert "$tmp/kms.crt" || true

# ---- 5. the live log: readers while a writer appends --------------------------------
live="$tmp/live.db"
"$APPEND" "$live" 1 >/dev/null
"$APPEND" "$live" 2000 >"$tmp/live-heads" &
writer=$!
reads=0
for _ in $(seq 1 40); do
	if ! kill -0 "$writer" 2>/dev/null; then
		break
	fi
	expect_rc 0 "$CVM" kms audit verify "$live" || break
	expect_rc 0 "$CVM" kms audit show "$live" --decision denied || break
	reads=$((reads + 1))
done
wait "$writer" && pass || fail "the writer failed while readers read"
writer=""
live_head="$(tail -n 1 "$tmp/live-heads")"
live_head="${live_head#event=audit_head seq=}"
expect_rc 0 "$CVM" kms audit verify "$live" --expect-head "${live_head/ head=/:}" || true
if [ "$reads" -ge 1 ]; then
	echo "kms_audit_cli: $reads verify+show rounds ran while the writer appended"
	pass
else
	fail "no read ran while the writer appended (the writer finished first): nothing was shown"
fi

# ---- 6. errors and usage ------------------------------------------------------------
if expect_rc 1 "$CVM" kms audit verify "$tmp/none.db"; then
	has "No such file" "$tmp/err"
fi
printf 'not a database\n' >"$tmp/text.db"
expect_rc 1 "$CVM" kms audit verify "$tmp/text.db" || true
sqlite3 "$tmp/other.db" "CREATE TABLE t (x)"
if expect_rc 1 "$CVM" kms audit show "$tmp/other.db"; then
	has "not a cvmkit audit log" "$tmp/err"
fi
expect_rc 2 "$CVM" kms audit verify || true
expect_rc 2 "$CVM" kms audit verify "$db" "$db" || true
expect_rc 2 "$CVM" kms audit verify "$db" --expect-head 6 || true
expect_rc 2 "$CVM" kms audit verify "$db" --expect-head "06:${head#6:}" || true
expect_rc 2 "$CVM" kms audit verify "$db" --expect-head "6:${head#6:}0" || true
expect_rc 2 "$CVM" kms audit verify "$db" --bogus || true
expect_rc 2 "$CVM" kms audit show "$db" --decision maybe || true
expect_rc 2 "$CVM" kms audit show "$db" --app-id 1234 || true
expect_rc 2 "$CVM" kms audit show "$db" --since -1 || true
expect_rc 2 "$CVM" kms audit || true
expect_rc 2 "$CVM" kms audit delete "$db" || true
if expect_rc 0 "$CVM" kms audit verify --help; then
	has "--expect-head SEQ:HEX" "$tmp/out"
fi

if [ "$failures" -ne 0 ]; then
	echo "kms_audit_cli: $failures failure(s), $checks check(s) passed" >&2
	exit 1
fi
echo "kms_audit_cli: all $checks checks passed"
