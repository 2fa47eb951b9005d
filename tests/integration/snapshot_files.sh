#!/usr/bin/env bash
# cvm snapshot --files and the agent's file walk (SnapshotFiles on the TLS
# listener), with simulated TDX, a swtpm and a real IMA list
# (tests/common/snapverify.sh). The agent's [snapshot] mount_root points at a
# prepared guest tree, so the walk reports guest paths (/out/quote/...) that
# the IMA list names too.
#  - the exact (path, digest) pairs, computed here with sha256sum; a symlink
#    out of the tree, a FIFO, an excluded subtree and a default-excluded one
#    (/var/log) are absent; a file the agent may not read (mode 000, the agent
#    run without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH when we are root) and
#    one over max_file_bytes are counted and listed as skipped; a name with
#    a space, a backslash and a non-ASCII byte is escaped as \xNN;
#  - cvm snapshot show prints the count (-v the pairs); diff compares the
#    file sets;
#  - cvm verify accepts an IMA entry that is only in the file set (its line
#    says so) and rejects one in neither, naming its path;
#  - the walk's requests go only to the key whose evidence was verified: a
#    relay that passes GetEvidence to the agent and answers SnapshotFiles
#    itself, with another key, gets cvm snapshot to exit 1 and write nothing;
#  - a tree over max_files ends "failed" with the reason, and cvm snapshot
#    --files then writes no snapshot (exit 1);
#  - a second start while a walk runs follows it (same generation), and the
#    agent keeps answering GetEvidence while a large walk (20000 files and a
#    4 GiB sparse file) runs.
# Needs swtpm (else skipped, exit 77), tpm2-tools, python3 and, as root,
# setpriv (util-linux).
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
NAME=snapshot_files
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-snapshot-files.XXXXXX")"
# shellcheck source=tests/common/snapverify.sh
. "$SRC/tests/common/snapverify.sh"
cleanup() {
	sv_cleanup
	chmod -R u+rwX "$tmp" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
sv_need "$NAME"

# As root, mode 000 does not stop a read: the agent then runs without the
# two capabilities that bypass file permissions.
real_bin="$bin"
if [ "$(id -u)" -eq 0 ]; then
	command -v setpriv >/dev/null 2>&1 || { echo "$NAME: FAIL: setpriv is missing (util-linux)"; exit 1; }
	mkdir -p "$tmp/bin"
	ln -s "$real_bin/cvm" "$tmp/bin/cvm"
	printf '#!/bin/sh\nexec setpriv --bounding-set=-dac_override,-dac_read_search "%s/cvm-agentd" "$@"\n' \
		"$real_bin" >"$tmp/bin/cvm-agentd"
	chmod +x "$tmp/bin/cvm-agentd"
	bin="$tmp/bin"
fi

# sf_call PATH BODY: the agent's TLS listener answers PATH (no RA-TLS check
# here: cvm snapshot does that); prints "STATUS BODY".
sf_call() {
	python3 - "$SV_PORT" "$1" "$2" <<'EOF'
import http.client, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=60)
c.request("POST", sys.argv[2], body=sys.argv[3], headers={"Content-Type": "application/json"})
r = c.getresponse()
print(r.status, r.read().decode())
EOF
}
# sf_field JSON KEY: one field of a SnapshotFiles status ("STATUS BODY").
sf_field() {
	python3 -c 'import json, sys; print(json.loads(sys.argv[1].split(" ", 1)[1]).get(sys.argv[2]))' "$1" "$2"
}

sv_tpm_start "$tmp/tpm" || { echo "$NAME: FAIL: swtpm"; exit 1; }
"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "$NAME: FAIL: cvm sim init"; exit 1; }

