# Shared by tests/integration/snapshot_*.sh and verify_*.sh: a swtpm whose
# PCR 10 holds the first entries of a real IMA list (tests/vectors/ima/
# vm-ovmf-tpmcrb-imang, 513 entries of a QEMU/OVMF/swtpm boot), cvm-agentd on
# the simulated TEE with that TPM, that list and its TLS listener, and
# wrappers for `cvm snapshot` and `cvm verify` against it.
#
# The caller sets bin (build/bin, absolute), SRC and tmp, sources this file
# and calls sv_cleanup from its EXIT trap. Needs swtpm, tpm2-tools, python3.
# shellcheck shell=bash disable=SC2015

# shellcheck source=tests/common/swtpm.sh
. "$SRC/tests/common/swtpm.sh"

SV_IMA="$SRC/tests/vectors/ima/vm-ovmf-tpmcrb-imang/binary_runtime_measurements"
SV_QUOTED=507 # entries replayed into PCR 10 at start
SV_AGENT_PID=""
SV_PORT=""

# sv_need NAME: exit 77 (skip, with the reason) without swtpm; fail without
# the other tools.
sv_need() {
	local t
	if ! command -v swtpm >/dev/null 2>&1; then
		echo "$1: SKIP: swtpm is not installed (scripts/setup.sh installs swtpm and tpm2-tools)"
		exit 77
	fi
	for t in tpm2_pcrextend tpm2_pcrread python3; do
		command -v "$t" >/dev/null 2>&1 || { echo "$1: FAIL: $t is missing (scripts/setup.sh installs it)"; exit 1; }
	done
	for t in cvm cvm-agentd; do
		[ -x "$bin/$t" ] || { echo "$1: FAIL: $bin/$t is missing (build it first)"; exit 1; }
	done
	[ -r "$SV_IMA" ] || { echo "$1: FAIL: $SV_IMA is missing (git checkout -- tests/vectors restores it)"; exit 1; }
}

# sv_ima_digest FIRST LAST: the SHA-256 bank extensions of entries FIRST..LAST
# (1-based) of the list, computed here without cvmkit's IMA code.
sv_ima_digest() {
	python3 - "$SV_IMA" "$1" "$2" <<'EOF'
import hashlib, struct, sys
d = open(sys.argv[1], "rb").read()
first, last, i, n = int(sys.argv[2]), int(sys.argv[3]), 0, 0
while i < len(d) and n < last:
    i += 4
    tdig = d[i:i + 20]; i += 20
    nl, = struct.unpack_from("<I", d, i); i += 4 + nl
    dl, = struct.unpack_from("<I", d, i); i += 4
    data = d[i:i + dl]; i += dl
    n += 1
    if n >= first:
        print("ff" * 32 if tdig == bytes(20) else hashlib.sha256(data).hexdigest())
EOF
}

# sv_ima_entry K: "HEXDIGEST PATH" of entry K (ima-ng: the file's digest
# and the name it was measured under), read here without cvmkit's IMA code;
# sv_ima_path K and sv_ima_file_digest K: either half.
sv_ima_entry() {
	python3 - "$SV_IMA" "$1" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
want, i, n = int(sys.argv[2]), 0, 0
while i < len(d):
    i += 24
    nl, = struct.unpack_from("<I", d, i); i += 4 + nl
    dl, = struct.unpack_from("<I", d, i); i += 4
    data = d[i:i + dl]; i += dl
    n += 1
    if n == want:
        # ima-ng: u32 len, "sha256:\0" digest, u32 len, name\0
        l1, = struct.unpack_from("<I", data, 0)
        l2, = struct.unpack_from("<I", data, 4 + l1)
        digest = data[4:4 + l1].split(b"\0", 1)[1]
        print(digest.hex(), data[8 + l1:8 + l1 + l2].rstrip(b"\0").decode())
        break
EOF
}
sv_ima_path() { sv_ima_entry "$1" | cut -d' ' -f2-; }
sv_ima_file_digest() { sv_ima_entry "$1" | cut -d' ' -f1; }

