"""Answers no real provider gives, from a loopback stand-in: each is one clear error, and
nothing is cached. (The real provider, tests/support/oidc, cannot be made to misbehave.)"""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from tests.support.harness import one_error
from tests.support.oidc_stub import id_token as _id_token
from tests.support.oidc_stub import stub_provider


@pytest.fixture
def stub():
    with stub_provider() as server:
        server.good_answers()
        yield server


def _run(sandbox, stub, *extra):
    secret = sandbox.root / "secret"
    secret.write_text("s\n")
    secret.chmod(0o600)
    return sandbox.run("--issuer=oidc", f"--oidc-issuer-url={stub.issuer}",
                       "--oidc-client-id=svc", f"--oidc-client-secret-file={secret}",
                       "--oidc-grant=client-credentials", *extra,
                       exec_info=sandbox.exec_info(cluster=False))


CASES = {
    "discovery is a web page": ("/.well-known/openid-configuration",
                                (200, "text/html", "<html>login</html>"),
                                "discovery document is not a JSON object"),
    "discovery without endpoints": ("/.well-known/openid-configuration",
                                    (200, "application/json", "{}"), "names issuer None"),
    "token answer is a web page": ("/token", (200, "text/html", "<html>oops</html>"),
                                   "malformed response (200)"),
    "token answer is a 502 page": ("/token", (502, "text/html", "Bad Gateway"),
                                   "malformed response (502)"),
    "access token is a number": ("/token", (200, "application/json",
                                            '{"access_token": 7, "id_token": "x"}'),
                                 "no access_token"),
    "id token is not a JWT": ("/token", (200, "application/json",
                                         '{"access_token": "a", "id_token": "not.a.jwt"}'),
                              "not a JWT"),
    "JWKS is a web page": ("/jwks", (200, "text/html", "<html/>"), "JWKS is not a JSON object"),
    # RFC 6749 A.12: printable ASCII. Before, these were printed for kubectl (exit 0), which
    # then sent a mangled token or refused the header.
    "access token with a lone surrogate": ("/token", (200, "application/json",
                                                      '{"access_token": "a\\ud800b"}'),
                                           "access_token is not printable ASCII"),
    "access token with a line break": ("/token", (200, "application/json",
                                                  '{"access_token": "a\\r\\nX-Evil: 1"}'),
                                       "access_token is not printable ASCII"),
    "id token with a lone surrogate": ("/token", (200, "application/json",
                                                  '{"access_token": "a", "id_token": "e\\udfff"}'),
                                       "id_token is not printable ASCII"),
}


@pytest.mark.parametrize("case", CASES)
def test_malformed_answers(sandbox, stub, case):
    path, answer, expected = CASES[case]
    if path != "/token":
        stub.answers["/token"] = (200, "application/json", json.dumps(
            {"access_token": "a", "id_token": _id_token(stub.issuer), "expires_in": 1800}))
    stub.answers[path] = answer
    result = _run(sandbox, stub)
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    assert expected in one_error(result.stderr)
    assert not list(sandbox.cache_dir.glob("*.json"))


def test_an_id_token_failing_a_check_is_never_cached_or_printed(sandbox, stub):
    stub.answers["/token"] = (200, "application/json", json.dumps(
        {"access_token": "a", "id_token": _id_token(stub.issuer, aud="someone-else")}))
    result = _run(sandbox, stub)
    assert result.returncode == 1 and result.stdout == ""
    assert "for another client" in one_error(result.stderr)
    assert not list(sandbox.cache_dir.glob("*.json"))


