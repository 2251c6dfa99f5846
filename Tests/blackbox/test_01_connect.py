"""CONNECT / CONNACK, client identifiers, takeover, keep alive, protocol errors."""

import time

import pytest

from conftest import (
    CONNACK, DISCONNECT, IS_FOXMQ, assert_reason, PINGRESP, PUBLISH, V311, V5, PINGREQ_BYTES,
    P_ASSIGNED_CLIENT_ID, P_MAXIMUM_PACKET_SIZE, P_MAXIMUM_QOS, P_RECEIVE_MAXIMUM, P_RETAIN_AVAILABLE,
    P_SERVER_KEEP_ALIVE, P_SHARED_SUB_AVAILABLE, P_SUB_ID_AVAILABLE, P_TOPIC_ALIAS_MAXIMUM,
    P_WILDCARD_SUB_AVAILABLE, connect_packet, publish_packet, uid,
)


def test_clean_start_has_no_session_present(raw, proto):
    """A clean-start connection with a new client id gets Session Present 0 and reason 0.
    MQTT 5.0 §3.2.2.1.1 [MQTT-3.2.2-2]; 3.1.1 §3.2.2.2 [MQTT-3.2.2-1]."""
    c = raw(proto)
    ack = c.connect(uid(), clean=True)
    assert ack.reason == 0
    assert ack.session_present is False


def test_session_present_on_resume(raw, proto):
    """Reconnecting with Clean Start/Clean Session 0 to an existing session sets Session Present 1;
    a later clean connection resets it.  MQTT 5.0 §3.2.2.1.1 [MQTT-3.2.2-3]; 3.1.1 §3.2.2.2 [MQTT-3.2.2-2]."""
    cid = uid()
    props = {0x11: 300} if proto == V5 else None
    c = raw(proto)
    assert c.connect(cid, clean=False, props=props).session_present is False
    c.subscribe("resume/t", qos=1)
    c.disconnect()
    c2 = raw(proto)
    assert c2.connect(cid, clean=False, props=props).session_present is True
    c2.disconnect()
    c3 = raw(proto)
    assert c3.connect(cid, clean=True, props=props).session_present is False


def test_v5_assigned_client_identifier(raw):
    """An empty client id on 5.0 is accepted and the CONNACK carries an Assigned Client Identifier
    (property 0x12) that is non-empty.  MQTT 5.0 §3.1.3.1 [MQTT-3.1.3-6/7], §3.2.2.3.7."""
    c = raw(V5)
    ack = c.connect("", clean=True)
    assert ack.reason == 0
    assigned = ack.props.get(P_ASSIGNED_CLIENT_ID)
    assert assigned, f"no Assigned Client Identifier in {ack!r}"
    # Two anonymous-id clients get different identifiers.
    c2 = raw(V5)
    ack2 = c2.connect("", clean=True)
    assert ack2.props.get(P_ASSIGNED_CLIENT_ID) not in (None, assigned)
    # Both stay connected (no takeover).
    assert c.is_open() and c2.is_open()


def test_v311_empty_client_id_with_clean_session_accepted(raw):
    """3.1.1: a zero-length client id with CleanSession=1 is accepted (return code 0x00).
    MQTT 3.1.1 §3.1.3.1 [MQTT-3.1.3-6]."""
    c = raw(V311)
    ack = c.connect("", clean=True)
    assert ack.reason == 0
    assert c.is_open()


def test_v311_empty_client_id_without_clean_session_rejected(raw):
    """3.1.1: a zero-length client id with CleanSession=0 gets CONNACK return code 0x02
    (identifier rejected) and the connection is closed.  MQTT 3.1.1 §3.1.3.1 [MQTT-3.1.3-8]."""
    c = raw(V311)
    ack = c.connect("", clean=False, expect_ok=False)
    assert ack.reason == 0x02
    assert ack.session_present is False
    c.wait_closed()


def test_session_takeover(raw, proto):
    """A second connection with the same client id takes over: the old 5.0 connection gets DISCONNECT
    0x8E (Session taken over) then is closed; the old 3.1.1 connection is closed; the new one works.
    MQTT 5.0 §3.1.4 [MQTT-3.1.4-3], §3.14.2.1; 3.1.1 §3.1.4 [MQTT-3.1.4-2]."""
    cid = uid()
    old = raw(proto)
    old.connect(cid)
    new = raw(proto)
    new.connect(cid)
    reason = old.disconnect_reason_or_close()
    if proto == V5 and IS_FOXMQ:
        assert reason == 0x8E
    else:
        # §4.13: sending the DISCONNECT is a MAY (Mosquitto 2.0.11 just closes).
        assert reason in (None, 0x8E) if proto == V5 else reason is None
    new.subscribe("takeover/t")
    new.publish("takeover/t", b"x")
    pkt = new.expect(PUBLISH)
    assert pkt.payload == b"x"


