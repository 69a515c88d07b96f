import os

import pytest

from cred_helper.cache.entry import Entry
from cred_helper.cache.filestore import FileStore
from cred_helper.errors import CacheError


def _entry(key="a" * 64):
    return Entry(key=key, profile="p", issuer="csr", issued_at=1.0, not_after=2.0, ttl=1800,
                 serial="s1", status={"token": "t"})


def test_save_creates_private_dir_and_file(tmp_path):
    warnings = []
    store = FileStore(str(tmp_path / "c"), warnings.append)
    store.save(_entry())
    assert os.stat(tmp_path / "c").st_mode & 0o777 == 0o700
    (path,) = (tmp_path / "c").glob("*.json")
    assert path.stat().st_mode & 0o777 == 0o600
    assert store.load("a" * 64) == _entry()
    assert not list((tmp_path / "c").glob(".tmp-*")), "no temporary file left behind"
    assert warnings == []


def test_corrupt_entry_is_discarded_with_a_warning(tmp_path):
    warnings = []
    store = FileStore(str(tmp_path), warnings.append)
    os.chmod(tmp_path, 0o700)
    store.save(_entry())
    (path,) = tmp_path.glob("*.json")
    path.write_text('{"format": 1}')
    assert store.load("a" * 64) is None
    assert not path.exists() and "discarding" in warnings[0]


def test_entry_of_another_key_is_discarded(tmp_path):
    os.chmod(tmp_path, 0o700)
    warnings = []
    store = FileStore(str(tmp_path), warnings.append)
    store.save(_entry("a" * 64))
    os.rename(tmp_path / f"{'a' * 64}.json", tmp_path / f"{'b' * 64}.json")
    assert store.load("b" * 64) is None and warnings


def test_open_modes_are_refused(tmp_path):
    os.chmod(tmp_path, 0o700)
    store = FileStore(str(tmp_path), lambda m: None)
    store.save(_entry())
    (path,) = tmp_path.glob("*.json")
    path.chmod(0o640)
    with pytest.raises(CacheError, match="group/others"):
        store.load("a" * 64)
    path.chmod(0o600)
    tmp_path.chmod(0o755)
    with pytest.raises(CacheError, match="group/others"):
        store.load("a" * 64)
