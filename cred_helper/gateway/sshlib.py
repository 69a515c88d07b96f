"""asyncssh, for the gateway alone. Importing it with cryptography 51 prints five
CryptographyDeprecationWarning lines (it still imports DSA): they are silenced here, for this
import only, never for the whole program."""

from __future__ import annotations

import warnings

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    import asyncssh

__all__ = ["asyncssh"]
