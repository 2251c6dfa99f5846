"""A 4-node FoxMQ cluster of real processes (FoxMQ only): every publish is ordered by the consensus
core, so every subscriber on every node sees the same sequence and every node's log holds the same
records (``foxdump compare``). Nodes survive kill -9 of one member (f = 1), a 2|2 partition commits
nothing and diverges in nothing, a member with another address book is refused, persistent sessions
move between nodes, a lost node's wills are published by the others, start-up refuses a key not in
the book and a book listing an address twice, and a node restored from an old snapshot rejoins.

Each test starts its own cluster (``cluster_support.cluster_factory``): BASE/node-i, key_i.pem,
ports fresh, ``--leader-timeout-millis 20 --will-failover-seconds 3``, fault injection on. Tests in
which a node is down or cut off without that being their subject use a longer will failover, so
that the loss of a node (test 6, and test_23) stays out of them.
"""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest

from conftest import free_port, port_accepts, uid
from cluster_support import (  # noqa: F401 (cluster_factory is a fixture)
    Collector, Streamer, cluster_factory, foxdump, foxmq, free_port_block, wait_until,
)

pytestmark = pytest.mark.foxmq_only

EXPIRY = 300


def last_log_index(node) -> int:
    """The node's last log index (``foxdump info``, read-only, fine while the node runs)."""
    run = foxdump("info", str(node.dir), "--json")
    assert run.returncode == 0, f"foxdump info {node.dir} exited {run.returncode}:\n{run.stdout}\n{run.stderr}"
    return int(json.loads(run.stdout)["lastLogIndex"])


def assert_compare(cluster, a: int, b: int, *, through: int = 1) -> dict:
    """``foxdump compare node-a node-b`` exits 0, equal, having compared both logs at least up to
    index ``through`` (so b holds everything a held then: the records a stop adds at the end,
    the stopping nodes' client disconnects, may be ordered on some nodes only)."""
    run = foxdump("compare", str(cluster[a].dir), str(cluster[b].dir), "--json")
    assert run.returncode == 0, (f"foxdump compare node-{a} node-{b} exited {run.returncode}:\n"
                                 f"{run.stdout}\n{run.stderr}")
    document = json.loads(run.stdout)
    assert document["equal"] is True, document
    assert document["comparedThrough"] >= through, \
        f"node-{a} vs node-{b}: compared only through {document['comparedThrough']} < {through}: {document}"
    return document


def assert_stopped_cleanly(codes: dict):
    bad = {p: c for p, c in codes.items() if c != 0}
    assert not bad, f"nodes did not stop cleanly on SIGTERM (position: exit code): {bad}"


def in_order(received: list[bytes], prefix: bytes) -> list[bytes]:
    return [p for p in received if p.startswith(prefix)]


# --------------------------------------------------------------------------
# 1. every subscriber on every node sees the same sequence
# --------------------------------------------------------------------------

PER_PUBLISHER = 200


