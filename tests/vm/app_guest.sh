#!/usr/bin/env bash
# vm.app_guest: the app guest of `cvm image build --app-runtime` (docs/vm.md)
# boots under QEMU (TCG) with the host-shared folder (9p: app-compose.json,
# the simulated TEE, a docker-save tarball), a qcow2 data disk and the host
# channel; the agent runs on the simulated TEE, with keys the host hands in
# (dev mode: sim/appkeys.json with an env key) in boots 1 and 2 and with
# the local key provider in boot 3.
#  the image: two builds give the same digest; metadata.json names its
#    firmware, kernel, initramfs, root, command line and ACPI probe initrd
#    (dstack's image layout); cvm measure --image predicts its MRTD and
#    RTMR1/2, the same as from the files given one by one;
#  boot 1 (empty disk; a .sys-config.json on the share): the channel
#    reports instance-info and, in order, the storage hook
#    formatting the disk, storage ready, the app starting, dockerd ready,
#    the image loaded and compose up, then the container healthy (compose's
#    healthcheck), and no boot-error; every line is {"event","payload"}
#    JSON; in the guest /dev/vdb is LUKS2 and /data is ext4 on its mapping;
#    RTMR3's log reads key-provider, storage-fs "ext4", system-ready; the
#    compose .env is the allowed part of the sealed environment
#    (.encrypted-env, cvm app encrypt-env), mode 0600; the app's page
#    (hostfwd to the container's port 8080) holds its value and boot count 1; a marker written to /data
#    is not in the disk's bytes on the host (encrypted);
#  boot 2 (same disk, same key): opened, not formatted; the marker is there;
#    the app's volume (on /data) counts boot 2;
#  boot 3 (same disk, the local key provider of another simulated TEE:
#    another disk key): boot-error
#    on the channel saying the disk does not open with the key; no
#    system-ready; the disk's bytes are unchanged.
# Prints the boot, dockerd and compose times. FAILS (does not skip) when
# QEMU, OVMF, swtpm, qemu-img, the guest kernel or the base root is missing:
# scripts/setup.sh installs and makes them.
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
src="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
# shellcheck source=tests/common/vm.sh
. "$src/tests/common/vm.sh"

missing=""
for t in qemu-system-x86_64 qemu-img swtpm python3 curl openssl; do
	command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -r "$VM_OVMF_CODE" ] && [ -r "$VM_OVMF_VARS" ] || missing="$missing OVMF($VM_OVMF_CODE)"
# the whole OVMF (with TDVF metadata) the image build copies into the image
ovmf=/usr/share/ovmf/OVMF.fd
[ -r "$ovmf" ] || missing="$missing OVMF($ovmf)"
kernel="${CVM_GUEST_KERNEL:-/var/cache/cvmkit/guest-kernel/current}"
base="${CVM_GUEST_ROOT:-/var/cache/cvmkit/guest-root/current}"
[ -d "$kernel/boot" ] || missing="$missing guest-kernel($kernel)"
[ -x "$base/usr/sbin/dockerd" ] || missing="$missing base-root($base)"
if [ -n "$missing" ]; then
	echo "vm.app_guest: FAIL: missing:$missing; run scripts/setup.sh (it installs QEMU, OVMF, swtpm, qemu-utils and makes the guest kernel and the app guest's base root)"
	exit 1
fi
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "vm.app_guest: FAIL: $bin/$t is missing (build it first)"; exit 1; }
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-app-guest.XXXXXX")"
trap 'vm_stop; rm -rf "$tmp"' EXIT
failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }
t_start="$(date +%s)"

# The image, the app and the host-shared folders.
"$bin/cvm" -q image build "$tmp/img" --app-runtime --test-channel >/dev/null ||
	{ echo "vm.app_guest: FAIL: cvm image build --app-runtime"; exit 1; }
# Reproducible for a given base root: a second build, the same digest.
"$bin/cvm" -q image build "$tmp/img2" --app-runtime --test-channel >/dev/null ||
	{ echo "vm.app_guest: FAIL: cvm image build --app-runtime (second)"; exit 1; }
d1="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["image_digest"])' "$tmp/img/manifest.json")"
d2="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["image_digest"])' "$tmp/img2/manifest.json")"
[ -n "$d1" ] && [ "$d1" = "$d2" ] && pass || fail "two --app-runtime builds differ: $d1 $d2"
rm -rf "$tmp/img2"
# metadata.json: an image folder of dstack's layout (cvm-vmmd's images)
python3 - "$tmp/img" <<'PY' && pass || fail "metadata.json does not name the image's files"
import json, os, sys
m = json.load(open(os.path.join(sys.argv[1], "metadata.json")))
assert (m["kernel"], m["initrd"], m["rootfs"]) == ("vmlinuz", "initrd.img", "root.ext4"), m
for k in ("kernel", "initrd", "rootfs"):
    assert os.path.isfile(os.path.join(sys.argv[1], m[k])), k
