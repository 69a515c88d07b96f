"""Which kubectl processes got which credential: the memory behind the 401 rule. Stdlib only.

`<key>.served` holds one line per process served, `serial<TAB>parent identity`. An entry's
serial changes with each issuance, so lines about an older credential simply stop matching.
"""

from __future__ import annotations

import os

from .private import append_private, read_private

MAX_LOG = 256 * 1024


def served_path(cache_dir: str, key: str) -> str:
    return os.path.join(cache_dir, f"{key}.served")


def was_served(cache_dir: str, key: str, serial: str, parent: str) -> bool:
    try:
        data = read_private(served_path(cache_dir, key))
    except FileNotFoundError:
        return False
    return f"{serial}\t{parent}\n".encode() in data


def record_served(cache_dir: str, key: str, serial: str, parent: str) -> None:
    append_private(served_path(cache_dir, key), f"{serial}\t{parent}\n".encode(), MAX_LOG)


def forget_served(cache_dir: str, key: str) -> None:
    """Start the log afresh (a new credential). One that cannot be removed (a directory in
    its place) is refused, with its warning, when it is next read."""
    try:
        os.unlink(served_path(cache_dir, key))
    except OSError:
        pass
