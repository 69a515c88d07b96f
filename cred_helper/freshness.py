"""Whether a cached credential may be served: pure, stdlib only (it runs on the cache-hit path).

Two windows, as botocore does it: while more than the refresh margin is left the credential is
FRESH; inside the margin it is STALE (issue a new one, but keep serving the old one if that
fails); within the last minute it is EXPIRED (never served, since kubectl is told it ends a
minute early).
"""

from __future__ import annotations

FRESH = "fresh"
STALE = "stale"
EXPIRED = "expired"

REFRESH_MARGIN = 300
# What we tell kubectl is a minute short of the real end, so that a request signed just
# before the end does not reach the server after it.
EXPIRY_SKEW = 60


def refresh_margin(ttl: float) -> float:
    return min(REFRESH_MARGIN, ttl / 2)


def classify(now: float, not_after: float, ttl: float) -> str:
    left = not_after - now
    if left <= EXPIRY_SKEW:
        return EXPIRED
    if left <= refresh_margin(ttl):
        return STALE
    return FRESH


def expiration_timestamp(now: float, not_after: float) -> float:
    """The end kubectl is told: the real end minus the skew, never in the past."""
    return max(not_after - EXPIRY_SKEW, now)
