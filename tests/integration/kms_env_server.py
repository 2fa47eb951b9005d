#!/usr/bin/env python3
"""A stand-in for the KMS's public prpc methods, for integration.kms_env_sdk
until cvm-kmsd serves them: HTTPS (or HTTP without a certificate) on
127.0.0.1, port 0, the bound port written to DIR/port.

  POST /prpc/KMS.GetAppEnvEncryptPubKey?json  -> DIR/answer.json (read per request)
  POST /prpc/KMS.GetMeta?json                 -> DIR/meta.json
  anything else                               -> 400 {"error": ...}

Each request body is saved to DIR/last-<method>.json so the test can check
what the client sent.

usage: kms_env_server.py DIR [CERT KEY]"""
import http.server
import os
import ssl
import sys

DIR = sys.argv[1]
METHODS = {"GetAppEnvEncryptPubKey": "answer.json", "GetMeta": "meta.json"}


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(n, 65536))
        path, _, query = self.path.partition("?")
        method = path.removeprefix("/prpc/KMS.")
        if not path.startswith("/prpc/KMS.") or method not in METHODS or query != "json":
            self.reply(400, b'{"error":"Service not found: %s"}' % method.encode())
            return
        with open(os.path.join(DIR, "last-%s.json" % method), "wb") as f:
            f.write(body)
        with open(os.path.join(DIR, METHODS[method]), "rb") as f:
            self.reply(200, f.read())


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if len(sys.argv) == 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
tmp = os.path.join(DIR, "port.tmp")
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, os.path.join(DIR, "port"))
srv.serve_forever()
