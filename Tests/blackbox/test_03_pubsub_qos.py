"""Publish/subscribe: QoS 0/1/2 in both directions, ordering, wildcards, $-topics, overlapping
subscriptions, UNSUBACK, invalid filters, PUBLISH properties passthrough."""

import time

import pytest

from conftest import (
    IS_FOXMQ, QUIET, PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, SUBACK, UNSUBACK, V311, V5,
    ack_packet, props_for, publish_packet, subscribe_packet, uid, unsubscribe_packet,
)
from paho.mqtt.packettypes import PacketTypes


@pytest.mark.parametrize("sub_qos", [0, 1, 2])
@pytest.mark.parametrize("pub_qos", [0, 1, 2])
def test_qos_delivery_matrix(client, proto, pub_qos, sub_qos):
    """A message published at QoS p to a subscription granted QoS s is delivered once at
    QoS min(p, s); SUBACK grants the requested QoS.
    MQTT 5.0 §3.8.4 [MQTT-3.8.4-8], §3.3.1.2 / §4.3; 3.1.1 §3.8.4 [MQTT-3.8.4-6], §4.3."""
    sub = client()
    assert sub.subscribe("qos/matrix", sub_qos) == [sub_qos]
    pub = client()
    pub.publish("qos/matrix", f"p{pub_qos}s{sub_qos}", qos=pub_qos)
    msg = sub.get()
    assert msg.topic == "qos/matrix"
    assert msg.payload == f"p{pub_qos}s{sub_qos}".encode()
    assert msg.qos == min(pub_qos, sub_qos)
    assert msg.retain is False
    sub.expect_none(0.3)


def test_qos1_puback_and_qos2_handshake(raw, proto):
    """The broker acknowledges a QoS 1 PUBLISH with PUBACK and a QoS 2 PUBLISH with PUBREC / PUBCOMP
    carrying the same Packet Identifier.  MQTT 5.0 §4.3.2 [MQTT-4.3.2-4], §4.3.3 [MQTT-4.3.3-8/11];
    3.1.1 §4.3.2, §4.3.3."""
    c = raw(proto)
    c.connect(uid())
    c.send(publish_packet("ack/t", b"1", qos=1, packet_id=321, version=proto))
    ack = c.expect(PUBACK)
    assert ack.packet_id == 321
    if proto == V5:
        assert ack.reason in (0x00, 0x10)  # success / no matching subscribers
    c.send(publish_packet("ack/t", b"2", qos=2, packet_id=654, version=proto))
    rec = c.expect(PUBREC)
    assert rec.packet_id == 654
    if proto == V5:
        assert rec.reason in (0x00, 0x10)
    c.send(ack_packet(PUBREL, 654, version=proto))
    comp = c.expect(PUBCOMP)
    assert comp.packet_id == 654 and comp.reason == 0


def test_qos2_duplicate_publish_delivered_once(raw, client, proto):
    """A QoS 2 PUBLISH re-sent with DUP=1 before PUBREL is not delivered twice (exactly once).
    MQTT 5.0 §4.3.3 [MQTT-4.3.3-10]; 3.1.1 §4.3.3 [MQTT-4.3.3-2]."""
    sub = client()
    sub.subscribe("exactly/once", 2)
    c = raw(proto)
    c.connect(uid())
    c.send(publish_packet("exactly/once", b"one", qos=2, packet_id=7, version=proto))
    assert c.expect(PUBREC).packet_id == 7
    c.send(publish_packet("exactly/once", b"one", qos=2, packet_id=7, dup=True, version=proto))
    assert c.expect(PUBREC).packet_id == 7
    c.send(ack_packet(PUBREL, 7, version=proto))
    assert c.expect(PUBCOMP).packet_id == 7
    msg = sub.get()
    assert msg.payload == b"one"
    sub.expect_none()


@pytest.mark.parametrize("qos", [1, 2])
def test_ordering_of_a_burst(client, proto, qos):
    """200 messages published in a burst by one publisher on one topic arrive in publish order.
    MQTT 5.0 §4.6 [MQTT-4.6.0-5/6]; 3.1.1 §4.6 [MQTT-4.6.0-5/6]."""
    sub = client()
    sub.subscribe("order/t", qos)
    pub = client()
    infos = [pub.publish("order/t", str(i), qos=qos, wait=False) for i in range(200)]
    msgs = sub.get_n(200, timeout=20)
    assert [int(m.payload) for m in msgs] == list(range(200))
    for info in infos:
        info.wait_for_publish(5)
        assert info.rc == 0 and info.is_published(), f"publish {info.mid} not completed (rc {info.rc})"
    sub.expect_none(0.3)


