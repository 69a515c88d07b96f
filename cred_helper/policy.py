"""The credential policy: when a credential may be served, and when kubectl is asking again
because the server rejected it. Pure and standard library only (the cache-hit path uses it).

Freshness is judged from the credential's real lifetime, from when it was issued (`issued_at`,
the moment cred-helper received it) to its end (`not_after`), never from the configured TTL:
an OpenID provider that issues 5-minute ID tokens for a 30-minute TTL must still see them
reused. Three answers, as botocore's advisory and mandatory refresh windows:

- FRESH: more than the refresh margin is left. Serve it.
- REFRESH: inside the margin, still valid. Renew; if renewing fails (provider or API server
  unreachable, a CSR nobody approved yet), serve it anyway with one warning.
- EXPIRED: within the shave of its end, or past it. Renew or fail.

The refresh margin is 5 minutes, at most half the real lifetime: a 30-minute certificate is
renewed in its last 5 minutes, a 5-minute token is served for its first 2.5. The shave (what
kubectl is told the credential ends early, so a request signed just before the end does not
reach the server after it) is a minute, at most a tenth of the real lifetime: a 60-second token
is still a credential, announced for 54 seconds.
"""

from __future__ import annotations

FRESH = "fresh"
REFRESH = "refresh"
EXPIRED = "expired"

REFRESH_MARGIN = 300
MAX_SHAVE = 60
SHAVE_FRACTION = 0.1

# The 401 rule re-issues at most this often per entry: a server that rejects every new
# credential must not turn each kubectl retry into a CSR or a login.
REISSUE_INTERVAL = 60


def lifetime(issued_at: float, not_after: float) -> float:
    return max(0.0, not_after - issued_at)


def refresh_margin(issued_at: float, not_after: float) -> float:
    return min(REFRESH_MARGIN, lifetime(issued_at, not_after) / 2)


def shave(issued_at: float, not_after: float) -> float:
    return min(MAX_SHAVE, lifetime(issued_at, not_after) * SHAVE_FRACTION)


def classify(now: float, issued_at: float, not_after: float) -> str:
    left = not_after - now
    if left <= 0 or left <= shave(issued_at, not_after):
        return EXPIRED
    if left <= refresh_margin(issued_at, not_after):
        return REFRESH
    return FRESH


def expiration_timestamp(now: float, issued_at: float, not_after: float) -> float:
    """The end kubectl is told: the real end minus the shave, never in the past."""
    return max(not_after - shave(issued_at, not_after), now)


def run_by_kubectl(command: str) -> bool:
    """Only `get` is run by kubectl, so only its runs are remembered for the 401 rule:
    `login` twice from one shell is a person asking twice, not a rejection."""
    return command == "get"


def rejected(command: str, served_to_parent: bool, now: float, issued_at: float) -> bool:
    """The 401 rule: the same kubectl process (same parent identity) asks again for the
    credential it was already served, so the API server rejected it. At most once per
    REISSUE_INTERVAL per entry, counted from the entry's issuance."""
    return run_by_kubectl(command) and served_to_parent and \
        now - issued_at >= REISSUE_INTERVAL


# What to do with what the cache holds.
SERVE = "serve"  # hand out the cached credential
ISSUE = "issue"  # nothing usable: issue, or fail
RENEW = "renew"  # inside the margin: issue, and fall back on the cached one if that fails
REISSUE_REJECTED = "reissue-rejected"  # the server rejected it: issue, no fallback


def decide(command: str, now: float, issued_at: float | None, not_after: float | None,
           served_to_parent: bool = False) -> str:
    """The action for a cached credential (issued_at/not_after None: nothing cached)."""
    if issued_at is None or not_after is None:
        return ISSUE
    state = classify(now, issued_at, not_after)
    if state == EXPIRED:
        return ISSUE
    if rejected(command, served_to_parent, now, issued_at):
        return REISSUE_REJECTED
    if state == REFRESH and not (run_by_kubectl(command) and served_to_parent):
        return RENEW
    # FRESH; or asked again by the same kubectl within a minute of issuance: serving the
    # same credential again beats a re-issue loop.
    return SERVE
