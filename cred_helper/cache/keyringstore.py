"""`--cache keyring`: entries in the OS keyring (Secret Service, Keychain, Credential Locker).

Keyrings cannot list their items, so an index item names the keys we stored. Importing
keyring is slow (it probes every backend), which is why this store never serves the fast path.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..errors import CacheError
from .entry import CorruptEntry, Entry

SERVICE = "cred-helper"
INDEX = "index"


class KeyringStore:
    name = "keyring"

    def __init__(self, warn: Callable[[str], None], index_lock: Callable) -> None:
        import keyring
        import keyring.errors

        self._keyring = keyring
        self._errors = keyring.errors
        self.warn = warn
        self._index_lock = index_lock

    def _call(self, fn: Callable, *args: str):
        try:
            return fn(SERVICE, *args)
        except self._errors.KeyringError as exc:
            raise CacheError(
                f"the OS keyring is not usable: {exc}",
                "unlock or start your keyring (Secret Service on Linux), or use --cache file",
            ) from None

    def load(self, key: str) -> Entry | None:
        text = self._call(self._keyring.get_password, key)
        if text is None:
            return None
        try:
            entry = Entry.from_json(text)
        except CorruptEntry as exc:
            self.warn(f"discarding unreadable keyring entry {key[:12]}: {exc}")
            self.delete(key)
            return None
        return entry if entry.key == key else None

    def _index(self) -> list[str]:
        text = self._call(self._keyring.get_password, INDEX)
        try:
            keys = json.loads(text) if text else []
        except (ValueError, RecursionError):  # damaged: the entries are found again on save
            keys = []
        return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []

    def _update_index(self, change: Callable[[list[str]], list[str]]) -> None:
        with self._index_lock():
            keys = change(self._index())
            if keys:
                self._call(self._keyring.set_password, INDEX, json.dumps(sorted(set(keys))))
                return
            try:  # nothing left: leave no cred-helper item behind (`logout --all`)
                self._call(self._keyring.delete_password, INDEX)
            except self._errors.PasswordDeleteError:
                pass

    def save(self, entry: Entry) -> None:
        self._call(self._keyring.set_password, entry.key, entry.to_json())
        self._update_index(lambda keys: [*keys, entry.key])

    def delete(self, key: str) -> None:
        try:
            self._call(self._keyring.delete_password, key)
        except self._errors.PasswordDeleteError:
            pass
        self._update_index(lambda keys: [k for k in keys if k != key])

    def entries(self) -> list[Entry]:
        return [e for k in self._index() if (e := self.load(k)) is not None]
