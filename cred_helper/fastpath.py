"""The cache hit: find the entry, check it is intact, sane and fresh, print it. Stdlib only.

kubectl starts the plugin once per kubectl process, so this path is on every command a user
types. It imports nothing heavy, not even `json` (which pulls in `re`): the entry is parsed by
the same C scanner the json module uses. Anything unexpected means "not a hit" and the full
CLI takes over, which re-checks everything and reports problems properly (a damaged entry is
discarded there with one warning); this path itself never prints anything but a credential.

Served only: an alias of exactly one 64-hex key and one known apiVersion, the one
KUBERNETES_EXEC_INFO names (v1 without it), which is the apiVersion printed; an entry whose
checksum holds and whose fields pass cache/entrydoc.py's `check` (the rules the full CLI
applies too); whose key is the one the alias names; that belongs to the profile and cluster
this command line names (fastkey.belongs_to: an alias leading elsewhere is not followed); and
that is fresh.
"""

from __future__ import annotations

import os
import time

from .cache.entrydoc import check, unseal
from .cache.private import check_dir, read_private, sweep_stale
from .cache.served import record_served, was_served
from .execcred import API_VERSIONS, V1, render, rfc3339
from .fastkey import alias_path, belongs_to, cache_dir_for, fast_key, parse_alias, profile_named
from .parentproc import parent_identity
from .policy import FRESH, classify, expiration_timestamp

TYPE_CHECKING = False  # typing itself is too slow to import on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import IO


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


def _requested(raw: str | None, loads) -> tuple[str, tuple[str, str, str] | None] | None:
    """(apiVersion, spec.cluster's server, TLS server name and CA text) kubectl asked with,
    or None where the full CLI would warn (it then writes no alias either)."""
    if raw is None or not raw.strip():
        return V1, None
    doc = loads(raw)
    spec = doc.get("spec") or {}
    if doc.get("apiVersion") not in API_VERSIONS or doc.get("kind") != "ExecCredential" \
            or type(spec) is not dict:
        return None
    cluster = spec.get("cluster")
    if cluster is None:
        return doc["apiVersion"], None
    fields = tuple(cluster.get(name, "") for name in
                   ("server", "tls-server-name", "certificate-authority-data"))
    if not all(type(f) is str for f in fields):
        return None
    return doc["apiVersion"], fields  # type: ignore[return-value]


def _lookup(argv: Sequence[str], env: Mapping[str, str], now: float) -> str | None:
    cache_dir = cache_dir_for(argv, env)
    check_dir(cache_dir)
    sweep_stale(cache_dir, now)  # a writer killed mid-save leaves no key material for long
    alias = parse_alias(read_private(alias_path(cache_dir, fast_key(argv, env))))
    if alias is None:
        return None
    loads = _make_loads()
    requested = _requested(env.get("KUBERNETES_EXEC_INFO"), loads)
    key, api_version = alias
    if requested is None or requested[0] != api_version:
        return None  # an alias written for another request: kubectl gets what it asks for
    entry = loads(unseal(read_private(os.path.join(cache_dir, f"{key}.json"))).decode())
    check(entry)  # Damaged: not a hit; the full CLI discards it with a warning
    if entry["key"] != key:  # the alias names this profile's entry; any other is not ours
        return None
    if entry.get("belongs_to") != belongs_to(profile_named(argv, env), requested[1]):
        return None  # another profile's or cluster's entry: the full CLI finds this one's
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
