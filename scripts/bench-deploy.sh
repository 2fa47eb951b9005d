#!/usr/bin/env bash
# Deploy to app reachable under TCG (issue 14): the stack of vm.vmm_e2e (a
# KMS in a simulated CVM, cvm-vmmd in dev mode, the app guest image, a
# compose app with a sealed environment; tests/common/vmm_stack.sh), then
# `cvm vm deploy -v` twice, side by side in one run:
#   - cold: the first VM of its shape, whose launch measurement runs the
#     ACPI probe (a QEMU boot of the VM's own command line);
#   - warm: a second VM of the same shape (the first stopped), whose
#     measurement reads the probe's cache.
# Each prints the phases from the VM's progress history: vmm (create,
# measurement, QEMU), boot (firmware, kernel, agent to its key request), kms
# (GetAppKey over mutual RA-TLS), app (LUKS2 format, Docker, image load,
# compose up, healthcheck), total; and the time until the app's page
# answers through the mapped port, measured by this script.
#
# Usage: scripts/bench-deploy.sh   (about 5 minutes on 2 cores)
# Environment: CVM_BUILD_DIR (default build).
set -uo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${CVM_BUILD_DIR:-$src/build}"
case "$build" in
/*) ;;
*) build="$src/$build" ;;
esac
bin="$build/bin"
for t in cvm cvm-agentd cvm-kmsd cvm-vmmd; do
	[ -x "$bin/$t" ] || { echo "bench-deploy: $bin/$t is missing (build first)" >&2; exit 1; }
done
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-bench-deploy.XXXXXX")"
# shellcheck source=tests/common/kms.sh
. "$src/tests/common/kms.sh"
# shellcheck source=tests/common/vmm_stack.sh
. "$src/tests/common/vmm_stack.sh"
trap 'stack_cleanup; rm -rf "$tmp"' EXIT
kms_need bench-deploy qemu-system-x86_64 qemu-img swtpm python3 curl openssl

stack_kms || exit 1
stack_image || exit 1
stack_app || exit 1
p1="$(stack_free_port)"
p2="$(stack_free_port)"
stack_vmmd "$p1" "$p2" || exit 1

# deploy NAME PORT: cvm vm deploy -v; the phases in $tmp/NAME.out, the time
# until the page answers in $tmp/NAME.page_s.
deploy() {
	local t0 t
	t0="$(date +%s.%N)"
	"$bin/cvm" vm deploy -v --timeout 900 --name "$1" --image app --compose "$tmp/app-compose.json" \
		--encrypted-env "$tmp/app.env.sealed" --app-image app.tar --vcpu 1 --memory 1536 --disk 1 \
		--port "tcp:127.0.0.1:$2:8080" >"$tmp/$1.out" 2>"$tmp/$1.err" ||
		{ echo "bench-deploy: deploy $1 failed: $(tail -n 3 "$tmp/$1.err")" >&2; return 1; }
	for _ in $(seq 1 600); do
		curl -sf --max-time 2 "http://127.0.0.1:$2/" | grep -q "greeting: $greeting" && break
		sleep 0.2
	done
	t="$(date +%s.%N)"
	python3 -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t" >"$tmp/$1.page_s"
	curl -sf "$CVM_VMM_URL/prpc/GetInfo?json" -d "{\"id\":\"$1\"}" >"$tmp/$1.info.json"
}

echo "bench-deploy: cold (the ACPI probe runs)..." >&2
deploy cold "$p1" || exit 1
"$bin/cvm" vm stop cold >/dev/null || exit 1
for _ in $(seq 1 120); do
	"$bin/cvm" vm ls | grep -q " cold .*stopped" && break
	sleep 1
done
echo "bench-deploy: warm (the probe's cache)..." >&2
deploy warm "$p2" || exit 1

python3 - "$tmp" <<'PY'
import json, re, sys
rows = {}
for name in ("cold", "warm"):
    t = {}
    for line in open("%s/%s.out" % (sys.argv[1], name)):
        m = re.match(r"\s+(vmm|boot|kms|app|total)\s+([0-9.]+) s", line)
        if m:
            t[m.group(1)] = float(m.group(2))
    t["page"] = float(open("%s/%s.page_s" % (sys.argv[1], name)).read())
    m = json.load(open("%s/%s.info.json" % (sys.argv[1], name)))["info"].get("measurement", {})
    t["probe"] = m.get("acpi_probe_ms", -1000) / 1000.0
    t["cached"] = m.get("acpi_from_cache")
    rows[name] = t
print("%-22s %8s %8s" % ("phase (s)", "cold", "warm"))
for k, what in (("vmm", "vmm"), ("boot", "boot"), ("kms", "kms"), ("app", "app"),
                ("total", "total (to healthy)"), ("page", "page answers"), ("probe", "of vmm: ACPI probe")):
    print("%-22s %8.1f %8.1f" % (what[:22], rows["cold"].get(k, -1), rows["warm"].get(k, -1)))
print("%-22s %8s %8s" % ("probe from its cache", rows["cold"]["cached"], rows["warm"]["cached"]))
PY
