"""Which kubectl processes got which credential: the memory behind the 401 rule. Stdlib only.

`<key>.served` holds one line per process served, `serial<TAB>parent identity`. An entry's
serial changes with each issuance, so lines about an older credential simply stop matching.
"""

from __future__ import annotations

import os

from .private import append_private, read_private

MAX_LOG = 256 * 1024


def _path(cache_dir: str, key: str) -> str:
    return os.path.join(cache_dir, f"{key}.served")


def was_served(cache_dir: str, key: str, serial: str, parent: str) -> bool:
    try:
        data = read_private(_path(cache_dir, key))
    except FileNotFoundError:
        return False
    return f"{serial}\t{parent}\n".encode() in data


def record_served(cache_dir: str, key: str, serial: str, parent: str) -> None:
    append_private(_path(cache_dir, key), f"{serial}\t{parent}\n".encode(), MAX_LOG)


def forget_served(cache_dir: str, key: str) -> None:
    try:
        os.unlink(_path(cache_dir, key))
    except FileNotFoundError:
        pass