# ---- the guest tree ----------------------------------------------------------
g="$tmp/guest"
mkdir -p "$g/out/quote" "$g/etc" "$g/bin" "$g/var/log" "$g/skip/deeper" "$tmp/outside" "$g/usr/share/empty"
: >"$g/out/quote/quote.sig"                     # IMA entry 508 (an empty file)
printf 'hello\n' >"$g/etc/hello"
head -c 150000 /dev/urandom >"$g/bin/tool"      # three read chunks
printf 'odd\n' >"$g/etc/we ird\\name$(printf '\377')"
printf 'secret\n' >"$tmp/outside/secret"
ln -s "$tmp/outside/secret" "$g/etc/link"       # a symlink out of the tree
ln -s "$tmp/outside" "$g/linkdir"               # and one to a folder
mkfifo "$g/etc/fifo"                            # not a regular file
printf 'log\n' >"$g/var/log/syslog"             # default-excluded /var/log
printf 'x\n' >"$g/skip/deeper/x"                # excluded by the config
printf 'locked\n' >"$g/etc/locked"
chmod 000 "$g/etc/locked"                       # unreadable for the agent
head -c 300000 /dev/zero >"$g/bin/huge"         # over max_file_bytes
cat >"$tmp/agent.conf" <<EOF
[snapshot]
mount_root = $g
exclude = /proc /sys /var/log /skip
max_file_bytes = 200000
EOF

sv_agent_start "$tmp/sim" -c "$tmp/agent.conf" || { echo "$NAME: FAIL: the agent did not start"; exit 1; }

# ---- the exact set --------------------------------------------------------------
expect 0 "cvm snapshot --files" sv_snapshot "$tmp/sim" "$tmp/snap.json" --files || exit 1
has "cvm snapshot: file walk 100% (4 of 6 files" "cvm snapshot --files (progress line, not a terminal)"
has "files: 4 (path, digest) pairs (sha256), 2 skipped, walked from /" "cvm snapshot --files"
{
	for p in /bin/tool /etc/hello /out/quote/quote.sig; do
		echo "sha256:$(sha256sum <"$g$p" | cut -d' ' -f1) $p"
	done
	printf 'sha256:%s %s\n' "$(sha256sum <"$g/etc/we ird\\name"$'\377' | cut -d' ' -f1)" '/etc/we\x20ird\x5cname\xff'
} | LC_ALL=C sort >"$tmp/expected"
python3 - "$tmp/snap.json" "$tmp/expected" >"$tmp/out" 2>&1 <<'EOF' && pass || { fail "the files section"; show "$tmp/out"; }
import json, sys
d = json.load(open(sys.argv[1]))
want = open(sys.argv[2]).read().splitlines()
f = d["files"]
assert d["version"] == 1, "version"
assert f["algo"] == "sha256" and f["roots"] == ["/"], (f["algo"], f["roots"])
assert f["excluded"] == ["/proc", "/sys", "/var/log", "/skip"], f["excluded"]
assert f["entries"] == want, "entries:\n%s\nwanted:\n%s" % ("\n".join(f["entries"]), "\n".join(want))
assert f["count"] == 4 and f["skipped"] == 2, (f["count"], f["skipped"])
sk = {s["path"]: s["reason"] for s in f["skipped_entries"]}
assert set(sk) == {"/etc/locked", "/bin/huge"}, sk
assert "Permission denied" in sk["/etc/locked"], sk
assert "larger than" in sk["/bin/huge"], sk
for e in f["entries"]:
    p = e.split(" ", 1)[1]
    assert not p.startswith(("/skip", "/var/log", "/etc/link", "/linkdir", "/etc/fifo")), p
EOF
secret_digest="$(sha256sum "$tmp/outside/secret" | cut -d' ' -f1)"
grep -q "$secret_digest" "$tmp/snap.json" && fail "the symlink's target was hashed" || pass

expect 0 "cvm snapshot show" "$bin/cvm" snapshot show "$tmp/snap.json"
has "files: 4 (path, digest) pairs (sha256), 2 skipped, walked from /" "cvm snapshot show"
expect 0 "cvm snapshot show -v" "$bin/cvm" snapshot show "$tmp/snap.json" -v
has "  $(sed -n 1p "$tmp/expected")" "cvm snapshot show -v"
has "  skipped /etc/locked (cannot be opened: Permission denied)" "cvm snapshot show -v"
expect 0 "cvm snapshot diff A A" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/snap.json"
python3 - "$tmp/snap.json" "$tmp/t-files.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["files"]["entries"] = [e for e in d["files"]["entries"] if not e.endswith(" /etc/hello")]
d["files"]["count"] -= 1
json.dump(d, open(sys.argv[2], "w"), indent=2)
EOF
expect 1 "diff, a file pair removed" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/t-files.json"
has "files: only in A: $(grep ' /etc/hello$' "$tmp/expected")" "cvm snapshot diff"
python3 - "$tmp/snap.json" "$tmp/t-order.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["files"]["entries"].reverse()
json.dump(d, open(sys.argv[2], "w"), indent=2)
EOF
expect 1 "show, a file set out of order" "$bin/cvm" snapshot show "$tmp/t-order.json"
has "is out of order or repeated" "cvm snapshot show (unsorted files)"