WILDCARD_FILTERS = {
    "sport/tennis/player1/#": {"sport/tennis/player1", "sport/tennis/player1/ranking",
                               "sport/tennis/player1/score/wimbledon"},
    "sport/#": {"sport", "sport/tennis/player1", "sport/tennis/player1/ranking",
                "sport/tennis/player1/score/wimbledon", "sport/", "sport/tennis"},
    "sport/tennis/+": {"sport/tennis/player1", "sport/tennis/player2"} & set(),  # filled below
    "sport/+": {"sport/", "sport/tennis"},
    "+/+": {"/finance", "sport/", "sport/tennis", "other/x"},
    "/+": {"/finance"},
    "+": {"sport"},
    "+/tennis/#": {"sport/tennis/player1", "sport/tennis/player1/ranking",
                   "sport/tennis/player1/score/wimbledon", "sport/tennis"},
}
WILDCARD_TOPICS = ["sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
                   "sport/tennis/player1/score/wimbledon", "/finance", "other/x"]
WILDCARD_FILTERS["sport/tennis/+"] = {"sport/tennis/player1"}
WILDCARD_FILTERS["#"] = set(WILDCARD_TOPICS)


def test_wildcard_matching(paho_factory, proto):
    """'+' matches exactly one level (including an empty one), '#' matches the parent and any
    number of child levels.  MQTT 5.0 §4.7.1.2-§4.7.1.3; 3.1.1 §4.7.1.2-§4.7.1.3."""
    subs = {}
    for f in WILDCARD_FILTERS:
        c = paho_factory(proto=proto)
        c.connect()
        assert c.subscribe(f, 1) == [1]
        subs[f] = c
    pub = paho_factory(proto=proto)
    pub.connect()
    for t in WILDCARD_TOPICS:
        pub.publish(t, t, qos=1)
    errors = []
    got_by_filter = {f: [m.topic for m in c.get_n(len(WILDCARD_FILTERS[f]))] for f, c in subs.items()}
    time.sleep(QUIET)  # give unexpected extra deliveries a chance to arrive
    for f, c in subs.items():
        expected = WILDCARD_FILTERS[f]
        got = got_by_filter[f] + [m.topic for m in c.drain(0.01)]
        if sorted(got) != sorted(expected):
            errors.append(f"{f!r}: expected {sorted(expected)}, got {sorted(got)}")
    assert not errors, "\n".join(errors)


def test_dollar_topics_not_matched_by_leading_wildcards(paho_factory, proto):
    """Topics starting with '$' are not matched by filters starting with '#' or '+', but are matched
    by a filter that starts with the same '$' level.  MQTT 5.0 §4.7.2 [MQTT-4.7.2-1]; 3.1.1 §4.7.2."""
    clients = {}
    for f in ("#", "+/x", "+/+", "$foo/#", "$foo/+"):
        c = paho_factory(proto=proto)
        c.connect()
        c.subscribe(f, 0)
        clients[f] = c
    pub = paho_factory(proto=proto)
    pub.connect()
    pub.publish("$foo/x", "dollar", qos=1)
    pub.publish("foo/x", "plain", qos=1)
    for f in ("$foo/#", "$foo/+"):
        msg = clients[f].get()
        assert (msg.topic, msg.payload) == ("$foo/x", b"dollar")
        clients[f].expect_none(0.2)
    for f in ("#", "+/x", "+/+"):
        msg = clients[f].get()
        assert (msg.topic, msg.payload) == ("foo/x", b"plain"), f"{f} received {msg.topic}"
        got = clients[f].drain(0.2)
        assert not got, f"{f!r} also received {[m.topic for m in got]}"


