"""Cluster faults beyond one dead node (FoxMQ only): partitions longer than the will failover, two
nodes down at once, a wiped store, a whole-cluster restart. Real processes, fault injection through
BASE/node-i/cluster-faults (see ``cluster_support``), ``--will-failover-seconds 3``.

What a lost node means (``nodeLost(node, incarnation)``): once a peer has been unreachable for the
will failover time, the cluster orders the end of that node's sessions (wills published, expiry
started); the node, if alive, closes those connections with DISCONNECT 0x88 and the clients resume
on another node. A node that was merely cut off must not take the others' sessions with it.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest

from conftest import P_SESSION_EXPIRY, PUBLISH, RawClient, port_accepts, uid
from cluster_support import (  # noqa: F401 (cluster_factory is a fixture)
    Collector, cluster_factory, foxdump, wait_until,
)

pytestmark = pytest.mark.foxmq_only

EXPIRY = 300
SERVER_UNAVAILABLE = 0x88


def node_lost_records(node) -> list[dict]:
    """The nodeLost records of the node's log (``foxdump log --json``)."""
    run = foxdump("log", str(node.dir), "--json")
    assert run.returncode == 0, run.stderr
    return [r for r in json.loads(run.stdout)["records"] if r.get("kind") == "nodeLost"]


def assert_logs_equal(cluster, through: int):
    for other in range(1, cluster.n):
        run = foxdump("compare", str(cluster[0].dir), str(cluster[other].dir), "--json")
        assert run.returncode == 0, f"foxdump compare node-0 node-{other}:\n{run.stdout}\n{run.stderr}"
        document = json.loads(run.stdout)
        assert document["equal"] is True and document["comparedThrough"] >= through, document


def raw_watcher(cluster, position: int, client_id: str | None = None) -> RawClient:
    """A raw MQTT 5 client (session expiry 0) subscribed to ``#`` at QoS 0: shows the reason code
    of a DISCONNECT (paho 2.2 reports a DISCONNECT 0x88 as 0x82)."""
    node = cluster[position]
    r = cluster.raw(node)
    r.connect(client_id or uid(f"raw{node.position}"), props={P_SESSION_EXPIRY: 0})
    r.subscribe("#", qos=0)
    return r


def disconnect_reason(raw: RawClient, timeout: float):
    """The reason code of the DISCONNECT the broker sent before closing (None: closed without
    one); raises if the connection stays open for ``timeout``."""
    packets = raw.wait_closed(timeout=timeout)
    reasons = [p.reason for p in packets if p.type == 14]
    return reasons[-1] if reasons else None


