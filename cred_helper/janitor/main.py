"""`cred-helper janitor`: flags checked and turned into Options, the connection made (as the
approver's: a kubeconfig, or the pod's service account in cluster), one pass run."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from ..errors import UsageError
from ..kube import KubeClient
from .decide import KNOWN_KINDS, Options, exclusions

# Below these a pass cuts sessions people are still in (`--max-age 8` ends every one within
# seconds) or replaces a pod while its engineer reads the debug container's output.
FLOORS = {"--after-exit": 5 * 60, "--max-age": 30 * 60}


def options_from_flags(*, after_exit: str, max_age: str, owner_kinds: str, bare_pods: str,
                       without_pdb: str, max_evictions: int, namespaces: tuple[str, ...],
                       exclude_namespaces: tuple[str, ...], exclude_selector: str | None,
                       dry_run: bool, force: bool = False) -> Options:
    from ..durations import format_duration, parse_duration
    from .selectors import parse_selector

    def duration(flag: str, text: str) -> int:
        try:
            seconds = parse_duration(text)
        except ValueError:
            raise UsageError(f"{flag}: {text!r} is not a duration",
                             "write it as 90s, 15m, 8h or 1h30m") from None
        if seconds < FLOORS[flag] and not force:
            raise UsageError(f"{flag} {text} is below {format_duration(FLOORS[flag])}: a pass "
                             "would cut debug sessions that are still in use",
                             f"give {flag} {format_duration(FLOORS[flag])} or more, or add "
                             "--force if that is meant")
        return seconds

    kinds = frozenset(k.strip() for k in owner_kinds.split(",") if k.strip())
    unknown = sorted(kinds - set(KNOWN_KINDS))
    if unknown or not kinds:
        what = f"{', '.join(unknown)}: not a controller kind the janitor knows" if unknown \
            else "names no kind"
        raise UsageError(f"--owner-kinds {what}",
                         f"choose among {', '.join(sorted(KNOWN_KINDS))}")
    if max_evictions < 0:
        raise UsageError("--max-evictions must be 0 or more")
    selector = None
    if exclude_selector is not None:
        try:
            selector = parse_selector(exclude_selector)
        except ValueError as exc:
            raise UsageError(f"--exclude-selector: cannot read {exclude_selector!r}: {exc}",
                             "write it as kubectl does: app=web,tier!=db,env in (a,b)") from None
    included = _names(namespaces)
    return Options(after_exit=duration("--after-exit", after_exit),
                   max_age=duration("--max-age", max_age), owner_kinds=kinds,
                   bare_pods=bare_pods == "evict", without_pdb=without_pdb == "evict",
                   max_evictions=max_evictions, namespaces=included,
                   exclude_namespaces=exclusions(included, _names(exclude_namespaces)),
                   exclude_selector=selector, dry_run=dry_run)


def _names(values: tuple[str, ...]) -> tuple[str, ...]:
    """Namespaces from repeated flags, each also split on commas."""
    seen: dict[str, None] = {}
    for value in values:
        for name in value.split(","):
            if name.strip():
                seen[name.strip()] = None
    return tuple(seen)


def connect(kubeconfig: str | None, context: str | None, env: Mapping[str, str]) -> KubeClient:
    from ..connect import endpoint as where

    return KubeClient(*where(kubeconfig, context, env, program="the janitor"), timeout=30)


def run_janitor(options: Options, kubeconfig: str | None, context: str | None,
                env: Mapping[str, str] | None = None) -> int:
    from .run import Janitor

    client = connect(kubeconfig, context, os.environ if env is None else env)
    return Janitor(client, options, out=_lines(sys.stdout, ""),
                   warn=_lines(sys.stderr, "cred-helper janitor: "), wall=time.time).run()


def _lines(stream: TextIO, prefix: str) -> Callable[[str], None]:
    """Each line written whole and flushed at once (a CronJob's log shows it as it happens)."""
    def write(text: str) -> None:
        stream.write(f"{prefix}{text}\n")
        stream.flush()

    return write
