"""Graceful shutdown on SIGTERM (FoxMQ only)."""

import signal
import time

import pytest

from conftest import V311, V5, uid



@pytest.mark.foxmq_only
def test_sigterm_disconnects_v5_clients_with_server_shutting_down(broker_factory, raw_factory):
    """On SIGTERM every connected 5.0 client gets DISCONNECT 0x8B (Server shutting down), the connections
    are closed, and the process exits 0 within a few seconds.  MQTT 5.0 §3.14.2.1 (0x8B), §4.13."""
    b = broker_factory()
    clients = [raw_factory(b, V5) for _ in range(3)]
    for c in clients:
        c.connect(uid())
    t0 = time.monotonic()
    b.expected_exit = True
    b.proc.send_signal(signal.SIGTERM)
    for c in clients:
        assert c.disconnect_reason_or_close(timeout=5) == 0x8B
    rc = b.proc.wait(timeout=5)
    assert rc == 0
    assert time.monotonic() - t0 < 5


def test_sigterm_closes_v311_clients_and_exits_zero(broker_factory, raw_factory):
    """On SIGTERM 3.1.1 connections are closed (no DISCONNECT exists server->client in 3.1.1) and the
    process exits 0.  MQTT 3.1.1 §3.14 (client-to-server only)."""
    b = broker_factory()
    c = raw_factory(b, V311)
    c.connect(uid())
    b.expected_exit = True
    b.proc.send_signal(signal.SIGTERM)
    seen = c.wait_closed(5)
    assert seen == [], f"3.1.1 client must not receive a DISCONNECT: {seen}"
    assert b.proc.wait(timeout=5) == 0


def test_sigterm_idle_broker_exits_zero(broker_factory):
    """An idle broker (TCP + WebSocket listeners) exits 0 promptly on SIGTERM and stops listening.
    MQTT 5.0 §4.13 / §3.14.2.1 (0x8B Server shutting down: nothing to send when no client is connected)."""
    b = broker_factory(websockets=True)
    b.expected_exit = True
    b.proc.send_signal(signal.SIGTERM)
    assert b.proc.wait(timeout=5) == 0
    from conftest import port_accepts
    assert not port_accepts(b.port)
    assert not port_accepts(b.ws_port)


@pytest.mark.foxmq_only
def test_shutdown_with_inflight_state_exits_zero(broker_factory, raw_factory):
    """Shutdown with a mix of 5.0 and 3.1.1 clients, some mid-QoS 2 flow, still exits 0 in time.
    MQTT 5.0 §4.13; 3.1.1 §4.8."""
    from conftest import publish_packet, PUBREC
    b = broker_factory()
    c5 = raw_factory(b, V5)
    c5.connect(uid())
    c5.send(publish_packet("sd/t", b"x", qos=2, packet_id=5))
    assert c5.expect(PUBREC).packet_id == 5
    c3 = raw_factory(b, V311)
    c3.connect(uid(), clean=False)
    c3.subscribe("sd/#", qos=2)
    b.expected_exit = True
    b.proc.send_signal(signal.SIGTERM)
    assert c5.disconnect_reason_or_close(timeout=5) == 0x8B
    c3.wait_closed(5)
    assert b.proc.wait(timeout=5) == 0


@pytest.mark.foxmq_only
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_stops_the_services_in_order(broker_factory, raw_factory, stop_signal):
    """The node runs under a ServiceGroup: on SIGTERM (or SIGINT, Ctrl-C) the listeners close and
    the sessions end through the log first, then the orderer drains (the session ends are durable),
    then the threads stop and the store closes; the process exits 0. The log shows each step in
    that order."""
    b = broker_factory()
    c = raw_factory(b, V5)
    c.connect(uid())
    b.expected_exit = True
    b.proc.send_signal(stop_signal)
    assert c.disconnect_reason_or_close(timeout=5) == 0x8B
    assert b.proc.wait(timeout=10) == 0
    text = b.log_path.read_text(errors="replace")
    steps = ["foxmq: listeners closed, sessions ended", "foxmq: orderer drained and stopped", "foxmq: stopped",
             "foxmq: store closed", "foxmq: shut down"]
    positions = [text.find(step) for step in steps]
    assert all(at >= 0 for at in positions), f"a step is missing {list(zip(steps, positions))}:\n{b.log_tail()}"
    assert positions == sorted(positions), f"shutdown steps out of order {list(zip(steps, positions))}:\n{b.log_tail()}"


@pytest.mark.foxmq_only
def test_a_service_that_cannot_start_stops_the_others_cleanly(tmp_path):
    """A metrics address already in use fails the metrics service: the group stops the other
    services in order (the store is closed, no crash), the process exits 2 naming the option, and a
    second start on the same directory then works (the store's lock was released)."""
    import socket
    import subprocess
    from conftest import FOXMQ_BIN, free_port, port_accepts
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    busy_port = busy.getsockname()[1]
    directory = tmp_path / "node"
    port = free_port()
    cmd = [FOXMQ_BIN, "run", str(directory), "--mqtt-addr", f"127.0.0.1:{port}", "--allow-anonymous-login"]
    try:
        failed = subprocess.run(cmd + ["--metrics-addr", f"127.0.0.1:{busy_port}"], capture_output=True,
                                text=True, timeout=30)
    finally:
        busy.close()
    output = failed.stdout + failed.stderr
    assert failed.returncode == 2, output
    assert "--metrics-addr" in output, output
    assert "store closed" in output, output
    assert "Fatal error" not in output and "precondition" not in output.lower(), output
    again = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not port_accepts(port):
            assert again.poll() is None, again.stdout.read().decode(errors="replace")
            time.sleep(0.05)
        assert port_accepts(port)
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=10) == 0


@pytest.mark.foxmq_only
def test_sighup_without_tls_does_not_stop_the_node(broker_factory, raw_factory):
    """SIGHUP is the reload signal (as for Mosquitto): without a TLS listener there is nothing to
    reload, and the node keeps serving its connected client (the default action would end it)."""
    b = broker_factory()
    c = raw_factory(b, V5)
    c.connect(uid())
    b.proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert b.alive(), b.log_tail()
    ack = c.publish("hup/t", b"x", qos=1)
    assert ack.reason == 0x10, ack  # accepted, no matching subscribers
    assert "SIGHUP: nothing to reload" in b.log_path.read_text(errors="replace")
