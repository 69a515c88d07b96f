"""Reading and writing files only this user may touch. Stdlib only (used on the cache-hit path).

The cache holds private keys, so a directory or file that is a symlink, belongs to someone
else, or is open to group/others is refused rather than repaired: any of those means another
account could have read or planted it. A file of ours that is merely the wrong kind (a
directory where an entry belongs) is reported as WrongKind, so callers may discard it.

Writes go through a temporary file that a kill cannot leave behind for long: see write_private.
"""

from __future__ import annotations

import os
import stat
import time

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# Opening a FIFO for reading would wait for a writer; non-blocking, fstat refuses it instead.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class UnsafePath(Exception):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path} {why}")
        self.path = path
        self.why = why


class WrongKind(UnsafePath):
    """Ours and private, but a directory where a file belongs (or the reverse), a FIFO, ...

    Nobody else could have planted it, so a cache entry of this kind is damage to discard,
    while the cache directory itself being one is still refused.
    """


def check_private(st: os.stat_result, path: str, kind: str) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(path, "is a symlink")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise UnsafePath(path, f"is owned by uid {st.st_uid}, not you")
    if st.st_mode & 0o077:
        mode = f"{st.st_mode & 0o777:o}"
        raise UnsafePath(path, f"is readable or writable by group/others (mode {mode})")
    expected = stat.S_ISDIR if kind == "dir" else stat.S_ISREG
    if not expected(st.st_mode):
        raise WrongKind(path, f"is not a {'directory' if kind == 'dir' else 'regular file'}")


def check_dir(path: str) -> None:
    check_private(os.lstat(path), path, "dir")


# Far above anything cred-helper writes (an entry is a few KiB): a bigger file is damage, and
# is not read into memory.
MAX_READ = 4 * 1024 * 1024


def read_private(path: str) -> bytes:
    """The file's bytes; FileNotFoundError if absent, UnsafePath if it must not be trusted,
    OSError(EFBIG) if larger than MAX_READ."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafePath(path, "is a symlink") from None
        raise exc
    try:
        st = os.fstat(fd)
        check_private(st, path, "file")
        if st.st_size > MAX_READ:
            import errno  # only here: every import counts on the cache-hit path

            raise OSError(errno.EFBIG, "larger than any file cred-helper writes", path)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# Temporary files are named `.tmp-<writer's pid>-<random>`, so that a later run can tell one
# whose writer was killed (its PID is gone) from one being written right now, and sweep it.
# (O_TMPFILE + linkat would leave nothing at all, but linking through /proc/self/fd fails
# with EXDEV on some kernels and sandboxes, this one included, and AT_EMPTY_PATH needs a
# capability; a sweep works everywhere.)
TMP_PREFIX = ".tmp-"
# PIDs are reused, and a PID from another PID namespace sharing the directory means nothing
# here: a temporary file older than this is stale whoever holds its PID (a write takes
# milliseconds).
STALE_AGE = 300


def _stale(path: str, name: str, now: float) -> bool:
    pid = name[len(TMP_PREFIX):].split("-", 1)[0]
    if not pid.isdigit():
        return True  # not a name we make now (an older version's mkstemp name)
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        pass
    else:
        if _zombie(pid):
            return True
    try:
        return now - os.lstat(path).st_mtime > STALE_AGE
    except OSError:
        return False


def _zombie(pid: str) -> bool:
    """Killed but not yet reaped (its PID still answers kill(0)). Linux; elsewhere False.

    A killed writer whose parent died with it waits for init to reap it, which some
    container inits do late.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def sweep_stale(directory: str, now: float) -> int:
    """Remove temporary files whose writer was killed before renaming them; how many went."""
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    swept = 0
    for name in names:
        if name.startswith(TMP_PREFIX):
            path = os.path.join(directory, name)
            if _stale(path, name, now):
                try:
                    os.unlink(path)
                    swept += 1
                except FileNotFoundError:
                    pass
    return swept


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def _write_named(tmp: str, data: bytes) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def temp_path(directory: str) -> str:
    """A name for a short-lived file of this process: named so that sweep_stale removes it
    once this process is gone, whatever killed it."""
    return os.path.join(directory, f"{TMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}")


def write_private(path: str, data: bytes) -> None:
    """Atomically replace `path`: temporary file, fsync, rename, so readers never see half.

    Raises OSError (ENOSPC, EROFS, EACCES, a directory in the way, ...) having left no
    temporary file behind; a kill at any instant leaves at most one, which the next write or
    cache hit in this directory sweeps (see sweep_stale).
    """
    directory = os.path.dirname(path) or "."
    sweep_stale(directory, time.time())
    from ..atomicfile import commit  # not at the top: this module is on the cache-hit path

    tmp = temp_path(directory)
    commit(tmp, path, lambda: _write_named(tmp, data))
    dir_fd = os.open(directory, os.O_RDONLY | _CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def append_private(path: str, line: bytes, max_size: int) -> None:
    """Append one line (a single write, so concurrent appenders do not interleave)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o600)
    try:
        st = os.fstat(fd)
        check_private(st, path, "file")
        if st.st_size > max_size:
            os.ftruncate(fd, 0)
        os.write(fd, line)
    finally:
        os.close(fd)
