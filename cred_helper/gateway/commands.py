"""The gateway's command line: what a person typed after `ssh NAME@gateway`, read into one
Command. Pure.

ssh sends the remote command as one string (its arguments joined by spaces), so the string is
split into words as a POSIX shell splits them (quotes and backslashes; nothing is expanded,
nothing runs): `exec api-1 -- sh -c 'echo a b'` gives the argv `sh`, `-c`, `echo a b`. The
gateway never hands the line to a shell.

    help | whoami | pods
    logs POD [-c CONTAINER] [--tail N] [-f]
    exec POD [-c CONTAINER] -- ARGV...
    shell POD [-c CONTAINER]

Everything here may come from an attacker: anything that is not exactly this grammar is one
CommandError, which the server shows as one line.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from dataclasses import dataclass

HELP, WHOAMI, PODS, LOGS, EXEC, SHELL = "help", "whoami", "pods", "logs", "exec", "shell"
VERBS = (HELP, WHOAMI, PODS, LOGS, EXEC, SHELL)
MAX_TAIL = 100_000

_POD = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_CONTAINER = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

USAGE = """\
commands:
  help                                    this text
  whoami                                  who you are, your request, its grant, when it ends
  pods                                    the pods of your grant
  logs POD [-c CONTAINER] [--tail N] [-f] a container's log
  exec POD [-c CONTAINER] -- ARGV...      run ARGV in the pod (no shell), as in your grant
  shell POD [-c CONTAINER]                a shell on a terminal (ssh -t), where granted
port forwarding: ssh -L LOCAL:POD:PORT    to a port of your grant
"""


class CommandError(ValueError):
    """A command line that is not one of the gateway's commands."""

    def __init__(self, message: str, hint: str = "run `help` for the commands") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Command:
    verb: str
    pod: str = ""
    container: str = ""  # empty: the pod's first container, as kubectl chooses
    argv: tuple[str, ...] = ()
    tail: int | None = None
    follow: bool = False


def parse(line: str, max_length: int) -> Command:
    """One command line; an empty one is `help`."""
    if len(line.encode("utf-8", "surrogatepass")) > max_length:
        raise CommandError(f"the command line is longer than {max_length} bytes",
                           "shorten it; the gateway's --max-command-length sets the limit")
    if any(c != "\t" and unicodedata.category(c) == "Cc" for c in line):
        raise CommandError("the command line holds control characters (NUL, a newline, an "
                           "escape)", "type the command on one line, without control characters")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in line):
        raise CommandError("the command line is not valid UTF-8")
    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:  # "No closing quotation", "No escaped character"
        raise CommandError(f"the command line cannot be split into words: {exc}",
                           "close each quote; a backslash needs a character after it") from None
    if not words:
        return Command(HELP)
    verb, args = words[0], words[1:]
    if verb in (HELP, WHOAMI, PODS):
        if args:
            raise CommandError(f"`{verb}` takes no arguments")
        return Command(verb)
    if verb == EXEC:
        if "--" not in args:
            raise CommandError("exec needs `--` before the command",
                               "exec POD [-c CONTAINER] -- ARGV...")
        split = args.index("--")
        argv = tuple(args[split + 1:])
        if not argv:
            raise CommandError("exec needs a command after `--`",
                               "exec POD [-c CONTAINER] -- ARGV...")
        pod, options = _pod_and_options(verb, args[:split])
        container = _options(verb, options, allowed=("-c",))[0]
        return Command(EXEC, pod=pod, container=container, argv=argv)
    if verb == SHELL:
        pod, options = _pod_and_options(verb, args)
        return Command(SHELL, pod=pod, container=_options(verb, options, allowed=("-c",))[0])
    if verb == LOGS:
        pod, options = _pod_and_options(verb, args)
        container, tail, follow = _options(verb, options, allowed=("-c", "--tail", "-f"))
        return Command(LOGS, pod=pod, container=container, tail=tail, follow=follow)
    raise CommandError(f"unknown command {shown(verb)}")


def is_pod_name(word: str) -> bool:
    """A pod's name as the API server takes it in a path: never a glob, a `/`, `?` or `#`."""
    return bool(_POD.fullmatch(word))


def _pod_and_options(verb: str, args: list[str]) -> tuple[str, list[str]]:
    if not args or args[0].startswith("-"):
        raise CommandError(f"`{verb}` needs a pod name first", f"{verb} POD ...")
    pod = args[0]
    if not is_pod_name(pod):
        raise CommandError(f"{shown(pod)} is not a pod name")
    return pod, args[1:]


_ALIASES = {"--container": "-c", "--follow": "-f"}


def _options(verb: str, words: list[str], allowed: tuple[str, ...]
             ) -> tuple[str, int | None, bool]:
    container, tail, follow = "", None, False
    seen: set[str] = set()
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, value = word.partition("=")
        name = _ALIASES.get(name, name)
        if name not in allowed:
            raise CommandError(f"`{verb}` does not take {shown(word)}")
        if name in seen:
            raise CommandError(f"{name} is given twice")
        seen.add(name)
        if name == "-f":
            if eq:
                raise CommandError("-f takes no value")
            follow = True
            i += 1
            continue
        if not eq:
            if i + 1 >= len(words):
                raise CommandError(f"{name} needs a value")
            value = words[i + 1]
            i += 1
        i += 1
        if name == "-c":
            if not _CONTAINER.fullmatch(value):
                raise CommandError(f"{shown(value)} is not a container name")
            container = value
        else:  # --tail
            if not value.isascii() or not value.isdigit() or int(value) > MAX_TAIL:
                raise CommandError(f"--tail needs a whole number from 0 to {MAX_TAIL}")
            tail = int(value)
    return container, tail, follow


def shown(word: str, limit: int = 60) -> str:
    """A word of the line as it may be shown: quoted, bounded, non-printables escaped."""
    text = word if len(word) <= limit else word[:limit] + "..."
    return repr(text)