def _server_keepalive(ack, requested):
    return ack.props.get(P_SERVER_KEEP_ALIVE, requested)


def test_a_client_without_keep_alive_gets_a_server_keep_alive(raw):
    """By default (--max-keep-alive 65535, as Mosquitto's max_keepalive) a 5.0 client that asks for
    no keep alive (0) gets Server Keep Alive 65535, so no connection may stay silent for ever; a
    client asking for a keep alive within the maximum gets no Server Keep Alive (its own holds).
    MQTT 5.0 §3.2.2.3.14 [MQTT-3.2.2-21]."""
    c = raw(V5)
    ack = c.connect(uid(), keepalive=0)
    assert ack.props.get(P_SERVER_KEEP_ALIVE) == 65535, ack.props
    d = raw(V5)
    ack = d.connect(uid(), keepalive=30)
    assert P_SERVER_KEEP_ALIVE not in ack.props, ack.props


def test_keepalive_timeout_disconnects_and_publishes_will(raw, paho_factory, proto):
    """A client that sends nothing for more than 1.5 x Keep Alive is disconnected, and the
    disconnection counts as abnormal so its Will is published.
    MQTT 5.0 §3.1.2.10 [MQTT-3.1.2-22], §3.1.2.5; 3.1.1 §3.1.2.10 [MQTT-3.1.2-24], §3.1.2.5."""
    watcher = paho_factory(proto=proto)
    watcher.connect()
    watcher.subscribe("ka/will", 1)
    c = raw(proto)
    start = time.monotonic()
    ack = c.connect(uid(), keepalive=1, will={"topic": "ka/will", "payload": b"gone", "qos": 1})
    ka = _server_keepalive(ack, 1)
    assert 1 <= ka <= 2, f"server keep alive {ka} unusable for this test"
    # Mosquitto only checks keep alives every ~5 s, so it gets more slack.
    grace = 2.0 if IS_FOXMQ else 6.0
    seen = c.wait_closed(timeout=1.5 * ka + grace)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.9 * ka, f"closed too early ({elapsed:.2f}s) for keep alive {ka}"
    assert all(p.type == DISCONNECT for p in seen) and len(seen) <= 1, f"unexpected {seen}"
    # FoxMQ must send DISCONNECT 0x8D (Keep Alive timeout) to a 5.0 client before closing, and
    # just close a 3.1.1 one; Mosquitto closes silently (or sends 0x8D).
    assert_reason(seen[0].reason if seen else None, proto, 0x8D)
    msg = watcher.get()
    assert msg.topic == "ka/will" and msg.payload == b"gone"


def test_pingreq_keeps_connection_alive(raw, proto):
    """PINGREQ is answered with PINGRESP and keeps a keepalive=1 connection open past 1.5 s.
    MQTT 5.0 §3.12.4 [MQTT-3.12.4-1], §3.1.2.10; 3.1.1 §3.12.4."""
    c = raw(proto)
    c.connect(uid(), keepalive=1)
    for _ in range(5):
        c.send(PINGREQ_BYTES)
        assert c.expect(PINGRESP).type == PINGRESP
        time.sleep(0.5)
    assert c.is_open()


def test_v5_connack_properties_are_valid(raw):
    """Capability properties in a 5.0 CONNACK are well-formed: Receive Maximum > 0, Maximum Packet Size > 0,
    booleans 0/1, Maximum QoS (if present) is 0 or 1.  MQTT 5.0 §3.2.2.3."""
    c = raw(V5)
    ack = c.connect(uid())
    p = ack.props
    if P_RECEIVE_MAXIMUM in p:
        assert p[P_RECEIVE_MAXIMUM] > 0
    if P_MAXIMUM_PACKET_SIZE in p:
        assert p[P_MAXIMUM_PACKET_SIZE] > 0
    if P_MAXIMUM_QOS in p:
        assert p[P_MAXIMUM_QOS] in (0, 1)
    for prop in (P_RETAIN_AVAILABLE, P_WILDCARD_SUB_AVAILABLE, P_SUB_ID_AVAILABLE, P_SHARED_SUB_AVAILABLE):
        if prop in p:
            assert p[prop] in (0, 1)


