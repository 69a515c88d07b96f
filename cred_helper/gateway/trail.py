"""The gateway's trail: one JSON line per session (SSH connection) and per command on stdout,
and the terminal stream of every command as an asciicast v2 file.

JSON lines are ASCII (json.dumps escapes everything else), so a hostile argv cannot forge a
line or a terminal escape in the log. A recording holds what the command printed ("o"
events, stdout and stderr as the person saw them) and window sizes ("r"); what was typed
reaches it only where the terminal echoed it: input with echo off (a password prompt) is
not kept. A recording has a size limit; a command whose recording is full is ended, because
the recording is the control over what runs inside a grant.

asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a header object on the first
line, then one `[seconds, code, data]` array per line.
"""

from __future__ import annotations

import codecs
import json
import os
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ..errors import os_reason


def timestamp(when: float) -> str:
    """RFC 3339, UTC, milliseconds."""
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_session_id() -> str:
    return secrets.token_hex(8)


class Trail:
    """Writes JSON lines to one stream (the gateway's stdout), each flushed at once."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, kind: str, **fields: Any) -> None:
        self._stream.write(line(kind, fields) + "\n")
        self._stream.flush()


def line(kind: str, fields: dict[str, Any]) -> str:
    for key in ("start", "end"):
        if isinstance(fields.get(key), float):
            fields[key] = timestamp(fields[key])
    return json.dumps({"kind": kind, **fields}, ensure_ascii=True, separators=(",", ":"))


class RecordingStopped(Exception):
    """The recording cannot take more: its size limit, or a write that failed (a full disk)."""


class Recording:
    """One asciicast v2 file, 0600, never overwritten. Output bytes are decoded as UTF-8 in
    order (a character split between two reads is kept whole); what is not UTF-8 shows as
    U+FFFD."""

    def __init__(self, path: Path, *, width: int, height: int, started: float, title: str,
                 command: str, term: str, clock: Callable[[], float], max_bytes: int) -> None:
        self.path = path
        self._clock = clock
        self._started = started
        self._max = max_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._file = os.fdopen(fd, "w", encoding="ascii")
        self.size = 0
        header = {"version": 2, "width": max(1, width), "height": max(1, height),
                  "timestamp": int(started), "title": title, "command": command,
                  "env": {"TERM": term or "dumb"}}
        self._write(json.dumps(header, ensure_ascii=True))

    def output(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            self._event("o", text)

    def resize(self, width: int, height: int) -> None:
        self._event("r", f"{width}x{height}")

    def close(self) -> None:
        if self._file.closed:
            return
        rest = self._decoder.decode(b"", final=True)
        try:
            if rest:
                self._event("o", rest)
        except RecordingStopped:
            pass
        finally:
            try:
                self._file.close()
            except OSError:
                pass  # what could not be flushed was already reported by _write

    def _event(self, code: str, data: str) -> None:
        at = max(0.0, self._clock() - self._started)
        self._write(json.dumps([round(at, 6), code, data], ensure_ascii=True))

    def _write(self, text: str) -> None:
        if self.size + len(text) + 1 > self._max:
            raise RecordingStopped(f"the recording {self.path.name} reached {self._max} bytes")
        try:
            self._file.write(text + "\n")
            self._file.flush()
        except OSError as exc:
            raise RecordingStopped(f"the recording {self.path.name} cannot be written: "
                                   f"{os_reason(exc)}") from None
        self.size += len(text) + 1


def recording_path(root: Path, session: str, number: int, when: float) -> Path:
    """<root>/<YYYY-MM-DD>/<session>-<n>.cast (UTC day of the session's start)."""
    day = datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%d")
    return root / day / f"{session}-{number}.cast"
