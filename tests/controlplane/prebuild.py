"""Builds every Go program the tests and benchmarks run, once per machine, before pytest starts:
the real control plane (build.py), kubelogin, krew and the selector oracle (gotools.py), the
kubelet stand-in (standin.py), and whatever else registers in TOOLS. A cold build takes about
15 minutes on 2 cores, so the test command (scripts/test) runs this first, under a limit of its
own, and no test's timeout ever includes a build: under CI=true a fixture that finds a tool
unbuilt fails (`prebuilt` below) instead of building it.

    python tests/controlplane/prebuild.py     # one line per tool: cached, or built in N s

Without Go each tool is reported as not built and the exit code is 0 (the tiers that need them
skip), except under CI=true, where it is 1: CI on these machines has Go and must run them all.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.controlplane import build, gotools, standin


@dataclass(frozen=True)
class Tool:
    name: str
    is_built: Callable[[], bool]
    ensure: Callable[[], Path]  # builds when needed; raises gotools.Unavailable


def _control_plane() -> Path:
    try:
        return build.ensure()
    except build.BuildFailed as exc:
        raise gotools.Unavailable(str(exc)) from None


def _go_tool(tool: gotools.GoTool) -> Tool:
    return Tool(f"{tool.name} {tool.version}",
                lambda: (gotools.cache_root(tool) / "bin" / tool.name).is_file(),
                lambda: gotools.ensure(tool))


CONTROL_PLANE = Tool(f"control plane (kubernetes {build.KUBERNETES}, etcd {build.ETCD})",
                     lambda: build.built(build.cache_root()), _control_plane)
KUBELOGIN = _go_tool(gotools.KUBELOGIN)
KREW = _go_tool(gotools.KREW)
SELECTOR_ORACLE = _go_tool(gotools.SELECTOR_ORACLE)
KUBELET_STANDIN = Tool(f"kubelet stand-in (virtual-kubelet {standin.VIRTUAL_KUBELET})",
                       lambda: standin.binary().is_file(), standin.ensure)
TOOLS = [CONTROL_PLANE, KUBELOGIN, KREW, SELECTOR_ORACLE, KUBELET_STANDIN]


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def prebuilt(tool: Tool) -> Path:
    """For a test fixture: the tool, which the test command built up front. Under CI=true an
    unbuilt tool is a failure, never a build inside a test; elsewhere (a developer running
    pytest by hand) it is built now, or skipped with the reason where it cannot be."""
    import pytest

    if not tool.is_built() and in_ci():
        pytest.fail(f"{tool.name} is not built: the test command builds it up front "
                    "(tests/controlplane/prebuild.py), and a test never does")
    try:
        return tool.ensure()
    except gotools.Unavailable as exc:
        if in_ci():
            pytest.fail(f"{tool.name} cannot be built, and CI must run the tests that need it: "
                        f"{exc}")
        pytest.skip(f"{tool.name} cannot be built here: {exc}")


def main() -> int:
    failed = 0
    for tool in TOOLS:
        if tool.is_built():
            print(f"prebuild: {tool.name}: cached", file=sys.stderr)
            continue
        start = time.monotonic()
        try:
            tool.ensure()
        except gotools.Unavailable as exc:
            failed += 1
            last = (str(exc).strip().splitlines() or ["(no output)"])[-1]
            print(f"prebuild: {tool.name}: NOT built ({last})", file=sys.stderr)
            continue
        print(f"prebuild: {tool.name}: built in {time.monotonic() - start:.0f} s",
              file=sys.stderr)
    return 1 if failed and in_ci() else 0


if __name__ == "__main__":
    sys.exit(main())
