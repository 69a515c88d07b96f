"""The interfaces every cache backend implements, so callers never branch on the backend.

`Store` keeps credentials by cache key (file.FileStore, keyringstore.KeyringStore, NullStore);
`SecretStore` keeps long-lived secrets, the refresh tokens, by the same key
(secrets.RefreshTokens, secrets.NoSecrets).
"""

from __future__ import annotations

from typing import Protocol

from .entry import Entry


class Store(Protocol):
    """Credentials by cache key.

    `load` returns None for a missing entry and also for a corrupt one, which it discards with
    a warning; it raises CacheError only when using the cache would be unsafe. `save` raises
    CacheError (naming the path and the reason) when the entry cannot be kept.
    """

    name: str

    def load(self, key: str) -> Entry | None: ...

    def save(self, entry: Entry) -> None: ...

    def delete(self, key: str) -> None: ...

    def entries(self) -> list[Entry]: ...


class SecretStore(Protocol):
    """Refresh tokens by cache key."""

    def load(self, key: str) -> str | None: ...

    def save(self, key: str, secret: str) -> str:
        """Keep `secret`; returns where ("keyring", a file's path, or "" if nowhere)."""
        ...

    def delete(self, key: str) -> bool:
        """Forget it everywhere it may be; whether there was one."""
        ...


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
