import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from cred_helper.cache.aliases import FastPathAliases
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


def _tmp_files(directory) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith(".tmp-")]


def test_a_failed_save_is_a_cache_error_with_path_and_reason_and_leaves_no_temp_file(
        tmp_path, monkeypatch):
    from cred_helper.cache import private

    def disk_full(fd, data):
        os.write(fd, data[: len(data) // 2])  # half the key material reached the disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    store = FileStore(str(tmp_path / "c"), lambda m: None)
    monkeypatch.setattr(private, "_write_all", disk_full)
    with pytest.raises(CacheError) as caught:
        store.save(_entry())
    assert str(tmp_path / "c" / f"{'a' * 64}.json") in caught.value.message
    assert "No space left on device" in caught.value.message
    assert _tmp_files(tmp_path / "c") == []


def test_a_read_only_replace_is_a_cache_error_too(tmp_path, monkeypatch):
    from cred_helper.cache import private

    def read_only(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    store = FileStore(str(tmp_path / "c"), lambda m: None)
    monkeypatch.setattr(private.os, "replace", read_only)
    with pytest.raises(CacheError, match="Read-only file system"):
        store.save(_entry())
    monkeypatch.undo()
    assert _tmp_files(tmp_path / "c") == []


def test_temporary_files_are_named_for_their_writer_and_swept_when_it_is_gone(tmp_path):
    from cred_helper.cache.private import STALE_AGE, sweep_stale

    os.chmod(tmp_path, 0o700)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for name in (f".tmp-{dead.pid}-ab", ".tmp-legacy", f".tmp-{os.getpid()}-mine"):
        (tmp_path / name).write_bytes(b"-----BEGIN PRIVATE KEY-----")
    old = tmp_path / f".tmp-{os.getppid()}-old"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - STALE_AGE - 5,) * 2)
    (tmp_path / f".tmp-{os.getppid()}-new").write_bytes(b"x")
    assert sweep_stale(str(tmp_path), time.time()) == 3
    assert sorted(_tmp_files(tmp_path)) == sorted(
        [f".tmp-{os.getpid()}-mine", f".tmp-{os.getppid()}-new"])
    FileStore(str(tmp_path), lambda m: None).save(_entry())  # a write sweeps too...
    assert sorted(_tmp_files(tmp_path)) == sorted(
        [f".tmp-{os.getpid()}-mine", f".tmp-{os.getppid()}-new"])  # ...but not live writers


def test_an_entry_that_is_an_empty_private_directory_is_discarded(tmp_path):
    os.chmod(tmp_path, 0o700)
    warnings = []
    store = FileStore(str(tmp_path), warnings.append)
    (tmp_path / f"{'a' * 64}.json").mkdir(mode=0o700)
    assert store.load("a" * 64) is None
    assert len(warnings) == 1 and "not a regular file" in warnings[0]
    assert not (tmp_path / f"{'a' * 64}.json").exists()
    os.mkfifo(tmp_path / f"{'a' * 64}.json", 0o600)
    assert store.load("a" * 64) is None and len(warnings) == 2


def test_an_entry_directory_that_cannot_go_or_is_open_is_refused(tmp_path):
    os.chmod(tmp_path, 0o700)
    store = FileStore(str(tmp_path), lambda m: None)
    full = tmp_path / f"{'a' * 64}.json"
    full.mkdir(mode=0o700)
    (full / "x").write_text("x")
    with pytest.raises(CacheError, match="is a directory"):
        store.load("a" * 64)
    (full / "x").unlink()
    full.chmod(0o755)
    with pytest.raises(CacheError, match="group/others"):
        store.load("a" * 64)


def test_delete_removes_the_aliases_naming_the_key(tmp_path):
    os.chmod(tmp_path, 0o700)
    store = FileStore(str(tmp_path), lambda m: None)
    store.save(_entry())
    mine, other = tmp_path / f"{'1' * 64}.alias", tmp_path / f"{'2' * 64}.alias"
    aliases = FastPathAliases(str(tmp_path), lambda m: None)
    aliases.point("1" * 64, "a" * 64, "client.authentication.k8s.io/v1")
    aliases.point("2" * 64, "b" * 64, "client.authentication.k8s.io/v1")
    store.delete("a" * 64)
    assert not mine.exists() and other.exists()


def test_a_killed_but_unreaped_writer_counts_as_gone(tmp_path):
    from cred_helper.cache.private import sweep_stale

    zombie = subprocess.Popen(["true"])  # exits, and stays a zombie until waited for
    deadline = time.monotonic() + 10
    stat = Path(f"/proc/{zombie.pid}/stat")
    while time.monotonic() < deadline and b") Z" not in stat.read_bytes():
        time.sleep(0.01)
    (tmp_path / f".tmp-{zombie.pid}-ab").write_bytes(b"-----BEGIN PRIVATE KEY-----")
    assert sweep_stale(str(tmp_path), time.time()) == 1
    zombie.wait()
