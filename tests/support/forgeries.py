"""Attestation proofs an attacker can build from their own valid parts (issue 20), for the unit
tests and the real control plane alike.

The scene: a test attestation root standing for Yubico's; alice's YubiKey under it (serial
12345678, registered to her); mallory's own YubiKey under the same root, bought in a shop, with
genuine slot and f9 certificates; and an organisation's CA that an admin added to `roots`, of
which mallory holds an end-entity certificate and its key (her employee certificate, say).
Mallory also holds alice's bootstrap credential, so she can create CSRs as alice; she never
touches alice's YubiKey."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from cred_helper.issuers.csr import build_request, subject_name
from cred_helper.keys.attest import make_proof
from tests.support.attestca import UNSET, AttestationCA, Device, der, slot_cert

ALICE, MALLORY = "alice@example.com", "mallory@example.com"
ALICE_SERIAL, MALLORY_SERIAL = 12345678, 55555555
ROOT_CN = "Test PIV Root CA Serial 263751"


def _p256() -> Any:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Forgery:
    """What goes into the CSR: the key that signs the proof, the certificates carried, and
    whom the CSR is created as (spec.username)."""

    token: Any
    certs: tuple[bytes, ...]
    user: str = ALICE


class Scene:
    def __init__(self) -> None:
        self.ca = AttestationCA(ROOT_CN)
        self.alice_device = self.ca.new_device(1001)
        self.alice_key = _p256()  # generated on alice's YubiKey: only she can sign with it
        self.alice_slot = self.alice_device.attest(self.alice_key.public_key(),
                                                   serial=ALICE_SERIAL, pin="once",
                                                   touch="always")
        self.mallory_device = self.ca.new_device(2002)
        self.mallory_key = _p256()  # on mallory's own YubiKey: she signs what she likes
        self.mallory_slot = self.mallory_device.attest(self.mallory_key.public_key(),
                                                       serial=MALLORY_SERIAL, pin="never",
                                                       touch="never")
        self.software = _p256()  # a key that can be copied: what attestation must exclude
        self.org = AttestationCA("Example Corp Root CA", root_path_length=None)

    def genuine(self) -> Forgery:
        """alice, her own YubiKey, as ykcs11 shows it: this one must pass."""
        return Forgery(self.alice_key, (der(self.alice_slot), der(self.alice_device.cert)))

    def fake_slot(self, key: Any, signer: Any, issuer: x509.Certificate, **kw: Any) -> bytes:
        """A slot attestation certificate for `key`, saying whatever mallory likes, signed
        with a key she holds."""
        kw = {"serial": ALICE_SERIAL, "pin": "always", "touch": "always", **kw}
        return der(slot_cert(key.public_key(), signer, issuer.subject, **kw))

    def org_entity(self, **kw: Any) -> Device:
        """mallory's end-entity certificate of the organisation's CA, and its key."""
        return self.org.new_device(cn=MALLORY, **kw)

    def forgeries(self) -> dict[str, Forgery]:
        """Each way found or tried to make the broker believe a key is alice's hardware key,
        by name. Every one must be refused with a reason naming the chain."""
        soft, ms, md = self.software, self.mallory_slot, self.mallory_device
        fake_under_mallory_slot = self.fake_slot(soft, self.mallory_key, ms)
        clear_ee = self.org_entity(basic_constraints=UNSET,
                                   key_usage=usage(digital_signature=True))
        not_ca_ee = self.org_entity(basic_constraints=x509.BasicConstraints(False, None))
        no_sign_ca = self.org_entity(basic_constraints=x509.BasicConstraints(True, None),
                                     key_usage=usage(digital_signature=True))
        evil = AttestationCA(ROOT_CN)  # mallory's own root, named as the real one
        evil_device = evil.new_device(3003)
        return {
            # The review's chain: a software key, "attested" by mallory's own slot key as
            # alice's serial, then mallory's genuine slot and f9 certificates.
            "software key as alice's serial, under mallory's real slot and f9":
                Forgery(soft, (fake_under_mallory_slot, der(ms), der(md.cert))),
            "the same, without the f9 certificate":
                Forgery(soft, (fake_under_mallory_slot, der(ms))),
            "the same, placed directly under mallory's f9 certificate":
                Forgery(soft, (fake_under_mallory_slot, der(md.cert))),
            "mallory's software key as hardware, PIN and touch always, as herself":
                Forgery(soft, (self.fake_slot(soft, self.mallory_key, ms,
                                              serial=MALLORY_SERIAL), der(ms), der(md.cert)),
                        user=MALLORY),
            "mallory's never/never key re-attested by itself as always/always":
                Forgery(self.mallory_key, (self.fake_slot(self.mallory_key, self.mallory_key,
                                                          ms, serial=MALLORY_SERIAL),
                                           der(ms), der(md.cert)), user=MALLORY),
            "the re-attested key, without the f9 certificate":
                Forgery(self.mallory_key, (self.fake_slot(self.mallory_key, self.mallory_key,
                                                          ms, serial=MALLORY_SERIAL), der(ms)),
                        user=MALLORY),
            "four: the forgery, mallory's slot and f9 certificates, and the root":
                Forgery(soft, (fake_under_mallory_slot, der(ms), der(md.cert),
                               der(self.ca.root))),
            "the two certificates the other way round":
                Forgery(self.alice_key, (der(self.alice_device.cert), der(self.alice_slot))),
            "alice's slot certificate twice":
                Forgery(self.alice_key, (der(self.alice_slot), der(self.alice_slot))),
            "the slot certificate alone":
                Forgery(self.alice_key, (der(self.alice_slot),)),
            "the root in the f9 position":
                Forgery(self.alice_key, (der(self.alice_slot), der(self.ca.root))),
            "an f9 certificate from a look-alike root of the same name":
                Forgery(soft, (self.fake_slot(soft, evil_device.key, evil_device.cert),
                               der(evil_device.cert))),
            "an end-entity certificate of the organisation's CA, without basicConstraints":
                Forgery(soft, (self.fake_slot(soft, clear_ee.key, clear_ee.cert),
                               der(clear_ee.cert))),
            "an end-entity certificate of the organisation's CA, marked not a CA":
                Forgery(soft, (self.fake_slot(soft, not_ca_ee.key, not_ca_ee.cert),
                               der(not_ca_ee.cert))),
            "a CA certificate of the organisation whose keyUsage forbids signing certificates":
                Forgery(soft, (self.fake_slot(soft, no_sign_ca.key, no_sign_ca.cert),
                               der(no_sign_ca.cert))),
        }


def usage(**on: bool) -> x509.KeyUsage:
    flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment",
                           "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign",
                           "encipher_only", "decipher_only"), False)
    return x509.KeyUsage(**{**flags, **on})


def request_pem(forgery: Forgery, groups: tuple[str, ...] = ("oncall",),
                now: float | None = None) -> tuple[bytes, Any]:
    """(the CSR's PEM, its private key) as the plugin would send it, carrying the proof."""
    csr_key = _p256()
    proof = make_proof(forgery.token, forgery.certs, csr_key.public_key(),
                       subject_name(forgery.user, list(groups)),
                       now if now is not None else time.time())
    return build_request(csr_key, forgery.user, list(groups), proof).encode(), csr_key