def test_identical_sequences_on_every_node(cluster_factory):
    cluster = cluster_factory()
    metrics_port = free_port()
    cluster[0].extra_args = ["--metrics-addr", f"127.0.0.1:{metrics_port}"]
    cluster.start()
    subs = []
    for node in cluster.nodes:
        c = cluster.client(node, uid(f"sub{node.position}"))
        assert c.subscribe("#", 1) == [1]
        subs.append(Collector(c))
    pubs = [cluster.client(node, uid(f"pub{node.position}")) for node in cluster.nodes]

    expected = set()
    infos = []
    # Interleave the four publishers' sends so that they really are concurrent in the cluster.
    for i in range(PER_PUBLISHER):
        for p, pub in enumerate(pubs):
            payload = f"p{p}-{i:04d}".encode()
            expected.add(payload)
            infos.append((payload, pub.publish(f"seq/p{p}", payload, qos=1, wait=False)))
    for payload, info in infos:
        info.wait_for_publish(30)
        assert info.is_published(), f"no PUBACK for {payload!r}"

    sequences = []
    for s in subs:
        s.wait_for(expected, 30, "published messages")
        got = s.settle(quiet=0.3)
        assert len(got) == len(expected), f"{s.client.client_id}: {len(got)} messages, duplicates?"
        sequences.append(got)
    for position, seq in enumerate(sequences[1:], start=1):
        if seq != sequences[0]:
            first = next(i for i, (a, b) in enumerate(zip(sequences[0], seq)) if a != b)
            pytest.fail(f"node {position}'s subscriber diverges from node 0's at message {first}: "
                        f"{sequences[0][first - 2:first + 3]} vs {seq[first - 2:first + 3]}")
    for p in range(len(pubs)):
        mine = in_order(sequences[0], f"p{p}-".encode())
        assert mine == [f"p{p}-{i:04d}".encode() for i in range(PER_PUBLISHER)], \
            f"publisher {p}'s messages out of its publish order"

    through = last_log_index(cluster[0])
    assert through >= 4 * PER_PUBLISHER
    # Node 0's metrics: its own entries' commit latency, the commits' sizes and apply times,
    # the store's writes, its peers.
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    def sample(name):
        line = next((l for l in text.splitlines() if l.startswith(name + " ")), None)
        assert line is not None, f"{name} not exported"
        return float(line.split()[1])
    assert sample("foxmq_consensus_commit_latency_seconds_count") >= PER_PUBLISHER
    assert 0 < sample("foxmq_consensus_commit_latency_seconds_sum") / \
        sample("foxmq_consensus_commit_latency_seconds_count") < 10
    assert sample("foxmq_orderer_batch_events_sum") >= 4 * PER_PUBLISHER
    assert sample("foxmq_store_write_seconds_count") >= 1
    # Sampled every 5 s, the first time as the listeners open: a quorum (3 of 4) was up then.
    assert sample("foxmq_cluster_peers_connected") >= 2
    assert_stopped_cleanly(cluster.stop())
    for other in range(1, cluster.n):
        assert_compare(cluster, 0, other, through=through)


# --------------------------------------------------------------------------
# 2. kill -9 of one node under load: the other three go on committing
# --------------------------------------------------------------------------


def test_kill9_under_load_loses_no_acknowledged_message(cluster_factory):
    # The failover is kept out of this test (node 3 may be down longer than 3 s here; a node back
    # after the failover: test_23).
    cluster = cluster_factory(will_failover=30).start()
    keeper_id = uid("keeper")
    keeper = cluster.client(2, keeper_id, clean=False, session_expiry=EXPIRY)
    assert keeper.subscribe("load/#", 1) == [1]
    received = Collector(keeper)

    streams = [Streamer(cluster.client(p, uid(f"stream{p}")), f"load/n{p}", f"n{p}") for p in (0, 1)]
    for s in streams:
        s.start()
    try:
        for s in streams:
            s.wait_acked(60, 30)
        at_kill = [len(s.acked) for s in streams]
        killed_at = time.monotonic()
        cluster[3].kill9()
        for s, before in zip(streams, at_kill):
            s.wait_acked(before + 60, 30)
    finally:
        for s in streams:
            s.finish()
    for s in streams:
        assert s.error is None, f"{s.prefix}: {s.error}\n{cluster.diagnostics(20)}"
    # Longest wait for a PUBACK across the kill (reported on failure, handy when tuning).
    gaps = [b - a for s in streams for a, b in zip(s.ack_times, s.ack_times[1:]) if b > killed_at - 1]
    acked = [m for s in streams for m in s.acked]
    got = received.wait_for(acked, 30, "acknowledged messages")
    for s in streams:
        mine = [p for p in got if p.startswith(s.prefix.encode() + b"-")]
        deduplicated = list(dict.fromkeys(mine))
        assert deduplicated[:len(s.acked)] == s.acked, \
            f"{s.prefix}: acknowledged messages not delivered in publish order (max PUBACK gap {max(gaps, default=0):.2f}s)"

    # Node 3 comes back, replays its store and catches up by block sync.
    cluster[3].start(timeout=30)
    late = cluster.client(3, uid("late"))
    assert late.subscribe("load/#", 1) == [1]
    late_rx = Collector(late)
    assert late.publish("load/n3", b"n3-after-restart", qos=1) == 0
    received.wait_for([b"n3-after-restart"], 10, "the restarted node's publish")
    late_rx.wait_for([b"n3-after-restart"], 10, "its own publish on the restarted node")
    probe = cluster.client(0, uid("probe"))
    assert probe.publish("load/n0", b"n0-after-restart", qos=1) == 0
    late_rx.wait_for([b"n0-after-restart"], 10, "a publish of node 0 on the restarted node")

    through = last_log_index(cluster[0])
    assert_stopped_cleanly(cluster.stop())
    assert_compare(cluster, 0, 3, through=through)
    assert_compare(cluster, 0, 2, through=through)


