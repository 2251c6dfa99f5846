"""Shared fixtures and helpers for the FoxMQ black-box conformance suite.

The broker under test is started as a subprocess, one per test (fresh data
directory, fresh free ports).  ``BROKER=mosquitto`` runs the same suite
against Mosquitto (to validate the tests themselves); tests marked
``foxmq_only`` are then deselected.

Three kinds of helpers live here:

* ``broker_factory`` / ``broker``: start a broker with arguments.
* ``RawClient`` plus the ``*_packet`` encoders: hand-built MQTT packets over a
  plain socket, with a reader that parses the fixed header, reason codes and
  properties.  Used wherever the exact bytes on the wire matter.
* ``PahoClient``: a thin paho-mqtt 2.x wrapper whose calls wait on events
  with timeouts, for ordinary client behaviour.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pytest

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

BROKER_KIND = os.environ.get("BROKER", "foxmq").strip().lower() or "foxmq"
FOXMQ_BIN = os.environ.get("FOXMQ_BIN", "/work/main/.build/debug/foxmq")
MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN", shutil.which("mosquitto") or "/usr/sbin/mosquitto")
WS_PATH = os.environ.get("FOXMQ_WS_PATH", "/mqtt")
# Generic "this should happen soon" timeout (seconds).
TIMEOUT = float(os.environ.get("BLACKBOX_TIMEOUT", "5"))
# How long we wait to be convinced that something does NOT happen.
QUIET = float(os.environ.get("BLACKBOX_QUIET", "0.6"))
# Run foxmq_only tests against mosquitto too (to eyeball which differences are real).
RUN_ALL = os.environ.get("BLACKBOX_RUN_ALL") == "1"

IS_MOSQUITTO = BROKER_KIND == "mosquitto"
IS_FOXMQ = not IS_MOSQUITTO

V5 = 5
V311 = 4


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "foxmq_only: behaviour specific to FoxMQ (our flags, auth store, capability values); "
        "deselected when BROKER=mosquitto",
    )


def pytest_collection_modifyitems(config, items):
    if not IS_MOSQUITTO or RUN_ALL:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("foxmq_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    binary = MOSQUITTO_BIN if IS_MOSQUITTO else FOXMQ_BIN
    return f"blackbox broker: {BROKER_KIND} ({binary})"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


# --------------------------------------------------------------------------
# ports and broker processes
# --------------------------------------------------------------------------


def assert_reason(reason, proto: int, foxmq_v5: int, allowed=()):
    """A server's answer to a client's error: FoxMQ on 5.0 must send DISCONNECT ``foxmq_v5``;
    on 3.1.1 there is no DISCONNECT to send (a close); other brokers may close silently or send
    one of ``allowed`` (or ``foxmq_v5``)."""
    if IS_FOXMQ:
        expected = foxmq_v5 if proto == V5 else None
        assert reason == expected, f"expected {expected!r}, got {reason!r}"
    else:
        assert reason in (None, foxmq_v5, *allowed), reason


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


# FoxMQ flag name for each limit keyword, and the Mosquitto equivalent
# (None = Mosquitto has no equivalent; the tests using it are foxmq_only).
LIMIT_FLAGS = {
    "max_packet_size": ("--max-packet-size", "max_packet_size", "global"),
    "max_connections": ("--max-connections", "max_connections", "listener"),
    # Mosquitto announces max_inflight_messages as its Receive Maximum (only used with BLACKBOX_RUN_ALL=1)
    "receive_maximum": ("--receive-maximum", "max_inflight_messages", "global"),
    "max_inflight": ("--max-inflight", "max_inflight_messages", "global"),
    "max_queued_messages": ("--max-queued-messages", "max_queued_messages", "global"),
    "max_topic_levels": ("--max-topic-levels", None, None),
    "max_subscriptions_per_client": ("--max-subscriptions-per-client", None, None),
    "connect_timeout": ("--connect-timeout", None, None),
    "topic_alias_maximum": ("--topic-alias-maximum", "max_topic_alias", "listener"),
}


class Broker:
    """A running broker subprocess."""

    def __init__(self, kind: str, workdir: Path, *, anonymous: bool, websockets: bool,
                 users: dict[str, str] | None, limits: dict[str, Any], extra_args: Iterable[str]):
        self.kind = kind
        self.dir = workdir
        self.anonymous = anonymous
        self.websockets = websockets
        self.users = users or {}
        self.limits = limits
        self.extra_args = list(extra_args)
        self.host = "127.0.0.1"
        self.port = 0
        self.ws_port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path = workdir / "broker.log"
        self._log = None

    # -- command lines ----------------------------------------------------
    def _foxmq_cmd(self) -> list[str]:
        cmd = [FOXMQ_BIN, "run", str(self.dir), "--mqtt-addr", f"{self.host}:{self.port}"]
        if self.anonymous:
            cmd.append("--allow-anonymous-login")
        if self.websockets:
            cmd += ["--websockets", "--websockets-addr", f"{self.host}:{self.ws_port}"]
        for key, value in self.limits.items():
            cmd += [LIMIT_FLAGS[key][0], str(value)]
        return cmd + self.extra_args

    def _mosquitto_cmd(self) -> list[str]:
        conf = self.dir / "mosquitto.conf"
        lines = [
            "per_listener_settings false",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            "persistence false",
            "log_dest stdout",
            "log_type all",
            "set_tcp_nodelay true",
        ]
        if self.users:
            pwfile = self.dir / "passwords"
            pwfile.write_text("")
            for name, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pwfile), name, password],
                               check=True, capture_output=True)
            # mosquitto drops root privileges: let it read the file
            os.chmod(self.dir, 0o755)
            os.chmod(pwfile, 0o644)
            lines.append(f"password_file {pwfile}")
        listener_opts = []
        for key, value in self.limits.items():
            _, mosq_key, scope = LIMIT_FLAGS[key]
            if mosq_key is None:
                continue
            if key == "max_connections":
                value = int(value) - 1  # Mosquitto 2.0.11 admits max_connections + 1 clients
            if scope == "global":
                lines.append(f"{mosq_key} {value}")
            else:
                listener_opts.append(f"{mosq_key} {value}")
        lines.append(f"listener {self.port} {self.host}")
        lines += listener_opts
        if self.websockets:
            lines.append(f"listener {self.ws_port} {self.host}")
            lines.append("protocol websockets")
            lines += listener_opts
        conf.write_text("\n".join(lines) + "\n")
        return [MOSQUITTO_BIN, "-c", str(conf)]

    def _add_users_foxmq(self):
        for name, password in self.users.items():
            res = subprocess.run([FOXMQ_BIN, "user", "add", name, password, "--output-dir", str(self.dir)],
                                 capture_output=True, text=True, timeout=60)
            assert res.returncode == 0, f"foxmq user add failed: {res.stdout}\n{res.stderr}"
        assert (self.dir / "users.toml").exists(), "foxmq user add did not write users.toml"

    # -- lifecycle --------------------------------------------------------
    def start(self):
        binary = MOSQUITTO_BIN if self.kind == "mosquitto" else FOXMQ_BIN
        if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
            self.expected_exit = True
            pytest.fail(f"broker binary not found or not executable: {binary} "
                        f"(set FOXMQ_BIN, or BROKER=mosquitto)")
        if self.kind == "foxmq" and self.users:
            self._add_users_foxmq()
        last_error = ""
        for _attempt in range(3):
            self.port = free_port()
            self.ws_port = free_port() if self.websockets else 0
            cmd = self._mosquitto_cmd() if self.kind == "mosquitto" else self._foxmq_cmd()
            self._log = open(self.log_path, "ab")
            self._log.write(("$ " + " ".join(cmd) + "\n").encode())
            self._log.flush()
            self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=str(self.dir))
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if port_accepts(self.port) and (not self.websockets or port_accepts(self.ws_port)):
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                last_error = "broker did not accept connections within 15 s"
                self._kill()
            else:
                last_error = f"broker exited early with code {self.proc.returncode}"
            self._log.close()
        self.expected_exit = True
        pytest.fail(f"could not start {self.kind}: {last_error}\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, wait; returns the exit code or None if it had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                return None
        return self.proc.returncode

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        self.terminate(timeout=3)
        if self._log:
            self._log.close()

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no broker log)"
        return "---- broker log (tail) ----\n" + "\n".join(lines[-n:])

    def __repr__(self):
        return f"<Broker {self.kind} {self.host}:{self.port} ws={self.ws_port}>"


@pytest.fixture
def broker_factory(request):
    """Start brokers with custom arguments; all are stopped at teardown.

    ``broker_factory(anonymous=True, websockets=False, users={"u": "p"},
    max_packet_size=..., connect_timeout=..., ...)``
    """
    started: list[Broker] = []
    tmpdirs: list[str] = []

    def start(*, anonymous: bool = True, websockets: bool = False, users: dict[str, str] | None = None,
              extra_args: Iterable[str] = (), **limits) -> Broker:
        for key in limits:
            if key not in LIMIT_FLAGS:
                raise TypeError(f"unknown limit {key}")
        workdir = tempfile.mkdtemp(prefix="foxmq-bb-")
        tmpdirs.append(workdir)
        b = Broker(BROKER_KIND, Path(workdir), anonymous=anonymous, websockets=websockets,
                   users=users, limits=limits, extra_args=extra_args)
        started.append(b)
        return b.start()

    yield start

    crashed = [b for b in started if b.proc is not None and b.proc.poll() is not None
               and not getattr(b, "expected_exit", False)]
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    crash_msg = ""
    if crashed:
        b = crashed[0]
        crash_msg = f"broker exited during the test with code {b.proc.returncode}\n{b.log_tail()}"
    for b in started:
        b.close()
        if failed:
            print(f"\n{b!r}\n{b.log_tail()}")
    for d in tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    if crash_msg:
        pytest.fail(crash_msg)


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A default broker: anonymous login allowed, TCP only."""
    return broker_factory()


