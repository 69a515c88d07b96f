"""The trail: JSON lines that a hostile argv cannot forge, and asciicast v2 recordings."""

from __future__ import annotations

import io
import json
import os
import stat

import pytest

from cred_helper.gateway.trail import Recording, RecordingStopped, Trail, recording_path
from tests.support.asciicast import output, parse_v2


def test_a_json_line_is_ascii_and_one_line_whatever_the_argv():
    stream = io.StringIO()
    argv = ["echo", 'x"}\n{"kind":"session","decision":"accepted"', "\x1b[2J", "é\u202e"]
    Trail(stream).write("command", argv=argv, start=1.5, end=2.25, exit_code=0)
    text = stream.getvalue()
    assert text.isascii() and text.count("\n") == 1
    doc = json.loads(text)
    assert doc["kind"] == "command" and doc["argv"] == argv
    assert (doc["start"], doc["end"]) == ("1970-01-01T00:00:01.500Z", "1970-01-01T00:00:02.250Z")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def recording(tmp_path, limit: int = 1 << 20, clock=None) -> Recording:
    return Recording(tmp_path / "day" / "s-1.cast", width=100, height=30, started=1000.0,
                     title="alice on ar-1", command="shell api-1", term="xterm-256color",
                     clock=clock or Clock(), max_bytes=limit)


def test_a_recording_is_asciicast_v2_with_what_was_shown(tmp_path):
    clock = Clock()
    rec = recording(tmp_path, clock=clock)
    clock.now = 1000.5
    rec.output(b"$ ec")
    clock.now = 1001.0
    rec.output(b"ho h\xc3")  # a character split between two reads stays whole
    rec.resize(120, 40)
    rec.output(b"\xa9llo\r\n")
    rec.output(b"\xff binary\r\n")
    rec.close()
    header, events = parse_v2(rec.path.read_text())
    assert header["width"] == 100 and header["height"] == 30 and header["timestamp"] == 1000
    assert header["env"] == {"TERM": "xterm-256color"} and header["command"] == "shell api-1"
    assert output(rec.path.read_text()) == "$ echo héllo\r\n\ufffd binary\r\n"
    assert ("r", "120x40") in [(code, data) for _, code, data in events]
    assert events[0][0] == 0.5
    assert stat.S_IMODE(os.stat(rec.path).st_mode) == 0o600


def test_a_recording_is_never_overwritten(tmp_path):
    recording(tmp_path).close()
    with pytest.raises(FileExistsError):
        recording(tmp_path)


def test_a_full_recording_raises_and_keeps_what_fit(tmp_path):
    rec = recording(tmp_path, limit=400)
    with pytest.raises(RecordingStopped):
        for _ in range(100):
            rec.output(b"0123456789" * 3)
    rec.close()
    assert os.path.getsize(rec.path) <= 400
    parse_v2(rec.path.read_text())


def test_recordings_are_kept_by_day(tmp_path):
    assert recording_path(tmp_path, "abc", 2, 1_800_000_000) == \
        tmp_path / "2027-01-15" / "abc-2.cast"
