"""Hostile floods cost the broker no more memory than the limits it announces allow (FoxMQ only).

Each test starts FoxMQ with small explicit limits, derives from them a bound on what the flood
may add to the broker's memory, warms the broker up, measures it (/proc/PID/status: VmRSS, and
VmHWM, the peak, reset to the current RSS just before the flood by writing 5 to
/proc/PID/clear_refs), runs one flood of hostile clients, measures again while they are still
connected and checks the growth (the peak, VmHWM, included) against the bound. Then the hostile
clients leave and a well-behaved client must still subscribe, publish and receive.

The floods (each test's docstring shows why a broker ignoring the limit would exceed the bound
by far):
  (a) slowloris inside packets: clients announce a CONNECT or PUBLISH of exactly
      --max-packet-size, send all of it but a few bytes and dribble one byte a second; and
      clients announce a 256 MiB PUBLISH (oversized remaining length) and push 12 MiB of it;
  (b) a subscriber with a tiny socket receive buffer that never reads, while 180 MiB of QoS 0,
      1 and 2 messages are published to it (--max-outbound-buffer, --max-inflight,
      --max-queued-messages);
  (c) QoS 2 PUBLISHes never released (no PUBREL), up to 8 x --receive-maximum per client;
  (d) 40 x --max-subscriptions-per-client long filters per client, and a 10,000-level filter
      (--max-topic-levels);
  (e) 15 x --max-connections sockets, each with a nearly complete max-size CONNECT;
  (f) a publisher that streams 1 KB PUBLISHes back to back without waiting for anything.

A bound is a sum of terms, each a limit times the bytes it lets a client pin:
  * PER_CONNECTION_ALLOWANCE (64 KiB) for every connection the broker admits;
  * BUFFER_GROWTH x (--max-packet-size + READ_CHUNK) for every byte buffer that may hold a
    partial or queued packet;
  * what the limit under test admits (messages x --max-packet-size, filters x their copies);
  * FIXED_ALLOWANCE (8 MiB) once, for what a flood makes the process touch whatever its size.
Memory the kernel holds (socket buffers, the store's page cache not mapped) is not in the RSS.

How it was checked that the tests can fail: a copy of this file was run with the limit each
test relies on raised hugely for the broker, the bound still derived from the small value
(a, b, d, e), or with the bound tightened (c); each failed:
  (a) --max-packet-size 200 MiB (and a 150 MiB announcement): the oversized packets were
      buffered, peak growth 209 MiB > bound 42 MiB;
  (b) --max-outbound-buffer 1 GiB: QoS 0 piled up for the non-reader, 71 MiB > 32 MiB;
  (c) FoxMQ keeps only the packet identifier of an unreleased QoS 2 message (§4.3.3 method B),
      so a raised --receive-maximum costs little; bound tightened to 1 MiB: 7.7 MiB > 1 MiB;
  (d) --max-subscriptions-per-client 1000000: every filter was kept, 402 MiB > 27 MiB;
  (e) --max-connections 100000: all 480 half-CONNECTs were admitted, 154 MiB > 30 MiB.
  (f) failed against FoxMQ before 2026-12-06's fix of the inbound buffer (see its docstring):
      peak growth 0.25 to 1.2 GiB > 105 MiB; 92 MiB after it.
Run with ``-s`` to see each test's bound and measured figures.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import (
    DISCONNECT, P_SESSION_EXPIRY, P_USER_PROPERTY, PINGREQ_BYTES, PINGRESP, PUBREC, SUBACK, V5,
    Broker, PahoClient, RawClient, check_broker_serves, connect_packet, enc_varint, publish_packet,
    subscribe_packet, uid,
)

# Mosquitto has no equivalent of --max-outbound-buffer, --receive-maximum (enforced by
# disconnect), --max-subscriptions-per-client or --connect-timeout, and buffers QoS 0 for a
# connected subscriber that does not read without limit (see test_10); the bounds are FoxMQ's.
pytestmark = pytest.mark.foxmq_only

KiB = 1024
MiB = 1024 * KiB

# --max-packet-size of every broker here: the largest packet a client may make the broker buffer.
MAX_PACKET = 256 * KiB
# The most the broker reads from a socket at once (its AdaptiveRecvByteBufferAllocator maximum):
# a connection that stopped decoding may hold a whole packet plus one such read.
READ_CHUNK = 64 * KiB
# What one admitted connection may cost besides its packet buffers: the NIO channel and its
# pipeline, the connection handler and state machine, the session (client identifier, will,
# in-flight and alias tables), one read buffer of up to READ_CHUNK, registry and deadline-sweeper
# entries. An idle connected FoxMQ client measured 3.6 KiB (500 of them, debug build); 64 KiB
# is a generous allowance that still makes a few hundred connections a few MiB.
PER_CONNECTION_ALLOWANCE = 64 * KiB
# A byte buffer that grows by doubling may have reserved up to twice what it holds.
BUFFER_GROWTH = 2
# Paid once per flood whatever its size: malloc arenas of the event-loop and writer threads,
# the LMDB write transaction's dirty pages, log lines, $SYS. A fixed amount, so a flood that is
# 3 to 10 times its bound still fails clearly.
FIXED_ALLOWANCE = 8 * MiB
# A checkpoint (every 2 s) serializes each changed session, queued messages included, into a row
# that goes through the LMDB write transaction's pages, and the store's map pages of the rows it
# reads count in the RSS too (file-backed): three more copies, for a moment.
CHECKPOINT_COPIES = 3


def _fmt(n: int) -> str:
    return f"{n / MiB:.1f} MiB"


# --------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------


def _status(pid: int) -> dict[str, int]:
    """Memory lines of /proc/PID/status, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) * KiB
    return out


