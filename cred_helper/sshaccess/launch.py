"""Starting the system's ssh for `cred-helper ssh`: finding it, checking that the agent holds a
token key before ssh would fail on it, and replacing this process with ssh, so that ssh owns
the terminal, the standard streams and the signals, and its exit code (the remote command's,
or 255 for ssh's own failure) is the command's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from ..errors import CredHelperError, os_reason

INSTALL_HINT = "install OpenSSH's client (Debian and Ubuntu: apt-get install openssh-client)"


def find_ssh(env: Mapping[str, str]) -> str:
    found = shutil.which("ssh", path=env.get("PATH", os.defpath))
    if found is None:
        raise CredHelperError("no ssh on PATH", INSTALL_HINT)
    return found


def check_agent(public_line: str, env: Mapping[str, str], module: str,
                run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> None:
    """ssh reaches a token key only through the agent (`ssh-add -s MODULE`): without it ssh
    would end in "Permission denied" after a connection; say what to do instead."""
    hint = f"add the token's keys to an agent once: ssh-add -s {module or 'PKCS11_MODULE'}"
    if not env.get("SSH_AUTH_SOCK"):
        raise CredHelperError("the request's key is on a token, which ssh uses through an "
                              "agent, and no agent is running (SSH_AUTH_SOCK is not set)",
                              f"start one (eval $(ssh-agent)), then {hint}")
    ssh_add = shutil.which("ssh-add", path=env.get("PATH", os.defpath))
    if ssh_add is None:
        raise CredHelperError("no ssh-add on PATH", INSTALL_HINT)
    try:
        listed = run([ssh_add, "-L"], capture_output=True, text=True, timeout=10,
                     stdin=subprocess.DEVNULL, env=dict(env))
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CredHelperError(f"cannot ask the ssh-agent for its keys: {_why(exc)}",
                              hint) from None
    if listed.returncode == 2:  # cannot reach the agent
        raise CredHelperError("cannot reach the ssh-agent at SSH_AUTH_SOCK",
                              f"start one (eval $(ssh-agent)), then {hint}")
    held = {" ".join(line.split()[:2]) for line in listed.stdout.splitlines()}
    if public_line not in held:
        raise CredHelperError("the ssh-agent does not hold the request's token key", hint)


def _why(exc: BaseException) -> str:
    return os_reason(exc) if isinstance(exc, OSError) else "no answer within 10 s"


def replace_with(argv: Sequence[str]) -> NoReturn:
    """Become ssh (argv[0] is its path). Where a process cannot be replaced (Windows), run it
    and exit with its code."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        if os.name == "posix":
            os.execv(argv[0], list(argv))
        raise SystemExit(subprocess.call(list(argv)))
    except OSError as exc:
        raise CredHelperError(f"cannot run {argv[0]}: {os_reason(exc)}", INSTALL_HINT) \
            from None
