"""One cached credential and its on-disk JSON form.

Stdlib only: the cache-hit path reads the same document (see fastpath.py), so the fields it
reads (`format`, `not_after`, `ttl`, `serial`, `status`) must keep their meaning.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = 1


class CorruptEntry(ValueError):
    """The stored text is not an entry we wrote."""


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

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Entry:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise CorruptEntry(f"not JSON ({exc.__class__.__name__})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CorruptEntry("unknown format")
        doc.pop("format")
        try:
            entry = cls(**doc)
        except TypeError:
            raise CorruptEntry("unexpected fields") from None
        numbers = (entry.issued_at, entry.not_after, entry.ttl)
        if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
            raise CorruptEntry("times are not numbers")
        if not isinstance(entry.status, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entry.status.items()
        ):
            raise CorruptEntry("status is not a map of strings")
        if not isinstance(entry.serial, str) or not entry.serial:
            raise CorruptEntry("no serial")
        return entry

    @property
    def username(self) -> str:
        return str(self.identity.get("username", ""))

    @property
    def groups(self) -> list[str]:
        return list(self.identity.get("groups", []))
