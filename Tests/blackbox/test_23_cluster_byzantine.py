"""Nodes in the test-only Byzantine modes (FOXMQ_TEST_BYZANTINE):

- forge: every second it orders a close, a publish and an acknowledgement for every connection
  another node holds. Every honest node applies none of them (an entry's connection must belong
  to its origin), so no session notices, and every node logs the lie.
- equivocate: it signs two blocks for each of its rounds, one for half of its peers and one for
  the others. The honest nodes notice, and keep one order and identical logs."""

from __future__ import annotations

import os
import time

from cluster_support import cluster_factory, wait_until  # noqa: F401  (fixture)
from conftest import uid


def test_a_forging_node_breaks_no_session(cluster_factory):
    cluster = cluster_factory()
    cluster.start(positions=[0, 1, 2])
    os.environ["FOXMQ_TEST_BYZANTINE"] = "forge"
    try:
        cluster[3].start()
    finally:
        del os.environ["FOXMQ_TEST_BYZANTINE"]
    received: list[tuple[str, bytes]] = []
    sub = cluster.client(cluster[0], uid("victim"))

    def drain() -> int:
        while not sub.messages.empty():
            m = sub.messages.get()
            received.append((m.topic, m.payload))
        return len(received)
    assert sub.subscribe("#", 1) == [1]
    pub = cluster.client(cluster[1], uid("pub"))
    for i in range(5):
        pub.publish("real/topic", f"before-{i}".encode(), qos=1)
    # The liar has had time to forge for both clients (it forges once a second).
    wait_until(lambda: "ignored an entry of node" in cluster[0].log_text(), 15, message="a forged entry ignored")
    time.sleep(2)
    for i in range(5):
        pub.publish("real/topic", f"after-{i}".encode(), qos=1)
    wait_until(lambda: drain() >= 10, 10, message="the ten real messages")
    time.sleep(0.5)
    drain()
    assert [p for _, p in received] == [f"before-{i}".encode() for i in range(5)] + [
        f"after-{i}".encode() for i in range(5)
    ]
    assert all(not t.startswith("forged/") for t, _ in received)
    assert sub.c.is_connected() and pub.c.is_connected()
    for node in (cluster[1], cluster[2]):
        assert "ignored an entry of node" in node.log_text(), f"node {node.position} did not see the lie"
    assert "test Byzantine mode" in cluster[3].log_text()


def test_an_equivocating_node_breaks_neither_agreement_nor_any_session(cluster_factory):
    """Node 3 (FOXMQ_TEST_BYZANTINE=equivocate) signs two blocks for each of its rounds and sends
    one to half of its peers, the other to the rest. The three honest nodes see the equivocation
    (their statistics count it), keep committing, deliver one identical sequence to subscribers
    on each of them, acknowledge every publish, and keep identical logs (foxdump compare). The
    liar hides its twins from its own core (whose tripwire would halt it), so it lies all along."""
    cluster = cluster_factory(will_failover=60)
    cluster.start(positions=[0, 1, 2])
    os.environ["FOXMQ_TEST_BYZANTINE"] = "equivocate"
    try:
        cluster[3].spawn()
    finally:
        del os.environ["FOXMQ_TEST_BYZANTINE"]
    honest = [cluster[0], cluster[1], cluster[2]]
    subs = []
    for node in honest:
        c = cluster.client(node, uid(f"sub{node.position}"))
        assert c.subscribe("eq/#", 1) == [1]
        subs.append(c)
    pubs = [cluster.client(node, uid(f"pub{node.position}")) for node in honest]
    expected = []
    infos = []
    for i in range(100):
        for p, pub in enumerate(pubs):
            payload = f"p{p}-{i:03d}".encode()
            expected.append(payload)
            infos.append(pub.publish(f"eq/{p}", payload, qos=1, wait=False))
        if i % 20 == 0:
            time.sleep(0.2)  # spread over many rounds, so that node 3 leads some of them
    for info in infos:
        info.wait_for_publish(30)
        assert info.is_published()
    sequences = []
    for c in subs:
        got = [m.payload for m in c.get_n(len(expected), timeout=30)]
        time.sleep(0.3)
        assert c.messages.empty(), "duplicates delivered"
        sequences.append(got)
    assert sorted(sequences[0]) == sorted(expected)
    assert sequences[1] == sequences[0] and sequences[2] == sequences[0]

    def seen() -> bool:
        return any('"equivocationsSeen":"' in line and '"equivocationsSeen":"0"' not in line
                   for node in honest for line in node.log_text().splitlines())
    wait_until(seen, 30, message="an honest node's statistics count the equivocation")
    assert "test Byzantine mode: this node signs two blocks" in cluster[3].log_text()
    assert cluster[3].alive(), f"the liar stopped lying early:\n{cluster[3].log_tail()}"
    for c in subs + pubs:
        assert c.c.is_connected()
    codes = {n.position: n.sigterm() for n in honest}
    assert all(code == 0 for code in codes.values()), codes
    for other in (1, 2):
        run = cluster.compare(0, other)
        assert run.returncode == 0, f"node 0 and node {other} differ:\n{run.stdout}\n{run.stderr}"