# --------------------------------------------------------------------------
# 3. a 2|2 partition commits nothing, and heals without divergence
# --------------------------------------------------------------------------


def test_partition_two_two_commits_nothing_then_heals_without_divergence(cluster_factory):
    # A will failover well above the partition's length: what a longer partition does to the
    # sessions is test_23's matter.
    cluster = cluster_factory(will_failover=15).start()
    subs = []
    for node in cluster.nodes:
        c = cluster.client(node, uid(f"psub{node.position}"))
        assert c.subscribe("part/#", 1) == [1]
        subs.append(Collector(c))
    pubs = [cluster.client(node, uid(f"ppub{node.position}")) for node in cluster.nodes]
    assert pubs[0].publish("part/x", b"before", qos=1) == 0
    for s in subs:
        s.wait_for([b"before"], 10)

    cluster.partition([0, 1], [2, 3])
    cut_at = time.monotonic()
    during = [pubs[0].publish("part/x", b"during-0", qos=1, wait=False),
              pubs[2].publish("part/x", b"during-2", qos=1, wait=False)]
    time.sleep(2.0)
    assert not any(info.is_published() for info in during), \
        "a publish was acknowledged while no side of the partition had a quorum"
    for s in subs:
        assert s.payloads == [b"before"], f"{s.client.client_id}: delivered without quorum: {s.payloads}"
    partitioned_for = time.monotonic() - cut_at

    cluster.heal()
    for info in during:
        info.wait_for_publish(20)
        assert info.is_published(), f"no PUBACK after the heal\n{cluster.diagnostics(20)}"
    assert pubs[1].publish("part/x", b"after-1", qos=1) == 0
    assert pubs[3].publish("part/x", b"after-3", qos=1) == 0
    wanted = [b"before", b"during-0", b"during-2", b"after-1", b"after-3"]
    sequences = []
    for s in subs:
        s.wait_for(wanted, 20)
        sequences.append(s.settle(quiet=0.3))
    for position, seq in enumerate(sequences):
        assert sorted(seq) == sorted(wanted), f"node {position}'s subscriber: {seq} (partition {partitioned_for:.1f}s)"
        assert seq == sequences[0], f"divergence: node 0 saw {sequences[0]}, node {position} saw {seq}"
    for c in subs:
        assert not c.client.disconnected.is_set(), \
            f"{c.client.client_id} was disconnected (rc {c.client.disconnect_rc}) by the partition"

    through = last_log_index(cluster[0])
    assert_stopped_cleanly(cluster.stop())
    for other in range(1, cluster.n):
        assert_compare(cluster, 0, other, through=through)


# --------------------------------------------------------------------------
# 4. a member with another address book is refused
# --------------------------------------------------------------------------


