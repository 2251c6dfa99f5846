"""Durability (FoxMQ only): the LMDB store in DIR/data (or --data-dir) survives kill -9 and SIGTERM.

``foxmq run DIR`` keeps retained messages, persistent sessions (subscriptions, queued messages,
outbound in-flight QoS 1/2 messages with their Packet Identifiers, inbound QoS 2 identifiers not
yet released) and its log in the store.  With ``--durability sync`` (the default) every
acknowledgement (PUBACK, PUBREC, PUBCOMP, SUBACK, CONNACK) and every delivery is released only after
the batch holding it is synced to disk, so whatever a client saw acknowledged before a crash is
there after the restart.  Sessions attached when the process died end at restart like after a
network loss (wills are published then).

The ``durable`` fixture starts a broker on a fixed DIR and port, can ``kill -9`` it (or SIGTERM it)
and start it again on the same DIR and port.  MQTT 5.0 §4.1 (session state), §4.3 (QoS delivery),
§4.4 (message delivery retry), §3.1.2.5 (will), §3.3.1.3 (retain); 3.1.1 likewise.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (
    FOXMQ_BIN, QUIET, TIMEOUT, V311, V5,
    PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL,
    P_SESSION_EXPIRY, P_WILL_DELAY,
    Broker, PahoClient, RawClient,
    ack_packet, free_port, port_accepts, publish_packet, uid,
)

pytestmark = pytest.mark.foxmq_only

EXPIRY = 3600  # Session Expiry Interval of every persistent session here


# --------------------------------------------------------------------------
# a broker that can be killed and restarted on the same directory and port
# --------------------------------------------------------------------------


class DurableBroker(Broker):
    """A FoxMQ process on a fixed DIR and port: ``kill9()`` / ``sigterm()`` then ``start()`` again.

    ``wrapper`` prefixes the command line (e.g. strace); the broker is then the wrapper's child.
    All runs append to the same ``broker.log``."""

    def __init__(self, workdir: Path, *, extra_args=(), wrapper=None):
        super().__init__("foxmq", workdir, anonymous=True, websockets=False, users=None, limits={},
                         extra_args=extra_args)
        self.wrapper = list(wrapper or [])
        self.port = free_port()
        self.starts = 0
        self.expected_exit = False

    def _foxmq_cmd(self) -> list[str]:
        return self.wrapper + super()._foxmq_cmd()

    def start(self, timeout: float = 20.0) -> "DurableBroker":
        """Start (or restart) on the same DIR and port; ready when the port accepts."""
        if not (os.path.isfile(FOXMQ_BIN) and os.access(FOXMQ_BIN, os.X_OK)):
            self.expected_exit = True
            pytest.fail(f"broker binary not found or not executable: {FOXMQ_BIN}")
        assert not self.alive(), "start() while the broker is still running"
        deadline = time.monotonic() + timeout
        while True:
            cmd = self._foxmq_cmd()
            if self._log:
                self._log.close()
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._log = open(self.log_path, "ab")
            self._log.write(("$ " + " ".join(cmd) + "\n").encode())
            self._log.flush()
            self.expected_exit = False
            self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=str(self.dir))
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if port_accepts(self.port):
                    self.starts += 1
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.expected_exit = True
                self._kill()
                pytest.fail(f"broker not listening on {self.port} within {timeout}s\n{self.log_tail()}")
            self.expected_exit = True
            new_log = self.log_path.read_bytes()[log_start:].decode(errors="replace").lower()
            if "in use" in new_log and time.monotonic() < deadline:
                time.sleep(0.2)  # the port is still held (TIME_WAIT without SO_REUSEADDR): try again
                continue
            pytest.fail(f"broker exited at start (run {self.starts + 1}) with code {self.proc.returncode}"
                        f"\n{self.log_tail()}")

    def broker_pid(self) -> int:
        if not self.wrapper:
            return self.proc.pid
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            except OSError:
                kids = []
            if kids:
                return int(kids[0])
            time.sleep(0.02)
        raise AssertionError("could not find the broker process under the wrapper")

    def kill9(self):
        """SIGKILL the broker (no shutdown code runs) and wait for the process to be gone."""
        assert self.alive(), f"broker died before the kill\n{self.log_tail()}"
        self.expected_exit = True
        os.kill(self.broker_pid(), signal.SIGKILL)
        self.proc.wait(timeout=10)

    def sigterm(self, timeout: float = 10.0) -> int:
        """Graceful stop; returns the exit code."""
        assert self.alive(), f"broker died before SIGTERM\n{self.log_tail()}"
        self.expected_exit = True
        os.kill(self.broker_pid(), signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def restart_after_kill9(self) -> "DurableBroker":
        self.kill9()
        return self.start()

    def close(self):
        if self.alive():
            try:
                os.kill(self.broker_pid(), signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (OSError, AssertionError, subprocess.TimeoutExpired):
                self._kill()
        if self._log:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def durable(request):
    """durable(extra_args=(), wrapper=None) -> a started DurableBroker on a fresh DIR."""
    started: list[DurableBroker] = []
    dirs: list[str] = []

    def start(*, extra_args=(), wrapper=None) -> DurableBroker:
        d = tempfile.mkdtemp(prefix="foxmq-dur-")
        dirs.append(d)
        b = DurableBroker(Path(d), extra_args=extra_args, wrapper=wrapper)
        started.append(b)
        return b.start()

    yield start

    crashed = [b for b in started if b.proc is not None and b.proc.poll() is not None and not b.expected_exit]
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    crash_msg = ""
    if crashed:
        b = crashed[0]
        crash_msg = f"broker exited during the test with code {b.proc.returncode}\n{b.log_tail()}"
    for b in started:
        b.close()
        if failed:
            print(f"\n{b!r}\n{b.log_tail(80)}")
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    if crash_msg:
        pytest.fail(crash_msg)


@pytest.fixture
def clients():
    """Track paho / raw clients so they are closed at teardown: clients.paho(...), clients.raw(...)."""

    class _Clients:
        def __init__(self):
            self.paho_list: list[PahoClient] = []
            self.raw_list: list[RawClient] = []

        def paho(self, b, client_id=None, **kw) -> PahoClient:
            c = PahoClient(b, client_id, **kw)
            self.paho_list.append(c)
            return c

        def raw(self, b, version=V5) -> RawClient:
            c = RawClient(b, version=version)
            self.raw_list.append(c)
            return c

    cs = _Clients()
    yield cs
    for c in cs.paho_list:
        try:
            c.c.disconnect()
        except Exception:
            pass
    for c in cs.paho_list:
        try:
            c.stop()
        except Exception:
            pass
    for c in cs.raw_list:
        c.close()


def persistent(proto: int) -> dict:
    """RawClient.connect kwargs resuming (or creating) a persistent session."""
    return {"clean": False, "props": {P_SESSION_EXPIRY: EXPIRY} if proto == V5 else None}


def paho_resume(c: PahoClient) -> bool:
    """Reconnect a paho client whose broker died, same object (keeps paho's QoS 2 state),
    Clean Start 0.  Returns Session Present."""
    if c._loop:
        c.wait_disconnected(10)
        c.stop()
    c.connect(clean=False, session_expiry=EXPIRY if c.proto == V5 else None)
    return c.session_present


# --------------------------------------------------------------------------
# 1. kill -9 while publishers stream
# --------------------------------------------------------------------------

N_STREAM = 300
PACED = 150      # messages 0..PACED-1: at most WINDOW unacknowledged at a time
BURST_END = 200  # messages PACED..BURST_END-1: sent in one burst right before the kill
WINDOW = 20      # messages BURST_END..N_STREAM-1 are only sent after the restart
HELD = set(range(100, 110))  # QoS 2: PUBREL held back before the kill (like the burst)


class StreamPublisher(threading.Thread):
    """A raw MQTT 5 publisher of messages b"0" .. b"299" (Packet Identifier = number + 1) on one topic.

    Before the kill: 0..149 paced (QoS 2: PUBREL sent as soon as PUBREC arrives, except for 100..109),
    then, once both publishers got there (``barrier``), 150..199 in a burst (QoS 2: PUBREL held back),
    then it reads acknowledgements until the broker's socket closes.
    ``finish()`` after the restart resumes the session and completes every message."""

    def __init__(self, broker: DurableBroker, topic: str, qos: int, barrier: threading.Barrier):
        super().__init__(daemon=True)
        self.barrier = barrier
        self.topic = topic
        self.qos = qos
        self.cid = uid(f"pub{qos}")
        self.sent: set[int] = set()
        self.acked: set[int] = set()      # PUBACK (QoS 1) / PUBREC (QoS 2) with reason < 0x80
        self.released: set[int] = set()   # QoS 2: PUBREL sent before the kill
        self.completed: set[int] = set()  # QoS 2: PUBCOMP 0x00 before the kill
        self.unexpected: list = []
        self.error: str | None = None
        self.burst_sent = threading.Event()
        self.client = RawClient(broker, V5)
        ack = self.client.connect(self.cid, clean=True, props={P_SESSION_EXPIRY: EXPIRY})
        assert ack.session_present is False

    def _publish(self, c: RawClient, i: int, dup: bool = False):
        c.send(publish_packet(self.topic, str(i).encode(), qos=self.qos, packet_id=i + 1, dup=dup))
        self.sent.add(i)

    def _inflight(self) -> int:
        return len(self.sent - (self.acked if self.qos == 1 else self.completed))

    def _handle(self, pkt):
        if pkt is None:
            raise ConnectionError("connection closed")
        i = (pkt.packet_id or 0) - 1
        if self.qos == 1 and pkt.type == PUBACK and pkt.reason < 0x80 and i in self.sent:
            self.acked.add(i)
        elif self.qos == 2 and pkt.type == PUBREC and pkt.reason < 0x80 and i in self.sent:
            self.acked.add(i)
            if i < PACED and i not in HELD:
                self.client.send(ack_packet(PUBREL, i + 1))
                self.released.add(i)
        elif self.qos == 2 and pkt.type == PUBCOMP and pkt.reason == 0 and i in self.released:
            self.completed.add(i)
        else:
            self.unexpected.append(pkt)

    def run(self):
        try:
            for i in range(PACED):
                while self._inflight() >= WINDOW:
                    self._handle(self.client.recv(10))
                self._publish(self.client, i)
            self.barrier.wait(20)
            for i in range(PACED, BURST_END):
                self._publish(self.client, i)
            self.burst_sent.set()
            while True:  # acknowledgements the broker sent before it died
                pkt = self.client.recv(15)
                if pkt is None:
                    break
                self._handle(pkt)
        except (OSError, AssertionError, TimeoutError, ConnectionError, threading.BrokenBarrierError) as e:
            if not self.burst_sent.is_set():
                self.error = f"publisher {self.qos} failed before the kill: {e!r}"
        finally:
            self.burst_sent.set()
            self.client.close()

    def finish(self, broker: DurableBroker, problems: list[str]):
        """Resume the session (Clean Start 0) and complete all N_STREAM messages, with the same
        Packet Identifiers: QoS 1 re-sends unacknowledged PUBLISHes with DUP=1; QoS 2 re-sends
        PUBREL where PUBREL was sent, PUBLISH DUP=1 where it was not (even after a PUBREC: the broker
        must answer PUBREC again without delivering twice)."""
        c = RawClient(broker, V5)
        try:
            ack = c.connect(self.cid, clean=False, props={P_SESSION_EXPIRY: EXPIRY})
            if not ack.session_present:
                problems.append(f"QoS {self.qos} publisher: session_present 0 after restart")
            if self.qos == 1:
                todo = [i for i in range(N_STREAM) if i not in self.acked]
                for i in todo:
                    self._publish(c, i, dup=i in self.sent)
                need = {i + 1 for i in todo}
                while need:
                    p = c.expect(PUBACK, timeout=10)
                    if p.reason != 0 or p.packet_id not in need:
                        problems.append(f"QoS 1 publisher after restart: unexpected {p!r}")
                    need.discard(p.packet_id)
                return
            for i in range(N_STREAM):
                if i in self.completed:
                    continue
                if i in self.released:
                    c.send(ack_packet(PUBREL, i + 1))
                    comp = c.expect(PUBCOMP, timeout=10)
                    # 0x00, or 0x92 if the exchange had completed before the kill (PUBCOMP lost)
                    if comp.packet_id != i + 1 or comp.reason not in (0x00, 0x92):
                        problems.append(f"QoS 2 msg {i}: PUBREL after restart answered {comp!r}")
                    continue
                held = i in self.acked  # PUBREC seen before the kill, PUBREL not sent
                self._publish(c, i, dup=i in self.sent)
                rec = c.expect(PUBREC, timeout=10)
                if rec.packet_id != i + 1 or rec.reason != 0:
                    problems.append(f"QoS 2 msg {i} (PUBREC'd before kill: {held}): re-sent PUBLISH "
                                    f"answered {rec!r}")
                c.send(ack_packet(PUBREL, i + 1))
                comp = c.expect(PUBCOMP, timeout=10)
                if comp.packet_id != i + 1 or comp.reason != 0:
                    problems.append(f"QoS 2 msg {i} (PUBREC'd before kill: {held}): PUBCOMP {comp!r}")
        finally:
            c.disconnect()


def _count(msgs, counts: dict[str, collections.Counter], bad: list):
    for m in msgs:
        try:
            counts[m.topic][int(m.payload)] += 1
        except (KeyError, ValueError):
            bad.append((m.topic, m.payload[:40]))


def test_kill9_while_publishers_stream(durable, clients):
    """Two MQTT 5 publishers stream 300 numbered messages each (QoS 1 and QoS 2) to two persistent
    subscribers (Clean Start 0, expiry 3600, QoS 2 on both topics): one stays connected (paho, acks
    as it goes), one is offline (messages queue).  The broker is killed (-9) right after a burst of 50
    more messages per publisher; 200..299 are only sent after the restart.  After the restart:
    subscribers and publishers resume with Session Present 1; publishers complete their streams with
    the original Packet Identifiers (QoS 2 PUBLISHes that were PUBREC'd but not released are re-sent
    with DUP=1: PUBREC 0x00 again, PUBCOMP 0x00).  Each subscriber, counting what the application saw
    before and after the kill, gets every QoS 1 message at least once and every QoS 2 message exactly
    once; in particular everything acknowledged before the kill.
    MQTT 5.0 §4.1, §4.3.2, §4.3.3 [MQTT-4.3.3-10], §4.4 [MQTT-4.4.0-1]."""
    b = durable()
    t1, t2 = "stream/q1", "stream/q2"
    online = clients.paho(b, uid("on"))
    offline = clients.paho(b, uid("off"))
    for s in (online, offline):
        assert s.connect(clean=False, session_expiry=EXPIRY)[1] is False
        assert s.subscribe(t1, 2) == [2]
        assert s.subscribe(t2, 2) == [2]
    offline.disconnect()

    barrier = threading.Barrier(2)
    pubs = {1: StreamPublisher(b, t1, 1, barrier), 2: StreamPublisher(b, t2, 2, barrier)}
    for p in pubs.values():
        p.start()
    for p in pubs.values():
        assert p.burst_sent.wait(30), f"QoS {p.qos} publisher did not reach the burst"
    b.kill9()
    for p in pubs.values():
        p.join(20)
        assert not p.is_alive(), f"QoS {p.qos} publisher did not notice the kill"
        assert p.error is None, p.error
        assert not p.unexpected, f"QoS {p.qos} publisher got unexpected packets: {p.unexpected[:5]}"
        assert p.acked, f"QoS {p.qos} publisher: nothing acknowledged before the kill"
    assert HELD <= pubs[2].acked, f"PUBREC missing before the kill for {sorted(HELD - pubs[2].acked)}"
    pre_kill = {
        q: dict(sent=len(p.sent), acked=len(p.acked), completed=len(p.completed),
                burst_acked=len(p.acked & set(range(PACED, BURST_END)))) for q, p in pubs.items()
    }
    seen_online_before = online.drain(0.1)

    b.start()
    for s in (online, offline):
        assert paho_resume(s) is True, f"{s.client_id}: session_present 0 after kill -9 and restart"
    problems: list[str] = []
    pubs[1].finish(b, problems)
    pubs[2].finish(b, problems)
    assert not problems, "publishers after restart:\n" + "\n".join(problems[:20])

    results = {}
    for name, s, before in (("online", online, seen_online_before), ("offline", offline, [])):
        counts = {t1: collections.Counter(), t2: collections.Counter()}
        bad: list = []
        _count(before, counts, bad)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (len(counts[t1]) < N_STREAM or len(counts[t2]) < N_STREAM):
            _count(s.drain(0.2), counts, bad)
        _count(s.drain(QUIET), counts, bad)  # late duplicates
        results[name] = counts
        assert not bad, f"{name}: unexpected messages {bad[:5]}"
        missing1 = sorted(set(range(N_STREAM)) - set(counts[t1]))
        missing2 = sorted(set(range(N_STREAM)) - set(counts[t2]))
        lost1 = sorted(pubs[1].acked & set(missing1))
        lost2 = sorted(pubs[2].acked & set(missing2))
        dups2 = sorted((i, n) for i, n in counts[t2].items() if n != 1)
        info = f"(pre-kill publisher state {pre_kill})"
        assert not lost1, f"{name}: QoS 1 messages PUBACKed before the kill never delivered: {lost1[:20]} {info}"
        assert not lost2, f"{name}: QoS 2 messages PUBREC'd before the kill never delivered: {lost2[:20]} {info}"
        assert not missing1, f"{name}: QoS 1 messages never delivered: {missing1[:20]} {info}"
        assert not missing2, f"{name}: QoS 2 messages never delivered: {missing2[:20]} {info}"
        assert not dups2, f"{name}: QoS 2 messages delivered more than once (number, times): {dups2[:20]} {info}"
    print(f"pre-kill: {pre_kill}; online saw {len(seen_online_before)} before the kill; QoS 1 duplicates: "
          f"online {sum(results['online'][t1].values()) - N_STREAM}, "
          f"offline {sum(results['offline'][t1].values()) - N_STREAM}")


# --------------------------------------------------------------------------
# 2. retained messages survive kill -9
# --------------------------------------------------------------------------


def test_retained_survive_kill9(durable, clients):
    """50 retained messages set with QoS 1 (each PUBACKed) are all there after kill -9 and restart: a
    new subscriber to '#' gets exactly those 50, with their payloads and RETAIN=1.  Two retained
    messages cleared (empty payload, acknowledged) before the kill, one by an MQTT 5 paho client and
    one by mosquitto_pub over 3.1.1, stay cleared.  MQTT 5.0 §3.3.1.3 [MQTT-3.3.1-5/6/10]."""
    b = durable()
    pub = clients.paho(b)
    pub.connect()
    expected = {f"keep/{i}": f"value-{i}".encode() for i in range(50)}
    for topic, payload in expected.items():
        assert pub.publish(topic, payload, qos=1, retain=True) in (0x00, 0x10)  # 0x10: no subscribers
    pub.publish("gone/v5", b"old", qos=1, retain=True)
    pub.publish("gone/v5", b"", qos=1, retain=True)
    pub.publish("gone/v311", b"old", qos=1, retain=True)
    pub.disconnect()
    res = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "-V", "mqttv311",
                          "-t", "gone/v311", "-r", "-n", "-q", "1"], capture_output=True, text=True, timeout=10)
    assert res.returncode == 0, res.stderr

    b.restart_after_kill9()
    sub = clients.paho(b)
    sub.connect()
    sub.subscribe("#", 1)
    msgs = sub.get_n(50, timeout=10) + sub.drain(QUIET)
    got = {m.topic: m.payload for m in msgs}
    assert len(msgs) == 50, f"expected 50 retained messages, got {len(msgs)}: {sorted(got)[:60]}"
    assert got == expected
    assert all(m.retain for m in msgs), "retained messages must arrive with RETAIN=1"


def test_retained_survive_kill9_with_data_dir(durable, clients, tmp_path):
    """With --data-dir PATH the store lives in PATH (data.mdb there), and retained messages survive
    kill -9 and a restart with the same --data-dir."""
    store = tmp_path / "elsewhere"
    b = durable(extra_args=["--data-dir", str(store)])
    pub = clients.paho(b)
    pub.connect()
    pub.publish("dd/a", b"A", qos=1, retain=True)
    pub.disconnect()
    assert (store / "data.mdb").exists(), f"no data.mdb in {store}: {list(store.iterdir()) if store.exists() else '-'}"
    b.restart_after_kill9()
    sub = clients.paho(b)
    sub.connect()
    sub.subscribe("dd/#", 1)
    m = sub.get()
    assert (m.topic, m.payload, m.retain) == ("dd/a", b"A", True)
    sub.expect_none()


# --------------------------------------------------------------------------
# 3. kill points in an inbound QoS 2 exchange
# --------------------------------------------------------------------------


def test_inbound_qos2_kill_points(durable, clients):
    """Inbound QoS 2 across kill -9, MQTT 5, publisher with a persistent session:
    (a) PUBLISH id 42 -> PUBREC 0x00, killed before PUBREL.  After the restart the publisher resumes
        (Session Present 1) and sends PUBREL 42: PUBCOMP 42 with reason 0x00 (the identifier
        survived); the message reaches the (persistent, QoS 2) subscriber exactly once across the restart.
    (b) PUBLISH id 43 -> PUBREC -> PUBREL -> PUBCOMP 0x00, then killed.  The message is delivered
        exactly once; after the restart a new PUBLISH with id 43 (DUP=0, different payload) is a new
        message: PUBREC 0x00, PUBCOMP 0x00, and it is delivered too (a broker that kept id 43 as
        unreleased would swallow it as a duplicate).
    MQTT 5.0 §4.3.3 [MQTT-4.3.3-9/10/11/13], §4.4 [MQTT-4.4.0-1], §3.7.2.1 (PUBCOMP reason codes)."""
    b = durable()
    sub = clients.paho(b, uid("sub"))
    sub.connect(clean=False, session_expiry=EXPIRY)
    assert sub.subscribe("k/#", 2) == [2]
    cid = uid("pub")
    pub = clients.raw(b)
    pub.connect(cid, clean=True, props={P_SESSION_EXPIRY: EXPIRY})
    pub.send(publish_packet("k/b", b"completed", qos=2, packet_id=43))
    rec = pub.expect(PUBREC)
    assert (rec.packet_id, rec.reason) == (43, 0)
    pub.send(ack_packet(PUBREL, 43))
    comp = pub.expect(PUBCOMP)
    assert (comp.packet_id, comp.reason) == (43, 0)
    pub.send(publish_packet("k/a", b"before-pubrel", qos=2, packet_id=42))
    rec = pub.expect(PUBREC)
    assert (rec.packet_id, rec.reason) == (42, 0)
    seen = sub.drain(QUIET)

    b.restart_after_kill9()
    assert paho_resume(sub) is True
    pub2 = clients.raw(b)
    assert pub2.connect(cid, **persistent(V5)).session_present is True
    pub2.send(ack_packet(PUBREL, 42))
    comp = pub2.expect(PUBCOMP)
    assert (comp.packet_id, comp.reason) == (42, 0x00), f"PUBREL 42 after restart answered {comp!r}"
    pub2.send(publish_packet("k/b", b"new-exchange", qos=2, packet_id=43))
    rec = pub2.expect(PUBREC)
    assert (rec.packet_id, rec.reason) == (43, 0x00), f"new PUBLISH id 43 answered {rec!r}"
    pub2.send(ack_packet(PUBREL, 43))
    comp = pub2.expect(PUBCOMP)
    assert (comp.packet_id, comp.reason) == (43, 0x00)

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and len(seen) < 3:
        seen += sub.drain(0.2)
    seen += sub.drain(QUIET)
    got = collections.Counter((m.topic, m.payload) for m in seen)
    assert got == {("k/a", b"before-pubrel"): 1, ("k/b", b"completed"): 1, ("k/b", b"new-exchange"): 1}, got


# --------------------------------------------------------------------------
# 4. outbound QoS 1/2 in flight across a restart
# --------------------------------------------------------------------------


@pytest.mark.parametrize("proto", [V5, V311], ids=["v5", "v311"])
def test_outbound_inflight_across_kill9(durable, clients, proto):
    """A persistent-session subscriber (raw) receives a QoS 2 message, sends PUBREC and gets PUBREL
    (does not send PUBCOMP), then receives a QoS 1 message and does not PUBACK it.  kill -9, restart,
    resume with Clean Start 0: Session Present 1, and the broker re-sends exactly two packets: PUBREL
    with the QoS 2 message's identifier (not the PUBLISH again) and the QoS 1 PUBLISH with DUP=1, the
    same identifier and payload.  After PUBCOMP + PUBACK and a SUBSCRIBE whose SUBACK (released after
    its batch is synced) shows they were stored, a second kill -9 + restart re-sends nothing.
    MQTT 5.0 §4.4 [MQTT-4.4.0-1/2], §4.3.3 [MQTT-4.3.3-5]; 3.1.1 §4.4."""
    b = durable()
    cid = uid("sub")
    sub = clients.raw(b, proto)
    sub.connect(cid, **persistent(proto))
    sub.subscribe([("o/q2", 2), ("o/q1", 1)])
    pub = clients.paho(b)
    pub.connect()
    pub.publish("o/q2", b"two", qos=2)
    p2 = sub.expect(PUBLISH)
    assert (p2.topic, p2.payload, p2.qos, p2.dup) == ("o/q2", b"two", 2, False)
    sub.send(ack_packet(PUBREC, p2.packet_id, version=proto))
    rel = sub.expect(PUBREL)
    assert rel.packet_id == p2.packet_id
    pub.publish("o/q1", b"one", qos=1)
    p1 = sub.expect(PUBLISH)
    assert (p1.topic, p1.payload, p1.qos, p1.dup) == ("o/q1", b"one", 1, False)
    pub.disconnect()

    b.restart_after_kill9()
    sub2 = clients.raw(b, proto)
    assert sub2.connect(cid, **persistent(proto)).session_present is True
    got = [sub2.recv(TIMEOUT), sub2.recv(TIMEOUT)]
    rels = [p for p in got if p is not None and p.type == PUBREL]
    pubs = [p for p in got if p is not None and p.type == PUBLISH]
    assert len(rels) == 1 and len(pubs) == 1, f"expected one PUBREL and one PUBLISH, got {got}"
    assert rels[0].packet_id == p2.packet_id
    assert (pubs[0].topic, pubs[0].payload, pubs[0].qos, pubs[0].dup, pubs[0].packet_id) == \
        ("o/q1", b"one", 1, True, p1.packet_id)
    sub2.expect_nothing()  # in particular no PUBLISH of "two" again
    sub2.send(ack_packet(PUBCOMP, p2.packet_id, version=proto))
    sub2.send(ack_packet(PUBACK, p1.packet_id, version=proto))
    sub2.subscribe("o/other", qos=0)

    b.restart_after_kill9()
    sub3 = clients.raw(b, proto)
    assert sub3.connect(cid, **persistent(proto)).session_present is True
    sub3.expect_nothing()


# --------------------------------------------------------------------------
# 5. will of a session attached when the broker was killed
# --------------------------------------------------------------------------


@pytest.mark.parametrize("proto", [V5, V311], ids=["v5", "v311"])
def test_will_of_attached_session_published_at_restart(durable, clients, proto):
    """A client with a Will (QoS 1, will delay 0 in 5.0) is connected when the broker is killed (-9).
    Its session ends at restart like after a network loss, so the will is published then: a
    persistent subscriber to the will topic (subscribed before the kill, also attached at the kill)
    resumes after the restart and receives the will exactly once.  The will client's session
    (expiry 0 / CleanSession 1) is gone.  MQTT 5.0 §3.1.2.5 [MQTT-3.1.2-8], §4.1; 3.1.1 §3.1.2.5."""
    b = durable()
    scid = uid("sub")
    sub = clients.raw(b, V5)
    sub.connect(scid, **persistent(V5))
    sub.subscribe("will/t", qos=1)
    wcid = uid("will")
    w = clients.raw(b, proto)
    will = {"topic": "will/t", "payload": b"gone", "qos": 1}
    if proto == V5:
        will["props"] = {P_WILL_DELAY: 0}
    w.connect(wcid, will=will)
    sub.expect_nothing(0.2)

    b.restart_after_kill9()
    sub2 = clients.raw(b, V5)
    assert sub2.connect(scid, **persistent(V5)).session_present is True
    msg = sub2.expect(PUBLISH)
    assert (msg.topic, msg.payload, msg.qos) == ("will/t", b"gone", 1)
    sub2.ack(msg)
    sub2.expect_nothing(1.0)
    w2 = clients.raw(b, proto)
    assert w2.connect(wcid, clean=False).session_present is False


# --------------------------------------------------------------------------
# 6. acknowledgements wait for the sync (strace)
# --------------------------------------------------------------------------

N_SERIAL = 50
_SYNC_LINE = re.compile(r"^(?:\[pid\s+)?\d+\]?\s+(\d+\.\d+)\s+(fsync|fdatasync|msync)\(")


@pytest.mark.parametrize("mode", ["sync", "none"])
def test_puback_after_sync_strace(durable, clients, tmp_path, mode):
    """Under strace, 50 serial QoS 1 publishes (each PUBACK awaited before the next PUBLISH) to a
    topic with an offline persistent subscriber: with --durability sync the broker makes at least 50
    fsync/fdatasync/msync calls while they run (each PUBACK waited for its own sync); with
    --durability none fewer than 25 (shows the count can fail).  The subscriber then gets all 50."""
    trace = tmp_path / "strace.out"
    wrapper = ["strace", "-f", "-ttt", "-e", "trace=fsync,fdatasync,msync", "-o", str(trace)]
    b = durable(wrapper=wrapper, extra_args=["--durability", mode])
    scid = uid("sub")
    sub = clients.raw(b)
    sub.connect(scid, **persistent(V5))
    sub.subscribe("serial/t", qos=1)
    sub.disconnect()
    pub = clients.raw(b)
    pub.connect(uid("pub"))
    t0 = time.time()
    for i in range(N_SERIAL):
        ack = pub.publish("serial/t", str(i).encode(), qos=1)
        assert ack.reason == 0
    t1 = time.time()
    sub2 = clients.raw(b)
    assert sub2.connect(scid, **persistent(V5)).session_present is True
    got = []
    for _ in range(N_SERIAL):
        p = sub2.expect(PUBLISH)
        got.append(int(p.payload))
        sub2.ack(p)
    assert got == list(range(N_SERIAL))
    pub.disconnect()
    sub2.disconnect()
    assert b.sigterm() == 0
    kinds = collections.Counter()
    total = collections.Counter()
    for line in trace.read_text(errors="replace").splitlines():
        m = _SYNC_LINE.match(line)
        if not m:
            continue
        total[m.group(2)] += 1
        if t0 <= float(m.group(1)) <= t1:
            kinds[m.group(2)] += 1
    during = sum(kinds.values())
    print(f"durability {mode}: syncs during the {N_SERIAL} publishes {dict(kinds)}, whole run {dict(total)}")
    if mode == "sync":
        assert during >= N_SERIAL, \
            f"only {during} syncs ({dict(kinds)}) during {N_SERIAL} serial QoS 1 publishes; whole run {dict(total)}"
    else:
        assert during < N_SERIAL // 2, f"{during} syncs ({dict(kinds)}) with --durability none"


# --------------------------------------------------------------------------
# 7. graceful stop ends sessions through the log
# --------------------------------------------------------------------------


def test_sigterm_will_published_once_across_restart(durable, clients):
    """A client with a Will (QoS 1, delay 0) is connected, a persistent subscriber to the will topic
    is offline.  SIGTERM (exit code 0), restart on the same DIR: the subscriber resumes (Session
    Present 1) and receives the will exactly once (published at shutdown, not again at restart).
    MQTT 5.0 §3.1.2.5 [MQTT-3.1.2-8], §3.14.2.1 (0x8B)."""
    b = durable()
    scid = uid("sub")
    sub = clients.raw(b)
    sub.connect(scid, **persistent(V5))
    sub.subscribe("will/term", qos=1)
    sub.disconnect()
    w = clients.raw(b)
    w.connect(uid("will"), will={"topic": "will/term", "payload": b"bye", "qos": 1, "props": {P_WILL_DELAY: 0}})
    assert b.sigterm() == 0
    b.start()
    sub2 = clients.raw(b)
    assert sub2.connect(scid, **persistent(V5)).session_present is True
    msg = sub2.expect(PUBLISH)
    assert (msg.topic, msg.payload) == ("will/term", b"bye")
    sub2.ack(msg)
    sub2.expect_nothing(1.0)
    # and a second graceful restart does not publish it again either
    sub2.disconnect()
    assert b.sigterm() == 0
    b.start()
    sub3 = clients.raw(b)
    assert sub3.connect(scid, **persistent(V5)).session_present is True
    sub3.expect_nothing(1.0)


# --------------------------------------------------------------------------
# 8. --durability none warns
# --------------------------------------------------------------------------


def test_durability_none_warns(durable):
    """--durability none prints a warning at start (stderr or log mentions 'durability none');
    the default (sync) does not."""
    b = durable(extra_args=["--durability", "none"])
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and "durability none" not in b.log_text().lower():
        time.sleep(0.05)
    assert "durability none" in b.log_text().lower(), b.log_tail()
    b2 = durable()
    time.sleep(0.2)
    assert "durability none" not in b2.log_text().lower(), b2.log_tail()
