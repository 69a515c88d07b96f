"""RFC 3339 times as the API server writes them, read with suspicion: a time that does not parse,
lies before 2000 or in the future is no time at all (the janitor never acts on a guess)."""

from __future__ import annotations

import datetime
import email.utils
from typing import Any

EARLIEST = 946684800.0  # 2000-01-01T00:00:00Z: nothing in a cluster is older
SKEW = 300.0  # clocks disagree a little; a time further ahead than this is absurd
# A node's clock this far behind the API server's is ordinary drift. Further behind, a debug
# container seems to start before it was added, and its times are not believed: 20 minutes
# behind would make a container that exited a minute ago look stale at once.
BEHIND = 60.0


def parse_time(value: Any, now: float) -> float | None:
    """Seconds since the epoch for a sane RFC 3339 time, else None."""
    if not isinstance(value, str) or not 20 <= len(value) <= 40:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None or "T" not in value.upper():
        return None
    seconds = when.timestamp()
    if seconds < EARLIEST or seconds > now + SKEW:
        return None
    return seconds


def rfc3339(seconds: float | None) -> str | None:
    """`2026-12-02T02:00:00Z`, or None for no time."""
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def http_date(value: Any) -> float | None:
    """Seconds since the epoch from an HTTP `Date` header (`Mon, 07 Dec 2026 04:40:00 GMT`),
    else None."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": a time with no zone said
        return None
    seconds = when.timestamp()
    return seconds if seconds >= EARLIEST else None
