"""Cache entries: sealed with a checksum, and refused unless intact and sane."""

from __future__ import annotations

import json

import pytest

from cred_helper.cache.entry import CorruptEntry, Entry
from cred_helper.cache.entrydoc import MAX_LIFETIME, check, seal, unseal

KEY = "0123456789abcdef" * 4


def entry(**changes) -> Entry:
    fields = dict(key=KEY, profile="prod", issuer="csr", issued_at=1_700_000_000.5,
                  not_after=1_700_001_800.5, ttl=1800, serial="9f2c",
                  status={"clientCertificateData": "CERT", "clientKeyData": "KEY"},
                  identity={"username": "alice", "groups": ["oncall"]},
                  server="https://127.0.0.1:6443", source="the bootstrap token")
    return Entry(**{**fields, **changes})


def doc(**changes) -> dict:
    return {**json.loads(unseal(entry().to_bytes())), **changes}


def resealed(document: dict) -> bytes:
    """A document with a valid checksum: damage the checksum cannot see, only the checks."""
    return seal(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())


def test_round_trip_and_layout():
    data = entry().to_bytes()
    assert data.startswith(b'{"sha256":"') and data.endswith(b"}\n")
    assert json.loads(data)["format"] == 2
    assert Entry.from_json(data) == entry()
    assert Entry.from_json(data.decode()) == entry()
    assert Entry.from_json(entry(status={"token": "t"}).to_bytes()).status == {"token": "t"}


@pytest.mark.parametrize("where", [1, 12, 80, 120, 200, -30, -3, -2])
def test_a_flipped_byte_anywhere_is_damage(where):
    data = bytearray(entry().to_bytes())
    data[where] ^= 0x01
    with pytest.raises(CorruptEntry):
        Entry.from_json(bytes(data))


@pytest.mark.parametrize("cut", [0, 1, 40, 100, -2, -1])
def test_a_torn_file_is_damage(cut):
    with pytest.raises(CorruptEntry):
        Entry.from_json(entry().to_bytes()[:cut])


def test_an_older_format_without_checksum_is_refused():
    old = json.dumps({"format": 1, **json.loads(unseal(entry().to_bytes()))}, indent=1)
    with pytest.raises(CorruptEntry, match="no checksum"):
        Entry.from_json(old)


DAMAGE = {
    "format 1 sealed": dict(format=1),
    "format as a string": dict(format="2"),
    "format as true": dict(format=True),
    "issued_at a string": dict(issued_at="1700000000"),
    "not_after a bool": dict(not_after=True),
    "not_after NaN": dict(not_after=float("nan")),
    "not_after infinite": dict(not_after=float("inf")),
    "not_after 1e308": dict(not_after=1e308),
    "not_after a huge int": dict(not_after=10**400),
    "not_after negative": dict(issued_at=-5, not_after=-1),
    "not_after before issued_at": dict(not_after=1_699_999_999),
    "absurd lifetime": dict(not_after=1_700_000_000.5 + MAX_LIFETIME + 1),
    "ttl a float": dict(ttl=1800.0),
    "ttl zero": dict(ttl=0),
    "ttl a bool": dict(ttl=True),
    "empty status": dict(status={}),
    "status a list": dict(status=["token"]),
    "empty token": dict(status={"token": ""}),
    "token a number": dict(status={"token": 12}),
    "unknown status field": dict(status={"token": "t", "expirationTimestamp": "x"}),
    "certificate without key": dict(status={"clientCertificateData": "CERT"}),
    "token and certificate": dict(status={"token": "t", "clientCertificateData": "C",
                                          "clientKeyData": "K"}),
    "key not hex": dict(key="k" * 64),
    "key with a path": dict(key="../" + "a" * 61),
    "key upper case": dict(key="A" * 64),
    "key too short": dict(key="a" * 63),
    "no serial": dict(serial=""),
    "serial a number": dict(serial=7),
    "profile null": dict(profile=None),
    "identity a list": dict(identity=["alice"]),
    "groups a string": dict(identity={"username": "alice", "groups": "oncall"}),
    "username a number": dict(identity={"username": 5}),
}


@pytest.mark.parametrize("change", DAMAGE.values(), ids=DAMAGE.keys())
def test_wrong_types_and_insane_values_are_refused(change):
    with pytest.raises(CorruptEntry):
        Entry.from_json(resealed(doc(**change)))


def test_missing_and_extra_fields_are_refused():
    missing = doc()
    del missing["serial"]
    with pytest.raises(CorruptEntry):
        Entry.from_json(resealed(missing))
    with pytest.raises(CorruptEntry, match="fields no entry has"):
        Entry.from_json(resealed(doc(extra=1)))


def test_nan_written_as_a_json_constant_is_not_json():
    body = unseal(resealed(doc())).replace(b'"ttl":1800', b'"ttl":NaN')
    with pytest.raises(CorruptEntry):
        Entry.from_json(seal(body))


def test_deep_nesting_is_damage_not_a_crash():
    deep = b'{"identity":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(CorruptEntry):
        Entry.from_json(seal(deep))


def test_check_accepts_what_the_writer_writes():
    check(doc())
    check(json.loads(unseal(entry(status={"token": "t"}, identity={}).to_bytes())))
