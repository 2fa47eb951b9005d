#!/usr/bin/env python3
"""A test authorization webhook for tests/integration/kms_auth_webhook.sh.

It speaks dstack's auth API (GET /, POST /bootAuth/app, POST /bootAuth/kms)
and decides with auth-simple's semantics, written here from the dstack spec
§3.5 independently of lib/kmsauth, from the "policy" object of a cases file
(tests/kmsauth/cases.json), re-read on every request as auth-simple does.

The first path segment picks a behaviour, so that each one is just another
webhook base URL (http://127.0.0.1:PORT/<mode>):
  ok        answers as auth-simple would
  delay     sleeps DELAY seconds (default 5), then answers as ok
  status500 HTTP 500 with a JSON body that says isAllowed true
  nonjson   HTTP 200, a body that is not JSON
  string    HTTP 200, {"isAllowed": "true", ...} (a string, not a boolean)
  number    HTTP 200, {"isAllowed": 1, ...}
  missing   HTTP 200, {"reason": "", "gatewayAppId": ""} (no isAllowed)
  huge      HTTP 200, a 10 MiB JSON body that says isAllowed true
  redirect  HTTP 307 to /ok/... (the method and body kept: followed, it allows)
Every misbehaviour would allow if it were read leniently.

usage: kms_auth_webhook_server.py CASES_JSON PORT_FILE [DELAY]
It binds 127.0.0.1 port 0 and writes the port it got to PORT_FILE.
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CASES = sys.argv[1]
PORT_FILE = sys.argv[2]
DELAY = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0


def norm(h):
    h = h.lower()
    return h if h.startswith("0x") else "0x" + h


def policy():
    with open(CASES, encoding="utf-8") as f:
        return json.load(f)["policy"]


def check(p, bi, is_kms):
    """auth-simple's order: TCB status, advisories, OS image, then the KMS
    (aggregated MR, device) or the app (registered, compose hash, device)."""
    gw = p.get("gatewayAppId", "")

    def no(reason):
        return {"isAllowed": False, "reason": reason, "gatewayAppId": gw}

    if bi.get("tcbStatus", "") not in p.get("allowedTcbStatuses", ["UpToDate"]):
        return no("TCB status is not allowed")
    for a in bi.get("advisoryIds", []):
        if a not in p.get("allowedAdvisoryIds", []):
            return no("advisory ID is not allowed")
    if norm(bi["osImageHash"]) not in [norm(x) for x in p.get("osImages", [])]:
        return no("OS image is not allowed")
    dev = norm(bi["deviceId"])
    if is_kms:
        k = p.get("kms", {})
        if norm(bi["mrAggregated"]) not in [norm(x) for x in k.get("mrAggregated", [])]:
            return no("aggregated MR not allowed")
        devs = [norm(x) for x in k.get("devices", [])]
        if not k.get("allowAnyDevice", False) and devs and dev not in devs:
            return no("KMS is not allowed to boot on this device")
        return {"isAllowed": True, "reason": "", "gatewayAppId": gw}
    app = None
    for app_id, cfg in p.get("apps", {}).items():
        if norm(app_id) == norm(bi["appId"]):
            app = cfg
    if app is None:
        return no("app not registered")
    if norm(bi["composeHash"]) not in [norm(x) for x in app.get("composeHashes", [])]:
        return no("compose hash not allowed")
    devs = [norm(x) for x in app.get("devices", [])]
    if not app.get("allowAnyDevice", False) and devs and dev not in devs:
        return no("app is not allowed to boot on this device")
    return {"isAllowed": True, "reason": "", "gatewayAppId": gw}


# The BootInfo keys the KMS sends, in its order (dstack's PolicyBootInfo).
BOOT_KEYS = ["teeVariant", "mrAggregated", "osImageHash", "mrSystem", "appId", "composeHash",
             "instanceId", "deviceId", "keyProviderInfo", "tcbStatus", "advisoryIds"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("webhook: " + (fmt % args) + "\n")

    def send(self, status, body, ctype="application/json", extra=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def split(self):
        parts = self.path.split("/", 2)  # "", mode, rest
        return (parts[1] if len(parts) > 1 else ""), "/" + (parts[2] if len(parts) > 2 else "")

    def do_GET(self):
        mode, rest = self.split()
        if mode != "ok" or rest != "/":
            self.send(404, {"error": "not found"})
            return
        p = policy()
        self.send(200, {"status": "ok", "kmsContractAddr": p.get("kmsContractAddr", "0x" + "0" * 40),
                        "gatewayAppId": p.get("gatewayAppId", ""), "chainId": p.get("chainId", 0),
                        "appAuthImplementation": p.get("appImplementation", "0x" + "0" * 40),
                        "appImplementation": p.get("appImplementation", "0x" + "0" * 40)})

    def do_POST(self):
        mode, rest = self.split()
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        if rest not in ("/bootAuth/app", "/bootAuth/kms"):
            self.send(404, {"error": "not found"})
            return
        try:
            bi = json.loads(raw)
        except ValueError:
            self.send(400, {"error": "the body is not JSON"})
            return
        # The KMS must send exactly dstack's BootInfo keys, in its order.
        if list(bi.keys()) != BOOT_KEYS:
            self.send(400, {"error": "unexpected BootInfo keys: %s" % list(bi.keys())})
            return
        allow = {"isAllowed": True, "reason": "", "gatewayAppId": "evil"}
        if mode == "ok":
            self.send(200, check(policy(), bi, rest.endswith("/kms")))
        elif mode == "delay":
            time.sleep(DELAY)
            self.send(200, check(policy(), bi, rest.endswith("/kms")))
        elif mode == "status500":
            self.send(500, allow)
        elif mode == "nonjson":
            self.send(200, b"isAllowed: true\n", "text/plain")
        elif mode == "string":
            self.send(200, {"isAllowed": "true", "reason": "", "gatewayAppId": ""})
        elif mode == "number":
            self.send(200, {"isAllowed": 1, "reason": "", "gatewayAppId": ""})
        elif mode == "missing":
            self.send(200, {"reason": "", "gatewayAppId": ""})
        elif mode == "huge":
            pad = b" " * (10 * 1024 * 1024)
            self.send(200, b'{"isAllowed": true, "reason": "", "gatewayAppId": ""' + pad + b"}")
        elif mode == "redirect":
            self.send(307, b"", "text/plain", {"Location": "/ok" + rest})
        else:
            self.send(404, {"error": "unknown mode"})


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(PORT_FILE + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(PORT_FILE + ".tmp", PORT_FILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
