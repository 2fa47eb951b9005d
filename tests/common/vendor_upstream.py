#!/usr/bin/env python3
"""A local stand-in for Intel's PCS/PCCS (API v4) and AMD's KDS, for tests.

It serves the collateral of the repository's vectors (tests/vectors/{tdx,sgx,snp}/*)
and of any folder given with --dir (the same layout: tcb_info.json, qe_identity.json,
*_issuer_chain.pem, pck_crl.der, root_ca_crl.der; vcek.der/vlek.der, cert_chain.pem)
on the vendors' paths, with their query parameters, response headers and error
statuses, and it can be told to fail (429, 500, hang, reset, a bad signature, an
expired item, slowness) so that the collateral cache can be tested against outages.

Wire format, from the vendors' documents (read, not copied):
 - Intel, "Intel SGX and Intel TDX: PCK Certificate and Certificate Revocation List
   Infrastructure Service API", version 4 (api.portal.trustedservices.intel.com):
     GET /sgx/certification/v4/tcb?fmspc=HEX[&update=standard|early]
         [&tcbEvaluationDataNumber=N]          TCB info v3, header TCB-Info-Issuer-Chain
     GET /tdx/certification/v4/tcb?fmspc=...   the same for TDX
     GET /sgx/certification/v4/qe/identity     QE identity, SGX-Enclave-Identity-Issuer-Chain
     GET /sgx/certification/v4/qve/identity    QvE identity (the vectors have none: 404)
     GET /tdx/certification/v4/qe/identity     TD_QE identity
     GET /sgx/certification/v4/pckcrl?ca=processor|platform[&encoding=pem|der]
                                               the PCK CRL (PEM unless encoding=der),
                                               header SGX-PCK-CRL-Issuer-Chain
     GET /sgx/certification/v4/pckcert?encrypted_ppid=&cpusvn=&pcesvn=&pceid=
     POST /sgx/certification/v4/pckcert  {"platformManifest", "cpusvn", "pcesvn", "pceid"}
                                               one PCK certificate (PEM) for a raw TCB,
                                               headers SGX-PCK-Certificate-Issuer-Chain,
                                               SGX-TCBm, SGX-FMSPC, SGX-PCK-Certificate-CA-Type
     POST /sgx/certification/v4/pckcerts {"platformManifest": HEX, "pceid": HEX}
     GET  /sgx/certification/v4/pckcerts?encrypted_ppid=&pceid=
                                               every PCK certificate of the platform: a JSON
                                               array of {"tcb": {sgxtcbcomp01svn..16svn,
                                               pcesvn}, "tcbm": HEX, "cert": URL-encoded PEM
                                               or "Not available"}, the same headers but
                                               SGX-TCBm
                                               The vectors hold no platform: a platform is
                                               registered with --platform ID_FILE=QUOTE (the
                                               hex platform manifest or encrypted PPID in
                                               ID_FILE; its certificate is the real PCK
                                               certificate of the quote's certification data,
                                               its issuer chain the quote's PCK CA and root).
                                               Unregistered: 404 once the request is well formed.
   Version 3 paths (/sgx/certification/v3/...) serve TCB info v2 with the header
   SGX-TCB-Info-Issuer-Chain. Every response carries Request-ID; a malformed
   parameter is 400 (with Error-Code / Error-Message headers), an unknown FMSPC 404.
   Issuer chains are PEM, URL-encoded (percent-encoded) in the header.
 - Intel's PCCS (SGXDataCenterAttestationPrimitives, QuoteGeneration/pccs) adds
     GET /sgx/certification/v4/rootcacrl       the Intel SGX Root CA CRL (DER)
   and certificates.trustedservices.intel.com serves the same CRL as
     GET /IntelSGXRootCA.der
 - AMD, "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
   Specification" (57230), chapter 4:
     GET /vcek/v1/{product}/{hwid hex}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=[&fmcSPL=]
                                               the VCEK, DER (hwid: 64 bytes, Turin 8)
     GET /vcek/v1/{product}/cert_chain         ASK then ARK, PEM
     GET /vlek/v1/{product}/cert_chain         ASVK then ARK, PEM
     GET /{vcek,vlek}/v1/{product}/crl         the CRL, DER (the vectors have none: 404)
   Which product, hwid and TCB a VCEK answers comes from its own extensions
   (1.3.6.1.4.1.3704.1.2 productName, .1.3.x the SPLs, .1.4 hwID).

Which FMSPC, TEE and CA a vector's items answer comes from its files: the TCB
info's fmspc and id, the QE identity's id, the PCK CRL's issuer name. When several
folders hold the same item (e.g. two collateral generations of one FMSPC), the one
with the latest nextUpdate is served, as a live service would; the one with the
earliest is what the `expired` mode serves.

Control API (same port; not counted in the statistics):
  POST /_control  {"mode": M, "prefix": "/sgx/", "retry_after": N, "ms": N}
        M: ok | 429 | 500 | hang | close | badsig | expired | slow | onebad
        (onebad: a pckcerts answer gains a copy of its certificate with one
        flipped bit in its signature, listed after the good one)
        without "prefix" the mode is global; {"mode": "ok"} without a prefix clears
        every mode; {"reset_stats": true} zeroes the counters.
  GET  /_stats    {"total": N, "requests": {"/path?query": N, ...},
                   "paths": {"/path": N, ...}, "times": {"/path": [unix time, ...]}}
  GET  /_items    what is served: [{"path": ..., "source": ..., "next_update": ...}]

Usage: vendor_upstream.py [--port 0] [--port-file FILE] [--dir DIR]... [--no-vectors]
                          [--platform ID_FILE=QUOTE]...
The bound port is printed on stdout ("port N") and written to --port-file.
Python 3 standard library only.
"""