def test_the_stand_in_serves_a_good_token_when_asked(sandbox, stub):
    """The cases above fail for the reason named, not because the stand-in is broken."""
    stub.answers["/token"] = (200, "application/json", json.dumps(
        {"access_token": "a", "id_token": _id_token(stub.issuer), "expires_in": 1800}))
    result = _run(sandbox, stub)
    assert result.returncode == 0, result.stderr
    token = json.loads(result.stdout)["status"]["token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "robot"


@pytest.mark.parametrize("method", ["client-secret", "client-secret-post"])
def test_client_secret_methods_on_the_wire(sandbox, stub, method):
    stub.answers["/token"] = (200, "application/json", json.dumps(
        {"access_token": "a", "id_token": _id_token(stub.issuer), "expires_in": 1800}))
    assert _run(sandbox, stub, f"--oidc-client-auth={method}").returncode == 0
    (authorization, form), = [(a, f) for p, a, f in stub.seen if p == "/token"]
    if method == "client-secret":  # RFC 6749 §2.3.1: HTTP basic, the default
        assert authorization == "Basic " + base64.b64encode(b"svc:s").decode()
        assert "client_secret" not in form
    else:
        assert authorization == "" and "client_id=svc" in form and "client_secret=s" in form


def _device_login(sandbox, stub, token: dict, device_code: str = "dc"):
    """`cred-helper login` through the device grant against the stand-in, whose token answer
    is `token` (a lone surrogate in it goes out as a JSON escape, as a provider may send it)."""
    stub.answers["/.well-known/openid-configuration"] = (200, "application/json", json.dumps({
        "issuer": stub.issuer, "token_endpoint": stub.issuer + "/token",
        "jwks_uri": stub.issuer + "/jwks",
        "device_authorization_endpoint": stub.issuer + "/device"}))
    stub.answers["/device"] = (200, "application/json", json.dumps({
        "device_code": device_code, "user_code": "WDJB-MJHT",
        "verification_uri": stub.issuer + "/d", "interval": 0}))
    stub.answers["/token"] = (200, "application/json", json.dumps(token))
    return sandbox.run("login", *_device_args(stub))


def _device_args(stub) -> list[str]:
    return ["--issuer=oidc", f"--oidc-issuer-url={stub.issuer}", "--oidc-client-id=svc",
            "--oidc-grant=device", "--cluster=idp"]


def _kubectls_run_needs_a_person(sandbox, stub) -> None:
    """The next run without a terminal (no credential cached) asks for a login, cleanly."""
    for entry in sandbox.cache_dir.glob("*.json"):
        entry.unlink()
    got = sandbox.run(*_device_args(stub), exec_info=sandbox.exec_info(cluster=False))
    assert got.returncode == 1 and "unexpected" not in got.stderr
    assert "logging in needs a person" in one_error(got.stderr)


def test_a_refresh_token_that_could_never_be_sent_back_is_not_kept(sandbox, stub):
    """Before: kept, and every later run ended in "unexpected UnicodeEncodeError" until a
    logout, since it cannot be form-encoded to send back."""
    login = _device_login(sandbox, stub, {"access_token": "a", "expires_in": 1800,
                                          "refresh_token": "r\ud800t",
                                          "id_token": _id_token(stub.issuer)})
    assert login.returncode == 0, login.stderr
    assert "cred-helper: warning: the provider's refresh token is not printable ASCII, so it " \
           "was not kept" in login.stderr
    assert not list(sandbox.cache_dir.glob("*.refresh"))
    _kubectls_run_needs_a_person(sandbox, stub)


def test_a_refresh_token_kept_by_an_older_version_that_cannot_be_sent_is_forgotten(sandbox,
                                                                                   stub):
    login = _device_login(sandbox, stub, {"access_token": "a", "expires_in": 1800,
                                          "refresh_token": "rt",
                                          "id_token": _id_token(stub.issuer)})
    assert login.returncode == 0, login.stderr
    [stored] = sandbox.cache_dir.glob("*.refresh")
    stored.write_text(json.dumps({"refresh_token": "r\ud800t", "sub": "robot"}))
    _kubectls_run_needs_a_person(sandbox, stub)
    assert not stored.exists()


def test_a_device_code_that_could_never_be_sent_back_is_one_clear_error(sandbox, stub):
    login = _device_login(sandbox, stub, {"access_token": "a"}, device_code="d\ud800c")
    assert login.returncode == 1 and "unexpected" not in login.stderr
    assert "device_code is not printable ASCII" in one_error(login.stderr)
