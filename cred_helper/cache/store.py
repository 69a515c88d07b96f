"""The interface every cache backend implements, so callers never branch on the backend."""

from __future__ import annotations

from typing import Protocol

from .entry import Entry


class Store(Protocol):
    """Credentials by cache key.

    `load` returns None for a missing entry and also for a corrupt one, which it discards with
    a warning; it raises CacheError only when using the cache would be unsafe.
    """

    name: str

    def load(self, key: str) -> Entry | None: ...

    def save(self, entry: Entry) -> None: ...

    def delete(self, key: str) -> None: ...

    def entries(self) -> list[Entry]: ...


class NullStore:
    """`--cache none`: nothing is written, every run issues a new credential."""

    name = "none"

    def load(self, key: str) -> Entry | None:
        return None

    def save(self, entry: Entry) -> None:
        pass

    def delete(self, key: str) -> None:
        pass

    def entries(self) -> list[Entry]:
        return []
