"""The attestation proof's wire format, shared by the plugin (which writes it into its CSR) and
the broker (which reads it back out of `spec.request`).

The proof is the value of a non-critical requested extension (PROOF_OID below): compact JSON

    {"v": 1, "alg": "ES256", "payload": B64, "sig": B64, "certs": [B64 DER, ...]}

`payload` is canonical JSON (sorted keys, no spaces) of

    {"v": 1, "ctx": "cred-helper/csr-proof", "csr_key": B64 SPKI DER, "subject": B64 DER,
     "time": unix seconds, "token_key": B64 SPKI DER}

and `sig` is the token key's signature over those exact bytes: EdDSA (Ed25519), ES256 (ECDSA
P-256 SHA-256, DER), ES384 (ECDSA P-384 SHA-384, DER) or RS256 (RSA PKCS#1 v1.5 SHA-256).
`certs` are the slot's attestation certificate first, then the device (f9) certificate, where
the token holds them; none on tokens without attestation.

The subject travels as DER, not as an RFC 4514 string: two different subjects can print the
same (string types, escaping), and the proof must name exactly one. `ctx` keeps the token's
signature from meaning anything outside this use.

Everything here is attacker-controlled on the broker side: decoding checks sizes before
parsing, every shape before use, and raises ProofError with one precise reason. A proof has one
spelling (canonical JSON, canonical base64), so no change to its bytes leaves it valid.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.x509 import ObjectIdentifier

# A private OID without registration, in the UUID arc 2.25 (ITU-T X.667). Every arc must fit
# in 31 bits: Go's encoding/asn1 (which kube-apiserver parses CSRs with) refuses larger ones
# ("base 128 integer too large", a 422 on create; tried on kube-apiserver 1.37), so a full
# 128-bit UUID cannot be used: this is the top 31 bits of one.
PROOF_OID = ObjectIdentifier("2.25.1433927580")

VERSION = 1
CONTEXT = "cred-helper/csr-proof"
ALGORITHMS = ("EdDSA", "ES256", "ES384", "RS256")

MAX_PROOF = 16 * 1024  # whole extension value: a few certificates and a signature
MAX_PAYLOAD = 4 * 1024
MAX_SIG = 1024  # RSA-4096 is 512 bytes
MAX_CERTS = 4
MAX_CERT = 4 * 1024  # YubiKey attestation certificates are under 1 KiB
MAX_KEY = 1024  # SPKI DER of an RSA-4096 key is 550 bytes
MAX_SUBJECT = 2 * 1024


class ProofError(ValueError):
    """A proof that cannot be read; the message is the reason, fit for a log line."""


@dataclass(frozen=True)
class Payload:
    csr_key: bytes  # SPKI DER of the CSR's key
    subject: bytes  # DER of the CSR's subject Name
    time: int  # unix seconds when the proof was made
    token_key: bytes  # SPKI DER of the hardware key that signed

    def encode(self) -> bytes:
        doc = {"v": VERSION, "ctx": CONTEXT, "csr_key": _b64(self.csr_key),
               "subject": _b64(self.subject), "time": self.time,
               "token_key": _b64(self.token_key)}
        return _canonical(doc)


@dataclass(frozen=True)
class Proof:
    alg: str
    payload: bytes  # the signed bytes, exactly as carried
    sig: bytes
    certs: tuple[bytes, ...]  # DER: the slot's attestation certificate, then the device's

    def encode(self) -> bytes:
        return _canonical({"v": VERSION, "alg": self.alg, "payload": _b64(self.payload),
                           "sig": _b64(self.sig), "certs": [_b64(c) for c in self.certs]})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _unb64(value: Any, what: str, limit: int) -> bytes:
    if not isinstance(value, str):
        raise ProofError(f"the proof's {what} is not a base64 string")
    if len(value) > (limit + 2) // 3 * 4:
        raise ProofError(f"the proof's {what} is longer than {limit} bytes")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ProofError(f"the proof's {what} is not valid base64") from None
    if not data:
        raise ProofError(f"the proof's {what} is empty")
    if _b64(data) != value:
        # b64decode ignores the unused bits of the last character: several spellings, one value
        raise ProofError(f"the proof's {what} is not in canonical base64")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ProofError(f"the proof names {key!r} twice")
        doc[key] = value
    return doc


def _json_object(data: bytes, what: str, fields: set[str]) -> dict[str, Any]:
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except ProofError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProofError(f"the {what} is not JSON") from None
    if not isinstance(doc, dict):
        raise ProofError(f"the {what} is not a JSON object")
    if doc.get("v") != VERSION or isinstance(doc.get("v"), bool):
        raise ProofError(f"the {what} is not version {VERSION}")
    if set(doc) != fields:
        odd = sorted(set(doc) ^ fields)
        raise ProofError(f"the {what} has unknown or missing fields: {', '.join(odd)}")
    return doc


def decode(data: bytes) -> Proof:
    """The proof in an extension's value; ProofError with the reason otherwise."""
    if not isinstance(data, (bytes, bytearray)):
        raise ProofError("the proof is not bytes")
    if len(data) > MAX_PROOF:
        raise ProofError(f"the proof is {len(data)} bytes, more than the {MAX_PROOF} allowed")
    doc = _json_object(bytes(data), "proof", {"v", "alg", "payload", "sig", "certs"})
    alg = doc["alg"]
    if alg not in ALGORITHMS:
        raise ProofError(f"the proof's algorithm {str(alg)[:20]!r} is not one of "
                         f"{', '.join(ALGORITHMS)}")
    certs = doc["certs"]
    if not isinstance(certs, list):
        raise ProofError("the proof's certs is not a list")
    if len(certs) > MAX_CERTS:
        raise ProofError(f"the proof carries {len(certs)} certificates, more than "
                         f"{MAX_CERTS}")
    proof = Proof(alg, _unb64(doc["payload"], "payload", MAX_PAYLOAD),
                  _unb64(doc["sig"], "signature", MAX_SIG),
                  tuple(_unb64(c, f"certificate {i + 1}", MAX_CERT)
                        for i, c in enumerate(certs)))
    if proof.encode() != bytes(data):
        raise ProofError("the proof is not in canonical form")
    return proof


def decode_payload(data: bytes) -> Payload:
    """The signed payload's fields; ProofError with the reason otherwise. Only canonical
    JSON is accepted, so that one payload has one spelling."""
    doc = _json_object(data, "proof's payload",
                       {"v", "ctx", "csr_key", "subject", "time", "token_key"})
    if doc["ctx"] != CONTEXT:
        raise ProofError("the proof's payload is for another use (ctx)")
    when = doc["time"]
    if not isinstance(when, int) or isinstance(when, bool) or not 0 < when < 1 << 40:
        raise ProofError("the proof's time is not a plausible unix time in seconds")
    payload = Payload(_unb64(doc["csr_key"], "CSR key", MAX_KEY),
                      _unb64(doc["subject"], "subject", MAX_SUBJECT), when,
                      _unb64(doc["token_key"], "token key", MAX_KEY))
    if payload.encode() != data:
        raise ProofError("the proof's payload is not in canonical form")
    return payload
