"""kubectl's lock on a kubeconfig file, taken around setup's read and write.

client-go (`tools/clientcmd/loader.go`, lockFile) locks a kubeconfig by creating `FILE.lock`
exclusively (O_CREATE|O_EXCL), holds it while `kubectl config set-*` reads and writes every
file of the KUBECONFIG list (locked in sorted order), and removes it afterwards; a kubectl that
finds the lock taken fails at once. filelock's SoftFileLock speaks the same protocol (an
exclusive create, a removal on release), so holding it keeps kubectl out, and kubectl's lock
keeps setup waiting. It also writes its own holder into the file, which lets a later setup
take over a lock whose holder was killed; kubectl's own lock is empty, and is never taken
over. The profile file and the fast launcher are locked the same way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .errors import CredHelperError, os_reason

WAIT = 20.0  # seconds: kubectl holds its lock for milliseconds; a longer hold is a stale one


def lock_name(path: str) -> str:
    return path + ".lock"


@contextlib.contextmanager
def holding(paths: list[str], wait: float = WAIT) -> Iterator[None]:
    """Hold `path.lock` for every path (in sorted order, as kubectl takes them), creating a
    missing directory for one (0700) as client-go does."""
    from filelock import SoftFileLock, Timeout

    with contextlib.ExitStack() as stack:
        for path in sorted(set(paths)):
            name = lock_name(path)
            try:
                os.makedirs(os.path.dirname(name), mode=0o700, exist_ok=True)
                stack.enter_context(SoftFileLock(name, timeout=wait, mode=0o600))
            except Timeout:
                raise CredHelperError(
                    f"{path} is locked by another writer ({name} has existed for "
                    f"{wait:.0f} s)",
                    f"a kubectl or setup still running holds it; if none is, remove {name} "
                    "(a killed kubectl leaves it behind) and run setup again") from None
            except OSError as exc:
                raise CredHelperError(f"cannot lock {path}: cannot create {name}: "
                                      f"{os_reason(exc)}",
                                      "check the directory's permissions") from None
        yield
