"""A cache entry's on-disk document: its checksum and its shape. Stdlib only, no `json`.

Both the cache-hit path (fastpath.py, which must not import `json`) and the full CLI
(entry.py) read entries, so the rules for what may be served live here once.

The file is the canonical JSON of the entry (sorted keys, no spaces, ASCII) with a SHA-256 of
exactly those bytes put in front as one more field:

    {"sha256":"<64 hex>",<the canonical body without its opening brace>

The checksum catches damage (a torn or flipped file), not tampering: whoever can write the
cache can already run code as this user, so no MAC key is kept; ownership and mode checks are
the defence there (private.py). Putting the field first lets a reader check it by slicing,
without re-encoding the document.
"""

from __future__ import annotations

from ..fastkey import is_key, sha256

TYPE_CHECKING = False  # typing itself is too slow to import on the hit path
if TYPE_CHECKING:
    from typing import Any

FORMAT = 2

_PREFIX = b'{"sha256":"'
_HEX_END = len(_PREFIX) + 64
_BODY_START = _HEX_END + 2  # after '",'

# Bounds that no real credential reaches: outside them an entry is damage, not a credential.
# Comparisons against them also refuse NaN and infinities, which compare false either way.
MAX_TIME = 2**34  # the year 2514
MAX_LIFETIME = 10 * 366 * 86400
# The ExecCredential status a cache entry may carry (expirationTimestamp is derived on serving).
STATUS_SHAPES = (frozenset({"token"}), frozenset({"clientCertificateData", "clientKeyData"}))


class Damaged(ValueError):
    """The stored document is not an intact, sane entry; the message says why (no secrets)."""


def seal(body: bytes) -> bytes:
    """The file bytes for a canonical JSON `body` (which starts with `{`)."""
    digest = sha256(body).hexdigest().encode()
    return _PREFIX + digest + b'",' + body[1:] + b"\n"


def unseal(data: bytes) -> bytes:
    """The canonical body of an intact file; Damaged if the checksum is missing or wrong."""
    if not data.startswith(_PREFIX) or data[_HEX_END:_BODY_START] != b'",' \
            or not data.endswith(b"\n"):
        raise Damaged("no checksum (an older format, or a damaged file)")
    body = b"{" + data[_BODY_START:-1]
    if sha256(body).hexdigest().encode() != data[len(_PREFIX):_HEX_END]:
        raise Damaged("checksum mismatch (a damaged file)")
    return body


def is_time(value: object) -> bool:
    """A number of seconds since the epoch that a sane file holds: not a bool, NaN, infinite
    or absurd."""
    return type(value) in (int, float) and 0 <= value <= MAX_TIME  # type: ignore[operator]


def _is_str(value: object, empty: bool = True) -> bool:
    return type(value) is str and (empty or value != "")


def check(doc: Any) -> None:
    """Raise Damaged unless `doc` (the parsed body) has the shape and sane values we write."""
    if type(doc) is not dict:
        raise Damaged("not an object")
    if doc.get("format") != FORMAT or type(doc.get("format")) is not int:
        raise Damaged("unknown format")
    if not is_key(doc.get("key")):
        raise Damaged("the key is not 64 hex digits")
    for name in ("profile", "issuer", "server", "source"):
        if not _is_str(doc.get(name)):
            raise Damaged(f"{name} is not a string")
    if doc.get("belongs_to", "") != "" and not is_key(doc["belongs_to"]):
        raise Damaged("belongs_to is not 64 hex digits")
    if not _is_str(doc.get("serial"), empty=False):
        raise Damaged("no serial")
    issued_at, not_after, ttl = doc.get("issued_at"), doc.get("not_after"), doc.get("ttl")
    if not (is_time(issued_at) and is_time(not_after)):
        raise Damaged("issued_at or not_after is not a finite time")
    if not issued_at <= not_after <= issued_at + MAX_LIFETIME:
        raise Damaged("not_after is before issued_at or absurdly far after it")
    if type(ttl) is not int or not 0 < ttl <= MAX_LIFETIME:
        raise Damaged("ttl is not a sane number of seconds")
    status = doc.get("status")
    if type(status) is not dict or frozenset(status) not in STATUS_SHAPES:
        raise Damaged("status is not a token or a client certificate and key")
    if not all(_is_str(v, empty=False) for v in status.values()):
        raise Damaged("status values are not non-empty strings")
    identity = doc.get("identity")
    if type(identity) is not dict or not all(type(k) is str for k in identity):
        raise Damaged("identity is not an object")
    if not _is_str(identity.get("username", "")):
        raise Damaged("identity username is not a string")
    groups = identity.get("groups", [])
    if type(groups) is not list or not all(type(g) is str for g in groups):
        raise Damaged("identity groups are not a list of strings")
