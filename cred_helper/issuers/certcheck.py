"""What an issued client certificate must be before it is printed or cached (pure).

A signer's answer is not trusted as it comes: it must be for our key, for client
authentication, valid now (with a little skew), signed by the CA we trust for client
certificates, and name exactly the subject we asked for. It is kept no longer than the TTL we
asked for, whatever the signer chose. Every failure is one BadCertificate, and nothing of the
answer is kept.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..errors import BadCertificate
from ..keys import software
from ..x509names import subject_of

SKEW = 300  # seconds a signer's clock may run ahead of ours (kcm backdates 5 minutes anyway)
ADMIN_HINT = "report this to your cluster administrator; the certificate was not used"


@dataclass(frozen=True)
class Trust:
    """The CA bundle an issued certificate must chain to, and where it came from.

    `ca_pem` empty means the API server is trusted through the system store: a cluster's client
    CA is never a public CA, so the chain cannot be checked then (the other checks still are).
    """

    ca_pem: bytes
    source: str  # "--signer-ca /path" or "the cluster CA"
    signer_ca: bool  # True when the user named the signing CA


@dataclass(frozen=True)
class Wanted:
    common_name: str
    groups: tuple[str, ...]


def check_certificate(cert_pem: str, key, wanted: Wanted, trust: Trust,
                      now: float) -> x509.Certificate:
    """The leaf certificate of `cert_pem` if it passes every check; BadCertificate if not."""
    try:
        certs = x509.load_pem_x509_certificates(cert_pem.encode())
    except ValueError:
        raise BadCertificate("the signer returned something that is not a PEM certificate",
                             ADMIN_HINT) from None
    cert, intermediates = certs[0], certs[1:]
    if software.spki(cert.public_key()) != software.spki(key.public_key()):
        raise BadCertificate("the issued certificate is for another key, not ours", ADMIN_HINT)
    try:
        eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        eku = []
    except ValueError:  # a malformed extension
        raise BadCertificate("the issued certificate has malformed extensions",
                             ADMIN_HINT) from None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise BadCertificate("the issued certificate is not valid for client authentication",
                             "the signer must be kubernetes.io/kube-apiserver-client; "
                             + ADMIN_HINT)
    not_before = cert.not_valid_before_utc.timestamp()
    not_after = cert.not_valid_after_utc.timestamp()
    if not_before > now + SKEW:
        raise BadCertificate("the issued certificate is not valid yet (it starts at "
                             f"{_utc(not_before)})",
                             "check the clocks of this machine and the cluster")
    if not_after <= now:
        raise BadCertificate("the issued certificate has already expired",
                             "check the clocks of this machine and the cluster")
    check_subject(cert, wanted)
    check_chain(cert, intermediates, trust, max(now, not_before))
    return cert


def check_subject(cert: x509.Certificate, wanted: Wanted) -> None:
    """Exactly the subject requested: one CN, the same set of O, no other attribute."""
    attrs = list(subject_of(cert))
    cns = [str(a.value) for a in attrs if a.oid == NameOID.COMMON_NAME]
    orgs = [str(a.value) for a in attrs if a.oid == NameOID.ORGANIZATION_NAME]
    others = sorted({a.oid.dotted_string for a in attrs} - {NameOID.COMMON_NAME.dotted_string,
                                                              NameOID.ORGANIZATION_NAME.dotted_string})
    if cns != [wanted.common_name]:
        raise BadCertificate(f"the issued certificate names {', '.join(cns) or 'nobody'}, "
                             f"not the requested {wanted.common_name}", ADMIN_HINT)
    added = sorted(set(orgs) - set(wanted.groups))
    if added:
        raise BadCertificate("the issued certificate adds groups that were not requested: "
                             + ", ".join(added), ADMIN_HINT)
    missing = sorted(set(wanted.groups) - set(orgs))
    if missing:
        raise BadCertificate("the issued certificate lacks requested groups: "
                             + ", ".join(missing), ADMIN_HINT)
    if others:
        raise BadCertificate("the issued certificate's subject carries attributes that were "
                             f"not requested ({', '.join(others)})", ADMIN_HINT)


def check_chain(cert: x509.Certificate, intermediates: list[x509.Certificate], trust: Trust,
                at: float) -> None:
    """The certificate is signed (through `intermediates`) by a CA of the trust bundle."""
    if not trust.ca_pem:
        return  # system trust: see Trust
    try:
        roots = x509.load_pem_x509_certificates(trust.ca_pem)
    except ValueError:
        raise BadCertificate(f"{trust.source} is not a PEM certificate bundle",
                             "pass the CA that signs client certificates as PEM") from None
    if not _chains(cert, intermediates, roots, at):
        hint = ("check that --signer-ca is the CA that signs kubernetes.io/kube-apiserver-client "
                "certificates" if trust.signer_ca else
                "many clusters sign client certificates with a CA other than the API server's "
                "serving CA: pass --signer-ca with that CA (kubeadm uses one CA for both)")
        raise BadCertificate(f"the issued certificate does not chain to {trust.source}", hint)


def _chains(cert: x509.Certificate, intermediates: list[x509.Certificate],
            roots: list[x509.Certificate], at: float) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.x509 import verification as v

    when = datetime.datetime.fromtimestamp(at, datetime.timezone.utc)
    builder = v.PolicyBuilder().store(v.Store(roots)).time(when)
    if hasattr(builder, "extension_policies"):  # cryptography >= 45
        # Client certificates carry no SAN, and Ed25519 leaves are fine here: relax the web
        # PKI's leaf rules, keep "a CA must say it is one".
        ca_policy = v.ExtensionPolicy.permit_all().require_present(
            x509.BasicConstraints, v.Criticality.AGNOSTIC, None)
        builder = builder.extension_policies(ca_policy=ca_policy,
                                             ee_policy=v.ExtensionPolicy.permit_all())
        try:
            builder.build_client_verifier().verify(cert, intermediates)
            return True
        except (v.VerificationError, ValueError):
            return False
    # Older cryptography: the certificate is signed directly by one of the CAs.
    for root in roots:
        if root.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(root)
            return True
        except (InvalidSignature, ValueError, TypeError):  # TypeError: unsupported key type
            continue
    return False


def kept_until(cert: x509.Certificate, anchor: float, ttl: int) -> float:
    """Until when the certificate is cached and announced: never past the TTL asked for,
    counted from `anchor` (the local clock when this CSR was sent, or taken up again)."""
    return min(cert.not_valid_after_utc.timestamp(), anchor + ttl)


def _utc(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")
