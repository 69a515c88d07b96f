"""Provider answers of the wrong shape are one OIDCError: discovery, ID-token times."""

import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from cred_helper.issuers.oidc import OIDCError, parse_metadata, validate_id_token

ISSUER, CLIENT, NOW = "https://idp.example.com", "kubectl", 1_800_000_000
KEY = rsa.generate_private_key(65537, 2048)
JWKS = {"keys": [json.loads(jwt.algorithms.get_default_algorithms()["RS256"].to_jwk(
    KEY.public_key())) | {"kid": "k1"}]}


def _raw_token(claims_json: str) -> str:
    """A signed token whose payload is exactly this JSON text (null, NaN, huge ints)."""
    return jwt.api_jws.PyJWS().encode(claims_json.encode(), KEY, algorithm="RS256",
                                      headers={"kid": "k1"})


EXP = f'"exp": {NOW + 1800}'


@pytest.mark.parametrize("times", [
    f'{EXP}, "iat": {NOW}, "nbf": null',
    f'{EXP}, "iat": {NOW}, "nbf": "soon"',
    f'"exp": 1{"0" * 400}, "iat": {NOW}',
    f'"exp": NaN, "iat": {NOW}',
    f'"exp": Infinity, "iat": {NOW}',
    f'"exp": true, "iat": {NOW}',
    f'{EXP}, "iat": [1]',
])
def test_id_token_times_of_the_wrong_kind(times):
    token = _raw_token(f'{{"iss": "{ISSUER}", "aud": "{CLIENT}", "sub": "a", {times}}}')
    with pytest.raises(OIDCError):
        validate_id_token(token, JWKS, ISSUER, CLIENT, NOW)


def _doc(**fields):
    return {"issuer": ISSUER, "token_endpoint": ISSUER + "/token",
            "jwks_uri": ISSUER + "/jwks", **fields}


@pytest.mark.parametrize(("fields", "why"), [
    ({"token_endpoint": "http://idp.example.com/token"}, "token_endpoint is not an https"),
    ({"jwks_uri": ["https://x"]}, "jwks_uri is not a string"),
    ({"jwks_uri": ""}, "has no jwks_uri"),
    ({"authorization_endpoint": "javascript:alert(1)"}, "authorization_endpoint is not"),
    ({"device_authorization_endpoint": 7}, "device_authorization_endpoint is not a string"),
    ({"token_endpoint": "https://idp.example.com:99999/t"}, "token_endpoint is not an https"),
    ({"issuer": {"x": 1}}, "names issuer '\\?'"),
])
def test_discovery_documents_of_the_wrong_shape(fields, why):
    with pytest.raises(OIDCError, match=why):
        parse_metadata(_doc(**fields), ISSUER)


def test_loopback_http_endpoints_pass_for_a_loopback_issuer():
    issuer = "http://127.0.0.1:9000"
    meta = parse_metadata({"issuer": issuer, "token_endpoint": issuer + "/t",
                           "jwks_uri": issuer + "/k"}, issuer)
    assert meta.token_endpoint == issuer + "/t" and meta.device_authorization_endpoint == ""


@pytest.mark.parametrize(("configured", "named"), [
    ("https://idp.example.com/", "https://idp.example.com/"),  # exactly as the provider says
    ("https://idp.example.com", "https://idp.example.com/"),
    ("https://idp.example.com/", "https://idp.example.com"),
    ("https://idp.example.com/realms/x/", "https://idp.example.com/realms/x/"),
])
def test_an_issuer_with_a_trailing_slash_is_the_documents_own(configured, named):
    meta = parse_metadata({**_doc(), "issuer": named}, configured)
    assert meta.issuer == named, "tokens must name the issuer exactly as the provider does"


@pytest.mark.parametrize("named", ["https://idp.example.com//", "https://idp.example.com/x",
                                   "https://idp.example.co", "http://idp.example.com/"])
def test_only_a_trailing_slash_may_differ(named):
    with pytest.raises(OIDCError, match="names issuer"):
        parse_metadata({**_doc(), "issuer": named}, "https://idp.example.com/")


def test_the_promise_of_iss_in_authorization_responses():
    assert parse_metadata(_doc(), ISSUER).iss_parameter_supported is False
    promised = _doc(authorization_response_iss_parameter_supported=True)
    assert parse_metadata(promised, ISSUER).iss_parameter_supported is True
    with pytest.raises(OIDCError, match="not true or false"):
        parse_metadata(_doc(authorization_response_iss_parameter_supported="yes"), ISSUER)
