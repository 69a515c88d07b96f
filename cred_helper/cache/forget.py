"""`logout`: remove every file and keyring item cred-helper made for some entries, and count
them by kind.

An entry's traces, all named after its key: the credential (`<key>.json`, or a keyring item;
an access request's SSH key and certificate: `<key>.ssh` and the files of its Host block),
its refresh token (keyring, or `<key>.refresh`), the served log (`<key>.served`), the issuance
lock (`<key>.lock`), the key of a CSR still pending (`<key>.pending*`), and the fast paths'
files that name it (`<fast key>.alias`, `<warm key>.sshwarm`). `--all` also removes what
belongs to no single entry: OpenID providers' discovery copies (`<sha256>.provider`), the
keyring index's lock, and temporary files a killed run left (`.tmp-*`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import CacheError, CredHelperError, os_reason
from ..fastkey import parse_alias
from ..sshaccess.warm import SUFFIX as WARM_SUFFIX
from ..sshaccess.warm import entry_of as warm_entry
from .private import UnsafePath, check_dir, read_private
from .store import SecretStore, Store

_KEYED = re.compile(r"^([0-9a-f]{64})\.(json|ssh|lock|served|refresh|pending.*)$")
_SHARED = re.compile(r"^(\.tmp-.*|[0-9a-f]{64}\.provider|keyring-index\.lock)$")


@dataclass
class Removed:
    credentials: int = 0
    refresh_tokens: int = 0
    other_files: int = 0

    def describe(self) -> str:
        def count(n: int, what: str, plural: str) -> str:
            return f"{n} {what if n == 1 else plural}"

        return "removed " + ", ".join([
            count(self.credentials, "credential", "credentials"),
            count(self.refresh_tokens, "refresh token", "refresh tokens"),
            count(self.other_files, "other file", "other files")])


def forget(cache_dir: str, stores: Sequence[Store], secrets: SecretStore,
           wanted: Callable[[str], bool] | None) -> Removed:
    """Forget the entries whose profile `wanted` accepts; everything when it is None."""
    removed = Removed()
    chosen: list[tuple[Store, str]] = []
    for store in stores:
        try:
            found = store.entries()
        except CredHelperError:
            if store is stores[0]:  # the file cache must be readable; a keyring may be absent
                raise
            continue
        chosen += [(store, e.key) for e in found if wanted is None or wanted(e.profile)]
    keys = {key for _, key in chosen}
    names = _names(cache_dir)
    if wanted is None:
        keys |= {m.group(1) for n in names if (m := _KEYED.match(n))}

    everything = wanted is None
    for name in names:
        kind = _kind(cache_dir, name, keys, everything)
        if kind is None or not _unlink(os.path.join(cache_dir, name)):
            continue
        if kind in ("json", "ssh"):
            removed.credentials += name[:64] not in {k for _, k in chosen}  # unreadable ones
        elif kind == "refresh":
            removed.refresh_tokens += 1
        else:
            removed.other_files += 1
    for store, key in chosen:
        store.delete(key)  # the keyring's items; the files are gone already
        removed.credentials += 1
    for key in sorted(keys):
        removed.refresh_tokens += secrets.delete(key)  # in the keyring, where one works
    # Deleting keyring items takes the keyring index's lock, which makes its file again.
    for name in _names(cache_dir):
        if _kind(cache_dir, name, keys, everything) is not None:
            _unlink(os.path.join(cache_dir, name))
    return removed


def _names(cache_dir: str) -> list[str]:
    try:
        check_dir(cache_dir)
        return sorted(os.listdir(cache_dir))
    except FileNotFoundError:
        return []
    except UnsafePath:
        return []  # the file store has refused it already, with the reason


def _kind(cache_dir: str, name: str, keys: set[str], everything: bool) -> str | None:
    """What the file is if it is one to remove, else None."""
    if m := _KEYED.match(name):
        return m.group(2) if m.group(1) in keys else None
    # The fast paths' files: `get`'s alias, `cred-helper ssh`'s warm file (sshaccess/warm.py).
    named_by = {".alias": lambda data: (parse_alias(data) or ("",))[0],
                WARM_SUFFIX: warm_entry}
    for suffix, entry_of in named_by.items():
        if not name.endswith(suffix):
            continue
        if everything:
            return "alias"
        try:
            entry = entry_of(read_private(os.path.join(cache_dir, name)))
        except (OSError, UnsafePath):
            return None
        return "alias" if entry in keys else None
    if everything and _SHARED.match(name):
        return "shared"
    return None


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        return False  # not a file cred-helper made
    except OSError as exc:
        raise CacheError(f"cannot remove {path}: {os_reason(exc)}") from None
    return True
