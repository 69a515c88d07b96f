"""The credential policy through the installed command: `login` is not kubectl (no 401 rule),
a full or read-only cache disk, `logout --all`, and a REFRESH whose provider is gone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from cred_helper.cache.entrydoc import unseal
from tests.support.harness import CRED_HELPER, as_kubectl_would, edit_entry, one_error
from tests.support.keyring_session import secret_service
from tests.support.needs import missing, needs
from tests.support.oidc_provider import (
    OIDCProvider,
    device_login,
    provider_clients,
)

needs_node = needs(bool(shutil.which("node")), "needs Node.js")

AGE = textwrap.dedent("""
    import glob, sys
    from pathlib import Path
    from tests.support.harness import edit_entry
    (path,) = glob.glob(sys.argv[1] + "/*.json")
    edit_entry(Path(path), lambda doc: doc.update(issued_at=doc["issued_at"] - 120))
""")


def test_login_twice_from_one_shell_makes_one_csr(sandbox):
    """Two logins a couple of minutes apart from one shell: the same parent process, which
    for `get` would mean kubectl retrying after a 401. For `login` it is a person."""
    args = " ".join(sandbox.base_args("--cluster=prod", f"--server={sandbox.server.url}",
                                      f"--certificate-authority={sandbox.ca_file}"))
    script = (f"{CRED_HELPER} login {args} && "
              f"{sys.executable} -c '{AGE}' {sandbox.cache_dir} && "
              f"{CRED_HELPER} login {args}; exit $?")
    done = subprocess.run(["/bin/sh", "-c", script], env=sandbox.env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("logged in as alice@example.com") == 2
    assert sandbox.server.csr_creations == 1


# --- a full or read-only cache disk -------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs, 0700, as the cache directory (mounting needs root)."""
    where = tmp_path / "small"
    where.mkdir(mode=0o700)
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(where)],
            capture_output=True).returncode != 0:
        missing("mounting a tmpfs needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(path) -> None:
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"\0" * 512):
            pass
    except OSError:
        pass  # full
    finally:
        os.close(fd)


def test_full_disk_still_prints_the_credential(sandbox, small_disk):
    _fill(small_disk)
    args = sandbox.base_args(f"--cache-dir={small_disk}")
    got = sandbox.run(*args, exec_info=sandbox.exec_info())
    assert got.returncode == 0, got.stderr
    status = json.loads(got.stdout)["status"]
    assert "clientCertificateData" in status and "clientKeyData" in status
    warnings = got.stderr.splitlines()
    assert len(warnings) == 1, got.stderr
    assert warnings[0].startswith("cred-helper: warning: could not keep the credential")
    assert str(small_disk) in warnings[0] and "No space left on device" in warnings[0]
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".tmp-")]


def test_read_only_disk_is_one_error_before_issuance(sandbox, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    got = sandbox.run(*sandbox.base_args(f"--cache-dir={small_disk}"),
                      exec_info=sandbox.exec_info())
    assert got.returncode == 1 and got.stdout == ""
    error = one_error(got.stderr)
    assert str(small_disk) in error and "Read-only file system" in error
    assert sandbox.server.csr_creations == 0, "nothing issued that could not be kept"


def test_full_disk_while_renewing_makes_no_csr_it_cannot_remember(sandbox, small_disk):
    """Inside the margin, with a person approving: a CSR that could not be kept on record
    would be one more CSR per command. None is made; the still-valid certificate is served
    with one warning naming the record's path and the reason."""
    args = sandbox.base_args(f"--cache-dir={small_disk}")
    assert sandbox.run(*args, exec_info=sandbox.exec_info()).returncode == 0
    (path,) = small_disk.glob("*.json")
    now = time.time()
    edit_entry(path, lambda doc: doc.update(issued_at=now - 1700, not_after=now + 100))
    cached = json.loads(unseal(path.read_bytes()))["status"]["clientCertificateData"]
    _fill(small_disk)
    sandbox.server.auto_approve = None
    for _ in range(2):
        got = sandbox.run(*args, exec_info=sandbox.exec_info())
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["status"]["clientCertificateData"] == cached
        lines = got.stderr.splitlines()
        assert len(lines) == 1, got.stderr
        assert lines[0].startswith("cred-helper: warning: could not renew the credential")
        assert f"{path.with_suffix('.pending')}: No space left on device" in lines[0]
    assert sandbox.server.csr_creations == 1
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".tmp-")]


# --- logout --all ---------------------------------------------------------------------------


def _device_login(env, args) -> str:
    return device_login(as_kubectl_would(CRED_HELPER, "login", *args), env)


