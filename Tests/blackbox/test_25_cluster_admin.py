"""Users and access rules in a cluster (FoxMQ only): a change made with ``foxmq user`` or
``foxmq acl`` on one node's admin database is ordered, so every node authenticates and authorizes
alike, and every node's database shows it (``foxmq user list``). Removing a user on another node
removes it everywhere; a node that was down when a user was added learns it when it comes back.
"""

from __future__ import annotations

import time

import pytest

from conftest import PahoClient, V5, uid
from cluster_support import cluster_factory, foxmq, wait_until  # noqa: F401

pytestmark = pytest.mark.foxmq_only

NOT_AUTHORIZED = 0x87
BAD_CREDENTIALS = 0x86


def connack(node, username: str, password: str) -> int:
    """The CONNACK reason code node gives alice's credentials (0 = accepted)."""
    c = PahoClient(node, uid("auth"), proto=V5, username=username, password=password)
    try:
        rc = c.connect(expect_ok=False)[0]
    finally:
        try:
            c.disconnect()
        except Exception:
            pass
    return rc


def user_list(node) -> str:
    run = foxmq("user", "list", "-o", str(node.dir))
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_a_user_added_on_one_node_logs_in_on_every_node(cluster_factory):
    cluster = cluster_factory(anonymous=False).start()
    assert connack(cluster[0], "alice", "alice-pw") != 0
    added = foxmq("user", "add", "alice", "alice-pw", "-o", str(cluster[0].dir))
    assert added.returncode == 0, added.stderr
    for node in cluster.nodes:
        wait_until(lambda node=node: connack(node, "alice", "alice-pw") == 0, 15,
                   message=f"alice logs in on node {node.position}")
        assert connack(node, "alice", "wrong") in (BAD_CREDENTIALS, NOT_AUTHORIZED)
    # Every node's own database holds the user (copied in from the ordered change).
    for node in cluster.nodes:
        wait_until(lambda node=node: "alice" in user_list(node), 10,
                   message=f"node {node.position}'s database lists alice")

    # A rule added on node 1 holds on node 3.
    rule = foxmq("acl", "add", "--user", "alice", "--publish", "open/#", "-o", str(cluster[1].dir))
    assert rule.returncode == 0, rule.stderr
    alice = PahoClient(cluster[3], uid("alice"), proto=V5, username="alice", password="alice-pw")
    cluster.clients.append(alice)
    assert alice.connect()[0] == 0

    def refused_on_node3() -> bool:
        return alice.publish("closed/x", b"no", qos=1) == NOT_AUTHORIZED
    wait_until(refused_on_node3, 15, message="node 3 refuses alice's publish outside open/#")
    assert alice.publish("open/x", b"yes", qos=1) in (0x00, 0x10)  # 0x10: no subscribers

    # Removed on node 2: refused everywhere, and gone from every database.
    removed = foxmq("user", "remove", "alice", "-o", str(cluster[2].dir))
    assert removed.returncode == 0, removed.stderr
    for node in cluster.nodes:
        wait_until(lambda node=node: connack(node, "alice", "alice-pw") != 0, 15,
                   message=f"node {node.position} refuses the removed alice")
        wait_until(lambda node=node: "alice" not in user_list(node), 10,
                   message=f"node {node.position}'s database no longer lists alice")


def test_a_node_down_during_the_change_learns_it_when_back(cluster_factory):
    cluster = cluster_factory(will_failover=60, anonymous=False).start()
    cluster[3].sigterm()
    added = foxmq("user", "add", "bob", "bob-pw", "-o", str(cluster[1].dir))
    assert added.returncode == 0, added.stderr
    wait_until(lambda: connack(cluster[0], "bob", "bob-pw") == 0, 15, message="bob logs in on node 0")
    cluster[3].start()
    wait_until(lambda: connack(cluster[3], "bob", "bob-pw") == 0, 20, message="bob logs in on the restarted node 3")
    wait_until(lambda: "bob" in user_list(cluster[3]), 10, message="node 3's database lists bob")
