#!/usr/bin/env python3
"""integration.gateway_proxy: cvm-gatewayd's data path end to end, on loopback.

Starts cvm-gatewayd with a wildcard certificate for *.gw.test (a test CA
made here) and [dev] instances pointing at backends this script runs, then
checks with real clients (curl, openssl s_client, Python's ssl):
terminated HTTP/1.1 routing by name and port, passthrough ('s') to an app
that terminates TLS itself, h2-only ALPN ('g'), the health name, the 503 of
an app without instance, PROXY v2 towards an app that asks for it, names and
ClientHellos that must be refused, the admin API's token, removal of an
instance, per-address caps, slowloris and stalled backends, certificate hot
reload with an established connection kept, and a graceful drain. Custom
domains are resolved through their _dstack-app-address TXT records, served
by pebble-challtestsrv's DNS server (its own name, the parent's wildcard,
none, a malformed one, the cache).

Usage: gateway_proxy.py BIN_DIR WORK_DIR
"""
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.request

BIN, WORK = sys.argv[1], sys.argv[2]
failures = 0
checks = 0


def check(cond, what, detail=""):
    global failures, checks
    checks += 1
    if cond:
        print(f"ok   {what}")
    else:
        failures += 1
        print(f"FAIL {what} {detail}")


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, **kw)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# --- certificates -----------------------------------------------------------

def make_certs():
    os.makedirs(WORK, exist_ok=True)
    ca_key, ca = f"{WORK}/ca.key", f"{WORK}/ca.pem"
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=gateway test CA")
    for name, cn in (("gw", "*.gw.test"), ("gw2", "*.gw.test"), ("app", "app.example")):
        key, csr, crt = f"{WORK}/{name}.key", f"{WORK}/{name}.csr", f"{WORK}/{name}.pem"
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        ext = f"{WORK}/{name}.ext"
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{cn}\n")
        r = run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                "-out", crt, "-days", "2", "-extfile", ext)
        assert r.returncode == 0, r.stderr
    return ca


# --- backends ----------------------------------------------------------------

class Backend(threading.Thread):
    """A TCP server on 127.0.0.1:port; `mode` says what it does with a connection."""

    def __init__(self, mode, port=0, tls_ctx=None):
        super().__init__(daemon=True)
        self.mode, self.tls_ctx = mode, tls_ctx
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            if self.mode == "stall":
                time.sleep(30)
                return
            if self.mode == "proxy":
                hdr = c.recv(16)
                self.seen.append(hdr[:12])
                ln = struct.unpack(">H", hdr[14:16])[0]
                body = b""
                while len(body) < ln:
                    body += c.recv(ln - len(body))
                src = socket.inet_ntoa(body[0:4]) + ":" + str(struct.unpack(">H", body[8:10])[0])
                self.http(c, src.encode())
                return
            if self.tls_ctx is not None:
                c = self.tls_ctx.wrap_socket(c, server_side=True)
            if self.mode == "echo":
                while True:
                    d = c.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
                return
            self.http(c, None)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def http(self, c, extra):
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            line = head.split(b"\r\n")[0]
            path = line.split(b" ")[1]
            if path.startswith(b"/big"):
                body = b"x" * (4 * 1024 * 1024)
            else:
                body = b"backend " + str(self.port).encode() + b" " + path
                if extra is not None:
                    body += b" from " + extra
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            if b"close" in head.lower():
                return


# --- the gateway ---------------------------------------------------------------

class ChallTestSrv:
    """pebble-challtestsrv as the DNS server of the custom domains' TXT records."""

    def __init__(self):
        self.dns, self.mgmt = free_port(), free_port()
        self.log = open(f"{WORK}/challtestsrv.log", "w")
        self.p = subprocess.Popen(["pebble-challtestsrv", "-management", f"127.0.0.1:{self.mgmt}", "-dns01",
                                   f"127.0.0.1:{self.dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                                   "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
                                  stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.mgmt), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("pebble-challtestsrv did not start")

    def set_txt(self, host, value):
        req = urllib.request.Request(f"http://127.0.0.1:{self.mgmt}/set-txt",
                                     data=json.dumps({"host": host, "value": value}).encode())
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=10)
        self.log.close()


