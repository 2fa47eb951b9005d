#!/usr/bin/env python3
"""The in-guest attacker of tests/integration/verify_gap_foreign_amd_chain.sh,
snapshot_snp.sh and verify_attacker_tls_key.sh (with CHAIN_DIR "-": a relay
of the agent's genuine bundles behind a TLS key of its own).

It serves TLS 1.3 with a given agent certificate and private key, and
answers each POST /GetEvidence with the bundle that the attacker's agent
(on its own simulator, with its own ARK, ASK and VCEK) gives for the
verifier's nonce, read from that agent's unix socket; unless CHAIN_DIR is
"-", the bundle's "snp_cert_table" then carries that simulator's chain as
an SEV-SNP host supplies it (AMD's GHCB certificate table: GUID, offset,
length entries ended by zeros, then the DER certificates). MODE (default
"ok") spoils the table as a hostile host could: "unterminated" (one entry of
an unknown GUID and no entry of zeros), "many" (17 entries of an unknown
GUID), "outside" (the ARK's entry points past the end), "twice" (the VCEK
named twice).

Usage: verify_foreign_chain_server.py CERT KEY AGENT_SOCKET CHAIN_DIR|- PORT_FILE [MODE]
(serves at most 40 connections, then exits).
"""
import http.client
import json
import os
import socket
import ssl
import struct
import sys
import uuid

# The GUIDs of AMD's certificate table (sev-guest's cert-table.c), stored in
# their text's byte order.
GUIDS = (("vcek", "63da758d-e664-4564-adc5-f4b93be8accd"),
         ("ask", "4ab7b379-bbac-4fe4-a02f-05aef327c782"),
         ("ark", "c0b406a4-a803-4952-9743-3fb6014cd0ae"))


def cert_table(chain_dir, mode="ok"):
    certs = {
        "vcek": open(os.path.join(chain_dir, "vcek.der"), "rb").read(),
        "ask": ssl.PEM_cert_to_DER_cert(open(os.path.join(chain_dir, "ask.pem")).read()),
        "ark": ssl.PEM_cert_to_DER_cert(open(os.path.join(chain_dir, "ark.pem")).read()),
    }
    guids = GUIDS + (GUIDS[0],) if mode == "twice" else GUIDS
    off = 24 * (len(guids) + 1)
    head, body = b"", b""
    for name, guid in guids:
        at = off + len(body)
        if mode == "outside" and name == "ark":
            at = 1 << 20
        head += uuid.UUID(guid).bytes + struct.pack("<II", at, len(certs[name]))
        body += certs[name]
    if mode == "unterminated":
        return b"\x11" * 24
    if mode == "many":
        return b"\x11" * 24 * 17 + bytes(24)
    return head + bytes(24) + body


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.unix_path)


def read_request(conn):
    req = b""
    while b"\r\n\r\n" not in req and len(req) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        req += chunk
    head, _, body = req.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        body += chunk
    return body[:length]


def main():
    cert, key, agent_sock, chain_dir, port_file = sys.argv[1:6]
    mode = sys.argv[6] if len(sys.argv) > 6 else "ok"
    table = None if chain_dir == "-" else cert_table(chain_dir, mode).hex()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(port_file + ".tmp", port_file)
    for _ in range(40):
        raw, _addr = srv.accept()
        raw.settimeout(30)
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
            asked = read_request(conn)
            if asked is None:
                conn.close()
                continue
            up = UnixHTTP(agent_sock)
            up.request("POST", "/GetEvidence", body=asked, headers={"Content-Type": "application/json"})
            answer = up.getresponse()
            bundle = json.loads(answer.read())
            up.close()
            if table is not None:
                bundle["snp_cert_table"] = table
            body = json.dumps(bundle).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(body) + body)
            conn.close()
        except (OSError, ssl.SSLError, ValueError, http.client.HTTPException) as e:
            print("verify_foreign_chain_server: %s" % e, file=sys.stderr)
            raw.close()


if __name__ == "__main__":
    main()
