"""A test PIV attestation CA, shaped as Yubico's: a root, "device f9" certificates under it (one
per YubiKey, each with its own key), and slot attestation certificates under a device carrying
Yubico's extensions (firmware, serial, PIN/touch policy, form factor under
1.3.6.1.4.1.41482.3). An attacker's own genuine YubiKey is `ca.new_device()`; `slot_cert` also
signs with any key at all, which is how forgeries are made. Also the broker's facts of a CSR,
read as the broker reads them."""

from __future__ import annotations

import base64
import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cred_helper.broker.facts import CsrFacts, csr_facts

ARC = "1.3.6.1.4.1.41482.3"
PIN = {"never": 1, "once": 2, "always": 3}
TOUCH = {"never": 1, "always": 2, "cached": 3}
DEVICE_CN = "Yubico PIV Attestation"
UNSET = object()  # "leave the extension out", where None means "no path length"
F9_CONSTRAINTS = x509.BasicConstraints(ca=True, path_length=0)  # a YubiKey 5's f9 certificate


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


def slot_cert(public_key: Any, issuer_key: Any, issuer_name: x509.Name, *,
              serial: int = 12345678, pin: str = "once", touch: str = "always",
              firmware: tuple[int, int, int] = (5, 4, 3), form_factor: int = 1,
              slot: str = "9a", not_after: datetime.datetime | None = None,
              basic_constraints: Any = UNSET) -> x509.Certificate:
    """A slot attestation certificate as a YubiKey writes it (no basicConstraints), signed by
    `issuer_key`: a device's f9 key for a genuine one, anything else for a forgery."""
    start = _now() - datetime.timedelta(hours=1)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(f"YubiKey PIV Attestation {slot}"))
               .issuer_name(issuer_name)
               .public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(start)
               .not_valid_after(not_after or _now() + datetime.timedelta(days=2)))
    builder = _ext(builder, 3, bytes(firmware))
    body = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    builder = _ext(builder, 7, bytes([0x02, len(body)]) + body)
    builder = _ext(builder, 8, bytes([PIN[pin], TOUCH[touch]]))
    builder = _ext(builder, 9, bytes([form_factor]))
    if basic_constraints is not UNSET:
        builder = builder.add_extension(basic_constraints, critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


class Device:
    """One YubiKey: its f9 key (which never leaves it) and its f9 certificate."""

    def __init__(self, key: Any, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    def attest(self, public_key: Any, **kw: Any) -> x509.Certificate:
        kw.setdefault("not_after", self.cert.not_valid_after_utc)
        return slot_cert(public_key, self.key, self.cert.subject, **kw)

    def chain(self, public_key: Any, **kw: Any) -> tuple[bytes, bytes]:
        """(slot attestation DER, device f9 DER), as a YubiKey's token shows them."""
        return der(self.attest(public_key, **kw)), der(self.cert)


class AttestationCA:
    def __init__(self, root_cn: str = "Test PIV Root CA Serial 1", device_serial: int = 9001,
                 days: int = 2, root_path_length: int | None = 1) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.start, self.end = (_now() - datetime.timedelta(hours=1),
                                _now() + datetime.timedelta(days=days))
        self.root = (x509.CertificateBuilder()
                     .subject_name(_name(root_cn)).issuer_name(_name(root_cn))
                     .public_key(self.root_key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(self.start).not_valid_after(self.end)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=root_path_length),
                                    critical=True)
                     .sign(self.root_key, hashes.SHA256()))
        first = self.new_device(device_serial)
        self.device_key, self.device = first.key, first.cert

    def new_device(self, serial: int | None = None, *, cn: str = DEVICE_CN,
                   basic_constraints: Any = F9_CONSTRAINTS,
                   key_usage: x509.KeyUsage | None = None,
                   issuer: Device | None = None) -> Device:
        """Another YubiKey under this root (an attacker's own, bought in a shop), or under
        `issuer` (an intermediate, as newer devices have). `cn` and the extensions shape other
        certificates of the root too: an organisation CA's end entities (basic_constraints=
        UNSET leaves the extension out), or an intermediate CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        signer, name = (issuer.key, issuer.cert.subject) if issuer else (self.root_key,
                                                                         self.root.subject)
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(cn)).issuer_name(name)
                   .public_key(key.public_key())
                   .serial_number(serial or x509.random_serial_number())
                   .not_valid_before(self.start).not_valid_after(self.end))
        if basic_constraints is not UNSET:
            builder = builder.add_extension(basic_constraints, critical=True)
        if key_usage is not None:
            builder = builder.add_extension(key_usage, critical=True)
        return Device(key, builder.sign(signer, hashes.SHA256()))

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def attest(self, public_key: Any, **kw: Any) -> x509.Certificate:
        """A slot attestation by this CA's first device."""
        return Device(self.device_key, self.device).attest(public_key, **kw)

    def chain(self, public_key: Any, **kw: Any) -> tuple[bytes, bytes]:
        """(slot attestation DER, device f9 DER) of this CA's first device."""
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
