"""MQTT over WebSocket (--websockets --websockets-addr)."""

import base64
import os
import socket
import struct

import pytest

from conftest import (
    TIMEOUT, V311, V5, WS_PATH, CONNACK, PUBLISH, Packet, PahoClient, connect_packet, publish_packet,
    subscribe_packet, uid,
)


@pytest.fixture
def ws_broker(broker_factory):
    return broker_factory(websockets=True)


def _pair(ws_broker, proto, sub_transport, pub_transport):
    sub = PahoClient(ws_broker, proto=proto, transport=sub_transport)
    pub = PahoClient(ws_broker, proto=proto, transport=pub_transport)
    sub.connect()
    pub.connect()
    return sub, pub


@pytest.mark.parametrize("direction", ["ws-to-tcp", "tcp-to-ws", "ws-to-ws"])
def test_websocket_pubsub(ws_broker, proto, direction):
    """Messages flow between WebSocket and TCP clients in both directions at QoS 0-2, with retained
    messages shared across transports.  MQTT 5.0 §6 [MQTT-6.0.0-1..4]; 3.1.1 §6."""
    pub_t, sub_t = {"ws-to-tcp": ("websockets", "tcp"), "tcp-to-ws": ("tcp", "websockets"),
                    "ws-to-ws": ("websockets", "websockets")}[direction]
    sub, pub = _pair(ws_broker, proto, sub_t, pub_t)
    try:
        assert sub.subscribe("ws/t", 2) == [2]
        for qos in (0, 1, 2):
            pub.publish("ws/t", f"q{qos}", qos=qos)
            msg = sub.get()
            assert (msg.topic, msg.payload, msg.qos) == ("ws/t", f"q{qos}".encode(), qos)
        pub.publish("ws/ret", b"R" * 5000, qos=1, retain=True)  # several WS frames worth of data
        sub.subscribe("ws/ret", 1)
        msg = sub.get()
        assert msg.payload == b"R" * 5000 and msg.retain
    finally:
        sub.disconnect()
        pub.disconnect()


# ---- raw WebSocket (RFC 6455) -----------------------------------------------------------------------

def _ws_connect(port, protocols="mqtt"):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocols}\r\n\r\n")
    s.sendall(req.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, f"closed during handshake: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return s, head.decode(errors="replace"), rest


def _ws_send(s, payload, opcode=0x2):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _ws_recv_exact(s, buf, n):
    while len(buf) < n:
        chunk = s.recv(65536)
        assert chunk, "websocket closed"
        buf += chunk
    return buf[:n], buf[n:]


def _ws_recv_frame(s, buf):
    hdr, buf = _ws_recv_exact(s, buf, 2)
    opcode, n = hdr[0] & 0x0F, hdr[1] & 0x7F
    assert not hdr[1] & 0x80, "server frames must not be masked (RFC 6455 §5.1)"
    if n == 126:
        ext, buf = _ws_recv_exact(s, buf, 2)
        n = struct.unpack("!H", ext)[0]
    elif n == 127:
        ext, buf = _ws_recv_exact(s, buf, 8)
        n = struct.unpack("!Q", ext)[0]
    payload, buf = _ws_recv_exact(s, buf, n)
    return opcode, payload, buf


def _ws_mqtt_packets(s, buf, count, version):
    """Read ``count`` MQTT packets from binary frames (a packet may span frames)."""
    data = b""
    out = []
    while len(out) < count:
        opcode, payload, buf = _ws_recv_frame(s, buf)
        assert opcode in (0x0, 0x2), f"MQTT must be carried in binary frames, got opcode {opcode}"
        data += payload
        while len(data) >= 2:
            mult, length, i = 1, 0, 1
            while True:
                b = data[i]
                length += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
            if len(data) < i + length:
                break
            out.append(Packet.parse(data[0], data[i:i + length], version))
            data = data[i + length:]
    return out, buf


def test_raw_websocket_handshake_and_mqtt(ws_broker):
    """The WebSocket upgrade answers 101 with Sec-WebSocket-Protocol: mqtt; MQTT packets travel in binary
    frames, and a CONNECT split across two frames is reassembled.  MQTT 5.0 §6 [MQTT-6.0.0-1, -2, -3, -4];
    RFC 6455 §4.2.2."""
    s, head, buf = _ws_connect(ws_broker.ws_port)
    try:
        status = head.split("\r\n")[0]
        assert " 101 " in status + " ", head
        headers = {line.split(":", 1)[0].strip().lower(): line.split(":", 1)[1].strip()
                   for line in head.split("\r\n")[1:] if ":" in line}
        assert headers.get("sec-websocket-protocol", "").lower() == "mqtt", head
        pkt = connect_packet(uid(), version=V5)
        _ws_send(s, pkt[:5])
        _ws_send(s, pkt[5:])
        (ack,), buf = _ws_mqtt_packets(s, buf, 1, V5)
        assert ack.type == CONNACK and ack.reason == 0
        _ws_send(s, subscribe_packet(1, [("rawws/t", 0)]))
        _ws_send(s, publish_packet("rawws/t", b"over ws"))
        pkts, buf = _ws_mqtt_packets(s, buf, 2, V5)
        assert [p.type for p in pkts] == [9, PUBLISH]
        assert pkts[1].payload == b"over ws"
    finally:
        s.close()


def _closed_after(s, buf=b"", timeout=TIMEOUT) -> bool:
    """Whether the server closes the socket (reading out anything it sends first)."""
    s.settimeout(timeout)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except (socket.timeout, TimeoutError):
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


@pytest.mark.foxmq_only
def test_websocket_upgrade_with_another_subprotocol_is_refused(ws_broker):
    """A client that offers only subprotocols other than mqtt is not upgraded (no 101), and the
    broker keeps serving.  MQTT 5.0 §6 [MQTT-6.0.0-3]; RFC 6455 §4.2.2."""
    s, head, _ = _ws_connect(ws_broker.ws_port, protocols="chat")
    try:
        assert " 101 " not in head.split("\r\n")[0] + " ", head
    finally:
        s.close()
    check = PahoClient(ws_broker, transport="websockets")
    assert check.connect()[0] == 0
    check.disconnect()


@pytest.mark.foxmq_only
def test_plain_http_on_the_websocket_port_is_refused(ws_broker):
    """A plain HTTP request (no upgrade) gets an HTTP error and the connection ends."""
    s = socket.create_connection(("127.0.0.1", ws_broker.ws_port), timeout=TIMEOUT)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = s.recv(4096)
        assert data.startswith(b"HTTP/1.1 4"), data
    finally:
        s.close()


@pytest.mark.foxmq_only
def test_text_frames_and_bad_mqtt_inside_websocket_end_the_connection(ws_broker):
    """MQTT travels in binary frames only: a text frame closes the connection [MQTT-6.0.0-1]; so
    does a malformed MQTT packet inside a binary frame; neither hurts the broker."""
    for payload, opcode in ((connect_packet(uid(), version=V5), 0x1), (b"\x00\x03abc", 0x2)):
        s, head, buf = _ws_connect(ws_broker.ws_port)
        try:
            assert " 101 " in head.split("\r\n")[0] + " ", head
            _ws_send(s, payload, opcode=opcode)
            assert _closed_after(s), f"opcode {opcode}: still open"
        finally:
            s.close()
    check = PahoClient(ws_broker, transport="websockets")
    assert check.connect()[0] == 0
    check.disconnect()
