"""An OpenID provider's discovery document and JWKS, kept between runs as
`<sha256(issuer)>.provider` in the cache directory, so a refresh costs one token request
rather than three. A cached copy older than MAX_AGE is fetched again, an ID token signed by a
key the copy lacks refetches the JWKS (the provider rotated its keys), and an endpoint the copy
names that answers 404 refetches the discovery document (the provider moved it)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

from .filestore import ensure_private_dir
from .private import write_private
from .sidefile import SideFiles

MAX_AGE = 24 * 3600


class DiscoveryCache:
    def __init__(self, cache_dir: str, warn: Callable[[str], None]) -> None:
        self.dir = cache_dir
        self.warn = warn
        self.side = SideFiles(warn)

    def _path(self, issuer: str) -> str:
        return os.path.join(self.dir, hashlib.sha256(issuer.encode()).hexdigest() + ".provider")

    def load(self, issuer: str, now: float) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(discovery document, JWKS) if a copy younger than MAX_AGE is kept for `issuer`."""
        path = self._path(issuer)
        try:
            data = self.side.read(path)  # not a private file of ours: cleared, one warning
            if data is None:
                return None
            record = json.loads(data)
        except (OSError, ValueError, RecursionError):  # RecursionError: absurd nesting
            self.warn(f"ignoring the unreadable provider cache {path}")
            return None
        if not (isinstance(record, dict) and record.get("issuer") == issuer
                and isinstance(record.get("fetched_at"), (int, float))
                and isinstance(record.get("discovery"), dict)
                and isinstance(record.get("jwks"), dict)):
            self.warn(f"ignoring the malformed provider cache {path}")
            return None
        if not 0 <= now - record["fetched_at"] < MAX_AGE:
            return None
        return record["discovery"], record["jwks"]

    def save(self, issuer: str, discovery: dict[str, Any], jwks: dict[str, Any],
             now: float) -> None:
        ensure_private_dir(self.dir)
        record = {"issuer": issuer, "fetched_at": now, "discovery": discovery, "jwks": jwks}
        try:
            self.side.clear_damage(self._path(issuer))
            write_private(self._path(issuer), json.dumps(record).encode())
        except OSError:
            # A full or read-only disk: the copy only saves requests. The next run fetches
            # again, and the credential's own save says what went wrong.
            pass
