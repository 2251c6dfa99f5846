"""Interoperability with the real Mosquitto command-line clients (mosquitto_pub / mosquitto_sub)."""

import shutil
import subprocess
import threading
import time

import pytest

from conftest import TIMEOUT, uid

pytestmark = pytest.mark.skipif(not (shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")),
                                reason="mosquitto-clients not installed")

VERSIONS = {"v5": "mqttv5", "v311": "mqttv311"}
FORMAT = "MSG|%t|%q|%r|%p"
STDBUF = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []


class Sub:
    """mosquitto_sub in debug mode; waits for its SUBACK before returning."""

    def __init__(self, broker, topic, *, version, qos, count=1, extra=()):
        # stdbuf: line-buffer stdout so the debug "received SUBACK" line reaches us at once
        cmd = [*STDBUF, "mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", version, "-t", topic,
               "-q", str(qos), "-C", str(count), "-W", str(int(TIMEOUT) + 5), "-d", "-F", FORMAT,
               "-i", uid("msub"), *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.subscribed = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if "received SUBACK" in line:
                self.subscribed.set()
        self.subscribed.set()

    def wait_subscribed(self):
        assert self.subscribed.wait(TIMEOUT), f"mosquitto_sub did not subscribe: {self.lines}"
        assert self.proc.poll() in (None, 0), f"mosquitto_sub failed: {self.lines}"

    def messages(self):
        """Wait for exit; return [(topic, qos, retain, payload)]."""
        try:
            rc = self.proc.wait(TIMEOUT + 6)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"mosquitto_sub did not finish: {self.lines}")
        self.reader.join(2)
        assert rc == 0, f"mosquitto_sub exit {rc}: {self.lines}"
        out = []
        for line in self.lines:
            if line.startswith("MSG|"):
                _, topic, qos, retain, payload = line.split("|", 4)
                out.append((topic, int(qos), int(retain), payload))
        return out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def mosquitto_pub(broker, topic, message, *, version, qos=0, extra=()):
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", version, "-t", topic,
           "-m", message, "-q", str(qos), "-i", uid("mpub"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT + 5)


@pytest.fixture
def subs():
    started = []
    yield started
    for s in started:
        s.kill()


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("version", list(VERSIONS))
def test_mosquitto_pub_sub(broker, subs, version, qos):
    """mosquitto_pub publishes and mosquitto_sub receives at QoS 0, 1 and 2 with MQTT 5.0 and 3.1.1
    (-V mqttv5 / mqttv311).  MQTT 5.0 §4.3; 3.1.1 §4.3."""
    v = VERSIONS[version]
    s = Sub(broker, "mc/t", version=v, qos=qos)
    subs.append(s)
    s.wait_subscribed()
    res = mosquitto_pub(broker, "mc/t", f"hello-{version}-{qos}", version=v, qos=qos)
    assert res.returncode == 0, res.stdout + res.stderr
    assert s.messages() == [("mc/t", qos, 0, f"hello-{version}-{qos}")]


@pytest.mark.parametrize("version", list(VERSIONS))
def test_mosquitto_retained(broker, subs, version):
    """mosquitto_pub -r stores a retained message that a later mosquitto_sub gets with retain=1; -r -n
    clears it.  MQTT 5.0 §3.3.1.3; 3.1.1 §3.3.1.3."""
    v = VERSIONS[version]
    res = mosquitto_pub(broker, "mc/ret", "kept", version=v, qos=1, extra=["-r"])
    assert res.returncode == 0, res.stdout + res.stderr
    s = Sub(broker, "mc/ret", version=v, qos=1)
    subs.append(s)
    assert s.messages() == [("mc/ret", 1, 1, "kept")]
    res = subprocess.run(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", v, "-t", "mc/ret",
                          "-r", "-n", "-q", "1"], capture_output=True, text=True, timeout=TIMEOUT + 5)
    assert res.returncode == 0, res.stdout + res.stderr
    s2 = Sub(broker, "mc/ret", version=v, qos=1, extra=["-W", "1"])  # later -W wins: exit after 1 s
    subs.append(s2)
    s2.proc.wait(TIMEOUT + 3)
    s2.reader.join(2)
    assert not [line for line in s2.lines if line.startswith("MSG|")], s2.lines


def test_mosquitto_sub_wildcard_and_multiple(broker, subs):
    """mosquitto_sub with a '#' filter receives several topics from mosquitto_pub in order.
    MQTT 5.0 §4.7; 3.1.1 §4.7."""
    s = Sub(broker, "mcw/#", version="mqttv5", qos=1, count=3)
    subs.append(s)
    s.wait_subscribed()
    for t in ("mcw/a", "mcw/b/c", "mcw"):
        assert mosquitto_pub(broker, t, t, version="mqttv5", qos=1).returncode == 0
    assert [(m[0], m[3]) for m in s.messages()] == [("mcw/a", "mcw/a"), ("mcw/b/c", "mcw/b/c"), ("mcw", "mcw")]


@pytest.mark.parametrize("version", list(VERSIONS))
def test_mosquitto_clients_with_credentials(broker_factory, subs, version):
    """mosquitto_pub/mosquitto_sub with -u/-P log in to a broker with users.toml; a wrong password makes
    mosquitto_pub fail.  MQTT 5.0 §3.1.3.5-§3.1.3.6; 3.1.1 §3.1.3.4-§3.1.3.5."""
    b = broker_factory(anonymous=False, users={"carol": "pa55word"})
    v = VERSIONS[version]
    creds = ["-u", "carol", "-P", "pa55word"]
    s = Sub(b, "mca/t", version=v, qos=1, extra=creds)
    subs.append(s)
    s.wait_subscribed()
    res = mosquitto_pub(b, "mca/t", "authed", version=v, qos=1, extra=creds)
    assert res.returncode == 0, res.stdout + res.stderr
    assert s.messages() == [("mca/t", 1, 0, "authed")]
    bad = mosquitto_pub(b, "mca/t", "nope", version=v, qos=1, extra=["-u", "carol", "-P", "wrong"])
    assert bad.returncode != 0
    anon = mosquitto_pub(b, "mca/t", "nope", version=v, qos=1)
    assert anon.returncode != 0
    time.sleep(0.1)
