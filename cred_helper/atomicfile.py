"""Replacing a person's files whole or not at all, several of them together, keeping what the
file was (owner, group, mode) and a backup of it.

Stdlib only (not on the cache-hit path, though the cache's private writer shares `commit`).

- A file is written to a temporary file beside it, fsynced, given its mode, owner and group
  before any byte lands in it, and renamed over the old one: readers see the old content or
  the new, never half. A file that is not a regular file (a device, a FIFO, a directory) is
  refused, and so is one whose owner or group this process could not give the new file.
- `write_all` replaces several files together: every temporary file and backup is made first,
  and only then are they renamed into place, so a refusal, a full disk or an error leaves every
  file as it was. (A kill between two renames of one call, microseconds apart, is the only way
  to see one file new and the other old.)
- A backup is created exclusively (it never follows or reuses a name someone else made) under
  a name no other run can pick, already private when its first byte is written. It is filled as
  a temporary file and then linked to its name, so no backup is ever partial.
- Temporary files are named after their target. Callers hold the target's lock (filelock.py)
  while writing, so no other writer's temporary file for it can be live: `write_all` removes
  what a killed run left before it writes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO must not hang the read: fstat refuses it
MAX_READ = 64 << 20

# The temporary files of versions before the per-target names: a kill between mkstemp and the
# rename left one, holding a copy of the file; removed once they are surely not in progress.
_LEFT_BEHIND = re.compile(r"\.cred-helper-[a-z0-9_]{8}")
STALE = 600.0


class Refused(Exception):
    """A file this module will not write; the message says why, naming the file."""


@dataclass(frozen=True)
class Existing:
    """A regular file as it was read (through symlinks: `target` is the file itself)."""

    path: str
    target: str
    data: bytes
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True)
class Change:
    target: str  # the file to write (symlinks already followed)
    data: bytes
    mode: int  # for a new file; an existing file keeps its own
    old: Existing | None = None
    backup: bool = True


def commit(tmp: str, path: str, write: Callable[[], None]) -> None:
    """Run `write` (which fills `tmp`), then rename `tmp` over `path`. On any failure, an
    interrupt included, `tmp` is removed and the error raised."""
    try:
        write()
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def read_regular(path: str, max_size: int = MAX_READ) -> Existing | None:
    """The file at `path` (None if it does not exist); Refused if it is not a regular file or
    is larger than `max_size`."""
    target = os.path.realpath(path)
    try:
        fd = os.open(target, os.O_RDONLY | _CLOEXEC | _NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        if os.path.lexists(path) and not os.path.islink(path):
            raise
        return None  # absent, or a symlink to a file yet to be made (kubectl writes there)
    try:
        st = os.fstat(fd)  # of what was opened, not of a name that may change meanwhile
        if not stat.S_ISREG(st.st_mode):
            raise Refused(f"{path} is not a regular file ({_kind(st.st_mode)})")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > max_size:
                raise Refused(f"{path} is larger than {max_size >> 20} MiB")
            chunks.append(chunk)
    finally:
        os.close(fd)
    return Existing(path, target, b"".join(chunks), stat.S_IMODE(st.st_mode), st.st_uid,
                    st.st_gid)


def read_or_refuse(path: str, what: str, hint: str, max_size: int = MAX_READ
                   ) -> Existing | None:
    """read_regular, its refusals and errors as one UsageError naming `what`."""
    from .errors import UsageError, os_reason

    try:
        return read_regular(path, max_size)
    except Refused as exc:
        raise UsageError(f"{what}: {exc}", hint) from None
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path}: {os_reason(exc)}") from None


def not_a_file(path: str) -> str | None:
    """Why `path` (through symlinks) cannot be one of the files setup writes, or None: it
    exists and is not a regular file. A cheap look before any lock is made beside it (a lock
    beside /dev/null would land in /dev)."""
    try:
        st = os.stat(path)
    except OSError:
        return None  # absent, or unreadable: read_regular says which, under the lock
    return None if stat.S_ISREG(st.st_mode) else \
        f"{path} is not a regular file ({_kind(st.st_mode)})"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def ownership_problem(old: Existing, euid: int, groups: set[int]) -> str | None:
    """Pure: why this process cannot give a new copy of `old` its owner and group, or None.
    Root can; anyone else only their own uid and a group they are in."""
    if euid == 0:
        return None
    if old.uid != euid:
        return f"it belongs to uid {old.uid}, and setup runs as uid {euid}"
    if old.gid not in groups:
        return f"its group is gid {old.gid}, which uid {euid} is not in"
    return None


def check_ownership(old: Existing) -> None:
    why = ownership_problem(old, os.geteuid(), {os.getegid(), *os.getgroups()})
    if why:
        raise Refused(f"cannot rewrite {old.path} keeping its owner and group: {why}")


def _tag(target: str) -> str:
    return hashlib.sha256(os.path.basename(target).encode("utf-8", "surrogateescape")
                          ).hexdigest()[:12]


def temp_prefix(target: str) -> str:
    """The name every temporary file for `target` starts with (a fixed length, whatever the
    target's name)."""
    return f".cred-helper-{_tag(target)}-"


def _temps(target: str) -> re.Pattern[str]:
    return re.compile(re.escape(temp_prefix(target)) + r"[a-z0-9_]{8}\.tmp")


def sweep(target: str, owners: set[int]) -> list[str]:
    """Remove the temporary files a killed write of `target` left (the caller holds its lock,
    so none is in progress): regular files owned by `owners`. Returns their names."""
    directory = os.path.dirname(target) or "."
    pattern = _temps(target)
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        path = os.path.join(directory, name)
        try:
            if pattern.fullmatch(name):
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) and st.st_uid in owners:
                    os.unlink(path)
                    removed.append(name)
            elif _LEFT_BEHIND.fullmatch(name):
                st = os.lstat(path)
                if st.st_uid in owners and time.time() - st.st_mtime > STALE:
                    os.unlink(path)
        except OSError:
            pass
    return removed


