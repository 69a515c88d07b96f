"""What an AccessRequest object says, read once and checked for the broker: the model's parse
(accessrequest.py: every shape and bound), the SSH public key loaded and typed, the hardware
proof decoded from `spec.attestation`, and where the request stands (pending, approved by a
person and waiting for its certificate, signed, denied).

The object's spec comes from whoever created it; admission (the manifests' policies) binds the
identity fields to the creator. Anything unreadable is one FactsError saying what, which the
broker turns into a denial.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_ssh_public_key,
)

from .. import accessrequest as ar
from .facts import FactsError, created_time

# Where a request stands for the broker.
PENDING = "pending"  # nobody decided: judge it
TO_SIGN = "to-sign"  # approved by a person, no certificate yet: judge again, then sign
SIGNED = "signed"  # has its certificate: nothing to do
DENIED = "denied"
STATES = (PENDING, TO_SIGN, SIGNED, DENIED)


@dataclass(frozen=True)
class ProofTarget:
    """What attestation.verify binds a proof to besides the key: the `subject` a CSR's proof
    names. An access request's proof names accessrequest.proof_subject(name) instead."""

    subject: x509.Name


@dataclass(frozen=True)
class AccessFacts:
    name: str
    uid: str
    resource_version: str
    username: str
    groups: tuple[str, ...]
    namespace: str
    pods: tuple[str, ...]
    reason: str
    expiration_seconds: int
    key_type: str  # "ed25519" | "p256"
    key_sha256: str  # hex SHA-256 of the key's SubjectPublicKeyInfo DER (the registry's form)
    public_key: Any  # the cryptography public key the certificate is for
    proof: bytes | None
    request: ProofTarget  # read by attestation.verify (the name of a CSR's field)
    state: str
    model: ar.AccessRequest
    subject_der: bytes = b""  # the subject the proof names, as DER (read by attestation.verify)
    created: float | None = None  # metadata.creationTimestamp: the proof must be as fresh


def state_of(model: ar.AccessRequest) -> str:
    if model.decision.state == ar.DENIED:
        return DENIED
    if model.certificate:
        return SIGNED
    if model.decision.state == ar.APPROVED:
        return TO_SIGN
    return PENDING


def access_facts(obj: Any) -> AccessFacts:
    """The facts of one AccessRequest object; FactsError when it cannot be read."""
    try:
        model = ar.parse(obj)
    except ar.AccessRequestError as error:
        raise FactsError(f"the access request is malformed: {error}") from None
    spec = model.spec
    key_type, public, digest = _key(spec.public_key)
    subject = ar.proof_subject(model.name)
    proof = None
    if spec.attestation:
        try:
            proof = base64.b64decode(spec.attestation, validate=True)
        except (binascii.Error, ValueError):
            raise FactsError("spec.attestation is not base64") from None
    return AccessFacts(
        name=model.name, uid=model.uid, resource_version=model.resource_version,
        username=spec.username, groups=spec.groups, namespace=spec.namespace, pods=spec.pods,
        reason=spec.reason, expiration_seconds=spec.expiration_seconds, key_type=key_type,
        key_sha256=digest, public_key=public, proof=proof,
        request=ProofTarget(subject), state=state_of(model), model=model,
        subject_der=subject.public_bytes(), created=created_time(obj))


def _key(line: str) -> tuple[str, Any, str]:
    """(key type, public key, SPKI SHA-256) of an OpenSSH public key line whose type name the
    model has checked: the key inside must be that type (cryptography checks) and whole."""
    try:
        public = load_ssh_public_key(line.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm):
        raise FactsError("spec.publicKey is not a readable OpenSSH public key") from None
    if isinstance(public, ed25519.Ed25519PublicKey):
        kind = "ed25519"
    elif isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve,
                                                                        ec.SECP256R1):
        kind = "p256"
    else:
        raise FactsError("spec.publicKey is not an Ed25519 or ECDSA P-256 key")
    # One spelling per key: a line that loads but does not round-trip (trailing bytes in the
    # blob) is refused, so that the key the certificate names is exactly the one asked for.
    canonical = public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    if canonical != line:
        raise FactsError("spec.publicKey is not in canonical form")
    spki = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return kind, public, hashlib.sha256(spki).hexdigest()
