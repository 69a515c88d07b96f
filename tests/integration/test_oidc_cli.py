"""`--issuer oidc` through the installed command, against the real OpenID provider."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from tests.support.harness import CRED_HELPER, as_kubectl_would, assert_no_secrets, one_error
from tests.support.keyring_session import secret_service
from tests.support.needs import needs
from tests.support.oidc_provider import (
    CLIENT_KEYS,
    OIDCProvider,
    ScriptedBrowser,
    device_login,
    provider_clients,
)

BROWSER = f"{sys.executable} {Path(__file__).parents[1] / 'support' / 'browser_command.py'} %s"

pytestmark = needs(bool(shutil.which("node")), "needs Node.js")


@pytest.fixture(scope="module")
def provider():
    with OIDCProvider(provider_clients()) as op:
        yield op


def _args(provider, *extra, grant="device"):
    return ["--issuer=oidc", f"--oidc-issuer-url={provider.issuer}", "--oidc-client-id=public",
            f"--oidc-grant={grant}", "--oidc-scope=openid", "--oidc-scope=email",
            "--oidc-scope=groups", "--oidc-scope=offline_access", "--cluster=idp", *extra]


def _nothing_cached(sandbox):
    found = list(sandbox.cache_dir.glob("*.json")) + list(sandbox.cache_dir.glob("*.refresh"))
    assert not found, found


def _login(sandbox, provider, *extra):
    """`cred-helper login`, approving the device code it prints through the provider's pages."""
    return device_login(as_kubectl_would(CRED_HELPER, "login", *_args(provider, *extra)),
                        sandbox.env)


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
    doc["not_after"] = time.time() - 1  # expired
    entry.write_text(json.dumps(doc))
    requests_before = len(provider.requests)
    again = sandbox.run(*_args(provider), exec_info=info)
    assert again.returncode == 0, again.stderr
    # (the token itself may be byte-identical: RS256 is deterministic within one second)
    assert provider.grants[len(grants_before):] == ["refresh_token"]
    # Discovery and JWKS come from the cache: a refresh costs one request.
    assert provider.requests[requests_before:] == ["POST /token"]
    assert json.loads(entry.read_text())["serial"] != doc["serial"]
    assert_no_secrets(got.stderr + again.stderr, token)

    (row,) = json.loads(sandbox.run("status", "-o", "json").stdout)
    assert row["identity"] == {"username": "alice@example.com", "sub": "alice",
                               "email": "alice@example.com", "groups": ["oncall", "sre"]}
    assert row["issuer"] == "oidc"
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
    doc["not_after"] = time.time() - 1  # expired
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
    secret.chmod(0o600)
    result = sandbox.run("--issuer=oidc", f"--oidc-issuer-url={provider.issuer}",
                         "--oidc-client-id=confidential", f"--oidc-client-secret-file={secret}",
                         "--oidc-grant=client-credentials", "--oidc-use-access-token",
                         exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"]["token"]
    assert_no_secrets(result.stderr, "s3cret-basic")


def test_provider_down_is_a_clear_error(sandbox):
    secret = sandbox.root / "secret"
    secret.write_text("s\n")
    secret.chmod(0o600)
    result = sandbox.run("--issuer=oidc", "--oidc-issuer-url=http://127.0.0.1:9",
                         "--oidc-client-id=public", "--oidc-grant=client-credentials",
                         f"--oidc-client-secret-file={secret}",
                         exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 1
    assert "cannot reach the OpenID provider" in one_error(result.stderr)


_running: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _stop_logins():
    """A failed test must not leave a login polling the provider for ten minutes."""
    yield
    while _running:
        _stop(_running.pop())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the shell and cred-helper under it
        proc.communicate()


def _run_login(sandbox, *args, extra_env=None):
    env = dict(sandbox.env, **(extra_env or {}))
    proc = subprocess.Popen(as_kubectl_would(CRED_HELPER, "login", *args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _running.append(proc)
    return proc


def test_auto_opens_the_browser_for_an_authorization_code_login(sandbox, provider):
    log = sandbox.root / "browser.log"
    before = len(provider.grants)
    proc = _run_login(sandbox, *_args(provider, grant="auto"),
                      extra_env={"BROWSER": BROWSER, "SCRIPTED_LOGIN": "bob",
                                 "SCRIPTED_LOG": str(log)})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ""
    assert "opened a browser to log in" in err and "logged in as bob@example.com (dev)" in err
    opened, page, *visited = log.read_text().splitlines()
    # The browser's command line carries a one-time link to the listener, not the login's
    # state, nonce and code challenge; the link sends the browser on to the provider.
    assert opened.startswith("http://127.0.0.1:") and "/login/" in opened
    assert not urlsplit(opened).query
    assert visited[0] == opened and visited[1].startswith(provider.issuer)
    query = parse_qs(urlsplit(visited[1]).query)
    assert query["code_challenge_method"] == ["S256"] and query["prompt"] == ["consent"]
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert "Logged in" in page
    assert provider.grants[before:] == ["authorization_code"]
    assert list(sandbox.cache_dir.glob("*.refresh")), "offline_access gave a refresh token"


def test_no_browser_prints_the_url_instead(sandbox, provider):
    proc = _run_login(sandbox, *_args(provider, "--no-browser", grant="authcode"),
                      extra_env={"BROWSER": "/bin/false"})
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "to log in, open this URL in a browser on this machine (it works once): " in first, \
        first
    url = first.rsplit(" ", 1)[1].strip()
    assert "/login/" in url and "state=" not in url
    page = ScriptedBrowser("alice").approve(url)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Logged in" in page and "logged in as alice@example.com" in rest


def test_auto_without_a_browser_is_the_device_grant(sandbox, provider):
    proc = _run_login(sandbox, *_args(provider, grant="auto"))
    assert proc.stderr is not None
    first = proc.stderr.readline()
    _stop(proc)
    assert "and confirm the code" in first, first


def test_a_stray_answer_does_not_end_the_login(sandbox, provider):
    proc = _run_login(sandbox, *_args(provider, "--no-browser", grant="authcode"))
    assert proc.stderr is not None
    link = proc.stderr.readline().rsplit(" ", 1)[1].strip()
    url = requests.get(link, allow_redirects=False, timeout=10).headers["Location"]
    redirect_uri = parse_qs(urlsplit(url).query)["redirect_uri"][0]
    landed = ScriptedBrowser("alice").approve(url, stop_at=redirect_uri)
    assert "code=" in landed
    for stray in (landed.replace("state=", "state=forged"), redirect_uri + "?code=x"):
        answer = requests.get(stray, timeout=10)
        assert answer.status_code == 400 and "Not this login" in answer.text
    assert proc.poll() is None, "a stray answer must not end the login"
    page = requests.get(landed, timeout=10)
    assert page.status_code == 200 and "Logged in" in page.text
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "logged in as alice@example.com" in err


@pytest.mark.parametrize("grant", ["authcode", "device"])
def test_a_denied_login_is_a_clear_error(sandbox, provider, grant):
    if grant == "authcode":
        proc = _run_login(sandbox, *_args(provider, grant="authcode"),
                          extra_env={"BROWSER": BROWSER, "SCRIPTED_DENY": "1"})
        _, err = proc.communicate(timeout=60)
        lines = err.splitlines()[1:]  # after "opened a browser ..."
    else:
        proc = _run_login(sandbox, *_args(provider))
        assert proc.stderr is not None
        first = proc.stderr.readline()
        url = first.split("open ", 1)[1].split(" and confirm", 1)[0]
        ScriptedBrowser(deny=True).approve(url)
        _, err = proc.communicate(timeout=60)
        lines = err.splitlines()
    assert proc.returncode == 1
    error = one_error("\n".join(lines))
    assert "access_denied" in error or "denied" in error, error
    _nothing_cached(sandbox)


def test_an_expired_device_code_is_a_clear_error(sandbox):
    with OIDCProvider(provider_clients(), device_code_lifetime=2) as short:
        proc = _run_login(sandbox, *_args(short))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "expired before it was approved" in one_error("\n".join(err.splitlines()[1:]))
    _nothing_cached(sandbox)


def _client_credentials_args(provider, client_id, *extra):
    return ["--issuer=oidc", f"--oidc-issuer-url={provider.issuer}",
            f"--oidc-client-id={client_id}", "--oidc-grant=client-credentials",
            "--oidc-use-access-token", *extra]


@needs(bool(shutil.which("gnome-keyring-daemon")),
       "gnome-keyring is installed by scripts/setup")
def test_client_secret_from_the_keyring(sandbox, provider):
    args = _client_credentials_args(provider, "confidential", "--oidc-client-auth=client-secret")
    with secret_service(str(sandbox.root)) as env:
        sandbox.env.update(env)
        missing = sandbox.run(*args, exec_info=sandbox.exec_info(cluster=False))
        assert missing.returncode == 1
        assert f"no client secret for confidential@{provider.issuer}" in one_error(
            missing.stderr)
        store = f"keyring set cred-helper-client-secret 'confidential@{provider.issuer}'"
        assert store in missing.stderr
        # What the hint says, as the user would do it (the keyring CLI reads a pipe too).
        subprocess.run([str(Path(CRED_HELPER).parent / "keyring"), "set",
                        "cred-helper-client-secret", f"confidential@{provider.issuer}"],
                       input="s3cret-basic\n", env=sandbox.env, check=True, text=True,
                       capture_output=True)
        result = sandbox.run(*args, exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"]["token"]
    assert_no_secrets(missing.stderr + result.stderr, "s3cret-basic")


def test_client_secret_post(sandbox, provider):
    # (oidc-provider takes either method from any secret client; the stand-in provider in
    # test_oidc_bad_provider.py shows what goes on the wire.)
    secret = sandbox.root / "post.secret"
    secret.write_text("s3cret-post\n")
    secret.chmod(0o600)
    post = sandbox.run(*_client_credentials_args(
        provider, "confidential-post", f"--oidc-client-secret-file={secret}",
        "--oidc-client-auth=client-secret-post"), exec_info=sandbox.exec_info(cluster=False))
    assert post.returncode == 0, post.stderr


@pytest.mark.parametrize("client_id", sorted(CLIENT_KEYS))
def test_private_key_jwt_with_a_key_file(sandbox, provider, client_id):
    key, _ = CLIENT_KEYS[client_id]
    path = sandbox.root / "client.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    result = sandbox.run(*_client_credentials_args(provider, client_id,
                                                   f"--oidc-client-key={path}"),
                         exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 0, result.stderr
    assert_no_secrets(result.stderr)
