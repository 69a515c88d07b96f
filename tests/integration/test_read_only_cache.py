"""A cache directory that cannot be written (issue 15): what is cached and still valid is
served, a renewal that cannot take the lock serves the still-valid credential with one warning,
and with nothing usable cached it is one error naming the path and the reason, before any CSR
is made. (A full disk, where the credential is issued and then cannot be kept, is in
test_policy_cli.py.)

Runs everywhere: as root (CI here) the directory becomes a read-only bind mount, so writes
fail with EROFS; elsewhere it is mode 0500, so they fail with EACCES."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.support.harness import edit_entry, one_error
from tests.support.needs import missing


@pytest.fixture
def read_only():
    """make(path) -> the reason the OS gives for writes there from now on."""
    done: list = []

    def make(path) -> str:
        if os.geteuid() != 0:
            path.chmod(0o500)
            done.append(lambda: path.chmod(0o700))
            return "Permission denied"
        bound = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
        if bound.returncode != 0:
            missing(f"root here cannot bind-mount (mode 0500 does not stop root): "
                    f"{bound.stderr.decode().strip()}")
        done.append(lambda: subprocess.run(["umount", "-l", str(path)], check=False))
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        return "Read-only file system"

    yield make
    for undo in reversed(done):
        undo()


def _cached(sandbox, left: float | None) -> None:
    """A certificate issued and cached, then aged to `left` seconds of its 30 minutes."""
    got = sandbox.run(*sandbox.base_args(), exec_info=sandbox.exec_info())
    assert got.returncode == 0, got.stderr
    if left is not None:
        (path,) = sandbox.cache_dir.glob("*.json")
        now = time.time()
        edit_entry(path, lambda doc: doc.update(issued_at=now + left - 1800,
                                                not_after=now + left))
    sandbox.server.auto_approve = None  # any new CSR would wait for a person


def _get(sandbox):
    return sandbox.run(*sandbox.base_args(), exec_info=sandbox.exec_info())


def test_nothing_cached_is_one_error_before_any_csr(sandbox, read_only):
    sandbox.cache_dir.mkdir(parents=True, mode=0o700)
    reason = read_only(sandbox.cache_dir)
    got = _get(sandbox)
    assert got.returncode == 1 and got.stdout == ""
    error = one_error(got.stderr)
    assert f"cannot create the lock file {sandbox.cache_dir}/" in error and reason in error
    assert "unexpected" not in got.stderr
    assert sandbox.server.csr_creations == 0


def test_a_fresh_credential_is_served(sandbox, read_only):
    _cached(sandbox, None)
    read_only(sandbox.cache_dir)
    got = _get(sandbox)
    assert got.returncode == 0, got.stderr
    assert got.stderr == ""
    assert json.loads(got.stdout)["status"]["clientCertificateData"]
    assert sandbox.server.csr_creations == 1


def test_a_credential_due_for_renewal_is_served_with_one_warning(sandbox, read_only):
    _cached(sandbox, 100)
    reason = read_only(sandbox.cache_dir)
    got = _get(sandbox)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["status"]["clientCertificateData"]
    lines = got.stderr.splitlines()
    assert len(lines) == 1, got.stderr
    assert lines[0].startswith("cred-helper: warning: could not renew the credential")
    assert str(sandbox.cache_dir) in lines[0] and reason in lines[0]
    assert "serving the cached one until it expires" in lines[0]
    assert sandbox.server.csr_creations == 1, "no CSR that could not be kept"


def test_an_expired_credential_is_one_error(sandbox, read_only):
    _cached(sandbox, -1)
    reason = read_only(sandbox.cache_dir)
    got = _get(sandbox)
    assert got.returncode == 1 and got.stdout == ""
    error = one_error(got.stderr)
    assert str(sandbox.cache_dir) in error and reason in error
    assert sandbox.server.csr_creations == 1


def test_a_lock_file_that_still_opens_is_not_enough(sandbox, tmp_path):
    """The lock file from an earlier run opens, but nothing new can be made in the directory
    (here: no inode left on a small tmpfs; mode 0500 does the same for a user): one error
    before any CSR, not a CSR whose key and certificate could not be kept."""
    if os.geteuid() != 0:
        missing("mounting a tmpfs needs root (the other tests here cover a 0500 directory)")
    where = tmp_path / "few-inodes"
    where.mkdir(mode=0o700)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=12,mode=0700", "tmpfs",
                       str(where)], capture_output=True).returncode != 0:
        missing("this root cannot mount a tmpfs")
    try:
        args = sandbox.base_args(f"--cache-dir={where}", "--approval-timeout=2s")
        assert sandbox.run(*args, exec_info=sandbox.exec_info()).returncode == 0
        (entry,) = where.glob("*.json")
        now = time.time()
        edit_entry(entry, lambda doc: doc.update(issued_at=now - 1801, not_after=now - 1))
        for n in range(100):  # use up the inodes
            try:
                (where / f"filler-{n}").touch()
            except OSError:
                break
        sandbox.server.auto_approve = None
        got = sandbox.run(*args, exec_info=sandbox.exec_info())
        assert got.returncode == 1 and got.stdout == "", got.stderr
        error = one_error(got.stderr)
        assert f"cannot write in the cache directory {where}: No space left on device" in error
        assert sandbox.server.csr_creations == 1
        assert not [p for p in where.iterdir() if p.name.startswith(".tmp-")]
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
