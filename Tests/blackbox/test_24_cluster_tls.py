"""Cluster TLS (FoxMQ only): ``--cluster-cert`` (a certificate of the node's address-book key),
``--cluster-root-cert`` and ``--cluster-accept-peer-with-cert``, with certificates made by the
``openssl`` command line as an operator would make them.

1. Three nodes with self-signed certificates of their keys (the book is the trust anchor) order
   and deliver as without TLS; a member started without ``--cluster-cert`` is
   refused by the TLS members (no silent downgrade) while the three go on.
2. With a CA (``--cluster-root-cert``), a member whose certificate another CA issued is refused.
3. Start-up stops, naming the file, on a certificate of another node's key, a missing file, and
   a root certificate without a certificate.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import uid
from cluster_support import Collector, cluster_factory, foxmq, wait_until  # noqa: F401

pytestmark = pytest.mark.foxmq_only


def openssl(*args: str) -> None:
    run = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"openssl {' '.join(args)} failed:\n{run.stderr}"


def self_signed(key: Path, out: Path) -> Path:
    openssl("req", "-new", "-x509", "-key", str(key), "-subj", f"/CN={key.stem}", "-days", "30",
            "-out", str(out))
    return out


def make_ca(base: Path, name: str) -> tuple[Path, Path]:
    key, cert = base / f"{name}.key", base / f"{name}.pem"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    openssl("req", "-new", "-x509", "-key", str(key), "-subj", f"/CN={name}", "-days", "30", "-out", str(cert))
    return key, cert


def issued(ca: tuple[Path, Path], key: Path, out: Path) -> Path:
    csr = out.with_suffix(".csr")
    openssl("req", "-new", "-key", str(key), "-subj", f"/CN={key.stem}", "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]), "-CAcreateserial",
            "-days", "30", "-out", str(out))
    return out


def tls_refusals(node) -> list[str]:
    return re.findall(r".*TLS handshake failed.*", node.log_text())


def test_self_signed_certificates_order_and_a_plain_member_is_refused(cluster_factory):
    cluster = cluster_factory()
    for node in cluster.nodes[:3]:
        cert = self_signed(node.key, cluster.base / f"cert_{node.position}.pem")
        node.extra_args = ["--cluster-cert", str(cert)]
    cluster[3].expected_exit = True  # refused by everyone, it may give up: that is a refusal too
    for node in cluster.nodes:
        node.spawn()
    for node in cluster.nodes[:3]:
        node.wait_mqtt(30)
    assert '"clusterTLS":"on"' in cluster[0].log_text().replace(" ", ""), cluster[0].log_tail()

    subs = []
    for node in cluster.nodes[:3]:
        c = cluster.client(node, uid(f"sub{node.position}"))
        assert c.subscribe("tls/#", 1) == [1]
        subs.append(Collector(c))
    pub = cluster.client(1, uid("pub"))
    expected = [f"m{i:03d}".encode() for i in range(50)]
    for payload in expected:
        assert pub.publish("tls/x", payload, qos=1) == 0
    for s in subs:
        s.wait_for(expected, 20, "messages over the TLS cluster")
        assert s.settle(quiet=0.3) == expected

    wait_until(lambda: all(tls_refusals(n) for n in cluster.nodes[:3]), 10,
               message="each TLS member logs the refused plain member")


def test_a_root_certificate_refuses_a_member_another_ca_issued(cluster_factory):
    cluster = cluster_factory()
    ours = make_ca(cluster.base, "ca")
    theirs = make_ca(cluster.base, "other-ca")
    for node in cluster.nodes:
        ca = theirs if node.position == 3 else ours
        cert = issued(ca, node.key, cluster.base / f"cert_{node.position}.pem")
        node.extra_args = ["--cluster-cert", str(cert), "--cluster-root-cert", str(ours[1])]
    cluster[3].expected_exit = True
    for node in cluster.nodes:
        node.spawn()
    for node in cluster.nodes[:3]:
        node.wait_mqtt(30)
    a = cluster.client(0, uid("a"))
    b = cluster.client(2, uid("b"))
    assert b.subscribe("ca/#", 1) == [1]
    assert a.publish("ca/x", b"issued by our CA", qos=1) == 0
    assert b.get(10).payload == b"issued by our CA"
    wait_until(lambda: all(tls_refusals(n) for n in cluster.nodes[:3]), 10,
               message="each member logs the refused certificate of the other CA")


def test_start_up_names_an_unusable_certificate(tmp_path):
    made = foxmq("address-book", "from-range", "127.0.0.1", "29701", "29704", "--output-dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    other_cert = self_signed(tmp_path / "key_1.pem", tmp_path / "cert_1.pem")

    def start(*args: str) -> subprocess.CompletedProcess:
        return foxmq("run", str(tmp_path / "node"), "--secret-key-file", str(tmp_path / "key_0.pem"),
                     "--mqtt-addr", "127.0.0.1:0", "--cluster-addr", "127.0.0.1:29701", *args, timeout=30)

    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "address-book.toml").write_bytes((tmp_path / "address-book.toml").read_bytes())
    wrong_key = start("--cluster-cert", str(other_cert))
    assert wrong_key.returncode != 0
    assert f"--cluster-cert {other_cert}: the certificate is not of this node's key" in wrong_key.stderr, \
        wrong_key.stderr
    missing = start("--cluster-cert", str(tmp_path / "nope.pem"))
    assert missing.returncode != 0 and f"{tmp_path / 'nope.pem'}: no such file" in missing.stderr, missing.stderr
    root_alone = start("--cluster-root-cert", str(other_cert))
    assert root_alone.returncode != 0 and "need --cluster-cert" in root_alone.stderr, root_alone.stderr