def test_overlapping_subscriptions(paho_factory, proto):
    """With overlapping subscriptions the client receives the message at least once at the highest
    granted QoS of the matching subscriptions; on 5.0 the Subscription Identifiers of all matching
    subscriptions are delivered (in one PUBLISH or across several).
    MQTT 5.0 §3.3.4 [MQTT-3.3.4-2..5], §3.8.2.1.2; 3.1.1 §3.3.5."""
    sub = paho_factory(proto=proto)
    sub.connect()
    if proto == V5:
        sub.subscribe("ov/#", 0, sub_id=1)
        sub.subscribe("ov/+", 2, sub_id=2)
    else:
        sub.subscribe("ov/#", 0)
        sub.subscribe("ov/+", 2)
    pub = paho_factory(proto=proto)
    pub.connect()
    pub.publish("ov/x", "o", qos=2)
    msgs = [sub.get()] + sub.drain(0.5)
    assert 1 <= len(msgs) <= 2
    assert all(m.payload == b"o" for m in msgs)
    assert max(m.qos for m in msgs) == 2
    if proto == V5:
        ids = set()
        for m in msgs:
            ids.update(getattr(m.properties, "SubscriptionIdentifier", []) or [])
        assert ids == {1, 2}


def test_unsuback_reason_codes_v5(raw):
    """UNSUBACK carries 0x00 for a removed subscription and 0x11 (No subscription existed) otherwise,
    one per filter in order; afterwards nothing is delivered.  MQTT 5.0 §3.11.3 [MQTT-3.11.3-1], §3.10.4."""
    c = raw(V5)
    c.connect(uid())
    c.subscribe("un/a", qos=1)
    c.send(unsubscribe_packet(9, ["un/a", "un/never"]))
    ack = c.expect(UNSUBACK)
    assert ack.packet_id == 9
    assert ack.reason_codes == [0x00, 0x11]
    c.send(unsubscribe_packet(10, ["un/a"]))
    assert c.expect(UNSUBACK).reason_codes == [0x11]
    c.publish("un/a", b"x", qos=1)
    c.expect_nothing()


def test_unsubscribe_stops_delivery(client, proto):
    """After UNSUBACK the server stops delivering to the removed filter; other subscriptions stay.
    MQTT 5.0 §3.10.4 [MQTT-3.10.4-2]; 3.1.1 §3.10.4 [MQTT-3.10.4-2], §3.11."""
    sub = client()
    sub.subscribe("us/a", 1)
    sub.subscribe("us/b", 1)
    rcs = sub.unsubscribe("us/a")
    if proto == V5:
        assert rcs == [0]
    pub = client()
    pub.publish("us/a", "a", qos=1)
    pub.publish("us/b", "b", qos=1)
    msg = sub.get()
    assert msg.topic == "us/b"
    sub.expect_none(0.3)


@pytest.mark.parametrize("bad_filter,suback_required", [
    ("a/#/b", True), ("a/b#", True), ("a+/b", True),
    ("", True),  # zero-length: [MQTT-4.7.3-1]; FoxMQ answers 0x8F in the slot, others may close
], ids=["hash-middle", "hash-suffix", "plus-prefix", "empty"])
def test_invalid_topic_filter_rejected(raw, proto, bad_filter, suback_required):
    """An invalid Topic Filter is never granted: SUBACK 0x8F (Topic Filter invalid) or 0x80 on 5.0,
    0x80 on 3.1.1 (FoxMQ answers wildcard misuse with a SUBACK and keeps the connection; closing the
    connection is tolerated for other brokers and for the zero-length filter).
    MQTT 5.0 §4.7.1, §4.7.3 [MQTT-4.7.3-1], §3.9.3; 3.1.1 §4.7.1 [MQTT-4.7.1-2/3], §4.7.3, §3.9.3."""
    c = raw(proto)
    c.connect(uid())
    c.send(subscribe_packet(5, [(bad_filter, 1), ("ok/topic", 1)], version=proto))
    pkt = c.recv()
    if pkt is None or pkt.type != SUBACK:
        assert not (IS_FOXMQ and suback_required), f"expected SUBACK, got {pkt!r}"
        if pkt is not None:
            assert pkt.type == 14 and pkt.reason in (0x81, 0x82, 0x8F), pkt
        c.wait_closed()
        return
    assert pkt.packet_id == 5
    assert pkt.reason_codes[0] in ((0x8F, 0x80) if proto == V5 else (0x80,))
    assert pkt.reason_codes[1] == 1
    c.publish("ok/topic", b"fine", qos=1)
    assert c.expect(PUBLISH).payload == b"fine"