assert m["cmdline"] == open(os.path.join(sys.argv[1], "cmdline")).read().strip(), m
assert m["is_dev"] is True, m
# the firmware it boots with (what cvm measure --image reads) and the ACPI
# probe initrd of its kernel
assert (m["bios"], m["acpi_probe_initrd"]) == ("ovmf.fd", "acpi-probe.img"), m
for k in ("bios", "acpi_probe_initrd"):
    assert os.path.isfile(os.path.join(sys.argv[1], m[k])), k
PY
# The image's MRTD and RTMR1/2 are predicted from the folder alone, and
# its MRTD is the one of the firmware it was built from.
printf '{"memory_size": 2147483648, "cpu_count": 1}\n' >"$tmp/vm-config.json"
"$bin/cvm" measure --image "$tmp/img" --vm-config "$tmp/vm-config.json" --json >"$tmp/measure-image.json" &&
	"$bin/cvm" measure --firmware "$ovmf" --kernel "$tmp/img/vmlinuz" --initrd "$tmp/img/initrd.img" \
		--cmdline "$(cat "$tmp/img/cmdline") initrd=initrd" --memory 2G --cpus 1 --json >"$tmp/measure-files.json" &&
	python3 - "$tmp/measure-image.json" "$tmp/measure-files.json" <<'PY' && pass || fail "cvm measure --image on the app image"
import json, re, sys
img, files = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("mrtd", "rtmr1", "rtmr2"):
    assert re.fullmatch("[0-9a-f]{96}", img[k] or ""), (k, img[k])
    assert img[k] == files[k], (k, img[k], files[k])
PY
mkdir -p "$tmp/shared/images"
"$bin/cvm" sim init "$tmp/shared/sim" >/dev/null || { echo "vm.app_guest: FAIL: cvm sim init"; exit 1; }
python3 "$src/tests/common/mk-docker-image.py" "$tmp/shared/images/app.tar" >/dev/null ||
	{ echo "vm.app_guest: FAIL: mk-docker-image.py"; exit 1; }
greeting="hello-from-env-$RANDOM"
python3 "$src/tests/common/test-app-compose.py" "$tmp/shared/app-compose.json" cvmkit-test-app local ||
	{ echo "vm.app_guest: FAIL: test-app-compose.py"; exit 1; }
# Dev mode keys for boots 1 and 2 (sim/appkeys.json, dstack's .appkeys.json
# with an env key; docs/vm.md) and the environment sealed to that key.
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$tmp/ca.key" &&
	openssl req -x509 -new -key "$tmp/ca.key" -subj "/O=cvmkit test/CN=app guest test CA" -days 1 \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		-out "$tmp/ca.crt" 2>/dev/null || { echo "vm.app_guest: FAIL: openssl"; exit 1; }
env_pub="$(python3 - "$tmp/ca.key" "$tmp/ca.crt" "$tmp/shared/sim/appkeys.json" <<'PY'
import json, os, sys
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
env = os.urandom(32)
k256 = os.urandom(32).hex()
keys = {"disk_crypt_key": os.urandom(32).hex(), "env_crypt_key": env.hex(), "k256_key": k256,
        "k256_signature": "", "gateway_app_id": "any", "ca_cert": open(sys.argv[2]).read(),
        "key_provider": {"None": {"key": open(sys.argv[1]).read()}}}
fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, json.dumps(keys).encode())
os.close(fd)
print(X25519PrivateKey.from_private_bytes(env).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex())
PY
)" || { echo "vm.app_guest: FAIL: the dev mode keys"; exit 1; }
printf 'GREETING=%s\nNOT_ALLOWED=secret\n' "$greeting" >"$tmp/app.env"
"$bin/cvm" app encrypt-env --pubkey "$env_pub" --out "$tmp/shared/.encrypted-env" "$tmp/app.env" >/dev/null ||
	{ echo "vm.app_guest: FAIL: cvm app encrypt-env"; exit 1; }
# sys-config as a host writes it (the agent's wrapper passes it when present)
printf '{"vm_config":"{\\"os_image_hash\\":\\"%s\\",\\"cpu_count\\":1}"}' "$d1" >"$tmp/shared/.sys-config.json"
qemu-img create -q -f qcow2 "$tmp/data.qcow2" 1G || { echo "vm.app_guest: FAIL: qemu-img create"; exit 1; }
export VM_MEMORY=1536 VM_SHARED="$tmp/shared" VM_DATA_DISK="$tmp/data.qcow2" VM_CHANNEL=1 VM_APP_GUEST_PORT=8080

