"""Whole-or-nothing file replacement, and what a killed writer leaves behind."""

from __future__ import annotations

import os
import stat
import time

import pytest

from cred_helper.atomicfile import STALE, replace_file


def test_replace_keeps_the_mode_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "config"
    target.write_text("old")
    replace_file(str(target), "new", 0o640)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "config"
    target.write_text("old")
    with pytest.raises(TypeError):
        replace_file(str(target), None, 0o600)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_the_next_write_removes_what_a_killed_writer_left(tmp_path):
    """A kill between mkstemp and the rename leaves a copy of the kubeconfig (its secrets):
    a stale one of ours goes; a fresh one (a write in progress) and others' files stay."""
    old = time.time() - STALE - 60
    left = tmp_path / ".cred-helper-ab12_xyz"
    left.write_text("token: secret")
    os.utime(left, (old, old))
    fresh = tmp_path / ".cred-helper-cd34efgh"
    fresh.write_text("in progress")
    other = tmp_path / ".cred-helper-notours.yaml"
    other.write_text("kept")
    os.utime(other, (old, old))
    replace_file(str(tmp_path / "config"), "new", 0o600)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".cred-helper-cd34efgh", ".cred-helper-notours.yaml", "config"]