def test_a_node_with_another_address_book_is_refused(cluster_factory):
    cluster = cluster_factory()
    book = cluster[3].dir / "address-book.toml"
    original = f'addr = "127.0.0.1:{cluster[1].cluster_port}"'
    text = book.read_text()
    assert original in text
    changed_port = cluster[1].cluster_port + 1000
    book.write_text(text.replace(original, f'addr = "127.0.0.1:{changed_port}"'))

    for node in cluster.nodes:
        node.spawn()
    cluster[3].expected_exit = True  # it may give up and exit: that is a refusal too
    for p in (0, 1, 2):
        cluster[p].wait_mqtt(30)
    deadline = cluster[3].spawned_at + 5
    while time.monotonic() < deadline:
        assert not port_accepts(cluster[3].port), \
            f"node 3 opened its MQTT port with another address book\n{cluster[3].log_tail()}"
        time.sleep(0.1)

    def named():
        logs = {n.position: n.log_text() for n in cluster.nodes}
        return {p: re.findall(r".*entry 1 differs.*", text) for p, text in logs.items() if "entry 1 differs" in text}
    lines = wait_until(named, 5, message="a log line naming the differing entry 1")
    assert any(str(changed_port) in line for found in lines.values() for line in found), lines

    a = cluster.client(0, uid("a"))
    b = cluster.client(1, uid("b"))
    assert b.subscribe("book/#", 1) == [1]
    assert a.publish("book/x", b"three-of-four", qos=1) == 0
    assert b.get(10).payload == b"three-of-four"


# --------------------------------------------------------------------------
# 5. persistent sessions move between nodes
# --------------------------------------------------------------------------


def test_a_persistent_session_resumes_on_another_node(cluster_factory):
    cluster = cluster_factory().start()
    client_id = uid("roamer")
    roamer = cluster.client(0, client_id, clean=False, session_expiry=EXPIRY)
    assert roamer.subscribe("roam/#", 1) == [1]
    roamer.disconnect()

    pub = cluster.client(2, uid("pub"))
    queued = [f"queued-{i:02d}".encode() for i in range(20)]
    for payload in queued:
        assert pub.publish("roam/x", payload, qos=1) == 0

    again = cluster.client(1, client_id, connect=False)
    again.connect(clean=False, session_expiry=EXPIRY)
    assert again.session_present, "the session made on node 0 is not present on node 1"
    got = Collector(again)
    got.wait_for(queued, 10, "queued messages")
    assert got.settle(quiet=0.5) == queued, "queued messages not delivered exactly once, in order"
    # And it is live there.
    assert pub.publish("roam/x", b"live", qos=1) == 0
    got.wait_for([b"live"], 10)


def test_qos2_exactly_once_across_a_node_kill(cluster_factory):
    cluster = cluster_factory().start()
    client_id = uid("q2")
    sub = cluster.client(0, client_id, clean=False, session_expiry=EXPIRY)
    assert sub.subscribe("q2/#", 2) == [2]
    rx = Collector(sub)
    pub = cluster.client(1, uid("q2pub"))
    first = [f"one-{i}".encode() for i in range(5)]
    for payload in first:
        assert pub.publish("q2/x", payload, qos=2) == 0
    rx.wait_for(first, 10)
    # A burst still flowing (some deliveries mid-handshake) when node 0 dies.
    burst = [f"burst-{i:02d}".encode() for i in range(30)]
    infos = [pub.publish("q2/x", payload, qos=2, wait=False) for payload in burst]
    wait_until(lambda: sum(p.startswith(b"burst-") for p in rx.payloads) >= 3, 10,
               message="the first messages of the burst")
    cluster[0].kill9()
    for info in infos:
        info.wait_for_publish(10)
        assert info.is_published(), "the burst's publisher (node 1) lost a PUBCOMP"
    sub.wait_disconnected(10)
    sub.stop()
    delivered_before_kill = len(rx.payloads)
    while_away = [f"away-{i}".encode() for i in range(5)]
    for payload in while_away:
        assert pub.publish("q2/x", payload, qos=2) == 0

    # The same paho object (its QoS 2 state kept), now pointed at node 2.
    sub.port = cluster[2].port
    sub.broker = cluster[2]
    sub.connect(clean=False, session_expiry=EXPIRY)
    assert sub.session_present, "the session of the killed node 0 is not present on node 2"
    after = [f"after-{i}".encode() for i in range(5)]
    for payload in after:
        assert pub.publish("q2/x", payload, qos=2) == 0
    everything = first + burst + while_away + after
    rx.wait_for(everything, 20, "QoS 2 messages")
    got = rx.settle(quiet=0.5)
    duplicated = sorted({p for p in got if got.count(p) > 1})
    assert not duplicated, (f"QoS 2 payloads delivered more than once: {duplicated} "
                            f"({delivered_before_kill} delivered before the kill): {got}")
    assert got == everything, f"not in publish order: {got}"


