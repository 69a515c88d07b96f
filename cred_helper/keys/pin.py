"""Where a token's PIN comes from: `prompt` (the terminal, never echoed, only when a person is
there), `env:VAR`, `file:PATH` (private to its owner) or `cmd:COMMAND` (its first line of
output, e.g. a password manager). The PIN is returned to the caller once and kept nowhere."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping

from ..errors import CredHelperError, UsageError, os_reason

KINDS = ("prompt", "env:", "file:", "cmd:")


def check_source(source: str, where: str = "--pin-source") -> str:
    if source == "prompt" or (source.startswith(KINDS[1:]) and source.split(":", 1)[1]):
        return source
    raise UsageError(f"{where}: {source!r} is not prompt, env:VAR, file:PATH or cmd:COMMAND")


def read_pin(source: str, interactive: bool, what: str, env: Mapping[str, str],
             ask: Callable[[str], str]) -> str:
    """The PIN for `what` (a token's name) from `source`; `ask` prompts without echo."""
    kind, _, value = source.partition(":")
    if source == "prompt":
        if not interactive:
            raise CredHelperError(f"{what} needs its PIN, and there is no terminal to ask on",
                                  "run `cred-helper login` in a terminal, or set --pin-source "
                                  "env:VAR, file:PATH or cmd:COMMAND")
        pin = ask(f"PIN for {what}: ")
    elif kind == "env":
        pin = env.get(value, "")
        if not pin:
            raise CredHelperError(f"--pin-source env:{value}: the variable is not set",
                                  f"export {value}, or choose another --pin-source")
    elif kind == "file":
        pin = _read_pin_file(os.path.expanduser(value))
    else:
        # (only cmd: is left, or something that is no source: check_source refuses that)
        pin = _run_pin_command(check_source(source)[len("cmd:"):])
    pin = pin.rstrip("\r\n")
    if not pin:
        raise CredHelperError(f"--pin-source {kind}: gave an empty PIN")
    return pin


def _read_pin_file(path: str) -> str:
    from ..secretfile import read_secret

    try:
        data = read_secret(path, "PIN file", "--pin-source")
    except OSError as exc:
        raise CredHelperError(f"--pin-source file:{path}: {os_reason(exc)}") from None
    return data.decode("utf-8", "replace").split("\n", 1)[0]


def _run_pin_command(command: str) -> str:
    try:
        done = subprocess.run(shlex.split(command), stdout=subprocess.PIPE, text=True,
                              timeout=120, check=False)
    except (OSError, ValueError) as exc:
        raise CredHelperError(f"--pin-source cmd: cannot run {command!r}: {exc}") from None
    except subprocess.TimeoutExpired:
        raise CredHelperError(f"--pin-source cmd: {command!r} took over 2 minutes") from None
    if done.returncode != 0:
        raise CredHelperError(f"--pin-source cmd: {command!r} failed (exit {done.returncode})")
    return done.stdout.split("\n", 1)[0]
