#!/usr/bin/env python3
"""Writes the cluster TLS fixtures of FoxClusterTests (run once; the output is committed).

node_N.key: four P-256 node keys (SEC1 PEM, as `foxmq address-book` writes them)
self_N.pem: a self-signed certificate of node N's key, valid 2020-2120
ca.pem, ca_N.pem: a test CA and certificates it issued for node N's key
other-ca.pem, other-ca_N.pem: a second CA and its certificates (a peer the first CA does not vouch for)
expired_N.pem: a self-signed certificate of node N's key that expired in 2021
stranger.key, stranger.pem: a key outside every book, self-signed
Needs the Python `cryptography` package.
"""
import datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

def key():
    return ec.generate_private_key(ec.SECP256R1())

def write_key(path, k):
    open(path, "wb").write(k.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))

def cert(subject_key, cn, issuer_key=None, issuer_cn=None, start=2020, end=2120, ca=False):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]) if issuer_cn else name
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
         .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(datetime.datetime(start, 1, 1, tzinfo=datetime.timezone.utc))
         .not_valid_after(datetime.datetime(end, 1, 1, tzinfo=datetime.timezone.utc))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    return b.sign(issuer_key or subject_key, hashes.SHA256())

def write_cert(path, c):
    open(path, "wb").write(c.public_bytes(serialization.Encoding.PEM))

ca_key, other_key = key(), key()
write_cert("ca.pem", cert(ca_key, "foxmq test CA", ca=True))
write_cert("other-ca.pem", cert(other_key, "another CA", ca=True))
for n in range(4):
    k = key()
    write_key(f"node_{n}.key", k)
    write_cert(f"self_{n}.pem", cert(k, f"node {n}"))
    write_cert(f"ca_{n}.pem", cert(k, f"node {n}", ca_key, "foxmq test CA"))
    write_cert(f"other-ca_{n}.pem", cert(k, f"node {n}", other_key, "another CA"))
    write_cert(f"expired_{n}.pem", cert(k, f"node {n}", start=2020, end=2021))
s = key()
write_key("stranger.key", s)
write_cert("stranger.pem", cert(s, "stranger"))