@pytest.mark.foxmq_only
def test_v5_connack_capabilities_default(raw):
    """FoxMQ's default CONNACK announces Receive Maximum 1024, Topic Alias Maximum 1024, Maximum Packet
    Size 1048576; retain, wildcard, shared and subscription-identifier support are available (absent or 1)
    and Maximum QoS is absent (QoS 2 supported).  MQTT 5.0 §3.2.2.3.3-§3.2.2.3.13."""
    c = raw(V5)
    ack = c.connect(uid())
    p = ack.props
    assert p.get(P_RECEIVE_MAXIMUM) == 1024
    assert p.get(P_TOPIC_ALIAS_MAXIMUM) == 1024
    assert p.get(P_MAXIMUM_PACKET_SIZE) == 1048576
    assert P_MAXIMUM_QOS not in p
    for prop in (P_RETAIN_AVAILABLE, P_WILDCARD_SUB_AVAILABLE, P_SUB_ID_AVAILABLE, P_SHARED_SUB_AVAILABLE):
        assert p.get(prop, 1) == 1, f"property 0x{prop:02x} = {p.get(prop)}"


def test_v5_connack_capabilities_follow_limits_flags(broker_factory, raw_factory):
    """--receive-maximum, --topic-alias-maximum and --max-packet-size are announced in CONNACK.
    MQTT 5.0 §3.2.2.3.3 (Receive Maximum), §3.2.2.3.6 (Maximum Packet Size), §3.2.2.3.8 (Topic Alias Maximum)."""
    b = broker_factory(receive_maximum=7, topic_alias_maximum=5, max_packet_size=4096)
    c = raw_factory(b, V5)
    p = c.connect(uid()).props
    assert p.get(P_RECEIVE_MAXIMUM) == 7
    assert p.get(P_TOPIC_ALIAS_MAXIMUM) == 5
    assert p.get(P_MAXIMUM_PACKET_SIZE) == 4096


def test_second_connect_is_protocol_error(raw, proto):
    """A second CONNECT on the same connection is a Protocol Error: 5.0 DISCONNECT 0x82 then close;
    3.1.1 close.  MQTT 5.0 §3.1 [MQTT-3.1.0-2], §4.13; 3.1.1 §3.1 [MQTT-3.1.0-2]."""
    c = raw(proto)
    cid = uid()
    c.connect(cid)
    c.try_send(connect_packet(cid, version=proto))
    reason = c.disconnect_reason_or_close()
    if proto == V5 and IS_FOXMQ:
        assert reason == 0x82
    else:
        assert reason in (None, 0x82)


def test_publish_before_connect_closes(raw, proto):
    """The first packet must be CONNECT; a PUBLISH first makes the server close the connection
    without a CONNACK.  MQTT 5.0 §4.13 / §3.1 [MQTT-3.1.0-1]; 3.1.1 §3.1 [MQTT-3.1.0-1]."""
    c = raw(proto)
    c.send(publish_packet("early/t", b"x", version=proto))
    seen = c.wait_closed()
    assert not any(p.type == CONNACK for p in seen), seen


def test_unsupported_protocol_level(raw):
    """CONNECT with protocol level 6: CONNACK 0x84 (5.0 format) or 0x01 (3.1.1 format), then close.
    MQTT 5.0 §3.1.2.2 [MQTT-3.1.2-2]; 3.1.1 §3.1.2.2 [MQTT-3.1.2-2]."""
    c = raw(V311)  # parse as 3.1.1: the CONNACK's first two bytes are the same in both formats
    c.send(connect_packet(uid(), version=6))
    seen = c.wait_closed()
    connacks = [p for p in seen if p.type == CONNACK]
    assert connacks, f"no CONNACK before close: {seen}"
    assert connacks[0].reason in (0x84, 0x01)


def test_invalid_protocol_name_closes(raw):
    """A CONNECT whose protocol name is not "MQTT" must not be accepted: the server closes the
    connection (optionally after CONNACK 0x84/0x01).  MQTT 5.0 §3.1.2.1 [MQTT-3.1.2-1]; 3.1.1 §3.1.2.1."""
    c = raw(V5)
    c.send(connect_packet(uid(), version=V5, protocol_name="MQTX"))
    seen = c.wait_closed()
    for p in seen:
        assert p.type == CONNACK and p.reason != 0, seen
