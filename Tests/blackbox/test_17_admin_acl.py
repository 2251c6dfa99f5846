"""The SQLite admin database on a running node: users and access rules changed with
`foxmq user` / `foxmq acl` reach the node within a second, and access verdicts come back in
order with the other acknowledgements (FoxMQ only)."""

import subprocess
import time

import pytest

from conftest import (FOXMQ_BIN, PUBACK, PUBLISH, PUBREC, SUBACK, V311, V5, uid)

pytestmark = pytest.mark.foxmq_only

USERS = {"alice": "alice-pw", "bob": "bob-pw"}


def foxmq(*args, check=True):
    return subprocess.run([FOXMQ_BIN, *args], capture_output=True, text=True, timeout=30, check=check)


def eventually(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def secured(broker_factory):
    return broker_factory(anonymous=False, users=USERS)


def test_subscribe_denied_gets_0x87_others_granted(secured, raw_factory, proto):
    """A subscription the rules refuse gets 0x87 (5.0) / 0x80 (3.1.1) in its SUBACK slot; the
    others in the same SUBACK are granted; nothing is delivered on the refused filter."""
    foxmq("acl", "add", "--user", "alice", "--subscribe", "public/#", "-o", str(secured.dir))
    foxmq("acl", "add", "--user", "alice", "--publish", "public/#", "-o", str(secured.dir))
    time.sleep(1.5)  # the node polls the database every second
    c = raw_factory(secured, proto)
    c.connect(uid(), username="alice", password=USERS["alice"])
    ack = c.subscribe([("public/#", 1), ("secret/#", 1)])
    assert ack.reason_codes == [1, 0x87 if proto == V5 else 0x80]
    c.publish("public/a", b"ok", qos=1)
    got = c.expect(PUBLISH)
    assert got.topic == "public/a" and got.payload == b"ok"


def test_publish_denied_0x87_in_order(secured, raw_factory):
    """A QoS 1 PUBLISH the rules refuse gets PUBACK 0x87, in order between the acknowledgements
    of the allowed publishes around it; a refused QoS 2 PUBLISH gets PUBREC 0x87; a refused QoS 0
    message is dropped; subscribers see only the allowed messages."""
    foxmq("acl", "add", "--all-users", "--publish", "ok/#", "-o", str(secured.dir))
    foxmq("acl", "add", "--all-users", "--subscribe", "#", "-o", str(secured.dir))
    time.sleep(1.5)
    sub = raw_factory(secured, V5)
    sub.connect(uid(), username="bob", password=USERS["bob"])
    sub.subscribe("#", qos=1)
    pub = raw_factory(secured, V5)
    pub.connect(uid(), username="alice", password=USERS["alice"])
    from conftest import publish_packet
    for pid, topic in [(1, "ok/1"), (2, "no/2"), (3, "ok/3")]:
        pub.send(publish_packet(topic, topic.encode(), qos=1, packet_id=pid))
    acks = [pub.expect(PUBACK) for _ in range(3)]
    assert [a.packet_id for a in acks] == [1, 2, 3]
    assert acks[1].reason == 0x87
    assert acks[0].reason in (0x00, 0x10) and acks[2].reason in (0x00, 0x10)
    pub.send(publish_packet("no/qos2", b"x", qos=2, packet_id=4))
    rec = pub.expect(PUBREC)
    assert (rec.packet_id, rec.reason) == (4, 0x87)
    pub.publish("no/qos0", b"dropped", qos=0)
    pub.publish("ok/last", b"last", qos=1)
    topics = []
    while True:
        p = sub.expect(PUBLISH)
        sub.ack(p)
        topics.append(p.topic)
        if p.topic == "ok/last":
            break
    assert topics == ["ok/1", "ok/3", "ok/last"]


def test_publish_denied_311_acknowledged_not_delivered(secured, raw_factory):
    """MQTT 3.1.1 has no refusal code in PUBACK: the refused message is acknowledged positively
    (3.1.1 §3.3.5) and not delivered."""
    foxmq("acl", "add", "--all-users", "--publish", "ok/#", "-o", str(secured.dir))
    foxmq("acl", "add", "--all-users", "--subscribe", "#", "-o", str(secured.dir))
    time.sleep(1.5)
    sub = raw_factory(secured, V311)
    sub.connect(uid(), username="bob", password=USERS["bob"])
    sub.subscribe("#", qos=1)
    pub = raw_factory(secured, V311)
    pub.connect(uid(), username="alice", password=USERS["alice"])
    assert pub.publish("no/x", b"refused", qos=1).packet_id is not None
    pub.publish("ok/y", b"allowed", qos=1)
    p = sub.expect(PUBLISH)
    assert p.topic == "ok/y"


def test_user_added_while_running_can_connect_within_a_second(secured, raw_factory):
    """`foxmq user add` against the config directory of a running node: the new user connects
    within a second or so, without a restart; `foxmq user remove` takes it away again."""
    c = raw_factory(secured, V5)
    assert c.connect(uid(), username="carol", password="carol-pw", expect_ok=False).reason == 0x86
    foxmq("user", "add", "carol", "carol-pw", "-o", str(secured.dir))

    def carol_connects():
        client = raw_factory(secured, V5)
        return client.connect(uid(), username="carol", password="carol-pw", expect_ok=False).reason == 0

    assert eventually(carol_connects, timeout=3.0)
    foxmq("user", "remove", "carol", "-o", str(secured.dir))

    def carol_refused():
        client = raw_factory(secured, V5)
        return client.connect(uid(), username="carol", password="carol-pw", expect_ok=False).reason != 0

    assert eventually(carol_refused, timeout=3.0)


def test_acl_percent_u_owns_a_subtree(secured, raw_factory):
    """`%u` in a rule: each user may publish and subscribe under its own name only."""
    foxmq("acl", "add", "--all-users", "--publish", "users/%u/#", "-o", str(secured.dir))
    foxmq("acl", "add", "--all-users", "--subscribe", "users/%u/#", "-o", str(secured.dir))
    time.sleep(1.5)
    c = raw_factory(secured, V5)
    c.connect(uid(), username="alice", password=USERS["alice"])
    assert c.subscribe([("users/alice/#", 1), ("users/bob/#", 1)]).reason_codes == [1, 0x87]
    assert c.publish("users/bob/x", b"no", qos=1).reason == 0x87
    assert c.publish("users/alice/x", b"yes", qos=1).reason in (0x00, 0x10)


def test_config_set_on_a_running_node_orders_new_limits(broker, raw_factory):
    """`foxmq config set max-subscriptions-per-client 1` against a running node: within a
    second or so a second subscription of a session is refused with 0x97, and `unset` brings
    the flag's limit back; an unknown key or a bad value is refused by the command."""
    directory = str(broker.dir)
    bad = foxmq("config", "set", "max-nonsense", "1", "-o", directory, check=False)
    assert bad.returncode != 0 and "Unknown setting" in bad.stderr
    bad = foxmq("config", "set", "max-inflight", "0", "-o", directory, check=False)
    assert bad.returncode != 0 and "outside" in bad.stderr
    foxmq("config", "set", "max-subscriptions-per-client", "1", "-o", directory)
    assert foxmq("config", "get", "max-subscriptions-per-client", "-o", directory).stdout.strip() == "1"

    def second_subscription_refused():
        c = raw_factory(broker, V5)
        c.connect(uid())
        c.subscribe("a", qos=0)
        return c.subscribe("b", qos=0).reason_codes == [0x97]

    assert eventually(second_subscription_refused, timeout=4.0)
    foxmq("config", "unset", "max-subscriptions-per-client", "-o", directory)

    def second_subscription_granted():
        c = raw_factory(broker, V5)
        c.connect(uid())
        c.subscribe("a", qos=0)
        return c.subscribe("b", qos=0).reason_codes == [0]

    assert eventually(second_subscription_granted, timeout=4.0)
    assert "settings changed" in broker.log_tail(200)


def will_watcher(secured, raw_factory):
    """alice, subscribed to wills/#."""
    watcher = raw_factory(secured, V5)
    watcher.connect(uid(), username="alice", password=USERS["alice"])
    watcher.subscribe([("wills/#", 0)])
    return watcher


def connect_alice_with_will(secured, raw_factory, proto, payload: bytes):
    """alice, connected with a will to wills/alice."""
    client = raw_factory(secured, proto)
    client.connect(uid(), username="alice", password=USERS["alice"],
                   will={"topic": "wills/alice", "payload": payload})
    return client


def test_will_to_a_denied_topic_refused_at_connect(secured, raw_factory, proto):
    """A will is a publish made on the client's behalf: one to a topic the rules do not let the
    user publish to, or to the broker's own `$SYS`, refuses the CONNECT (0x87 in 5.0, 0x05 in
    3.1.1) before any session opens, so it can never be published; a will the rules allow
    connects and is published when the connection drops."""
    foxmq("acl", "add", "--user", "alice", "--publish", "wills/alice", "-o", str(secured.dir))
    foxmq("acl", "add", "--user", "alice", "--subscribe", "#", "-o", str(secured.dir))
    time.sleep(1.5)
    refused = 0x87 if proto == V5 else 0x05
    for topic in ("wills/bob", "$SYS/broker/version"):
        c = raw_factory(secured, proto)
        ack = c.connect(uid(), username="alice", password=USERS["alice"], expect_ok=False,
                        will={"topic": topic, "payload": b"forged", "retain": True})
        assert ack.reason == refused, f"will on {topic}: {ack!r}"
        assert not c.is_open()
    watcher = will_watcher(secured, raw_factory)
    connect_alice_with_will(secured, raw_factory, proto, b"gone").sock.close()
    got = watcher.expect(PUBLISH, timeout=5)
    assert got.topic == "wills/alice" and got.payload == b"gone"


def test_a_will_whose_right_was_revoked_is_not_published(secured, raw_factory, proto):
    """The rules may change while a client is connected: a will is authorised again when the
    connection ends, as Mosquitto does, and one its user may no longer publish is discarded
    (and logged). With the right given back, the same will is published, so the silence is the
    revocation and not a lost will."""
    added = foxmq("acl", "add", "--user", "alice", "--publish", "wills/alice", "-o", str(secured.dir))
    rule_id = added.stdout.split()[2]
    foxmq("acl", "add", "--user", "alice", "--subscribe", "#", "-o", str(secured.dir))
    time.sleep(1.5)
    watcher = will_watcher(secured, raw_factory)
    dying = connect_alice_with_will(secured, raw_factory, proto, b"revoked")
    foxmq("acl", "remove", rule_id, "-o", str(secured.dir))
    time.sleep(1.5)
    dying.sock.close()
    watcher.expect_nothing(timeout=2.0)
    assert eventually(lambda: "will discarded" in secured.log_tail(200))

    foxmq("acl", "add", "--user", "alice", "--publish", "wills/alice", "-o", str(secured.dir))
    time.sleep(1.5)
    connect_alice_with_will(secured, raw_factory, proto, b"allowed").sock.close()
    got = watcher.expect(PUBLISH, timeout=5)
    assert got.topic == "wills/alice" and got.payload == b"allowed"