def test_publish_properties_passthrough(paho_factory):
    """Request/response and metadata properties reach the subscriber unchanged: Response Topic,
    Correlation Data, User Properties (order kept), Payload Format Indicator, Content Type.
    MQTT 5.0 §3.3.2.3.2, §3.3.2.3.5-§3.3.2.3.7, §3.3.2.3.9 [MQTT-3.3.2-4, -15, -16, -17, -18, -20], §4.10."""
    sub = paho_factory()
    sub.connect()
    sub.subscribe("req/x", 1)
    pub = paho_factory()
    pub.connect()
    props = props_for(PacketTypes.PUBLISH, ResponseTopic="resp/x", CorrelationData=b"\x00\x01corr\xff",
                      UserProperty=[("k1", "v1"), ("k2", "v2"), ("k1", "v3")], PayloadFormatIndicator=1,
                      ContentType="application/json")
    pub.publish("req/x", '{"a":1}', qos=1, props=props)
    msg = sub.get()
    p = msg.properties
    assert msg.payload == b'{"a":1}'
    assert p.ResponseTopic == "resp/x"
    assert p.CorrelationData == b"\x00\x01corr\xff"
    assert p.UserProperty == [("k1", "v1"), ("k2", "v2"), ("k1", "v3")]
    assert p.PayloadFormatIndicator == 1
    assert p.ContentType == "application/json"


def test_request_response_roundtrip(paho_factory):
    """A responder uses the Response Topic and echoes the Correlation Data; the requester gets it.
    MQTT 5.0 §4.10."""
    responder = paho_factory()
    responder.connect()
    responder.subscribe("svc/echo", 1)
    requester = paho_factory()
    requester.connect()
    requester.subscribe("svc/reply/1", 1)
    requester.publish("svc/echo", "ping", qos=1,
                      props=props_for(PacketTypes.PUBLISH, ResponseTopic="svc/reply/1", CorrelationData=b"42"))
    req = responder.get()
    responder.publish(req.properties.ResponseTopic, b"pong:" + req.payload, qos=1,
                      props=props_for(PacketTypes.PUBLISH, CorrelationData=req.properties.CorrelationData))
    resp = requester.get()
    assert resp.topic == "svc/reply/1" and resp.payload == b"pong:ping"
    assert resp.properties.CorrelationData == b"42"


def test_v311_subscribe_multiple_filters_one_packet(raw):
    """One SUBSCRIBE with several filters gets one SUBACK with a return code per filter, in order.
    MQTT 3.1.1 §3.8.4 [MQTT-3.8.4-4/5], §3.9.3; MQTT 5.0 §3.9.3."""
    c = raw(V311)
    c.connect(uid())
    c.send(subscribe_packet(77, [("m/a", 0), ("m/b", 1), ("m/c", 2)], version=V311))
    ack = c.expect(SUBACK)
    assert ack.packet_id == 77
    assert ack.reason_codes == [0, 1, 2]


@pytest.mark.parametrize("qos", [0, 1])
def test_concurrent_publishers_one_order_for_every_subscriber(client, proto, qos):
    """Four publishers publish at once (their connections spread over the broker's network
    threads); three subscribers each receive every message in one and the same order, which keeps
    each publisher's order. The broker promises one order of publishes for all subscribers, and
    MQTT 5.0 §4.6 [MQTT-4.6.0-5/6] per-publisher order."""
    subs = [client() for _ in range(3)]
    for sub in subs:
        sub.subscribe("order/all", qos)
    pubs = [client() for _ in range(4)]
    count = 150
    infos = []
    for i in range(count):  # interleaved bursts: the four connections' packets race in the broker
        for p, pub in enumerate(pubs):
            infos.append(pub.publish("order/all", f"{p}:{i}", qos=qos, wait=False))
    received = [[m.payload.decode() for m in sub.get_n(count * len(pubs), timeout=30)] for sub in subs]
    assert received[1] == received[0]
    assert received[2] == received[0]
    for p in range(len(pubs)):
        assert [int(x.split(":")[1]) for x in received[0] if x.startswith(f"{p}:")] == list(range(count))
    for info in infos:
        info.wait_for_publish(5)
        assert info.rc == 0 and info.is_published(), f"publish {info.mid} not completed (rc {info.rc})"
