"""Snapshots (FoxMQ only): ``foxmq snapshot create FILE DIR`` while the node runs under load, and
``foxmq snapshot restore FILE DIR2`` into a new directory, from which ``foxmq run DIR2`` starts with
the retained messages and the persistent sessions (subscriptions and queued messages) as of the
snapshot.  Also the one-process-per-data-directory lock (``DATA/node.lock``): a second node, or a
restore, on a directory a node runs on is refused with the holder's pid.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import FOXMQ_BIN, QUIET, TIMEOUT, V5, PahoClient, free_port, uid
from test_14_durability import DurableBroker

pytestmark = pytest.mark.foxmq_only

EXPIRY = 3600
FOXDUMP_BIN = os.environ.get("FOXDUMP_BIN", str(Path(FOXMQ_BIN).with_name("foxdump")))


def foxmq(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([FOXMQ_BIN, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def nodes(request):
    """nodes(directory=None) -> a started DurableBroker (a fresh DIR unless given); all stopped and
    their directories removed at teardown."""
    started: list[DurableBroker] = []
    dirs: list[str] = []

    def start(directory: Path | None = None) -> DurableBroker:
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="foxmq-snap-"))
            dirs.append(str(directory))
        b = DurableBroker(directory)
        started.append(b)
        return b.start()

    def scratch() -> Path:
        d = tempfile.mkdtemp(prefix="foxmq-snap-")
        dirs.append(d)
        return Path(d)

    start.scratch = scratch
    yield start

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for b in started:
        b.close()
        if failed:
            print(f"\n{b!r}\n{b.log_tail(60)}")
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


class Streamer(threading.Thread):
    """Publishes QoS 1 messages b"0", b"1", ... on ``load/stream``, one at a time (each waits for its
    PUBACK), and every 10th also as the retained ``ret/live``.  ``acked`` counts the PUBACKs."""

    def __init__(self, broker: DurableBroker):
        super().__init__(daemon=True)
        self.client = PahoClient(broker, uid("streamer"), proto=V5)
        self.client.connect()
        self.acked = 0
        self.retained_acked = -1  # the last sequence number acknowledged as ret/live
        self.stop_flag = threading.Event()
        self.error: str | None = None

    def run(self):
        try:
            i = 0
            while not self.stop_flag.is_set() and i < 5000:
                rc = self.client.publish("load/stream", str(i).encode(), qos=1)
                assert rc < 0x80, f"PUBACK {rc} for {i}"
                if i % 10 == 0:
                    rc = self.client.publish("ret/live", str(i).encode(), qos=1, retain=True)
                    assert rc < 0x80, f"PUBACK {rc} for retained {i}"  # 0x10: no subscribers
                    self.retained_acked = i
                i += 1
                self.acked = i
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)

    def finish(self):
        self.stop_flag.set()
        self.join(30)
        self.client.disconnect()


def test_snapshot_under_load_restores_retained_and_queued(nodes):
    node = nodes()

    # A persistent subscriber whose queue fills while it is offline.
    keeper_id = uid("keeper")
    keeper = PahoClient(node, keeper_id, proto=V5, clean=False)
    keeper.connect(clean=True, session_expiry=EXPIRY)
    assert keeper.subscribe("load/#", 1) == [1]
    keeper.disconnect()

    # Retained messages set before the load.
    setter = PahoClient(node, uid("setter"), proto=V5)
    setter.connect()
    for n in range(20):
        setter.publish(f"ret/fixed/{n}", f"fixed {n}".encode(), qos=1, retain=True)
    setter.disconnect()

    streamer = Streamer(node)
    streamer.start()
    deadline = time.monotonic() + 30
    while streamer.acked < 150 and streamer.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert streamer.error is None, streamer.error
    assert streamer.acked >= 150, "the load did not get going"

    snapshot = nodes.scratch() / "node.snap"
    acked_before = streamer.acked
    retained_before = streamer.retained_acked
    created = foxmq("snapshot", "create", str(snapshot), str(node.dir))
    acked_after = streamer.acked
    try:
        assert created.returncode == 0, f"snapshot create failed:\n{created.stdout}\n{created.stderr}"
        m = re.search(r"log indices (\d+)\.\.\.(\d+), applied index (\d+)", created.stdout)
        assert m, created.stdout
        first, last, applied = (int(g) for g in m.groups())
        assert first == 1 and 0 <= applied <= last, created.stdout  # 0: no checkpoint yet
        assert snapshot.stat().st_size > 0
        assert f"({snapshot.stat().st_size} bytes)" in created.stdout
        assert not [p for p in snapshot.parent.iterdir() if ".tmp-" in p.name], "temporary files left behind"
        # The node keeps serving after the snapshot.
        deadline = time.monotonic() + 10
        while streamer.acked <= acked_after + 5 and streamer.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        streamer.finish()
    assert streamer.error is None, streamer.error
    assert streamer.acked > acked_after, "no message was acknowledged after the snapshot"

    # A restore onto the running node's directory is refused (the lock), and changes nothing.
    refused = foxmq("snapshot", "restore", str(snapshot), str(node.dir), "--force")
    assert refused.returncode != 0
    assert f"in use by another foxmq process (pid {node.broker_pid()})" in refused.stderr, refused.stderr
    assert node.alive()

    # Restore into a new, empty directory and start a node there.
    node.sigterm()
    restored_dir = nodes.scratch() / "restored"
    restored = foxmq("snapshot", "restore", str(snapshot), str(restored_dir))
    assert restored.returncode == 0, f"snapshot restore failed:\n{restored.stdout}\n{restored.stderr}"
    assert f"log indices {first}...{last}, applied index {applied}" in restored.stdout, restored.stdout
    assert (restored_dir / "data" / "data.mdb").exists()

    if os.access(FOXDUMP_BIN, os.X_OK):
        info = subprocess.run([FOXDUMP_BIN, "info", str(restored_dir), "--json"], capture_output=True, text=True,
                              timeout=30)
        if info.returncode == 0 and info.stdout.strip().startswith("{"):
            document = json.loads(info.stdout)
            assert (document.get("firstLogIndex"), document.get("lastLogIndex")) == (first, last), document
            assert (document.get("checkpoint") or {}).get("appliedIndex", 0) == applied, document
            assert document.get("restored") is True, document

    second = nodes(restored_dir)

    # Retained messages as of the snapshot.
    reader = PahoClient(second, uid("reader"), proto=V5)
    reader.connect()
    reader.subscribe("ret/#", 1)
    retained = {m.topic: m.payload for m in reader.drain(max(QUIET, 1.5))}
    reader.disconnect()
    for n in range(20):
        assert retained.get(f"ret/fixed/{n}") == f"fixed {n}".encode(), sorted(retained)
    live = int(retained["ret/live"])
    assert retained_before <= live <= acked_after, (retained_before, live, acked_after)

    # The persistent session and its queue as of the snapshot: every message acknowledged before
    # the snapshot began, in order, and none published after it ended.
    keeper = PahoClient(second, keeper_id, proto=V5, clean=False)
    keeper.connect(clean=False, session_expiry=EXPIRY)
    assert keeper.session_present, "the persistent session was not restored"
    got = []
    deadline = time.monotonic() + 4 * TIMEOUT
    while time.monotonic() < deadline:
        batch = keeper.drain(QUIET)
        if not batch:
            break
        got += [int(m.payload) for m in batch if m.topic == "load/stream"]
    keeper.disconnect()
    assert got == list(range(len(got))), f"not the stream in order: {got[:10]}...{got[-10:]}"
    assert acked_before <= len(got) <= acked_after + 1, (acked_before, len(got), acked_after)


def test_second_node_on_a_directory_is_refused(nodes):
    node = nodes()
    port = free_port()
    second = subprocess.run(
        [FOXMQ_BIN, "run", str(node.dir), "--mqtt-addr", f"127.0.0.1:{port}", "--allow-anonymous-login"],
        capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    output = second.stdout + second.stderr
    assert f"{node.dir}/data: in use by another foxmq process (pid {node.broker_pid()})" in output, output
    # The first node is unaffected, and after it stops the directory is free again.
    assert node.alive()
    assert (node.dir / "data" / "node.lock").read_text().strip() == str(node.broker_pid())
    node.sigterm()
    node.start()
    assert node.alive()


def test_restore_refuses_damaged_and_non_empty(nodes):
    node = nodes()
    c = PahoClient(node, uid("c"), proto=V5)
    c.connect()
    c.publish("ret/a", b"a", qos=1, retain=True)
    c.disconnect()
    scratch = nodes.scratch()
    snapshot = scratch / "s.snap"
    created = foxmq("snapshot", "create", str(snapshot), str(node.dir))
    assert created.returncode == 0, created.stderr
    data = snapshot.read_bytes()

    truncated = scratch / "truncated.snap"
    truncated.write_bytes(data[:-7])
    r = foxmq("snapshot", "restore", str(truncated), str(scratch / "t"))
    assert r.returncode == 1
    assert f"{truncated}: truncated at byte {len(data) - 7}" in r.stderr, r.stderr
    assert not (scratch / "t").exists()

    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x01
    (scratch / "damaged.snap").write_bytes(bytes(damaged))
    r = foxmq("snapshot", "restore", str(scratch / "damaged.snap"), str(scratch / "d"))
    assert r.returncode == 1
    assert "checksum mismatch for" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "Fatal error" not in r.stderr

    # Not empty: refused, then --force moves the old data aside.
    target = scratch / "target"
    assert foxmq("snapshot", "restore", str(snapshot), str(target)).returncode == 0
    again = foxmq("snapshot", "restore", str(snapshot), str(target))
    assert again.returncode == 1 and "not empty" in again.stderr, again.stderr
    forced = foxmq("snapshot", "restore", str(snapshot), str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    aside = [p.name for p in target.iterdir() if ".before-restore-" in p.name]
    assert any(name.startswith("data.before-restore-") for name in aside), aside
