#!/usr/bin/env bash
# cvm measure, end to end:
#  - lite on the tdx-lite GetQuote fixture reproduces its quote's MRTD and
#    RTMR0..2 (exit 0, four "matches") and binds the document to
#    os_image_hash (another os_image_hash: exit 3); the same vm_config with 4 GiB of
#    memory gives another RTMR0 and exit 3; --single-pass another MRTD;
#    --vm-config + --event-log + --quote (hex) is the same computation;
#  - the full form on Debian's OVMF.fd and guest kernel: deterministic JSON,
#    --acpi-from-log takes the fixture's three ACPI digests, --acpi-files
#    hashes three blobs, the default
#    order is single pass (QEMU >= 9) and --two-pass changes only MRTD;
#  - --image DIR --vm-config FILE equals the full form with the image's
#    command line + " initrd=initrd" and the vm_config's memory and order;
#  - diff names the changed input: same -> 0, memory -> RTMR1 kernel
#    authenticode and the TD HOB, exit 3;
#  - a split OVMF_CODE.fd is refused (exit 1) with a message naming OVMF.fd;
#    usage errors exit 2.
# Fails (does not skip) when OVMF or the guest kernel is missing.
# Needs: $CVM_BIN/cvm, python3, Debian's ovmf and guest kernel.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
FIX_REL=compat/verifier/dstack-verifier-fixtures/tdx-lite-getquote.json
vectors_require "$FIX_REL"
FIX="$VECTORS/$FIX_REL"
OVMF=/usr/share/ovmf/OVMF.fd
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
[ -x "$CVM" ] || fail "$CVM is missing or not executable (set CVM_BIN)"
command -v python3 >/dev/null || fail "python3 is missing (scripts/setup.sh)"
[ -f "$OVMF" ] || fail "$OVMF is missing: install Debian's ovmf package (scripts/setup.sh)"
KERNEL="$(ls /var/cache/cvmkit/guest-kernel/current/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)"
[ -n "$KERNEL" ] || fail "no guest kernel in /var/cache/cvmkit/guest-kernel/current/boot (docs/vm.md)"

work="$(mktemp -d)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
jq_py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
expect_rc() {
	local want="$1"
	shift
	set +e
	"$@" >"$work/out" 2>"$work/err"
	local rc=$?
	set -e
	[ "$rc" -eq "$want" ] || {
		cat "$work/out" "$work/err" >&2
		fail "'$*' exited $rc, not $want"
	}
}

# ---- lite --------------------------------------------------------------
expect_rc 0 "$CVM" measure lite "$FIX"
[ "$(grep -c 'matches' "$work/out")" -eq 4 ] || fail "lite: not all four registers match the quote"
grep -q 'checksum file is os_image_hash; it lists measurement.tdx.cbor' "$work/out" ||
	fail "lite: the document's binding to os_image_hash is not reported"
echo "ok: lite reproduces the fixture's quote"

python3 - "$FIX" "$work" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
vm = json.loads(d["vm_config"])
open(sys.argv[2] + "/vm.json", "w").write(d["vm_config"])
open(sys.argv[2] + "/log.json", "w").write(d["event_log"])
open(sys.argv[2] + "/quote.hex", "w").write(d["quote"] + "\n")
vm["memory_size"] = 4 << 30
d["vm_config"] = json.dumps(vm)
json.dump(d, open(sys.argv[2] + "/fix4g.json", "w"))
vm["memory_size"] = 2 << 30
vm["os_image_hash"] = "00" * 32
d["vm_config"] = json.dumps(vm)
json.dump(d, open(sys.argv[2] + "/fixhash.json", "w"))
PY
expect_rc 3 "$CVM" measure lite "$work/fix4g.json"
grep -q 'RTMR0 DIFFERS' "$work/out" || fail "lite at 4 GiB: RTMR0 should differ"
grep -q 'RTMR1 matches' "$work/out" || fail "lite at 4 GiB: RTMR1 should still match"
echo "ok: lite at 4 GiB: RTMR0 differs, exit 3"
expect_rc 3 "$CVM" measure lite "$work/fixhash.json"
grep -q 'checksum file is NOT os_image_hash' "$work/out" || fail "lite: another os_image_hash not caught"
echo "ok: lite with another os_image_hash: the registers match but the image is not bound, exit 3"
expect_rc 3 "$CVM" measure lite "$FIX" --single-pass
grep -q 'MRTD DIFFERS' "$work/out" || fail "lite --single-pass: MRTD should differ"
expect_rc 0 "$CVM" measure lite --vm-config "$work/vm.json" --event-log "$work/log.json" \
	--quote "$work/quote.hex" --json
