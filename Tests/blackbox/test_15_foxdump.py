"""foxdump against a real node's store: read-only while the node runs and after it stops, --json
that parses, clear errors for a path that is not a store and for damaged copies (FoxMQ only).

foxdump is found next to FOXMQ_BIN (FOXDUMP_BIN overrides it)."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import FOXMQ_BIN, V5, PahoClient, uid

pytestmark = pytest.mark.foxmq_only

FOXDUMP_BIN = os.environ.get("FOXDUMP_BIN", str(Path(FOXMQ_BIN).with_name("foxdump")))
MARKER = b"FOXDUMP-MARKER-" + b"m" * 200


def foxdump(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    if not os.access(FOXDUMP_BIN, os.X_OK):
        pytest.fail(f"foxdump not found at {FOXDUMP_BIN} (build it: swift build --product foxdump)")
    res = subprocess.run([FOXDUMP_BIN, *args], capture_output=True, text=True, timeout=timeout)
    # Never a crash: a signal shows as a negative code (or 128+n through a shell).
    assert 0 <= res.returncode < 128, f"foxdump {' '.join(args)} died: {res.returncode}\n{res.stderr}"
    return res


def foxdump_json(*args: str) -> dict:
    res = foxdump(*args, "--json")
    assert res.returncode == 0, f"foxdump {' '.join(args)} --json: {res.returncode}\n{res.stdout}\n{res.stderr}"
    return json.loads(res.stdout)


def populate(b) -> str:
    """A persistent subscriber (detached, with queued messages), retained and QoS 1 messages."""
    sub_id = uid("fd-sub")
    sub = PahoClient(b, sub_id, proto=V5, clean=True)
    sub.connect(session_expiry=3600)
    sub.subscribe("fd/#", 1)
    sub.disconnect()
    pub = PahoClient(b, proto=V5)
    pub.connect()
    pub.publish("fd/retained/1", b"hello-retained", qos=1, retain=True)
    pub.publish("fd/retained/2", bytes(range(256)), qos=1, retain=True)
    for n in range(3):
        pub.publish("fd/data", f"m{n}".encode(), qos=1)
    pub.publish("fd/marker", MARKER, qos=1)
    pub.disconnect()
    return sub_id


def check_store(directory: str, sub_id: str):
    """What every reader must show for the store `populate` made."""
    info = foxdump_json("info", directory)
    assert info["formatVersion"] == 1
    assert info["tables"]["log"] >= 8
    assert info["dataFile"].endswith("data.mdb")
    assert info["lastLogIndex"] >= info["firstLogIndex"] >= 1
    assert info["mapSizeBytes"] >= info["usedBytes"] > 0
    assert info["incarnation"] >= 1 and info["restored"] is False
    assert list(info)[:3] == ["store", "dataFile", "formatVersion"]  # stable key order

    text = foxdump("info", directory)
    assert text.returncode == 0 and "format version" in text.stdout and "log" in text.stdout

    log = foxdump_json("log", directory)
    publishes = [r for r in log["records"] if r["kind"] == "publish"]
    data = [r["payload"]["text"] for r in publishes if r["topic"] == "fd/data"]
    assert data == ["m0", "m1", "m2"]
    binary = [r for r in publishes if r["topic"] == "fd/retained/2"][0]
    assert binary["payload"]["size"] == 256 and binary["payload"]["hex"].startswith("000102")
    assert all(r["time"].endswith("Z") and r["timeMillis"] > 0 for r in log["records"])
    indices = [r["index"] for r in log["records"]]
    assert indices == sorted(indices) and log["damaged"] == 0
    assert any(r["kind"] == "sessionOpen" and r["clientId"] == sub_id for r in log["records"])

    filtered = foxdump_json("log", directory, "--topic", "fd/retained/+")
    assert {r["topic"] for r in filtered["records"]} == {"fd/retained/1", "fd/retained/2"}
    limited = foxdump_json("log", directory, "--from", "2", "--limit", "3")
    assert [r["index"] for r in limited["records"]] == [2, 3, 4]
    human = foxdump("log", directory, "--topic", "fd/data")
    assert human.returncode == 0 and '"m1"' in human.stdout and "publish" in human.stdout

    retained = foxdump_json("retained", directory)
    topics = {m["topic"]: m for m in retained["retained"]}
    assert topics["fd/retained/1"]["payload"]["text"] == "hello-retained"
    assert topics["fd/retained/1"]["qos"] == 1
    assert set(m["topic"] for m in foxdump_json("retained", directory, "fd/retained/1")["retained"]) == {
        "fd/retained/1"}
    assert "hello-retained" in foxdump("retained", directory).stdout

    sessions = foxdump_json("sessions", directory)
    session = [s for s in sessions["sessions"] if s["clientId"] == sub_id][0]
    assert session["connected"] is False and session["expiryInterval"] == 3600
    assert [s["filter"] for s in session["subscriptions"]] == ["fd/#"]
    assert session["subscriptions"][0]["qos"] == 1
    # The messages published while it was away: 2 retained, 3 data, 1 marker.
    assert session["queued"] + session["inflightCount"] == 6
    one = foxdump_json("sessions", directory, sub_id)
    assert [s["clientId"] for s in one["sessions"]] == [sub_id]
    assert sub_id in foxdump("sessions", directory).stdout
    missing = foxdump("sessions", directory, "no-such-client")
    assert missing.returncode == 1 and "no-such-client" in missing.stderr

    inflight = foxdump_json("inflight", directory)
    assert inflight["count"] == len(inflight["clients"])

    verify = foxdump("verify", directory, "--quiet")
    assert verify.returncode == 0, f"verify failed:\n{verify.stdout}\n{verify.stderr}"
    assert verify.stdout.rstrip().endswith("OK")
    report = foxdump_json("verify", directory, "--quiet")
    assert report["ok"] is True and report["problems"] == []
    assert report["log"]["records"] >= 8 and report["rows"]["meta"] >= 2
    assert report["recovery"]["ok"] is True


def test_foxdump_reads_the_store_while_the_node_runs_and_after(broker_factory):
    b = broker_factory()
    sub_id = populate(b)
    time.sleep(0.3)
    check_store(str(b.dir), sub_id)
    assert b.alive(), f"the node died while foxdump read its store\n{b.log_tail()}"
    # Still serving after being read.
    PahoClient(b, proto=V5).connect()

    b.expected_exit = True
    assert b.terminate() == 0
    check_store(str(b.dir), sub_id)
    # --data-dir names the store directly.
    info = foxdump_json("info", "--data-dir", str(b.dir / "data"))
    assert info["store"] == str(b.dir / "data")


def test_foxdump_refuses_a_path_that_is_not_a_store(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in ["info", "log", "retained", "sessions", "inflight", "verify"]:
        res = foxdump(command, str(empty))
        assert res.returncode != 0, f"{command} on an empty directory succeeded:\n{res.stdout}"
        assert str(empty / "data") in res.stderr, res.stderr
    assert not (empty / "data").exists(), "foxdump created something"

    res = foxdump("info", "--json", str(empty))
    assert res.returncode != 0 and str(empty) in json.loads(res.stdout)["error"]

    garbage = tmp_path / "garbage" / "data"
    garbage.mkdir(parents=True)
    (garbage / "data.mdb").write_bytes(os.urandom(64 * 1024))
    res = foxdump("verify", str(tmp_path / "garbage"))
    assert res.returncode != 0 and "data.mdb" in res.stderr and "not a FoxMQ store" in res.stderr, res.stderr


def test_foxdump_users_and_acl_read_the_admin_database(tmp_path):
    """users and acl read DIR/admin.sqlite read-only; no database: a clear error naming it,
    and nothing created."""
    for command in ["users", "acl"]:
        res = foxdump(command, str(tmp_path))
        assert res.returncode != 0 and "admin.sqlite" in res.stderr, res.stderr
    assert not (tmp_path / "admin.sqlite").exists()
    subprocess.run([FOXMQ_BIN, "user", "add", "alice", "pw", "-o", str(tmp_path)], check=True, capture_output=True)
    subprocess.run([FOXMQ_BIN, "acl", "add", "--user", "alice", "--publish", "a/#", "-o", str(tmp_path)],
                   check=True, capture_output=True)
    users = foxdump_json("users", str(tmp_path))
    assert [u["name"] for u in users["users"]] == ["alice"]
    rules = foxdump_json("acl", str(tmp_path))
    assert len(rules["rules"]) == 1 and "a/#" in rules["rules"][0]["rule"]
    text = foxdump("acl", str(tmp_path)).stdout
    assert "a/#" in text and "alice" in text


def test_foxdump_verify_reports_damaged_copies_without_crashing(broker_factory):
    b = broker_factory()
    populate(b)
    b.expected_exit = True
    assert b.terminate() == 0
    pristine = (b.dir / "data" / "data.mdb").read_bytes()
    assert MARKER in pristine
    work = Path(tempfile.mkdtemp(prefix="foxdump-bad-"))
    try:
        # Bytes flipped inside a record every copy of the file holds (the marker's payload):
        # verify must name the damage, never crash.
        copy = work / "flipped"
        copy.mkdir()
        damaged = bytearray(pristine)
        start = 0
        while (found := damaged.find(MARKER, start)) >= 0:
            damaged[found + len(MARKER) // 2] ^= 0x55
            start = found + 1
        (copy / "data.mdb").write_bytes(bytes(damaged))
        res = foxdump("verify", "--data-dir", str(copy), "--quiet")
        assert res.returncode == 1, f"verify missed the damage:\n{res.stdout}\n{res.stderr}"
        assert "checksum mismatch" in res.stdout and "problem" in res.stdout
        report = json.loads(foxdump("verify", "--data-dir", str(copy), "--quiet", "--json").stdout)
        assert report["ok"] is False and any(p["table"] == "log" for p in report["problems"])
        log = foxdump("log", "--data-dir", str(copy))
        assert log.returncode == 1 and "damaged" in log.stdout

        # Wider damage in the middle of the file (pages, headers, keys): a clear message and a
        # non-zero exit, never a signal. LMDB keeps no page checksums, so some of these fault
        # inside LMDB; foxdump turns that into a message naming the file.
        rng = random.Random(15)
        size = len(pristine)
        for trial in range(12):
            damaged = bytearray(pristine)
            if trial % 3 == 0:
                for i in range(size // 4, 3 * size // 4):
                    damaged[i] = rng.randrange(256)
            elif trial % 3 == 1:
                for _ in range(300):
                    damaged[rng.randrange(size // 4, 3 * size // 4)] ^= 0xFF
            else:
                for page in range(2 * 4096, size, 4096):
                    for k in range(16):
                        damaged[page + k] = rng.randrange(256)
            copy = work / f"trial{trial}"
            copy.mkdir()
            (copy / "data.mdb").write_bytes(bytes(damaged))
            res = foxdump("verify", "--data-dir", str(copy), "--quiet")
            if trial % 3 != 1:  # scattered flips may land only on free pages
                assert res.returncode == 1, f"trial {trial}: damage not reported:\n{res.stdout}\n{res.stderr}"
            if res.returncode != 0:
                assert "problem" in res.stdout or "data.mdb" in res.stderr, f"trial {trial}:\n{res.stdout}\n{res.stderr}"
            for command in ["info", "log", "retained", "sessions"]:
                foxdump(command, "--data-dir", str(copy))  # exit < 128 checked inside
    finally:
        shutil.rmtree(work, ignore_errors=True)
