"""MQTT 5.0 shared subscriptions ($share/{ShareName}/{filter})."""

import time

import pytest

from conftest import IS_FOXMQ, QUIET, SUBACK, V5, subscribe_packet, uid


@pytest.fixture
def c5(paho_factory):
    def make():
        c = paho_factory(proto=V5)
        c.connect()
        return c
    return make


def _collect(clients, total, timeout=8.0):
    """Wait until ``total`` messages have arrived across ``clients``; then a quiet period."""
    deadline = time.monotonic() + timeout
    got = {id(c): [] for c in clients}
    while sum(len(v) for v in got.values()) < total and time.monotonic() < deadline:
        for c in clients:
            got[id(c)] += c.drain(0.02)
    time.sleep(QUIET)
    for c in clients:
        got[id(c)] += c.drain(0.01)
    return [got[id(c)] for c in clients]


def test_shared_subscription_distributes_messages(c5):
    """With two members of $share/g/topic, each of 20 messages goes to exactly one member and both get
    some; a non-shared subscriber on the same topic receives all 20.
    MQTT 5.0 §4.8, §4.8.2 (a message is sent to only one Session of each share group)."""
    m1, m2, plain = c5(), c5(), c5()
    assert m1.subscribe("$share/g/sh/t", 1) == [1]
    assert m2.subscribe("$share/g/sh/t", 1) == [1]
    assert plain.subscribe("sh/t", 1) == [1]
    pub = c5()
    for i in range(20):
        pub.publish("sh/t", str(i), qos=1)
    got1, got2, gotp = _collect([m1, m2, plain], 40)
    p1 = [int(m.payload) for m in got1]
    p2 = [int(m.payload) for m in got2]
    assert sorted(p1 + p2) == list(range(20)), f"member1={p1} member2={p2}"
    assert p1 and p2, f"one member got nothing: {p1} / {p2}"
    assert all(m.topic == "sh/t" for m in got1 + got2)
    assert sorted(int(m.payload) for m in gotp) == list(range(20))


def test_two_groups_each_get_every_message(c5):
    """Each share group receives every message once (independent groups).  MQTT 5.0 §4.8.2."""
    a1, a2, b1 = c5(), c5(), c5()
    assert a1.subscribe("$share/ga/grp/t", 1) == [1]
    assert a2.subscribe("$share/ga/grp/t", 1) == [1]
    assert b1.subscribe("$share/gb/grp/t", 1) == [1]
    pub = c5()
    for i in range(10):
        pub.publish("grp/t", str(i), qos=1)
    ga1, ga2, gb = _collect([a1, a2, b1], 20)
    assert sorted(int(m.payload) for m in ga1 + ga2) == list(range(10))
    assert sorted(int(m.payload) for m in gb) == list(range(10))


def test_shared_subscription_with_wildcard(c5):
    """A shared subscription filter may contain wildcards.  MQTT 5.0 §4.8.2."""
    m1, m2 = c5(), c5()
    assert m1.subscribe("$share/w/shw/#", 1) == [1]
    assert m2.subscribe("$share/w/shw/#", 1) == [1]
    pub = c5()
    topics = [f"shw/{i}/x" for i in range(6)]
    for t in topics:
        pub.publish(t, t, qos=1)
    g1, g2 = _collect([m1, m2], 6)
    assert sorted(m.topic for m in g1 + g2) == sorted(topics)


def test_unsubscribed_member_gets_nothing(c5):
    """After one member unsubscribes from the shared subscription, the remaining member gets all.
    MQTT 5.0 §4.8.2, §3.10.4."""
    m1, m2 = c5(), c5()
    assert m1.subscribe("$share/u/shu/t", 1) == [1]
    assert m2.subscribe("$share/u/shu/t", 1) == [1]
    m1.unsubscribe("$share/u/shu/t")
    pub = c5()
    for i in range(6):
        pub.publish("shu/t", str(i), qos=1)
    g1, g2 = _collect([m1, m2], 6)
    assert g1 == []
    assert sorted(int(m.payload) for m in g2) == list(range(6))


@pytest.mark.foxmq_only
def test_retained_not_sent_on_shared_subscribe(c5):
    """Retained messages are sent when a new *Non-shared* Subscription is made, not when a shared one
    is established.  MQTT 5.0 §3.3.1.3, §4.8.2.  (foxmq_only: Mosquitto 2.0.11 sends them.)"""
    pub = c5()
    pub.publish("shr/t", "ret", qos=1, retain=True)
    shared, plain = c5(), c5()
    assert shared.subscribe("$share/r/shr/t", 1) == [1]
    assert plain.subscribe("shr/t", 1) == [1]
    assert plain.get().payload == b"ret"
    shared.expect_none()


# Mosquitto 2.0.11 grants the first three (as ordinary filters), hence foxmq_only for those.
@pytest.mark.parametrize("bad", [
    pytest.param("$share/g", id="no-filter", marks=pytest.mark.foxmq_only),
    pytest.param("$share/g/", id="empty-filter", marks=pytest.mark.foxmq_only),
    pytest.param("$share//t", id="empty-name", marks=pytest.mark.foxmq_only),
    pytest.param("$share/g+/t", id="plus-name"),
    pytest.param("$share/g#/t", id="hash-name"),
])
def test_invalid_shared_filter_rejected(raw, bad):
    """A malformed shared subscription filter is never granted: SUBACK 0x8F/0x80/0x9E, or (for other
    brokers) the connection is closed.  MQTT 5.0 §4.8.2 [MQTT-4.8.2-1, -2]."""
    c = raw(V5)
    c.connect(uid())
    c.send(subscribe_packet(6, [(bad, 1)]))
    pkt = c.recv()
    if pkt is None or pkt.type != SUBACK:
        assert not IS_FOXMQ, f"expected SUBACK, got {pkt!r}"
        c.wait_closed()
        return
    assert pkt.reason_codes[0] >= 0x80, pkt
