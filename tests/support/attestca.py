"""A test PIV attestation CA, shaped as Yubico's: a root, a "device f9" certificate under it,
and slot attestation certificates under that carrying Yubico's extensions (firmware, serial,
PIN/touch policy, form factor under 1.3.6.1.4.1.41482.3). Also the broker's facts of a CSR,
read as the broker reads them."""

from __future__ import annotations

import base64
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cred_helper.broker.facts import CsrFacts, csr_facts

ARC = "1.3.6.1.4.1.41482.3"
PIN = {"never": 1, "once": 2, "always": 3}
TOUCH = {"never": 1, "always": 2, "cached": 3}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _ext(builder: x509.CertificateBuilder, suffix: int, value: bytes) -> x509.CertificateBuilder:
    return builder.add_extension(
        x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{ARC}.{suffix}"), value),
        critical=False)


class AttestationCA:
    def __init__(self, root_cn: str = "Test PIV Root CA Serial 1", device_serial: int = 9001,
                 days: int = 2) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        start, end = _now() - datetime.timedelta(hours=1), _now() + datetime.timedelta(days=days)
        self.root = (x509.CertificateBuilder()
                     .subject_name(_name(root_cn)).issuer_name(_name(root_cn))
                     .public_key(self.root_key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(start).not_valid_after(end)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
                     .sign(self.root_key, hashes.SHA256()))
        self.device_key = ec.generate_private_key(ec.SECP256R1())
        self.device = (x509.CertificateBuilder()
                       .subject_name(_name("Yubico PIV Attestation"))
                       .issuer_name(self.root.subject)
                       .public_key(self.device_key.public_key())
                       .serial_number(device_serial)
                       .not_valid_before(start).not_valid_after(end)
                       .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                                      critical=True)
                       .sign(self.root_key, hashes.SHA256()))

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def attest(self, public_key, serial: int = 12345678, pin: str = "once",
               touch: str = "always", firmware: tuple[int, int, int] = (5, 4, 3),
               form_factor: int = 1, slot: str = "9a",
               not_after: datetime.datetime | None = None) -> x509.Certificate:
        start = _now() - datetime.timedelta(hours=1)
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(f"YubiKey PIV Attestation {slot}"))
                   .issuer_name(self.device.subject)
                   .public_key(public_key)
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start)
                   .not_valid_after(not_after or self.device.not_valid_after_utc))
        builder = _ext(builder, 3, bytes(firmware))
        body = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
        builder = _ext(builder, 7, bytes([0x02, len(body)]) + body)
        builder = _ext(builder, 8, bytes([PIN[pin], TOUCH[touch]]))
        builder = _ext(builder, 9, bytes([form_factor]))
        return builder.sign(self.device_key, hashes.SHA256())

    def chain(self, public_key, **kw) -> tuple[bytes, bytes]:
        """(slot attestation DER, device f9 DER), as a YubiKey's token shows them."""
        return der(self.attest(public_key, **kw)), der(self.device)


def facts_of(csr: x509.CertificateSigningRequest, username: str) -> CsrFacts:
    """The broker's facts of a CSR that `username` sent (through the policy slice's reader)."""
    pem = csr.public_bytes(serialization.Encoding.PEM)
    return csr_facts({"metadata": {"name": "csr-1", "uid": "uid-1", "resourceVersion": "1"},
                      "spec": {"request": base64.b64encode(pem).decode(),
                               "signerName": "kubernetes.io/kube-apiserver-client",
                               "usages": ["client auth"], "username": username,
                               "groups": ["system:authenticated"]}})


def facts_of_object(obj: dict) -> CsrFacts:
    """From a CertificateSigningRequest object as the API server returns it."""
    return csr_facts(obj)
