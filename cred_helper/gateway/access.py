"""What one SSH connection serves, and for how long. Pure: an AccessRequest (as
accessrequest.parse read it), the SSH user CA's keys and the time in; an Access or the reason
out.

A connection is let in only for a request that is approved, not denied, not being deleted,
unexpired, with a grant for its own namespace, and whose `status.certificate` is a user
certificate of the configured CA for exactly the request's key (`spec.publicKey`), with the
request's name as its one principal, the key id `<name>:<username>` and no critical option,
and for an identity the impersonation headers carry unchanged.
The SSH server then requires the certificate the client presents to be that certificate, byte
for byte: a certificate of the same CA for another key, another principal or an earlier
signing is refused even where the CA signed it.

While the connection lasts, every change of the request is checked again (`ended`): denial,
deletion, a new certificate, or its end closes it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from ..accessrequest import (
    APPROVED,
    DENIED,
    AccessRequest,
    Grant,
    Spec,
    format_time,
    key_id,
)
from .impersonate import unsendable


class Refused(Exception):
    """The request does not let this connection in; the message says why, in one line."""


@dataclass(frozen=True)
class Access:
    request: str  # the request's name: the certificate's principal and the login name
    uid: str  # the request object's uid: a request deleted and made again is another one
    spec: Spec
    grant: Grant
    certificate: bytes  # the certificate's wire form, as the client must present it
    ends_at: float  # the certificate's end or the request's, whichever comes first
    decided_by: str


def certificate_blob(line: str) -> bytes:
    """The wire form of an OpenSSH certificate line (`TYPE BASE64 [COMMENT]`); b"" if it is
    not one."""
    parts = line.split()
    if len(parts) < 2 or not parts[0].endswith("-cert-v01@openssh.com"):
        return b""
    try:
        return base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return b""


def ca_keys(text: str) -> tuple[bytes, ...]:
    """The SSH user CA's public keys (one OpenSSH line each; several while the CA rotates), as
    their OpenSSH encoding without comment. ValueError names a line that is not a key."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = serialization.load_ssh_public_key(line.encode())
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ValueError(f"line {number} is not an OpenSSH public key ({exc})") from None
        keys.append(_openssh(key))
    if not keys:
        raise ValueError("it holds no public key")
    return tuple(keys)


def admit(request: AccessRequest, cas: tuple[bytes, ...], now: float) -> Access:
    """The Access a connection for this request gets now; Refused with the reason otherwise."""
    state = _state(request)
    if state:
        raise Refused(state)
    unsent = unsendable(request.spec)
    if unsent:
        raise Refused(f"access request {request.name}'s {unsent}: the gateway cannot act as "
                      "exactly that identity (HTTP drops such spaces)")
    grant = request.grant
    if grant is None:
        raise Refused(f"access request {request.name} is approved but has no grant")
    if grant.namespace != request.spec.namespace:
        raise Refused(f"access request {request.name}'s grant is for namespace "
                      f"{grant.namespace}, not the requested {request.spec.namespace}")
    blob = certificate_blob(request.certificate)
    if not blob:
        raise Refused(f"access request {request.name} is approved but carries no certificate")
    valid_before = _check_certificate(request, blob, cas, now)
    ends_at = min(valid_before, request.expires_at) if request.expires_at else valid_before
    if ends_at <= now:
        raise Refused(f"access request {request.name} ended at {format_time(ends_at)}")
    return Access(request=request.name, uid=request.uid, spec=request.spec, grant=grant,
                  certificate=blob, ends_at=ends_at, decided_by=request.decision.by)


def ended(access: Access, request: AccessRequest | None, now: float) -> str:
    """Why an open connection must end now ("" while it may go on): the request gone, denied,
    no longer approved, replaced, re-signed, or past its end."""
    if request is None or request.uid != access.uid:
        return f"access request {access.request} was deleted"
    state = _state(request)
    if state:
        return state
    if certificate_blob(request.certificate) != access.certificate:
        return f"access request {access.request}'s certificate was replaced"
    if request.grant != access.grant:
        return f"access request {access.request}'s grant changed"
    if now >= access.ends_at:
        return f"access request {access.request} ended at {format_time(access.ends_at)}"
    return ""


