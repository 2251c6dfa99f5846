"""Session state: expiry, offline queueing, redelivery with DUP, QoS 2 state across reconnects."""

import time

from conftest import (
    PUBCOMP, PUBLISH, PUBREC, PUBREL, P_SESSION_EXPIRY, V311, V5,
    ack_packet, assert_reason, publish_packet, uid,
)


def _persistent(proto, expiry=300):
    """connect() kwargs for a session that outlives the connection."""
    return {"clean": False, "props": {P_SESSION_EXPIRY: expiry} if proto == V5 else None}


def test_v5_session_expiry_zero_discards_session(raw, client):
    """Session Expiry Interval 0 (the default): the session ends with the connection; reconnecting
    with Clean Start 0 gives Session Present 0 and no old subscriptions.
    MQTT 5.0 §3.1.2.11.2 [MQTT-3.1.2-23], §3.2.2.1.1."""
    cid = uid()
    c = raw(V5)
    c.connect(cid, clean=True)
    c.subscribe("se/zero", qos=1)
    c.disconnect()
    c2 = raw(V5)
    ack = c2.connect(cid, clean=False)
    assert ack.session_present is False
    pub = client(proto=V5)
    pub.publish("se/zero", "x", qos=1)
    c2.expect_nothing()


def test_v5_session_expiry_interval_elapses(raw):
    """With Session Expiry Interval 1 s the session survives a quick reconnect (Session Present 1)
    but is gone after the interval.  MQTT 5.0 §3.1.2.11.2 [MQTT-3.1.2-23], §4.1."""
    cid = uid()
    c = raw(V5)
    c.connect(cid, clean=True, props={P_SESSION_EXPIRY: 1})
    c.subscribe("se/short", qos=1)
    c.disconnect()
    c2 = raw(V5)
    assert c2.connect(cid, clean=False, props={P_SESSION_EXPIRY: 1}).session_present is True
    c2.disconnect()
    time.sleep(2.6)
    c3 = raw(V5)
    assert c3.connect(cid, clean=False, props={P_SESSION_EXPIRY: 1}).session_present is False


def test_v5_session_expiry_max_never_expires(raw):
    """Session Expiry Interval 0xFFFFFFFF: the session does not expire (still present after a pause).
    MQTT 5.0 §3.1.2.11.2."""
    cid = uid()
    c = raw(V5)
    c.connect(cid, clean=True, props={P_SESSION_EXPIRY: 0xFFFFFFFF})
    c.subscribe("se/forever", qos=1)
    c.disconnect()
    time.sleep(1.5)
    c2 = raw(V5)
    assert c2.connect(cid, clean=False, props={P_SESSION_EXPIRY: 0xFFFFFFFF}).session_present is True
    c2.publish("se/forever", b"still subscribed", qos=1)
    assert c2.expect(PUBLISH).payload == b"still subscribed"


def test_v5_disconnect_can_set_session_expiry_to_zero(raw):
    """A Session Expiry Interval of 0 sent in DISCONNECT ends the session at disconnection.
    MQTT 5.0 §3.14.2.2.2."""
    cid = uid()
    c = raw(V5)
    c.connect(cid, clean=True, props={P_SESSION_EXPIRY: 300})
    c.subscribe("se/dis", qos=1)
    c.disconnect(reason=0, props={P_SESSION_EXPIRY: 0})
    time.sleep(0.2)
    c2 = raw(V5)
    assert c2.connect(cid, clean=False, props={P_SESSION_EXPIRY: 300}).session_present is False


def test_v5_disconnect_cannot_raise_zero_session_expiry(raw):
    """DISCONNECT with a non-zero Session Expiry Interval after CONNECT with 0 is a Protocol Error
    (server answers DISCONNECT 0x82 or just closes); the session is not kept.
    MQTT 5.0 §3.14.2.2.2 [MQTT-3.14.2-2]."""
    cid = uid()
    c = raw(V5)
    c.connect(cid, clean=True)
    c.subscribe("se/raise", qos=1)
    c.send(b"\xe0\x07\x00\x05\x11\x00\x00\x01\x2c")  # DISCONNECT 0x00, Session Expiry 300
    assert_reason(c.disconnect_reason_or_close(), V5, 0x82)
    c2 = raw(V5)
    assert c2.connect(cid, clean=False).session_present is False


