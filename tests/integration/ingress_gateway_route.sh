#!/usr/bin/env bash
# cvm gateway route against dstack's ingress cases (tests/vectors/compat/
# gateway/sni-cases.json; compat/README.md §9 and pitfall 12):
#  - every case, as <subdomain>.<base> with --base-domain <base> --json,
#    gives the case's ok, app_id, port, is_tls (and is_h2 where the case
#    has it), exit 0 when ok and 1 when not; the doc case's "<app_id>" is a
#    40-hex id here;
#  - the suffix order (443sg refused as gs, 443gs as a bad port), base
#    domains matched without case, several --base-domain, custom domains
#    with their two TXT names, names that are not host names (exit 1);
#  - usage errors exit 2.
# Needs: $CVM_BIN/cvm, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/vectors.sh
. "$(dirname "$0")/../common/vectors.sh"
vectors_require compat/gateway/sni-cases.json
if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: python3 is needed (JSON checks)" >&2
	exit 77
fi
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi

python3 - "$CVM" "$VECTORS/compat/gateway/sni-cases.json" <<'PY'
import json, subprocess, sys

cvm, cases_path = sys.argv[1], sys.argv[2]
APP_ID = "0123456789abcdef0123456789abcdef01234567"
failures = checks = 0

def fail(msg):
    global failures
    failures += 1
    print("FAIL: " + msg, file=sys.stderr)

def route(name, *bases, json_out=True):
    args = [cvm, "gateway", "route"]
    for b in bases:
        args += ["--base-domain", b]
    if json_out:
        args.append("--json")
    args += ["--", name]  # "-8080.example.com" is a name, not an option
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    out = json.loads(p.stdout) if json_out and p.stdout.strip() else None
    return p.returncode, out, p.stdout, p.stderr

def expect(name, bases, want, label=None):
    """want: dict of the fields to compare (ok is required)."""
    global checks
    rc, out, _, err = route(name, *bases)
    label = label or name
    if out is None:
        fail(f"{label}: no JSON (exit {rc}): {err.strip()}")
        return None
    if rc != (0 if want["ok"] else 1):
        fail(f"{label}: exit {rc}, want {0 if want['ok'] else 1}")
    for k, v in want.items():
        if out.get(k) != v:
            fail(f"{label}: {k} is {out.get(k)!r}, want {v!r} (error: {out.get('error')})")
    checks += 1
    return out

cases = json.load(open(cases_path))["cases"]
if len(cases) != 9:
    fail(f"sni-cases.json has {len(cases)} cases, want 9")
for c in cases:
    sub = c["subdomain"].replace("<app_id>", APP_ID)
    e = c["expect"]
    want = {"ok": e["ok"]}
    if e["ok"]:
        want.update(kind="app", port=e["port"], is_tls=e["is_tls"], base="example.com")
        want["app_id"] = e.get("app_id", APP_ID)
        if "is_h2" in e:
            want["is_h2"] = e["is_h2"]
    else:
        want["error"] = None  # replaced below: any reason, but there must be one
        del want["error"]
    out = expect(f"{sub}.example.com", ["example.com"], want, label=f"case {c['subdomain']}")
    if out is not None and not e["ok"] and not out.get("error"):
        fail(f"case {c['subdomain']}: refused without a reason")

# dstack's suffix order and the rules around it
out = expect("myapp-443sg.example.com", ["example.com"], {"ok": False, "kind": "app", "base": "example.com"})
if out and "gs not allowed" not in (out.get("error") or ""):
    fail(f"443sg: error {out.get('error')!r} does not say gs")
out = expect("myapp-443gs.example.com", ["example.com"], {"ok": False})
if out and "invalid port" not in (out.get("error") or ""):
    fail(f"443gs: error {out.get('error')!r} does not say invalid port")
expect("MyApp-8443S.Apps.Example.COM", ["other.net", "*.apps.example.com."],
       {"ok": True, "kind": "app", "app_id": "myapp", "port": 8443, "is_tls": True, "is_h2": False,
        "base": "apps.example.com", "name": "myapp-8443s.apps.example.com"})
expect("gateway-g.example.com", ["example.com"], {"ok": True, "app_id": "gateway", "port": 80, "is_h2": True})
for bad in ["myapp-0.example.com", "myapp-65536.example.com", "a-b-c.example.com"]:
    expect(bad, ["example.com"], {"ok": False, "kind": "app"})

# custom domains: the TXT names, with or without base domains
for bases in ([], ["example.com"]):
    expect("www.Customer.io", bases,
           {"ok": True, "kind": "custom", "app_id": None, "port": None,
            "txt_names": ["_dstack-app-address.www.customer.io", "_dstack-app-address-wildcard.customer.io"]})
expect("myapp-8080.example.com", [], {"ok": True, "kind": "custom"})

# not host names
for bad in ["-s.example.com", "localhost", "a..b", "a_b.example.com", "a.b.", "x" * 64 + ".io"]:
    expect(bad, ["example.com"], {"ok": False, "kind": None})

# text output: the fields, and the error on stderr
rc, _, so, se = route("app1-443s.example.com", "example.com", json_out=False)
if rc != 0 or "app_id:  app1" not in so or "port:    443" not in so:
    fail(f"text output (exit {rc}): {so!r}")
rc, _, so, se = route("app1-443sg.example.com", "example.com", json_out=False)
if rc != 1 or "gs not allowed" not in se:
    fail(f"text error (exit {rc}): {se!r}")
checks += 2

# usage errors
for args in [[], ["route"], ["route", "a.b", "c.d"], ["route", "a.b", "--base-domain", "x..y"],
             ["route", "a.b", "--bogus"], ["nothing"]]:
    p = subprocess.run([cvm, "gateway"] + args, capture_output=True, text=True, timeout=30)
    if p.returncode != 2:
        fail(f"cvm gateway {' '.join(args)}: exit {p.returncode}, want 2")
    checks += 1
many = []
for i in range(17):
    many += ["--base-domain", f"d{i}.example"]
p = subprocess.run([cvm, "gateway", "route", "a.b"] + many, capture_output=True, text=True, timeout=30)
if p.returncode != 2:
    fail(f"17 --base-domain: exit {p.returncode}, want 2")
checks += 1

print(f"ingress_gateway_route: {checks} checks, {failures} failed")
sys.exit(1 if failures else 0)
PY
