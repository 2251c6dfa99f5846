"""Operator views (FoxMQ only): Prometheus metrics on ``--metrics-addr`` (``/metrics`` in the text
format, ``/healthz``), and the ``$SYS`` topics every ``--sys-interval`` seconds, retained, in
Mosquitto's layout; clients cannot publish under ``$SYS`` and ``#`` does not match it.
"""

from __future__ import annotations

import collections
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

from conftest import (
    PACKET_NAMES, P_MESSAGE_EXPIRY, P_SESSION_EXPIRY, PUBACK, PUBLISH, SUBACK, V5, PahoClient, RawClient,
    connect_packet, free_port, publish_packet, subscribe_packet, uid,
)

pytestmark = pytest.mark.foxmq_only


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def value(text: str, name: str, labels: str = "") -> float:
    """The sample of metric ``name`` with exactly these labels (``a="b",c="d"``), 0 if absent."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" ([0-9.e+-]+)$"
    for line in text.splitlines():
        m = re.match(pattern, line)
        if m:
            return float(m.group(1))
    return 0.0


def total(text: str, name: str) -> float:
    """The sum of every sample of ``name`` whatever its labels (an unlabelled one included)."""
    pattern = re.compile(re.escape(name) + r"(\{[^}]*\})? ([0-9.e+-]+)$")
    return sum(float(m.group(2)) for m in map(pattern.match, text.splitlines()) if m)


def wait_metrics(port: int, ready, what: str, timeout: float = 15) -> str:
    """Scrape until ``ready(text)`` (gauges are sampled every 5 s, drops counted by the sampler)."""
    deadline = time.monotonic() + timeout
    while True:
        _, text = scrape(port)
        if ready(text):
            return text
        if time.monotonic() > deadline:
            shown = "\n".join(line for line in text.splitlines() if line.startswith("foxmq_") and "_bucket" not in line)
            pytest.fail(f"{what}: not seen within {timeout}s\n{shown}")
        time.sleep(0.2)


def metrics_node(broker_factory, sys_interval: str, *extra: str, **limits):
    """A node with --metrics-addr, once its endpoint answers."""
    port = free_port()
    b = broker_factory(extra_args=["--metrics-addr", f"127.0.0.1:{port}", "--sys-interval", sys_interval, *extra],
                       **limits)
    wait_endpoint(port)
    b.metrics_port = port
    return b


def wait_endpoint(port: int):
    """Waits until /metrics answers on `port` (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            scrape(port)
            return
        except OSError:
            assert time.monotonic() < deadline, "metrics endpoint not up"
            time.sleep(0.1)


def metrics_broker(broker_factory, *extra: str, **limits):
    """A node with --metrics-addr and no $SYS (its retained messages and deliveries would count)."""
    b = metrics_node(broker_factory, "0", *extra, **limits)
    time.sleep(0.3)  # the start-up probes of the port are closed and forgotten
    return b


class CountingClient(RawClient):
    """A RawClient that counts the bytes it writes and reads, in total and by packet type."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.bytes_out = self.bytes_in = 0
        self.out_by_type: collections.Counter = collections.Counter()
        self.in_by_type: collections.Counter = collections.Counter()

    def send(self, data: bytes):  # (one packet per call)
        super().send(data)
        self.bytes_out += len(data)
        self.out_by_type[PACKET_NAMES[data[0] >> 4].lower()] += len(data)

    def try_send(self, data: bytes) -> bool:
        sent = super().try_send(data)
        if sent:
            self.bytes_out += len(data)
            self.out_by_type[PACKET_NAMES[data[0] >> 4].lower()] += len(data)
        return sent

    def _fill(self, deadline: float) -> bool:
        before = len(self.buf)
        more = super()._fill(deadline)
        self.bytes_in += len(self.buf) - before
        return more

    def _take(self):
        size = len(self.buf)
        pkt = super()._take()
        if pkt is not None:
            self.in_by_type[pkt.name.lower()] += size - len(self.buf)
        return pkt


def deliver_every_qos(b) -> tuple[CountingClient, CountingClient]:
    """A QoS 2 subscriber gets 4 QoS 0, 3 QoS 1 and 2 QoS 2 messages, acknowledging each; returns
    (publisher, subscriber) once everything was read."""
    sub = CountingClient(b, V5)
    sub.connect(uid())
    sub.subscribe("v/#", qos=2)
    pub = CountingClient(b, V5)
    pub.connect(uid())
    for qos, count in ((0, 4), (1, 3), (2, 2)):
        for i in range(count):
            pub.publish(f"v/{qos}", f"payload {qos}.{i}".encode() * (i + 1), qos=qos)
    got = []
    while len(got) < 9:
        pkt = sub.expect(PUBLISH)
        got.append(pkt.qos)
        sub.ack(pkt)
    assert sorted(got) == [0] * 4 + [1] * 3 + [2] * 2
    sub.expect_nothing(0.3)
    pub.expect_nothing(0.1)
    return pub, sub


@pytest.fixture
def observed(broker_factory):
    return metrics_node(broker_factory, "1")


def test_metrics_count_connections_packets_and_messages(observed, raw_factory):
    status, before = scrape(observed.metrics_port)
    assert status == 200
    for name in ("foxmq_connections", "foxmq_connections_total", "foxmq_bytes_received_total",
                 "foxmq_retained_messages", "foxmq_sessions"):
        assert re.search(rf"^# TYPE {name} ", before, re.M), f"{name} not exported:\n{before[:2000]}"
    c = raw_factory(observed, V5)
    c.connect(uid())
    c.subscribe("m/#", qos=1)
    for i in range(5):
        c.publish("m/x", f"{i}".encode(), qos=1)
    for i in range(3):
        c.publish("m/y", b"zero", qos=0)
    deadline = time.monotonic() + 10
    while True:
        _, after = scrape(observed.metrics_port)
        if value(after, "foxmq_messages_received_total", 'qos="1"') >= 5 and value(after, "foxmq_sessions", 'state="connected"') >= 1:
            break
        assert time.monotonic() < deadline, f"metrics did not move:\n{after}"
        time.sleep(0.2)
    assert value(after, "foxmq_messages_received_total", 'qos="1"') - value(before, "foxmq_messages_received_total", 'qos="1"') == 5
    assert value(after, "foxmq_messages_received_total", 'qos="0"') - value(before, "foxmq_messages_received_total", 'qos="0"') == 3
    assert value(after, "foxmq_packets_received_total", 'type="connect"') >= 1
    assert value(after, "foxmq_packets_sent_total", 'type="puback"') >= 5
    assert value(after, "foxmq_connections") >= 1
    assert total(after, "foxmq_bytes_received_total") > total(before, "foxmq_bytes_received_total")
    assert value(after, "foxmq_subscriptions") >= 1

    status, body = scrape(observed.metrics_port, "/healthz")
    assert (status, body.strip()) == (200, "ok")
    assert scrape(observed.metrics_port, "/nope")[0] == 404


def test_orderer_store_and_expiry_metrics(broker_factory, raw_factory):
    """The orderer's batch size and apply time, the store's write (with its sync) time and size,
    and messages dropped because they expired in an offline session's queue are exported and
    move with the traffic."""
    port = free_port()
    b = broker_factory(extra_args=["--metrics-addr", f"127.0.0.1:{port}"])
    time.sleep(0.3)
    _, before = scrape(port)
    for name in ("foxmq_orderer_batch_events", "foxmq_orderer_apply_seconds", "foxmq_store_write_seconds"):
        assert re.search(rf"^# TYPE {name} histogram", before, re.M), f"{name} not a histogram:\n{before[:3000]}"
    away = uid()
    sub = raw_factory(b, V5)
    sub.connect(away, clean=False, props={P_SESSION_EXPIRY: 300})
    sub.subscribe("exp/#", qos=1)
    sub.close()
    pub = raw_factory(b, V5)
    pub.connect(uid())
    for i in range(3):
        ack = pub.publish("exp/t", f"{i}".encode(), qos=1, props={P_MESSAGE_EXPIRY: 1})
        assert ack.reason == 0
    time.sleep(1.5)
    back = raw_factory(b, V5)
    ack = back.connect(away, clean=False, props={P_SESSION_EXPIRY: 300})
    assert ack.session_present
    with pytest.raises(TimeoutError):
        got = back.recv(timeout=1.0)
        pytest.fail(f"an expired message was delivered: {got!r}")
    deadline = time.monotonic() + 12
    while True:
        _, after = scrape(port)
        if value(after, "foxmq_messages_dropped_total", 'reason="expired"') >= 3:
            break
        assert time.monotonic() < deadline, f"expired drops not counted:\n{after}"
        time.sleep(0.5)
    assert value(after, "foxmq_messages_dropped_total", 'reason="expired"') == 3
    writes = value(after, "foxmq_store_write_seconds_count") - value(before, "foxmq_store_write_seconds_count")
    assert writes >= 1, "no store write measured"
    batched = value(after, "foxmq_orderer_batch_events_sum") - value(before, "foxmq_orderer_batch_events_sum")
    assert batched >= 5, f"the batches held {batched} events (connects, subscribe, 3 publishes at least)"
    assert value(after, "foxmq_orderer_apply_seconds_count") >= writes
    assert value(after, "foxmq_store_used_bytes") > 0
    assert value(after, "foxmq_store_map_bytes") >= value(after, "foxmq_store_used_bytes")


def test_refusals_and_unauthorized_publishes_are_counted(broker_factory, raw_factory):
    port = free_port()
    b = broker_factory(anonymous=False, users={"alice": "pw"},
                       extra_args=["--metrics-addr", f"127.0.0.1:{port}"])
    time.sleep(0.3)
    _, before = scrape(port)
    refused = raw_factory(b, V5)
    assert refused.connect(uid(), expect_ok=False).reason == 0x87
    alice = raw_factory(b, V5)
    alice.connect(uid(), username="alice", password="pw")
    ack = alice.publish("$SYS/broker/fake", b"x", qos=1)
    assert ack.reason == 0x87, "no client publishes under $SYS"
    _, after = scrape(port)
    delta = value(after, "foxmq_connections_refused_total", 'reason="not_authorized"') - \
        value(before, "foxmq_connections_refused_total", 'reason="not_authorized"')
    assert delta == 1
    assert value(after, "foxmq_messages_dropped_total", 'reason="unauthorized"') >= 1


def test_sys_topics_are_retained_and_kept_apart_from_hash(observed, raw_factory):
    watcher = raw_factory(observed, V5)
    watcher.connect(uid())
    watcher.subscribe("$SYS/#", qos=0)
    everything = raw_factory(observed, V5)
    everything.connect(uid())
    everything.subscribe("#", qos=0)
    seen: dict[str, bytes] = {}
    deadline = time.monotonic() + 10
    # The retained values come at once; clients/connected counts these two clients by the next round.
    while not ({"$SYS/broker/version", "$SYS/broker/uptime"} <= seen.keys()
               and int(seen.get("$SYS/broker/clients/connected", b"0")) >= 2):
        assert time.monotonic() < deadline, f"$SYS topics missing: {sorted(seen)}"
        p = watcher.recv(2)
        if p is not None and p.type == 3:
            seen[p.topic] = p.payload
    assert seen["$SYS/broker/version"].startswith(b"foxmq ")
    assert re.fullmatch(rb"\d+ seconds", seen["$SYS/broker/uptime"])
    # The uptime moves every interval.
    first = seen["$SYS/broker/uptime"]
    deadline = time.monotonic() + 5
    while seen["$SYS/broker/uptime"] == first:
        assert time.monotonic() < deadline, "uptime not republished"
        p = watcher.recv(2)
        if p is not None and p.type == 3:
            seen[p.topic] = p.payload
    # Retained: a late subscriber gets the tree at once.
    late = raw_factory(observed, V5)
    late.connect(uid())
    late.subscribe("$SYS/broker/version", qos=0)
    p = late.recv(5)
    assert p is not None and p.type == 3 and p.retain and p.payload.startswith(b"foxmq ")
    # `#` never matched any of them (MQTT 5.0 §4.7.2).
    try:
        p = everything.recv(0.5)
    except TimeoutError:
        p = None
    assert p is None or not p.topic.startswith("$"), p


def test_metrics_messages_sent_by_qos_and_bytes_in_both_directions(broker_factory):
    """foxmq_messages_sent_total{qos} moves by the messages delivered at each QoS, and the byte
    counters (summed over their labels) by exactly the bytes the clients wrote and read."""
    b = metrics_broker(broker_factory)
    _, before = scrape(b.metrics_port)
    pub, sub = deliver_every_qos(b)
    wrote, read = pub.bytes_out + sub.bytes_out, pub.bytes_in + sub.bytes_in

    def delta(text, name, labels=""):
        return value(text, name, labels) - value(before, name, labels)

    after = wait_metrics(b.metrics_port, lambda t: total(t, "foxmq_bytes_received_total")
                         - total(before, "foxmq_bytes_received_total") >= wrote
                         and total(t, "foxmq_bytes_sent_total") - total(before, "foxmq_bytes_sent_total") >= read,
                         "the bytes counted")
    assert [delta(after, "foxmq_messages_sent_total", f'qos="{q}"') for q in range(3)] == [4, 3, 2]
    assert [delta(after, "foxmq_messages_received_total", f'qos="{q}"') for q in range(3)] == [4, 3, 2]
    assert total(after, "foxmq_bytes_received_total") - total(before, "foxmq_bytes_received_total") == wrote
    assert total(after, "foxmq_bytes_sent_total") - total(before, "foxmq_bytes_sent_total") == read


def offline_session_with_messages(b, raw_factory, prefix: str, count: int):
    """A persistent session subscribed to `prefix/#` at QoS 1 that went away, then `count`
    QoS 1 messages published to `prefix/x` (all acknowledged); returns its client identifier and
    the publisher, still connected."""
    away = uid("away")
    s = raw_factory(b, V5)
    s.connect(away, clean=False, props={P_SESSION_EXPIRY: 300})
    s.subscribe(f"{prefix}/#", qos=1)
    s.disconnect()
    pub = raw_factory(b, V5)
    pub.connect(uid())
    for i in range(count):
        assert pub.publish(f"{prefix}/x", f"{i}".encode(), qos=1).reason == 0
    return away, pub


def test_metrics_offline_session_queued_and_inflight(broker_factory, raw_factory):
    """foxmq_sessions{state="offline"} counts a disconnected session that has not expired,
    foxmq_messages_queued the QoS 1 messages kept for it, foxmq_messages_inflight the messages
    sent to a subscriber that does not acknowledge them (and both move when it resumes and acks)."""
    b = metrics_broker(broker_factory)
    away, pub = offline_session_with_messages(b, raw_factory, "q", 3)
    wait_metrics(b.metrics_port, lambda t: value(t, "foxmq_sessions", 'state="offline"') == 1
                 and value(t, "foxmq_sessions", 'state="connected"') == 1
                 and value(t, "foxmq_messages_queued") == 3 and value(t, "foxmq_messages_inflight") == 0,
                 "1 offline session with 3 queued messages, nothing in flight")

    # A connected QoS 1 subscriber that never sends PUBACK: 4 messages in flight.
    mute = raw_factory(b, V5)
    mute.connect(uid())
    mute.subscribe("i/#", qos=1)
    for i in range(4):
        assert pub.publish("i/x", f"{i}".encode(), qos=1).reason == 0
    for _ in range(4):
        assert mute.expect(PUBLISH).qos == 1
    wait_metrics(b.metrics_port, lambda t: value(t, "foxmq_messages_inflight") == 4
                 and value(t, "foxmq_messages_queued") == 3, "4 in flight, 3 still queued")

    # The offline session resumes: its queue goes in flight; then every message is acknowledged.
    back = raw_factory(b, V5)
    assert back.connect(away, clean=False, props={P_SESSION_EXPIRY: 300}).session_present
    resumed = [back.expect(PUBLISH) for _ in range(3)]
    wait_metrics(b.metrics_port, lambda t: value(t, "foxmq_messages_inflight") == 7
                 and value(t, "foxmq_messages_queued") == 0
                 and value(t, "foxmq_sessions", 'state="offline"') == 0
                 and value(t, "foxmq_sessions", 'state="connected"') == 3, "7 in flight, none queued or offline")
    for pkt in resumed:
        back.ack(pkt)
    wait_metrics(b.metrics_port, lambda t: value(t, "foxmq_messages_inflight") == 4, "back's 3 acknowledged")


def test_metrics_retained_messages_count_topics(broker_factory, raw_factory):
    """foxmq_retained_messages is the number of retained topics: 4 set, one replaced, one
    cleared (an empty retained payload) leaves 3."""
    b = metrics_broker(broker_factory)
    c = raw_factory(b, V5)
    c.connect(uid())
    for topic in ("r/a", "r/b", "r/c", "r/d"):
        c.publish(topic, b"kept", qos=1, retain=True)
    c.publish("r/a", b"replaced", qos=1, retain=True)
    c.publish("r/d", b"", qos=1, retain=True)
    text = wait_metrics(b.metrics_port, lambda t: value(t, "foxmq_retained_messages") == 3,
                        "3 retained messages")
    assert re.search(r"^foxmq_retained_messages 3(\.0)?$", text, re.M), "exported without labels"


def test_metrics_refused_connections_past_max_connections(broker_factory, raw_factory):
    """A connection past --max-connections is closed and counted as server_busy."""
    b = metrics_broker(broker_factory, max_connections=2)
    _, before = scrape(b.metrics_port)
    for _ in range(2):
        raw_factory(b, V5).connect(uid())
    extra = raw_factory(b, V5)
    extra.try_send(connect_packet(uid()))
    assert all(p.type != 2 for p in extra.wait_closed(5)), "the third connection got a CONNACK"
    after = wait_metrics(b.metrics_port, lambda t: value(t, "foxmq_connections_refused_total", 'reason="server_busy"')
                         > value(before, "foxmq_connections_refused_total", 'reason="server_busy"'), "server_busy")
    assert value(after, "foxmq_connections_refused_total", 'reason="server_busy"') \
        - value(before, "foxmq_connections_refused_total", 'reason="server_busy"') == 1
    assert value(after, "foxmq_connections") == 2


def test_metrics_queue_full_drops(broker_factory, raw_factory):
    """An offline session with --max-queued-messages 2 keeps 2 of 5 QoS 1 messages: 3 are
    counted as dropped for queue_full."""
    b = metrics_broker(broker_factory, max_queued_messages=2)
    away, _ = offline_session_with_messages(b, raw_factory, "full", 5)
    after = wait_metrics(b.metrics_port, lambda t: value(t, "foxmq_messages_dropped_total", 'reason="queue_full"') >= 3
                         and value(t, "foxmq_messages_queued") == 2, "3 queue_full drops, 2 queued")
    time.sleep(0.5)
    _, after = scrape(b.metrics_port)
    assert value(after, "foxmq_messages_dropped_total", 'reason="queue_full"') == 3
    back = raw_factory(b, V5)
    assert back.connect(away, clean=False, props={P_SESSION_EXPIRY: 300}).session_present
    assert [back.expect(PUBLISH).payload for _ in range(2)] == [b"0", b"1"]


def test_metrics_slow_subscriber_drops(broker_factory):
    """A QoS 0 subscriber that never reads, with --max-outbound-buffer 4096: once its socket is
    full the QoS 0 messages are dropped and counted as slow_subscriber; every message is either
    sent or dropped."""
    b = metrics_broker(broker_factory, "--max-outbound-buffer", "4096")
    _, before = scrape(b.metrics_port)
    sub = RawClient(b, V5)
    sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sub.connect(uid())
    sub.send(subscribe_packet(1, [("slow/#", 0)]))
    assert sub.expect(SUBACK).reason_codes == [0]
    pub = PahoClient(b)
    pub.connect()
    count, payload = 120, b"s" * 128 * 1024  # 15 MiB: more than the socket buffers hold
    try:
        for _ in range(count):
            pub.publish("slow/x", payload, qos=1)  # acknowledged once routed
        key = ("foxmq_messages_dropped_total", 'reason="slow_subscriber"')
        after = wait_metrics(b.metrics_port, lambda t: value(t, *key) > value(before, *key), "slow_subscriber drops")
        dropped = value(after, *key) - value(before, *key)
        sent = value(after, "foxmq_messages_sent_total", 'qos="0"') - value(before, "foxmq_messages_sent_total", 'qos="0"')
        assert dropped + sent == count, f"{dropped} dropped + {sent} sent != {count} published"
    finally:
        pub.disconnect()
        sub.close()


def test_sys_interval_zero_publishes_no_sys_topics(broker_factory, raw_factory):
    """--sys-interval 0 turns $SYS off: a $SYS/# subscriber gets nothing (neither retained nor
    live), while --sys-interval 1 gives it $SYS/broker/version and $SYS/broker/uptime at once."""
    off = broker_factory(extra_args=["--sys-interval", "0"])
    on = broker_factory(extra_args=["--sys-interval", "1"])
    watchers = {}
    for name, b in (("off", off), ("on", on)):
        w = raw_factory(b, V5)
        w.connect(uid())
        w.subscribe("$SYS/#", qos=0)
        watchers[name] = w
    seen: dict[str, bytes] = {}
    deadline = time.monotonic() + 5
    while not {"$SYS/broker/version", "$SYS/broker/uptime"} <= seen.keys():
        assert time.monotonic() < deadline, f"--sys-interval 1: $SYS topics missing: {sorted(seen)}"
        p = watchers["on"].recv(1)
        if p is not None and p.type == PUBLISH:
            seen[p.topic] = p.payload
    assert seen["$SYS/broker/version"].startswith(b"foxmq ")
    watchers["off"].expect_nothing(3.0)
    late = raw_factory(off, V5)
    late.connect(uid())
    late.subscribe("$SYS/#", qos=0)
    late.expect_nothing(0.5)


# --------------------------------------------------------------------------
# metrics added with the per-type byte counters
# --------------------------------------------------------------------------


def test_metrics_bytes_by_type(broker_factory):
    """foxmq_bytes_{received,sent}_total carry a type label, like foxmq_packets_*_total: each
    type's series moves by exactly the bytes of the packets of that type (fixed header included)
    the clients wrote and read, and the sum over the types is every byte (no unlabelled total)."""
    b = metrics_broker(broker_factory)
    _, before = scrape(b.metrics_port)
    pub, sub = deliver_every_qos(b)
    wrote, read = pub.bytes_out + sub.bytes_out, pub.bytes_in + sub.bytes_in
    after = wait_metrics(b.metrics_port, lambda t: total(t, "foxmq_bytes_received_total")
                         - total(before, "foxmq_bytes_received_total") >= wrote
                         and total(t, "foxmq_bytes_sent_total") - total(before, "foxmq_bytes_sent_total") >= read,
                         "the bytes counted")
    for name in ("foxmq_bytes_received_total", "foxmq_bytes_sent_total"):
        assert not re.search(rf"^{name} ", after, re.M), f"{name} still has an unlabelled sample"
    clients = (pub, sub)
    for name, by_type in (("foxmq_bytes_received_total", lambda c: c.out_by_type),
                          ("foxmq_bytes_sent_total", lambda c: c.in_by_type)):
        expected = sum((by_type(c) for c in clients), collections.Counter())
        assert expected["publish"] > 0
        counted = {t: value(after, name, f'type="{t}"') - value(before, name, f'type="{t}"')
                   for t in ("connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe",
                             "suback", "disconnect")}
        assert counted == {t: expected.get(t, 0) for t in counted}, f"{name}: counted {counted}, sent {dict(expected)}"
    assert total(after, "foxmq_bytes_received_total") - total(before, "foxmq_bytes_received_total") == wrote
    assert total(after, "foxmq_bytes_sent_total") - total(before, "foxmq_bytes_sent_total") == read


def test_metrics_tls_refused(tmp_path):
    """A TLS handshake refused on --mqtts-addr counts in foxmq_connections_refused_total
    {reason="tls_handshake"}: plain MQTT sent to the TLS port, and a client certificate from
    another CA with --tls-client-ca; a valid client certificate is not counted."""
    from test_26_tls import Pki, TlsBroker, mqtt_over_tls
    pki = Pki(tmp_path)
    cert, key = pki.issue("server", "localhost", server=True)
    port = free_port()
    b = TlsBroker(tmp_path, cert, key, "--tls-client-ca", str(pki.ca_path), "--metrics-addr", f"127.0.0.1:{port}",
                  "--sys-interval", "0")
    key_ = ("foxmq_connections_refused_total", 'reason="tls_handshake"')
    try:
        wait_endpoint(port)
        time.sleep(0.5)
        _, before = scrape(port)

        plain = socket.create_connection(("127.0.0.1", b.mqtts_port), timeout=5)
        plain.sendall(connect_packet(uid()))
        try:
            data = plain.recv(64)
        except OSError:
            data = b""
        plain.close()
        assert not data.startswith(b"\x20"), "plain MQTT got a CONNACK on the TLS port"
        after = wait_metrics(port, lambda t: value(t, *key_) - value(before, *key_) >= 1, "plain MQTT on the TLS port")
        # A TCP connect-and-close (a health check, a port scan) was refused nothing.
        for _ in range(3):
            socket.create_connection(("127.0.0.1", b.mqtts_port), timeout=5).close()
        good = pki.issue("client", "alice")
        assert mqtt_over_tls(b.mqtts_port, pki.ca_path, cert=good) == (0, "")
        other = Pki(tmp_path, "other").issue("stranger", "alice")
        assert mqtt_over_tls(b.mqtts_port, pki.ca_path, cert=other)[0] is None
        after = wait_metrics(port, lambda t: value(t, *key_) - value(before, *key_) >= 2, "another CA's certificate")
        time.sleep(0.5)
        _, after = scrape(port)
        assert value(after, *key_) - value(before, *key_) == 2, \
            "a valid handshake or a bare TCP close counted, or a refusal counted twice"
    finally:
        b.close()


def test_metrics_store_sync_and_log_size(broker_factory, raw_factory):
    """A durable node (the default: DIR/data, --durability sync) times each store sync
    (foxmq_store_sync_seconds, a histogram) and exports the log's size: foxmq_log_entries and
    foxmq_log_bytes, which grow with QoS 1 publishes."""
    b = metrics_broker(broker_factory)
    _, before = scrape(b.metrics_port)
    assert re.search(r"^# TYPE foxmq_store_sync_seconds histogram", before, re.M), "foxmq_store_sync_seconds"
    for name in ("foxmq_log_entries", "foxmq_log_bytes"):
        assert re.search(rf"^# TYPE {name} gauge", before, re.M), f"{name} is not a gauge"
    c = raw_factory(b, V5)
    c.connect(uid())
    for i in range(5):  # 15 KB: more than the log's first 4 KiB page
        assert c.publish("durable/x", b"x" * 3000, qos=1).reason == 0x10  # no subscriber, stored anyway
    after = wait_metrics(b.metrics_port, lambda t: value(t, "foxmq_store_sync_seconds_count")
                         > value(before, "foxmq_store_sync_seconds_count")
                         and value(t, "foxmq_log_entries") > value(before, "foxmq_log_entries")
                         and value(t, "foxmq_log_bytes") > value(before, "foxmq_log_bytes"),
                         "store syncs timed, the log's entries and bytes grown")
    assert value(after, "foxmq_log_entries") >= 6, "a connect and 5 publishes at least"
    assert value(after, "foxmq_log_bytes") >= 5 * 3000, "the 5 payloads at least"
    assert value(after, "foxmq_store_sync_seconds_sum") > 0


def test_a_small_pending_bound_holds_publishers_and_loses_nothing(broker_factory, raw_factory):
    """With --max-pending-bytes 65536, publishers that write faster than the store syncs find the
    orderer busy: their connections are held unread, each hold counted in
    foxmq_orderer_busy_total, and nothing is lost: every QoS 1 message is acknowledged once and
    delivered once, in each publisher's order."""
    b = metrics_broker(broker_factory, "--max-pending-bytes", "65536")
    sub = raw_factory(b, V5)
    sub.connect(uid())
    sub.subscribe("load/#", qos=1)
    publishers = [raw_factory(b, V5) for _ in range(3)]
    for p in publishers:
        p.connect(uid())
    count, payload = 150, b"x" * 16384
    for n in range(1, count + 1):
        for i, p in enumerate(publishers):
            p.send(publish_packet(f"load/{i}", payload + n.to_bytes(4, "big"), qos=1, packet_id=n))
    seen: dict[str, list[int]] = collections.defaultdict(list)
    for _ in range(count * len(publishers)):
        pkt = sub.expect(PUBLISH, timeout=30)
        seen[pkt.topic].append(int.from_bytes(pkt.payload[-4:], "big"))
        sub.ack(pkt)
    sub.expect_nothing(0.3)
    assert {topic: numbers for topic, numbers in seen.items()} \
        == {f"load/{i}": list(range(1, count + 1)) for i in range(len(publishers))}
    for p in publishers:
        acks = [p.expect(PUBACK, timeout=30) for _ in range(count)]
        assert [a.packet_id for a in acks] == list(range(1, count + 1))
        assert all(a.reason in (0, None) for a in acks)
    _, text = scrape(b.metrics_port)
    assert value(text, "foxmq_orderer_busy_total") >= 1