def test_clean_start_discards_existing_session(raw, proto):
    """Connecting with Clean Start / CleanSession 1 discards an existing session: its subscriptions
    are gone and a later resume reports Session Present 0.
    MQTT 5.0 §3.1.2.4 [MQTT-3.1.2-4]; 3.1.1 §3.1.2.4 [MQTT-3.1.2-6]."""
    cid = uid()
    c = raw(proto)
    c.connect(cid, **_persistent(proto))
    c.subscribe("cs/t", qos=1)
    c.disconnect()
    c2 = raw(proto)
    assert c2.connect(cid, clean=True).session_present is False
    c2.publish("cs/t", b"x", qos=1)
    c2.expect_nothing()
    c2.disconnect()
    c3 = raw(proto)
    assert c3.connect(cid, **_persistent(proto)).session_present is False


def test_persistent_session_keeps_subscriptions(raw, proto):
    """A persistent session (3.1.1 CleanSession 0; 5.0 Clean Start 0 + expiry) keeps its subscriptions
    across connections without re-subscribing.  MQTT 5.0 §4.1 [MQTT-4.1.0-1]; 3.1.1 §3.1.2.4, §4.1."""
    cid = uid()
    c = raw(proto)
    c.connect(cid, **_persistent(proto))
    c.subscribe("keep/#", qos=1)
    c.disconnect()
    c2 = raw(proto)
    assert c2.connect(cid, **_persistent(proto)).session_present is True
    c2.publish("keep/x", b"routed", qos=1)
    msg = c2.expect(PUBLISH)
    assert msg.topic == "keep/x" and msg.payload == b"routed"


def test_offline_messages_queued(raw, client, proto):
    """QoS 1 and 2 messages published while a persistent-session client is offline are delivered, in
    order, after it reconnects with Session Present 1.  MQTT 5.0 §4.1 [MQTT-4.1.0-1], §3.1.2.4;
    3.1.1 §3.1.2.4 [MQTT-3.1.2-5]."""
    cid = uid()
    c = raw(proto)
    c.connect(cid, **_persistent(proto))
    c.subscribe("offline/t", qos=2)
    c.disconnect()
    pub = client()
    for i in range(5):
        pub.publish("offline/t", f"m{i}", qos=1 + i % 2)
    c2 = raw(proto)
    assert c2.connect(cid, **_persistent(proto)).session_present is True
    got = []
    for _ in range(5):
        p = c2.expect(PUBLISH)
        got.append((p.payload, p.qos))
        c2.ack(p)
    assert got == [(f"m{i}".encode(), 1 + i % 2) for i in range(5)]
    c2.expect_nothing(0.3)


def test_qos1_redelivered_with_dup_after_reconnect(raw, client, proto):
    """An unacknowledged QoS 1 PUBLISH is re-sent after the session resumes, with DUP=1 and the
    original Packet Identifier.  MQTT 5.0 §4.4 [MQTT-4.4.0-1], §3.3.1.1 [MQTT-3.3.1-1];
    3.1.1 §4.4 [MQTT-4.4.0-1], §3.3.1.1."""
    cid = uid()
    c = raw(proto)
    c.connect(cid, **_persistent(proto))
    c.subscribe("redeliver/1", qos=1)
    pub = client()
    pub.publish("redeliver/1", "unacked", qos=1)
    first = c.expect(PUBLISH)
    assert first.qos == 1 and first.dup is False
    c.disconnect()  # without PUBACK
    c2 = raw(proto)
    assert c2.connect(cid, **_persistent(proto)).session_present is True
    again = c2.expect(PUBLISH)
    assert again.payload == b"unacked"
    assert again.dup is True
    assert again.qos == 1
    assert again.packet_id == first.packet_id
    c2.ack(again)
    c2.expect_nothing(0.3)