# ---- cvm verify: the file set lets a file run after the snapshot pass -----------
expect 0 "cvm verify before" sv_verify "$tmp/sim" "$tmp/snap.json"
has "[ OK ] ima: every one of the 507 quoted IMA entries is in the snapshot (0 of them through its file set)" \
	"cvm verify before"
sv_extend 508 508 || fail "PCR 10 extend (entry 508)" # /out/quote/quote.sig: in the file set only
expect 0 "cvm verify, an IMA entry in the file set only" sv_verify "$tmp/sim" "$tmp/snap.json"
has "[ OK ] ima: every one of the 508 quoted IMA entries is in the snapshot (1 of them through its file set)" \
	"cvm verify (file set)"
python3 - "$tmp/snap.json" "$tmp/t-nofiles.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
del d["files"]
json.dump(d, open(sys.argv[2], "w"), indent=2)
EOF
expect 1 "diff, a file set in A only" "$bin/cvm" snapshot diff "$tmp/snap.json" "$tmp/t-nofiles.json"
has "changed: files: recorded in A only (4 pairs)" "cvm snapshot diff (no file set in B)"
expect 3 "cvm verify, the same entry, no file set" sv_verify "$tmp/sim" "$tmp/t-nofiles.json"
has "not in the snapshot: /out/quote/quote.sig (sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855)" \
	"cvm verify (no file set)"
sv_extend 509 509 || fail "PCR 10 extend (entry 509)" # /out/quote/quote.msg: in neither
expect 3 "cvm verify, an IMA entry in neither set" sv_verify "$tmp/sim" "$tmp/snap.json"
has "[FAIL] ima: 1 measured (path, digest) pairs are not in the snapshot nor in its file set" "cvm verify (neither)"
has "not in the snapshot: /out/quote/quote.msg (sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855)" \
	"cvm verify (neither)"

# ---- the file set comes from the verified agent key only ----------------------------
# A relay passes the first connection (the RA-TLS handshake and GetEvidence)
# to the agent, then answers SnapshotFiles itself with another key and a
# file set of its own: cvm snapshot must refuse it and write nothing.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=relay -days 1 \
	-keyout "$tmp/relay.key" -out "$tmp/relay.crt" >/dev/null 2>&1 || fail "openssl req (the relay's key)"
cat >"$tmp/relay.py" <<'EOF'
import json, socket, ssl, sys, threading
agent_port, port_file, crt, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(crt, key)
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
open(port_file, "w").write(str(ls.getsockname()[1]))
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
status = {"state": "done", "generation": 1, "phase": "", "files_total": 1, "bytes_total": 1,
          "files_hashed": 1, "bytes_hashed": 1, "skipped": 0, "algo": "sha256", "roots": ["/"],
          "excluded": [], "already_running": False}
first = True
while True:
    c, _ = ls.accept()
    if first:  # the evidence: the real agent, end to end
        first = False
        u = socket.create_connection(("127.0.0.1", agent_port))
        threading.Thread(target=pipe, args=(c, u), daemon=True).start()
        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
        continue
    try:
        t = ctx.wrap_socket(c, server_side=True)
        t.recv(65536)
        page = dict(status, count=1, entries=[{"path": "/usr/bin/evil", "digest": "sha256:" + "ab" * 32}],
                    skipped_entries=[], next_offset=None)
        body = json.dumps(page).encode()
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % len(body) + body)
        t.close()
    except (OSError, ssl.SSLError):
        c.close()
EOF
python3 "$tmp/relay.py" "$SV_PORT" "$tmp/relay-port" "$tmp/relay.crt" "$tmp/relay.key" 2>"$tmp/relay.log" &
relay_pid=$!
for i in $(seq 50); do [ -s "$tmp/relay-port" ] && break; sleep 0.1; done
expect 1 "cvm snapshot --files through a relay that answers the walk with another key" \
	"$bin/cvm" snapshot --url "https://127.0.0.1:$(cat "$tmp/relay-port")" -o "$tmp/relay.json" \
	--collateral "$tmp/sim/collateral" --root "$tmp/sim/collateral/tdx/intel_sgx_root_ca.der" --files -q