# --------------------------------------------------------------------------
# 6. the wills of a lost node's clients
# --------------------------------------------------------------------------


def test_the_will_of_a_client_of_a_killed_node_is_published(cluster_factory):
    cluster = cluster_factory().start()
    watcher = cluster.client(0, uid("watcher"))
    assert watcher.subscribe("wills/#", 1) == [1]
    doomed = cluster.client(3, uid("doomed"), connect=False)
    doomed.connect(session_expiry=0, will={"topic": "wills/doomed", "payload": b"node 3 is gone", "qos": 1})
    # The connect is ordered: once another client's publish of node 3 arrived, node 0 knows it.
    other = cluster.client(3, uid("other"))
    assert other.publish("wills/hello", b"hello", qos=1) == 0
    assert watcher.get(10).payload == b"hello"

    killed = time.monotonic()
    cluster[3].kill9()
    msg = watcher.get(cluster.will_failover + 7)
    took = time.monotonic() - killed
    assert (msg.topic, msg.payload) == ("wills/doomed", b"node 3 is gone")
    assert took >= cluster.will_failover - 0.5, f"will published {took:.1f}s after the kill, before the failover time"
    watcher.expect_none(0.5)


# --------------------------------------------------------------------------
# 7. start-up refusals
# --------------------------------------------------------------------------


def test_start_refuses_a_key_not_in_the_book_and_a_duplicate_address(tmp_path):
    ports = free_port_block(6)
    mine, other = tmp_path / "mine", tmp_path / "other"
    assert foxmq("address-book", "from-range", "127.0.0.1", str(ports[0]), str(ports[3]),
                 "-o", str(mine)).returncode == 0
    assert foxmq("address-book", "from-range", "127.0.0.1", str(ports[4]), str(ports[5]),
                 "-o", str(other)).returncode == 0

    def run(directory, key):
        return foxmq("run", str(directory), "--secret-key-file", str(key), "--mqtt-addr",
                     f"127.0.0.1:{free_port_block(1)[0]}", "--cluster-addr", f"127.0.0.1:{ports[0]}",
                     "--allow-anonymous-login", timeout=30)

    stranger = run(mine, other / "key_0.pem")
    output = stranger.stdout + stranger.stderr
    assert stranger.returncode != 0, output
    assert str(other / "key_0.pem") in output and "not in" in output, output

    text = (mine / "address-book.toml").read_text()
    twice = text.replace(f'"127.0.0.1:{ports[1]}"', f'"127.0.0.1:{ports[0]}"')
    assert twice != text
    (mine / "address-book.toml").write_text(twice)
    duplicate = run(mine, mine / "key_0.pem")
    output = duplicate.stdout + duplicate.stderr
    assert duplicate.returncode != 0, output
    assert str(mine / "address-book.toml") in output, output
    assert f"127.0.0.1:{ports[0]}" in output, output


# --------------------------------------------------------------------------
# 8. a node restored from an old snapshot rejoins
# --------------------------------------------------------------------------


