"""MQTT 5.0 topic aliases (both directions) and message expiry."""

import time

import pytest

from conftest import (
    IS_FOXMQ, PUBLISH, P_MESSAGE_EXPIRY, P_SESSION_EXPIRY, P_TOPIC_ALIAS, P_TOPIC_ALIAS_MAXIMUM, V5,
    props_for, publish_packet, uid,
)
from paho.mqtt.packettypes import PacketTypes


def _alias_max(ack) -> int:
    """The broker's Topic Alias Maximum. FoxMQ and Mosquitto both announce one (FoxMQ 1024 by
    default): a broker without one fails these tests instead of skipping them."""
    m = ack.props.get(P_TOPIC_ALIAS_MAXIMUM, 0)
    assert m > 0, f"broker announces no Topic Alias Maximum: {ack!r}"
    return m


def test_client_to_server_topic_alias(raw, paho_factory):
    """A PUBLISH with Topic Alias + topic sets the mapping; later PUBLISHes with the alias and an empty
    topic are delivered to subscribers under the full topic name; an alias can be re-mapped.
    MQTT 5.0 §3.3.2.3.4 [MQTT-3.3.2-12], §3.3.4 (alias not forwarded)."""
    sub = paho_factory()
    sub.connect()
    sub.subscribe("ta/#", 1)
    c = raw(V5)
    _alias_max(c.connect(uid()))
    c.publish("ta/long/topic/name", b"1", qos=1, props={P_TOPIC_ALIAS: 1})
    c.publish("", b"2", qos=1, props={P_TOPIC_ALIAS: 1})
    c.publish("ta/other", b"3", qos=1, props={P_TOPIC_ALIAS: 1})  # re-map alias 1
    c.publish("", b"4", qos=0, props={P_TOPIC_ALIAS: 1})
    got = [(m.topic, m.payload) for m in sub.get_n(4)]
    assert got == [("ta/long/topic/name", b"1"), ("ta/long/topic/name", b"2"),
                   ("ta/other", b"3"), ("ta/other", b"4")]


def test_topic_alias_above_maximum_disconnects(raw):
    """A Topic Alias greater than the server's Topic Alias Maximum is a Topic Alias invalid error:
    DISCONNECT 0x94 then close.  MQTT 5.0 §3.3.2.3.4 [MQTT-3.3.2-9, -10]."""
    c = raw(V5)
    m = _alias_max(c.connect(uid()))
    c.try_send(publish_packet("ta/x", b"x", props={P_TOPIC_ALIAS: m + 1}))
    assert c.disconnect_reason_or_close() == 0x94


def test_topic_alias_zero_disconnects(raw):
    """Topic Alias 0 is not permitted: the server disconnects with an error reason (0x94 Topic Alias
    invalid; 0x82/0x81 tolerated, Mosquitto uses 0x81).  MQTT 5.0 §3.3.2.3.4 [MQTT-3.3.2-8]."""
    c = raw(V5)
    _alias_max(c.connect(uid()))
    c.try_send(publish_packet("ta/x", b"x", props={P_TOPIC_ALIAS: 0}))
    assert c.disconnect_reason_or_close() in (0x94, 0x82, 0x81)


def test_unknown_topic_alias_is_protocol_error(raw):
    """An empty topic with an alias that has no mapping is a Protocol Error: DISCONNECT 0x82 then close.
    MQTT 5.0 §3.3.4 / §3.3.2.3.4."""
    c = raw(V5)
    _alias_max(c.connect(uid()))
    c.try_send(publish_packet("", b"x", props={P_TOPIC_ALIAS: 1}))
    assert c.disconnect_reason_or_close() == 0x82


def test_topic_alias_mapping_is_per_connection(raw):
    """Topic alias mappings do not survive the connection: after reconnect an alias-only PUBLISH is a
    Protocol Error.  MQTT 5.0 §3.3.2.3.4 [MQTT-3.3.2-7]."""
    cid = uid()
    c = raw(V5)
    _alias_max(c.connect(cid, props={P_SESSION_EXPIRY: 60}))
    c.publish("ta/conn", b"x", qos=1, props={P_TOPIC_ALIAS: 1})
    c.disconnect()
    c2 = raw(V5)
    c2.connect(cid, clean=False, props={P_SESSION_EXPIRY: 60})
    c2.try_send(publish_packet("", b"y", props={P_TOPIC_ALIAS: 1}))
    assert c2.disconnect_reason_or_close() == 0x82


def _check_server_aliases(pkts, topic, maximum):
    """Validate server->client alias use; returns the resolved topics."""
    mapping = {}
    resolved = []
    for p in pkts:
        alias = p.props.get(P_TOPIC_ALIAS)
        if alias is not None:
            assert 1 <= alias <= maximum, f"alias {alias} outside 1..{maximum}"
            if p.topic:
                mapping[alias] = p.topic
            else:
                assert alias in mapping, f"alias {alias} used before being set: {p!r}"
        else:
            assert p.topic, f"empty topic without alias: {p!r}"
        resolved.append(p.topic or mapping[alias])
    return resolved