has "the agent's key is not the one just verified" "the relay's file set"
[ ! -e "$tmp/relay.json" ] && pass || fail "a snapshot was written with the relay's file set"
kill "$relay_pid" 2>/dev/null
wait "$relay_pid" 2>/dev/null

# ---- the file cap: failed, and no snapshot -----------------------------------------
mkdir -p "$g/data/many"
python3 - "$g/data/many" <<'EOF'
import os, sys
for i in range(20000):
    d = os.path.join(sys.argv[1], "d%03d" % (i // 200))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "w") as f:
        f.write("file %d\n" % i)
EOF
sv_agent_stop
cat >"$tmp/cap.conf" <<EOF
[snapshot]
mount_root = $g
max_files = 100
EOF
sv_agent_start "$tmp/sim" -c "$tmp/cap.conf" || { echo "$NAME: FAIL: the agent did not restart"; exit 1; }
expect 1 "cvm snapshot --files over max_files" sv_snapshot "$tmp/sim" "$tmp/cap.json" --files -q
has "the agent's file walk failed: more than [snapshot] max_files (100) files under the roots" "over max_files"
[ ! -e "$tmp/cap.json" ] && pass || fail "a snapshot was written from a failed walk"
r="$(sf_call /SnapshotFiles '{"offset": 0}')"
[ "${r%% *}" = 409 ] && pass || fail "a page of a failed walk: ${r:0:300}"

# ---- a large walk: one at a time, and the agent keeps serving ----------------------
truncate -s 4G "$g/data/sparse"
sv_agent_stop
cat >"$tmp/big.conf" <<EOF
[snapshot]
mount_root = $g
exclude = none
EOF
sv_agent_start "$tmp/sim" -c "$tmp/big.conf" || { echo "$NAME: FAIL: the agent did not restart"; exit 1; }
r1="$(sf_call /SnapshotFiles '{"start": true}')"
r2="$(sf_call /SnapshotFiles '{"start": true}')"
gen1="$(sf_field "$r1" generation)"
[ "$(sf_field "$r1" state)" = running ] && [ "$(sf_field "$r1" already_running)" = False ] && pass ||
	fail "the first start: $r1"
[ "$(sf_field "$r2" already_running)" = True ] && [ "$(sf_field "$r2" generation)" = "$gen1" ] && pass ||
	fail "a second start while running restarted the walk: $r2"
# cvm snapshot --files now, while the walk runs (its GetEvidence comes first,
# a fraction of the walk's seconds): it must follow this walk.
sv_snapshot "$tmp/sim" "$tmp/big.json" --files >"$tmp/big.out" 2>&1 &
snap_pid=$!
served=0
for i in $(seq 600); do
	before="$(sf_field "$(sf_call /SnapshotFiles '{}')" state)"
	[ "$before" = running ] || break
	ev="$(sf_call /GetEvidence "{\"nonce\": \"$(printf '%064x' "$i")\"}")"
	after="$(sf_field "$(sf_call /SnapshotFiles '{}')" state)"
	if [ "${ev%% *}" = 200 ] && [ "$after" = running ]; then
		served=$((served + 1))
		[ "$served" -ge 3 ] && break
	fi
done
[ "$served" -ge 1 ] && pass || fail "no GetEvidence answered while the walk ran (state $before)"
echo "$NAME: GetEvidence answered $served time(s) while the walk ran"
rc=0
wait "$snap_pid" || rc=$?
cp "$tmp/big.out" "$tmp/out"
[ "$rc" -eq 0 ] && pass || { fail "cvm snapshot --files following the running walk: exit $rc"; show "$tmp/out"; }
has "cvm snapshot: a file walk was already running on the agent (generation $gen1); following it" \
	"cvm snapshot --files (following)"
python3 - "$tmp/big.json" >"$tmp/out" 2>&1 <<'EOF' && pass || { fail "the large file set"; show "$tmp/out"; }
import json, sys
f = json.load(open(sys.argv[1]))["files"]
n = sum(1 for e in f["entries"] if " /data/many/" in e)
assert n == 20000, n
assert any(e.endswith(" /data/sparse") for e in f["entries"]), "the sparse file"
assert any(e.endswith(" /var/log/syslog") for e in f["entries"]), "exclude = none walks /var/log"
EOF
grep "walk_end" "$tmp/agent.log" | tail -1
sv_finish "$NAME"
