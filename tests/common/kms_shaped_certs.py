#!/usr/bin/env python3
"""Certificates in the shape the KMS issues to CVMs (dstack's SignCert): a
KMS root, an App CA under it, and leaves carrying the app id (1.3), usage
(1.4) and app info (1.9) extensions, for the gateway's registration test and
benchmark.

As a program: kms_shaped_certs.py DIR COUNT writes DIR/kms-root.pem, an RPC
server certificate for 127.0.0.1 (DIR/rpc.pem, DIR/rpc.key, its CA
DIR/rpc-ca.pem) and COUNT CVM identities DIR/c<i>.pem (chain), DIR/k<i>.pem
and a WireGuard public key DIR/w<i>.txt, i = 0..COUNT-1, each its own
instance of one app.
"""
import base64
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

OID_APP_ID = x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.3")
OID_USAGE = x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.4")
OID_APP_INFO = x509.ObjectIdentifier("1.3.6.1.4.1.62397.1.9")


def der_octets(b):
    assert len(b) < 65536
    if len(b) < 128:
        return bytes([0x04, len(b)]) + b
    if len(b) < 256:
        return bytes([0x04, 0x81, len(b)]) + b
    return bytes([0x04, 0x82, len(b) >> 8, len(b) & 0xFF]) + b


def mp_bin(b):
    return bytes([0xC4, len(b)]) + b


def app_info(app_id, instance_id):
    fields = [app_id, bytes(32), instance_id, bytes(32), bytes(32), bytes(32), b"", b""]
    return bytes([0x98]) + b"".join(mp_bin(f) for f in fields)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn, issuer_key=None, issuer_name=None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer_name or name(cn))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    return key, b.sign(issuer_key or key, hashes.SHA256())


def make_leaf(ca_key, ca_cert, app_id, instance_id, with_info=True):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name("app")).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.UnrecognizedExtension(OID_APP_ID, der_octets(app_id)), critical=False)
         .add_extension(x509.UnrecognizedExtension(OID_USAGE, der_octets(b"app:custom")), critical=False))
    if with_info:
        b = b.add_extension(x509.UnrecognizedExtension(OID_APP_INFO, der_octets(app_info(app_id, instance_id))),
                            critical=False)
    return key, b.sign(ca_key, hashes.SHA256())


def write_pem(path, *objs):
    with open(path, "wb") as f:
        for o in objs:
            if isinstance(o, x509.Certificate):
                f.write(o.public_bytes(serialization.Encoding.PEM))
            else:
                f.write(o.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))




def make_server(ca_key, ca_cert, host):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))])
    except ValueError:
        san = x509.SubjectAlternativeName([x509.DNSName(host)])
    cert = (x509.CertificateBuilder().subject_name(name(host)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(san, critical=False).sign(ca_key, hashes.SHA256()))
    return key, cert


def main():
    out, count = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    kms_key, kms = make_ca("Dstack KMS CA")
    appca_key, appca = make_ca("Dstack App CA", kms_key, kms.subject)
    write_pem(f"{out}/kms-root.pem", kms)
    rca_key, rca = make_ca("gateway RPC test CA")
    k, c = make_server(rca_key, rca, "127.0.0.1")
    write_pem(f"{out}/rpc-ca.pem", rca)
    write_pem(f"{out}/rpc.pem", c)
    write_pem(f"{out}/rpc.key", k)
    app_id = bytes.fromhex("cd" * 20)
    for i in range(count):
        k, c = make_leaf(appca_key, appca, app_id, i.to_bytes(20, "big"))
        write_pem(f"{out}/c{i}.pem", c, appca)
        write_pem(f"{out}/k{i}.pem", k)
        with open(f"{out}/w{i}.txt", "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")


if __name__ == "__main__":
    main()
