"""The settings of an access request and of the Host block that uses it: flags over the profile
(`[clusters.NAME]`, the same table as the cluster credential's), over defaults. Every value is
checked here, and an error names the flag or profile key it came from.

    namespace          the namespace asked for (required)
    pods               pod names or globs (flag only; none: what the rule allows)
    session-ttl        how long the certificate lives: 30m (10m to 24h)
    gateway            the gateway's host:port (22 when no port)
    gateway-host-key   the gateway's host key(s): OpenSSH public key lines, or a file of them
    gateway-host-ca    or the CA that signs the gateway's host certificates (a line, or a file)
    ssh-user-ca        the SSH user CA the broker signs with (a line, or a file): a certificate
                       from any other CA is refused before it is kept
    ssh-key            ed25519 (a fresh key per request, the default) or a pkcs11: URI
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import accessrequest as ar
from ..durations import parse_duration
from ..errors import UsageError

DEFAULT_SECONDS = 1800
PROFILE_KEYS = ("namespace", "session-ttl", "gateway", "gateway-host-key", "gateway-host-ca",
                "ssh-user-ca", "ssh-key")
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclass(frozen=True)
class Gateway:
    host: str
    port: int

    @property
    def known_hosts_name(self) -> str:
        """How known_hosts names it (OpenSSH's own spelling)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class SshSettings:
    namespace: str
    pods: tuple[str, ...]
    seconds: int
    reason: str
    ssh_key: str  # "ed25519" or a pkcs11: URI
    user_ca: str  # one OpenSSH public key line
    gateway: Gateway | None
    host_keys: tuple[str, ...]  # OpenSSH public key lines of the gateway
    host_ca: str  # or the line of the CA of its host certificates
    alias: str  # the Host block's name


def resolve(flags: Mapping[str, Any], profile: Mapping[str, Any], cluster: str,
            read: Any = None) -> SshSettings:
    """From click's flags (None where not given) and the profile's table. `read(path)` reads
    a file a key names (tests pass their own)."""
    read = read or _read_text

    def get(key: str) -> tuple[Any, str] | None:
        value = flags.get(key.replace("-", "_"))
        if value not in (None, (), ""):
            return value, f"--{key}"
        if key in profile:
            return profile[key], f"profile key {key}"
        return None

    found = get("namespace")
    if found is None:
        raise UsageError("no namespace to ask for", "pass --namespace NS (or set namespace in "
                         "the profile)")
    namespace = _string(found)
    if not ar.is_namespace(namespace):
        raise UsageError(f"{found[1]}: {namespace!r} is not a namespace name")
    pods = tuple(flags.get("pod") or ())
    for pod in pods:
        if not ar.is_pod_pattern(pod):
            raise UsageError(f"--pod: {pod!r} is not a pod name or a glob of one",
                             "lower-case letters, digits, '-', '.', and * or ? as globs")
    seconds = _seconds(get("session-ttl"))
    reason = flags.get("reason") or ""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in reason) or len(reason) > ar.MAX_TEXT:
        raise UsageError(f"--reason: at most {ar.MAX_TEXT} characters on one line")
    found = get("ssh-key")
    ssh_key = _string(found) if found else "ed25519"
    if ssh_key != "ed25519" and not ssh_key.startswith("pkcs11:"):
        raise UsageError(f"{found[1] if found else '--ssh-key'}: {ssh_key!r} is not ed25519 "
                         "or a pkcs11: URI")
    found = get("ssh-user-ca")
    if found is None:
        raise UsageError("no SSH user CA to check the certificate against",
                         "set ssh-user-ca in the profile: the broker's CA public key (a line "
                         "from its .pub file, or the file's path)")
    user_cas = _key_lines(found, read)
    if len(user_cas) != 1:
        raise UsageError(f"{found[1]}: name exactly one SSH user CA key")
    gateway = None
    found = get("gateway")
    if found is not None:
        gateway = _gateway(found)
    host_keys: tuple[str, ...] = ()
    host_ca = ""
    found_key, found_ca = get("gateway-host-key"), get("gateway-host-ca")
    if found_key is not None:
        host_keys = _key_lines(found_key, read)
    if found_ca is not None:
        cas = _key_lines(found_ca, read)
        if len(cas) != 1:
            raise UsageError(f"{found_ca[1]}: name exactly one host CA key")
        host_ca = cas[0]
    if gateway is not None and not host_keys and not host_ca:
        raise UsageError("the gateway's host key is not pinned",
                         "set gateway-host-key (or gateway-host-ca) in the profile: cred-helper "
                         "never trusts a host key on first use")
    alias = flags.get("host_alias") or f"{cluster or 'cred-helper'}-{namespace}"
    if not _ALIAS.fullmatch(alias):
        raise UsageError(f"--host-alias: {alias!r} is not a plain host alias",
                         "letters, digits, '.', '_' and '-'")
    return SshSettings(namespace, pods, seconds, reason, ssh_key, user_cas[0], gateway,
                       host_keys, host_ca, alias)


def _read_text(path: str) -> str:
    with open(os.path.expanduser(path), encoding="utf-8") as fh:
        return fh.read(1 << 20)


def _string(found: tuple[Any, str]) -> str:
    value, where = found
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: expected a string")
    return value


def _seconds(found: tuple[Any, str] | None) -> int:
    if found is None:
        return DEFAULT_SECONDS
    value, where = found
    try:
        seconds = value if type(value) is int else parse_duration(str(value))
    except ValueError:
        seconds = -1
    if not ar.MIN_SECONDS <= seconds <= ar.MAX_SECONDS:
        raise UsageError(f"{where}: {value!r} is not a duration from 10m to 24h")
    return seconds


def _gateway(found: tuple[Any, str]) -> Gateway:
    text = _string(found)
    where = found[1]
    host, port = text, "22"
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("22" if closed and not rest else "x")
        if not is_ip(host):
            port = "x"  # brackets hold an IPv6 address, nothing else
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535 or not host or not (
            _HOST.fullmatch(host) or is_ip(host)):
        raise UsageError(f"{where}: {text!r} is not host:port", "e.g. gateway.example.com:2222")
    return Gateway(host, int(port))


def is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _key_lines(found: tuple[Any, str], read: Any) -> tuple[str, ...]:
    """OpenSSH public key lines, from the value itself or the file it names; comments and
    options dropped, each key loaded (a line that is not a key is refused)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    text = _string(found)
    where = found[1]
    if not any(c.isspace() for c in text.strip()):  # a path; a key line has a space
        try:
            text = read(text)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{where}: cannot read {text}: {exc}") from None
    lines = []
    for raw in text.splitlines():
        parts = raw.split()
        if not parts or parts[0].startswith("#"):
            continue
        line = " ".join(parts[:2])
        try:
            load_ssh_public_key(line.encode("ascii"))
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
            raise UsageError(f"{where}: {parts[0][:40]!r}... is not an OpenSSH public key "
                             "line") from None
        lines.append(line)
    if not lines:
        raise UsageError(f"{where}: holds no OpenSSH public key")
    return tuple(lines)
