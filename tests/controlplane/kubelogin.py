"""Build kubelogin (`github.com/int128/kubelogin`, pinned below), the closest peer that
bench/kubelogin.py times cred-helper against, into a cache directory keyed by version outside
the checkout, beside the control plane's, so later runs reuse it.

The module proxy lists no versions of kubelogin, so `go install pkg@version` fails, but it
serves an exact version: a wrapper module requiring it builds (GONOSUMDB for its owner, as the
checksum database has no record the list would point at).

    python tests/controlplane/kubelogin.py    # prints the path of the kubelogin binary

Prints how long the build took on stderr. Needs Go and the module proxy; without them it
exits 1 with one line saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KUBELOGIN = "v1.36.3"
MODULE = "github.com/int128/kubelogin"


class Unavailable(Exception):
    """kubelogin cannot be built here; the message says why, in one line."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cred-helper-tests" / f"kubelogin-{KUBELOGIN}"


def _go(args: list[str], cwd: Path) -> None:
    nosumdb = ",".join(filter(None, (os.environ.get("GONOSUMDB"), "github.com/int128")))
    done = subprocess.run(["go", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "GONOSUMDB": nosumdb})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise Unavailable(f"go {' '.join(args[:2])} failed: {last}")


def _build(work: Path, out: Path) -> None:
    _go(["mod", "init", "cred-helper-tests/kubelogin"], work)
    _go(["mod", "edit", f"-require={MODULE}@{KUBELOGIN}"], work)
    (work / "tools.go").write_text(
        f'//go:build tools\n\npackage tools\n\nimport _ "{MODULE}"\n')
    _go(["mod", "tidy"], work)
    # main.version, else `kubelogin --version` says HEAD.
    _go(["build", "-trimpath", "-o", str(out / "kubelogin"),
         "-ldflags", f"-X main.version={KUBELOGIN}", MODULE], work)


def ensure() -> Path:
    """The kubelogin binary, built on the first call on this machine; raises Unavailable."""
    root = cache_root()
    binary = root / "bin" / "kubelogin"
    if binary.is_file():
        return binary
    if shutil.which("go") is None:
        raise Unavailable("Go is not installed")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="build-kubelogin-", dir=root.parent))
    try:
        (staging / "bin").mkdir()
        start = time.monotonic()
        with tempfile.TemporaryDirectory() as work:
            _build(Path(work), staging / "bin")
        print(f"build: kubelogin {KUBELOGIN} took {time.monotonic() - start:.0f}s",
              file=sys.stderr)
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


def main() -> int:
    try:
        print(ensure())
    except Unavailable as exc:
        print(f"build: kubelogin {KUBELOGIN} cannot be built: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
