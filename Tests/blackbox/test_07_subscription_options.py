"""MQTT 5.0 subscription options: No Local, Retain As Published, Retain Handling, Maximum QoS,
Subscription Identifiers."""

import pytest

from conftest import SUBACK, V5, subscribe_packet, uid


@pytest.fixture
def c5(paho_factory):
    def make():
        c = paho_factory(proto=V5)
        c.connect()
        return c
    return make


def test_no_local(c5):
    """With No Local=1 the server does not send a client its own publications; others' still arrive.
    MQTT 5.0 §3.8.3.1 [MQTT-3.8.3-3]."""
    a = c5()
    a.subscribe("nl/t", 1, no_local=True)
    a.publish("nl/t", "mine", qos=1)
    b = c5()
    b.publish("nl/t", "theirs", qos=1)
    msg = a.get()
    assert msg.payload == b"theirs"
    a.expect_none(0.3)


def test_without_no_local_own_messages_echo(c5):
    """Without No Local a client receives its own publications on matching subscriptions.
    MQTT 5.0 §3.8.3.1."""
    a = c5()
    a.subscribe("echo/t", 1)
    a.publish("echo/t", "mine", qos=1)
    assert a.get().payload == b"mine"


@pytest.mark.parametrize("rap", [True, False], ids=["rap1", "rap0"])
def test_retain_as_published(c5, rap):
    """Retain As Published=1 keeps RETAIN=1 on live delivery of a retained publish; =0 clears it.
    MQTT 5.0 §3.8.3.1 (bit 3), §3.3.1.3 [MQTT-3.3.1-12, -13]."""
    sub = c5()
    sub.subscribe("rap/t", 1, retain_as_published=rap)
    pub = c5()
    pub.publish("rap/t", "r", qos=1, retain=True)
    msg = sub.get()
    assert msg.payload == b"r"
    assert msg.retain is rap


def test_retain_handling_0_sends_on_every_subscribe(c5):
    """Retain Handling 0: retained messages are sent at subscribe time, also when re-subscribing.
    MQTT 5.0 §3.8.3.1 (bits 4-5), §3.3.1.3 [MQTT-3.3.1-9]."""
    pub = c5()
    pub.publish("rh0/t", "kept", qos=1, retain=True)
    sub = c5()
    sub.subscribe("rh0/t", 1, retain_handling=0)
    assert sub.get().retain is True
    sub.subscribe("rh0/t", 1, retain_handling=0)
    assert sub.get().payload == b"kept"


def test_retain_handling_1_sends_only_for_new_subscription(c5):
    """Retain Handling 1: retained messages are sent only if the subscription did not already exist.
    MQTT 5.0 §3.8.3.1, §3.3.1.3 [MQTT-3.3.1-10]."""
    pub = c5()
    pub.publish("rh1/t", "kept", qos=1, retain=True)
    sub = c5()
    sub.subscribe("rh1/t", 1, retain_handling=1)
    msg = sub.get()
    assert msg.payload == b"kept" and msg.retain is True
    sub.subscribe("rh1/t", 1, retain_handling=1)
    sub.expect_none()


def test_retain_handling_2_never_sends(c5):
    """Retain Handling 2: retained messages are not sent at subscribe time; live messages still arrive.
    MQTT 5.0 §3.8.3.1, §3.3.1.3 [MQTT-3.3.1-11]."""
    pub = c5()
    pub.publish("rh2/t", "kept", qos=1, retain=True)
    sub = c5()
    sub.subscribe("rh2/t", 1, retain_handling=2)
    sub.expect_none()
    pub.publish("rh2/t", "live", qos=1)
    assert sub.get().payload == b"live"


@pytest.mark.parametrize("sub_qos", [0, 1])
def test_maximum_qos_of_subscription(c5, sub_qos):
    """The subscription's Maximum QoS caps delivery: a QoS 2 publication is delivered at the granted QoS.
    MQTT 5.0 §3.8.3.1 (bits 0-1), §3.8.4 [MQTT-3.8.4-8]."""
    sub = c5()
    assert sub.subscribe("maxq/t", sub_qos) == [sub_qos]
    pub = c5()
    pub.publish("maxq/t", "q2", qos=2)
    assert sub.get().qos == sub_qos


