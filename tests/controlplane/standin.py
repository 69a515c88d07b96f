"""Build the kubelet stand-in (tests/controlplane/standin/main.go, our own code) on
`github.com/virtual-kubelet/virtual-kubelet`, pinned below, from the Go module proxy, into a
cache directory beside the control plane's, keyed by the versions and by the source's digest
(a changed main.go builds anew; an unchanged one never builds twice on a machine).

virtual-kubelet v1.14.1 requires the k8s.io modules at v0.37.1; the wrapper module requires
v0.37.2 of each instead (minimal version selection takes the higher one), the versions the
control plane's kube-apiserver is built from, so Go's build cache of those packages is shared
with that build.

    python tests/controlplane/standin.py     # prints the path of the binary

Prints how long the build took on stderr. Needs Go and the module proxy; without them it exits 1
with one line saying why.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.controlplane.gotools import Unavailable, cached_build, go

VIRTUAL_KUBELET = "v1.14.1"
K8S_MODULES = "v0.37.2"  # the staging modules of k8s.io/kubernetes v1.37.2
PTY = "v1.1.24"  # github.com/creack/pty: the terminal of `exec -t`
SOURCE = Path(__file__).resolve().parent / "standin" / "main.go"
NAME = "kubelet-standin"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    return Path(base) / "cred-helper-tests" / (
        f"{NAME}-vk-{VIRTUAL_KUBELET}-k8s-{K8S_MODULES}-{digest}")


def k8s_upgrades(module_list: str) -> list[str]:
    """`-require=k8s.io/X@v0.37.2` for every k8s.io module `go list -m all` shows at another
    v0.37 version."""
    found = re.findall(r"^(k8s\.io/[\w.-]+) (v0\.37\.\d+)$", module_list, re.M)
    return [f"-require={name}@{K8S_MODULES}" for name, version in found
            if version != K8S_MODULES]


def _build(work: Path, out: Path) -> None:
    shutil.copy(SOURCE, work / "main.go")
    go(["mod", "init", "cred-helper-tests/kubelet-standin"], work)
    go(["mod", "edit",
         f"-require=github.com/virtual-kubelet/virtual-kubelet@{VIRTUAL_KUBELET}",
         f"-require=github.com/creack/pty@{PTY}"], work)
    go(["mod", "tidy"], work)
    upgrades = k8s_upgrades(go(["list", "-m", "-f", "{{.Path}} {{.Version}}", "all"], work))
    if upgrades:
        go(["mod", "edit", *upgrades], work)
        go(["mod", "tidy"], work)
    # -trimpath as the control plane's build: the same flags find the same cached packages.
    go(["build", "-trimpath", "-o", str(out / NAME), "."], work)


def binary() -> Path:
    return cache_root() / "bin" / NAME


def ensure() -> Path:
    """The stand-in's binary, built on the first call on this machine; raises Unavailable."""

    def build(out: Path) -> None:
        with tempfile.TemporaryDirectory() as work:
            _build(Path(work), out)

    return cached_build(cache_root(), NAME, f"{NAME} (virtual-kubelet {VIRTUAL_KUBELET})",
                        build)


def main() -> int:
    try:
        print(ensure())
    except Unavailable as exc:
        print(f"build: {NAME} cannot be built: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
