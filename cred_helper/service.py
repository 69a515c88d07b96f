"""Getting a credential: serve the cached one when the policy says so, else issue one under
the entry's lock, re-reading the cache once the lock is held (so N kubectl processes starting
at once cause one issuance), and remember which kubectl process got it (the 401 rule).

What to do is policy.py's decision; this module carries it out:
- a renewal inside the refresh margin that fails (the peer is down, a CSR nobody approved yet,
  a lock that cannot be taken) serves the still-valid credential with one warning; while
  another process holds the lock (it renews), kubectl is served it at once; an expired one is
  renewed or the command fails;
- a credential that was issued but cannot be kept (full or read-only disk) is still returned,
  with one warning naming the path and the reason.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from . import policy
from .cache.entry import Entry
from .cache.lock import LockHeld, exclusive
from .cache.private import UnsafePath
from .cache.served import record_served, served_path, was_served
from .cache.sidefile import SideFiles
from .cache.store import Store
from .errors import CredHelperError, os_reason
from .issuers.issued import Issued

# issue(renewing): renewing is True when kubectl runs us and a still-valid credential is there
# to fall back on, so the issuer gives up early (a CSR that no approver answered within moments)
# by raising a CredHelperError. `login` is a person, who may wait for an approval to renew.
Issue = Callable[[bool], Issued]


@dataclass
class Request:
    key: str
    profile: str
    issuer: str
    ttl: int
    cache_dir: str | None  # None: `--cache none`, nothing is written, not even a lock
    parent: str
    lock_timeout: float
    command: str = "get"  # the 401 rule applies to `get` only (see policy.rejected)
    force: bool = False
    belongs_to: str = ""  # fastkey.belongs_to for these settings, kept in the entry


def obtain(req: Request, store: Store, issue: Issue, clock: Callable[[], float],
           warn: Callable[[str], None], keeper: Keeper | None = None) -> Entry:
    """The credential to print. `keeper` collects failures to write the cache (shared with
    the refresh-token store, so a full disk costs one warning line, not several)."""
    keeper = keeper or Keeper(warn)
    side = SideFiles(warn)  # the served log and the lock: damage costs a warning, once
    cached, action = _consult(req, store, clock, side)
    if action == policy.SERVE and cached:
        return cached
    if req.cache_dir is None:
        return _issue(req, store, issue, clock, keeper, side, renewing=False)
    # Renewing, a still-valid credential is there to fall back on. kubectl never waits for
    # another process's issuance: while one renews it (or a person logs in under the lock),
    # the still-valid credential is served, as botocore's advisory refresh does. A lock that
    # cannot be taken at all (a read-only or full cache disk) costs a warning, not the
    # credential.
    renewable = action == policy.RENEW and cached is not None
    hurried = renewable and policy.run_by_kubectl(req.command)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive(req.cache_dir, req.key,
                                         0.0 if hurried else req.lock_timeout, side))
        except LockHeld:
            if not hurried or cached is None:
                raise
            _record(req, cached, side)
            return cached
        except CredHelperError as exc:
            return _fall_back(req, cached if renewable else None, exc, clock, warn, side)
        cached, action = _consult(req, store, clock, side)  # another process may have issued
        if action == policy.SERVE and cached:
            return cached
        renewing = action == policy.RENEW and cached is not None
        try:
            return _issue(req, store, issue, clock, keeper, side,
                          renewing=renewing and policy.run_by_kubectl(req.command))
        except CredHelperError as exc:
            return _fall_back(req, cached if renewing else None, exc, clock, warn, side)


def _fall_back(req: Request, cached: Entry | None, exc: CredHelperError,
               clock: Callable[[], float], warn: Callable[[str], None],
               side: SideFiles) -> Entry:
    """The still-valid `cached` credential after a renewal failed with `exc`, with one
    warning; re-raises `exc` when there is none (nothing cached, or it expired meanwhile)."""
    if cached is None or \
            policy.classify(clock(), cached.issued_at, cached.not_after) != policy.REFRESH:
        raise exc
    warn(f"could not renew the credential ({exc.message}); "
         "serving the cached one until it expires")
    _record(req, cached, side)
    return cached


def _consult(req: Request, store: Store, clock: Callable[[], float],
             side: SideFiles) -> tuple[Entry | None, str]:
    """(cached entry or None, the policy's action); a served entry is recorded as served."""
    entry = store.load(req.key)
    if entry is None:
        return None, policy.ISSUE
    if req.force:
        return entry, policy.ISSUE
    served = _was_served(req, entry, side)
    action = policy.decide(req.command, clock(), entry.issued_at, entry.not_after, served)
    if action == policy.SERVE and not served:
        _record(req, entry, side)
    return entry, action


def _issue(req: Request, store: Store, issue: Issue, clock: Callable[[], float],
           keeper: Keeper, side: SideFiles, renewing: bool) -> Entry:
    got = issue(renewing)
    # The lifetime starts when the credential reached us: a login or an approval that took a
    # person minutes does not make it look longer-lived than it is.
    issued_at = clock()
    if policy.classify(issued_at, issued_at, got.not_after) == policy.EXPIRED:
        raise CredHelperError("the new credential is already expired",
                              "check the clocks of this machine and the cluster")
    entry = Entry(
        key=req.key, profile=req.profile, issuer=req.issuer, issued_at=issued_at,
        not_after=got.not_after, ttl=req.ttl, serial=secrets.token_hex(8),
        status=got.status, identity=got.identity, server=got.server, source=got.source,
        belongs_to=req.belongs_to,
    )
    try:
        store.save(entry)
    except CredHelperError as exc:  # a full disk, a locked keyring, its index lock held
        keeper.lost(exc.message)
    _record(req, entry, side)
    return entry


def _was_served(req: Request, entry: Entry, side: SideFiles) -> bool:
    """Whether this kubectl process got this credential already (the 401 rule). A served log
    that cannot be trusted is cleared with a warning: the rule then forgets, nobody loses."""
    if req.cache_dir is None:
        return False
    try:
        return was_served(req.cache_dir, req.key, entry.serial, req.parent)
    except UnsafePath as exc:
        side.refuse(exc.path, exc.why)
    except OSError as exc:
        side.refuse(served_path(req.cache_dir, req.key), f"cannot be read ({os_reason(exc)})")
    return False


def _record(req: Request, entry: Entry, side: SideFiles) -> None:
    if req.cache_dir is None or not policy.run_by_kubectl(req.command):
        return
    path = served_path(req.cache_dir, req.key)
    for _ in range(2):  # once more after clearing a damaged log
        try:
            record_served(req.cache_dir, req.key, entry.serial, req.parent)
            return
        except UnsafePath as exc:
            if not side.refuse(exc.path, exc.why):
                return
        except OSError as exc:
            # A full or read-only disk: the 401 rule loses its memory, the user nothing.
            if not side.retry(path, exc):
                return


class Keeper:
    """Says once per run that the cache could not keep something (the credential, its refresh
    token): a full or read-only disk must not cost the user the credential, nor fill stderr."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.told = False

    def lost(self, reason: str) -> None:
        if not self.told:
            self.told = True
            self.warn(f"could not keep the credential in the cache ({reason}); "
                      "the next run will need a new one")
