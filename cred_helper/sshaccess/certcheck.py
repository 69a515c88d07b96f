"""What a signed access request's certificate must be before it is kept (pure; the clock is an
argument). A failure is one BadCertificate, and nothing is kept:

- one OpenSSH user certificate whose signature verifies, made by the configured SSH user CA;
- for our key;
- its principals exactly the request's name, its key id `<name>:<username>`;
- valid now (its start at most 5 minutes ahead: clocks differ), and ending no later than the
  lifetime asked for, counted from now (the broker counts from when it signed, which was
  before now).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_ssh_public_identity,
    load_ssh_public_key,
)
from cryptography.hazmat.primitives.serialization import ssh as sshcert

from .. import accessrequest as ar
from ..errors import BadCertificate

SKEW = 300


@dataclass(frozen=True)
class Checked:
    line: str
    valid_after: int
    valid_before: int
    serial: int
    extensions: tuple[str, ...]


def _openssh(key: object) -> bytes:
    return key.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)  # type: ignore[attr-defined]


def check(line: str, *, name: str, username: str, public_line: str, user_ca: str,
          seconds: int, now: float) -> Checked:
    what = f"the certificate of access request {name}"
    hint = "the broker or its CA is not the one configured (ssh-user-ca): ask an admin"
    try:
        cert = load_ssh_public_identity(line.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise BadCertificate(f"{what} is not an OpenSSH certificate", hint) from None
    if not isinstance(cert, sshcert.SSHCertificate):
        raise BadCertificate(f"{what} is a plain key, not a certificate", hint)
    try:
        cert.verify_cert_signature()
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        raise BadCertificate(f"{what} has a signature that does not verify", hint) from None
    if _openssh(cert.signature_key()) != _openssh(load_ssh_public_key(user_ca.encode())):
        raise BadCertificate(f"{what} is signed by another CA than ssh-user-ca", hint)
    if _openssh(cert.public_key()) != _openssh(load_ssh_public_key(public_line.encode())):
        raise BadCertificate(f"{what} is for another key than this request's", hint)
    if cert.type != sshcert.SSHCertificateType.USER:
        raise BadCertificate(f"{what} is not a user certificate", hint)
    if cert.valid_principals != [ar.principal(name).encode()]:
        raise BadCertificate(f"{what} names other principals than the request", hint)
    if cert.key_id != ar.key_id(name, username).encode():
        raise BadCertificate(f"{what} has another key id than {ar.key_id(name, username)}",
                             hint)
    if cert.valid_after > now + SKEW:
        raise BadCertificate(f"{what} is not valid yet",
                             "check the clocks of this machine and the broker")
    if cert.valid_before <= now:
        raise BadCertificate(f"{what} has already expired",
                             "check the clocks of this machine and the broker")
    if cert.valid_before > now + seconds + SKEW:
        raise BadCertificate(f"{what} lives longer than the {seconds} s asked for", hint)
    return Checked(line.strip(), cert.valid_after, cert.valid_before, cert.serial,
                   tuple(sorted(k.decode("ascii", "replace") for k in cert.extensions)))
