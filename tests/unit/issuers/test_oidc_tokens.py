"""ID-token checks: each way a token can be wrong is refused (and would never be cached)."""

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from cred_helper.issuers.oidc import (
    KeyProblem,
    OIDCError,
    UnknownKey,
    pkce_pair,
    validate_id_token,
)

ISSUER, CLIENT, NOW = "https://idp.example.com", "kubectl", 1_800_000_000
KEY = rsa.generate_private_key(65537, 2048)
OTHER = rsa.generate_private_key(65537, 2048)


def _jwks(*pairs):
    keys = []
    for key, kid in pairs:
        jwk = json.loads(jwt.algorithms.get_default_algorithms()["RS256"].to_jwk(
            key.public_key()))
        jwk["kid"] = kid
        keys.append(jwk)
    return {"keys": keys}


JWKS = _jwks((KEY, "k1"))


def _token(key=KEY, kid="k1", alg="RS256", **overrides):
    claims = {"iss": ISSUER, "aud": CLIENT, "sub": "alice", "iat": NOW, "exp": NOW + 1800,
              "nonce": "n1", **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _check(token, nonce="n1", jwks=JWKS):
    return validate_id_token(token, jwks, ISSUER, CLIENT, NOW, nonce)


def test_good_token():
    assert _check(_token())["sub"] == "alice"


@pytest.mark.parametrize(("token", "message"), [
    (_token(iss="https://evil.example.com"), "another issuer"),
    (_token(aud="someone-else"), "another client"),
    (_token(exp=NOW - 600), "expired"),
    (_token(iat=NOW + 3600), "future"),
    (_token(key=OTHER), "signature does not verify"),
    (_token(aud=[CLIENT, "other"]), "several audiences"),
    (_token(azp="other"), "azp is another client"),
    (_token(sub=None), "invalid"),
    (_token(nonce="replayed"), "nonce does not match"),
])
def test_bad_tokens_are_refused(token, message):
    with pytest.raises(OIDCError, match=message):
        _check(token)


def test_alg_none_is_refused():
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(
        {"iss": ISSUER, "aud": CLIENT, "sub": "x", "iat": NOW, "exp": NOW + 60}).encode()
    ).rstrip(b"=")
    with pytest.raises(OIDCError, match="algorithm 'none' is not allowed"):
        _check(f"{header.decode()}.{body.decode()}.", nonce=None)


def test_hmac_with_the_public_key_is_refused():
    public_pem = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = _hs256(public_pem)
    with pytest.raises(OIDCError, match="algorithm 'HS256' is not allowed"):
        _check(forged, nonce=None)


def _hs256(secret: bytes) -> str:
    # PyJWT itself refuses to use a PEM public key as an HMAC secret, so sign by hand.
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"HS256","kid":"k1"}') + "." + b64(json.dumps(
        {"iss": ISSUER, "aud": CLIENT, "sub": "x", "iat": NOW, "exp": NOW + 60}).encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def test_unknown_kid():
    with pytest.raises(UnknownKey):
        _check(_token(kid="rotated"))


def _jwk(public_key, kid):
    algorithm = {rsa.RSAPublicKey: jwt.algorithms.RSAAlgorithm,
                 ec.EllipticCurvePublicKey: jwt.algorithms.ECAlgorithm,
                 ed25519.Ed25519PublicKey: jwt.algorithms.OKPAlgorithm}
    kind = next(algorithm[k] for k in algorithm if isinstance(public_key, k))
    return json.loads(kind.to_jwk(public_key)) | {"kid": kid}


P256 = ec.generate_private_key(ec.SECP256R1())
P384 = ec.generate_private_key(ec.SECP384R1())
ED = ed25519.Ed25519PrivateKey.generate()


@pytest.mark.parametrize(("signer", "alg", "published", "kind"), [
    (P256, "ES256", KEY.public_key(), "an RSA key"),  # PyJWT: "unexpected TypeError"
    (P256, "ES256", P384.public_key(), "an EC key for ES384"),  # another curve
    (KEY, "RS256", P256.public_key(), "an EC key for ES256"),
    (ED, "EdDSA", KEY.public_key(), "an RSA key"),
    (KEY, "PS256", ED.public_key(), "an Ed25519 key"),
])
def test_a_kid_naming_a_key_of_another_type_is_a_clean_error(signer, alg, published, kind):
    token = _token(key=signer, alg=alg, kid="k1")
    with pytest.raises(KeyProblem, match=f"is {kind}, which cannot check an {alg} signature"):
        _check(token, jwks={"keys": [_jwk(published, "k1")]})


def test_without_a_kid_every_key_of_the_right_type_is_tried():
    token = jwt.encode({"iss": ISSUER, "aud": CLIENT, "sub": "a", "iat": NOW, "exp": NOW + 60},
                       KEY, algorithm="RS256")
    jwks = {"keys": [_jwk(OTHER.public_key(), "old"), _jwk(P256.public_key(), "ec"),
                     _jwk(KEY.public_key(), "new")]}
    assert _check(token, nonce=None, jwks=jwks)["sub"] == "a"
    with pytest.raises(KeyProblem, match="signature does not verify"):
        _check(token, nonce=None, jwks={"keys": [_jwk(OTHER.public_key(), "old")]})


def test_a_kid_that_is_not_text_is_refused():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(b'{"alg":"RS256","kid":7}') + "." + b64(json.dumps(
        {"iss": ISSUER, "aud": CLIENT, "sub": "a", "iat": NOW, "exp": NOW + 60}).encode())
    signature = KEY.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(OIDCError):
        _check(f"{signing_input}.{b64(signature)}", nonce=None)


def test_es256_token_without_kid_finds_its_key():
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwks = {"keys": [*JWKS["keys"], jwk]}
    token = jwt.encode({"iss": ISSUER, "aud": CLIENT, "sub": "a", "iat": NOW, "exp": NOW + 60},
                       key, algorithm="ES256")
    assert _check(token, nonce=None, jwks=jwks)["sub"] == "a"


def test_pkce_pair_is_s256():
    import hashlib

    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert challenge == expected.decode().rstrip("=")
