"""A full disk (FoxMQ only): the store on a small tmpfs fills up; the node stays up, holds the
acknowledgement it cannot make durable, refuses what grows the state with 0x97, logs why, and
resumes when space returns; nothing acknowledged is lost and the store opens after a kill -9.

Needs root (mount); CI runs as root."""

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import CONNACK, PUBACK, PUBLISH, V5, publish_packet, uid
from test_14_durability import DurableBroker, clients  # noqa: F401 (fixture)

pytestmark = pytest.mark.foxmq_only


@pytest.fixture
def small_disk():
    assert os.geteuid() == 0, "this test mounts a tmpfs: run it as root (CI does)"
    mountpoint = tempfile.mkdtemp(prefix="foxmq-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mountpoint], check=True)
    yield Path(mountpoint)
    subprocess.run(["umount", "-l", mountpoint], check=False)
    os.rmdir(mountpoint)


def test_full_disk_refuses_then_resumes(small_disk, clients):
    config = Path(tempfile.mkdtemp(prefix="foxmq-full-"))
    broker = DurableBroker(config, extra_args=["--data-dir", str(small_disk / "data")])
    try:
        broker.start()
        filler = small_disk / "filler"
        big = os.urandom(200_000)
        acknowledged = []
        held_pid = None
        pub = clients.raw(broker)
        pub.connect(uid("pub"))
        with open(filler, "wb") as f:
            f.write(b"\0" * (22 << 20))
        # Retained QoS 1 messages until one is not acknowledged: the disk is full.
        for n in range(1, 40):
            pub.send(publish_packet(f"big/{n}", big, qos=1, retain=True, packet_id=n))
            try:
                ack = pub.recv(timeout=3.0)
            except TimeoutError:
                held_pid = n
                break
            assert ack.type == PUBACK and ack.packet_id == n and ack.reason in (0x00, 0x10), ack
            acknowledged.append(n)
        assert held_pid is not None, "the disk never filled"
        assert broker.alive(), broker.log_tail()
        assert "store full" in broker.log_text()
        # While full: a new session is refused with 0x97 in its CONNACK; the node stays up.
        other = clients.raw(broker)
        refused = other.connect(uid("late"), expect_ok=False)
        assert refused.type == CONNACK and refused.reason == 0x97
        # Space returns: the held acknowledgement comes, new publishes are taken again.
        filler.unlink()
        late_ack = pub.recv(timeout=5.0)
        assert late_ack is not None and late_ack.type == PUBACK and late_ack.packet_id == held_pid
        acknowledged.append(held_pid)
        assert pub.publish("big/after", b"after", qos=1, retain=True).reason in (0x00, 0x10)
        assert "space again" in broker.log_text()
        # Nothing acknowledged was lost, and the store opens after a crash.
        broker.kill9()
        broker.start()
        sub = clients.raw(broker)
        sub.connect(uid("sub"))
        sub.subscribe("big/#", qos=0)
        seen = {}
        while True:
            try:
                p = sub.recv(timeout=2.0)
            except TimeoutError:
                break
            if p.type == PUBLISH:
                seen[p.topic] = p.payload
        for n in acknowledged:
            assert seen.get(f"big/{n}") == big, f"big/{n} acknowledged but missing after the restart"
        assert seen.get("big/after") == b"after"
    finally:
        broker.close()
        shutil.rmtree(config, ignore_errors=True)
