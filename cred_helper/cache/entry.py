"""One cached credential and its on-disk form (the document rules are in entrydoc.py)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .entrydoc import FORMAT, Damaged, check, seal, unseal


class CorruptEntry(ValueError):
    """The stored text is not an intact entry we wrote (damaged, older format, insane values)."""


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a number")


@dataclass(frozen=True)
class Entry:
    key: str
    profile: str
    issuer: str
    issued_at: float
    not_after: float
    ttl: int
    # Unique per issuance: the served log names it, so a new credential starts a new log.
    serial: str
    # ExecCredential status fields, without expirationTimestamp (derived when served).
    status: dict[str, str]
    identity: dict[str, Any] = field(default_factory=dict)
    server: str = ""
    source: str = ""
    # fastkey.belongs_to: the profile and cluster it was issued for, checked by a cache hit
    # ("" in entries written before it existed: served by the full run only).
    belongs_to: str = ""

    def to_bytes(self) -> bytes:
        """The file content: canonical JSON sealed with its checksum (see entrydoc.py)."""
        body = json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True,
                          separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        return seal(body.encode("ascii"))

    def to_json(self) -> str:
        return self.to_bytes().decode("ascii")

    @classmethod
    def from_json(cls, text: str | bytes) -> Entry:
        """The entry in `text`; CorruptEntry (saying why, never what) unless intact and sane."""
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
        try:
            doc = json.loads(unseal(data), parse_constant=_no_constants)
            check(doc)
        except Damaged as exc:
            raise CorruptEntry(str(exc)) from None
        except (ValueError, RecursionError) as exc:
            raise CorruptEntry(f"not JSON ({exc.__class__.__name__})") from None
        doc.pop("format")
        try:
            return cls(**doc)
        except TypeError:
            raise CorruptEntry("fields no entry has") from None

    @property
    def username(self) -> str:
        return str(self.identity.get("username", ""))

    @property
    def groups(self) -> list[str]:
        return list(self.identity.get("groups", []))