LIST_ITEMS = textwrap.dedent("""
    import json, secretstorage
    bus = secretstorage.dbus_init()
    items = [dict(i.get_attributes()) for c in secretstorage.get_all_collections(bus)
             for i in c.get_all_items()]
    print(json.dumps(items))
""")


def _keyring_items(env) -> list[dict]:
    out = subprocess.run([sys.executable, "-c", LIST_ITEMS], env=env, capture_output=True,
                         text=True, check=True, timeout=30)
    return json.loads(out.stdout)


def _ours(items: list[dict]) -> list[dict]:
    return [i for i in items if i.get("service", "").startswith("cred-helper")]


@needs_node
def test_logout_all_leaves_nothing_behind(sandbox, tmp_path):
    with OIDCProvider(provider_clients()) as provider, secret_service(str(tmp_path)) as dbus:
        env = dict(sandbox.env, **dbus)
        sandbox.env = env
        oidc = ["--issuer=oidc", f"--oidc-issuer-url={provider.issuer}",
                "--oidc-client-id=public", "--oidc-grant=device", "--oidc-scope=openid",
                "--oidc-scope=email", "--oidc-scope=offline_access", "--cluster=idp"]
        # An OIDC login kept in the keyring, with its refresh token there too.
        assert "logged in as alice" in _device_login(env, [*oidc, "--cache=keyring"])
        # A certificate in the file cache, served once (served log, fast-path alias, lock).
        got = sandbox.run(*sandbox.base_args("--cluster=prod"), exec_info=sandbox.exec_info())
        assert got.returncode == 0, got.stderr
        (entry,) = sandbox.cache_dir.glob("*.json")
        key = entry.stem
        # What a killed run and a pending CSR leave.
        for name in (".tmp-k1l13d", f"{key}.pending"):
            (sandbox.cache_dir / name).write_text("x")
            (sandbox.cache_dir / name).chmod(0o600)
        (sandbox.cache_dir / "notes.txt").write_text("not ours")
        ours = _ours(_keyring_items(env))
        assert {i["service"] for i in ours} == {"cred-helper", "cred-helper-refresh"}, ours
        assert list(sandbox.cache_dir.glob("*.provider")), "the provider's discovery copy"

        status = json.loads(sandbox.run("status", "-o", "json").stdout)
        assert {row["cache"] for row in status} == {"keyring", "file"}

        logout = sandbox.run("logout", "--all")
        assert logout.returncode == 0, logout.stderr
        # files: cert lock, served, alias, pending; idp lock; keyring-index lock; provider
        # copy; the stray .tmp-
        assert logout.stderr == ("cred-helper: removed 2 credentials, 1 refresh token, "
                                 "8 other files\n")
        assert [p.name for p in sandbox.cache_dir.iterdir()] == ["notes.txt"]
        assert _ours(_keyring_items(env)) == []
        again = sandbox.run("logout", "--all")
        assert again.stderr == ("cred-helper: removed 0 credentials, 0 refresh tokens, "
                                "0 other files\n")


# --- REFRESH with the provider gone -------------------------------------------------------


@needs_node
def test_unreachable_provider_during_refresh_serves_the_valid_token(sandbox):
    """A 2-minute ID token due for refresh but valid for another 54 s: the provider is gone,
    the command still works, with one warning."""
    provider = OIDCProvider(provider_clients(), lifetime=120).start()
    args = ["--issuer=oidc", f"--oidc-issuer-url={provider.issuer}",
            "--oidc-client-id=public", "--oidc-grant=device", "--oidc-scope=openid",
            "--oidc-scope=email", "--oidc-scope=offline_access", "--cluster=idp"]
    try:
        _device_login(sandbox.env, args)
    finally:
        provider.stop()
    (path,) = sandbox.cache_dir.glob("*.json")
    end = time.time() + 54
    edit_entry(path, lambda doc: doc.update(not_after=end, issued_at=end - 120))
    token = json.loads(unseal(path.read_bytes()))["status"]["token"]

    got = sandbox.run(*args, exec_info=sandbox.exec_info(interactive=False, cluster=False))
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["status"]["token"] == token
    lines = got.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "cred-helper: warning: could not renew the credential"), got.stderr
    assert "serving the cached one until it expires" in lines[0]

    # Expired, with the provider still gone: renew or fail.
    edit_entry(path, lambda doc: doc.update(not_after=time.time() + 5))
    failed = sandbox.run(*args, exec_info=sandbox.exec_info(interactive=False, cluster=False))
    assert failed.returncode == 1 and failed.stdout == ""
    one_error(failed.stderr)