def test_qos2_publish_redelivered_with_dup_after_reconnect(raw, client, proto):
    """A QoS 2 PUBLISH for which no PUBREC was sent is re-sent with DUP=1 and the same Packet
    Identifier after reconnect; completing the flow then delivers nothing more.
    MQTT 5.0 §4.4 [MQTT-4.4.0-1], §4.3.3; 3.1.1 §4.4, §4.3.3."""
    cid = uid()
    c = raw(proto)
    c.connect(cid, **_persistent(proto))
    c.subscribe("redeliver/2", qos=2)
    pub = client()
    pub.publish("redeliver/2", "q2", qos=2)
    first = c.expect(PUBLISH)
    assert first.qos == 2
    c.disconnect()
    c2 = raw(proto)
    assert c2.connect(cid, **_persistent(proto)).session_present is True
    again = c2.expect(PUBLISH)
    assert (again.payload, again.dup, again.qos, again.packet_id) == (b"q2", True, 2, first.packet_id)
    c2.ack(again)
    c2.expect_nothing(0.3)


def test_qos2_pubrel_resent_after_reconnect(raw, client, proto):
    """After the client sent PUBREC, the server re-sends PUBREL (not the PUBLISH) on session resume
    when no PUBCOMP was received.  MQTT 5.0 §4.4 [MQTT-4.4.0-1], §4.3.3 [MQTT-4.3.3-4..6]; 3.1.1 §4.4."""
    cid = uid()
    c = raw(proto)
    c.connect(cid, **_persistent(proto))
    c.subscribe("redeliver/rel", qos=2)
    pub = client()
    pub.publish("redeliver/rel", "q2", qos=2)
    p = c.expect(PUBLISH)
    c.send(ack_packet(PUBREC, p.packet_id, version=proto))
    assert c.expect(PUBREL).packet_id == p.packet_id
    c.disconnect()  # without PUBCOMP
    c2 = raw(proto)
    assert c2.connect(cid, **_persistent(proto)).session_present is True
    rel = c2.expect(PUBREL)
    assert rel.packet_id == p.packet_id
    c2.send(ack_packet(PUBCOMP, p.packet_id, version=proto))
    c2.expect_nothing(0.3)


def test_inbound_qos2_state_survives_reconnect(raw, client, proto):
    """The server keeps inbound QoS 2 state in the session: a publisher that got PUBREC, reconnects and
    then sends PUBREL gets PUBCOMP, and the message is delivered exactly once.
    MQTT 5.0 §4.3.3 [MQTT-4.3.3-10/11], §4.4; 3.1.1 §4.3.3, §4.4."""
    sub = client()
    sub.subscribe("inbound/q2", 2)
    cid = uid()
    c = raw(proto)
    c.connect(cid, **_persistent(proto))
    c.send(publish_packet("inbound/q2", b"once", qos=2, packet_id=42, version=proto))
    assert c.expect(PUBREC).packet_id == 42
    c.disconnect()
    c2 = raw(proto)
    assert c2.connect(cid, **_persistent(proto)).session_present is True
    # a re-sent PUBLISH with DUP must not create a second copy
    c2.send(publish_packet("inbound/q2", b"once", qos=2, packet_id=42, dup=True, version=proto))
    assert c2.expect(PUBREC).packet_id == 42
    c2.send(ack_packet(PUBREL, 42, version=proto))
    assert c2.expect(PUBCOMP).packet_id == 42
    msgs = [sub.get()] + sub.drain(0.5)
    assert [m.payload for m in msgs] == [b"once"]


def test_v311_clean_session_zero_keeps_subscriptions_and_queue(raw, client):
    """3.1.1 CleanSession=0: subscriptions and QoS 1 messages received while offline survive;
    Session Present is 1 on resume.  MQTT 3.1.1 §3.1.2.4 [MQTT-3.1.2-4, -5], §3.2.2.2 [MQTT-3.2.2-2]."""
    cid = uid()
    c = raw(V311)
    assert c.connect(cid, clean=False).session_present is False
    c.subscribe("v311/keep", qos=1)
    c.disconnect()
    pub = client(proto=V311)
    pub.publish("v311/keep", "while away", qos=1)
    c2 = raw(V311)
    assert c2.connect(cid, clean=False).session_present is True
    p = c2.expect(PUBLISH)
    assert p.payload == b"while away"
    c2.ack(p)
    c2.publish("v311/keep", b"live", qos=1)
    assert c2.expect(PUBLISH).payload == b"live"