def test_subscription_identifier_delivered(c5):
    """A Subscription Identifier given in SUBSCRIBE is returned in each matching PUBLISH; a subscription
    without one yields no identifier.  MQTT 5.0 §3.8.2.1.2, §3.3.2.3.8 [MQTT-3.3.4-3]."""
    sub = c5()
    sub.subscribe("sid/a", 1, sub_id=42)
    sub.subscribe("sid/b", 1)
    pub = c5()
    pub.publish("sid/a", "a", qos=1)
    pub.publish("sid/b", "b", qos=1)
    a, b = sub.get(), sub.get()
    assert a.topic == "sid/a" and a.properties.SubscriptionIdentifier == [42]
    assert b.topic == "sid/b" and not getattr(b.properties, "SubscriptionIdentifier", None)


def test_subscription_identifier_updated_on_resubscribe(c5):
    """Re-subscribing with a new Subscription Identifier replaces the old one.
    MQTT 5.0 §3.8.2.1.2, §3.8.4 [MQTT-3.8.4-3]."""
    sub = c5()
    sub.subscribe("sid/re", 1, sub_id=1)
    sub.subscribe("sid/re", 1, sub_id=268435455)  # largest Variable Byte Integer
    pub = c5()
    pub.publish("sid/re", "x", qos=1)
    assert sub.get().properties.SubscriptionIdentifier == [268435455]


def test_subscription_identifier_on_retained_delivery(c5):
    """Retained messages sent at subscribe time carry the Subscription Identifier too.
    MQTT 5.0 §3.8.2.1.2, §3.3.2.3.8."""
    pub = c5()
    pub.publish("sid/ret", "r", qos=1, retain=True)
    sub = c5()
    sub.subscribe("sid/ret", 1, sub_id=7)
    msg = sub.get()
    assert msg.retain is True
    assert msg.properties.SubscriptionIdentifier == [7]


def test_subscription_identifier_zero_is_protocol_error(raw):
    """A Subscription Identifier of 0 is a Protocol Error: DISCONNECT 0x82 or close (and no SUBACK
    granting it).  MQTT 5.0 §3.8.2.1.2 ("It is a Protocol Error if the Subscription Identifier has a
    value of 0")."""
    c = raw(V5)
    c.connect(uid())
    c.send(subscribe_packet(3, [("sid/zero", 1)], props={0x0B: 0}))
    seen = c.wait_closed()
    assert not any(p.type == SUBACK and p.reason_codes and p.reason_codes[0] < 0x80 for p in seen), seen


@pytest.mark.foxmq_only
def test_no_local_on_shared_subscription_is_protocol_error(raw):
    """No Local=1 on a Shared Subscription is a Protocol Error (FoxMQ: DISCONNECT 0x82 then close).
    MQTT 5.0 §3.8.3.1 [MQTT-3.8.3-4].  (foxmq_only: Mosquitto 2.0.11 grants it.)"""
    c = raw(V5)
    c.connect(uid())
    c.send(subscribe_packet(4, [("$share/g/nl", 0x04 | 1)]))
    seen = c.wait_closed()
    assert not any(p.type == SUBACK for p in seen), seen
    assert [p.reason for p in seen if p.type == 14] == [0x82]


def test_subscription_options_reserved_bits_malformed(raw):
    """Reserved bits 6-7 of the subscription options byte must be 0; otherwise Malformed Packet
    (close, optionally after DISCONNECT 0x81).  MQTT 5.0 §3.8.3.1 [MQTT-3.8.3-5]."""
    c = raw(V5)
    c.connect(uid())
    c.send(subscribe_packet(5, [("bits/t", 0xC1)]))
    seen = c.wait_closed()
    assert all(p.type == 14 and p.reason in (0x81, 0x82) for p in seen), seen
