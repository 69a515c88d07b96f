"""The gateway's command line: the grammar, and hostile lines refused as one CommandError."""

from __future__ import annotations

import random

import pytest

from cred_helper.gateway import commands as c
from cred_helper.gateway.commands import Command, CommandError, parse

MAX = 4096


@pytest.mark.parametrize(("line", "expected"), [
    ("", Command("help")),
    ("   ", Command("help")),
    ("help", Command("help")),
    ("whoami", Command("whoami")),
    ("pods", Command("pods")),
    ("logs api-1", Command("logs", pod="api-1")),
    ("logs api-1 -c app --tail 20 -f", Command("logs", "api-1", "app", tail=20, follow=True)),
    ("logs api-1 --tail=0 --container=app --follow",
     Command("logs", "api-1", "app", tail=0, follow=True)),
    ("exec api-1 -- ps aux", Command("exec", "api-1", argv=("ps", "aux"))),
    ("exec api-1 -c app -- ps", Command("exec", "api-1", "app", argv=("ps",))),
    # Quoting as a POSIX shell splits words; nothing is expanded.
    ("exec api-1 -- sh -c 'echo a b'", Command("exec", "api-1", argv=("sh", "-c", "echo a b"))),
    ('exec api-1 -- echo "$HOME" `id`', Command("exec", "api-1",
                                                argv=("echo", "$HOME", "`id`"))),
    ("exec api-1 -- echo a\\ b", Command("exec", "api-1", argv=("echo", "a b"))),
    # Everything after the first -- is argv, -- included.
    ("exec api-1 -- -- rm -rf /", Command("exec", "api-1", argv=("--", "rm", "-rf", "/"))),
    ("exec api-1 -- -c x", Command("exec", "api-1", argv=("-c", "x"))),
    ("exec api-1 -- héllo ✓", Command("exec", "api-1", argv=("héllo", "✓"))),
    ("shell api-1", Command("shell", "api-1")),
    ("shell api-1 -c sidecar", Command("shell", "api-1", "sidecar")),
])
def test_the_grammar(line, expected):
    assert parse(line, MAX) == expected


@pytest.mark.parametrize(("line", "says"), [
    ("rm -rf /", "unknown command 'rm'"),
    ("HELP", "unknown command"),
    ("help me", "takes no arguments"),
    ("pods payments", "takes no arguments"),
    ("exec api-1 ps aux", "needs `--`"),
    ("exec api-1 --", "needs a command after `--`"),
    ("exec -- ps", "needs a pod name first"),
    ("exec -c app api-1 -- ps", "needs a pod name first"),
    ("exec api-1 -c -- ps", "-c needs a value"),
    ("exec api-1 -c App -- ps", "not a container name"),
    ("exec api-1 -c app -c app -- ps", "given twice"),
    ("exec api-1 --tail 3 -- ps", "does not take '--tail'"),
    ("exec API-1 -- ps", "not a pod name"),
    ("exec ../etc -- ps", "not a pod name"),
    ("exec api-* -- ps", "not a pod name"),
    ("logs api-1 --tail -1", "whole number"),
    ("logs api-1 --tail 100001", "whole number"),
    ("logs api-1 --tail ١٢", "whole number"),
    ("logs api-1 --tail", "needs a value"),
    ("logs api-1 -f=yes", "takes no value"),
    ("logs api-1 --since 1h", "does not take"),
    ("shell api-1 -- sh", "does not take '--'"),
    ("exec api-1 -- echo 'unclosed", "cannot be split"),
    ("exec api-1 -- echo \\", "cannot be split"),
    ("exec api-1 -- echo a\x00b", "control characters"),
    ("exec api-1 -- echo a\nrm -rf /", "control characters"),
    ("exec api-1 -- echo \x1b[31mred", "control characters"),
    ("exec api-1 -- echo \x9b31m", "control characters"),
    ("exec api-1 -- echo \udcff", "not valid UTF-8"),
    ("exec api-1 -- " + "a" * MAX, "longer than 4096 bytes"),
    ("exec api-1 -- " + "é" * (MAX // 2), "longer than 4096 bytes"),
])
def test_what_is_refused_and_how_it_reads(line, says):
    with pytest.raises(CommandError) as caught:
        parse(line, MAX)
    assert says in caught.value.message
    assert "\n" not in caught.value.message


def test_a_refusal_shows_the_word_escaped_and_bounded():
    with pytest.raises(CommandError) as caught:
        parse("\u202erm" + "x" * 500, MAX)
    assert "\\u202e" in caught.value.message and len(caught.value.message) < 120


def test_seeded_hostile_lines_give_a_command_or_a_command_error():
    """Quoting, NUL bytes, long lines, unicode, `--` tricks, unknown verbs: nothing else
    escapes the parser, and every exec it returns has a pod name and an argv."""
    rng = random.Random(27)
    pieces = ["exec", "logs", "shell", "pods", "help", "whoami", "--", "-c", "--tail", "-f",
              "api-1", "app", "'", '"', "\\", "\x00", "\n", "é", "\u202e", "$(id)", ";",
              "|", "*", "-", "=", "--container=x", "--tail=5", " ", "\t", "x" * 300]
    parsed = 0
    for _ in range(5000):
        line = "".join(rng.choice(pieces) + rng.choice(["", " "])
                       for _ in range(rng.randint(0, 12)))
        try:
            command = parse(line, 512)
        except CommandError as exc:
            assert exc.message and "\n" not in exc.message
            continue
        parsed += 1
        assert command.verb in c.VERBS
        if command.verb == c.EXEC:
            assert command.pod and command.argv
    assert parsed > 100