@pytest.fixture(params=[V5, V311], ids=["v5", "v311"])
def proto(request) -> int:
    """MQTT protocol level: 5 (MQTT 5.0) or 4 (MQTT 3.1.1)."""
    return request.param


def uid(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------
# raw MQTT encoding
# --------------------------------------------------------------------------

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = 8, 9, 10, 11, 12, 13, 14, 15
PACKET_NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
                7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
                12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}

# MQTT 5.0 property identifiers (§2.2.2.2)
P_PAYLOAD_FORMAT = 0x01
P_MESSAGE_EXPIRY = 0x02
P_CONTENT_TYPE = 0x03
P_RESPONSE_TOPIC = 0x08
P_CORRELATION_DATA = 0x09
P_SUBSCRIPTION_ID = 0x0B
P_SESSION_EXPIRY = 0x11
P_ASSIGNED_CLIENT_ID = 0x12
P_SERVER_KEEP_ALIVE = 0x13
P_AUTH_METHOD = 0x15
P_AUTH_DATA = 0x16
P_REQUEST_PROBLEM_INFO = 0x17
P_WILL_DELAY = 0x18
P_REQUEST_RESPONSE_INFO = 0x19
P_RESPONSE_INFO = 0x1A
P_SERVER_REFERENCE = 0x1C
P_REASON_STRING = 0x1F
P_RECEIVE_MAXIMUM = 0x21
P_TOPIC_ALIAS_MAXIMUM = 0x22
P_TOPIC_ALIAS = 0x23
P_MAXIMUM_QOS = 0x24
P_RETAIN_AVAILABLE = 0x25
P_USER_PROPERTY = 0x26
P_MAXIMUM_PACKET_SIZE = 0x27
P_WILDCARD_SUB_AVAILABLE = 0x28
P_SUB_ID_AVAILABLE = 0x29
P_SHARED_SUB_AVAILABLE = 0x2A

