"""Issue 22: a malicious OpenID provider in one profile, beside the honest real one in
another, and providers whose answers try to fool the terminal or keep what they were sent.
The honest provider is the real one (tests/support/oidc); the malicious one a loopback
stand-in (tests/support/oidc_stub.py), which can say whatever an attacker's provider would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from cred_helper.issuers.oidc import REDACTED
from tests.support.harness import CRED_HELPER, as_kubectl_would, assert_no_secrets, one_error
from tests.support.needs import needs
from tests.support.oidc_provider import OIDCProvider, provider_clients
from tests.support.oidc_stub import CLIENT_ID, Asked, id_token, stub_provider

BROWSER = f"{sys.executable} {Path(__file__).parents[1] / 'support' / 'browser_command.py'} %s"
JSON = "application/json"

pytestmark = needs(bool(shutil.which("node")), "needs Node.js")


@pytest.fixture(scope="module")
def honest():
    with OIDCProvider(provider_clients()) as op:
        yield op


def _discovery(stub, **more) -> tuple[int, str, str]:
    return 200, JSON, json.dumps({"issuer": stub.issuer, "token_endpoint": stub.issuer + "/token",
                                  "jwks_uri": stub.issuer + "/jwks", **more})


def _login(sandbox, issuer: str, *extra: str, env: dict | None = None, timeout: float = 90
           ) -> subprocess.CompletedProcess:
    return subprocess.run(
        as_kubectl_would(CRED_HELPER, "login", "--issuer=oidc", f"--oidc-issuer-url={issuer}",
                         "--oidc-scope=openid", "--oidc-scope=email", "--cluster=idp", *extra),
        env=dict(sandbox.env, **(env or {})), capture_output=True, text=True, timeout=timeout)


def _error(stderr: str) -> str:
    """The one error, after the lines a login says first."""
    return one_error("\n".join(line for line in stderr.splitlines()
                               if "error" in line or line.startswith("hint:")))


def _nothing_cached(sandbox) -> None:
    found = list(sandbox.cache_dir.glob("*.json")) + list(sandbox.cache_dir.glob("*.refresh"))
    assert not found, found


# ---- the mix-up (RFC 9207) ----

def test_a_mix_up_is_refused_before_the_code_leaves(sandbox, honest):
    """Profile `idp` uses the malicious provider A. A's authorization endpoint sends the
    browser to the honest provider B with this login's own state, nonce, challenge and
    redirect, and B's client id. The user signs in at B as usual; B's answer says iss=B, so
    its code goes nowhere: A's token endpoint hears nothing, B issues no tokens."""
    before = list(honest.grants)
    log = sandbox.root / "browser.log"
    with stub_provider() as evil:
        evil.answers = {
            "/.well-known/openid-configuration": _discovery(
                evil, authorization_endpoint=evil.issuer + "/auth"),
            "/auth": lambda asked: (302, "text/plain", "", {"Location": (
                f"{honest.issuer}/auth?" + urlencode(asked.query | {"client_id": "public"}))}),
            "/token": (200, JSON, json.dumps({"access_token": "thanks"})),
        }
        result = _login(sandbox, evil.issuer, "--oidc-client-id=sidecar",
                        "--oidc-grant=authcode",
                        env={"BROWSER": BROWSER, "SCRIPTED_LOG": str(log)})
    assert result.returncode == 1 and result.stdout == ""
    error = _error(result.stderr)
    assert f"comes from the issuer '{honest.issuer}', not from {evil.issuer}" in error, error
    assert "mix-up" in result.stderr
    # The code went nowhere.
    assert [path for path, _, _ in evil.seen if path == "/token"] == []
    assert honest.grants[len(before):] == []
    # The user did sign in at B, and B did answer with its iss.
    visited = log.read_text().splitlines()
    assert any(url.startswith(f"{honest.issuer}/auth") for url in visited)
    callback = [url for url in visited if "/callback?" in url]
    assert callback and "iss=" in callback[0]
    _nothing_cached(sandbox)


