"""Getting a credential: serve the cached one when it may be served, else issue one under the
entry's lock, re-reading the cache once the lock is held (so N kubectl processes starting at
once cause one issuance), and remember which kubectl process got it (the 401 rule).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from .cache.entry import Entry
from .cache.lock import exclusive
from .cache.served import record_served, was_served
from .cache.store import Store
from .errors import CredHelperError
from .freshness import EXPIRED, STALE, classify
from .issuers.issued import Issued

# The 401 rule re-issues at most this often per entry: a server that rejects every new
# credential must not turn each kubectl retry into a CSR.
REISSUE_INTERVAL = 60

SERVE, ISSUE, REISSUE_REJECTED = "serve", "issue", "reissue-rejected"


def decide(entry: Entry | None, now: float, served_to_parent: bool) -> str:
    """What to do with what the cache holds. Pure."""
    if entry is None:
        return ISSUE
    state = classify(now, entry.not_after, entry.ttl)
    if state == EXPIRED:
        return ISSUE
    if served_to_parent and now - entry.issued_at >= REISSUE_INTERVAL:
        return REISSUE_REJECTED
    if state == STALE and not served_to_parent:
        return ISSUE
    return SERVE


@dataclass
class Request:
    key: str
    profile: str
    issuer: str
    ttl: int
    cache_dir: str | None  # None: `--cache none`, nothing is written, not even a lock
    parent: str
    lock_timeout: float
    force: bool = False


def obtain(req: Request, store: Store, issue: Callable[[], Issued],
           clock: Callable[[], float], warn: Callable[[str], None]) -> Entry:
    cached, serve = _consult(req, store, clock)
    if serve and cached:
        return cached
    if req.cache_dir is None:
        return _issue(req, store, issue, clock)
    with exclusive(req.cache_dir, req.key, req.lock_timeout):
        cached, serve = _consult(req, store, clock)  # another process may have issued
        if serve and cached:
            return cached
        try:
            return _issue(req, store, issue, clock)
        except CredHelperError as exc:
            if cached is None or req.force or classify(
                    clock(), cached.not_after, cached.ttl) != STALE:
                raise
            warn(f"could not renew the credential ({exc.message}); "
                 "serving the cached one until it expires")
            _record(req, cached)
            return cached


def _consult(req: Request, store: Store,
             clock: Callable[[], float]) -> tuple[Entry | None, bool]:
    """(cached entry or None, whether to serve it); a served entry is recorded as served."""
    entry = store.load(req.key)
    if entry is None or req.force:
        return entry, False
    served = bool(req.cache_dir) and was_served(req.cache_dir, req.key, entry.serial,
                                                 req.parent)
    if decide(entry, clock(), served) != SERVE:
        return entry, False
    if not served:
        _record(req, entry)
    return entry, True


def _issue(req: Request, store: Store, issue: Callable[[], Issued],
           clock: Callable[[], float]) -> Entry:
    issued_at = clock()
    got = issue()
    if classify(clock(), got.not_after, req.ttl) == EXPIRED:
        raise CredHelperError("the new credential is already (nearly) expired",
                              "check the clocks of this machine and the cluster")
    entry = Entry(
        key=req.key, profile=req.profile, issuer=req.issuer, issued_at=issued_at,
        not_after=got.not_after, ttl=req.ttl, serial=secrets.token_hex(8),
        status=got.status, identity=got.identity, server=got.server, source=got.source,
    )
    store.save(entry)
    _record(req, entry)
    return entry


def _record(req: Request, entry: Entry) -> None:
    if req.cache_dir is not None:
        record_served(req.cache_dir, req.key, entry.serial, req.parent)

