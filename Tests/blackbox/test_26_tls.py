"""MQTT over TLS (FoxMQ only): ``--mqtts-addr`` and ``--wss-addr`` with ``--tls-cert``/``--tls-key``,
client certificates with ``--tls-client-ca``, ``--tls-cert-as-username``, TLS 1.2+ only, SIGHUP
reloading the certificate without dropping connections, and start-up refusals naming the file.

Real clients: ``mosquitto_pub``/``mosquitto_sub --cafile`` and paho-mqtt with ``tls_set``. The
certificates are made per test with the Python ``cryptography`` package (a CA, a server
certificate for 127.0.0.1 and localhost, client certificates: valid, expired, another CA's; an
intermediate CA for a chain).
"""

from __future__ import annotations

import datetime
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import ipaddress

from conftest import CONNACK, FOXMQ_BIN, PahoClient, V5, connect_packet, free_port, port_accepts, uid

pytestmark = pytest.mark.foxmq_only

NOW = datetime.datetime.now(datetime.timezone.utc)


class Pki:
    """A CA and the certificates a test needs, written under ``base``."""

    def __init__(self, base: Path, name: str = "ca", *, parent: "Pki | None" = None):
        """A self-signed root CA, or with ``parent`` an intermediate CA that ``parent`` issued."""
        self.base = base
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        if parent is None:
            self.cert = self._build(self.key, f"{name} test CA", ca=True)
        else:
            self.cert = parent._build(self.key, f"{name} intermediate CA", ca=True, issuer=parent.cert)
        self.ca_path = self._write_cert(f"{name}.pem", self.cert)

    def _build(self, key, cn: str, *, ca: bool = False, sans=(), start=None, end=None, issuer=None):
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]) if cn else x509.Name([])
        issuer_name = issuer.subject if issuer is not None else subject
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(start or NOW - datetime.timedelta(days=1))
             .not_valid_after(end or NOW + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        return b.sign(self.key if issuer is not None or ca else key, hashes.SHA256())

    def _write_cert(self, name: str, cert) -> Path:
        path = self.base / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def _write_key(self, name: str, key) -> Path:
        path = self.base / name
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return path

    def issue(self, name: str, cn: str | None, *, server: bool = False, start=None, end=None) -> tuple[Path, Path]:
        """(certificate, key) files issued by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] if server else []
        cert = self._build(key, cn or "", sans=sans, start=start, end=end, issuer=self.cert)
        return self._write_cert(f"{name}.pem", cert), self._write_key(f"{name}.key", key)


@pytest.fixture
def pki(tmp_path) -> Pki:
    return Pki(tmp_path)


class TlsBroker:
    """A foxmq node with TLS listeners (plain MQTT on ``port`` too)."""

    def __init__(self, base: Path, cert: Path, key: Path, *extra: str, anonymous: bool = True):
        self.dir = base / "node"
        self.dir.mkdir(exist_ok=True)
        self.host = "127.0.0.1"
        self.port, self.mqtts_port, self.wss_port = free_port(), free_port(), free_port()
        self.ws_port = 0
        self.log_path = base / "node.log"
        cmd = [FOXMQ_BIN, "run", str(self.dir), "--mqtt-addr", f"127.0.0.1:{self.port}",
               "--mqtts-addr", f"127.0.0.1:{self.mqtts_port}", "--wss-addr", f"127.0.0.1:{self.wss_port}",
               "--tls-cert", str(cert), "--tls-key", str(key), *extra]
        if anonymous:
            cmd.append("--allow-anonymous-login")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not (port_accepts(self.mqtts_port) and port_accepts(self.wss_port)):
            assert self.proc.poll() is None, f"foxmq exited {self.proc.returncode}:\n{self.log_path.read_text()}"
            assert time.monotonic() < deadline, f"TLS listeners not open:\n{self.log_path.read_text()}"
            time.sleep(0.05)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture
def tls_broker(tmp_path):
    made: list[TlsBroker] = []

    def start(*args, **kw) -> TlsBroker:
        b = TlsBroker(tmp_path, *args, **kw)
        made.append(b)
        return b
    yield start
    for b in made:
        b.close()


def tls_client(broker: TlsBroker, ca: Path, *, cert: tuple[Path, Path] | None = None, websockets: bool = False,
               client_id: str | None = None, username: str | None = None, password: str | None = None) -> PahoClient:
    port = broker.wss_port if websockets else broker.mqtts_port
    c = PahoClient(broker, client_id or uid("tls"), proto=V5, transport="websockets" if websockets else "tcp",
                   port=port, username=username, password=password)
    c.c.tls_set(ca_certs=str(ca), certfile=str(cert[0]) if cert else None, keyfile=str(cert[1]) if cert else None)
    return c


def handshake(port: int, ca: Path, *, cert: tuple[Path, Path] | None = None,
              maximum: ssl.TLSVersion | None = None) -> ssl.SSLSocket:
    """A raw TLS handshake with the listener (raises ssl.SSLError / OSError when refused)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if maximum is not None:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = maximum
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    return s


def mqtt_over_tls(port: int, ca: Path, **kw) -> tuple[int | None, str]:
    """A TLS handshake then a valid MQTT 5.0 CONNECT: (CONNACK reason code, "") when the server
    answers, (None, what ended it) when it does not (the handshake fails, or, in TLS 1.3 where
    the client finishes its handshake first, the server's alert or close on the first read)."""
    try:
        s = handshake(port, ca, **kw)
    except (ssl.SSLError, OSError) as e:
        return None, f"handshake: {e!r}"
    try:
        s.settimeout(5)
        s.sendall(connect_packet(uid("tls"), version=V5))
        data = s.recv(64)
        if len(data) >= 4 and data[0] >> 4 == CONNACK:
            return data[3], ""
        return None, f"read: {data!r}"
    except (ssl.SSLError, OSError) as e:
        return None, f"read: {e!r}"
    finally:
        s.close()


def assert_refused_by_tls(port: int, ca: Path, alerts: str, **kw):
    """No CONNACK for a valid CONNECT; if Python's ssl names the server's TLS alert, it is one of
    ``alerts`` (a regex of OpenSSL alert names: their spelling varies with the versions)."""
    reason, error = mqtt_over_tls(port, ca, **kw)
    assert reason is None, f"CONNACK 0x{reason:02x}: the TLS listener accepted the client"
    if "ALERT" in error.upper():
        assert re.search(alerts, error, re.I), f"unexpected TLS alert: {error}"


def real_clients_connect(b, ca: Path, cert: tuple[Path, Path] | None) -> tuple[bool, bool, str]:
    """(mosquitto_pub succeeded, paho got CONNACK 0, details) over --mqtts-addr."""
    args = ["mosquitto_pub", "-h", "localhost", "-p", str(b.mqtts_port), "--cafile", str(ca), "-V", "5",
            "-t", "cert/real", "-m", "x", "-q", "1"]
    if cert:
        args += ["--cert", str(cert[0]), "--key", str(cert[1])]
    pub = subprocess.run(args, capture_output=True, text=True, timeout=30)
    c = tls_client(b, ca, cert=cert)
    try:
        connack = c.connect(expect_ok=False)
        paho_ok = connack is not None and connack[0] == 0 and c.c.is_connected()
    except (ssl.SSLError, OSError) as e:
        connack, paho_ok = repr(e), False
    finally:
        try:
            c.c.disconnect()
        except Exception:
            pass
        c.stop()
    return pub.returncode == 0, paho_ok, f"mosquitto_pub rc {pub.returncode} {pub.stderr.strip()!r}; paho {connack}"


def test_mosquitto_clients_and_paho_over_tls(pki, tls_broker):
    cert, key = pki.issue("server", "localhost", server=True)
    b = tls_broker(cert, key)
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "localhost", "-p", str(b.mqtts_port), "--cafile", str(pki.ca_path), "-V", "5",
         "-t", "tls/#", "-C", "1", "-W", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    pub = subprocess.run(
        ["mosquitto_pub", "-h", "localhost", "-p", str(b.mqtts_port), "--cafile", str(pki.ca_path), "-V", "5",
         "-t", "tls/x", "-m", "over tls", "-q", "1"], capture_output=True, text=True, timeout=20)
    assert pub.returncode == 0, pub.stderr
    out, err = sub.communicate(timeout=25)
    assert out.strip() == "over tls", err

    # paho over TLS and over WebSockets over TLS, to a subscriber on the plain listener.
    plain = PahoClient(b, uid("plain"), proto=V5)
    plain.connect()
    assert plain.subscribe("mix/#", 1) == [1]
    for websockets in (False, True):
        c = tls_client(b, pki.ca_path, websockets=websockets)
        assert c.connect()[0] == 0
        assert c.publish(f"mix/{websockets}", b"secure", qos=1) in (0, 0x10)
        msg = plain.get(10)
        assert (msg.topic, msg.payload) == (f"mix/{websockets}", b"secure")
        c.disconnect()
    plain.disconnect()

    # TLS 1.1 and older are refused by the server (its protocol version alert); 1.2 is accepted.
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        handshake(b.mqtts_port, pki.ca_path, maximum=ssl.TLSVersion.TLSv1_1)
    s = handshake(b.mqtts_port, pki.ca_path, maximum=ssl.TLSVersion.TLSv1_2)
    assert s.version() == "TLSv1.2"
    s.close()


def test_client_certificates_are_required_and_checked(pki, tls_broker, tmp_path):
    cert, key = pki.issue("server", "localhost", server=True)
    b = tls_broker(cert, key, "--tls-client-ca", str(pki.ca_path))
    good = pki.issue("client", "alice")
    expired = pki.issue("expired", "alice", start=NOW - datetime.timedelta(days=60),
                        end=NOW - datetime.timedelta(days=30))
    other = Pki(tmp_path, "other").issue("stranger", "alice")

    # A valid CONNECT after the handshake: refused clients get no CONNACK (the server's alert),
    # while a valid certificate gets CONNACK 0 by the same path (the control).
    assert mqtt_over_tls(b.mqtts_port, pki.ca_path, cert=good) == (0, ""), "a valid client certificate"
    assert_refused_by_tls(b.mqtts_port, pki.ca_path, "CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE")
    assert_refused_by_tls(b.mqtts_port, pki.ca_path, "UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|DECRYPT_ERROR",
                          cert=other)
    assert_refused_by_tls(b.mqtts_port, pki.ca_path, "CERTIFICATE_EXPIRED|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN",
                          cert=expired)
    # Real clients: mosquitto_pub --cert/--key and paho tls_set fail without a valid certificate.
    for what, client_cert in (("no certificate", None), ("another CA's certificate", other),
                              ("an expired certificate", expired)):
        mosquitto_ok, paho_ok, details = real_clients_connect(b, pki.ca_path, client_cert)
        assert not mosquitto_ok and not paho_ok, f"{what} was accepted: {details}"
    mosquitto_ok, paho_ok, details = real_clients_connect(b, pki.ca_path, good)
    assert mosquitto_ok and paho_ok, f"the valid certificate was refused: {details}"

    c = tls_client(b, pki.ca_path, cert=good)
    assert c.connect()[0] == 0
    assert c.publish("cert/x", b"ok", qos=1) in (0, 0x10)
    c.disconnect()
    # The plain listener is unaffected.
    plain = PahoClient(b, uid("plain"), proto=V5)
    assert plain.connect()[0] == 0
    plain.disconnect()


def test_a_certificate_chain_through_an_intermediate(pki, tls_broker, tmp_path):
    """--tls-cert holds the server certificate followed by the intermediate CA that issued it: a
    client trusting only the root verifies the chain. The same certificate without the
    intermediate is refused by that client (the control: the chain is what makes it work)."""
    intermediate = Pki(tmp_path, "intermediate", parent=pki)
    leaf, key = intermediate.issue("leaf", "localhost", server=True)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(leaf.read_bytes() + intermediate.ca_path.read_bytes())
    b = tls_broker(chain, key)
    assert mqtt_over_tls(b.mqtts_port, pki.ca_path) == (0, "")
    pub = subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(b.mqtts_port), "--cafile", str(pki.ca_path),
                          "-V", "5", "-t", "chain/x", "-m", "x", "-q", "1"], capture_output=True, text=True, timeout=30)
    assert pub.returncode == 0, pub.stderr
    c = tls_client(b, pki.ca_path, websockets=True)
    assert c.connect()[0] == 0
    c.disconnect()
    b.close()

    alone = tls_broker(leaf, key)
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        handshake(alone.mqtts_port, pki.ca_path)