def test_a_node_restored_from_an_old_snapshot_rejoins(cluster_factory):
    cluster = cluster_factory(will_failover=30).start()  # node 1's downtime is not a loss here
    pub = cluster.client(0, uid("spub"))
    subs = {}
    for p in (0, 2, 3):
        c = cluster.client(p, uid(f"ssub{p}"))
        assert c.subscribe("snap/#", 1) == [1]
        subs[p] = Collector(c)
    early = [f"early-{i:02d}".encode() for i in range(20)]
    for payload in early:
        assert pub.publish("snap/x", payload, qos=1) == 0
    for s in subs.values():
        s.wait_for(early, 10)

    snapshot = cluster.base / "node-1.snap"
    created = foxmq("snapshot", "create", str(snapshot), str(cluster[1].dir))
    assert created.returncode == 0, f"snapshot create failed:\n{created.stdout}\n{created.stderr}"

    middle = [f"middle-{i:02d}".encode() for i in range(30)]
    for payload in middle:
        assert pub.publish("snap/x", payload, qos=1) == 0
    assert cluster[1].sigterm() == 0

    shutil.rmtree(cluster[1].dir / "data")
    admin = cluster[1].dir / "admin.sqlite"
    if admin.exists():
        admin.unlink()
    restored = foxmq("snapshot", "restore", str(snapshot), str(cluster[1].dir))
    assert restored.returncode == 0, f"snapshot restore failed:\n{restored.stdout}\n{restored.stderr}"

    while_down = [f"down-{i:02d}".encode() for i in range(10)]
    for payload in while_down:
        assert pub.publish("snap/x", payload, qos=1) == 0

    cluster[1].start(timeout=30)
    assert "asks its peers for its last round" in cluster[1].log_text(current_run_only=True), \
        cluster[1].log_tail()
    s1 = cluster.client(1, uid("ssub1"))
    assert s1.subscribe("snap/#", 1) == [1]
    subs[1] = Collector(s1)
    p1 = cluster.client(1, uid("spub1"))
    late = [f"late-{i:02d}".encode() for i in range(10)]
    for i, payload in enumerate(late):
        assert (p1 if i % 2 else pub).publish("snap/x", payload, qos=1) == 0
    for p, s in subs.items():
        s.wait_for(late, 15, f"late messages on node {p}")
    tails = [[m for m in s.payloads if m.startswith(b"late-")] for s in subs.values()]
    assert all(t == tails[0] for t in tails), tails

    through = last_log_index(cluster[0])
    assert_stopped_cleanly(cluster.stop())
    assert_compare(cluster, 0, 1, through=through)
    assert_compare(cluster, 0, 2, through=through)


def test_a_busy_cluster_port_stops_the_start_with_its_own_error(tmp_path):
    """A cluster member whose --cluster-addr is taken cannot start its ordering: the start fails
    with that error (not a generic "service finished" one), the store is closed, exit 2."""
    import socket
    ports = free_port_block(4)
    book = tmp_path / "book"
    assert foxmq("address-book", "from-range", "127.0.0.1", str(ports[0]), str(ports[3]),
                 "-o", str(book)).returncode == 0
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", ports[0]))
    busy.listen()
    try:
        started = time.monotonic()
        result = foxmq("run", str(book), "--secret-key-file", str(book / "key_0.pem"), "--mqtt-addr",
                       f"127.0.0.1:{free_port_block(1)[0]}", "--cluster-addr", f"127.0.0.1:{ports[0]}",
                       "--allow-anonymous-login", timeout=60)
    finally:
        busy.close()
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "finished unexpectedly" not in output, output
    assert "in use" in output.lower(), output
    assert "store closed" in output, output
    assert time.monotonic() - started < 30, output


def test_sigterm_while_waiting_for_a_quorum_stops_the_node(tmp_path):
    """A member started alone waits for a quorum to order its start, listeners closed; SIGTERM
    then gives the start up and the node exits 0 without spinning (it used to wait on)."""
    import signal
    import subprocess
    from conftest import FOXMQ_BIN
    ports = free_port_block(4)
    book = tmp_path / "book"
    assert foxmq("address-book", "from-range", "127.0.0.1", str(ports[0]), str(ports[3]),
                 "-o", str(book)).returncode == 0
    mqtt = free_port_block(1)[0]
    node = subprocess.Popen([FOXMQ_BIN, "run", str(book), "--secret-key-file", str(book / "key_0.pem"),
                             "--mqtt-addr", f"127.0.0.1:{mqtt}", "--cluster-addr", f"127.0.0.1:{ports[0]}",
                             "--allow-anonymous-login"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(2)
        assert node.poll() is None
        assert not port_accepts(mqtt), "listeners opened before the start was ordered"
        started = time.monotonic()
        node.send_signal(signal.SIGTERM)
        code = node.wait(timeout=40)
        output = node.stdout.read().decode(errors="replace")
        assert code == 0, output
        assert time.monotonic() - started < 35, output
        assert "store closed" in output, output
        assert output.count("waiting for a quorum") < 20, "the start's wait spun after the signal"
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
