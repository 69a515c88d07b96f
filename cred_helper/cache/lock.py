"""The per-entry issuance lock: `<key>.lock`, never the data file (readers take no lock)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import CredHelperError
from .filestore import ensure_private_dir


@contextmanager
def exclusive(cache_dir: str, name: str, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    ensure_private_dir(cache_dir)
    lock = FileLock(os.path.join(cache_dir, f"{name}.lock"), mode=0o600, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise CredHelperError(
            f"another cred-helper has held the lock {name[:12]}… for {int(timeout)}s",
            "it may be waiting for a CSR approval; wait for it, or stop it and try again",
        ) from None
    try:
        yield
    finally:
        lock.release()
