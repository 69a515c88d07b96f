"""Damaged side files: the small files beside a cache entry (the served log of the 401 rule,
the fast path's alias, the pending CSR record and its refusal, the issuance lock).

Whatever stands where one belongs (a directory, a symlink to a file of the user's or to
nothing, a file open to group/others or owned by someone else), a run is refused nothing: the
file's content is never trusted, it is replaced where that is safe, one warning names it, the
credential is printed, and a symlink's target is never touched."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from tests.support.damage import KINDS, SAID, plant
from tests.support.harness import assert_no_secrets, edit_entry

SIDE_FILES = ("served", "alias", "pending", "pending-refused", "lock")


def _get(sandbox):
    return sandbox.run(*sandbox.base_args(), exec_info=sandbox.exec_info())


def _side_path(sandbox, kind: str) -> Path:
    if kind == "alias":
        (alias,) = sandbox.cache_dir.glob("*.alias")
        return alias
    (entry,) = sandbox.cache_dir.glob("*.json")
    return entry.with_suffix(f".{kind}")


def _credential(result) -> dict:
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["kind"] == "ExecCredential" and doc["status"]["clientCertificateData"]
    return doc


def _warnings(result) -> list[str]:
    lines = result.stderr.splitlines()
    assert "unexpected" not in result.stderr and "Traceback" not in result.stderr, \
        result.stderr
    assert all(ln.startswith("cred-helper: warning: ") for ln in lines), result.stderr
    return lines


@pytest.mark.parametrize("damage", KINDS)
@pytest.mark.parametrize("kind", SIDE_FILES)
def test_a_damaged_side_file_costs_a_warning_never_the_credential(sandbox, kind, damage):
    _credential(_get(sandbox))  # an entry, its alias, its served log and lock
    path = _side_path(sandbox, kind)
    target = sandbox.root / "precious"
    target.write_text("the user's own file\n")
    target.chmod(0o600)
    # Expired, so that the next run renews: the lock, the pending record and the refusal
    # are all in play, not only the served log and the alias of a cache hit.
    (entry,) = sandbox.cache_dir.glob("*.json")
    ended = time.time() - 60
    edit_entry(entry, lambda doc: doc.update(issued_at=ended - 1800, not_after=ended))
    plant(path, damage, target)

    first = _get(sandbox)
    _credential(first)
    warned = _warnings(first)
    assert len(warned) <= 1, first.stderr
    assert target.read_text() == "the user's own file\n"  # a symlink's target is untouched
    assert_no_secrets(first.stderr, sandbox.token)
    if warned:
        assert warned[0].startswith(f"cred-helper: warning: ignoring {path}: it "), warned
        assert SAID[damage] in warned[0], warned

    # Repaired where that was safe: then the next runs are quiet, and a hit again.
    second = _get(sandbox)
    _credential(second)
    if damage == "directory with a file":
        assert (path / "kept").read_text() == "not ours to remove"
        assert len(_warnings(second)) <= 1
    else:
        assert _warnings(second) == [], second.stderr
        if path.exists() or path.is_symlink():
            st = path.lstat()
            assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
            assert st.st_mode & 0o077 == 0
