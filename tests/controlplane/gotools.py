"""Build the Go tools the tests and benchmarks run beside cred-helper, pinned below, each into a
cache directory keyed by version outside the checkout (beside the control plane's), so later
runs reuse it:

- kubelogin (`github.com/int128/kubelogin`), the closest peer bench/kubelogin.py times
  cred-helper against;
- krew (`sigs.k8s.io/krew`), which tests/packaging uses to install the krew manifest;
- the selector oracle (`selectororacle/main.go` here, a program of our own built against
  `k8s.io/apimachinery`), apimachinery's `labels.Parse` for the janitor's selector tests.

Some module paths list no versions on the proxy, so `go install pkg@version` fails, but it
serves an exact version: a wrapper module requiring it builds (GONOSUMDB for its owner where the
checksum database has no record the list would point at).

    python tests/controlplane/gotools.py kubelogin|krew|selectororacle   # prints the binary

Prints how long the build took on stderr. Needs Go and the module proxy; without them it
exits 1 with one line saying why.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GoTool:
    name: str
    module: str
    version: str
    package: str  # the main package, inside the module
    ldflags: str  # the version stamp, else the tool calls itself a development build
    nosumdb: str = ""
    source: str = ""  # a directory beside this file holding our own main package, if any


KUBELOGIN = GoTool("kubelogin", "github.com/int128/kubelogin", "v1.36.3",
                   package="github.com/int128/kubelogin",
                   ldflags="-X main.version=v1.36.3", nosumdb="github.com/int128")
KREW = GoTool("krew", "sigs.k8s.io/krew", "v0.4.3", package="sigs.k8s.io/krew/cmd/krew",
              ldflags="-X sigs.k8s.io/krew/internal/version.gitTag=v0.4.3")
# apimachinery at the control plane's version (tests/controlplane/build.py: v1.37.2).
SELECTOR_ORACLE = GoTool("selectororacle", "k8s.io/apimachinery", "v0.37.2", package=".",
                         ldflags="", source="selectororacle")
TOOLS = {tool.name: tool for tool in (KUBELOGIN, KREW, SELECTOR_ORACLE)}
HERE = Path(__file__).resolve().parent


class Unavailable(Exception):
    """The tool cannot be built here; the message says why, in one line."""


def cache_root(tool: GoTool) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = f"{tool.name}-{tool.version}"
    if tool.source:  # our own code: a change to it is a new build
        digest = hashlib.sha256()
        for path in sorted((HERE / tool.source).glob("*.go")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        key += f"-{digest.hexdigest()[:12]}"
    return Path(base) / "cred-helper-tests" / key


def go(args: list[str], cwd: Path, nosumdb: str = "") -> str:
    """Run go; Unavailable with its last line of error when it fails."""
    nosumdb = ",".join(filter(None, (os.environ.get("GONOSUMDB"), nosumdb)))
    done = subprocess.run(["go", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "GONOSUMDB": nosumdb})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise Unavailable(f"go {' '.join(args[:2])} failed: {last}")
    return done.stdout


def _go(tool: GoTool, args: list[str], cwd: Path) -> None:
    go(args, cwd, tool.nosumdb)


def _build(tool: GoTool, work: Path, out: Path) -> None:
    _go(tool, ["mod", "init", f"cred-helper-tests/{tool.name}"], work)
    _go(tool, ["mod", "edit", f"-require={tool.module}@{tool.version}"], work)
    if tool.source:
        for path in (HERE / tool.source).glob("*.go"):
            shutil.copy(path, work / path.name)
    else:
        (work / "tools.go").write_text(
            f'//go:build tools\n\npackage tools\n\nimport _ "{tool.package}"\n')
    _go(tool, ["mod", "tidy"], work)
    _go(tool, ["build", "-trimpath", "-o", str(out / tool.name), "-ldflags", tool.ldflags,
               tool.package], work)


def ensure(tool: GoTool) -> Path:
    """The tool's binary, built on the first call on this machine; raises Unavailable."""

    def build(out: Path) -> None:
        with tempfile.TemporaryDirectory() as work:
            _build(tool, Path(work), out)

    return cached_build(cache_root(tool), tool.name, f"{tool.name} {tool.version}", build)


def cached_build(root: Path, name: str, label: str, build: Callable[[Path], None]) -> Path:
    """`root`/bin/`name`, made by `build(bin_dir)` on the first call on this machine into a
    staging directory beside `root` that becomes `root` whole (a killed build leaves no half
    cache); raises Unavailable."""
    binary = root / "bin" / name
    if binary.is_file():
        return binary
    if shutil.which("go") is None:
        raise Unavailable("Go is not installed")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"build-{name}-", dir=root.parent))
    try:
        (staging / "bin").mkdir()
        start = time.monotonic()
        build(staging / "bin")
        print(f"build: {label} took {time.monotonic() - start:.0f}s", file=sys.stderr)
        # Whole or not at all; another process may have finished first, which is as good.
        if not binary.is_file():
            shutil.rmtree(root, ignore_errors=True)
            try:
                staging.rename(root)
            except OSError:
                if not binary.is_file():
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return binary


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in TOOLS:
        print(f"usage: gotools.py {'|'.join(TOOLS)}", file=sys.stderr)
        return 2
    tool = TOOLS[argv[0]]
    try:
        print(ensure(tool))
    except Unavailable as exc:
        print(f"build: {tool.name} {tool.version} cannot be built: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
