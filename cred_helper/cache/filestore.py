"""`--cache file`: one `<key>.json` per credential in a 0700 directory, 0600 each."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable

from ..errors import CacheError
from .entry import CorruptEntry, Entry
from .private import UnsafePath, check_dir, read_private, write_private
from .served import forget_served


def unsafe(exc: UnsafePath) -> CacheError:
    return CacheError(
        f"refusing to use the cache: {exc}",
        f"remove {exc.path} (cred-helper recreates it privately) or choose another --cache-dir",
    )


def ensure_private_dir(path: str) -> None:
    """Create the cache directory 0700 if missing, and refuse one that is unsafe."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        check_dir(path)
    except UnsafePath as exc:
        raise unsafe(exc) from None
    except OSError as exc:
        raise CacheError(f"cannot create cache directory {path}: {exc.strerror}",
                         "choose another --cache-dir") from None


class FileStore:
    name = "file"

    def __init__(self, cache_dir: str, warn: Callable[[str], None]) -> None:
        self.dir = cache_dir
        self.warn = warn

    def _path(self, key: str) -> str:
        return os.path.join(self.dir, f"{key}.json")

    def _dir_exists(self) -> bool:
        try:
            check_dir(self.dir)
        except FileNotFoundError:
            return False
        except UnsafePath as exc:
            raise unsafe(exc) from None
        return True

    def load(self, key: str) -> Entry | None:
        if not self._dir_exists():
            return None
        path = self._path(key)
        try:
            entry = Entry.from_json(read_private(path))
        except FileNotFoundError:
            return None
        except UnsafePath as exc:
            raise unsafe(exc) from None
        except (CorruptEntry, OSError) as exc:
            self.warn(f"discarding unreadable cache entry {path}: {exc}")
            self._discard(path)
            return None
        if entry.key != key:
            self.warn(f"discarding cache entry {path}: it belongs to another key")
            self._discard(path)
            return None
        return entry

    def _discard(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def save(self, entry: Entry) -> None:
        ensure_private_dir(self.dir)
        write_private(self._path(entry.key), entry.to_json().encode())
        forget_served(self.dir, entry.key)

    def delete(self, key: str) -> None:
        if not self._dir_exists():
            return
        self._discard(self._path(key))
        forget_served(self.dir, key)
        for alias in glob.glob(os.path.join(self.dir, "*.alias")):
            try:
                if read_private(alias).split(b"\n", 1)[0] == key.encode():
                    self._discard(alias)
            except (OSError, UnsafePath):
                continue

    def entries(self) -> list[Entry]:
        if not self._dir_exists():
            return []
        found = []
        for path in sorted(glob.glob(os.path.join(self.dir, "*.json"))):
            key = os.path.basename(path)[: -len(".json")]
            entry = self.load(key)
            if entry is not None:
                found.append(entry)
        return found
