"""The per-entry issuance lock: `<key>.lock`, never the data file (readers take no lock)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import CacheError, CredHelperError, os_reason
from .filestore import ensure_private_dir
from .sidefile import SideFiles


class LockHeld(CredHelperError):
    """Another process holds the lock (it is issuing this credential) beyond the timeout."""


HINT = ("free space on that disk or make the directory writable, or choose another "
        "--cache-dir (or --cache none)")


@contextmanager
def exclusive(cache_dir: str, name: str, timeout: float, side: SideFiles) -> Iterator[None]:
    """Hold `<name>.lock` in `cache_dir`. A damaged lock file (a directory, a symlink, a file
    open to others or someone else's) is replaced first, with `side`'s warning: it holds
    nothing, and a symlink must never lead the lock to a file elsewhere. A directory there
    that holds files is not cred-helper's to delete: the run goes on without the lock (its
    warning asks to remove it), as commands started together then may each issue."""
    from filelock import FileLock, Timeout

    ensure_private_dir(cache_dir)
    path = os.path.join(cache_dir, f"{name}.lock")
    if not side.clear_damage(path):
        _can_write(cache_dir)
        yield
        return
    lock = FileLock(path, mode=0o600, timeout=timeout)
    try:
        try:
            lock.acquire()
        except Timeout:
            raise
        except OSError as exc:
            if not side.retry(path, exc):  # damaged in between (a second writer's mkdir)
                raise
            lock.acquire()
    except Timeout:  # before OSError: filelock's Timeout is a TimeoutError
        raise LockHeld(
            f"another cred-helper has held the lock {name[:12]}… for {int(timeout)}s",
            "it may be waiting for a CSR approval; wait for it, or stop it and try again",
        ) from None
    except OSError as exc:
        # Nothing is issued yet, and nothing could be kept: say so before anyone logs in.
        raise CacheError(f"cannot create the lock file {path}: {os_reason(exc)}", HINT) from None
    try:
        _can_write(cache_dir)
        yield
    finally:
        lock.release()


def _can_write(cache_dir: str) -> None:
    """Refuse before issuance a directory where nothing new can be made: a lock file left from
    an earlier run still opens in a directory made read-only since (mode 0500), and a CSR made
    then could not be remembered, nor its certificate kept."""
    from .private import temp_path

    probe = temp_path(cache_dir)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise CacheError(f"cannot write in the cache directory {cache_dir}: {os_reason(exc)}",
                         HINT) from None
    try:
        os.unlink(probe)
    except OSError:
        pass  # named so that a later write sweeps it (private.sweep_stale)