def _state(request: AccessRequest) -> str:
    name = request.name
    if request.deleting:
        return f"access request {name} is being deleted"
    decision = request.decision
    if decision.state == DENIED:
        # The decider's own words (`deny --reason`) are the message; reason is a CamelCase tag.
        said = decision.message or decision.reason
        why = f": {said}" if said else ""
        by = f" by {decision.by}" if decision.by else ""
        return f"access request {name} was denied{by}{why}"
    if decision.state != APPROVED:
        return f"access request {name} is not approved yet"
    return ""


def presented_problem(blob: bytes, login: str, cas: tuple[bytes, ...], now: float) -> str:
    """Why the key a client presents for LOGIN cannot be a certificate the broker signed for
    that request ("" when it can): checked before the request is read, so that a stranger
    (no certificate of the CA for that name) costs the gateway no read of the API server."""
    cert = _certificate(blob)
    if cert is None:
        return "presented key is not an OpenSSH certificate"
    problem = _problem(cert, login, cas, now)
    return f"presented certificate {problem}" if problem else ""


def _check_certificate(request: AccessRequest, blob: bytes, cas: tuple[bytes, ...],
                       now: float) -> float:
    """status.certificate as the broker must have signed it; its end (unix seconds)."""
    name = request.name
    line = request.certificate.split()
    try:
        cert = serialization.load_ssh_public_identity(f"{line[0]} {line[1]}".encode())
    except (ValueError, TypeError, IndexError, UnsupportedAlgorithm):
        raise Refused(f"access request {name}'s certificate cannot be read") from None
    if not isinstance(cert, serialization.SSHCertificate):
        raise Refused(f"access request {name}'s certificate is a plain key")
    problem = ""
    if _openssh(cert.public_key()) != request.spec.public_key.encode():
        problem = "is not for the request's key (spec.publicKey)"
    elif cert.key_id != key_id(name, request.spec.username).encode():
        problem = f"has another key id than {key_id(name, request.spec.username)}"
    problem = _problem(cert, name, cas, now, first=problem)
    if problem:
        raise Refused(f"access request {name}'s certificate {problem}")
    return float(cert.valid_before)


def _problem(cert: serialization.SSHCertificate, name: str, cas: tuple[bytes, ...],
             now: float, first: str = "") -> str:
    """What makes CERT no user certificate of the CA for the login NAME, valid now: its type,
    its signer, its one principal, critical options, validity, the CA's signature."""
    problem = ""
    if cert.type != serialization.SSHCertificateType.USER:
        problem = "is not a user certificate"
    elif _openssh(cert.signature_key()) not in cas:
        problem = "is not signed by the gateway's SSH user CA"
    elif first:
        problem = first
    elif cert.valid_principals != [name.encode()]:
        problem = f"does not name {name} as its one principal"
    elif cert.critical_options:
        problem = "carries critical options"
    elif not cert.valid_after <= now < cert.valid_before:
        problem = "is not valid now"
    if not problem:
        try:
            cert.verify_cert_signature()
        except InvalidSignature:
            problem = "has a bad signature"
    return problem


def _certificate(blob: bytes) -> serialization.SSHCertificate | None:
    """An OpenSSH certificate's wire form read; None for anything else (a plain key)."""
    size = int.from_bytes(blob[:4], "big")
    kind = blob[4:4 + size]
    if len(blob) < 4 or not kind.endswith(b"-cert-v01@openssh.com"):
        return None
    try:
        cert = serialization.load_ssh_public_identity(kind + b" " + base64.b64encode(blob))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return cert if isinstance(cert, serialization.SSHCertificate) else None


def _openssh(key: object) -> bytes:
    return key.public_bytes(serialization.Encoding.OpenSSH,  # type: ignore[attr-defined]
                            serialization.PublicFormat.OpenSSH)
