"""The SSH user CA: signs an approved access request's key into an OpenSSH user certificate.

The certificate (cryptography's SSHCertificateBuilder; asyncssh cannot add extensions):
- its one principal is the request's name (the login name at the gateway), its key id
  `<name>:<username>`, its serial random;
- valid from a minute before signing (clock skew) to signing + the lifetime the policy
  allowed, never beyond the rule's maximum;
- no critical options; of the extensions only `permit-pty` (when the grant holds a shell)
  and `permit-port-forwarding` (when it holds ports): no agent or X11 forwarding, no user rc.

The CA key comes from a file (OpenSSH or PEM, unencrypted, from a Secret volume; refused when
anyone but its owner may read it, save a Secret volume's file for this pod's fsGroup) or a
`pkcs11:` URI, whose key signs on the token (keys/tokenkey.py: cryptography's
builder takes the token key objects as they are, tested on SoftHSM2 with Ed25519 and P-256).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_ssh_private_key,
)
from cryptography.hazmat.primitives.serialization import ssh as sshcert

from .. import accessrequest as ar
from ..errors import CredHelperError, UsageError, os_reason

BACKDATE = 60  # seconds before signing the certificate is valid from: clocks differ
MIN_RSA_BITS = 3072
PERMIT_PTY = b"permit-pty"
PERMIT_PORT_FORWARDING = b"permit-port-forwarding"


@dataclass(frozen=True)
class SshCa:
    key: Any = None  # a cryptography private key object (a token key signs on the token)
    source: str = ""  # where it came from, for messages

    @property
    def public_line(self) -> str:
        return self.key.public_key().public_bytes(Encoding.OpenSSH,
                                                  PublicFormat.OpenSSH).decode()

    @property
    def fingerprint(self) -> str:
        """As ssh-keygen -l shows it: SHA256:<unpadded base64 of the key blob's digest>."""
        blob = base64.b64decode(self.public_line.split()[1])
        return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class Issued:
    line: str  # the certificate, one OpenSSH line
    key_id: str
    serial: int
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    extensions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"keyId": self.key_id, "serial": str(self.serial),
                "principals": list(self.principals),
                "validAfter": ar.format_time(self.valid_after),
                "validBefore": ar.format_time(self.valid_before),
                "extensions": list(self.extensions)}


def extensions_for(grant: ar.Grant) -> tuple[bytes, ...]:
    """What the certificate permits: a pty only with a shell, forwarding only with ports."""
    found = []
    if grant.shell:
        found.append(PERMIT_PTY)
    if grant.ports:
        found.append(PERMIT_PORT_FORWARDING)
    return tuple(found)


def sign(ca: SshCa, public_key: Any, name: str, username: str, grant: ar.Grant, now: float,
         seconds: int, serial: int | None = None) -> Issued:
    """The user certificate for `public_key`, valid `seconds` from `now` (the caller has
    capped them at the rule's maximum)."""
    if not ar.MIN_SECONDS <= seconds <= ar.MAX_SECONDS:
        raise ValueError(f"a certificate lifetime of {seconds} s is out of range")
    start = int(now)
    serial = secrets.randbits(64) if serial is None else serial
    key_id = ar.key_id(name, username)
    principal = ar.principal(name)
    extensions = extensions_for(grant)
    builder = (sshcert.SSHCertificateBuilder()
               .public_key(public_key)
               .serial(serial)
               .type(sshcert.SSHCertificateType.USER)
               .key_id(key_id.encode())
               .valid_principals([principal.encode()])
               .valid_after(start - BACKDATE)
               .valid_before(start + seconds))
    for extension in extensions:
        builder = builder.add_extension(extension, b"")
    cert = builder.sign(ca.key)
    line = cert.public_bytes().decode("ascii").strip()
    return Issued(line, key_id, serial, (principal,), start - BACKDATE, start + seconds,
                  tuple(e.decode() for e in extensions))


def secret_volume_file(st: os.stat_result, groups: set[int]) -> bool:
    """A Secret volume's file as a non-root pod sees it (pure): kubelet makes it root's, with
    the pod's fsGroup as its group and group read added to the volume's defaultMode (0400
    becomes 0440), so that the pod's user can read it at all. No other user is in that group
    outside the pod; others get nothing."""
    return (stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_gid in groups
            and stat.S_IMODE(st.st_mode) & 0o137 == 0)


def read_ca_file(path: str, what: str, flag: str) -> bytes:
    """secretfile's rule (yours or root's, nothing for group and others), or a Secret volume's
    file mounted for this pod's group (secret_volume_file)."""
    from ..secretfile import UnsafeSecretFile, read_secret

    try:
        return read_secret(path, what, flag)
    except UnsafeSecretFile:
        groups = {os.getegid(), *os.getgroups()}
        if not secret_volume_file(os.stat(path), groups):
            raise
    with open(path, "rb") as fh:
        return fh.read(1 << 20)


def load_key_file(path: str, read: Callable[[str, str, str], bytes] = read_ca_file) -> SshCa:
    """The CA from a key file (OpenSSH or PEM PKCS#8/SEC1/PKCS#1, unencrypted)."""
    try:
        data = read(path, "SSH CA key", "--ssh-ca")
    except OSError as exc:
        raise UsageError(f"--ssh-ca: cannot read {path}: {os_reason(exc)}") from None
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            key = load_ssh_private_key(data, password=None)
        else:
            key = load_pem_private_key(data, password=None)
    except TypeError:
        raise UsageError(f"--ssh-ca: {path} is encrypted",
                         "the broker has nobody to ask for a passphrase: mount the key "
                         "unencrypted from a Secret, or keep it on a token (pkcs11:)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise UsageError(f"--ssh-ca: {path} is not an OpenSSH or PEM private key") from None
    return SshCa(check_ca_key(key, f"--ssh-ca {path}"), f"the key file {path}")


def check_ca_key(key: Any, where: str) -> Any:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in (
            "secp256r1", "secp384r1", "secp521r1"):
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= MIN_RSA_BITS:
        return key
    raise UsageError(f"{where}: an SSH CA key must be Ed25519, ECDSA (P-256/384/521) or RSA "
                     f"of at least {MIN_RSA_BITS} bits")


@contextlib.contextmanager
def open_ca(setting: str, module: str, pin_source: str, env: Mapping[str, str],
            say: Callable[[str], None]):
    """The SshCa `setting` names (a file, or a `pkcs11:` URI whose key stays open, logged in
    once, while the context is)."""
    if not setting.startswith("pkcs11:"):
        yield load_key_file(setting)
        return
    from ..keys.pkcs11 import open_key

    def no_terminal(prompt: str) -> str:
        raise CredHelperError("the SSH CA token needs a PIN and the broker has no terminal",
                              "pass --pin-source env:VAR or file:PATH")

    with open_key(setting, module, pin_source, False, env, no_terminal, say) as key:
        yield SshCa(check_ca_key(key, f"--ssh-ca {setting}"), f"the token key {setting}")
