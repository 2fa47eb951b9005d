#!/usr/bin/env python3
"""integration.gateway_register: CVMs register with cvm-gatewayd and are reached through WireGuard.

Two network namespaces joined by a veth pair: "gw" runs cvm-gatewayd and a
wireguard-go interface the gateway configures itself (lib/wg, no `wg`
process), "cvm" plays a CVM: its own wireguard-go, configured from the
registration's answer with the independent tools (wg, ip), and an HTTP app
on its tunnel address. The CVM's certificates are made here the way the KMS
makes them (chained to a KMS root, with the app id 1.3, usage 1.4 and app
info 1.9 extensions); others are made to be refused.

Checks: the registration answer (address, the gateway's key and endpoint);
the app reached by app id and by instance id through the tunnel once its
handshake is seen, and not before; re-registration keeps the address;
another instance's key, a bad key, a certificate from another root, one
without app info, and no certificate are refused; RemoveInstance takes the
peer off the WireGuard device (read with `wg show`) and the route away.

Usage: gateway_register.py BIN_DIR WORK_DIR
"""
import datetime
import json
import os
import signal
import subprocess
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from kms_shaped_certs import make_ca, make_leaf, name, write_pem  # noqa: E402

BIN, WORK = sys.argv[1], sys.argv[2]
TAG = str(os.getpid())
NS_GW, NS_CVM = f"cvmgw{TAG}", f"cvmcv{TAG}"
IF_GW, IF_CVM = f"gwt{TAG}"[:15], f"cvt{TAG}"[:15]
failures = 0
checks = 0
procs = []


def check(cond, what, detail=""):
    global failures, checks
    checks += 1
    print(("ok   " if cond else "FAIL ") + what + ("" if cond else f" {detail}"))
    if not cond:
        failures += 1


def sh(*args, ns=None, check_rc=True, **kw):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    if check_rc and r.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(cmd)}: {r.stderr}")
    return r


# --- the world ------------------------------------------------------------------

def setup_net():
    sh("ip", "netns", "add", NS_GW)
    sh("ip", "netns", "add", NS_CVM)
    sh("ip", "link", "add", f"vg{TAG}"[:15], "type", "veth", "peer", "name", f"vc{TAG}"[:15])
    sh("ip", "link", "set", f"vg{TAG}"[:15], "netns", NS_GW)
    sh("ip", "link", "set", f"vc{TAG}"[:15], "netns", NS_CVM)
    sh("ip", "addr", "add", "10.99.0.1/24", "dev", f"vg{TAG}"[:15], ns=NS_GW)
    sh("ip", "addr", "add", "10.99.0.2/24", "dev", f"vc{TAG}"[:15], ns=NS_CVM)
    for ns, dev in ((NS_GW, f"vg{TAG}"[:15]), (NS_CVM, f"vc{TAG}"[:15])):
        sh("ip", "link", "set", dev, "up", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    env = dict(os.environ, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD="1")
    for ns, dev in ((NS_GW, IF_GW), (NS_CVM, IF_CVM)):
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "wireguard-go", "-f", dev], env=env,
                                      stdout=subprocess.DEVNULL, stderr=open(f"{WORK}/wg-{dev}.log", "w")))
    for dev in (IF_GW, IF_CVM):
        for _ in range(100):
            if os.path.exists(f"/var/run/wireguard/{dev}.sock"):
                break
            time.sleep(0.05)


def teardown():
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    for ns in (NS_GW, NS_CVM):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def register(port, cert, key, wg_pub, ca):
    body = json.dumps({"client_public_key": wg_pub})
    args = ["curl", "-sS", "--max-time", "10", "--cacert", ca, "-w", "\n%{http_code}", "-H",
            "Content-Type: application/json", "-d", body]
    if cert:
        args += ["--cert", cert, "--key", key]
    r = sh(*args, f"https://10.99.0.1:{port}/prpc/Gateway.RegisterCvm", ns=NS_CVM, check_rc=False)
    if r.returncode != 0:
        return None, r.stderr.strip()
    text, code = r.stdout.rsplit("\n", 1)
    return int(code), text


