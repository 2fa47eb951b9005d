#!/usr/bin/env bash
# vm.boot: the guest of `cvm image build` boots under QEMU (TCG, q35, OVMF)
# with a swtpm vTPM and IMA (ima_policy=tcb), cvm-agentd running inside on
# the simulated TEE (tests/common/vm.sh), and from the host:
#  - the agent's TLS listener (forwarded port) passes `cvm cert ratls fetch
#    --require-agent-key` (the RA-TLS certificate of the agent's key, fresh
#    evidence bound to the connection);
#  - `cvm snapshot` of the guest over that listener (GetEvidence over TLS:
#    simulated TDX quote, TPM quote, the guest's IMA list), then `cvm verify
#    -v` against it: every check passes, with the step times; the snapshot
#    is taken with --files (the agent walks the guest's disks) and its file
#    set holds cvm-agentd with the digest IMA measured for it;
# inside the guest (the command channel):
#  - IMA runs with the tcb policy on the TPM (boot_aggregate is not zero);
#  - the IMA list holds cvm-agentd, its libraries and the loader, from the
#    ext4 root;
#  - PCR 10 read from the TPM equals the replay of a prefix of the IMA list
#    (replayed here in Python, without cvmkit's IMA code);
#  - a binary that is not in the image, run from the writable ext4 data
#    disk, appears in the IMA list with its path and digest; the same binary
#    run from a tmpfs does not (tcb does not measure tmpfs); `cvm verify`
#    then fails (exit 3) naming the binary's path and digest;
# after a reboot (QMP system_reset; swtpm keeps its state), `cvm verify`
# reports the reboot (TPM resetCount) on its own line, with the same AK.
# Prints the boot time. Needs qemu-system-x86, ovmf, swtpm, e2fsprogs,
# busybox-static, the guest kernel (scripts/setup.sh), curl, python3.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
SRC="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
# shellcheck source=tests/common/vm.sh
. "$SRC/tests/common/vm.sh"
vm_require
for t in curl python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "vm.boot: FAIL: $t is missing (scripts/setup.sh)"; exit 1; }
done
bin="$(cd "$bin" && pwd)"
t_start=$SECONDS

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-vm-boot.XXXXXX")"
cleanup() {
	vm_stop
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

# The image, with the command channel (--test-channel: a root shell for the
# host, tests only) and the image's own agent config: the dstack API on its
# unix socket only, the TLS listener on port 5555 (GetEvidence included).
if ! "$bin/cvm" image build "$tmp/img" --test-channel >"$tmp/build.out" 2>&1; then
	echo "vm.boot: FAIL: cvm image build:"
	cat "$tmp/build.out"
	exit 1
fi
"$bin/cvm" sim init "$tmp/sim" >/dev/null || { echo "vm.boot: FAIL: cvm sim init"; exit 1; }
COLL="$tmp/sim/collateral"

vm_start "$tmp/img" "$tmp/vm" "$tmp/sim" || { echo "vm.boot: FAIL: the VM did not start"; exit 1; }
if ! vm_wait_agent 150; then
	echo "vm.boot: FAIL: the guest did not come up"
	exit 1
fi
boot1="$VM_BOOT_SECONDS"
echo "vm.boot: guest booted, agent started after $boot1 s (QEMU TCG, OVMF, swtpm)"

# --- from the host ---
if "$bin/cvm" cert ratls fetch "127.0.0.1:$VM_TLS_PORT" --collateral "$COLL" \
	--root "$COLL/tdx/intel_sgx_root_ca.der" --root "$COLL/snp/ark.pem" --require-agent-key \
	>"$tmp/ratls.out" 2>&1 && grep -q '^verdict: accepted' "$tmp/ratls.out" &&
	grep -q "the agent's key" "$tmp/ratls.out"; then
	pass
else
	fail "the TLS listener (host port $VM_TLS_PORT -> guest 5555): expected an accepted RA-TLS fetch of the agent's key, got:"
	sed 's/^/    /' "$tmp/ratls.out" >&2
fi

# The snapshot of the known-good guest, then cvm verify against it, over
# the TLS listener (no dstack API on the network).
URL="https://127.0.0.1:$VM_TLS_PORT"
snap() { "$bin/cvm" snapshot --url "$URL" -o "$tmp/snap.json" --collateral "$COLL" \
	--root "$COLL/tdx/intel_sgx_root_ca.der" --files >"$tmp/snap.out" 2>&1; }
verify() { # verify [ARGS...]: output in $tmp/verify.out, returns cvm verify's exit code
	"$bin/cvm" verify --url "$URL" --snapshot "$tmp/snap.json" --collateral "$COLL" \
		--root "$COLL/tdx/intel_sgx_root_ca.der" "$@" >"$tmp/verify.out" 2>&1
}
t_snap=$SECONDS
if snap; then
	pass
	sed 's/^/vm.boot: /' "$tmp/snap.out"
	echo "vm.boot: cvm snapshot --files took $((SECONDS - t_snap)) s"
else
	fail "cvm snapshot of the guest (exit $?):"
	sed 's/^/    /' "$tmp/snap.out" >&2
fi
if python3 - "$tmp/snap.json" >"$tmp/files.out" 2>&1 <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
f = d["files"]
ima = {e["path"]: e["digest"] for e in d["ima"]["entries"]}
assert f["count"] == len(f["entries"]) > 20, f["count"]
want = "%s /usr/bin/cvm-agentd" % ima["/usr/bin/cvm-agentd"]
assert want in f["entries"], "the file set lacks " + want
assert not any(e.split(" ", 1)[1].startswith(("/proc/", "/sys/", "/dev/", "/run/", "/tmp/")) for e in f["entries"])
print("vm.boot: file set: %d (path, digest) pairs, %d skipped; cvm-agentd's digest equals IMA's"
      % (f["count"], f["skipped"]))
EOF
then
	pass
	cat "$tmp/files.out"
else
	fail "the snapshot's file set:"
	sed 's/^/    /' "$tmp/files.out" >&2
fi
verify -v
rc=$?
if [ "$rc" -eq 0 ] && ! grep -q '^\[FAIL\]' "$tmp/verify.out"; then
	pass
else
	fail "cvm verify right after the snapshot: exit $rc, expected 0 and no [FAIL] line"
fi
sed 's/^/vm.boot: verify: /' "$tmp/verify.out"

# --- inside the guest ---
cmdline="$(vm_exec cat /proc/cmdline)"
case " $cmdline " in
*" ima_policy=tcb "*) pass ;;
*) fail "the guest's /proc/cmdline lacks ima_policy=tcb: '$cmdline'" ;;
esac
vm_exec cat /sys/kernel/security/ima/ascii_runtime_measurements >"$tmp/ima.ascii" ||
	fail "cannot read the guest's IMA list (securityfs)"
