"""The certificate signing request still pending for one cache entry: `<key>.pending`, 0600.

After an approval timeout (or a kill) the next run takes this CSR up again instead of making
another, so approvers see one request per person and the name they were told stays the one
that counts. It holds the CSR's private key (PKCS#8 PEM), so it lives only in the private cache
directory and goes as soon as the CSR is issued, denied or gone, or 24 hours after its
creationTimestamp, when Kubernetes removes pending CSRs.

Beside it, `<key>.pending-refused` remembers a renewal's CSR that was denied or failed, so
that while the cached certificate still works each kubectl command does not make another
request for the approver to refuse again. Only renewals read it; a run with nothing valid to
fall back on (or `login`) removes it and asks again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CacheError, os_reason, server_text
from .entrydoc import is_time
from .filestore import ensure_private_dir
from .private import write_private
from .sidefile import SideFiles

FORMAT = 1
LIFETIME = 24 * 3600  # Kubernetes' csrcleaner removes pending CSRs after 24 hours


@dataclass(frozen=True)
class PendingCsr:
    name: str
    key_pem: bytes = field(repr=False)
    common_name: str
    groups: tuple[str, ...]
    ttl: int
    key_kind: str
    created: float  # local clock when the CSR was sent
    created_server: float | None = None  # its creationTimestamp, when the server gave one

    def matches(self, common_name: str, groups: list[str] | tuple[str, ...], ttl: int,
                key_kind: str) -> bool:
        return (self.common_name, sorted(self.groups), self.ttl, self.key_kind) == (
            common_name, sorted(groups), ttl, key_kind)

    def expired(self, now: float) -> bool:
        born = self.created_server if self.created_server is not None else self.created
        return now >= born + LIFETIME

    def to_json(self) -> bytes:
        return json.dumps({
            "format": FORMAT, "name": self.name, "key": self.key_pem.decode("ascii"),
            "commonName": self.common_name, "groups": list(self.groups), "ttl": self.ttl,
            "keyKind": self.key_kind, "created": self.created,
            "createdServer": self.created_server,
        }).encode()


def _record(data: bytes) -> dict[str, Any] | None:
    """The JSON object of one of our records, or None when damaged or of another format."""
    try:
        doc: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def parse(data: bytes) -> PendingCsr | None:
    """The record in `data`, or None for anything damaged or of another format."""
    doc = _record(data)
    if doc is None:
        return None
    strings = ("name", "key", "commonName", "keyKind")
    if not all(isinstance(doc.get(k), str) and doc[k] for k in strings):
        return None
    groups, ttl = doc.get("groups"), doc.get("ttl")
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        return None
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
        return None
    created, server = doc.get("created"), doc.get("createdServer")
    if not is_time(created) or not (server is None or is_time(server)):
        return None
    try:
        key = doc["key"].encode("ascii")
    except UnicodeEncodeError:
        return None
    return PendingCsr(doc["name"], key, doc["commonName"], tuple(groups), ttl,
                      doc["keyKind"], float(created),
                      None if server is None else float(server))


@dataclass(frozen=True)
class Refusal:
    name: str  # the CSR that was refused
    why: str  # the approver's reason, as shown
    at: float  # local clock

    def to_json(self) -> bytes:
        return json.dumps({"format": FORMAT, "name": self.name, "why": self.why,
                           "at": self.at}).encode()


def parse_refusal(data: bytes) -> Refusal | None:
    """The refusal in `data`, or None for anything damaged or of another format."""
    doc = _record(data)
    if doc is None:
        return None
    name, why, at = doc.get("name"), doc.get("why"), doc.get("at")
    if not (isinstance(name, str) and name and isinstance(why, str) and is_time(at)):
        return None
    return Refusal(server_text(name, 253), server_text(why), float(at))


class PendingStore:
    """One entry's pending CSR in the cache directory.

    A record that is not a private file of ours (a directory, a symlink, open to others,
    someone else's) is never read: it is cleared with one warning (`side`), and the run makes
    a new CSR, as for a damaged record. A record open to others may have shown its key."""

    def __init__(self, cache_dir: str, key: str, side: SideFiles) -> None:
        self.dir = cache_dir
        self.path = os.path.join(cache_dir, f"{key}.pending")
        self.refused_path = f"{self.path}-refused"
        self.side = side

    def load(self, now: float) -> PendingCsr | None:
        """The pending CSR, or None (a damaged or expired record is removed)."""
        try:
            data = self.side.read(self.path)
        except OSError as exc:
            self.side.refuse(self.path, f"cannot be read ({os_reason(exc)})")
            return None
        if data is None:
            return None
        found = parse(data)
        if found is None or found.expired(now):
            self.drop()
            return None
        return found

    def save(self, pending: PendingCsr) -> None:
        """Raises OSError or CacheError when it cannot be kept (the caller goes on without)."""
        ensure_private_dir(self.dir)
        self.side.clear_damage(self.path)
        write_private(self.path, pending.to_json())

    def drop(self) -> None:
        _unlink(self.path)

    def refuse(self, refusal: Refusal) -> None:
        """Remember a renewal's refused CSR; on a disk that keeps nothing, nothing is kept."""
        try:
            ensure_private_dir(self.dir)
            self.side.clear_damage(self.refused_path)
            write_private(self.refused_path, refusal.to_json())
        except (OSError, CacheError):
            pass  # then the next renewal asks again: more requests, no harm

    def refusal(self, now: float) -> Refusal | None:
        """The refusal remembered for this entry, or None (a damaged one, or one older than
        a day, is removed)."""
        try:
            data = self.side.read(self.refused_path)
        except OSError:
            return None  # unreadable (EACCES, EIO): then the renewal asks again
        found = None if data is None else parse_refusal(data)
        if found is None or not found.at <= now < found.at + LIFETIME:
            self.forget_refusal()
            return None
        return found

    def forget_refusal(self) -> None:
        if self.side.clear_damage(self.refused_path):
            _unlink(self.refused_path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # gone already, or a read-only cache: a record expires on its own after a day


def pending_store(cache: str, cache_dir: str, key: str,
                  warn: Callable[[str], None]) -> PendingStore | None:
    """Where an entry's pending CSR is kept; None with `--cache none` (nothing is written)."""
    return None if cache == "none" else PendingStore(cache_dir, key, SideFiles(warn))
