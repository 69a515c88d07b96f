"""The types the broker's parts pass between them: what a CSR's attestation proved, what the
policy decided, and the attestation settings a policy file carries.

The proof (written by the plugin with `--attest-with`, checked by the broker) travels inside the
signed CSR as a non-critical requested extension under attestproof.PROOF_OID, so that it cannot
be moved to another request: Go's CSR parser keeps such an extension, and kube-apiserver
returns it byte for byte in `spec.request` (DESIGN.md; a PKCS#10 attribute written by
cryptography is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass, field

APPROVE, DENY, MANUAL = "approve", "deny", "manual"


@dataclass(frozen=True)
class RegistryEntry:
    """Whose hardware key this is: by the SHA-256 of its public key (SPKI DER, hex), or by the
    serial number of the device its attestation names."""

    user: str
    key_sha256: str = ""
    serial: int | None = None


@dataclass(frozen=True)
class AttestationConfig:
    roots_pem: tuple[bytes, ...] = ()  # attestation roots; Yubico's PIV roots by default
    registry: tuple[RegistryEntry, ...] = ()
    max_age: int = 300  # seconds a proof's timestamp stays fresh (and how far ahead it may be)


@dataclass(frozen=True)
class Attestation:
    """What a CSR's proof showed. `mode`: "none" (no proof in the CSR), "attested" (signed by a
    hardware key whose attestation chains to a configured root), "registry-key" (signed by a key
    the registry names, with no attestation chain: the weaker mode). `ok` is False when the proof
    is present but fails; `reason` says why, or what was proved."""

    mode: str
    ok: bool
    reason: str
    user: str = ""  # the registry's owner of the key, when found
    serial: int | None = None
    pin_policy: str = ""  # "never", "once", "always" (from the attestation, when it says)
    touch_policy: str = ""  # "never", "always", "cached"


NO_PROOF = Attestation("none", False, "the request carries no attestation")


@dataclass(frozen=True)
class Decision:
    action: str  # APPROVE, DENY or MANUAL
    rule: str  # the name of the rule that decided ("" when no rule matched)
    reason: str
    details: dict = field(default_factory=dict)
