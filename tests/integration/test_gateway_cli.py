"""`cred-helper gateway run`'s usage: every wrong flag or unusable file is one error line and a
hint, exit 2, before anything listens or anything is asked of a server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gateway import UserCA, new_key

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    ca = tmp_path / "user_ca.pub"
    ca.write_text(UserCA().public_line + "\n")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n"
                          "- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
                          "users:\n- name: u\n  user: {token: t}\ncontexts:\n"
                          "- name: c\n  context: {cluster: c, user: u}\n")
    return {"ca": ca, "host": new_key(tmp_path, "host").path, "kubeconfig": kubeconfig,
            "recordings": tmp_path / "recordings", "file": ca}


def gateway(files, *args: str) -> subprocess.CompletedProcess:
    base = {"--user-ca": files["ca"], "--host-key": files["host"],
            "--kubeconfig": files["kubeconfig"], "--recordings": files["recordings"]}
    given = {a.split("=")[0] for a in args}
    argv = [*(f"{k}={v}" for k, v in base.items() if k not in given), *args]
    return subprocess.run([sys.executable, "-m", "cred_helper", "gateway", "run", *argv],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize(("args", "message"), [
    (["--listen=nowhere"], "--listen 'nowhere' is not HOST:PORT"),
    (["--listen=0.0.0.0:99999"], "is not HOST:PORT"),
    (["--idle-timeout=soon"], "--idle-timeout: 'soon' is not a duration"),
    (["--max-channels=0"], "--max-channels must be 1 or more"),
    (["--user-ca=/nonexistent/ca.pub"], "--user-ca: cannot read /nonexistent/ca.pub"),
    (["--host-key=/nonexistent/key"], "--host-key: cannot load /nonexistent/key"),
    (["--kubeconfig=/nonexistent/kubeconfig"], "cannot read kubeconfig"),
])
def test_usage_errors(files, args, message):
    done = gateway(files, *args)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0].startswith("cred-helper: error: ") and message in lines[0], done.stderr
    assert len(lines) <= 2 and "Traceback" not in done.stderr
    assert "CryptographyDeprecationWarning" not in done.stderr


def test_a_ca_file_that_holds_no_key(files, tmp_path):
    bad = tmp_path / "bad.pub"
    bad.write_text("-----BEGIN CERTIFICATE-----\n")
    done = gateway(files, f"--user-ca={bad}")
    assert done.returncode == 2
    assert "line 1 is not an OpenSSH public key" in done.stderr.splitlines()[0]


def test_a_host_key_that_is_not_a_private_key(files):
    done = gateway(files, f"--host-key={files['ca']}")
    assert done.returncode == 2 and "--host-key: cannot load" in done.stderr


def test_recordings_that_cannot_be_written(files, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = gateway(files, f"--recordings={blocker}/recordings")
    assert done.returncode == 2
    assert f"--recordings: cannot write in {blocker}/recordings" in done.stderr
    assert done.stderr.splitlines()[1] == "hint: mount a writable volume there"