first="$(head -n 1 "$tmp/ima.ascii")"
case "$first" in
*"sha256:0000000000000000000000000000000000000000000000000000000000000000 boot_aggregate"*)
	fail "boot_aggregate is zero: IMA ran without the TPM (TPM bypass): '$first'" ;;
*" boot_aggregate") pass ;;
*) fail "the IMA list does not start with boot_aggregate: '$first'" ;;
esac
for f in /usr/bin/cvm-agentd /lib/x86_64-linux-gnu/libcvmkit.so.0 /lib/x86_64-linux-gnu/libcrypto.so.3 \
	/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /lib64/ld-linux-x86-64.so.2 /bin/busybox; do
	if awk -v f="$f" '$5 == f {found = 1} END {exit !found}' "$tmp/ima.ascii"; then
		pass
	else
		fail "the IMA list has no entry for $f (expected: measured from the ext4 root)"
	fi
done

# PCR 10 first, then the list: the list holds at least what PCR 10 covers.
pcr10="$(vm_exec cat /sys/class/tpm/tpm0/pcr-sha256/10 | tr -d '\r\n' | tr 'A-F' 'a-f')"
vm_exec base64 /sys/kernel/security/ima/binary_runtime_measurements | base64 -d >"$tmp/ima.bin" ||
	fail "cannot read the guest's binary IMA list"
if out="$(python3 - "$tmp/ima.bin" "$pcr10" <<'EOF'
import hashlib, struct, sys
d = open(sys.argv[1], "rb").read()
want = sys.argv[2]
pcr, i, n = bytes(32), 0, 0
while i < len(d):
    _p, = struct.unpack_from("<I", d, i); i += 4
    tdig = d[i:i + 20]; i += 20
    nl, = struct.unpack_from("<I", d, i); i += 4 + nl
    dl, = struct.unpack_from("<I", d, i); i += 4
    data = d[i:i + dl]; i += dl
    ext = b"\xff" * 32 if tdig == bytes(20) else hashlib.sha256(data).digest()
    pcr = hashlib.sha256(pcr + ext).digest()
    n += 1
    if pcr.hex() == want:
        print("%d of the entries" % n)
        sys.exit(0)