[ "$(jq_py "$work/out" 'all(d["quote_matches"].values())')" = True ] || fail "lite from files: not all match"
echo "ok: lite from --vm-config/--event-log/--quote"

# ---- full ---------------------------------------------------------------
head -c 3000000 /dev/zero >"$work/initrd"
full() {
	"$CVM" measure --firmware "$OVMF" --kernel "$KERNEL" --initrd "$work/initrd" \
		--cmdline "console=ttyS0 initrd=initrd" --memory 2G --cpus 2 --acpi-from-log "$FIX" --json "$@"
}
full >"$work/a.json"
full >"$work/a2.json"
cmp -s "$work/a.json" "$work/a2.json" || fail "the full computation is not deterministic"
[ "$(jq_py "$work/a.json" 'd["inputs"]["mrtd_order"]')" = single_pass ] || fail "default order is not single pass"
[ "$(jq_py "$work/a.json" 'd["events"]["rtmr0"][8]["digest"]')" = \
	095d04cf26fe03aef6e3561fa24c1aa1cea93f4aeaf563b1f9f7616184c53454875925759434769cec2490acb563a337 ] ||
	fail "--acpi-from-log did not take the fixture's table-loader digest"
[ "$(jq_py "$work/a.json" 'len(d["events"]["rtmr0"]), len(d["events"]["rtmr1"]), len(d["events"]["rtmr2"])')" = \
	"13 5 2" ] || fail "event counts are not 13, 5, 2"
full --two-pass >"$work/t.json"
[ "$(jq_py "$work/a.json" 'd["mrtd"]')" != "$(jq_py "$work/t.json" 'd["mrtd"]')" ] || fail "two pass: same MRTD"
[ "$(jq_py "$work/a.json" 'd["rtmr1"]')" = "$(jq_py "$work/t.json" 'd["rtmr1"]')" ] || fail "two pass changed RTMR1"
echo "ok: full form, deterministic, orders differ"
printf 'loader' >"$work/l"
printf 'rsdp' >"$work/r"
printf 'tables' >"$work/t"
"$CVM" measure --firmware "$OVMF" --kernel "$KERNEL" --memory 2G --acpi-files "$work/l,$work/r,$work/t" \
	--json >"$work/f.json"
[ "$(jq_py "$work/f.json" '[e["digest"] for e in d["events"]["rtmr0"][8:11]]')" = \
	"$(python3 -c 'import hashlib; print([hashlib.sha384(x).hexdigest() for x in (b"loader", b"rsdp", b"tables")])')" ] ||
	fail "--acpi-files: the RTMR0 ACPI events are not the blobs' SHA-384"
echo "ok: --acpi-files hashes the three blobs"

# ---- --image ------------------------------------------------------------
mkdir "$work/img"
cp "$OVMF" "$work/img/ovmf.fd"
cp "$KERNEL" "$work/img/bzImage"
cp "$work/initrd" "$work/img/initramfs.cpio.gz"
printf '{"bios":"ovmf.fd","kernel":"bzImage","initrd":"initramfs.cpio.gz","cmdline":"console=ttyS0","version":"0.5.8"}' \
	>"$work/img/metadata.json"
printf '{"cpu_count":2,"memory_size":2147483648,"qemu_version":"9.1.0"}' >"$work/vmc.json"
"$CVM" measure --image "$work/img" --vm-config "$work/vmc.json" --acpi-from-log "$FIX" --json >"$work/i.json"
for k in mrtd rtmr0 rtmr1 rtmr2; do
	[ "$(jq_py "$work/i.json" "d['$k']")" = "$(jq_py "$work/a.json" "d['$k']")" ] ||
		fail "--image: $k differs from the full form"
done
echo "ok: --image DIR --vm-config equals the full form"

# ---- diff ---------------------------------------------------------------
expect_rc 0 "$CVM" measure diff "$work/a.json" "$work/a2.json"
full --memory 1G >"$work/b.json"
expect_rc 3 "$CVM" measure diff "$work/a.json" "$work/b.json"
grep -q 'RTMR1 differs: event 0 .*kernel authenticode changed' "$work/out" || fail "diff does not name the kernel"
grep -q 'RTMR0 differs: event 0 (TD HOB' "$work/out" || fail "diff does not name the TD HOB"
grep -q 'input memory_size: 2147483648 -> 1073741824' "$work/out" || fail "diff does not name the memory"
echo "ok: diff names the memory change"