def test_server_to_client_topic_alias(raw, paho_factory):
    """When the client announces Topic Alias Maximum 5 the server may use aliases (1..5) towards it; the
    first PUBLISH on a topic carries the topic name, later ones may carry only the alias, and the
    mapping is consistent.  MQTT 5.0 §3.1.2.11.5 [MQTT-3.1.2-26], §3.3.2.3.4 [MQTT-3.3.2-11]."""
    c = raw(V5)
    c.connect(uid(), props={P_TOPIC_ALIAS_MAXIMUM: 5})
    c.subscribe("tas/#", qos=0)
    pub = paho_factory()
    pub.connect()
    topics = ["tas/a/very/long/topic/name", "tas/a/very/long/topic/name", "tas/b", "tas/a/very/long/topic/name"]
    for t in topics:
        pub.publish(t, "x", qos=1)
    pkts = [c.expect(PUBLISH) for _ in topics]
    assert pkts[0].topic == topics[0]
    assert _check_server_aliases(pkts, topics[0], 5) == topics
    if IS_FOXMQ:
        # FoxMQ does use them: alias 1 defined with the first topic, then the alias alone.
        assert [p.props.get(P_TOPIC_ALIAS) for p in pkts] == [1, 1, 2, 1]
        assert [p.topic for p in pkts] == [topics[0], "", "tas/b", ""]


def test_no_server_alias_without_client_maximum(raw, paho_factory):
    """A client that announces no Topic Alias Maximum (0) never receives a Topic Alias.
    MQTT 5.0 §3.1.2.11.5 [MQTT-3.1.2-27]."""
    c = raw(V5)
    c.connect(uid())
    c.subscribe("tan/#", qos=0)
    pub = paho_factory()
    pub.connect()
    for _ in range(3):
        pub.publish("tan/same/topic", "x", qos=1)
    for _ in range(3):
        p = c.expect(PUBLISH)
        assert p.topic == "tan/same/topic"
        assert P_TOPIC_ALIAS not in p.props


def test_message_expiry_interval_forwarded_and_decremented(paho_factory):
    """The Message Expiry Interval is forwarded with the remaining lifetime (<= original): immediately for
    a live subscriber, reduced by the time waited for a retained message.
    MQTT 5.0 §3.3.2.3.3 [MQTT-3.3.2-6]."""
    sub = paho_factory()
    sub.connect()
    sub.subscribe("exp/live", 1)
    pub = paho_factory()
    pub.connect()
    pub.publish("exp/live", "x", qos=1, props=props_for(PacketTypes.PUBLISH, MessageExpiryInterval=60))
    live = sub.get()
    assert 58 <= live.properties.MessageExpiryInterval <= 60
    pub.publish("exp/ret", "r", qos=1, retain=True,
                props=props_for(PacketTypes.PUBLISH, MessageExpiryInterval=30))
    time.sleep(2.1)
    late = paho_factory()
    late.connect()
    late.subscribe("exp/ret", 1)
    msg = late.get()
    assert msg.payload == b"r"
    assert 1 <= msg.properties.MessageExpiryInterval <= 28


def test_no_expiry_property_when_not_set(paho_factory):
    """A message published without Message Expiry Interval is delivered without one.
    MQTT 5.0 §3.3.2.3.3."""
    sub = paho_factory()
    sub.connect()
    sub.subscribe("exp/none", 1)
    pub = paho_factory()
    pub.connect()
    pub.publish("exp/none", "x", qos=1)
    assert getattr(sub.get().properties, "MessageExpiryInterval", None) is None


def test_expired_queued_message_not_delivered(raw, paho_factory):
    """A message queued for an offline session whose expiry interval passes is not delivered; a message
    without expiry published at the same time is.  MQTT 5.0 §3.3.2.3.3 [MQTT-3.3.2-5]."""
    cid = uid()
    c = raw(V5)
    c.connect(cid, props={P_SESSION_EXPIRY: 300})
    c.subscribe("exp/q", qos=1)
    c.disconnect()
    pub = paho_factory()
    pub.connect()
    pub.publish("exp/q", "short-lived", qos=1, props=props_for(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    pub.publish("exp/q", "durable", qos=1)
    time.sleep(2.2)
    c2 = raw(V5)
    assert c2.connect(cid, clean=False, props={P_SESSION_EXPIRY: 300}).session_present
    p = c2.expect(PUBLISH)
    assert p.payload == b"durable"
    c2.ack(p)
    c2.expect_nothing()


def test_expired_retained_message_not_delivered(paho_factory):
    """A retained message whose expiry interval has passed is no longer sent to new subscribers.
    MQTT 5.0 §3.3.2.3.3 [MQTT-3.3.2-5]."""
    pub = paho_factory()
    pub.connect()
    pub.publish("exp/retgone", "r", qos=1, retain=True,
                props=props_for(PacketTypes.PUBLISH, MessageExpiryInterval=1))
    time.sleep(2.2)
    sub = paho_factory()
    sub.connect()
    sub.subscribe("exp/retgone", 1)
    sub.expect_none()
