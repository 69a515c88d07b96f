"""The cache hit: find the entry, check it is fresh, print it. Standard library only.

kubectl starts the plugin once per kubectl process, so this path is on every command a user
types. It imports nothing heavy, not even `json` (which pulls in `re`): the entry is parsed by
the same C scanner the json module uses. Anything unexpected means "not a hit" and the full
CLI takes over, which re-checks everything and reports problems properly; this path itself
never prints anything but a credential.
"""

from __future__ import annotations

import os
import time

from .cache.private import check_dir, read_private
from .cache.served import record_served, was_served
from .execcred import API_VERSIONS, render, rfc3339
from .fastkey import alias_path, cache_dir_for, fast_key
from .parentproc import parent_identity
from .policy import FRESH, classify, expiration_timestamp

TYPE_CHECKING = False  # typing itself is too slow to import on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import IO

FORMAT = 1


def _make_loads():
    try:
        from _json import make_scanner
    except ImportError:  # no C accelerator: the full module then
        from json import loads

        return loads

    def _no_constants(name: str) -> float:
        raise ValueError(name)

    class _Context:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = staticmethod(_no_constants)
        memo: dict = {}  # noqa: RUF012  (read by the C scanner, never mutated here)

    scan = make_scanner(_Context())

    def loads(text: str):
        value, end = scan(text, 0)
        if text[end:].strip():
            raise ValueError("trailing data")
        return value

    return loads


def try_serve(argv: Sequence[str], env: Mapping[str, str], out: IO[str],
              now: float | None = None) -> bool:
    """Print a cached credential and return True, or return False having printed nothing."""
    if argv and (argv[0] in ("login", "status", "logout", "keys") or "--help" in argv):
        return False
    try:
        text = _lookup(argv, env, time.time() if now is None else now)
    except Exception:  # any surprise: the full CLI re-checks and explains
        return False
    if text is None:
        return False
    out.write(text)
    out.flush()
    return True


def _lookup(argv: Sequence[str], env: Mapping[str, str], now: float) -> str | None:
    cache_dir = cache_dir_for(argv, env)
    check_dir(cache_dir)
    alias = read_private(alias_path(cache_dir, fast_key(argv, env))).decode().split("\n")
    key, api_version = alias[0], alias[1]
    if api_version not in API_VERSIONS:
        return None
    entry = _make_loads()(read_private(os.path.join(cache_dir, f"{key}.json")).decode())
    if entry.get("format") != FORMAT or entry.get("key") != key:
        return None
    not_after, issued_at, serial = entry["not_after"], entry["issued_at"], entry["serial"]
    if classify(now, issued_at, not_after) != FRESH:
        return None
    parent = parent_identity()
    if was_served(cache_dir, key, serial, parent):
        return None  # the same kubectl asks again: the server rejected this credential (401)
    status = dict(entry["status"])
    status["expirationTimestamp"] = rfc3339(expiration_timestamp(now, issued_at, not_after))
    text = render(api_version, status)
    record_served(cache_dir, key, serial, parent)
    return text