# ---- SEV-SNP launch digest ---------------------------------------------
# sev-snp-measure's test_snp_default (tests/vectors/snp-measure/expected.json):
# its kernel and initrd are /dev/null, i.e. empty files.
SNPV="$VECTORS/snp-measure"
SNP_REPORT="$VECTORS/snp/trustee-milan-vcek/report.bin"
[ -f "$SNP_REPORT" ] || fail "tests/vectors/snp/trustee-milan-vcek/report.bin is missing"
: >"$work/empty"
want=803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977
snp_args=(--firmware "$SNPV/ovmf_AmdSev_suffix.bin" --kernel "$work/empty" --initrd "$work/empty"
	--cmdline "console=ttyS0 loglevel=7" --vcpus 1 --vcpu-type EPYC-v4 --guest-features 0x21)
expect_rc 0 "$CVM" measure snp "${snp_args[@]}"
grep -qx "MEASUREMENT $want" "$work/out" || fail "measure snp: not sev-snp-measure's digest"
expect_rc 0 "$CVM" --json measure snp "${snp_args[@]}" --explain
[ "$(jq_py "$work/out" 'd["measurement"]')" = "$want" ] || fail "measure snp --json: wrong measurement"
[ "$(jq_py "$work/out" 'len(d["steps"])')" = 9 ] || fail "measure snp --json: not 9 steps"
# a real report (another guest): exit 3; the same report with our digest as
# its MEASUREMENT (offset 0x90; its signature is then wrong, which measure
# does not check): exit 0, in binary and in hex
expect_rc 3 "$CVM" measure snp "${snp_args[@]}" --report "$SNP_REPORT"
grep -q 'report: MEASUREMENT DIFFERS' "$work/out" || fail "measure snp --report: no DIFFERS line"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[0x90:0xc0] = bytes.fromhex(sys.argv[2]); open(sys.argv[3], "wb").write(b); open(sys.argv[4], "w").write(b.hex() + "\n")' \
	"$SNP_REPORT" "$want" "$work/snp-report.bin" "$work/snp-report.hex"
expect_rc 0 "$CVM" measure snp "${snp_args[@]}" --report "$work/snp-report.bin"
grep -q 'report: MEASUREMENT matches' "$work/out" || fail "measure snp --report: no match line"
expect_rc 0 "$CVM" --json measure snp "${snp_args[@]}" --report "$work/snp-report.hex"
[ "$(jq_py "$work/out" 'd["report_matches"]')" = True ] || fail "measure snp --report (hex): no match"
# 4 vCPUs, feature SNP only, no cmdline (test_snp_with_multiple_vcpus_feature_snp_only)
expect_rc 0 "$CVM" measure snp --firmware "$SNPV/ovmf_AmdSev_suffix.bin" --kernel "$work/empty" \
	--initrd "$work/empty" --vcpus 4
grep -qx 'MEASUREMENT 5061fffb019493a903613d56d54b94912a1a2f9e4502385f5c194616753720a92441310ba6c4933de877c36e23046ad5' "$work/out" ||
	fail "measure snp 4 vCPUs: not sev-snp-measure's digest"
# errors: a kernel on an OVMF without kernel hashes (Debian's OVMF.fd), an
# unknown CPU model, no --vcpus, a file that is no report
expect_rc 1 "$CVM" measure snp --firmware "$OVMF" --kernel "$work/empty" --vcpus 1
grep -q 'AmdSev' "$work/err" || fail "measure snp: the message does not say which OVMF to use"
expect_rc 0 "$CVM" measure snp --firmware "$OVMF" --vcpus 2
expect_rc 2 "$CVM" measure snp --firmware "$OVMF" --vcpus 1 --vcpu-type Skylake-Server
expect_rc 2 "$CVM" measure snp --firmware "$OVMF"
expect_rc 1 "$CVM" measure snp --firmware "$OVMF" --vcpus 1 --report "$work/empty"
echo "ok: measure snp reproduces sev-snp-measure and compares with a report"

# ---- errors -------------------------------------------------------------
expect_rc 1 "$CVM" measure --firmware /usr/share/OVMF/OVMF_CODE.fd --kernel "$KERNEL" --memory 2G
grep -q 'OVMF.fd' "$work/err" || fail "a split OVMF_CODE.fd: the message does not name OVMF.fd"
expect_rc 2 "$CVM" measure --kernel "$KERNEL"
expect_rc 2 "$CVM" measure --firmware "$OVMF" --kernel "$KERNEL" --memory 2X
expect_rc 2 "$CVM" measure diff "$work/a.json"
expect_rc 2 "$CVM" measure --acpi-digests 00,11 --firmware "$OVMF" --kernel "$KERNEL" --memory 2G
expect_rc 2 "$CVM" measure --acpi-files "$work/l,$work/r" --firmware "$OVMF" --kernel "$KERNEL" --memory 2G
echo "ok: errors"
echo "PASS"
