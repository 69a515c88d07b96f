"""`--issuer oidc` through the installed command, against the real OpenID provider."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading

import jwt
import pytest

from tests.support.harness import CRED_HELPER, as_kubectl_would, assert_no_secrets, one_error
from tests.support.oidc_provider import OIDCProvider, ScriptedBrowser, provider_clients

pytestmark = pytest.mark.skipif(not shutil.which("node"), reason="needs Node.js")


@pytest.fixture(scope="module")
def provider():
    with OIDCProvider(provider_clients()) as op:
        yield op


def _args(provider, *extra):
    return ["--issuer=oidc", f"--oidc-issuer-url={provider.issuer}", "--oidc-client-id=public",
            "--oidc-grant=device", "--oidc-scope=openid", "--oidc-scope=email",
            "--oidc-scope=groups", "--oidc-scope=offline_access", "--cluster=idp", *extra]


def _login(sandbox, provider, *extra):
    """`cred-helper login`, approving the device code it prints through the provider's pages."""
    proc = subprocess.Popen(as_kubectl_would(CRED_HELPER, "login", *_args(provider, *extra)),
                            env=sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "to log in, open http://127.0.0.1" in first, first
    url = first.split("open ", 1)[1].split(" and confirm", 1)[0]
    threading.Thread(target=lambda: ScriptedBrowser("alice").approve(url)).start()
    out, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, first + rest
    assert out == ""
    return first + rest


def test_device_login_then_cached_then_silent_refresh(sandbox, provider):
    stderr = _login(sandbox, provider)
    assert "logged in as alice@example.com (oncall, sre)" in stderr

    info = sandbox.exec_info(interactive=False, cluster=False)
    got = sandbox.run(*_args(provider), exec_info=info)
    assert got.returncode == 0, got.stderr
    token = json.loads(got.stdout)["status"]["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["email"] == "alice@example.com" and claims["aud"] == "public"
    grants_before = list(provider.grants)

    # Expire the cached token: the next non-interactive run refreshes without a person.
    (entry,) = sandbox.cache_dir.glob("*.json")
    doc = json.loads(entry.read_text())
    doc["not_after"] = doc["issued_at"] + 30
    entry.write_text(json.dumps(doc))
    again = sandbox.run(*_args(provider), exec_info=info)
    assert again.returncode == 0, again.stderr
    # (the token itself may be byte-identical: RS256 is deterministic within one second)
    assert provider.grants[len(grants_before):] == ["refresh_token"]
    assert json.loads(entry.read_text())["serial"] != doc["serial"]
    assert_no_secrets(got.stderr + again.stderr, token)

    (row,) = json.loads(sandbox.run("status", "-o", "json").stdout)
    assert row["identity"]["groups"] == ["oncall", "sre"] and row["issuer"] == "oidc"
    assert sandbox.run("logout", "--cluster=idp").returncode == 0
    assert not list(sandbox.cache_dir.glob("*.refresh")), "logout forgets the refresh token"


def test_non_interactive_without_login_fails_fast(sandbox, provider):
    result = sandbox.run(*_args(provider), exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 1
    line = one_error(result.stderr)
    assert "needs a person" in line and "cred-helper login --cluster=idp" in result.stderr


def test_16_processes_share_one_refresh(sandbox, provider):
    _login(sandbox, provider)
    (entry,) = sandbox.cache_dir.glob("*.json")
    doc = json.loads(entry.read_text())
    doc["not_after"] = doc["issued_at"] + 30
    entry.write_text(json.dumps(doc))
    before = len(provider.grants)
    env = dict(sandbox.env, KUBERNETES_EXEC_INFO=json.dumps(
        sandbox.exec_info(interactive=False, cluster=False)))
    procs = [subprocess.Popen(as_kubectl_would(CRED_HELPER, *_args(provider)), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(16)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 16, [e for _, e in outputs]
    assert provider.grants[before:] == ["refresh_token"], "one refresh reached the provider"
    assert len({out for out, _ in outputs}) == 1


def test_client_credentials_access_token(sandbox, provider):
    secret = sandbox.root / "client.secret"
    secret.write_text("s3cret-basic\n")
    result = sandbox.run("--issuer=oidc", f"--oidc-issuer-url={provider.issuer}",
                         "--oidc-client-id=confidential", f"--oidc-client-secret-file={secret}",
                         "--oidc-grant=client-credentials", "--oidc-use-access-token",
                         exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"]["token"]
    assert_no_secrets(result.stderr, "s3cret-basic")


def test_provider_down_is_a_clear_error(sandbox):
    result = sandbox.run("--issuer=oidc", "--oidc-issuer-url=http://127.0.0.1:9",
                         "--oidc-client-id=public", "--oidc-grant=client-credentials",
                         "--oidc-client-secret-file=/dev/null",
                         exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 1
    assert "cannot reach the OpenID provider" in one_error(result.stderr)