def still_open(raw: RawClient, quiet: float = 0.3) -> bool:
    """Reads what is pending; True while the connection stays open."""
    deadline = time.monotonic() + quiet
    while time.monotonic() < deadline:
        try:
            packet = raw.recv(max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            return True
        if packet is None:
            return False
        if packet.type == 14:
            raw.last_disconnect = packet
    return True


# --------------------------------------------------------------------------
# one node cut off for longer than the will failover
# --------------------------------------------------------------------------


def test_an_isolated_node_is_lost_but_does_not_end_the_others_sessions(cluster_factory):
    """Node 3 is cut off from the three others for will failover + 2 s. The three go on committing
    and order node 3's loss: the will of its client is published to them, its clients get 0x88
    when it learns. The clients of the three others keep their sessions and connections: the
    isolated node's own view (everyone else unreachable) must not end them once it rejoins."""
    cluster = cluster_factory().start()
    watchers = {p: raw_watcher(cluster, p) for p in range(4)}
    subs = {}
    for p in range(4):
        c = cluster.client(p, uid(f"sub{p}"))
        assert c.subscribe("iso/#", 1) == [1]
        subs[p] = Collector(c)
    doomed = cluster.client(3, uid("doomed"), connect=False)
    doomed.connect(session_expiry=0, will={"topic": "iso/will", "payload": b"node 3 lost", "qos": 1})
    pub0 = cluster.client(0, uid("pub0"))
    assert pub0.publish("iso/x", b"before", qos=1) == 0
    for s in subs.values():
        s.wait_for([b"before"], 10)

    lost = cluster[3].committee_index
    cluster.partition([3], [0, 1, 2])
    cut = time.monotonic()
    assert pub0.publish("iso/x", b"during", qos=1) == 0, "the three connected nodes must go on committing"
    for p in (0, 1, 2):
        subs[p].wait_for([b"during", b"node 3 lost"], cluster.will_failover + 7,
                         f"the will of node 3's client on node {p}")
    took = time.monotonic() - cut
    assert took >= cluster.will_failover - 0.5, f"node 3 declared lost after {took:.1f}s"
    time.sleep(max(0.0, cluster.will_failover + 2 - (time.monotonic() - cut)))
    cluster.heal()

    # Node 3 learns that it was lost: its clients are told so.
    assert disconnect_reason(watchers[3], 10) == SERVER_UNAVAILABLE
    # The others' clients are untouched: still connected and still served.
    time.sleep(1.0)
    ended = {p: getattr(watchers[p], "last_disconnect", None) for p in (0, 1, 2) if not still_open(watchers[p])}
    named = [f"#{r['index']} nodeLost node={r['node']}" for r in node_lost_records(cluster[0])]
    assert not ended, (f"clients of nodes that were never cut off from a quorum were disconnected after "
                       f"node 3 (committee index {lost}) rejoined: {ended}; nodeLost records: {named}")
    assert pub0.publish("iso/x", b"after", qos=1) == 0
    for p in (0, 1, 2):
        subs[p].wait_for([b"after"], 10, f"a publish after the heal on node {p}")
    sequences = [subs[p].settle(quiet=0.3) for p in (0, 1, 2)]
    assert sequences[0] == sequences[1] == sequences[2], sequences


# --------------------------------------------------------------------------
# a 2|2 partition for longer than the will failover
# --------------------------------------------------------------------------


def test_a_long_two_two_partition_leaves_no_zombie_connection(cluster_factory):
    """Neither half has a quorum, so nothing is lost while the partition lasts; after the heal
    every node applies the same log (whatever loss it orders), every subscriber saw the same
    sequence, and a client whose session the log ended is disconnected with 0x88: no client stays
    connected to a session that no longer exists."""
    cluster = cluster_factory().start()
    watchers = {p: raw_watcher(cluster, p) for p in range(4)}
    subs = {}
    for p in range(4):
        c = cluster.client(p, uid(f"sub{p}"))
        assert c.subscribe("half/#", 1) == [1]
        subs[p] = Collector(c)
    pub0 = cluster.client(0, uid("pub0"))
    assert pub0.publish("half/x", b"before", qos=1) == 0
    for s in subs.values():
        s.wait_for([b"before"], 10)

    cluster.partition([0, 1], [2, 3])
    during = pub0.publish("half/x", b"during", qos=1, wait=False)
    time.sleep(cluster.will_failover + 2)
    assert not during.is_published(), "acknowledged without a quorum"
    for s in subs.values():
        assert s.payloads == [b"before"]
    cluster.heal()
    during.wait_for_publish(20)
    # Acknowledged after the heal, unless the log ended pub0's session (0x88: its QoS 1 message
    # goes with it, clean start): a client still connected is still served.
    assert during.is_published() or pub0.disconnected.is_set(), "pub0 still connected but never acknowledged"
    time.sleep(1.5)

    open_watchers = {p: w for p, w in watchers.items() if still_open(w)}
    reasons = {p: getattr(w, "last_disconnect", None) for p, w in watchers.items() if p not in open_watchers}
    for p, packet in reasons.items():
        assert packet is not None and packet.reason == SERVER_UNAVAILABLE, \
            f"node {p}'s client closed without DISCONNECT 0x88: {packet}"
    # Still connected means still served.
    probe_node = next(iter(open_watchers), None)
    if probe_node is not None:
        probe = cluster.client(probe_node, uid("probe"))
        assert probe.publish("half/probe", b"probe", qos=1) == 0
        for p, w in open_watchers.items():
            got = wait_until(lambda: _raw_payloads(w), 10, message=f"the probe on node {p}'s open client")
            assert b"probe" in got, f"node {p}'s client is connected but no longer served: {got}"
    received = {p: s.settle(quiet=0.3) for p, s in subs.items()}
    common = min(len(r) for r in received.values())
    assert all(r[:common] == received[0][:common] for r in received.values()), received

    through = cluster.settle()
    cluster.stop()
    assert_logs_equal(cluster, max(through.values(), default=1))
    print(f"\nafter a {cluster.will_failover + 2}s 2|2 partition: clients still connected on nodes "
          f"{sorted(open_watchers)}, disconnected with 0x88 on {sorted(reasons)}; nodeLost records: "
          f"{len(node_lost_records(cluster[0]))}")


def _raw_payloads(raw: RawClient) -> list[bytes]:
    out = getattr(raw, "payloads", [])
    while True:
        try:
            packet = raw.recv(0.05)
        except TimeoutError:
            break
        if packet is None:
            break
        if packet.type == PUBLISH:
            out.append(packet.payload)
    raw.payloads = out
    return out


# --------------------------------------------------------------------------
# two nodes down: no quorum, then back
# --------------------------------------------------------------------------


def test_two_nodes_down_stops_commits_until_one_returns(cluster_factory):
    cluster = cluster_factory(will_failover=30).start()  # downtime is not a loss here
    sub = cluster.client(0, uid("sub"), clean=False, session_expiry=EXPIRY)
    assert sub.subscribe("two/#", 1) == [1]
    rx = Collector(sub)
    pub = cluster.client(1, uid("pub"))
    assert pub.publish("two/x", b"before", qos=1) == 0
    rx.wait_for([b"before"], 10)

    cluster[2].kill9()
    cluster[3].kill9()
    stalled = pub.publish("two/x", b"stalled", qos=1, wait=False)
    time.sleep(2.0)
    assert not stalled.is_published(), "acknowledged with two of four nodes down"
    assert rx.payloads == [b"before"]

    cluster[3].start(timeout=30)
    stalled.wait_for_publish(20)
    assert stalled.is_published(), f"no PUBACK once node 3 was back\n{cluster.diagnostics(20)}"
    rx.wait_for([b"stalled"], 10)
    cluster[2].start(timeout=30)
    late = cluster.client(2, uid("late"))
    assert late.publish("two/x", b"after", qos=1) == 0
    rx.wait_for([b"after"], 10)
    assert rx.settle(quiet=0.3) == [b"before", b"stalled", b"after"]
    assert not sub.disconnected.is_set(), f"node 0's client was disconnected (rc {sub.disconnect_rc})"

    through = cluster.settle()
    cluster.stop()
    assert_logs_equal(cluster, max(through.values()))


# --------------------------------------------------------------------------
# a wiped store rejoins (amnesia rule)
# --------------------------------------------------------------------------


def test_a_node_with_a_wiped_store_rejoins(cluster_factory):
    cluster = cluster_factory(will_failover=30).start()  # downtime is not a loss here
    pub = cluster.client(0, uid("pub"))
    for i in range(30):
        assert pub.publish("wipe/x", f"m{i:02d}".encode(), qos=1, retain=(i == 29)) in (0, 0x10)
    assert cluster[2].sigterm() == 0
    shutil.rmtree(cluster[2].dir / "data")
    for i in range(30, 40):
        assert pub.publish("wipe/x", f"m{i:02d}".encode(), qos=1) in (0, 0x10)  # 0x10: no subscriber

    cluster[2].start(timeout=30)
    assert "asks its peers for its last round" in cluster[2].log_text(current_run_only=True), cluster[2].log_tail()
    # It serves the cluster's state: the retained message, and new publishes.
    reader = cluster.client(2, uid("reader"))
    assert reader.subscribe("wipe/#", 1) == [1]
    assert reader.get(10).payload == b"m29", "the retained message is not there on the wiped node"
    assert pub.publish("wipe/x", b"after", qos=1) == 0
    assert reader.get(10).payload == b"after"
    other = cluster.client(2, uid("pub2"))
    assert other.publish("wipe/y", b"from-2", qos=1) == 0
    assert reader.get(10).payload == b"from-2"

    through = cluster.settle()
    cluster.stop()
    assert_logs_equal(cluster, max(through.values()))


# --------------------------------------------------------------------------
# the whole cluster restarts
# --------------------------------------------------------------------------


def test_the_whole_cluster_restarts_with_its_sessions_and_retained_messages(cluster_factory):
    cluster = cluster_factory().start()
    keeper_id = uid("keeper")
    keeper = cluster.client(1, keeper_id, clean=False, session_expiry=EXPIRY)
    assert keeper.subscribe("all/#", 1) == [1]
    keeper.disconnect()
    pub = cluster.client(0, uid("pub"))
    queued = [f"q{i:02d}".encode() for i in range(10)]
    for payload in queued:
        assert pub.publish("all/x", payload, qos=1) == 0
    assert pub.publish("all/retained", b"kept", qos=1, retain=True) == 0

    through = cluster.settle()
    codes = cluster.stop()
    assert all(code == 0 for code in codes.values()), codes
    assert_logs_equal(cluster, max(through.values()))
    cluster.clients.clear()
    cluster.start(timeout=30)

    back = cluster.client(3, keeper_id, connect=False)
    back.connect(clean=False, session_expiry=EXPIRY)
    assert back.session_present
    rx = Collector(back)
    rx.wait_for(queued + [b"kept"], 10)
    got = [m for m in rx.settle(quiet=0.3)]
    assert got == queued + [b"kept"], got
    for p in range(4):
        reader = cluster.client(p, uid(f"reader{p}"))
        assert reader.subscribe("all/retained", 1) == [1]
        msg = reader.get(10)
        assert (msg.payload, msg.retain) == (b"kept", True)


# --------------------------------------------------------------------------
# a node that rejoins an idle cluster late
# --------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["kept", "wiped"])
def test_a_node_rejoining_an_idle_cluster_late_gets_its_start_ordered(cluster_factory, store):
    """Node 1 stops; the others commit a little more, then go idle. Node 1 restarts (with its store
    kept, or wiped: then the amnesia rule makes it ask its peers for its last round first) but
    reaches its peers only 2 s later. Its start must still be ordered without any client traffic
    (the MQTT port opens). (A long will failover keeps the loss of a node out of this test: see
    test_a_node_back_after_the_will_failover_keeps_its_new_clients.)"""
    cluster = cluster_factory(will_failover=30).start()
    pub = cluster.client(0, uid("pub"))
    for i in range(20):
        assert pub.publish("idle/x", f"m{i:02d}".encode(), qos=1) in (0, 0x10)
    assert cluster[1].sigterm() == 0
    if store == "wiped":
        shutil.rmtree(cluster[1].dir / "data")
    for i in range(20, 30):
        assert pub.publish("idle/x", f"m{i:02d}".encode(), qos=1) in (0, 0x10)

    peers = [cluster[p].committee_index for p in (0, 2, 3)]
    cluster[1].set_blocked(peers)
    cluster[1].spawn()
    cluster[1].wait_blocking(peers)
    time.sleep(2.0)  # nothing happens in the cluster meanwhile
    cluster[1].set_blocked([])
    opened = _wait_port(cluster[1], 15)
    if not opened:
        lines = [line for line in cluster[1].log_text(current_run_only=True).splitlines()
                 if "amnesia" in line or "order this node's start" in line]
        stats = [line for line in cluster[0].log_text().splitlines() if '"message":"consensus"' in line]
        pytest.fail(f"node 1 ({store} store) did not get its start ordered by an idle cluster within 15 s "
                    f"of reaching its peers:\n" + "\n".join(lines[-4:])
                    + "\nnode 0's last consensus statistics:\n" + "\n".join(stats[-1:]))
    c1 = cluster.client(1, uid("sub1"))
    assert c1.subscribe("idle/#", 1) == [1]
    assert pub.publish("idle/x", b"after", qos=1) == 0
    assert c1.get(10).payload == b"after"


def _wait_port(node, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert node.alive(), f"node {node.position} exited\n{node.log_tail()}"
        if port_accepts(node.port):
            return True
        time.sleep(0.05)
    return False


# --------------------------------------------------------------------------
# a node back after the will failover
# --------------------------------------------------------------------------


def node_events(node, committee_index: int) -> list[tuple]:
    """(index, kind, incarnation) of the nodeStarted / nodeLost records naming ``committee_index``."""
    run = foxdump("log", str(node.dir), "--json")
    assert run.returncode == 0, run.stderr
    return [(r["index"], r["kind"], r["incarnation"]) for r in json.loads(run.stdout)["records"]
            if r.get("kind") in ("nodeStarted", "nodeLost") and r.get("node") == committee_index]


@pytest.mark.parametrize("stop", ["kill9", "sigterm"])
def test_a_node_back_after_the_will_failover_keeps_its_new_clients(cluster_factory, stop):
    """Node 1 is down (killed, or stopped for maintenance) for longer than the will failover, then
    starts again as a new incarnation. Whatever loss the cluster orders concerns the old
    incarnation; the clients of the new one keep their sessions (their SUBSCRIBE is acknowledged,
    they receive, they are not disconnected)."""
    cluster = cluster_factory().start()
    me = cluster[1].committee_index
    pub = cluster.client(0, uid("pub"))
    getattr(cluster[1], "kill9" if stop == "kill9" else "sigterm")()
    time.sleep(cluster.will_failover + 1.5)
    cluster[1].start(timeout=30)

    fresh = cluster.client(1, uid("fresh"))
    try:
        granted = fresh.subscribe("back/#", 1)
    except AssertionError:
        granted = "no SUBACK within 5 s"
    assert pub.publish("back/x", b"hello", qos=1) in (0, 0x10)
    fresh.disconnected.wait(3.0)  # a loss of the new incarnation follows its start within ~1 s
    events = node_events(cluster[0], me)
    started = [inc for _, kind, inc in events if kind == "nodeStarted"]
    lost_new = [(i, kind, inc) for i, kind, inc in events if kind == "nodeLost" and inc == started[-1]]
    assert not lost_new and granted == [1] and not fresh.disconnected.is_set(), (
        f"node 1 (committee index {me}) back after {cluster.will_failover + 1.5}s down ({stop}): its new "
        f"incarnation {started[-1]} was declared lost: {lost_new}; SUBSCRIBE of its new client: {granted}; "
        f"that client disconnected: {fresh.disconnected.is_set()}; node {me}'s records: {events}")
    assert fresh.get(10).payload == b"hello"