# wait_channel PATTERN TIMEOUT: until a channel line matches (0), a
# boot-error arrives (1) or the time is up (2).
wait_channel() {
	local deadline=$(($(date +%s) + $2))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		grep -qE -- "$1" "$VM_CHANNEL_LOG" && return 0
		grep -q '"event":"boot-error"' "$VM_CHANNEL_LOG" && return 1
		kill -0 "$VM_QEMU_PID" 2>/dev/null || return 2
		sleep 1
	done
	return 2
}
# progress_order LOG PATTERN...: the boot-progress lines matching each
# pattern come in this order.
progress_order() {
	python3 - "$@" <<'PY'
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1]).read().splitlines() if l.strip()]
for o in lines:
    assert list(o) == ["event", "payload"] and o["event"] in ("boot-progress", "boot-error", "instance-info"), o
pos = -1
for pat in sys.argv[2:]:
    idx = [i for i, o in enumerate(lines) if o["event"] == "boot-progress" and re.search(pat, o["payload"])]
    if not idx or idx[0] <= pos:
        sys.exit("'%s' missing or out of order" % pat)
    pos = idx[0]
PY
}
rtmr3_order() { # the storage events of RTMR3's log in the guest
	vm_exec "cat /run/sim/agent/runtime_events.log" | python3 -c '
import base64, json, sys
for l in sys.stdin:
    l = l.strip()
    if not l.startswith("{"):
        continue
    e = json.loads(l)
    if e["event"] in ("key-provider", "storage-fs", "system-ready"):
        p = base64.b64decode(e.get("payload", "")).decode() if e["event"] == "storage-fs" else ""
        print(e["event"], p)
' | tr '\n' ' '
}
page() { curl -s --max-time 10 "http://127.0.0.1:$VM_APP_PORT/"; }

# ---- boot 1: an empty disk ----
vm_start "$tmp/img" "$tmp/vm1" "$tmp/shared/sim" || { echo "vm.app_guest: FAIL: vm_start"; exit 1; }
vm_wait_agent 300 || { echo "vm.app_guest: FAIL: the agent did not start (boot 1)"; cat "$VM_CHANNEL_LOG"; exit 1; }
boot1="$VM_BOOT_SECONDS"
if wait_channel '"app: compose up' 400; then pass; else
	fail "boot 1: no compose up: $(cat "$VM_CHANNEL_LOG")"
	vm_exec "tail -n 20 /run/cvmkit/dockerd.log" >&2
	exit 1
fi
up1=$(python3 -c "import time,sys; print('%.0f' % (time.time() - float(sys.argv[1])))" "$VM_T0")
progress_order "$VM_CHANNEL_LOG" '^storage: formatting /dev/vdb' '^storage: ready' '^app: starting' \
	'^docker: ready in' '^images: loaded app.tar' '^app: compose up' && pass || fail "boot 1: the channel's order: $(cat "$VM_CHANNEL_LOG")"
wait_channel '"health: [^"]*\(healthy\)' 120 && pass || fail "boot 1: the container never reported healthy: $(tail -3 "$VM_CHANNEL_LOG")"
! grep -q '"boot-error"' "$VM_CHANNEL_LOG" && pass || fail "boot 1: a boot-error: $(grep boot-error "$VM_CHANNEL_LOG")"
grep -q '^{"event":"instance-info","payload":{"app_id":"[0-9a-f]\{40\}","instance_id":"[0-9a-f]\{40\}","compose_hash":"[0-9a-f]\{64\}"' "$VM_CHANNEL_LOG" &&
	pass || fail "boot 1: no instance-info line"
out="$(page)"
grep -qx "greeting: $greeting" <<<"$out" && pass || fail "boot 1: the page lacks the environment value: '$out'"
grep -qx "boots: 1" <<<"$out" && pass || fail "boot 1: the page does not count boot 1: '$out'"
grep -qE '^Version:[[:space:]]+2$' <<<"$(vm_exec "cryptsetup luksDump /dev/vdb")" && pass || fail "boot 1: /dev/vdb is not LUKS2"
grep -q '^/dev/mapper/cvm_data /data ext4 ' <<<"$(vm_exec "grep ' /data ' /proc/mounts")" && pass ||
	fail "boot 1: /data is not ext4 on the LUKS mapping"
order="$(rtmr3_order)"
[ "$order" = "key-provider  storage-fs ext4 system-ready  " ] && pass || fail "boot 1: RTMR3's order: '$order'"
envf="$(vm_exec "stat -c %a /run/cvmkit/app/.env; cat /run/cvmkit/app/.env")"
[ "$envf" = "$(printf '600\nGREETING=%s' "$greeting")" ] && pass ||
	fail "boot 1: the compose .env is not the allowed part of the decrypted environment, mode 0600: '$envf'"
