"""What a CertificateSigningRequest object says, read once and checked: the requester (from
`spec.username` / `spec.groups`, which kube-apiserver sets from the creator's identity), the
PKCS#10 request inside it (its self-signature verified), its key, subject, usages, lifetime,
annotations, the attestation proof it carries, and its state.

The object comes from the API server but its contents come from whoever created the CSR: every
field is shape-checked before use, and anything unreadable is one FactsError saying what.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from ..attestproof import PROOF_OID
from ..issuers.approval import csr_state
from ..issuers.csr import csr_shape_problem
from ..x509names import subject_of

# The states a CSR can be in, as the broker sees them.
STATES = ("pending", "approved", "denied", "failed", "issued")
_PEM_BEGIN = b"-----BEGIN CERTIFICATE REQUEST-----"
# The string types a name is read alike in by this broker and by Go (kube-apiserver, and the
# signer that writes the certificate): Go reads a BMPString's trailing 00 00 as nothing where
# Python keeps a NUL, a T61String as Latin-1, and drops a CN or O in other types altogether.
_NAME_TYPES = (_ASN1Type.UTF8String, _ASN1Type.PrintableString)


class FactsError(ValueError):
    """The CSR object cannot be read or verified; `reason` is one line saying why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CsrFacts:
    name: str
    uid: str
    resource_version: str
    username: str  # the requester, as the API server recorded it
    groups: tuple[str, ...]
    signer: str
    common_name: str  # "" when the subject has no CN
    organizations: tuple[str, ...]
    extra_subject: bool  # any subject attribute besides one CN and O's (or a multi-valued RDN)
    key_type: str  # "ed25519" | "p256" | "p384" | "rsa" | "other"
    key_bits: int
    key_sha256: str  # hex SHA-256 of the key's SubjectPublicKeyInfo DER
    usages: tuple[str, ...]
    expiration_seconds: int | None
    annotations: dict[str, str]
    proof: bytes | None  # the PROOF_OID extension's value, None when absent
    request: x509.CertificateSigningRequest = field(repr=False, compare=False)
    state: str
    # Additive beyond the shared interface: for reasons and the decision log.
    subject: str = ""  # RFC 4514 text of the requested subject
    alt_names: tuple[str, ...] = ()  # names a subjectAltName extension asks for
    requester_uid: str = ""  # spec.uid
    subject_der: bytes = b""  # DER of the requested subject Name, as a proof names it
    created: float | None = None  # metadata.creationTimestamp (unix seconds), when readable


def _str(value: Any, where: str, optional: bool = False) -> str:
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise FactsError(f"{where} is not a string")
    return value


