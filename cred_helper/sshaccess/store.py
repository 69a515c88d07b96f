"""Access requests and their certificates in the cache directory, kept like credentials.

`<key>.ssh` (0600, crash-safe writes, the body's checksum in front: cache/entrydoc.py) holds one
request: while it waits for a decision (so the next run takes it up instead of making another)
and, once signed, its certificate until it ends. It holds the request's private SSH key, so it
lives only in the private cache directory. What ssh reads is made from it under
`ssh/<alias>/` (the key, the certificate, the pinned known_hosts) with `ssh/<alias>.conf`, the
Host block, and made again whenever it differs: a damaged copy is repaired by the next run.

`status` lists these entries beside the credentials; `logout` removes them and their files,
and the files of any Host block whose entry is gone (`--all`: every one, and the locks).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..cache.entrydoc import Damaged, is_time, seal, unseal
from ..cache.filestore import FileStore, ensure_private_dir, not_saved
from ..cache.private import UnsafePath, read_private, write_private
from ..errors import CacheError, os_reason
from ..fastkey import is_key

FORMAT = "ssh-1"
PENDING, ISSUED = "pending", "issued"
LIFETIME = 24 * 3600  # a request nobody decided in a day is not taken up again
SSH_DIR = "ssh"
LOCK_SECONDS = 30.0  # another run writing the same alias's files takes milliseconds


@dataclass(frozen=True)
class SshEntry:
    key: str
    profile: str
    alias: str
    server: str
    name: str  # the access request
    state: str  # PENDING or ISSUED
    created: float  # local clock when the request was sent
    seconds: int
    namespace: str
    pods: tuple[str, ...]
    reason: str
    username: str
    groups: tuple[str, ...]
    ssh_key: str  # "ed25519" or the token key's URI
    public_line: str
    private_openssh: str = field(default="", repr=False)  # "" for a token key
    certificate: str = ""
    issued_at: float = 0.0
    # Issued: min(the certificate's end, receipt + the lifetime asked). Pending: when the
    # request is no longer taken up (LIFETIME after it was made).
    not_after: float = 0.0
    grant: dict = field(default_factory=dict)

    # ---- what `status` and `logout` read of every entry ------------------------------------

    @property
    def issuer(self) -> str:
        return "ssh" if self.state == ISSUED else "ssh (pending)"

    @property
    def identity(self) -> dict[str, Any]:
        return {"username": self.username, "groups": list(self.groups),
                "accessRequest": self.name, "namespace": self.namespace}

    @property
    def source(self) -> str:
        return self.name

    def to_bytes(self) -> bytes:
        body = json.dumps({"format": FORMAT, **asdict(self)}, sort_keys=True,
                          separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        return seal(body.encode("ascii"))

    @classmethod
    def from_bytes(cls, data: bytes) -> SshEntry:
        """The entry; Damaged (saying why, never what) unless intact and sane."""
        try:
            doc = json.loads(unseal(data))
        except (ValueError, RecursionError) as exc:
            raise Damaged(f"not JSON ({type(exc).__name__})") from None
        if not isinstance(doc, dict) or doc.pop("format", None) != FORMAT:
            raise Damaged("unknown format")
        try:
            entry = cls(**{**doc, "pods": tuple(doc.get("pods", ())),
                           "groups": tuple(doc.get("groups", ()))})
        except TypeError:
            raise Damaged("fields no entry has") from None
        why = _insane(entry)
        if why:
            raise Damaged(why)
        return entry


def _insane(entry: SshEntry) -> str | None:
    strings = ("profile", "alias", "server", "name", "namespace", "reason", "username",
               "ssh_key", "public_line", "private_openssh", "certificate")
    if not is_key(entry.key):
        return "the key is not 64 hex digits"
    if not all(type(getattr(entry, f)) is str for f in strings):
        return "a field is not a string"
    if entry.state not in (PENDING, ISSUED) or not entry.name or not entry.public_line:
        return "no request"
    if not all(is_time(t) for t in (entry.created, entry.issued_at, entry.not_after)):
        return "a time is not a finite time"
    if type(entry.seconds) is not int or not 0 < entry.seconds <= 86400:
        return "the lifetime is not sane"
    if not all(type(x) is str for x in (*entry.pods, *entry.groups)):
        return "pods or groups are not strings"
    if entry.state == ISSUED and not (entry.certificate and entry.not_after >= entry.issued_at):
        return "an issued entry without its certificate"
    if not isinstance(entry.grant, dict):
        return "the grant is not an object"
    return None


@dataclass(frozen=True)
class Paths:
    """Where ssh reads one alias's files."""

    dir: str  # ssh/<alias>
    key: str  # the private key (a key from a file)
    public: str  # the public key (a key on a token: ssh finds it in the agent)
    certificate: str
    known_hosts: str
    conf: str  # ssh/<alias>.conf


