"""Start-up refuses what it cannot trust (FoxMQ only), with a message naming the file and the
problem, and never answers with an empty broker: a damaged store, an admin database whose
recorded migration is not the one this binary embeds, one made by a newer foxmq, and a second
node on the same data directory; and a limit option out of its range."""

import sqlite3
import subprocess

import pytest

from conftest import FOXMQ_BIN, free_port, uid
from test_14_durability import clients, durable  # noqa: F401 (fixtures)

pytestmark = pytest.mark.foxmq_only

MARKER = b"STARTUP-REFUSAL-MARKER-" + b"z" * 100


def run_foxmq(directory, *extra):
    return subprocess.run([FOXMQ_BIN, "run", str(directory), "--mqtt-addr", f"127.0.0.1:{free_port()}", *extra],
                          capture_output=True, text=True, timeout=30)


def stopped_store_with_marker(durable, clients):
    broker = durable()
    c = clients.raw(broker)
    c.connect(uid("p"))
    c.publish("marker", MARKER, qos=1, retain=True)
    c.close()
    assert broker.sigterm() == 0
    return broker


def test_a_damaged_store_is_refused_naming_the_damage(durable, clients):
    broker = stopped_store_with_marker(durable, clients)
    data = broker.dir / "data" / "data.mdb"
    content = bytearray(data.read_bytes())
    position = content.find(MARKER)
    assert position >= 0
    while position >= 0:  # every copy: the log record and, if checkpointed, the row
        content[position + 30] ^= 0xFF
        position = content.find(MARKER, position + 1)
    data.write_bytes(bytes(content))
    run = run_foxmq(broker.dir)
    message = run.stdout + run.stderr
    assert run.returncode != 0
    assert "data.mdb" in message and "damaged data in table" in message and "checksum mismatch" in message, message


def test_a_changed_migration_is_refused(tmp_path):
    subprocess.run([FOXMQ_BIN, "user", "add", "alice", "pw", "-o", str(tmp_path)], check=True, capture_output=True)
    with sqlite3.connect(tmp_path / "admin.sqlite") as db:
        db.execute("UPDATE schema_migrations SET sha256 = ? WHERE number = 1", ("00" * 32,))
    run = run_foxmq(tmp_path)
    message = run.stdout + run.stderr
    assert run.returncode != 0
    assert "admin.sqlite" in message and "0001_admin.sql" in message, message


def test_an_admin_database_of_a_newer_foxmq_is_refused(tmp_path):
    subprocess.run([FOXMQ_BIN, "user", "add", "alice", "pw", "-o", str(tmp_path)], check=True, capture_output=True)
    with sqlite3.connect(tmp_path / "admin.sqlite") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(schema_migrations)")]
        values = {"number": 9999, "name": "9999_future.sql", "sha256": "00" * 32}
        names = [c for c in columns if c in values or c == "applied_at"]
        db.execute(f"INSERT INTO schema_migrations ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                   [values.get(c, "2030-01-01T00:00:00.000Z") for c in names])
    run = run_foxmq(tmp_path)
    message = run.stdout + run.stderr
    assert run.returncode != 0
    assert "admin.sqlite" in message and "newer" in message, message


def test_a_second_node_on_the_same_data_directory_is_refused(durable):
    broker = durable()
    run = run_foxmq(broker.dir)
    message = run.stdout + run.stderr
    assert run.returncode != 0
    assert "in use by another foxmq process" in message and str(broker.proc.pid) in message, message
    assert broker.alive()


def test_a_pending_bound_under_64_kib_is_refused(tmp_path):
    """--max-pending-bytes below 65536 (other than 0, the default) stops the start, naming the
    option, before the data directory is touched."""
    run = run_foxmq(tmp_path / "node", "--max-pending-bytes", "100")
    assert run.returncode != 0 and "--max-pending-bytes" in run.stderr
    assert not (tmp_path / "node").exists()
