"""Checks a CSR's attestation proof (proof.py): that a registered hardware key authorized
exactly this request, recently, and (where the token holds attestation certificates) that the
key was made on a device whose maker vouches for it.

Two modes:
- "attested": the proof carries the slot's attestation certificate and the device (f9)
  certificate; they chain to a configured root, the attested key is the key that signed, and
  the attestation's extensions give the device serial and the key's PIN and touch policy.
- "registry-key": no certificates (SoftHSM2, tokens without attestation); the signing key is
  one the registry names. This proves possession of a registered key, nothing about where it
  lives: the policy decides whether that is enough.

Pure: the clock is an argument, the proof and CSR are attacker-controlled bytes, and every
failure is an Attestation with ok=False and a reason naming the check that failed.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .. import attestproof as wire
from ..x509names import unbounded
from . import yubico
from .verdict import NO_PROOF, Attestation, AttestationConfig

YUBICO_ARC = "1.3.6.1.4.1.41482.3"
FIRMWARE_OID = x509.ObjectIdentifier(YUBICO_ARC + ".3")
SERIAL_OID = x509.ObjectIdentifier(YUBICO_ARC + ".7")
POLICY_OID = x509.ObjectIdentifier(YUBICO_ARC + ".8")
FORM_FACTOR_OID = x509.ObjectIdentifier(YUBICO_ARC + ".9")
PIN_POLICIES = {1: "never", 2: "once", 3: "always"}
TOUCH_POLICIES = {1: "never", 2: "always", 3: "cached"}
FORM_FACTORS = {1: "USB-A Keychain", 2: "USB-A Nano", 3: "USB-C Keychain", 4: "USB-C Nano",
                5: "USB-C/Lightning Keychain", 0x81: "USB-A Keychain FIPS",
                0x82: "USB-A Nano FIPS", 0x83: "USB-C Keychain FIPS", 0x84: "USB-C Nano FIPS",
                0x85: "USB-C/Lightning Keychain FIPS"}
MIN_RSA_BITS = 2048


class CsrFactsLike(Protocol):
    """What verify() reads of facts.CsrFacts (the policy slice's type)."""

    proof: bytes | None
    key_sha256: str
    username: str
    subject_der: bytes
    created: float | None


class Failed(Exception):
    """One check failed; the message is the reason."""


@dataclass(frozen=True)
class DeviceFacts:
    """What a YubiKey attestation certificate says about the key and its device."""

    serial: int | None = None
    pin_policy: str = ""
    touch_policy: str = ""
    firmware: str = ""
    form_factor: str = ""


def spki(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def key_sha256(spki_der: bytes) -> str:
    return hashlib.sha256(spki_der).hexdigest()


def verify(facts: CsrFactsLike, config: AttestationConfig, now: float) -> Attestation:
    """What the CSR's proof shows (NO_PROOF without one); never raises on hostile input."""
    if facts.proof is None:
        return NO_PROOF
    mode = "registry-key"
    try:
        found = wire.decode(facts.proof)
        mode = "attested" if found.certs else "registry-key"
        payload = wire.decode_payload(found.payload)
        token_key = _load_key(payload.token_key)
        _check_signature(found, token_key)
        _check_binding(payload, facts)
        _check_time(payload.time, facts.created, now, config.max_age)
        device = _check_chain(found.certs, token_key, config, now) if found.certs else None
        user = _owner(payload.token_key, device, config, facts.username)
    except wire.ProofError as exc:
        return Attestation(mode, False, f"the attestation proof cannot be read: {exc}")
    except Failed as exc:
        return Attestation(mode, False, str(exc))
    except (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType):
        # cryptography parses a certificate's fields when they are first read: a name or an
        # extension that is not DER fails there, anywhere in the checks above.
        return Attestation(mode, False, "the attestation proof holds a certificate that "
                                        "cannot be read")
    if device is None:
        return Attestation(mode, True, f"signed by {user}'s registered key "
                                       f"{key_sha256(payload.token_key)[:16]} (no attestation "
                                       "certificates: possession of the key only)", user=user)
    return Attestation(mode, True, f"key attested by {_describe(device)}, registered to "
                                   f"{user}", user=user, serial=device.serial,
                       pin_policy=device.pin_policy, touch_policy=device.touch_policy)


def _describe(device: DeviceFacts) -> str:
    parts = [f"device serial {device.serial}" if device.serial is not None
             else "a device with no serial"]
    if device.firmware:
        parts.append(f"firmware {device.firmware}")
    if device.form_factor:
        parts.append(device.form_factor)
    parts.append(f"PIN policy {device.pin_policy or 'not stated'}")
    parts.append(f"touch policy {device.touch_policy or 'not stated'}")
    return ", ".join(parts)


# ---- the proof itself ------------------------------------------------------------------------

def _load_key(der: bytes) -> Any:
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise Failed("the proof's token key is not a public key cred-helper can read") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise Failed(f"the proof's token key is RSA-{key.key_size}, shorter than "
                     f"{MIN_RSA_BITS} bits")
    if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey,
                            rsa.RSAPublicKey)):
        raise Failed("the proof's token key is not an Ed25519, ECDSA or RSA key")
    if spki(key) != der:
        raise Failed("the proof's token key is not in canonical DER form")
    return key


