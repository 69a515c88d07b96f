"""Durations as users write them: `1800`, `90s`, `30m`, `1h`, `1h30m`."""

from __future__ import annotations

_UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in `text`; raises ValueError for anything else (negative, empty, unknown unit)."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    if text.isdigit():
        return int(text)
    total = 0
    number = ""
    last_unit_rank = -1
    for ch in text:
        if ch.isdigit():
            number += ch
            continue
        if ch not in _UNITS or not number:
            raise ValueError(f"not a duration: {text!r}")
        rank = "hms".index(ch)
        if rank <= last_unit_rank:
            raise ValueError(f"not a duration: {text!r}")
        last_unit_rank = rank
        total += int(number) * _UNITS[ch]
        number = ""
    if number:
        raise ValueError(f"not a duration: {text!r}")
    return total


def expires_text(not_after: float, now: float) -> str:
    """`2026-11-23 21:40:00 UTC (in 29m59s)`."""
    import time

    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(not_after))
    return f"{when} UTC (in {format_duration(not_after - now)})"


def format_duration(seconds: float) -> str:
    """`1h30m0s`-style text, as kubectl prints durations."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
