"""`cred-helper ssh`'s ssh command line (pure): sshline.py composes it (the options, the
gateway command quoted); this module reads the -L values into it.

Port forwarding: `-L [BIND:]PORT:POD:PORT`, as `ssh -L` and `tsh ssh -L` spell it (the pod
stands where ssh's host stands: the gateway forwards to that pod's port), or `-L POD:PORT`,
the same port on this machine (as `kubectl port-forward POD PORT`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .. import accessrequest as ar
from ..errors import UsageError
from . import sshline
from .settings import is_ip

remote_command = sshline.remote_command
wants_terminal = sshline.wants_terminal

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


def ssh_argv(ssh: str, alias: str, options: Sequence[tuple[str, str]], words: Sequence[str],
             forwards: Sequence[Forward], *, terminal: bool, batch: bool) -> list[str]:
    """The whole command line (sshline.ssh_argv), with the forwards as ssh reads them."""
    return sshline.ssh_argv(ssh, alias, options, words, [f.spec for f in forwards],
                            terminal=terminal, batch=batch)
