import json
import os
import stat

import pytest

from cred_helper.cache.pending import (
    LIFETIME,
    PendingCsr,
    PendingStore,
    Refusal,
    parse,
    parse_refusal,
    pending_store,
)
from cred_helper.cache.sidefile import SideFiles

RECORD = PendingCsr("cred-helper-alice-1", b"-----BEGIN PRIVATE KEY-----\n...", "alice",
                    ("oncall", "sre"), 1800, "ed25519", 1000.0, 990.0)


@pytest.fixture
def warned() -> list[str]:
    return []


@pytest.fixture
def store(tmp_path, warned):
    return PendingStore(str(tmp_path / "cache"), "k" * 64, SideFiles(warned.append))


def test_round_trip_in_a_private_file(store):
    store.save(RECORD)
    assert store.load(2000.0) == RECORD
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.dir).st_mode) == 0o700
    assert store.path.endswith("k" * 64 + ".pending")


def test_dropped_24_hours_after_the_csr_was_created(store):
    store.save(RECORD)
    assert store.load(990.0 + LIFETIME - 1) == RECORD
    assert store.load(990.0 + LIFETIME) is None  # counted from creationTimestamp
    assert not os.path.exists(store.path)
    local_only = PendingCsr(*[getattr(RECORD, f) for f in
                              ("name", "key_pem", "common_name", "groups", "ttl", "key_kind",
                               "created")])
    store.save(local_only)
    assert store.load(1000.0 + LIFETIME - 1) == local_only
    assert store.load(1000.0 + LIFETIME) is None


def test_matches_only_the_same_request():
    assert RECORD.matches("alice", ["sre", "oncall"], 1800, "ed25519")
    assert not RECORD.matches("bob", ["oncall", "sre"], 1800, "ed25519")
    assert not RECORD.matches("alice", ["oncall"], 1800, "ed25519")
    assert not RECORD.matches("alice", ["oncall", "sre"], 3600, "ed25519")
    assert not RECORD.matches("alice", ["oncall", "sre"], 1800, "p256")


@pytest.mark.parametrize("data", [
    b"", b"{", b"[]", b'{"format": 2}',
    json.dumps({**json.loads(RECORD.to_json()), "ttl": "1800"}).encode(),
    json.dumps({**json.loads(RECORD.to_json()), "created": float("nan")}).encode(),
    json.dumps({**json.loads(RECORD.to_json()), "groups": "oncall"}).encode(),
    json.dumps({**json.loads(RECORD.to_json()), "name": ""}).encode(),
])
def test_damaged_records_are_dropped(store, data):
    assert parse(data) is None
    store.save(RECORD)
    with open(store.path, "wb") as fh:
        fh.write(data)
    assert store.load(1000.0) is None
    assert not os.path.exists(store.path)


def test_an_open_record_is_not_read_but_cleared_with_one_warning(store, warned):
    store.save(RECORD)
    os.chmod(store.path, 0o644)  # its key may have been read: that CSR is not taken up
    assert store.load(1000.0) is None
    assert store.load(1000.0) is None
    assert not os.path.exists(store.path)
    assert warned == [f"ignoring {store.path}: it is readable or writable by group/others "
                      "(mode 644); removed it (it is made again when needed)"]
    store.save(RECORD)
    assert store.load(1000.0) == RECORD


def test_drop_and_none_cache(store, tmp_path):
    store.drop()  # nothing there: fine
    store.save(RECORD)
    store.drop()
    assert store.load(1000.0) is None
    assert pending_store("none", str(tmp_path), "k", print) is None
    assert isinstance(pending_store("file", str(tmp_path), "k", print), PendingStore)


def test_a_refusal_is_kept_a_day_and_read_back_as_shown(store):
    store.refuse(Refusal("cred-helper-alice-2", "denied: NotOnCall", 1000.0))
    assert stat.S_IMODE(os.stat(store.refused_path).st_mode) == 0o600
    assert store.refused_path.endswith("k" * 64 + ".pending-refused")
    assert store.refusal(1000.0 + LIFETIME - 1) == Refusal("cred-helper-alice-2",
                                                          "denied: NotOnCall", 1000.0)
    assert store.refusal(1000.0 + LIFETIME) is None
    assert not os.path.exists(store.refused_path), "an old refusal is removed"


@pytest.mark.parametrize("data", [
    b"", b"\xff", b"[]", b'{"format": 2, "name": "x", "why": "", "at": 1.0}',
    b'{"format": 1, "name": "", "why": "", "at": 1.0}',
    b'{"format": 1, "name": "x", "why": 3, "at": 1.0}',
    b'{"format": 1, "name": "x", "why": "", "at": "1"}',
    b'{"format": 1, "name": "x", "why": "", "at": 1e999}',
])
def test_a_damaged_refusal_is_none_and_removed(store, data):
    os.makedirs(store.dir, mode=0o700)
    fd = os.open(store.refused_path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, data)
    os.close(fd)
    assert store.refusal(2000.0) is None
    assert not os.path.exists(store.refused_path)


def test_a_refusal_from_the_future_is_not_believed(store):
    store.refuse(Refusal("x", "denied", 5000.0))
    assert store.refusal(2000.0) is None


def test_a_shown_refusal_has_no_control_characters():
    found = parse_refusal(b'{"format": 1, "name": "x\\u001b[2J", "why": "a\\nb\\u0007", '
                          b'"at": 1.0}')
    assert found == Refusal("x?[2J", "a b?", 1.0)
