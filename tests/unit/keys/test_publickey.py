import json

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from cred_helper.keys.publickey import jwk, render, thumbprint


def test_rfc7638_example_thumbprint():
    # RFC 7638 §3.1's RSA key and its thumbprint.
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
         "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65"
         "YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyr"
         "dkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"
         "nqDKgw")
    assert thumbprint({"e": "AQAB", "kty": "RSA", "n": n}) == \
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_jwks_load_back_and_carry_their_thumbprint():
    for key, algorithm in ((ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
                           (ec.generate_private_key(ec.SECP256R1()), "ES256"),
                           (rsa.generate_private_key(65537, 2048), "RS256")):
        doc = jwk(key.public_key())
        members = {k: v for k, v in doc.items() if k != "kid"}
        assert doc["kid"] == thumbprint(members)
        token = jwt.encode({"a": 1}, key, algorithm=algorithm)
        assert jwt.decode(token, jwt.PyJWK(doc).key, algorithms=[algorithm]) == {"a": 1}
        assert json.loads(render(key.public_key(), "jwk")) == doc


def test_pem_and_ssh():
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    assert render(public, "pem").startswith("-----BEGIN PUBLIC KEY-----")
    assert render(public, "ssh", "yubikey 9a").startswith("ssh-ed25519 AAAA")
    assert render(public, "ssh", "yubikey 9a").endswith(" yubikey 9a\n")
