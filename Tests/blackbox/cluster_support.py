"""Multi-process FoxMQ clusters for the black-box suite (FoxMQ only).

A ``Cluster`` is N real ``foxmq run`` processes on 127.0.0.1 sharing one address book written by
``foxmq address-book from-range``: BASE/key_i.pem, BASE/address-book.toml, and per node a config
directory BASE/node-i (a copy of the book, the store in BASE/node-i/data, the fault file
BASE/node-i/cluster-faults) and a JSON log BASE/node-i.log.

Book position ``i`` (``cluster.nodes[i]``, key_i.pem) is not necessarily committee index ``i``:
``ClusterNode.committee_index`` reads it from the node's "cluster member" log line, and the fault
file speaks committee indices.

The ``cluster_factory`` fixture creates clusters in fresh temporary directories with fresh ports
and kills every process and closes every tracked client at teardown, even on failure (then the
logs' tails are printed). The directory is removed unless ``FOXMQ_KEEP_CLUSTER=1``.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import paho.mqtt.client as mqtt

from conftest import FOXMQ_BIN, V5, PahoClient, RawClient, port_accepts, uid

FOXDUMP_BIN = os.environ.get("FOXDUMP_BIN", str(Path(FOXMQ_BIN).with_name("foxdump")))

# Ports are taken below the Linux ephemeral range (32768...), so that the client sockets of a test
# never grab a port a node is about to (re)bind.
PORT_LOW, PORT_HIGH = 12000, 32000
_taken_ports: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return not port_accepts(port)


def free_port_block(count: int) -> list[int]:
    """``count`` consecutive free ports (from-range wants a range), not handed out before."""
    for _ in range(500):
        first = random.randrange(PORT_LOW, PORT_HIGH - count)
        block = list(range(first, first + count))
        if any(p in _taken_ports for p in block):
            continue
        if all(_bindable(p) for p in block):
            _taken_ports.update(block)
            return block
    raise RuntimeError(f"no block of {count} free ports")


def _retry_busy(start, wait: float = 120.0):
    """Runs ``start()``, retrying while the binary is being rewritten (ETXTBSY: a build in the
    same tree is linking it)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return start()
        except OSError as e:
            if e.errno != errno.ETXTBSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def foxmq(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return _retry_busy(lambda: subprocess.run([FOXMQ_BIN, *args], capture_output=True, text=True,
                                              timeout=timeout, **kw))


def foxdump(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return _retry_busy(lambda: subprocess.run([FOXDUMP_BIN, *args], capture_output=True, text=True,
                                              timeout=timeout))


def wait_until(predicate, timeout: float, interval: float = 0.02, message: str = "condition"):
    """Polls ``predicate`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class ClusterNode:
    """One ``foxmq run`` process at book position ``position``. Looks like a conftest ``Broker`` to
    ``PahoClient`` (``host``, ``port``)."""

    def __init__(self, cluster: "Cluster", position: int, mqtt_port: int, cluster_port: int):
        self.cluster = cluster
        self.position = position
        self.host = "127.0.0.1"
        self.port = mqtt_port
        self.ws_port = 0
        self.cluster_port = cluster_port
        self.dir = cluster.base / f"node-{position}"
        self.key = cluster.base / f"key_{position}.pem"
        self.log_path = cluster.base / f"node-{position}.log"
        self.fault_path = self.dir / "cluster-faults"
        self.extra_args: list[str] = []
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.run_log_start = 0  # offset of the current run in the log file
        self.expected_exit = True

    # -- process ------------------------------------------------------------
    def command(self) -> list[str]:
        return [FOXMQ_BIN, "run", str(self.dir), "--secret-key-file", str(self.key),
                "--mqtt-addr", f"{self.host}:{self.port}", "--cluster-addr", f"{self.host}:{self.cluster_port}",
                *(["--allow-anonymous-login"] if self.cluster.anonymous else []), "--leader-timeout-millis", "20",
                "--will-failover-seconds", str(self.cluster.will_failover), "--log", "json",
                *self.cluster.extra_args, *self.extra_args]

    def spawn(self):
        """Starts the process (does not wait for the MQTT port)."""
        assert not self.alive(), f"node {self.position} is already running"
        if self._log:
            self._log.close()
        self.run_log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")
        cmd = self.command()
        self._log.write(("$ " + " ".join(cmd) + "\n").encode())
        self._log.flush()
        env = dict(os.environ)
        if self.cluster.faults:
            env["FOXMQ_TEST_FAULTS"] = "1"
        self.expected_exit = False
        self.proc = _retry_busy(lambda: subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(self.cluster.base), env=env))
        self.spawned_at = time.monotonic()

    def wait_mqtt(self, timeout: float = 30.0) -> "ClusterNode":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                self.expected_exit = True
                raise AssertionError(f"node {self.position} exited with code {self.proc.returncode} before "
                                     f"opening its MQTT port\n{self.log_tail()}")
            if port_accepts(self.port):
                return self
            time.sleep(0.05)
        raise AssertionError(f"node {self.position}: MQTT port {self.port} not open within {timeout}s\n"
                             f"{self.log_tail()}")

    def start(self, timeout: float = 30.0) -> "ClusterNode":
        self.spawn()
        return self.wait_mqtt(timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        assert self.alive(), f"node {self.position} died before the kill\n{self.log_tail()}"
        self.expected_exit = True
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def sigterm(self, timeout: float = 20.0) -> int | None:
        """Graceful stop; the exit code (None: it had to be killed)."""
        if not self.alive():
            return self.proc.returncode if self.proc else None
        self.expected_exit = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return None

    def close(self):
        if self.alive():
            self.expected_exit = True
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self._log:
            self._log.close()
            self._log = None

    # -- log ------------------------------------------------------------------
    def log_text(self, current_run_only: bool = False) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        if current_run_only:
            data = data[self.run_log_start:]
        return data.decode(errors="replace")

    def log_records(self, current_run_only: bool = False) -> list[dict]:
        out = []
        for line in self.log_text(current_run_only).splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def log_tail(self, n: int = 40) -> str:
        lines = self.log_text().splitlines()
        return f"---- node {self.position} ({self.log_path}) tail ----\n" + "\n".join(lines[-n:])

    @property
    def committee_index(self) -> int:
        """The consensus index of this process (from its "cluster member" log line)."""
        def find():
            for record in self.log_records():
                if record.get("message") == "cluster member" and "node" in record:
                    return str(int(record["node"]))
            return None
        return int(wait_until(find, 10, message=f"node {self.position}'s 'cluster member' log line"))

    # -- fault injection -------------------------------------------------------
    def set_blocked(self, committee_indices) -> None:
        indices = sorted(set(committee_indices))
        text = ("block " + " ".join(str(i) for i in indices) + "\n") if indices else ""
        tmp = self.fault_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.fault_path)

    def wait_blocking(self, committee_indices, timeout: float = 5.0):
        """Waits for the node's log line saying it applied the blocked set."""
        wanted = f"cluster-faults: blocking {sorted(set(committee_indices))}"
        wait_until(lambda: wanted in self.log_text(current_run_only=True), timeout,
                   message=f"node {self.position} to log {wanted!r}")

    def __repr__(self):
        return f"<node {self.position} mqtt={self.port} cluster={self.cluster_port}>"


class Cluster:
    def __init__(self, base: Path, n: int = 4, *, faults: bool = True, will_failover: int = 3,
                 extra_args=(), anonymous: bool = True):
        self.base = base
        self.anonymous = anonymous
        self.n = n
        self.faults = faults
        self.will_failover = will_failover
        self.extra_args = list(extra_args)
        self.clients: list[PahoClient] = []
        self.raw_clients: list[RawClient] = []
        cluster_ports = free_port_block(n)
        mqtt_ports = free_port_block(n)
        made = foxmq("address-book", "from-range", "127.0.0.1", str(cluster_ports[0]), str(cluster_ports[-1]),
                     "--output-dir", str(base))
        assert made.returncode == 0, f"address-book from-range failed:\n{made.stdout}\n{made.stderr}"
        self.book = base / "address-book.toml"
        self.nodes = [ClusterNode(self, i, mqtt_ports[i], cluster_ports[i]) for i in range(n)]
        for node in self.nodes:
            node.dir.mkdir()
            shutil.copy(self.book, node.dir / "address-book.toml")

    def __getitem__(self, position: int) -> ClusterNode:
        return self.nodes[position]

    def start(self, positions=None, timeout: float = 30.0) -> "Cluster":
        """Spawns the nodes (all by default), then waits for each one's MQTT port."""
        chosen = [self.nodes[i] for i in (range(self.n) if positions is None else positions)]
        for node in chosen:
            node.spawn()
        for node in chosen:
            node.wait_mqtt(timeout)
        return self

    def last_log_indices(self) -> dict[int, int]:
        """{position: last log index} of the running nodes (``foxdump info``, read-only)."""
        out = {}
        for node in self.nodes:
            if node.alive():
                run = foxdump("info", str(node.dir), "--json")
                if run.returncode == 0:
                    out[node.position] = int(json.loads(run.stdout)["lastLogIndex"])
        return out

    def settle(self, timeout: float = 10.0) -> dict[int, int]:
        """Waits until every running node's log ends at the same index, twice in a row 0.2 s
        apart (what the nodes proposed is committed everywhere); returns the indices."""
        deadline = time.monotonic() + timeout
        previous = None
        while True:
            now = self.last_log_indices()
            if previous is not None and now == previous and len(set(now.values())) <= 1:
                return now
            if time.monotonic() >= deadline:
                return now
            previous = now
            time.sleep(0.2)

    def stop(self, timeout: float = 20.0) -> dict[int, int | None]:
        """Closes the tracked clients, lets their disconnects commit (``settle``), then SIGTERMs
        every running node at once and waits; {position: exit code}. (A node stopping with
        entries of its own not committed waits 10 s for a quorum that is stopping too.)"""
        for client in self.clients:
            _quiet_close(client)
        self.settle()
        running = [n for n in self.nodes if n.alive()]
        for node in running:
            node.expected_exit = True
            node.proc.send_signal(signal.SIGTERM)
        codes = {}
        for node in running:
            try:
                codes[node.position] = node.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait(timeout=10)
                codes[node.position] = None
        return codes

    def close(self):
        for client in self.clients:
            _quiet_close(client)
        for raw in self.raw_clients:
            raw.close()
        for node in self.nodes:
            node.close()

    def unexpected_exits(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is not None and not n.expected_exit]

    def compare(self, a: int, b: int) -> subprocess.CompletedProcess:
        return foxdump("compare", str(self.nodes[a].dir), str(self.nodes[b].dir))

    # -- clients --------------------------------------------------------------
    def client(self, node: ClusterNode | int, client_id: str | None = None, *, connect: bool = True,
               inflight: int = 100, **connect_kw) -> PahoClient:
        """A tracked paho MQTT 5 client of ``node``, connected unless ``connect=False``."""
        if isinstance(node, int):
            node = self.nodes[node]
        c = PahoClient(node, client_id or uid("cl"), proto=V5)
        c.c.max_inflight_messages_set(inflight)
        self.clients.append(c)
        if connect:
            c.connect(**connect_kw)
        return c

    def raw(self, node: ClusterNode | int) -> RawClient:
        """A tracked raw MQTT 5 socket client of ``node`` (not connected yet)."""
        if isinstance(node, int):
            node = self.nodes[node]
        r = RawClient(node.port)
        self.raw_clients.append(r)
        return r

    # -- partitions -----------------------------------------------------------
    def partition(self, side_a, side_b):
        """Cuts the nodes at book positions ``side_a`` from those at ``side_b`` (both directions),
        and waits until each of them logged the blocked set."""
        ia = [self.nodes[p].committee_index for p in side_a]
        ib = [self.nodes[p].committee_index for p in side_b]
        for p in side_a:
            self.nodes[p].set_blocked(ib)
        for p in side_b:
            self.nodes[p].set_blocked(ia)
        for p in side_a:
            self.nodes[p].wait_blocking(ib)
        for p in side_b:
            self.nodes[p].wait_blocking(ia)

    def heal(self):
        for node in self.nodes:
            if node.fault_path.exists():
                node.set_blocked([])
        for node in self.nodes:
            if node.alive():
                node.wait_blocking([])

    def diagnostics(self, n: int = 40) -> str:
        return "\n".join(node.log_tail(n) for node in self.nodes)


def _quiet_close(client: PahoClient):
    try:
        client.c.disconnect()
    except Exception:
        pass
    try:
        client.stop()
    except Exception:
        pass


@pytest.fixture
def cluster_factory(request):
    """cluster_factory(n=4, faults=True, will_failover=3, extra_args=()) -> an unstarted Cluster in
    a fresh directory (``.start()`` it). Every process is killed and every client closed at
    teardown; a node that exited on its own (not killed or stopped by the test) fails the test."""
    made: list[Cluster] = []

    def make(n: int = 4, **kw) -> Cluster:
        base = Path(tempfile.mkdtemp(prefix="foxmq-cluster-"))
        c = Cluster(base, n, **kw)
        made.append(c)
        return c

    yield make

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    crash_msg = ""
    for c in made:
        crashed = c.unexpected_exits()
        if crashed:
            node = crashed[0]
            crash_msg = (f"node {node.position} exited during the test with code {node.proc.returncode}\n"
                         f"{node.log_tail(60)}")
    keep = os.environ.get("FOXMQ_KEEP_CLUSTER") == "1"
    for c in made:
        c.close()
        if failed or crash_msg:
            print(f"\n{c.diagnostics()}")
        if keep:
            print(f"\ncluster kept in {c.base}")
        else:
            shutil.rmtree(c.base, ignore_errors=True)
    if crash_msg:
        pytest.fail(crash_msg)


class Collector:
    """Payloads a paho client received, in arrival order (its queue drained on demand)."""

    def __init__(self, client: PahoClient):
        self.client = client
        self.messages: list[mqtt.MQTTMessage] = []

    def pump(self) -> int:
        while True:
            try:
                self.messages.append(self.client.messages.get_nowait())
            except Exception:
                return len(self.messages)

    @property
    def payloads(self) -> list[bytes]:
        self.pump()
        return [m.payload for m in self.messages]

    def wait_for(self, wanted, timeout: float, what: str = "messages") -> list[bytes]:
        """Waits until every payload of ``wanted`` arrived."""
        wanted = set(wanted)

        def done():
            return wanted <= set(self.payloads)
        try:
            wait_until(done, timeout, interval=0.05)
        except AssertionError:
            missing = wanted - set(self.payloads)
            raise AssertionError(f"{self.client.client_id} on {self.client.broker!r}: {len(missing)} of "
                                 f"{len(wanted)} {what} missing after {timeout}s, e.g. "
                                 f"{sorted(missing)[:5]}") from None
        return self.payloads

    def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> list[bytes]:
        """Waits until nothing new arrived for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        count = self.pump()
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.pump()
            if now != count:
                count, last_change = now, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                break
        return self.payloads


class Streamer(threading.Thread):
    """Publishes QoS 1 messages ``PREFIX-00000``, ``PREFIX-00001``... on ``topic`` one at a time
    (each waits up to ``ack_timeout`` for its PUBACK) and records which were acknowledged."""

    def __init__(self, client: PahoClient, topic: str, prefix: str, *, ack_timeout: float = 20.0,
                 limit: int = 100000):
        super().__init__(daemon=True)
        self.client = client
        self.topic = topic
        self.prefix = prefix
        self.ack_timeout = ack_timeout
        self.limit = limit
        self.acked: list[bytes] = []
        self.unacked: list[bytes] = []  # sent, no PUBACK (connection lost or timed out)
        self.stop_flag = threading.Event()
        self.error: str | None = None
        self.ack_times: list[float] = []

    def payload(self, i: int) -> bytes:
        return f"{self.prefix}-{i:05d}".encode()

    def run(self):
        try:
            for i in range(self.limit):
                if self.stop_flag.is_set():
                    return
                payload = self.payload(i)
                info = self.client.c.publish(self.topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    self.unacked.append(payload)
                    self.error = f"publish {payload!r} failed locally: {info.rc}"
                    return
                info.wait_for_publish(self.ack_timeout)
                if info.is_published():
                    self.acked.append(payload)
                    self.ack_times.append(time.monotonic())
                else:
                    self.unacked.append(payload)
                    self.error = f"no PUBACK for {payload!r} within {self.ack_timeout}s"
                    return
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = repr(e)

    def wait_acked(self, count: int, timeout: float):
        wait_until(lambda: len(self.acked) >= count or self.error is not None or not self.is_alive(), timeout,
                   message=f"{self.prefix}: {count} PUBACKs")
        assert self.error is None, f"{self.prefix}: {self.error}"
        assert len(self.acked) >= count, f"{self.prefix}: only {len(self.acked)} PUBACKs"

    def finish(self, timeout: float = 30.0):
        self.stop_flag.set()
        self.join(timeout)
