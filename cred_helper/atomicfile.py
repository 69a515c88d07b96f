"""Replace a file whole or not at all: readers see the old content or the new, never half.

Stdlib only (not on the cache-hit path). replace_file is for the files setup writes (the kubeconfig,
the fast launcher); the cache's private files have their own writer (cache/private.py), which
also refuses unsafe paths and sweeps what a killed writer left behind, and shares `commit`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

PREFIX = ".cred-helper-"
# mkstemp's names with our prefix: a kill between mkstemp and the rename leaves one, holding a
# copy of the file (a kubeconfig's tokens and keys); the next write here removes it.
_LEFT_BEHIND = re.compile(r"\.cred-helper-[a-z0-9_]{8}")
STALE = 600.0  # older than any write in progress


def commit(tmp: str, path: str, write: Callable[[], None]) -> None:
    """Run `write` (which fills `tmp`), then rename `tmp` over `path`. On any failure, an
    interrupt included, `tmp` is removed and the error raised."""
    try:
        write()
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def sweep(directory: str, now: float) -> None:
    """Remove the temporary files a killed writer left in `directory` (ours, and stale)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not _LEFT_BEHIND.fullmatch(name):
            continue
        path = os.path.join(directory, name)
        try:
            st = os.lstat(path)
            if st.st_uid == os.getuid() and now - st.st_mtime > STALE:
                os.unlink(path)
        except OSError:
            pass


def replace_file(path: str, text: str, mode: int) -> None:
    """Write `text` to a temporary file beside `path`, fsync it, give it `mode`, and rename it
    over `path`. Raises OSError having left no temporary file behind."""
    import tempfile

    directory = os.path.dirname(path) or "."
    sweep(directory, time.time())
    fd, tmp = tempfile.mkstemp(prefix=PREFIX, dir=directory)

    def write() -> None:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)

    commit(tmp, path, write)
