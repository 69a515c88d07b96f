"""The SSH key of one access request: a fresh Ed25519 key made for it alone (its private half in
OpenSSH's own format, for the cache and for ssh), or the public half of a key on a token
(`--ssh-key pkcs11:...`), which ssh reaches through an agent (`ssh-add -s MODULE`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ..errors import UsageError


@dataclass(frozen=True)
class SshKey:
    public_line: str  # "ssh-ed25519 AAAA..." with no comment
    private_openssh: bytes = field(default=b"", repr=False)  # b"" for a token key

    @property
    def on_token(self) -> bool:
        return not self.private_openssh


def public_line(public: Any) -> str:
    return public.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode("ascii")


def fresh() -> SshKey:
    key = ed25519.Ed25519PrivateKey.generate()
    return SshKey(public_line(key.public_key()),
                  key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))


def on_token(uri: str, module: str, pin_source: str, env: Mapping[str, str],
             ask: Callable[[str], str], say: Callable[[str], None]) -> SshKey:
    """The public half of the token key `uri` names. OpenSSH 9.2 reads P-256 token keys through
    PKCS#11 and skips Ed25519 ones, so only P-256 is taken."""
    from ..keys.manage import find_public
    from ..keys.pkcs11 import open_session

    with open_session(uri, module, pin_source, False, False, env, ask, say) as (
            parsed, info, _, session):
        public = find_public(session, parsed, info.describe())
    if not (isinstance(public, ec.EllipticCurvePublicKey)
            and isinstance(public.curve, ec.SECP256R1)):
        raise UsageError(f"--ssh-key: the key {uri} names is not ECDSA P-256",
                         "OpenSSH uses P-256 keys from a token (it skips Ed25519 ones): "
                         "generate one with `cred-helper keys generate URI --type p256`")
    return SshKey(public_line(public))