def _code_answers(evil, promise: bool) -> dict:
    """A stand-in whose own authorization endpoint answers at once, without `iss`."""
    nonces: list[str] = []

    def authorize(asked: Asked):
        nonces.append(asked.query["nonce"])
        back = urlencode({"code": "c0de", "state": asked.query["state"]})
        return 302, "text/plain", "", {"Location": f"{asked.query['redirect_uri']}?{back}"}

    def token(asked: Asked):
        return 200, JSON, json.dumps({"access_token": "a", "expires_in": 1800,
                                      "id_token": id_token(evil.issuer, nonce=nonces[-1])})

    more = {"authorization_response_iss_parameter_supported": True} if promise else {}
    return {"/.well-known/openid-configuration": _discovery(
                evil, authorization_endpoint=evil.issuer + "/auth", **more),
            "/auth": authorize, "/token": token, **_jwks(evil)}


def _jwks(stub) -> dict:
    stub.good_answers()
    return {"/jwks": stub.answers["/jwks"]}


@pytest.mark.parametrize("promise", [False, True])
def test_iss_is_required_where_discovery_promises_it(sandbox, promise):
    with stub_provider() as evil:
        evil.answers = _code_answers(evil, promise)
        result = _login(sandbox, evil.issuer, f"--oidc-client-id={CLIENT_ID}",
                        "--oidc-grant=authcode", env={"BROWSER": BROWSER})
        token_requests = [path for path, _, _ in evil.seen if path == "/token"]
    if not promise:  # the stand-in works: a provider that never sends iss is still usable
        assert result.returncode == 0, result.stderr
        assert token_requests == ["/token"]
        return
    assert result.returncode == 1
    assert "names no issuer, although" in _error(result.stderr)
    assert token_requests == []
    _nothing_cached(sandbox)


def test_the_honest_provider_sends_iss_and_promises_it(honest):
    """oidc-provider implements RFC 9207: so with it the check above is always on."""
    import requests

    doc = requests.get(f"{honest.issuer}/.well-known/openid-configuration", timeout=10).json()
    assert doc["authorization_response_iss_parameter_supported"] is True


# ---- the device grant: a login page elsewhere ----

def test_a_device_login_page_on_another_site_is_said(sandbox, honest):
    """During a login to A, A hands out B's verification page (with a right-to-left override
    in it): the user is told that page is not on A."""
    with stub_provider() as evil:
        evil.answers = {
            "/.well-known/openid-configuration": _discovery(
                evil, device_authorization_endpoint=evil.issuer + "/device"),
            "/device": (200, JSON, json.dumps({
                "device_code": "dc", "user_code": "WDJB-MJHT", "expires_in": 600,
                "interval": 0, "verification_uri": f"{honest.issuer}/device\u202eexe.gnp"})),
            "/token": (400, JSON, json.dumps({"error": "expired_token"})),
        }
        result = _login(sandbox, evil.issuer, "--oidc-client-id=sidecar",
                        "--oidc-grant=device")
    lines = result.stderr.splitlines()
    assert lines[0] == (f"cred-helper: to log in, open {honest.issuer}/device?exe.gnp and "
                        "confirm the code WDJB-MJHT"), lines
    assert lines[1] == (f"cred-helper: note: that page is on {honest.issuer}, not on the "
                        f"issuer {evil.issuer}; sign in there only if you expected it")
    assert "\u202e" not in result.stderr
    assert result.returncode == 1 and "expired" in _error(result.stderr)


# ---- what the provider says back ----

def _refused_client(sandbox, secret: str, answer) -> tuple[subprocess.CompletedProcess, str]:
    """A client-credentials run with `secret` (a 0600 file) against a stand-in whose token
    endpoint gives `answer`; the run and the Authorization header it sent."""
    path = sandbox.root / "client.secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    with stub_provider() as evil:
        evil.good_answers()
        evil.answers["/token"] = lambda asked: answer(evil)
        result = sandbox.run("--issuer=oidc", f"--oidc-issuer-url={evil.issuer}",
                             f"--oidc-client-id={CLIENT_ID}", "--oidc-grant=client-credentials",
                             f"--oidc-client-secret-file={path}",
                             exec_info=sandbox.exec_info(cluster=False))
    assert result.returncode == 1
    return result, evil.seen[-1][1]


