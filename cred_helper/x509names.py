"""Subject names as Kubernetes takes them: no bound on a common name's length.

X.509 bounds a common name at 64 bytes (RFC 5280's ub-common-name), and cryptography refuses to
build a longer one. Kubernetes sets no such bound: a user name is whatever an authenticator
says (an OIDC name with its issuer prefix, `oidc:https://login.example.com/tenant#<uuid>`, is
longer than 64), and kube-apiserver 1.37 accepts a CSR with a longer common name, kcm signs it
intact and the certificate authenticates. So cred-helper builds such names, and reads them
back, without that bound. cryptography warns each time it builds or reads one unchecked; that
warning is about a choice made here on purpose, so it is silenced here, and only it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

from cryptography import x509
from cryptography.x509.oid import NameOID

# cryptography's message for a value outside its length table (name.py, NameAttribute).
_BOUND_WARNING = r"Attribute's length must be >= \d+ and <= \d+"


@contextlib.contextmanager
def unbounded() -> Iterator[None]:
    """Build or read subject names here without cryptography's bound warning on stderr."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_BOUND_WARNING, category=UserWarning)
        yield


def text_problem(value: str) -> str | None:
    """Why `value` cannot be a name in a certificate, or None: it must be text that UTF-8 can
    carry (a lone surrogate, from undecodable command-line bytes or a JSON `\\ud800` escape,
    cannot be)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode text"
    return None


def subject(common_name: str, organizations: list[str] | tuple[str, ...]) -> x509.Name:
    """CN=common_name, O=each organization, with no length bound (see above).

    The caller has checked each value with text_problem."""
    with unbounded():
        names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False)]
        names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o, _validate=False)
                  for o in organizations]
        return x509.Name(names)


def subject_of(signed: x509.Certificate | x509.CertificateSigningRequest) -> x509.Name:
    """The subject of a parsed certificate or request (reading a long name warns like building
    one: cryptography builds the Name when `.subject` is first read)."""
    with unbounded():
        return signed.subject
