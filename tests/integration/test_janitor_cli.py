"""`cred-helper janitor`'s usage: every wrong flag is one error line and a hint, exit 2, before
anything is asked of a server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def janitor(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cred_helper", "janitor", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


@pytest.mark.parametrize(("args", "message"), [
    (["--max-age", "bogus"], "--max-age: 'bogus' is not a duration"),
    (["--after-exit", "-5m"], "--after-exit: '-5m' is not a duration"),
    (["--exclude-selector", "a in (b"], "--exclude-selector: cannot read"),
    (["--max-evictions", "-1"], "--max-evictions must be 0 or more"),
    (["--bare-pods", "maybe"], "'maybe' is not one of 'skip', 'evict'"),
    (["--without-pdb", "always"], "'always' is not one of 'skip', 'evict'"),
    (["--owner-kinds", "Deployment"], "--owner-kinds Deployment: not a controller kind"),
    (["--owner-kinds", ","], "--owner-kinds names no kind"),
    (["--kubeconfig", "/nonexistent/kubeconfig"], "cannot read kubeconfig"),
])
def test_usage_errors(args, message):
    done = janitor(*args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0].startswith("cred-helper: error: ") and message in lines[0], done.stderr
    assert len(lines) <= 2 and "Traceback" not in done.stderr


def test_help_names_every_flag():
    done = janitor("--help")
    assert done.returncode == 0
    for flag in ("--kubeconfig", "--context", "--after-exit", "--max-age", "--owner-kinds",
                 "--bare-pods", "--without-pdb", "--max-evictions", "--namespace",
                 "--exclude-namespace", "--exclude-selector", "--dry-run"):
        assert flag in done.stdout
