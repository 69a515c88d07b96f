"""The system's `ssh` command line for one session through the gateway (pure, standard library
only: the warm path, warm.py, composes it too).

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
"""

from __future__ import annotations

import shlex
import unicodedata

from ..errors import UsageError

TYPE_CHECKING = False  # typing itself is too slow to import on the warm path
if TYPE_CHECKING:
    from collections.abc import Sequence


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


def ssh_argv(ssh: str, alias: str, options: Sequence[Sequence[str]], words: Sequence[str],
             forwards: Sequence[str], *, terminal: bool, batch: bool) -> list[str]:
    """The whole command line; `forwards` are -L values as ssh reads them. Without gateway
    words but with forwards: forwarding alone (`-N`, until interrupted). `batch` (no terminal
    to ask on) makes ssh fail rather than prompt."""
    argv = [ssh, "-F", "none"]
    for name, value in options:
        argv += ["-o", f"{name}={value}"]
    if batch:
        argv += ["-o", "BatchMode=yes"]
    if forwards:
        argv += ["-o", "ExitOnForwardFailure=yes"]  # a local port in use ends it at once
        for forward in forwards:
            argv += ["-L", forward]
    if not words and forwards:
        argv.append("-N")
    else:
        argv.append("-t" if terminal else "-T")
    argv += ["--", alias]
    if words:
        argv.append(remote_command(words))
    return argv
