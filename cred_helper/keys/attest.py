"""`--attest-with pkcs11:...`: the proof that a hardware key authorized this CSR.

The token key signs the CSR's public key, subject and the time (attestproof.py is the
format); beside the signature go the attestation certificates the token holds for that key.
ykcs11 shows a YubiKey's PIV attestation as certificate objects: the slot's attestation labelled
"X.509 Certificate for PIV Attestation 9a" (9c, 9d, ...; its CKA_ID is not the key's slot id, so
it is found by label and by the key it attests), and the device's f9 certificate labelled
"X.509 Certificate for PIV Attestation". A token without them (SoftHSM2, an imported key)
gives a proof of possession only, and the person is told so.

The token is opened, and logged in once, only when a CSR is made; a cache hit never loads this.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .. import attestproof as wire
from ..errors import CredHelperError

SLOT_ATTESTATION_PREFIX = "X.509 Certificate for PIV Attestation "
DEVICE_ATTESTATION_LABEL = "X.509 Certificate for PIV Attestation"


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def sign(key: Any, data: bytes) -> tuple[str, bytes]:
    """(alg, signature) over `data` with a private key object (a token key's sign() runs on
    the token)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA", key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ES256", key.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(key.curve, ec.SECP384R1):
            return "ES384", key.sign(data, ec.ECDSA(hashes.SHA384()))
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256", key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    raise CredHelperError("the --attest-with key is not an Ed25519, P-256, P-384 or RSA key",
                          "name a key of one of those kinds")


def make_proof(key: Any, certs: tuple[bytes, ...], csr_key: Any, subject: x509.Name,
               now: float) -> bytes:
    """The extension value binding `csr_key` and `subject` to the hardware `key`. Pure but
    for the token's signature."""
    payload = wire.Payload(_spki(csr_key), subject.public_bytes(), int(now),
                           _spki(key.public_key())).encode()
    alg, sig = sign(key, payload)
    return wire.Proof(alg, payload, sig, certs).encode()


def attestation_certs(session: Any, public_key: Any) -> tuple[bytes, ...]:
    """(slot attestation, device attestation) DER for this key, or () where the token has
    no attestation for it."""
    import pkcs11.exceptions
    from pkcs11 import Attribute, ObjectClass

    slot = device = None
    wanted = _spki(public_key)
    for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
        try:
            label = str(obj[Attribute.LABEL])
            if label != DEVICE_ATTESTATION_LABEL and \
                    not label.startswith(SLOT_ATTESTATION_PREFIX):
                continue
            der = bytes(obj[Attribute.VALUE])
        except pkcs11.exceptions.PKCS11Error:
            continue  # ykcs11 makes attestations on reading; a key it cannot attest fails
        if label == DEVICE_ATTESTATION_LABEL:
            device = der
            continue
        try:
            attests = _spki(x509.load_der_x509_certificate(der).public_key())
        except (ValueError, TypeError):
            continue
        if attests == wanted:
            slot = der
    if slot is None:
        return ()
    return (slot, device) if device is not None else (slot,)


@contextlib.contextmanager
def open_attester(uri_text: str, module_setting: str, pin_source: str, interactive: bool,
                  env: Mapping[str, str], ask: Callable[[str], str],
                  say: Callable[[str], None]) -> Iterator[tuple[Any, tuple[bytes, ...]]]:
    """(signing key, attestation certificates) for the key a `pkcs11:` URI names, with one
    login; usable while the context is open."""
    from . import pkcs11 as tokens

    with tokens.open_session(uri_text, module_setting, pin_source, True, interactive, env,
                             ask, say) as (uri, info, token, session):
        handle = tokens.find_private_key(session, uri, info.describe())
        key = tokens.wrap(session, handle, info.describe(),
                          frozenset(token.slot.get_mechanisms()))
        certs = attestation_certs(session, key.public_key())
        if not certs:
            say(f"{tokens.describe_key(handle)} on {info.describe()} has no attestation "
                "certificate: the proof shows only that you hold the key (the broker's "
                "registry-key mode)")
        yield key, certs


class Prover:
    """prove(csr_key, subject) -> extension value; opens the token on first use and keeps it
    open (in `held`) until the issuance is done."""

    def __init__(self, uri_text: str, module_setting: str, pin_source: str,
                 interactive: bool, env: Mapping[str, str], ask: Callable[[str], str],
                 say: Callable[[str], None], held: contextlib.ExitStack,
                 clock: Callable[[], float]) -> None:
        self._open = lambda: open_attester(uri_text, module_setting, pin_source, interactive,
                                           env, ask, say)
        self._held = held
        self._clock = clock
        self._opened: tuple[Any, tuple[bytes, ...]] | None = None

    def __call__(self, csr_key: Any, subject: x509.Name) -> bytes:
        if self._opened is None:
            self._opened = self._held.enter_context(self._open())
        key, certs = self._opened
        return make_proof(key, certs, csr_key, subject, self._clock())
