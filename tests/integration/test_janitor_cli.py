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
    # kubectl refuses these (apimachinery's labels.Parse); so does the janitor now.
    (["--exclude-selector", "keep=yes,"], "--exclude-selector: cannot read 'keep=yes,'"),
    (["--exclude-selector", "tierin ()"], "--exclude-selector: cannot read 'tierin ()'"),
    (["--exclude-selector", ""], "the selector is empty"),
    # Lifetimes that cut every session: refused unless --force says it is meant.
    (["--max-age", "0"], "--max-age 0 is below 30m0s: a pass would cut debug sessions"),
    (["--max-age", "8"], "--max-age 8 is below 30m0s"),
    (["--after-exit", "4m"], "--after-exit 4m is below 5m0s"),
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
                 "--exclude-namespace", "--exclude-selector", "--dry-run", "--force"):
        assert flag in done.stdout


def test_force_accepts_a_short_lifetime(tmp_path):
    """With --force the floor is passed: the next thing checked is the kubeconfig."""
    done = janitor("--max-age", "8", "--after-exit", "0", "--force", "--kubeconfig",
                   str(tmp_path / "missing"))
    assert done.returncode == 2
    assert "cannot read kubeconfig" in done.stderr and "below" not in done.stderr
    done = janitor("--max-age", "8", "--kubeconfig", str(tmp_path / "missing"))
    assert "hint: give --max-age 30m0s or more, or add --force if that is meant" in done.stderr


@pytest.mark.parametrize("user", [
    {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "cred-helper"}},
    {"auth-provider": {"name": "oidc"}},
])
def test_an_exec_plugin_kubeconfig_names_the_janitor(tmp_path, user):
    """The janitor shares the approver's connection; its errors named "the approver"
    (issue 25)."""
    import yaml

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    kubeconfig.chmod(0o600)
    done = janitor("--kubeconfig", str(kubeconfig))
    assert done.returncode == 2
    assert "is not run by the janitor" in done.stderr and "approver" not in done.stderr
