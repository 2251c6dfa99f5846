"""Authentication against users written by `foxmq user add` (a password file for Mosquitto).
The tests Mosquitto passes run against it too (BROKER=mosquitto); the marked ones differ."""

import pytest

from conftest import V311, V5, check_broker_serves, uid

USERS = {"alice": "correct horse battery staple", "bob": "s3cret"}

# CONNACK codes: (MQTT 5.0 reason code, MQTT 3.1.1 return code)
NOT_AUTHORIZED = {V5: 0x87, V311: 0x05}
BAD_CREDENTIALS = {V5: 0x86, V311: 0x04}


@pytest.fixture
def secured(broker_factory):
    """A broker with two users and anonymous login disabled."""
    return broker_factory(anonymous=False, users=USERS)


def test_anonymous_refused_without_allow_anonymous(secured, raw_factory, proto):
    """Without --allow-anonymous-login a CONNECT without username is refused: 5.0 reason 0x87
    (Not authorized), 3.1.1 return code 0x05; then the connection is closed.
    MQTT 5.0 §3.2.2.2 [MQTT-3.2.2-7]; 3.1.1 §3.2.2.3 [MQTT-3.2.2-5]."""
    c = raw_factory(secured, proto)
    ack = c.connect(uid(), expect_ok=False)
    assert ack.reason == NOT_AUTHORIZED[proto]
    assert ack.session_present is False
    c.wait_closed()


@pytest.mark.foxmq_only
@pytest.mark.parametrize("username,password", [("alice", "wrong"), ("bob", ""), ("mallory", "s3cret")],
                         ids=["wrong-password", "empty-password", "unknown-user"])
def test_bad_credentials_refused(secured, raw_factory, proto, username, password):
    """A wrong password or unknown user is refused: 5.0 reason 0x86 (Bad User Name or Password),
    3.1.1 return code 0x04; then the connection is closed.
    MQTT 5.0 §3.2.2.2 [MQTT-3.2.2-7]; 3.1.1 §3.2.2.3."""
    c = raw_factory(secured, proto)
    ack = c.connect(uid(), username=username, password=password, expect_ok=False)
    assert ack.reason == BAD_CREDENTIALS[proto]
    c.wait_closed()


def test_username_without_password_refused(secured, raw_factory, proto):
    """A known username without any password is not authenticated (0x86 / 0x04, or 0x87 / 0x05).
    MQTT 5.0 §3.1.3.5, §3.2.2.2; 3.1.1 §3.1.3.4, §3.2.2.3."""
    c = raw_factory(secured, proto)
    ack = c.connect(uid(), username="alice", expect_ok=False)
    assert ack.reason in (BAD_CREDENTIALS[proto], NOT_AUTHORIZED[proto])
    c.wait_closed()


def test_right_password_accepted(secured, raw_factory, proto):
    """A user added with `foxmq user add` connects with its password and can publish/subscribe.
    MQTT 5.0 §3.1.3.5-§3.1.3.6, §3.2.2.2; 3.1.1 §3.1.3.4-§3.1.3.5."""
    for name, password in USERS.items():
        c = raw_factory(secured, proto)
        ack = c.connect(uid(), username=name, password=password)
        assert ack.reason == 0
        c.subscribe(f"auth/{name}", qos=1)
        c.publish(f"auth/{name}", b"hello", qos=1)
        msg = c.expect(3)
        assert msg.payload == b"hello"
        c.disconnect()


def test_anonymous_accepted_with_allow_anonymous(broker_factory, raw_factory, proto):
    """With --allow-anonymous-login (and a users file present) a CONNECT without username is accepted,
    and registered users still log in.  MQTT 5.0 §3.2.2.2; 3.1.1 §3.2.2.3."""
    b = broker_factory(anonymous=True, users=USERS)
    c = raw_factory(b, proto)
    assert c.connect(uid()).reason == 0
    c2 = raw_factory(b, proto)
    assert c2.connect(uid(), username="alice", password=USERS["alice"]).reason == 0


@pytest.mark.foxmq_only
def test_wrong_password_refused_even_with_allow_anonymous(broker_factory, raw_factory, proto):
    """Presenting wrong credentials is refused even when anonymous login is allowed (no silent
    downgrade to anonymous).  MQTT 5.0 §3.2.2.2 (0x86); 3.1.1 §3.2.2.3 (0x04)."""
    b = broker_factory(anonymous=True, users=USERS)
    c = raw_factory(b, proto)
    ack = c.connect(uid(), username="alice", password="nope", expect_ok=False)
    assert ack.reason == BAD_CREDENTIALS[proto]
    c.wait_closed()


def test_refused_logins_do_not_hurt_the_broker(secured, raw_factory):
    """After a burst of refused logins the broker still serves authenticated clients.
    MQTT 5.0 §3.2.2.2."""
    for i in range(20):
        c = raw_factory(secured, V5 if i % 2 else V311)
        c.connect(uid(), username="alice", password=f"guess{i}", expect_ok=False)
        c.close()
    c = raw_factory(secured, V5)
    assert c.connect(uid(), username="bob", password=USERS["bob"]).reason == 0