def _str_list(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FactsError(f"{where} is not a list of strings")
    return tuple(value)


def _request(spec: dict[str, Any]) -> x509.CertificateSigningRequest:
    text = spec.get("request")
    if not isinstance(text, str) or not text:
        raise FactsError("spec.request is missing or not a string")
    try:
        pem = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FactsError("spec.request is not base64") from None
    # The API server reads the first PEM block only; a second one would be a second meaning.
    if pem.count(b"-----BEGIN") != 1 or not pem.lstrip().startswith(_PEM_BEGIN):
        raise FactsError("spec.request is not exactly one PEM CERTIFICATE REQUEST block")
    try:
        csr = x509.load_pem_x509_csr(pem)
        signed = csr.is_signature_valid
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as error:
        raise FactsError(f"spec.request is not a readable PKCS#10 request ({_short(error)})") \
            from None
    if not signed:
        raise FactsError("spec.request's self-signature does not verify")
    return csr


def _short(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:120]


def _key(csr: x509.CertificateSigningRequest) -> tuple[str, int, str]:
    try:
        key = csr.public_key()
        spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise FactsError(f"the request's public key cannot be read ({_short(error)})") from None
    digest = hashlib.sha256(spki).hexdigest()
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, digest
    if isinstance(key, ec.EllipticCurvePublicKey):
        kind = {"secp256r1": "p256", "secp384r1": "p384"}.get(key.curve.name, "other")
        return kind, key.curve.key_size, digest
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size, digest
    return "other", 0, digest


def _subject(csr: x509.CertificateSigningRequest
             ) -> tuple[str, tuple[str, ...], bool, str, bytes]:
    """(CN, O's, extra_subject, RFC 4514 text, DER)."""
    common_names: list[str] = []
    organizations: list[str] = []
    extra = False
    try:
        # any length of name, as Kubernetes takes it, read quietly (x509names.py)
        name = subject_of(csr)
        rdns = list(name.rdns)
        text = name.rfc4514_string()
        der = name.public_bytes()
    except (ValueError, TypeError) as error:
        raise FactsError(f"the request's subject cannot be read ({_short(error)})") from None
    for rdn in rdns:
        attributes = list(rdn)
        if len(attributes) != 1:
            extra = True  # a multi-valued RDN: not a subject cred-helper or kubectl writes
        for attribute in attributes:
            value = attribute.value
            if attribute.oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
                _check_name(attribute)
            if not isinstance(value, str):
                extra = True
                continue
            if attribute.oid == NameOID.COMMON_NAME:
                common_names.append(value)
            elif attribute.oid == NameOID.ORGANIZATION_NAME:
                organizations.append(value)
            else:
                extra = True
    if len(common_names) > 1:
        extra = True
    return (common_names[0] if common_names else ""), tuple(organizations), extra, text, der


def _check_name(attribute: x509.NameAttribute) -> None:
    """A CN or O the broker may judge: a string type Go reads the same way, and no control
    characters (which a person reading an Event or a log would not see)."""
    what = "CN" if attribute.oid == NameOID.COMMON_NAME else "O"
    kind = getattr(attribute, "_type", None)  # the DER string type, as cryptography read it
    if kind not in _NAME_TYPES:
        name = kind.name if isinstance(kind, _ASN1Type) else "value of an unknown type"
        raise FactsError(f"the request's {what} is encoded as {name}; only UTF8String and "
                         "PrintableString names are read the same by this broker and by the "
                         "signer")
    if not isinstance(attribute.value, str) or any(
            unicodedata.category(ch) == "Cc" for ch in attribute.value):
        raise FactsError(f"the request's {what} {_printable(attribute.value)} holds control "
                         "characters")


def _printable(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _extensions(csr: x509.CertificateSigningRequest) -> tuple[bytes | None, tuple[str, ...]]:
    """(the proof, the alternative names asked for)."""
    try:
        extensions = list(csr.extensions)
    except x509.UnsupportedGeneralNameType:
        # kube-apiserver accepts these (Go skips such names); the signer would copy a
        # subjectAltName into the certificate, so a name nobody can read is not approved.
        raise FactsError("the request's extensions hold an x400Address or ediPartyName "
                         "(in a subjectAltName, issuerAltName, authorityInfoAccess or "
                         "subjectInfoAccess), which cannot be read") from None
    except x509.DuplicateExtension as error:
        # No ValueError. kube-apiserver 1.37 refuses such a request (422), but a saved object
        # given to `approver check --csr` has met no API server.
        raise FactsError(f"the request's extensions name {error.oid.dotted_string} twice") \
            from None
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        # cryptography parses extensions lazily: a duplicate or malformed one surfaces here.
        raise FactsError(f"the request's extensions cannot be read ({_short(error)})") from None
    proof: bytes | None = None
    alt_names: list[str] = []
    for extension in extensions:
        if extension.oid == PROOF_OID:
            value = extension.value
            if not isinstance(value, x509.UnrecognizedExtension):
                raise FactsError("the attestation extension is not an opaque value")
            proof = bytes(value.value)
        elif isinstance(extension.value, x509.SubjectAlternativeName):
            # kube-controller-manager's signer copies these into the certificate.
            alt_names += [str(getattr(name, "value", name)) for name in extension.value]
    return proof, tuple(alt_names)


def csr_facts(obj: Any) -> CsrFacts:
    """The facts of a `certificates.k8s.io/v1` CSR object; FactsError when it cannot be read."""
    problem = csr_shape_problem(obj)
    if problem:
        raise FactsError(f"the CSR object is malformed: {problem}")
    meta = obj["metadata"]
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise FactsError("spec is not an object")
    annotations = meta.get("annotations")
    if annotations is None:
        annotations = {}
    if not isinstance(annotations, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise FactsError("metadata.annotations is not a map of strings")
    expiration = spec.get("expirationSeconds")
    if expiration is not None and (isinstance(expiration, bool) or not isinstance(expiration, int)):
        raise FactsError("spec.expirationSeconds is not an integer")
    username = _str(spec.get("username"), "spec.username")
    if not username:
        raise FactsError("spec.username is empty")
    csr = _request(spec)
    common_name, organizations, extra, subject, subject_der = _subject(csr)
    key_type, key_bits, key_sha256 = _key(csr)
    proof, alt_names = _extensions(csr)
    state, _ = csr_state(obj)
    return CsrFacts(
        name=meta["name"],
        uid=_str(meta.get("uid"), "metadata.uid", optional=True),
        resource_version=_str(meta.get("resourceVersion"), "metadata.resourceVersion",
                              optional=True),
        username=username,
        groups=_str_list(spec.get("groups"), "spec.groups"),
        signer=_str(spec.get("signerName"), "spec.signerName"),
        common_name=common_name,
        organizations=organizations,
        extra_subject=extra,
        key_type=key_type,
        key_bits=key_bits,
        key_sha256=key_sha256,
        usages=_str_list(spec.get("usages"), "spec.usages"),
        expiration_seconds=expiration,
        annotations=dict(annotations),
        proof=proof,
        request=csr,
        state=state,
        subject=subject,
        alt_names=alt_names,
        requester_uid=_str(spec.get("uid"), "spec.uid", optional=True),
        subject_der=subject_der,
        created=created_time(obj),
    )


def created_time(obj: Any) -> float | None:
    """kube-apiserver's creation time of an object (metadata.creationTimestamp: RFC 3339,
    UTC, whole seconds); None when it is missing or unreadable."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    value = meta.get("creationTimestamp") if isinstance(meta, dict) else None
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None
