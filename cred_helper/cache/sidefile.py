"""The small files beside a cache entry: damage to one costs one warning, never the credential.

Beside `<key>.json` the cache keeps `<key>.served` (the 401 rule), `<fast key>.alias` (the
cache hit's shortcut), `<key>.pending` and `<key>.pending-refused` (a CSR still in flight),
`<key>.lock`, `<key>.refresh` (a refresh token without a keyring) and `<sha256>.provider` (an
OpenID provider's documents). When one of them is not a private regular file of ours (a
directory, a symlink, dangling or not, a file open to group/others, someone else's), its
content is not trusted, as an entry's would not be. Unlike a damaged cache directory, nothing
is lost with it that the run cannot make again (a record of who was served, a shortcut, a CSR,
a login), so the name is cleared and the run goes on, with one warning naming the file. Only
the name: a symlink's target is never opened or touched, and a directory that holds anything
is left for its owner to look at (then the run goes on without that file).

Every path handed here lies in the cache directory, which was checked private (ours, 0700)
before: only this user, or root, can have put anything there.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from ..errors import os_reason
from .private import UnsafePath, check_private, read_private

# What opening a damaged side file raises before check_private could look at it: a symlink
# under O_NOFOLLOW, a directory opened for writing, a path through a file.
DAMAGE_ERRNOS = (errno.ELOOP, errno.EISDIR, errno.ENOTDIR, errno.ENXIO)


def damage(path: str) -> str | None:
    """What is wrong with what stands at `path` (as UnsafePath.why says it), or None when it
    is absent or a private regular file of ours."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):  # said first: its mode is beside the point
        return "is a directory"
    try:
        check_private(st, path, "file")
    except UnsafePath as exc:
        return exc.why
    return None


class SideFiles:
    """Reads and repairs side files for one run, saying once per file what was wrong."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self._told: set[str] = set()

    def read(self, path: str) -> bytes | None:
        """The file's bytes; None when it is absent, or damaged (then cleared, with a warning).

        Other read failures (EACCES, EIO) are OSError for the caller."""
        try:
            return read_private(path)
        except FileNotFoundError:
            return None
        except UnsafePath as exc:
            self.refuse(path, exc.why)
            return None
        except OSError as exc:
            if exc.errno != errno.EFBIG:
                raise
            self.refuse(path, "is larger than any file cred-helper writes")
            return None

    def refuse(self, path: str, why: str | None = None) -> bool:
        """Clear the damaged `path` where that is safe, warning once; whether it is gone.

        What lstat shows is said in preference to `why` (the failure that led here)."""
        why = damage(path) or why or "is not a file cred-helper can use"
        gone, left = _clear(path)
        if path not in self._told:
            self._told.add(path)
            if gone:
                self.warn(f"ignoring {path}: it {why}; removed it (it is made again when "
                          "needed)")
            else:
                self.warn(f"ignoring {path}: it {why} and cannot be removed ({left}); "
                          f"remove it yourself")
        return gone

    def clear_damage(self, path: str) -> bool:
        """Before opening `path` for writing or locking: refuse whatever damaged thing stands
        there. True when the path is now free or a private file of ours."""
        why = damage(path)
        return why is None or self.refuse(path, why)

    def retry(self, path: str, exc: OSError) -> bool:
        """After an open of `path` failed with `exc`: True when that was damage now cleared,
        so the caller may try once more."""
        if exc.errno not in DAMAGE_ERRNOS:
            return False
        return self.clear_damage(path) and damage(path) is None


def _clear(path: str) -> tuple[bool, str]:
    """(whether `path` is gone, why not): the name only, never what a symlink points at."""
    try:
        os.unlink(path)
        return True, ""
    except FileNotFoundError:
        return True, ""
    except IsADirectoryError:
        pass
    except OSError as exc:
        if exc.errno != errno.EPERM:  # Linux's unlink(2) of a directory
            return False, os_reason(exc)
    try:
        os.rmdir(path)
        return True, ""
    except FileNotFoundError:
        return True, ""
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False, "a directory that is not empty"
        return False, os_reason(exc)
