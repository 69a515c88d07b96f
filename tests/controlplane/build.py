"""Build the real control plane the tests run: kube-apiserver, kube-controller-manager and
kubectl from `k8s.io/kubernetes`, and etcd from `go.etcd.io/etcd/server/v3`, pinned below,
into a cache directory keyed by version outside the checkout, so later runs reuse it.

`k8s.io/kubernetes` is a module only with a `replace` for each of its staging modules (it
requires them at v0.0.0): the list is generated from its own go.mod, not kept by hand.

    python tests/controlplane/build.py        # prints the directory holding the binaries

Prints how long each step took on stderr. Needs Go and the module proxy. The test command builds
it up front (tests/controlplane/prebuild.py), never inside a test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KUBERNETES = "v1.37.2"
ETCD = "v3.6.16"
BINARIES = ("kube-apiserver", "kube-controller-manager", "kubectl")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cred-helper-tests" / f"k8s-{KUBERNETES}-etcd-{ETCD}"


def built(root: Path) -> bool:
    return all((root / "bin" / name).is_file() for name in (*BINARIES, "etcd"))


class BuildFailed(Exception):
    """The control plane cannot be built here; the message says why."""


def _go(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["go", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise BuildFailed(f"go {' '.join(args[:3])} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def staging_replaces(kubernetes_go_mod: str, minor_version: str) -> list[str]:
    """`replace k8s.io/X => k8s.io/X v0.NN.P` for every `./staging/src/k8s.io/X` replace."""
    found = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/src/", kubernetes_go_mod, re.M)
    if not found:
        raise BuildFailed("no staging replaces found in k8s.io/kubernetes' go.mod")
    return [f"{name}={name}@{minor_version}" for name in sorted(set(found))]


def _timed(what: str, fn):
    start = time.monotonic()
    result = fn()
    print(f"build: {what} took {time.monotonic() - start:.0f}s", file=sys.stderr)
    return result


def build_kubernetes(work: Path, out: Path) -> None:
    _go(["mod", "init", "cred-helper-tests/controlplane"], work)
    info = json.loads(_go(["mod", "download", "-json", f"k8s.io/kubernetes@{KUBERNETES}"], work))
    staging = "v0." + KUBERNETES.split(".", 1)[1]  # v1.37.2 -> v0.37.2
    for replace in staging_replaces(Path(info["GoMod"]).read_text(), staging):
        _go(["mod", "edit", f"-replace={replace}"], work)
    _go(["mod", "edit", f"-require=k8s.io/kubernetes@{KUBERNETES}"], work)
    (work / "tools.go").write_text(
        "//go:build tools\n\npackage tools\n\nimport (\n"
        + "".join(f'\t_ "k8s.io/kubernetes/cmd/{b}"\n' for b in BINARIES) + ")\n")
    _go(["mod", "tidy"], work)
    major, minor = KUBERNETES[1:].split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={KUBERNETES}", f"-X {pkg}.gitMajor={major}",
                  f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]
    _go(["build", "-trimpath", "-o", str(out), "-ldflags", " ".join(flags),
         *(f"k8s.io/kubernetes/cmd/{b}" for b in BINARIES)], work)


def build_etcd(work: Path, out: Path) -> None:
    _go(["mod", "init", "cred-helper-tests/etcd"], work)
    _go(["mod", "edit", f"-require=go.etcd.io/etcd/server/v3@{ETCD}"], work)
    (work / "tools.go").write_text(
        '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n')
    _go(["mod", "tidy"], work)
    _go(["build", "-trimpath", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"], work)


def ensure() -> Path:
    """The directory of the built binaries, built first if this machine has none; raises
    BuildFailed."""
    root = cache_root()
    if built(root):
        return root / "bin"
    if shutil.which("go") is None:
        raise BuildFailed("Go is not installed; the real control plane cannot be built")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging_dir = Path(tempfile.mkdtemp(prefix="build-", dir=root.parent))
    try:
        out = staging_dir / "bin"
        out.mkdir()
        with tempfile.TemporaryDirectory() as k8s, tempfile.TemporaryDirectory() as etcd:
            _timed(f"etcd {ETCD}", lambda: build_etcd(Path(etcd), out))
            _timed(f"kubernetes {KUBERNETES} ({', '.join(BINARIES)})",
                   lambda: build_kubernetes(Path(k8s), out))
        # Whole or not at all; another process may have finished first, which is as good.
        if not built(root):
            if root.exists():
                shutil.rmtree(root)
            staging_dir.rename(root)
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
    return root / "bin"


def main() -> int:
    try:
        print(ensure())
    except BuildFailed as exc:
        print(f"build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
