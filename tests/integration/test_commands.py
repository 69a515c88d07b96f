"""login, status, logout, --version, --help, and the bootstrap and cache variants."""

from __future__ import annotations

import base64
import json

import pytest

from cred_helper import __version__
from tests.support.apiserver import write_kubeconfig


def test_version(sandbox):
    result = sandbox.run("--version")
    assert result.returncode == 0 and __version__ in result.stdout


@pytest.mark.parametrize("command", [[], ["get"], ["login"], ["status"], ["logout"]])
def test_help_on_every_command(sandbox, command):
    result = sandbox.run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: cred-helper" in result.stdout


def test_login_status_logout(sandbox):
    args = sandbox.base_args("--cluster=prod", f"--server={sandbox.server.url}",
                             f"--certificate-authority={sandbox.ca_file}")
    login = sandbox.run("login", *args)
    assert login.returncode == 0, login.stderr
    assert login.stdout == ""
    assert "logged in as alice@example.com (oncall, sre) until" in login.stderr
    assert "(in 29m" in login.stderr

    table = sandbox.run("status")
    assert table.returncode == 0
    header, row = table.stdout.strip().splitlines()
    assert header.split() == ["PROFILE", "ISSUER", "CACHE", "IDENTITY", "GROUPS", "EXPIRES", "IN"]
    assert row.split()[:5] == ["prod", "csr", "file", "alice@example.com", "oncall,sre"]

    (entry,) = json.loads(sandbox.run("status", "-o", "json").stdout)
    assert entry["identity"] == {"username": "alice@example.com", "groups": ["oncall", "sre"]}
    assert 28 * 60 < entry["expiresInSeconds"] <= 30 * 60
    assert "clientKeyData" not in json.dumps(entry)

    # A second login reuses the fresh credential; --force issues a new one.
    assert sandbox.run("login", *args).returncode == 0
    assert sandbox.server.csr_creations == 1
    assert sandbox.run("login", "--force", *args).returncode == 0
    assert sandbox.server.csr_creations == 2

    # A name neither the cache nor a profile file knows is refused, as get and login refuse it
    other = sandbox.run("status", "--cluster=other", "-o", "json")
    assert other.returncode == 2 and other.stdout == ""
    assert "no profile 'other'" in other.stderr and "cached for prod" in other.stderr
    assert sandbox.run("logout").returncode == 2
    logout = sandbox.run("logout", "--cluster=prod")
    assert logout.returncode == 0
    assert "removed 1 credential, 0 refresh tokens, 1 other file" in logout.stderr  # the lock
    assert json.loads(sandbox.run("status", "-o", "json").stdout) == []
    assert not list(sandbox.cache_dir.glob("*.json"))
    assert not list(sandbox.cache_dir.glob("*.alias"))


def test_logout_all(sandbox):
    for cluster in ("a", "b"):
        assert sandbox.run(*sandbox.base_args(f"--cluster={cluster}"),
                           exec_info=sandbox.exec_info()).returncode == 0
    assert len(json.loads(sandbox.run("status", "-o", "json").stdout)) == 2
    logout = sandbox.run("logout", "--all").stderr
    # per entry: the credential, its lock, served log and fast-path alias
    assert "removed 2 credentials, 0 refresh tokens, 6 other files" in logout, logout
    assert list(sandbox.cache_dir.iterdir()) == []


def test_login_with_context_warms_kubectls_entry(sandbox, kubectl):
    args = sandbox.base_args("--cluster=prod")
    kubeconfig = sandbox.kubeconfig(args)
    login = sandbox.run("login", f"--kubeconfig={kubeconfig}", "--context=test", *args)
    assert login.returncode == 0, login.stderr
    result = sandbox.kubectl(kubectl, kubeconfig, "get", "--raw", "/version")
    assert result.returncode == 0, result.stderr
    assert sandbox.server.csr_creations == 1


def test_cache_none_writes_nothing(sandbox):
    for _ in range(2):
        result = sandbox.run(*sandbox.base_args("--cache=none"), exec_info=sandbox.exec_info())
        assert result.returncode == 0, result.stderr
    assert sandbox.server.csr_creations == 2
    assert not sandbox.cache_dir.exists()


def test_profile_file(sandbox):
    config = sandbox.root / "config" / "cred-helper" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[clusters.prod]\nissuer = "csr"\nttl = "45m"\nkey = "p256"\n'
                      'bootstrap-token-file = "~/bootstrap.token"\nsubject-o = ["oncall"]\n')
    result = sandbox.run("--cluster=prod", exec_info=sandbox.exec_info())
    assert result.returncode == 0, result.stderr
    (csr,) = sandbox.server.csrs.values()
    assert csr["spec"]["expirationSeconds"] == 2700
    assert csr["spec"]["usages"] == ["digital signature", "client auth"]
    (entry,) = json.loads(sandbox.run("status", "-o", "json").stdout)
    assert entry["identity"]["groups"] == ["oncall"]


def test_environment_selects_the_profile(sandbox):
    config = sandbox.root / "elsewhere.toml"
    config.write_text(f'[clusters.prod]\nissuer = "csr"\nbootstrap-token-file = '
                      f'"{sandbox.token_file}"\n')
    result = sandbox.run(exec_info=sandbox.exec_info(), extra_env={
        "CRED_HELPER_CLUSTER": "prod", "CRED_HELPER_CONFIG": str(config),
        "CRED_HELPER_CACHE_DIR": str(sandbox.root / "envcache")})
    assert result.returncode == 0, result.stderr
    assert list((sandbox.root / "envcache").glob("*.json"))


def test_bootstrap_kubeconfig_with_client_certificate(sandbox):
    cert, key = sandbox.server.client_cert("bob", ["dev", "system:nodes"])
    path = sandbox.root / "bootstrap.kubeconfig"
    write_kubeconfig(str(path), sandbox.server, {
        "client-certificate-data": base64.b64encode(cert).decode(),
        "client-key-data": base64.b64encode(key).decode()}, name="boot")
    result = sandbox.run("--issuer=csr", f"--bootstrap-kubeconfig={path}",
                         "--bootstrap-context=boot")
    assert result.returncode == 0, result.stderr
    (csr,) = sandbox.server.csrs.values()
    assert csr["spec"]["username"] == "bob"
    (entry,) = json.loads(sandbox.run("status", "-o", "json").stdout)
    assert entry["identity"] == {"username": "bob", "groups": ["dev"]}


def test_bootstrap_kubeconfig_with_token_and_missing_context(sandbox):
    path = sandbox.root / "bootstrap.kubeconfig"
    write_kubeconfig(str(path), sandbox.server, {"token": sandbox.token})
    ok = sandbox.run("--issuer=csr", f"--bootstrap-kubeconfig={path}")
    assert ok.returncode == 0, ok.stderr
    bad = sandbox.run("--issuer=csr", f"--bootstrap-kubeconfig={path}",
                      "--bootstrap-context=nope")
    assert bad.returncode == 2 and "no context 'nope'" in bad.stderr
