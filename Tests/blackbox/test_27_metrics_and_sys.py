"""Operator views (FoxMQ only): Prometheus metrics on ``--metrics-addr`` (``/metrics`` in the text
format, ``/healthz``), and the ``$SYS`` topics every ``--sys-interval`` seconds, retained, in
Mosquitto's layout; clients cannot publish under ``$SYS`` and ``#`` does not match it.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

import pytest

from conftest import P_MESSAGE_EXPIRY, P_SESSION_EXPIRY, PUBACK, V5, free_port, uid

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


@pytest.fixture
def observed(broker_factory):
    port = free_port()
    b = broker_factory(extra_args=["--metrics-addr", f"127.0.0.1:{port}", "--sys-interval", "1"])
    deadline = time.monotonic() + 10
    while True:
        try:
            scrape(port)
            break
        except OSError:
            assert time.monotonic() < deadline, "metrics endpoint not up"
            time.sleep(0.1)
    b.metrics_port = port
    return b


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
    assert value(after, "foxmq_bytes_received_total") > value(before, "foxmq_bytes_received_total")
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
