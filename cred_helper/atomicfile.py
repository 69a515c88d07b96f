"""Replace a file whole or not at all: readers see the old content or the new, never half.

Stdlib only and cheap to import. replace_file is for the files setup writes (the kubeconfig,
the fast launcher); the cache's private files have their own writer (cache/private.py), which
also refuses unsafe paths and sweeps what a killed writer left behind, and shares `commit`.
"""

from __future__ import annotations

import os
from collections.abc import Callable


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


def replace_file(path: str, text: str, mode: int) -> None:
    """Write `text` to a temporary file beside `path`, fsync it, give it `mode`, and rename it
    over `path`. Raises OSError having left no temporary file behind."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".cred-helper-", dir=os.path.dirname(path) or ".")

    def write() -> None:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)

    commit(tmp, path, write)
