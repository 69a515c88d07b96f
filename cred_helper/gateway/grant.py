"""May this person run this now? Every "may I" of the gateway is here, as pure functions of the
request's grant (accessrequest.Grant, written by the broker) and what the person asked for.
The SSH server and the API streams only act on the answer, and ask before any API call.

- `help` and `whoami` are always allowed: they read only the request itself.
- `pods`, `logs` and `exec` need their name in `grant.commands`.
- A pod must match one of `grant.pods` (names or globs; none listed: any pod of the namespace).
- `exec`'s argv must match one of `grant.exec`, element by element (accessrequest.Grant says
  how); it is never handed to a shell, so a pattern means exactly the words it matches.
- `shell` needs `grant.shell`; port forwarding needs the port in `grant.ports`, to a pod the
  grant names (by its exact name: the client's destination becomes a part of an API path).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from ..accessrequest import REST, Grant
from .commands import EXEC, HELP, LOGS, PODS, SHELL, WHOAMI, Command, is_pod_name, shown


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str  # one line: why not (or what was allowed)


ALLOWED = Verdict(True, "in the grant")


def decide(grant: Grant, command: Command) -> Verdict:
    if command.verb in (HELP, WHOAMI):
        return ALLOWED
    if command.verb == SHELL:
        if not grant.shell:
            return Verdict(False, "a shell is not in your grant")
        return _pod(grant, command.pod)
    if command.verb not in (PODS, LOGS, EXEC):
        return Verdict(False, f"{command.verb!r} is not a gateway command")
    if command.verb not in grant.commands:
        return Verdict(False, f"`{command.verb}` is not in your grant "
                              f"(granted: {_listed(grant.commands)})")
    if command.verb == PODS:
        return ALLOWED
    pod = _pod(grant, command.pod)
    if not pod.allowed or command.verb == LOGS:
        return pod
    if not argv_allowed(grant.exec, command.argv):
        return Verdict(False, f"{_argv(command.argv)} is not in your grant "
                              f"(granted: {_patterns(grant.exec)})")
    return ALLOWED


def decide_forward(grant: Grant, pod: str, port: int) -> Verdict:
    """`pod` is the client's own text (ssh -L's host), and becomes a part of the API
    server's path: anything but a pod's name is refused, whatever the grant's globs match."""
    if not is_pod_name(pod):
        return Verdict(False, f"{shown(pod)} is not a pod name")
    if port not in grant.ports:
        granted = ", ".join(str(p) for p in grant.ports) or "none"
        return Verdict(False, f"port {port} is not in your grant (granted ports: {granted})")
    return _pod(grant, pod)


def pod_allowed(patterns: tuple[str, ...], pod: str) -> bool:
    return not patterns or any(fnmatchcase(pod, p) for p in patterns)


def argv_allowed(patterns: tuple[tuple[str, ...], ...], argv: tuple[str, ...]) -> bool:
    return any(_argv_matches(p, argv) for p in patterns)


def _argv_matches(pattern: tuple[str, ...], argv: tuple[str, ...]) -> bool:
    if pattern and pattern[-1] == REST:
        fixed = pattern[:-1]
        if len(argv) < len(fixed):
            return False
        argv = argv[:len(fixed)]
        pattern = fixed
    return len(pattern) == len(argv) and all(
        fnmatchcase(word, p) for word, p in zip(argv, pattern, strict=True))


def _pod(grant: Grant, pod: str) -> Verdict:
    if not pod_allowed(grant.pods, pod):
        return Verdict(False, f"pod {pod!r} is not in your grant "
                              f"(granted pods in {grant.namespace}: {_listed(grant.pods)})")
    return ALLOWED


def _listed(items: tuple[str, ...]) -> str:
    return ", ".join(items) if items else "none"


def _argv(argv: tuple[str, ...], limit: int = 120) -> str:
    text = repr(" ".join(argv))
    return text if len(text) <= limit else text[:limit] + "...'"


def _patterns(patterns: tuple[tuple[str, ...], ...]) -> str:
    return "; ".join(" ".join(p) for p in patterns[:8]) + ("; ..." if len(patterns) > 8 else "") \
        if patterns else "none"