import argparse
import base64
import calendar
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# --- a minimal DER reader (test tooling: certificates and CRLs of the vectors) ---


def der_tlv(buf, off):
    """Returns (tag, start of contents, end of contents) of the TLV at off."""
    if off + 2 > len(buf):
        raise ValueError("DER: truncated header")
    tag = buf[off]
    ln = buf[off + 1]
    off += 2
    if ln & 0x80:
        n = ln & 0x7F
        if n == 0 or n > 4 or off + n > len(buf):
            raise ValueError("DER: bad length")
        ln = int.from_bytes(buf[off:off + n], "big")
        off += n
    if off + ln > len(buf):
        raise ValueError("DER: truncated contents")
    return tag, off, off + ln


def der_children(buf, start, end):
    out = []
    off = start
    while off < end:
        tag, s, e = der_tlv(buf, off)
        out.append((tag, s, e))
        off = e
    return out


def der_oid(b):
    first = b[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    v = 0
    for c in b[1:]:
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            parts.append(v)
            v = 0
    return ".".join(str(p) for p in parts)


def der_time(buf, tag, s, e):
    t = buf[s:e].decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        yy = int(t[0:2])
        t = ("19" if yy >= 50 else "20") + t
    return calendar.timegm(time.strptime(t[:14], "%Y%m%d%H%M%S"))


def cert_info(der):
    """notBefore, notAfter and the extensions {oid: value bytes} of a certificate."""
    _, s, e = der_tlv(der, 0)
    tbs_tag, ts, te = der_children(der, s, e)[0]
    kids = der_children(der, ts, te)
    i = 1 if kids[0][0] == 0xA0 else 0  # [0] version
    validity = kids[i + 3]
    (t1, a1, b1), (t2, a2, b2) = der_children(der, validity[1], validity[2])
    exts = {}
    for tag, cs, ce in kids:
        if tag != 0xA3:
            continue
        _, ss, se = der_tlv(der, cs)
        for _, xs, xe in der_children(der, ss, se):
            parts = der_children(der, xs, xe)
            oid = der_oid(der[parts[0][1]:parts[0][2]])
            exts[oid] = der[parts[-1][1]:parts[-1][2]]
    return der_time(der, t1, a1, b1), der_time(der, t2, a2, b2), exts


def crl_info(der):
    """The issuer's CN, thisUpdate and nextUpdate of a CRL."""
    _, s, e = der_tlv(der, 0)
    _, ts, te = der_children(der, s, e)[0]
    kids = der_children(der, ts, te)
    i = 1 if kids[0][0] == 0x02 else 0  # version INTEGER
    issuer = kids[i + 1]
    cn = ""
    for _, rs, re_ in der_children(der, issuer[1], issuer[2]):
        for _, as_, ae in der_children(der, rs, re_):
            (ot, os_, oe), (vt, vs, ve) = der_children(der, as_, ae)
            if der_oid(der[os_:oe]) == "2.5.4.3":
                cn = der[vs:ve].decode("utf-8", "replace")
    this_u = der_time(der, *kids[i + 2])
    next_u = der_time(der, *kids[i + 3]) if kids[i + 3][0] in (0x17, 0x18) else 0
    return cn, this_u, next_u


def der_int(b):
    tag, s, e = der_tlv(b, 0)
    if tag != 0x02:
        raise ValueError("not an INTEGER")
    return int.from_bytes(b[s:e], "big")


def pem_blocks(text):
    return [base64.b64decode("".join(m.split()))
            for m in re.findall(r"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", text, re.S)]


def iso_time(s):
    return calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ"))


# --- the items ---

SNP_OID = "1.3.6.1.4.1.3704.1."
PRODUCTS = ("Milan", "Genoa", "Turin")


class Item:
    def __init__(self, key, body, ctype, headers, source, next_update, kind, evn=None):
        self.key = key  # the path (and canonical query) it answers
        self.body = body
        self.ctype = ctype
        self.headers = headers
        self.source = source
        self.next_update = next_update
        self.kind = kind  # json, der, pem
        self.evn = evn  # Intel: the tcbEvaluationDataNumber of a TCB info or identity


def chain_header(path):
    with open(path, "r", encoding="ascii") as f:
        pem = f.read()
    return urllib.parse.quote(pem, safe="")


def load_dcap_dir(d, tee_hint, out):
    p = lambda n: os.path.join(d, n)
    if os.path.exists(p("tcb_info.json")):
        raw = open(p("tcb_info.json"), "rb").read()
        t = json.loads(raw)["tcbInfo"]
        tee = (t.get("id") or tee_hint or "SGX").lower()
        fmspc = t["fmspc"].lower()
        api = "v4" if t.get("version", 2) >= 3 else "v3"
        hdr = "TCB-Info-Issuer-Chain" if api == "v4" else "SGX-TCB-Info-Issuer-Chain"
        # TCB evaluation data numbers select an item only on v4
        out.append(Item(("tcb", tee, api, fmspc), raw, "application/json",
                        {hdr: chain_header(p("tcb_info_issuer_chain.pem"))}, d, iso_time(t["nextUpdate"]),
                        "json", t.get("tcbEvaluationDataNumber")))
    if os.path.exists(p("qe_identity.json")):
        raw = open(p("qe_identity.json"), "rb").read()
        q = json.loads(raw)["enclaveIdentity"]
        which = {"QE": ("sgx", "qe"), "TD_QE": ("tdx", "qe"), "QVE": ("sgx", "qve")}.get(q["id"])
        if which:
            for api in ("v3", "v4") if which[0] == "sgx" else ("v4",):
                out.append(Item(("id", which[0], api, which[1]), raw, "application/json",
                                {"SGX-Enclave-Identity-Issuer-Chain":
                                 chain_header(p("qe_identity_issuer_chain.pem"))},
                                d, iso_time(q["nextUpdate"]), "json", q.get("tcbEvaluationDataNumber")))
    if os.path.exists(p("pck_crl.der")):
        der = open(p("pck_crl.der"), "rb").read()
        cn, _, nu = crl_info(der)
        ca = "platform" if "Platform" in cn else "processor" if "Processor" in cn else None
        if ca:
            for api in ("v3", "v4"):
                out.append(Item(("pckcrl", api, ca), der, "application/pkix-crl",
                                {"SGX-PCK-CRL-Issuer-Chain": chain_header(p("pck_crl_issuer_chain.pem"))},
                                d, nu, "der"))
    if os.path.exists(p("root_ca_crl.der")):
        der = open(p("root_ca_crl.der"), "rb").read()
        _, _, nu = crl_info(der)
        out.append(Item(("rootcrl",), der, "application/pkix-crl", {}, d, nu, "der"))


def load_snp_dir(d, out):
    p = lambda n: os.path.join(d, n)
    product = None
    for name, signer in (("vcek.der", "vcek"), ("vlek.der", "vlek")):
        if not os.path.exists(p(name)):
            continue
        der = open(p(name), "rb").read()
        _, not_after, exts = cert_info(der)
        pn = exts.get(SNP_OID + "2", b"")
        if pn[:1] == b"\x16":  # IA5String
            _, s, e = der_tlv(pn, 0)
            pn = pn[s:e]
        pname = pn.decode("ascii", "replace").split("-")[0]
        if pname in PRODUCTS:
            product = pname
        if signer != "vcek":
            continue  # KDS serves no VLEK by hwid (it is provisioned to the host)
        hwid = exts.get(SNP_OID + "4")
        if hwid is None or product is None:
            continue
        if len(hwid) in (66, 10) and hwid[0] == 0x04:
            _, s, e = der_tlv(hwid, 0)
            hwid = hwid[s:e]
        spl = {n: der_int(exts[SNP_OID + "3." + str(i)]) for n, i in
               (("blSPL", 1), ("teeSPL", 2), ("snpSPL", 3), ("ucodeSPL", 8)) if SNP_OID + "3." + str(i) in exts}
        if SNP_OID + "3.9" in exts:
            spl["fmcSPL"] = der_int(exts[SNP_OID + "3.9"])
        out.append(Item(("vcek", product, hwid.hex(), tuple(sorted(spl.items()))), der, "application/pkix-cert",
                        {}, d, not_after, "der"))
    if product is None:
        try:
            product = json.load(open(p("manifest.json")))["expected"]["product"]
        except (OSError, KeyError, ValueError):
            product = None
    if product and os.path.exists(p("cert_chain.pem")):
        text = open(p("cert_chain.pem"), "r", encoding="ascii").read()
        certs = pem_blocks(text)
        signer = "vlek" if os.path.exists(p("vlek.der")) or os.path.exists(p("asvk.pem")) else "vcek"
        not_after = min(cert_info(c)[1] for c in certs)
        out.append(Item(("chain", signer, product), text.encode("ascii"), "application/x-pem-file", {}, d,
                        not_after, "pem"))
    if product and os.path.exists(p("crl.der")):
        der = open(p("crl.der"), "rb").read()
        _, _, nu = crl_info(der)
        signer = "vlek" if os.path.exists(p("vlek.der")) else "vcek"
        out.append(Item(("amdcrl", signer, product), der, "application/pkix-crl", {}, d, nu, "der"))


def load_all(dirs):
    items = []
    for d, kind in dirs:
        if kind == "snp" or os.path.exists(os.path.join(d, "cert_chain.pem")):
            load_snp_dir(d, items)
        if kind != "snp":
            load_dcap_dir(d, kind.upper() if kind in ("tdx", "sgx") else None, items)
    by_key = {}
    for it in items:
        by_key.setdefault(it.key, []).append(it)
    return by_key


# --- failure injection ---


def flip_signature(item):
    """One flipped bit in the signature: the JSON's signature hex, the DER's last byte
    (an X.509 or CRL signature ends the encoding), the first PEM certificate's."""
    if item.kind == "json":
        s = item.body.decode("utf-8")
        m = re.search(r'"signature"\s*:\s*"([0-9a-fA-F]+)"', s)
        if not m:
            return item.body[:-2] + bytes([item.body[-2] ^ 1]) + item.body[-1:]
        i = m.start(1) + 5
        c = s[i]
        c2 = format(int(c, 16) ^ 1, "x")
        return (s[:i] + c2 + s[i + 1:]).encode("utf-8")
    if item.kind == "der":
        return item.body[:-1] + bytes([item.body[-1] ^ 1])
    certs = pem_blocks(item.body.decode("ascii"))
    certs[0] = certs[0][:-1] + bytes([certs[0][-1] ^ 1])
    out = ""
    for c in certs:
        b = base64.b64encode(c).decode("ascii")
        out += "-----BEGIN CERTIFICATE-----\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64))
        out += "\n-----END CERTIFICATE-----\n"
    return out.encode("ascii")


SGX_EXT = "1.2.840.113741.1.13.1"


def pem_of(der):
    b = base64.b64encode(der).decode("ascii")
    return ("-----BEGIN CERTIFICATE-----\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64)) +
            "\n-----END CERTIFICATE-----\n")


def sgx_ext(der):
    """The SGX extension of a PCK certificate: {"tcb": [16 svns], "pcesvn", "cpusvn", "pceid", "fmspc"}."""
    _, _, exts = cert_info(der)
    ext = exts[SGX_EXT]
    out = {}
    _, s, e = der_tlv(ext, 0)
    for _, xs, xe in der_children(ext, s, e):
        (ot, os_, oe), (vt, vs, ve) = der_children(ext, xs, xe)[:2]
        oid = der_oid(ext[os_:oe])
        if oid == SGX_EXT + ".2":
            svn = [0] * 16
            for _, cs, ce in der_children(ext, vs, ve):
                (ot2, a, b), (vt2, c, d) = der_children(ext, cs, ce)[:2]
                sub = der_oid(ext[a:b])
                n = int(sub.rsplit(".", 1)[1])
                if 1 <= n <= 16:
                    svn[n - 1] = int.from_bytes(ext[c:d], "big")
                elif n == 17:
                    out["pcesvn"] = int.from_bytes(ext[c:d], "big")
                elif n == 18:
                    out["cpusvn"] = ext[c:d]
            out["tcb"] = svn
        elif oid == SGX_EXT + ".3":
            out["pceid"] = ext[vs:ve]
        elif oid == SGX_EXT + ".4":
            out["fmspc"] = ext[vs:ve]
    return out


class Platform:
    """A registered platform: the PCK certificate and issuer chain of a quote."""

    def __init__(self, pid, quote):
        data = open(quote, "rb").read()
        certs = pem_blocks(data.decode("latin-1"))
        if len(certs) < 3:
            raise ValueError("%s: no PCK chain (leaf, PCK CA, root) in the quote" % quote)
        self.id = pid
        self.leaf = certs[0]
        self.chain = "".join(pem_of(c) for c in certs[1:3])
        x = sgx_ext(self.leaf)
        self.tcb = x["tcb"]
        self.pcesvn = x["pcesvn"]
        self.cpusvn = x["cpusvn"]
        self.pceid = x["pceid"].hex().upper()
        self.fmspc = x["fmspc"].hex().upper()
        self.ca = "platform" if b"Platform CA" in certs[1] else "processor"
        self.tcbm = (self.cpusvn + self.pcesvn.to_bytes(2, "little")).hex().upper()

    def headers(self, with_tcbm):
        h = {"SGX-PCK-Certificate-Issuer-Chain": urllib.parse.quote(self.chain, safe=""),
             "SGX-FMSPC": self.fmspc, "SGX-PCK-Certificate-CA-Type": self.ca}
        if with_tcbm:
            h["SGX-TCBm"] = self.tcbm
        return h

    def entry(self, der):
        tcb = {"sgxtcbcomp%02dsvn" % (i + 1): v for i, v in enumerate(self.tcb)}
        tcb["pcesvn"] = self.pcesvn
        return {"tcb": tcb, "tcbm": self.tcbm, "cert": urllib.parse.quote(pem_of(der), safe="")}

    def certs_body(self, mode):
        leaf = flip_der(self.leaf) if mode == "badsig" else self.leaf
        # A TCB below every real one that Intel has no certificate for, first
        # (the client skips it), then the real certificate.
        na = {"tcb": dict({"sgxtcbcomp%02dsvn" % (i + 1): 0 for i in range(16)}, pcesvn=0),
              "tcbm": "00" * 18, "cert": "Not available"}
        arr = [na, self.entry(leaf)]
        if mode == "onebad":
            arr.append(self.entry(flip_der(self.leaf)))
        return json.dumps(arr).encode("ascii")

    def meets(self, cpusvn, pcesvn):
        return all(c >= t for c, t in zip(cpusvn, self.tcb)) and pcesvn >= self.pcesvn


def flip_der(der):
    return der[:-1] + bytes([der[-1] ^ 1])


class State:
    def __init__(self, by_key):
        self.by_key = by_key
        self.platforms = {}  # hex id (upper) -> Platform
        self.lock = threading.Lock()
        self.modes = {}  # prefix ("" = global) -> dict
        self.stats = {}
        self.paths = {}
        self.times = {}  # path -> arrival times (the first 64), to time Retry-After
        self.total = 0

    def mode_for(self, path):
        with self.lock:
            best = None
            for prefix, m in self.modes.items():
                if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                    best = (prefix, m)
            return dict(best[1]) if best else {"mode": "ok"}

    def count(self, full, path):
        with self.lock:
            self.stats[full] = self.stats.get(full, 0) + 1
            self.paths[path] = self.paths.get(path, 0) + 1
            t = self.times.setdefault(path, [])
            if len(t) < 64:
                t.append(round(time.time(), 3))
            self.total += 1


HEX = re.compile(r"^[0-9a-fA-F]+$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cvmkit-vendor-upstream/1"

    def log_message(self, fmt, *args):
        if os.environ.get("VENDOR_UPSTREAM_LOG"):
            sys.stderr.write("vendor_upstream: " + (fmt % args) + "\n")

    # -- plumbing --
    def send(self, status, body=b"", ctype="text/plain", headers=None, reason=None):
        self.send_response(status, reason)
        self.send_header("Request-ID", uuid.uuid4().hex)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def intel_error(self, status, code, msg):
        # Intel's PCS describes a 400 in the Error-Code and Error-Message headers.
        self.send(status, b"", headers={"Error-Code": code, "Error-Message": msg})

    # -- control --
    def do_POST(self):
        st = self.server.state
        if self.path in ("/sgx/certification/v4/pckcerts", "/sgx/certification/v4/pckcert"):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if 0 < n <= 1 << 20 else b""
            if not self.failure(self.path, self.path):
                self.post_pck(self.path.rsplit("/", 1)[1], body)
            return
        if self.path != "/_control":
            self.send(405, b"GET only\n")
            return
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            self.send(400, b"control: not JSON\n")
            return
        with st.lock:
            if req.get("reset_stats"):
                st.stats.clear()
                st.paths.clear()
                st.times.clear()
                st.total = 0
            mode = req.get("mode")
            if mode is not None:
                if mode not in ("ok", "429", "500", "hang", "close", "badsig", "expired", "slow", "onebad"):
                    self.send(400, ("control: unknown mode %r\n" % mode).encode())
                    return
                prefix = req.get("prefix", "")
                if mode == "ok" and prefix == "":
                    st.modes.clear()
                else:
                    st.modes[prefix] = {"mode": mode, "retry_after": int(req.get("retry_after", 1)),
                                        "ms": int(req.get("ms", 0))}
        self.send(200, b'{"ok":true}\n', "application/json")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_stats":
            with st.lock:
                body = json.dumps({"total": st.total, "requests": st.stats, "paths": st.paths, "times": st.times},
                                  sort_keys=True)
            self.send(200, body.encode() + b"\n", "application/json")
            return
        if url.path == "/_items":
            rows = []
            for key, cands in sorted(st.by_key.items(), key=lambda kv: repr(kv[0])):
                best = max(cands, key=lambda i: i.next_update)
                rows.append({"key": list(map(str, key)), "source": best.source, "next_update": best.next_update,
                             "candidates": len(cands)})
            self.send(200, json.dumps(rows, indent=1).encode() + b"\n", "application/json")
            return
        if self.failure(self.path, url.path):
            return
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            self.route(url.path, q, self.server.state.mode_for(url.path)["mode"])
        except BrokenPipeError:
            pass

    def failure(self, full, path):
        """Counts the request and answers it as its mode fails it; True if it did."""
        st = self.server.state
        st.count(full, path)
        m = st.mode_for(path)
        mode = m["mode"]
        if mode == "hang":
            # accept, never answer: hold the connection until the client gives up
            try:
                while self.rfile.read(1):
                    pass
            except OSError:
                pass
            self.close_connection = True
            return True
        if mode == "close":
            # a reset: RST instead of FIN (SO_LINGER 0), before any byte of a response
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            return True
        if mode == "429":
            self.send(429, b"Too Many Requests\n", headers={"Retry-After": str(m["retry_after"])})
            return True
        if mode == "500":
            self.send(500, b"Internal Server Error\n")
            return True
        if mode == "slow":
            time.sleep(m["ms"] / 1000.0)
        return False

    def post_pck(self, res, raw):
        """POST pckcert / pckcerts: the body is JSON with the platform manifest."""
        mode = self.server.state.mode_for(self.path)["mode"]
        try:
            req = json.loads(raw)
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            self.intel_error(400, "InvalidRequestSyntax", "the body is not a JSON object")
            return
        want = {"platformManifest", "pceid"} | ({"cpusvn", "pcesvn"} if res == "pckcert" else set())
        lens = {"pceid": 4, "cpusvn": 32, "pcesvn": 4}
        for k in want:
            v = req.get(k)
            if not isinstance(v, str) or not HEX.match(v) or (k in lens and len(v) != lens[k]) or \
                    (k == "platformManifest" and len(v) % 2):
                self.intel_error(400, "InvalidParameter", "%s: hex" % k)
                return
        if set(req) != want:
            self.intel_error(400, "InvalidParameter", "unexpected members")
            return
        self.answer_pck(res, req["platformManifest"], req["pceid"], req.get("cpusvn"), req.get("pcesvn"), mode)

    def answer_pck(self, res, pid, pceid, cpusvn, pcesvn, mode):
        pl = self.server.state.platforms.get(pid.upper())
        if pl is None or pl.pceid != pceid.upper():
            self.send(404, b"Not Found\n")
            return
        if mode == "expired":
            self.send(500, b"expired mode: no older generation of this item among the vectors\n")
            return
        if res == "pckcerts":
            self.send(200, pl.certs_body(mode), "application/json", pl.headers(False))
            return
        svn = bytes.fromhex(pcesvn)
        if not pl.meets(bytes.fromhex(cpusvn), svn[0] | (svn[1] << 8)):
            self.send(404, b"Not Found\n")  # no certificate at or below this raw TCB
            return
        leaf = flip_der(pl.leaf) if mode in ("badsig", "onebad") else pl.leaf
        self.send(200, pem_of(leaf).encode("ascii"), "application/x-pem-file", pl.headers(True))

    def pick(self, key, mode, evn=None):
        cands = self.server.state.by_key.get(key)
        if cands and evn is not None:
            cands = [i for i in cands if i.evn == evn]
        if not cands:
            return None, None
        if mode == "expired":
            old = min(cands, key=lambda i: i.next_update)
            new = max(cands, key=lambda i: i.next_update)
            if old is new:
                return None, "expired mode: no older generation of this item among the vectors"
            return old, None
        return max(cands, key=lambda i: i.next_update), None

    def serve(self, key, mode, body_fn=None, ctype=None, evn=None):
        it, why = self.pick(key, mode, evn)
        if why:
            self.send(500, (why + "\n").encode())
            return
        if it is None:
            self.send(404, b"Not Found\n")
            return
        body = flip_signature(it) if mode == "badsig" else it.body
        if body_fn:
            body = body_fn(body)
        self.send(200, body, ctype or it.ctype, it.headers)

    def one(self, q, name):
        v = q.get(name)
        if v is None:
            return None
        return v[0] if len(v) == 1 else False

    def route(self, path, q, mode):
        m = re.match(r"^/(sgx|tdx)/certification/(v3|v4)/(tcb|qe/identity|qve/identity|pckcrl|rootcacrl|pckcerts?)$",
                     path)
        if m:
            self.route_intel(m.group(1), m.group(2), m.group(3), q, mode)
            return
        if path == "/IntelSGXRootCA.der":
            self.serve(("rootcrl",), mode)
            return
        m = re.match(r"^/(vcek|vlek)/v1/([^/]+)/([^/]+)$", path)
        if m:
            self.route_amd(m.group(1), m.group(2), m.group(3), q, mode)
            return
        self.send(404, b"Not Found\n")

    def route_intel(self, tee, api, res, q, mode):
        update = self.one(q, "update")
        if update is False or (update is not None and update not in ("standard", "early")):
            self.intel_error(400, "InvalidParameter", "update: standard or early")
            return
        if update is not None and api == "v3":
            self.intel_error(400, "InvalidParameter", "update is a v4 parameter")
            return
        evn = self.one(q, "tcbEvaluationDataNumber")
        if evn is False or (evn is not None and not evn.isdigit()):
            self.intel_error(400, "InvalidParameter", "tcbEvaluationDataNumber: a number")
            return
        if evn is not None and update is not None:
            self.intel_error(400, "InvalidParameter", "update and tcbEvaluationDataNumber together")
            return
        if update == "early":
            self.send(404, b"Not Found\n")  # the vectors hold the standard update only
            return
        want_evn = int(evn) if evn is not None else None

        if res == "tcb":
            fmspc = self.one(q, "fmspc")
            if not fmspc or len(fmspc) != 12 or not HEX.match(fmspc):
                self.intel_error(400, "InvalidParameter", "fmspc: 12 hex digits")
                return
            key = ("tcb", tee, api, fmspc.lower())
        elif res in ("qe/identity", "qve/identity"):
            if res == "qve/identity" and tee != "sgx":
                self.send(404, b"Not Found\n")
                return
            key = ("id", tee, api, res.split("/")[0])
        elif res == "pckcrl":
            ca = self.one(q, "ca")
            enc = self.one(q, "encoding")
            if tee != "sgx":
                self.send(404, b"Not Found\n")
                return
            if ca not in ("processor", "platform") or enc is False or enc not in (None, "pem", "der"):
                self.intel_error(400, "InvalidParameter", "ca: processor or platform; encoding: pem or der")
                return
            key = ("pckcrl", api, ca)
            if enc != "der":
                # PEM unless encoding=der
                def pem(b):
                    s = base64.b64encode(b).decode("ascii")
                    return ("-----BEGIN X509 CRL-----\n" + "\n".join(s[i:i + 64] for i in range(0, len(s), 64)) +
                            "\n-----END X509 CRL-----\n").encode("ascii")
                self.serve(key, mode, pem, "application/x-pem-file")
                return
            self.serve(key, mode)
            return
        elif res == "rootcacrl":
            if tee != "sgx":
                self.send(404, b"Not Found\n")
                return
            self.serve(("rootcrl",), mode)
            return
        else:  # pckcert, pckcerts
            names = (("encrypted_ppid", 768), ("cpusvn", 32), ("pcesvn", 4), ("pceid", 4))
            if res == "pckcerts":
                names = (("encrypted_ppid", 768), ("pceid", 4))
            v = {}
            for name, ln in names:
                v[name] = self.one(q, name)
                if not v[name] or len(v[name]) != ln or not HEX.match(v[name]):
                    self.intel_error(400, "InvalidParameter", "%s: %d hex digits" % (name, ln))
                    return
            if tee != "sgx" or api != "v4":
                self.send(404, b"Not Found\n")
                return
            self.answer_pck(res, v["encrypted_ppid"], v["pceid"], v.get("cpusvn"), v.get("pcesvn"), mode)
            return
        self.serve(key, mode, evn=want_evn)

    def route_amd(self, signer, product, leaf, q, mode):
        if product not in PRODUCTS:
            self.send(400, b"Bad Request: unknown product\n")
            return
        if leaf == "cert_chain":
            self.serve(("chain", signer, product), mode)
            return
        if leaf == "crl":
            self.serve(("amdcrl", signer, product), mode)
            return
        if signer != "vcek":
            self.send(404, b"Not Found\n")
            return
        hwid = leaf
        ln = 16 if product == "Turin" else 128
        if len(hwid) != ln or not HEX.match(hwid):
            self.send(400, b"Bad Request: hwid\n")
            return
        names = ["blSPL", "teeSPL", "snpSPL", "ucodeSPL"] + (["fmcSPL"] if product == "Turin" else [])
        spl = {}
        for n in names:
            v = self.one(q, n)
            if v is None or v is False or not v.isdigit() or int(v) > 255:
                self.send(400, ("Bad Request: %s\n" % n).encode())
                return
            spl[n] = int(v)
        self.serve(("vcek", product, hwid.lower(), tuple(sorted(spl.items()))), mode)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--dir", action="append", default=[], help="a folder in the vectors' layout (repeatable)")
    ap.add_argument("--no-vectors", action="store_true", help="serve only the --dir folders")
    ap.add_argument("--platform", action="append", default=[], metavar="ID_FILE=QUOTE",
                    help="register a platform: its hex platform manifest or encrypted PPID, and the quote "
                         "whose PCK certificate it has (repeatable)")
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    vec = os.path.normpath(os.path.join(here, "..", "vectors"))
    dirs = []
    if not a.no_vectors:
        for kind in ("tdx", "sgx", "snp"):
            base = os.path.join(vec, kind)
            for n in sorted(os.listdir(base)):
                if os.path.isdir(os.path.join(base, n)):
                    dirs.append((os.path.join(base, n), kind))
    for d in a.dir:
        if not os.path.isdir(d):
            sys.exit("vendor_upstream: --dir %s: not a folder" % d)
        kind = os.path.basename(os.path.dirname(os.path.abspath(d)))
        dirs.append((d, kind if kind in ("tdx", "sgx", "snp") else ""))
    by_key = load_all(dirs)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.state = State(by_key)
    for spec in a.platform:
        id_file, sep, quote = spec.partition("=")
        if not sep:
            sys.exit("vendor_upstream: --platform %s: expected ID_FILE=QUOTE" % spec)
        pid = open(id_file, "r", encoding="ascii").read().strip().upper()
        if not pid or not HEX.match(pid) or len(pid) % 2:
            sys.exit("vendor_upstream: --platform %s: %s does not hold hex" % (spec, id_file))
        srv.state.platforms[pid] = Platform(pid, quote)
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, a.port_file)
    print("port %d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
