"""The cache-hit path's shortcuts: `<fast key>.alias` files naming an entry and the apiVersion
to answer in (see fastkey.py for the fast key). Only the file cache has them; the fast path
never reads the keyring."""

from __future__ import annotations

import errno
from collections.abc import Callable

from ..errors import os_reason
from ..fastkey import alias_bytes, alias_path
from .private import write_private
from .sidefile import SideFiles

# A full or read-only disk, or a directory made read-only (mode 0500): the entry's save said
# so already when a credential was issued, and serving a cached one loses nothing but speed.
_DISK_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM)


class FastPathAliases:
    def __init__(self, cache_dir: str, warn: Callable[[str], None]) -> None:
        self.dir = cache_dir
        self.warn = warn
        self.side = SideFiles(warn)  # whatever damaged thing stands there is replaced

    def point(self, fast_key: str, key: str, api_version: str) -> None:
        """Point the alias at an entry (after a clean `get`: a hit must answer as it did).

        Called after the credential was printed, so it never fails the run: the shortcut only
        saves time, and a hit checks it again.
        """
        path = alias_path(self.dir, fast_key)
        if not self.side.clear_damage(path):  # said so: a directory holding files
            return
        try:
            write_private(path, alias_bytes(key, api_version))
        except (OSError, ValueError) as exc:
            if getattr(exc, "errno", None) not in _DISK_ERRORS:
                self.warn(f"could not write the cache shortcut {path}: {os_reason(exc)} "
                          "(every run takes the slower way until it is fixed)")