def test_a_provider_echoing_the_client_secret_does_not_put_it_on_stderr(sandbox):
    secret = "s3cret-echoed-back-0123456789"
    result, _ = _refused_client(sandbox, secret, lambda evil: (401, JSON, json.dumps({
        "error": "invalid_client",
        "error_description": f"client_secret {secret} (first part {secret[:12]}) is wrong"})))
    error = one_error(result.stderr)
    assert "invalid_client: client_secret [redacted] (first part [redacted]) is wrong" in error
    assert_no_secrets(result.stderr, secret, secret[:12])


def test_a_provider_echoing_the_authorization_header_does_not_put_the_secret_on_stderr(
        sandbox):
    """A provider (or a gateway in front of it) that quotes the Basic header it refused: the
    secret is in it as Base64, which came out whole before."""
    secret = "s3cret-in-the-header-0123456789"
    result, header = _refused_client(sandbox, secret, lambda evil: (401, JSON, json.dumps({
        "error": "invalid_client",
        "error_description": f"refused {evil.seen[-1][1]} for client {CLIENT_ID}"})))
    assert header.startswith("Basic ")
    error = one_error(result.stderr)
    assert error.endswith(f"refused Basic {REDACTED} for client {CLIENT_ID}"), error
    assert_no_secrets(result.stderr, secret, header.split()[1], header.split()[1][8:40])


EVIL_NAME = "mallory@example.com\n\x1b]0;pwned\x07cred-helper: logged in as admin \u202emoc.x"


def test_claims_reach_the_terminal_as_free_text(sandbox):
    """An ID token's email and groups may carry a fake second line, a window-title escape
    and a right-to-left override: `login` and `status` show them on one line, defused."""
    with stub_provider() as evil:
        evil.good_answers()
        evil.answers["/token"] = (200, JSON, json.dumps({
            "access_token": "a", "expires_in": 1800, "id_token": id_token(
                evil.issuer, email=EVIL_NAME, groups=["ops\x1b[2J", "dev\nroot"])}))
        secret = sandbox.root / "secret"
        secret.write_text("s\n")
        secret.chmod(0o600)
        login = _login(sandbox, evil.issuer, f"--oidc-client-id={CLIENT_ID}",
                       "--oidc-grant=client-credentials", f"--oidc-client-secret-file={secret}")
    assert login.returncode == 0, login.stderr
    status = sandbox.run("status")
    for shown in (login.stderr, status.stdout):
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown, shown
    (line,) = login.stderr.splitlines()
    assert line.startswith("cred-helper: logged in as mallory@example.com ?]0;pwned?"), line
    assert "(ops?[2J, dev root)" in line
    assert len(status.stdout.splitlines()) == 2, status.stdout  # the header and one row
    # The JSON form keeps the exact text (escaped by JSON itself).
    (row,) = json.loads(sandbox.run("status", "-o", "json").stdout)
    assert row["identity"]["username"] == EVIL_NAME


# ---- a refresh that names another person ----

def _device_then_refresh(evil, refreshed_sub: str) -> dict:
    def token(asked: Asked):
        if asked.form.get("grant_type") == "refresh_token":
            return 200, JSON, json.dumps({"access_token": "a2", "refresh_token": "rt-2",
                                          "expires_in": 1800, "id_token": id_token(
                                              evil.issuer, sub=refreshed_sub)})
        return 200, JSON, json.dumps({"access_token": "a1", "refresh_token": "rt-1",
                                      "expires_in": 1800,
                                      "id_token": id_token(evil.issuer, sub="alice")})

    return {"/.well-known/openid-configuration": _discovery(
                evil, device_authorization_endpoint=evil.issuer + "/device"),
            "/device": (200, JSON, json.dumps({"device_code": "dc", "user_code": "U",
                                               "verification_uri": evil.issuer + "/go",
                                               "interval": 0})),
            "/token": token, **_jwks(evil)}


