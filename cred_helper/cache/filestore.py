"""`--cache file`: one `<key>.json` per credential in a 0700 directory, 0600 each."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import Any

from ..errors import CacheError, os_reason
from ..fastkey import parse_alias
from .entry import CorruptEntry, Entry
from .private import UnsafePath, WrongKind, check_dir, read_private, write_private
from .served import forget_served


def unsafe(exc: UnsafePath) -> CacheError:
    return CacheError(
        f"refusing to use the cache: {exc}",
        f"remove {exc.path} (cred-helper recreates it privately) or choose another --cache-dir",
    )


def not_saved(path: str, exc: OSError) -> CacheError:
    """A write that failed (full or read-only disk, no permission), named by path and reason."""
    return CacheError(f"cannot save to the cache: {path}: {os_reason(exc)}",
                      "free space or fix permissions there, or choose another --cache-dir")


def ensure_private_dir(path: str) -> None:
    """Create the cache directory 0700 if missing, and refuse one that is unsafe."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        check_dir(path)
    except UnsafePath as exc:
        raise unsafe(exc) from None
    except OSError as exc:
        raise CacheError(f"cannot create cache directory {path}: {os_reason(exc)}",
                         "choose another --cache-dir") from None


class FileStore:
    """Credentials as `<key>.json`. Another kind of checksummed entry (an access request's,
    sshaccess/store.py) is kept the same way under its own `suffix`, read by its own `parse`,
    which raises one of `damage` for anything that is not an intact entry we wrote."""

    name = "file"
    suffix = ".json"
    damage: tuple[type[Exception], ...] = (CorruptEntry,)

    def __init__(self, cache_dir: str, warn: Callable[[str], None]) -> None:
        self.dir = cache_dir
        self.warn = warn

    @staticmethod
    def parse(data: bytes) -> Any:
        return Entry.from_json(data)

    def _path(self, key: str) -> str:
        return os.path.join(self.dir, f"{key}{self.suffix}")

    def _dir_exists(self) -> bool:
        try:
            check_dir(self.dir)
        except FileNotFoundError:
            return False
        except UnsafePath as exc:
            raise unsafe(exc) from None
        return True

    def load(self, key: str) -> Any:
        """The entry (an Entry for credentials), or None."""
        if not self._dir_exists():
            return None
        path = self._path(key)
        try:
            entry = self.parse(read_private(path))
        except FileNotFoundError:
            return None
        except WrongKind as exc:
            self.warn(f"discarding cache entry {path}: it {exc.why}")
            self._discard(path)
            return None
        except UnsafePath as exc:
            raise unsafe(exc) from None
        except (*self.damage, OSError) as exc:
            why = os_reason(exc) if isinstance(exc, OSError) else exc
            self.warn(f"discarding unreadable cache entry {path}: {why}")
            self._discard(path)
            return None
        if entry.key != key:
            self.warn(f"discarding cache entry {path}: it belongs to another key")
            self._discard(path)
            return None
        return entry

    def _discard(self, path: str) -> None:
        """Remove a damaged entry: a file, or an empty directory where an entry belongs."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            try:
                os.rmdir(path)
            except OSError as exc:
                raise CacheError(f"{path} is a directory, not a cache entry, and cannot be "
                                 f"removed: {os_reason(exc)}", f"remove {path}") from None
        except OSError as exc:
            raise CacheError(f"cannot remove the damaged cache entry {path}: {os_reason(exc)}",
                             f"remove {path}") from None

    def save(self, entry: Any) -> None:
        """Keep `entry`; CacheError naming the path and the reason if it cannot be written."""
        ensure_private_dir(self.dir)
        path = self._path(entry.key)
        try:
            write_private(path, entry.to_bytes())
            forget_served(self.dir, entry.key)
        except OSError as exc:
            raise not_saved(path, exc) from None

    def delete(self, key: str) -> None:
        if not self._dir_exists():
            return
        self._discard(self._path(key))
        forget_served(self.dir, key)
        for alias in glob.glob(os.path.join(self.dir, "*.alias")):
            try:
                named = parse_alias(read_private(alias))
            except (OSError, UnsafePath):
                continue
            if named is None or named[0] == key:
                self._discard_quietly(alias)

    def _discard_quietly(self, path: str) -> None:
        try:
            os.unlink(path)
        except OSError:
            pass

    def entries(self) -> list[Any]:
        if not self._dir_exists():
            return []
        found = []
        for path in sorted(glob.glob(os.path.join(self.dir, f"*{self.suffix}"))):
            key = os.path.basename(path)[: -len(self.suffix)]
            entry = self.load(key)
            if entry is not None:
                found.append(entry)
        return found
