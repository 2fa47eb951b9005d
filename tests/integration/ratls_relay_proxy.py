#!/usr/bin/env python3
"""A TLS-terminating relay for tests/integration/ratls_relay.sh.

It plays the attacker who holds the server's certificate and private key:
it accepts TLS 1.3 with them (so the client's RA-TLS check of the
certificate passes), opens a second TLS 1.3 session to the real server and
copies the bytes both ways. The two sessions have different exporters, so
the fresh attestation the server makes for its session cannot match the
client's. Usage: ratls_relay_proxy.py CHAIN KEY UPSTREAM_PORT PORT_FILE
"""
import select
import socket
import ssl
import sys
import threading


def relay(conn, up):
    """Copies bytes both ways from one thread: an OpenSSL session must not be
    read in one thread while another writes it (a second pump thread made
    this test flaky)."""
    peer = {conn: up, up: conn}
    for s in (conn, up):
        s.setblocking(False)
    while True:
        ready = [s for s in (conn, up) if s.pending() > 0]
        if not ready:
            ready, _, _ = select.select([conn, up], [], [], 30)
            if not ready:
                return
        for s in ready:
            try:
                data = s.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except OSError:
                return
            if not data:
                return
            dst = peer[s]
            dst.setblocking(True)
            dst.sendall(data)
            dst.setblocking(False)


def serve(conn, upstream_port):
    up_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    up_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    up_ctx.check_hostname = False
    up_ctx.verify_mode = ssl.CERT_NONE
    try:
        raw = socket.create_connection(("127.0.0.1", upstream_port), timeout=30)
        up = up_ctx.wrap_socket(raw, server_hostname="localhost")
    except OSError as e:
        print(f"relay: upstream: {e}", file=sys.stderr)
        conn.close()
        return
    try:
        relay(conn, up)
    finally:
        for s in (conn, up):
            try:
                s.setblocking(True)
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def main():
    chain, key, upstream_port, port_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(chain, key)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    with open(port_file + ".tmp", "w") as f:
        f.write(f"{lsock.getsockname()[1]}\n")
    import os
    os.rename(port_file + ".tmp", port_file)
    while True:
        raw, _ = lsock.accept()
        try:
            conn = ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError) as e:
            print(f"relay: client handshake: {e}", file=sys.stderr)
            raw.close()
            continue
        threading.Thread(target=serve, args=(conn, upstream_port), daemon=True).start()


if __name__ == "__main__":
    main()