@pytest.mark.parametrize("refreshed_sub", ["alice", "mallory"])
def test_a_refresh_for_another_person_is_refused(sandbox, refreshed_sub):
    with stub_provider() as evil:
        evil.answers = _device_then_refresh(evil, refreshed_sub)
        args = ["--issuer=oidc", f"--oidc-issuer-url={evil.issuer}",
                f"--oidc-client-id={CLIENT_ID}", "--oidc-grant=device",
                "--oidc-scope=openid", "--oidc-scope=offline_access", "--cluster=idp"]
        assert sandbox.run("login", *args).returncode == 0
        (entry,) = sandbox.cache_dir.glob("*.json")
        doc = json.loads(entry.read_text())
        doc["not_after"] = time.time() - 1  # expired: the next run refreshes
        entry.write_text(json.dumps(doc))
        got = sandbox.run(*args, exec_info=sandbox.exec_info(cluster=False))
    if refreshed_sub == "alice":  # the same person: the refresh serves
        assert got.returncode == 0, got.stderr
        return
    assert got.returncode == 1 and got.stdout == ""
    error = one_error(got.stderr)
    assert "is for another person (sub 'mallory', not 'alice')" in error, error
    assert "mallory" not in "".join(p.read_text() for p in sandbox.cache_dir.glob("*.json"))
    assert not list(sandbox.cache_dir.glob("*.refresh")), "the refresh token is forgotten"


# ---- plain http to a *.localhost name ----

def _private_hosts_work() -> bool:
    """A private mount namespace where /etc/hosts can be replaced (root, unshare)."""
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@needs(_private_hosts_work(), "needs a private mount namespace (unshare -m, as root) for a "
       "private /etc/hosts; the machine's own is never edited")
@pytest.mark.parametrize(("hosts", "works"), [
    ("127.0.0.1 idp.localhost\n", True),
    ("192.0.2.1 idp.localhost\n", False),
    ("127.0.0.1 idp.localhost\n192.0.2.1 idp.localhost\n", False),  # one address elsewhere
])
def test_plain_http_to_a_localhost_name_goes_to_loopback_only(sandbox, hosts, works):
    """`idp.localhost` resolved through a private /etc/hosts (a bind mount in a mount
    namespace of its own): where any address it resolves to is not loopback, the client
    secret is never sent, not even to the loopback one."""
    secret = "s3cret-for-idp-localhost"
    secret_file = sandbox.root / "client.secret"
    secret_file.write_text(secret + "\n")
    secret_file.chmod(0o600)
    hosts_file = sandbox.root / "hosts"
    hosts_file.write_text(hosts)
    with stub_provider(issuer_host="idp.localhost") as stub:
        stub.good_answers()
        result = subprocess.run(
            as_kubectl_would("unshare", "-m", "sh", "-c",
                             'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts_file),
                             CRED_HELPER, "--issuer=oidc", f"--oidc-issuer-url={stub.issuer}",
                             f"--oidc-client-id={CLIENT_ID}", "--oidc-grant=client-credentials",
                             f"--oidc-client-secret-file={secret_file}"),
            env=dict(sandbox.env, KUBERNETES_EXEC_INFO=json.dumps(
                sandbox.exec_info(cluster=False))), capture_output=True, text=True, timeout=60)
    if works:
        assert result.returncode == 0, result.stderr
        assert "/token" in [path for path, _, _ in stub.seen]
        return
    assert result.returncode == 1 and result.stdout == ""
    error = one_error(result.stderr)
    assert "idp.localhost resolves to 192.0.2.1, not to this machine: nothing was sent" in error
    assert stub.seen == [], "nothing reached even the loopback address"
    assert_no_secrets(result.stderr, secret)
