#!/usr/bin/env bash
# vm.vmm_e2e: a docker-compose app deployed end to end through cvm-vmmd, as
# an operator does it (docs/daemons/cvm-vmmd.md, docs/vm.md), under QEMU TCG:
#  - a KMS (cvm-kmsd in a simulated CVM, [auth] dev) and cvm-vmmd (dev, the
#    KMS's simulated platform as [vmm] sim_platform, its URL as the guests'
#    kms_urls, the app guest of `cvm image build --app-runtime` as image);
#  - `cvm vm deploy -v --env-file --kms-pubkey` of a compose app (an HTTP
#    server from a locally built docker-save tarball, [vmm] app_image_dir)
#    with an environment variable sealed to the KMS's env key for the app
#    (fetched through cvm-vmmd's GetAppEnvEncryptPubKey, the KMS's signature
#    checked; `cvm app encrypt-env --kms` against the KMS itself is checked
#    too): it waits for the app to be up and prints
#    the phases (vmm, boot, kms, app), checked to be there and to add up;
#  - the page through the mapped port holds the variable's value (the guest
#    got the env key from the KMS and kept only allowed_envs);
#  - the guest's evidence (GetEvidence over its RA-TLS listener, through a
#    mapped port) verifies with the platform's collateral, its event log
#    replays to RTMR0..3; MRTD and RTMR0..2 are `cvm measure --image
#    --vm-config`'s prediction from the image, the VM's vm_config and an
#    ACPI probe of the command line the VM's QEMU ran (and cvm-vmmd's own
#    GetInfo measurement); RTMR3's compose-hash event is the SHA-256 of the
#    exact compose bytes, app-id the VM's, key-provider the KMS;
#  - cvm vm stop powers the guest off in order (ACPI power button: the app
#    stopped, the disk closed) well before stop_timeout; the data disk
#    (qcow2) holds a LUKS2 header; the instance id seed the guest reported
#    is kept in shared/.instance_info, so after a start the guest has the
#    same instance id, hence the same KMS disk key: the disk opens, is not
#    formatted again, and the app's volume on it counts boot 2;
#  - a second VM of the same image with one more kernel argument gets the
#    same MRTD, RTMR0 (the probe's cache) and RTMR1, and another RTMR2.
# Prints the deploy phases and the time of each step. FAILS (does not skip)
# when QEMU, OVMF, swtpm, qemu-img, the guest kernel or base root is missing.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="$(cd "${CVM_BIN:?CVM_BIN must point at build/bin}" && pwd)"
src="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-vmm-e2e.XXXXXX")"
# shellcheck source=tests/common/kms.sh
. "$src/tests/common/kms.sh"
pass() { check; }
# shellcheck source=tests/common/vmm_stack.sh
. "$src/tests/common/vmm_stack.sh"
cleanup() {
	stack_cleanup
	[ -n "${KEEP:-}" ] && echo "vm.vmm_e2e: kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

kms_need vm.vmm_e2e qemu-system-x86_64 qemu-img swtpm python3 curl openssl
kernel="${CVM_GUEST_KERNEL:-/var/cache/cvmkit/guest-kernel/current}"
base="${CVM_GUEST_ROOT:-/var/cache/cvmkit/guest-root/current}"
for p in /usr/share/ovmf/OVMF.fd "$kernel/boot" "$base/usr/sbin/dockerd"; do
	[ -e "$p" ] || {
		echo "vm.vmm_e2e: FAIL: $p is missing: run scripts/setup.sh (it installs OVMF and makes the guest kernel and the app guest's base root)"
		exit 1
	}
done
for t in cvm cvm-agentd cvm-kmsd cvm-vmmd; do
	[ -x "$bin/$t" ] || { echo "vm.vmm_e2e: FAIL: $bin/$t is missing (build it first)"; exit 1; }
done
t_start="$(date +%s)"
step() { echo "vm.vmm_e2e: [$(($(date +%s) - t_start)) s] $*"; }

# ---- 1-3. the KMS, the image and app, cvm-vmmd (tests/common/vmm_stack.sh) --
stack_kms || { echo "vm.vmm_e2e: FAIL: the KMS"; exit 1; }
step "KMS on 127.0.0.1:$kport"
stack_image || { echo "vm.vmm_e2e: FAIL: the image"; exit 1; }
step "image and app tarball built"
# the environment sealed with `cvm app encrypt-env --kms --kms-pubkey`: the
# KMS's signature over the app's env key checked
stack_app && pass || { fail "the app's compose file and sealed environment"; kms_report vm.vmm_e2e; exit 1; }
http_port="$(stack_free_port)"
tls_port="$(stack_free_port)"
stack_vmmd "$http_port" "$tls_port" || { echo "vm.vmm_e2e: FAIL: cvm-vmmd"; exit 1; }

# ---- 4. deploy, and wait for the app ----------------------------------------
step "deploy"
"$bin/cvm" vm deploy -v --timeout 600 --name e2e --image app --compose "$tmp/app-compose.json" \
	--env-file "$tmp/app.env" --kms-pubkey "$kms_pub" --app-image app.tar --vcpu 1 --memory 1536 --disk 1 \
	--port "tcp:127.0.0.1:$http_port:8080" --port "tcp:127.0.0.1:$tls_port:5555" \
	>"$tmp/deploy.out" 2>"$tmp/deploy.err"
rc=$?
cat "$tmp/deploy.out"
if [ "$rc" != 0 ]; then
	fail "cvm vm deploy -v exited $rc: $(tail -n 5 "$tmp/deploy.err")"
	tail -n 40 "$tmp"/run/*/serial.log >&2 2>/dev/null
	tail -n 20 "$tmp/vmmd.log" >&2
	kms_report vm.vmm_e2e
	exit 1
fi
step "the app is up"
grep -q "keys: from the KMS" "$tmp/deploy.err" && pass || fail "deploy -v did not show the KMS keys arriving"
python3 - "$tmp/deploy.out" <<'PY' && pass || fail "deploy -v phases: $(cat "$tmp/deploy.out")"
import re, sys
t = {}
for line in open(sys.argv[1]):
    m = re.match(r"\s+(vmm|boot|kms|app|total)\s+([0-9.]+) s", line)
    if m:
        t[m.group(1)] = float(m.group(2))
assert set(t) == {"vmm", "boot", "kms", "app", "total"}, t
parts = t["vmm"] + t["boot"] + t["kms"] + t["app"]
assert abs(parts - t["total"]) < 1.5, (parts, t)
assert t["boot"] > 1 and t["app"] > 1, t
PY
id="$(tail -n 1 "$tmp/deploy.out")"
wd="$tmp/run/$id"
[ -d "$wd" ] && pass || { fail "no work dir for VM '$id'"; kms_report vm.vmm_e2e; exit 1; }

# the page: the sealed value, through the KMS's env key and allowed_envs
page="$(curl -sf --max-time 10 "http://127.0.0.1:$http_port/")"
grep -qx "greeting: $greeting" <<<"$page" && pass || fail "the page does not hold the sealed GREETING: '$page'"
grep -qx "boots: 1" <<<"$page" && pass || fail "the page does not count boot 1: '$page'"

# ---- 5. the evidence, against the prediction --------------------------------
nonce="$(openssl rand -hex 32)"
curl -sk --max-time 30 "https://127.0.0.1:$tls_port/GetEvidence" -H 'Content-Type: application/json' \
	-d "{\"nonce\":\"$nonce\"}" >"$tmp/bundle.json" || fail "GetEvidence over the agent's TLS listener"
col="$platform/collateral"
"$bin/cvm" evidence verify "$tmp/bundle.json" --nonce "$nonce" --collateral "$col/tdx" \
	--root "$col/tdx/intel_sgx_root_ca.der" >"$tmp/verify.out" 2>&1 && pass ||
	fail "cvm evidence verify: $(cat "$tmp/verify.out")"
python3 - "$tmp/bundle.json" "$tmp/quote.bin" "$tmp/vm_config.json" "$tmp/rtmr3.txt" <<'PY' || fail "the bundle has no quote or vm_config"
import json, sys
b = json.load(open(sys.argv[1]))
open(sys.argv[2], "wb").write(bytes.fromhex(b["quote"]))
open(sys.argv[3], "w").write(b["vm_config"])
with open(sys.argv[4], "w") as f:
    for e in b["event_log"]:
        if e["imr"] == 3:
            f.write("%s %s\n" % (e["event"], e["event_payload"]))
PY
awk '$1 == "compose-hash" {print $2}' "$tmp/rtmr3.txt" | grep -qx "$compose_sha" && pass ||
	fail "RTMR3's compose-hash is not the SHA-256 of the compose file's bytes ($compose_sha)"
awk '$1 == "app-id" {print $2}' "$tmp/rtmr3.txt" | grep -qx "$app_id" && pass || fail "RTMR3's app-id is not the VM's ($app_id)"
kp="$(awk '$1 == "key-provider" {print $2}' "$tmp/rtmr3.txt" | xxd -r -p)"
spki="$(openssl x509 -in "$tmp/kms1/roots/epoch-0/root-ca.crt" -pubkey -noout | openssl pkey -pubin -outform DER | od -An -v -tx1 | tr -d ' \n')"
[ "$kp" = "{\"name\":\"kms\",\"id\":\"$spki\"}" ] && pass || fail "RTMR3's key-provider is not the KMS: $kp"
# cvm-vmmd's own account of the launch (GetInfo's measurement)
curl -sf "$CVM_VMM_URL/prpc/GetInfo?json" -d "{\"id\":\"$id\"}" >"$tmp/info.json" || fail "GetInfo"
python3 - "$tmp/info.json" "$tmp/quote.bin" <<'PY' && pass || fail "GetInfo's measurement is not the quote's"
import json, sys
m = json.load(open(sys.argv[1]))["info"]["measurement"]
q = open(sys.argv[2], "rb").read()
body = q[48:48 + 584]
assert m["measured"] is True, m
assert bytes.fromhex(m["mrtd"]) == body[136:184], "mrtd"
for i in range(3):
    assert bytes.fromhex(m["rtmr%d" % i]) == body[328 + 48 * i:376 + 48 * i], "rtmr%d" % i
PY

# ---- 6. stop: the disk at rest, the independent prediction ------------------
qemu_pid="$(cat "$wd/qemu.pid")"
tr '\0' '\n' <"/proc/$qemu_pid/cmdline" | tail -n +2 >"$tmp/qemu.args"
step "stop"
# the instance id seed the guest reported, kept for the next boot
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["app_id"] == sys.argv[2] and len(d["instance_id_seed"]) == 40, d' \
	"$wd/shared/.instance_info" "$app_id" && pass || fail "shared/.instance_info does not keep the instance id seed: $(cat "$wd/shared/.instance_info")"
t_stop="$(date +%s)"
"$bin/cvm" vm stop e2e >/dev/null || fail "cvm vm stop"
for _ in $(seq 1 120); do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 1; done
kill -0 "$qemu_pid" 2>/dev/null && fail "QEMU still runs 120 s after cvm vm stop"
# an orderly power-off (the ACPI power button), well before stop_timeout (60 s)
grep -q "cvm-guest: shutdown: stopping the app" "$wd/serial.log" && [ $(($(date +%s) - t_stop)) -lt 50 ] && pass ||
	fail "cvm vm stop: the guest did not power off in order within 50 s ($(($(date +%s) - t_stop)) s)"
qemu-img dd -f qcow2 -O raw if="$wd/hda.img" of="$tmp/head.raw" bs=4096 count=1 2>/dev/null
[ "$(head -c 8 "$tmp/head.raw" | od -An -tx1 | tr -d ' \n')" = "4c554b53babe0002" ] && pass ||
	fail "the data disk does not start with a LUKS2 header"
mapfile -t args <"$tmp/qemu.args"
step "ACPI probe of the VM's own command line"
"$bin/cvm" measure acpi-probe --probe-initrd "$tmp/images/app/acpi-probe.img" --kernel "$tmp/images/app/vmlinuz" \
	--out "$tmp/acpi" --work "$tmp/probe" -- "${args[@]}" >"$tmp/probe.out" 2>&1 ||
	fail "cvm measure acpi-probe: $(tail -n 5 "$tmp/probe.out")"
"$bin/cvm" measure --image "$tmp/images/app" --vm-config "$tmp/vm_config.json" \
	--acpi-files "$tmp/acpi/table-loader.bin,$tmp/acpi/rsdp.bin,$tmp/acpi/tables.bin" \
	--quote "$tmp/quote.bin" >"$tmp/measure.out" 2>&1 && pass ||
	fail "cvm measure's prediction is not the quote's MRTD/RTMR0..2: $(cat "$tmp/measure.out")"

# ---- 7. start again: the same key opens the same disk -----------------------
step "start again"
"$bin/cvm" vm start e2e >/dev/null || fail "cvm vm start"
up=""
for _ in $(seq 1 300); do
	page="$(curl -sf --max-time 5 "http://127.0.0.1:$http_port/" 2>/dev/null)" && up=1 && break
	sleep 2
done
[ -n "$up" ] && pass || fail "the app is not up again after a start"
grep -qx "boots: 2" <<<"$page" && pass || fail "the app's volume on the data disk does not count boot 2: '$page'"
grep -qx "greeting: $greeting" <<<"$page" && pass || fail "boot 2: the page lost GREETING: '$page'"
curl -sf "$CVM_VMM_URL/prpc/GetInfo?json" -d "{\"id\":\"$id\"}" >"$tmp/info2.json"
python3 - "$tmp/info2.json" <<'PY' && pass || fail "boot 2 formatted the data disk, or did not open it"
import json, sys
h = [e["progress"] for e in json.load(open(sys.argv[1]))["info"]["boot_history"]]
last = max(i for i, p in enumerate(h) if p == "start requested")
this = h[last:]
assert any(p.startswith("storage: opening") for p in this), this
assert not any(p.startswith("storage: formatting") for p in this), this
PY

# ---- 8. a changed command line is a changed register ------------------------
# The same image with one more kernel argument, in a second VM of the same
# shape: its launch measurement (the probe's cache: same devices) differs
# in RTMR2 only. The VM is stopped as soon as its QEMU runs.
step "a changed command line"
cp -al "$tmp/images/app" "$tmp/images/app-cmdline"
python3 - "$tmp/images/app-cmdline/metadata.json" <<'PY'
import json, os, sys
m = json.load(open(sys.argv[1]))
m["cmdline"] += " cvm.test=1"
os.unlink(sys.argv[1])  # a hard link to the first image's: replaced, not changed
json.dump(m, open(sys.argv[1], "w"), indent=2)
PY
"$bin/cvm" vm deploy --name e2e-cmdline --image app-cmdline --compose "$tmp/app-compose.json" --vcpu 1 \
	--memory 1536 --disk 1 >/dev/null || fail "deploy of the changed command line"
for _ in $(seq 1 120); do
	curl -sf "$CVM_VMM_URL/prpc/GetInfo?json" -d '{"id":"e2e-cmdline"}' >"$tmp/info3.json"
	grep -q '"status":"running"' "$tmp/info3.json" && break
	sleep 0.5
done
"$bin/cvm" vm stop -f e2e-cmdline >/dev/null || fail "stop -f e2e-cmdline"
python3 - "$tmp/info.json" "$tmp/info3.json" <<'PY' && pass || fail "a changed command line: $(cat "$tmp/info3.json")"
import json, sys
a = json.load(open(sys.argv[1]))["info"]["measurement"]
b = json.load(open(sys.argv[2]))["info"]["measurement"]
assert b["measured"] and b["acpi_from_cache"], b
# the measured command line: the image's, then OVMF's "initrd=initrd"
want = a["inputs"]["cmdline"].replace(" initrd=initrd", " cvm.test=1 initrd=initrd")
assert b["inputs"]["cmdline"] == want and want != a["inputs"]["cmdline"], (a["inputs"]["cmdline"], b["inputs"]["cmdline"])
assert a["mrtd"] == b["mrtd"] and a["rtmr0"] == b["rtmr0"] and a["rtmr1"] == b["rtmr1"], "only RTMR2 may change"
assert a["rtmr2"] != b["rtmr2"], "RTMR2 did not change"
PY
step "done"
kms_report vm.vmm_e2e