def _fill(target: str, data: bytes, mode: int, owner: tuple[int, int] | None) -> str:
    """A temporary file beside `target` holding `data`, with `mode` and `owner` set before
    the data is written, fsynced."""
    import tempfile

    directory = os.path.dirname(target) or "."
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".tmp", dir=directory)
    _write_new(fd, tmp, data, mode, owner)
    return tmp


def _write_new(fd: int, path: str, data: bytes, mode: int, owner: tuple[int, int] | None
               ) -> None:
    """Fill the file just created as `fd`: owner and mode first, then the data, fsynced; on
    failure it is removed. Closes `fd`."""
    try:
        if owner is not None and (os.fstat(fd).st_uid, os.fstat(fd).st_gid) != owner:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)  # after fchown, which clears set-id bits
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(path)
        raise
    os.close(fd)


def _backup_name(target: str, now: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{target}.bak-{stamp}-{secrets.token_hex(4)}"


def make_backup(old: Existing, now: float) -> str:
    """A private copy of `old` (its owner and group, owner-only permissions) under a new,
    unguessable name; never a partial one."""
    mode = old.mode & 0o600
    owner = (old.uid, old.gid)
    tmp = _fill(old.target, old.data, mode, owner)
    try:
        for _ in range(8):
            name = _backup_name(old.target, now)
            try:
                os.link(tmp, name)  # exclusive: an existing name (a symlink too) is EEXIST
                return name
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP,
                                     errno.EMLINK):
                    raise
                return _backup_without_links(old, name, mode, owner)
        raise FileExistsError(errno.EEXIST, "no free backup name", old.target)
    finally:
        _unlink(tmp)


def _backup_without_links(old: Existing, name: str, mode: int, owner: tuple[int, int]) -> str:
    """Where the filesystem has no hard links: the backup itself created exclusively at its
    final mode (a kill can then leave it partial, never readable by others)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    _write_new(fd, name, old.data, mode, owner)
    return name


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_all(changes: list[Change], now: float) -> list[str]:
    """Replace every file in `changes`, or none of them; returns the backups made. Raises
    Refused or OSError having changed nothing (a backup made on the way is removed)."""
    for change in changes:
        if change.old is not None:
            check_ownership(change.old)
    staged: list[tuple[Change, str]] = []
    backups: list[str] = []
    done: list[Change] = []
    try:
        for change in changes:
            directory = os.path.dirname(change.target)
            if change.old is None:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            owners = {os.geteuid()} | ({change.old.uid} if change.old else set())
            sweep(change.target, owners)
            old = change.old
            mode = old.mode if old else change.mode
            owner = (old.uid, old.gid) if old else None
            staged.append((change, _fill(change.target, change.data, mode, owner)))
            if old is not None and change.backup:
                backups.append(make_backup(old, now))
        for change, tmp in staged:
            os.replace(tmp, change.target)
            done.append(change)
        for directory in {os.path.dirname(c.target) for c in changes}:
            _fsync_dir(directory)
    except BaseException:
        _roll_back(done)
        for _, tmp in staged:
            _unlink(tmp)
        for backup in backups:
            _unlink(backup)
        raise
    return backups


def _roll_back(done: list[Change]) -> None:
    """Put back the files already replaced when a later one failed: the old bytes again, or
    no file where there was none."""
    for change in reversed(done):
        try:
            if change.old is None:
                os.unlink(change.target)
            else:
                old = change.old
                os.replace(_fill(change.target, old.data, old.mode, (old.uid, old.gid)),
                           change.target)
        except OSError:
            pass
