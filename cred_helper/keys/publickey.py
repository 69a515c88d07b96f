"""Public keys as people and providers want them: PEM, JWK (with `kid` = the RFC 7638
thumbprint), OpenSSH. Pure."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def jwk(public: Any) -> dict[str, str]:
    """The JWK's required members (RFC 7517/8037), plus `kid` (its RFC 7638 thumbprint)."""
    if isinstance(public, ed25519.Ed25519PublicKey):
        members = {"crv": "Ed25519", "kty": "OKP", "x": _b64(public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw))}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[public.curve.name]
        size = (public.curve.key_size + 7) // 8
        nums = public.public_numbers()
        members = {"crv": crv, "kty": "EC", "x": _b64(nums.x.to_bytes(size, "big")),
                   "y": _b64(nums.y.to_bytes(size, "big"))}
    elif isinstance(public, rsa.RSAPublicKey):
        nums = public.public_numbers()
        members = {"e": _int(nums.e), "kty": "RSA", "n": _int(nums.n)}
    else:
        raise ValueError(f"no JWK for {type(public).__name__}")
    return {**members, "kid": thumbprint(members)}


def thumbprint(members: dict[str, str]) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, with no whitespace."""
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def render(public: Any, fmt: str, comment: str = "") -> str:
    if fmt == "pem":
        return public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    if fmt == "jwk":
        return json.dumps(jwk(public), indent=2) + "\n"
    line = public.public_bytes(serialization.Encoding.OpenSSH,
                               serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}".rstrip() + "\n"
