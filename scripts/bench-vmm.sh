#!/usr/bin/env bash
# cvm-vmmd's RPC latency with 50 VMs in its state (issue 14): a daemon on a
# temp run_dir holds 50 stopped VMs, each a real database row and work dir
# (compose file, sys-config, qcow2 data disk) made by CreateVm; no QEMU
# runs. One client, one keep-alive connection, side by side in one run:
#   - Version: the daemon's smallest answer (routing, JSON, HTTP), the peer;
#   - Status: the list of all 50 VMs with their configurations;
#   - Status brief: the list without configurations;
#   - GetInfo: one VM by name;
#   - GetComposeHash: lib/app's schema check and the hash of a 1.6 KiB file;
#   - CreateVm + RemoveVm of a stopped VM (qemu-img create, files, two
#     transactions each; fewer iterations).
# Each line: p50 and p99 latency in microseconds, and requests per second.
# The client is python3's http.client: its own cost (~40 us a call here) is
# in every figure, the peer's included.
#
# Usage: scripts/bench-vmm.sh
# Environment: CVM_BUILD_DIR (default build), CVM_BENCH_COUNT (calls per RPC,
# default 2000), CVM_BENCH_VMS (VMs in the state, default 50).
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${CVM_BUILD_DIR:-$src/build}"
case "$build" in
/*) ;;
*) build="$src/$build" ;;
esac
n="${CVM_BENCH_COUNT:-2000}"
vms="${CVM_BENCH_VMS:-50}"
for x in "$n" "$vms"; do
	case "$x" in '' | *[!0-9]* | 0) echo "bench-vmm: CVM_BENCH_COUNT and CVM_BENCH_VMS must be positive integers" >&2; exit 1 ;; esac
done
bin="$build/bin"
[ -x "$bin/cvm-vmmd" ] || { echo "bench-vmm: $bin/cvm-vmmd is missing (build first)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench-vmm: python3 is missing (scripts/setup.sh)" >&2; exit 1; }
command -v qemu-img >/dev/null || { echo "bench-vmm: qemu-img is missing (scripts/setup.sh)" >&2; exit 1; }

T="$(mktemp -d "${TMPDIR:-/tmp}/cvm-bench-vmm.XXXXXX")"
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)"
echo "bench-vmm: ${cpu:-unknown CPU}, $(nproc 2>/dev/null || echo '?') CPUs," \
	"load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"

mkdir -p "$T/img/dev0" "$T/run"
printf '{"bios":"ovmf.fd","version":"0.1.0","is_dev":true}\n' >"$T/img/dev0/metadata.json"
: >"$T/img/dev0/ovmf.fd"
cat >"$T/vmmd.conf" <<CONF
[vmm]
listen = 127.0.0.1:0
run_dir = $T/run
image_dir = $T/img
accel = tcg
log_level = warn
[cvm]
port_range = 20000-29999
max_vcpu = 4
max_memory_mb = 4096
max_disk_gb = 8
cid_pool_size = 1000
CONF
"$bin/cvm-vmmd" -c "$T/vmmd.conf" --port-file "$T/port" >"$T/vmmd.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
	[ -s "$T/port" ] && break
	sleep 0.05
done
[ -s "$T/port" ] || { echo "bench-vmm: cvm-vmmd did not start: $(tail -n 5 "$T/vmmd.log")" >&2; exit 1; }

COMPOSE="$src/tests/vectors/compat/app-compose/near-mpc-test-utils/app_compose.json"
[ -f "$COMPOSE" ] || { echo "bench-vmm: $COMPOSE is missing" >&2; exit 1; }

python3 - "$(cat "$T/port")" "$n" "$vms" "$COMPOSE" <<'PY'
import http.client, json, sys, time

port, n, vms, compose_path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
compose = open(compose_path, "rb").read().decode()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

def call(method, body):
    conn.request("POST", "/prpc/%s?json" % method, body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit("bench-vmm: %s answered %d: %s" % (method, r.status, data[:300]))
    return data

def vm(name, i):
    return {"name": name, "image": "dev0", "compose_file": compose, "vcpu": 1, "memory": 256,
            "disk_size": 1, "stopped": True,
            "ports": [{"protocol": "tcp", "host_port": 20000 + i, "vm_port": 8080}]}

t0 = time.monotonic()
for i in range(vms):
    call("CreateVm", vm("vm%03d" % i, i))
print("bench-vmm: %d VMs created in %.1f s (stopped: database rows, work dirs, qcow2 disks)" %
      (vms, time.monotonic() - t0))
listed = json.loads(call("Status", {}))
assert len(listed["vms"]) == vms, len(listed["vms"])

def bench(label, method, body, count):
    lat = []
    size = 0
    t0 = time.monotonic()
    for _ in range(count):
        s = time.perf_counter()
        size = len(call(method, body))
        lat.append(time.perf_counter() - s)
    wall = time.monotonic() - t0
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6
    print("%-30s p50 %8.0f us   p99 %8.0f us   %8.0f calls/s   (%d calls, answer %d bytes)" %
          (label, p(0.50), p(0.99), count / wall, count, size))

bench("Version (the peer)", "Version", {}, n)
bench("Status, %d VMs" % vms, "Status", {}, n)
bench("Status brief, %d VMs" % vms, "Status", {"brief": True}, n)
bench("GetInfo", "GetInfo", {"id": "vm025" if vms > 25 else "vm000"}, n)
bench("GetComposeHash (1.6 KiB)", "GetComposeHash", {"compose_file": compose}, n)

m = max(20, n // 20)
lat = []
t0 = time.monotonic()
for i in range(m):
    s = time.perf_counter()
    call("CreateVm", vm("churn", 9000))
    call("RemoveVm", {"id": "churn"})
    lat.append(time.perf_counter() - s)
wall = time.monotonic() - t0
lat.sort()
print("%-30s p50 %8.0f us   p99 %8.0f us   %8.1f pairs/s   (%d pairs)" %
      ("CreateVm + RemoveVm", lat[len(lat) // 2] * 1e6, lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e6,
       m / wall, m))
PY
