"""Issue 22's reliability faults: each misbehaviour of a provider ends with the user still
logged in, or with one clear error, and the refresh-token family intact. The refresh tokens
are the real provider's, rotated on every use (`rotateRefreshToken`), with the whole family
revoked when a spent one comes back; a relay in front of it (tests/support/oidc_relay.py)
signs the ID tokens and misbehaves on cue."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.harness import CRED_HELPER, as_kubectl_would, one_error
from tests.support.needs import needs
from tests.support.oidc_provider import (
    OIDCProvider,
    ScriptedBrowser,
    device_login,
    provider_clients,
)
from tests.support.oidc_relay import RelayProvider, public_jwk

pytestmark = needs(bool(shutil.which("node")), "needs Node.js")


@pytest.fixture(scope="module")
def real():
    with OIDCProvider(provider_clients()) as op:
        yield op


@pytest.fixture
def relay(real):
    with RelayProvider(real) as relay:
        yield relay


def _args(relay):
    return ["--issuer=oidc", f"--oidc-issuer-url={relay.issuer}", "--oidc-client-id=public",
            "--oidc-grant=device", "--oidc-scope=openid", "--oidc-scope=email",
            "--oidc-scope=offline_access", "--cluster=idp"]


def _login(sandbox, relay) -> str:
    return device_login(as_kubectl_would(CRED_HELPER, "login", *_args(relay)), sandbox.env)


def _expire(sandbox) -> None:
    """No usable ID token is cached (as once it has expired): the next run must refresh."""
    for entry in sandbox.cache_dir.glob("*.json"):
        entry.unlink()


def _get(sandbox, relay):
    """kubectl's run: no terminal, so a refresh or nothing."""
    return sandbox.run(*_args(relay), exec_info=sandbox.exec_info(cluster=False))


def _refresh_token(sandbox) -> str | None:
    """The refresh token kept (with the `sub` of its login; older versions kept it bare)."""
    stored = list(sandbox.cache_dir.glob("*.refresh"))
    if not stored:
        return None
    text = stored[0].read_text()
    return json.loads(text)["refresh_token"] if text.startswith("{") else text


def _still_logged_in(sandbox, relay, real) -> None:
    """The relay behaves again, and the next refresh is taken by the real provider: the
    refresh token cred-helper kept is the family's live one (a spent one would be refused,
    and would revoke the family)."""
    relay.intercept = lambda form: None
    relay.alter = lambda form, doc: doc
    refreshes = real.grants.count("refresh_token")
    _expire(sandbox)
    got = _get(sandbox, relay)
    assert got.returncode == 0, got.stderr
    assert real.grants.count("refresh_token") == refreshes + 1


def _one_clear_error(result, expected: str) -> None:
    assert result.returncode == 1 and result.stdout == ""
    error = one_error(result.stderr)
    assert expected in error, error
    assert "unexpected" not in result.stderr


def test_a_refresh_answer_without_an_id_token_keeps_the_rotated_token(sandbox, relay, real):
    _login(sandbox, relay)
    spent = _refresh_token(sandbox)
    relay.alter = lambda form, doc: {k: v for k, v in doc.items() if k != "id_token"} \
        if form.get("grant_type") == "refresh_token" else doc
    _expire(sandbox)
    _one_clear_error(_get(sandbox, relay), "the provider's refresh answer has no ID token")
    assert _refresh_token(sandbox) != spent, "the rotated refresh token was kept"
    _still_logged_in(sandbox, relay, real)


