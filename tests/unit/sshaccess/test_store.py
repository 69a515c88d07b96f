"""Access requests in the cache: checksummed like credentials (damage is discarded, an unsafe
file refused), the files ssh reads made again when they differ, and removed with their entry."""

from __future__ import annotations

import dataclasses
import os

import pytest

from cred_helper.errors import CacheError
from cred_helper.sshaccess.store import ISSUED, PENDING, SshEntry, SshStore, marker

KEY = "ab" * 32


def entry(**changes) -> SshEntry:
    base = SshEntry(key=KEY, profile="prod", alias="prod-payments", server="https://k",
                    name="alice-1", state=PENDING, created=1000.0, seconds=1800,
                    namespace="payments", pods=("api-*",), reason="INC-42", username="alice",
                    groups=("oncall",), ssh_key="ed25519", public_line="ssh-ed25519 AAAA",
                    private_openssh="-----BEGIN OPENSSH PRIVATE KEY-----\n...",
                    not_after=1000.0 + 86400)
    return dataclasses.replace(base, **changes)


def test_round_trip_and_status_fields(tmp_path):
    store = SshStore(str(tmp_path / "c"), print)
    issued = entry(state=ISSUED, certificate="ssh-ed25519-cert-v01@openssh.com AAAA",
                   issued_at=1010.0, not_after=2810.0, grant={"namespace": "payments"})
    store.save(issued)
    assert store.load(KEY) == issued
    assert store.entries() == [issued]
    assert (issued.issuer, issued.source, issued.identity["accessRequest"]) == (
        "ssh", "alice-1", "alice-1")
    assert oct(os.stat(store.path(KEY)).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("damage", [
    lambda b: b[:-10],
    lambda b: b.replace(b"alice-1", b"alice-2"),
    lambda b: b"{}",
    lambda b: b"",
])
def test_damage_is_discarded_with_a_warning(tmp_path, damage):
    warnings: list[str] = []
    store = SshStore(str(tmp_path), warnings.append)
    store.save(entry())
    path = store.path(KEY)
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(damage(data))
    assert store.load(KEY) is None
    assert not os.path.exists(path) and "discarding" in warnings[0]


def test_insane_values_are_damage(tmp_path):
    store = SshStore(str(tmp_path), lambda _: None)
    for bad in (entry(state="weird"), entry(seconds=0), entry(state=ISSUED),
                entry(created=float("inf"))):
        try:
            store.save(bad)
        except ValueError:
            continue  # not even writable (NaN / inf)
        assert store.load(KEY) is None


def test_an_entry_others_can_read_is_refused(tmp_path):
    store = SshStore(str(tmp_path), print)
    store.save(entry())
    os.chmod(store.path(KEY), 0o644)
    with pytest.raises(CacheError, match="group/others"):
        store.load(KEY)


def test_files_are_made_again_when_they_differ_and_leave_with_their_entry(tmp_path):
    store = SshStore(str(tmp_path), print)
    store.save(entry())
    paths = store.paths("prod-payments")
    files = {paths.key: b"KEY", paths.certificate: b"CERT\n",
             paths.conf: f"{marker(KEY)}\nHost prod-payments\n".encode()}
    store.put_files(paths, files)
    with open(paths.key, "wb") as fh:
        fh.write(b"damaged")
    os.chmod(paths.certificate, 0o644)  # ssh would refuse nothing here, but we are strict
    store.put_files(paths, files)
    for path, data in files.items():
        with open(path, "rb") as fh:
            assert fh.read() == data
        assert os.stat(path).st_mode & 0o077 == 0
    other = store.paths("prod-shop")
    store.put_files(other, {other.conf: f"{marker('cd' * 32)}\n".encode()})
    store.delete(KEY)
    assert store.load(KEY) is None
    assert not os.path.exists(paths.conf) and not os.path.exists(paths.dir)
    assert os.path.exists(other.conf)  # another entry's block stays
