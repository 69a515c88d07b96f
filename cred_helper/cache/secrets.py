"""Long-lived secrets. Refresh tokens: in the OS keyring whenever one works, else in a 0600
file `<key>.refresh` beside the cache, only ever read and written under the entry's lock.
OIDC client secrets: read from the keyring, where the user put them."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import CredHelperError, os_reason
from .filestore import ensure_private_dir
from .private import write_private
from .sidefile import SideFiles
from .store import SecretStore

__all__ = ["NoSecrets", "RefreshTokens", "SecretStore", "client_secret"]

SERVICE = "cred-helper-refresh"
CLIENT_SECRET_SERVICE = "cred-helper-client-secret"


def client_secret_name(issuer_url: str, client_id: str) -> str:
    return f"{client_id}@{issuer_url}"


def client_secret(issuer_url: str, client_id: str) -> str:
    """The client secret stored in the keyring for this client of this provider."""
    name = client_secret_name(issuer_url, client_id)
    store = f"keyring set {CLIENT_SECRET_SERVICE} '{name}'"
    try:
        import keyring
        import keyring.errors

        secret = keyring.get_password(CLIENT_SECRET_SERVICE, name)
    except ImportError:
        secret = None
    except keyring.errors.KeyringError as exc:
        raise CredHelperError(f"no --oidc-client-secret-file, and the keyring cannot be read "
                              f"({type(exc).__name__})",
                              "pass --oidc-client-secret-file, or unlock the keyring") from None
    if not secret:
        raise CredHelperError(f"no client secret for {name}: no --oidc-client-secret-file, and "
                              "the keyring has none",
                              f"store it with `{store}` (it asks without echo), or pass "
                              "--oidc-client-secret-file")
    return secret.strip()


class RefreshTokens:
    """The SecretStore for `--cache file` and `keyring`: the OS keyring, else a 0600 file.

    `lost` hears (once per run, see service.Keeper) that a token could not be kept because
    the disk is full or read-only; the login it came with still succeeds.
    """

    def __init__(self, cache_dir: str, lost: Callable[[str], None] | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.dir = cache_dir
        self.lost = lost
        # A token file that is not a private file of ours is never read: it is cleared with
        # a warning, and the person logs in again (the token may have been seen by others).
        self.side = SideFiles(warn or _quiet)

    def _file(self, key: str) -> str:
        return os.path.join(self.dir, f"{key}.refresh")

    def _keyring(self):
        try:
            import keyring
            import keyring.errors
        except ImportError:
            return None, ()
        return keyring, (keyring.errors.KeyringError,)

    def load(self, key: str) -> str | None:
        keyring, errors = self._keyring()
        if keyring is not None:
            try:
                value = keyring.get_password(SERVICE, key)
                if value:
                    return value
            except errors:
                pass
        try:
            data = self.side.read(self._file(key))
        except OSError as exc:
            self.side.refuse(self._file(key), f"cannot be read ({os_reason(exc)})")
            return None
        try:
            return None if data is None else data.decode() or None
        except UnicodeDecodeError:  # damaged: no provider issued that; log in again instead
            self._remove_file(key)
            return None

    def save(self, key: str, secret: str) -> str:
        """Store `secret`; returns where ("keyring", the file's path, or "" if nowhere)."""
        keyring, errors = self._keyring()
        if keyring is not None:
            try:
                keyring.set_password(SERVICE, key, secret)
                self._remove_file(key)
                return "keyring"
            except errors:
                pass
        ensure_private_dir(self.dir)
        try:
            self.side.clear_damage(self._file(key))
            write_private(self._file(key), secret.encode())
        except OSError as exc:  # a full or read-only disk
            if self.lost is None:
                raise
            self.lost(f"{self._file(key)}: {os_reason(exc)}")
            return ""
        return self._file(key)

    def delete(self, key: str) -> bool:
        found = False
        keyring, errors = self._keyring()
        if keyring is not None:
            try:
                keyring.delete_password(SERVICE, key)
                found = True
            except errors:
                pass  # none there (PasswordDeleteError), or no keyring at all
        return self._remove_file(key) or found

    def _remove_file(self, key: str) -> bool:
        try:
            os.unlink(self._file(key))
        except FileNotFoundError:
            return False
        except OSError:  # a directory in its place: refused when read, with its warning
            return False
        return True


def _quiet(message: str) -> None:
    """No one to tell (`logout`, which removes these files anyway)."""


class NoSecrets:
    """`--cache none`: refresh tokens are not kept either."""

    def load(self, key: str) -> str | None:
        return None

    def save(self, key: str, secret: str) -> str:
        return ""

    def delete(self, key: str) -> bool:
        return False
