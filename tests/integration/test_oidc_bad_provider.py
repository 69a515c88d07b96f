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
