#!/usr/bin/env python3
"""The in-guest attacker of tests/integration/verify_gap_zero_nonce.sh and
verify_attacker_tls_key.sh.

Usage: verify_replay_server.py CERT KEY BUNDLE PORT_FILE
       verify_replay_server.py CERT KEY relay:SOCKET PORT_FILE
(serves at most 20 connections, then exits).

With BUNDLE it holds the agent's TLS certificate and private key (the
strongest version of the attacker: the RA-TLS check of the certificate
passes) and answers every POST /GetEvidence with one recorded bundle,
whatever nonce the verifier sent. With relay:SOCKET it serves its own
certificate and key (CERT may hold a chain) and relays each request body
to the agent's dstack socket SOCKET, answering the agent's genuine bundle
for the verifier's own nonce.
"""
import socket
import ssl
import sys


def relay_evidence(sock_path, conn, req):
    """Reads the rest of the request body and asks the agent's socket."""
    head, _, rest = req.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < min(length, 65536):
        chunk = conn.recv(4096)
        if not chunk:
            break
        rest += chunk
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(60)
    u.connect(sock_path)
    u.sendall(b"POST /GetEvidence HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(rest) + rest)
    reply = b""
    while True:
        chunk = u.recv(65536)
        if not chunk:
            break
        reply += chunk
    u.close()
    return reply.partition(b"\r\n\r\n")[2]


def main():
    cert, key, bundle_path, port_file = sys.argv[1:5]
    relay = bundle_path[6:] if bundle_path.startswith("relay:") else None
    body = None if relay else open(bundle_path, "rb").read()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    import os
    os.rename(port_file + ".tmp", port_file)
    for _ in range(20):
        raw, _addr = srv.accept()
        raw.settimeout(30)
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
            req = b""
            while b"\r\n\r\n" not in req and len(req) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                req += chunk
            if relay:
                body = relay_evidence(relay, conn, req)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(body) + body)
            conn.close()
        except (OSError, ssl.SSLError):
            raw.close()


if __name__ == "__main__":
    main()
