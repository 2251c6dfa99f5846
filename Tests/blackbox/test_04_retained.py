"""Retained messages: set, replace, clear, delivery on subscribe, live delivery flag."""

import time

from conftest import QUIET


def test_retained_sent_on_subscribe(client, proto):
    """A retained message is stored and sent, with RETAIN=1, to a client that subscribes later.
    MQTT 5.0 §3.3.1.3 [MQTT-3.3.1-5, -9]; 3.1.1 §3.3.1.3 [MQTT-3.3.1-5, -8]."""
    pub = client()
    pub.publish("ret/a", "stored", qos=1, retain=True)
    sub = client()
    sub.subscribe("ret/a", 1)
    msg = sub.get()
    assert (msg.topic, msg.payload, msg.retain) == ("ret/a", b"stored", True)
    assert msg.qos == 1
    sub.expect_none(0.3)


def test_retained_replaced(client, proto):
    """A new retained message on the same topic replaces the previous one.
    MQTT 5.0 §3.3.1.3 [MQTT-3.3.1-5]; 3.1.1 §3.3.1.3 [MQTT-3.3.1-5]."""
    pub = client()
    pub.publish("ret/b", "first", qos=1, retain=True)
    pub.publish("ret/b", "second", qos=1, retain=True)
    sub = client()
    sub.subscribe("ret/b", 1)
    msg = sub.get()
    assert msg.payload == b"second" and msg.retain
    sub.expect_none(0.3)


def test_retained_cleared_by_empty_payload(client, proto):
    """A retained PUBLISH with an empty payload removes the retained message; nothing is sent to
    later subscribers.  MQTT 5.0 §3.3.1.3 [MQTT-3.3.1-6, -7]; 3.1.1 §3.3.1.3 [MQTT-3.3.1-10, -11]."""
    pub = client()
    pub.publish("ret/c", "doomed", qos=1, retain=True)
    witness = client()
    assert witness.subscribe("ret/c", 1) == [1]
    assert witness.get().payload == b"doomed", "the retained message was stored first"
    pub.publish("ret/c", b"", qos=1, retain=True)
    sub = client()
    assert sub.connected.is_set() and sub.c.is_connected(), "the later subscriber is connected"
    assert sub.subscribe("ret/c", 1) == [1]
    sub.expect_none()


def test_live_delivery_has_retain_flag_cleared(client, proto):
    """A retained PUBLISH delivered to an already-existing subscription has RETAIN=0 (3.1.1; 5.0 with
    Retain As Published = 0), while it is still stored for new subscribers.
    MQTT 5.0 §3.3.1.3 [MQTT-3.3.1-12]; 3.1.1 §3.3.1.3 [MQTT-3.3.1-9]."""
    sub = client()
    sub.subscribe("ret/live", 1)
    pub = client()
    pub.publish("ret/live", "now", qos=1, retain=True)
    msg = sub.get()
    assert msg.payload == b"now" and msg.retain is False
    late = client()
    late.subscribe("ret/live", 1)
    msg = late.get()
    assert msg.payload == b"now" and msg.retain is True


def test_retained_with_wildcard_subscription(client, proto):
    """A wildcard subscription receives every matching retained message, each with RETAIN=1, at
    min(stored QoS, granted QoS).  MQTT 5.0 §3.3.1.3, §3.8.4 [MQTT-3.8.4-4]; 3.1.1 §3.3.1.3, §3.8.4."""
    pub = client()
    pub.publish("retw/a", "A", qos=2, retain=True)
    pub.publish("retw/b/c", "BC", qos=1, retain=True)
    pub.publish("other/z", "Z", qos=1, retain=True)
    sub = client()
    sub.subscribe("retw/#", 1)
    msgs = sub.get_n(2)
    assert sorted((m.topic, m.payload, m.retain, m.qos) for m in msgs) == [
        ("retw/a", b"A", True, 1), ("retw/b/c", b"BC", True, 1)]
    sub.expect_none(0.3)


def test_retained_qos0_downgrade(client, proto):
    """A retained message stored at QoS 1 is sent at QoS 0 to a QoS 0 subscription.
    MQTT 5.0 §3.8.4 [MQTT-3.8.4-8]; 3.1.1 §3.8.4."""
    pub = client()
    pub.publish("ret/q", "x", qos=1, retain=True)
    sub = client()
    sub.subscribe("ret/q", 0)
    msg = sub.get()
    assert msg.qos == 0 and msg.retain


def test_resubscribe_resends_retained(client, proto):
    """Re-subscribing to the same filter replaces the subscription and re-sends the retained
    messages (5.0 with Retain Handling 0).  MQTT 5.0 §3.8.4 [MQTT-3.8.4-3], §3.8.3.1;
    3.1.1 §3.8.4 [MQTT-3.8.4-3]."""
    pub = client()
    pub.publish("ret/re", "again", qos=1, retain=True)
    sub = client()
    sub.subscribe("ret/re", 1)
    assert sub.get().payload == b"again"
    sub.subscribe("ret/re", 1)
    msg = sub.get()
    assert msg.payload == b"again" and msg.retain
    sub.expect_none(0.3)


def test_retained_survives_publisher_disconnect(client, proto):
    """The retained message belongs to the topic, not to the publisher's connection.
    MQTT 5.0 §3.3.1.3; 3.1.1 §3.3.1.3."""
    pub = client()
    pub.publish("ret/orphan", "kept", qos=1, retain=True)
    pub.disconnect()
    time.sleep(QUIET / 3)
    sub = client()
    sub.subscribe("ret/orphan", 0)
    assert sub.get().payload == b"kept"
