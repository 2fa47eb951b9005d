#!/usr/bin/env python3
"""The in-guest attacker of tests/integration/verify_gap_zero_nonce.sh.

It holds the agent's TLS certificate and private key (the strongest version
of the attacker: the RA-TLS check of the certificate passes) and answers
every POST /GetEvidence with one recorded bundle, whatever nonce the
verifier sent. Usage: verify_replay_server.py CERT KEY BUNDLE PORT_FILE
(serves at most 20 connections, then exits).
"""
import socket
import ssl
import sys


def main():
    cert, key, bundle_path, port_file = sys.argv[1:5]
    body = open(bundle_path, "rb").read()
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
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % len(body) + body)
            conn.close()
        except (OSError, ssl.SSLError):
            raw.close()


if __name__ == "__main__":
    main()