# sv_extend FIRST LAST: extends PCR 10 with entries FIRST..LAST, as the
# kernel would when it measures them.
sv_extend() {
	local -a digests args
	local i d
	mapfile -t digests < <(sv_ima_digest "$1" "$2")
	for ((i = 0; i < ${#digests[@]}; i += 64)); do
		args=()
		for d in "${digests[@]:i:64}"; do args+=("10:sha256=$d"); done
		tpm2_pcrextend "${args[@]}" >/dev/null || return 1
	done
}

# sv_tpm_start STATE: a swtpm on STATE (a new folder is a new TPM; the same
# folder again is a reboot: startup-clear resets the PCRs and increments
# resetCount), with the first SV_QUOTED entries in PCR 10.
sv_tpm_start() {
	swtpm_start "$1" || return 1
	export TPM2TOOLS_TCTI="$SWTPM_TCTI" TSS2_LOG=all+none
	sv_extend 1 "$SV_QUOTED"
}

# sv_agent_start SIMDIR [ARGS...]: cvm-agentd on the simulator SIMDIR with the
# swtpm, the IMA list and the TLS listener; SV_PORT is its TLS port.
sv_agent_start() {
	local sim="$1" i
	shift
	rm -f "$tmp/tls-port" "$tmp/d.sock"
	"$bin/cvm-agentd" --simulator "$sim" --listen "unix:$tmp/d.sock" --tls 127.0.0.1:0 \
		--tls-port-file "$tmp/tls-port" --tpm "$SWTPM_TCTI" --ima "$SV_IMA" "$@" >"$tmp/agent.log" 2>&1 &
	SV_AGENT_PID=$!
	for i in $(seq 200); do
		[ -s "$tmp/tls-port" ] && break
		kill -0 "$SV_AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -s "$tmp/tls-port" ]; then
		cat "$tmp/agent.log" >&2
		return 1
	fi
	SV_PORT="$(cat "$tmp/tls-port")"
}

sv_agent_stop() {
	if [ -n "$SV_AGENT_PID" ] && kill -0 "$SV_AGENT_PID" 2>/dev/null; then
		kill -TERM "$SV_AGENT_PID" 2>/dev/null || true
		wait "$SV_AGENT_PID" 2>/dev/null || true
	fi
	SV_AGENT_PID=""
}

sv_cleanup() {
	sv_agent_stop
	swtpm_stop
}

# sv_snapshot SIMDIR OUT [ARGS...] and sv_verify SIMDIR SNAPSHOT [ARGS...]:
# the commands against the agent, anchored in the simulator's root.
sv_snapshot() {
	local sim="$1" out="$2"
	shift 2
	"$bin/cvm" snapshot --url "https://127.0.0.1:$SV_PORT" -o "$out" --collateral "$sim/collateral" \
		--root "$sim/collateral/tdx/intel_sgx_root_ca.der" "$@"
}
sv_verify() {
	local sim="$1" snap="$2"
	shift 2
	"$bin/cvm" verify --url "https://127.0.0.1:$SV_PORT" --snapshot "$snap" --collateral "$sim/collateral" \
		--root "$sim/collateral/tdx/intel_sgx_root_ca.der" "$@"
}

# Checks: fail WHAT, pass; expect RC WHAT CMD... (output in $tmp/out);
# has TEXT WHAT ($tmp/out holds TEXT); sv_finish NAME prints the tally and
# exits.
failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }
show() { sed 's/^/    /' "$1" >&2; }

# expect RC WHAT CMD...: runs CMD (output in $tmp/out), wants exit RC.
expect() {
	local want="$1" what="$2" rc=0
	shift 2
	"$@" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$what: exit $rc, expected $want"
		show "$tmp/out"
		return 1
	fi
	pass
}
# has TEXT WHAT: $tmp/out holds the line TEXT (fixed string).
has() {
	grep -qF -- "$1" "$tmp/out" && pass || { fail "$2: no line '$1'"; show "$tmp/out"; }
}

sv_finish() {
	if [ "$failures" -ne 0 ]; then
		echo "$1: FAIL: $failures of $((checks + failures)) checks failed"
		exit 1
	fi
	echo "$1: OK: $checks checks"
	exit 0
}

# sv_snapshot_with OUT [ARGS...] and sv_verify_with SNAPSHOT [ARGS...]: the
# commands against the agent with the caller's collateral and anchor
# options (a cache, another folder, another root).
sv_snapshot_with() {
	local out="$1"
	shift
	"$bin/cvm" snapshot --url "https://127.0.0.1:$SV_PORT" -o "$out" "$@"
}
sv_verify_with() {
	local snap="$1"
	shift
	"$bin/cvm" verify --url "https://127.0.0.1:$SV_PORT" --snapshot "$snap" "$@"
}

# sv_snapshot_snp SIMDIR OUT [ARGS...] and sv_verify_snp SIMDIR SNAPSHOT
# [ARGS...]: the commands against an agent on the simulated SEV-SNP
# (sv_agent_start SIMDIR --platform snp), anchored in the simulator's ARK.
sv_snapshot_snp() {
	local sim="$1" out="$2"
	shift 2
	sv_snapshot_with "$out" --collateral "$sim/collateral" --root "$sim/collateral/snp/ark.pem" "$@"
}
sv_verify_snp() {
	local sim="$1" snap="$2"
	shift 2
	sv_verify_with "$snap" --collateral "$sim/collateral" --root "$sim/collateral/snp/ark.pem" "$@"
}

# sv_cvmkit_ms: the cvmkit share of the time that `cvm verify -v` printed
# into $tmp/out ("time: total T ms = cvmkit C ms + ..."), or nothing.
sv_cvmkit_ms() {
	sed -n 's/^time: total [0-9.]* ms = cvmkit \([0-9.]*\) ms .*/\1/p' "$tmp/out"
}
