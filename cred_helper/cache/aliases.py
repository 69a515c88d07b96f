"""The cache-hit path's shortcuts: `<fast key>.alias` files naming an entry and the apiVersion
to answer in (see fastkey.py for the fast key). Only the file cache has them; the fast path
never reads the keyring."""

from __future__ import annotations

from ..fastkey import alias_path
from .private import write_private


class FastPathAliases:
    def __init__(self, cache_dir: str) -> None:
        self.dir = cache_dir

    def point(self, fast_key: str, key: str, api_version: str) -> None:
        """Point the alias at an entry (after a clean `get`: a hit must answer as it did)."""
        write_private(alias_path(self.dir, fast_key), f"{key}\n{api_version}\n".encode())