def test_certificate_common_name_is_the_user_name(pki, tls_broker):
    cert, key = pki.issue("server", "localhost", server=True)
    b = tls_broker(cert, key, "--tls-client-ca", str(pki.ca_path), "--tls-cert-as-username", anonymous=False)
    rule = subprocess.run([FOXMQ_BIN, "acl", "add", "--all-users", "--publish", "u/%u/#", "-o", str(b.dir)],
                          capture_output=True, text=True, timeout=30)
    assert rule.returncode == 0, rule.stderr
    time.sleep(1.5)  # the node reads the admin database every second
    alice = tls_client(b, pki.ca_path, cert=pki.issue("alice", "alice"))
    assert alice.connect()[0] == 0, "no password needed: the certificate authenticates"
    assert alice.publish("u/alice/x", b"mine", qos=1) in (0, 0x10)
    assert alice.publish("u/bob/x", b"not mine", qos=1) == 0x87, "%u is the certificate's common name"
    alice.disconnect()
    # A password for another user changes nothing: the certificate's name is the user name.
    again = tls_client(b, pki.ca_path, cert=pki.issue("alice2", "alice"), username="bob", password="nope")
    assert again.connect()[0] == 0
    assert again.publish("u/bob/x", b"still alice", qos=1) == 0x87
    again.disconnect()
    # A certificate without a common name is refused (0x87).
    nameless = tls_client(b, pki.ca_path, cert=pki.issue("nameless", None))
    assert nameless.connect(expect_ok=False)[0] == 0x87


