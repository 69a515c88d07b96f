"""URLs cred-helper will send a request to: parsed strictly, with one clean error for each way a
URL can be unusable, and the scheme rule OpenID providers must pass.

Pure and standard-library only, so that config.py can check an issuer URL without importing
the network edge (and without the old import circle through issuers/oidc.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import CredHelperError, UsageError

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class URL:
    """A URL that passed `parse`: a known scheme, a host, a port in range, nothing invisible."""

    scheme: str
    host: str  # without brackets, lower case
    port: int  # explicit or the scheme's default
    target: str  # path and query, at least "/"
    text: str  # the URL as given

    @property
    def origin(self) -> str:
        """scheme://host[:port], for messages: the server, never a path, query or password."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS.get(self.scheme)
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")


def parse(url: object, what: str, error: type[CredHelperError] = UsageError,
          schemes: tuple[str, ...] = ("https", "http")) -> URL:
    """`url` checked for use; else `error` saying why, naming `what` (e.g. "API server")."""
    if not isinstance(url, str) or not url:
        raise error(f"the {what} URL is empty or not text")
    shown = _printable(url)
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise error(f"the {what} URL {shown} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when out of range or not a number
        host = parts.hostname or ""
    except ValueError as exc:
        raise error(f"the {what} URL {shown} cannot be parsed: {exc}") from None
    if parts.scheme not in schemes:
        raise error(f"the {what} URL {shown} is not {' or '.join(s + '://' for s in schemes)}")
    if not host:
        raise error(f"the {what} URL {shown} names no host")
    if not host.isascii():
        raise error(f"the {what} URL {shown} has a non-ASCII host name",
                    "write the host name in its ASCII (punycode) form")
    if port == 0 or (port is None and parts.scheme not in DEFAULT_PORTS):
        raise error(f"the {what} URL {shown} has no usable port")
    if parts.username is not None or parts.password is not None:
        raise error(f"the {what} URL {_origin_only(parts)} carries a user name or password",
                    "credentials never go in a URL")
    if not _is_ip(host) and not all(c.isalnum() or c in ".-_" for c in host):
        raise error(f"the {what} URL {shown} has a malformed host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return URL(parts.scheme, host.lower(), port or DEFAULT_PORTS[parts.scheme], target, url)


def is_loopback(host: str) -> bool:
    """localhost or a loopback address: never proxied, the only place plain http is allowed
    (a name only where it resolves to loopback addresses alone: net.LoopbackHTTPConnection)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def provider_url_ok(url: object) -> bool:
    """The scheme rule for the OpenID provider and every URL its discovery document names:
    https, or http on loopback only (where a local provider runs)."""
    try:
        parsed = parse(url, "provider")
    except CredHelperError:
        return False
    return parsed.scheme == "https" or is_loopback(parsed.host)


def check_issuer_url(url: str, flag: str = "--oidc-issuer-url") -> str:
    """The issuer URL as given (a trailing slash is part of an issuer's identifier), if it
    passes the scheme rule."""
    parsed = parse(url, f"{flag}", UsageError)
    if parsed.scheme != "https" and not is_loopback(parsed.host):
        raise UsageError(f"{flag}: {url!r} is not an https:// URL",
                         "OpenID providers are reached over verified TLS (http only on loopback)")
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _printable(url: str) -> str:
    """The URL quoted for a message, without a password and cut to a sane length."""
    try:
        parts = urlsplit(url)
        if parts.password is not None or parts.username is not None:
            return _origin_only(parts)
    except ValueError:
        pass
    shown = repr(url)
    return shown if len(shown) <= 200 else shown[:200] + "…'"


def _origin_only(parts) -> str:
    netloc = parts.netloc.rpartition("@")[2]
    return repr(f"{parts.scheme}://{netloc}")