marker="cvmkit-marker-$RANDOM$RANDOM"
vm_exec "echo $marker >/data/marker && sync" >/dev/null && pass || fail "boot 1: cannot write /data/marker"
docker_s="$(sed -n 's/.*"docker: ready in \([0-9]*\) s".*/\1/p' "$VM_CHANNEL_LOG" | head -1)"
compose_s="$(sed -n 's/.*"app: compose up in \([0-9]*\) s".*/\1/p' "$VM_CHANNEL_LOG" | head -1)"
vm_stop
qemu-img convert -O raw "$tmp/data.qcow2" "$tmp/data.raw" &&
	! grep -q "$marker" "$tmp/data.raw" && pass || fail "the marker is in the disk's bytes: not encrypted"
rm -f "$tmp/data.raw"

# ---- boot 2: the same disk and key ----
vm_start "$tmp/img" "$tmp/vm2" "$tmp/shared/sim" || { echo "vm.app_guest: FAIL: vm_start (boot 2)"; exit 1; }
vm_wait_agent 300 || { echo "vm.app_guest: FAIL: the agent did not start (boot 2)"; cat "$VM_CHANNEL_LOG"; exit 1; }
wait_channel '"app: compose up' 400 && pass || fail "boot 2: no compose up: $(cat "$VM_CHANNEL_LOG")"
up2=$(python3 -c "import time,sys; print('%.0f' % (time.time() - float(sys.argv[1])))" "$VM_T0")
boot2="$VM_BOOT_SECONDS"
docker_s2="$(sed -n 's/.*"docker: ready in \([0-9]*\) s".*/\1/p' "$VM_CHANNEL_LOG" | head -1)"
compose_s2="$(sed -n 's/.*"app: compose up in \([0-9]*\) s".*/\1/p' "$VM_CHANNEL_LOG" | head -1)"
grep -q '"storage: opening /dev/vdb (LUKS2)"' "$VM_CHANNEL_LOG" && ! grep -q 'formatting' "$VM_CHANNEL_LOG" && pass ||
	fail "boot 2: the disk was not just opened: $(cat "$VM_CHANNEL_LOG")"
[ "$(vm_exec "cat /data/marker")" = "$marker" ] && pass || fail "boot 2: /data/marker is not there"
out="$(page)"
grep -qx "boots: 2" <<<"$out" && pass || fail "boot 2: the app's volume does not count boot 2: '$out'"
vm_stop

# ---- boot 3: another disk key ----
"$bin/cvm" sim init "$tmp/other-sim" >/dev/null || { echo "vm.app_guest: FAIL: cvm sim init"; exit 1; }
# no appkeys.json: the local key provider of another simulated TEE
rm -rf "$tmp/shared/sim" "$tmp/shared/.encrypted-env" && cp -a "$tmp/other-sim" "$tmp/shared/sim"
sum_before="$(sha256sum <"$tmp/data.qcow2")"
vm_start "$tmp/img" "$tmp/vm3" "$tmp/shared/sim" || { echo "vm.app_guest: FAIL: vm_start (boot 3)"; exit 1; }
wait_channel '"app: starting' 300
rc=$?
[ "$rc" -eq 1 ] && pass || fail "boot 3: no boot-error (wait status $rc): $(cat "$VM_CHANNEL_LOG")"
grep -q '"event":"boot-error","payload":"the storage hook [^"]*does not open with this app.s disk key' "$VM_CHANNEL_LOG" && pass ||
	fail "boot 3: the boot-error does not name the key: $(grep boot-error "$VM_CHANNEL_LOG")"
! grep -q '"app: starting"' "$VM_CHANNEL_LOG" && pass || fail "boot 3: the app started"
vm_wait_agent 120 >/dev/null 2>&1 # the agent starts again, unmeasured: the channel answers then
[ "$(vm_exec "grep -c system-ready /run/sim/agent/runtime_events.log")" = 0 ] && pass || fail "boot 3: system-ready recorded"
vm_stop
[ "$(sha256sum <"$tmp/data.qcow2")" = "$sum_before" ] && pass || fail "boot 3: the disk changed"

echo "vm.app_guest: boot 1 (format): agent after $boot1 s, dockerd ready in ${docker_s:-?} s, compose up in ${compose_s:-?} s, app up $up1 s after QEMU started; boot 2 (open): agent after $boot2 s, dockerd ready in ${docker_s2:-?} s, compose up in ${compose_s2:-?} s, app up $up2 s after QEMU started; total $(($(date +%s) - t_start)) s"
echo "vm.app_guest: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]
