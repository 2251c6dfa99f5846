"""Hostile and malformed input: the broker closes the offending connection and keeps serving others."""

import random
import threading
import time

import pytest

from conftest import (
    IS_FOXMQ, PUBLISH, P_MAXIMUM_PACKET_SIZE, SUBACK, V311, V5,
    assert_reason, check_broker_serves, connect_packet, enc_str, enc_varint, fixed, publish_packet, subscribe_packet, uid,
)

_rng = random.Random(1883)

GARBAGE = {
    "reserved-type-0": b"\x00\x00",
    "auth-before-connect": b"\xf0\x00",
    "varint-too-long": b"\x10\xff\xff\xff\xff\x01",
    "publish-before-connect": b"\x30\x05" + bytes(_rng.getrandbits(8) for _ in range(400)),
    "connect-garbage-body": b"\x10\x0c" + bytes(_rng.getrandbits(8) for _ in range(12)),
    "http-request": b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: x\r\n\r\n" + b"A" * 200,
    "random": bytes([0x20]) + bytes(_rng.getrandbits(8) for _ in range(1000)),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_garbage_closes_connection(broker, raw, name):
    """Bytes that are not a valid CONNECT make the broker close the connection without CONNACK, and the
    broker still serves a fresh client.  MQTT 5.0 §4.13 [MQTT-4.13.1-1], §3.1 [MQTT-3.1.0-1];
    3.1.1 §4.8, §3.1 [MQTT-3.1.0-1]."""
    c = raw(V5)
    c.try_send(GARBAGE[name])
    seen = c.wait_closed()
    assert not any(p.type == 2 and p.reason == 0 for p in seen), seen
    check_broker_serves(broker)


def test_garbage_after_connect_closes_connection(broker, raw, proto):
    """Garbage after a successful CONNECT (reserved packet type 0) closes the connection
    (5.0: optionally after DISCONNECT 0x81/0x82).  MQTT 5.0 §2.1.2, §4.13; 3.1.1 §2.2.1, §4.8."""
    c = raw(proto)
    c.connect(uid())
    c.try_send(b"\x00\x03abc")
    assert_reason(c.disconnect_reason_or_close(), proto, 0x81, (0x82,))
    check_broker_serves(broker, proto)


def test_truncated_packets_then_close(broker, raw):
    """Half a CONNECT, or half a PUBLISH after CONNECT, followed by a close does not disturb the broker.
    MQTT 5.0 §4.2 (network connections), §4.13."""
    pkt = connect_packet(uid())
    c = raw(V5)
    c.send(pkt[: len(pkt) // 2])
    c.close()
    c2 = raw(V5)
    c2.connect(uid())
    p = publish_packet("trunc/t", b"x" * 1000, qos=1, packet_id=1)
    c2.send(p[:500])
    c2.close()
    c3 = raw(V311)
    c3.send(b"\x10")  # just the first byte
    c3.close()
    time.sleep(0.2)
    check_broker_serves(broker)


def test_oversized_packet(broker_factory, raw_factory, proto):
    """A packet larger than the server's maximum packet size (1024 here) gets DISCONNECT 0x95 (Packet
    too large) on 5.0 or a close on 3.1.1, and the broker keeps serving.
    MQTT 5.0 §3.2.2.3.6 (Maximum Packet Size), §4.13 (0x95); 3.1.1 §4.8."""
    b = broker_factory(max_packet_size=1024)
    c = raw_factory(b, proto)
    ack = c.connect(uid())
    if proto == V5 and IS_FOXMQ:
        assert ack.props.get(P_MAXIMUM_PACKET_SIZE) == 1024
    c.try_send(publish_packet("big/t", b"x" * 4000, qos=1, packet_id=1, version=proto))
    reason = c.disconnect_reason_or_close()
    if proto == V5 and IS_FOXMQ:
        assert reason == 0x95
    else:
        assert reason in (None, 0x95)
    check_broker_serves(b, proto)


def test_server_respects_client_maximum_packet_size(raw, paho_factory):
    """The server does not send a PUBLISH larger than the client's Maximum Packet Size (200): it is
    discarded for that client, smaller ones still arrive.  MQTT 5.0 §3.1.2.11.4 [MQTT-3.1.2-24, -25]."""
    c = raw(V5)
    c.connect(uid(), props={P_MAXIMUM_PACKET_SIZE: 200})
    c.subscribe("mps/#", qos=1)
    pub = paho_factory()
    pub.connect()
    pub.publish("mps/big", b"B" * 1000, qos=1)
    pub.publish("mps/small", b"s", qos=1)
    p = c.expect(PUBLISH)
    assert p.topic == "mps/small" and p.payload == b"s"
    c.ack(p)
    c.expect_nothing()


@pytest.mark.parametrize("topic", [b"bad/\xff\xfe", b"bad/\xc0\xaf", b"bad/\x00null", b"bad/\xed\xa0\x80"],
                         ids=["ff-fe", "overlong", "nul", "surrogate"])
def test_invalid_utf8_topic(broker, raw, proto, topic):
    """A PUBLISH whose topic is not well-formed UTF-8 (or contains U+0000) is a Malformed Packet: 5.0
    DISCONNECT 0x81 (or close), 3.1.1 close; the broker keeps serving.
    MQTT 5.0 §1.5.4 [MQTT-1.5.4-1, -2], §4.13; 3.1.1 §1.5.3 [MQTT-1.5.3-1, -2]."""
    c = raw(proto)
    c.connect(uid())
    c.subscribe("bad/#", qos=0)
    c.try_send(publish_packet(topic, b"x", version=proto))
    seen = c.wait_closed()
    assert not any(p.type == PUBLISH for p in seen), seen
    discs = [p.reason for p in seen if p.type == 14]
    if proto == V5 and IS_FOXMQ:
        assert discs == [0x81]
    else:
        assert discs in ([], [0x81])
    check_broker_serves(broker, proto)


def test_invalid_utf8_in_subscribe_filter(broker, raw, proto):
    """A SUBSCRIBE filter with invalid UTF-8 is malformed: the connection is closed (no SUBACK granting it).
    MQTT 5.0 §1.5.4 [MQTT-1.5.4-1]; 3.1.1 §1.5.3 [MQTT-1.5.3-1]."""
    c = raw(proto)
    c.connect(uid())
    c.try_send(subscribe_packet(1, [(b"bad/\xff", 0)], version=proto))
    seen = c.wait_closed()
    assert not any(p.type == SUBACK and p.reason_codes[0] < 0x80 for p in seen), seen
    check_broker_serves(broker, proto)


def test_wildcard_in_publish_topic(broker, raw, proto):
    """A PUBLISH Topic Name must not contain wildcards: 5.0 DISCONNECT 0x90 (Topic Name invalid) or close;
    3.1.1 close.  MQTT 5.0 §3.3.2.1 [MQTT-3.3.2-2]; 3.1.1 §3.3.2.1 [MQTT-3.3.2-2]."""
    c = raw(proto)
    c.connect(uid())
    c.try_send(publish_packet("wild/+/x", b"x", version=proto))
    assert_reason(c.disconnect_reason_or_close(), proto, 0x90, (0x82, 0x81))
    check_broker_serves(broker, proto)


def test_qos3_publish_is_malformed(broker, raw, proto):
    """A PUBLISH with both QoS bits set (QoS 3) is malformed: the connection is closed.
    MQTT 5.0 §3.3.1.2 [MQTT-3.3.1-4]; 3.1.1 §3.3.1.2 [MQTT-3.3.1-4]."""
    c = raw(proto)
    c.connect(uid())
    body = enc_str("q3/t") + b"\x00\x01" + (b"\x00" if proto == V5 else b"") + b"x"
    c.try_send(fixed(3, 0x06, body))
    assert_reason(c.disconnect_reason_or_close(), proto, 0x81, (0x82,))
    check_broker_serves(broker, proto)


def test_subscribe_with_wrong_fixed_header_flags(broker, raw, proto):
    """SUBSCRIBE fixed-header flags must be 0b0010; other values are malformed: close.
    MQTT 5.0 §3.8.1 [MQTT-3.8.1-1]; 3.1.1 §3.8.1 [MQTT-3.8.1-1]."""
    c = raw(proto)
    c.connect(uid())
    good = subscribe_packet(1, [("flags/t", 0)], version=proto)
    c.try_send(bytes([0x80]) + good[1:])
    seen = c.wait_closed()
    assert not any(p.type == SUBACK for p in seen), seen
    check_broker_serves(broker, proto)


def test_subscribe_without_filters_is_protocol_error(broker, raw, proto):
    """A SUBSCRIBE with no topic filter is a Protocol Error: close.
    MQTT 5.0 §3.8.3 [MQTT-3.8.3-2]; 3.1.1 §3.8.3 [MQTT-3.8.3-3]."""
    c = raw(proto)
    c.connect(uid())
    c.try_send(subscribe_packet(1, [], version=proto))
    seen = c.wait_closed()
    assert not any(p.type == SUBACK for p in seen), seen
    check_broker_serves(broker, proto)


def test_connect_reserved_flag_is_malformed(broker, raw, proto):
    """The reserved bit 0 of the CONNECT flags must be 0; otherwise the connection is closed without a
    successful CONNACK.  MQTT 5.0 §3.1.2.3 [MQTT-3.1.2-3]; 3.1.1 §3.1.2.3 [MQTT-3.1.2-3]."""
    c = raw(proto)
    pkt = bytearray(connect_packet(uid(), version=proto))
    pkt[9] |= 0x01  # fixed(2) + "MQTT"(6) + level(1) -> flags byte
    c.try_send(bytes(pkt))
    seen = c.wait_closed()
    assert not any(p.type == 2 and p.reason == 0 for p in seen), seen
    check_broker_serves(broker, proto)


def test_packet_identifier_zero_is_protocol_error(broker, raw, proto):
    """A QoS 1 PUBLISH with Packet Identifier 0 is a Protocol Error: close (5.0 optionally DISCONNECT).
    MQTT 5.0 §2.2.1 [MQTT-2.2.1-3]; 3.1.1 §2.3.1 [MQTT-2.3.1-1]."""
    c = raw(proto)
    c.connect(uid())
    c.try_send(publish_packet("pid0/t", b"x", qos=1, packet_id=0, version=proto))
    assert_reason(c.disconnect_reason_or_close(), proto, 0x82, (0x81,))
    check_broker_serves(broker, proto)


def _deep(levels: int) -> str:
    return "/".join(["l"] * levels)


def test_10000_level_topic_publish(broker, raw, proto):
    """A PUBLISH to a 10,000-level topic is refused (5.0 DISCONNECT 0x90 or close; 3.1.1 close) and the
    broker survives (no stack exhaustion).  MQTT 5.0 §3.3.2.1, §4.13; 3.1.1 §4.8."""
    c = raw(proto)
    c.connect(uid())
    c.subscribe("#", qos=0)
    c.try_send(publish_packet(_deep(10000), b"x", qos=1, packet_id=1, version=proto))
    seen = c.wait_closed()
    assert not any(p.type == PUBLISH for p in seen), seen
    discs = [p.reason for p in seen if p.type == 14]
    assert discs in ([], [0x90], [0x81], [0x82], [0x95])
    check_broker_serves(broker, proto)


def test_10000_level_subscribe_filter(broker, raw, proto):
    """A SUBSCRIBE with a 10,000-level filter is refused: SUBACK failure code, or disconnect.
    MQTT 5.0 §3.9.3, §4.13; 3.1.1 §3.9.3, §4.8."""
    c = raw(proto)
    c.connect(uid())
    c.try_send(subscribe_packet(1, [(_deep(10000) + "/#", 0)], version=proto))
    pkt = c.recv()
    if pkt is not None and pkt.type == SUBACK:
        assert pkt.reason_codes[0] >= 0x80, pkt
        assert c.is_open()
    else:
        c.wait_closed()
    check_broker_serves(broker, proto)


def _closed_within(c, timeout):
    t0 = time.monotonic()
    c.wait_closed(timeout)
    return time.monotonic() - t0


@pytest.mark.foxmq_only
def test_slow_connect_times_out(broker_factory, raw_factory):
    """A client dribbling its CONNECT one byte per second is closed by --connect-timeout 2 within ~3 s
    (slowloris protection).  MQTT 5.0 §4.2 (server may close idle connections before CONNECT);
    3.1.1 §3.1 ("a Server SHOULD close a connection that does not send CONNECT in reasonable time")."""
    b = broker_factory(connect_timeout=2)
    c = raw_factory(b, V5)
    data = connect_packet(uid(), keepalive=60)
    stop = threading.Event()

    def dribble():
        for byte in data:
            if stop.is_set() or not c.try_send(bytes([byte])):
                return
            time.sleep(1.0)

    t = threading.Thread(target=dribble, daemon=True)
    t0 = time.monotonic()
    t.start()
    try:
        seen = c.wait_closed(8)
    finally:
        stop.set()
    elapsed = time.monotonic() - t0
    assert not any(p.type == 2 for p in seen), seen
    assert 1.5 <= elapsed <= 7, f"closed after {elapsed:.2f}s"
    check_broker_serves(b)


@pytest.mark.foxmq_only
def test_silent_socket_times_out(broker_factory, raw_factory):
    """A TCP connection that never sends anything is closed after --connect-timeout (2 s).
    MQTT 5.0 §4.2; 3.1.1 §3.1."""
    b = broker_factory(connect_timeout=2)
    c = raw_factory(b, V5)
    t0 = time.monotonic()
    c.wait_closed(8)
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed <= 7, f"closed after {elapsed:.2f}s"
    check_broker_serves(b)


def test_many_bad_clients_in_parallel(broker, raw):
    """A burst of 30 misbehaving connections (garbage, truncation, silence-then-close) does not stop the
    broker from serving.  MQTT 5.0 §4.13; 3.1.1 §4.8."""
    clients = []
    for i in range(30):
        c = raw(V5)
        clients.append(c)
        kind = i % 3
        if kind == 0:
            c.try_send(GARBAGE["random"][: 50 + i])
        elif kind == 1:
            c.try_send(connect_packet(uid())[:7])
    for c in clients:
        c.close()
    time.sleep(0.2)
    check_broker_serves(broker)