class Memory:
    """The broker's resident memory around one flood, checked against a bound derived from the
    limits before the flood starts."""

    def __init__(self, broker: Broker, name: str, bound: int, terms: str):
        self.pid = broker.proc.pid
        self.name = name
        self.bound = bound
        self.terms = terms
        self.before: dict[str, int] = {}
        self.held: dict[str, int] = {}
        self.hwm_reset = False

    def start(self):
        time.sleep(0.3)  # let the warm-up settle (checkpoint, log writes)
        # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0), so the peak
        # read afterwards is the peak of the flood, not of the start-up.
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as f:
                f.write("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.before = _status(self.pid)

    @property
    def peak_growth(self) -> int:
        """The most the resident set grew above its pre-flood size at any time during the flood."""
        peak = self.held["VmRSS"]
        if self.hwm_reset or self.held["VmHWM"] > self.before["VmHWM"]:
            peak = max(peak, self.held["VmHWM"])
        return peak - self.before["VmRSS"]

    def check_held(self):
        """Measures while the hostile clients are still connected (VmHWM: at any time of the
        flood) and checks the growth against the bound."""
        self.held = _status(self.pid)
        b, h = self.before, self.held
        text = "\n".join([
            f"[{self.name}] bound {_fmt(self.bound)} = {self.terms}",
            f"  before: VmRSS {_fmt(b['VmRSS'])} (anon {_fmt(b['RssAnon'])}, file {_fmt(b['RssFile'])})",
            f"  held:   VmRSS {_fmt(h['VmRSS'])} (anon {_fmt(h['RssAnon'])}, file {_fmt(h['RssFile'])}),"
            f" VmHWM {_fmt(h['VmHWM'])}{' (reset before the flood)' if self.hwm_reset else ''}",
            f"  peak growth {_fmt(self.peak_growth)}, held growth {_fmt(h['VmRSS'] - b['VmRSS'])}",
        ])
        print("\n" + text)
        assert self.peak_growth <= self.bound, f"broker memory grew beyond its announced limits:\n{text}"

    def report_after(self):
        """After the hostile clients left and a well-behaved one was served: reported only (the
        allocator may keep freed memory for reuse)."""
        a = _status(self.pid)
        print(f"  after the clients left: VmRSS {_fmt(a['VmRSS'])} (anon {_fmt(a['RssAnon'])},"
              f" file {_fmt(a['RssFile'])})")


def warm_up(b: Broker):
    """Touch the code paths and thread arenas every flood touches, so that their one-time cost is
    in the baseline: connections on every event loop, QoS 0/1/2 publish and delivery."""
    check_broker_serves(b)
    clients = [RawClient(b, V5) for _ in range(8)]  # spread over the event loops
    for c in clients:
        c.connect(uid())
    clients[0].subscribe("warm/#", qos=2)
    for qos in (0, 1, 2):
        clients[1].publish(f"warm/{qos}", b"w" * 4096, qos=qos)
    for c in clients:
        c.disconnect()
    check_broker_serves(b)


def closed_by_broker(sock: socket.socket) -> bool:
    """True if the broker closed this socket (EOF or reset); reads and discards what arrived."""
    sock.setblocking(False)
    try:
        while True:
            try:
                chunk = sock.recv(65536)
            except BlockingIOError:
                return False
            except OSError:
                return True
            if not chunk:
                return True
    finally:
        sock.setblocking(True)


def publish_of_size(topic: str, size: int, *, qos: int = 0, packet_id: int | None = None) -> bytes:
    """A 5.0 PUBLISH of exactly ``size`` bytes, fixed header included."""
    head = publish_packet(topic, b"", qos=qos, packet_id=packet_id)
    payload = size - len(head) - 2  # the remaining length takes up to 2 more bytes
    while True:
        pkt = publish_packet(topic, b"p" * payload, qos=qos, packet_id=packet_id)
        if len(pkt) == size:
            return pkt
        payload += size - len(pkt)


def connect_of_size(client_id: str, size: int) -> bytes:
    """A 5.0 CONNECT of exactly ``size`` bytes (padded with User Properties of up to 60,000 bytes)."""
    pad = size - 64
    while True:
        pairs = [("pad", "u" * min(60_000, pad - i)) for i in range(0, pad, 60_000)]
        pkt = connect_packet(client_id, props={P_USER_PROPERTY: pairs})
        if len(pkt) == size:
            return pkt
        pad += size - len(pkt)


def dribble(socks: list[socket.socket], data: list[bytes], seconds: int):
    """Slowloris: one byte a second on every socket, ``seconds`` times, never the last byte."""
    for i in range(seconds):
        time.sleep(1.0)
        for s, d in zip(socks, data):
            try:
                s.send(d[i:i + 1])
            except OSError:
                pass


# --------------------------------------------------------------------------
# (a) partial packets: slowloris inside CONNECT and PUBLISH, oversized remaining lengths
# --------------------------------------------------------------------------

PARTIAL_CONNECTS = 24
PARTIAL_PUBLISHES = 24
OVERSIZED = 16
OVERSIZED_PUSH = 12 * MiB
OVERSIZED_LENGTH = 268_435_455  # the largest remaining length MQTT can encode


def test_partial_and_oversized_packets_flood(broker_factory):
    """48 clients hold a max-size packet (24 CONNECTs before CONNECT completes, 24 PUBLISHes
    after) all but its last bytes, dribbling one byte a second; 16 connected clients announce a
    PUBLISH of 256 MiB and push 12 MiB of it. The broker may buffer each partial packet (up to
    --max-packet-size), never an oversized one: it disconnects those at once (0x95).

    Bound: 64 connections x 64 KiB + 48 x 2 x (256 KiB + 64 KiB) + 8 MiB = 42 MiB.
    A broker buffering the oversized packets would hold 16 x 12 MiB = 192 MiB more.
    MQTT 5.0 §3.1.2.11.4, §3.2.2.3.6 (Maximum Packet Size), §4.13 (0x95)."""
    partial = PARTIAL_CONNECTS + PARTIAL_PUBLISHES
    bound = ((partial + OVERSIZED) * PER_CONNECTION_ALLOWANCE
             + partial * BUFFER_GROWTH * (MAX_PACKET + READ_CHUNK) + FIXED_ALLOWANCE)
    terms = f"{partial + OVERSIZED} conns x 64 KiB + {partial} partial packets x 2 x (256+64) KiB + 8 MiB"
    b = broker_factory(max_packet_size=MAX_PACKET, connect_timeout=30)
    warm_up(b)
    mem = Memory(b, "partial and oversized packets", bound, terms)
    mem.start()

    holders: list[RawClient] = []
    rests: list[bytes] = []
    for _ in range(PARTIAL_CONNECTS):
        c = RawClient(b, V5)
        pkt = connect_of_size(uid(), MAX_PACKET)
        c.send(pkt[:-8])
        holders.append(c)
        rests.append(pkt[-8:-1])
    for _ in range(PARTIAL_PUBLISHES):
        c = RawClient(b, V5)
        c.connect(uid())
        pkt = publish_of_size("hold/t", MAX_PACKET, qos=1, packet_id=1)
        c.send(pkt[:-8])
        holders.append(c)
        rests.append(pkt[-8:-1])
    oversized: list[RawClient] = []
    for _ in range(OVERSIZED):
        c = RawClient(b, V5)
        c.connect(uid())
        oversized.append(c)
    header = b"\x30" + enc_varint(OVERSIZED_LENGTH) + b"\x00\x05big/t"
    chunk = b"o" * (256 * KiB)
    for c in oversized:
        if c.try_send(header):
            for _ in range(OVERSIZED_PUSH // len(chunk)):
                if not c.try_send(chunk):
                    break
    dribble([c.sock for c in holders], rests, 2)

    mem.check_held()
    # The partial packets are still waited for; the oversized ones were refused.
    assert not any(closed_by_broker(c.sock) for c in holders), "a client holding a partial packet was closed"
    for c in oversized:
        reasons = [p.reason for p in c.wait_closed() if p.type == DISCONNECT]
        assert reasons in ([], [0x95]), reasons
    for c in holders + oversized:
        c.close()
    check_broker_serves(b)
    mem.report_after()


# --------------------------------------------------------------------------
# (b) a subscriber that never reads
# --------------------------------------------------------------------------

OUTBOUND_BUFFER = 256 * KiB
MAX_INFLIGHT = 4
MAX_QUEUED = 12
SLOW_MESSAGES_PER_QOS = 240


def test_subscriber_that_never_reads(broker_factory):
    """A subscriber with a 4 KiB socket receive buffer subscribes at QoS 0, 1 and 2 and never
    reads; 3 x 240 messages of 255 KiB (180 MiB) are published to it, each after the previous
    one was acknowledged. The broker may hold --max-outbound-buffer bytes for its socket (QoS 0
    beyond it is dropped, §4.3.1) plus one burst, and the --max-inflight window and
    --max-queued-messages queue of QoS 1/2 messages: each may pin the read buffer its payload
    was sliced from, in flight it is encoded once more, and a checkpoint serializes the
    session's queue (row, LMDB pages, map pages read).

    Bound: 2 conns x 64 KiB + (256 + 256) KiB + (4 + 12) x 2 x (256 + 64) KiB + 4 x 256 KiB
    + 3 x (4 + 12) x 256 KiB + 2 x (256 + 64) KiB (the publisher's inbound) + 8 MiB = 32 MiB.
    A broker buffering everything for the subscriber would hold 180 MiB more.
    MQTT 5.0 §4.3.1, §4.9 (flow control)."""
    held_messages = MAX_INFLIGHT + MAX_QUEUED
    bound = (2 * PER_CONNECTION_ALLOWANCE + OUTBOUND_BUFFER + MAX_PACKET
             + held_messages * BUFFER_GROWTH * (MAX_PACKET + READ_CHUNK)
             + MAX_INFLIGHT * MAX_PACKET
             + CHECKPOINT_COPIES * held_messages * MAX_PACKET
             + BUFFER_GROWTH * (MAX_PACKET + READ_CHUNK) + FIXED_ALLOWANCE)
    terms = (f"2 conns x 64 KiB + outbound (256 + 256) KiB + ({MAX_INFLIGHT} in flight + {MAX_QUEUED} queued)"
             f" x 2 x (256+64) KiB + {MAX_INFLIGHT} encoded x 256 KiB + checkpoint 3 x {held_messages} x 256 KiB"
             f" + publisher 2 x (256+64) KiB + 8 MiB")
    b = broker_factory(max_packet_size=MAX_PACKET, max_inflight=MAX_INFLIGHT, max_queued_messages=MAX_QUEUED,
                       extra_args=["--max-outbound-buffer", str(OUTBOUND_BUFFER)])
    warm_up(b)
    mem = Memory(b, "subscriber that never reads", bound, terms)
    mem.start()

    sub = RawClient(b, V5)
    sub.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sub.connect(uid())
    sub.send(subscribe_packet(1, [("slow/0", 0), ("slow/1", 1), ("slow/2", 2)]))
    # (The SUBACK is the only packet read: the subscriber never reads again.)
    assert sub.expect(SUBACK).reason_codes == [0, 1, 2]
    pub = PahoClient(b)
    pub.connect()
    payload = b"s" * (MAX_PACKET - 1024)
    try:
        for qos in (0, 1, 2):
            for _ in range(SLOW_MESSAGES_PER_QOS):
                # QoS >= 1 from the publisher: its acknowledgement says the broker routed it.
                pub.publish(f"slow/{qos}", payload, qos=max(qos, 1))
        mem.check_held()
    finally:
        pub.disconnect()
        sub.close()
    check_broker_serves(b)
    mem.report_after()


# --------------------------------------------------------------------------
# (c) QoS 2 PUBLISHes never released
# --------------------------------------------------------------------------

RECEIVE_MAXIMUM = 16
QOS2_CLIENTS = 8
QOS2_ATTEMPTS = 8 * RECEIVE_MAXIMUM


def test_qos2_never_released(broker_factory):
    """8 clients each send QoS 2 PUBLISHes of 256 KiB, up to 128 (8 x --receive-maximum 16),
    each after the PUBREC of the previous one, and never send PUBREL: none of them is complete,
    so all count against the receive maximum. The broker acknowledges 16 and disconnects at the
    17th (0x93). It may keep, per client, the 16 unreleased messages (§4.3.3 method A; FoxMQ
    keeps only their identifiers) and its inbound buffer. (Pipelined, without waiting for each
    PUBREC, this is test_publisher_streaming_without_pause's case.)

    Bound: 8 x (64 KiB + 16 x 256 KiB + 2 x (256 + 64) KiB) + 8 MiB = 45 MiB.
    A broker without the receive maximum keeping the messages until PUBREL would hold
    8 x 128 x 256 KiB = 256 MiB. MQTT 5.0 §3.3.4 [MQTT-3.3.4-8], §4.3.3, §4.9."""
    bound = (QOS2_CLIENTS * (PER_CONNECTION_ALLOWANCE + RECEIVE_MAXIMUM * MAX_PACKET
                             + BUFFER_GROWTH * (MAX_PACKET + READ_CHUNK))
             + FIXED_ALLOWANCE)
    terms = f"{QOS2_CLIENTS} x (64 KiB + {RECEIVE_MAXIMUM} x 256 KiB + 2 x (256+64) KiB) + 8 MiB"
    b = broker_factory(max_packet_size=MAX_PACKET, receive_maximum=RECEIVE_MAXIMUM)
    warm_up(b)
    mem = Memory(b, "QoS 2 never released", bound, terms)
    mem.start()

    clients = []
    for _ in range(QOS2_CLIENTS):
        c = RawClient(b, V5)
        c.connect(uid(), props={P_SESSION_EXPIRY: 300})
        clients.append(c)
    acknowledged = [0] * QOS2_CLIENTS
    closing: list[list] = [[] for _ in range(QOS2_CLIENTS)]

    def flood(i: int):
        c = clients[i]
        try:
            for pid in range(1, QOS2_ATTEMPTS + 1):
                if not c.try_send(publish_of_size("q2/t", MAX_PACKET, qos=2, packet_id=pid)):
                    break
                pkt = c.recv()
                if pkt is None or pkt.type != PUBREC or pkt.packet_id != pid:
                    closing[i] = [pkt] if pkt is not None else []
                    break
                acknowledged[i] += 1
            closing[i] += c.wait_closed()
        except (AssertionError, TimeoutError, OSError) as e:
            closing[i].append(e)

    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(QOS2_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    mem.check_held()
    assert acknowledged == [RECEIVE_MAXIMUM] * QOS2_CLIENTS, acknowledged
    for seen in closing:
        assert [getattr(p, "reason", p) for p in seen if getattr(p, "type", None) != PUBREC] == [0x93], seen
    for c in clients:
        c.close()
    check_broker_serves(b)
    mem.report_after()


# --------------------------------------------------------------------------
# (d) subscriptions beyond the limit, and 10,000-level filters
# --------------------------------------------------------------------------

MAX_SUBSCRIPTIONS = 50
MAX_TOPIC_LEVELS = 16
SUB_CLIENTS = 16
SUB_ATTEMPTS = 40 * MAX_SUBSCRIPTIONS
FILTERS_PER_PACKET = 100
LEVEL = "x" * 120
# What one granted subscription may cost besides copies of its filter: its entries in the
# session's table and the checkpoint, and a topic-tree node (a dictionary) per level.
SUBSCRIPTION_OVERHEAD = MAX_TOPIC_LEVELS * 256
# Copies of a granted filter the broker may keep: session table, topic tree levels, checkpoint
# row, the log record of the SUBSCRIBE until it is written.
FILTER_COPIES = 4


def _filter(client: int, n: int) -> str:
    return "/".join([f"c{client}", f"f{n}"] + [LEVEL] * (MAX_TOPIC_LEVELS - 2))


def test_subscription_flood(broker_factory):
    """16 clients each try 2,000 distinct 1.7 KB filters (40 x --max-subscriptions-per-client
    50), 100 per SUBSCRIBE, then one 10,000-level filter (--max-topic-levels 16). The broker
    grants 50 per client and refuses the rest (0x97) and the deep filter (failure code or
    disconnect). It may keep 50 filters per client, each in a few copies, and the one
    SUBSCRIBE each client has in flight.

    Bound: 16 x (64 KiB + 50 x (4 x 1.7 KB + 4 KiB) + 2 x (256 + 64) KiB) + 8 MiB = 27 MiB.
    Keeping every filter would take 16 x 2,000 x 1.7 KB = 52 MiB for their bytes alone (about
    400 MiB with the copies and tree nodes).  MQTT 5.0 §3.9.3 (0x97, 0x8F), §4.7.1."""
    filter_len = len(_filter(99, 9999).encode())
    per_sub = FILTER_COPIES * filter_len + SUBSCRIPTION_OVERHEAD
    bound = (SUB_CLIENTS * (PER_CONNECTION_ALLOWANCE + MAX_SUBSCRIPTIONS * per_sub
                            + BUFFER_GROWTH * (MAX_PACKET + READ_CHUNK))
             + FIXED_ALLOWANCE)
    terms = (f"{SUB_CLIENTS} x (64 KiB + {MAX_SUBSCRIPTIONS} x ({FILTER_COPIES} x {filter_len} B"
             f" + {SUBSCRIPTION_OVERHEAD} B) + 2 x (256+64) KiB) + 8 MiB")
    b = broker_factory(max_packet_size=MAX_PACKET, max_subscriptions_per_client=MAX_SUBSCRIPTIONS,
                       max_topic_levels=MAX_TOPIC_LEVELS)
    warm_up(b)
    mem = Memory(b, "subscriptions", bound, terms)
    mem.start()

    clients = [RawClient(b, V5) for _ in range(SUB_CLIENTS)]
    for c in clients:
        c.connect(uid())
    granted = [0] * SUB_CLIENTS
    errors = []

    def flood(i: int):
        c = clients[i]
        try:
            for start in range(0, SUB_ATTEMPTS, FILTERS_PER_PACKET):
                filters = [(_filter(i, n), 1) for n in range(start, start + FILTERS_PER_PACKET)]
                codes = c.subscribe(filters).reason_codes
                granted[i] += sum(1 for code in codes if code < 0x80)
                assert all(code in (1, 0x97) for code in codes), codes
            c.send(subscribe_packet(60000, [("/".join(["l"] * 10_000), 0)]))
            pkt = c.recv()
            if pkt is not None and pkt.type == SUBACK:
                assert pkt.reason_codes[0] >= 0x80, pkt
            else:
                c.wait_closed()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(SUB_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    mem.check_held()
    assert not errors, errors
    assert granted == [MAX_SUBSCRIPTIONS] * SUB_CLIENTS, granted
    for c in clients:
        c.close()
    check_broker_serves(b)
    mem.report_after()


# --------------------------------------------------------------------------
# (e) connections beyond --max-connections
# --------------------------------------------------------------------------

MAX_CONNECTIONS = 32
CONNECTION_ATTEMPTS = 15 * MAX_CONNECTIONS


def test_connection_flood(broker_factory):
    """480 sockets (15 x --max-connections 32) each send a max-size CONNECT but its last byte.
    The broker admits at most 32 (the rest are closed at once) and may buffer each admitted
    one's partial CONNECT until --connect-timeout.

    Bound: 32 x (64 KiB + 2 x (256 + 64) KiB) + 8 MiB = 30 MiB. A broker admitting them all
    would buffer 480 x 256 KiB = 120 MiB.  MQTT 5.0 §4.2, §3.2.2.2 (0x97/0x9F may be used)."""
    bound = (MAX_CONNECTIONS * (PER_CONNECTION_ALLOWANCE + BUFFER_GROWTH * (MAX_PACKET + READ_CHUNK))
             + FIXED_ALLOWANCE)
    terms = f"{MAX_CONNECTIONS} conns x (64 KiB + 2 x (256+64) KiB) + 8 MiB"
    b = broker_factory(max_packet_size=MAX_PACKET, max_connections=MAX_CONNECTIONS, connect_timeout=30)
    warm_up(b)
    mem = Memory(b, "connections", bound, terms)
    mem.start()

    socks: list[socket.socket] = []
    try:
        for _ in range(CONNECTION_ATTEMPTS):
            try:
                s = socket.create_connection((b.host, b.port), timeout=5)
            except OSError:
                continue  # refused at accept time
            socks.append(s)
            try:
                s.sendall(connect_of_size(uid(), MAX_PACKET)[:-1])
            except OSError:
                pass  # closed by the broker: over the limit
        time.sleep(0.5)
        mem.check_held()
        still_open = [s for s in socks if not closed_by_broker(s)]
        assert 1 <= len(still_open) <= MAX_CONNECTIONS, f"{len(still_open)} connections kept open"
    finally:
        for s in socks:
            s.close()
    # The slots free up as the broker notices the closes.
    deadline = time.monotonic() + 5
    while True:
        try:
            check_broker_serves(b)
            break
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    mem.report_after()


# --------------------------------------------------------------------------
# (f) a publisher that streams without pause
# --------------------------------------------------------------------------

STREAM_BYTES = 48 * MiB
STREAM_PAYLOAD = 993  # 1,003-byte packets: the broker's reads end in the middle of one
# Events waiting for their sync in FoxMQ's DurableOrderer, at most (pendingBytesMax, counted by
# payload bytes). An internal constant, not announced; with the objects around each event
# (ApplicationMessage, log record, actions) the memory behind it may be about twice that.
ORDERER_PENDING_MAX = 64 * MiB
ORDERER_OVERHEAD = 2


def test_publisher_streaming_without_pause(broker_factory):
    """One connected client streams 48 MiB of 1 KB QoS 0 PUBLISHes back to back (nobody
    subscribes). The broker may hold its inbound buffer (one packet and a read) and the events
    waiting for the log's sync, which its orderer bounds (64 MiB of payload), and never more
    than it was sent.

    Bound: 64 KiB + 2 x (256 + 64) KiB + 2 x min(48 MiB, 64 MiB) + 8 MiB = 105 MiB.

    The regression it caught (peak growth 0.25 to 1.2 GiB for the 48 MiB, 92 MiB since): the
    connection's inbound ByteBuffer was never compacted while a partial packet remained at the
    end of each read, and the PUBLISH payloads are slices of it, held by the orderer's pending
    events. So each read's append (MQTTConnectionHandler.channelRead, `pending.writeBuffer`)
    found the storage shared and copied all of it, consumed bytes included, into a larger one:
    memory grew with the bytes streamed times the events in flight (heaptrack: ~1 GB peak in
    ByteBuffer._copyStorageAndRebase). Now only the partial packet moves to a buffer of its own.
    MQTT 5.0 §4.3.1, §4.9."""
    bound = (PER_CONNECTION_ALLOWANCE + BUFFER_GROWTH * (MAX_PACKET + READ_CHUNK)
             + ORDERER_OVERHEAD * min(STREAM_BYTES, ORDERER_PENDING_MAX) + FIXED_ALLOWANCE)
    terms = f"64 KiB + 2 x (256+64) KiB + 2 x min({STREAM_BYTES // MiB} MiB streamed, 64 MiB orderer) + 8 MiB"
    b = broker_factory(max_packet_size=MAX_PACKET)
    warm_up(b)
    mem = Memory(b, "streaming publisher", bound, terms)
    mem.start()

    c = RawClient(b, V5)
    c.connect(uid())
    pkt = publish_packet("stream/t", b"q" * STREAM_PAYLOAD)
    chunk = pkt * (MiB // len(pkt))
    c.sock.settimeout(30)
    sent = 0
    while sent < STREAM_BYTES:
        c.send(chunk)
        sent += len(chunk)
    # The broker has decoded them all when a PINGREQ behind them is answered.
    c.send(PINGREQ_BYTES)
    c.expect(PINGRESP, timeout=30)
    mem.check_held()
    c.disconnect()
    check_broker_serves(b)
    mem.report_after()


def test_memory_returns_to_the_kernel_after_a_flood(broker_factory):
    """After a flood has gone, the broker gives the freed heap back to the kernel
    (--memory-trim-interval, glibc's malloc_trim): 200 subscribers that never read, each sent
    800 KB of QoS 0 messages to itself, then all closed; the broker's anonymous resident memory
    falls back to within a quarter of the flood's peak (VmHWM, reset before it).

    Checked that it can fail: with --memory-trim-interval 0 (2026-12-06) the peak was +268 MiB
    and +182 MiB was still resident 10 s after the clients left; with 1, +275 MiB and +30 MiB."""
    b = broker_factory(extra_args=["--memory-trim-interval", "1"])
    warm_up(b)
    time.sleep(1.5)  # a trim after the warm-up
    memory = Memory(b, "trim", 0, "")
    memory.start()
    pid = b.proc.pid
    before = memory.before["VmRSS"]
    clients: list[RawClient] = []
    lock = threading.Lock()

    def flood(i: int):
        c = RawClient(b, V5)
        c.connect(uid("flood"))
        c.subscribe(f"flood/{i}", qos=0)
        c.sock.sendall(b"".join(publish_packet(f"flood/{i}", b"x" * 20_000) for _ in range(40)))
        with lock:
            clients.append(c)

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(2)
    assert memory.hwm_reset, "VmHWM cannot be reset here (/proc/PID/clear_refs): no peak to compare with"
    growth = _status(pid)["VmHWM"] - before
    print(f"\n[trim] RSS before {_fmt(before)}, peak +{_fmt(growth)}")
    assert growth >= 64 * MiB, f"the flood added only {_fmt(growth)}: too little to tell a trim"
    for c in clients:
        c.close()
    deadline = time.monotonic() + 10
    while True:
        after = _status(pid)["VmRSS"]
        if after - before <= growth / 4 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"[trim] RSS after the clients left {_fmt(after)} (+{_fmt(after - before)})")
    assert after - before <= growth / 4, (
        f"freed memory kept: {_fmt(after - before)} of the flood's {_fmt(growth)} still resident")
    check_broker_serves(b)