def test_a_person_is_logged_in_again_when_the_refresh_answer_has_no_id_token(sandbox, relay,
                                                                            real):
    """`cred-helper login`: the refresh cannot serve, so the person logs in again (and the
    new login's refresh token then serves kubectl)."""
    _login(sandbox, relay)
    relay.alter = lambda form, doc: {k: v for k, v in doc.items() if k != "id_token"} \
        if form.get("grant_type") == "refresh_token" else doc
    _expire(sandbox)
    proc = subprocess.Popen(as_kubectl_would(CRED_HELPER, "login", *_args(relay)),
                            env=sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    said = proc.stderr.readline()
    assert said == "cred-helper: the provider's refresh answer has no ID token; logging in " \
                   "again\n", said
    prompt = proc.stderr.readline()
    url = prompt.split("open ", 1)[1].split(" and confirm", 1)[0]
    ScriptedBrowser("alice").approve(url)
    out, rest = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out == "", rest
    assert "logged in as alice@example.com" in rest
    _still_logged_in(sandbox, relay, real)


@pytest.mark.parametrize(("status", "error"), [
    (503, "temporarily_unavailable"), (500, "server_error"), (401, "invalid_client")])
def test_only_invalid_grant_forgets_the_refresh_token(sandbox, relay, real, status, error):
    _login(sandbox, relay)
    kept = _refresh_token(sandbox)
    relay.intercept = lambda form: (status, {"error": error}) \
        if form.get("grant_type") == "refresh_token" else None
    _expire(sandbox)
    _one_clear_error(_get(sandbox, relay), f"refused the request: {error}")
    assert _refresh_token(sandbox) == kept, "the refresh token was kept"
    _still_logged_in(sandbox, relay, real)


def test_invalid_grant_forgets_the_refresh_token(sandbox, relay, real):
    """The family revoked at the real provider (a spent token replayed, as a thief would):
    the refresh token is dead, so it is forgotten, and kubectl is told to log in."""
    _login(sandbox, relay)
    spent = _refresh_token(sandbox)
    _expire(sandbox)
    assert _get(sandbox, relay).returncode == 0  # rotates: `spent` is now spent
    replay = requests.post(relay.real["token_endpoint"], timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": spent, "client_id": "public"})
    assert replay.json()["error"] == "invalid_grant"  # and the family is revoked
    _expire(sandbox)
    got = _get(sandbox, relay)
    _one_clear_error(got, "logging in needs a person")
    assert "no longer valid (invalid_grant)" in got.stderr
    assert not list(sandbox.cache_dir.glob("*.refresh"))


def test_a_kid_naming_a_key_of_another_type_is_a_clean_error_until_fixed(sandbox, relay,
                                                                         real):
    old = rsa.generate_private_key(65537, 2048)
    relay.sign_with(old, "k1", "RS256")
    relay.jwks = {"keys": [public_jwk(old, "k1")]}
    _login(sandbox, relay)  # the JWKS with the RSA key k1 is kept for a day
    # The provider moves to an EC key under the same kid, but still publishes the RSA one.
    new = ec.generate_private_key(ec.SECP256R1())
    relay.sign_with(new, "k1", "ES256")
    _expire(sandbox)
    _one_clear_error(_get(sandbox, relay),
                     "key (kid 'k1') is an RSA key, which cannot check an ES256 signature")
    # It fixes its JWKS: the copy kept from before does not outlive that.
    relay.jwks = {"keys": [public_jwk(new, "k1")]}
    _still_logged_in(sandbox, relay, real)


def test_a_key_rotated_under_the_same_kid_fetches_the_keys_again(sandbox, relay, real):
    _login(sandbox, relay)
    rotated = ec.generate_private_key(ec.SECP256R1())
    relay.sign_with(rotated, "k1", "ES256")
    relay.jwks = {"keys": [public_jwk(rotated, "k1")]}
    fetches = relay.seen.count("GET /jwks")
    _expire(sandbox)
    got = _get(sandbox, relay)
    assert got.returncode == 0, got.stderr
    assert relay.seen.count("GET /jwks") == fetches + 1, "fetched once more, not again and again"
    _still_logged_in(sandbox, relay, real)


def test_a_signature_that_never_verifies_is_one_clear_error(sandbox, relay, real):
    _login(sandbox, relay)
    published = relay.key
    relay.sign_with(ec.generate_private_key(ec.SECP256R1()), "k1", "ES256")  # not published
    fetches = relay.seen.count("GET /jwks")
    _expire(sandbox)
    _one_clear_error(_get(sandbox, relay), "signature does not verify")
    assert relay.seen.count("GET /jwks") == fetches + 1, "fetched once more, not again"
    relay.sign_with(published, "k1", "ES256")
    _still_logged_in(sandbox, relay, real)


def _refreshed(sandbox, relay) -> list[str]:
    """kubectl's next run, which must refresh, succeeds: what it asked the relay."""
    relay.seen.clear()
    _expire(sandbox)
    got = _get(sandbox, relay)
    assert got.returncode == 0, got.stderr
    return list(relay.seen)


def test_a_token_endpoint_the_provider_moved_is_looked_up_again(sandbox, relay, real):
    """The provider moved its token endpoint, and the old path answers 404. Before: the
    discovery document kept from an earlier run named the old one for a day, every refresh
    failed, and kubectl was locked out until the copy aged out."""
    _login(sandbox, relay)
    relay.token_path = "/oauth2/token"
    assert _refreshed(sandbox, relay) == [
        "POST /token refresh_token", "GET /.well-known/openid-configuration",
        "POST /oauth2/token refresh_token"]
    _still_logged_in(sandbox, relay, real)  # the new endpoint is kept: no lookup this time
    assert relay.seen[3:] == ["POST /oauth2/token refresh_token"]


def test_keys_the_provider_rotated_and_moved_are_looked_up_again(sandbox, relay, real):
    """A new key, published at a new place: the kept JWKS lacks it, and the kept discovery
    document names the old place, which answers 404."""
    _login(sandbox, relay)
    rotated = ec.generate_private_key(ec.SECP256R1())
    relay.sign_with(rotated, "k2", "ES256")
    relay.jwks = {"keys": [public_jwk(rotated, "k2")]}
    relay.jwks_path = "/keys"
    assert _refreshed(sandbox, relay) == [
        "POST /token refresh_token", "GET /jwks", "GET /.well-known/openid-configuration",
        "GET /keys"]
    _still_logged_in(sandbox, relay, real)


def test_an_endpoint_that_is_really_gone_is_one_clear_error(sandbox, relay, real):
    """Looked up again once, still gone: one error naming what answered, no loop, and the
    refresh token kept (nothing spent it)."""
    _login(sandbox, relay)
    kept = _refresh_token(sandbox)
    relay.token_path = "/oauth2/token"  # the old path answers 404, and so does the new one:
    relay.discovery = lambda: {"issuer": relay.issuer, "token_endpoint": f"{relay.base}/gone",
                               "jwks_uri": f"{relay.base}/jwks"}
    relay.seen.clear()
    _expire(sandbox)
    _one_clear_error(_get(sandbox, relay), f"the OpenID provider at {relay.base} answered 404 "
                     "at /gone")
    assert relay.seen == ["POST /token refresh_token", "GET /.well-known/openid-configuration",
                          "POST /gone refresh_token"]
    assert _refresh_token(sandbox) == kept


def test_a_refresh_token_kept_bare_by_an_older_version_still_serves(sandbox, relay, real):
    """Versions before issue 22 kept the token alone in `<key>.refresh`: it is sent as it is,
    and the rotated one is kept in the new record, with the person's sub."""
    _login(sandbox, relay)
    [stored] = sandbox.cache_dir.glob("*.refresh")
    stored.write_text(_refresh_token(sandbox) or "")
    assert not stored.read_text().startswith("{")
    _still_logged_in(sandbox, relay, real)
    record = json.loads(stored.read_text())
    assert record["sub"] and record["refresh_token"] == _refresh_token(sandbox)


def test_an_issuer_ending_in_a_slash(sandbox, real):
    with RelayProvider(real, issuer_suffix="/") as slashed:
        assert slashed.issuer.endswith("/")
        assert "logged in as alice@example.com" in _login(sandbox, slashed)
        _expire(sandbox)
        got = _get(sandbox, slashed)
        assert got.returncode == 0, got.stderr
        _still_logged_in(sandbox, slashed, real)
