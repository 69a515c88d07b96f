"""SHA-256 without importing hashlib. Stdlib only (the cache-hit path uses it).

Importing hashlib (which loads OpenSSL) costs a third of a cache hit; the C module behind
`hashlib.sha256` is importable on its own.
"""

from __future__ import annotations

try:
    from _sha2 import sha256  # Python >= 3.12
except ImportError:
    try:
        from _sha256 import sha256  # Python 3.10, 3.11
    except ImportError:
        from hashlib import sha256

__all__ = ["sha256"]