def main():
    os.makedirs(WORK, exist_ok=True)
    # the KMS's root, an App CA under it, and a stranger root
    kms_key, kms = make_ca("Dstack KMS CA")
    appca_key, appca = make_ca("Dstack App CA", kms_key, kms.subject)
    other_key, other = make_ca("Some other CA")
    app_id, inst1, inst2 = bytes.fromhex("ab" * 20), bytes.fromhex("01" * 20), bytes.fromhex("02" * 20)
    k1, c1 = make_leaf(appca_key, appca, app_id, inst1)
    k2, c2 = make_leaf(appca_key, appca, app_id, inst2)
    kx, cx = make_leaf(other_key, other, app_id, inst1)
    kn, cn = make_leaf(appca_key, appca, app_id, inst1, with_info=False)
    write_pem(f"{WORK}/kms-root.pem", kms)
    write_pem(f"{WORK}/c1.pem", c1, appca)
    write_pem(f"{WORK}/k1.pem", k1)
    write_pem(f"{WORK}/c2.pem", c2, appca)
    write_pem(f"{WORK}/k2.pem", k2)
    write_pem(f"{WORK}/cx.pem", cx, other)
    write_pem(f"{WORK}/kx.pem", kx)
    write_pem(f"{WORK}/cn.pem", cn, appca)
    write_pem(f"{WORK}/kn.pem", kn)
    # the gateway's own RPC certificate and the proxy's wildcard (one self-signed CA)
    gwca_key, gwca = make_ca("gateway test CA")
    for stem, cn_ in (("rpc", "10.99.0.1"), ("wild", "*.gw.test")):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        san = x509.SubjectAlternativeName([x509.DNSName(cn_)] if stem == "wild" else
                                          [x509.IPAddress(__import__("ipaddress").ip_address(cn_))])
        cert = (x509.CertificateBuilder().subject_name(name(cn_)).issuer_name(gwca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(san, critical=False).sign(gwca_key, hashes.SHA256()))
        write_pem(f"{WORK}/{stem}.pem", cert)
        write_pem(f"{WORK}/{stem}.key", key)
    write_pem(f"{WORK}/gwca.pem", gwca)

    setup_net()
    gw_priv = sh("wg", "genkey").stdout.strip()
    with open(f"{WORK}/gw-wg.key", "w") as f:
        f.write(gw_priv + "\n")
    os.chmod(f"{WORK}/gw-wg.key", 0o600)
    with open(f"{WORK}/token", "w") as f:
        f.write("register-test-token-0123456789\n")
    with open(f"{WORK}/gatewayd.conf", "w") as f:
        f.write(f"""[gateway]
listen = 127.0.0.1:0
admin_listen = 127.0.0.1:0
port_file = {WORK}/port
admin_port_file = {WORK}/admin_port
admin_token_file = {WORK}/token
base_domains = gw.test
workers = 2
[tls]
cert = {WORK}/wild.pem
key = {WORK}/wild.key
[rpc]
listen = 10.99.0.1:0
port_file = {WORK}/rpc_port
cert = {WORK}/rpc.pem
key = {WORK}/rpc.key
kms_root_ca = {WORK}/kms-root.pem
[wg]
interface = {IF_GW}
backend = userspace
private_key_file = {WORK}/gw-wg.key
address = 10.4.0.1/16
endpoint = 10.99.0.1:51820
listen_port = 51820
poll_interval = 1
""")
    log = open(f"{WORK}/gatewayd.log", "w")
    gw = subprocess.Popen(["ip", "netns", "exec", NS_GW, f"{BIN}/cvm-gatewayd", "-c", f"{WORK}/gatewayd.conf",
                           "--log-level", "debug"], stdout=log, stderr=subprocess.STDOUT)
    procs.append(gw)
    for _ in range(100):
        if os.path.exists(f"{WORK}/rpc_port") and os.path.getsize(f"{WORK}/rpc_port") > 0:
            break
        if gw.poll() is not None:
            raise SystemExit(f"cvm-gatewayd exited {gw.returncode}")
        time.sleep(0.05)
    port = int(open(f"{WORK}/port").read())
    rpc = int(open(f"{WORK}/rpc_port").read())
    admin = int(open(f"{WORK}/admin_port").read())
    ca = f"{WORK}/gwca.pem"

    # the gateway configured its own side: key, port, address, link
    dump = sh("wg", "show", IF_GW, "dump", ns=NS_GW).stdout.splitlines()
    gw_pub = sh("wg", "pubkey", input=gw_priv + "\n").stdout.strip()
    check(dump and dump[0].split("\t")[1] == gw_pub and dump[0].split("\t")[2] == "51820",
          "the gateway set its WireGuard key and port itself", dump[:1])
    addr = sh("ip", "-4", "addr", "show", IF_GW, ns=NS_GW).stdout
    check("10.4.0.1/16" in addr, "and its tunnel address", addr)

    cvm_priv = sh("wg", "genkey").stdout.strip()
    cvm_pub = sh("wg", "pubkey", input=cvm_priv + "\n").stdout.strip()
    code, text = register(rpc, f"{WORK}/c1.pem", f"{WORK}/k1.pem", cvm_pub, ca)
    reply = json.loads(text) if code == 200 else {}
    client_ip = reply.get("wg", {}).get("client_ip", "")
    servers = reply.get("wg", {}).get("servers", [{}])
    check(code == 200 and client_ip.startswith("10.4.") and servers[0].get("public_key") == gw_pub and
          servers[0].get("endpoint") == "10.99.0.1:51820" and servers[0].get("ip") == "10.4.0.1",
          "RegisterCvm answers the tunnel address and the gateway's key and endpoint", f"{code} {text}")
    check(reply.get("agent", {}).get("domain") == "gw.test" and reply["agent"].get("external_port") == port,
          "and the agent's domain and port", text)
    peers = sh("wg", "show", IF_GW, "dump", ns=NS_GW).stdout.splitlines()[1:]
    check(len(peers) == 1 and peers[0].split("\t")[0] == cvm_pub and peers[0].split("\t")[3] == client_ip + "/32",
          "the gateway's WireGuard device has the CVM as a peer, its address only", peers)

    # before the tunnel is up: registered but no handshake, so no traffic
    appname = "ab" * 20
    r = sh("curl", "-sS", "--max-time", "10", "--cacert", ca, "--resolve", f"{appname}-8080.gw.test:{port}:127.0.0.1",
           "-w", "\n%{http_code}", f"https://{appname}-8080.gw.test:{port}/", ns=NS_GW, check_rc=False)
    check(r.stdout.strip().endswith("503"), "no handshake yet: the app gets no traffic (503)", r.stdout + r.stderr)

    # the CVM brings its side up (independent tools), and serves on its tunnel address
    with open(f"{WORK}/cvm-wg.key", "w") as f:
        f.write(cvm_priv + "\n")
    sh("wg", "set", IF_CVM, "private-key", f"{WORK}/cvm-wg.key", "listen-port", "9182", "peer", gw_pub,
       "endpoint", "10.99.0.1:51820", "allowed-ips", "10.4.0.1/32", "persistent-keepalive", "25", ns=NS_CVM)
    sh("ip", "addr", "add", f"{client_ip}/32", "dev", IF_CVM, ns=NS_CVM)
    sh("ip", "link", "set", IF_CVM, "up", ns=NS_CVM)
    sh("ip", "route", "add", "10.4.0.1/32", "dev", IF_CVM, ns=NS_CVM)
    os.makedirs(f"{WORK}/www", exist_ok=True)
    with open(f"{WORK}/www/index.html", "w") as f:
        f.write("hello from the CVM\n")
    procs.append(subprocess.Popen(["ip", "netns", "exec", NS_CVM, "python3", "-m", "http.server", "8080", "--bind",
                                   client_ip, "--directory", f"{WORK}/www"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL))
    ok = False
    for _ in range(60):
        r = sh("curl", "-sS", "--max-time", "5", "--cacert", ca, "--resolve",
               f"{appname}-8080.gw.test:{port}:127.0.0.1", f"https://{appname}-8080.gw.test:{port}/", ns=NS_GW,
               check_rc=False)
        if r.returncode == 0 and r.stdout == "hello from the CVM\n":
            ok = True
            break
        time.sleep(0.5)
    check(ok, "after the handshake the app is reached through the tunnel by its app id", r.stdout + r.stderr)
    instname = "01" * 20
    r = sh("curl", "-sS", "--max-time", "5", "--cacert", ca, "--resolve", f"{instname}-8080.gw.test:{port}:127.0.0.1",
           f"https://{instname}-8080.gw.test:{port}/", ns=NS_GW, check_rc=False)
    check(r.stdout == "hello from the CVM\n", "and by its instance id", r.stdout + r.stderr)

    # re-registration keeps the address
    code, text = register(rpc, f"{WORK}/c1.pem", f"{WORK}/k1.pem", cvm_pub, ca)
    check(code == 200 and json.loads(text)["wg"]["client_ip"] == client_ip, "re-registering keeps the address", text)
    # refusals
    code, text = register(rpc, f"{WORK}/c2.pem", f"{WORK}/k2.pem", cvm_pub, ca)
    check(code == 409 and "another instance" in text, "another instance with the same WireGuard key: 409", f"{code} {text}")
    for bad in ("not-a-key", cvm_pub.rstrip("="), cvm_pub[:-2] + "B=", cvm_pub + "x"):
        code, text = register(rpc, f"{WORK}/c2.pem", f"{WORK}/k2.pem", bad, ca)
        check(code == 400 and ("WireGuard public key" in text or "too long" in text),
              f"a malformed key '{bad[:12]}...' is refused: 400", f"{code} {text}")
    code, text = register(rpc, f"{WORK}/cx.pem", f"{WORK}/kx.pem", cvm_pub, ca)
    check(code is None, "a certificate from another root fails the TLS handshake", text)
    code, text = register(rpc, None, None, cvm_pub, ca)
    check(code is None, "no client certificate fails the TLS handshake", text)
    other_pub = sh("wg", "pubkey", input=sh("wg", "genkey").stdout).stdout.strip()
    code, text = register(rpc, f"{WORK}/cn.pem", f"{WORK}/kn.pem", other_pub, ca)
    check(code == 403 and "names no app" in text, "a KMS certificate without app info: 403", f"{code} {text}")
    code, text = register(rpc, f"{WORK}/c2.pem", f"{WORK}/k2.pem", other_pub, ca)
    ip2 = json.loads(text)["wg"]["client_ip"] if code == 200 else ""
    check(code == 200 and ip2 != client_ip, "a second instance of the app gets its own address", text)

    # admin: the table, then removal (the admin API listens in the gateway's namespace)
    def admin_ns(method, body=None):
        code = ("import sys,urllib.request\n"
                "d=sys.argv[2].encode() if sys.argv[2] else None\n"
                "req=urllib.request.Request(sys.argv[1],data=d,"
                "headers={'Authorization':'Bearer register-test-token-0123456789'})\n"
                "print(urllib.request.urlopen(req,timeout=10).read().decode())\n")
        r = sh("python3", "-c", code, f"http://127.0.0.1:{admin}/prpc/Admin.{method}",
               json.dumps(body) if body is not None else "", ns=NS_GW, check_rc=False)
        return json.loads(r.stdout or "null")

    lst = admin_ns("ListInstances")["instances"]
    i1 = [i for i in lst if i["instance_id"] == instname]
    check(len(lst) == 2 and i1 and i1[0]["wg_public_key"] == cvm_pub and i1[0]["last_handshake"] > 0 and
          i1[0]["address"] == client_ip, "ListInstances: both instances, the first with its key and a handshake", lst)
    admin_ns("RemoveInstance", {"instance_id": instname})
    peers = sh("wg", "show", IF_GW, "dump", ns=NS_GW).stdout.splitlines()[1:]
    check(all(p.split("\t")[0] != cvm_pub for p in peers) and len(peers) == 1,
          "RemoveInstance takes the CVM's peer off the WireGuard device", peers)
    r = sh("curl", "-sS", "--max-time", "5", "--cacert", ca, "--resolve", f"{instname}-8080.gw.test:{port}:127.0.0.1",
           "-w", "\n%{http_code}", f"https://{instname}-8080.gw.test:{port}/", ns=NS_GW, check_rc=False)
    check(r.stdout.strip().endswith("503"), "and its route", r.stdout)
    print(f"{checks} checks, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        rc = main()
    finally:
        teardown()
    sys.exit(rc)