class Gateway:
    def __init__(self, conf_extra="", instances=None):
        self.conf = f"{WORK}/gatewayd.conf"
        self.port_file, self.admin_port_file = f"{WORK}/port", f"{WORK}/admin_port"
        self.token = "t0ken-for-the-gateway-test"
        with open(f"{WORK}/token", "w") as f:
            f.write(self.token + "\n")
        with open(f"{WORK}/instances.json", "w") as f:
            json.dump(instances or [], f)
        for p in (self.port_file, self.admin_port_file):
            if os.path.exists(p):
                os.unlink(p)
        with open(self.conf, "w") as f:
            f.write(f"""[gateway]
listen = 127.0.0.1:0
admin_listen = 127.0.0.1:0
port_file = {self.port_file}
admin_port_file = {self.admin_port_file}
admin_token_file = {WORK}/token
base_domains = gw.test
workers = 2
[tls]
cert = {WORK}/gw-live.pem
key = {WORK}/gw-live.key
[proxy]
handshake_timeout = 2
idle_timeout = 3
max_connections_per_ip = 200
drain_timeout = 10
{conf_extra}
[dev]
instances = {WORK}/instances.json
""")
        self.log = open(f"{WORK}/gatewayd.log", "w")
        self.p = subprocess.Popen([f"{BIN}/cvm-gatewayd", "-c", self.conf, "--log-level", "debug"],
                                  stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if os.path.exists(self.admin_port_file) and os.path.getsize(self.admin_port_file) > 0:
                break
            if self.p.poll() is not None:
                raise SystemExit(f"cvm-gatewayd exited {self.p.returncode}: see {WORK}/gatewayd.log")
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())
        self.admin_port = int(open(self.admin_port_file).read())

    def admin(self, method, body=None, token=True):
        req = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{method}",
                                     data=json.dumps(body).encode() if body is not None else None)
        if token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name):
        _, text = self.admin("/metrics")
        for line in text.splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        return None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
        self.log.close()


def curl(gw, name, path="/", extra=()):
    r = run("curl", "-sS", "--max-time", "10", "--cacert", f"{WORK}/ca.pem", "--resolve",
            f"{name}:{gw.port}:127.0.0.1", *extra, f"https://{name}:{gw.port}{path}")
    return r.returncode, r.stdout, r.stderr


def tls_client(gw, name, alpn=None, ca=True):
    ctx = ssl.create_default_context(cafile=f"{WORK}/ca.pem") if ca else ssl._create_unverified_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    return ctx.wrap_socket(s, server_hostname=name)