print("no prefix of the %d entries replays to %s (full replay %s)" % (n, want, pcr.hex()))
sys.exit(1)
EOF
)"; then
	pass
	echo "vm.boot: PCR 10 from the TPM = replay of the IMA list's first $out"
else
	fail "PCR 10 does not match the IMA list: $out"
fi

# A binary not in the image, on the measured data disk, then on a tmpfs.
probe="probe-$(python3 -c 'import os; print(os.urandom(4).hex())')"
# busybox runs as the applet its file is named after: the copy is named
# busybox, in a folder of its own.
vm_exec "mkdir /data/$probe /tmp/$probe && cp /bin/busybox /data/$probe/busybox && echo $probe >>/data/$probe/busybox && /data/$probe/busybox true && cp /data/$probe/busybox /tmp/$probe/busybox && /tmp/$probe/busybox true" >"$tmp/probe.out" ||
	fail "could not run /data/$probe/busybox in the guest: $(cat "$tmp/probe.out")"
want="$(vm_exec sha256sum "/data/$probe/busybox" | cut -d' ' -f1)"
vm_exec cat /sys/kernel/security/ima/ascii_runtime_measurements >"$tmp/ima2.ascii"
got="$(awk -v f="/data/$probe/busybox" '$5 == f {print $4}' "$tmp/ima2.ascii")"
[ "$got" = "sha256:$want" ] && pass ||
	fail "the IMA list's entry for /data/$probe/busybox: expected sha256:$want, got '${got:-none}'"
tmpn="$(awk -v f="/tmp/$probe/busybox" '$5 == f' "$tmp/ima2.ascii" | wc -l)"
[ "$tmpn" -eq 0 ] && pass || fail "/tmp/$probe/busybox (tmpfs) was measured: the tcb policy should not measure tmpfs"
verify -v
rc=$?
[ "$rc" -eq 3 ] && pass || fail "cvm verify after a new binary ran: exit $rc, expected 3"
grep -qF "not in the snapshot: /data/$probe/busybox (sha256:$want)" "$tmp/verify.out" && pass ||
	fail "cvm verify does not name /data/$probe/busybox (sha256:$want) as not in the snapshot"
grep -q '^\[FAIL\] ima: ' "$tmp/verify.out" && pass || fail "cvm verify: no [FAIL] ima line"
sed 's/^/vm.boot: verify: /' "$tmp/verify.out"

# --- a reboot (QMP system_reset): swtpm and the data disk keep their state ---
vm_reboot || fail "the reset failed"
if vm_wait_agent 150; then
	pass
	echo "vm.boot: rebooted, agent started after $VM_BOOT_SECONDS s"
	tail -c +"$((VM_MARK + 1))" "$VM_CONSOLE" | grep -q 'event=tpm_ready .*ak_created=no' && pass ||
		fail "after the reboot the agent made a new AK (expected ak_created=no: the swtpm keeps its state)"
	vm_exec cat /sys/kernel/security/ima/ascii_runtime_measurements >"$tmp/ima3.ascii"
	n3="$(awk -v f="/data/$probe/busybox" '$5 == f' "$tmp/ima3.ascii" | wc -l)"
	[ "$n3" -eq 0 ] && [ "$(head -n 1 "$tmp/ima3.ascii" | awk '{print $5}')" = boot_aggregate ] && pass ||
		fail "after the reboot the IMA list did not start again (entries for /data/$probe/busybox: $n3)"
	verify -v
	rc=$?
	grep -q '^\[ OK \] reboot: the VM rebooted since the snapshot' "$tmp/verify.out" && pass ||
		fail "cvm verify after the reboot does not report it"
	grep -q '^\[ OK \] ak: ' "$tmp/verify.out" && pass || fail "the AK changed across the reboot"
	[ "$rc" -eq 0 ] && pass || fail "cvm verify after the reboot: exit $rc, expected 0 (the probe did not run again)"
	sed 's/^/vm.boot: verify: /' "$tmp/verify.out"
else
	fail "the guest did not come back after the reset"
fi

echo "vm.boot: $checks checks passed, $failures failed; boot $boot1 s, reboot ${VM_BOOT_SECONDS:-?} s, whole test $((SECONDS - t_start)) s"
[ "$failures" -eq 0 ]
