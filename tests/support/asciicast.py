"""A strict reader of asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/), for the
gateway's recordings: a header object on the first line, then one [time, code, data] array per
line, times not going back. Anything else fails the test."""

from __future__ import annotations

import json
import re

CODES = {"o", "i", "m", "r"}


def parse_v2(text: str) -> tuple[dict, list[tuple[float, str, str]]]:
    lines = text.split("\n")
    assert lines[-1] == "", "a recording ends with a newline"
    header = json.loads(lines[0])
    assert isinstance(header, dict) and header.get("version") == 2, header
    for field in ("width", "height"):
        assert type(header[field]) is int and header[field] > 0, header
    assert type(header.get("timestamp", 0)) is int
    assert isinstance(header.get("env", {}), dict)
    events = []
    last = 0.0
    for line in lines[1:-1]:
        event = json.loads(line)
        assert isinstance(event, list) and len(event) == 3, line
        at, code, data = event
        assert isinstance(at, (int, float)) and not isinstance(at, bool) and at >= last, line
        assert code in CODES and isinstance(data, str), line
        if code == "r":
            assert re.fullmatch(r"\d+x\d+", data), line
        last = at
        events.append((float(at), code, data))
    return header, events


def output(text: str) -> str:
    """Everything the recording shows on the terminal, in order."""
    return "".join(data for _, code, data in parse_v2(text)[1] if code == "o")
