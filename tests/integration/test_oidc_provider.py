"""The OIDC protocol module against the real OpenID provider (oidc-provider on 127.0.0.1)."""

from __future__ import annotations

import shutil
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from cred_helper.issuers.oidc import (
    ClientSecretAuth,
    NoClientAuth,
    OIDCError,
    OIDCProvider,
    PrivateKeyJWTAuth,
    ProviderRefused,
    http_client,
    pkce_pair,
)
from tests.support.needs import needs
from tests.support.oidc_provider import CLIENT_KEYS, REDIRECT, ScriptedBrowser, provider_clients
from tests.support.oidc_provider import OIDCProvider as Provider

pytestmark = needs(bool(shutil.which("node")), "needs Node.js")

SCOPES = ["openid", "email", "groups", "offline_access"]


@pytest.fixture(scope="module")
def provider():
    with Provider(provider_clients()) as op:
        yield op


def _client(provider, client_id="public", auth=None, issuer=None) -> OIDCProvider:
    return OIDCProvider(issuer or provider.issuer, client_id, auth or NoClientAuth(),
                        http_client())


def test_device_grant_then_refresh_with_rotation(provider):
    client = _client(provider)
    device = client.device_authorize(SCOPES)
    assert device.user_code and device.verification_uri.startswith(provider.issuer)
    approval = threading.Thread(
        target=lambda: ScriptedBrowser("alice").approve(device.verification_uri_complete))
    approval.start()
    tokens = client.poll_device(device, sleep=lambda s: time.sleep(min(s, 1)))
    approval.join()
    claims = client.validate(tokens.id_token)
    assert (claims["sub"], claims["email"], claims["groups"]) == (
        "alice", "alice@example.com", ["oncall", "sre"])
    assert tokens.refresh_token and tokens.expires_in == 1800

    refreshed = client.refresh(tokens.refresh_token, SCOPES)
    assert refreshed.refresh_token and refreshed.refresh_token != tokens.refresh_token
    assert client.validate(refreshed.id_token)["sub"] == "alice"
    with pytest.raises(ProviderRefused, match="invalid_grant"):
        client.refresh(tokens.refresh_token, SCOPES)  # a rotated token is spent


def test_authorization_code_with_pkce_and_nonce(provider):
    client = _client(provider)
    verifier, challenge = pkce_pair()
    query = urlencode({"client_id": "public", "response_type": "code", "scope": "openid email",
                       "redirect_uri": REDIRECT, "state": "st1", "nonce": "no1",
                       "code_challenge": challenge, "code_challenge_method": "S256"})
    landed = ScriptedBrowser("bob").approve(
        f"{client.metadata.authorization_endpoint}?{query}", stop_at=REDIRECT)
    params = parse_qs(urlsplit(landed).query)
    assert params["state"] == ["st1"]
    tokens = client.exchange_code(params["code"][0], verifier, REDIRECT)
    assert client.validate(tokens.id_token, nonce="no1")["email"] == "bob@example.com"
    with pytest.raises(OIDCError, match="nonce"):
        client.validate(tokens.id_token, nonce="another-login")


def test_code_exchange_needs_the_right_verifier(provider):
    client = _client(provider)
    _, challenge = pkce_pair()
    query = urlencode({"client_id": "public", "response_type": "code", "scope": "openid",
                       "redirect_uri": REDIRECT, "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    landed = ScriptedBrowser().approve(f"{client.metadata.authorization_endpoint}?{query}",
                                       stop_at=REDIRECT)
    code = parse_qs(urlsplit(landed).query)["code"][0]
    with pytest.raises(ProviderRefused, match="invalid_grant"):
        client.exchange_code(code, pkce_pair()[0], REDIRECT)


@pytest.mark.parametrize(("client_id", "auth"), [
    ("confidential", ClientSecretAuth("s3cret-basic", "basic")),
    ("confidential-post", ClientSecretAuth("s3cret-post", "post")),
    *[(cid, PrivateKeyJWTAuth(key)) for cid, (key, _) in CLIENT_KEYS.items()],
])
def test_client_credentials_with_each_client_authentication(provider, client_id, auth):
    tokens = _client(provider, client_id, auth).client_credentials([])
    assert tokens.access_token and tokens.expires_in == 1800


def test_wrong_secret_and_wrong_key_are_refused(provider):
    with pytest.raises(ProviderRefused, match="invalid_client"):
        _client(provider, "confidential", ClientSecretAuth("wrong")).client_credentials([])
    stranger = PrivateKeyJWTAuth(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ProviderRefused, match="invalid_client"):
        _client(provider, "jwt-eddsa", stranger).client_credentials([])


def test_issuer_must_match_the_discovery_document(provider):
    other = provider.issuer.replace("127.0.0.1", "localhost")
    with pytest.raises(OIDCError, match="names issuer"):
        _ = _client(provider, issuer=other).metadata


def test_provider_down():
    client = OIDCProvider("http://127.0.0.1:9", "public", NoClientAuth(), http_client())
    with pytest.raises(OIDCError, match="cannot reach the OpenID provider"):
        _ = client.metadata


def test_plain_http_only_on_loopback():
    from cred_helper.errors import UsageError

    with pytest.raises(UsageError, match="not an https:// URL"):
        OIDCProvider("http://idp.example.com", "c", NoClientAuth(), http_client())