_PROP_TYPES = {
    0x01: "byte", 0x02: "u32", 0x03: "str", 0x08: "str", 0x09: "bin", 0x0B: "varint",
    0x11: "u32", 0x12: "str", 0x13: "u16", 0x15: "str", 0x16: "bin", 0x17: "byte",
    0x18: "u32", 0x19: "byte", 0x1A: "str", 0x1C: "str", 0x1F: "str", 0x21: "u16",
    0x22: "u16", 0x23: "u16", 0x24: "byte", 0x25: "byte", 0x26: "pair", 0x27: "u32",
    0x28: "byte", 0x29: "byte", 0x2A: "byte",
}
_MULTI = {P_USER_PROPERTY, P_SUBSCRIPTION_ID}


def enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc_str(s: str | bytes) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def enc_props(props: dict | None) -> bytes:
    """Encode a property dict {id: value}; ids in _MULTI take a list."""
    if not props:
        return b"\x00"
    body = bytearray()
    for pid, value in props.items():
        values = value if (pid in _MULTI and isinstance(value, list)) else [value]
        for v in values:
            body.append(pid)
            kind = _PROP_TYPES[pid]
            if kind == "byte":
                body.append(v)
            elif kind == "u16":
                body += struct.pack("!H", v)
            elif kind == "u32":
                body += struct.pack("!I", v)
            elif kind == "varint":
                body += enc_varint(v)
            elif kind in ("str", "bin"):
                body += enc_str(v)
            elif kind == "pair":
                body += enc_str(v[0]) + enc_str(v[1])
    return enc_varint(len(body)) + bytes(body)


