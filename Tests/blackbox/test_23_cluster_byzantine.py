"""A node in the test-only Byzantine mode (FOXMQ_TEST_BYZANTINE=forge) orders, every second,
a close, a publish and an acknowledgement for every connection another node holds. Every honest
node applies none of them (an entry's connection must belong to its origin), so no session
notices, and every node logs the lie."""

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
