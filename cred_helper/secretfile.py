"""Reading a secret file the user points at (bootstrap token, client secret, PIN, bootstrap
kubeconfig, client key), refused as ssh refuses a private key others could read.

It must belong to the user (or root, as a Kubernetes Secret volume's files do) and its mode
must grant group and others nothing: a secret that others can read is already spent, and
using it anyway teaches nobody to fix it. Symlinks are followed (a Secret volume is made of
them); the file they lead to is what is checked.
"""

from __future__ import annotations

import os
import stat

from .errors import CredHelperError

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
MAX_SIZE = 1 << 20  # no secret file is larger; a bigger one is a mistake (or /dev/zero)


class UnsafeSecretFile(CredHelperError):
    """A secret file that others own or can read."""


def problem(st: os.stat_result) -> str | None:
    """Pure: why a file with this stat must not be trusted with a secret, or None."""
    # A pipe is fine: `--oidc-client-secret-file=<(pass show idp)` passes one.
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        return "is not a regular file"
    if hasattr(os, "geteuid") and st.st_uid not in (os.geteuid(), 0):
        return f"is owned by uid {st.st_uid}, not by you or root"
    if st.st_mode & 0o077:
        return f"is open to group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def read_secret(path: str, what: str, flag: str) -> bytes:
    """The bytes of secret file `path`; OSError from opening it passes through."""
    fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    try:
        why = problem(os.fstat(fd))  # of the file opened, not of a name that may change
        if why:
            raise UnsafeSecretFile(
                f"{flag}: {what} {path} {why}; a secret file must be yours and private",
                f"chmod 600 {path} (for a Kubernetes Secret volume: defaultMode: 0400)")
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            size += len(chunk)
            if size > MAX_SIZE:
                raise CredHelperError(f"{flag}: {what} {path} is larger than 1 MiB")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
