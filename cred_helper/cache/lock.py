"""The per-entry issuance lock: `<key>.lock`, never the data file (readers take no lock)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import CacheError, CredHelperError, os_reason
from .filestore import ensure_private_dir


@contextmanager
def exclusive(cache_dir: str, name: str, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    ensure_private_dir(cache_dir)
    path = os.path.join(cache_dir, f"{name}.lock")
    lock = FileLock(path, mode=0o600, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:  # before OSError: filelock's Timeout is a TimeoutError
        raise CredHelperError(
            f"another cred-helper has held the lock {name[:12]}… for {int(timeout)}s",
            "it may be waiting for a CSR approval; wait for it, or stop it and try again",
        ) from None
    except OSError as exc:
        # Nothing is issued yet, and nothing could be kept: say so before anyone logs in.
        raise CacheError(
            f"cannot create the lock file {path}: {os_reason(exc)}",
            "free space on that disk or make the directory writable, or choose another "
            "--cache-dir (or --cache none)",
        ) from None
    try:
        yield
    finally:
        lock.release()