def test_sighup_reloads_the_certificate_without_dropping_connections(pki, tls_broker):
    cert, key = pki.issue("server", "localhost", server=True)
    b = tls_broker(cert, key)
    kept = tls_client(b, pki.ca_path)
    assert kept.connect()[0] == 0
    first = handshake(b.mqtts_port, pki.ca_path)
    serial_before = first.getpeercert()["serialNumber"]
    first.close()
    new_cert, new_key = pki.issue("server-2", "localhost", server=True)
    cert.write_bytes(new_cert.read_bytes())
    key.write_bytes(new_key.read_bytes())
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        s = handshake(b.mqtts_port, pki.ca_path)
        serial = s.getpeercert()["serialNumber"]
        s.close()
        if serial != serial_before:
            break
        assert time.monotonic() < deadline, "the new certificate was not served after SIGHUP"
        time.sleep(0.1)
    assert "TLS certificate and key read again" in b.log_path.read_text()
    assert kept.c.is_connected() and kept.publish("hup/x", b"still here", qos=1) in (0, 0x10)
    # A bad file on SIGHUP keeps the certificate in use.
    key.write_text("not a key")
    b.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "TLS files not reloaded" not in b.log_path.read_text():
        assert time.monotonic() < deadline, "no error logged for the bad key"
        time.sleep(0.1)
    s = handshake(b.mqtts_port, pki.ca_path)
    assert s.getpeercert()["serialNumber"] == serial
    s.close()
    assert b.proc.poll() is None


