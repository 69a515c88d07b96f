"""Reading and writing files only this user may touch. Stdlib only (used on the cache-hit path).

The cache holds private keys, so a directory or file that is a symlink, belongs to someone
else, or is open to group/others is refused rather than repaired: any of those means another
account could have read or planted it.
"""

from __future__ import annotations

import os
import stat

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class UnsafePath(Exception):
    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path} {why}")
        self.path = path
        self.why = why


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
        raise UnsafePath(path, f"is not a {'directory' if kind == 'dir' else 'regular file'}")


def check_dir(path: str) -> None:
    check_private(os.lstat(path), path, "dir")


def read_private(path: str) -> bytes:
    """The file's bytes; FileNotFoundError if absent, UnsafePath if it must not be trusted."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafePath(path, "is a symlink") from None
        raise exc
    try:
        check_private(os.fstat(fd), path, "file")
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_private(path: str, data: bytes) -> None:
    """Atomically replace `path`: temporary file, fsync, rename, so readers never see half."""
    import tempfile

    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
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
