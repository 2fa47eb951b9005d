#!/usr/bin/env python3
"""A small RFC 6962 Certificate Transparency log for the tests of `cvm ct
monitor`: Merkle tree hashing and proofs per RFC 6962 section 2, signed tree
heads (ECDSA P-256, DigitallySigned over TreeHeadSignature), and the v1 API
(get-sth, get-sth-consistency, get-proof-by-hash, get-entries, add-chain,
add-pre-chain). Test-only endpoints:
  POST /test/add        {"cert": b64 DER} or {"tbs": b64 DER, "issuer_key_hash": b64}
  POST /test/misbehave  {"mode": "none" | "fork" | "badsig"}
    fork:   entry 0 is replaced (history rewritten; tree heads stay signed)
    badsig: tree heads carry a signature by another key
get-entries returns at most --page entries, as real logs cap their batches.
Usage: ct_log_server.py --key-out PEM --port-file FILE [--page N]"""
import argparse
import base64
import hashlib
import json
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def leaf_hash(leaf):
    return hashlib.sha256(b"\x00" + leaf).digest()


def node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hs):
    if len(hs) == 0:
        return hashlib.sha256(b"").digest()
    if len(hs) == 1:
        return hs[0]
    k = split(len(hs))
    return node(mth(hs[:k]), mth(hs[k:]))


def path(m, hs):
    """RFC 6962 2.1.1 audit path of leaf m in hs."""
    if len(hs) <= 1:
        return []
    k = split(len(hs))
    if m < k:
        return path(m, hs[:k]) + [mth(hs[k:])]
    return path(m - k, hs[k:]) + [mth(hs[:k])]


def subproof(m, hs, b):
    """RFC 6962 2.1.2 SUBPROOF(m, D[n], b)."""
    n = len(hs)
    if m == n:
        return [] if b else [mth(hs)]
    k = split(n)
    if m <= k:
        return subproof(m, hs[:k], b) + [mth(hs[k:])]
    return subproof(m - k, hs[k:], False) + [mth(hs[:k])]


class Log:
    def __init__(self, page):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.bad_key = ec.generate_private_key(ec.SECP256R1())
        self.leaves = []
        self.extra = []
        self.mode = "none"
        self.page = page
        self.lock = threading.Lock()

    def add(self, entry_type, body):
        ts = int(time.time() * 1000)
        leaf = struct.pack(">BBQH", 0, 0, ts, entry_type) + body + struct.pack(">H", 0)
        with self.lock:
            self.leaves.append(leaf)
            self.extra.append(b"\x00\x00\x00")
            return len(self.leaves) - 1, ts

    def hashes(self):
        hs = [leaf_hash(x) for x in self.leaves]
        if self.mode == "fork" and hs:
            hs[0] = leaf_hash(b"rewritten history")
        return hs

    def sth(self):
        with self.lock:
            hs = self.hashes()
        ts = int(time.time() * 1000)
        root = mth(hs)
        tbs = struct.pack(">BBQQ", 0, 1, ts, len(hs)) + root
        key = self.bad_key if self.mode == "badsig" else self.key
        sig = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
        ds = struct.pack(">BBH", 4, 3, len(sig)) + sig
        return {"tree_size": len(hs), "timestamp": ts, "sha256_root_hash": base64.b64encode(root).decode(),
                "tree_head_signature": base64.b64encode(ds).decode()}


def u24(b):
    return struct.pack(">I", len(b))[1:] + b


class Handler(BaseHTTPRequestHandler):
    log = None

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        log = self.log
        try:
            if u.path == "/ct/v1/get-sth":
                return self.reply(200, log.sth())
            if u.path == "/ct/v1/get-sth-consistency":
                first, second = int(q["first"]), int(q["second"])
                with log.lock:
                    hs = log.hashes()
                if not 0 < first <= second <= len(hs):
                    return self.reply(400, {"error": "bad range"})
                proof = subproof(first, hs[:second], True)
                return self.reply(200, {"consistency": [base64.b64encode(h).decode() for h in proof]})
            if u.path == "/ct/v1/get-proof-by-hash":
                h = base64.b64decode(q["hash"])
                size = int(q["tree_size"])
                with log.lock:
                    hs = log.hashes()[:size]
                if h not in hs:
                    return self.reply(404, {"error": "not found"})
                i = hs.index(h)
                return self.reply(200, {"leaf_index": i,
                                        "audit_path": [base64.b64encode(x).decode() for x in path(i, hs)]})
            if u.path == "/ct/v1/get-entries":
                start, end = int(q["start"]), int(q["end"])
                with log.lock:
                    n = len(log.leaves)
                    if start < 0 or end < start or start >= n:
                        return self.reply(400, {"error": "bad range"})
                    end = min(end, n - 1, start + log.page - 1)
                    ents = [{"leaf_input": base64.b64encode(log.leaves[i]).decode(),
                             "extra_data": base64.b64encode(log.extra[i]).decode()}
                            for i in range(start, end + 1)]
                return self.reply(200, {"entries": ents})
        except (KeyError, ValueError):
            return self.reply(400, {"error": "bad request"})
        self.reply(404, {"error": "no such method"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n > (1 << 20):
            return self.reply(413, {"error": "too large"})
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return self.reply(400, {"error": "not JSON"})
        log = self.log
        if self.path in ("/ct/v1/add-chain", "/test/add") and ("chain" in req or "cert" in req):
            der = base64.b64decode(req["chain"][0] if "chain" in req else req["cert"])
            idx, ts = log.add(0, u24(der))
            return self.reply(200, {"sct_version": 0, "index": idx, "timestamp": ts})
        if self.path in ("/ct/v1/add-pre-chain", "/test/add") and "tbs" in req:
            tbs = base64.b64decode(req["tbs"])
            ikh = base64.b64decode(req.get("issuer_key_hash", base64.b64encode(b"\x00" * 32)))
            idx, ts = log.add(1, ikh[:32].ljust(32, b"\x00") + u24(tbs))
            return self.reply(200, {"sct_version": 0, "index": idx, "timestamp": ts})
        if self.path == "/test/misbehave":
            log.mode = req.get("mode", "none")
            return self.reply(200, {"mode": log.mode})
        self.reply(404, {"error": "no such method"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key-out", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--page", type=int, default=2)
    a = ap.parse_args()
    Handler.log = Log(a.page)
    with open(a.key_out, "wb") as f:
        f.write(Handler.log.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
