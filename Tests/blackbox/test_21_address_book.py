"""`foxmq address-book from-range|from-list` (FoxMQ only): the original's commands that write a
cluster's files, one SEC1 P-256 key per node (`key_N.pem`, mode 0600) and `address-book.toml`
(`[[addresses]]` tables with `key` and `addr`). Existing files are refused unless -f/--force;
bad input fails with a message and a non-zero exit, writing nothing."""

import os
import re
import shutil
import stat
import subprocess
import tomllib

import pytest

from conftest import FOXMQ_BIN

pytestmark = pytest.mark.foxmq_only

OPENSSL = shutil.which("openssl")
PEM_PUBLIC_KEY = re.compile(
    r"\A-----BEGIN PUBLIC KEY-----\n(?:[A-Za-z0-9+/]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END PUBLIC KEY-----\n\Z")


def address_book(*args):
    return subprocess.run([FOXMQ_BIN, "address-book", *args], capture_output=True, text=True, timeout=60)


def read_book(directory):
    with open(directory / "address-book.toml", "rb") as f:
        return tomllib.load(f)["addresses"]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_from_range_writes_one_key_per_port_and_the_book(tmp_path):
    """One node per port, FIRST to LAST inclusive: key_0.pem... in port order, the book lists
    them in the same order with the original's layout."""
    out = tmp_path / "foxmq.d"
    run = address_book("from-range", "127.0.0.1", "19793", "19796", "--output-dir", str(out))
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(out)) == ["address-book.toml", "key_0.pem", "key_1.pem", "key_2.pem", "key_3.pem"]
    for n in range(4):
        key = (out / f"key_{n}.pem").read_text()
        assert key.startswith("-----BEGIN EC PRIVATE KEY-----\n") and key.endswith("-----END EC PRIVATE KEY-----\n")
        assert mode(out / f"key_{n}.pem") == 0o600
        assert f"key_{n}.pem" in run.stdout and f"127.0.0.1:{19793 + n}" in run.stdout
    assert mode(out) == 0o700

    entries = read_book(out)
    assert [e["addr"] for e in entries] == [f"127.0.0.1:{p}" for p in range(19793, 19797)]
    assert all(PEM_PUBLIC_KEY.match(e["key"]) for e in entries)
    assert len({e["key"] for e in entries}) == 4
    text = (out / "address-book.toml").read_text()
    assert text.startswith('[[addresses]]\nkey = """\n-----BEGIN PUBLIC KEY-----\n')
    assert '-----END PUBLIC KEY-----\n"""\naddr = "127.0.0.1:19793"\n\n[[addresses]]\n' in text


def test_default_output_dir_is_foxmq_d(tmp_path):
    run = subprocess.run([FOXMQ_BIN, "address-book", "from-range", "127.0.0.1", "19793", "19793"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(tmp_path / "foxmq.d")) == ["address-book.toml", "key_0.pem"]


def test_existing_files_are_refused_without_force_and_replaced_with_it(tmp_path):
    """A second run refuses, names the files, and leaves them untouched; -f replaces them."""
    out = tmp_path / "d"
    assert address_book("from-range", "127.0.0.1", "19793", "19794", "-o", str(out)).returncode == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}

    run = address_book("from-range", "127.0.0.1", "19793", "19795", "-o", str(out))
    assert run.returncode != 0
    assert "refusing to overwrite" in run.stderr and "key_0.pem" in run.stderr and "address-book.toml" in run.stderr
    assert "--force" in run.stderr
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before

    run = address_book("from-range", "127.0.0.1", "19793", "19795", "-o", str(out), "-f")
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(out)) == ["address-book.toml", "key_0.pem", "key_1.pem", "key_2.pem"]
    assert (out / "key_0.pem").read_bytes() != before["key_0.pem"]
    assert [e["addr"] for e in read_book(out)] == ["127.0.0.1:19793", "127.0.0.1:19794", "127.0.0.1:19795"]

    run = address_book("from-range", "127.0.0.1", "19793", "19793", "-o", str(out), "--force")
    assert run.returncode == 0, run.stderr
    assert len(read_book(out)) == 1
    assert "key_1.pem" in run.stderr and "not in this one" in run.stderr  # stale keys are reported, kept


def test_from_list_one_node_per_address_in_order(tmp_path):
    """IPv4, IPv6 in brackets and host names; the book keeps the order given and writes IPv6 in
    its canonical form."""
    out = tmp_path / "d"
    run = address_book("from-list", "172.18.0.2:19793", "[0:0::1]:19794", "node-3.example:19795", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert [e["addr"] for e in read_book(out)] == ["172.18.0.2:19793", "[::1]:19794", "node-3.example:19795"]
    assert sorted(os.listdir(out)) == ["address-book.toml", "key_0.pem", "key_1.pem", "key_2.pem"]


def test_from_range_accepts_ipv6(tmp_path):
    out = tmp_path / "d"
    run = address_book("from-range", "::1", "5000", "5001", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert [e["addr"] for e in read_book(out)] == ["[::1]:5000", "[::1]:5001"]


@pytest.mark.parametrize("args, message", [
    (["from-range", "127.0.0.1", "19796", "19793"], "must not be greater than LAST_PORT"),
    (["from-range", "127.0.0.1", "0", "10"], "FIRST_PORT must be a port in 1...65535"),
    (["from-range", "127.0.0.1", "65535", "65536"], "LAST_PORT must be a port in 1...65535"),
    (["from-range", "127.0.0.1", "1", "1001"], "at most 1000"),
    (["from-range", "127.0.0.1", "x", "2"], "x"),
    (["from-range", "300.1.1.1", "1", "2"], "Invalid IP '300.1.1.1'"),
    (["from-range", "bad_host", "1", "2"], "Invalid IP 'bad_host'"),
    (["from-list"], "IP:PORT"),
    (["from-list", "127.0.0.1"], "Invalid address '127.0.0.1'"),
    (["from-list", "127.0.0.1:0"], "1...65535"),
    (["from-list", "::1:19793"], "in brackets"),
    (["from-list", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1"], "given twice (addresses 1 and 3)"),
    (["from-list", "[::1]:1", "[0::1]:1"], "[::1]:1 is given twice"),
])
def test_bad_input_fails_with_a_message_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "d"
    run = address_book(*args, "-o", str(out))
    assert run.returncode != 0
    assert message in run.stderr, run.stderr
    assert not out.exists()


def test_an_output_dir_that_is_a_file_fails(tmp_path):
    out = tmp_path / "file"
    out.write_text("not a directory")
    run = address_book("from-range", "127.0.0.1", "1", "1", "-o", str(out))
    assert run.returncode != 0
    assert str(out) in run.stderr and "Not a directory" in run.stderr


def test_openssl_reads_the_keys_and_the_book_holds_their_public_keys(tmp_path):
    """`openssl ec` reads key_N.pem as a P-256 key, and its public key is entry N's."""
    assert OPENSSL is not None, "openssl is needed (scripts/test installs it)"
    out = tmp_path / "d"
    assert address_book("from-list", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "-o", str(out)).returncode == 0
    entries = read_book(out)
    for n, entry in enumerate(entries):
        key = out / f"key_{n}.pem"
        text = subprocess.run([OPENSSL, "ec", "-in", key, "-noout", "-text"], capture_output=True, text=True)
        assert text.returncode == 0, text.stderr
        assert "ASN1 OID: prime256v1" in text.stdout
        public = subprocess.run([OPENSSL, "ec", "-in", key, "-pubout"], capture_output=True, text=True, check=True)
        assert public.stdout == entry["key"]
