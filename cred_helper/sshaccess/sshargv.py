"""The system's `ssh` command line for one session through the gateway (pure).

The options are the Host block's own (hostblock.options), passed as `-o` after `-F none`: no
ssh_config file is read, so nothing in ~/.ssh/config or /etc/ssh/ssh_config adds keys,
forwardings, a proxy or a control master to the session.

The gateway command: ssh sends its command as one string (it joins its arguments with spaces)
and the gateway splits that string into words as a POSIX shell does (quotes and backslashes,
nothing expanded: gateway/commands.py, `shlex.split`). So the words are joined here with
`shlex.join`, which quotes each word so that `shlex.split` gives it back unchanged, and ssh
gets the result as one argument. `--` ends ssh's options before the destination: ssh reads
options after the host too, and a gateway command word such as `-oProxyCommand=...` must
never become one.

Port forwarding: `-L [BIND:]PORT:POD:PORT`, as `ssh -L` and `tsh ssh -L` spell it (the pod
stands where ssh's host stands: the gateway forwards to that pod's port), or `-L POD:PORT`,
the same port on this machine (as `kubectl port-forward POD PORT`).
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from .. import accessrequest as ar
from ..errors import UsageError
from .settings import is_ip

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
FORWARD_FORMS = "[BIND:]PORT:POD:PORT or POD:PORT"


@dataclass(frozen=True)
class Forward:
    bind: str  # "" for ssh's default: this machine's loopback addresses
    port: int
    pod: str
    pod_port: int

    @property
    def spec(self) -> str:
        """As `ssh -L` reads it."""
        bind = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"{bind + ':' if bind else ''}{self.port}:{self.pod}:{self.pod_port}"

    @property
    def local(self) -> str:
        bind = self.bind or "localhost"
        return f"[{bind}]:{self.port}" if ":" in bind else f"{bind}:{self.port}"


def parse_forward(text: str) -> Forward:
    """One -L value; UsageError unless it is one of FORWARD_FORMS."""
    bind, rest = "", text
    if text.startswith("["):
        bind, closed, rest = text[1:].partition("]")
        if not closed or not rest.startswith(":") or not is_ip(bind):
            raise _bad_forward(text)
        rest = rest[1:]
        parts = rest.split(":")
        if len(parts) != 3:
            raise _bad_forward(text)
    else:
        parts = rest.split(":")
        if len(parts) == 4:
            bind, parts = parts[0], parts[1:]
            if not (bind in ("localhost", "*") or is_ip(bind) or _HOSTNAME.fullmatch(bind)):
                raise _bad_forward(text, f"{bind!r} is not an address to listen on")
        elif len(parts) == 2:
            parts = [parts[1], parts[0], parts[1]]  # POD:PORT: the same port here
        elif len(parts) != 3:
            raise _bad_forward(text)
    port, pod, pod_port = parts
    if not ar.is_name(pod):
        raise _bad_forward(text, f"{pod!r} is not a pod name")
    return Forward(bind, _port(port, text), pod, _port(pod_port, text))


def _port(word: str, text: str) -> int:
    if not (word.isascii() and word.isdigit() and 1 <= int(word) <= 65535):
        raise _bad_forward(text, f"{word!r} is not a port from 1 to 65535")
    return int(word)


def _bad_forward(text: str, why: str = "") -> UsageError:
    return UsageError(f"-L {text!r}: {why or 'not ' + FORWARD_FORMS}",
                      "e.g. -L 8080:payment-api-7d4f:8080 (this machine's port 8080 to the "
                      "pod's 8080)")


def remote_command(words: Sequence[str]) -> str:
    """The one string ssh sends, which the gateway splits back into exactly `words`.

    Refused here, before any connection, as the gateway refuses them: control characters (a
    newline, an escape; NUL cannot be in a command line at all) and bytes that are not UTF-8
    (Python holds them as lone surrogates)."""
    for word in words:
        if any(c != "\t" and unicodedata.category(c) == "Cc" for c in word):
            raise UsageError(f"the gateway command word {word[:40]!r} holds a control "
                             "character (a newline, an escape)",
                             "the gateway takes one line of printable words")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in word):
            raise UsageError(f"the gateway command word {word[:40]!r} is not UTF-8",
                             "the gateway takes UTF-8 words")
    return shlex.join(words)


def wants_terminal(words: Sequence[str], asked: bool, stdin_is_tty: bool) -> bool:
    """A terminal for `shell` typed at one, or where -t asks (as `ssh -t`, `kubectl exec
    -t`); never otherwise, so that output stays byte for byte."""
    return asked or (bool(words) and words[0] == "shell" and stdin_is_tty)


def ssh_argv(ssh: str, alias: str, options: Sequence[tuple[str, str]], words: Sequence[str],
             forwards: Sequence[Forward], *, terminal: bool, batch: bool) -> list[str]:
    """The whole command line. Without gateway words but with forwards: forwarding alone
    (`-N`, until interrupted). `batch` (no terminal to ask on) makes ssh fail rather than
    prompt."""
    argv = [ssh, "-F", "none"]
    for name, value in options:
        argv += ["-o", f"{name}={value}"]
    if batch:
        argv += ["-o", "BatchMode=yes"]
    if forwards:
        argv += ["-o", "ExitOnForwardFailure=yes"]  # a local port in use ends it at once
        for forward in forwards:
            argv += ["-L", forward.spec]
    if not words and forwards:
        argv.append("-N")
    else:
        argv.append("-t" if terminal else "-T")
    argv += ["--", alias]
    if words:
        argv.append(remote_command(words))
    return argv
