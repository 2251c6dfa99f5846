"""No crash loop on replay (FoxMQ only): a start that died while replaying the log leaves a
marker; the next start refuses to replay the same records again, names them and the way to
inspect them, and starts only when asked (--retry-replay)."""

import subprocess

import pytest

from conftest import FOXMQ_BIN, uid
from test_14_durability import clients, durable  # noqa: F401 (fixtures)

pytestmark = pytest.mark.foxmq_only


def test_a_replay_that_died_is_not_repeated_blindly(durable, clients):
    broker = durable()
    pub = clients.raw(broker)
    pub.connect(uid("p"))
    pub.publish("kept", b"value", qos=1, retain=True)
    pub.close()
    assert broker.sigterm() == 0
    data = broker.dir / "data"
    (data / "replay-in-progress").write_text("5...9\n")
    run = subprocess.run([FOXMQ_BIN, "run", str(broker.dir), "--mqtt-addr", f"127.0.0.1:{broker.port}"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    message = run.stdout + run.stderr
    assert "replaying log records 5...9" in message
    assert "foxdump log" in message and "--retry-replay" in message
    broker.extra_args = ["--retry-replay"]
    broker.start()
    sub = clients.raw(broker)
    sub.connect(uid("s"))
    sub.subscribe("kept", qos=1)
    got = sub.expect(3)  # PUBLISH
    assert got.payload == b"value"
    assert not (data / "replay-in-progress").exists()
