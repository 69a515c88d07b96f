"""A throwaway certificate authority for the local API server."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cred_helper.x509names import subject


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _hash_for(key):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


class CA:
    def __init__(self, common_name: str = "local-apiserver-ca") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self.name = name
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(hours=1))
            .not_valid_after(_now() + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return pem(self.cert)

    def issue(self, subject: x509.Name, public_key, not_before: datetime.datetime,
              not_after: datetime.datetime, client: bool = True,
              san: list[x509.GeneralName] | None = None) -> x509.Certificate:
        eku = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(self.name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, isinstance(public_key, rsa.RSAPublicKey), False,
                                         False, False, False, False, False, False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def server_cert(self) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
            key.public_key(), _now() - datetime.timedelta(hours=1),
            _now() + datetime.timedelta(days=1), client=False,
            san=[x509.DNSName("localhost"), x509.DNSName("kubernetes.default"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        )
        return pem(cert), key_pem(key)

    def client_cert(self, user: str, groups: list[str],
                    lifetime: datetime.timedelta = datetime.timedelta(hours=12),
                    start: datetime.datetime | None = None) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        start = start or _now() - datetime.timedelta(minutes=5)
        # Any length of name, as Kubernetes takes (cred_helper/x509names.py)
        cert = self.issue(subject(user, groups), key.public_key(), start, start + lifetime)
        return pem(cert), key_pem(key)