def _fits(alg: str, key: Any) -> bool:
    if alg == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey)
    if alg in ("ES256", "ES384"):
        curve = ec.SECP256R1 if alg == "ES256" else ec.SECP384R1
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, curve)
    return alg == "RS256" and isinstance(key, rsa.RSAPublicKey)


def _check_signature(found: wire.Proof, key: Any) -> None:
    if not _fits(found.alg, key):
        raise Failed(f"the proof's algorithm {found.alg} does not fit its token key")
    try:
        if found.alg == "EdDSA":
            key.verify(found.sig, found.payload)
        elif found.alg in ("ES256", "ES384"):
            digest = hashes.SHA256() if found.alg == "ES256" else hashes.SHA384()
            key.verify(found.sig, found.payload, ec.ECDSA(digest))
        else:
            key.verify(found.sig, found.payload, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise Failed("the proof's signature does not verify with its token key") from None


def _check_binding(payload: wire.Payload, facts: CsrFactsLike) -> None:
    """The proof names this CSR's key and subject, so it cannot be moved to another request
    (whoever moves it would also need the CSR key's private half)."""
    if key_sha256(payload.csr_key) != str(facts.key_sha256).lower():
        raise Failed("the proof was made for another CSR key than this request's")
    if payload.subject != facts.subject_der:
        raise Failed("the proof was made for another subject than this request's")


def _check_time(when: int, created: float | None, now: float, max_age: int) -> None:
    """The proof was made when its request was: against the CSR's creationTimestamp, which
    kube-apiserver sets, and not against when the broker judges it, so that a request made
    while the broker was down, or saved for `approver check`, is judged as it was sent. A CSR
    object without a creation time (none from the API server) is held to now."""
    if created is None:
        age = now - when
        if age > max_age:
            raise Failed(f"the proof is {int(age)} s old, more than the {max_age} s allowed "
                         "(a replayed or stale proof)")
        if -age > max_age:
            raise Failed(f"the proof is dated {int(-age)} s in the future, more than the "
                         f"{max_age} s allowed")
        return
    lead = created - when
    if lead > max_age:
        raise Failed(f"the proof was made {int(lead)} s before its request, more than the "
                     f"{max_age} s allowed (a replayed or stale proof)")
    if -lead > max_age:
        raise Failed(f"the proof is dated {int(-lead)} s after its request was made, more than "
                     f"the {max_age} s allowed")


# ---- the attestation chain -------------------------------------------------------------------
#
# A YubiKey's chain has one shape, and only that shape is accepted: the slot's attestation
# certificate, signed by the device's f9 certificate, signed by a configured root (piv-go's
# Verify checks the same two links). A position is never inferred from what a certificate says
# about itself: the slot certificate is never an issuer, so a key that some real slot attests
# cannot vouch for another key. basicConstraints, keyUsage and path lengths apply to the f9
# certificate and the root as RFC 5280 applies them to an intermediate and a trust anchor, so
# that an end-entity certificate of an organisation's own CA listed in `roots` cannot stand in
# for a device certificate.

SLOT, DEVICE = "slot attestation certificate", "device (f9) certificate"
CHAIN_LENGTH = 2


def _roots(config: AttestationConfig) -> list[x509.Certificate]:
    found = []
    for pem in config.roots_pem or yubico.YUBICO_PIV_ROOTS:
        try:
            certs = x509.load_pem_x509_certificates(pem)
            for cert in certs:
                _ = cert.extensions  # parsed lazily: fail here, not mid-check
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            continue  # the policy slice checks roots when it loads them; skip, never crash
        found += certs
    return found


def _load_cert(der: bytes, what: str) -> x509.Certificate:
    try:
        cert = x509.load_der_x509_certificate(der)
        # Parsed lazily: make malformed names and extensions fail here, not mid-check.
        with unbounded():  # a name past X.509's bounds is still a name (x509names.py)
            _ = cert.extensions, cert.issuer, cert.subject
    except (ValueError, TypeError, x509.InvalidVersion, x509.DuplicateExtension,
            x509.UnsupportedGeneralNameType):
        raise Failed(f"the proof's {what} is not a readable X.509 certificate") from None
    return cert


def _in_time(cert: x509.Certificate, now: float, what: str) -> None:
    at = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise Failed(f"the attestation chain's {what} is not valid now (valid "
                     f"{cert.not_valid_before_utc:%Y-%m-%d} to "
                     f"{cert.not_valid_after_utc:%Y-%m-%d})")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Name chaining and the signature, as verify_directly_issued_by checks them."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _constraints(cert: x509.Certificate) -> x509.BasicConstraints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return None


def _signs_certificates(cert: x509.Certificate) -> bool:
    """keyUsage, where present, allows keyCertSign (RFC 5280 4.2.1.3)."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.key_cert_sign


@functools.cache
def _yubico_roots_der() -> frozenset[bytes]:
    return frozenset(x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
                     for pem in yubico.YUBICO_PIV_ROOTS)


def _is_yubico_root(root: x509.Certificate) -> bool:
    """Exactly one of Yubico's published roots (yubico.py), whether by default or listed."""
    return root.public_bytes(serialization.Encoding.DER) in _yubico_roots_der()


def root_problem(root: x509.Certificate) -> str | None:
    """Why a certificate cannot be an attestation root (a trust anchor that issues device
    certificates), or None. The policy refuses such a root when it loads it."""
    constraints = _constraints(root)
    if constraints is None or not constraints.ca:
        return "is not a CA certificate (basicConstraints with cA true)"
    if not _signs_certificates(root):
        return "may not sign certificates (its keyUsage lacks keyCertSign)"
    # Yubico's U2F root says pathlen 0 and still issued f9 certificates: piv-go lifts its
    # limit to 1, and so does this check, for that exact certificate alone.
    if constraints.path_length == 0 and not _is_yubico_root(root):
        return ("allows no intermediate certificate (pathLenConstraint 0), so it cannot "
                "issue the device certificates a YubiKey's chain has")
    return None


def _device_problem(device: x509.Certificate, root: x509.Certificate) -> str | None:
    """Why this f9 certificate cannot issue a slot attestation certificate, or None."""
    constraints = _constraints(device)
    if constraints is None:
        # Some YubiKey 4 f9 certificates carry no basicConstraints (piv-go treats them as
        # CAs). That is Yubico's practice, so it is accepted under Yubico's roots only: an
        # organisation's CA listed in `roots` may issue end-entity certificates without them.
        if _is_yubico_root(root):
            return None
        return ("has no basicConstraints, so it is not a CA (only under Yubico's own roots "
                "may a device certificate omit them)")
    if not constraints.ca:
        return "is marked as not a CA"
    if not _signs_certificates(device):
        return "may not sign certificates (its keyUsage lacks keyCertSign)"
    return None


def _check_chain(certs: tuple[bytes, ...], token_key: Any, config: AttestationConfig,
                 now: float) -> DeviceFacts:
    """slot attestation certificate -> device (f9) certificate -> a configured root, and
    the slot's certificate attests the key that signed the proof."""
    if len(certs) != CHAIN_LENGTH:
        raise Failed(f"the attestation chain holds {len(certs)} certificate"
                     f"{'' if len(certs) == 1 else 's'}, where a YubiKey's is exactly two: "
                     f"the {SLOT}, then the {DEVICE}")
    slot, device = _load_cert(certs[0], SLOT), _load_cert(certs[1], DEVICE)
    try:
        attested = spki(slot.public_key())
    except (ValueError, UnsupportedAlgorithm):
        raise Failed(f"the proof's {SLOT} holds an unreadable key") from None
    if attested != spki(token_key):
        raise Failed(f"the attestation chain's {SLOT} attests another key than the one "
                     "that signed the proof")
    _in_time(slot, now, SLOT)
    _in_time(device, now, DEVICE)
    if not _issued_by(slot, device):
        raise Failed(f"the attestation chain's {SLOT} is not signed by its {DEVICE}")
    at = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    roots = [root for root in _roots(config) if _issued_by(device, root)
             and root.not_valid_before_utc <= at <= root.not_valid_after_utc
             and root_problem(root) is None]
    if not roots:
        which = "Yubico's PIV roots" if not config.roots_pem else "the configured roots"
        raise Failed(f"the attestation chain does not lead to any of {which} (the {DEVICE} "
                     f"is issued by {_issuer_name(device)})")
    problems = [_device_problem(device, root) for root in roots]
    if all(problems):
        raise Failed(f"the attestation chain's {DEVICE} {problems[0]}")
    return _device_facts(slot)


def _issuer_name(cert: x509.Certificate) -> str:
    try:
        with unbounded():
            text = cert.issuer.rfc4514_string()
    except ValueError:
        text = "an unreadable name"
    return repr(text[:120])


# ---- what the attestation certificate says ---------------------------------------------------

def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    return getattr(value, "value", None)


def _der_uint(data: bytes) -> int | None:
    """A DER INTEGER holding a non-negative number of up to 8 bytes (a device serial)."""
    if len(data) < 3 or data[0] != 0x02 or data[1] != len(data) - 2 or data[1] > 9:
        return None
    body = data[2:]
    if body[0] & 0x80:
        return None  # negative
    return int.from_bytes(body, "big")


def _device_facts(cert: x509.Certificate) -> DeviceFacts:
    serial = firmware = form = pin = touch = None
    raw = _extension(cert, SERIAL_OID)
    if raw is not None:
        serial = _der_uint(raw)
        if serial is None:
            raise Failed("the attestation's serial number extension is malformed")
    raw = _extension(cert, FIRMWARE_OID)
    if raw is not None:
        if len(raw) != 3:
            raise Failed("the attestation's firmware version extension is malformed")
        firmware = ".".join(str(b) for b in raw)
    raw = _extension(cert, POLICY_OID)
    if raw is not None:
        if len(raw) != 2:
            raise Failed("the attestation's PIN and touch policy extension is malformed")
        # Values this module does not know (newer devices) stay visible but never equal a
        # policy's "once"/"always"/...: a rule that asks for one does not match them.
        pin = PIN_POLICIES.get(raw[0], f"unknown-0x{raw[0]:02x}")
        touch = TOUCH_POLICIES.get(raw[1], f"unknown-0x{raw[1]:02x}")
    raw = _extension(cert, FORM_FACTOR_OID)
    if raw is not None and len(raw) == 1:
        form = FORM_FACTORS.get(raw[0], f"form factor 0x{raw[0]:02x}")
    # Every YubiKey that attests at all (firmware 4.3 and later) writes these three. Without
    # them the "slot certificate" is some other certificate of a CA under a listed root (an
    # organisation's issuing CA and its TLS client certificates), not a device's attestation.
    missing = [what for what, value in (("firmware version", firmware), ("serial", serial),
                                        ("PIN and touch policy", pin)) if value is None]
    if missing:
        raise Failed("the slot certificate lacks what every YubiKey writes into its "
                     f"attestation ({', '.join(missing)}): it is no device's attestation")
    return DeviceFacts(serial, pin or "", touch or "", firmware or "", form or "")


# ---- whose key ---------------------------------------------------------------------------------

def _owner(token_key: bytes, device: DeviceFacts | None, config: AttestationConfig,
           requester: str) -> str:
    """The registry's owner of this key (by its fingerprint, or, attested, by the device's
    serial), who must be the requester."""
    digest = key_sha256(token_key)
    serial = device.serial if device is not None else None
    owners = {entry.user for entry in config.registry
              if (entry.key_sha256 and entry.key_sha256.replace(":", "").lower() == digest)
              or (serial is not None and entry.serial == serial)}
    if not owners:
        what = f"key {digest[:16]}"
        if device is not None and device.serial is not None:
            what += f" (device serial {device.serial})"
        raise Failed(f"the proof is signed by a key the registry does not name: {what}")
    if len(owners) > 1:
        raise Failed(f"the registry names this key for several users: "
                     f"{', '.join(sorted(owners))}")
    (owner,) = owners
    if owner != requester:
        raise Failed(f"the hardware key is registered to {owner!r}, not to the requester "
                     f"{requester!r}")
    return owner