def closed_without_data(sock, timeout=5.0):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def main():
    make_certs()
    for ext in ("pem", "key"):
        with open(f"{WORK}/gw.{ext}") as src, open(f"{WORK}/gw-live.{ext}", "w") as dst:
            dst.write(src.read())
    web = Backend("http")
    web2 = Backend("http")
    app_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    app_ctx.load_cert_chain(f"{WORK}/app.pem", f"{WORK}/app.key")
    tlsapp = Backend("http", tls_ctx=app_ctx)
    echo = Backend("echo")
    pp = Backend("proxy")
    stall = Backend("stall")
    instances = [
        {"instance_id": "i1", "app_id": "web", "address": "127.0.0.1"},
        {"instance_id": "i2", "app_id": "web", "address": "127.0.0.1"},
        {"instance_id": "i3", "app_id": "pp", "address": "127.0.0.1", "proxy_protocol": True},
    ]
    dns = ChallTestSrv()
    gw = Gateway(instances=instances, conf_extra=f"[dns]\nservers = 127.0.0.1:{dns.dns}\n")
    try:
        # terminated HTTP/1.1, port from the name
        rc, out, err = curl(gw, f"web-{web.port}.gw.test", "/hello")
        check(rc == 0 and out == f"backend {web.port} /hello", "terminated: web-PORT.gw.test reaches the app", err + out)
        rc, out, err = curl(gw, f"i1-{web2.port}.gw.test", "/by-instance")
        check(rc == 0 and out == f"backend {web2.port} /by-instance", "an instance id routes too", err + out)
        rc, out, _ = curl(gw, f"WEB-{web.port}.GW.TEST", "/case")
        check(rc == 0 and out.endswith("/case"), "names are case-insensitive")
        # keep-alive: several requests on one connection
        name = f"web-{web.port}.gw.test"
        r = run("curl", "-sS", "--max-time", "10", "--cacert", f"{WORK}/ca.pem", "--resolve", f"{name}:{gw.port}:127.0.0.1",
                "-w", "%{num_connects}\n", "-o", "/dev/null", "-o", "/dev/null", f"https://{name}:{gw.port}/a",
                f"https://{name}:{gw.port}/b")
        check(r.returncode == 0 and r.stdout.split() == ["1", "0"], "keep-alive: the second request reuses the connection",
              r.stdout + r.stderr)
        # a large answer through the relay
        rc, out, err = curl(gw, f"web-{web.port}.gw.test", "/big", extra=("-o", "/dev/null", "-w", "%{size_download}"))
        check(rc == 0 and out == str(4 * 1024 * 1024), "a 4 MiB answer arrives whole", out + err)
        # health
        rc, out, _ = curl(gw, "health.gw.test")
        check(rc == 0 and out == "ok\n", "health.gw.test answers ok")
        # no instance: a 503 that says why
        r = run("curl", "-sS", "-o", "/dev/stdout", "-w", "\n%{http_code}", "--max-time", "10", "--cacert",
                f"{WORK}/ca.pem", "--resolve", f"nosuchapp.gw.test:{gw.port}:127.0.0.1",
                f"https://nosuchapp.gw.test:{gw.port}/")
        check(r.stdout.strip().endswith("503") and "no instance" in r.stdout, "an unknown app gets a 503 that says why", r.stdout)
        # passthrough: the client sees the app's own certificate
        r = run("openssl", "s_client", "-connect", f"127.0.0.1:{gw.port}", "-servername",
                f"web-{tlsapp.port}s.gw.test", "-brief", input="", )
        check("app.example" in r.stdout + r.stderr and "*.gw.test" not in r.stdout + r.stderr,
              "passthrough ('s'): the app's certificate, not the gateway's", (r.stdout + r.stderr)[-400:])
        ctx = ssl.create_default_context(cafile=f"{WORK}/ca.pem")
        ctx.check_hostname = False
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", gw.port)), server_hostname=f"web-{tlsapp.port}s.gw.test") as s:
            s.sendall(b"GET /pass HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        check(data.endswith(f"backend {tlsapp.port} /pass".encode()), "passthrough relays the app's answer", repr(data[-80:]))
        # h2 only ('g')
        with tls_client(gw, f"web-{echo.port}g.gw.test", alpn=["h2", "http/1.1"]) as s:
            proto = s.selected_alpn_protocol()
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            got = s.recv(100)
        check(proto == "h2" and got.startswith(b"PRI * HTTP/2.0"), "'g': ALPN h2 and the bytes reach the app", f"{proto} {got!r}")
        try:
            with tls_client(gw, f"web-{echo.port}g.gw.test", alpn=["http/1.1"]) as s:
                refused = False
        except ssl.SSLError as e:
            refused = "NO_APPLICATION_PROTOCOL" in str(e).upper() or "ALERT" in str(e).upper()
        check(refused, "'g': a client without h2 is refused (no_application_protocol)")
        with tls_client(gw, f"web-{web.port}.gw.test", alpn=["h2", "http/1.1"]) as s:
            check(s.selected_alpn_protocol() == "http/1.1", "a plain name picks http/1.1 even when h2 is offered")
        # PROXY v2 towards an app that asks for it
        rc, out, err = curl(gw, f"pp-{pp.port}.gw.test", "/pp")
        check(rc == 0 and out.startswith(f"backend {pp.port} /pp from 127.0.0.1:") and pp.seen and
              pp.seen[0] == b"\r\n\r\n\x00\r\nQUIT\n", "PROXY v2 header sent to an app that wants it", out + err)
        # custom domains: the TXT record names the app; the app terminates TLS
        dns.set_txt("_dstack-app-address.shop.example.com.", f"web:{tlsapp.port}")
        dns.set_txt("_dstack-app-address-wildcard.example.org.", f"web:{tlsapp.port}")
        dns.set_txt("_dstack-app-address.broken.example.com.", "web:notaport")
        before = gw.metric("cvm_gateway_dns_lookups_total") or 0
        for cname, what in (("shop.example.com", "its own TXT record"),
                            ("any.example.org", "the parent's wildcard TXT record"),
                            ("shop.example.com", "again, from the cache")):
            r = run("openssl", "s_client", "-connect", f"127.0.0.1:{gw.port}", "-servername", cname, "-brief",
                    input="")
            check("app.example" in r.stdout + r.stderr, f"custom domain {cname}: {what} routes to the app (passthrough)",
                  (r.stdout + r.stderr)[-300:])
        after = gw.metric("cvm_gateway_dns_lookups_total") or 0
        check(after - before == 2, "two lookups for three connections: the second shop.example.com came from the cache",
              f"{before} -> {after}")
        for cname in ("nothing.example.net", "broken.example.com"):
            b = gw.metric("cvm_gateway_bad_name_total") or 0
            try:
                with tls_client(gw, cname, ca=False):
                    refused = False
            except (ssl.SSLError, OSError):
                refused = True
            a = gw.metric("cvm_gateway_bad_name_total") or 0
            check(refused and a == b + 1, f"custom domain {cname} without a valid TXT record is refused and counted",
                  f"{b} -> {a}")
        # names that must not route
        for bad in ("web-80-extra.gw.test", "web-443sg.gw.test", "-8080.gw.test", "other.example"):
            # a name that is no host name at all ('-8080...') is refused with the ClientHello
            before = (gw.metric("cvm_gateway_bad_name_total") or 0) + (gw.metric("cvm_gateway_bad_client_hello_total") or 0)
            try:
                with tls_client(gw, bad, ca=False):
                    refused = False
            except (ssl.SSLError, OSError):
                refused = True
            after = (gw.metric("cvm_gateway_bad_name_total") or 0) + (gw.metric("cvm_gateway_bad_client_hello_total") or 0)
            check(refused and after == before + 1, f"'{bad}' is refused and counted", f"{before} -> {after}")
        # no SNI; not TLS; oversized ClientHello
        s = socket.create_connection(("127.0.0.1", gw.port))
        ctx = ssl._create_unverified_context()
        try:
            ctx.wrap_socket(s, server_hostname=None)
            ok = False
        except (ssl.SSLError, OSError):
            ok = True
        check(ok, "a ClientHello without a server name is dropped")
        s = socket.create_connection(("127.0.0.1", gw.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: web.gw.test\r\n\r\n")
        check(closed_without_data(s), "plain HTTP on the TLS port is dropped without an answer")
        s.close()
        s = socket.create_connection(("127.0.0.1", gw.port))
        big = b"\x16\x03\x01\x40\x00" + b"\x01\x00\x3f\xfc" + b"\x03\x03" + os.urandom(16380)
        try:
            s.sendall(big + b"\x16\x03\x01\x40\x00" + os.urandom(16384))
        except OSError:
            pass
        check(closed_without_data(s), "an oversized ClientHello is dropped")
        s.close()
        # admin: token required
        code, _ = gw.admin("/prpc/Admin.Status", token=False)
        check(code == 401, "admin API without the token: 401")
        code, body = gw.admin("/prpc/Admin.Status")
        st = json.loads(body) if code == 200 else {}
        check(code == 200 and st.get("instances") == 3, "admin Status with the token", body)
        code, body = gw.admin("/prpc/Admin.ListInstances")
        check(code == 200 and {i["instance_id"] for i in json.loads(body)["instances"]} == {"i1", "i2", "i3"},
              "admin ListInstances", body)
        # slowloris: a connection that trickles its ClientHello is cut at the handshake deadline
        s = socket.create_connection(("127.0.0.1", gw.port))
        t0 = time.monotonic()
        s.sendall(b"\x16\x03\x01")
        cut = closed_without_data(s, timeout=6)
        check(cut and time.monotonic() - t0 < 4.5, "slowloris: cut at the 2 s handshake deadline",
              f"{time.monotonic() - t0:.1f}s")
        s.close()
        # a backend that stalls: the client is cut at the idle deadline, others are served meanwhile
        inst = instances + [{"instance_id": "i4", "app_id": "stall", "address": "127.0.0.1"}]
        with open(f"{WORK}/instances.json", "w") as f:
            json.dump(inst, f)
        gw.p.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        t0 = time.monotonic()
        st = tls_client(gw, f"stall-{stall.port}.gw.test")
        st.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        rc, out, _ = curl(gw, f"web-{web.port}.gw.test", "/during-stall")
        check(rc == 0 and out.endswith("/during-stall"), "others are served while a backend stalls")
        cut = closed_without_data(st, timeout=8)
        check(cut and time.monotonic() - t0 < 6, "a stalled backend's client is cut at the idle deadline",
              f"{time.monotonic() - t0:.1f}s")
        st.close()
        # per-address cap: connections over it are closed at once; the others stay
        # (each sends the first bytes of a hello: the listener hands over
        # only connections that sent something, TCP_DEFER_ACCEPT)
        socks = []
        for _ in range(200):
            socks.append(socket.create_connection(("127.0.0.1", gw.port)))
            socks[-1].sendall(b"\x16\x03\x01")
        for _ in range(100):  # until the gateway holds all 200 (a loaded machine accepts late)
            if (gw.metric("cvm_gateway_connections_active") or 0) >= 200:
                break
            time.sleep(0.05)
        before = gw.metric("cvm_gateway_refused_per_ip_total") or 0
        extra = socket.create_connection(("127.0.0.1", gw.port))
        extra.sendall(b"\x16\x03\x01")
        check(closed_without_data(extra, timeout=3), "a connection over the per-address cap is closed")
        after = gw.metric("cvm_gateway_refused_per_ip_total") or 0
        check(after == before + 1, "and counted", f"{before} -> {after}")
        for s in socks:
            s.close()
        time.sleep(0.3)
        rc, out, err = curl(gw, f"web-{web.port}.gw.test", "/after-flood")
        check(rc == 0, "served again once the flood is gone", out + err)
        # certificate hot reload: a kept connection survives, new ones see the new certificate
        kept = tls_client(gw, f"web-{web.port}.gw.test")
        kept.sendall(b"GET /k1 HTTP/1.1\r\nHost: x\r\n\r\n")
        first = kept.recv(4096)
        old_serial = run("openssl", "x509", "-noout", "-serial", "-in", f"{WORK}/gw.pem").stdout
        for ext in ("pem", "key"):
            with open(f"{WORK}/gw2.{ext}") as src, open(f"{WORK}/gw-live.{ext}", "w") as dst:
                dst.write(src.read())
        gw.p.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        r = run("openssl", "s_client", "-connect", f"127.0.0.1:{gw.port}", "-servername", f"web-{web.port}.gw.test",
                "-showcerts", input="")
        new_serial = run("openssl", "x509", "-noout", "-serial", input=r.stdout).stdout
        want = run("openssl", "x509", "-noout", "-serial", "-in", f"{WORK}/gw2.pem").stdout
        check(new_serial == want and new_serial != old_serial, "after SIGHUP new connections get the new certificate",
              f"{new_serial!r} {want!r}")
        kept.sendall(b"GET /k2 HTTP/1.1\r\nHost: x\r\n\r\n")
        second = kept.recv(4096)
        check(first.endswith(b"/k1") and second.endswith(b"/k2"), "a connection made before the reload keeps working")
        # remove an instance: its traffic stops
        code, _ = gw.admin("/prpc/Admin.RemoveInstance", {"instance_id": "i3"})
        rc, out, _ = curl(gw, f"pp-{pp.port}.gw.test", "/gone")
        check(code == 200 and "no instance" in out, "RemoveInstance: the app has no backend any more", out)
        # graceful drain: an established connection finishes, new ones are refused
        kept.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        gw.p.send_signal(signal.SIGTERM)
        got = b""
        kept.settimeout(10)
        while len(got) < 4 * 1024 * 1024:
            d = kept.recv(1 << 20)
            if not d:
                break
            got += d
        check(len(got) >= 4 * 1024 * 1024, "drain: the established connection gets its whole answer", str(len(got)))
        time.sleep(0.3)
        try:
            socket.create_connection(("127.0.0.1", gw.port), timeout=2).close()
            refused = False
        except OSError:
            refused = True
        check(refused, "drain: new connections are refused")
        kept.close()
        gw.p.wait(timeout=15)
        check(gw.p.returncode == 0, "the gateway exits 0 after draining", str(gw.p.returncode))
    finally:
        gw.stop()
        dns.stop()
    print(f"{checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