def fixed(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([(ptype << 4) | flags]) + enc_varint(len(body)) + body


def connect_packet(client_id: str | bytes = "", *, version: int = V5, clean: bool = True, keepalive: int = 60,
                   username: str | None = None, password: str | bytes | None = None,
                   will: dict | None = None, props: dict | None = None, protocol_name: str = "MQTT") -> bytes:
    """CONNECT (§3.1).  will = {topic, payload, qos, retain, props}."""
    flags = 0
    if clean:
        flags |= 0x02
    if will:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    vh = enc_str(protocol_name) + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == V5:
        vh += enc_props(props)
    pl = enc_str(client_id)
    if will:
        if version == V5:
            pl += enc_props(will.get("props"))
        pl += enc_str(will["topic"]) + enc_str(will.get("payload", b""))
    if username is not None:
        pl += enc_str(username)
    if password is not None:
        pl += enc_str(password)
    return fixed(CONNECT, 0, vh + pl)


def publish_packet(topic: str | bytes, payload: bytes = b"", *, qos: int = 0, retain: bool = False,
                   dup: bool = False, packet_id: int | None = None, props: dict | None = None,
                   version: int = V5) -> bytes:
    """PUBLISH (§3.3)."""
    flags = (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    body = enc_str(topic)
    if qos:
        body += struct.pack("!H", packet_id if packet_id is not None else 1)
    if version == V5:
        body += enc_props(props)
    return fixed(PUBLISH, flags, body + payload)


def subscribe_packet(packet_id: int, filters: list[tuple[str | bytes, int]], *, props: dict | None = None,
                     version: int = V5) -> bytes:
    """SUBSCRIBE (§3.8): filters = [(filter, options byte)] (options = QoS for 3.1.1)."""
    body = struct.pack("!H", packet_id)
    if version == V5:
        body += enc_props(props)
    for f, opts in filters:
        body += enc_str(f) + bytes([opts])
    return fixed(SUBSCRIBE, 0x02, body)


def unsubscribe_packet(packet_id: int, filters: list[str], *, version: int = V5) -> bytes:
    body = struct.pack("!H", packet_id)
    if version == V5:
        body += b"\x00"
    for f in filters:
        body += enc_str(f)
    return fixed(UNSUBSCRIBE, 0x02, body)


def ack_packet(ptype: int, packet_id: int, reason: int | None = None, *, version: int = V5) -> bytes:
    """PUBACK / PUBREC / PUBREL / PUBCOMP."""
    body = struct.pack("!H", packet_id)
    if version == V5 and reason:
        body += bytes([reason])
    return fixed(ptype, 0x02 if ptype == PUBREL else 0, body)


def disconnect_packet(reason: int = 0, *, props: dict | None = None, version: int = V5) -> bytes:
    if version != V5 or (reason == 0 and not props):
        return b"\xe0\x00"
    return fixed(DISCONNECT, 0, bytes([reason]) + enc_props(props))


PINGREQ_BYTES = b"\xc0\x00"


# --------------------------------------------------------------------------
# raw MQTT decoding
# --------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes):
        self.d = data
        self.i = 0

    def remaining(self) -> int:
        return len(self.d) - self.i

    def byte(self) -> int:
        v = self.d[self.i]
        self.i += 1
        return v

    def u16(self) -> int:
        v = struct.unpack_from("!H", self.d, self.i)[0]
        self.i += 2
        return v

    def u32(self) -> int:
        v = struct.unpack_from("!I", self.d, self.i)[0]
        self.i += 4
        return v

    def varint(self) -> int:
        mult, val = 1, 0
        while True:
            b = self.byte()
            val += (b & 0x7F) * mult
            if not b & 0x80:
                return val
            mult *= 128

    def bin(self) -> bytes:
        n = self.u16()
        v = self.d[self.i:self.i + n]
        self.i += n
        return v

    def str(self) -> str:
        return self.bin().decode("utf-8")

    def rest(self) -> bytes:
        v = self.d[self.i:]
        self.i = len(self.d)
        return v

    def props(self) -> dict:
        n = self.varint()
        end = self.i + n
        out: dict = {}
        while self.i < end:
            pid = self.varint()
            kind = _PROP_TYPES.get(pid)
            if kind is None:
                raise ValueError(f"unknown property 0x{pid:02x}")
            if kind == "byte":
                v: Any = self.byte()
            elif kind == "u16":
                v = self.u16()
            elif kind == "u32":
                v = self.u32()
            elif kind == "varint":
                v = self.varint()
            elif kind == "str":
                v = self.str()
            elif kind == "bin":
                v = self.bin()
            else:
                v = (self.str(), self.str())
            if pid in _MULTI:
                out.setdefault(pid, []).append(v)
            else:
                out[pid] = v
        return out


@dataclass
class Packet:
    """A received control packet, parsed according to its type and version."""
    type: int
    flags: int
    body: bytes
    version: int = V5
    # parsed fields (depending on the type)
    reason: int | None = None
    session_present: bool | None = None
    props: dict = field(default_factory=dict)
    packet_id: int | None = None
    reason_codes: list[int] = field(default_factory=list)
    topic: str | None = None
    payload: bytes = b""

    @property
    def name(self) -> str:
        return PACKET_NAMES.get(self.type, f"type{self.type}")

    @property
    def qos(self) -> int:
        return (self.flags >> 1) & 0x03

    @property
    def dup(self) -> bool:
        return bool(self.flags & 0x08)

    @property
    def retain(self) -> bool:
        return bool(self.flags & 0x01)

    def __repr__(self):
        extra = []
        if self.reason is not None:
            extra.append(f"reason=0x{self.reason:02x}")
        if self.type == PUBLISH:
            extra.append(f"topic={self.topic!r} qos={self.qos} dup={self.dup} retain={self.retain} "
                         f"id={self.packet_id} payload={self.payload[:40]!r}")
        if self.reason_codes:
            extra.append("codes=" + ",".join(f"0x{c:02x}" for c in self.reason_codes))
        if self.props:
            extra.append(f"props={self.props}")
        return f"<{self.name} {' '.join(extra)}>"

    @classmethod
    def parse(cls, first: int, body: bytes, version: int) -> "Packet":
        p = cls(type=first >> 4, flags=first & 0x0F, body=body, version=version)
        r = _Reader(body)
        v5 = version == V5
        t = p.type
        if t == CONNACK:
            p.session_present = bool(r.byte() & 0x01)
            p.reason = r.byte()
            if v5 and r.remaining():
                p.props = r.props()
        elif t == PUBLISH:
            p.topic = r.bin().decode("utf-8", errors="replace")
            if p.qos:
                p.packet_id = r.u16()
            if v5:
                p.props = r.props()
            p.payload = r.rest()
        elif t in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            p.packet_id = r.u16()
            p.reason = 0
            if v5 and r.remaining():
                p.reason = r.byte()
                if r.remaining():
                    p.props = r.props()
        elif t in (SUBACK, UNSUBACK):
            p.packet_id = r.u16()
            if v5:
                p.props = r.props()
            p.reason_codes = list(r.rest())
        elif t in (DISCONNECT, AUTH):
            p.reason = 0
            if r.remaining():
                p.reason = r.byte()
                if r.remaining():
                    p.props = r.props()
        return p


class RawClient:
    """A plain-socket MQTT client for hand-built packets."""

    def __init__(self, broker_or_port, version: int = V5, host: str = "127.0.0.1", timeout: float = TIMEOUT):
        port = broker_or_port.port if isinstance(broker_or_port, Broker) else int(broker_or_port)
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pending: list[Packet] = []
        self.closed = False
        self._next_id = 1

    def next_id(self) -> int:
        i = self._next_id
        self._next_id = self._next_id % 65535 + 1
        return i

    # -- low level --------------------------------------------------------
    def send(self, data: bytes):
        self.sock.sendall(data)

    def try_send(self, data: bytes) -> bool:
        """Send, tolerating a connection the broker already closed."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False on EOF. Raises TimeoutError at the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError from None
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def recv(self, timeout: float | None = None) -> Packet | None:
        """Next packet, or None if the connection was closed. TimeoutError if nothing arrives."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            pkt = self._take()
            if pkt is not None:
                return pkt
            if self.closed or not self._fill(deadline):
                if self.buf:
                    raise AssertionError(f"connection closed mid-packet ({bytes(self.buf)!r})")
                return None

    def _take(self) -> Packet | None:
        if len(self.buf) < 2:
            return None
        mult, length, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
            if i > 4:
                raise AssertionError("malformed remaining length from broker")
        if len(self.buf) < i + length:
            return None
        first = self.buf[0]
        body = bytes(self.buf[i:i + length])
        del self.buf[:i + length]
        return Packet.parse(first, body, self.version)

    def expect(self, ptype: int, timeout: float | None = None, skip: Iterable[int] = ()) -> Packet:
        """Next packet must be of ``ptype``.  Packets of a type in ``skip`` that arrive first are
        kept and returned by later recv()/expect() calls."""
        skipped = []
        try:
            while True:
                pkt = self.recv(timeout)
                assert pkt is not None, f"connection closed while waiting for {PACKET_NAMES[ptype]}"
                if pkt.type in skip:
                    skipped.append(pkt)
                    continue
                assert pkt.type == ptype, f"expected {PACKET_NAMES[ptype]}, got {pkt!r}"
                return pkt
        finally:
            self.pending[:0] = skipped

    def expect_nothing(self, timeout: float = QUIET) -> None:
        """No packet arrives (and the connection stays open) for ``timeout``."""
        try:
            pkt = self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {pkt!r}" if pkt else "connection closed unexpectedly")

    def wait_closed(self, timeout: float | None = None) -> list[Packet]:
        """Read until the broker closes the connection; return the packets seen before.

        Fails if the connection is still open after ``timeout``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        seen = []
        while True:
            try:
                pkt = self.recv(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"connection not closed by broker within timeout (saw {seen})") from None
            if pkt is None:
                return seen
            seen.append(pkt)

    def disconnect_reason_or_close(self, timeout: float | None = None) -> int | None:
        """Wait for the broker to end the connection.

        Returns the DISCONNECT reason code if it sent one, None if it just closed.
        The connection must be closed afterwards in both cases (§4.13)."""
        seen = self.wait_closed(timeout)
        discs = [p for p in seen if p.type == DISCONNECT]
        return discs[-1].reason if discs else None

    def is_open(self, timeout: float = 0.3) -> bool:
        """True if the connection is still open: nothing arrives within ``timeout`` but pings.
        A DISCONNECT from the server (or the socket closing) means closed; any other packet is
        a test error (it would hide a server DISCONNECT behind it), so it fails the test."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            try:
                pkt = self.recv(remaining)
            except TimeoutError:
                return True
            if pkt is None or pkt.type == DISCONNECT:
                return False
            assert pkt.type == PINGRESP, f"is_open: unexpected {pkt!r}"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- high level -------------------------------------------------------
    def connect(self, client_id: str = "", *, expect_ok: bool = True, **kw) -> Packet:
        kw.setdefault("version", self.version)
        self.send(connect_packet(client_id, **kw))
        ack = self.expect(CONNACK)
        if expect_ok:
            assert ack.reason == 0, f"CONNACK refused: {ack!r}"
        return ack

    def subscribe(self, filters, *, qos: int = 0, props: dict | None = None, packet_id: int | None = None) -> Packet:
        """``filters``: a topic string, or list of (filter, options). Returns the SUBACK."""
        if isinstance(filters, (str, bytes)):
            filters = [(filters, qos)]
        pid = packet_id or self.next_id()
        self.send(subscribe_packet(pid, filters, props=props, version=self.version))
        ack = self.expect(SUBACK)
        assert ack.packet_id == pid
        return ack

    def publish(self, topic, payload: bytes = b"", *, qos: int = 0, retain: bool = False,
                props: dict | None = None, packet_id: int | None = None, wait: bool = True) -> Packet | None:
        """Publish; for QoS 1/2 complete the handshake if ``wait`` and return the final ack."""
        pid = (packet_id or self.next_id()) if qos else None
        self.send(publish_packet(topic, payload, qos=qos, retain=retain, packet_id=pid, props=props,
                                 version=self.version))
        if not qos or not wait:
            return None
        if qos == 1:
            ack = self.expect(PUBACK, skip=(PUBLISH,))
            assert ack.packet_id == pid
            return ack
        rec = self.expect(PUBREC, skip=(PUBLISH,))
        assert rec.packet_id == pid
        self.send(ack_packet(PUBREL, pid, version=self.version))
        comp = self.expect(PUBCOMP, skip=(PUBLISH,))
        assert comp.packet_id == pid
        return comp

    def ack(self, pkt: Packet):
        """Acknowledge a received PUBLISH (QoS 1: PUBACK; QoS 2: PUBREC + wait PUBREL + PUBCOMP)."""
        if pkt.qos == 1:
            self.send(ack_packet(PUBACK, pkt.packet_id, version=self.version))
        elif pkt.qos == 2:
            self.send(ack_packet(PUBREC, pkt.packet_id, version=self.version))
            rel = self.expect(PUBREL, skip=(PUBLISH,))
            assert rel.packet_id == pkt.packet_id
            self.send(ack_packet(PUBCOMP, pkt.packet_id, version=self.version))

    def disconnect(self, reason: int = 0, props: dict | None = None):
        self.try_send(disconnect_packet(reason, props=props, version=self.version))
        self.close()


@pytest.fixture
def raw(broker):
    """Factory for raw clients on the default broker: raw(version=5, broker=None)."""
    clients: list[RawClient] = []

    def make(version: int = V5, b: Broker | None = None, **kw) -> RawClient:
        c = RawClient(b or broker, version=version, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def raw_factory():
    """Factory for raw clients against an explicit broker: raw_factory(broker, version)."""
    clients: list[RawClient] = []

    def make(b: Broker, version: int = V5, **kw) -> RawClient:
        c = RawClient(b, version=version, **kw)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


# --------------------------------------------------------------------------
# paho helpers
# --------------------------------------------------------------------------


def props_for(packet_type, **values) -> Properties:
    """paho Properties: props_for(PacketTypes.PUBLISH, MessageExpiryInterval=10)."""
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


def _rc_int(rc) -> int:
    if rc is None:
        return 0
    if hasattr(rc, "value"):
        return int(rc.value)
    return int(rc)


class PahoClient:
    """paho-mqtt 2.x client whose operations block until acknowledged (with timeouts)."""

    def __init__(self, broker: Broker, client_id: str | None = None, *, proto: int = V5, clean: bool = True,
                 transport: str = "tcp", port: int | None = None, username: str | None = None,
                 password: str | None = None, keepalive: int = 30):
        self.broker = broker
        self.proto = proto
        self.clean = clean
        self.client_id = uid() if client_id is None else client_id
        self.port = port or (broker.ws_port if transport == "websockets" else broker.port)
        kwargs = dict(client_id=self.client_id, protocol=mqtt.MQTTv5 if proto == V5 else mqtt.MQTTv311,
                      transport=transport, reconnect_on_failure=False)
        if proto != V5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
        if transport == "websockets":
            self.c.ws_set_options(path=WS_PATH)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.keepalive = keepalive
        self.messages: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._events: dict[tuple[str, int], threading.Event] = {}
        self._results: dict[tuple[str, int], Any] = {}
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack: tuple | None = None
        self.disconnect_rc: int | None = None
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self._loop = False

    # -- callbacks --------------------------------------------------------
    def _on_connect(self, client, userdata, flags, rc, properties):
        self.connack = (_rc_int(rc), bool(flags.session_present), properties)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, rc, properties):
        self.disconnect_rc = _rc_int(rc)
        self.disconnected.set()
        self.connected.set()  # unblock a connect() waiting on a refused/closed connection

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _event(self, kind: str, mid: int) -> threading.Event:
        with self._lock:
            return self._events.setdefault((kind, mid), threading.Event())

    def _done(self, kind, mid, result):
        with self._lock:
            self._results[(kind, mid)] = result
            ev = self._events.setdefault((kind, mid), threading.Event())
        ev.set()

    def _on_subscribe(self, client, userdata, mid, rcs, properties):
        self._done("sub", mid, [_rc_int(r) for r in rcs])

    def _on_unsubscribe(self, client, userdata, mid, rcs, properties):
        self._done("unsub", mid, [_rc_int(r) for r in rcs] if rcs else [])

    def _on_publish(self, client, userdata, mid, rc, properties):
        self._done("pub", mid, _rc_int(rc))

    def _wait(self, kind, mid, what):
        ev = self._event(kind, mid)
        assert ev.wait(TIMEOUT), f"timed out waiting for {what}"
        with self._lock:
            return self._results.pop((kind, mid), None)

    # -- operations -------------------------------------------------------
    def connect(self, *, clean: bool | None = None, session_expiry: int | None = None,
                will: dict | None = None, props: Properties | None = None, expect_ok: bool = True) -> tuple:
        """Connect and wait for CONNACK; returns (reason code, session present, properties)."""
        if will:
            wprops = will.get("props")
            self.c.will_set(will["topic"], will.get("payload", b""), will.get("qos", 0), will.get("retain", False),
                            properties=wprops if self.proto == V5 else None)
        kw = {}
        if self.proto == V5:
            if props is None:
                props = Properties(PacketTypes.CONNECT)
            if session_expiry is not None:
                props.SessionExpiryInterval = session_expiry
            kw["properties"] = props
            kw["clean_start"] = self.clean if clean is None else clean
        self.connected.clear()
        self.disconnected.clear()
        self.c.connect(self.broker.host, self.port, keepalive=self.keepalive, **kw)
        if not self._loop:
            self.c.loop_start()
            self._loop = True
        assert self.connected.wait(TIMEOUT), "timed out waiting for CONNACK"
        if expect_ok:
            assert self.connack is not None and self.connack[0] == 0, \
                f"connect refused: {self.connack} (disconnect rc {self.disconnect_rc})"
        return self.connack

    @property
    def session_present(self) -> bool:
        return bool(self.connack and self.connack[1])

    @property
    def connack_props(self):
        return self.connack[2] if self.connack else None

    def subscribe(self, topic: str, qos: int = 0, *, no_local: bool = False, retain_as_published: bool = False,
                  retain_handling: int = 0, sub_id: int | None = None) -> list[int]:
        """Subscribe and wait for SUBACK; returns its reason codes (granted QoS or failure)."""
        if self.proto == V5:
            opts = SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=retain_as_published,
                                    retainHandling=retain_handling)
            props = None
            if sub_id is not None:
                props = props_for(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id)
            rc, mid = self.c.subscribe(topic, options=opts, properties=props)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, f"subscribe failed locally: {rc}"
        return self._wait("sub", mid, f"SUBACK for {topic}")

    def unsubscribe(self, topic: str) -> list[int]:
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        return self._wait("unsub", mid, f"UNSUBACK for {topic}")

    def publish(self, topic: str, payload: bytes | str = b"", qos: int = 0, retain: bool = False,
                props: Properties | None = None, wait: bool = True):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=props)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"publish failed locally: {info.rc}"
        if wait:
            return self._wait("pub", info.mid, f"publish completion of {topic}")
        return info

    def get(self, timeout: float = TIMEOUT) -> mqtt.MQTTMessage:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.client_id}: no message within {timeout}s") from None

    def get_n(self, n: int, timeout: float = TIMEOUT) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.client_id}: got {len(out)}/{n} messages within {timeout}s")
            try:
                out.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                pass
        return out

    def expect_none(self, timeout: float = QUIET):
        try:
            msg = self.messages.get(timeout=timeout)
        except queue.Empty:
            return
        raise AssertionError(f"{self.client_id}: unexpected message on {msg.topic!r}: {msg.payload[:60]!r}")

    def drain(self, timeout: float = QUIET) -> list[mqtt.MQTTMessage]:
        """Collect everything that arrives within ``timeout``."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                out.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                return out

    def disconnect(self, reason: int | None = None, props: Properties | None = None):
        """Normal DISCONNECT (optionally with a 5.0 reason code), then stop the loop."""
        kw = {}
        if reason is not None and self.proto == V5:
            from paho.mqtt.reasoncodes import ReasonCode
            kw["reasoncode"] = ReasonCode(PacketTypes.DISCONNECT, identifier=reason)
        if props is not None:
            kw["properties"] = props
        self.c.disconnect(**kw)
        self.disconnected.wait(TIMEOUT)
        self.stop()

    def wait_disconnected(self, timeout: float = TIMEOUT) -> int:
        assert self.disconnected.wait(timeout), f"{self.client_id}: not disconnected within {timeout}s"
        return self.disconnect_rc

    def stop(self):
        if self._loop:
            self.c.loop_stop()
            self._loop = False

    def kill(self):
        """Abnormal close: drop the socket without DISCONNECT (the network loop then ends)."""
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.disconnected.wait(2)
        self.stop()


@pytest.fixture
def paho_factory(broker):
    """paho(client_id=None, proto=5, clean=True, broker=None, ...) -> unconnected PahoClient."""
    clients: list[PahoClient] = []

    def make(client_id: str | None = None, *, proto: int = V5, b: Broker | None = None, **kw) -> PahoClient:
        c = PahoClient(b or broker, client_id, proto=proto, **kw)
        clients.append(c)
        return c

    yield make
    # disconnect first: it wakes the network loops, so loop_stop() does not wait for select()
    for c in clients:
        try:
            c.c.disconnect()
        except Exception:
            pass
    for c in clients:
        try:
            c.stop()
        except Exception:
            pass


@pytest.fixture
def client(paho_factory, proto):
    """Connect a paho client of the test's protocol version: client(client_id=None, **kw)."""

    def make(client_id: str | None = None, *, connect_kw: dict | None = None, **kw) -> PahoClient:
        c = paho_factory(client_id, proto=kw.pop("proto", proto), **kw)
        c.connect(**(connect_kw or {}))
        return c

    return make


def check_broker_serves(b: Broker, proto: int = V5):
    """A fresh paho client can still subscribe, publish and receive (used after hostile input)."""
    assert b.alive(), f"broker process died\n{b.log_tail()}"
    sub = PahoClient(b, proto=proto)
    pub = PahoClient(b, proto=proto)
    try:
        sub.connect()
        topic = f"health/{uuid.uuid4().hex[:8]}"
        sub.subscribe(topic, 1)
        pub.connect()
        pub.publish(topic, b"still-alive", qos=1)
        msg = sub.get()
        assert msg.topic == topic and msg.payload == b"still-alive"
    finally:
        for c in (sub, pub):
            try:
                c.disconnect()
            except Exception:
                c.stop()