class SshStore(FileStore):
    """`<key>.ssh` entries, kept as the file cache keeps credentials."""

    suffix = ".ssh"
    damage = (Damaged,)

    @staticmethod
    def parse(data: bytes) -> SshEntry:
        return SshEntry.from_bytes(data)

    def load(self, key: str) -> SshEntry | None:
        return super().load(key)

    def path(self, key: str) -> str:
        return self._path(key)

    def paths(self, alias: str) -> Paths:
        base = os.path.join(self.dir, SSH_DIR, alias)
        return Paths(base, os.path.join(base, "id"), os.path.join(base, "id.pub"),
                     os.path.join(base, "id-cert.pub"),
                     os.path.join(base, "known_hosts"),
                     os.path.join(self.dir, SSH_DIR, f"{alias}.conf"))

    def put_files(self, paths: Paths, files: dict[str, bytes]) -> None:
        """Write each file (path -> content) that differs, 0600, in private directories,
        under the alias's lock: runs for other scopes under one Host name (another --pod)
        write the same files, and must leave one run's set, never a key with another's
        certificate."""
        from ..cache.lock import exclusive
        from ..cache.sidefile import SideFiles

        for directory in (os.path.dirname(paths.conf), paths.dir):
            ensure_private_dir(directory)
        alias = os.path.basename(paths.dir)
        with exclusive(os.path.dirname(paths.conf), alias, LOCK_SECONDS, SideFiles(self.warn)):
            for path, data in files.items():
                try:
                    if read_private(path) == data:
                        continue
                except FileNotFoundError:
                    pass
                except (UnsafePath, OSError):
                    _remove(path)  # ours to repair: a private directory only we can write
                try:
                    write_private(path, data)
                except OSError as exc:
                    raise not_saved(path, exc) from None

    def delete(self, key: str) -> None:
        """The entry, and the files of the alias whose Host block it wrote last (found by
        the block's marker, so that this works after the entry itself is gone)."""
        _remove(self.path(key))
        for alias, written_by in self._blocks():
            if written_by == key:
                self._remove_files(alias)

    def delete_orphans(self, locks: bool = False) -> int:
        """The files of every Host block whose entry is gone (removed, or discarded as
        damaged: its key and certificate would still let plain ssh in until the certificate
        ends); with `locks`, the aliases' lock files too. How many files went."""
        removed = 0
        for alias, written_by in self._blocks():
            if written_by is None or not os.path.exists(self.path(written_by)):
                removed += self._remove_files(alias)
        if locks:
            for lock in glob.glob(os.path.join(self.dir, SSH_DIR, "*.lock")):
                removed += _remove(lock)
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(self.dir, SSH_DIR))
        return removed

    def _blocks(self) -> list[tuple[str, str | None]]:
        """(alias, the entry key its Host block's marker names, or None) for each block."""
        found = []
        for conf in sorted(glob.glob(os.path.join(self.dir, SSH_DIR, "*.conf"))):
            try:
                lines = read_private(conf).decode("utf-8", "replace").splitlines()
            except (OSError, UnsafePath):
                continue
            keys = [line[len(MARKER):] for line in lines if line.startswith(MARKER)]
            found.append((os.path.basename(conf)[:-len(".conf")],
                          keys[0] if keys and is_key(keys[0]) else None))
        return found

    def _remove_files(self, alias: str) -> int:
        paths = self.paths(alias)
        removed = sum(_remove(path) for path in (paths.key, paths.public, paths.certificate,
                                                 paths.known_hosts, paths.conf))
        with contextlib.suppress(OSError):
            os.rmdir(paths.dir)
        return removed


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CacheError(f"cannot remove {path}: {os_reason(exc)}", f"remove {path}") from None
    return True


MARKER = "# cred-helper entry "


def marker(key: str) -> str:
    """The line in a Host block's file that says which entry wrote it."""
    return MARKER + key