def test_start_up_names_a_missing_or_mismatched_file(pki, tmp_path):
    cert, key = pki.issue("server", "localhost", server=True)
    _, other_key = pki.issue("other", "localhost", server=True)

    def start(*args: str) -> subprocess.CompletedProcess:
        (tmp_path / "n").mkdir(exist_ok=True)
        return subprocess.run([FOXMQ_BIN, "run", str(tmp_path / "n"), "--mqtt-addr", "127.0.0.1:0",
                               "--mqtts-addr", "127.0.0.1:0", *args], capture_output=True, text=True, timeout=30)
    missing = start("--tls-cert", str(cert), "--tls-key", str(tmp_path / "nope.key"))
    assert missing.returncode == 2 and f"--tls-key {tmp_path / 'nope.key'}: no such file" in missing.stderr, \
        missing.stderr
    mismatched = start("--tls-cert", str(cert), "--tls-key", str(other_key))
    assert mismatched.returncode == 2 and "does not match --tls-cert" in mismatched.stderr, mismatched.stderr
    assert f"--tls-key {other_key}" in mismatched.stderr and f"--tls-cert {cert}" in mismatched.stderr, \
        f"both files are named: {mismatched.stderr}"
    not_pem = start("--tls-cert", str(key), "--tls-key", str(key))
    assert not_pem.returncode == 2 and f"--tls-cert {key}: not a PEM certificate" in not_pem.stderr, not_pem.stderr
    # Unreadable files (even for root): a directory, and a path under a regular file.
    directory = tmp_path / "a-directory"
    directory.mkdir()
    for flag, args in (("--tls-key", ("--tls-cert", str(cert), "--tls-key", str(directory))),
                       ("--tls-cert", ("--tls-cert", str(directory), "--tls-key", str(key))),
                       ("--tls-cert", ("--tls-cert", str(cert / "x"), "--tls-key", str(key))),
                       ("--tls-key", ("--tls-cert", str(cert), "--tls-key", str(key / "x")))):
        path = args[args.index(flag) + 1]
        unreadable = start(*args)
        assert unreadable.returncode == 2 and f"{flag} {path}" in unreadable.stderr, \
            f"{flag} {path}: {unreadable.returncode} {unreadable.stderr}"
        assert "Fatal error" not in unreadable.stderr, unreadable.stderr
    alone = start("--tls-cert", str(cert))
    assert alone.returncode != 0 and "--tls-cert and --tls-key" in alone.stderr + alone.stdout
